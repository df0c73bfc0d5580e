// Package readmodel is stockd's availability read model: a projection that
// folds every partition's log, read from the store behind a checkpoint, into
// states of its own, and answers availability for many SKUs at once, SKU
// listings and customers' held reservations from them.
//
// It never touches the engine's partition goroutines: product pages and
// search ask for availability far more often than carts change it, and a
// read that queued behind a flash sale's commands would slow both. The price
// is freshness, which every answer states: the moment up to which it is
// complete (as_of) and how many durable events it does not reflect yet (lag).
//
// Each partition is folded into a stockd.AvailabilityState, which keeps only
// what the read model answers: on_hand and reserved per SKU and location,
// safety stock per SKU, and the reservations that are held or still hold
// stock. A reservation is forgotten once it is committed, released or expired,
// so the read model's memory and checkpoints follow the live reservations,
// not every reservation the partitions ever settled. The fold lives in the
// domain package beside State and is tested against it event by event, so
// the read model does not disagree with the write path about what an event
// means; it can only be behind. Its checkpoint carries the encoded
// AvailabilityState with the position, written together, so a restart
// resumes where it stopped instead of replaying the log.
package readmodel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/internal/workers"
)

// Defaults of Options.
const (
	// DefaultName is the consumer name checkpoints are saved under.
	DefaultName = "availability"
	// DefaultInterval is how long a caught-up partition waits before it
	// looks at the durable head again, unless Notify wakes it.
	DefaultInterval = 20 * time.Millisecond
	// DefaultSaveEvery is how often a partition that moved saves its
	// checkpoint. A save encodes the partition's availability (its SKUs and
	// live reservations), while a crash only costs the replay of what came
	// after the last save: at tens of thousands of events a second, half a
	// minute replays in well under a second.
	DefaultSaveEvery = 30 * time.Second
)

// Limits of the queries and of the consumer.
const (
	// ReadBatch is the most events read from the store at once.
	ReadBatch = 4096
	// DefaultReservations is the number of reservations listed when the
	// caller asks for none in particular.
	DefaultReservations = 100
	// MaxReservations bounds one listing of reservations.
	MaxReservations = 1000
	// DefaultSKUs is the number of SKUs listed when the query names no
	// limit.
	DefaultSKUs = 100
	// MaxSKUs bounds one listing of SKUs.
	MaxSKUs = 1000
)

// applyChunk is the most events applied under one hold of a partition's write
// lock. Readers wait for the lock; a read batch of thousands of events applied
// in one go would stall them for milliseconds.
const applyChunk = 256

// maxBackoff bounds the wait after a failed read or save, which doubles from
// Interval.
const maxBackoff = time.Second

// saveBudget is the largest share of a partition's time that saving its
// checkpoint may take: a save that took d postpones the next by at least
// d/saveBudget. A partition with many SKUs or live reservations can take a
// while to encode, and it must not end up doing little else.
const saveBudget = 0.02

// Options configure a Projection.
type Options struct {
	// Name is the consumer name its checkpoints are saved under. Two
	// projections with different names keep separate checkpoints. Default
	// DefaultName.
	Name string
	// DurableHead reports how far each partition is durable: the engine's
	// DurableHead. It is required. The projection never reads past it,
	// because the store may already show events whose append has not been
	// synced, and a crash could still take those back.
	DurableHead func(p int) uint64
	// HeadKnownAt, when set, reports for a partition another node writes
	// when the head DurableHead gives was read from the store (the zero
	// time if it never was) and true; false for a partition this process
	// writes, whose head is current (engine.HeadKnownAt). An answer
	// involving a partition another node writes is complete only as of
	// that moment. nil: this process writes every partition.
	HeadKnownAt func(p int) (time.Time, bool)
	// Limits are those the engine's snapshots are decoded with, when a
	// partition starts from one. Folding does not depend on them. Default
	// stockd.DefaultLimits.
	Limits stockd.Limits
	// Interval is how long a caught-up partition waits before it looks at
	// the durable head again. Notify cuts the wait short. Default
	// DefaultInterval.
	Interval time.Duration
	// SaveEvery is how often a partition that moved saves its checkpoint;
	// Close saves it too. A crash loses at most this much progress, which
	// the next start replays. A save that takes long postpones the next
	// one to keep saving under a fiftieth of the partition's time. Default
	// DefaultSaveEvery.
	SaveEvery time.Duration
	// Logger receives the projection's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock that stamps answers from caught-up partitions (see
	// Availability). Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Limits == (stockd.Limits{}) {
		o.Limits = stockd.DefaultLimits
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = DefaultSaveEvery
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Projection is the availability read model. Its queries are safe for
// concurrent use with each other and with the consumer that feeds it; they
// never block each other.
type Projection struct {
	store Store
	opts  Options
	log   *slog.Logger
	parts []*partition

	// mu orders Start and Close.
	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// partition is the projection of one partition's log.
type partition struct {
	id int

	// mu guards state, head and clock: the partition's goroutine changes
	// them under the write lock, queries read them under the read lock.
	mu    sync.RWMutex
	state *stockd.AvailabilityState
	// head and clock are the position and time of the last event applied
	// in full. They are kept apart from the state's because Apply may move
	// its head before failing on an event it cannot apply, and a failed
	// event must show as lag, not as progress.
	head  uint64
	clock time.Time

	// applied is head, published for readers that take no lock.
	applied atomic.Uint64
	// wake is signalled by Notify.
	wake chan struct{}
	// read counts the events read from the store since Start, and polls
	// the times the partition looked at its durable head: tests use them
	// to see what the consumer did without waiting for it.
	read  atomic.Uint64
	polls atomic.Uint64
	// err is set when the partition stopped on an event it could not
	// apply.
	err atomic.Pointer[error]
	// waiting is, in Unix nanoseconds, about when the oldest durable event
	// not applied yet was written: that event's time once the consumer has
	// read it, before then the moment the projection learned it was behind
	// (Notify, a poll or LagDuration). 0 while caught up. See LagDuration.
	waiting atomic.Int64

	// Owned by the partition's goroutine (and by Start and Close, which
	// run before and after it).
	loaded   uint64    // the position Start resumed from
	saved    uint64    // the position of the last checkpoint saved
	nextSave time.Time // when the checkpoint may be saved next
}

// New returns a projection of store's partitions. It reads nothing until
// Start; until then every answer is empty and as far behind as the log is
// durable.
func New(store Store, opts Options) *Projection {
	opts.setDefaults()
	n := store.Partitions()
	pr := &Projection{
		store: store,
		opts:  opts,
		log:   opts.Logger.With("component", "readmodel", "consumer", opts.Name),
		parts: make([]*partition, n),
	}
	for p := range pr.parts {
		pr.parts[p] = &partition{
			id:    p,
			state: stockd.NewAvailabilityState(p, n),
			wake:  make(chan struct{}, 1),
		}
	}
	return pr
}

// Start loads every partition's checkpoint, with the availability saved in
// it, and starts one goroutine per partition that folds the log from there
// on. ctx bounds the loading only: the goroutines run until Close.
//
// A partition starts from the furthest of its checkpoint and the engine's
// latest snapshot that does not pass its durable head: both are exact folds
// of the log up to their position (a snapshot's State is converted with
// stockd.AvailabilityOf), and a snapshot spares a new projection the replay
// of the whole log. A checkpoint without a state (one set by hand to rewind
// the consumer), beyond the durable head (a store restored from an older
// copy), or holding a whole encoded State (written by read models before
// they kept only availability, possibly between the events of one
// decision) is not resumed from: the partition starts from the snapshot, or
// replays its log from the start.
func (pr *Projection) Start(ctx context.Context) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	switch {
	case pr.closed:
		return errors.New("readmodel: Start after Close")
	case pr.started:
		return errors.New("readmodel: started twice")
	case pr.opts.DurableHead == nil:
		return errors.New("readmodel: Options.DurableHead is required: without it the projection could show writes that a crash takes back")
	}
	start := time.Now()
	errs := make([]error, len(pr.parts))
	sources := make([]string, len(pr.parts))
	workers.Each(len(pr.parts), func(p int) {
		sources[p], errs[p] = pr.load(ctx, pr.parts[p])
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	counts := map[string]int{}
	var behind uint64
	for p, part := range pr.parts {
		counts[sources[p]]++
		behind += sub(pr.opts.DurableHead(p), part.loaded)
	}
	pr.log.Info("projection loaded", "partitions", len(pr.parts), "from_checkpoint", counts["checkpoint"],
		"from_snapshot", counts["snapshot"], "from_start", counts["start"], "events_behind", behind,
		"took", time.Since(start).Round(time.Millisecond))

	runCtx, cancel := context.WithCancel(context.Background())
	pr.cancel = cancel
	pr.started = true
	for _, part := range pr.parts {
		pr.wg.Add(1)
		go pr.run(runCtx, part)
	}
	return nil
}

// load restores one partition's availability and returns where it came
// from: "checkpoint", "snapshot" or "start".
func (pr *Projection) load(ctx context.Context, part *partition) (string, error) {
	p := part.id
	durable := pr.opts.DurableHead(p)
	var (
		av     *stockd.AvailabilityState
		source = "start"
		saved  uint64
	)
	c, err := pr.store.Checkpoint(ctx, pr.opts.Name, p)
	if err != nil {
		return "", fmt.Errorf("readmodel: load checkpoint of partition %d: %w", p, err)
	}
	switch {
	case c.Position == 0:
	case c.Position > durable:
		pr.log.Warn("checkpoint is beyond the durable log; replaying", "partition", p, "checkpoint", c.Position, "durable", durable)
	case len(c.State) == 0:
		pr.log.Info("checkpoint carries no state; replaying", "partition", p, "checkpoint", c.Position)
	case !stockd.IsAvailabilityEncoding(c.State):
		// Written by a read model that kept whole States. It may have
		// been saved between the events of one decision, where a State
		// cannot be told from one that needs no more events; it is not
		// converted.
		pr.log.Info("checkpoint in the old format (a whole State); rebuilding from the snapshot or the log", "partition", p, "checkpoint", c.Position)
	default:
		if av, err = pr.decode(c.State, p, c.Position); err != nil {
			pr.log.Warn("checkpoint state unusable; replaying", "partition", p, "checkpoint", c.Position, "err", err)
			av = nil
		} else {
			source, saved = "checkpoint", c.Position
		}
	}
	snap, ok, err := pr.store.LoadSnapshot(ctx, p)
	if err != nil {
		return "", fmt.Errorf("readmodel: load snapshot of partition %d: %w", p, err)
	}
	if ok && snap.Position <= durable && (av == nil || snap.Position > av.Head()) {
		if st, err := pr.decodeSnapshot(snap.Data, p, snap.Position); err != nil {
			pr.log.Warn("snapshot unusable", "partition", p, "position", snap.Position, "err", err)
		} else {
			av, source = stockd.AvailabilityOf(st), "snapshot"
		}
	}
	if av == nil {
		av = stockd.NewAvailabilityState(p, len(pr.parts))
	}
	part.mu.Lock()
	part.state = av
	part.head, part.clock = av.Head(), av.Clock()
	part.mu.Unlock()
	part.applied.Store(av.Head())
	part.loaded, part.saved = av.Head(), saved
	part.nextSave = time.Now().Add(pr.opts.SaveEvery)
	return source, nil
}

// decode decodes a saved availability and checks that it is that of
// partition p at position pos.
func (pr *Projection) decode(data []byte, p int, pos uint64) (*stockd.AvailabilityState, error) {
	av, err := stockd.DecodeAvailability(data)
	if err != nil {
		return nil, err
	}
	if av.Partition() != p || av.Head() != pos {
		return nil, fmt.Errorf("holds partition %d at %d, want partition %d at %d", av.Partition(), av.Head(), p, pos)
	}
	return av, nil
}

// decodeSnapshot decodes the engine's snapshot, a State, and checks that it
// is the State of partition p at position pos.
func (pr *Projection) decodeSnapshot(data []byte, p int, pos uint64) (*stockd.State, error) {
	st, err := stockd.DecodeState(data, pr.opts.Limits)
	if err != nil {
		return nil, err
	}
	if st.Partition() != p || st.Head() != pos {
		return nil, fmt.Errorf("holds partition %d at %d, want partition %d at %d", st.Partition(), st.Head(), p, pos)
	}
	return st, nil
}

// run is a partition's consumer loop: read what is durable beyond the
// position, apply it, save the checkpoint when due, and wait when caught up.
func (pr *Projection) run(ctx context.Context, part *partition) {
	defer pr.wg.Done()
	timer := time.NewTimer(pr.opts.Interval)
	defer timer.Stop()
	backoff := pr.opts.Interval
	failing := false
	for ctx.Err() == nil {
		progressed, err := pr.step(ctx, part)
		var fatal *applyError
		switch {
		case errors.As(err, &fatal):
			part.err.Store(&err)
			pr.log.Error("the projection of a partition stopped on an event it cannot apply; its answers stay as they are", "partition", part.id, "err", err)
			return
		case err != nil && ctx.Err() == nil:
			if !failing {
				pr.log.Warn("reading the log failed; will retry", "partition", part.id, "err", err)
			}
			failing = true
		case err == nil:
			if failing {
				pr.log.Info("reading the log works again", "partition", part.id)
			}
			failing, backoff = false, pr.opts.Interval
		}
		if err == nil {
			pr.maybeSave(ctx, part)
		}
		if progressed {
			continue
		}
		wait := pr.opts.Interval
		if failing {
			wait, backoff = backoff, min(2*backoff, max(maxBackoff, pr.opts.Interval))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-part.wake:
		case <-timer.C:
		}
	}
}

// applyError is an event the projection cannot apply: the log and the code
// disagree, and retrying would fail the same way.
type applyError struct {
	event stockd.Event
	err   error
}

func (e *applyError) Error() string {
	return fmt.Sprintf("readmodel: apply event %s (%s): %v", e.event.ID(), e.event.Type(), e.err)
}

func (e *applyError) Unwrap() error { return e.err }

// step reads and applies one batch of durable events, and reports whether it
// applied any.
func (pr *Projection) step(ctx context.Context, part *partition) (bool, error) {
	part.polls.Add(1)
	pos := part.applied.Load()
	durable := pr.opts.DurableHead(part.id)
	if durable <= pos {
		part.waiting.Store(0)
		return false, nil
	}
	part.waiting.CompareAndSwap(0, pr.opts.Now().UnixNano())
	events, err := pr.store.ReadPartition(ctx, part.id, pos, int(min(durable-pos, ReadBatch)))
	if err != nil {
		return false, err
	}
	// The store may hold events beyond the durable head that it has not
	// synced yet; the limit keeps them out, and so does this, whatever the
	// store does with the limit.
	for i, e := range events {
		if e.Position > durable {
			events = events[:i]
			break
		}
	}
	part.read.Add(uint64(len(events)))
	for len(events) > 0 {
		if t := events[0].Time; !t.IsZero() {
			part.waiting.Store(t.UnixNano())
		}
		n := min(len(events), applyChunk)
		if err := part.apply(events[:n]); err != nil {
			return true, err
		}
		events = events[n:]
	}
	// What became durable meanwhile is counted from now until the next
	// step reads it, which is at once: this one made progress.
	part.waiting.Store(0)
	if pr.opts.DurableHead(part.id) > part.applied.Load() {
		part.waiting.CompareAndSwap(0, pr.opts.Now().UnixNano())
	}
	return part.applied.Load() > pos, nil
}

// apply folds events into the partition's availability under the write
// lock.
func (part *partition) apply(events []stockd.Event) error {
	part.mu.Lock()
	defer part.mu.Unlock()
	defer func() { part.applied.Store(part.head) }()
	av := part.state
	for _, e := range events {
		if err := av.Apply(e); err != nil {
			return &applyError{event: e, err: err}
		}
		part.head, part.clock = av.Head(), av.Clock()
	}
	return nil
}

// maybeSave saves the partition's checkpoint if it moved and is due. Only the
// partition's goroutine changes the state, so it encodes it without a lock
// while queries go on reading it.
func (pr *Projection) maybeSave(ctx context.Context, part *partition) {
	if part.applied.Load() == part.saved || time.Now().Before(part.nextSave) {
		return
	}
	if err := pr.save(ctx, part); err != nil && ctx.Err() == nil {
		pr.log.Warn("saving the checkpoint failed; will try again", "partition", part.id, "err", err)
	}
}

// save writes the partition's checkpoint: its position and the availability
// at exactly that position.
func (pr *Projection) save(ctx context.Context, part *partition) error {
	start := time.Now()
	av := part.state
	pos := av.Head()
	err := pr.store.SetCheckpoint(ctx, pr.opts.Name, part.id, stockd.Checkpoint{Position: pos, State: stockd.EncodeAvailability(av)})
	took := time.Since(start)
	part.nextSave = start.Add(max(pr.opts.SaveEvery, time.Duration(float64(took)/saveBudget)))
	if err != nil {
		return err
	}
	part.saved = pos
	return nil
}

// Notify tells the projection that partition p has new durable events, so
// that it reads them now rather than at its next poll. It never blocks: the
// engine may call it after every durable batch.
func (pr *Projection) Notify(p int) {
	if p < 0 || p >= len(pr.parts) {
		return
	}
	pr.parts[p].waiting.CompareAndSwap(0, pr.opts.Now().UnixNano())
	select {
	case pr.parts[p].wake <- struct{}{}:
	default:
	}
}

// Close stops the consumer and saves every partition's checkpoint that moved
// since it was last saved, so that the next Start replays nothing. Queries
// keep answering from the last state. Calling Close again does nothing. Close
// must be called before the store is closed.
func (pr *Projection) Close() error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.closed {
		return nil
	}
	pr.closed = true
	if !pr.started {
		return nil
	}
	pr.cancel()
	pr.wg.Wait()
	var errs []error
	for _, part := range pr.parts {
		if part.err.Load() != nil {
			// A state that failed to apply an event is not the state
			// at its position; it must not be resumed from.
			continue
		}
		if part.applied.Load() == part.saved {
			continue
		}
		if err := pr.save(context.Background(), part); err != nil {
			errs = append(errs, fmt.Errorf("readmodel: save checkpoint of partition %d: %w", part.id, err))
		}
	}
	return errors.Join(errs...)
}

// Err returns why partitions stopped following their logs, or nil. A
// partition stops only on an event it cannot apply; its answers then stay as
// they were, and its lag grows, which is what health checks should watch.
func (pr *Projection) Err() error {
	var errs []error
	for _, part := range pr.parts {
		if err := part.err.Load(); err != nil {
			errs = append(errs, *err)
		}
	}
	return errors.Join(errs...)
}

// Position returns the position up to which partition p has been applied, for
// metrics; 0 for a partition out of range.
func (pr *Projection) Position(p int) uint64 {
	if p < 0 || p >= len(pr.parts) {
		return 0
	}
	return pr.parts[p].applied.Load()
}

// Lag returns the number of durable events, over every partition, that the
// projection has not applied yet, for metrics.
func (pr *Projection) Lag() uint64 {
	var n uint64
	for p, part := range pr.parts {
		n += sub(pr.durableHead(p), part.applied.Load())
	}
	return n
}

// LagDuration returns how long the read model is behind, for metrics: over
// every partition that has durable events it has not applied yet, the
// longest time since the oldest of them was written, and 0 when every
// partition is caught up.
//
// An event's time is when the engine decided it, a moment before it became
// durable. Until the consumer has read a partition's waiting events it does
// not know their times, and counts from when it learned the partition was
// behind: the engine's Notify after a durable batch, its own poll, or a call
// of LagDuration. The figure may so read a little short (by the time from
// the write to that moment), never long; a partition idle for an hour that
// has just become durable a moment ago is a moment behind, not an hour. A
// partition stopped on an event it cannot apply goes on counting from that
// event's time.
func (pr *Projection) LagDuration() time.Duration {
	now := pr.opts.Now().UnixNano()
	var lag int64
	for p, part := range pr.parts {
		if pr.durableHead(p) <= part.applied.Load() {
			continue
		}
		since := part.waiting.Load()
		if since == 0 {
			part.waiting.CompareAndSwap(0, now)
			continue
		}
		lag = max(lag, now-since)
	}
	return time.Duration(lag)
}

// durableHead is Options.DurableHead, or 0 when none was given: a projection
// that was never started has nothing to be behind on.
func (pr *Projection) durableHead(p int) uint64 {
	if pr.opts.DurableHead == nil {
		return 0
	}
	return pr.opts.DurableHead(p)
}

// headKnownAt is when partition p's durable head was known to be current:
// now, unless another node writes it (Options.HeadKnownAt).
func (pr *Projection) headKnownAt(p int, now time.Time) time.Time {
	if pr.opts.HeadKnownAt == nil {
		return now
	}
	if at, followed := pr.opts.HeadKnownAt(p); followed {
		return at
	}
	return now
}

// sub returns a − b, or 0 if b ≥ a.
func sub(a, b uint64) uint64 {
	if b >= a {
		return 0
	}
	return a - b
}
