package readmodel

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/internal/testclock"
	"github.com/stockd/stockd/pebble"
)

var ctx = context.Background()

// quiet shows warnings only: the engine and the projection log their starts
// at info level.
var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// newClock is the test clock shared by the engine and the projection, so
// that event times and as_of can be checked exactly.
func newClock() *testclock.Clock { return testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// env is an engine over a Pebble store in a temporary directory.
type env struct {
	t     *testing.T
	dir   string
	clock *testclock.Clock
	store *pebble.Store
	eng   *engine.Engine
}

// newEnv opens a store with the given partitions and an engine over it; both
// are closed when the test ends, after every projection (cleanups run last
// registered first).
func newEnv(t *testing.T, partitions int) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clock: newClock()}
	e.open(partitions)
	return e
}

func (e *env) open(partitions int) {
	e.t.Helper()
	store, err := pebble.Open(e.dir, pebble.Options{Partitions: partitions, Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	eng, err := engine.Open(ctx, store, engine.Options{Now: e.clock.Now, Logger: quiet})
	if err != nil {
		store.Close()
		e.t.Fatal(err)
	}
	e.store, e.eng = store, eng
	e.t.Cleanup(func() {
		eng.Close(ctx)
		store.Close()
	})
}

// reopen closes the engine, which writes a snapshot of every partition, and
// opens it again.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.eng.Close(ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open(0)
}

// projection returns a projection of the env's store, started, and closed
// when the test ends.
func (e *env) projection(opts Options) *Projection {
	e.t.Helper()
	if opts.DurableHead == nil {
		opts.DurableHead = e.eng.DurableHead
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	pr := New(e.store, opts)
	if err := pr.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := pr.Close(); err != nil {
			e.t.Errorf("Close: %v", err)
		}
	})
	return pr
}

func (e *env) locations() {
	e.t.Helper()
	for _, l := range []stockd.ConfigureLocation{
		{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1, Region: "eu"},
		{ID: "w2", Kind: stockd.KindWarehouse, Priority: 2, Region: "eu"},
		{ID: "s1", Kind: stockd.KindStore, Priority: 3, Region: "eu"},
	} {
		if _, err := e.eng.ConfigureLocation(ctx, l); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) receive(id, sku, location string, qty int64) stockd.Receipt {
	e.t.Helper()
	r, _, err := e.eng.Receive(ctx, stockd.ReceiveStock{ID: id, SKU: sku, Location: location, Quantity: qty})
	if err != nil {
		e.t.Fatalf("Receive %s: %v", id, err)
	}
	return r
}

func (e *env) reserve(c stockd.Reserve) stockd.Reservation {
	e.t.Helper()
	r, _, err := e.eng.Reserve(ctx, c)
	if err != nil {
		e.t.Fatalf("Reserve %s: %v", c.ID, err)
	}
	return r
}

// waitFor polls cond until it holds, failing the test after a deadline with
// what the last call of describe says.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// caughtUp reports whether pr has applied everything eng has made durable.
func caughtUp(pr *Projection, eng *engine.Engine) bool {
	for p := range pr.parts {
		if pr.Position(p) != eng.DurableHead(p) {
			return false
		}
	}
	return pr.Lag() == 0
}

// diffSKUs compares the projection's availability of skus with the engine's
// SKU views and describes the first difference, or returns "".
func diffSKUs(pr *Projection, eng *engine.Engine, skus []string) string {
	got := pr.Availability(skus)
	if len(got.Items) != len(skus) {
		return fmt.Sprintf("%d items for %d SKUs", len(got.Items), len(skus))
	}
	for i, sku := range skus {
		it := got.Items[i]
		if it.SKU != sku {
			return fmt.Sprintf("item %d is %q, want %q", i, it.SKU, sku)
		}
		want, err := eng.SKU(ctx, sku, stockd.AsOf{})
		if stockd.IsCode(err, stockd.CodeNotFound) {
			if it.Available != 0 || it.OnHand != 0 || it.Reserved != 0 || it.Locations == nil || len(it.Locations) != 0 {
				return fmt.Sprintf("unknown SKU %q: %+v", sku, it)
			}
			continue
		}
		if err != nil {
			return err.Error()
		}
		if it.Available != want.Available || it.OnHand != want.OnHand || it.Reserved != want.Reserved {
			return fmt.Sprintf("%s: available/on_hand/reserved %d/%d/%d, engine %d/%d/%d", sku,
				it.Available, it.OnHand, it.Reserved, want.Available, want.OnHand, want.Reserved)
		}
		if len(it.Locations) != len(want.Locations) {
			return fmt.Sprintf("%s: %d locations, engine %d", sku, len(it.Locations), len(want.Locations))
		}
		for j, l := range want.Locations {
			g := it.Locations[j]
			w := stockd.LocationAvailability{Location: l.Location, Available: l.Available, OnHand: l.OnHand, Reserved: l.Reserved}
			if g != w {
				return fmt.Sprintf("%s: location %d is %+v, engine %+v", sku, j, g, w)
			}
		}
	}
	return ""
}

// diffCustomers compares the projection's listing of each customer with the
// engine's held reservations among ids, and describes the first difference.
func diffCustomers(pr *Projection, eng *engine.Engine, customers []string, ids []string) string {
	want := map[string][]stockd.Reservation{}
	for _, id := range ids {
		r, err := eng.GetReservation(ctx, id)
		if stockd.IsCode(err, stockd.CodeNotFound) {
			continue
		}
		if err != nil {
			return err.Error()
		}
		if r.Customer != "" && r.Status == stockd.StatusHeld {
			want[r.Customer] = append(want[r.Customer], r)
		}
	}
	for _, c := range customers {
		page, err := pr.Reservations(stockd.CustomerQuery{Customer: c, Limit: MaxReservations})
		if err != nil {
			return err.Error()
		}
		got := page.Items
		w := want[c]
		sortNewestFirst(w)
		if len(got) != len(w) {
			return fmt.Sprintf("customer %s: %d reservations, engine %d", c, len(got), len(w))
		}
		for i := range w {
			if d := diffReservation(got[i], w[i]); d != "" {
				return fmt.Sprintf("customer %s, reservation %d: %s", c, i, d)
			}
		}
	}
	return ""
}

func sortNewestFirst(rs []stockd.Reservation) {
	slices.SortFunc(rs, func(a, b stockd.Reservation) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		if a.ID > b.ID {
			return -1
		}
		if a.ID < b.ID {
			return 1
		}
		return 0
	})
}

func diffReservation(got, want stockd.Reservation) string {
	if got.ID != want.ID || got.Status != want.Status || got.Customer != want.Customer ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!reflect.DeepEqual(got.Lines, want.Lines) {
		return fmt.Sprintf("got %+v\nwant %+v", got, want)
	}
	return ""
}

// TestConvergesToEngineViews runs concurrent writers of every kind against
// the engine while readers query the projection, then checks that the
// projection ends exactly where the engine's own views are.
func TestConvergesToEngineViews(t *testing.T) {
	e := newEnv(t, 8)
	e.locations()
	const nSKUs = 48
	skus := make([]string, nSKUs)
	for i := range skus {
		skus[i] = fmt.Sprintf("sku-%d", i)
		e.receive("r-w1-"+skus[i], skus[i], "w1", 40)
		e.receive("r-w2-"+skus[i], skus[i], "w2", 20)
	}
	pr := e.projection(Options{Interval: 2 * time.Millisecond, SaveEvery: 20 * time.Millisecond})
	customers := []string{"c-0", "c-1", "c-2", "c-3", "c-4"}

	const workers, ops = 8, 120
	var (
		idsMu sync.Mutex
		ids   []string
		wg    sync.WaitGroup
		done  = make(chan struct{})
		ok    atomic.Int64
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var mine []string
			sku := func() string { return skus[rng.IntN(nSKUs)] }
			for i := range ops {
				id := fmt.Sprintf("w%d-%d", w, i)
				var err error
				switch op := rng.IntN(12); {
				case op < 5:
					c := stockd.Reserve{ID: id, TTL: time.Hour, Customer: customers[rng.IntN(len(customers))]}
					used := map[string]bool{}
					for range 1 + rng.IntN(3) {
						s := sku()
						if used[s] {
							continue
						}
						used[s] = true
						c.Lines = append(c.Lines, stockd.ReserveLine{SKU: s, Quantity: 1 + rng.Int64N(6), Split: rng.IntN(2) == 0})
					}
					_, _, err = e.eng.Reserve(ctx, c)
					if err == nil {
						mine = append(mine, id)
						idsMu.Lock()
						ids = append(ids, id)
						idsMu.Unlock()
					}
				case op < 7 && len(mine) > 0:
					r := mine[rng.IntN(len(mine))]
					c := stockd.CommitReservation{ID: r}
					if rng.IntN(2) == 0 {
						if res, err := e.eng.GetReservation(ctx, r); err == nil && len(res.Lines) > 0 {
							c.Lines = []stockd.CommitLine{{SKU: res.Lines[0].SKU, Quantity: max(1, res.Lines[0].Quantity/2)}}
						}
					}
					_, err = e.eng.Commit(ctx, c)
				case op < 8 && len(mine) > 0:
					_, err = e.eng.Release(ctx, stockd.ReleaseReservation{ID: mine[rng.IntN(len(mine))]})
				case op < 9:
					delta := rng.Int64N(7) - 3
					if delta == 0 {
						delta = 1
					}
					_, _, err = e.eng.Adjust(ctx, stockd.AdjustStock{ID: id, SKU: sku(), Location: "w1", Delta: delta, Reason: stockd.ReasonOther})
				case op < 10:
					_, _, err = e.eng.Count(ctx, stockd.CountStock{ID: id, SKU: sku(), Location: "s1", OnHand: rng.Int64N(10)})
				case op < 11:
					_, _, err = e.eng.Transfer(ctx, stockd.TransferStock{ID: id, SKU: sku(), From: "w2", To: "s1", Quantity: 1 + rng.Int64N(3)})
					if err == nil && rng.IntN(2) == 0 {
						_, err = e.eng.ArriveTransfer(ctx, stockd.ArriveTransfer{ID: id})
					}
				default:
					_, err = e.eng.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: sku(), SafetyStock: rng.Int64N(3)})
				}
				if err == nil {
					ok.Add(1)
				}
			}
		}()
	}
	// Readers query all along, under the race detector, and check what
	// must hold of any answer.
	var readers sync.WaitGroup
	var queries atomic.Int64
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 99))
			for {
				select {
				case <-done:
					return
				default:
				}
				ask := []string{skus[rng.IntN(nSKUs)], "no-such-sku", skus[rng.IntN(nSKUs)], skus[rng.IntN(nSKUs)]}
				ask = append(ask, ask[0])
				a := pr.Availability(ask)
				want := slices.Compact(slices.Clone(ask))
				seen := map[string]bool{}
				want = slices.DeleteFunc(want, func(s string) bool { d := seen[s]; seen[s] = true; return d })
				if len(a.Items) != len(want) {
					t.Errorf("Availability(%v) has %d items, want %d", ask, len(a.Items), len(want))
					return
				}
				for i, it := range a.Items {
					if it.SKU != want[i] || it.Locations == nil {
						t.Errorf("item %d = %+v, want SKU %s with a non-nil list", i, it, want[i])
						return
					}
				}
				l := byCustomer(t, pr, customers[rng.IntN(len(customers))], 1+rng.IntN(20))
				if l.Items == nil {
					t.Errorf("nil reservation list")
					return
				}
				for i := 1; i < len(l.Items); i++ {
					if l.Items[i].CreatedAt.After(l.Items[i-1].CreatedAt) {
						t.Errorf("reservations not newest first")
						return
					}
				}
				_ = pr.Lag()
				queries.Add(1)
			}
		}()
	}
	wg.Wait()

	// Expire what is still held: the engine's timers fire on its own
	// clock, and their events must reach the projection too.
	e.clock.Advance(2 * time.Hour)
	e.eng.Poke()
	waitFor(t, "holds to expire", func() bool {
		idsMu.Lock()
		defer idsMu.Unlock()
		for _, id := range ids {
			if r, err := e.eng.GetReservation(ctx, id); err == nil && (r.Status == stockd.StatusHeld || r.Status == stockd.StatusPending) {
				return false
			}
		}
		return true
	})
	close(done)
	readers.Wait()

	var skuDiff, custDiff string
	waitFor(t, "the projection to converge", func() bool {
		if !caughtUp(pr, e.eng) {
			return false
		}
		skuDiff = diffSKUs(pr, e.eng, append(slices.Clone(skus), "unknown"))
		custDiff = diffCustomers(pr, e.eng, customers, ids)
		return skuDiff == "" && custDiff == ""
	})
	var total uint64
	for p := range pr.parts {
		total += pr.Position(p)
	}
	a := pr.Availability(skus)
	if a.Lag != (stockd.Lag{}) || !a.AsOf.Equal(e.clock.Now()) {
		t.Errorf("caught up: lag %+v, as_of %v; want none and now (%v)", a.Lag, a.AsOf, e.clock.Now())
	}
	t.Logf("%d commands succeeded, %d reservations, %d events, %d concurrent queries", ok.Load(), len(ids), total, queries.Load())
}

// gatedStore holds back reads of one partition while its gate is set, so that
// a test can make a partition fall behind its durable head.
type gatedStore struct {
	stockd.Store
	partition int
	gate      atomic.Pointer[chan struct{}]
}

func (g *gatedStore) ReadPartition(ctx context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	if ch := g.gate.Load(); ch != nil && p == g.partition {
		select {
		case <-*ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Store.ReadPartition(ctx, p, after, limit)
}

// TestNeverReadsPastDurableHead holds one partition's durable head back and
// checks that nothing beyond it is read or shown; then holds the consumer
// back instead, and checks that the lag and as_of say how stale the answer is.
func TestNeverReadsPastDurableHead(t *testing.T) {
	e := newEnv(t, 4)
	e.locations()
	sku := "A"
	pa := stockd.PartitionOf(sku, 4)
	other := "B"
	for stockd.PartitionOf(other, 4) == pa {
		other += "B"
	}
	var limits [4]atomic.Uint64
	for p := range limits {
		limits[p].Store(math.MaxUint64)
	}
	durable := func(p int) uint64 { return min(e.eng.DurableHead(p), limits[p].Load()) }

	e.clock.Advance(time.Second)
	e.receive("r1", sku, "w1", 5)
	e.clock.Advance(time.Second)
	r2 := e.receive("r2", sku, "w1", 7)
	e.clock.Advance(time.Second)
	r3 := e.receive("r3", sku, "w1", 11)
	e.receive("rb", other, "w1", 1)
	e.clock.Advance(time.Minute)
	// The store holds r3, but as far as the projection is told it is not
	// durable yet: it must not be read, let alone shown.
	limits[pa].Store(r2.Position)

	gated := &gatedStore{Store: e.store, partition: pa}
	pr := New(gated, Options{DurableHead: durable, Interval: time.Millisecond, Logger: quiet, Now: e.clock.Now})
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	waitFor(t, "the partition to reach the durable head", func() bool { return pr.Position(pa) == r2.Position })
	// Let the consumer look again a few times: it must stay there.
	polls := pr.parts[pa].polls.Load()
	waitFor(t, "more polls", func() bool {
		pr.Notify(pa)
		return pr.parts[pa].polls.Load() >= polls+5
	})
	if got := pr.Position(pa); got != r2.Position {
		t.Fatalf("Position = %d, past the durable head %d", got, r2.Position)
	}
	if read := pr.parts[pa].read.Load(); read != r2.Position {
		t.Fatalf("%d events read, want the %d durable ones", read, r2.Position)
	}
	a := pr.Availability([]string{sku})
	if it := a.Items[0]; it.OnHand != 12 || it.Available != 12 {
		t.Errorf("at the durable head: %+v, want 12 on hand", it)
	}
	// Everything durable is applied: the answer is complete now, although
	// the store holds more.
	if a.Lag != (stockd.Lag{}) || !a.AsOf.Equal(e.clock.Now()) {
		t.Errorf("at the durable head: lag %+v as_of %v; want none and now", a.Lag, a.AsOf)
	}

	// Now r3 is durable but the consumer cannot read it.
	ch := make(chan struct{})
	gated.gate.Store(&ch)
	limits[pa].Store(math.MaxUint64)
	pr.Notify(pa)
	a = pr.Availability([]string{sku})
	if it := a.Items[0]; it.OnHand != 12 {
		t.Errorf("behind: %+v, want 12 on hand", it)
	}
	wantLag := stockd.Lag{Events: r3.Position - r2.Position, Partitions: 1}
	if a.Lag != wantLag {
		t.Errorf("lag = %+v, want %+v", a.Lag, wantLag)
	}
	if !a.AsOf.Equal(r2.Time) {
		t.Errorf("as_of = %v, want the time of the last event applied, %v", a.AsOf, r2.Time)
	}
	if got := pr.Lag(); got != wantLag.Events {
		t.Errorf("Lag() = %d, want %d", got, wantLag.Events)
	}
	// A SKU of a caught-up partition is complete as of now; asked with A,
	// the answer is as old as A's partition.
	if b := pr.Availability([]string{other}); b.Lag != (stockd.Lag{}) || !b.AsOf.Equal(e.clock.Now()) || b.Items[0].OnHand != 1 {
		t.Errorf("caught-up partition: %+v; want 1 on hand, no lag, as of now", b)
	}
	if ab := pr.Availability([]string{other, sku}); !ab.AsOf.Equal(r2.Time) || ab.Lag != wantLag {
		t.Errorf("mixed: as_of %v lag %+v; want %v and %+v", ab.AsOf, ab.Lag, r2.Time, wantLag)
	}

	close(ch)
	pr.Notify(pa)
	waitFor(t, "the rest", func() bool { return pr.Position(pa) == r3.Position })
	a = pr.Availability([]string{sku})
	if it := a.Items[0]; it.OnHand != 23 || a.Lag != (stockd.Lag{}) || !a.AsOf.Equal(e.clock.Now()) {
		t.Errorf("caught up: %+v lag %+v as_of %v", it, a.Lag, a.AsOf)
	}
}

// TestRestartResumesFromCheckpoint closes a projection, writes more, and
// checks that a new one resumes from the saved checkpoint, reading only what
// came after it.
func TestRestartResumesFromCheckpoint(t *testing.T) {
	e := newEnv(t, 8)
	e.locations()
	skus := make([]string, 24)
	for i := range skus {
		skus[i] = fmt.Sprintf("sku-%d", i)
		e.receive("r-"+skus[i], skus[i], "w1", 30)
		e.reserve(stockd.Reserve{ID: "cart-" + skus[i], TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: skus[i], Quantity: 2}}})
	}
	pr := New(e.store, Options{DurableHead: e.eng.DurableHead, Logger: quiet, Now: e.clock.Now, Interval: time.Millisecond})
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first projection to catch up", func() bool { return caughtUp(pr, e.eng) })
	positions := make([]uint64, len(pr.parts))
	for p := range positions {
		positions[p] = pr.Position(p)
	}
	if err := pr.Close(); err != nil {
		t.Fatal(err)
	}
	for p, pos := range positions {
		c, err := e.store.Checkpoint(ctx, DefaultName, p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Position != pos {
			t.Fatalf("checkpoint of partition %d at %d, want %d", p, c.Position, pos)
		}
		if pos > 0 {
			av, err := stockd.DecodeAvailability(c.State)
			if err != nil || av.Head() != pos {
				t.Fatalf("checkpoint state of partition %d: %v; want the state at %d", p, err, pos)
			}
		}
	}

	for i, sku := range skus {
		e.receive("r2-"+sku, sku, "w2", 5)
		if i%3 == 0 {
			if _, err := e.eng.Commit(ctx, stockd.CommitReservation{ID: "cart-" + sku}); err != nil {
				t.Fatal(err)
			}
		}
	}
	pr2 := e.projection(Options{Interval: time.Millisecond})
	var behind uint64
	for p, part := range pr2.parts {
		if part.loaded != positions[p] {
			t.Errorf("partition %d resumed from %d, want the checkpoint at %d", p, part.loaded, positions[p])
		}
		behind += e.eng.DurableHead(p) - positions[p]
	}
	waitFor(t, "the second projection to converge", func() bool {
		return caughtUp(pr2, e.eng) && diffSKUs(pr2, e.eng, skus) == ""
	})
	var read uint64
	for _, part := range pr2.parts {
		read += part.read.Load()
	}
	if read != behind {
		t.Errorf("the restarted projection read %d events, want only the %d after its checkpoint", read, behind)
	}
	if d := diffCustomers(pr2, e.eng, []string{"c-9"}, prefixed("cart-", skus)); d != "" {
		t.Error(d)
	}
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// TestSavesPeriodically checks that a running projection saves checkpoints on
// its own, each with the availability at exactly its position.
func TestSavesPeriodically(t *testing.T) {
	e := newEnv(t, 2)
	e.locations()
	pr := e.projection(Options{Name: "periodic", Interval: time.Millisecond, SaveEvery: 5 * time.Millisecond})
	for i := range 20 {
		e.receive(fmt.Sprint("r", i), fmt.Sprint("sku-", i%5), "w1", 1)
	}
	waitFor(t, "checkpoints at the durable heads", func() bool {
		for p := range pr.parts {
			c, err := e.store.Checkpoint(ctx, "periodic", p)
			if err != nil {
				t.Fatal(err)
			}
			if c.Position != e.eng.DurableHead(p) {
				return false
			}
			if c.Position > 0 {
				av, err := stockd.DecodeAvailability(c.State)
				if err != nil || av.Head() != c.Position || av.Partition() != p {
					t.Fatalf("checkpoint of partition %d at %d holds a state that does not match: %v", p, c.Position, err)
				}
			}
		}
		return true
	})
}

// TestStartsFromSnapshotOrReplays checks where a partition starts when its
// checkpoint cannot be resumed from: the engine's snapshot if there is one,
// the start of the log otherwise.
func TestStartsFromSnapshotOrReplays(t *testing.T) {
	e := newEnv(t, 4)
	e.locations()
	skus := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for i, sku := range skus {
		e.receive(fmt.Sprint("r", i), sku, "w1", int64(i+1))
	}
	heads := make([]uint64, 4)
	for p := range heads {
		heads[p] = e.eng.DurableHead(p)
	}

	// Without snapshots: a checkpoint without state, one with a state that
	// does not decode, one beyond the durable log, and one in the old
	// format (a whole State) all mean a replay.
	for p, c := range []stockd.Checkpoint{
		{Position: heads[0]},
		{Position: heads[1], State: []byte("not a state")},
		{Position: heads[2] + 100, State: []byte("from the future")},
		{Position: heads[3], State: stockd.EncodeState(foldState(t, e.store, 3, heads[3]))},
	} {
		if err := e.store.SetCheckpoint(ctx, "odd", p, c); err != nil {
			t.Fatal(err)
		}
	}
	pr := e.projection(Options{Name: "odd", Interval: time.Millisecond})
	for p, part := range pr.parts {
		if part.loaded != 0 {
			t.Errorf("partition %d resumed from %d, want a replay from 0", p, part.loaded)
		}
	}
	waitFor(t, "the replay", func() bool { return caughtUp(pr, e.eng) && diffSKUs(pr, e.eng, skus) == "" })

	// With snapshots, written by the engine on close, a new projection
	// starts from them and reads nothing.
	if err := pr.Close(); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	pr2 := e.projection(Options{Name: "fresh", Interval: time.Millisecond})
	for p, part := range pr2.parts {
		if part.loaded != heads[p] {
			t.Errorf("partition %d started from %d, want the snapshot at %d", p, part.loaded, heads[p])
		}
	}
	waitFor(t, "the projection from snapshots", func() bool { return caughtUp(pr2, e.eng) && diffSKUs(pr2, e.eng, skus) == "" })
	for p, part := range pr2.parts {
		if n := part.read.Load(); n != 0 {
			t.Errorf("partition %d read %d events after starting from its snapshot", p, n)
		}
	}
}

// TestUpgradesOldCheckpoints starts a projection over checkpoints that hold
// whole States, as read models saved them before they kept only
// availability: it starts from the engine's snapshots instead (replaying
// from 0 without one, see TestStartsFromSnapshotOrReplays), answers like
// the engine, and saves its checkpoints in the new format.
func TestUpgradesOldCheckpoints(t *testing.T) {
	e := newEnv(t, 4)
	e.locations()
	skus := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for i, sku := range skus {
		e.receive(fmt.Sprint("r", i), sku, "w1", int64(10+i))
	}
	e.reserve(stockd.Reserve{ID: "cart", TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: "a", Quantity: 2}, {SKU: "b", Quantity: 1}, {SKU: "c", Quantity: 3}}})
	e.reopen() // snapshots at the durable heads
	heads := make([]uint64, 4)
	for p := range heads {
		heads[p] = e.eng.DurableHead(p)
		if err := e.store.SetCheckpoint(ctx, DefaultName, p, stockd.Checkpoint{Position: heads[p], State: stockd.EncodeState(foldState(t, e.store, p, heads[p]))}); err != nil {
			t.Fatal(err)
		}
	}
	e.receive("later", "a", "w2", 5)
	pr := e.projection(Options{Interval: time.Millisecond})
	for p, part := range pr.parts {
		if part.loaded != heads[p] {
			t.Errorf("partition %d started from %d, want the snapshot at %d", p, part.loaded, heads[p])
		}
	}
	waitFor(t, "the upgraded projection", func() bool {
		return caughtUp(pr, e.eng) && diffSKUs(pr, e.eng, skus) == "" && diffCustomers(pr, e.eng, []string{"c-9"}, []string{"cart"}) == ""
	})
	if err := pr.Close(); err != nil {
		t.Fatal(err)
	}
	for p := range heads {
		c, err := e.store.Checkpoint(ctx, DefaultName, p)
		if err != nil {
			t.Fatal(err)
		}
		if av, err := stockd.DecodeAvailability(c.State); err != nil || av.Head() != e.eng.DurableHead(p) {
			t.Errorf("partition %d: checkpoint at %d not in the new format at the head %d: %v", p, c.Position, e.eng.DurableHead(p), err)
		}
	}
}

// foldState folds the first n events of partition p into a State, as the
// read model did before it kept only availability.
func foldState(t *testing.T, store stockd.Store, p int, n uint64) *stockd.State {
	t.Helper()
	st := stockd.NewState(p, store.Partitions(), stockd.DefaultLimits)
	for st.Head() < n {
		events, err := store.ReadPartition(ctx, p, st.Head(), int(min(n-st.Head(), ReadBatch)))
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 {
			t.Fatalf("partition %d ends at %d, before %d", p, st.Head(), n)
		}
		for _, e := range events {
			if err := st.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

// recordingStore keeps a copy of every checkpoint saved through it.
type recordingStore struct {
	stockd.Store
	mu    sync.Mutex
	saved []recorded
}

type recorded struct {
	p int
	c stockd.Checkpoint
}

func (r *recordingStore) SetCheckpoint(ctx context.Context, consumer string, p int, c stockd.Checkpoint) error {
	r.mu.Lock()
	r.saved = append(r.saved, recorded{p: p, c: stockd.Checkpoint{Position: c.Position, State: slices.Clone(c.State)}})
	r.mu.Unlock()
	return r.Store.SetCheckpoint(ctx, consumer, p, c)
}

// TestCheckpointsMatchState runs carts of one and several partitions through
// every end (commit, partial commit, release, expiry, a cart that cannot be
// held) while the projection saves checkpoints often, and checks every
// checkpoint saved against a State folded from the log up to its position:
// the answers it gives must be the State's.
func TestCheckpointsMatchState(t *testing.T) {
	const partitions = 4
	e := newEnv(t, partitions)
	e.locations()
	skus := make([]string, 12)
	for i := range skus {
		skus[i] = fmt.Sprint("sku-", i)
		e.receive("r-"+skus[i], skus[i], "w1", 20)
		e.receive("r2-"+skus[i], skus[i], "w2", 5)
	}
	rec := &recordingStore{Store: e.store}
	pr := New(rec, Options{DurableHead: e.eng.DurableHead, Logger: quiet, Now: e.clock.Now, Interval: time.Millisecond, SaveEvery: time.Nanosecond})
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	rng := rand.New(rand.NewPCG(3, 4))
	var ids []string
	for i := range 150 {
		e.clock.Advance(time.Duration(rng.IntN(30)) * time.Second)
		id := fmt.Sprint("cart-", i)
		c := stockd.Reserve{ID: id, TTL: time.Duration(1+rng.IntN(10)) * time.Minute, Customer: fmt.Sprint("c-", rng.IntN(4))}
		used := map[string]bool{}
		for range 1 + rng.IntN(3) {
			sku := skus[rng.IntN(len(skus))]
			if !used[sku] {
				used[sku] = true
				c.Lines = append(c.Lines, stockd.ReserveLine{SKU: sku, Quantity: 1 + rng.Int64N(8), Split: rng.IntN(2) == 0})
			}
		}
		if _, _, err := e.eng.Reserve(ctx, c); err == nil {
			ids = append(ids, id)
		}
		if len(ids) > 0 {
			target := ids[rng.IntN(len(ids))]
			switch rng.IntN(5) {
			case 0:
				e.eng.Commit(ctx, stockd.CommitReservation{ID: target})
			case 1:
				if r, err := e.eng.GetReservation(ctx, target); err == nil {
					e.eng.Commit(ctx, stockd.CommitReservation{ID: target, Lines: []stockd.CommitLine{{SKU: r.Lines[0].SKU, Quantity: r.Lines[0].Quantity / 2}}})
				}
			case 2:
				e.eng.Release(ctx, stockd.ReleaseReservation{ID: target})
			case 3:
				e.eng.Adjust(ctx, stockd.AdjustStock{ID: fmt.Sprint("adj-", i), SKU: skus[rng.IntN(len(skus))], Location: "w1", Delta: -rng.Int64N(6) - 1, Reason: stockd.ReasonLost})
			}
		}
		e.eng.Poke() // expiries
	}
	waitFor(t, "the projection to catch up", func() bool { return caughtUp(pr, e.eng) })
	if err := pr.Close(); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	saved := slices.Clone(rec.saved)
	rec.mu.Unlock()
	checked := 0
	for _, r := range saved {
		if r.c.Position == 0 {
			continue
		}
		av, err := stockd.DecodeAvailability(r.c.State)
		if err != nil {
			t.Fatalf("checkpoint of partition %d at %d: %v", r.p, r.c.Position, err)
		}
		if d := diffState(foldState(t, e.store, r.p, r.c.Position), av); d != "" {
			t.Fatalf("checkpoint of partition %d at %d: %s", r.p, r.c.Position, d)
		}
		checked++
	}
	if checked < 5 {
		t.Errorf("only %d checkpoints checked", checked)
	}
	t.Logf("%d checkpoints match the State, %d carts", checked, len(ids))
}

// diffState describes the first answer of av that differs from st's, or
// returns "".
func diffState(st *stockd.State, av *stockd.AvailabilityState) string {
	if av.Head() != st.Head() || !av.Clock().Equal(st.Clock()) || !slices.Equal(av.SKUs(), st.SKUs()) {
		return fmt.Sprintf("at %d/%v with SKUs %v; State at %d/%v with %v", av.Head(), av.Clock(), av.SKUs(), st.Head(), st.Clock(), st.SKUs())
	}
	for _, sku := range st.SKUs() {
		v, _ := st.StockLevels(sku)
		want := stockd.AvailabilityItem{SKU: sku, Available: v.Available, OnHand: v.OnHand, Reserved: v.Reserved, Locations: []stockd.LocationAvailability{}}
		for _, l := range v.Locations {
			want.Locations = append(want.Locations, stockd.LocationAvailability{Location: l.Location, Available: l.Available, OnHand: l.OnHand, Reserved: l.Reserved})
		}
		if got, _ := av.Availability(sku); !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("%s: %+v, State %+v", sku, got, want)
		}
	}
	held := 0
	for id := range st.HomeReservations() {
		want, _ := st.ReservationView(id)
		got, ok := av.HeldReservation(id)
		if want.Status != stockd.StatusHeld {
			if ok {
				return fmt.Sprintf("%s is %s but listed as held", id, want.Status)
			}
			continue
		}
		held++
		if !ok || !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("held %s: %+v (%v), State %+v", id, got, ok, want)
		}
	}
	if av.Held() != held {
		return fmt.Sprintf("%d held, State %d", av.Held(), held)
	}
	return ""
}

// TestReservationsByCustomer follows one customer's reservations through
// every status, including carts spanning partitions and a cart that could
// not be held and was then retried: only the held ones are listed.
func TestReservationsByCustomer(t *testing.T) {
	const partitions = 8
	e := newEnv(t, partitions)
	e.locations()
	var skus []string
	seen := map[int]bool{}
	for i := 0; len(skus) < 4; i++ {
		sku := fmt.Sprint("sku-", i)
		if p := stockd.PartitionOf(sku, partitions); !seen[p] {
			seen[p] = true
			skus = append(skus, sku)
		}
	}
	a, b, c, d := skus[0], skus[1], skus[2], skus[3]
	for _, sku := range skus {
		e.receive("r-"+sku, sku, "w1", 100)
	}
	line := func(sku string, q int64) stockd.ReserveLine { return stockd.ReserveLine{SKU: sku, Quantity: q} }
	step := func() { e.clock.Advance(time.Second) }

	pr := e.projection(Options{Interval: time.Millisecond})

	step()
	e.reserve(stockd.Reserve{ID: "held", TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{line(a, 1)}})
	step()
	e.reserve(stockd.Reserve{ID: "committed", TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{line(b, 2)}})
	if _, err := e.eng.Commit(ctx, stockd.CommitReservation{ID: "committed"}); err != nil {
		t.Fatal(err)
	}
	step()
	e.reserve(stockd.Reserve{ID: "released", TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{line(c, 3)}})
	if _, err := e.eng.Release(ctx, stockd.ReleaseReservation{ID: "released"}); err != nil {
		t.Fatal(err)
	}
	step()
	e.reserve(stockd.Reserve{ID: "expires", TTL: time.Minute, Customer: "c-9", Lines: []stockd.ReserveLine{line(d, 1)}})
	step()
	e.reserve(stockd.Reserve{ID: "cart-held", TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{line(a, 1), line(b, 1), line(c, 1)}})
	step()
	e.reserve(stockd.Reserve{ID: "cart-committed", TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{line(c, 2), line(d, 2)}})
	if _, err := e.eng.Commit(ctx, stockd.CommitReservation{ID: "cart-committed", Lines: []stockd.CommitLine{{SKU: d, Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	step()
	// Short in its second partition: held nowhere, and forgotten.
	_, _, err := e.eng.Reserve(ctx, stockd.Reserve{ID: "cart-retried", TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{line(a, 1), line(b, 1000)}})
	if !stockd.IsCode(err, stockd.CodeInsufficientStock) {
		t.Fatalf("short cart: %v, want insufficient stock", err)
	}
	step()
	e.reserve(stockd.Reserve{ID: "other", TTL: time.Hour, Customer: "c-1", Lines: []stockd.ReserveLine{line(a, 1), line(d, 1)}})
	step()
	e.reserve(stockd.Reserve{ID: "anonymous", TTL: time.Hour, Lines: []stockd.ReserveLine{line(a, 1)}})

	// The short cart is not listed while it is forgotten.
	waitFor(t, "the projection to catch up", func() bool { return caughtUp(pr, e.eng) })
	for _, r := range byCustomer(t, pr, "c-9", 0).Items {
		if r.ID == "cart-retried" {
			t.Fatalf("a cart that could not be held is listed: %+v", r)
		}
	}

	step()
	e.reserve(stockd.Reserve{ID: "cart-retried", TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{line(a, 1), line(b, 1)}})
	step()
	e.clock.Advance(2 * time.Minute)
	e.eng.Poke()
	waitFor(t, "the short hold to expire", func() bool {
		r, err := e.eng.GetReservation(ctx, "expires")
		return err == nil && r.Status == stockd.StatusExpired
	})
	waitFor(t, "the projection to catch up again", func() bool { return caughtUp(pr, e.eng) })

	all := []string{"held", "committed", "released", "expires", "cart-held", "cart-committed", "cart-retried", "other", "anonymous"}
	if d := diffCustomers(pr, e.eng, []string{"c-9", "c-1", "nobody"}, all); d != "" {
		t.Fatal(d)
	}
	got := byCustomer(t, pr, "c-9", 0)
	wantOrder := []string{"cart-retried", "cart-held", "held"}
	if len(got.Items) != len(wantOrder) {
		t.Fatalf("c-9 has %d reservations, want %d: %+v", len(got.Items), len(wantOrder), got.Items)
	}
	for i, r := range got.Items {
		if r.ID != wantOrder[i] || r.Status != stockd.StatusHeld {
			t.Errorf("reservation %d is %s (%s), want %s (held)", i, r.ID, r.Status, wantOrder[i])
		}
	}
	if cart := got.Items[1]; len(cart.Lines) != 3 {
		t.Errorf("the cart spanning three partitions lists %d lines", len(cart.Lines))
	}
	if got.Lag != (stockd.Lag{}) || !got.AsOf.Equal(e.clock.Now()) {
		t.Errorf("lag %+v as_of %v, want none and now", got.Lag, got.AsOf)
	}
	if two := byCustomer(t, pr, "c-9", 2).Items; len(two) != 2 || two[0].ID != "cart-retried" || two[1].ID != "cart-held" {
		t.Errorf("limit 2: %v", ids(two))
	}
	if none := byCustomer(t, pr, "nobody", 10); none.Items == nil || len(none.Items) != 0 {
		t.Errorf("unknown customer: %#v", none.Items)
	}
	if anon, err := pr.Reservations(stockd.CustomerQuery{Limit: 10}); !stockd.IsCode(err, stockd.CodeInvalid) {
		t.Errorf("empty customer: %v, %v; want invalid_request", ids(anon.Items), err)
	}

	// The index is rebuilt from the checkpoint after a restart.
	if err := pr.Close(); err != nil {
		t.Fatal(err)
	}
	pr2 := e.projection(Options{Interval: time.Millisecond})
	waitFor(t, "the restarted projection", func() bool { return caughtUp(pr2, e.eng) })
	if again := byCustomer(t, pr2, "c-9", 0); !slices.Equal(ids(again.Items), wantOrder) {
		t.Errorf("after a restart: %v, want %v", ids(again.Items), wantOrder)
	}
	if d := diffCustomers(pr2, e.eng, []string{"c-9", "c-1"}, all); d != "" {
		t.Error(d)
	}
}

func ids(rs []stockd.Reservation) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// TestLifecycle checks the edges of Start, Close and Notify.
func TestLifecycle(t *testing.T) {
	e := newEnv(t, 2)
	pr := New(e.store, Options{Logger: quiet})
	if err := pr.Start(ctx); err == nil {
		t.Error("Start without DurableHead succeeded")
	}
	pr.Notify(0)
	pr.Notify(0) // never blocks
	pr.Notify(-1)
	pr.Notify(2)
	if a := pr.Availability([]string{"x"}); len(a.Items) != 1 || a.Items[0].Locations == nil {
		t.Errorf("before Start: %+v", a)
	}
	if err := pr.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}

	pr = New(e.store, Options{DurableHead: e.eng.DurableHead, Logger: quiet})
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pr.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	if err := pr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := pr.Start(ctx); err == nil {
		t.Error("Start after Close succeeded")
	}
	if a := pr.Availability(nil); a.Items == nil || len(a.Items) != 0 || a.Lag != (stockd.Lag{}) {
		t.Errorf("no SKUs: %+v", a)
	}
	if err := pr.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
}

// bogus is event data of a type the read model does not know, such as one
// added to the domain after it was written.
type bogus struct{}

func (bogus) EventType() stockd.EventType { return 200 }

// corruptStore spoils the events of partition: with unknown set it replaces
// their data with bogus data, which the read model ignores; otherwise it
// breaks their SKU's version order, which no fold can apply.
type corruptStore struct {
	stockd.Store
	partition int
	unknown   bool
}

func (c *corruptStore) ReadPartition(ctx context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	events, err := c.Store.ReadPartition(ctx, p, after, limit)
	if p == c.partition {
		for i := range events {
			if c.unknown {
				events[i].Data = bogus{}
			} else {
				events[i].SKU, events[i].Version = "A", events[i].Version+7
			}
		}
	}
	return events, err
}

// TestIgnoresUnknownEvents checks that events of a type the read model does
// not know are passed over: they move its position and change nothing.
func TestIgnoresUnknownEvents(t *testing.T) {
	e := newEnv(t, 1)
	e.locations()
	e.receive("r1", "A", "w1", 1)
	pr := New(&corruptStore{Store: e.store, partition: 0, unknown: true}, Options{
		DurableHead: e.eng.DurableHead, Interval: time.Millisecond, Logger: quiet, Now: e.clock.Now,
	})
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	waitFor(t, "the projection to pass every event", func() bool { return caughtUp(pr, e.eng) })
	if err := pr.Err(); err != nil {
		t.Fatal(err)
	}
	if a := pr.Availability([]string{"A"}); a.Items[0].OnHand != 0 || len(a.Items[0].Locations) != 0 {
		t.Errorf("unknown events changed availability: %+v", a.Items[0])
	}
}

// TestStopsOnEventItCannotApply checks that a partition whose log the code
// cannot fold stops, says so in Err, and never saves its broken State, while
// the other partitions go on.
func TestStopsOnEventItCannotApply(t *testing.T) {
	e := newEnv(t, 2)
	e.locations()
	bad, good := "A", "B"
	for stockd.PartitionOf(good, 2) == stockd.PartitionOf(bad, 2) {
		good += "B"
	}
	pb, pg := stockd.PartitionOf(bad, 2), stockd.PartitionOf(good, 2)
	e.receive("r1", bad, "w1", 1)
	e.receive("r2", good, "w1", 2)
	pr := New(&corruptStore{Store: e.store, partition: pb}, Options{
		Name: "broken", DurableHead: e.eng.DurableHead, Interval: time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Now: e.clock.Now,
	})
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the error", func() bool { return pr.Err() != nil })
	waitFor(t, "the good partition", func() bool { return pr.Position(pg) == e.eng.DurableHead(pg) })
	// Behind by every event of its log: the receipt, and the locations
	// when it is the partition that holds them.
	behind := e.eng.DurableHead(pb)
	if a := pr.Availability([]string{bad}); a.Lag != (stockd.Lag{Events: behind, Partitions: 1}) || pr.Position(pb) != 0 || pr.Lag() != behind {
		t.Errorf("the broken partition: %+v at position %d; want it behind by its %d events", a, pr.Position(pb), behind)
	}
	if err := pr.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := e.store.Checkpoint(ctx, "broken", pb); err != nil || c.Position != 0 {
		t.Errorf("the broken partition saved a checkpoint at %d (%v)", c.Position, err)
	}
	if c, err := e.store.Checkpoint(ctx, "broken", pg); err != nil || c.Position != e.eng.DurableHead(pg) {
		t.Errorf("the good partition's checkpoint is at %d (%v), want %d", c.Position, err, e.eng.DurableHead(pg))
	}
}

// byCustomer returns a page of a customer's reservations, and reports an
// error as a test failure.
func byCustomer(t *testing.T, pr *Projection, customer string, limit int) stockd.ReservationPage {
	t.Helper()
	p, err := pr.Reservations(stockd.CustomerQuery{Customer: customer, Limit: limit})
	if err != nil {
		t.Errorf("reservations of %q: %v", customer, err)
	}
	return p
}

// TestLagDuration holds the consumer back and checks that LagDuration counts
// from when the oldest waiting event was written, not from the last event
// applied, and reads 0 once the projection has caught up.
func TestLagDuration(t *testing.T) {
	e := newEnv(t, 4)
	e.locations()
	sku := "A"
	pa := stockd.PartitionOf(sku, 4)
	e.receive("r1", sku, "w1", 5)
	gated := &gatedStore{Store: e.store, partition: pa}
	pr := New(gated, Options{DurableHead: e.eng.DurableHead, Interval: time.Millisecond, Logger: quiet, Now: e.clock.Now})
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	waitFor(t, "the projection to catch up", func() bool { return caughtUp(pr, e.eng) })
	if d := pr.LagDuration(); d != 0 {
		t.Fatalf("caught up: LagDuration = %v, want 0", d)
	}

	// The partition was idle for an hour; then r2 becomes durable while the
	// consumer cannot read it.
	ch := make(chan struct{})
	gated.gate.Store(&ch)
	e.clock.Advance(time.Hour)
	e.receive("r2", sku, "w1", 7)
	if d := pr.LagDuration(); d != 0 {
		t.Errorf("just behind: LagDuration = %v, want 0", d)
	}
	e.clock.Advance(5 * time.Second)
	if d := pr.LagDuration(); d != 5*time.Second {
		t.Errorf("behind for 5s: LagDuration = %v, want 5s (counted from r2, not from r1 an hour before)", d)
	}
	if pr.Lag() != 1 {
		t.Errorf("Lag = %d, want 1", pr.Lag())
	}

	close(ch)
	pr.Notify(pa)
	waitFor(t, "the projection to catch up again", func() bool { return caughtUp(pr, e.eng) && pr.LagDuration() == 0 })
}

// TestAnswersOnPartitionsAnotherNodeWritesAreAsOldAsTheirHeads: for a
// partition another node writes, the projection knows the durable head only
// as read from the store at some moment; an answer involving it is complete
// as of that moment at best, never as of now.
func TestAnswersOnPartitionsAnotherNodeWritesAreAsOldAsTheirHeads(t *testing.T) {
	e := newEnv(t, 4)
	e.locations()
	e.receive("r1", "A", "w1", 5)
	e.receive("r2", "B", "w1", 5)
	pa, pb := stockd.PartitionOf("A", 4), stockd.PartitionOf("B", 4)
	if pa == pb {
		t.Fatal("A and B share a partition; pick other SKUs")
	}
	read := e.clock.Now().Add(-3 * time.Second)
	pr := New(e.store, Options{
		DurableHead: e.eng.DurableHead, Interval: time.Millisecond, Logger: quiet, Now: e.clock.Now,
		HeadKnownAt: func(p int) (time.Time, bool) { return read, p == pb },
	})
	if err := pr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	waitFor(t, "the projection to catch up", func() bool { return caughtUp(pr, e.eng) })
	if got := pr.Availability([]string{"A"}).AsOf; !got.Equal(e.clock.Now()) {
		t.Errorf("A, written here: AsOf = %v, want now (%v)", got, e.clock.Now())
	}
	if got := pr.Availability([]string{"A", "B"}).AsOf; !got.Equal(read) {
		t.Errorf("A and B, B written by another node: AsOf = %v, want when B's head was read (%v)", got, read)
	}
}
