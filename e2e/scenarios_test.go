package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/http"
)

// TestHoldsExpire: a hold with a short TTL becomes expired on its own, and
// its stock is available again; commit and extend are then refused as not
// held, with the status expired.
func TestHoldsExpire(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	receive(t, c, "r", "A", "w1", 5)
	r := raw(t, s, "POST", "/v1/reservations", `{"id":"short","ttl":"300ms","lines":[{"sku":"A","quantity":4}]}`)
	wantStatus(t, r, 201)
	must3(c.Reserve(ctx, stockd.Reserve{ID: "short2", TTL: 300 * time.Millisecond, Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}))
	if st := stockOf(t, c, "A"); st.Available != 0 {
		t.Fatalf("A while held = %+v", st)
	}
	eventually(t, 10*time.Second, "the holds expire", func() bool {
		a := must(c.GetReservation(ctx, "short"))
		b := must(c.GetReservation(ctx, "short2"))
		return a.Status == stockd.StatusExpired && b.Status == stockd.StatusExpired
	})
	if st := stockOf(t, c, "A"); st.Available != 5 || st.Reserved != 0 || st.OnHand != 5 {
		t.Errorf("A after expiry = %+v", st)
	}
	g := raw(t, s, "GET", "/v1/reservations/short", nil)
	if m := g.JSON(t); m["status"] != "expired" {
		t.Errorf("GET expired = %s", g.Body)
	}
	for _, op := range []string{"commit", "extend"} {
		body := any(nil)
		if op == "extend" {
			body = `{"ttl":"1m"}`
		}
		p := wantProblem(t, raw(t, s, "POST", "/v1/reservations/short/"+op, body), 409, stockd.CodeNotHeld)
		if p["reservation_status"] != "expired" {
			t.Errorf("%s of expired: reservation_status = %v", op, p["reservation_status"])
		}
	}
	_, err := c.Commit(ctx, stockd.CommitReservation{ID: "short2"})
	if e := wantCode(t, err, stockd.CodeNotHeld); e.Status != stockd.StatusExpired {
		t.Errorf("client commit of expired: status %q", e.Status)
	}
	// The history records the expiry as a release with reason expired.
	page := must(c.History(ctx, "A", stockd.HistoryQuery{}))
	var expired int
	for _, e := range page.Events {
		if d, ok := e.Data.(stockd.ReservationReleased); ok && d.Reason == stockd.ReleaseExpired {
			expired++
		}
	}
	if expired != 2 {
		t.Errorf("history has %d expiries, want 2: %+v", expired, page.Events)
	}
	// A replay of the expired reservation answers it as it is.
	again := raw(t, s, "POST", "/v1/reservations", `{"id":"short","ttl":"300ms","lines":[{"sku":"A","quantity":4}]}`)
	wantStatus(t, again, 200)
	if m := again.JSON(t); m["status"] != "expired" {
		t.Errorf("replay of expired = %s", again.Body)
	}
}

// TestPartialCommit: a commit naming one SKU commits that quantity; the rest
// of that line and every unnamed line are released, and the reservation
// shows the committed quantities.
func TestPartialCommit(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	receive(t, c, "ra", "A", "w1", 10)
	receive(t, c, "rb", "B", "w1", 10)
	receive(t, c, "rc", "C", "w1", 10)
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 3}, {SKU: "B", Quantity: 2}, {SKU: "C", Quantity: 4}}}))
	r := raw(t, s, "POST", "/v1/reservations/cart/commit", `{"lines":[{"sku":"A","quantity":1},{"sku":"C","quantity":4}]}`)
	wantStatus(t, r, 200)
	var res stockd.Reservation
	if err := json.Unmarshal(r.Body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != stockd.StatusCommitted {
		t.Fatalf("status = %s", res.Status)
	}
	want := map[string][2]int64{"A": {1, 3}, "B": {0, 2}, "C": {4, 4}}
	for _, l := range res.Lines {
		w := want[l.SKU]
		if l.Quantity != w[0] || l.Held != w[1] {
			t.Errorf("line %s = quantity %d held %d, want %d and %d", l.SKU, l.Quantity, l.Held, w[0], w[1])
		}
	}
	noNullLists(t, r.Body, "lines", "allocations")
	for sku, onHand := range map[string]int64{"A": 9, "B": 10, "C": 6} {
		if st := stockOf(t, c, sku); st.OnHand != onHand || st.Reserved != 0 || st.Available != onHand {
			t.Errorf("%s after partial commit = %+v, want on_hand %d", sku, st, onHand)
		}
	}
	// Committing more than held, or a SKU not in the cart, is refused and
	// changes nothing.
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart2", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 2}}}))
	_, err := c.Commit(ctx, stockd.CommitReservation{ID: "cart2", Lines: []stockd.CommitLine{{SKU: "A", Quantity: 3}}})
	if code := stockd.ErrorCode(err); code != stockd.CodeInvalid && code != stockd.CodeInsufficientStock {
		t.Errorf("commit of more than held: %v", err)
	}
	_, err = c.Commit(ctx, stockd.CommitReservation{ID: "cart2", Lines: []stockd.CommitLine{{SKU: "Z", Quantity: 1}}})
	if code := stockd.ErrorCode(err); code != stockd.CodeInvalid && code != stockd.CodeNotFound {
		t.Errorf("commit of a SKU not in the cart: %v", err)
	}
	if r := must(c.GetReservation(ctx, "cart2")); r.Status != stockd.StatusHeld {
		t.Errorf("refused commits changed the reservation: %+v", r)
	}
}

// TestTransfers: a transfer is checked against available stock (held units
// cannot leave), moves lots first-expiry-first-out into in_transit at the
// destination, and arrives once; a repeated arrival answers 200.
func TestTransfers(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1", "s1")
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: "A", Location: "w1", Quantity: 4, Lot: "late", BestBefore: "2099-12-01"}))
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "r2", SKU: "A", Location: "w1", Quantity: 4, Lot: "early", BestBefore: "2099-01-01"}))
	must3(c.Reserve(ctx, stockd.Reserve{ID: "hold", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 3, Location: "w1"}}}))

	p := wantProblem(t, raw(t, s, "POST", "/v1/transfers", `{"id":"t-1","sku":"A","from":"w1","to":"s1","quantity":6}`), 409, stockd.CodeInsufficientStock)
	if lines, _ := p["lines"].([]any); len(lines) != 1 || lines[0].(map[string]any)["available"] != 5.0 {
		t.Errorf("transfer shortfall = %v", p["lines"])
	}
	first := raw(t, s, "POST", "/v1/transfers", `{"id":"t-1","sku":"A","from":"w1","to":"s1","quantity":5}`)
	wantStatus(t, first, 201)
	var tr stockd.Transfer
	json.Unmarshal(first.Body, &tr)
	if tr.Status != stockd.TransferStatusInTransit || len(tr.Lots) != 2 || tr.Lots[0].Lot != "early" || tr.Lots[0].Quantity != 4 || tr.Lots[1].Lot != "late" || tr.Lots[1].Quantity != 1 {
		t.Errorf("transfer lots (FEFO) = %s", first.Body)
	}
	st := stockOf(t, c, "A")
	if st.OnHand != 3 || st.Reserved != 3 || st.Available != 0 || st.InTransit != 5 {
		t.Errorf("A in transit = %+v", st)
	}
	get := raw(t, s, "GET", "/v1/transfers/t-1", nil)
	wantStatus(t, get, 200)
	if !equalJSON(t, first.Body, get.Body) {
		t.Errorf("GET transfer = %s, POST %s", get.Body, first.Body)
	}

	arr := raw(t, s, "POST", "/v1/transfers/t-1/arrive", nil)
	wantStatus(t, arr, 200)
	if m := arr.JSON(t); m["status"] != "arrived" || m["arrived_at"] == nil {
		t.Errorf("arrive = %s", arr.Body)
	}
	again := raw(t, s, "POST", "/v1/transfers/t-1/arrive", nil)
	wantStatus(t, again, 200)
	if !equalJSON(t, arr.Body, again.Body) {
		t.Errorf("repeated arrive = %s, first %s", again.Body, arr.Body)
	}
	if again := must(c.ArriveTransfer(ctx, stockd.ArriveTransfer{ID: "t-1"})); again.Status != stockd.TransferStatusArrived {
		t.Errorf("client arrive replay = %+v", again)
	}
	st = stockOf(t, c, "A")
	if st.OnHand != 8 || st.InTransit != 0 || st.Available != 5 {
		t.Errorf("A after arrival = %+v", st)
	}
	for _, l := range st.Locations {
		if l.Location == "s1" && (l.OnHand != 5 || len(l.Lots) != 2) {
			t.Errorf("s1 after arrival = %+v (lots keep their dates)", l)
		}
	}
	// The arrived stock can be held at the destination.
	must3(c.Reserve(ctx, stockd.Reserve{ID: "at-s1", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 5, Location: "s1"}}}))
}

// TestLotsFEFO: commits consume lots first-expiry-first-out, undated stock
// last; used-up lots are not listed; best_before is listed per lot.
func TestLotsFEFO(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "u", SKU: "milk", Location: "w1", Quantity: 5}))
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "l2", SKU: "milk", Location: "w1", Quantity: 5, Lot: "L2", BestBefore: "2099-06-01"}))
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "l1", SKU: "milk", Location: "w1", Quantity: 5, Lot: "L1", BestBefore: "2099-03-01"}))
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart", Lines: []stockd.ReserveLine{{SKU: "milk", Quantity: 7}}}))
	must(c.Commit(ctx, stockd.CommitReservation{ID: "cart"}))
	st := stockOf(t, c, "milk")
	lots := map[string]stockd.LotView{}
	for _, l := range st.Locations[0].Lots {
		lots[l.Lot] = l
	}
	if _, ok := lots["L1"]; ok {
		t.Errorf("used-up lot L1 still listed: %+v", st.Locations[0].Lots)
	}
	if lots["L2"].Quantity != 3 || lots["L2"].BestBefore != "2099-06-01" || lots[""].Quantity != 5 || lots[""].BestBefore != "" {
		t.Errorf("lots after FEFO commit of 7 = %+v", st.Locations[0].Lots)
	}
	// The commit event says which lots were consumed.
	page := must(c.History(ctx, "milk", stockd.HistoryQuery{}))
	last := page.Events[len(page.Events)-1]
	d, ok := last.Data.(stockd.ReservationCommitted)
	if !ok || len(d.Lots) != 2 || d.Lots[0].Lot != "L1" || d.Lots[0].Quantity != 5 || d.Lots[1].Lot != "L2" || d.Lots[1].Quantity != 2 {
		t.Errorf("commit event = %T %+v", last.Data, last.Data)
	}
}

// TestReceiptPastBestBeforeIsRefused: a receipt whose best-before date has
// already passed would expire the moment it arrived (its stock used to vanish
// at once after a 201); it is refused with 422 invalid_request saying so, and
// changes nothing. The same id with a good date is then accepted: only
// accepted commands are remembered. (The engine's tests show a lot leaving
// stock by a LotExpired event when its day ends.)
func TestReceiptPastBestBeforeIsRefused(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "new", SKU: "ham", Location: "w1", Quantity: 2}))
	p := wantProblem(t, raw(t, s, "POST", "/v1/receipts", `{"id":"old","sku":"ham","location":"w1","quantity":5,"lot":"L","best_before":"2018-12-31"}`), 422, stockd.CodeInvalid)
	if d, _ := p["detail"].(string); d != "best_before 2018-12-31 has already passed: the lot would expire at once" {
		t.Errorf("detail = %q", d)
	}
	if st := stockOf(t, c, "ham"); st.OnHand != 2 {
		t.Errorf("ham = %+v after a refused receipt", st)
	}
	must3(c.Receive(ctx, stockd.ReceiveStock{ID: "old", SKU: "ham", Location: "w1", Quantity: 5, Lot: "L", BestBefore: "2099-12-31"}))
	if st := stockOf(t, c, "ham"); st.OnHand != 7 {
		t.Errorf("ham = %+v", st)
	}
}

// TestUnknownLocationIsRefused: a receipt, adjustment, count, transfer or
// reservation line naming a location never configured is refused with 422
// unknown_location, saying how to configure it, and changes nothing; once the
// location is configured the same request is accepted.
func TestUnknownLocationIsRefused(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	receive(t, c, "r1", "A", "w1", 5)
	for _, tc := range []struct{ path, body string }{
		{"/v1/receipts", `{"id":"r-9","sku":"A","location":"w9","quantity":10}`},
		{"/v1/adjustments", `{"id":"a-9","sku":"A","location":"w9","delta":2,"reason":"found"}`},
		{"/v1/counts", `{"id":"c-9","sku":"A","location":"w9","on_hand":7}`},
		{"/v1/transfers", `{"id":"t-9","sku":"A","from":"w1","to":"w9","quantity":1}`},
		{"/v1/reservations", `{"id":"cart-9","lines":[{"sku":"A","quantity":1,"location":"w9"}]}`},
	} {
		p := wantProblem(t, raw(t, s, "POST", tc.path, tc.body), 422, stockd.CodeUnknownLocation)
		if d, _ := p["detail"].(string); d != `location "w9" is not configured: PUT /v1/locations/w9 first` {
			t.Errorf("%s: detail = %q", tc.path, d)
		}
	}
	if st := stockOf(t, c, "A"); st.OnHand != 5 || st.Reserved != 0 || len(st.Locations) != 1 {
		t.Errorf("A = %+v after refused commands", st)
	}
	ConfigureLocations(t, c, "w9")
	wantStatus(t, raw(t, s, "POST", "/v1/receipts", `{"id":"r-9","sku":"A","location":"w9","quantity":10}`), 201)
}

// TestAsOf: GET /v1/skus/{sku}?as_of= and ?position= show the state at a
// past moment.
func TestAsOf(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	r1 := receive(t, c, "r1", "A", "w1", 10)
	time.Sleep(10 * time.Millisecond)
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 4}}}))
	time.Sleep(10 * time.Millisecond)
	r2 := receive(t, c, "r2", "A", "w1", 5)

	past := must(c.SKU(ctx, "A", stockd.AsOf{Time: r1.Time}))
	if past.OnHand != 10 || past.Reserved != 0 {
		t.Errorf("as of r1 = %+v", past)
	}
	mid := must(c.SKU(ctx, "A", stockd.AsOf{Time: r2.Time.Add(-time.Millisecond)}))
	if mid.OnHand != 10 || mid.Reserved != 4 || mid.Available != 6 {
		t.Errorf("as of before r2 = %+v", mid)
	}
	byPos := must(c.SKU(ctx, "A", stockd.AsOf{Position: r1.Position}))
	if byPos.OnHand != 10 || byPos.Reserved != 0 {
		t.Errorf("as of position %d = %+v", r1.Position, byPos)
	}
	now := stockOf(t, c, "A")
	if now.OnHand != 15 || now.Reserved != 4 {
		t.Errorf("now = %+v", now)
	}
	// On the wire, with RFC 3339 (seconds and nanoseconds).
	r := raw(t, s, "GET", "/v1/skus/A?as_of="+r1.Time.Format(time.RFC3339Nano), nil)
	wantStatus(t, r, 200)
	if m := r.JSON(t); m["on_hand"] != 10.0 {
		t.Errorf("as_of on the wire = %s", r.Body)
	}
	noNullLists(t, r.Body, "locations", "lots", "holds")
	before := r1.Time.Add(-time.Hour).UTC().Format(time.RFC3339)
	wantProblem(t, raw(t, s, "GET", "/v1/skus/A?as_of="+before, nil), 404, stockd.CodeNotFound)
	_, err := c.SKU(ctx, "A", stockd.AsOf{Time: r1.Time.Add(-time.Hour)})
	wantCode(t, err, stockd.CodeNotFound)
}

// TestHistoryPaging: GET /v1/skus/{sku}/events pages with limit and the next
// cursor; the page after the last is empty and keeps the cursor.
func TestHistoryPaging(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	for i := range 5 {
		receive(t, c, fmt.Sprintf("r%d", i), "A", "w1", int64(i+1))
	}
	var seen []uint64
	after := ""
	for pages := 0; ; pages++ {
		path := "/v1/skus/A/events?limit=2"
		if after != "" {
			path += "&after=" + after
		}
		r := raw(t, s, "GET", path, nil)
		wantStatus(t, r, 200)
		noNullLists(t, r.Body, "events")
		var page struct {
			Events []map[string]any `json:"events"`
			Next   string           `json:"next"`
		}
		json.Unmarshal(r.Body, &page)
		if len(page.Events) == 0 {
			if page.Next != after {
				t.Errorf("empty page next = %q, want %q", page.Next, after)
			}
			break
		}
		if len(page.Events) > 2 {
			t.Fatalf("page of %d events with limit 2", len(page.Events))
		}
		for _, e := range page.Events {
			hasKeys(t, "event", e, "id", "type", "sku", "version", "time", "data")
			// The first receipt is followed by A's BackInStock.
			want := "StockReceived"
			if e["version"] == 2.0 {
				want = "BackInStock"
			}
			if e["type"] != want || e["sku"] != "A" || e["command_id"] == "" {
				t.Errorf("event = %v", e)
			}
			seen = append(seen, uint64(e["version"].(float64)))
		}
		after = page.Next
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(seen) != "[1 2 3 4 5 6]" {
		t.Errorf("versions = %v", seen)
	}
	// Through the client.
	p1 := must(c.History(ctx, "A", stockd.HistoryQuery{Limit: 3}))
	p2 := must(c.History(ctx, "A", stockd.HistoryQuery{After: p1.Next, Limit: 3}))
	p3 := must(c.History(ctx, "A", stockd.HistoryQuery{After: p2.Next, Limit: 3}))
	if len(p1.Events) != 3 || len(p2.Events) != 3 || len(p3.Events) != 0 || p1.Next != 3 || p2.Next != 6 || p3.Next != 6 {
		t.Errorf("client pages: %d (next %d), %d (next %d), %d (next %d)", len(p1.Events), p1.Next, len(p2.Events), p2.Next, len(p3.Events), p3.Next)
	}
	if d, ok := p1.Events[0].Data.(stockd.StockReceived); !ok || d.Quantity != 1 || d.Location != "w1" || p1.Events[0].CommandID != "r0" {
		t.Errorf("decoded event = %+v", p1.Events[0])
	}
	// The history of a SKU without events is an empty list.
	empty := raw(t, s, "GET", "/v1/skus/none/events", nil)
	wantStatus(t, empty, 200)
	noNullLists(t, empty.Body, "events")
	// Without keys no one is named: the actor is "anonymous", and an
	// X-Actor header a client adds is not written into the audit trail.
	res := raw(t, s, "POST", "/v1/receipts", `{"id":"by-mallory","sku":"A","location":"w1","quantity":1}`, "X-Actor", "alice")
	wantStatus(t, res, 201)
	page := must(c.History(ctx, "A", stockd.HistoryQuery{After: 6}))
	if len(page.Events) != 1 || page.Events[0].Actor != "anonymous" {
		t.Errorf("actor = %+v, want anonymous whatever X-Actor says", page.Events)
	}
}

// TestBatch: POST /v1/batch answers one result per operation, in order, with
// mixed statuses.
func TestBatch(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	ConfigureLocations(t, c, "w1", "w2", "w3")
	receive(t, c, "seed", "A", "w1", 5)
	must3(c.Reserve(ctx, stockd.Reserve{ID: "held", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}))
	must3(c.Transfer(ctx, stockd.TransferStock{ID: "tr", SKU: "A", From: "w1", To: "w2", Quantity: 1}))
	body := `{"operations":[
		{"op":"receive","body":{"id":"b-1","sku":"B","location":"w1","quantity":3}},
		{"op":"receive","body":{"id":"seed","sku":"A","location":"w1","quantity":5}},
		{"op":"receive","body":{"id":"seed","sku":"A","location":"w1","quantity":6}},
		{"op":"reserve","body":{"id":"big","lines":[{"sku":"A","quantity":100}]}},
		{"op":"reserve","body":{"id":"small","lines":[{"sku":"A","quantity":1}]}},
		{"op":"commit","body":{"id":"nope"}},
		{"op":"commit","idempotency_key":"k1","body":{"id":"held"}},
		{"op":"explode","body":{}},
		{"op":"receive","body":{"id":"q0","sku":"A","location":"w1","quantity":0}},
		{"op":"adjust","body":{"id":"adj","sku":"A","location":"w1","delta":1,"reason":"found"}},
		{"op":"count","body":{"id":"cnt","sku":"C","location":"w1","on_hand":4}},
		{"op":"transfer","body":{"id":"tr2","sku":"A","from":"w1","to":"w3","quantity":1}},
		{"op":"arrive","body":{"id":"tr"}},
		{"op":"extend","body":{"id":"nope","ttl":"1m"}},
		{"op":"release","body":{"id":"nope"}},
		{"op":"receive","body":{"id":"x","bogus":true}}
	]}`
	r := raw(t, s, "POST", "/v1/batch", body)
	wantStatus(t, r, 200)
	noNullLists(t, r.Body, "results")
	var resp struct {
		Results []struct {
			Status  int             `json:"status"`
			Body    json.RawMessage `json:"body"`
			Problem map[string]any  `json:"problem"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.Body, &resp); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		status int
		code   stockd.Code
	}{
		{201, ""}, {200, ""}, {422, stockd.CodeIdempotencyMismatch}, {409, stockd.CodeInsufficientStock},
		{201, ""}, {404, stockd.CodeNotFound}, {200, ""}, {400, stockd.CodeInvalid}, {422, stockd.CodeInvalid},
		{201, ""}, {201, ""}, {201, ""}, {200, ""}, {404, stockd.CodeNotFound}, {404, stockd.CodeNotFound},
		{400, stockd.CodeInvalid},
	}
	if len(resp.Results) != len(want) {
		t.Fatalf("%d results for %d operations: %s", len(resp.Results), len(want), r.Body)
	}
	for i, w := range want {
		got := resp.Results[i]
		if got.Status != w.status {
			t.Errorf("result %d: status %d, want %d: %s / %v", i, got.Status, w.status, got.Body, got.Problem)
			continue
		}
		if w.code == "" {
			if got.Problem != nil || len(got.Body) == 0 {
				t.Errorf("result %d: want a body, got %s / %v", i, got.Body, got.Problem)
			}
			continue
		}
		if got.Problem == nil || got.Problem["code"] != string(w.code) || got.Problem["status"] != float64(w.status) {
			t.Errorf("result %d: problem %v, want code %s", i, got.Problem, w.code)
		}
		for _, f := range []string{"type", "title", "detail"} {
			if s, _ := got.Problem[f].(string); s == "" {
				t.Errorf("result %d: problem without %s: %v", i, f, got.Problem)
			}
		}
	}
	if lines, _ := resp.Results[3].Problem["lines"].([]any); len(lines) != 1 {
		t.Errorf("insufficient stock in a batch without lines: %v", resp.Results[3].Problem)
	}

	// Through the client.
	op1 := must(client.BatchOp("receive", api.ReceiptRequest{ID: "b-2", SKU: "B", Location: "w1", Quantity: 1}))
	op2 := must(client.BatchOp("reserve", api.ReservationRequest{ID: "b-big", Lines: []stockd.ReserveLine{{SKU: "B", Quantity: 1000}}}))
	out := must(c.Batch(ctx, []api.BatchOperation{op1, op2}))
	if len(out.Results) != 2 || out.Results[0].Status != 201 || client.ResultError(out.Results[0]) != nil {
		t.Fatalf("client batch = %+v", out)
	}
	e := wantCode(t, client.ResultError(out.Results[1]), stockd.CodeInsufficientStock)
	if len(e.Lines) != 1 || e.Lines[0].SKU != "B" {
		t.Errorf("batch shortfall = %+v", e.Lines)
	}
	// A batch over the limit is refused whole.
	small := Start(t, Options{HTTP: http.Config{MaxBatch: 2}})
	_, err := small.Client.Batch(ctx, []api.BatchOperation{op1, op1, op1})
	wantCode(t, err, stockd.CodeInvalid)
	_, err = small.Client.Batch(ctx, nil)
	wantCode(t, err, stockd.CodeInvalid)
	_, err = small.Client.SKU(ctx, "B", stockd.AsOf{})
	wantCode(t, err, stockd.CodeNotFound) // the refused batch received nothing
}

// TestOverload: with an inbox of one request per partition, a burst of
// concurrent requests gets some 503 overloaded answers with Retry-After, and
// every answer is one of created, insufficient stock or overloaded.
func TestOverload(t *testing.T) {
	s := Start(t, Options{Partitions: 1, Engine: engine.Options{InboxSize: 1}})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	receive(t, c, "r", "hot", "w1", 1000)
	const callers = 400
	var mu sync.Mutex
	counts := map[string]int{}
	var retryHeader, retryHint bool
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id := "c-" + strconv.Itoa(i)
			var kind string
			if i%2 == 0 {
				r := raw(t, s, "POST", "/v1/reservations", `{"id":"`+id+`","lines":[{"sku":"hot","quantity":1}]}`)
				kind = strconv.Itoa(r.Status)
				if r.Status == 503 {
					m := wantProblem(t, r, 503, stockd.CodeOverloaded)
					kind += " " + m["code"].(string)
					mu.Lock()
					retryHeader = retryHeader || r.Header.Get("Retry-After") != ""
					mu.Unlock()
					if r.Header.Get("Retry-After") == "" {
						t.Errorf("503 without Retry-After")
					}
				}
			} else {
				_, _, err := c.Reserve(ctx, stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: "hot", Quantity: 1}}})
				kind = "client " + string(stockd.ErrorCode(err))
				if stockd.IsCode(err, stockd.CodeOverloaded) {
					mu.Lock()
					retryHint = retryHint || client.RetryAfter(err) > 0
					mu.Unlock()
				}
			}
			mu.Lock()
			counts[kind]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	for kind, n := range counts {
		switch kind {
		case "201", "503 overloaded", "client ", "client overloaded":
		default:
			t.Errorf("%d answers of kind %q", n, kind)
		}
	}
	if counts["503 overloaded"]+counts["client overloaded"] == 0 {
		t.Errorf("no request was refused as overloaded: %v", counts)
	}
	if counts["503 overloaded"] > 0 && !retryHeader {
		t.Errorf("no Retry-After on 503")
	}
	if counts["client overloaded"] > 0 && !retryHint {
		t.Errorf("client.RetryAfter gave no hint for overloaded")
	}
	t.Logf("answers: %v", counts)
	// Every accepted reservation holds exactly one unit.
	accepted := counts["201"] + counts["client "]
	if st := stockOf(t, c, "hot"); st.Reserved != int64(accepted) {
		t.Errorf("reserved %d, accepted %d", st.Reserved, accepted)
	}
}

// TestReplaysSurviveRestart: after the server, engine and store are closed
// and reopened on the same directory, every id replays with 200 and the same
// entity, a reuse with another body is still a mismatch, and an extension's
// Idempotency-Key is still remembered.
func TestReplaysSurviveRestart(t *testing.T) {
	s := Start(t, Options{})
	ConfigureLocations(t, s.Client, "w1", "s1")
	bodies := []struct{ path, body, other string }{
		{"/v1/receipts", `{"id":"r-1","sku":"A","location":"w1","quantity":10,"lot":"L1","best_before":"2099-03-15"}`,
			`{"id":"r-1","sku":"A","location":"w1","quantity":9,"lot":"L1","best_before":"2099-03-15"}`},
		{"/v1/adjustments", `{"id":"adj-1","sku":"A","location":"w1","delta":-2,"reason":"damaged"}`,
			`{"id":"adj-1","sku":"A","location":"w1","delta":-3,"reason":"damaged"}`},
		{"/v1/counts", `{"id":"c-1","sku":"B","location":"w1","on_hand":7}`,
			`{"id":"c-1","sku":"B","location":"w1","on_hand":6}`},
		{"/v1/transfers", `{"id":"t-1","sku":"A","from":"w1","to":"s1","quantity":3}`,
			`{"id":"t-1","sku":"A","from":"w1","to":"s1","quantity":2}`},
		{"/v1/reservations", `{"id":"cart-1","ttl":"1h","customer":"c-9","lines":[{"sku":"A","quantity":2},{"sku":"B","quantity":1}]}`,
			`{"id":"cart-1","ttl":"1h","customer":"c-9","lines":[{"sku":"A","quantity":1}]}`},
		{"/v1/reservations", `{"id":"cart-2","ttl":"1h","lines":[{"sku":"A","quantity":1}]}`,
			`{"id":"cart-2","ttl":"2h","lines":[{"sku":"A","quantity":1}]}`},
	}
	firsts := make([][]byte, len(bodies))
	for i, b := range bodies {
		r := raw(t, s, "POST", b.path, b.body)
		wantStatus(t, r, 201)
		firsts[i] = r.Body
	}
	ext := raw(t, s, "POST", "/v1/reservations/cart-1/extend", `{"ttl":"2h"}`, "Idempotency-Key", "ext-k")
	wantStatus(t, ext, 200)
	wantStatus(t, raw(t, s, "POST", "/v1/reservations/cart-2/commit", nil), 200)
	before := stockOf(t, s.Client, "A")

	s2 := s.Restart(t)
	for i, b := range bodies {
		r := raw(t, s2, "POST", b.path, b.body)
		wantStatus(t, r, 200)
		if i == 5 {
			if m := r.JSON(t); m["status"] != "committed" {
				t.Errorf("replay of committed cart after restart = %s", r.Body)
			}
			continue
		}
		if i == 4 {
			var a, b stockd.Reservation
			json.Unmarshal(firsts[i], &a)
			json.Unmarshal(r.Body, &b)
			if b.Status != stockd.StatusHeld || len(b.Lines) != 2 || !b.ExpiresAt.Equal(must(time.Parse(time.RFC3339Nano, ext.JSON(t)["expires_at"].(string)))) {
				t.Errorf("replay of held cart after restart = %s", r.Body)
			}
			continue
		}
		if !equalJSON(t, firsts[i], r.Body) {
			t.Errorf("%s replay after restart differs:\nbefore %s\nafter  %s", b.path, firsts[i], r.Body)
		}
		wantProblem(t, raw(t, s2, "POST", b.path, b.other), 422, stockd.CodeIdempotencyMismatch)
	}
	wantProblem(t, raw(t, s2, "POST", bodies[4].path, bodies[4].other), 422, stockd.CodeIdempotencyMismatch)
	wantProblem(t, raw(t, s2, "POST", bodies[5].path, bodies[5].other), 422, stockd.CodeIdempotencyMismatch)

	ext2 := raw(t, s2, "POST", "/v1/reservations/cart-1/extend", `{"ttl":"2h"}`, "Idempotency-Key", "ext-k")
	wantStatus(t, ext2, 200)
	if !equalJSON(t, ext.Body, ext2.Body) {
		t.Errorf("extension replay after restart moved the deadline:\nbefore %s\nafter  %s", ext.Body, ext2.Body)
	}
	wantProblem(t, raw(t, s2, "POST", "/v1/reservations/cart-1/extend", `{"ttl":"3h"}`, "Idempotency-Key", "ext-k"), 422, stockd.CodeIdempotencyMismatch)
	after := stockOf(t, s2.Client, "A")
	if after.OnHand != before.OnHand || after.Reserved != before.Reserved || after.InTransit != before.InTransit {
		t.Errorf("replays after restart changed stock: before %+v, after %+v", before, after)
	}
	// Holds still expire after a restart.
	must3(s2.Client.Reserve(ctx, stockd.Reserve{ID: "brief", TTL: 200 * time.Millisecond, Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}))
	s3 := s2.Restart(t)
	eventually(t, 10*time.Second, "a hold expires across a restart", func() bool {
		return must(s3.Client.GetReservation(ctx, "brief")).Status == stockd.StatusExpired
	})
}

// TestAvailabilityReadModel covers GET /v1/availability and
// GET /v1/reservations?customer=: eventually consistent, fresh within a
// moment, lists as arrays, and freshness reported.
func TestAvailabilityReadModel(t *testing.T) {
	s := Start(t, Options{})
	if !s.HasReadModel {
		t.Skip("package readmodel is not wired in: availability is not served")
	}
	c := s.Client
	must(c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	ConfigureLocations(t, c, "s1")
	receive(t, c, "ra", "A", "w1", 10)
	receive(t, c, "rb", "B", "s1", 4)
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart", Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 3}}}))
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart2", Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: "B", Quantity: 1}}}))
	eventually(t, 10*time.Second, "availability catches up", func() bool {
		a := must(c.Availability(ctx, []string{"A", "B", "none"}))
		return len(a.Items) == 3 && a.Items[0].Available == 7 && a.Items[1].Available == 3
	})
	a := must(c.Availability(ctx, []string{"A", "B", "none"}))
	if a.Items[0].SKU != "A" || len(a.Items[0].Locations) != 1 || a.Items[0].Locations[0].Location != "w1" || a.Items[2].Available != 0 || a.AsOf.IsZero() {
		t.Errorf("availability = %+v", a)
	}
	r := raw(t, s, "GET", "/v1/availability?sku=A&sku=none", nil)
	wantStatus(t, r, 200)
	m := r.JSON(t)
	hasKeys(t, "availability", m, "items", "as_of")
	noNullLists(t, r.Body, "items", "locations")
	item := m["items"].([]any)[0].(map[string]any)
	hasKeys(t, "item", item, "sku", "available", "locations")
	loc := item["locations"].([]any)[0].(map[string]any)
	hasKeys(t, "location", loc, "location", "available")

	eventually(t, 10*time.Second, "reservations by customer catch up", func() bool {
		return len(must(c.CustomerReservations(ctx, stockd.CustomerQuery{Customer: "c-9", Limit: 10})).Items) == 2
	})
	rs := must(c.CustomerReservations(ctx, stockd.CustomerQuery{Customer: "c-9", Limit: 1}))
	if len(rs.Items) != 1 || rs.Items[0].ID != "cart2" {
		t.Errorf("newest reservation of c-9 = %+v", rs.Items)
	}
	r = raw(t, s, "GET", "/v1/reservations?customer=nobody", nil)
	wantStatus(t, r, 200)
	noNullLists(t, r.Body, "items")

	// Without a read model the routes say so with 503.
	bare := Start(t, Options{NoReadModel: true})
	_, err := bare.Client.Availability(ctx, []string{"A"})
	wantCode(t, err, stockd.CodeUnavailable)
	wantProblem(t, raw(t, bare, "GET", "/v1/availability?sku=A", nil), 503, stockd.CodeUnavailable)
	wantProblem(t, raw(t, bare, "GET", "/v1/reservations?customer=c", nil), 503, stockd.CodeUnavailable)
}
