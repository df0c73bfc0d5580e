package engine_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
)

// TestLinearizable runs concurrent clients against the engine — reservations,
// retries of them, full and partial commits, releases, receipts and reads on a
// few SKUs that share partitions — records when each call started and
// returned, and checks with porcupine that the history is linearizable per
// SKU: that some order of the operations, each taking effect between its call
// and its return, explains every answer by a simple sequential model of one
// SKU's stock. A reservation granted beyond the stock, a read that misses an
// acknowledged write or shows one not yet made, or a retry that changes
// anything has no such order.
func TestLinearizable(t *testing.T) {
	const (
		partitions = 2
		skus       = 4
		clients    = 16
		opsEach    = 80
		initial    = 6
	)
	// Admission is off: on a loaded machine it may refuse a request as
	// overloaded, which proves nothing here (admission_test.go covers it).
	e, _ := open(t, partitions, engine.Options{MaxQueueWait: -1})
	e2e.ConfigureLocations(t, e, "w1")
	ctx := context.Background()
	names := make([]string, skus)
	for i := range names {
		names[i] = fmt.Sprintf("lin-%d", i)
		must3(e.Receive(ctx, stockd.ReceiveStock{ID: "init-" + names[i], SKU: names[i], Location: "w1", Quantity: initial}))
	}

	start := time.Now()
	clock := func() int64 { return time.Since(start).Nanoseconds() }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
	)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			type held struct {
				id, sku string
				qty     int64
			}
			var mine []held    // reservations this client holds
			var granted []held // every reservation this client was granted
			for i := range opsEach {
				sku := names[rng.IntN(skus)]
				in := linInput{sku: sku}
				var out linOutput
				call := clock()
				switch k := rng.IntN(100); {
				case k < 40:
					in.op, in.id, in.qty = "reserve", fmt.Sprintf("c%d-%d", c, i), 1+rng.Int64N(3)
					_, _, err := e.Reserve(ctx, reserveOne(in.id, sku, in.qty))
					out = outcome(t, err, stockd.CodeInsufficientStock)
					if out.ok {
						mine = append(mine, held{in.id, sku, in.qty})
						granted = append(granted, held{in.id, sku, in.qty})
					}
				case k < 50 && len(granted) > 0:
					g := granted[rng.IntN(len(granted))]
					in.op, in.sku, in.id, in.qty = "retry", g.sku, g.id, g.qty
					_, created, err := e.Reserve(ctx, reserveOne(g.id, g.sku, g.qty))
					out = outcome(t, err)
					if created {
						t.Errorf("retry of %s created a reservation again", g.id)
					}
				case k < 70 && len(mine) > 0:
					j := rng.IntN(len(mine))
					h := mine[j]
					mine = append(mine[:j], mine[j+1:]...)
					in.sku, in.id, in.qty = h.sku, h.id, h.qty
					if rng.IntN(2) == 0 {
						in.op = "release"
						_, err := e.Release(ctx, stockd.ReleaseReservation{ID: h.id})
						out = outcome(t, err)
					} else {
						in.op, in.commit = "commit", 1+rng.Int64N(h.qty) // possibly partial
						_, err := e.Commit(ctx, stockd.CommitReservation{ID: h.id, Lines: []stockd.CommitLine{{SKU: h.sku, Quantity: in.commit}}})
						out = outcome(t, err)
					}
				case k < 80:
					in.op, in.id, in.qty = "receive", fmt.Sprintf("rcv-c%d-%d", c, i), 1+rng.Int64N(2)
					_, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: in.id, SKU: sku, Location: "w1", Quantity: in.qty})
					out = outcome(t, err)
				default:
					in.op = "read"
					st, err := e.SKU(ctx, sku, stockd.AsOf{})
					out = outcome(t, err)
					out.onHand, out.reserved, out.available = st.OnHand, st.Reserved, st.Available
				}
				ret := clock()
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	res, info := porcupine.CheckOperationsVerbose(skuModel(initial), history, time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		t.Errorf("the history of %d operations is not linearizable", len(history))
		logLinearization(t, info)
	default:
		t.Fatalf("porcupine could not decide within a minute whether %d operations are linearizable", len(history))
	}
}

// TestLinearizableCatchesOversell shows that the model and checker reject what
// they must: two reservations that each took the whole stock, one after the
// other, and a read that missed a write acknowledged before it began.
func TestLinearizableCatchesOversell(t *testing.T) {
	ok := linOutput{ok: true}
	oversold := []porcupine.Operation{
		{ClientId: 0, Input: linInput{op: "reserve", sku: "A", id: "a", qty: 5}, Call: 0, Output: ok, Return: 10},
		{ClientId: 1, Input: linInput{op: "reserve", sku: "A", id: "b", qty: 5}, Call: 20, Output: ok, Return: 30},
	}
	if porcupine.CheckOperations(skuModel(5), oversold) {
		t.Error("two reservations of the whole stock were accepted as linearizable")
	}
	stale := []porcupine.Operation{
		{ClientId: 0, Input: linInput{op: "reserve", sku: "A", id: "a", qty: 2}, Call: 0, Output: ok, Return: 10},
		{ClientId: 1, Input: linInput{op: "read", sku: "A"}, Call: 20, Output: linOutput{ok: true, onHand: 5, reserved: 0, available: 5}, Return: 30},
	}
	if porcupine.CheckOperations(skuModel(5), stale) {
		t.Error("a read that missed an acknowledged reservation was accepted as linearizable")
	}
	fine := []porcupine.Operation{
		{ClientId: 0, Input: linInput{op: "reserve", sku: "A", id: "a", qty: 2}, Call: 0, Output: ok, Return: 30},
		{ClientId: 1, Input: linInput{op: "read", sku: "A"}, Call: 10, Output: linOutput{ok: true, onHand: 5, reserved: 0, available: 5}, Return: 20},
	}
	if !porcupine.CheckOperations(skuModel(5), fine) {
		t.Error("a read concurrent with a reservation, ordered before it, was refused")
	}
}

// linInput is one operation on one SKU.
type linInput struct {
	op      string // reserve, retry, release, commit, receive, read
	sku, id string
	qty     int64 // reserved or received
	commit  int64 // committed, for a commit
}

// linOutput is what the engine answered.
type linOutput struct {
	ok                          bool
	code                        stockd.Code // when !ok
	onHand, reserved, available int64       // for a read
}

// linState is the sequential model of one SKU at one location with no safety
// stock: units on hand, and the quantities of the holds by reservation.
type linState struct {
	onHand int64
	holds  map[string]int64
}

func (s linState) reserved() int64 {
	var n int64
	for _, q := range s.holds {
		n += q
	}
	return n
}

func (s linState) without(id string) linState {
	holds := maps.Clone(s.holds)
	delete(holds, id)
	return linState{onHand: s.onHand, holds: holds}
}

// skuModel is the porcupine model of every SKU stocked with initial units,
// partitioned by SKU.
func skuModel(initial int64) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var order []string
			for _, op := range history {
				sku := op.Input.(linInput).sku
				if _, ok := by[sku]; !ok {
					order = append(order, sku)
				}
				by[sku] = append(by[sku], op)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, sku := range order {
				out = append(out, by[sku])
			}
			return out
		},
		Init: func() any { return linState{onHand: initial, holds: map[string]int64{}} },
		Step: func(state, input, output any) (bool, any) {
			s, in, out := state.(linState), input.(linInput), output.(linOutput)
			available := s.onHand - s.reserved()
			switch in.op {
			case "reserve":
				if !out.ok {
					return out.code == stockd.CodeInsufficientStock && available < in.qty, s
				}
				if available < in.qty {
					return false, s
				}
				holds := maps.Clone(s.holds)
				holds[in.id] = in.qty
				return true, linState{onHand: s.onHand, holds: holds}
			case "retry":
				// A repeat answers with the reservation as it is now and
				// changes nothing.
				return out.ok, s
			case "release":
				_, held := s.holds[in.id]
				return out.ok && held, s.without(in.id)
			case "commit":
				_, held := s.holds[in.id]
				next := s.without(in.id)
				next.onHand -= in.commit
				return out.ok && held, next
			case "receive":
				return out.ok, linState{onHand: s.onHand + in.qty, holds: s.holds}
			case "read":
				return out.ok && out.onHand == s.onHand && out.reserved == s.reserved() && out.available == available, s
			}
			return false, s
		},
		Equal: func(a, b any) bool {
			x, y := a.(linState), b.(linState)
			return x.onHand == y.onHand && maps.Equal(x.holds, y.holds)
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			return fmt.Sprintf("%s %s %s qty=%d commit=%d -> %+v", in.op, in.sku, in.id, in.qty, in.commit, out)
		},
		DescribeState: func(state any) string {
			s := state.(linState)
			return fmt.Sprintf("on_hand=%d holds=%v", s.onHand, s.holds)
		},
	}
}

// reserveOne is a one-line reservation of qty units of sku at w1.
func reserveOne(id, sku string, qty int64) stockd.Reserve {
	return stockd.Reserve{ID: id, TTL: time.Hour, Lines: []stockd.ReserveLine{{SKU: sku, Quantity: qty, Location: "w1"}}}
}

// outcome turns an engine answer into a model output; a refusal with any code
// other than the expected ones fails the test.
func outcome(t *testing.T, err error, expected ...stockd.Code) linOutput {
	if err == nil {
		return linOutput{ok: true}
	}
	var se *stockd.Error
	if errors.As(err, &se) {
		for _, c := range expected {
			if se.Code == c {
				return linOutput{code: se.Code}
			}
		}
	}
	t.Errorf("unexpected error: %v", err)
	return linOutput{}
}

// logLinearization logs the longest linearizable prefix porcupine found of
// each SKU's operations, to show where the history stopped making sense.
func logLinearization(t *testing.T, info porcupine.LinearizationInfo) {
	for i, part := range info.PartialLinearizations() {
		longest := []int{}
		for _, l := range part {
			if len(l) > len(longest) {
				longest = l
			}
		}
		t.Logf("partition %d: %d operations linearize before the checker is stuck", i, len(longest))
	}
}
