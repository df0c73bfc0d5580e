package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/webhook"
)

// delivery is one request a receiver got.
type delivery struct {
	id        string
	partition int
	position  uint64
	typ       string
	acked     bool
	node      string // the test's name of the Manager that sent it (cluster tests)
}

// receiver is a webhook endpoint for tests: it checks every request's
// signature and headers, records it, and answers as fail says.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	got      []delivery
	bad      []string      // what was wrong with requests
	fail     func() int    // status to answer; 0 or 2xx acknowledges
	block    chan struct{} // when set, requests wait on it (or their context)
	received chan struct{} // told of every request, when set
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(400)
		return
	}
	var problems []string
	if err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, 5*time.Minute); err != nil {
		problems = append(problems, "signature: "+err.Error())
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		problems = append(problems, "Content-Type "+ct)
	}
	if ua := req.Header.Get("User-Agent"); ua != webhook.UserAgent {
		problems = append(problems, "User-Agent "+ua)
	}
	var e api.EventJSON
	if err := json.Unmarshal(body, &e); err != nil {
		problems = append(problems, "body: "+err.Error())
	}
	if id := req.Header.Get(webhook.HeaderEventID); id != e.ID || id != fmt.Sprintf("%d-%d", e.Partition, e.Position) {
		problems = append(problems, fmt.Sprintf("Stockd-Event-Id %q for event %q", id, e.ID))
	}
	r.mu.Lock()
	block, fail := r.block, r.fail
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-req.Context().Done():
			return
		}
	}
	status := 200
	if fail != nil {
		if s := fail(); s != 0 {
			status = s
		}
	}
	r.mu.Lock()
	r.bad = append(r.bad, problems...)
	r.got = append(r.got, delivery{id: e.ID, partition: e.Partition, position: e.Position, typ: e.Type, acked: status < 300, node: req.Header.Get(nodeHeader)})
	r.mu.Unlock()
	w.WriteHeader(status)
}

func (r *receiver) setFail(f func() int) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Fatalf("the receiver got bad requests: %v", r.bad[:min(len(r.bad), 5)])
	}
	return append([]delivery(nil), r.got...)
}

// acked returns the positions acknowledged per partition, in order of
// first acknowledgement, and the number of events acknowledged again.
func (r *receiver) acked() (map[int][]uint64, int) {
	out := map[int][]uint64{}
	seen := map[string]bool{}
	dups := 0
	for _, d := range r.deliveries() {
		if !d.acked {
			continue
		}
		if seen[d.id] {
			dups++
			continue
		}
		seen[d.id] = true
		out[d.partition] = append(out[d.partition], d.position)
	}
	return out, dups
}

// eventually polls cond until it holds, or fails the test after 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// start runs a server whose webhooks retry quickly and may call receivers
// on loopback.
func start(t *testing.T, tune func(*webhook.Options)) *e2e.Server {
	return e2e.Start(t, e2e.Options{Partitions: 4, NoReadModel: true, App: func(c *app.Config) {
		c.Webhooks = webhook.Options{AllowPrivate: true, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 5 * time.Second}
		if tune != nil {
			tune(&c.Webhooks)
		}
	}})
}

func receive(t *testing.T, srv *e2e.Server, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		_, _, err := srv.Engine.Receive(context.Background(), stockd.ReceiveStock{ID: fmt.Sprintf("r-%d", i), SKU: fmt.Sprintf("sku-%d", i%37), Location: "w1", Quantity: 1})
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
	}
}

// inStock receives one unit of each SKU receive writes to, before an
// endpoint that counts deliveries is created: the receipts the test then
// counts find stock there and cross no stock signal (a SKU's first receipt
// is also its BackInStock).
func inStock(t *testing.T, srv *e2e.Server) {
	t.Helper()
	for i := range 37 {
		_, _, err := srv.Engine.Receive(context.Background(), stockd.ReceiveStock{ID: fmt.Sprintf("seed-%d", i), SKU: fmt.Sprintf("sku-%d", i), Location: "w1", Quantity: 1})
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
}

// checkEveryEvent checks that every position from 1 to each partition's
// durable head was acknowledged, the first acknowledgements in position
// order, and returns the number of repeated acknowledgements.
func checkEveryEvent(t *testing.T, srv *e2e.Server, r *receiver) int {
	t.Helper()
	acked, dups := r.acked()
	for p := range srv.Engine.Partitions() {
		head := srv.Engine.DurableHead(p)
		got := acked[p]
		if uint64(len(got)) != head {
			t.Fatalf("partition %d: %d events acknowledged, durable head %d", p, len(got), head)
		}
		for i, pos := range got {
			if pos != uint64(i+1) {
				t.Fatalf("partition %d: acknowledgement %d is of position %d, want %d (first deliveries out of order or missing)", p, i, pos, i+1)
			}
		}
	}
	return dups
}

// allAcked reports whether every durable event has been acknowledged.
func allAcked(srv *e2e.Server, r *receiver) bool {
	acked, _ := r.acked()
	for p := range srv.Engine.Partitions() {
		if uint64(len(acked[p])) < srv.Engine.DurableHead(p) {
			return false
		}
	}
	return true
}

func TestAReceiverFailingHalfTheTimeStillGetsEveryEventSigned(t *testing.T) {
	srv := start(t, func(o *webhook.Options) { o.Attempts = 1000 })
	ctx := context.Background()
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	r := newReceiver(t, "whsec_half")
	var rngMu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 9))
	r.setFail(func() int {
		rngMu.Lock()
		defer rngMu.Unlock()
		if rng.IntN(2) == 0 {
			return []int{500, 502, 503, 429, 404, 302}[rng.IntN(6)]
		}
		return 0
	})
	w, created, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "half", URL: r.srv.URL, Secret: "whsec_half", From: stockd.WebhookFromBeginning})
	if err != nil || !created {
		t.Fatalf("put: created %v, %v", created, err)
	}
	if w.Name != "half" || w.URL != r.srv.URL || len(w.Types) != 0 {
		t.Fatalf("put answered %+v", w)
	}
	receive(t, srv, 0, 300)
	eventually(t, "every event acknowledged", func() bool { return allAcked(srv, r) })
	checkEveryEvent(t, srv, r)
	failed := 0
	for _, d := range r.deliveries() {
		if !d.acked {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no delivery failed: the test is not exercising retries")
	}
	eventually(t, "lag 0", func() bool {
		w, err := srv.Client.GetWebhook(ctx, "half")
		return err == nil && w.Lag == 0
	})
	if w, _ := srv.Client.GetWebhook(ctx, "half"); w.DeadLetters != 0 {
		t.Fatalf("%d dead letters with a budget of 1000 attempts", w.DeadLetters)
	}
	if n := deliveries(t, srv, "half", webhook.OutcomeFailed); n != float64(failed) {
		t.Fatalf("stockd_webhook_deliveries_total{outcome=failed} = %v, the receiver refused %d", n, failed)
	}
	if n, _ := metric(t, srv, "stockd_publisher_events_total", "publisher", "webhook/half"); n < 300 {
		t.Fatalf("stockd_publisher_events_total{publisher=webhook/half} = %v, want every event", n)
	}
	t.Logf("%d events, %d failed deliveries retried", len(r.deliveries())-failed, failed)
}

func TestDeadLettersAfterTheRetryBudgetAreListedAndReplayed(t *testing.T) {
	srv := start(t, func(o *webhook.Options) { o.Attempts = 3 })
	ctx := context.Background()
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	inStock(t, srv)
	r := newReceiver(t, "whsec_dl")
	r.setFail(func() int { return 503 })
	if _, _, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "down", URL: r.srv.URL, Secret: "whsec_dl"}); err != nil {
		t.Fatal(err)
	}
	receive(t, srv, 0, 10)
	eventually(t, "10 dead letters and no lag", func() bool {
		w, err := srv.Client.GetWebhook(ctx, "down")
		return err == nil && w.DeadLetters == 10 && w.Lag == 0
	})
	// Paged by 3, in event id order.
	var all []stockd.DeadLetter
	q := stockd.DeadLetterQuery{Name: "down", Limit: 3}
	for {
		page, err := srv.Client.WebhookDeadLetters(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	if len(all) != 10 {
		t.Fatalf("listed %d dead letters, want 10", len(all))
	}
	var ids []string
	for i, d := range all {
		if i > 0 && d.EventID <= all[i-1].EventID {
			t.Fatalf("dead letters out of order: %s after %s", d.EventID, all[i-1].EventID)
		}
		var e api.EventJSON
		if err := json.Unmarshal(d.Event, &e); err != nil || e.ID != d.EventID || e.Type != "StockReceived" || d.EventType != "StockReceived" {
			t.Fatalf("dead letter %+v: event %+v, %v", d, e, err)
		}
		if d.Attempts != 3 || d.LastStatus != 503 || d.LastError == "" || d.SKU == "" {
			t.Fatalf("dead letter %+v: want 3 attempts, last status 503 and an error", d)
		}
		ids = append(ids, d.EventID)
	}
	if n := deliveries(t, srv, "down", webhook.OutcomeDeadLettered); n != 10 {
		t.Fatalf("stockd_webhook_deliveries_total{outcome=dead_lettered} = %v, want 10", n)
	}

	// Still down: a replay fails, and says so.
	rep, err := srv.Client.ReplayWebhookDeadLetters(ctx, stockd.ReplayDeadLetters{Name: "down", EventIDs: ids[:1]})
	if err != nil || len(rep.Failed) != 1 || len(rep.Delivered) != 0 {
		t.Fatalf("replay to a receiver still down: %+v, %v", rep, err)
	}
	if p, _ := srv.Client.WebhookDeadLetters(ctx, stockd.DeadLetterQuery{Name: "down", Limit: 1}); len(p.Items) != 1 || p.Items[0].Attempts != 4 {
		t.Fatalf("after a failed replay: %+v", p.Items)
	}

	// The receiver is back: two named, then every other one.
	r.setFail(nil)
	rep, err = srv.Client.ReplayWebhookDeadLetters(ctx, stockd.ReplayDeadLetters{Name: "down", EventIDs: []string{ids[0], ids[1], "0-999999"}})
	if err != nil || len(rep.Delivered) != 2 || len(rep.Failed) != 0 || len(rep.NotFound) != 1 || rep.NotFound[0] != "0-999999" {
		t.Fatalf("replay of two: %+v, %v", rep, err)
	}
	rep, err = srv.Client.ReplayWebhookDeadLetters(ctx, stockd.ReplayDeadLetters{Name: "down"})
	if err != nil || len(rep.Delivered) != 8 || len(rep.Failed) != 0 {
		t.Fatalf("replay of all: %+v, %v", rep, err)
	}
	if p, _ := srv.Client.WebhookDeadLetters(ctx, stockd.DeadLetterQuery{Name: "down"}); len(p.Items) != 0 {
		t.Fatalf("%d dead letters left after replaying them all", len(p.Items))
	}
	if w, _ := srv.Client.GetWebhook(ctx, "down"); w.DeadLetters != 0 {
		t.Fatalf("dead_letters = %d after replaying them all", w.DeadLetters)
	}
	got := map[string]bool{}
	for _, d := range r.deliveries() {
		if d.acked {
			got[d.id] = true
		}
	}
	for _, id := range ids {
		if !got[id] {
			t.Fatalf("dead letter %s was replayed but not received", id)
		}
	}
	if _, err := srv.Client.ReplayWebhookDeadLetters(ctx, stockd.ReplayDeadLetters{Name: "nope"}); stockd.ErrorCode(err) != stockd.CodeNotFound {
		t.Fatalf("replay of an unknown webhook: %v", err)
	}
}

// deliveries reads stockd_webhook_deliveries_total of a webhook and
// outcome from the server's metrics.
func deliveries(t *testing.T, srv *e2e.Server, name, outcome string) float64 {
	t.Helper()
	mfs, err := srv.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "stockd_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["webhook"] == name && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestTypeFiltersDeliverOnlyTheTypesNamed(t *testing.T) {
	srv := start(t, nil)
	ctx := context.Background()
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	r := newReceiver(t, "whsec_types")
	w, _, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "adjustments", URL: r.srv.URL, Secret: "whsec_types", Types: []string{"StockAdjusted", "StockAdjusted"}})
	if err != nil || len(w.Types) != 1 || w.Types[0] != "StockAdjusted" {
		t.Fatalf("put: %+v, %v", w, err)
	}
	receive(t, srv, 0, 20)
	for i := range 5 {
		if _, _, err := srv.Engine.Adjust(ctx, stockd.AdjustStock{ID: fmt.Sprintf("a-%d", i), SKU: fmt.Sprintf("sku-%d", i), Location: "w1", Delta: -1, Reason: stockd.ReasonDamaged}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "lag 0", func() bool {
		w, err := srv.Client.GetWebhook(ctx, "adjustments")
		return err == nil && w.Lag == 0
	})
	got := r.deliveries()
	if len(got) != 5 {
		t.Fatalf("%d deliveries, want the 5 adjustments", len(got))
	}
	for _, d := range got {
		if d.typ != "StockAdjusted" {
			t.Fatalf("delivered a %s to an endpoint of StockAdjusted only", d.typ)
		}
	}
}

func TestLagSecondsIsTheOldestUndeliveredEventsWaitAndZeroOnceCaughtUp(t *testing.T) {
	srv := start(t, func(o *webhook.Options) { o.Attempts = 1000 })
	ctx := context.Background()
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	if _, err := srv.Webhooks.LagSeconds("nobody"); stockd.ErrorCode(err) != stockd.CodeNotFound {
		t.Fatalf("LagSeconds of no endpoint: %v, want not_found", err)
	}
	r := newReceiver(t, "whsec_lag")
	r.setFail(func() int { return 503 })
	if _, _, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "lagging", URL: r.srv.URL, Secret: "whsec_lag"}); err != nil {
		t.Fatal(err)
	}
	if s, err := srv.Webhooks.LagSeconds("lagging"); err != nil || s != 0 {
		t.Fatalf("LagSeconds with nothing to deliver: %v, %v; want 0", s, err)
	}
	receive(t, srv, 0, 5)
	eventually(t, "a lag while the receiver refuses", func() bool {
		s, err := srv.Webhooks.LagSeconds("lagging")
		return err == nil && s > 0
	})
	r.setFail(nil)
	eventually(t, "lag 0 once the receiver takes everything", func() bool {
		s, err := srv.Webhooks.LagSeconds("lagging")
		w, gerr := srv.Webhooks.GetWebhook(ctx, "lagging")
		return err == nil && gerr == nil && s == 0 && w.Lag == 0
	})
}

func TestChangingAndDeletingAnEndpointTakesEffectWithoutARestart(t *testing.T) {
	srv := start(t, nil)
	ctx := context.Background()
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	inStock(t, srv)
	a, b, witness := newReceiver(t, "s1"), newReceiver(t, "s2"), newReceiver(t, "s3")
	if _, _, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "hook", URL: a.srv.URL, Secret: "s1"}); err != nil {
		t.Fatal(err)
	}
	// The same configuration again changes nothing.
	if _, created, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "hook", URL: a.srv.URL, Secret: "s1"}); err != nil || created {
		t.Fatalf("put again: created %v, %v", created, err)
	}
	if _, _, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "witness", URL: witness.srv.URL, Secret: "s3"}); err != nil {
		t.Fatal(err)
	}
	receive(t, srv, 0, 10)
	eventually(t, "a gets 10 events", func() bool { return len(a.deliveries()) == 10 })

	// Changed: the next events go to b, signed with the new secret.
	w, created, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "hook", URL: b.srv.URL, Secret: "s2"})
	if err != nil || created || w.URL != b.srv.URL || !w.UpdatedAt.After(w.CreatedAt) {
		t.Fatalf("change: %+v created %v, %v", w, created, err)
	}
	receive(t, srv, 10, 20)
	eventually(t, "b gets 10 events", func() bool { return len(b.deliveries()) == 10 })
	if n := len(a.deliveries()); n != 10 {
		t.Fatalf("a got %d events after the endpoint moved to b", n)
	}

	// Deleted: nothing more is sent, and it is gone.
	if _, err := srv.Client.DeleteWebhook(ctx, "hook"); err != nil {
		t.Fatal(err)
	}
	receive(t, srv, 20, 30)
	eventually(t, "the witness gets all 30 events", func() bool { return len(witness.deliveries()) == 30 })
	if n := len(b.deliveries()); n != 10 {
		t.Fatalf("b got %d events, 10 before the delete", n)
	}
	if _, err := srv.Client.GetWebhook(ctx, "hook"); stockd.ErrorCode(err) != stockd.CodeNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := srv.Client.DeleteWebhook(ctx, "hook"); stockd.ErrorCode(err) != stockd.CodeNotFound {
		t.Fatalf("delete again: %v", err)
	}
	page, err := srv.Client.ListWebhooks(ctx, stockd.WebhookQuery{})
	if err != nil || len(page.Items) != 1 || page.Items[0].Name != "witness" || page.Next != "" {
		t.Fatalf("list after delete: %+v, %v", page, err)
	}

	// Put again under the same name: a new endpoint, from now.
	c := newReceiver(t, "s4")
	if _, created, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "hook", URL: c.srv.URL, Secret: "s4"}); err != nil || !created {
		t.Fatalf("put after delete: created %v, %v", created, err)
	}
	receive(t, srv, 30, 35)
	eventually(t, "c gets the 5 new events", func() bool { return len(c.deliveries()) == 5 })
}

func TestListingWebhooksPages(t *testing.T) {
	srv := start(t, nil)
	ctx := context.Background()
	r := newReceiver(t, "s")
	for _, name := range []string{"c", "a", "e", "b", "d"} {
		if _, _, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: name, URL: r.srv.URL, Secret: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	q := stockd.WebhookQuery{Limit: 2}
	for {
		page, err := srv.Client.ListWebhooks(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range page.Items {
			names = append(names, w.Name)
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	if fmt.Sprint(names) != "[a b c d e]" {
		t.Fatalf("listed %v", names)
	}
}

func TestARestartResumesFromTheCheckpointWithNothingLost(t *testing.T) {
	srv := start(t, nil)
	ctx := context.Background()
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	r := newReceiver(t, "whsec_restart")
	if _, _, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "resume", URL: r.srv.URL, Secret: "whsec_restart", From: stockd.WebhookFromBeginning}); err != nil {
		t.Fatal(err)
	}
	receive(t, srv, 0, 100)
	eventually(t, "the first 100 acknowledged", func() bool { return allAcked(srv, r) })
	// The receiver hangs: the next events are in flight, never
	// acknowledged, when the whole server restarts.
	block := make(chan struct{})
	r.mu.Lock()
	r.block = block
	r.mu.Unlock()
	receive(t, srv, 100, 200)
	eventually(t, "deliveries hang", func() bool {
		w, err := srv.Client.GetWebhook(ctx, "resume")
		return err == nil && w.Lag > 0
	})
	srv = srv.Restart(t)
	r.mu.Lock()
	r.block = nil
	r.mu.Unlock()
	close(block)
	if w, err := srv.Client.GetWebhook(ctx, "resume"); err != nil || w.URL != r.srv.URL {
		t.Fatalf("after the restart: %+v, %v", w, err)
	}
	receive(t, srv, 200, 300)
	eventually(t, "all 300 acknowledged", func() bool { return allAcked(srv, r) })
	checkEveryEvent(t, srv, r)
}

func TestPutRefusesBadEndpoints(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Partitions: 2, NoReadModel: true})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cmd  stockd.PutWebhook
	}{
		{"no url", stockd.PutWebhook{Name: "x", Secret: "s"}},
		{"ftp", stockd.PutWebhook{Name: "x", URL: "ftp://example.com/", Secret: "s"}},
		{"credentials", stockd.PutWebhook{Name: "x", URL: "https://user:pw@example.com/", Secret: "s"}},
		{"no host", stockd.PutWebhook{Name: "x", URL: "https:///path", Secret: "s"}},
		{"loopback", stockd.PutWebhook{Name: "x", URL: "http://127.0.0.1:9/", Secret: "s"}},
		{"localhost", stockd.PutWebhook{Name: "x", URL: "http://localhost:9/", Secret: "s"}},
		{"private", stockd.PutWebhook{Name: "x", URL: "http://10.1.2.3/", Secret: "s"}},
		{"metadata", stockd.PutWebhook{Name: "x", URL: "http://169.254.169.254/latest", Secret: "s"}},
		{"ipv6 loopback", stockd.PutWebhook{Name: "x", URL: "http://[::1]/", Secret: "s"}},
		{"no secret", stockd.PutWebhook{Name: "x", URL: "https://example.com/"}},
		{"unknown type", stockd.PutWebhook{Name: "x", URL: "https://example.com/", Secret: "s", Types: []string{"StockTeleported"}}},
		{"bad from", stockd.PutWebhook{Name: "x", URL: "https://example.com/", Secret: "s", From: "yesterday"}},
		{"bad name", stockd.PutWebhook{Name: "a\u200bb", URL: "https://example.com/", Secret: "s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := srv.Client.PutWebhook(ctx, tc.cmd); stockd.ErrorCode(err) != stockd.CodeInvalid {
				t.Fatalf("put %+v: %v, want invalid_request", tc.cmd, err)
			}
		})
	}
	if page, err := srv.Client.ListWebhooks(ctx, stockd.WebhookQuery{}); err != nil || len(page.Items) != 0 {
		t.Fatalf("refused puts left %+v, %v", page, err)
	}
}

func TestTheDialGuardRefusesInternalAddressesAfterResolution(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	// httptest listens on 127.0.0.1; a name resolving there is refused
	// when dialled, as a literal address is when put.
	_, port, _ := strings.Cut(srv.URL[len("http://"):], ":")
	_, err := webhook.NewHTTPClient(time.Second, false).Post("http://localhost:"+port+"/", "application/json", nil)
	if err == nil || !strings.Contains(err.Error(), "refusing to connect") {
		t.Fatalf("a request to localhost with the guard on: %v", err)
	}
	resp, err := webhook.NewHTTPClient(time.Second, true).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatalf("with internal addresses allowed: %v", err)
	}
	resp.Body.Close()
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	resp, err := webhook.NewHTTPClient(time.Second, true).Post(redirect.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || hits.Load() != 0 {
		t.Fatalf("status %d, target hit %d times: the redirect was followed", resp.StatusCode, hits.Load())
	}
}

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTheSecretNeverAppearsInAnswersOrLogs(t *testing.T) {
	const secret = "whsec_TOPSECRET_4f1d"
	logs := &lockedBuffer{}
	srv := e2e.Start(t, e2e.Options{Partitions: 2, NoReadModel: true, App: func(c *app.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Webhooks = webhook.Options{AllowPrivate: true, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Attempts: 2}
	}})
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	r := newReceiver(t, secret)
	r.setFail(func() int { return 500 })
	var answers strings.Builder
	do := func(method, path, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers.WriteString(method + " " + path + " " + resp.Status + " " + string(b) + "\n")
		return resp.StatusCode
	}
	put := `{"url":"` + r.srv.URL + `","secret":"` + secret + `"}`
	if s := do("PUT", "/v1/webhooks/shop", put); s != 201 {
		t.Fatalf("put: %d\n%s", s, answers.String())
	}
	do("PUT", "/v1/webhooks/shop", put)
	do("PUT", "/v1/webhooks/shop", `{"url":"`+r.srv.URL+`","secret":"`+secret+`","types":["StockReceived"]}`)
	do("PUT", "/v1/webhooks/bad", `{"url":"ftp://x","secret":"`+secret+`"}`)
	do("PUT", "/v1/webhooks/bad", `{"url":"`+r.srv.URL+`","secret":"`+secret+`","types":["Nope"]}`)
	receive(t, srv, 0, 3)
	eventually(t, "3 dead letters", func() bool {
		w, err := srv.Client.GetWebhook(context.Background(), "shop")
		return err == nil && w.DeadLetters == 3
	})
	do("GET", "/v1/webhooks/shop", "")
	do("GET", "/v1/webhooks", "")
	do("GET", "/v1/webhooks/shop/dead-letters", "")
	do("POST", "/v1/webhooks/shop/dead-letters/replay", "")
	do("GET", "/metrics", "")
	if s := do("DELETE", "/v1/webhooks/shop", ""); s != 200 {
		t.Fatalf("delete: %d\n%s", s, answers.String())
	}
	if !strings.Contains(answers.String(), r.srv.URL) || !strings.Contains(logs.String(), "dead-lettered") {
		t.Fatalf("the test saw no answers or logs of the endpoint:\n%s\n%s", answers.String(), logs.String())
	}
	if strings.Contains(answers.String(), secret) {
		t.Fatalf("an answer shows the secret:\n%s", answers.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("a log line shows the secret:\n%s", logs.String())
	}
}

// metric reads a gauge or counter of the server's by name and one label.
func metric(t *testing.T, srv *e2e.Server, name, label, value string) (float64, bool) {
	t.Helper()
	mfs, err := srv.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue(), true
					}
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

func TestAFullDeadLetterListStopsTheEndpointWithoutDroppingEvents(t *testing.T) {
	srv := start(t, func(o *webhook.Options) { o.Attempts, o.MaxDeadLetters = 2, 2 })
	ctx := context.Background()
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	inStock(t, srv)
	r := newReceiver(t, "s")
	r.setFail(func() int { return 500 })
	if _, _, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "full", URL: r.srv.URL, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	receive(t, srv, 0, 12)
	eventually(t, "the list is full and the endpoint stalls", func() bool {
		errs, _ := metric(t, srv, "stockd_publisher_errors_total", "publisher", "webhook/full")
		w, err := srv.Client.GetWebhook(ctx, "full")
		return err == nil && w.DeadLetters == 2 && w.Lag > 0 && errs > 0
	})
	if n, _ := metric(t, srv, "stockd_webhook_dead_letters", "webhook", "full"); n != 2 {
		t.Fatalf("stockd_webhook_dead_letters = %v, want 2", n)
	}
	// The receiver recovers: every event not dead-lettered arrives.
	r.setFail(nil)
	eventually(t, "lag 0", func() bool {
		w, err := srv.Client.GetWebhook(ctx, "full")
		return err == nil && w.Lag == 0
	})
	page, err := srv.Client.WebhookDeadLetters(ctx, stockd.DeadLetterQuery{Name: "full"})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("dead letters %+v, %v", page, err)
	}
	dead := map[string]bool{page.Items[0].EventID: true, page.Items[1].EventID: true}
	acked := map[string]bool{}
	for _, d := range r.deliveries() {
		if d.acked {
			acked[d.id] = true
		}
	}
	if len(acked)+len(dead) != 12 {
		t.Fatalf("%d events acknowledged and %d dead-lettered of 12 receipts", len(acked), len(dead))
	}
	if lag, ok := metric(t, srv, "stockd_publisher_lag_events", "publisher", "webhook/full"); !ok || lag != 0 {
		t.Fatalf("stockd_publisher_lag_events = %v (%v), want 0", lag, ok)
	}
}

func TestADeletedEndpointHoldsBackNoArchiving(t *testing.T) {
	srv := start(t, nil)
	ctx := context.Background()
	r := newReceiver(t, "s")
	if _, _, err := srv.Client.PutWebhook(ctx, stockd.PutWebhook{Name: "gone", URL: r.srv.URL, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.DeleteWebhook(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// A crash between a delete and the deletion of its checkpoints leaves
	// one behind: the next start deletes it.
	if err := srv.Store.SetCheckpoint(ctx, "publish/webhook/ghost", 1, stockd.Checkpoint{Position: 3}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(webhookConsumers(t, srv), "publish/webhook/ghost") || slices.Contains(webhookConsumers(t, srv), "publish/webhook/gone") {
		t.Fatalf("before the restart: consumers %q, want ghost and not gone", webhookConsumers(t, srv))
	}
	srv = srv.Restart(t)
	if left := webhookConsumers(t, srv); len(left) != 0 {
		t.Fatalf("deleted endpoints %q still have checkpoints: they hold back archiving", left)
	}
}

// webhookConsumers returns the consumers with a checkpoint that are
// webhook endpoints.
func webhookConsumers(t *testing.T, srv *e2e.Server) []string {
	t.Helper()
	all, err := srv.Store.Consumers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range all {
		if strings.HasPrefix(c, "publish/webhook/") {
			out = append(out, c)
		}
	}
	return out
}
