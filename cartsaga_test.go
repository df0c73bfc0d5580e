package stockd

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// outcome returns the error of the latest resolution of reservation id,
// failing the test if it has none.
func (w *sagaWorld) outcome(t *testing.T, id string) error {
	t.Helper()
	r, ok := w.lastResolution(id)
	if !ok {
		t.Fatalf("%s: no resolution", id)
	}
	return r.Err
}

// resolutions returns how many resolutions reservation id has had.
func (w *sagaWorld) resolutions(id string) int { return len(w.resolved[id]) }

// wantParticipantLines checks the lines partition p holds for cart id of
// another home: SKU, quantity and allocations, in order.
func wantParticipantLines(t *testing.T, c *cluster, p int, id string, want ...ReservationLine) {
	t.Helper()
	r, ok := c.participantRes(p, id)
	var got []ReservationLine
	if ok && r.status == StatusHeld {
		got = r.liveLines(p)
	}
	if !reflect.DeepEqual(nonNil(got), nonNil(want)) {
		t.Fatalf("partition %d holds %+v of %s, want %+v", p, got, id, want)
	}
}

// rl is a reservation line held at w1.
func rl(sku string, q int64) ReservationLine {
	return ReservationLine{SKU: sku, Quantity: q, Held: q, Allocations: []Allocation{{"w1", q}}}
}

func TestCartChangeGrowsAParticipantsLineThroughTheSaga(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	exp := t0.Add(10 * time.Minute)
	_, d, err := w.do(change("c1", line(w.a, 2), line(w.b, 5)))
	if err != nil || d.Wait != "c1" || len(d.Messages) != 1 || d.Messages[0].To != 1 {
		t.Fatalf("change: %+v, %v", d, err)
	}
	compareEvents(t, "home grow", d.Events, []Event{
		ev("", SagaChangeStarted{
			Reservation: "c1", Step: 2, Participants: []int{1}, Lines: []ReserveLine{line(w.a, 2), line(w.b, 5)},
			ExpiresAt: exp, Previous: []ReservationLine{rl(w.a, 2), rl(w.b, 3)}, Local: []ReservationLine{rl(w.a, 2)},
		}),
	})
	before := w.logLens()
	w.deliver(0, 1)
	compareEvents(t, "participant grow", w.logs[1][before[1]:], []Event{
		ev(w.b, ReservationChanged{
			Reservation: "c1", Quantity: 5, Allocations: []Allocation{{"w1", 5}},
			PreviousQuantity: 3, PreviousAllocations: []Allocation{{"w1", 3}}, ExpiresAt: exp,
		}),
		ev("", SagaChangeGrown{Reservation: "c1", Step: 2, Lines: []ReservationLine{rl(w.b, 5)}}),
	})
	// The union is held while the change is in flight.
	wantLoc(t, w.cluster, w.b, "w1", 10, 5, 5, 0, 0)
	before = w.logLens()
	w.deliver(1, 0)
	compareEvents(t, "home decides", w.logs[0][before[0]:], []Event{
		ev("", SagaChangeAcked{Reservation: "c1", Step: 2, From: 1, Lines: []ReservationLine{rl(w.b, 5)}}),
		ev("", SagaChangeDecided{
			Reservation: "c1", Step: 3, Made: true, Participants: []int{1},
			Lines: []ReservationLine{rl(w.a, 2), rl(w.b, 5)}, ExpiresAt: exp,
		}),
	})
	// The client is answered once every partition holds the outcome.
	if n := w.resolutions("c1"); n != 1 {
		t.Fatalf("answered before the trim: %d resolutions", n)
	}
	before = w.logLens()
	w.deliver(0, 1)
	compareEvents(t, "participant trim", w.logs[1][before[1]:], []Event{
		ev("", SagaChangeTrimmed{Reservation: "c1", Step: 3, ExpiresAt: exp}),
	})
	w.deliver(1, 0)
	if err := w.outcome(t, "c1"); err != nil {
		t.Fatalf("outcome: %v", err)
	}
	wantLines(t, w.cluster, "c1", line(w.a, 2), line(w.b, 5))
	wantParticipantLines(t, w.cluster, 1, "c1", rl(w.b, 5))
	mustDo(t, w.cluster, CommitReservation{ID: "c1"})
	w.quiesce()
	wantLoc(t, w.cluster, w.a, "w1", 8, 0, 8, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 5, 0, 5, 0, 0)
}

func TestCartChangeInFlightMakesOtherCommandsOnTheCartWait(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	ch := change("c1", line(w.a, 2), line(w.b, 5))
	mustDo(t, w.cluster, ch)
	for _, cmd := range []Command{
		CommitReservation{ID: "c1"}, ReleaseReservation{ID: "c1"}, ExtendReservation{ID: "c1", TTL: time.Hour},
		change("c1", line(w.a, 1), line(w.b, 5)), change("c1", line(w.a, 3)),
	} {
		if _, d, err := w.do(cmd); !IsCode(err, CodeReservationBusy) || len(d.Events) > 0 {
			t.Fatalf("%T%+v during a change: %+v, %v", cmd, cmd, d, err)
		}
	}
	if !CodeReservationBusy.Retryable() {
		t.Fatal("reservation_busy is not retryable")
	}
	// The same change sent again waits for the first one's outcome.
	if _, d, err := w.do(ch); err != nil || !d.Replay || d.Wait != "c1" || len(d.Events) > 0 {
		t.Fatalf("the same change again: %+v, %v", d, err)
	}
	w.quiesce()
	if err := w.outcome(t, "c1"); err != nil {
		t.Fatalf("outcome: %v", err)
	}
	mustDo(t, w.cluster, ReleaseReservation{ID: "c1"})
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
}

func TestCartChangeRefusedAtOneParticipantLeavesEveryPartitionWithItsOldLinesExactly(t *testing.T) {
	w := newSagaWorld(t, 3, 1)
	mustDo(t, w.cluster, warehouse("w2", 2, ""))
	mustDo(t, w.cluster, recv("ra2", w.a, "w2", 10))
	mustDo(t, w.cluster, recv("rb2", w.b, "w2", 10))
	mustDo(t, w.cluster, reserve("c1", line(w.a, 2), line(w.b, 3), line(w.c, 1)))
	w.quiesce()
	// A moves to w2 and grows, B grows, C cannot: C has 1, held by c1.
	_, d, err := w.do(change("c1", lineAt(w.a, 4, "w2"), line(w.b, 6), line(w.c, 2)))
	if err != nil || d.Wait != "c1" || len(d.Messages) != 2 {
		t.Fatalf("change: %+v, %v", d, err)
	}
	// The home holds the union of A's old and new allocations meanwhile.
	wantLoc(t, w.cluster, w.a, "w1", 10, 2, 8, 0, 0)
	wantLoc(t, w.cluster, w.a, "w2", 10, 4, 6, 0, 0)
	w.quiesce()
	err = w.outcome(t, "c1")
	var e *Error
	if !asError(err, &e) || e.Code != CodeInsufficientStock || !reflect.DeepEqual(e.Lines, []Shortfall{{SKU: w.c, Requested: 2, Available: 1}}) {
		t.Fatalf("outcome = %v", err)
	}
	r := wantRes(t, w.cluster, "c1", StatusHeld)
	want := []ReservationLine{rl(w.a, 2), rl(w.b, 3), rl(w.c, 1)}
	if !reflect.DeepEqual(r.Lines, want) {
		t.Fatalf("lines = %+v, want %+v", r.Lines, want)
	}
	wantLoc(t, w.cluster, w.a, "w1", 10, 2, 8, 0, 0)
	wantLoc(t, w.cluster, w.a, "w2", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
	wantLoc(t, w.cluster, w.b, "w2", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.c, "w1", 1, 1, 0, 0, 0)
	wantParticipantLines(t, w.cluster, 1, "c1", rl(w.b, 3))
	wantParticipantLines(t, w.cluster, 2, "c1", rl(w.c, 1))
	// The refused change left the cart as it was: it commits as held.
	mustDo(t, w.cluster, CommitReservation{ID: "c1"})
	w.quiesce()
	wantLoc(t, w.cluster, w.b, "w1", 7, 0, 7, 0, 0)
	wantLoc(t, w.cluster, w.c, "w1", 0, 0, 0, 0, 0)
}

func TestCartChangeShortAtTheHomeIsRefusedAtOnceWithoutAskingParticipants(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	_, d, err := w.do(change("c1", line(w.a, 11), line(w.b, 4)))
	if !IsCode(err, CodeInsufficientStock) || len(d.Messages) != 0 || w.inFlight() != 0 {
		t.Fatalf("change: %+v, %v", d, err)
	}
	wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
}

func TestCartChangeAddsALineInAPartitionTheCartDidNotSpan(t *testing.T) {
	t.Run("a cart held in one partition starts its saga", func(t *testing.T) {
		w := newSagaWorld(t, 2, 0)
		mustDo(t, w.cluster, reserve("c1", line(w.a, 2)))
		_, d, err := w.do(change("c1", line(w.a, 2), line(w.b, 4)))
		if err != nil || d.Wait != "c1" {
			t.Fatalf("change: %+v, %v", d, err)
		}
		w.quiesce()
		if err := w.outcome(t, "c1"); err != nil {
			t.Fatalf("outcome: %v", err)
		}
		wantLines(t, w.cluster, "c1", line(w.a, 2), line(w.b, 4))
		wantParticipantLines(t, w.cluster, 1, "c1", rl(w.b, 4))
		wantLoc(t, w.cluster, w.b, "w1", 10, 4, 6, 0, 0)
		// The joined partition takes part in what follows: the commit.
		mustDo(t, w.cluster, CommitReservation{ID: "c1"})
		w.quiesce()
		wantLoc(t, w.cluster, w.b, "w1", 6, 0, 6, 0, 0)
		wantRes(t, w.cluster, "c1", StatusCommitted)
	})
	t.Run("a cart spanning partitions gains a third", func(t *testing.T) {
		w := newSagaWorld(t, 3, 5)
		w.heldCart(t)
		mustDo(t, w.cluster, change("c1", line(w.a, 2), line(w.b, 3), line(w.c, 5)))
		w.quiesce()
		if err := w.outcome(t, "c1"); err != nil {
			t.Fatalf("outcome: %v", err)
		}
		wantParticipantLines(t, w.cluster, 2, "c1", rl(w.c, 5))
		mustDo(t, w.cluster, ReleaseReservation{ID: "c1"})
		w.quiesce()
		wantLoc(t, w.cluster, w.c, "w1", 5, 0, 5, 0, 0)
		wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	})
	t.Run("a joining partition short of stock refuses the change and holds nothing", func(t *testing.T) {
		w := newSagaWorld(t, 3, 1)
		w.heldCart(t)
		mustDo(t, w.cluster, change("c1", line(w.a, 3), line(w.b, 4), line(w.c, 2)))
		w.quiesce()
		if err := w.outcome(t, "c1"); !IsCode(err, CodeInsufficientStock) {
			t.Fatalf("outcome: %v", err)
		}
		wantLines(t, w.cluster, "c1", line(w.a, 2), line(w.b, 3))
		wantLoc(t, w.cluster, w.a, "w1", 10, 2, 8, 0, 0)
		wantLoc(t, w.cluster, w.b, "w1", 10, 3, 7, 0, 0)
		wantLoc(t, w.cluster, w.c, "w1", 1, 0, 1, 0, 0)
		if r, ok := w.participantRes(2, "c1"); ok && r.status == StatusHeld {
			t.Fatalf("the refused partition holds a part: %+v", r)
		}
	})
}

func TestCartChangeRemovesEveryLineOfAParticipant(t *testing.T) {
	t.Run("the participant leaves the cart", func(t *testing.T) {
		w := newSagaWorld(t, 2, 0)
		w.heldCart(t)
		mustDo(t, w.cluster, change("c1", line(w.a, 2)))
		// Nothing grows: the participant is told to trim at once.
		w.quiesce()
		if err := w.outcome(t, "c1"); err != nil {
			t.Fatalf("outcome: %v", err)
		}
		wantLines(t, w.cluster, "c1", line(w.a, 2))
		wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
		if r, ok := w.participantRes(1, "c1"); !ok || r.status != StatusReleased || len(r.lines) != 0 {
			t.Fatalf("participant's part = %+v", r)
		}
		// The cart is held in its home alone now: a commit asks nobody.
		_, d, err := w.do(CommitReservation{ID: "c1"})
		if err != nil || len(d.Messages) != 0 || d.Wait != "" {
			t.Fatalf("commit: %+v, %v", d, err)
		}
		wantLoc(t, w.cluster, w.a, "w1", 8, 0, 8, 0, 0)
	})
	t.Run("the home's own lines go and the cart lives on in another partition", func(t *testing.T) {
		w := newSagaWorld(t, 2, 0)
		w.heldCart(t)
		mustDo(t, w.cluster, change("c1", line(w.b, 3)))
		w.quiesce()
		if err := w.outcome(t, "c1"); err != nil {
			t.Fatalf("outcome: %v", err)
		}
		wantLines(t, w.cluster, "c1", line(w.b, 3))
		wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
		mustDo(t, w.cluster, CommitReservation{ID: "c1"})
		w.quiesce()
		wantLoc(t, w.cluster, w.b, "w1", 7, 0, 7, 0, 0)
		wantRes(t, w.cluster, "c1", StatusCommitted)
	})
	t.Run("a partition that left joins again in a later change", func(t *testing.T) {
		w := newSagaWorld(t, 2, 0)
		w.heldCart(t)
		mustDo(t, w.cluster, change("c1", line(w.a, 2)))
		w.quiesce()
		mustDo(t, w.cluster, change("c1", line(w.a, 2), line(w.b, 1)))
		w.quiesce()
		if err := w.outcome(t, "c1"); err != nil {
			t.Fatalf("outcome: %v", err)
		}
		wantParticipantLines(t, w.cluster, 1, "c1", rl(w.b, 1))
		wantLoc(t, w.cluster, w.b, "w1", 10, 1, 9, 0, 0)
	})
}

func TestCartChangeRepeatedLateAndLostMessagesChangeNothing(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	w.heldCart(t)
	mustDo(t, w.cluster, change("c1", line(w.a, 2), line(w.b, 5)))
	grow := w.drop(0, 1)
	// Lost: the home asks again once the step is overdue.
	if msgs := w.overdue(0, 0); len(msgs) != 1 || !reflect.DeepEqual(msgs[0].Command, grow) {
		t.Fatalf("overdue = %+v, want the grow again %+v", msgs, grow)
	}
	w.deliver(0, 1)
	// Repeated: answered as before, nothing more held.
	before := w.logLens()
	w.inject(0, 1, grow)
	w.deliver(0, 1)
	if !slices.Equal(w.logLens(), before) {
		t.Fatalf("a repeated grow wrote events")
	}
	wantLoc(t, w.cluster, w.b, "w1", 10, 5, 5, 0, 0)
	// Both answers reach the home; the second changes nothing.
	w.deliver(1, 0)
	before = w.logLens()
	w.deliver(1, 0)
	if !slices.Equal(w.logLens(), before) {
		t.Fatalf("a repeated answer wrote events")
	}
	trim := w.drop(0, 1)
	w.overdue(0, 0)
	w.deliver(0, 1)
	w.deliver(1, 0)
	if err := w.outcome(t, "c1"); err != nil {
		t.Fatalf("outcome: %v", err)
	}
	// Late copies of both steps, after the change settled and another
	// moved the line again, change nothing.
	mustDo(t, w.cluster, change("c1", line(w.a, 2), line(w.b, 1)))
	w.quiesce()
	before = w.logLens()
	w.inject(0, 1, trim)
	w.inject(0, 1, grow)
	w.quiesce()
	if !slices.Equal(w.logLens(), before) {
		t.Fatalf("late steps wrote events: %v then %v", before, w.logLens())
	}
	wantParticipantLines(t, w.cluster, 1, "c1", rl(w.b, 1))
	wantLoc(t, w.cluster, w.b, "w1", 10, 1, 9, 0, 0)
	// Reordered: a trim overtaken by a late grow of the same change.
	mustDo(t, w.cluster, change("c1", line(w.a, 2), line(w.b, 4)))
	grow = w.drop(0, 1)
	w.inject(0, 1, grow)
	w.deliver(0, 1)
	w.deliver(1, 0)
	trim = w.drop(0, 1)
	w.inject(0, 1, trim)
	w.inject(0, 1, grow)
	w.quiesce()
	wantParticipantLines(t, w.cluster, 1, "c1", rl(w.b, 4))
	wantLoc(t, w.cluster, w.b, "w1", 10, 4, 6, 0, 0)
}

func TestCartChangeRacingExpiryReleasesEverythingIncludingTheGrowth(t *testing.T) {
	for name, mid := range map[string]func(w *sagaWorld){
		"expiry during the grow": func(w *sagaWorld) { w.deliver(0, 1) },
		"expiry during the trim": func(w *sagaWorld) {
			w.deliver(0, 1)
			w.deliver(0, 2)
			w.deliver(1, 0)
			w.deliver(2, 0)
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newSagaWorld(t, 3, 5)
			w.heldCart(t) // deadline t0+10m
			// A new deadline would be the change's once decided: the
			// old one holds until then.
			mustDo(t, w.cluster, change("c1", line(w.a, 4), line(w.b, 6), line(w.c, 2)))
			mid(w)
			w.now = t0.Add(10 * time.Minute)
			w.tickAll()
			if err := w.outcome(t, "c1"); !IsCode(err, CodeNotHeld) {
				t.Fatalf("outcome: %v", err)
			}
			w.quiesce()
			wantRes(t, w.cluster, "c1", StatusExpired)
			wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
			wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
			wantLoc(t, w.cluster, w.c, "w1", 5, 0, 5, 0, 0)
		})
	}
}

func TestCartChangeInterruptedByACrashFinishesFromTheLog(t *testing.T) {
	for name, mid := range map[string]func(w *sagaWorld){
		"before any participant answered": func(w *sagaWorld) {},
		"after the outcome was decided": func(w *sagaWorld) {
			w.deliver(0, 1)
			w.deliver(1, 0)
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newSagaWorld(t, 2, 0)
			w.heldCart(t)
			mustDo(t, w.cluster, change("c1", line(w.a, 1), line(w.b, 6)))
			mid(w)
			w.flushAll()
			w.crash(nil)
			w.quiesce()
			wantLines(t, w.cluster, "c1", line(w.a, 1), line(w.b, 6))
			wantParticipantLines(t, w.cluster, 1, "c1", rl(w.b, 6))
			wantLoc(t, w.cluster, w.a, "w1", 10, 1, 9, 0, 0)
			wantLoc(t, w.cluster, w.b, "w1", 10, 6, 4, 0, 0)
			if _, _, err := w.do(CommitReservation{ID: "c1"}); err != nil {
				t.Fatalf("commit after the change finished: %v", err)
			}
		})
	}
}

func TestMessageFormatV6CarriesTheStepsOfAChange(t *testing.T) {
	for _, m := range []Message{
		{To: 1, Command: sagaGrow{reservation: "c1", home: 0, step: 4, attempt: 9, lines: []ReserveLine{{SKU: "B", Quantity: 2, Locations: []string{"w1"}, Split: true}}, region: "eu", expiresAt: t0, customer: "k"}},
		{To: 2, Command: sagaTrim{reservation: "c1", home: 0, step: 5, attempt: 9, lines: []ReservationLine{rl("B", 2)}, expiresAt: t0}},
	} {
		b, err := EncodeMessage(m)
		if err != nil || b[0] != messageFormatV6 {
			t.Fatalf("encode %+v: %v", m, err)
		}
		got, err := DecodeMessage(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip of %+v: %+v, %v", m, got, err)
		}
		// The kinds are new in format 6: an older format naming them is
		// damaged.
		b[0] = messageFormatV2
		if _, err := DecodeMessage(b); err == nil {
			t.Fatalf("a format 2 message of kind %d decoded", b[2])
		}
	}
}
