package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/internal/pgtest"
	"github.com/stockd/stockd/webhook"
)

// nodeHeader carries, in the cluster tests, the name of the Manager that
// sent a delivery, so that the receiver can tell the nodes apart.
const nodeHeader = "X-Test-Node"

type nodeTransport struct {
	node string
	next http.RoundTripper
}

func (n nodeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(nodeHeader, n.node)
	return n.next.RoundTrip(req)
}

// cluster is two webhook Managers, "A" and "B", over ONE store (that of a
// server, opened once), each serving the partitions owner gives it, as two
// nodes of a cluster do.
type cluster struct {
	srv   *e2e.Server
	a, b  *webhook.Manager
	owner []atomic.Int32 // per partition: 0 when A serves it, 1 for B
}

var nodeNames = []string{"A", "B"}

// servedBy returns the name of the node serving partition p now.
func (c *cluster) servedBy(p int) string { return nodeNames[c.owner[p].Load()] }

// move makes node serve partition p.
func (c *cluster) move(p int, node string) {
	c.owner[p].Store(int32(slices.Index(nodeNames, node)))
}

// forEachStore runs test over the embedded store and over PostgreSQL (a
// fresh schema of the database STOCKD_TEST_POSTGRES names; skipped
// without it).
func forEachStore(t *testing.T, test func(t *testing.T, store string)) {
	for _, store := range []string{"pebble", "postgres"} {
		t.Run(store, func(t *testing.T) { test(t, store) })
	}
}

// newCluster starts a server (4 partitions) and two Managers over its store:
// A serves partitions 0 and 1, B partitions 2 and 3. The server's own
// Manager runs no endpoint of the tests: endpoints are put through A and B.
func newCluster(t *testing.T, store string, tune func(*webhook.Options)) *cluster {
	t.Helper()
	opts := e2e.Options{Partitions: 4, NoReadModel: true}
	if store == "postgres" {
		// Registered before the server's Close, so it is dropped after.
		dsn, schema := pgtest.Schema(t, "webhook_", "no PostgreSQL to run the two nodes over")
		opts.App = func(c *app.Config) { c.Store, c.StoreSchema = dsn, schema }
	}
	c := &cluster{srv: e2e.Start(t, opts), owner: make([]atomic.Int32, 4)}
	c.move(2, "B")
	c.move(3, "B")
	for i, name := range nodeNames {
		o := webhook.Options{
			Store: c.srv.Store, Log: c.srv.Log, DurableHead: c.srv.Engine.DurableHead, Heads: c.srv.Heads,
			AllowPrivate: true, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 5 * time.Second,
			Logger: slog.New(slog.DiscardHandler),
			Serves: func(p int) bool { return int(c.owner[p].Load()) == i },
		}
		base := webhook.NewHTTPClient(o.Timeout, true)
		cl := *base
		cl.Transport = nodeTransport{node: name, next: base.Transport}
		o.Client = &cl
		if tune != nil {
			tune(&o)
		}
		m, err := webhook.Open(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		if i == 0 {
			c.a = m
		} else {
			c.b = m
		}
	}
	return c
}

// checkSteadyState checks that every delivery in ds was sent by the node
// serving its partition now, and that no event was delivered twice.
func checkSteadyState(t *testing.T, c *cluster, ds []delivery) {
	t.Helper()
	by := map[string]string{}
	for _, d := range ds {
		if want := c.servedBy(d.partition); d.node != want {
			t.Fatalf("event %s of partition %d delivered by %s; %s serves the partition", d.id, d.partition, d.node, want)
		}
		if prev, ok := by[d.id]; ok {
			t.Fatalf("event %s delivered twice, by %s and by %s", d.id, prev, d.node)
		}
		by[d.id] = d.node
	}
}

// settle waits until r has received nothing for 300 ms.
func settle(t *testing.T, r *receiver) {
	t.Helper()
	n, since := len(r.deliveries()), time.Now()
	eventually(t, "deliveries settle", func() bool {
		if m := len(r.deliveries()); m != n {
			n, since = m, time.Now()
		}
		return time.Since(since) > 300*time.Millisecond
	})
}

// lagZero waits until both nodes report the endpoint caught up.
func lagZero(t *testing.T, c *cluster, name string) {
	t.Helper()
	eventually(t, name+" caught up on both nodes", func() bool {
		for _, m := range []*webhook.Manager{c.a, c.b} {
			w, err := m.GetWebhook(context.Background(), name)
			if err != nil || w.Lag != 0 {
				return false
			}
		}
		return true
	})
}

func TestAnEndpointPutThroughOneNodeDeliversEachEventOnceFromTheNodeServingItsPartitionAfterTheOtherSyncs(t *testing.T) {
	forEachStore(t, func(t *testing.T, store string) {
		c := newCluster(t, store, nil)
		ctx := context.Background()
		e2e.ConfigureLocations(t, c.srv.Engine, "w1")
		r := newReceiver(t, "s")
		put, created, err := c.a.PutWebhook(ctx, stockd.PutWebhook{Name: "hook", URL: r.srv.URL, Secret: "s", From: stockd.WebhookFromBeginning})
		if err != nil || !created {
			t.Fatalf("put through A: created %v, %v", created, err)
		}
		if _, err := c.b.GetWebhook(ctx, "hook"); stockd.ErrorCode(err) != stockd.CodeNotFound {
			t.Fatalf("B before its sync: %v, want not_found", err)
		}
		receive(t, c.srv, 0, 100)
		// Before B syncs, A delivers its own partitions only.
		eventually(t, "A's partitions delivered", func() bool {
			acked, _ := r.acked()
			return uint64(len(acked[0])) == c.srv.Engine.DurableHead(0) && uint64(len(acked[1])) == c.srv.Engine.DurableHead(1)
		})
		for _, d := range r.deliveries() {
			if d.partition >= 2 {
				t.Fatalf("event %s of B's partition %d delivered (by %s) before B synced", d.id, d.partition, d.node)
			}
		}

		if err := c.b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		w, err := c.b.GetWebhook(ctx, "hook")
		if err != nil || w.URL != r.srv.URL || !w.CreatedAt.Equal(put.CreatedAt) {
			t.Fatalf("B after its sync: %+v, %v; put %+v", w, err, put)
		}
		if page, err := c.b.ListWebhooks(ctx, stockd.WebhookQuery{}); err != nil || len(page.Items) != 1 || page.Items[0].Name != "hook" {
			t.Fatalf("B's list after its sync: %+v, %v", page, err)
		}
		eventually(t, "every event acknowledged", func() bool { return allAcked(c.srv, r) })
		receive(t, c.srv, 100, 200)
		eventually(t, "every event acknowledged", func() bool { return allAcked(c.srv, r) })
		lagZero(t, c, "hook")
		settle(t, r)
		if dups := checkEveryEvent(t, c.srv, r); dups != 0 {
			t.Fatalf("%d events acknowledged twice", dups)
		}
		checkSteadyState(t, c, r.deliveries())
		for p := range 4 {
			if c.srv.Engine.DurableHead(p) == 0 {
				t.Fatalf("partition %d has no events: the test does not exercise both nodes", p)
			}
		}
	})
}

func TestAnEndpointDeletedThroughOneNodeStopsOnTheOtherAtItsSync(t *testing.T) {
	forEachStore(t, func(t *testing.T, store string) {
		c := newCluster(t, store, nil)
		ctx := context.Background()
		e2e.ConfigureLocations(t, c.srv.Engine, "w1")
		inStock(t, c.srv)
		r, witness := newReceiver(t, "s1"), newReceiver(t, "s2")
		for name, rc := range map[string]*receiver{"hook": r, "witness": witness} {
			if _, _, err := c.a.PutWebhook(ctx, stockd.PutWebhook{Name: name, URL: rc.srv.URL, Secret: rc.secret}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		receive(t, c.srv, 0, 40)
		eventually(t, "both endpoints get the 40 events", func() bool {
			return len(r.deliveries()) == 40 && len(witness.deliveries()) == 40
		})

		if _, err := c.a.DeleteWebhook(ctx, "hook"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.a.GetWebhook(ctx, "hook"); stockd.ErrorCode(err) != stockd.CodeNotFound {
			t.Fatalf("A after the delete: %v", err)
		}
		if _, err := c.b.GetWebhook(ctx, "hook"); err != nil {
			t.Fatalf("B before its sync still runs the endpoint: %v", err)
		}
		if err := c.b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.b.GetWebhook(ctx, "hook"); stockd.ErrorCode(err) != stockd.CodeNotFound {
			t.Fatalf("B after its sync: %v, want not_found", err)
		}
		if page, err := c.b.ListWebhooks(ctx, stockd.WebhookQuery{}); err != nil || len(page.Items) != 1 || page.Items[0].Name != "witness" {
			t.Fatalf("B's list after its sync: %+v, %v", page, err)
		}
		receive(t, c.srv, 40, 80)
		eventually(t, "the witness gets all 80 events", func() bool { return len(witness.deliveries()) == 80 })
		lagZero(t, c, "witness")
		settle(t, r)
		if n := len(r.deliveries()); n != 40 {
			t.Fatalf("the deleted endpoint got %d events, 40 before the delete", n)
		}
		checkSteadyState(t, c, witness.deliveries())
		// A delete through B of what A deleted already: not found.
		if _, err := c.b.DeleteWebhook(ctx, "hook"); stockd.ErrorCode(err) != stockd.CodeNotFound {
			t.Fatalf("delete again through B: %v", err)
		}
	})
}

func TestAnEndpointPutAgainThroughTheOtherNodeNeverDeliversHistoryEvenIfARacingDeleteTookItsCheckpoints(t *testing.T) {
	forEachStore(t, func(t *testing.T, store string) {
		c := newCluster(t, store, nil)
		ctx := context.Background()
		e2e.ConfigureLocations(t, c.srv.Engine, "w1")
		inStock(t, c.srv)
		old := newReceiver(t, "s1")
		if _, _, err := c.a.PutWebhook(ctx, stockd.PutWebhook{Name: "hook", URL: old.srv.URL, Secret: "s1"}); err != nil {
			t.Fatal(err)
		}
		if err := c.b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		receive(t, c.srv, 0, 40)
		eventually(t, "the first endpoint gets the 40 events", func() bool { return len(old.deliveries()) == 40 })
		if _, err := c.a.DeleteWebhook(ctx, "hook"); err != nil {
			t.Fatal(err)
		}

		// Put again through B, which has not synced the delete: a new
		// endpoint, from now, not a change of the deleted one.
		r := newReceiver(t, "s2")
		w, created, err := c.b.PutWebhook(ctx, stockd.PutWebhook{Name: "hook", URL: r.srv.URL, Secret: "s2"})
		if err != nil || !created || w.DeadLetters != 0 {
			t.Fatalf("put again through B: %+v created %v, %v", w, created, err)
		}
		// The race DeleteWebhook narrows but cannot close: A's delete
		// deleting the checkpoints the new endpoint just wrote.
		if err := c.srv.Store.DeleteConsumer(ctx, webhook.Consumer("hook")); err != nil {
			t.Fatal(err)
		}
		if err := c.a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if w, err := c.a.GetWebhook(ctx, "hook"); err != nil || w.URL != r.srv.URL {
			t.Fatalf("A after its sync: %+v, %v", w, err)
		}
		receive(t, c.srv, 40, 60)
		eventually(t, "the new endpoint gets the 20 new events", func() bool { return len(r.deliveries()) >= 20 })
		lagZero(t, c, "hook")
		settle(t, r)
		if n := len(r.deliveries()); n != 20 {
			t.Fatalf("the endpoint put again got %d events, 20 since it was put: history was delivered", n)
		}
		if n := len(old.deliveries()); n != 40 {
			t.Fatalf("the deleted endpoint got %d events, 40 before the delete", n)
		}
		checkSteadyState(t, c, r.deliveries())
	})
}

func TestMovingAPartitionToTheOtherNodeResumesFromTheCheckpointWithNothingLost(t *testing.T) {
	forEachStore(t, func(t *testing.T, store string) {
		c := newCluster(t, store, nil)
		ctx := context.Background()
		e2e.ConfigureLocations(t, c.srv.Engine, "w1")
		r := newReceiver(t, "s")
		if _, _, err := c.a.PutWebhook(ctx, stockd.PutWebhook{Name: "hook", URL: r.srv.URL, Secret: "s", From: stockd.WebhookFromBeginning}); err != nil {
			t.Fatal(err)
		}
		if err := c.b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		receive(t, c.srv, 0, 100)
		eventually(t, "the first 100 acknowledged", func() bool { return allAcked(c.srv, r) })

		// The receiver hangs, so that both nodes have deliveries in
		// flight when partitions 0 (A to B) and 2 (B to A) move.
		block := make(chan struct{})
		r.mu.Lock()
		r.block = block
		r.mu.Unlock()
		receive(t, c.srv, 100, 150)
		eventually(t, "deliveries hang on both nodes", func() bool {
			wa, erra := c.a.GetWebhook(ctx, "hook")
			wb, errb := c.b.GetWebhook(ctx, "hook")
			return erra == nil && errb == nil && wa.Lag > 0 && wb.Lag > 0
		})
		c.move(0, "B")
		c.move(2, "A")
		r.mu.Lock()
		r.block = nil
		r.mu.Unlock()
		close(block)
		receive(t, c.srv, 150, 250)
		eventually(t, "all 250 acknowledged", func() bool { return allAcked(c.srv, r) })
		lagZero(t, c, "hook")
		settle(t, r)
		// Nothing lost, first deliveries in order; some repeats are
		// allowed around the move (at least once), at most the batch in
		// flight of each partition moved: the new node resumed from the
		// checkpoint, not from where it last served the partition.
		dups := checkEveryEvent(t, c.srv, r)
		if dups > 2*32 {
			t.Fatalf("%d events sent again around the move of two partitions; at most 2 batches of 32 expected", dups)
		}

		// Steady state on the new split: each new event once, from the
		// partition's new node.
		mark := len(r.deliveries())
		receive(t, c.srv, 250, 350)
		eventually(t, "all 350 acknowledged", func() bool { return allAcked(c.srv, r) })
		lagZero(t, c, "hook")
		settle(t, r)
		checkEveryEvent(t, c.srv, r)
		after := r.deliveries()[mark:]
		checkSteadyState(t, c, after)
		moved := map[string]bool{}
		for _, d := range after {
			if d.partition == 0 || d.partition == 2 {
				moved[d.node+fmt.Sprint(d.partition)] = true
			}
		}
		if !moved["B0"] || !moved["A2"] {
			t.Fatalf("after the move, delivered by node and partition: %v; want B0 and A2", moved)
		}
		t.Logf("%d events sent again around the move", dups)
	})
}

func TestReplaysThroughBothNodesAtOnceSendEachDeadLetterOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, store string) {
		c := newCluster(t, store, func(o *webhook.Options) { o.Attempts = 2 })
		ctx := context.Background()
		e2e.ConfigureLocations(t, c.srv.Engine, "w1")
		inStock(t, c.srv)
		r := newReceiver(t, "s")
		r.setFail(func() int { return 503 })
		if _, _, err := c.a.PutWebhook(ctx, stockd.PutWebhook{Name: "down", URL: r.srv.URL, Secret: "s"}); err != nil {
			t.Fatal(err)
		}
		if err := c.b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		receive(t, c.srv, 0, 40)
		lagZero(t, c, "down")
		nodes := map[string]bool{}
		for _, d := range r.deliveries() {
			nodes[d.node] = true
		}
		if !nodes["A"] || !nodes["B"] {
			t.Fatalf("dead letters written by %v; want both nodes", nodes)
		}
		// Each node dead-lettered its own partitions' events; after a
		// sync each counts the whole list.
		for i, m := range []*webhook.Manager{c.a, c.b} {
			if err := m.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if w, err := m.GetWebhook(ctx, "down"); err != nil || w.DeadLetters != 40 {
				t.Fatalf("%s after its sync: %+v, %v; want 40 dead letters", nodeNames[i], w, err)
			}
		}

		r.setFail(nil)
		mark := len(r.deliveries())
		var wg sync.WaitGroup
		reps := make([]stockd.DeadLetterReplay, 2)
		errs := make([]error, 2)
		for i, m := range []*webhook.Manager{c.a, c.b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reps[i], errs[i] = m.ReplayWebhookDeadLetters(ctx, stockd.ReplayDeadLetters{Name: "down"})
			}()
		}
		wg.Wait()
		seen := map[string]string{}
		for i, rep := range reps {
			if errs[i] != nil || len(rep.Failed) != 0 || len(rep.NotFound) != 0 {
				t.Fatalf("replay through %s: %+v, %v", nodeNames[i], rep, errs[i])
			}
			for _, id := range rep.Delivered {
				if prev, ok := seen[id]; ok {
					t.Fatalf("dead letter %s replayed by %s and by %s", id, prev, nodeNames[i])
				}
				seen[id] = nodeNames[i]
			}
		}
		if len(seen) != 40 {
			t.Fatalf("%d dead letters replayed between the two nodes, want 40 (A %d, B %d)", len(seen), len(reps[0].Delivered), len(reps[1].Delivered))
		}
		got := map[string]int{}
		for _, d := range r.deliveries()[mark:] {
			got[d.id]++
		}
		for id := range seen {
			if got[id] != 1 {
				t.Fatalf("dead letter %s received %d times by the replays", id, got[id])
			}
		}
		if len(got) != 40 {
			t.Fatalf("the replays sent %d events, want the 40 dead letters", len(got))
		}
		for i, m := range []*webhook.Manager{c.a, c.b} {
			if err := m.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if w, err := m.GetWebhook(ctx, "down"); err != nil || w.DeadLetters != 0 {
				t.Fatalf("%s after the replays: %+v, %v; want no dead letters", nodeNames[i], w, err)
			}
		}
		t.Logf("A replayed %d, B %d", len(reps[0].Delivered), len(reps[1].Delivered))
	})
}

func TestSyncEveryStartsAndStopsAnEndpointPutThroughTheOtherNodeWithoutACall(t *testing.T) {
	c := newCluster(t, "pebble", func(o *webhook.Options) { o.SyncEvery = 20 * time.Millisecond })
	ctx := context.Background()
	r := newReceiver(t, "s")
	if _, _, err := c.a.PutWebhook(ctx, stockd.PutWebhook{Name: "hook", URL: r.srv.URL, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B runs the endpoint put through A", func() bool {
		w, err := c.b.GetWebhook(ctx, "hook")
		return err == nil && w.URL == r.srv.URL
	})
	if _, err := c.a.DeleteWebhook(ctx, "hook"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B stops the endpoint deleted through A", func() bool {
		_, err := c.b.GetWebhook(ctx, "hook")
		return stockd.ErrorCode(err) == stockd.CodeNotFound
	})
}
