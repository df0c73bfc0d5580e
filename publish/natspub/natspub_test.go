package natspub_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/publish"
	"github.com/stockd/stockd/publish/natspub"
	"github.com/stockd/stockd/publish/publishtest"
)

// events returns n events of partition p from position from on, of SKU sku
// (none when empty).
func events(p int, from uint64, n int, sku string) []stockd.Event {
	var out []stockd.Event
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range n {
		pos := from + uint64(i)
		var data stockd.EventData = stockd.StockReceived{Location: "w1", Quantity: int64(pos)}
		if sku == "" {
			data = stockd.LocationConfigured{Location: stockd.Location{ID: fmt.Sprintf("w%d", pos), Kind: stockd.KindWarehouse}}
		}
		out = append(out, stockd.Event{Partition: p, Position: pos, SKU: sku, Version: pos, Time: t0.Add(time.Duration(pos) * time.Second), CommandID: fmt.Sprintf("c-%d", pos), Data: data})
	}
	return out
}

// fakeLog serves a fixed set of events, for checkStream.
type fakeLog struct {
	stockd.Log
	parts [][]stockd.Event
}

func (l fakeLog) Partitions() int { return len(l.parts) }
func (l fakeLog) ReadPartition(_ context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	var out []stockd.Event
	for _, e := range l.parts[p] {
		if e.Position > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}
func (l fakeLog) head(p int) uint64 { return uint64(len(l.parts[p])) }

func TestEveryEventGoesToItsPartitionsSubjectWithItsIDTypeAndBody(t *testing.T) {
	ns := runNATS(t, t.TempDir(), -1)
	sink := newSink(t, natspub.Options{URL: ns.ClientURL()})
	ctx := context.Background()
	log := fakeLog{parts: make([][]stockd.Event, 6)}
	log.parts[0] = events(0, 1, 3, "A")
	log.parts[5] = append(events(5, 1, 1, ""), events(5, 2, 2, "B")...)
	for p, evs := range log.parts {
		if len(evs) > 0 {
			if err := sink.Publish(ctx, p, evs); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkStream(t, log, log.head, natspub.DefaultSubjectPrefix, stored(t, ns.ClientURL(), natspub.DefaultStream))

	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, natspub.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Subjects; !slices.Equal(got, []string{"stockd.events.*"}) {
		t.Fatalf("stream subjects %v", got)
	}
}

func TestTheSameEventsPublishedAgainAreStoredOnce(t *testing.T) {
	ns := runNATS(t, t.TempDir(), -1)
	sink := newSink(t, natspub.Options{URL: ns.ClientURL()})
	ctx := context.Background()
	all := events(2, 1, 100, "A")
	log := fakeLog{parts: [][]stockd.Event{nil, nil, all}}
	// A whole batch twice, then one overlapping both ends of what was sent,
	// as a Runner redelivers after a failure part-way.
	for _, batch := range [][]stockd.Event{all[:60], all[:60], all[40:], all[10:90]} {
		if err := sink.Publish(ctx, 2, batch); err != nil {
			t.Fatal(err)
		}
	}
	checkStream(t, log, log.head, natspub.DefaultSubjectPrefix, stored(t, ns.ClientURL(), natspub.DefaultStream))
}

func TestAStreamThatExistsWithOtherSubjectsIsGivenOurs(t *testing.T) {
	ns := runNATS(t, t.TempDir(), -1)
	ctx := context.Background()
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	sink := newSink(t, natspub.Options{URL: ns.ClientURL(), Stream: "EVENTS", SubjectPrefix: "shop.stock"})
	if err := sink.Publish(ctx, 1, events(1, 1, 2, "A")); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Subjects; !slices.Equal(got, []string{"orders.>", "shop.stock.*"}) {
		t.Fatalf("stream subjects %v", got)
	}
	msgs := stored(t, ns.ClientURL(), "EVENTS")
	if len(msgs) != 2 || msgs[0].subject != "shop.stock.1" {
		t.Fatalf("stored %+v", msgs)
	}
	// A stream whose subjects already take ours is left alone.
	sink2 := newSink(t, natspub.Options{URL: ns.ClientURL(), Stream: "EVENTS", SubjectPrefix: "orders.stock"})
	if err := sink2.Publish(ctx, 1, events(1, 3, 1, "A")); err != nil {
		t.Fatal(err)
	}
	if st, _ := js.Stream(ctx, "EVENTS"); len(st.CachedInfo().Config.Subjects) != 2 {
		t.Fatalf("stream subjects %v", st.CachedInfo().Config.Subjects)
	}
}

func TestAStreamDeletedUnderThePublisherIsMadeAgain(t *testing.T) {
	ns := runNATS(t, t.TempDir(), -1)
	sink := newSink(t, natspub.Options{URL: ns.ClientURL(), Timeout: 2 * time.Second})
	ctx := context.Background()
	if err := sink.Publish(ctx, 0, events(0, 1, 1, "A")); err != nil {
		t.Fatal(err)
	}
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(ctx, natspub.DefaultStream); err != nil {
		t.Fatal(err)
	}
	// The first Publish fails (no stream answers); the Runner would retry.
	var err error
	for range 2 {
		if err = sink.Publish(ctx, 0, events(0, 2, 1, "A")); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("publishing after the stream was deleted: %v", err)
	}
	if msgs := stored(t, ns.ClientURL(), natspub.DefaultStream); len(msgs) != 1 || msgs[0].msgID != "0-2" {
		t.Fatalf("stored %+v", msgs)
	}
}

func TestAPublishWhileTheServerIsDownFailsWithinItsTimeout(t *testing.T) {
	ns := runNATS(t, t.TempDir(), -1)
	sink := newSink(t, natspub.Options{URL: ns.ClientURL(), Timeout: 300 * time.Millisecond})
	ctx := context.Background()
	if err := sink.Publish(ctx, 0, events(0, 1, 10, "A")); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	for i := range 3 {
		start := time.Now()
		err := sink.Publish(ctx, 0, events(0, 11, 10, "A"))
		if err == nil {
			t.Fatal("a Publish with the server down succeeded")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("attempt %d: Publish took %v to fail, timeout 300ms: %v", i, d, err)
		}
	}
	// A cancelled context ends a Publish at once, whatever the timeout.
	slow := newSink(t, natspub.Options{URL: ns.ClientURL(), Timeout: time.Hour})
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- slow.Publish(cctx, 0, events(0, 11, 10, "A")) }()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Publish: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled Publish did not return")
	}
}

// TestARunnerDeliversEverythingThroughABrokerRestart stops the NATS server
// while events are written and published, writes on, starts it again over
// the same data on the same port: every event arrives, once, in order.
func TestARunnerDeliversEverythingThroughABrokerRestart(t *testing.T) {
	natsDir := t.TempDir()
	ns := runNATS(t, natsDir, -1)
	url, port := ns.ClientURL(), portOf(ns)
	srv := e2e.Start(t, e2e.Options{Partitions: 4, NoReadModel: true})
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	sink := &publishtest.CountingSink{Sink: newSink(t, natspub.Options{URL: url, Timeout: 300 * time.Millisecond})}
	r, err := publish.Start(context.Background(), sink, publish.Options{
		Name: "nats", Log: srv.Log, Checkpoints: srv.Store, DurableHead: srv.Engine.DurableHead, Heads: srv.Heads,
		Batch: 64, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	w := publishtest.StartWriter(t, srv, "r", 4)
	w.WaitFor(t, 500)
	publishtest.Eventually(t, 30*time.Second, func() bool { return r.Position(0) > 0 }, "the first events to be published")
	ns.Shutdown()
	ns.WaitForShutdown()
	failed := sink.Failures.Load()
	w.WaitFor(t, w.Written()+500)
	publishtest.Eventually(t, 30*time.Second, func() bool { return sink.Failures.Load() > failed }, "a Publish to fail while the server is down")
	lagWhileDown := r.Lag()
	runNATS(t, natsDir, port)
	w.WaitFor(t, w.Written()+500)
	w.Stop()
	publishtest.WaitCaughtUp(t, r)
	t.Logf("%d events, %d Publish calls, %d failed; lag %d while the server was down", w.Written(), sink.Calls.Load(), sink.Failures.Load(), lagWhileDown)
	if lagWhileDown == 0 {
		t.Fatal("nothing waited for the server: the test proved nothing")
	}
	checkStream(t, srv.Log, srv.Engine.DurableHead, natspub.DefaultSubjectPrefix, stored(t, url, natspub.DefaultStream))
}

// natsApp starts stockd over dir (new when empty) publishing to url.
func natsApp(t *testing.T, dir, url string, batch int) *e2e.Server {
	return e2e.Start(t, e2e.Options{Dir: dir, Partitions: 4, NoReadModel: true, App: func(c *app.Config) {
		c.Publish.NATS = url
		c.Publish.Runner = publish.Options{Batch: batch, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	}})
}

// TestAnAppClosedMidStreamAndStartedAgainLosesNothing closes stockd while
// its NATS publisher is behind, starts it again over the same data, and
// finds every event in the stream once, in order: the checkpoint
// "publish/nats" takes the new publisher on from where the old one stopped,
// and what was sent but not checkpointed is dropped by its Nats-Msg-Id.
func TestAnAppClosedMidStreamAndStartedAgainLosesNothing(t *testing.T) {
	ns := runNATS(t, t.TempDir(), -1)
	url := ns.ClientURL()
	srv := natsApp(t, "", url, 1)
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	if len(srv.Publishers) != 1 || srv.Publishers[0].Name() != "nats" {
		t.Fatalf("publishers %v", srv.Publishers)
	}
	w := publishtest.StartWriter(t, srv, "a", 8)
	w.WaitFor(t, 2000)
	w.Stop()
	lagAtClose := srv.Publishers[0].Lag()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	var cp []uint64
	srv = natsApp(t, srv.Dir, url, 64)
	for p := range 4 {
		c, err := srv.Store.Checkpoint(context.Background(), publish.Consumer("nats"), p)
		if err != nil {
			t.Fatal(err)
		}
		cp = append(cp, c.Position)
	}
	t.Logf("closed %d events behind; checkpoints at restart %v, heads %d %d %d %d", lagAtClose, cp,
		srv.Engine.DurableHead(0), srv.Engine.DurableHead(1), srv.Engine.DurableHead(2), srv.Engine.DurableHead(3))
	if lagAtClose == 0 {
		t.Fatal("the publisher had caught up before the close: the test proved nothing")
	}
	w = publishtest.StartWriter(t, srv, "b", 4)
	w.WaitFor(t, 500)
	w.Stop()
	publishtest.WaitCaughtUp(t, srv.Publishers[0])
	checkStream(t, srv.Log, srv.Engine.DurableHead, natspub.DefaultSubjectPrefix, stored(t, url, natspub.DefaultStream))
}

// TestReservationsThroughTheAPIArriveOnTheirPartitionsSubject runs the
// production wiring: a reservation made over HTTP, its events on
// stockd.events.<partition>.
func TestReservationsThroughTheAPIArriveOnTheirPartitionsSubject(t *testing.T) {
	ns := runNATS(t, t.TempDir(), -1)
	srv := natsApp(t, "", ns.ClientURL(), 0)
	ctx := context.Background()
	c := srv.Client
	e2e.ConfigureLocations(t, c, "w1")
	if _, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 10}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Reserve(ctx, stockd.Reserve{ID: "cart-1", TTL: time.Minute, Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 2}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, stockd.CommitReservation{ID: "cart-1"}); err != nil {
		t.Fatal(err)
	}
	publishtest.WaitCaughtUp(t, srv.Publishers[0])
	msgs := stored(t, ns.ClientURL(), natspub.DefaultStream)
	checkStream(t, srv.Log, srv.Engine.DurableHead, natspub.DefaultSubjectPrefix, msgs)
	p := stockd.PartitionOf("A", 4)
	var types []string
	for _, m := range msgs {
		if m.event.SKU == "A" {
			if m.subject != fmt.Sprintf("stockd.events.%d", p) {
				t.Fatalf("event %s of A on %s, want partition %d", m.event.ID, m.subject, p)
			}
			types = append(types, m.typ)
		}
	}
	for _, want := range []string{"StockReceived", "StockReserved", "ReservationCommitted"} {
		if !slices.Contains(types, want) {
			t.Fatalf("events of A on the stream: %v; no %s", types, want)
		}
	}
	t.Logf("events of A: %v", types)

	// The app's /metrics count what the publisher did.
	mfs, err := srv.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var published float64
	for _, mf := range mfs {
		if mf.GetName() == "stockd_publisher_events_total" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "nats" {
					published = m.GetCounter().GetValue()
				}
			}
		}
	}
	if int(published) != len(msgs) {
		t.Fatalf("stockd_publisher_events_total{publisher=\"nats\"} = %v, %d messages in the stream", published, len(msgs))
	}
}

// TestTheLocalServer publishes through a Runner to the NATS server named by
// STOCKD_TEST_NATS (.ci/run sets it), on a stream and subjects of its own,
// deleted at the end.
func TestTheLocalServer(t *testing.T) {
	url := os.Getenv("STOCKD_TEST_NATS")
	if url == "" {
		t.Skip("STOCKD_TEST_NATS is not set: no external NATS server to test against (.ci/run sets it to nats://127.0.0.1:4222)")
	}
	suffix := fmt.Sprintf("%d_%x", os.Getpid(), rand.Uint64())
	stream, prefix := "STOCKD_TEST_"+suffix, "stockd_test."+suffix+".events"
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("STOCKD_TEST_NATS=%s: %v", url, err)
	}
	js, _ := jetstream.New(nc)
	t.Cleanup(func() {
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("deleting stream %s: %v", stream, err)
		}
	})
	srv := e2e.Start(t, e2e.Options{Partitions: 4, NoReadModel: true})
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	sink := newSink(t, natspub.Options{URL: url, Stream: stream, SubjectPrefix: prefix})
	r, err := publish.Start(context.Background(), sink, publish.Options{
		Name: "nats", Log: srv.Log, Checkpoints: srv.Store, DurableHead: srv.Engine.DurableHead, Heads: srv.Heads,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := publishtest.StartWriter(t, srv, "r", 4)
	w.WaitFor(t, 1000)
	w.Stop()
	publishtest.WaitCaughtUp(t, r)
	// The same events again, as after a crash before the checkpoint.
	for p := range 4 {
		evs, err := srv.Log.ReadPartition(context.Background(), p, 0, 50)
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Publish(context.Background(), p, evs); err != nil {
			t.Fatal(err)
		}
	}
	checkStream(t, srv.Log, srv.Engine.DurableHead, prefix, stored(t, url, stream))
}

// TestStockdServesWithTheServerDownAndPublishesWhenItComes starts stockd
// publishing to a NATS server that is not running: it opens and takes
// commands all the same, and publishes everything once the server starts.
func TestStockdServesWithTheServerDownAndPublishesWhenItComes(t *testing.T) {
	dir := t.TempDir()
	ns := runNATS(t, dir, -1)
	url, port := ns.ClientURL(), portOf(ns)
	ns.Shutdown()
	ns.WaitForShutdown()
	srv := natsApp(t, "", url, 0)
	ctx := context.Background()
	e2e.ConfigureLocations(t, srv.Client, "w1")
	for i := range 50 {
		if _, _, err := srv.Client.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("r-%d", i), SKU: fmt.Sprintf("sku-%d", i%7), Location: "w1", Quantity: 1}); err != nil {
			t.Fatalf("receive with the NATS server down: %v", err)
		}
	}
	if lag := srv.Publishers[0].Lag(); lag == 0 {
		t.Fatal("published with no server")
	}
	runNATS(t, dir, port)
	publishtest.WaitCaughtUp(t, srv.Publishers[0])
	checkStream(t, srv.Log, srv.Engine.DurableHead, natspub.DefaultSubjectPrefix, stored(t, url, natspub.DefaultStream))
}
