package e2e

import (
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/http"
)

// TestEveryRouteIsCovered keeps this suite honest: every route the server
// registers must be exercised by name somewhere in these tests' list.
func TestEveryRouteIsCovered(t *testing.T) {
	s := Start(t, Options{})
	covered := []string{
		"PUT /v1/locations/{id}", "GET /v1/locations/{id}", "GET /v1/locations",
		"GET /v1/skus", "PUT /v1/skus/{sku}/config", "GET /v1/skus/{sku}", "GET /v1/skus/{sku}/events",
		"POST /v1/receipts", "POST /v1/adjustments", "POST /v1/counts",
		"POST /v1/transfers", "GET /v1/transfers/{id}", "POST /v1/transfers/{id}/arrive",
		"POST /v1/reservations", "GET /v1/reservations", "GET /v1/reservations/{id}",
		"POST /v1/reservations/{id}/commit", "POST /v1/reservations/{id}/release", "POST /v1/reservations/{id}/extend",
		"PATCH /v1/reservations/{id}", "GET /v1/availability", "POST /v1/batch",
		"GET /v1/feed", "GET /v1/subscriptions", "PUT /v1/subscriptions/{name}", "GET /v1/subscriptions/{name}",
		"DELETE /v1/subscriptions/{name}", "GET /v1/subscriptions/{name}/events", "POST /v1/subscriptions/{name}/ack",
		"POST /v1/subscriptions/{name}/reset",
		"PUT /v1/webhooks/{name}", "GET /v1/webhooks", "GET /v1/webhooks/{name}", "DELETE /v1/webhooks/{name}",
		"GET /v1/webhooks/{name}/dead-letters", "POST /v1/webhooks/{name}/dead-letters/replay",
		"GET /v1/consumers", "DELETE /v1/consumers/{name}",
		"GET /v1/cluster",
		// Bundles: bundles_test.go.
		"PUT /v1/bundles/{sku}", "GET /v1/bundles/{sku}",
		// The intake: on the wire in intake/intake_test.go (commands),
		// drops/drops_test.go and cmd/stockd/intake_test.go (imports).
		"POST /v1/commands", "GET /v1/commands/{id}", "POST /v1/imports", "GET /v1/imports", "GET /v1/imports/{id}",
		"GET /openapi.json", "GET /metrics", "GET /healthz", "GET /readyz",
		// Incoming stock: in preorders_test.go.
		"POST /v1/expected-receipts", "GET /v1/expected-receipts/{id}",
		"POST /v1/expected-receipts/{id}/arrive", "POST /v1/expected-receipts/{id}/cancel",
	}
	for _, r := range s.API.Routes() {
		if !slices.Contains(covered, r) {
			t.Errorf("route %q is not covered by the end-to-end tests", r)
		}
	}
}

// TestLocationsWire covers PUT/GET /v1/locations/{id} and GET /v1/locations
// on the wire and through the client.
func TestLocationsWire(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client

	r := raw(t, s, "GET", "/v1/locations", nil)
	wantStatus(t, r, 200)
	if string(r.Body) != "{\"items\":[]}\n" {
		t.Errorf("empty location list = %s, want items: []", r.Body)
	}
	r = raw(t, s, "PUT", "/v1/locations/w1", `{"kind":"warehouse","priority":1,"region":"eu"}`)
	wantStatus(t, r, 200)
	m := r.JSON(t)
	if m["id"] != "w1" || m["kind"] != "warehouse" || m["priority"] != 1.0 || m["region"] != "eu" {
		t.Errorf("PUT location = %s", r.Body)
	}
	// PUT is idempotent: the same configuration again is 200 with the same body.
	r2 := raw(t, s, "PUT", "/v1/locations/w1", `{"kind":"warehouse","priority":1,"region":"eu"}`)
	wantStatus(t, r2, 200)
	if !equalJSON(t, r.Body, r2.Body) {
		t.Errorf("repeated PUT = %s, first %s", r2.Body, r.Body)
	}

	l, err := c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "s1", Kind: stockd.KindStore, Priority: 5, Region: "us"})
	if err != nil || l != (stockd.Location{ID: "s1", Kind: stockd.KindStore, Priority: 5, Region: "us"}) {
		t.Fatalf("ConfigureLocation = %+v, %v", l, err)
	}
	if got := must(c.Location(ctx, "w1")); got.Kind != stockd.KindWarehouse || got.Priority != 1 {
		t.Errorf("Location(w1) = %+v", got)
	}
	ls := must(c.Locations(ctx))
	if len(ls) != 2 || ls[0].ID != "s1" || ls[1].ID != "w1" {
		t.Errorf("Locations = %+v", ls)
	}
	_, err = c.Location(ctx, "nowhere")
	wantCode(t, err, stockd.CodeNotFound)
	wantProblem(t, raw(t, s, "GET", "/v1/locations/nowhere", nil), 404, stockd.CodeNotFound)
	wantProblem(t, raw(t, s, "PUT", "/v1/locations/x", `{"kind":"castle"}`), 422, stockd.CodeInvalid)
	_, err = c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "x", Kind: "castle"})
	wantCode(t, err, stockd.CodeInvalid)
}

// TestSKUConfigWire covers PUT /v1/skus/{sku}/config: safety stock is never
// sold.
func TestSKUConfigWire(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	r := raw(t, s, "PUT", "/v1/skus/A/config", `{"safety_stock":2,"low_stock_threshold":5}`)
	wantStatus(t, r, 200)
	m := r.JSON(t)
	if m["sku"] != "A" || m["safety_stock"] != 2.0 || m["low_stock_threshold"] != 5.0 {
		t.Errorf("PUT config = %s", r.Body)
	}
	cfg := must(c.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: "A", SafetyStock: 3, LowStockThreshold: 4}))
	if cfg != (stockd.SKUConfig{SKU: "A", SafetyStock: 3, LowStockThreshold: 4}) {
		t.Errorf("ConfigureSKU = %+v", cfg)
	}
	receive(t, c, "r-1", "A", "w1", 10)
	st := stockOf(t, c, "A")
	if st.OnHand != 10 || st.Available != 7 || st.SafetyStock != 3 {
		t.Errorf("sku with safety stock = %+v", st)
	}
	_, _, err := c.Reserve(ctx, stockd.Reserve{ID: "cart", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 8}}})
	e := wantCode(t, err, stockd.CodeInsufficientStock)
	if len(e.Lines) != 1 || e.Lines[0] != (stockd.Shortfall{SKU: "A", Requested: 8, Available: 7}) {
		t.Errorf("shortfall = %+v", e.Lines)
	}
	_, err = c.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: "A", SafetyStock: -1})
	wantCode(t, err, stockd.CodeInvalid)
}

// TestStockCommandsCreatedThenReplayed covers POST /v1/receipts,
// /v1/adjustments, /v1/counts and /v1/transfers: 201 when accepted, 200 with
// the same body on replay, 422 idempotency_mismatch for the same id with
// another body.
func TestStockCommandsCreatedThenReplayed(t *testing.T) {
	s := Start(t, Options{})
	ConfigureLocations(t, s.Client, "w1", "s1", "s2")
	receive(t, s.Client, "seed", "A", "w1", 100)
	cases := []struct {
		path, body, other string
		fields            []string
	}{
		{"/v1/receipts", `{"id":"r-1","sku":"A","location":"w1","quantity":10,"lot":"L1","best_before":"2099-03-15"}`,
			`{"id":"r-1","sku":"A","location":"w1","quantity":11,"lot":"L1","best_before":"2099-03-15"}`,
			[]string{"id", "sku", "location", "quantity", "lot", "best_before", "time", "position"}},
		{"/v1/adjustments", `{"id":"adj-1","sku":"A","location":"w1","delta":-2,"reason":"damaged"}`,
			`{"id":"adj-1","sku":"A","location":"w1","delta":-2,"reason":"lost"}`,
			[]string{"id", "sku", "location", "delta", "reason", "time", "position"}},
		{"/v1/counts", `{"id":"c-1","sku":"A","location":"w1","on_hand":7}`,
			`{"id":"c-1","sku":"A","location":"w1","on_hand":8}`,
			[]string{"id", "sku", "location", "on_hand", "delta", "time", "position"}},
		{"/v1/transfers", `{"id":"t-1","sku":"A","from":"w1","to":"s1","quantity":3}`,
			`{"id":"t-1","sku":"A","from":"w1","to":"s2","quantity":3}`,
			[]string{"id", "sku", "from", "to", "quantity", "status", "lots", "sent_at"}},
	}
	for _, tc := range cases {
		t.Run(strings.TrimPrefix(tc.path, "/v1/"), func(t *testing.T) {
			first := raw(t, s, "POST", tc.path, tc.body)
			wantStatus(t, first, 201)
			hasKeys(t, tc.path, first.JSON(t), tc.fields...)
			noNullLists(t, first.Body, "lots")
			again := raw(t, s, "POST", tc.path, tc.body)
			wantStatus(t, again, 200)
			if !equalJSON(t, first.Body, again.Body) {
				t.Errorf("replay body differs:\nfirst  %s\nreplay %s", first.Body, again.Body)
			}
			wantProblem(t, raw(t, s, "POST", tc.path, tc.other), 422, stockd.CodeIdempotencyMismatch)
		})
	}
	// The count set on_hand to 7, the transfer took 3: the replays changed
	// nothing.
	st := stockOf(t, s.Client, "A")
	if st.OnHand != 4 || st.InTransit != 3 {
		t.Errorf("stock after the commands and their replays = %+v", st)
	}
}

// TestStockCommandsThroughClient drives the same commands through the client
// and checks created, the returned entities and the errors.
func TestStockCommandsThroughClient(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1", "s1")
	rc, created, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 10, Lot: "L1", BestBefore: "2099-03-15"})
	if err != nil || !created || rc.ID != "r-1" || rc.Quantity != 10 || rc.Lot != "L1" || rc.BestBefore != "2099-03-15" || rc.Position == 0 || rc.Time.IsZero() {
		t.Fatalf("Receive = %+v, %v, %v", rc, created, err)
	}
	rc2, created, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 10, Lot: "L1", BestBefore: "2099-03-15"})
	if err != nil || created || !rc2.Time.Equal(rc.Time) || rc2.Position != rc.Position {
		t.Fatalf("replayed Receive = %+v, %v, %v", rc2, created, err)
	}
	_, _, err = c.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "B", Location: "w1", Quantity: 10})
	wantCode(t, err, stockd.CodeIdempotencyMismatch)

	adj, created, err := c.Adjust(ctx, stockd.AdjustStock{ID: "a-1", SKU: "A", Location: "w1", Delta: -2, Reason: stockd.ReasonDamaged})
	if err != nil || !created || adj.Delta != -2 || adj.Reason != stockd.ReasonDamaged {
		t.Fatalf("Adjust = %+v, %v, %v", adj, created, err)
	}
	if _, created, err := c.Adjust(ctx, stockd.AdjustStock{ID: "a-1", SKU: "A", Location: "w1", Delta: -2, Reason: stockd.ReasonDamaged}); err != nil || created {
		t.Fatalf("replayed Adjust: %v, %v", created, err)
	}
	_, _, err = c.Adjust(ctx, stockd.AdjustStock{ID: "a-2", SKU: "A", Location: "w1", Delta: -100, Reason: stockd.ReasonLost})
	wantCode(t, err, stockd.CodeInsufficientStock)

	cnt, created, err := c.Count(ctx, stockd.CountStock{ID: "c-1", SKU: "A", Location: "w1", OnHand: 5})
	if err != nil || !created || cnt.OnHand != 5 || cnt.Delta != -3 {
		t.Fatalf("Count = %+v, %v, %v", cnt, created, err)
	}
	// A count to zero is valid: on_hand may be counted as nothing.
	if _, _, err := c.Count(ctx, stockd.CountStock{ID: "c-0", SKU: "Z", Location: "w1", OnHand: 0}); err != nil {
		t.Fatalf("Count to 0: %v", err)
	}

	tr, created, err := c.Transfer(ctx, stockd.TransferStock{ID: "t-1", SKU: "A", From: "w1", To: "s1", Quantity: 2})
	if err != nil || !created || tr.Status != stockd.TransferStatusInTransit || tr.Quantity != 2 {
		t.Fatalf("Transfer = %+v, %v, %v", tr, created, err)
	}
	if _, created, err := c.Transfer(ctx, stockd.TransferStock{ID: "t-1", SKU: "A", From: "w1", To: "s1", Quantity: 2}); err != nil || created {
		t.Fatalf("replayed Transfer: %v, %v", created, err)
	}
	got := must(c.GetTransfer(ctx, "t-1"))
	if got.ID != "t-1" || got.Status != stockd.TransferStatusInTransit {
		t.Fatalf("GetTransfer = %+v", got)
	}
	_, err = c.GetTransfer(ctx, "t-none")
	wantCode(t, err, stockd.CodeNotFound)
	_, err = c.ArriveTransfer(ctx, stockd.ArriveTransfer{ID: "t-none"})
	wantCode(t, err, stockd.CodeNotFound)
}

// TestReservationWire covers POST /v1/reservations and the reservation's
// shape on the wire, its replay, GET, extend, commit and release.
func TestReservationWire(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	must(c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	must(c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w2", Kind: stockd.KindWarehouse, Priority: 2}))
	receive(t, c, "ra", "A", "w1", 10)
	receive(t, c, "rb", "B", "w2", 10)

	body := `{"id":"cart-42","ttl":"15m","customer":"c-9","lines":[{"sku":"A","quantity":2,"location":"w1"},{"sku":"B","quantity":1}]}`
	first := raw(t, s, "POST", "/v1/reservations", body)
	wantStatus(t, first, 201)
	var res struct {
		ID        string    `json:"id"`
		Status    string    `json:"status"`
		ExpiresAt time.Time `json:"expires_at"`
		Lines     []struct {
			SKU         string `json:"sku"`
			Quantity    int64  `json:"quantity"`
			Allocations []struct {
				Location string `json:"location"`
				Quantity int64  `json:"quantity"`
			} `json:"allocations"`
		} `json:"lines"`
	}
	if err := json.Unmarshal(first.Body, &res); err != nil {
		t.Fatal(err)
	}
	if res.ID != "cart-42" || res.Status != "held" || time.Until(res.ExpiresAt) < 14*time.Minute || len(res.Lines) != 2 {
		t.Fatalf("reservation = %s", first.Body)
	}
	if l := res.Lines[0]; l.SKU != "A" || l.Quantity != 2 || len(l.Allocations) != 1 || l.Allocations[0].Location != "w1" || l.Allocations[0].Quantity != 2 {
		t.Errorf("line A = %+v", l)
	}
	if l := res.Lines[1]; l.SKU != "B" || l.Quantity != 1 || len(l.Allocations) != 1 || l.Allocations[0].Location != "w2" {
		t.Errorf("line B (allocated by priority) = %+v", l)
	}
	noNullLists(t, first.Body, "lines", "allocations")

	again := raw(t, s, "POST", "/v1/reservations", body)
	wantStatus(t, again, 200)
	if !equalJSON(t, first.Body, again.Body) {
		t.Errorf("replay differs:\nfirst  %s\nreplay %s", first.Body, again.Body)
	}
	get := raw(t, s, "GET", "/v1/reservations/cart-42", nil)
	wantStatus(t, get, 200)
	if !equalJSON(t, first.Body, get.Body) {
		t.Errorf("GET differs:\nPOST %s\nGET  %s", first.Body, get.Body)
	}
	// The same id with another body is refused, whatever differs.
	for _, other := range []string{
		`{"id":"cart-42","ttl":"15m","customer":"c-9","lines":[{"sku":"A","quantity":3,"location":"w1"},{"sku":"B","quantity":1}]}`,
		`{"id":"cart-42","ttl":"16m","customer":"c-9","lines":[{"sku":"A","quantity":2,"location":"w1"},{"sku":"B","quantity":1}]}`,
		`{"id":"cart-42","ttl":"15m","customer":"c-8","lines":[{"sku":"A","quantity":2,"location":"w1"},{"sku":"B","quantity":1}]}`,
		`{"id":"cart-42","ttl":"15m","customer":"c-9","lines":[{"sku":"A","quantity":2}]}`,
	} {
		wantProblem(t, raw(t, s, "POST", "/v1/reservations", other), 422, stockd.CodeIdempotencyMismatch)
	}

	ext := raw(t, s, "POST", "/v1/reservations/cart-42/extend", `{"ttl":"1h"}`)
	wantStatus(t, ext, 200)
	var extended stockd.Reservation
	json.Unmarshal(ext.Body, &extended)
	if extended.Status != stockd.StatusHeld || time.Until(extended.ExpiresAt) < 59*time.Minute {
		t.Errorf("extend = %s", ext.Body)
	}

	com := raw(t, s, "POST", "/v1/reservations/cart-42/commit", nil)
	wantStatus(t, com, 200)
	if m := com.JSON(t); m["status"] != "committed" {
		t.Errorf("commit = %s", com.Body)
	}
	// A replay of the reservation now answers it as it is: committed.
	replay := raw(t, s, "POST", "/v1/reservations", body)
	wantStatus(t, replay, 200)
	if m := replay.JSON(t); m["status"] != "committed" {
		t.Errorf("replay after commit = %s", replay.Body)
	}
	// Retrying the commit answers 200 with the reservation as it is.
	wantStatus(t, raw(t, s, "POST", "/v1/reservations/cart-42/commit", nil), 200)
	p := wantProblem(t, raw(t, s, "POST", "/v1/reservations/cart-42/release", nil), 409, stockd.CodeNotHeld)
	if p["reservation_status"] != "committed" {
		t.Errorf("not-held problem = %v, want reservation_status committed", p)
	}
	wantProblem(t, raw(t, s, "POST", "/v1/reservations/cart-42/extend", `{"ttl":"1m"}`), 409, stockd.CodeNotHeld)

	// Release of another cart, and its retry.
	wantStatus(t, raw(t, s, "POST", "/v1/reservations", `{"id":"cart-43","lines":[{"sku":"A","quantity":1}]}`), 201)
	rel := raw(t, s, "POST", "/v1/reservations/cart-43/release", nil)
	wantStatus(t, rel, 200)
	if m := rel.JSON(t); m["status"] != "released" {
		t.Errorf("release = %s", rel.Body)
	}
	wantStatus(t, raw(t, s, "POST", "/v1/reservations/cart-43/release", nil), 200)
	wantProblem(t, raw(t, s, "POST", "/v1/reservations/cart-43/commit", nil), 409, stockd.CodeNotHeld)
	wantProblem(t, raw(t, s, "POST", "/v1/reservations/cart-43/extend", `{"ttl":"1m"}`), 409, stockd.CodeNotHeld)

	wantProblem(t, raw(t, s, "GET", "/v1/reservations/none", nil), 404, stockd.CodeNotFound)
	for _, op := range []string{"commit", "release"} {
		wantProblem(t, raw(t, s, "POST", "/v1/reservations/none/"+op, nil), 404, stockd.CodeNotFound)
	}
	wantProblem(t, raw(t, s, "POST", "/v1/reservations/none/extend", `{"ttl":"1m"}`), 404, stockd.CodeNotFound)

	st := stockOf(t, c, "A")
	if st.OnHand != 8 || st.Reserved != 0 || st.Available != 8 {
		t.Errorf("A after commit of 2 = %+v", st)
	}
}

// TestReservationLifecycleThroughClient drives reservations through the
// client: created, replayed, extended, committed, released, and every
// not-held case with the reservation's status in the error.
func TestReservationLifecycleThroughClient(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	receive(t, c, "r", "A", "w1", 10)
	cmd := stockd.Reserve{ID: "c1", TTL: 10 * time.Minute, Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 4}}}
	r, created, err := c.Reserve(ctx, cmd)
	if err != nil || !created || r.Status != stockd.StatusHeld || r.Customer != "c-9" || r.Lines[0].Quantity != 4 || r.Lines[0].Held != 4 {
		t.Fatalf("Reserve = %+v, %v, %v", r, created, err)
	}
	r2, created, err := c.Reserve(ctx, cmd)
	if err != nil || created || r2.ID != "c1" || !r2.ExpiresAt.Equal(r.ExpiresAt) {
		t.Fatalf("replayed Reserve = %+v, %v, %v", r2, created, err)
	}
	ext := must(c.Extend(ctx, stockd.ExtendReservation{ID: "c1", TTL: time.Hour}))
	if !ext.ExpiresAt.After(r.ExpiresAt) {
		t.Errorf("Extend did not move the deadline: %v -> %v", r.ExpiresAt, ext.ExpiresAt)
	}
	got := must(c.GetReservation(ctx, "c1"))
	if !got.ExpiresAt.Equal(ext.ExpiresAt) {
		t.Errorf("GetReservation = %+v", got)
	}
	com := must(c.Commit(ctx, stockd.CommitReservation{ID: "c1"}))
	if com.Status != stockd.StatusCommitted || com.Lines[0].Quantity != 4 {
		t.Fatalf("Commit = %+v", com)
	}
	if again := must(c.Commit(ctx, stockd.CommitReservation{ID: "c1"})); again.Status != stockd.StatusCommitted {
		t.Fatalf("repeated Commit = %+v", again)
	}
	_, err = c.Release(ctx, stockd.ReleaseReservation{ID: "c1"})
	if e := wantCode(t, err, stockd.CodeNotHeld); e.Status != stockd.StatusCommitted {
		t.Errorf("release of committed: status = %q", e.Status)
	}
	_, err = c.Extend(ctx, stockd.ExtendReservation{ID: "c1", TTL: time.Minute})
	wantCode(t, err, stockd.CodeNotHeld)

	must3(c.Reserve(ctx, stockd.Reserve{ID: "c2", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}))
	rel := must(c.Release(ctx, stockd.ReleaseReservation{ID: "c2"}))
	if rel.Status != stockd.StatusReleased {
		t.Fatalf("Release = %+v", rel)
	}
	if again := must(c.Release(ctx, stockd.ReleaseReservation{ID: "c2"})); again.Status != stockd.StatusReleased {
		t.Fatalf("repeated Release = %+v", again)
	}
	_, err = c.Commit(ctx, stockd.CommitReservation{ID: "c2"})
	if e := wantCode(t, err, stockd.CodeNotHeld); e.Status != stockd.StatusReleased {
		t.Errorf("commit of released: status = %q", e.Status)
	}
	_, err = c.Extend(ctx, stockd.ExtendReservation{ID: "c2", TTL: time.Minute})
	wantCode(t, err, stockd.CodeNotHeld)
	_, err = c.GetReservation(ctx, "nope")
	wantCode(t, err, stockd.CodeNotFound)
	if st := stockOf(t, c, "A"); st.OnHand != 6 || st.Reserved != 0 {
		t.Errorf("A = %+v", st)
	}
}

// TestRejectedCommandIsDecidedAgain: only accepted commands are remembered;
// the same reservation id refused for lack of stock succeeds once stock
// arrives.
func TestRejectedCommandIsDecidedAgain(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1", "w2")
	receive(t, c, "r1", "A", "w1", 1)
	body := `{"id":"cart-9","lines":[{"sku":"A","quantity":3}]}`
	p := wantProblem(t, raw(t, s, "POST", "/v1/reservations", body), 409, stockd.CodeInsufficientStock)
	lines, _ := p["lines"].([]any)
	if len(lines) != 1 {
		t.Fatalf("lines = %v", p["lines"])
	}
	l := lines[0].(map[string]any)
	if l["sku"] != "A" || l["requested"] != 3.0 || l["available"] != 1.0 {
		t.Errorf("shortfall = %v", l)
	}
	receive(t, c, "r2", "A", "w1", 5)
	wantStatus(t, raw(t, s, "POST", "/v1/reservations", body), 201)
	wantStatus(t, raw(t, s, "POST", "/v1/reservations", body), 200)

	// The same for an adjustment that took too much.
	adj := `{"id":"adj-x","sku":"A","location":"w1","delta":-10,"reason":"lost"}`
	wantProblem(t, raw(t, s, "POST", "/v1/adjustments", adj), 409, stockd.CodeInsufficientStock)
	receive(t, c, "r3", "A", "w1", 10)
	wantStatus(t, raw(t, s, "POST", "/v1/adjustments", adj), 201)

	// And for a transfer.
	tr := stockd.TransferStock{ID: "t-x", SKU: "B", From: "w1", To: "w2", Quantity: 5}
	_, _, err := c.Transfer(ctx, tr)
	wantCode(t, err, stockd.CodeInsufficientStock)
	receive(t, c, "rb", "B", "w1", 5)
	if _, created, err := c.Transfer(ctx, tr); err != nil || !created {
		t.Fatalf("transfer after stock arrived: %v, %v", created, err)
	}
}

// TestMultiLineAllOrNothing: a cart whose second line cannot be held holds
// nothing, and the problem lists the short line.
func TestMultiLineAllOrNothing(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	// SKUs in several partitions, so that the cart spans partitions too.
	skus := []string{"sku-a", "sku-b", "sku-c", "sku-d", "sku-e", "sku-f"}
	for i, sku := range skus {
		receive(t, c, "r-"+sku, sku, "w1", int64(5+i))
	}
	var lines []stockd.ReserveLine
	for _, sku := range skus {
		lines = append(lines, stockd.ReserveLine{SKU: sku, Quantity: 5})
	}
	lines[3].Quantity = 100
	_, _, err := c.Reserve(ctx, stockd.Reserve{ID: "big", Lines: lines})
	e := wantCode(t, err, stockd.CodeInsufficientStock)
	if len(e.Lines) != 1 || e.Lines[0].SKU != "sku-d" || e.Lines[0].Requested != 100 || e.Lines[0].Available != 8 {
		t.Errorf("shortfall = %+v", e.Lines)
	}
	for i, sku := range skus {
		if st := stockOf(t, c, sku); st.Reserved != 0 || st.Available != int64(5+i) {
			t.Errorf("%s after a refused cart = %+v", sku, st)
		}
	}
	lines[3].Quantity = 8
	r, created, err := c.Reserve(ctx, stockd.Reserve{ID: "big", Lines: lines})
	if err != nil || !created || r.Status != stockd.StatusHeld || len(r.Lines) != len(skus) {
		t.Fatalf("Reserve spanning partitions = %+v, %v, %v", r, created, err)
	}
	if st := stockOf(t, c, "sku-d"); st.Available != 0 {
		t.Errorf("sku-d = %+v", st)
	}
}

// TestSKUWire covers GET /v1/skus/{sku}: field names, lists as arrays, the
// undated lot with an empty lot and no best_before, zero lots not listed.
func TestSKUWire(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: "A", Location: "w1", Quantity: 5, Lot: "L1", BestBefore: "2099-03-15"}))
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "r2", SKU: "A", Location: "w1", Quantity: 3}))
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "r3", SKU: "A", Location: "w1", Quantity: 2, Lot: "L0", BestBefore: "2099-01-01"}))
	must3(c.Adjust(ctx, stockd.AdjustStock{ID: "a1", SKU: "A", Location: "w1", Delta: -2, Reason: stockd.ReasonDamaged, Lot: "L0"}))

	r := raw(t, s, "GET", "/v1/skus/A", nil)
	wantStatus(t, r, 200)
	m := r.JSON(t)
	hasKeys(t, "sku", m, "sku", "on_hand", "reserved", "available", "locations")
	noNullLists(t, r.Body, "locations", "lots", "holds")
	if m["on_hand"] != 8.0 || m["available"] != 8.0 || m["reserved"] != 0.0 {
		t.Errorf("sku = %s", r.Body)
	}
	locs := m["locations"].([]any)
	loc := locs[0].(map[string]any)
	hasKeys(t, "location", loc, "location", "on_hand", "reserved", "available", "in_transit", "lots")
	lots := loc["lots"].([]any)
	if len(lots) != 2 {
		t.Fatalf("lots = %v, want L1 and undated (L0 is used up)", lots)
	}
	for _, l := range lots {
		lm := l.(map[string]any)
		hasKeys(t, "lot", lm, "lot", "quantity")
		switch lm["lot"] {
		case "":
			if _, ok := lm["best_before"]; ok || lm["quantity"] != 3.0 {
				t.Errorf("undated lot = %v, want quantity 3 and no best_before", lm)
			}
		case "L1":
			if lm["best_before"] != "2099-03-15" || lm["quantity"] != 5.0 {
				t.Errorf("L1 = %v", lm)
			}
		default:
			t.Errorf("unexpected lot %v", lm)
		}
	}
	wantProblem(t, raw(t, s, "GET", "/v1/skus/nothing-here", nil), 404, stockd.CodeNotFound)
	_, err := c.SKU(ctx, "nothing-here", stockd.AsOf{})
	wantCode(t, err, stockd.CodeNotFound)
	wantProblem(t, raw(t, s, "GET", "/v1/skus/A?as_of=yesterday", nil), 422, stockd.CodeInvalid)
	wantProblem(t, raw(t, s, "GET", "/v1/skus/A?position=-1", nil), 422, stockd.CodeInvalid)
}

// TestHealthReadyMetricsOpenAPI covers the operational routes.
func TestHealthReadyMetricsOpenAPI(t *testing.T) {
	s := Start(t, Options{})
	if err := s.Client.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	if err := s.Client.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	wantStatus(t, raw(t, s, "GET", "/healthz", nil), 200)
	wantStatus(t, raw(t, s, "GET", "/readyz", nil), 200)
	m := raw(t, s, "GET", "/metrics", nil)
	if m.Status != 200 || !strings.Contains(string(m.Body), "stockd_http_requests_total") {
		t.Errorf("metrics = %d %.200s", m.Status, m.Body)
	}
	o := raw(t, s, "GET", "/openapi.json", nil)
	wantStatus(t, o, 200)
	o.JSON(t)

	// A server whose readiness check fails answers 503 unavailable.
	bad := Start(t, Options{HTTP: http.Config{Ready: func() error { return fmt.Errorf("disk on fire") }}})
	err := bad.Client.Ready(ctx)
	wantCode(t, err, stockd.CodeUnavailable)
	if client.RetryAfter(err) <= 0 {
		t.Errorf("unavailable without a retry hint: %v", err)
	}
	if r := raw(t, bad, "GET", "/readyz", nil); r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
}

// TestOpenAPIDocumentDescribesRoutes: DESIGN §7 says the API is described by
// an OpenAPI document served by the server and kept true by a test.
func TestOpenAPIDocumentDescribesRoutes(t *testing.T) {
	s := Start(t, Options{})
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	json.Unmarshal(raw(t, s, "GET", "/openapi.json", nil).Body, &doc)
	for _, r := range s.API.Routes() {
		method, path, _ := strings.Cut(r, " ")
		if path == "/openapi.json" || path == "/metrics" {
			continue
		}
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("the OpenAPI document does not describe %s", r)
		}
	}
}

// TestUnknownRouteAndMethod: unknown paths are 404 problems; a known path with
// another method is a 405 problem with Allow.
func TestUnknownRouteAndMethod(t *testing.T) {
	s := Start(t, Options{})
	wantProblem(t, raw(t, s, "GET", "/v1/nothing", nil), 404, stockd.CodeNotFound)
	wantProblem(t, raw(t, s, "POST", "/v2/receipts", "{}"), 404, stockd.CodeNotFound)
	cases := []struct{ method, path, allow string }{
		{"GET", "/v1/receipts", "POST"},
		{"DELETE", "/v1/reservations/x", "GET, PATCH"},
		{"PUT", "/v1/reservations", "GET, POST"},
		{"GET", "/v1/reservations/x/commit", "POST"},
		{"DELETE", "/v1/locations/w1", "GET, PUT"},
		{"POST", "/v1/skus/A", "GET"},
		{"GET", "/v1/batch", "POST"},
	}
	for _, tc := range cases {
		r := raw(t, s, tc.method, tc.path, nil)
		wantProblem(t, r, 405, stockd.CodeInvalid)
		if got := r.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
	// Through the client, a 404 route is not_found too.
	_, err := client.New(s.URL + "/nope").Locations(ctx)
	wantCode(t, err, stockd.CodeNotFound)
	if client.StatusCode(err) != nethttp.StatusNotFound {
		t.Errorf("StatusCode = %d", client.StatusCode(err))
	}
}
