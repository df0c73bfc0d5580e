package e2e

import (
	"strings"
	"testing"

	"github.com/stockd/stockd"
)

// The webhook routes in the authorization matrix. The endpoints point at a
// name that never resolves; deliveries to it fail in the background, which
// these tests do not look at (package webhook tests delivery).
func init() {
	const hook = `{"url":"https://hooks.invalid/stockd","secret":"s"}`
	for pattern, r := range map[string]matrixRequest{
		"PUT /v1/webhooks/{name}":                      {"/v1/webhooks/m-hook", `{"url":"https://hooks.invalid/stockd","secret":"s","types":["StockReceived"]}`},
		"GET /v1/webhooks":                             {"/v1/webhooks", ""},
		"GET /v1/webhooks/{name}":                      {"/v1/webhooks/seed-hook", ""},
		"GET /v1/webhooks/{name}/dead-letters":         {"/v1/webhooks/seed-hook/dead-letters", ""},
		"POST /v1/webhooks/{name}/dead-letters/replay": {"/v1/webhooks/seed-hook/dead-letters/replay", ""},
		"DELETE /v1/webhooks/{name}":                   {"/v1/webhooks/seed-hook", ""},
	} {
		matrixRequests[pattern] = r
		if !strings.HasPrefix(pattern, "PUT ") && pattern != "GET /v1/webhooks" {
			matrixSetup[pattern] = matrixRequest{"/v1/webhooks/seed-hook", hook}
		}
	}
}

// TestWebhooksWire covers the webhook routes on the wire: statuses, shapes,
// no secret in any answer, and the refusals.
func TestWebhooksWire(t *testing.T) {
	s := Start(t, Options{})
	const secret = "whsec_wire_7c1e"
	put := `{"url":"https://hooks.invalid/stockd","secret":"` + secret + `","types":["StockReceived","ReservationCommitted"]}`

	r := raw(t, s, "PUT", "/v1/webhooks/shop", put)
	wantStatus(t, r, 201)
	m := r.JSON(t)
	if m["name"] != "shop" || m["url"] != "https://hooks.invalid/stockd" || m["dead_letters"] != 0.0 || m["lag"] != 0.0 {
		t.Errorf("PUT webhook = %s", r.Body)
	}
	if types, _ := m["types"].([]any); len(types) != 2 || types[0] != "ReservationCommitted" {
		t.Errorf("types = %v, want both, sorted", m["types"])
	}
	wantStatus(t, raw(t, s, "PUT", "/v1/webhooks/shop", put), 200)
	wantStatus(t, raw(t, s, "PUT", "/v1/webhooks/all", `{"url":"https://hooks.invalid/all","secret":"x","from":"beginning"}`), 201)

	r = raw(t, s, "GET", "/v1/webhooks/all", nil)
	wantStatus(t, r, 200)
	if types, ok := r.JSON(t)["types"].([]any); !ok || len(types) != 0 {
		t.Errorf("an endpoint of every type shows types %s, want []", r.Body)
	}
	r = raw(t, s, "GET", "/v1/webhooks?limit=1", nil)
	wantStatus(t, r, 200)
	if m := r.JSON(t); m["next"] != "all" || len(m["items"].([]any)) != 1 {
		t.Errorf("first page = %s", r.Body)
	}
	r = raw(t, s, "GET", "/v1/webhooks?after=all", nil)
	if m := r.JSON(t); m["next"] != "" || len(m["items"].([]any)) != 1 {
		t.Errorf("second page = %s", r.Body)
	}
	r = raw(t, s, "GET", "/v1/webhooks/shop/dead-letters", nil)
	wantStatus(t, r, 200)
	if string(r.Body) != "{\"items\":[],\"next\":\"\"}\n" {
		t.Errorf("no dead letters = %s", r.Body)
	}
	r = raw(t, s, "POST", "/v1/webhooks/shop/dead-letters/replay", nil)
	wantStatus(t, r, 200)
	if string(r.Body) != "{\"delivered\":[],\"failed\":[],\"not_found\":[]}\n" {
		t.Errorf("replay of nothing = %s", r.Body)
	}
	r = raw(t, s, "POST", "/v1/webhooks/shop/dead-letters/replay", `{"event_ids":["0-1"]}`)
	if string(r.Body) != "{\"delivered\":[],\"failed\":[],\"not_found\":[\"0-1\"]}\n" {
		t.Errorf("replay of an id not on the list = %s", r.Body)
	}
	r = raw(t, s, "DELETE", "/v1/webhooks/shop", nil)
	wantStatus(t, r, 200)
	if r.JSON(t)["name"] != "shop" {
		t.Errorf("DELETE = %s", r.Body)
	}
	for _, path := range []string{"/v1/webhooks/shop", "/v1/webhooks/shop/dead-letters"} {
		wantProblem(t, raw(t, s, "GET", path, nil), 404, stockd.CodeNotFound)
	}
	wantProblem(t, raw(t, s, "DELETE", "/v1/webhooks/shop", nil), 404, stockd.CodeNotFound)
	wantProblem(t, raw(t, s, "POST", "/v1/webhooks/shop/dead-letters/replay", nil), 404, stockd.CodeNotFound)

	// Refusals: bad values 422, bad JSON 400, a name in the body 400.
	for _, body := range []string{
		`{"url":"http://127.0.0.1:8080/","secret":"s"}`,
		`{"url":"https://hooks.invalid/","secret":""}`,
		`{"url":"https://hooks.invalid/","secret":"s","types":["Nope"]}`,
	} {
		wantProblem(t, raw(t, s, "PUT", "/v1/webhooks/bad", body), 422, stockd.CodeInvalid)
	}
	for _, body := range []string{`{"url":"https://hooks.invalid/","secret":"s","retries":3}`, `{"name":"x","url":"https://hooks.invalid/","secret":"s"}`} {
		wantProblem(t, raw(t, s, "PUT", "/v1/webhooks/bad", body), 400, stockd.CodeInvalid)
	}
	wantProblem(t, raw(t, s, "GET", "/v1/webhooks?limit=0", nil), 422, stockd.CodeInvalid)

	// The secret is in no answer, and through the client neither.
	page, err := s.Client.ListWebhooks(ctx, stockd.WebhookQuery{})
	if err != nil || len(page.Items) != 1 || page.Items[0].Name != "all" {
		t.Fatalf("list through the client = %+v, %v", page, err)
	}
	for _, path := range []string{"/v1/webhooks", "/v1/webhooks/all"} {
		if r := raw(t, s, "GET", path, nil); strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), `"secret"`) {
			t.Errorf("GET %s shows a secret: %s", path, r.Body)
		}
	}
}
