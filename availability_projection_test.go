package stockd

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The availability fold is checked against the State it stands in for: the
// logs of simulated sequences (every kind of command, carts spanning
// partitions, failed and aborted sagas, expiries, crashes, backorders, lots)
// are folded into both, and after every event the answers the read model
// gives must be the same: availability of every SKU, the SKU listing, each
// customer's held reservations and every held reservation. Along the way the
// fold is encoded and decoded (and goes on from the decoded copy), and at
// decision boundaries it is also rebuilt from the State (AvailabilityOf), as
// a read model starting from an engine snapshot does.

var availSequences = flag.Int("availability.n", 0, "simulated sequences in TestAvailabilityMatchesState (default 300, 100 with -short)")

func TestAvailabilityMatchesState(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 100
	}
	if *availSequences > 0 {
		n = *availSequences
	}
	var (
		next   atomic.Int64
		events atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		first  error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				seed := uint64(i)
				parts, logs, err := simulatedLogs(t, seed, 4*defaultSimSteps)
				if err == nil {
					for p, log := range logs {
						events.Add(int64(len(log)))
						if err = diffFold(p, parts, log, seed); err != nil {
							break
						}
					}
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("seed %d: %w", seed, err)
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
	t.Logf("%d sequences, %d events compared", n, events.Load())
}

// simulatedLogs runs one simulated sequence and returns its final logs.
func simulatedLogs(tb testing.TB, seed uint64, steps int) (parts int, logs [][]Event, err error) {
	s := newSim(tb, seed)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("simulation failed: %v", r)
		}
	}()
	s.run(steps)
	return s.c.p, s.c.logs, nil
}

// diffFold folds a partition's log into a State and an AvailabilityState and
// compares them after every event.
func diffFold(p, parts int, log []Event, seed uint64) error {
	st := NewState(p, parts, DefaultLimits)
	av := NewAvailabilityState(p, parts)
	for i, e := range log {
		if err := st.Apply(e); err != nil {
			return fmt.Errorf("State: %v", err)
		}
		if err := av.Apply(e); err != nil {
			return fmt.Errorf("AvailabilityState: %v", err)
		}
		if d := diffAvailability(st, av); d != "" {
			return fmt.Errorf("partition %d after %s (%s): %s", p, e.ID(), e.Type(), d)
		}
		// Events of one decision share its time: where the time changes,
		// a decision ended, and a snapshot could have been taken.
		if i == len(log)-1 || !log[i+1].Time.Equal(e.Time) {
			if d := diffAvailability(st, AvailabilityOf(st)); d != "" {
				return fmt.Errorf("partition %d: AvailabilityOf the State at %s: %s", p, e.ID(), d)
			}
			// Between decisions, a reservation that is not held (or
			// being held) holds nothing: the fold keeps only the live
			// ones, however many the State remembers.
			live := 0
			for _, r := range st.reservations {
				if r.status == StatusHeld || r.status == StatusPending {
					live++
				}
			}
			if av.Live() != live {
				return fmt.Errorf("partition %d at %s: %d reservations kept, %d live in the State (of %d)", p, e.ID(), av.Live(), live, len(st.reservations))
			}
		}
		if (uint64(i)+seed)%7 == 0 {
			dec, err := DecodeAvailability(EncodeAvailability(av))
			if err != nil {
				return fmt.Errorf("partition %d at %s: decode: %v", p, e.ID(), err)
			}
			if d := diffAvailability(st, dec); d != "" {
				return fmt.Errorf("partition %d at %s: decoded: %s", p, e.ID(), d)
			}
			av = dec
		}
	}
	return nil
}

// diffAvailability describes the first answer of av that differs from st's,
// or returns "".
func diffAvailability(st *State, av *AvailabilityState) string {
	if av.Head() != st.Head() || !av.Clock().Equal(st.Clock()) || av.Partition() != st.Partition() {
		return fmt.Sprintf("at %d/%v of partition %d, State at %d/%v of %d", av.Head(), av.Clock(), av.Partition(), st.Head(), st.Clock(), st.Partition())
	}
	skus := st.SKUs()
	if got := av.SKUs(); !slices.Equal(got, skus) {
		return fmt.Sprintf("SKUs %v, State %v", got, skus)
	}
	for _, sku := range append(skus, "no-such-sku") {
		want, wok := st.StockLevels(sku)
		got, gok := av.Availability(sku)
		if wok != gok {
			return fmt.Sprintf("%s: known %v, State %v", sku, gok, wok)
		}
		w := AvailabilityItem{SKU: sku, Available: want.Available, OnHand: want.OnHand, Reserved: want.Reserved, Locations: []LocationAvailability{}}
		for _, l := range want.Locations {
			w.Locations = append(w.Locations, LocationAvailability{Location: l.Location, Available: l.Available, OnHand: l.OnHand, Reserved: l.Reserved})
		}
		if !reflect.DeepEqual(got, w) {
			return fmt.Sprintf("%s: %+v, State %+v", sku, got, w)
		}
	}
	for _, q := range [][2]string{{"", ""}, {"", "A"}, {"B", ""}, {"C", "C"}} {
		if got, want := av.SKUPage(q[0], q[1], 2), st.SKUPage(q[0], q[1], 2); !slices.Equal(got, want) {
			return fmt.Sprintf("SKUPage%v = %v, State %v", q, got, want)
		}
	}
	// Held reservations, one by one and by customer.
	byCustomer := map[string][]Reservation{}
	held := 0
	for id := range st.HomeReservations() {
		want, _ := st.ReservationView(id)
		got, ok := av.HeldReservation(id)
		if want.Status != StatusHeld {
			if ok {
				return fmt.Sprintf("reservation %s is %s, but listed as held: %+v", id, want.Status, got)
			}
			continue
		}
		held++
		// The read model lists a cart's held lines, which hold its
		// bundles' components; its bundle lines are read from the
		// cart itself (GET /v1/reservations/{id}).
		want.Bundles = nil
		if !ok || !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("held reservation %s: %+v (%v), State %+v", id, got, ok, want)
		}
		if c, created, ok := st.ReservationCustomer(id); !ok || c != want.Customer || !created.Equal(want.CreatedAt) {
			return fmt.Sprintf("ReservationCustomer(%s) = %s %v %v", id, c, created, ok)
		}
		byCustomer[want.Customer] = append(byCustomer[want.Customer], want)
	}
	if av.Held() != held || st.Held() != held {
		return fmt.Sprintf("%d held, State %d (counted %d)", av.Held(), st.Held(), held)
	}
	for c, want := range byCustomer {
		if c == "" {
			continue
		}
		slices.SortFunc(want, func(a, b Reservation) int {
			return CustomerCursor{b.CreatedAt, b.ID}.Compare(CustomerCursor{a.CreatedAt, a.ID})
		})
		got := slices.Collect(av.CustomerHeld(c, nil))
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("customer %s: %v, State %v", c, got, want)
		}
		cur := CustomerCursor{want[0].CreatedAt, want[0].ID}
		if got := slices.Collect(av.CustomerHeld(c, &cur)); !reflect.DeepEqual(got, want[1:]) && len(want) > 1 {
			return fmt.Sprintf("customer %s after %v: %v, State %v", c, cur, got, want[1:])
		}
	}
	return ""
}

// unknownData is event data of a type the availability fold does not know,
// such as one added after it was written.
type unknownData struct{}

func (unknownData) EventType() EventType { return 250 }

// TestAvailabilityIgnoresUnknownEvents checks that an event of a type the
// fold does not know moves its position and clock (and its SKU's version)
// and changes nothing else, where State.Apply refuses it.
func TestAvailabilityIgnoresUnknownEvents(t *testing.T) {
	c := newCluster(t, 1, simStart)
	c.do(ConfigureLocation{ID: "w1", Kind: KindWarehouse, Priority: 1})
	c.do(recv("r1", "A", "w1", 10))
	c.do(Reserve{ID: "cart", Customer: "c-9", TTL: time.Hour, Lines: []ReserveLine{line("A", 3)}})
	av := NewAvailabilityState(0, 1)
	for _, e := range c.logs[0] {
		if err := av.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := av.Availability("A")
	head := av.Head()
	later := simStart.Add(time.Hour)
	for i, sku := range []string{"", "A"} {
		e := Event{Partition: 0, Position: head + uint64(i) + 1, SKU: sku, Time: later, Data: unknownData{}}
		if sku != "" {
			e.Version = c.states[0].skus[sku].version + 1
		}
		if err := av.Apply(e); err != nil {
			t.Fatalf("unknown event %d: %v", i, err)
		}
	}
	after, _ := av.Availability("A")
	if !reflect.DeepEqual(before, after) || av.Head() != head+2 || !av.Clock().Equal(later) || av.Held() != 1 {
		t.Errorf("after unknown events: %+v at %d (%v), %d held; before %+v at %d", after, av.Head(), av.Clock(), av.Held(), before, head)
	}
	// Out of order is still refused.
	if err := av.Apply(Event{Partition: 0, Position: head + 5, Data: unknownData{}}); err == nil {
		t.Error("an event out of position order was applied")
	}
}

// TestAvailabilityDecodeRefusesGarbage checks that the decoder refuses what
// EncodeAvailability did not write: an encoded State, truncations, flipped
// bits, and a well-formed checksum over nonsense.
func TestAvailabilityDecodeRefusesGarbage(t *testing.T) {
	c := newCluster(t, 2, simStart)
	c.do(ConfigureLocation{ID: "w1", Kind: KindWarehouse, Priority: 1})
	c.do(recv("r1", "A", "w1", 10))
	c.do(recv("r2", "B", "w1", 10))
	c.do(Reserve{ID: "cart", Customer: "c-9", TTL: time.Hour, Lines: []ReserveLine{line("A", 3), line("B", 2)}})
	c.quiesce()
	p := PartitionOf("A", 2)
	av := NewAvailabilityState(p, 2)
	for _, e := range c.logs[p] {
		if err := av.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	good := EncodeAvailability(av)
	if _, err := DecodeAvailability(good); err != nil {
		t.Fatal(err)
	}
	bad := [][]byte{nil, {}, []byte("SDAV"), EncodeState(c.states[p]), []byte("not an availability")}
	for i := range good {
		bad = append(bad, good[:i])
		flipped := bytes.Clone(good)
		flipped[i] ^= 0x10
		bad = append(bad, flipped)
	}
	// Nonsense with a valid checksum: the decoder itself must refuse it.
	for _, body := range [][]byte{
		append(bytes.Clone(good[:len(good)-4]), 0),         // trailing byte
		append([]byte("SDAV\x02"), good[5:len(good)-4]...), // unknown format
		[]byte("SDAV\x01\x02\x02"),                         // partition 1 of 1
		[]byte("SDAV\x01\x00\x02\x00\x00\xff\xff\x01"),     // count beyond input
	} {
		bad = append(bad, withChecksum(body))
	}
	for i, b := range bad {
		if a, err := DecodeAvailability(b); err == nil || !errors.Is(err, ErrCorrupt) {
			t.Errorf("garbage %d (%q) decoded: %v, %v", i, b, a, err)
		}
	}
	if IsAvailabilityEncoding(EncodeState(c.states[p])) || !IsAvailabilityEncoding(good) {
		t.Error("IsAvailabilityEncoding does not tell the encodings apart")
	}
}

func withChecksum(body []byte) []byte { return appendChecksum(bytes.Clone(body)) }
