package stockd

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkDecideReserve decides one-line reservations of a SKU stocked at
// three locations, the hot path the stock signals sit on: "decide" decides
// against an unchanging State (what the signals add is their before/after
// comparison), "apply" applies every decision too. Neither crosses a line.
func BenchmarkDecideReserve(b *testing.B) {
	setup := func(b *testing.B) *State {
		s := NewState(0, 1, DefaultLimits)
		s.SetLocations(Locations{
			"w1": {ID: "w1", Kind: KindWarehouse, Priority: 1},
			"w2": {ID: "w2", Kind: KindWarehouse, Priority: 2},
			"s1": {ID: "s1", Kind: KindStore, Priority: 3},
		})
		for i, cmd := range []Command{
			ConfigureSKU{SKU: "hot", SafetyStock: 2, LowStockThreshold: 10},
			recv("r1", "hot", "w1", 1_000_000_000), recv("r2", "hot", "w2", 1000), recv("r3", "hot", "s1", 1000),
		} {
			d, err := s.Decide(cmd, t0)
			if err != nil {
				b.Fatalf("setup %d: %v", i, err)
			}
			for _, e := range d.Events {
				if err := s.Apply(e); err != nil {
					b.Fatal(err)
				}
			}
		}
		return s
	}
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = "c" + strconv.Itoa(i)
	}
	b.Run("decide", func(b *testing.B) {
		s := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.Decide(Reserve{ID: ids[i&(len(ids)-1)], TTL: time.Minute, Lines: []ReserveLine{{SKU: "hot", Quantity: 1}}}, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("apply", func(b *testing.B) {
		s := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			d, err := s.Decide(Reserve{ID: "c" + strconv.Itoa(i), TTL: time.Minute, Lines: []ReserveLine{{SKU: "hot", Quantity: 1}}}, t0)
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range d.Events {
				if err := s.Apply(e); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkSignals measures what the stock signals add to deciding a
// one-line reservation that crosses no line: the before/after comparison
// alone.
func BenchmarkSignals(b *testing.B) {
	s := NewState(0, 1, DefaultLimits)
	s.SetLocations(Locations{"w1": {ID: "w1"}, "w2": {ID: "w2"}, "s1": {ID: "s1"}})
	for _, cmd := range []Command{
		ConfigureSKU{SKU: "hot", SafetyStock: 2, LowStockThreshold: 10},
		recv("r1", "hot", "w1", 1_000_000), recv("r2", "hot", "w2", 1000), recv("r3", "hot", "s1", 1000),
	} {
		d, err := s.Decide(cmd, t0)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range d.Events {
			if err := s.Apply(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	d, err := s.Decide(reserve("c1", line("hot", 1)), t0)
	if err != nil || len(d.Events) != 1 {
		b.Fatalf("%+v, %v", d, err)
	}
	x := &decision{s: s, now: t0, d: d}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.signals()
	}
	if len(x.d.Events) != 1 {
		b.Fatalf("signals: %+v", x.d.Events)
	}
}
