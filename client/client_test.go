package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/client"
)

// These tests check the client against a scripted server: what it sends and
// how it reads answers, errors above all. The end-to-end tests in package e2e
// run it against the real server.

// recorded is one request the scripted server saw.
type recorded struct {
	method, path, rawPath, query, body string
	header                             nethttp.Header
}

// script answers every request with status, header and body, and records
// the requests.
type script struct {
	mu     sync.Mutex
	seen   []recorded
	status int
	header map[string]string
	body   string
}

func (s *script) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.seen = append(s.seen, recorded{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, string(b), r.Header.Clone()})
	status, header, body := s.status, s.header, s.body
	s.mu.Unlock()
	for k, v := range header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (s *script) last() recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[len(s.seen)-1]
}

func newScript(t *testing.T, status int, body string, header ...string) (*script, *client.Client) {
	s := &script{status: status, body: body, header: map[string]string{}}
	for i := 0; i+1 < len(header); i += 2 {
		s.header[header[i]] = header[i+1]
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, client.New(srv.URL+"/", client.WithKey("sk_test"), client.WithUserAgent("ua/1"))
}

var ctx = context.Background()

func TestRequestsAsSent(t *testing.T) {
	s, c := newScript(t, 201, `{"id":"r-1","sku":"A","location":"w1","quantity":10}`)
	r, created, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 10})
	if err != nil || !created || r.ID != "r-1" || r.Quantity != 10 {
		t.Fatalf("Receive = %+v, %v, %v", r, created, err)
	}
	got := s.last()
	if got.method != "POST" || got.path != "/v1/receipts" || got.body != `{"id":"r-1","sku":"A","location":"w1","quantity":10}` {
		t.Errorf("request = %+v", got)
	}
	if got.header.Get("Authorization") != "Bearer sk_test" || got.header.Get("User-Agent") != "ua/1" || got.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", got.header)
	}
	if got.header.Get("X-Actor") != "" {
		t.Errorf("the client sends no X-Actor: the server names the actor from the key")
	}

	s.status = 200
	if _, created, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-1"}); err != nil || created {
		t.Errorf("a 200 is a replay: created=%v err=%v", created, err)
	}

	// Count sends on_hand even when it is 0.
	c.Count(ctx, stockd.CountStock{ID: "c", SKU: "A", Location: "w1", OnHand: 0})
	if b := s.last().body; b != `{"id":"c","sku":"A","location":"w1","on_hand":0}` {
		t.Errorf("count body = %s", b)
	}
	// Durations are Go duration strings; a zero TTL is left to the server.
	s.body = `{"id":"x","status":"held"}`
	c.Reserve(ctx, stockd.Reserve{ID: "x", TTL: 15 * time.Minute, Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}})
	if b := s.last().body; b != `{"id":"x","ttl":"15m","lines":[{"sku":"A","quantity":1}]}` {
		t.Errorf("reserve body = %s", b)
	}
	c.Reserve(ctx, stockd.Reserve{ID: "x", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}})
	if b := s.last().body; strings.Contains(b, "ttl") {
		t.Errorf("reserve body without ttl = %s", b)
	}
	c.Extend(ctx, stockd.ExtendReservation{ID: "a b/c?", TTL: 90 * time.Second, Key: "k-1"})
	got = s.last()
	if got.rawPath != "/v1/reservations/a%20b%2Fc%3F/extend" || got.body != `{"ttl":"1m30s"}` || got.header.Get("Idempotency-Key") != "k-1" {
		t.Errorf("extend = %+v", got)
	}
	// A whole commit sends no body; a partial one sends the lines.
	c.Commit(ctx, stockd.CommitReservation{ID: "x"})
	if got := s.last(); got.body != "" || got.header.Get("Idempotency-Key") != "" || got.path != "/v1/reservations/x/commit" {
		t.Errorf("commit = %+v", got)
	}
	c.Commit(ctx, stockd.CommitReservation{ID: "x", Key: "pay", Lines: []stockd.CommitLine{{SKU: "A", Quantity: 1}}})
	if got := s.last(); got.body != `{"lines":[{"sku":"A","quantity":1}]}` || got.header.Get("Idempotency-Key") != "pay" {
		t.Errorf("partial commit = %+v", got)
	}
	c.Release(ctx, stockd.ReleaseReservation{ID: "x", Key: "rel"})
	if got := s.last(); got.body != "" || got.path != "/v1/reservations/x/release" || got.header.Get("Idempotency-Key") != "rel" {
		t.Errorf("release = %+v", got)
	}
	// Time travel and paging are query parameters.
	at := time.Date(2026, 11, 27, 10, 0, 0, 123, time.UTC)
	s.body = `{"sku":"A"}`
	c.SKU(ctx, "A", stockd.AsOf{Time: at, Position: 7})
	if q := s.last().query; q != "as_of=2026-11-27T10%3A00%3A00.000000123Z&position=7" {
		t.Errorf("SKU query = %s", q)
	}
	s.body = `{"events":[],"next":"12"}`
	page, err := c.History(ctx, "A", stockd.HistoryQuery{After: 5, Limit: 10})
	if err != nil || page.Next != 12 || page.Events == nil {
		t.Errorf("History = %+v, %v", page, err)
	}
	if q := s.last().query; q != "after=5&limit=10" {
		t.Errorf("History query = %s", q)
	}
	s.body = `{"items":[],"as_of":"2026-11-27T10:00:00Z","lag":{"events":3,"partitions":1}}`
	a, err := c.Availability(ctx, []string{"A", "B&C"})
	if err != nil || a.Lag.Events != 3 || a.Items == nil {
		t.Errorf("Availability = %+v, %v", a, err)
	}
	if q := s.last().query; q != "sku=A&sku=B%26C" {
		t.Errorf("Availability query = %s", q)
	}
}

func TestProblemBecomesError(t *testing.T) {
	_, c := newScript(t, 409, `{"type":"/problems/insufficient_stock","title":"Insufficient stock","status":409,"detail":"not enough stock of \"A\"","code":"insufficient_stock","lines":[{"sku":"A","requested":5,"available":2}]}`,
		"Content-Type", "application/problem+json")
	_, _, err := c.Reserve(ctx, stockd.Reserve{ID: "x"})
	var e *stockd.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not a *stockd.Error", err, err)
	}
	if e.Code != stockd.CodeInsufficientStock || e.Message != `not enough stock of "A"` || len(e.Lines) != 1 || e.Lines[0] != (stockd.Shortfall{SKU: "A", Requested: 5, Available: 2}) {
		t.Errorf("error = %+v", e)
	}
	if client.StatusCode(err) != 409 || client.Problem(err) == nil || client.Problem(err).Title != "Insufficient stock" {
		t.Errorf("status %d, problem %+v", client.StatusCode(err), client.Problem(err))
	}
	if _, ok := err.(*stockd.Error); !ok {
		t.Errorf("the error is not a *stockd.Error itself: %T", err)
	}
}

func TestNotHeldCarriesStatus(t *testing.T) {
	_, c := newScript(t, 409, `{"type":"t","title":"Reservation not held","status":409,"detail":"reservation \"x\" is expired","code":"reservation_not_held","reservation_status":"expired"}`,
		"Content-Type", "application/problem+json")
	_, err := c.Commit(ctx, stockd.CommitReservation{ID: "x"})
	var e *stockd.Error
	if !errors.As(err, &e) || e.Code != stockd.CodeNotHeld || e.Status != stockd.StatusExpired {
		t.Errorf("error = %+v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	_, c := newScript(t, 503, `{"type":"t","title":"Overloaded","status":503,"detail":"busy","code":"overloaded"}`,
		"Content-Type", "application/problem+json", "Retry-After", "2")
	_, err := c.GetReservation(ctx, "x")
	if stockd.ErrorCode(err) != stockd.CodeOverloaded || client.RetryAfter(err) != 2*time.Second {
		t.Errorf("error = %v, retry after %v", err, client.RetryAfter(err))
	}
	// 429 and 503 without problem details still say overloaded and
	// unavailable, with the hint, as an HTTP date too.
	when := time.Now().Add(10 * time.Second).UTC().Format(nethttp.TimeFormat)
	_, c = newScript(t, 429, "slow down", "Content-Type", "text/plain", "Retry-After", when)
	_, err = c.GetReservation(ctx, "x")
	if stockd.ErrorCode(err) != stockd.CodeOverloaded || client.RetryAfter(err) < 8*time.Second || client.RetryAfter(err) > 10*time.Second {
		t.Errorf("429: %v, retry after %v", err, client.RetryAfter(err))
	}
	_, c = newScript(t, 503, "<html>down for maintenance</html>", "Content-Type", "text/html", "Retry-After", "30")
	_, err = c.GetReservation(ctx, "x")
	if stockd.ErrorCode(err) != stockd.CodeUnavailable || client.RetryAfter(err) != 30*time.Second || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v, retry after %v", err, client.RetryAfter(err))
	}
}

func TestUnexpectedAnswers(t *testing.T) {
	_, c := newScript(t, 502, "<html>Bad Gateway</html>", "Content-Type", "text/html")
	_, err := c.Location(ctx, "w1")
	var e *stockd.Error
	if !errors.As(err, &e) || e.Code != stockd.CodeInternal || !strings.Contains(e.Message, "HTTP 502") || !strings.Contains(e.Message, "Bad Gateway") {
		t.Errorf("502 = %#v", err)
	}
	if client.StatusCode(err) != 502 || client.RetryAfter(err) != 0 {
		t.Errorf("status %d", client.StatusCode(err))
	}
	// A problem content type with a body that is not a problem.
	_, c = newScript(t, 400, `{"error":"nope"}`, "Content-Type", "application/problem+json")
	_, err = c.Location(ctx, "w1")
	if stockd.ErrorCode(err) != stockd.CodeInternal || !strings.Contains(err.Error(), "400") {
		t.Errorf("400 without code = %v", err)
	}
	// A success whose body is not the expected JSON.
	_, c = newScript(t, 200, `not json`)
	_, err = c.Location(ctx, "w1")
	if stockd.ErrorCode(err) != stockd.CodeInternal {
		t.Errorf("bad success body = %v", err)
	}
}

func TestUnreachableAndCancelled(t *testing.T) {
	c := client.New("http://127.0.0.1:1")
	_, err := c.Location(ctx, "w1")
	if stockd.ErrorCode(err) != stockd.CodeUnavailable || client.StatusCode(err) != 0 {
		t.Errorf("unreachable = %v", err)
	}
	block := make(chan struct{})
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = client.New(srv.URL).GetReservation(cctx, "x")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled = %v", err)
	}
}

func TestEventsDecode(t *testing.T) {
	_, c := newScript(t, 200, `{"events":[
		{"id":"0-1","type":"StockReceived","sku":"A","version":1,"partition":0,"position":1,"time":"2026-11-27T10:00:00Z","command_id":"r-1","actor":"bob","data":{"location":"w1","quantity":10}},
		{"id":"0-2","type":"ReservationReleased","sku":"A","version":2,"partition":0,"position":2,"time":"2026-11-27T10:00:01Z","data":{"reservation":"c","reason":"expired","quantity":2}},
		{"id":"0-3","type":"SomethingNew","sku":"A","version":3,"partition":0,"position":3,"time":"2026-11-27T10:00:02Z","data":{"x":1}}
	],"next":"3"}`)
	page, err := c.History(ctx, "A", stockd.HistoryQuery{})
	if err != nil || len(page.Events) != 3 || page.Next != 3 {
		t.Fatalf("History = %+v, %v", page, err)
	}
	if d, ok := page.Events[0].Data.(stockd.StockReceived); !ok || d.Quantity != 10 || page.Events[0].CommandID != "r-1" || page.Events[0].Actor != "bob" || page.Events[0].ID() != "0-1" {
		t.Errorf("event 0 = %+v", page.Events[0])
	}
	if d, ok := page.Events[1].Data.(stockd.ReservationReleased); !ok || d.Reason != stockd.ReleaseExpired || page.Events[1].Type() != stockd.TypeReservationReleased {
		t.Errorf("event 1 = %+v", page.Events[1])
	}
	if d, ok := page.Events[2].Data.(api.RawData); !ok || d.Name != "SomethingNew" || string(d.JSON) != `{"x":1}` {
		t.Errorf("event 2 = %+v", page.Events[2])
	}
}

func TestBatchResultError(t *testing.T) {
	_, c := newScript(t, 200, `{"results":[{"status":201,"body":{"id":"r"}},{"status":404,"problem":{"type":"t","title":"Not found","status":404,"detail":"nope","code":"not_found"}}]}`)
	op, err := client.BatchOp("receive", map[string]any{"id": "r"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Batch(ctx, nil)
	if err != nil || len(resp.Results) != 2 {
		t.Fatalf("Batch = %+v, %v", resp, err)
	}
	if client.ResultError(resp.Results[0]) != nil {
		t.Errorf("a 201 result is an error")
	}
	if e := client.ResultError(resp.Results[1]); stockd.ErrorCode(e) != stockd.CodeNotFound || client.StatusCode(e) != 404 {
		t.Errorf("404 result = %v", e)
	}
	var body map[string]any
	json.Unmarshal(op.Body, &body)
	if op.Op != "receive" || body["id"] != "r" {
		t.Errorf("BatchOp = %+v", op)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	s, c := newScript(t, 307, "", "Location", "/v1/reservations/other")
	_, err := c.Release(ctx, stockd.ReleaseReservation{ID: "x"})
	if stockd.ErrorCode(err) != stockd.CodeInternal || client.StatusCode(err) != 307 {
		t.Errorf("redirect = %v", err)
	}
	if len(s.seen) != 1 {
		t.Errorf("the redirect was followed: %+v", s.seen)
	}
	// Ids "." and ".." are escaped, so that routers do not clean them away.
	s.status, s.body = 200, `{"id":"."}`
	c.GetReservation(ctx, ".")
	c.GetReservation(ctx, "..")
	if got := s.seen[1].rawPath + " " + s.seen[2].rawPath; got != "/v1/reservations/%2E /v1/reservations/%2E%2E" {
		t.Errorf("dot ids sent as %s", got)
	}
}

func TestWithHTTPClient(t *testing.T) {
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		time.Sleep(200 * time.Millisecond)
	}))
	defer srv.Close()
	c := client.New(srv.URL, client.WithHTTPClient(&nethttp.Client{Timeout: 20 * time.Millisecond}))
	start := time.Now()
	_, err := c.Location(ctx, "w1")
	if err == nil || time.Since(start) > 150*time.Millisecond {
		t.Errorf("the http.Client's timeout was not used: %v after %v", err, time.Since(start))
	}
}
