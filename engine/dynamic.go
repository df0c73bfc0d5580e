package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
)

// Serving some of the partitions (Options.Dynamic).
//
// When several nodes share a store, each serves the partitions it holds the
// lease of: the app calls Acquire once it holds a partition's lease, so that
// every append of the previous owner is in the store when the partition is
// loaded, and Drop before it gives the lease up. Between the two the
// partition runs exactly as in an engine that serves them all.
//
// What the engine knew about every partition it now learns from the store:
//   - The registry holds the keys of the partitions served here only. A key
//     it does not hold is looked up in the store (stockd.KeyFinder): an id
//     used before in a partition served elsewhere is answered by that
//     partition's node, a new one costs one point read.
//   - The catalog (locations and bundles) lives in partition
//     stockd.LocationPartition; while another node serves it, its log is
//     followed for LocationConfigured and BundleDefined (Catalog.Learn).
//   - The heads of the partitions served elsewhere are read from the store
//     (stockd.HeadReader) every Options.Follow, for the readers downstream
//     of the log (read model, feed), which never read past DurableHead.
//   - A saga's message to a partition served elsewhere goes to Options.Send.

// errNotServed is what a request for a partition this engine does not serve
// is refused with: unavailable, for a caller that cannot send it on.
type errNotServed struct {
	partition int
	refusal   *stockd.Error
}

func (e *errNotServed) Error() string { return e.refusal.Error() }
func (e *errNotServed) Unwrap() error { return e.refusal }

func notServed(p int) error {
	return &errNotServed{partition: p, refusal: &stockd.Error{
		Code:       stockd.CodeUnavailable,
		Message:    fmt.Sprintf("partition %d is not served by this node; retry", p),
		RetryAfter: time.Second,
	}}
}

// NotServed reports whether err refused a request because this engine does
// not serve its partition, and which partition that is: the request belongs
// to the node that does.
func NotServed(err error) (partition int, ok bool) {
	var ns *errNotServed
	if errors.As(err, &ns) {
		return ns.partition, true
	}
	return 0, false
}

// openDynamic starts an engine that serves no partition yet.
func (e *Engine) openDynamic(ctx context.Context) error {
	if !e.keys {
		return errors.New("engine: serving some partitions needs a store that guards keys (stockd.KeyGuard)")
	}
	if _, ok := e.store.(stockd.KeyFinder); !ok {
		return errors.New("engine: serving some partitions needs a store that finds keys (stockd.KeyFinder)")
	}
	st, _, _, err := load(ctx, e.store, stockd.LocationPartition, e.opts.Limits, 0)
	if err != nil {
		return fmt.Errorf("engine: reading the locations: %w", err)
	}
	locs := st.Catalog()
	e.locs.Store(&locs)
	e.locsHead = st.Head()
	e.followed = make([]atomic.Uint64, len(e.slots))
	e.followDone = make(chan struct{})
	e.wg.Add(1)
	go e.writer()
	go e.snapshotter()
	go e.follow()
	e.log.Info("engine started; it serves partitions as their leases are taken", "partitions", len(e.slots))
	return nil
}

// Acquire loads partition p (latest snapshot plus its log) and serves it
// from now on. The caller must hold p's lease, taken before the call, so
// that no other node appends to p any more. Serving p already is not an
// error.
func (e *Engine) Acquire(ctx context.Context, p int) error {
	if !e.opts.Dynamic {
		return errors.New("engine: Acquire needs Options.Dynamic")
	}
	if p < 0 || p >= len(e.slots) {
		return fmt.Errorf("engine: no partition %d", p)
	}
	if e.part(p) != nil {
		return nil
	}
	start := time.Now()
	st, snap, events, err := load(ctx, e.store, p, e.opts.Limits, 0)
	if err != nil {
		return fmt.Errorf("engine: load partition %d: %w", p, err)
	}
	st.Keys(func(key stockd.Key, fp uint64) { e.reg.put(key, p, fp) })
	if st.RetiredCount() > 0 {
		e.retired.Store(true)
	}
	part := newPartition(e, p, st)
	part.snapshotted.Store(snap)
	if p == stockd.LocationPartition {
		locs := st.Catalog()
		e.locs.Store(&locs)
		part.seen = &locs
	} else {
		st.SetCatalog(*part.seen)
	}
	head := st.Head() // the state belongs to the partition once it runs
	e.gate.Lock()
	if e.closed || e.failed() {
		e.gate.Unlock()
		e.reg.dropPartition(p)
		return errClosed
	}
	e.slots[p].Store(part)
	e.serving.Add(1)
	e.running.Add(1)
	e.gate.Unlock()
	e.recoverSagas(part)
	part.start()
	if e.opts.OnDurable != nil {
		e.opts.OnDurable(p)
	}
	e.log.Info("partition acquired", "partition", p, "head", head, "events_replayed", events, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Drop stops serving partition p: requests already taken are decided and
// answered once durable, later ones are refused as not served here, and a
// snapshot of its state is saved for the next owner. Only then may the
// caller give up p's lease. Not serving p is not an error.
func (e *Engine) Drop(ctx context.Context, p int) error {
	e.gate.Lock()
	part := e.part(p)
	if part == nil || e.closed {
		e.gate.Unlock()
		return nil
	}
	e.slots[p].Store(nil)
	e.serving.Add(-1)
	e.gate.Unlock()
	part.inbox <- &request{stop: true}
	<-part.done
	e.reg.dropPartition(p)
	if e.followed != nil {
		e.followed[p].Store(part.durable.Load())
	}
	if p == stockd.LocationPartition {
		e.locsMu.Lock()
		e.locsHead = max(e.locsHead, part.durable.Load())
		e.locsMu.Unlock()
	}
	if e.failed() {
		return nil
	}
	e.log.Info("partition dropped", "partition", p, "head", part.durable.Load())
	return e.snapshotHead(ctx, part)
}

// HeadKnownAt reports, for a partition another node serves, when
// DurableHead(p) was known to be its durable head: when the heads were last
// read from the store (the zero time if they never were), and true. For a
// partition this engine serves the head is current: it returns false.
// Readers of what other nodes write say how fresh they are with it.
func (e *Engine) HeadKnownAt(p int) (time.Time, bool) {
	if e.part(p) != nil || !e.opts.Dynamic {
		return time.Time{}, false
	}
	if at := e.followedAt.Load(); at != 0 {
		return time.Unix(0, at), true
	}
	return time.Time{}, true
}

// Serves reports whether this engine serves partition p now.
func (e *Engine) Serves(p int) bool { return e.part(p) != nil }

// Deliver hands a saga's message from another node to its partition, and
// refuses it (NotServed) if this engine does not serve the partition.
func (e *Engine) Deliver(m stockd.Message) error {
	if m.To < 0 || m.To >= len(e.slots) {
		return stockd.Errorf(stockd.CodeInvalid, "no partition %d", m.To)
	}
	e.gate.RLock()
	defer e.gate.RUnlock()
	if e.closed {
		return errClosed
	}
	part := e.part(m.To)
	if part == nil {
		return notServed(m.To)
	}
	part.post(m.Command)
	return nil
}

// partial reports whether the engine serves some partitions but not all:
// then the registry does not hold every key.
func (e *Engine) partial() bool {
	return e.opts.Dynamic && int(e.serving.Load()) < len(e.slots)
}

// servedElsewhere looks up in the store a key the registry does not hold,
// while the engine serves only some partitions, and reports whether a
// partition served elsewhere holds it.
func (e *Engine) servedElsewhere(ctx context.Context, key stockd.Key) (int, bool, error) {
	if !e.partial() {
		return 0, false, nil
	}
	rec, ok, err := e.store.(stockd.KeyFinder).FindKey(ctx, key.String())
	if err != nil || !ok {
		return 0, false, err
	}
	return rec.Partition, e.part(rec.Partition) == nil, nil
}

// checkNewKey looks up in the store a key that a command for partition p
// claims and the registry does not hold, while the engine serves only some
// partitions, and reports whether it was recorded: one used before for
// another request is a mismatch, wherever it was used.
func (e *Engine) checkNewKey(ctx context.Context, key stockd.Key, fingerprint uint64, p int) (bool, error) {
	rec, ok, err := e.store.(stockd.KeyFinder).FindKey(ctx, key.String())
	if err != nil || !ok {
		return false, err
	}
	if rec.Fingerprint != fingerprint || rec.Partition != p {
		return true, mismatch(key)
	}
	// The same request, accepted before in this partition: the registry
	// forgot it because it was retired, which the caller checks next.
	return true, nil
}

// follow reads, every Options.Follow, the heads of the partitions served
// elsewhere and, while LocationPartition is, the locations configured.
func (e *Engine) follow() {
	defer close(e.followDone)
	heads, _ := e.store.(stockd.HeadReader)
	t := time.NewTicker(e.opts.Follow)
	defer t.Stop()
	for {
		select {
		case <-e.stopSnap:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := e.followLocations(ctx); err != nil {
			e.log.Warn("reading the locations failed; will try again", "err", err)
		}
		if heads != nil {
			sent := time.Now()
			hs, err := heads.Heads(ctx)
			if err != nil {
				e.log.Warn("reading the partitions' heads failed; will try again", "err", err)
			} else {
				e.followedAt.Store(sent.UnixNano())
			}
			for p, h := range hs {
				if p < len(e.followed) && e.part(p) == nil && h > e.followed[p].Load() {
					e.followed[p].Store(h)
					if e.opts.OnDurable != nil {
						e.opts.OnDurable(p)
					}
				}
			}
		}
		cancel()
	}
}

// refreshLocations reads the locations configured since last read, while
// another node serves LocationPartition, and reports whether the node now
// knows other locations than seen, those a refusal was decided with: a
// command or read that found a location unknown looks again with them, so
// that a location configured through another node is known as soon as its
// configuration was acknowledged. Comparing with seen, not with what this
// call read, matters when several refusals race: the first one's read
// brings the location in, and the others must look again too.
func (e *Engine) refreshLocations(ctx context.Context, seen *stockd.Catalog) bool {
	if !e.opts.Dynamic || e.part(stockd.LocationPartition) != nil {
		return false
	}
	if err := e.followLocations(ctx); err != nil {
		e.log.Warn("reading the locations failed", "err", err)
	}
	return e.locs.Load() != seen
}

// followLocations applies the locations configured in LocationPartition's
// log since last read, while another node serves it.
func (e *Engine) followLocations(ctx context.Context) error {
	if e.part(stockd.LocationPartition) != nil {
		return nil
	}
	e.locsMu.Lock()
	defer e.locsMu.Unlock()
	for {
		events, err := e.store.ReadPartition(ctx, stockd.LocationPartition, e.locsHead, 1024)
		if err != nil || len(events) == 0 {
			return err
		}
		next, changed := *e.locs.Load(), false
		for _, ev := range events {
			if c, ok := next.Learn(ev.Data); ok {
				next, changed = c, true
			}
		}
		e.locsHead = events[len(events)-1].Position
		if changed && e.part(stockd.LocationPartition) == nil {
			e.locs.Store(&next)
		}
	}
}
