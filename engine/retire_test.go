package engine_test

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/internal/testclock"
	"github.com/stockd/stockd/pebble"
)

// answer is what an operation came to: its value and its error code.
type answer struct {
	value any
	code  stockd.Code
}

func answerOf[T any](v T, err error) answer {
	if err != nil {
		return answer{code: stockd.ErrorCode(err)}
	}
	return answer{value: v}
}

func answerOf3[T any](v T, _ bool, err error) answer { return answerOf(v, err) }

// TestRetiredIDsAreAnsweredAsBefore settles every kind of entity, lets the
// retention pass so that they leave memory, and repeats every command that
// created or acted on them, reads them, and reuses their ids with other
// bodies, before and after a restart: every answer is the one given before
// the retirement, the engine holds none of their ids any more, and no id is
// accepted a second time.
func TestRetiredIDsAreAnsweredAsBefore(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	limits := stockd.DefaultLimits
	limits.Retain = time.Hour
	obs := &retireCounter{}
	opts := engine.Options{Now: clock.Now, Limits: limits, Observer: obs}
	skus := skusInDistinctPartitions(2, 4)
	a, b := skus[0], skus[1]
	dir := t.TempDir()
	store, err := pebble.Open(dir, pebble.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(ctx, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	e2e.ConfigureLocations(t, e, "w1", "w2")

	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: a, Location: "w1", Quantity: 20}))
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r2", SKU: b, Location: "w1", Quantity: 20}))
	must3(e.Adjust(ctx, stockd.AdjustStock{ID: "a1", SKU: a, Location: "w1", Delta: -1, Reason: stockd.ReasonDamaged}))
	must3(e.Count(ctx, stockd.CountStock{ID: "n1", SKU: b, Location: "w1", OnHand: 18}))
	must3(e.Transfer(ctx, stockd.TransferStock{ID: "t1", SKU: a, From: "w1", To: "w2", Quantity: 2}))
	must(e.ArriveTransfer(ctx, stockd.ArriveTransfer{ID: "t1"}))
	must3(e.Reserve(ctx, stockd.Reserve{ID: "c1", Lines: []stockd.ReserveLine{{SKU: a, Quantity: 2}}}))
	must(e.Commit(ctx, stockd.CommitReservation{ID: "c1", Key: "pay-1"}))
	must3(e.Reserve(ctx, stockd.Reserve{ID: "c2", Lines: []stockd.ReserveLine{{SKU: a, Quantity: 1}}}))
	must(e.Release(ctx, stockd.ReleaseReservation{ID: "c2"}))
	// A cart spanning two partitions, committed.
	must3(e.Reserve(ctx, stockd.Reserve{ID: "c3", Lines: []stockd.ReserveLine{{SKU: a, Quantity: 1}, {SKU: b, Quantity: 1}}}))
	must(e.Commit(ctx, stockd.CommitReservation{ID: "c3"}))
	// A cart that expires.
	must3(e.Reserve(ctx, stockd.Reserve{ID: "c4", TTL: time.Minute, Lines: []stockd.ReserveLine{{SKU: b, Quantity: 1}}}))
	clock.Advance(2 * time.Minute)
	e.Poke()
	waitFor(t, func() bool { return must(e.GetReservation(ctx, "c4")).Status == stockd.StatusExpired })

	// Every operation that names a settled entity, and what it answers.
	ops := map[string]func(*engine.Engine) answer{
		"repeat receipt": func(e *engine.Engine) answer {
			return answerOf3(e.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: a, Location: "w1", Quantity: 20}))
		},
		"receipt id, other body": func(e *engine.Engine) answer {
			return answerOf3(e.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: a, Location: "w1", Quantity: 21}))
		},
		"receipt id for another SKU": func(e *engine.Engine) answer {
			return answerOf3(e.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: b, Location: "w1", Quantity: 20}))
		},
		"repeat adjustment": func(e *engine.Engine) answer {
			return answerOf3(e.Adjust(ctx, stockd.AdjustStock{ID: "a1", SKU: a, Location: "w1", Delta: -1, Reason: stockd.ReasonDamaged}))
		},
		"adjustment id, other body": func(e *engine.Engine) answer {
			return answerOf3(e.Adjust(ctx, stockd.AdjustStock{ID: "a1", SKU: a, Location: "w1", Delta: -2, Reason: stockd.ReasonDamaged}))
		},
		"repeat count": func(e *engine.Engine) answer {
			return answerOf3(e.Count(ctx, stockd.CountStock{ID: "n1", SKU: b, Location: "w1", OnHand: 18}))
		},
		"count id, other body": func(e *engine.Engine) answer {
			return answerOf3(e.Count(ctx, stockd.CountStock{ID: "n1", SKU: b, Location: "w1", OnHand: 17}))
		},
		"repeat transfer": func(e *engine.Engine) answer {
			return answerOf3(e.Transfer(ctx, stockd.TransferStock{ID: "t1", SKU: a, From: "w1", To: "w2", Quantity: 2}))
		},
		"transfer id, other body": func(e *engine.Engine) answer {
			return answerOf3(e.Transfer(ctx, stockd.TransferStock{ID: "t1", SKU: a, From: "w1", To: "w2", Quantity: 3}))
		},
		"repeat arrival": func(e *engine.Engine) answer { return answerOf(e.ArriveTransfer(ctx, stockd.ArriveTransfer{ID: "t1"})) },
		"read transfer":  func(e *engine.Engine) answer { return answerOf(e.GetTransfer(ctx, "t1")) },
		"repeat committed reservation": func(e *engine.Engine) answer {
			return answerOf3(e.Reserve(ctx, stockd.Reserve{ID: "c1", Lines: []stockd.ReserveLine{{SKU: a, Quantity: 2}}}))
		},
		"reservation id, other body": func(e *engine.Engine) answer {
			return answerOf3(e.Reserve(ctx, stockd.Reserve{ID: "c1", Lines: []stockd.ReserveLine{{SKU: a, Quantity: 3}}}))
		},
		"repeat commit": func(e *engine.Engine) answer {
			return answerOf(e.Commit(ctx, stockd.CommitReservation{ID: "c1", Key: "pay-1"}))
		},
		"commit again, other key": func(e *engine.Engine) answer {
			return answerOf(e.Commit(ctx, stockd.CommitReservation{ID: "c1", Key: "pay-2"}))
		},
		"release a committed one": func(e *engine.Engine) answer { return answerOf(e.Release(ctx, stockd.ReleaseReservation{ID: "c1"})) },
		"extend a committed one": func(e *engine.Engine) answer {
			return answerOf(e.Extend(ctx, stockd.ExtendReservation{ID: "c1", TTL: time.Hour}))
		},
		"read committed reservation": func(e *engine.Engine) answer { return answerOf(e.GetReservation(ctx, "c1")) },
		"repeat released reservation": func(e *engine.Engine) answer {
			return answerOf3(e.Reserve(ctx, stockd.Reserve{ID: "c2", Lines: []stockd.ReserveLine{{SKU: a, Quantity: 1}}}))
		},
		"repeat release":        func(e *engine.Engine) answer { return answerOf(e.Release(ctx, stockd.ReleaseReservation{ID: "c2"})) },
		"commit a released one": func(e *engine.Engine) answer { return answerOf(e.Commit(ctx, stockd.CommitReservation{ID: "c2"})) },
		"repeat cart of two partitions": func(e *engine.Engine) answer {
			return answerOf3(e.Reserve(ctx, stockd.Reserve{ID: "c3", Lines: []stockd.ReserveLine{{SKU: a, Quantity: 1}, {SKU: b, Quantity: 1}}}))
		},
		"read cart of two partitions": func(e *engine.Engine) answer { return answerOf(e.GetReservation(ctx, "c3")) },
		"cart id, other body": func(e *engine.Engine) answer {
			return answerOf3(e.Reserve(ctx, stockd.Reserve{ID: "c3", Lines: []stockd.ReserveLine{{SKU: b, Quantity: 1}}}))
		},
		"repeat expired reservation": func(e *engine.Engine) answer {
			return answerOf3(e.Reserve(ctx, stockd.Reserve{ID: "c4", TTL: time.Minute, Lines: []stockd.ReserveLine{{SKU: b, Quantity: 1}}}))
		},
		"commit an expired one":           func(e *engine.Engine) answer { return answerOf(e.Commit(ctx, stockd.CommitReservation{ID: "c4"})) },
		"read expired reservation":        func(e *engine.Engine) answer { return answerOf(e.GetReservation(ctx, "c4")) },
		"read a reservation never made":   func(e *engine.Engine) answer { return answerOf(e.GetReservation(ctx, "nope")) },
		"commit a reservation never made": func(e *engine.Engine) answer { return answerOf(e.Commit(ctx, stockd.CommitReservation{ID: "nope"})) },
	}
	before := map[string]answer{}
	for name, op := range ops {
		before[name] = op(e)
	}
	keys := e.Keys()

	// Let the retention pass. A read of each partition makes its due
	// timers fire first, and answers once their retirement is durable.
	clock.Advance(2 * time.Hour)
	for p := range e.Partitions() {
		_, _ = e.SKU(ctx, skuOfPartition(p, e.Partitions()), stockd.AsOf{})
	}
	// Nine entities settled, and nothing else was accepted.
	if keys != 9 {
		t.Fatalf("the engine remembers %d ids before the retention, want 9", keys)
	}
	if got := e.Keys(); got != 0 {
		t.Fatalf("the engine remembers %d ids after the retention: the settled ones were not all retired", got)
	}
	check := func(when string, e *engine.Engine) {
		t.Helper()
		for name, op := range ops {
			if got := op(e); !reflect.DeepEqual(got, before[name]) {
				t.Errorf("%s, %s: %+v, before the retirement %+v", when, name, got, before[name])
			}
		}
	}
	check("retired", e)
	if got := e.Keys(); got != 0 {
		t.Fatalf("answering retired ids brought %d of them back into memory", got)
	}
	if r, a := obs.retired.Load(), obs.answered.Load(); r != 9 || a < int64(len(ops))-2 {
		t.Fatalf("the observer saw %d entities retired and %d answers from their records; want 9 and at least %d", r, a, len(ops)-2)
	}

	// After a restart the ids are answered from the store alike.
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	store.Close()
	e = reopen(t, dir, 4, opts)
	check("after a restart", e)

	// New ids are still taken.
	if _, created, err := e.Reserve(ctx, stockd.Reserve{ID: "c5", Lines: []stockd.ReserveLine{{SKU: a, Quantity: 1}}}); err != nil || !created {
		t.Fatalf("a new reservation after retirement: created %v, %v", created, err)
	}
}

// retireCounter counts what the engine reports of retirement.
type retireCounter struct {
	engine.NopObserver
	retired, answered atomic.Int64
}

func (o *retireCounter) Retired(_ int, n int) { o.retired.Add(int64(n)) }
func (o *retireCounter) AnsweredRetired()     { o.answered.Add(1) }

// skuOfPartition returns a SKU name that partition p of n owns.
func skuOfPartition(p, n int) string {
	for i := 0; ; i++ {
		if sku := fmt.Sprint("probe-", i); stockd.PartitionOf(sku, n) == p {
			return sku
		}
	}
}

// waitFor waits, up to ten seconds, for cond to hold: for what the engine's
// own timers do after a Poke.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling the engine's timers, with a deadline
	}
}
