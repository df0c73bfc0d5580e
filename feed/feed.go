// Package feed serves the change feed: pages of every durable event across
// the partitions, followed with an opaque cursor, long polls that wait for
// the next durable batch, and named subscriptions whose acknowledged cursors
// are kept in the store's Records. It implements stockd.Feed over the log as
// readers downstream of the engine see it (archived ranges read back from
// cold storage) and never reads past a partition's durable head.
package feed

import (
	"container/heap"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/internal/notify"
)

// Options are what a Service is built from.
type Options struct {
	// Log is the log to read; it must be the one the engine appends to,
	// or a view of it that reads archived ranges back (archive.Log).
	Log stockd.Log
	// DurableHead returns a partition's durable head: the feed never
	// shows an event past it, even if Log already holds it.
	DurableHead func(p int) uint64
	// Heads is told of every durable batch; long polls wait on it.
	Heads *notify.Hub
	// Records keeps the subscriptions; nil answers subscription calls
	// with CodeUnavailable.
	Records stockd.Records
	// Now is the clock of subscription times. Default time.Now.
	Now func() time.Time
	// Logger receives internal errors. Default slog.Default().
	Logger *slog.Logger
}

// Service is the feed. It is safe for concurrent use.
type Service struct {
	o      Options
	n      int
	locks  [64]sync.Mutex // subscriptions, by a hash of their name
	served atomic.Uint64
}

// Served returns the number of events the feed has served in pages,
// streams and subscription reads since it started.
func (s *Service) Served() uint64 { return s.served.Load() }

// New returns the feed over o.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{o: o, n: o.Log.Partitions()}
}

// DefaultLimit is the events of a page when the query names no limit, and
// MaxLimit the most a page may hold.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// MaxWait bounds a long poll.
const MaxWait = time.Minute

// scanFactor bounds how many events a page looks at, as a multiple of its
// limit (at least minScan), so that a filter matching little still answers
// quickly: the page then comes back short, or empty, with Next moved past
// everything it looked at.
const (
	scanFactor = 16
	minScan    = 4096
)

// heads returns the durable head of every partition.
func (s *Service) heads() stockd.FeedCursor {
	h := make(stockd.FeedCursor, s.n)
	for p := range h {
		h[p] = s.o.DurableHead(p)
	}
	return h
}

// parse resolves a query's After: "" is the beginning, "now" the durable
// heads, anything else a cursor of this store that is not ahead of them.
func (s *Service) parse(after string) (stockd.FeedCursor, error) {
	switch after {
	case "":
		return make(stockd.FeedCursor, s.n), nil
	case "now":
		return s.heads(), nil
	}
	c, err := stockd.ParseFeedCursor(after)
	if err != nil {
		return nil, err
	}
	return c, s.check(c)
}

// check refuses a cursor of another store: one of another partition count,
// or ahead of a durable head (which no cursor of this store can be: heads
// never move back, and cursors are made at or behind them).
func (s *Service) check(c stockd.FeedCursor) error {
	if len(c) != s.n {
		return stockd.Errorf(stockd.CodeInvalid, "the cursor covers %d partitions, but this store has %d: it comes from another store", len(c), s.n)
	}
	for p, pos := range c {
		if h := s.o.DurableHead(p); pos > h {
			return stockd.Errorf(stockd.CodeInvalid, "the cursor is at position %d of partition %d, past its durable head %d: it comes from another store", pos, p, h)
		}
	}
	return nil
}

// filter is what a query keeps.
type filter struct {
	types  [256]bool
	any    bool
	prefix string
}

func newFilter(q stockd.FeedQuery) *filter {
	f := &filter{any: len(q.Types) == 0, prefix: q.SKUPrefix}
	for _, t := range q.Types {
		f.types[t] = true
	}
	return f
}

func (f *filter) keep(e stockd.Event) bool {
	t := e.Type()
	if !stockd.InFeed(t) || (!f.any && !f.types[t]) {
		return false
	}
	return f.prefix == "" || strings.HasPrefix(e.SKU, f.prefix)
}

// FeedPage implements stockd.Feed.
func (s *Service) FeedPage(ctx context.Context, q stockd.FeedQuery) (stockd.FeedPage, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit > MaxLimit {
		return stockd.FeedPage{}, stockd.Errorf(stockd.CodeInvalid, "limit must be between 1 and %d, got %d", MaxLimit, q.Limit)
	}
	if q.Wait > MaxWait {
		q.Wait = MaxWait
	}
	for _, t := range q.Types {
		if !stockd.InFeed(t) {
			return stockd.FeedPage{}, stockd.Errorf(stockd.CodeInvalid, "%s events are bookkeeping and never in the feed", t)
		}
	}
	cur, err := s.parse(q.After)
	if err != nil {
		return stockd.FeedPage{}, err
	}
	return s.page(ctx, cur, q.Limit, newFilter(q), q.Wait)
}

// page reads the events after cur, waiting up to wait for one when there is
// none yet.
func (s *Service) page(ctx context.Context, cur stockd.FeedCursor, limit int, f *filter, wait time.Duration) (stockd.FeedPage, error) {
	var deadline <-chan time.Time
	for {
		// Take the channel before reading the heads, so that a batch
		// made durable after the read closes it.
		var woken <-chan struct{}
		if wait > 0 && s.o.Heads != nil {
			woken = s.o.Heads.WaitAny()
		}
		heads := s.heads()
		events, next, err := s.read(ctx, cur, heads, limit, f)
		if err != nil {
			return stockd.FeedPage{}, err
		}
		caughtUp := true
		for p := range next {
			if next[p] < heads[p] {
				caughtUp = false
			}
		}
		if len(events) > 0 || !caughtUp || wait <= 0 || woken == nil {
			s.served.Add(uint64(len(events)))
			return stockd.FeedPage{Events: events, Next: next.String()}, nil
		}
		if deadline == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			deadline = t.C
		}
		cur = next
		select {
		case <-woken:
		case <-deadline:
			return stockd.FeedPage{Events: events, Next: next.String()}, nil
		case <-ctx.Done():
			// The caller is gone or out of time: an empty page is
			// the honest answer, and harmless if no one reads it.
			return stockd.FeedPage{Events: events, Next: next.String()}, nil
		}
	}
}

// source is one partition's events being merged into a page.
type source struct {
	p    int
	buf  []stockd.Event
	last uint64 // the position of the last event read into buf
	head uint64
}

// merge orders the partitions by their next event: its time, then the
// partition.
type merge []*source

func (m merge) Len() int { return len(m) }
func (m merge) Less(i, j int) bool {
	a, b := m[i].buf[0], m[j].buf[0]
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	return a.Partition < b.Partition
}
func (m merge) Swap(i, j int) { m[i], m[j] = m[j], m[i] }
func (m *merge) Push(x any)   { *m = append(*m, x.(*source)) }
func (m *merge) Pop() any {
	old := *m
	x := old[len(old)-1]
	*m = old[:len(old)-1]
	return x
}

// read merges the partitions' events after cur and up to heads into a page
// of at most limit kept events, looking at no more than the scan bound. Each
// partition contributes a run of consecutive positions right after its
// cursor, so the returned cursor skips nothing and repeats nothing.
func (s *Service) read(ctx context.Context, cur, heads stockd.FeedCursor, limit int, f *filter) ([]stockd.Event, stockd.FeedCursor, error) {
	next := append(stockd.FeedCursor(nil), cur...)
	active := 0
	for p := range cur {
		if heads[p] > cur[p] {
			active++
		}
	}
	events := make([]stockd.Event, 0, min(limit, 64))
	if active == 0 {
		return events, next, nil
	}
	// A chunk per partition and read: enough that a page spread over the
	// partitions takes one read each, small enough that a page of a few
	// events does not decode thousands.
	chunk := min(256, max(16, 2*limit/active+1))
	m := make(merge, 0, active)
	fill := func(src *source) error {
		n := int(min(uint64(chunk), src.head-src.last))
		evs, err := s.o.Log.ReadPartition(ctx, src.p, src.last, n)
		if err != nil {
			return err
		}
		// The log may hold events not durable yet: never past the head.
		for len(evs) > 0 && evs[len(evs)-1].Position > src.head {
			evs = evs[:len(evs)-1]
		}
		if len(evs) > 0 {
			if evs[0].Position != src.last+1 {
				return stockd.Errorf(stockd.CodeInternal, "feed: partition %d answered position %d after %d", src.p, evs[0].Position, src.last)
			}
			src.last = evs[len(evs)-1].Position
		}
		src.buf = evs
		return nil
	}
	for p := range cur {
		if heads[p] <= cur[p] {
			continue
		}
		src := &source{p: p, last: cur[p], head: heads[p]}
		if err := fill(src); err != nil {
			return nil, nil, err
		}
		if len(src.buf) > 0 {
			m = append(m, src)
		}
	}
	heap.Init(&m)
	budget := max(limit*scanFactor, minScan)
	for scanned := 0; m.Len() > 0 && len(events) < limit && scanned < budget; scanned++ {
		src := m[0]
		e := src.buf[0]
		src.buf = src.buf[1:]
		next[src.p] = e.Position
		if f.keep(e) {
			events = append(events, e)
		}
		if len(src.buf) == 0 && src.last < src.head {
			if err := fill(src); err != nil {
				return nil, nil, err
			}
		}
		if len(src.buf) == 0 {
			heap.Pop(&m)
		} else {
			heap.Fix(&m, 0)
		}
	}
	return events, next, nil
}
