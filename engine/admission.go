package engine

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
)

// Admission by expected wait. A partition's inbox holds up to InboxSize
// requests, and a full inbox refuses at once; but a full inbox of a slow
// partition can take seconds to drain, so that bound alone lets latency grow
// far past what any client waits for. Each partition therefore measures how
// fast it drains its queue, and a new request is refused at once, with
// CodeOverloaded and a RetryAfter, when the wait it would have before its
// batch is taken exceeds Options.MaxQueueWait.
//
// Group commit shapes the estimate: a batch costs a fixed part (the append
// and its fsync, the hand-offs) plus a part per command (deciding, encoding,
// replying), and the partition takes everything waiting, up to MaxBatch, as
// one batch whenever one of its Pipeline slots is free. A request that finds
// Q requests queued before it and F batches in flight is taken after
// max(0, F + ⌊Q/MaxBatch⌋ + 1 − Pipeline) batches complete, and after the Q
// before it are decided:
//
//	wait = max(0, F + ⌊Q/MaxBatch⌋ + 1 − Pipeline) × perBatch + Q × perCmd + stall
//
// where:
//
//   - perCmd is the decider's measured time per command (moving average).
//   - perBatch is the measured time between two completions of a backlogged
//     partition less its commands' share (perCmd × n): what a batch costs
//     whatever its size, a slow fsync included. A batch is backlogged when
//     requests waited for room in the pipeline, or when it was cut at
//     MaxBatch; for other batches (an idle partition, one request, one
//     fsync) the batch's own latency stands in for the interval.
//   - stall is how far the batch now in flight is overdue: the time since
//     the partition last completed a batch (or became busy), less the usual
//     latency of a batch. It is 0 while the store keeps its pace, and grows
//     when an fsync hangs, before any batch completes to say so.
//
// A request that joins the next batch to be taken (Q < MaxBatch) is admitted
// whatever the estimate unless the partition is stalled: waiting for the one
// batch ahead is what group commit costs, and refusing it when an fsync
// takes longer than MaxQueueWait would shrink every batch until the
// partition served one request per fsync. Latency of an admitted request is
// therefore bounded by about max(MaxQueueWait, one batch) plus its own
// batch.
//
// Admission counts itself into Q (an atomic add) before it looks, so that
// many callers arriving at once cannot all see the same short queue. The hot
// path is a few atomic loads and one clock read; the averages are kept by the
// decider and the completer and published as atomics.
type admission struct {
	// queued counts requests admitted to the inbox and not yet taken by the
	// decider; batches counts batches taken and not yet completed.
	queued  atomic.Int64
	batches atomic.Int64
	// perCmd, perBatch and latency are moving averages in nanoseconds, as
	// float64 bits, 0 until measured: the decider's time per command, the
	// fixed cost of a batch, and the time a batch is in flight.
	perCmd   atomic.Uint64
	perBatch atomic.Uint64
	latency  atomic.Uint64
	// progress is the clock reading of the last completion, or of the
	// moment the partition went from idle to busy.
	progress atomic.Int64

	// Set when the partition starts.
	maxBatch, pipeline int64

	// Kept by the decider alone.
	avgCmd float64
	// Kept by the completer alone.
	avgBatch, avgLat float64
	prevDone         int64
}

// ewmaWeight is the weight of a new batch in the moving averages: about the
// last ten batches count, a few milliseconds of a busy partition.
const ewmaWeight = 0.2

func ewma(avg, x float64) float64 {
	if avg == 0 {
		return x
	}
	return avg + ewmaWeight*(x-avg)
}

func loadF(a *atomic.Uint64) float64     { return math.Float64frombits(a.Load()) }
func storeF(a *atomic.Uint64, v float64) { a.Store(math.Float64bits(v)) }

// took records that the decider took a batch of n requests from the inbox
// at clock reading now.
func (a *admission) took(n int, now int64) {
	if n > 0 {
		a.queued.Add(-int64(n))
	}
	if a.batches.Add(1) == 1 {
		// The partition was idle: its progress is measured from now.
		a.progress.Store(now)
	}
}

// decided records that the decider spent d deciding n commands.
func (a *admission) decided(n int, d int64) {
	if n > 0 && d >= 0 {
		a.avgCmd = ewma(a.avgCmd, float64(d)/float64(n))
		storeF(&a.perCmd, a.avgCmd)
	}
}

// done records that a batch of n commands, taken at clock reading taken,
// completed at now.
func (a *admission) done(n int, taken, now int64, backlogged bool) {
	if n > 0 {
		lat := float64(max(now-taken, 0))
		a.avgLat = ewma(a.avgLat, lat)
		storeF(&a.latency, a.avgLat)
		interval := lat
		if backlogged {
			interval = float64(max(now-max(a.prevDone, taken), 0))
		}
		a.avgBatch = ewma(a.avgBatch, max(interval-float64(n)*loadF(&a.perCmd), 0))
		storeF(&a.perBatch, a.avgBatch)
	}
	a.prevDone = now
	a.batches.Add(-1)
	a.progress.Store(now)
}

// estimate returns the wait of a request with q requests queued before it,
// and how much of it is stall.
func (a *admission) estimate(q int64, now int64) (wait, stall time.Duration) {
	f := a.batches.Load()
	w := float64(q) * loadF(&a.perCmd)
	if n := f + q/a.maxBatch + 1 - a.pipeline; n > 0 {
		w += float64(n) * loadF(&a.perBatch)
	}
	if f > 0 {
		if over := float64(now-a.progress.Load()) - loadF(&a.latency); over > 0 {
			stall = time.Duration(over)
			w += over
		}
	}
	return time.Duration(w), stall
}

// admit counts a request in, or refuses it when its estimated wait exceeds
// limit (a limit of 0 or less admits everything). An admitted request must
// be sent to the inbox or given back with cancel.
func (a *admission) admit(limit time.Duration, clock func() int64) error {
	q := a.queued.Add(1) - 1
	if limit <= 0 {
		return nil
	}
	w, stall := a.estimate(q, clock())
	if w <= limit || (q < a.maxBatch && stall <= limit/2) {
		return nil
	}
	a.queued.Add(-1)
	return overloaded(errWaitMessage, w, limit)
}

// cancel gives back an admitted request that did not enter the inbox.
func (a *admission) cancel() { a.queued.Add(-1) }

const (
	errWaitMessage  = "this partition is overloaded: a new request would wait longer than allowed; retry shortly"
	errInboxMessage = "too many requests are waiting for this partition; retry shortly"
	// minRetryAfter and maxRetryAfter bound the pause a refusal asks for.
	minRetryAfter = 10 * time.Millisecond
	maxRetryAfter = 30 * time.Second
)

// overloaded returns the refusal of a request that would wait w where limit
// is allowed. It asks the client to come back once the queue ahead of it has
// drained to the limit: after w − limit, within [minRetryAfter,
// maxRetryAfter]. With no estimate (w is 0) it asks for limit.
func overloaded(msg string, w, limit time.Duration) error {
	retry := w - limit
	if w == 0 {
		retry = limit
	}
	retry = min(max(retry, minRetryAfter), maxRetryAfter).Round(time.Millisecond)
	return &stockd.Error{Code: stockd.CodeOverloaded, Message: msg, RetryAfter: retry}
}
