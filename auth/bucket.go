package auth

import (
	"math"
	"sync"
	"time"
)

// bucket is a token bucket of burst tokens refilled at rate per second,
// kept as the generic cell rate algorithm: instead of a token count that
// must be refilled on every call, it keeps tat, the time at which the bucket
// would be full again. A request costs interval; it is allowed while the
// bucket, after paying, is no more than burst intervals from full. All
// arithmetic is in whole nanoseconds, so no rounding ever grants more than
// burst + rate × elapsed requests: interval is rounded up.
//
// It is a few lines of the standard library rather than
// golang.org/x/time/rate because its clock is the caller's, which keeps the
// tests deterministic.
type bucket struct {
	mu       sync.Mutex
	tat      int64    // nanoseconds since the Keyring's epoch
	interval int64    // nanoseconds per request: 1/rate, rounded up
	window   int64    // burst × interval
	_        [32]byte // pads a bucket to 64 bytes: one cache line per key
}

func newBucket(rate float64, burst int) *bucket {
	interval := int64(math.Ceil(float64(time.Second) / rate))
	return &bucket{interval: interval, window: int64(burst) * interval}
}

// take spends one request now. If the bucket is empty it spends nothing and
// returns how long until it is not. It reads the clock under the bucket's
// lock, so that the times one bucket sees never go backwards: a caller that
// read the time and then waited for the lock would otherwise be told to wait
// too long.
func (b *bucket) take(r *Keyring) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := int64(r.now().Sub(r.epoch))
	tat := max(b.tat, now) + b.interval
	if wait := tat - now - b.window; wait > 0 {
		return false, time.Duration(wait)
	}
	b.tat = tat
	return true, 0
}
