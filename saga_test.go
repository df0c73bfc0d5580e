package stockd

import (
	"reflect"
	"testing"
	"time"
)

// sagaWorld is a cluster of n partitions with one SKU in each, A in 0, B in 1
// and C in 2, each with 10 units at w1 (C with cStock), the one location
// configured.
type sagaWorld struct {
	*cluster
	a, b, c string
}

func newSagaWorld(t testing.TB, n int, cStock int64) *sagaWorld {
	t.Helper()
	w := &sagaWorld{cluster: newCluster(t, n, t0), a: skuIn("A", 0, n), b: skuIn("B", 1, n)}
	mustDo(t, w.cluster, warehouse("w1", 1, ""))
	mustDo(t, w.cluster, recv("ra", w.a, "w1", 10))
	mustDo(t, w.cluster, recv("rb", w.b, "w1", 10))
	if n > 2 {
		w.c = skuIn("C", 2, n)
		mustDo(t, w.cluster, recv("rc", w.c, "w1", cStock))
	}
	return w
}

// participantRes returns the part of reservation id that partition p holds
// for another home, and false if p has none.
func (c *cluster) participantRes(p int, id string) (*reservation, bool) {
	r := c.states[p].reservations[id]
	if r == nil || r.home == p {
		return nil, false
	}
	return r, true
}

// heldCart reserves 2 of A and 3 of B as c1 and has it held everywhere.
func (w *sagaWorld) heldCart(t *testing.T) {
	t.Helper()
	p, d, err := w.do(Reserve{ID: "c1", TTL: 10 * time.Minute, Lines: []ReserveLine{line(w.a, 2), line(w.b, 3)}})
	if err != nil || p != 0 || d.Wait != "c1" {
		t.Fatalf("reserve: partition %d, %+v, %v", p, d, err)
	}
	w.quiesce()
	if r, ok := w.lastResolution("c1"); !ok || r.Err != nil {
		t.Fatalf("resolution = %+v, %v", r, ok)
	}
}

func TestSagaAllHeld(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	exp := t0.Add(15 * time.Minute)
	p, d, err := w.do(reserve("c1", line(w.a, 2), line(w.b, 3)))
	if err != nil || p != 0 || d.Wait != "c1" || d.Replay {
		t.Fatalf("reserve: partition %d, %+v, %v", p, d, err)
	}
	compareEvents(t, "home events", d.Events, []Event{
		ev("", SagaStarted{Reservation: "c1", CreatedAt: t0, ExpiresAt: exp, Lines: []ReserveLine{line(w.a, 2), line(w.b, 3)}, Participants: []int{1}}),
		ev(w.a, StockReserved{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w1", 2}}, ExpiresAt: exp}),
	})
	if len(d.Messages) != 1 || d.Messages[0].To != 1 {
		t.Fatalf("messages = %+v", d.Messages)
	}
	// Until every participant answers, the cart is pending, its local line
	// is held and nobody has been answered.
	wantRes(t, w.cluster, "c1", StatusPending)
	wantLoc(t, w.cluster, w.a, "w1", 10, 2, 8, 0, 0)
	if keys := keysOf(w.states[0]); len(keys) != 1 {
		t.Fatalf("keys of a pending cart: %v", keys)
	}
	// A repeat waits for the same answer.
	if _, d, err := w.do(reserve("c1", line(w.a, 2), line(w.b, 3))); err != nil || !d.Replay || d.Wait != "c1" {
		t.Fatalf("repeat while pending: %+v, %v", d, err)
	}
	// Nothing can be done to a pending cart.
	for _, cmd := range []Command{CommitReservation{ID: "c1"}, ReleaseReservation{ID: "c1"}, ExtendReservation{ID: "c1", TTL: time.Minute}} {
		if _, _, err := w.do(cmd); !IsCode(err, CodeNotHeld) {
			t.Fatalf("%T of a pending cart: %v", cmd, err)
		}
	}

	w.deliver(0, 1)
	// The participant's lines name the attempt: the position of the
	// home's SagaStarted.
	compareEvents(t, "participant events", w.logs[1][len(w.logs[1])-1:], []Event{
		ev(w.b, StockReserved{Reservation: "c1", Quantity: 3, Allocations: []Allocation{{"w1", 3}}, ExpiresAt: exp, Attempt: d.Events[0].Position}),
	})
	before := len(w.logs[0])
	w.deliver(1, 0)
	compareEvents(t, "answer events", w.logs[0][before:], []Event{
		ev("", SagaStepAcked{Reservation: "c1", Step: 1, From: 1, Held: []ReservationLine{{SKU: w.b, Quantity: 3, Held: 3, Allocations: []Allocation{{"w1", 3}}}}}),
		ev("", ReservationHeld{Reservation: "c1"}),
	})
	if r, ok := w.lastResolution("c1"); !ok || r.Err != nil {
		t.Fatalf("resolution = %+v, %v", r, ok)
	}
	r := wantRes(t, w.cluster, "c1", StatusHeld)
	want := []ReservationLine{
		{SKU: w.a, Quantity: 2, Held: 2, Allocations: []Allocation{{"w1", 2}}},
		{SKU: w.b, Quantity: 3, Held: 3, Allocations: []Allocation{{"w1", 3}}},
	}
	if !reflect.DeepEqual(r.Lines, want) {
		t.Fatalf("lines = %+v, want %+v", r.Lines, want)
	}
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	if keys := keysOf(w.states[0]); len(keys) != 2 {
		t.Fatalf("keys of a held cart: %v", keys)
	}
	// A participant does not show another home's cart.
	if _, ok := w.states[1].ReservationView("c1"); ok {
		t.Fatalf("participant shows the cart")
	}
	if _, d, err := w.do(reserve("c1", line(w.a, 2), line(w.b, 3))); err != nil || !d.Replay || d.Wait != "" {
		t.Fatalf("repeat once held: %+v, %v", d, err)
	}
	if _, _, err := w.do(reserve("c1", line(w.a, 2), line(w.b, 4))); !IsCode(err, CodeIdempotencyMismatch) {
		t.Fatalf("reuse once held: %v", err)
	}
}

func TestSagaParticipantShort(t *testing.T) {
	w := newSagaWorld(t, 3, 1)
	cart := reserve("c1", line(w.a, 2), line(w.b, 3), line(w.c, 2))
	_, d, err := w.do(cart)
	if err != nil || d.Wait != "c1" || len(d.Messages) != 2 {
		t.Fatalf("reserve: %+v, %v", d, err)
	}
	w.deliver(0, 1)
	w.deliver(0, 2)
	w.deliver(1, 0)
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	before := len(w.logs[0])
	w.deliver(2, 0)
	compareEvents(t, "home events", w.logs[0][before:], []Event{
		ev("", SagaStepAcked{Reservation: "c1", Step: 1, From: 2, Shortfalls: []Shortfall{{SKU: w.c, Requested: 2, Available: 1}}}),
		ev(w.a, ReservationReleased{Reservation: "c1", Reason: ReleaseCompensated, Quantity: 2}),
		ev("", SagaStepStarted{Reservation: "c1", Step: 2, Action: SagaRelease, Participants: []int{1}, Reason: ReleaseCompensated}),
	})
	res, ok := w.lastResolution("c1")
	var e *Error
	if !ok || !asError(res.Err, &e) || e.Code != CodeInsufficientStock ||
		!reflect.DeepEqual(e.Lines, []Shortfall{{SKU: w.c, Requested: 2, Available: 1}}) {
		t.Fatalf("resolution = %+v", res)
	}
	// While the compensation is under way, a repeat is answered as the
	// attempt was.
	if _, _, err := w.do(cart); !IsCode(err, CodeInsufficientStock) {
		t.Fatalf("repeat while compensating: %v", err)
	}
	w.quiesce()
	wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	wantNoRes(t, w.cluster, "c1")
	for p := range w.states {
		if r := w.states[p].reservations["c1"]; r != nil {
			t.Fatalf("partition %d still knows the failed cart: %+v", p, r)
		}
	}

	// A retry once stock arrived is decided afresh.
	mustDo(t, w.cluster, recv("rc2", w.c, "w1", 1))
	if _, d, err := w.do(cart); err != nil || d.Replay || d.Wait != "c1" {
		t.Fatalf("retry: %+v, %v", d, err)
	}
	w.quiesce()
	if res, _ := w.lastResolution("c1"); res.Err != nil {
		t.Fatalf("retry resolution: %v", res.Err)
	}
	wantRes(t, w.cluster, "c1", StatusHeld)
	wantLoc(t, w.cluster, w.c, "w1", 2, 2, 0, 0, 0)
	// The participant that held the first attempt really holds the retry
	// (it once answered with the first attempt's released lines).
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	mustDo(t, w.cluster, CommitReservation{ID: "c1"})
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 7, 0, 7, 0, 0)
	wantLoc(t, w.cluster, w.c, "w1", 0, 0, 0, 0, 0)
}

func TestSagaLocalLineShort(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	_, d, err := w.do(reserve("c1", line(w.a, 20), line(w.b, 3)))
	if !IsCode(err, CodeInsufficientStock) || len(d.Messages) != 0 {
		t.Fatalf("reserve: %+v, %v", d, err)
	}
	if w.inFlight() != 0 {
		t.Fatalf("participants were asked")
	}
}

func TestSagaCommit(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	_, d, err := w.do(CommitReservation{ID: "c1"})
	if err != nil || d.Wait != "c1" {
		t.Fatalf("commit: %+v, %v", d, err)
	}
	compareEvents(t, "home events", d.Events, []Event{
		ev(w.a, ReservationCommitted{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w1", 2}}, Lots: []LotQty{lq("w1", "", "", 2)}}),
		ev("", SagaStepStarted{Reservation: "c1", Step: 2, Action: SagaCommit, Participants: []int{1}, Lines: []CommitLine{{SKU: w.b, Quantity: 3}}}),
	})
	// A repeat waits until the participants are done.
	if _, d, err := w.do(CommitReservation{ID: "c1"}); err != nil || !d.Replay || d.Wait != "c1" {
		t.Fatalf("repeat: %+v, %v", d, err)
	}
	w.deliver(0, 1)
	compareEvents(t, "participant events", w.logs[1][len(w.logs[1])-1:], []Event{
		ev(w.b, ReservationCommitted{Reservation: "c1", Quantity: 3, Allocations: []Allocation{{"w1", 3}}, Lots: []LotQty{lq("w1", "", "", 3)}}),
	})
	before := len(w.logs[0])
	w.deliver(1, 0)
	compareEvents(t, "settled", w.logs[0][before:], []Event{
		ev("", SagaStepAcked{Reservation: "c1", Step: 2, From: 1}),
		ev("", SagaSettled{Reservation: "c1", Step: 2}),
	})
	if res, _ := w.lastResolution("c1"); res.Err != nil {
		t.Fatalf("resolution: %v", res.Err)
	}
	wantLoc(t, w.cluster, w.a, "w1", 8, 0, 8, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 7, 0, 7, 0, 0)
	r := wantRes(t, w.cluster, "c1", StatusCommitted)
	if r.Lines[1].Quantity != 3 {
		t.Fatalf("lines = %+v", r.Lines)
	}
	if _, d, err := w.do(CommitReservation{ID: "c1"}); err != nil || !d.Replay || d.Wait != "" {
		t.Fatalf("repeat once settled: %+v, %v", d, err)
	}
	if _, _, err := w.do(ReleaseReservation{ID: "c1"}); !IsCode(err, CodeNotHeld) {
		t.Fatalf("release of committed: %v", err)
	}
}

func TestSagaPartialCommit(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	_, d, err := w.do(CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: w.b, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	compareEvents(t, "home events", d.Events, []Event{
		ev(w.a, ReservationCommitted{Reservation: "c1", Released: 2}),
		ev("", SagaStepStarted{Reservation: "c1", Step: 2, Action: SagaCommit, Participants: []int{1}, Lines: []CommitLine{{SKU: w.b, Quantity: 1}}}),
	})
	w.quiesce()
	compareEvents(t, "participant events", w.logs[1][len(w.logs[1])-1:], []Event{
		ev(w.b, ReservationCommitted{Reservation: "c1", Quantity: 1, Released: 2, Allocations: []Allocation{{"w1", 1}}, Lots: []LotQty{lq("w1", "", "", 1)}}),
	})
	wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 9, 0, 9, 0, 0)
	r := wantRes(t, w.cluster, "c1", StatusCommitted)
	want := []ReservationLine{
		{SKU: w.a, Quantity: 0, Held: 2, Allocations: []Allocation{}},
		{SKU: w.b, Quantity: 1, Held: 3, Allocations: []Allocation{{"w1", 1}}},
	}
	if !reflect.DeepEqual(r.Lines, want) {
		t.Fatalf("lines = %+v, want %+v", r.Lines, want)
	}
}

func TestSagaRelease(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	_, d, err := w.do(ReleaseReservation{ID: "c1"})
	if err != nil || d.Wait != "c1" {
		t.Fatalf("release: %+v, %v", d, err)
	}
	compareEvents(t, "home events", d.Events, []Event{
		ev(w.a, ReservationReleased{Reservation: "c1", Reason: ReleaseRequested, Quantity: 2}),
		ev("", SagaStepStarted{Reservation: "c1", Step: 2, Action: SagaRelease, Participants: []int{1}, Reason: ReleaseRequested}),
	})
	w.quiesce()
	compareEvents(t, "participant events", w.logs[1][len(w.logs[1])-1:], []Event{
		ev(w.b, ReservationReleased{Reservation: "c1", Reason: ReleaseRequested, Quantity: 3}),
	})
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	wantRes(t, w.cluster, "c1", StatusReleased)
	if r, ok := w.participantRes(1, "c1"); !ok || r.status != StatusReleased {
		t.Fatalf("participant: %+v", r)
	}
	if _, d, err := w.do(ReleaseReservation{ID: "c1"}); err != nil || !d.Replay {
		t.Fatalf("repeat: %+v, %v", d, err)
	}
	if _, _, err := w.do(CommitReservation{ID: "c1"}); !IsCode(err, CodeNotHeld) {
		t.Fatalf("commit of released: %v", err)
	}
}

func TestSagaExtend(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	w.now = t0.Add(5 * time.Minute)
	exp := t0.Add(65 * time.Minute)
	_, d, err := w.do(ExtendReservation{ID: "c1", TTL: time.Hour})
	if err != nil || d.Wait != "c1" {
		t.Fatalf("extend: %+v, %v", d, err)
	}
	compareEvents(t, "home events", d.Events, []Event{
		ev(w.a, ReservationExtended{Reservation: "c1", ExpiresAt: exp}),
		ev("", SagaStepStarted{Reservation: "c1", Step: 2, Action: SagaExtend, Participants: []int{1}, ExpiresAt: exp}),
	})
	w.quiesce()
	compareEvents(t, "participant events", w.logs[1][len(w.logs[1])-1:], []Event{
		ev(w.b, ReservationExtended{Reservation: "c1", ExpiresAt: exp, Step: 2}),
	})
	if h := w.loc(w.b, "w1").Holds; len(h) != 1 || !h[0].ExpiresAt.Equal(exp) {
		t.Fatalf("participant holds = %+v", h)
	}
	// The old deadline passes; the new one expires the cart everywhere.
	w.now = t0.Add(10 * time.Minute)
	w.tickAll()
	wantRes(t, w.cluster, "c1", StatusHeld)
	w.now = exp
	w.tickAll()
	w.quiesce()
	wantRes(t, w.cluster, "c1", StatusExpired)
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
}

func TestSagaExpiry(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	w.now = t0.Add(10 * time.Minute)
	before := len(w.logs[0])
	w.tick(0)
	compareEvents(t, "home events", w.logs[0][before:], []Event{
		ev(w.a, ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 2}),
		ev("", SagaStepStarted{Reservation: "c1", Step: 2, Action: SagaRelease, Participants: []int{1}, Reason: ReleaseExpired}),
	})
	// The participant's hold ends when the home's instruction arrives;
	// it never expires on its own.
	w.tick(1)
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	w.quiesce()
	compareEvents(t, "participant events", w.logs[1][len(w.logs[1])-1:], []Event{
		ev(w.b, ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 3}),
	})
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	wantRes(t, w.cluster, "c1", StatusExpired)
	if _, _, err := w.do(CommitReservation{ID: "c1"}); !IsCode(err, CodeNotHeld) {
		t.Fatalf("commit of expired: %v", err)
	}
}

// TestSagaExpiryWhilePending checks a cart whose participants have not
// answered by its deadline: it is abandoned everywhere and the client is told.
func TestSagaExpiryWhilePending(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	cart := Reserve{ID: "c1", TTL: time.Minute, Lines: []ReserveLine{line(w.a, 2), line(w.b, 3)}}
	mustDo(t, w.cluster, cart)
	w.now = t0.Add(time.Minute)
	w.tick(0)
	res, ok := w.lastResolution("c1")
	if !ok || !IsCode(res.Err, CodeUnavailable) {
		t.Fatalf("resolution = %+v", res)
	}
	// A repeat during the clean-up is answered as the attempt was.
	if _, _, err := w.do(cart); !IsCode(err, CodeUnavailable) {
		t.Fatalf("repeat while compensating: %v", err)
	}
	// The late hold is carried out, then undone.
	w.quiesce()
	wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	wantNoRes(t, w.cluster, "c1")
	if _, ok := w.participantRes(1, "c1"); ok {
		t.Fatalf("participant still holds the abandoned cart")
	}
}

// TestSagaCrashWhileHolding loses the hold request in a crash: recovery
// abandons the cart everywhere.
func TestSagaCrashWhileHolding(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	mustDo(t, w.cluster, reserve("c1", line(w.a, 2), line(w.b, 3)))
	w.crash(nil)
	res, ok := w.lastResolution("c1")
	if !ok || !IsCode(res.Err, CodeUnavailable) {
		t.Fatalf("resolution = %+v", res)
	}
	w.quiesce()
	wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	wantNoRes(t, w.cluster, "c1")
}

// TestSagaCrashAfterHold loses the participant's answer: the participant holds
// but the home never heard, so recovery releases the participant's lines.
func TestSagaCrashAfterHold(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	mustDo(t, w.cluster, reserve("c1", line(w.a, 2), line(w.b, 3)))
	w.deliver(0, 1)
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	w.crash(func(int) bool { return false })
	w.quiesce()
	wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	wantNoRes(t, w.cluster, "c1")
	if _, ok := w.participantRes(1, "c1"); ok {
		t.Fatalf("participant still holds the abandoned cart")
	}
}

// TestSagaCrashAfterCommit loses the commit instruction: recovery sends it
// again.
func TestSagaCrashAfterCommit(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	w.snapshot(0)
	w.snapshot(1)
	mustDo(t, w.cluster, CommitReservation{ID: "c1"})
	w.crash(func(int) bool { return true })
	if w.inFlight() != 1 {
		t.Fatalf("recovery sent %d messages, want 1", w.inFlight())
	}
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 7, 0, 7, 0, 0)
	if r, ok := w.participantRes(1, "c1"); !ok || r.status != StatusCommitted {
		t.Fatalf("participant: %+v", r)
	}
	if _, ok := w.states[0].reservations["c1"]; !ok || len(w.states[0].reservations["c1"].saga.pending) != 0 {
		t.Fatalf("step not settled")
	}
}

// TestSagaCrashLosesParticipantDecision crashes after a participant decided a
// commit that was not durable yet: recovery sends the step again.
func TestSagaCrashLosesParticipantDecision(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	mustDo(t, w.cluster, CommitReservation{ID: "c1"})
	w.auto = false
	w.deliver(0, 1)
	wantLoc(t, w.cluster, w.b, "w1", 7, 0, 7, 0, 0)
	w.crash(nil)
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 7, 0, 7, 0, 0)
	wantRes(t, w.cluster, "c1", StatusCommitted)
}

// TestSagaParticipantRefusesForeignID checks that a participant holding an id
// for another home refuses rather than mixing two carts.
func TestSagaParticipantRefusesForeignID(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	mustDo(t, w.cluster, reserve("x", line(w.b, 1)))
	// The engine's index would refuse this reuse of x; decide it at
	// partition 0 anyway to see that the participant protects itself.
	if _, err := w.exec(0, reserve("x", line(w.a, 1), line(w.b, 1))); err != nil {
		t.Fatal(err)
	}
	w.quiesce()
	res, _ := w.lastResolution("x")
	if !IsCode(res.Err, CodeInsufficientStock) {
		t.Fatalf("resolution = %+v", res)
	}
	wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 10, 1, 9, 0, 0)
	if r, ok := w.states[1].ReservationView("x"); !ok || r.Status != StatusHeld {
		t.Fatalf("the other cart = %+v", r)
	}
}

// TestSagaStepsSupersede checks that a new step replaces one still under way
// and that the answers of the old one are ignored.
func TestSagaStepsSupersede(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	mustDo(t, w.cluster, ExtendReservation{ID: "c1", TTL: time.Hour})
	mustDo(t, w.cluster, CommitReservation{ID: "c1"})
	w.quiesce()
	wantRes(t, w.cluster, "c1", StatusCommitted)
	wantLoc(t, w.cluster, w.b, "w1", 7, 0, 7, 0, 0)
	if g := w.states[0].reservations["c1"].saga; g.step != 3 || len(g.pending) != 0 {
		t.Fatalf("saga = %+v", g)
	}
}

// drop takes the oldest message in flight from one partition to another out
// of the network, as a lost message, and returns it.
func (c *cluster) drop(from, to int) Command {
	c.tb.Helper()
	q := c.queues[from][to]
	if len(q) == 0 {
		c.fatalf("no message from %d to %d to drop", from, to)
	}
	c.queues[from][to] = q[1:]
	return q[0]
}

// inject puts a message in flight from one partition to another, behind the
// others: a copy of one sent before, delivered late or again.
func (c *cluster) inject(from, to int, cmd Command) {
	c.queues[from][to] = append(c.queues[from][to], cmd)
}

// overdue sends what partition p's Overdue returns at the cluster's clock.
func (c *cluster) overdue(p int, after time.Duration) []Message {
	msgs := c.states[p].Overdue(c.now, after)
	for _, m := range msgs {
		c.inject(p, m.To, m.Command)
	}
	return msgs
}

// logLens returns the length of every partition's log.
func (c *cluster) logLens() []int {
	out := make([]int, len(c.logs))
	for p := range c.logs {
		out[p] = len(c.logs[p])
	}
	return out
}

func TestALostAckIsSentAgainWhenTheHomeAsksForOverdueSteps(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	mustDo(t, w.cluster, reserve("c1", line(w.a, 2), line(w.b, 3)))
	hold := w.queues[0][1][0]
	w.deliver(0, 1)
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	w.drop(1, 0) // the participant's node died before its answer left
	after := 5 * time.Second

	if msgs := w.overdue(0, after); len(msgs) != 0 {
		t.Fatalf("overdue before its time: %+v", msgs)
	}
	w.now = t0.Add(after)
	logs := w.logLens()
	msgs := w.overdue(0, after)
	if len(msgs) != 1 || msgs[0].To != 1 || !reflect.DeepEqual(msgs[0].Command, hold) {
		t.Fatalf("overdue = %+v, want the hold %+v again", msgs, hold)
	}
	// The home's state says the same after a restart.
	if re := w.replay(0, w.logs[0], nil); !reflect.DeepEqual(re.Overdue(w.now, after), msgs) {
		t.Fatalf("rebuilt from the log: overdue = %+v", re.Overdue(w.now, after))
	}
	// Asked again, the participant answers as before and holds nothing more.
	w.deliver(0, 1)
	if got := w.logLens(); !reflect.DeepEqual(got, logs) {
		t.Fatalf("asking again appended events: logs %v, were %v", got, logs)
	}
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	w.quiesce()
	if res, ok := w.lastResolution("c1"); !ok || res.Err != nil {
		t.Fatalf("resolution = %+v, %v", res, ok)
	}
	wantRes(t, w.cluster, "c1", StatusHeld)
	if msgs := w.states[0].Overdue(w.now.Add(time.Hour), after); len(msgs) != 0 {
		t.Fatalf("overdue once held: %+v", msgs)
	}
}

func TestALostStepIsSentAgainUntilEveryParticipantAcknowledgesIt(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	mustDo(t, w.cluster, CommitReservation{ID: "c1"})
	commit := w.drop(0, 1)
	after := time.Second
	w.now = w.now.Add(after)
	msgs := w.overdue(0, after)
	if len(msgs) != 1 || !reflect.DeepEqual(msgs[0].Command, commit) {
		t.Fatalf("overdue = %+v, want the commit %+v again", msgs, commit)
	}
	w.inject(0, 1, commit) // and a copy of it, delivered twice
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 7, 0, 7, 0, 0)
	if r, ok := w.participantRes(1, "c1"); !ok || r.status != StatusCommitted {
		t.Fatalf("participant: %+v", r)
	}
	commits := 0
	for _, e := range w.logs[1] {
		if _, ok := e.Data.(ReservationCommitted); ok {
			commits++
		}
	}
	if commits != 1 {
		t.Fatalf("the participant committed %d times", commits)
	}
	if msgs := w.states[0].Overdue(w.now.Add(time.Hour), after); len(msgs) != 0 {
		t.Fatalf("overdue once settled: %+v", msgs)
	}
}

func TestAHoldSentAgainAfterTheCartWasReleasedHoldsNothing(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	mustDo(t, w.cluster, reserve("c1", line(w.a, 2), line(w.b, 3)))
	hold := w.queues[0][1][0]
	w.quiesce()
	mustDo(t, w.cluster, ReleaseReservation{ID: "c1"})
	w.quiesce()
	logs := w.logLens()
	w.inject(0, 1, hold)
	w.quiesce()
	if got := w.logLens(); !reflect.DeepEqual(got, logs) {
		t.Fatalf("a late hold appended events: logs %v, were %v", got, logs)
	}
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
}

// TestAHoldArrivingAfterItsCartWasAbandonedIsUndoneByTheHome delivers the
// abandonment of a cart before its hold (the network reordered them): the
// participant holds what nobody wants, and the home has it released.
func TestAHoldArrivingAfterItsCartWasAbandonedIsUndoneByTheHome(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	mustDo(t, w.cluster, Reserve{ID: "c1", TTL: time.Minute, Lines: []ReserveLine{line(w.a, 2), line(w.b, 3)}})
	hold := w.drop(0, 1)
	w.now = t0.Add(time.Minute)
	w.tick(0) // abandoned at its deadline: the participants are told to release
	w.quiesce()
	wantNoRes(t, w.cluster, "c1")
	home := len(w.logs[0])

	w.inject(0, 1, hold)
	w.deliver(0, 1)
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	if _, ok := w.participantRes(1, "c1"); ok {
		t.Fatalf("the participant still knows the abandoned cart")
	}
	if len(w.logs[0]) != home {
		t.Fatalf("the home recorded %v", renderEvents(w.logs[0][home:]))
	}
}

// TestAParticipantHoldingPastTheDeadlineAsksTheHomeAgain loses the home's
// answer to an unwanted hold: the participant asks again once the deadline
// has passed, and the lines are released then.
func TestAParticipantHoldingPastTheDeadlineAsksTheHomeAgain(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	mustDo(t, w.cluster, Reserve{ID: "c1", TTL: time.Minute, Lines: []ReserveLine{line(w.a, 2), line(w.b, 3)}})
	hold := w.drop(0, 1)
	w.now = t0.Add(time.Minute)
	w.tick(0)
	w.quiesce()
	w.inject(0, 1, hold)
	w.deliver(0, 1)
	w.deliver(1, 0)
	w.drop(0, 1) // the release of the unwanted lines is lost
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)

	after := 10 * time.Second
	if msgs := w.overdue(1, after); len(msgs) != 0 {
		t.Fatalf("asked before the deadline had passed by after: %+v", msgs)
	}
	w.now = w.now.Add(after)
	msgs := w.overdue(1, after)
	if len(msgs) != 1 || msgs[0].To != 0 {
		t.Fatalf("overdue = %+v", msgs)
	}
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	if msgs := w.states[1].Overdue(w.now.Add(time.Hour), after); len(msgs) != 0 {
		t.Fatalf("overdue once released: %+v", msgs)
	}
}

// TestAParticipantHoldingALiveCartPastItsDeadlineKeepsIt checks that the
// home does not release lines it still wants when a participant asks early
// (its clock ahead of the home's).
func TestAParticipantHoldingALiveCartPastItsDeadlineKeepsIt(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	logs := w.logLens()
	msgs := w.states[1].Overdue(t0.Add(11*time.Minute), time.Second)
	if len(msgs) != 1 {
		t.Fatalf("overdue = %+v", msgs)
	}
	w.inject(1, 0, msgs[0].Command)
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	wantRes(t, w.cluster, "c1", StatusHeld)
	if got := w.logLens(); !reflect.DeepEqual(got, logs) {
		t.Fatalf("asking appended events: logs %v, were %v", got, logs)
	}
}

func TestAHoldOfAnEarlierAttemptHoldsNothing(t *testing.T) {
	w := newSagaWorld(t, 3, 1)
	cart := reserve("c1", line(w.a, 2), line(w.b, 3), line(w.c, 2))
	mustDo(t, w.cluster, cart)
	first := w.queues[0][1][0]
	w.quiesce() // short of C: undone
	mustDo(t, w.cluster, recv("rc2", w.c, "w1", 1))
	mustDo(t, w.cluster, cart)
	w.quiesce()
	wantRes(t, w.cluster, "c1", StatusHeld)
	logs := w.logLens()
	w.inject(0, 1, first)
	w.quiesce()
	if got := w.logLens(); !reflect.DeepEqual(got, logs) {
		t.Fatalf("a hold of the first attempt appended events: logs %v, were %v", got, logs)
	}
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	mustDo(t, w.cluster, ReleaseReservation{ID: "c1"})
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
}

// TestARetryReleasesWhatAnEarlierAttemptLeftHeld leaves a participant holding
// an abandoned attempt's lines when the retry's hold arrives: it releases
// them and holds the retry's.
func TestARetryReleasesWhatAnEarlierAttemptLeftHeld(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	cart := Reserve{ID: "c1", TTL: time.Minute, Lines: []ReserveLine{line(w.a, 2), line(w.b, 3)}}
	mustDo(t, w.cluster, cart)
	hold := w.drop(0, 1)
	w.now = t0.Add(time.Minute)
	w.tick(0)
	w.quiesce()
	w.inject(0, 1, hold)
	w.deliver(0, 1)
	w.drop(1, 0) // its answer is lost: the participant holds the old attempt
	cart.Lines = []ReserveLine{line(w.a, 2), line(w.b, 4)}
	mustDo(t, w.cluster, cart)
	w.quiesce()
	wantRes(t, w.cluster, "c1", StatusHeld)
	wantLoc(t, w.cluster, w.b, "w1", 10, 4, 6, 0, 0)
}

func TestARepeatedOrLateExtensionChangesNothing(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	mustDo(t, w.cluster, ExtendReservation{ID: "c1", TTL: time.Hour})
	mustDo(t, w.cluster, ExtendReservation{ID: "c1", TTL: 2 * time.Hour})
	older := w.drop(0, 1)
	newer := w.queues[0][1][0]
	w.deliver(0, 1)
	logs := w.logLens()
	w.inject(0, 1, older)
	w.inject(0, 1, newer)
	w.deliver(0, 1)
	w.deliver(0, 1)
	if got := w.logLens(); got[1] != logs[1] {
		t.Fatalf("the participant recorded %v", renderEvents(w.logs[1][logs[1]:]))
	}
	if h := w.loc(w.b, "w1").Holds; len(h) != 1 || !h[0].ExpiresAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("participant holds = %+v", h)
	}
	w.quiesce()
	wantRes(t, w.cluster, "c1", StatusHeld)
}

// TestAMessageFromNoSuchPartitionIsIgnored decides messages naming a home or
// sender this store does not have, as a garbled or forged message may: they
// change nothing and are answered to nobody.
func TestAMessageFromNoSuchPartitionIsIgnored(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	held := []ReservationLine{{SKU: w.b, Quantity: 1, Held: 1}}
	for _, cmd := range []Command{
		sagaHold{reservation: "x", home: 2, step: 1, lines: []ReserveLine{line(w.b, 1)}},
		sagaHold{reservation: "x", home: 1, step: 1, lines: []ReserveLine{line(w.b, 1)}},
		sagaHold{reservation: "x", home: -1, step: 1, lines: []ReserveLine{line(w.b, 1)}},
		sagaStep{reservation: "x", home: 7, step: 2, action: SagaRelease},
		sagaAck{reservation: "x", step: 1, from: 2, held: held},
		sagaAck{reservation: "x", step: 1, from: 0, held: held},
	} {
		p := 1
		if _, ok := cmd.(sagaAck); ok {
			p = 0
		}
		d, err := w.states[p].Decide(cmd, w.now)
		if err != nil || len(d.Events) != 0 || len(d.Messages) != 0 {
			t.Fatalf("%s at %d: %+v, %v", describe(cmd), p, d, err)
		}
	}
}
