package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
)

// Store is what an Archiver needs of the store: its log, which trims, the
// partitions' latest snapshots and the consumers' checkpoints.
type Store interface {
	Source
	LoadSnapshot(ctx context.Context, p int) (stockd.Snapshot, bool, error)
	Checkpoint(ctx context.Context, consumer string, p int) (stockd.Checkpoint, error)
}

// Options configures an Archiver.
type Options struct {
	// After is the age an event must have to be archived; it must be
	// positive.
	After time.Duration
	// Every is how often the archiver looks for events to archive.
	// Default 1 minute.
	Every time.Duration
	// SegmentEvents is the most events a segment holds. Default 100,000
	// (some 10-20 MB before compression).
	SegmentEvents int
	// MinEvents is the fewest events worth a segment: a partition with
	// fewer eligible events waits until it has more. Default 1,000.
	MinEvents int
	// TrimChunk is the most events deleted from the store in one write, so
	// that trimming never holds up appends for long. Default 10,000.
	TrimChunk int
	// Consumers are consumers to wait for even in partitions where they
	// have never saved a checkpoint (the read model, say), besides every
	// consumer the store lists.
	Consumers []string
	// Log, when set, is told of new segments so that its reads find them.
	Log *Log
	// Metrics, when set, counts what the archiver does.
	Metrics *Metrics
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	if o.SegmentEvents <= 0 {
		o.SegmentEvents = 100_000
	}
	if o.MinEvents <= 0 {
		o.MinEvents = 1000
	}
	o.MinEvents = min(o.MinEvents, o.SegmentEvents)
	if o.TrimChunk <= 0 {
		o.TrimChunk = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Archiver moves old events of a store to segments in a bucket. Only one
// Archiver may run per store and bucket; its passes (the background loop's
// and RunOnce's) take turns.
type Archiver struct {
	store  Store
	bucket *Bucket
	opts   Options
	log    *slog.Logger

	// runMu makes passes take turns.
	runMu sync.Mutex
	// resumed records the partitions whose interrupted trim, if any, was
	// completed by this process.
	resumed []bool

	// step, in tests, is called after each step of archiving a segment
	// ("segment", "start", "trim"), and an error it returns aborts the
	// pass there, as a crash would.
	step func(step string, p int) error

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	running  atomic.Bool
}

// New returns an Archiver of store's old events into bucket. Start runs it in
// the background; RunOnce runs one pass.
func New(store Store, bucket *Bucket, opts Options) (*Archiver, error) {
	if opts.After <= 0 {
		return nil, errors.New("archive: the age of events to archive must be positive")
	}
	opts.setDefaults()
	return &Archiver{
		store: store, bucket: bucket, opts: opts,
		log:     opts.Logger.With("component", "archive"),
		resumed: make([]bool, store.Partitions()),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// Start runs passes every Options.Every in the background until Close. A
// failed pass is logged and counted, and retried at the next tick: nothing is
// lost by a failure at any step.
func (a *Archiver) Start() {
	a.running.Store(true)
	go func() {
		defer close(a.done)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-a.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		t := time.NewTicker(a.opts.Every)
		defer t.Stop()
		for {
			if err := a.RunOnce(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("archiving failed; retrying later", "err", err)
			}
			select {
			case <-a.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the background loop, interrupting a pass in progress (which the
// next start completes), and waits for it. It is safe to call without Start.
func (a *Archiver) Close() {
	a.stopOnce.Do(func() { close(a.stop) })
	if a.running.Load() {
		<-a.done
	}
}

// RunOnce archives, in every partition, whatever is eligible now, a segment
// at a time, and returns the first error.
func (a *Archiver) RunOnce(ctx context.Context) error {
	a.runMu.Lock()
	defer a.runMu.Unlock()
	var errs []error
	for p := range a.store.Partitions() {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			wrote, err := a.archivePartition(ctx, p)
			if err != nil {
				a.opts.Metrics.error()
				errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
				break
			}
			if !wrote {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// limit returns the highest position of partition p that may be archived as
// far as snapshots and consumers are concerned.
func (a *Archiver) limit(ctx context.Context, p int, consumers []string) (uint64, error) {
	snap, ok, err := a.store.LoadSnapshot(ctx, p)
	if err != nil || !ok {
		return 0, err
	}
	limit := snap.Position
	for _, c := range consumers {
		cp, err := a.store.Checkpoint(ctx, c, p)
		if err != nil {
			return 0, err
		}
		limit = min(limit, cp.Position)
	}
	return limit, nil
}

// consumers returns the consumers to wait for.
func (a *Archiver) consumers(ctx context.Context) ([]string, error) {
	listed, err := a.store.Consumers(ctx)
	if err != nil {
		return nil, err
	}
	all := append(slices.Clone(a.opts.Consumers), listed...)
	slices.Sort(all)
	return slices.Compact(all), nil
}

// archivePartition writes partition p's next segment if enough events are
// eligible, and reports whether it wrote one.
func (a *Archiver) archivePartition(ctx context.Context, p int) (bool, error) {
	start, err := a.store.LogStart(ctx, p)
	if err != nil {
		return false, err
	}
	if !a.resumed[p] {
		// A log start ahead of the data: a pass was interrupted after
		// recording it. Finish deleting what it hides.
		if err := a.trim(ctx, p); err != nil {
			return false, err
		}
		a.resumed[p] = true
	}
	a.opts.Metrics.archivedUpTo(p, start)
	consumers, err := a.consumers(ctx)
	if err != nil {
		return false, err
	}
	limit, err := a.limit(ctx, p, consumers)
	if err != nil || limit <= start {
		return false, err
	}
	limit = min(limit, start+uint64(a.opts.SegmentEvents))
	cutoff := a.opts.Now().Add(-a.opts.After)
	var events []stockd.Event
	for after := start; after < limit; {
		page, err := a.store.ReadPartition(ctx, p, after, int(min(limit-after, 10_000)))
		if err != nil {
			return false, err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Time.After(cutoff) {
				limit = after // stop here: this event and later ones are too young
				break
			}
			events = append(events, e)
			after = e.Position
		}
	}
	if len(events) < a.opts.MinEvents {
		return false, nil
	}
	data, h := encodeSegment(p, events)
	key := segmentKey(p, h.First)
	if err := a.bucket.put(ctx, key, data); err != nil {
		return false, err
	}
	if err := a.hook("segment", p); err != nil {
		return false, err
	}
	setStart := a.store.SetLogStart
	if a.opts.Log != nil {
		setStart = a.opts.Log.setLogStart
	}
	if err := setStart(ctx, p, h.Last); err != nil {
		return false, err
	}
	if err := a.hook("start", p); err != nil {
		return false, err
	}
	if err := a.trim(ctx, p); err != nil {
		return false, err
	}
	a.opts.Metrics.segment(p, h.Last, len(data), len(events))
	a.log.Debug("archived", "partition", p, "first", h.First, "last", h.Last, "bytes", len(data))
	return true, nil
}

// trim deletes what the store's log start hides, a chunk at a time.
func (a *Archiver) trim(ctx context.Context, p int) error {
	for {
		more, err := a.store.Trim(ctx, p, a.opts.TrimChunk)
		if err != nil {
			return err
		}
		if err := a.hook("trim", p); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

func (a *Archiver) hook(step string, p int) error {
	if a.step == nil {
		return nil
	}
	return a.step(step, p)
}
