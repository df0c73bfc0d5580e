package stockd

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestSKUReplayerAgreesWithWholeReplay folds random histories (those of the
// simulation, with sagas, expiries, lots, transfers and crashes) page by page,
// in random page sizes and compacting after every page, and checks that every
// SKU's view at random points is the one a fold of the whole history up to
// that point gives, and at the end the one of the live partition.
func TestSKUReplayerAgreesWithWholeReplay(t *testing.T) {
	defer func(n int) { compactEvery = n }(compactEvery)
	compactEvery = 1
	seeds := uint64(40)
	if testing.Short() {
		seeds = 10
	}
	checked := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		s := newSim(t, seed)
		s.run(400)
		rng := rand.New(rand.NewPCG(seed, 7))
		for p := range s.c.p {
			log := s.c.logs[p][:s.c.durable[p]]
			for _, sku := range s.skus {
				if PartitionOf(sku, s.c.p) != p {
					continue
				}
				var events []Event
				for _, e := range log {
					if e.SKU == sku {
						events = append(events, e)
					}
				}
				cuts := []int{len(events)}
				for range 6 {
					cuts = append(cuts, rng.IntN(len(events)+1))
				}
				for _, cut := range cuts {
					// The whole fold, never compacted.
					compactEvery = 1 << 62
					want, wantOK, err := ReplaySKU(sku, p, s.c.p, s.c.limits, events[:cut])
					compactEvery = 1
					if err != nil {
						t.Fatal(err)
					}
					r := NewSKUReplayer(sku, p, s.c.p, s.c.limits)
					for i := 0; i < cut; {
						n := min(1+rng.IntN(40), cut-i)
						if err := r.Apply(events[i : i+n]); err != nil {
							t.Fatalf("seed %d, %s: %v", seed, sku, err)
						}
						if v := r.Version(); v != events[i+n-1].Version {
							t.Fatalf("seed %d, %s: version %d after a page ending at %d", seed, sku, v, events[i+n-1].Version)
						}
						i += n
					}
					got, gotOK := r.View()
					if gotOK != wantOK || !reflect.DeepEqual(got, want) {
						t.Fatalf("seed %d, %s after %d of %d events:\npaged %v %+v\nwhole %v %+v", seed, sku, cut, len(events), gotOK, got, wantOK, want)
					}
					if cut > 0 && (got.Position != events[cut-1].Position || !got.AsOf.Equal(events[cut-1].Time)) {
						t.Fatalf("seed %d, %s: view at position %d, %v; the last event is at %d, %v", seed, sku, got.Position, got.AsOf, events[cut-1].Position, events[cut-1].Time)
					}
					checked++
					if cut == len(events) && wantOK {
						live, _ := s.c.states[p].SKUView(sku)
						live.Position, live.AsOf = got.Position, got.AsOf
						if !reflect.DeepEqual(got, live) {
							t.Fatalf("seed %d, %s: replayed %+v\nlive %+v", seed, sku, got, live)
						}
					}
				}
			}
		}
	}
	t.Logf("%d views checked", checked)
}

// TestSKUReplayerForgetsSettledReservations: a long history of reservations
// that are each committed or released leaves the replayer holding only what
// is still held.
func TestSKUReplayerForgetsSettledReservations(t *testing.T) {
	st := NewState(0, 1, DefaultLimits)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var events []Event
	do := func(c Command) {
		d, err := st.Decide(c, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range d.Events {
			if err := st.Apply(e); err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
		}
	}
	// Locations live in their own events, not the SKU's history.
	do(ConfigureLocation{ID: "w1", Kind: KindWarehouse, Priority: 1})
	events = events[:0]
	do(ReceiveStock{ID: "r", SKU: "A", Location: "w1", Quantity: 1_000_000})
	for i := range 30_000 {
		id := "c-" + string(rune('a'+i%26)) + time.Duration(i).String()
		do(Reserve{ID: id, TTL: time.Hour, Lines: []ReserveLine{{SKU: "A", Quantity: 1}}})
		if i%10 != 0 {
			do(CommitReservation{ID: id})
		}
	}
	r := NewSKUReplayer("A", 0, 1, DefaultLimits)
	for i := 0; i < len(events); i += 1000 {
		if err := r.Apply(events[i:min(i+1000, len(events))]); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.s.reservations); n > 3_000+2*compactEvery {
		t.Errorf("the replayer holds %d reservations; 3,000 are held", n)
	}
	v, _ := r.View()
	want, _ := st.SKUView("A")
	want.Position, want.AsOf = v.Position, v.AsOf
	if !reflect.DeepEqual(v, want) {
		t.Errorf("replayed %+v, live %+v", v, want)
	}
}
