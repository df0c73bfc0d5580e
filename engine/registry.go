package engine

import (
	"context"
	"hash/maphash"
	"sync"

	"github.com/stockd/stockd"
)

// registry is the engine-wide index of idempotency keys: which partition
// accepted a key, for which request, and which keys are being decided right
// now. It is what makes an id unique across partitions (the same receipt id
// for two SKUs is caught even though the SKUs live in different partitions)
// and what routes commands that name an existing reservation or transfer.
//
// Keys are claimed before a command is sent to its partition and settled when
// the outcome is known: kept if the command was accepted, dropped if it was
// rejected, because only accepted commands are remembered. A second request
// with a key that is still being decided waits for the first.
type registry struct {
	seed maphash.Seed
	// One set of shards per kind of key, keyed by id alone, so that a
	// key costs neither a concatenation nor a two-string hash.
	kinds [len(keyKinds)][64]registryShard
}

// keyKinds lists the kinds of key, indexing registry.kinds.
var keyKinds = [...]string{stockd.KindReceipt, stockd.KindAdjustment, stockd.KindCount, stockd.KindTransfer, stockd.KindReservation, stockd.KindExpectedReceipt}

func kindIndex(kind string) int {
	for i, k := range keyKinds {
		if k == kind {
			return i
		}
	}
	panic("engine: unknown key kind " + kind)
}

type registryShard struct {
	mu sync.Mutex
	// m holds the accepted keys. Entries are values without pointers, and
	// keys share their id strings with the partitions' state: the registry
	// holds a key for every command ever accepted, and fewer objects means
	// less for the garbage collector to trace.
	m map[string]regEntry
	// pending holds the keys being decided now. It is small and stays in
	// the cache, so a new key costs one lookup of the large map when it is
	// claimed and one insertion when it is settled, not two of each.
	pending map[string]pendingEntry
}

type regEntry struct {
	fingerprint uint64
	partition   int32
}

type pendingEntry struct {
	regEntry
	wake chan struct{} // made by the first request that waits on the key
}

// claim is a pending key held by one request.
type claim struct {
	key   stockd.Key
	shard *registryShard
}

func newRegistry() *registry {
	r := &registry{seed: maphash.MakeSeed()}
	r.each(func(sh *registryShard) {
		sh.m = make(map[string]regEntry)
		sh.pending = make(map[string]pendingEntry)
	})
	return r
}

func (r *registry) each(fn func(*registryShard)) {
	for k := range r.kinds {
		for i := range r.kinds[k] {
			fn(&r.kinds[k][i])
		}
	}
}

func (r *registry) shard(key stockd.Key) *registryShard {
	shards := &r.kinds[kindIndex(key.Kind)]
	return &shards[maphash.String(r.seed, key.ID)%uint64(len(shards))]
}

// reserve sizes the shards for about n keys, so that loading a recovered
// store's keys does not grow every map step by step.
func (r *registry) reserve(n int) {
	// Most keys are reservations; size those shards for all of them.
	per := n/len(r.kinds[0]) + n/len(r.kinds[0])/8
	for i := range r.kinds[kindIndex(stockd.KindReservation)] {
		sh := &r.kinds[kindIndex(stockd.KindReservation)][i]
		sh.mu.Lock()
		if len(sh.m) == 0 {
			sh.m = make(map[string]regEntry, per)
		}
		sh.mu.Unlock()
	}
}

// put records an accepted key, as found in a recovered partition.
func (r *registry) put(key stockd.Key, partition int, fingerprint uint64) {
	sh := r.shard(key)
	sh.mu.Lock()
	sh.m[key.ID] = regEntry{partition: int32(partition), fingerprint: fingerprint}
	sh.mu.Unlock()
}

// claim takes key for a new request with the given fingerprint, to be decided
// by partition p. It returns nil and no error when the key was accepted before
// for the same request: the partition answers that repeat itself.
func (r *registry) claim(ctx context.Context, key stockd.Key, fingerprint uint64, p int) (*claim, error) {
	sh := r.shard(key)
	for {
		sh.mu.Lock()
		if e, ok := sh.m[key.ID]; ok {
			sh.mu.Unlock()
			if e.fingerprint != fingerprint {
				return nil, mismatch(key)
			}
			return nil, nil
		}
		e, ok := sh.pending[key.ID]
		if !ok {
			sh.pending[key.ID] = pendingEntry{regEntry: regEntry{partition: int32(p), fingerprint: fingerprint}}
			sh.mu.Unlock()
			return &claim{key: key, shard: sh}, nil
		}
		if e.fingerprint != fingerprint {
			sh.mu.Unlock()
			return nil, mismatch(key)
		}
		if e.wake == nil {
			e.wake = make(chan struct{})
			sh.pending[key.ID] = e
		}
		wake := e.wake
		sh.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func mismatch(key stockd.Key) error {
	return stockd.Errorf(stockd.CodeIdempotencyMismatch, "%s id %q was already used with a different request", key.Kind, key.ID)
}

// settle ends a claim: the key is kept if its command was accepted, dropped
// otherwise. Requests waiting on it try again.
func (r *registry) settle(c *claim, accepted bool) {
	if c == nil {
		return
	}
	sh := c.shard
	sh.mu.Lock()
	e := sh.pending[c.key.ID]
	delete(sh.pending, c.key.ID)
	if e.wake != nil {
		close(e.wake)
	}
	if accepted {
		sh.m[c.key.ID] = e.regEntry
	}
	sh.mu.Unlock()
}

// forget drops an accepted key whose entity was retired: from now on it is
// answered from the store's retired record.
func (r *registry) forget(key stockd.Key) {
	sh := r.shard(key)
	sh.mu.Lock()
	delete(sh.m, key.ID)
	sh.mu.Unlock()
}

// lookup returns the partition that accepted key.
func (r *registry) lookup(key stockd.Key) (int, bool) {
	sh := r.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[key.ID]
	sh.mu.Unlock()
	if !ok {
		return 0, false
	}
	return int(e.partition), true
}

// size returns the number of keys, for metrics.
func (r *registry) size() int {
	n := 0
	r.each(func(sh *registryShard) {
		sh.mu.Lock()
		n += len(sh.m) + len(sh.pending)
		sh.mu.Unlock()
	})
	return n
}

// dropPartition forgets the keys of partition p, which this engine no longer
// serves: another node's registry answers for them now.
func (r *registry) dropPartition(p int) {
	r.each(func(sh *registryShard) {
		sh.mu.Lock()
		for id, e := range sh.m {
			if int(e.partition) == p {
				delete(sh.m, id)
			}
		}
		sh.mu.Unlock()
	})
}
