package publish_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/publish"
)

// flakySink takes events like a receiver that fails at random: a failed call
// may have delivered a prefix of its events first, as a broker that took
// some messages before the connection dropped.
type flakySink struct {
	mu        sync.Mutex
	rng       *rand.Rand
	failRate  float64
	delivered map[int][]uint64 // positions per partition, in delivery order
	block     chan struct{}    // when set, Publish waits on it or on ctx
}

func (s *flakySink) Publish(ctx context.Context, p int, events []stockd.Event) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(events)
	fail := s.rng.Float64() < s.failRate
	if fail {
		n = s.rng.IntN(len(events) + 1)
	}
	for _, e := range events[:n] {
		if e.Partition != p {
			return fmt.Errorf("event of partition %d offered as partition %d", e.Partition, p)
		}
		s.delivered[p] = append(s.delivered[p], e.Position)
	}
	if fail {
		return errors.New("receiver failed")
	}
	return nil
}

func (s *flakySink) positions(p int) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.delivered[p]...)
}

func receive(t *testing.T, srv *e2e.Server, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		_, _, err := srv.Engine.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("r-%d", i), SKU: fmt.Sprintf("sku-%d", i%37), Location: "w1", Quantity: 1})
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
	}
}

// waitCaughtUp waits until the runner has checkpointed every durable event.
func waitCaughtUp(t *testing.T, srv *e2e.Server, r *publish.Runner) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.Lag() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("publisher still %d events behind after 30 s", r.Lag())
		}
		<-time.After(5 * time.Millisecond)
	}
}

// checkEveryEventInOrder checks that, in every partition, the first
// delivery of each position came in position order and that every position
// from 1 to the durable head was delivered: at least once, nothing lost,
// nothing reordered.
func checkEveryEventInOrder(t *testing.T, srv *e2e.Server, s *flakySink) (duplicates int) {
	t.Helper()
	for p := range srv.Engine.Partitions() {
		head := srv.Engine.DurableHead(p)
		seen := map[uint64]bool{}
		var next uint64 = 1
		for _, pos := range s.positions(p) {
			if seen[pos] {
				duplicates++
				continue
			}
			if pos != next {
				t.Fatalf("partition %d: first delivery of position %d came when %d was expected", p, pos, next)
			}
			seen[pos] = true
			next++
		}
		if next-1 != head {
			t.Fatalf("partition %d: delivered up to %d, durable head %d", p, next-1, head)
		}
	}
	return duplicates
}

func TestAReceiverThatFailsHalfTheTimeStillGetsEveryEventInOrder(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Partitions: 4, NoReadModel: true})
	ctx := context.Background()
	if _, err := srv.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: "warehouse"}); err != nil {
		t.Fatal(err)
	}
	sink := &flakySink{rng: rand.New(rand.NewPCG(1, 2)), failRate: 0.5, delivered: map[int][]uint64{}}
	m := publish.NewMetrics()
	r, err := publish.Start(ctx, sink, publish.Options{
		Name: "flaky", Log: srv.Log, Checkpoints: srv.Store, DurableHead: srv.Engine.DurableHead, Heads: srv.Heads,
		Batch: 16, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	receive(t, srv, 0, 500)
	waitCaughtUp(t, srv, r)
	dups := checkEveryEventInOrder(t, srv, sink)
	if dups == 0 {
		t.Fatal("a receiver failing half the time after taking part of a batch caused no redelivery: the test is not exercising retries")
	}
	t.Logf("500 receipts delivered with %d redeliveries", dups)
}

func TestARestartedPublisherResumesFromItsCheckpointWithNothingLost(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Partitions: 4, NoReadModel: true})
	ctx := context.Background()
	if _, err := srv.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: "warehouse"}); err != nil {
		t.Fatal(err)
	}
	sink := &flakySink{rng: rand.New(rand.NewPCG(3, 4)), delivered: map[int][]uint64{}}
	opts := publish.Options{Name: "restart", Log: srv.Log, Checkpoints: srv.Store, DurableHead: srv.Engine.DurableHead, Heads: srv.Heads, Batch: 8}
	r, err := publish.Start(ctx, sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	receive(t, srv, 0, 100)
	waitCaughtUp(t, srv, r)
	// Kill it while a delivery is stuck: the stuck events are not
	// checkpointed, so the next runner sends them again.
	sink.block = make(chan struct{})
	receive(t, srv, 100, 200)
	r.Close()
	before := map[int]uint64{}
	for p := range srv.Engine.Partitions() {
		before[p] = r.Position(p)
	}
	// The whole server restarts too: checkpoints are durable.
	srv = srv.Restart(t)
	sink.block = nil
	opts.Log, opts.Checkpoints, opts.DurableHead, opts.Heads = srv.Log, srv.Store, srv.Engine.DurableHead, srv.Heads
	r, err = publish.Start(ctx, sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for p, pos := range before {
		if got := r.Position(p); got != pos {
			t.Fatalf("partition %d: restarted at %d, checkpoint was %d", p, got, pos)
		}
	}
	receive(t, srv, 200, 300)
	waitCaughtUp(t, srv, r)
	if dups := checkEveryEventInOrder(t, srv, sink); dups != 0 {
		t.Fatalf("%d events delivered twice although every delivery before the restart was checkpointed", dups)
	}
}

func TestLagSecondsGrowsWhileTheSinkIsStuckAndIsZeroOnceCaughtUp(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Partitions: 2, NoReadModel: true})
	ctx := context.Background()
	if _, err := srv.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: "warehouse"}); err != nil {
		t.Fatal(err)
	}
	sink := &flakySink{rng: rand.New(rand.NewPCG(5, 6)), delivered: map[int][]uint64{}, block: make(chan struct{})}
	r, err := publish.Start(ctx, sink, publish.Options{Name: "stuck", Log: srv.Log, Checkpoints: srv.Store, DurableHead: srv.Engine.DurableHead, Heads: srv.Heads})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	receive(t, srv, 0, 10)
	written := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for r.LagSeconds() < 0.05 {
		if time.Now().After(deadline) {
			t.Fatalf("LagSeconds = %v with a stuck sink 10 s after the events were written", r.LagSeconds())
		}
		<-time.After(5 * time.Millisecond)
	}
	if lag, since := r.LagSeconds(), time.Since(written).Seconds(); lag > since+1 {
		t.Fatalf("LagSeconds = %v, but the events are only %v s old", lag, since)
	}
	close(sink.block)
	waitCaughtUp(t, srv, r)
	if lag := r.LagSeconds(); lag != 0 {
		t.Fatalf("LagSeconds = %v once caught up; want 0", lag)
	}
}

// countingLog counts the reads of the log and the events they return.
type countingLog struct {
	stockd.Log
	mu            sync.Mutex
	reads, events int
}

func (l *countingLog) ReadPartition(ctx context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	events, err := l.Log.ReadPartition(ctx, p, after, limit)
	l.mu.Lock()
	l.reads++
	l.events += len(events)
	l.mu.Unlock()
	return events, err
}

// checkpointSink checks, at every call, that the batch is at most batch
// events and starts right after the saved checkpoint: everything offered
// before was checkpointed before more was offered.
type checkpointSink struct {
	t      *testing.T
	store  stockd.Checkpoints
	name   string
	batch  int
	mu     sync.Mutex
	calls  int
	events int
}

func (s *checkpointSink) Publish(ctx context.Context, p int, events []stockd.Event) error {
	if len(events) == 0 || len(events) > s.batch {
		s.t.Errorf("offered %d events at once, Batch is %d", len(events), s.batch)
	}
	c, err := s.store.Checkpoint(ctx, publish.Consumer(s.name), p)
	if err != nil {
		return err
	}
	if events[0].Position != c.Position+1 {
		s.t.Errorf("partition %d: offered from position %d with the checkpoint at %d", p, events[0].Position, c.Position)
	}
	s.mu.Lock()
	s.calls++
	s.events += len(events)
	s.mu.Unlock()
	return nil
}

// A Runner with a small Batch reads the log in larger chunks (a stored
// record is decoded whole for any part of it), and still offers at most
// Batch events at a time, each batch checkpointed before the next.
func TestASmallBatchIsOfferedAndCheckpointedBatchByBatchFromLargerReads(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Partitions: 1, NoReadModel: true})
	ctx := context.Background()
	if _, err := srv.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: "warehouse"}); err != nil {
		t.Fatal(err)
	}
	receive(t, srv, 0, 300)
	lg := &countingLog{Log: srv.Log}
	sink := &checkpointSink{t: t, store: srv.Store, name: "small", batch: 8}
	r, err := publish.Start(ctx, sink, publish.Options{Name: "small", Log: lg, Checkpoints: srv.Store, DurableHead: srv.Engine.DurableHead, Heads: srv.Heads, Batch: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitCaughtUp(t, srv, r)
	head := int(srv.Engine.DurableHead(0))
	if sink.events != head || sink.calls != (head+7)/8 {
		t.Fatalf("%d events in %d calls; want the %d durable events in batches of 8", sink.events, sink.calls, head)
	}
	if lg.reads > 1 || lg.events != head {
		t.Fatalf("%d reads of the log returned %d events; want the %d durable events in one read", lg.reads, lg.events, head)
	}
}
