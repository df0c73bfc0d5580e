package sim

import (
	"sync/atomic"
	"time"
)

// ShopClock is the clock of a simulated shop's embedded server: the real
// time plus an offset that grows by a day at every shop midnight, so that
// lots, whose best-before is a date, expire within a run of seconds. The
// engine of the server the simulator starts reads it (engine.Options.Now).
// Between jumps it runs at the real pace, so holds expire after their real
// ttl; a jump expires every hold still open, as a shop closing for the night
// would. It is safe for concurrent use.
type ShopClock struct {
	offset atomic.Int64 // nanoseconds
}

// NewShopClock returns a clock at the real time.
func NewShopClock() *ShopClock { return &ShopClock{} }

// Now returns the shop's time.
func (c *ShopClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load()))
}

// Advance moves the shop's time on by d.
func (c *ShopClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
