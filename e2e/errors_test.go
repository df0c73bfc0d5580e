package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/http"
)

// TestMalformedRequestsAre400: bodies that cannot be read (bad JSON, unknown
// fields, wrong types, trailing data, a missing body) are 400
// invalid_request on every route that takes one, and change nothing.
func TestMalformedRequestsAre400(t *testing.T) {
	s := Start(t, Options{})
	ConfigureLocations(t, s.Client, "w1", "w2")
	receive(t, s.Client, "r", "A", "w1", 5)
	must3(s.Client.Reserve(ctx, stockd.Reserve{ID: "held", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}))
	must3(s.Client.Transfer(ctx, stockd.TransferStock{ID: "t", SKU: "A", From: "w1", To: "w2", Quantity: 1}))
	routes := []struct{ method, path string }{
		{"PUT", "/v1/locations/w1"},
		{"PUT", "/v1/skus/A/config"},
		{"POST", "/v1/receipts"},
		{"POST", "/v1/adjustments"},
		{"POST", "/v1/counts"},
		{"POST", "/v1/transfers"},
		{"POST", "/v1/reservations"},
		{"POST", "/v1/reservations/held/commit"},
		{"POST", "/v1/reservations/held/release"},
		{"POST", "/v1/reservations/held/extend"},
		{"POST", "/v1/transfers/t/arrive"},
		{"POST", "/v1/batch"},
	}
	bodies := map[string]string{
		"syntax":        `{"id":`,
		"not an object": `[1,2]`,
		"unknown field": `{"bogus":1}`,
		"trailing data": `{} {}`,
		"garbage":       `hello`,
	}
	for _, rt := range routes {
		for name, body := range bodies {
			r := raw(t, s, rt.method, rt.path, body)
			wantProblem(t, r, 400, stockd.CodeInvalid)
			if t.Failed() {
				t.Fatalf("%s %s with %s", rt.method, rt.path, name)
			}
		}
	}
	wrongTypes := []struct{ method, path, body string }{
		{"PUT", "/v1/locations/w1", `{"kind":"warehouse","priority":"1"}`},
		{"PUT", "/v1/skus/A/config", `{"safety_stock":"2"}`},
		{"POST", "/v1/receipts", `{"id":"r","sku":"A","location":"w1","quantity":"10"}`},
		{"POST", "/v1/receipts", `{"id":"r","sku":"A","location":"w1","quantity":1.5}`},
		{"POST", "/v1/adjustments", `{"id":"a","sku":"A","location":"w1","delta":true,"reason":"lost"}`},
		{"POST", "/v1/counts", `{"id":"c","sku":"A","location":"w1","on_hand":[7]}`},
		{"POST", "/v1/transfers", `{"id":"t2","sku":1,"from":"w1","to":"w2","quantity":1}`},
		{"POST", "/v1/reservations", `{"id":"x","lines":{"sku":"A","quantity":1}}`},
		{"POST", "/v1/reservations", `{"id":"x","ttl":15,"lines":[{"sku":"A","quantity":1}]}`},
		{"POST", "/v1/reservations/held/commit", `{"lines":[{"sku":"A","quantity":"1"}]}`},
		{"POST", "/v1/reservations/held/extend", `{"ttl":60}`},
		{"POST", "/v1/batch", `{"operations":{}}`},
	}
	for _, tc := range wrongTypes {
		r := raw(t, s, tc.method, tc.path, tc.body)
		wantProblem(t, r, 400, stockd.CodeInvalid)
		if t.Failed() {
			t.Fatalf("%s %s %s", tc.method, tc.path, tc.body)
		}
	}
	// Routes whose body is required say so with a 400 when it is missing.
	for _, rt := range routes {
		if strings.HasSuffix(rt.path, "/commit") || strings.HasSuffix(rt.path, "/release") || strings.HasSuffix(rt.path, "/arrive") {
			continue
		}
		wantProblem(t, raw(t, s, rt.method, rt.path, nil), 400, stockd.CodeInvalid)
	}
	if st := stockOf(t, s.Client, "A"); st.OnHand != 4 || st.Reserved != 1 {
		t.Errorf("malformed requests changed stock: %+v", st)
	}
	if r := must(s.Client.GetReservation(ctx, "held")); r.Status != stockd.StatusHeld {
		t.Errorf("malformed requests changed the reservation: %+v", r)
	}
}

// TestInvalidValuesAre422: well-formed requests with bad values are 422
// invalid_request, through the wire and the client.
func TestInvalidValuesAre422(t *testing.T) {
	limits := stockd.DefaultLimits
	limits.MaxLines = 3
	s := Start(t, Options{Engine: engine.Options{Limits: limits}})
	c := s.Client
	ConfigureLocations(t, c, "w1", "w2")
	receive(t, c, "r", "A", "w1", 5)
	must3(c.Reserve(ctx, stockd.Reserve{ID: "held", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}))
	cases := []struct{ method, path, body string }{
		{"POST", "/v1/receipts", `{"id":"r1","sku":"A","location":"w1","quantity":0}`},
		{"POST", "/v1/receipts", `{"id":"r1","sku":"A","location":"w1","quantity":-5}`},
		{"POST", "/v1/receipts", `{"id":"r1","sku":"A","location":"w1","quantity":10000000000}`},
		{"POST", "/v1/receipts", `{"id":"","sku":"A","location":"w1","quantity":1}`},
		{"POST", "/v1/receipts", `{"id":"r1","sku":"A\u200bB","location":"w1","quantity":1}`},
		{"POST", "/v1/receipts", `{"id":"r1","sku":" A","location":"w1","quantity":1}`},
		{"POST", "/v1/receipts", `{"id":"r1","sku":"A","location":"w1","quantity":1,"best_before":"2020-01-01"}`},
		{"POST", "/v1/receipts", `{"id":"r1","sku":"A","location":"w1","quantity":1,"best_before":"15/03/2027"}`},
		{"POST", "/v1/adjustments", `{"id":"a1","sku":"A","location":"w1","delta":0,"reason":"lost"}`},
		{"POST", "/v1/adjustments", `{"id":"a1","sku":"A","location":"w1","delta":1,"reason":"stolen"}`},
		{"POST", "/v1/counts", `{"id":"c1","sku":"A","location":"w1","on_hand":-1}`},
		{"POST", "/v1/counts", `{"id":"c1","sku":"A","location":"w1"}`},
		{"POST", "/v1/transfers", `{"id":"t1","sku":"A","from":"w1","to":"w2","quantity":0}`},
		{"POST", "/v1/transfers", `{"id":"t1","sku":"A","from":"w1","to":"w1","quantity":1}`},
		{"POST", "/v1/reservations", `{"id":"x","lines":[{"sku":"A","quantity":0}]}`},
		{"POST", "/v1/reservations", `{"id":"x","lines":[{"sku":"A","quantity":-1}]}`},
		{"POST", "/v1/reservations", `{"id":"x","lines":[]}`},
		{"POST", "/v1/reservations", `{"id":"x"}`},
		{"POST", "/v1/reservations", `{"id":"x","ttl":"soon","lines":[{"sku":"A","quantity":1}]}`},
		{"POST", "/v1/reservations", `{"id":"x","ttl":"-1m","lines":[{"sku":"A","quantity":1}]}`},
		{"POST", "/v1/reservations", `{"id":"x","ttl":"10000h","lines":[{"sku":"A","quantity":1}]}`},
		{"POST", "/v1/reservations", `{"id":"x","lines":[{"sku":"A","quantity":1},{"sku":"A","quantity":1}]}`},
		{"POST", "/v1/reservations", `{"id":"x","lines":[{"sku":"A","quantity":1},{"sku":"B","quantity":1},{"sku":"C","quantity":1},{"sku":"D","quantity":1}]}`},
		{"POST", "/v1/reservations/held/commit", `{"lines":[{"sku":"A","quantity":0}]}`},
		{"POST", "/v1/reservations/held/commit", `{"lines":[]}`},
		{"POST", "/v1/reservations/held/commit", `{"lines":[{"sku":"A","quantity":1},{"sku":"B","quantity":1},{"sku":"C","quantity":1},{"sku":"D","quantity":1}]}`},
		{"POST", "/v1/reservations/held/extend", `{"ttl":"0s"}`},
		{"POST", "/v1/reservations/held/extend", `{}`},
		{"POST", "/v1/reservations/held/extend", `{"ttl":"forever"}`},
		{"PUT", "/v1/locations/w1", `{"kind":"warehouse","priority":-1}`},
		{"PUT", "/v1/skus/A/config", `{"safety_stock":-1}`},
		{"POST", "/v1/batch", `{"operations":[]}`},
		{"GET", "/v1/skus/A/events?limit=0", ""},
		{"GET", "/v1/skus/A/events?after=x", ""},
		{"GET", "/v1/reservations", ""},
		{"GET", "/v1/availability", ""},
	}
	for _, tc := range cases {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		r := raw(t, s, tc.method, tc.path, body)
		wantProblem(t, r, 422, stockd.CodeInvalid)
		if t.Failed() {
			t.Fatalf("%s %s %s", tc.method, tc.path, tc.body)
		}
	}
	// Through the client: too many lines, quantity 0, negative.
	lines := []stockd.ReserveLine{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 1}, {SKU: "C", Quantity: 1}, {SKU: "D", Quantity: 1}}
	_, _, err := c.Reserve(ctx, stockd.Reserve{ID: "y", Lines: lines})
	if e := wantCode(t, err, stockd.CodeInvalid); client.StatusCode(e) != 422 || !strings.Contains(e.Message, "3") {
		t.Errorf("too many lines: %v (HTTP %d)", e, client.StatusCode(e))
	}
	_, _, err = c.Receive(ctx, stockd.ReceiveStock{ID: "q0", SKU: "A", Location: "w1", Quantity: 0})
	wantCode(t, err, stockd.CodeInvalid)
	_, _, err = c.Reserve(ctx, stockd.Reserve{ID: "q-", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: -1}}})
	wantCode(t, err, stockd.CodeInvalid)
	_, err = c.Extend(ctx, stockd.ExtendReservation{ID: "held"})
	wantCode(t, err, stockd.CodeInvalid)
	if st := stockOf(t, c, "A"); st.OnHand != 5 || st.Reserved != 1 {
		t.Errorf("invalid requests changed stock: %+v", st)
	}
}

// TestBodyTooLarge: a body over 1 MiB is refused with 413 body_too_large, and
// the limit is configurable.
func TestBodyTooLarge(t *testing.T) {
	s := Start(t, Options{})
	ConfigureLocations(t, s.Client, "w1")
	big := `{"id":"r","sku":"A","location":"w1","quantity":1,"lot":"` + strings.Repeat("x", 1<<20) + `"}`
	for _, path := range []string{"/v1/receipts", "/v1/reservations", "/v1/batch", "/v1/reservations/x/commit"} {
		wantProblem(t, raw(t, s, "POST", path, big), 413, stockd.CodeBodyTooLarge)
	}
	// Exactly at the limit is read (and then judged on its content).
	exact := `{"id":"r","sku":"A","location":"w1","quantity":1}` + strings.Repeat(" ", 1<<20-len(`{"id":"r","sku":"A","location":"w1","quantity":1}`))
	wantStatus(t, raw(t, s, "POST", "/v1/receipts", exact), 201)

	small := Start(t, Options{HTTP: http.Config{MaxBodyBytes: 100}})
	var lines []stockd.ReserveLine
	for i := range 10 {
		lines = append(lines, stockd.ReserveLine{SKU: "sku-" + strings.Repeat("x", i), Quantity: 1})
	}
	_, _, err := small.Client.Reserve(ctx, stockd.Reserve{ID: "big", Lines: lines})
	if e := wantCode(t, err, stockd.CodeBodyTooLarge); client.StatusCode(e) != 413 {
		t.Errorf("status = %d", client.StatusCode(e))
	}
}

// TestIdempotencyKeyOnCommitAndExtend: the Idempotency-Key header makes a
// commit or extension repeatable; the same key with another request is 422
// idempotency_mismatch.
func TestIdempotencyKeyOnCommitAndExtend(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	receive(t, c, "r", "A", "w1", 10)
	receive(t, c, "rb", "B", "w1", 10)
	must3(c.Reserve(ctx, stockd.Reserve{ID: "c1", TTL: time.Hour, Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 2}}}))

	// Extend with a key, repeat it: the same deadline both times.
	e1 := raw(t, s, "POST", "/v1/reservations/c1/extend", `{"ttl":"2h"}`, "Idempotency-Key", "ext-1")
	wantStatus(t, e1, 200)
	time.Sleep(5 * time.Millisecond)
	e2 := raw(t, s, "POST", "/v1/reservations/c1/extend", `{"ttl":"2h"}`, "Idempotency-Key", "ext-1")
	wantStatus(t, e2, 200)
	if !equalJSON(t, e1.Body, e2.Body) {
		t.Errorf("a repeated extend with the same key moved the deadline:\n%s\n%s", e1.Body, e2.Body)
	}
	wantProblem(t, raw(t, s, "POST", "/v1/reservations/c1/extend", `{"ttl":"3h"}`, "Idempotency-Key", "ext-1"), 422, stockd.CodeIdempotencyMismatch)
	_, err := c.Extend(ctx, stockd.ExtendReservation{ID: "c1", TTL: 3 * time.Hour, Key: "ext-1"})
	wantCode(t, err, stockd.CodeIdempotencyMismatch)
	again, err := c.Extend(ctx, stockd.ExtendReservation{ID: "c1", TTL: 2 * time.Hour, Key: "ext-1"})
	if err != nil {
		t.Fatalf("client extend replay: %v", err)
	}
	var first stockd.Reservation
	if err := json.Unmarshal(e1.Body, &first); err != nil {
		t.Fatal(err)
	}
	if !again.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("client replay of the extension moved the deadline: %v, first %v", again.ExpiresAt, first.ExpiresAt)
	}

	// Commit with a key, partially; a retry with the key answers the same;
	// the same key with another body is a mismatch.
	com := raw(t, s, "POST", "/v1/reservations/c1/commit", `{"lines":[{"sku":"A","quantity":1}]}`, "Idempotency-Key", "pay-1")
	wantStatus(t, com, 200)
	retry := raw(t, s, "POST", "/v1/reservations/c1/commit", `{"lines":[{"sku":"A","quantity":1}]}`, "Idempotency-Key", "pay-1")
	wantStatus(t, retry, 200)
	if !equalJSON(t, com.Body, retry.Body) {
		t.Errorf("commit retry differs:\n%s\n%s", com.Body, retry.Body)
	}
	wantProblem(t, raw(t, s, "POST", "/v1/reservations/c1/commit", `{"lines":[{"sku":"A","quantity":2}]}`, "Idempotency-Key", "pay-1"), 422, stockd.CodeIdempotencyMismatch)
	_, err = c.Commit(ctx, stockd.CommitReservation{ID: "c1", Key: "pay-1"})
	wantCode(t, err, stockd.CodeIdempotencyMismatch)
	if r, err := c.Commit(ctx, stockd.CommitReservation{ID: "c1", Key: "pay-1", Lines: []stockd.CommitLine{{SKU: "A", Quantity: 1}}}); err != nil || r.Status != stockd.StatusCommitted {
		t.Errorf("client commit replay = %+v, %v", r, err)
	}
}

// TestNotFound: every lookup of an unknown entity is 404 not_found.
func TestNotFound(t *testing.T) {
	s := Start(t, Options{})
	for _, p := range []string{
		"/v1/reservations/x", "/v1/transfers/x", "/v1/locations/x", "/v1/skus/x",
	} {
		wantProblem(t, raw(t, s, "GET", p, nil), 404, stockd.CodeNotFound)
	}
	for _, p := range []string{"/v1/reservations/x/commit", "/v1/reservations/x/release", "/v1/transfers/x/arrive"} {
		wantProblem(t, raw(t, s, "POST", p, nil), 404, stockd.CodeNotFound)
	}
	c := s.Client
	_, err := c.GetReservation(ctx, "x")
	wantCode(t, err, stockd.CodeNotFound)
	_, err = c.GetTransfer(ctx, "x")
	wantCode(t, err, stockd.CodeNotFound)
	_, err = c.Commit(ctx, stockd.CommitReservation{ID: "x"})
	wantCode(t, err, stockd.CodeNotFound)
	_, err = c.Release(ctx, stockd.ReleaseReservation{ID: "x"})
	wantCode(t, err, stockd.CodeNotFound)
	_, err = c.Extend(ctx, stockd.ExtendReservation{ID: "x", TTL: time.Minute})
	wantCode(t, err, stockd.CodeNotFound)
	_, err = c.SKU(ctx, "x", stockd.AsOf{})
	wantCode(t, err, stockd.CodeNotFound)
}

// TestOddIDsRoundTrip: ids with characters that need escaping in a path
// reach the server as one segment and come back unchanged.
func TestOddIDsRoundTrip(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	for _, id := range []string{"a?b", "a#b", "a%2Fb", "ümlaut", "a+b", "50%", "a;b", "...x", "a&sku=B", "a b"} {
		ConfigureLocations(t, c, "loc-"+id)
		receive(t, c, "r-"+id, id, "loc-"+id, 3)
		if st := stockOf(t, c, id); st.SKU != id || st.OnHand != 3 || st.Locations[0].Location != "loc-"+id {
			t.Errorf("SKU(%q) = %+v", id, st)
		}
		r, _, err := c.Reserve(ctx, stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: id, Quantity: 1}}})
		if err != nil || r.ID != id {
			t.Fatalf("Reserve(%q) = %+v, %v", id, r, err)
		}
		if r, err := c.GetReservation(ctx, id); err != nil || r.ID != id {
			t.Errorf("GetReservation(%q) = %+v, %v", id, r, err)
		}
		if r, err := c.Commit(ctx, stockd.CommitReservation{ID: id}); err != nil || r.Status != stockd.StatusCommitted {
			t.Errorf("Commit(%q) = %+v, %v", id, r, err)
		}
		// The receipt, its BackInStock, the hold and the commit.
		if p, err := c.History(ctx, id, stockd.HistoryQuery{}); err != nil || len(p.Events) != 4 {
			t.Errorf("History(%q) = %+v, %v", id, p, err)
		}
		if _, err := c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: id, Kind: stockd.KindStore}); err != nil {
			t.Errorf("ConfigureLocation(%q): %v", id, err)
		}
		if l, err := c.Location(ctx, id); err != nil || l.ID != id {
			t.Errorf("Location(%q) = %+v, %v", id, l, err)
		}
	}
}

// TestDotNamesAreRefused: a path segment of . or .. is removed by URL
// cleaning, so an entity named that way could never be addressed by its URL;
// such names are refused when they are first used.
func TestDotNamesAreRefused(t *testing.T) {
	s := Start(t, Options{})
	for _, id := range []string{".", ".."} {
		wantProblem(t, raw(t, s, "POST", "/v1/receipts", `{"id":"r-1","sku":"`+id+`","location":"w1","quantity":1}`), 422, stockd.CodeInvalid)
		wantProblem(t, raw(t, s, "POST", "/v1/receipts", `{"id":"`+id+`","sku":"A","location":"w1","quantity":1}`), 422, stockd.CodeInvalid)
		wantProblem(t, raw(t, s, "POST", "/v1/reservations", `{"id":"`+id+`","lines":[{"sku":"A","quantity":1}]}`), 422, stockd.CodeInvalid)
	}
}

// TestFieldNamesAreExact: bodies decode strictly, and field names are
// case-sensitive, although encoding/json alone would match {"QUANTITY":5} to
// quantity and let a body naming quantity twice in two spellings take the
// last.
func TestFieldNamesAreExact(t *testing.T) {
	s := Start(t, Options{})
	wantProblem(t, raw(t, s, "POST", "/v1/receipts", `{"ID":"r","SKU":"A","Location":"w1","QUANTITY":5}`), 400, stockd.CodeInvalid)
	wantProblem(t, raw(t, s, "POST", "/v1/receipts", `{"id":"r2","sku":"A","location":"w1","quantity":1,"Quantity":500}`), 400, stockd.CodeInvalid)
}

// TestAvailabilityRejectsBadSKUs: GET /v1/availability refuses a SKU no
// command would accept (empty, with a space at an end, with an invisible
// character) with 422 invalid_request: bad input gets a clear error (DESIGN
// §2.8).
func TestAvailabilityRejectsBadSKUs(t *testing.T) {
	s := Start(t, Options{})
	wantProblem(t, raw(t, s, "GET", "/v1/availability?sku=", nil), 422, stockd.CodeInvalid)
	wantProblem(t, raw(t, s, "GET", "/v1/availability?sku=a%20", nil), 422, stockd.CodeInvalid)
	wantProblem(t, raw(t, s, "GET", "/v1/availability?sku=a%E2%80%8Bb", nil), 422, stockd.CodeInvalid)
}
