package engine

import (
	"context"
	"hash/maphash"
	"strings"
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
	seed   maphash.Seed
	shards [256]registryShard
}

type registryShard struct {
	mu sync.Mutex
	// Entries are values, not pointers: the registry holds a key for every
	// command ever accepted, and fewer objects means less for the garbage
	// collector to trace.
	m map[string]regEntry
}

type regEntry struct {
	fingerprint uint64
	partition   int32
	pending     bool
	wake        chan struct{} // made by the first request that waits on a pending key
}

// claim is a pending key held by one request.
type claim struct {
	key   string
	shard *registryShard
}

func newRegistry() *registry {
	r := &registry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[string]regEntry)
	}
	return r
}

func (r *registry) shard(key string) *registryShard {
	return &r.shards[maphash.String(r.seed, key)%uint64(len(r.shards))]
}

// put records an accepted key, as found in a recovered partition.
func (r *registry) put(key string, partition int, fingerprint uint64) {
	sh := r.shard(key)
	sh.mu.Lock()
	sh.m[key] = regEntry{partition: int32(partition), fingerprint: fingerprint}
	sh.mu.Unlock()
}

// claim takes key for a new request with the given fingerprint, to be decided
// by partition p. It returns nil and no error when the key was accepted before
// for the same request: the partition answers that repeat itself.
func (r *registry) claim(ctx context.Context, key string, fingerprint uint64, p int) (*claim, error) {
	sh := r.shard(key)
	for {
		sh.mu.Lock()
		e, ok := sh.m[key]
		if !ok {
			sh.m[key] = regEntry{partition: int32(p), pending: true, fingerprint: fingerprint}
			sh.mu.Unlock()
			return &claim{key: key, shard: sh}, nil
		}
		if e.fingerprint != fingerprint {
			sh.mu.Unlock()
			kind, id, _ := strings.Cut(key, ":")
			return nil, stockd.Errorf(stockd.CodeIdempotencyMismatch, "%s id %q was already used with a different request", kind, id)
		}
		if !e.pending {
			sh.mu.Unlock()
			return nil, nil
		}
		if e.wake == nil {
			e.wake = make(chan struct{})
			sh.m[key] = e
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

// settle ends a claim: the key is kept if its command was accepted, dropped
// otherwise. Requests waiting on it try again.
func (r *registry) settle(c *claim, accepted bool) {
	if c == nil {
		return
	}
	sh := c.shard
	sh.mu.Lock()
	e := sh.m[c.key]
	if e.wake != nil {
		close(e.wake)
	}
	if accepted {
		sh.m[c.key] = regEntry{partition: e.partition, fingerprint: e.fingerprint}
	} else {
		delete(sh.m, c.key)
	}
	sh.mu.Unlock()
}

// lookup returns the partition that accepted key.
func (r *registry) lookup(key string) (int, bool) {
	sh := r.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[key]
	sh.mu.Unlock()
	if !ok || e.pending {
		return 0, false
	}
	return int(e.partition), true
}

// size returns the number of keys, for metrics.
func (r *registry) size() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
