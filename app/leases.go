package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
)

// DefaultLeaseTTL is how long a partition lease lasts without renewal: a
// node that dies holds its partitions that long at most.
const DefaultLeaseTTL = 10 * time.Second

// leaseHolder holds every partition's lease of a store that leases them
// (stockd.Leases, PostgreSQL), for a node that serves every partition: it
// takes them all before the engine loads them (so it sees every append of
// the node before it), renews them every third of their ttl, and stops the
// engine the moment it can no longer be sure it holds one: a lease refused
// as lost, or not renewed before it would run out by this node's own clock.
// The appends carry the leases (engine.Options.Lease), so a node that was
// paused past its leases can never write again, whatever it believes.
//
// Several nodes on one store are then one active node and standbys: a
// standby waits in Open until the active node's leases end (it stopped, or
// died and its leases expired) and takes over. Leasing partitions to
// several nodes at once, with requests forwarded to their owner, is the
// next step of the scale-out work.
type leaseHolder struct {
	store stockd.Leases
	node  stockd.Node
	ttl   time.Duration
	log   *slog.Logger
	// leases[p] is the current lease of partition p, and deadline[p] the
	// monotonic time (ns since start) after which this node must assume
	// it lost it.
	leases   []atomic.Pointer[stockd.Lease]
	deadline []atomic.Int64
	start    time.Time
	lost     func(error)

	stop chan struct{}
	done sync.WaitGroup
}

// holdLeases registers this node and takes every partition's lease, waiting
// for those another node holds until they end or ctx is done.
func (a *App) holdLeases(ctx context.Context, store stockd.Leases, partitions int) (*leaseHolder, error) {
	ttl := a.cfg.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	h := &leaseHolder{
		store: store, ttl: ttl, log: a.log.With("component", "leases"),
		node:     stockd.Node{ID: a.NodeID, URL: a.advertised()},
		leases:   make([]atomic.Pointer[stockd.Lease], partitions),
		deadline: make([]atomic.Int64, partitions),
		start:    time.Now(),
		stop:     make(chan struct{}),
	}
	if err := store.Heartbeat(ctx, h.node); err != nil {
		return nil, fmt.Errorf("registering node %s: %w", h.node.ID, err)
	}
	var holder atomic.Value // the node this one waits for, also read by the standby
	holder.Store("")
	standing, stopStandby := false, func() {}
	defer func() { stopStandby() }()
	for p := 0; p < partitions; {
		sent := time.Since(h.start)
		l, ok, err := store.AcquireLease(ctx, p, h.node.ID, ttl)
		if err != nil {
			return nil, fmt.Errorf("leasing partition %d: %w", p, err)
		}
		if ok {
			h.set(p, l, sent)
			p++
			continue
		}
		if other := h.holder(ctx, p); other != holder.Load() {
			if !standing {
				standing = true
				stopStandby = a.serveStandby(func() error { return errStandby(holder.Load().(string)) })
			}
			holder.Store(other)
			h.log.Warn("waiting for partitions another node holds: this node takes over when its leases end", "node", h.node.ID, "partition", p, "holder", other)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for partition %d's lease: %w", p, ctx.Err())
		case <-time.After(ttl / 5):
		}
		if err := store.Heartbeat(ctx, h.node); err != nil {
			return nil, fmt.Errorf("registering node %s: %w", h.node.ID, err)
		}
		// Keep the partitions taken so far while waiting: renew them,
		// or take anew one that ran out; one another node took
		// meanwhile is waited for again.
		for q := 0; q < p; q++ {
			sent := time.Since(h.start)
			l, ok, err := store.AcquireLease(ctx, q, h.node.ID, ttl)
			if err != nil {
				return nil, fmt.Errorf("leasing partition %d: %w", q, err)
			}
			if !ok {
				p = q
				break
			}
			h.set(q, l, sent)
		}
	}
	h.log.Info("holding every partition's lease", "node", h.node.ID, "partitions", partitions, "ttl", ttl)
	return h, nil
}

// holder names the node holding partition p, for the log.
func (h *leaseHolder) holder(ctx context.Context, p int) string {
	ls, err := h.store.Leases(ctx)
	if err != nil || p >= len(ls) {
		return "unknown"
	}
	return ls[p].Node
}

// set records l as partition p's lease, renewed by a call sent at sent
// (since h.start): the store started its ttl no earlier, so this node may
// count on it until sent + ttl, less a margin for clock rate drift.
func (h *leaseHolder) set(p int, l stockd.Lease, sent time.Duration) {
	h.leases[p].Store(&l)
	h.deadline[p].Store(int64(sent + h.ttl - h.ttl/10))
}

// lease returns partition p's current lease, for the engine's appends.
func (h *leaseHolder) lease(p int) *stockd.Lease { return h.leases[p].Load() }

// run renews the leases and the node's registration every third of the ttl
// until close, calling lost (once) when a lease is refused or runs out.
func (h *leaseHolder) run(lost func(error)) {
	var once sync.Once
	h.lost = func(err error) { once.Do(func() { lost(err) }) }
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(h.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			h.renew()
		}
	}()
}

// renew renews every lease once, and checks that none ran out.
func (h *leaseHolder) renew() {
	ctx, cancel := context.WithTimeout(context.Background(), h.ttl/3)
	defer cancel()
	if err := h.store.Heartbeat(ctx, h.node); err != nil {
		h.log.Warn("node heartbeat failed", "err", err)
	}
	for p := range h.leases {
		old := h.leases[p].Load()
		sent := time.Since(h.start)
		l, err := h.store.RenewLease(ctx, *old, h.ttl)
		switch {
		case err == nil:
			h.set(p, l, sent)
		case stockd.IsCode(err, stockd.CodeLeaseLost):
			h.log.Error("partition lease lost: this node stops serving", "partition", p, "epoch", old.Epoch, "err", err)
			h.lost(fmt.Errorf("the lease of partition %d (epoch %d) was lost: another node may own it", p, old.Epoch))
			return
		default:
			h.log.Warn("renewing a partition lease failed; retrying", "partition", p, "err", err)
		}
		if time.Since(h.start) > time.Duration(h.deadline[p].Load()) {
			h.lost(fmt.Errorf("the lease of partition %d could not be renewed before it ran out: another node may own it", p))
			return
		}
	}
}

// close stops renewing and releases every lease, so that a standby takes
// over at once rather than after the ttl. The engine must be closed first:
// nothing may be appended after a lease is released.
func (h *leaseHolder) close() error {
	close(h.stop)
	h.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for p := range h.leases {
		if l := h.leases[p].Load(); l != nil {
			if err := h.store.ReleaseLease(ctx, *l); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// advertised is the URL other nodes reach this one at.
func (a *App) advertised() string {
	if a.cfg.Advertise != "" {
		return a.cfg.Advertise
	}
	return a.URL()
}

// releaseLeases stops renewing the partitions' leases and releases them; the
// engine is closed first. It does nothing without leases, and the second
// time.
func (a *App) releaseLeases() error {
	h := a.leases
	if h == nil {
		return nil
	}
	a.leases = nil
	return h.close()
}
