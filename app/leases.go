package app

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
)

// DefaultLeaseTTL is how long a partition lease lasts without renewal: a
// node that dies holds its partitions that long at most.
const DefaultLeaseTTL = 10 * time.Second

// member keeps a node in the cluster of a store that leases partitions
// (stockd.Leases, PostgreSQL), DESIGN §6. Every node is active and serves
// its share of the partitions.
//
//   - It registers itself (a heartbeat every look) and reads which nodes
//     are alive: those whose heartbeat is within the store's liveness
//     window, which is the lease ttl.
//   - A partition's share goes to one of the live nodes by rendezvous
//     hashing with bounded loads (see shares), which every node computes
//     alike from the same list, which gives every node its fair share, and
//     which moves little more than the partitions of a node that joins or
//     leaves.
//   - It takes the lease of each partition of its share that no one holds
//     (free, released, or run out by the store's clock) and only then loads
//     it into the engine, so it sees every append of the previous owner;
//     it hands over a partition whose share moved to another live node:
//     the engine drops it (answering what it took) before the lease is
//     released.
//   - It renews its leases every third of the ttl, and the engine's
//     appends carry them (engine.Options.Lease), so a node paused past its
//     leases can never write again, whatever it believes. The moment it
//     cannot be sure it holds a lease (refused as lost, or not renewed
//     before it would run out by this node's own clock) it stops the whole
//     engine, which answers nothing more; the app then recovers in place
//     (RunRecovering) as a new node.
//
// Each look also records which node holds each partition, and at which
// URL, for the requests this node sends on to their owner (router).
type member struct {
	store stockd.Leases
	eng   *engine.Engine
	node  stockd.Node
	ttl   time.Duration
	log   *slog.Logger
	// leases[p] is this node's lease of partition p, nil when it holds
	// none, and deadline[p] the monotonic time (ns since start) after
	// which it must assume it lost it.
	leases   []atomic.Pointer[stockd.Lease]
	deadline []atomic.Int64
	start    time.Time
	lost     func(error)
	// owners[p] is the node that held partition p's lease at the last
	// look, nil when none did.
	owners atomic.Pointer[[]*stockd.Node]
	// looked is closed after the first complete look: until then the node
	// does not know where to send anything.
	looked   chan struct{}
	lookOnce sync.Once

	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

// newMember registers this node in store's cluster; join makes it take
// its share of the partitions.
func (a *App) newMember(ctx context.Context, store stockd.Leases, partitions int) (*member, error) {
	m := &member{
		store: store, ttl: a.leaseTTL(), log: a.log.With("component", "cluster"),
		node:     stockd.Node{ID: a.NodeID, URL: a.advertised()},
		leases:   make([]atomic.Pointer[stockd.Lease], partitions),
		deadline: make([]atomic.Int64, partitions),
		start:    time.Now(),
		looked:   make(chan struct{}),
		stop:     make(chan struct{}),
	}
	if err := store.Heartbeat(ctx, m.node); err != nil {
		return nil, fmt.Errorf("registering node %s: %w", m.node.ID, err)
	}
	return m, nil
}

// leaseTTL is the configured lease ttl, or the default.
func (a *App) leaseTTL() time.Duration {
	if a.cfg.LeaseTTL > 0 {
		return a.cfg.LeaseTTL
	}
	return DefaultLeaseTTL
}

// lookEvery is how often a node looks at the cluster: often enough that a
// dead node's partitions move well within a second of its leases ending.
func (m *member) lookEvery() time.Duration { return min(m.ttl/5, 200*time.Millisecond) }

// join looks once (taking what it can at once: every partition, for the
// only node), then keeps looking in the background, calling lost (once)
// when it can no longer be sure it holds a lease.
func (m *member) join(ctx context.Context, eng *engine.Engine, lost func(error)) {
	m.eng = eng
	var once sync.Once
	m.lost = func(err error) { once.Do(func() { lost(err) }) }
	m.look(ctx)
	// Renewals run on their own: a look that loads partitions may take
	// longer than a lease lasts.
	m.every(m.ttl/3, func(ctx context.Context) { m.renew(ctx) })
	m.every(m.lookEvery(), m.look)
}

// every runs fn every d, each call with a deadline of a third of the ttl,
// until stopLooking.
func (m *member) every(d time.Duration, fn func(context.Context)) {
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), m.ttl/3)
			fn(ctx)
			cancel()
		}
	}()
}

// look heartbeats and takes or hands over partitions as the live nodes'
// shares say.
func (m *member) look(ctx context.Context) {
	if err := m.store.Heartbeat(ctx, m.node); err != nil {
		m.log.Warn("node heartbeat failed", "err", err)
	}
	nodes, err := m.store.Nodes(ctx)
	if err != nil {
		m.log.Warn("reading the cluster's nodes failed", "err", err)
		return
	}
	leases, err := m.store.Leases(ctx)
	if err != nil {
		m.log.Warn("reading the partitions' leases failed", "err", err)
		return
	}
	m.recordOwners(nodes, leases)
	live := make([]string, 0, len(nodes))
	self := false
	for _, n := range nodes {
		live = append(live, n.ID)
		self = self || n.ID == m.node.ID
	}
	if !self {
		live = append(live, m.node.ID)
	}
	share := shares(len(m.leases), live)
	for p, l := range leases {
		if p >= len(m.leases) {
			break
		}
		mine := m.leases[p].Load() != nil
		owner := share[p]
		switch {
		case owner == m.node.ID && !mine && (l.Expired || l.Node == "" || l.Node == m.node.ID):
			m.take(ctx, p)
		case owner != m.node.ID && mine:
			m.handOver(ctx, p, owner)
		}
	}
	m.lookOnce.Do(func() { close(m.looked) })
}

// shares returns, for each of n partitions, the live node whose share it
// is: rendezvous hashing with bounded loads. Each partition goes to the
// node that ranks it highest (a hash of node and partition) among those
// with room: every node has room for n/len(live) partitions, and the first
// n%len(live) nodes to fill it for one more. Every
// node computes the same from the same list; the shares differ by one
// partition at most, so every node serves some even with few partitions;
// and a node joining or leaving moves its own share and few others.
func shares(n int, live []string) []string {
	out := make([]string, n)
	if len(live) == 0 {
		return out
	}
	quota, extra := n/len(live), n%len(live)
	counts := make(map[string]int, len(live))
	bigger := 0 // nodes that took quota+1
	base := make([]uint64, len(live))
	for i, id := range live {
		h := fnv.New64a()
		h.Write([]byte(id))
		base[i] = h.Sum64()
	}
	for p := range out {
		best, bestHash := -1, uint64(0)
		for i, id := range live {
			if c := counts[id]; c > quota || (c == quota && bigger == extra) {
				continue
			}
			// FNV alone barely mixes its last bytes into the high
			// ones, which the comparison looks at first: finish with
			// a mixer.
			v := mix64(base[i] ^ mix64(uint64(p)+1))
			if best < 0 || v > bestHash || (v == bestHash && id < live[best]) {
				best, bestHash = i, v
			}
		}
		out[p] = live[best]
		counts[live[best]]++
		if counts[live[best]] == quota+1 {
			bigger++
		}
	}
	return out
}

// mix64 is the finaliser of MurmurHash3: every input bit flips each output
// bit with probability about one half.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// take takes partition p's lease and loads it into the engine.
func (m *member) take(ctx context.Context, p int) {
	sent := time.Since(m.start)
	l, ok, err := m.store.AcquireLease(ctx, p, m.node.ID, m.ttl)
	if err != nil || !ok {
		if err != nil {
			m.log.Warn("taking a partition's lease failed", "partition", p, "err", err)
		}
		return
	}
	m.set(p, l, sent)
	// Loading takes as long as the partition's log after its snapshot
	// needs, whatever the look's deadline; renewals go on meanwhile.
	lctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	if err := m.eng.Acquire(lctx, p); err != nil {
		m.log.Error("loading a partition failed; handing it back", "partition", p, "err", err)
		m.release(p)
		return
	}
	m.log.Info("serving a partition", "partition", p, "epoch", l.Epoch)
}

// loadTimeout bounds the loading of one partition.
const loadTimeout = 10 * time.Minute

// handOver stops serving partition p, whose share moved to owner, and
// releases its lease so that owner takes it at once.
func (m *member) handOver(ctx context.Context, p int, owner string) {
	if err := m.eng.Drop(ctx, p); err != nil {
		m.log.Warn("saving a snapshot of a partition handed over failed", "partition", p, "err", err)
	}
	m.release(p)
	m.log.Info("handed a partition over", "partition", p, "to", owner)
}

// release gives up partition p's lease; the engine no longer serves it.
func (m *member) release(p int) {
	l := m.leases[p].Swap(nil)
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.ttl/3)
	defer cancel()
	if err := m.store.ReleaseLease(ctx, *l); err != nil {
		m.log.Warn("releasing a partition's lease failed; it ends by itself", "partition", p, "err", err)
	}
}

// set records l as partition p's lease, renewed by a call sent at sent
// (since m.start): the store started its ttl no earlier, so this node may
// count on it until sent + ttl, less a margin for clock rate drift.
func (m *member) set(p int, l stockd.Lease, sent time.Duration) {
	m.deadline[p].Store(int64(sent + m.ttl - m.ttl/10))
	m.leases[p].Store(&l)
}

// lease returns this node's lease of partition p, for the engine's appends.
func (m *member) lease(p int) *stockd.Lease { return m.leases[p].Load() }

// renew renews every lease held: a lease refused as lost, or not renewed
// before it would run out, stops the engine. A lease released or handed over
// while its renewal was on its way is left alone.
func (m *member) renew(ctx context.Context) {
	for p := range m.leases {
		old := m.leases[p].Load()
		if old == nil {
			continue
		}
		sent := time.Since(m.start)
		l, err := m.store.RenewLease(ctx, *old, m.ttl)
		if m.leases[p].Load() != old {
			continue // released meanwhile: nothing to renew
		}
		switch {
		case err == nil:
			// The deadline first: a lease is never current with an
			// older deadline than its renewal earned.
			m.deadline[p].Store(int64(sent + m.ttl - m.ttl/10))
			if !m.leases[p].CompareAndSwap(old, &l) {
				continue
			}
		case stockd.IsCode(err, stockd.CodeLeaseLost):
			m.log.Error("partition lease lost: this node stops serving", "partition", p, "epoch", old.Epoch, "err", err)
			m.lost(fmt.Errorf("the lease of partition %d (epoch %d) was lost: another node may own it", p, old.Epoch))
			return
		default:
			m.log.Warn("renewing a partition lease failed; retrying", "partition", p, "err", err)
		}
		if time.Since(m.start) > time.Duration(m.deadline[p].Load()) {
			m.lost(fmt.Errorf("the lease of partition %d could not be renewed before it ran out: another node may own it", p))
			return
		}
	}
}

// recordOwners keeps which live node holds each partition.
func (m *member) recordOwners(nodes []stockd.Node, leases []stockd.Lease) {
	byID := make(map[string]*stockd.Node, len(nodes))
	for i := range nodes {
		byID[nodes[i].ID] = &nodes[i]
	}
	owners := make([]*stockd.Node, len(m.leases))
	for p, l := range leases {
		if p < len(owners) && !l.Expired {
			owners[p] = byID[l.Node]
		}
	}
	m.owners.Store(&owners)
}

// owner returns the node that held partition p's lease at the last look.
func (m *member) owner(p int) (stockd.Node, bool) {
	owners := m.owners.Load()
	if owners == nil || p >= len(*owners) || (*owners)[p] == nil {
		return stockd.Node{}, false
	}
	return *(*owners)[p], true
}

// ready reports why the node cannot serve yet: it has not looked at the
// cluster, or some partition has no live owner to serve it.
func (m *member) ready() error {
	select {
	case <-m.looked:
	default:
		return errors.New("joining the cluster")
	}
	for p := range m.leases {
		if m.leases[p].Load() != nil {
			continue
		}
		if _, ok := m.owner(p); !ok {
			return fmt.Errorf("partition %d has no node serving it yet", p)
		}
	}
	return nil
}

// stopLooking stops the looks: the node takes and hands over nothing more.
// The app calls it before it closes the engine, which must not be handed a
// partition while it closes.
func (m *member) stopLooking() {
	m.stopOnce.Do(func() { close(m.stop) })
	m.done.Wait()
}

// close stops looking, has the engine drop every partition and releases
// their leases, so that the other nodes take them over at once rather than
// after the ttl. Nothing may be appended after a lease is released.
func (m *member) close() error {
	m.stopLooking()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for p := range m.leases {
		if m.leases[p].Load() == nil {
			continue
		}
		if m.eng != nil {
			if err := m.eng.Drop(ctx, p); err != nil {
				errs = append(errs, err)
			}
		}
		m.release(p)
	}
	if err := m.store.Leave(ctx, m.node.ID); err != nil {
		m.log.Warn("leaving the cluster failed; the others see this node gone after the liveness window", "err", err)
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

// leave stops this node's membership, after the engine stopped taking
// requests; it does nothing without a cluster, and the second time.
func (a *App) leave() error {
	m := a.member
	if m == nil {
		return nil
	}
	a.member = nil
	return m.close()
}

// serves is what runs once a partition across the cluster (publishers,
// webhooks) asks to know whether this node serves a partition now: nil
// without a cluster, where the node serves every partition.
func (a *App) serves() func(p int) bool {
	if a.member == nil {
		return nil
	}
	return a.Engine.Serves
}
