package e2e

import (
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// TestCustomerLimitOverHTTP: a per-customer limit configured through PUT
// /v1/skus/{sku}/config is shown by the SKU's views; over HTTP a reservation
// without a customer is 422 customer_required, one past the limit is 409
// customer_limit with the limit and what the customer has per line, and the
// Go client reads the same refusal back as a coded error.
func TestCustomerLimitOverHTTP(t *testing.T) {
	s := Start(t, Options{})
	ConfigureLocations(t, s.Client, "w1")
	receive(t, s.Client, "r", "A", "w1", 50)

	r := raw(t, s, "PUT", "/v1/skus/A/config", `{"safety_stock":0,"customer_limit":{"units":2,"window":"24h"}}`)
	wantStatus(t, r, 200)
	if l, _ := r.JSON(t)["customer_limit"].(map[string]any); l["units"] != 2.0 || l["window"] != "24h" {
		t.Fatalf("config answer: %s", r.Body)
	}
	if v := stockOf(t, s.Client, "A"); v.CustomerLimit == nil || *v.CustomerLimit != (stockd.CustomerLimit{Units: 2, Window: 24 * time.Hour}) {
		t.Fatalf("GET /v1/skus/A shows %+v", v.CustomerLimit)
	}
	wantProblem(t, raw(t, s, "PUT", "/v1/skus/A/config", `{"customer_limit":{"units":2,"window":"soon"}}`), 422, stockd.CodeInvalid)
	wantProblem(t, raw(t, s, "PUT", "/v1/skus/A/config", `{"customer_limit":{"units":2}}`), 422, stockd.CodeInvalid)

	wantProblem(t, raw(t, s, "POST", "/v1/reservations", `{"id":"anon","lines":[{"sku":"A","quantity":1}]}`), 422, stockd.CodeCustomerRequired)
	wantStatus(t, raw(t, s, "POST", "/v1/reservations", `{"id":"c1","customer":"c-9","lines":[{"sku":"A","quantity":1}]}`), 201)
	p := wantProblem(t, raw(t, s, "POST", "/v1/reservations", `{"id":"c2","customer":"c-9","lines":[{"sku":"A","quantity":2}]}`), 409, stockd.CodeCustomerLimit)
	lines, _ := p["lines"].([]any)
	if len(lines) != 1 {
		t.Fatalf("lines: %v", p)
	}
	l := lines[0].(map[string]any)
	cl, _ := l["customer_limit"].(map[string]any)
	if l["sku"] != "A" || l["requested"] != 2.0 || l["available"] != 1.0 ||
		cl["units"] != 2.0 || cl["window"] != "24h" || cl["customer"] != "c-9" || cl["has"] != 1.0 {
		t.Fatalf("problem line: %v", l)
	}

	// The client: the same refusal, typed; another customer is not limited.
	_, _, err := s.Client.Reserve(ctx, stockd.Reserve{ID: "c3", Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 2}}})
	e := wantCode(t, err, stockd.CodeCustomerLimit)
	if len(e.Lines) != 1 || e.Lines[0].CustomerLimit == nil || *e.Lines[0].CustomerLimit != (stockd.CustomerLimitShortfall{Units: 2, Window: 24 * time.Hour, Customer: "c-9", Has: 1}) {
		t.Fatalf("client error lines: %+v", e.Lines)
	}
	must3(s.Client.Reserve(ctx, stockd.Reserve{ID: "c4", Customer: "c-10", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 2}}}))
	cfg := must(s.Client.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: "A", CustomerLimit: stockd.CustomerLimit{Units: 3, Window: time.Hour}}))
	if cfg.CustomerLimit == nil || *cfg.CustomerLimit != (stockd.CustomerLimit{Units: 3, Window: time.Hour}) {
		t.Fatalf("client config answer: %+v", cfg)
	}
}
