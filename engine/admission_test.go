package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/pebble"
)

// gatedStore holds appends and SKU reads while their gates are closed, so
// that tests build queues deterministically. It has the plain Store methods
// only: the engine appends each batch with Append, from its completer.
type gatedStore struct {
	stockd.Store
	appends *gate
	reads   *gate
}

// gate blocks callers while closed and counts those waiting.
type gate struct {
	mu      sync.Mutex
	open    chan struct{} // closed while the gate is open
	waiting atomic.Int64
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) close() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	g.mu.Unlock()
}

func (g *gate) pass() {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	g.waiting.Add(1)
	<-ch
	g.waiting.Add(-1)
}

// await waits until n callers wait at the gate.
func (g *gate) await(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.waiting.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d callers at the gate, want %d", g.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *gatedStore) Append(ctx context.Context, p int, expected uint64, b stockd.Batch) error {
	s.appends.pass()
	return s.Store.Append(ctx, p, expected, b)
}

func (s *gatedStore) ReadSKU(ctx context.Context, sku string, q stockd.SKUQuery) ([]stockd.Event, error) {
	s.reads.pass()
	return s.Store.ReadSKU(ctx, sku, q)
}

// openGated starts an engine over a gated Pebble store of one partition.
func openGated(t *testing.T, opts Options) (*Engine, *gatedStore) {
	t.Helper()
	ps, err := pebble.Open(t.TempDir(), pebble.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	store := &gatedStore{Store: ps, appends: newGate(), reads: newGate()}
	opts.Logger = slog.New(slog.DiscardHandler)
	e, err := Open(context.Background(), store, opts)
	if err != nil {
		ps.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		store.appends.release()
		store.reads.release()
		e.Close(context.Background())
		ps.Close()
	})
	configure(t, e, "w1", "w2")
	return e, store
}

// manualClock is a clock for admission that moves only when told.
type manualClock struct{ ns atomic.Int64 }

func (c *manualClock) now() int64              { return c.ns.Load() }
func (c *manualClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestAdmissionEstimate(t *testing.T) {
	ms := func(n float64) int64 { return int64(n * float64(time.Millisecond)) }
	a := &admission{maxBatch: 100, pipeline: 2}
	limit := 100 * time.Millisecond
	clock := func() int64 { return ms(1000) }

	// Nothing measured: the queue alone refuses nothing.
	for range 1000 {
		if err := a.admit(limit, clock); err != nil {
			t.Fatalf("unmeasured partition refused: %v", err)
		}
	}
	a.took(1000, ms(1000)) // the decider takes them all as one batch
	if q := a.queued.Load(); q != 0 {
		t.Fatalf("queued = %d after the decider took everything", q)
	}

	// Measure: 10 µs per command, backlogged batches of 100 completing
	// every 21 ms: 20 ms per batch.
	a = &admission{maxBatch: 100, pipeline: 2}
	at := ms(0)
	for range 20 {
		a.took(100, at)
		a.decided(100, ms(1))
		a.done(100, at, at+ms(21), true)
		at += ms(21)
	}
	if got := time.Duration(loadF(&a.perCmd)); got != 10*time.Microsecond {
		t.Errorf("perCmd = %v, want 10µs", got)
	}
	if got := time.Duration(loadF(&a.perBatch)); got != 20*time.Millisecond {
		t.Errorf("perBatch = %v, want 20ms", got)
	}
	// An idle partition: a request finds nothing ahead of it.
	if w, _ := a.estimate(0, at); w != 0 {
		t.Errorf("idle wait = %v", w)
	}
	// Two batches in flight, 450 queued: 2 + 4 + 1 − 2 = 5 batches
	// (100 ms) and 450 commands (4.5 ms).
	a.took(0, at)
	a.took(0, at)
	a.queued.Store(450)
	if w, _ := a.estimate(450, at+ms(1)); w != 104500*time.Microsecond {
		t.Errorf("wait = %v, want 104.5ms", w)
	}
	// So one more is refused, with the pause until the queue is short
	// enough again; a request that joins the next batch is not.
	err := a.admit(limit, func() int64 { return at + ms(1) })
	var se *stockd.Error
	if !errors.As(err, &se) || se.Code != stockd.CodeOverloaded || se.RetryAfter != 10*time.Millisecond {
		t.Fatalf("admit = %#v, want overloaded with a RetryAfter of 10ms", err)
	}
	if q := a.queued.Load(); q != 450 {
		t.Fatalf("a refusal left queued = %d", q)
	}
	a.queued.Store(50)
	storeF(&a.perBatch, float64(200*time.Millisecond))
	if err := a.admit(limit, func() int64 { return at + ms(1) }); err != nil {
		t.Errorf("a request joining the next batch was refused although a batch takes 200 ms: %v", err)
	}
	// A stall: nothing completed for 500 ms while batches are in flight.
	if err := a.admit(limit, func() int64 { return at + ms(500) }); !stockd.IsCode(err, stockd.CodeOverloaded) {
		t.Errorf("admit during a stall = %v, want overloaded", err)
	}
}

// TestOverloadIsRefusedAtOnce floods one partition whose store has stopped
// syncing: every request beyond what was admitted before the stall must be
// refused at once, while the store still holds every append (so no refusal
// waited for a batch), with a RetryAfter; and no promise is broken.
func TestOverloadIsRefusedAtOnce(t *testing.T) {
	ctx := context.Background()
	clock := &manualClock{}
	limit := 100 * time.Millisecond
	e, store := openGated(t, Options{MaxQueueWait: limit, clock: clock.now})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "hot", Location: "w1", Quantity: 100})
	must(err)

	// The store stops syncing with one reservation on its way to disk.
	store.appends.close()
	first := make(chan error, 1)
	go func() {
		_, _, err := e.Reserve(ctx, stockd.Reserve{ID: "early", Lines: []stockd.ReserveLine{{SKU: "hot", Quantity: 1}}})
		first <- err
	}()
	store.appends.await(t, 1)
	clock.advance(2 * limit)

	const flood = 2000
	var wg sync.WaitGroup
	errs := make([]error, flood)
	took := make([]time.Duration, flood)
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			_, _, errs[i] = e.Reserve(ctx, stockd.Reserve{ID: fmt.Sprint("c-", i), Lines: []stockd.ReserveLine{{SKU: "hot", Quantity: 1}}})
			took[i] = time.Since(t0)
		}()
	}
	// Every one of them returns while the store still holds the first
	// append: none of them waited for a batch.
	wg.Wait()
	if n := store.appends.waiting.Load(); n != 1 {
		t.Fatalf("%d appends waiting, want the first one still", n)
	}
	for i, err := range errs {
		var se *stockd.Error
		if !errors.As(err, &se) || se.Code != stockd.CodeOverloaded || se.RetryAfter <= 0 {
			t.Fatalf("request %d during the stall: %#v, want overloaded with a RetryAfter", i, err)
		}
	}
	slices.Sort(took)
	t.Logf("refusals: p50 %v, max %v (MaxQueueWait %v)", took[flood/2], took[flood-1], limit)
	if e.QueueWait(0) <= limit {
		t.Errorf("QueueWait = %v during the stall", e.QueueWait(0))
	}

	// The store syncs again: the admitted reservation is answered, and a
	// new flood is served up to the stock and no further.
	store.appends.release()
	must(<-first)
	var granted atomic.Int64
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := e.Reserve(ctx, stockd.Reserve{ID: fmt.Sprint("d-", i), Lines: []stockd.ReserveLine{{SKU: "hot", Quantity: 1}}})
			switch {
			case err == nil:
				granted.Add(1)
			case stockd.IsCode(err, stockd.CodeInsufficientStock), stockd.IsCode(err, stockd.CodeOverloaded):
			default:
				t.Errorf("reserve: %v", err)
			}
		}()
	}
	wg.Wait()
	s, err := e.SKU(ctx, "hot", stockd.AsOf{})
	must(err)
	if g := granted.Load() + 1; g > 100 || s.Reserved != g || s.OnHand != 100 || s.Available != 100-g {
		t.Fatalf("granted %d of 100: %+v", g, s)
	}
}

// TestTimeTravelReadsAreLimited: with MaxHistoryReads reads of the past
// running, one more is refused at once with a RetryAfter; once they finish,
// the next is served.
func TestTimeTravelReadsAreLimited(t *testing.T) {
	ctx := context.Background()
	e, store := openGated(t, Options{MaxHistoryReads: 2})
	r, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 5})
	if err != nil {
		t.Fatal(err)
	}
	store.reads.close()
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := e.SKU(ctx, "A", stockd.AsOf{Position: r.Position})
			done <- err
		}()
	}
	store.reads.await(t, 2)
	_, err = e.SKU(ctx, "A", stockd.AsOf{Position: r.Position})
	var se *stockd.Error
	if !errors.As(err, &se) || se.Code != stockd.CodeOverloaded || se.RetryAfter <= 0 || se.Message != "too many time-travel reads in progress; retry shortly" {
		t.Fatalf("third read = %#v, want overloaded with a RetryAfter", err)
	}
	// Reads of the present do not count.
	if _, err := e.SKU(ctx, "A", stockd.AsOf{}); err != nil {
		t.Fatal(err)
	}
	store.reads.release()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if v, err := e.SKU(ctx, "A", stockd.AsOf{Position: r.Position}); err != nil || v.OnHand != 5 {
		t.Fatalf("read after the others finished: %+v, %v", v, err)
	}
}

// TestAsOfReportsThePositionItReflects: a state of the past carries the
// position of the last event it reflects, not the head of the log, and the
// moment it was asked for.
func TestAsOfReportsThePositionItReflects(t *testing.T) {
	ctx := context.Background()
	var now atomic.Int64
	t0 := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	e, _ := openGated(t, Options{Now: func() time.Time { return t0.Add(time.Duration(now.Load())) }})
	step := func() { now.Add(int64(time.Minute)) }
	a1, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "a-1", SKU: "A", Location: "w1", Quantity: 5})
	if err != nil {
		t.Fatal(err)
	}
	step()
	for i := range 3 { // other SKUs of the same (only) partition
		if _, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprint("b-", i), SKU: "B", Location: "w1", Quantity: 1}); err != nil {
			t.Fatal(err)
		}
		step()
	}
	a2, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "a-2", SKU: "A", Location: "w1", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	// A's last event before a-2 is the BackInStock right after a-1's
	// receipt, in the same decision.
	a1Last := a1.Position + 1
	moment := t0.Add(2 * time.Minute) // after B's first receipts, before a-2
	v, err := e.SKU(ctx, "A", stockd.AsOf{Time: moment})
	if err != nil {
		t.Fatal(err)
	}
	if v.OnHand != 5 || v.Position != a1Last || !v.AsOf.Equal(moment) {
		t.Errorf("as of %v: on hand %d at position %d as of %v; want 5 at %d (a-1) as of %v", moment, v.OnHand, v.Position, v.AsOf, a1Last, moment)
	}
	v, err = e.SKU(ctx, "A", stockd.AsOf{Position: a2.Position - 1})
	if err != nil {
		t.Fatal(err)
	}
	if v.OnHand != 5 || v.Position != a1Last || !v.AsOf.Equal(a1.Time) {
		t.Errorf("as of position %d: on hand %d at position %d as of %v; want 5 at %d as of %v", a2.Position-1, v.OnHand, v.Position, v.AsOf, a1Last, a1.Time)
	}
	v, err = e.SKU(ctx, "A", stockd.AsOf{Position: a2.Position + 100})
	if err != nil {
		t.Fatal(err)
	}
	if v.OnHand != 7 || v.Position != a2.Position {
		t.Errorf("as of the head: on hand %d at position %d; want 7 at %d", v.OnHand, v.Position, a2.Position)
	}
}

// TestAsOfPagesAgreeWithWholeReplay rebuilds a SKU at random points of a
// random history in pages of 7 events and compares each with a fold of the
// whole history up to that point.
func TestAsOfPagesAgreeWithWholeReplay(t *testing.T) {
	defer func(n int) { asOfPage = n }(asOfPage)
	asOfPage = 7
	ctx := context.Background()
	e, store := openGated(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	skus := []string{"A", "B"}
	var held []string
	for i := range 400 {
		sku := skus[rng.IntN(2)]
		switch r := rng.IntN(10); {
		case r < 2:
			e.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprint("r-", i), SKU: sku, Location: []string{"w1", "w2"}[rng.IntN(2)], Quantity: int64(1 + rng.IntN(5))})
		case r < 6:
			id := fmt.Sprint("c-", i)
			if _, _, err := e.Reserve(ctx, stockd.Reserve{ID: id, TTL: time.Hour, Lines: []stockd.ReserveLine{{SKU: sku, Quantity: int64(1 + rng.IntN(2))}}}); err == nil {
				held = append(held, id)
			}
		case r < 8 && len(held) > 0:
			k := rng.IntN(len(held))
			e.Commit(ctx, stockd.CommitReservation{ID: held[k]})
			held = slices.Delete(held, k, k+1)
		case len(held) > 0:
			k := rng.IntN(len(held))
			e.Release(ctx, stockd.ReleaseReservation{ID: held[k]})
			held = slices.Delete(held, k, k+1)
		}
	}
	for _, sku := range skus {
		all, err := store.ReadSKU(ctx, sku, stockd.SKUQuery{})
		if err != nil || len(all) < 50 {
			t.Fatalf("history of %s: %d events, %v", sku, len(all), err)
		}
		for range 20 {
			cut := 1 + rng.IntN(len(all))
			at := all[cut-1].Position + uint64(rng.IntN(2)) // the event's own position, or one after
			var upTo []stockd.Event
			for _, ev := range all {
				if ev.Position <= at {
					upTo = append(upTo, ev)
				}
			}
			want, _, err := stockd.ReplaySKU(sku, 0, 1, stockd.DefaultLimits, upTo)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.SKU(ctx, sku, stockd.AsOf{Position: at})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s as of %d:\npaged %+v\nwhole %+v", sku, at, got, want)
			}
		}
	}
}

// configure configures locations, as a shop does before receiving stock.
func configure(t *testing.T, e *Engine, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := e.ConfigureLocation(context.Background(), stockd.ConfigureLocation{ID: id, Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
			t.Fatal(err)
		}
	}
}
