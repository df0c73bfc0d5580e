// Package publish sends the log on to the rest of the business. A Runner
// follows every partition of the log behind a checkpoint of its own and hands
// each partition's new events, in order, to a Sink (a broker, a webhook
// endpoint), saving its checkpoint once the Sink has taken them. Delivery is
// at least once: a crash between a Sink taking events and the checkpoint
// being saved sends them again, and every event carries a stable id
// (stockd.Event.ID) for the receiver to drop repeats by.
//
// A Runner reads the store, never the engine's partitions: a Sink that is
// slow or down makes its own lag grow (in /metrics) and nothing else, so no
// publisher can slow down or block reservations. What a lagging publisher
// holds back is archiving: events move to cold storage only once every
// consumer's checkpoint has passed them.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/internal/notify"
)

// Sink takes a partition's events, in position order, for delivery
// downstream.
//
// Rules a Sink MUST keep:
//   - Publish MUST NOT return nil before the events are accepted by the
//     receiver (acknowledged by the broker, answered 2xx by the endpoint):
//     the Runner then saves its checkpoint past them and never offers them
//     again.
//   - Publish MUST be safe to call again with events it took before (after a
//     crash, or an error part-way): delivery is at least once, and a Sink
//     passes the event id on so that receivers can drop repeats.
//   - Publish is called by one goroutine per partition at a time; calls for
//     different partitions run concurrently.
type Sink interface {
	Publish(ctx context.Context, p int, events []stockd.Event) error
}

// Consumer returns the name under which the checkpoints of the publisher
// called name are kept. Every publisher name gets the prefix "publish/", so
// that publishers never share a checkpoint with the read model or with each
// other.
func Consumer(name string) string { return "publish/" + name }

// Options configure a Runner.
type Options struct {
	// Name names the publisher in checkpoints (see Consumer), logs and
	// metrics. It is required.
	Name string
	// Log is read for events; reads of archived ranges must work (the
	// app's archive-aware log). Required.
	Log stockd.Log
	// Checkpoints keeps how far the publisher got in each partition.
	// Required.
	Checkpoints stockd.Checkpoints
	// DurableHead reports how far each partition is durable; the Runner
	// never reads past it, because the store may already show events a
	// crash could take back. Required.
	DurableHead func(p int) uint64
	// Heads wakes the Runner when a partition has new durable events;
	// nil makes it look every Interval.
	Heads *notify.Hub
	// Interval is how often a caught-up partition looks at its head
	// without being woken. Default 1 s (100 ms without Heads).
	Interval time.Duration
	// Batch is the most events offered to the Sink at once, and so the
	// most a crash can make it receive twice per partition: the
	// checkpoint is saved after each batch. Default 256. The log is read
	// up to ReadAhead events at a time (at least Batch), so that a small
	// Batch does not decode a large stored record of the log once per
	// batch.
	Batch int
	// Skip, when set, drops events the publisher does not send. They
	// still advance its checkpoint.
	Skip func(stockd.Event) bool
	// MinBackoff and MaxBackoff bound the wait before a failed Publish is
	// tried again; it doubles, with jitter, from one to the other.
	// Defaults 100 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Serves, when set, says whether this process serves partition p now:
	// in a cluster each partition is published by the node that serves it
	// only, once across the cluster, not once per node. A partition this
	// process stops serving is left alone (events offered meanwhile may be
	// offered again by the next node, from its checkpoint: at least once);
	// one it starts serving resumes from the checkpoint in the store,
	// where the last node left it. Checked every Interval while not
	// served. nil: every partition, always.
	Serves func(p int) bool
	// Metrics, when set, counts what the Runner does.
	Metrics *Metrics
	// Logger receives errors, at most one per partition per MaxBackoff
	// for a Sink that keeps failing. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Name == "" || o.Log == nil || o.Checkpoints == nil || o.DurableHead == nil {
		return errors.New("publish: Options need Name, Log, Checkpoints and DurableHead")
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
		if o.Heads == nil {
			o.Interval = 100 * time.Millisecond
		}
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// ReadAhead is the most events a Runner reads from the log at once, when it
// is more than its Batch. The store keeps each group commit as one record and
// decodes the whole record to return any part of it; a hot partition's
// records hold hundreds of events.
const ReadAhead = 1024

// Runner follows every partition and feeds a Sink. Start it with Start,
// stop it with Close.
type Runner struct {
	opts     Options
	sink     Sink
	consumer string
	log      *slog.Logger
	pos      []atomic.Uint64 // checkpointed position per partition
	// oldest is, per partition, the time (Unix nanoseconds) of the oldest
	// durable event not yet published, or 0 when the partition is caught
	// up: what LagSeconds reports.
	oldest []atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stats  *stats
}

// Start loads the Runner's checkpoints and starts one goroutine per
// partition. It fails if a checkpoint cannot be read.
func Start(ctx context.Context, sink Sink, opts Options) (*Runner, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	n := opts.Log.Partitions()
	r := &Runner{
		opts:     opts,
		sink:     sink,
		consumer: Consumer(opts.Name),
		log:      opts.Logger.With("publisher", opts.Name),
		pos:      make([]atomic.Uint64, n),
		oldest:   make([]atomic.Int64, n),
	}
	for p := range n {
		c, err := opts.Checkpoints.Checkpoint(ctx, r.consumer, p)
		if err != nil {
			return nil, fmt.Errorf("publish %s: reading the checkpoint of partition %d: %w", opts.Name, p, err)
		}
		r.pos[p].Store(c.Position)
	}
	r.stats = opts.Metrics.add(r)
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for p := range n {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.run(runCtx, p)
		}()
	}
	return r, nil
}

// Close stops the Runner and waits for its goroutines: a Publish in flight
// is cancelled, and its events are offered again at the next Start.
func (r *Runner) Close() error {
	r.cancel()
	r.wg.Wait()
	r.opts.Metrics.remove(r)
	return nil
}

// Name returns the publisher's name.
func (r *Runner) Name() string { return r.opts.Name }

// Position returns the position up to which partition p has been published
// and checkpointed.
func (r *Runner) Position(p int) uint64 { return r.pos[p].Load() }

// Lag returns the durable events not yet published, summed over partitions.
func (r *Runner) Lag() uint64 {
	var lag uint64
	for p := range r.pos {
		if r.opts.Serves != nil && !r.opts.Serves(p) {
			continue
		}
		if h, at := r.opts.DurableHead(p), r.pos[p].Load(); h > at {
			lag += h - at
		}
	}
	return lag
}

// LagSeconds returns how long the oldest durable event not yet published has
// been waiting, over every partition: 0 when the publisher is caught up. It is
// measured from the event's time, so it includes the time the event took to
// become durable.
func (r *Runner) LagSeconds() float64 {
	var oldest int64
	for p := range r.oldest {
		if t := r.oldest[p].Load(); t != 0 && (oldest == 0 || t < oldest) {
			oldest = t
		}
	}
	if oldest == 0 {
		return 0
	}
	return max(0, time.Since(time.Unix(0, oldest)).Seconds())
}

// run feeds the Sink with partition p's events until ctx ends.
func (r *Runner) run(ctx context.Context, p int) {
	backoff := r.opts.MinBackoff
	var lastLog time.Time
	// pending are the events after the checkpoint that were read and not
	// yet offered, in position order.
	var pending []stockd.Event
	fail := func(what string, err error) bool {
		if ctx.Err() != nil {
			return false
		}
		r.stats.errors.Add(1)
		if time.Since(lastLog) >= r.opts.MaxBackoff {
			r.log.Warn("publishing: "+what+" failed; retrying with backoff", "partition", p, "err", err)
			lastLog = time.Now()
		}
		// Full jitter keeps many partitions from retrying in step.
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, r.opts.MaxBackoff)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	idle := false
	for ctx.Err() == nil {
		if r.opts.Serves != nil && !r.opts.Serves(p) {
			// Another node publishes this partition now.
			idle, pending = true, nil
			r.oldest[p].Store(0)
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.opts.Interval):
			}
			continue
		}
		if idle {
			// Served here again: resume where the last node left off.
			c, err := r.opts.Checkpoints.Checkpoint(ctx, r.consumer, p)
			if err != nil {
				if !fail("reading the checkpoint", err) {
					return
				}
				continue
			}
			r.pos[p].Store(c.Position)
			idle = false
		}
		if len(pending) == 0 {
			at := r.pos[p].Load()
			var woken <-chan struct{}
			if r.opts.Heads != nil {
				woken = r.opts.Heads.Wait(p) // taken before the head is read: see notify.Hub
			}
			head := r.opts.DurableHead(p)
			if head <= at {
				r.oldest[p].Store(0)
				select {
				case <-ctx.Done():
					return
				case <-woken:
				case <-time.After(r.opts.Interval):
				}
				continue
			}
			limit := int(min(uint64(max(r.opts.Batch, ReadAhead)), head-at))
			read, err := r.opts.Log.ReadPartition(ctx, p, at, limit)
			if err != nil {
				if !fail("reading the log", err) {
					return
				}
				continue
			}
			if len(read) == 0 {
				// The head says there is more; the store must show it.
				if !fail("reading the log", fmt.Errorf("no events after position %d below durable head %d", at, head)) {
					return
				}
				continue
			}
			pending = read
		}
		n := min(r.opts.Batch, len(pending))
		events := pending[:n:n] // a Sink appending to it must not overwrite the rest
		if r.oldest[p].Load() == 0 {
			r.oldest[p].Store(events[0].Time.UnixNano())
		}
		last := events[len(events)-1].Position
		send := events
		if r.opts.Skip != nil {
			send = send[:0:0]
			for _, e := range events {
				if !r.opts.Skip(e) {
					send = append(send, e)
				}
			}
		}
		if len(send) > 0 {
			if err := r.sink.Publish(ctx, p, send); err != nil {
				if !fail("publishing", err) {
					return
				}
				continue
			}
		}
		if err := r.opts.Checkpoints.SetCheckpoint(ctx, r.consumer, p, stockd.Checkpoint{Position: last}); err != nil {
			if !fail("saving the checkpoint", err) {
				return
			}
			continue
		}
		r.pos[p].Store(last)
		pending = pending[len(events):]
		if len(pending) > 0 {
			r.oldest[p].Store(pending[0].Time.UnixNano())
		} else {
			r.oldest[p].Store(0) // the next read, if any, says how old the rest is
		}
		r.stats.published.Add(uint64(len(send)))
		backoff = r.opts.MinBackoff
	}
}
