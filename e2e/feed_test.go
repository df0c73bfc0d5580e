package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/http"
)

// sseMessage is one message of a Server-Sent Events stream.
type sseMessage struct {
	event, id, data string
	comment         bool
}

// sseReader reads a stream's messages.
type sseReader struct{ r *bufio.Reader }

func (s sseReader) next() (sseMessage, error) {
	var m sseMessage
	fields := 0
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if fields == 0 && !m.comment {
				continue
			}
			return m, nil
		}
		if strings.HasPrefix(line, ":") {
			m.comment = true
			continue
		}
		k, v, _ := strings.Cut(line, ": ")
		fields++
		switch k {
		case "event":
			m.event = v
		case "id":
			m.id = v
		case "data":
			m.data = v
		}
	}
}

// openStream starts GET /v1/feed as an event stream.
func openStream(t *testing.T, ctx context.Context, s *Server, query string, header ...string) (*nethttp.Response, sseReader) {
	t.Helper()
	req := must(nethttp.NewRequestWithContext(ctx, "GET", s.URL+"/v1/feed"+query, nil))
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, sseReader{bufio.NewReader(resp.Body)}
}

// nextEvent skips comments and ids alone.
func (s sseReader) nextEvent(t *testing.T) (sseMessage, api.EventJSON) {
	t.Helper()
	for {
		m, err := s.next()
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if m.data == "" {
			continue
		}
		var ej api.EventJSON
		if err := json.Unmarshal([]byte(m.data), &ej); err != nil {
			t.Fatalf("data %q: %v", m.data, err)
		}
		if m.event != ej.Type || m.id == "" {
			t.Fatalf("event %q, id %q for a %s", m.event, m.id, ej.Type)
		}
		return m, ej
	}
}

// TestFeedPagesOverHTTP follows the feed through the client and checks the
// wire shape of a page.
func TestFeedPagesOverHTTP(t *testing.T) {
	s := Start(t, Options{Partitions: 8})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	for i := range 30 {
		receive(t, c, fmt.Sprintf("r-%d", i), fmt.Sprintf("S%d", i%7), "w1", 1)
	}
	var got []stockd.Event
	for q := (stockd.FeedQuery{Limit: 4}); ; {
		p := must(c.FeedPage(ctx, q))
		for _, e := range p.Events {
			if !e.Type().IsSignal() { // the first receipt of each SKU also says BackInStock
				got = append(got, e)
			}
		}
		if len(p.Events) == 0 {
			break
		}
		q.After = p.Next
	}
	if len(got) != 31 {
		t.Fatalf("%d events, want 31", len(got))
	}
	r := raw(t, s, "GET", "/v1/feed?limit=2&type=StockReceived&sku_prefix=S1", nil)
	wantStatus(t, r, 200)
	m := r.JSON(t)
	evs := m["events"].([]any)
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	hasKeys(t, "feed event", evs[0].(map[string]any), "id", "type", "sku", "version", "partition", "position", "time", "data")
	if next, _ := m["next"].(string); next == "" {
		t.Fatal("no next")
	}
	wantProblem(t, raw(t, s, "GET", "/v1/feed?after=bogus", nil), 422, stockd.CodeInvalid)
	wantProblem(t, raw(t, s, "GET", "/v1/feed?type=SagaSettled", nil), 422, stockd.CodeInvalid)
	wantProblem(t, raw(t, s, "GET", "/v1/feed?type=Nope", nil), 422, stockd.CodeInvalid)
	wantProblem(t, raw(t, s, "GET", "/v1/feed", nil, "Accept", "text/event-stream", "Last-Event-ID", "bogus"), 422, stockd.CodeInvalid)
}

// TestSSEFollowerSeesEventsAsTheyAreAppended: the client's follower, started
// before the writes, sees every event in order as the writers append them.
func TestSSEFollowerSeesEventsAsTheyAreAppended(t *testing.T) {
	s := Start(t, Options{Partitions: 8})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	start := must(c.FeedPage(ctx, stockd.FeedQuery{After: "now"})).Next

	const writers, each = 4, 25
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan stockd.Event, writers*each)
	done := make(chan error, 1)
	go func() {
		done <- c.FollowFeed(fctx, stockd.FeedQuery{After: start}, client.FollowOptions{}, func(e stockd.Event, cursor string) error {
			if cursor == "" {
				return errors.New("an event without a cursor")
			}
			got <- e
			return nil
		})
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("r-%d-%d", w, i), SKU: fmt.Sprintf("S%d", w), Location: "w1", Quantity: 1}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	last := map[string]uint64{}
	seen := map[string]bool{}
	for range writers * each {
		select {
		case e := <-got:
			if seen[e.ID()] {
				t.Fatalf("event %s twice", e.ID())
			}
			seen[e.ID()] = true
			if e.Version != last[e.SKU]+1 {
				t.Fatalf("SKU %s: version %d after %d", e.SKU, e.Version, last[e.SKU])
			}
			last[e.SKU] = e.Version
		case err := <-done:
			t.Fatalf("the follower ended: %v", err)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowFeed ended with %v, want context.Canceled", err)
	}
}

// TestSSEResumesFromLastEventID reads three events of a stream, drops it,
// and resumes with the third's id: the next event is the fourth.
func TestSSEResumesFromLastEventID(t *testing.T) {
	s := Start(t, Options{Partitions: 4})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	for i := range 10 {
		receive(t, c, fmt.Sprintf("r-%d", i), fmt.Sprintf("S%d", i%3), "w1", 1)
	}
	all := must(c.FeedPage(ctx, stockd.FeedQuery{}))
	sctx, cancel := context.WithCancel(ctx)
	resp, rd := openStream(t, sctx, s, "")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	if n := s.API.OpenStreams(); n != 1 {
		t.Errorf("%d streams open, want 1", n)
	}
	var third sseMessage
	for i := range 3 {
		m, ej := rd.nextEvent(t)
		if ej.ID != all.Events[i].ID() {
			t.Fatalf("event %d is %s, want %s", i, ej.ID, all.Events[i].ID())
		}
		third = m
	}
	cancel()
	resp.Body.Close()

	metrics := string(raw(t, s, "GET", "/metrics", nil).Body)
	for _, m := range []string{"stockd_feed_streams", "stockd_feed_events_served_total"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics has no %s", m)
		}
	}

	// The id resumes, in place of after (which a browser repeats).
	_, rd = openStream(t, ctx, s, "?after=now", "Last-Event-ID", third.id)
	for i := 3; i < len(all.Events); i++ {
		_, ej := rd.nextEvent(t)
		if ej.ID != all.Events[i].ID() {
			t.Fatalf("after resuming, event %s, want %s", ej.ID, all.Events[i].ID())
		}
	}
}

// TestSSEStreamOutlivesTheServerTimeouts: with read and write timeouts far
// shorter than the stream, the stream keeps going (keep-alive comments
// while idle) and still delivers an event written after them.
func TestSSEStreamOutlivesTheServerTimeouts(t *testing.T) {
	s := Start(t, Options{Partitions: 2, App: func(c *app.Config) {
		c.ReadTimeout, c.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
		c.HTTP.StreamKeepAlive, c.HTTP.StreamWriteTimeout = 100*time.Millisecond, 400*time.Millisecond
	}})
	ConfigureLocations(t, s.Client, "w1")
	_, rd := openStream(t, ctx, s, "?after=now")
	began := time.Now()
	comments := 0
	for time.Since(began) < time.Second {
		m, err := rd.next()
		if err != nil {
			t.Fatalf("the stream ended after %v: %v", time.Since(began), err)
		}
		if m.comment {
			comments++
		}
	}
	if comments < 3 {
		t.Fatalf("%d keep-alive comments in a second, at 100 ms", comments)
	}
	receive(t, s.Client, "late", "A", "w1", 1)
	if _, ej := rd.nextEvent(t); ej.CommandID != "late" {
		t.Fatalf("event %+v, want the late receipt", ej)
	}
}

// TestShutdownEndsFeedStreams: a graceful shutdown does not wait for the
// streams; they end.
func TestShutdownEndsFeedStreams(t *testing.T) {
	s := Start(t, Options{Partitions: 2})
	_, rd := openStream(t, ctx, s, "?after=now")
	if _, err := rd.next(); err != nil { // the start id: the stream is up
		t.Fatal(err)
	}
	began := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("Close took %v with a stream open", d)
	}
	// Shutdown waited for the stream's handler, which counted it under its
	// own route.
	if n, err := s.Requests(http.StreamRoute); err != nil || n != 1 {
		t.Errorf("%v streams counted under %q (%v), want 1", n, http.StreamRoute, err)
	}
	for {
		if _, err := rd.next(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Logf("the stream ended with %v", err)
			}
			return
		}
	}
}

// TestFeedScopes: reading and acknowledging need stock:read; creating,
// resetting and deleting subscriptions need admin; a stream refused is a
// problem like any other answer.
func TestFeedScopes(t *testing.T) {
	keys, tokens := NewKeys(t, map[string][]stockd.Scope{
		"reader": {stockd.ScopeStockRead}, "writer": {stockd.ScopeStockWrite}, "ops": {stockd.ScopeAdmin},
	})
	s := Start(t, Options{Partitions: 2, Keys: keys})
	bearer := func(name string) []string { return []string{"Authorization", "Bearer " + tokens[name]} }
	wantProblem(t, raw(t, s, "GET", "/v1/feed", nil), 401, stockd.CodeUnauthenticated)
	wantProblem(t, raw(t, s, "GET", "/v1/feed", nil, "Accept", "text/event-stream"), 401, stockd.CodeUnauthenticated)
	wantProblem(t, raw(t, s, "GET", "/v1/feed", nil, append(bearer("writer"), "Accept", "text/event-stream")...), 403, stockd.CodeForbidden)
	wantStatus(t, raw(t, s, "GET", "/v1/feed", nil, bearer("reader")...), 200)
	resp, _ := openStream(t, ctx, s, "?after=now", bearer("reader")...)
	if resp.StatusCode != 200 {
		t.Fatalf("a reader's stream: %d", resp.StatusCode)
	}
	resp.Body.Close()

	wantProblem(t, raw(t, s, "PUT", "/v1/subscriptions/erp", `{"from":"now"}`, bearer("reader")...), 403, stockd.CodeForbidden)
	wantStatus(t, raw(t, s, "PUT", "/v1/subscriptions/erp", `{"from":"now"}`, bearer("ops")...), 201)
	wantStatus(t, raw(t, s, "GET", "/v1/subscriptions/erp", nil, bearer("reader")...), 200)
	page := raw(t, s, "GET", "/v1/subscriptions/erp/events", nil, bearer("reader")...)
	wantStatus(t, page, 200)
	next := page.JSON(t)["next"].(string)
	wantStatus(t, raw(t, s, "POST", "/v1/subscriptions/erp/ack", map[string]string{"cursor": next}, bearer("reader")...), 200)
	wantProblem(t, raw(t, s, "POST", "/v1/subscriptions/erp/reset", `{"to":"beginning"}`, bearer("reader")...), 403, stockd.CodeForbidden)
	wantProblem(t, raw(t, s, "DELETE", "/v1/subscriptions/erp", nil, bearer("reader")...), 403, stockd.CodeForbidden)
	wantStatus(t, raw(t, s, "DELETE", "/v1/subscriptions/erp", nil, bearer("ops")...), 200)
}

// TestSubscriptionsOverHTTP drives a subscription through the client: an
// acknowledged cursor survives a restart, and PUT, reset and delete answer
// as documented.
func TestSubscriptionsOverHTTP(t *testing.T) {
	s := Start(t, Options{Partitions: 4})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	sub, created, err := c.PutSubscription(ctx, "erp", "beginning")
	if err != nil || !created {
		t.Fatalf("PUT: %v %v", created, err)
	}
	if _, created, err := c.PutSubscription(ctx, "erp", "beginning"); err != nil || created {
		t.Fatalf("PUT again: %v %v", created, err)
	}
	_, _, err = c.PutSubscription(ctx, "erp", "now")
	wantCode(t, err, stockd.CodeIdempotencyMismatch)
	for i := range 6 {
		receive(t, c, fmt.Sprintf("r-%d", i), "A", "w1", 1)
	}
	// The location, r-0 and A's BackInStock, then r-1 to r-5.
	p := must(c.SubscriptionEvents(ctx, "erp", 4))
	if len(p.Events) != 4 || p.Events[2].Type() != stockd.TypeBackInStock {
		t.Fatalf("%d events", len(p.Events))
	}
	acked := must(c.AckSubscription(ctx, "erp", p.Next))
	if acked.Cursor != p.Next || acked.Lag.Events != 4 {
		t.Fatalf("after the ack: %+v", acked)
	}
	_, err = c.AckSubscription(ctx, "erp", "not-a-cursor")
	wantCode(t, err, stockd.CodeInvalid)

	s = s.Restart(t)
	c = s.Client
	got := must(c.Subscription(ctx, "erp"))
	if got.Cursor != p.Next {
		t.Fatalf("after a restart the cursor is %s, want %s", got.Cursor, p.Next)
	}
	rest := must(c.SubscriptionEvents(ctx, "erp", 100))
	if len(rest.Events) != 4 || rest.Events[0].CommandID != "r-2" {
		t.Fatalf("after a restart: %v", rest.Events)
	}
	if _, err := c.ResetSubscription(ctx, "erp", "beginning"); err != nil {
		t.Fatal(err)
	}
	if again := must(c.SubscriptionEvents(ctx, "erp", 100)); len(again.Events) != 8 {
		t.Fatalf("after a reset to the beginning: %d events, want 8", len(again.Events))
	}
	list := must(c.Subscriptions(ctx, stockd.SubscriptionListQuery{}))
	if len(list.Items) != 1 || list.Items[0].Name != "erp" || list.Items[0].CreatedAt != sub.CreatedAt {
		t.Fatalf("list: %+v", list)
	}
	must(c.DeleteSubscription(ctx, "erp"))
	_, err = c.Subscription(ctx, "erp")
	wantCode(t, err, stockd.CodeNotFound)
}

// TestSSEFilteredStreamMovesItsID: events a filter leaves out still move the
// stream's id, sent alone, so that a client resuming does not look at them
// again.
func TestSSEFilteredStreamMovesItsID(t *testing.T) {
	s := Start(t, Options{Partitions: 4})
	ConfigureLocations(t, s.Client, "w1")
	for i := range 5 {
		receive(t, s.Client, fmt.Sprintf("r-%d", i), fmt.Sprintf("S%d", i), "w1", 1)
	}
	heads := must(s.Client.FeedPage(ctx, stockd.FeedQuery{After: "now"})).Next
	_, rd := openStream(t, ctx, s, "?type=ReservationCommitted")
	var ids []string
	for len(ids) < 2 {
		m, err := rd.next()
		if err != nil {
			t.Fatal(err)
		}
		if m.data != "" {
			t.Fatalf("an event passed the filter: %s", m.data)
		}
		if m.id != "" {
			ids = append(ids, m.id)
		}
	}
	if ids[0] != (stockd.FeedCursor{0, 0, 0, 0}).String() || ids[1] != heads {
		t.Fatalf("ids %v, want the beginning then the heads %s", ids, heads)
	}
}
