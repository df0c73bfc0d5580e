package feed_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/feed"
	"github.com/stockd/stockd/internal/notify"
	"github.com/stockd/stockd/pebble"
)

var quiet = slog.New(slog.DiscardHandler)

// world is a store, an engine and the feed over them, with a clock the test
// moves: each command's events are one millisecond after the last's.
type world struct {
	t      testing.TB
	fs     vfs.FS
	dir    string
	parts  int
	store  *pebble.Store
	eng    *engine.Engine
	hub    *notify.Hub
	feed   *feed.Service
	clock  atomic.Int64 // unix milliseconds
	cap    atomic.Int64 // when positive, the durable head the feed is told, at most
	closed bool
	opened bool // the first open configured the location
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func newWorld(t testing.TB, parts int) *world {
	w := &world{t: t, fs: vfs.NewMem(), dir: "data", parts: parts}
	w.clock.Store(t0.UnixMilli())
	w.open()
	t.Cleanup(w.close)
	return w
}

func (w *world) now() time.Time { return time.UnixMilli(w.clock.Add(1)).UTC() }

func (w *world) open() {
	t := w.t
	store, err := pebble.Open(w.dir, pebble.Options{Partitions: w.parts, FS: w.fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w.store = store
	w.hub = notify.New(store.Partitions())
	eng, err := engine.Open(context.Background(), store, engine.Options{Now: w.now, Logger: quiet, OnDurable: w.hub.Notify})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	head := func(p int) uint64 {
		h := eng.DurableHead(p)
		if c := w.cap.Load(); c > 0 {
			h = min(h, uint64(c))
		}
		return h
	}
	w.feed = feed.New(feed.Options{Log: store, DurableHead: head, Heads: w.hub, Records: store, Now: w.now, Logger: quiet})
	w.closed = false
	if w.opened {
		return // a restart: the location is configured
	}
	w.opened = true
	ctx := context.Background()
	if _, err := eng.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) close() {
	if w.closed {
		return
	}
	w.closed = true
	w.eng.Close(context.Background())
	w.store.Close()
}

// restart closes and reopens the store and engine over the same files.
func (w *world) restart() {
	w.close()
	w.open()
}

func (w *world) receive(id, sku string, qty int64) {
	w.t.Helper()
	if _, _, err := w.eng.Receive(context.Background(), stockd.ReceiveStock{ID: id, SKU: sku, Location: "w1", Quantity: qty}); err != nil {
		w.t.Fatalf("Receive %s: %v", id, err)
	}
}

// all returns every durable event of every partition, read from the store.
func (w *world) all() map[string]stockd.Event {
	w.t.Helper()
	out := map[string]stockd.Event{}
	for p := range w.parts {
		evs, err := w.store.ReadPartition(context.Background(), p, 0, 0)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, e := range evs {
			if e.Position <= w.eng.DurableHead(p) {
				out[e.ID()] = e
			}
		}
	}
	return out
}

// follow reads pages from after until an empty page that leaves Next where
// it was, checking that no event comes twice.
func follow(t *testing.T, f stockd.Feed, q stockd.FeedQuery) ([]stockd.Event, string) {
	t.Helper()
	var out []stockd.Event
	seen := map[string]bool{}
	for range 100000 {
		p, err := f.FeedPage(context.Background(), q)
		if err != nil {
			t.Fatalf("FeedPage(after %q): %v", q.After, err)
		}
		if q.Limit > 0 && len(p.Events) > q.Limit {
			t.Fatalf("a page of %d events with limit %d", len(p.Events), q.Limit)
		}
		for _, e := range p.Events {
			if seen[e.ID()] {
				t.Fatalf("event %s served twice", e.ID())
			}
			seen[e.ID()] = true
		}
		out = append(out, p.Events...)
		if len(p.Events) == 0 && p.Next == q.After {
			return out, p.Next
		}
		q.After = p.Next
	}
	t.Fatal("the feed never caught up")
	return nil, ""
}

// checkOrder checks that each SKU's events come in version order, with no
// version missing from the first one seen.
func checkOrder(t *testing.T, events []stockd.Event) {
	t.Helper()
	checkVersions(t, events, true)
}

// checkVersions checks that each SKU's events come in version order; with
// contiguous, that no version is missing between two of them (a filtered
// view leaves versions out, but never reorders them).
func checkVersions(t *testing.T, events []stockd.Event, contiguous bool) {
	t.Helper()
	last := map[string]uint64{}
	for _, e := range events {
		if e.SKU == "" {
			continue
		}
		if v, ok := last[e.SKU]; ok && (e.Version <= v || contiguous && e.Version != v+1) {
			t.Fatalf("SKU %s: version %d after %d", e.SKU, e.Version, v)
		}
		last[e.SKU] = e.Version
	}
}

// onlyCommand checks that events are what command id wrote (its receipt
// and any stock signal it crossed) and that it received stock once.
func onlyCommand(t *testing.T, events []stockd.Event, id string) {
	t.Helper()
	receipts := 0
	for _, e := range events {
		if e.CommandID != id {
			t.Fatalf("event %s of command %q served, want only %q's", e.ID(), e.CommandID, id)
		}
		if e.Type() == stockd.TypeStockReceived {
			receipts++
		}
	}
	if receipts != 1 {
		t.Fatalf("%d receipts of %q served in %v, want 1", receipts, id, events)
	}
}

// TestFollowingNextServesEveryDurableEventOnce writes from many goroutines
// across 16 partitions (carts spanning partitions included, so that saga
// bookkeeping is in the log) while a reader follows the feed in small
// pages, then checks that the reader saw every durable event the feed shows
// exactly once, each SKU in version order, and no bookkeeping.
func TestFollowingNextServesEveryDurableEventOnce(t *testing.T) {
	w := newWorld(t, 16)
	ctx := context.Background()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				sku := fmt.Sprintf("s-%d", (g*7+i)%23)
				w.receive(fmt.Sprintf("r-%d-%d", g, i), sku, 5)
				if i%5 == 0 {
					other := fmt.Sprintf("s-%d", (g*7+i+11)%23)
					w.receive(fmt.Sprintf("ro-%d-%d", g, i), other, 5)
					if _, _, err := w.eng.Reserve(ctx, stockd.Reserve{ID: fmt.Sprintf("c-%d-%d", g, i), Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}, {SKU: other, Quantity: 1}}}); err != nil {
						t.Errorf("Reserve: %v", err)
					}
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	// Follow while the writers write, then once more after they are done.
	var got []stockd.Event
	q := stockd.FeedQuery{Limit: 7}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		evs, next := follow(t, w.feed, q)
		got = append(got, evs...)
		q.After = next
	}
	evs, _ := follow(t, w.feed, q)
	got = append(got, evs...)

	want := map[string]bool{}
	sagas := 0
	for id, e := range w.all() {
		if stockd.InFeed(e.Type()) {
			want[id] = true
		} else {
			sagas++
		}
	}
	if sagas == 0 {
		t.Fatal("no bookkeeping events were written: the test does not test leaving them out")
	}
	seen := map[string]bool{}
	for _, e := range got {
		if !stockd.InFeed(e.Type()) {
			t.Fatalf("bookkeeping event %s (%s) in the feed", e.ID(), e.Type())
		}
		if seen[e.ID()] {
			t.Fatalf("event %s served twice across pages", e.ID())
		}
		seen[e.ID()] = true
		if !want[e.ID()] {
			t.Fatalf("event %s served but not in the log", e.ID())
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("served %d events, the log holds %d", len(seen), len(want))
	}
	checkOrder(t, got)
}

// TestFiltersStillAdvanceTheCursor follows with a type and a SKU prefix that
// match few events: every match comes once, in order, and the cursor moves
// past what the filters leave out, even in pages that come back empty.
func TestFiltersStillAdvanceTheCursor(t *testing.T) {
	w := newWorld(t, 8)
	for i := range 300 {
		sku := fmt.Sprintf("b-%d", i%10)
		if i%30 == 0 {
			sku = fmt.Sprintf("a-%d", i%3)
		}
		w.receive(fmt.Sprintf("r-%d", i), sku, 1)
	}
	got, next := follow(t, w.feed, stockd.FeedQuery{Limit: 3, SKUPrefix: "a-", Types: []stockd.EventType{stockd.TypeStockReceived}})
	if len(got) != 10 {
		t.Fatalf("%d events for prefix a-, want 10", len(got))
	}
	for _, e := range got {
		if !strings.HasPrefix(e.SKU, "a-") || e.Type() != stockd.TypeStockReceived {
			t.Fatalf("event %s of %s (%s) passed the filter", e.ID(), e.SKU, e.Type())
		}
	}
	checkVersions(t, got, false)
	// The last cursor is at the heads: nothing is left to look at.
	c, _ := stockd.ParseFeedCursor(next)
	for p := range c {
		if c[p] != w.eng.DurableHead(p) {
			t.Fatalf("partition %d: the cursor stops at %d, the head is %d", p, c[p], w.eng.DurableHead(p))
		}
	}
	// A filter that matches nothing, over more than one scan: empty pages
	// that still move.
	for i := range 5000 {
		w.receive(fmt.Sprintf("many-%d", i), "c-1", 1)
	}
	p, err := w.feed.FeedPage(context.Background(), stockd.FeedQuery{After: next, Limit: 1, SKUPrefix: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 0 || p.Next == next {
		t.Fatalf("a filter matching nothing: %d events, moved %v", len(p.Events), p.Next != next)
	}
	if _, err := w.feed.FeedPage(context.Background(), stockd.FeedQuery{Types: []stockd.EventType{stockd.TypeEntitiesRetired}}); !stockd.IsCode(err, stockd.CodeInvalid) {
		t.Fatalf("a filter on a bookkeeping type: %v, want invalid_request", err)
	}
}

// TestPagesStopAtTheDurableHead tells the feed a lower durable head than the
// store holds: nothing past it is shown until it moves.
func TestPagesStopAtTheDurableHead(t *testing.T) {
	w := newWorld(t, 1)
	for i := range 10 {
		w.receive(fmt.Sprintf("r-%d", i), "A", 1)
	}
	w.cap.Store(4)
	got, next := follow(t, w.feed, stockd.FeedQuery{})
	for _, e := range got {
		if e.Position > 4 {
			t.Fatalf("event at position %d shown past the durable head 4", e.Position)
		}
	}
	w.cap.Store(0)
	rest, _ := follow(t, w.feed, stockd.FeedQuery{After: next})
	if len(got)+len(rest) != int(w.eng.DurableHead(0)) {
		t.Fatalf("%d + %d events, want %d", len(got), len(rest), w.eng.DurableHead(0))
	}
}

// TestAfterNowStartsAtTheHeads: a reader from "now" sees only what is
// written after it asked.
func TestAfterNowStartsAtTheHeads(t *testing.T) {
	w := newWorld(t, 4)
	w.receive("old", "A", 1)
	p, err := w.feed.FeedPage(context.Background(), stockd.FeedQuery{After: "now"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 0 {
		t.Fatalf("after=now served %d old events", len(p.Events))
	}
	w.receive("new", "B", 1)
	got, _ := follow(t, w.feed, stockd.FeedQuery{After: p.Next})
	onlyCommand(t, got, "new")
}

// TestLongPollWakesOnADurableBatch: a page that waits returns the event
// written while it waits (or before: either way, it is in the page).
func TestLongPollWakesOnADurableBatch(t *testing.T) {
	w := newWorld(t, 4)
	p, _ := w.feed.FeedPage(context.Background(), stockd.FeedQuery{After: "now"})
	got := make(chan stockd.FeedPage, 1)
	go func() {
		page, err := w.feed.FeedPage(context.Background(), stockd.FeedQuery{After: p.Next, Wait: time.Minute})
		if err != nil {
			t.Error(err)
		}
		got <- page
	}()
	w.receive("r", "A", 1)
	page := <-got
	onlyCommand(t, page.Events, "r")
	// A wait that ends answers an empty page at the same cursor.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	page2, err := w.feed.FeedPage(ctx, stockd.FeedQuery{After: page.Next, Wait: time.Minute})
	if err != nil || len(page2.Events) != 0 || page2.Next != page.Next {
		t.Fatalf("a cancelled wait: %v, %v", page2, err)
	}
}

// TestCursorsOfAnotherStoreAreRefused: another partition count, or a
// position past a durable head.
func TestCursorsOfAnotherStoreAreRefused(t *testing.T) {
	w := newWorld(t, 4)
	w.receive("r", "A", 1)
	for name, after := range map[string]string{
		"other partition count": stockd.FeedCursor{0, 0}.String(),
		"ahead of the head":     stockd.FeedCursor{100, 100, 100, 100}.String(),
		"garbage":               "not-a-cursor",
		"mistyped":              strings.ToUpper(stockd.FeedCursor{0, 0, 0, 0}.String()),
	} {
		if _, err := w.feed.FeedPage(context.Background(), stockd.FeedQuery{After: after}); !stockd.IsCode(err, stockd.CodeInvalid) {
			t.Errorf("%s: %v, want invalid_request", name, err)
		}
	}
}
