package stockd

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// sampleData returns one value of every EventData type with every field set.
func sampleData() []EventData {
	exp := t0.Add(time.Hour)
	lots := []LotQty{lq("w1", "L1", bb15, 2), lq("w1", "", "", 1)}
	allocs := []Allocation{{"w1", 3}, {"w2", 2}}
	pre := []PreorderHold{{ExpectedReceipt: "po-1", Location: "w1", Quantity: 4}}
	return []EventData{
		StockReceived{Location: "w1", Quantity: 10, Lot: "L1", BestBefore: bb15, Fingerprint: 0xdeadbeefcafef00d},
		StockAdjusted{Location: "w1", Delta: -3, Reason: ReasonDamaged, Lots: lots, Fingerprint: 7},
		StockCounted{Location: "w2", OnHand: 4, Delta: -6, Lots: lots, Fingerprint: 8},
		StockTransferred{From: "w1", To: "s1", Quantity: 3, Lots: lots, Fingerprint: math.MaxUint64},
		TransferArrived{From: "w1", To: "s1", Quantity: 3, Lots: lots},
		SKUConfigured{SafetyStock: 3, LowStockThreshold: 5, SalesCap: 7, CustomerLimit: CustomerLimit{Units: 2, Window: 24 * time.Hour}, Preorders: true},
		LocationConfigured{Location: Location{ID: "w1", Kind: KindStore, Priority: math.MaxInt32, Region: "eu"}},
		StockReserved{Reservation: "c1", Quantity: 5, Allocations: allocs, ExpiresAt: exp, Customer: "kü", Home: 2, Fingerprint: 9, Attempt: 77, Preorders: pre},
		ReservationExtended{Reservation: "c1", ExpiresAt: exp, Step: 4},
		ReservationCommitted{Reservation: "c1", Quantity: 4, Released: 1, Allocations: allocs, Lots: lots, Preorders: pre},
		ReservationReleased{Reservation: "c1", Reason: ReleaseCompensated, Quantity: 5},
		LotExpired{Location: "w1", Lot: "L1", BestBefore: bb15, Quantity: 2},
		ShortageDetected{Location: "w1", Shortage: 3},
		SagaStarted{
			Reservation: "c1", Customer: "k1", CreatedAt: t0, ExpiresAt: exp,
			Lines: []ReserveLine{
				{SKU: "A", Quantity: 2, Location: "w1"},
				{SKU: "B", Quantity: 1, Locations: []string{"w1", "w2"}, Split: true},
			},
			Participants: []int{1, 2}, Fingerprint: 10, Region: "eu",
		},
		SagaStepAcked{
			Reservation: "c1", Step: 1, From: 2,
			Held: []ReservationLine{{SKU: "B", Quantity: 1, Held: 1, Allocations: allocs, Preorder: 4, Preorders: pre}},
			Shortfalls: []Shortfall{
				{SKU: "C", Requested: 2, Available: 1},
				{SKU: "D", Requested: 3, Available: 1, CustomerLimit: &CustomerLimitShortfall{Units: 4, Window: time.Hour, Customer: "kü", Has: 3}},
			},
		},
		ReservationHeld{Reservation: "c1"},
		SagaStepStarted{
			Reservation: "c1", Step: 3, Action: SagaCommit, Participants: []int{1}, ExpiresAt: exp,
			Reason: ReleaseExpired, Lines: []CommitLine{{SKU: "B", Quantity: 1}},
		},
		SagaSettled{Reservation: "c1", Step: 3},
		EntitiesRetired{Keys: []string{"reservation:c1", "receipt:r-1"}},
		LowStock{Available: 3, LowStockThreshold: 1_000_000_000},
		OutOfStock{},
		BackInStock{Available: 1 << 40, LowStockThreshold: 5},
		ReservationChanged{Reservation: "c1", Quantity: 3, Allocations: allocs, PreviousQuantity: 5, PreviousAllocations: allocs, ExpiresAt: exp, Key: "k1", KeyFingerprint: 11},
		BundleDefined{Bundle: Bundle{SKU: "K", Components: []BundleComponent{{"A", 1}, {"B", 3}}}},
		BundlesReserved{Reservation: "c1", Lines: []BundleLine{{SKU: "K", Quantity: 2, Components: []BundleComponent{{"A", 1}, {"B", 3}}}}},
		BundlesCommitted{Reservation: "c1", Lines: []CommitLine{{SKU: "K", Quantity: 1}}},
		SagaChangeStarted{
			Reservation: "c1", Step: 4, Participants: []int{1, 3},
			Lines:  []ReserveLine{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 3, Locations: []string{"w2"}, Split: true}},
			Region: "eu", ExpiresAt: exp,
			Previous: []ReservationLine{{SKU: "A", Quantity: 1, Held: 1, Allocations: allocs}, {SKU: "D", Quantity: 4, Held: 4, Allocations: allocs}},
			Local:    []ReservationLine{{SKU: "A", Quantity: 2, Held: 2, Allocations: allocs}},
			Key:      "k2", KeyFingerprint: 12, Fingerprint: math.MaxUint64,
		},
		SagaChangeAcked{
			Reservation: "c1", Step: 4, From: 3,
			Lines:      []ReservationLine{{SKU: "B", Quantity: 3, Held: 3, Allocations: allocs}},
			Shortfalls: []Shortfall{{SKU: "E", Requested: 2, Available: 1, SalesCap: 9}},
		},
		SagaChangeDecided{
			Reservation: "c1", Step: 5, Made: true, Participants: []int{1, 3}, ExpiresAt: exp,
			Lines:      []ReservationLine{{SKU: "A", Quantity: 2, Held: 2, Allocations: allocs}},
			Shortfalls: []Shortfall{{SKU: "E", Requested: 2, Available: 1}},
		},
		SagaChangeGrown{
			Reservation: "c1", Step: 4, Lines: []ReservationLine{{SKU: "B", Quantity: 3, Held: 3, Allocations: allocs}},
			Shortfalls: []Shortfall{{SKU: "B", Requested: 3}},
		},
		SagaChangeTrimmed{Reservation: "c1", Step: 5, ExpiresAt: exp},
		ExpectedReceiptRecorded{Location: "w1", Quantity: 12, ExpectedAt: exp, Fingerprint: 11},
		ExpectedReceiptArrived{
			Location: "w1", Quantity: 9, Lot: "L2", BestBefore: bb15, Committed: 2, Lots: lots,
			Converted: []PreorderConversion{{Reservation: "c1", Quantity: 3}}, Fingerprint: 12,
		},
		ExpectedReceiptCancelled{Location: "w1", Committed: 2, Lots: lots, Converted: []PreorderConversion{{Reservation: "c1", Quantity: 3}}},
	}
}

// sampleEvents returns the sample data as consecutive events of partition 3
// from position 42, with times before, at and after the first and one zero.
func sampleEvents() []Event {
	var out []Event
	for i, d := range sampleData() {
		e := Event{
			Partition: 3, Position: 42 + uint64(i), Version: uint64(i + 1),
			Time: t0.Add(time.Duration(i-3) * time.Second), CommandID: "cmd", Actor: "ops@example",
			Data: d,
		}
		if i%2 == 0 {
			e.SKU = "A"
		}
		if i == 5 {
			e.Time = time.Time{}
		}
		out = append(out, e)
	}
	return out
}

func TestEventRoundTripEveryType(t *testing.T) {
	seen := map[EventType]bool{}
	for _, e := range sampleEvents() {
		seen[e.Type()] = true
		t.Run(e.Type().String(), func(t *testing.T) {
			got, err := DecodeEvents(AppendEvents(nil, []Event{e}), e.Partition, e.Position)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], e) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, e)
			}
		})
	}
	for typ := range EventType(len(eventTypeNames)) {
		if eventTypeNames[typ] != "" && !seen[typ] {
			t.Errorf("no round-trip sample of %s", typ)
		}
	}
}

func TestEventRoundTripBatch(t *testing.T) {
	events := sampleEvents()
	prefix := []byte("record header")
	buf := AppendEvents(prefix, events)
	if string(buf[:len(prefix)]) != string(prefix) {
		t.Fatalf("AppendEvents overwrote dst")
	}
	got, err := DecodeEvents(buf[len(prefix):], 3, 42)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, events) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, events)
	}
	if empty, err := DecodeEvents(AppendEvents(nil, nil), 0, 1); err != nil || len(empty) != 0 {
		t.Fatalf("empty batch: %v, %v", empty, err)
	}
}

func TestDecodeEventsRejectsDamage(t *testing.T) {
	buf := AppendEvents(nil, sampleEvents())
	for n := range len(buf) {
		if _, err := DecodeEvents(buf[:n], 0, 1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v", n, len(buf), err)
		}
	}
	if _, err := DecodeEvents(append(buf[:len(buf):len(buf)], 0), 0, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
	bad := append([]byte{}, buf...)
	bad[0] = eventFormatV4 + 1
	if _, err := DecodeEvents(bad, 0, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown format: %v", err)
	}
	unknown := AppendEvents(nil, []Event{{Data: ReservationHeld{Reservation: "x"}}})
	unknown[3] = 99 // the type of the first event
	if _, err := DecodeEvents(unknown, 0, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown event type: %v", err)
	}
	// Every single-byte change decodes to something that re-encodes
	// faithfully, or fails cleanly.
	for i := range buf {
		for _, b := range []byte{0, 1, 0x7f, 0x80, 0xff} {
			mut := append([]byte{}, buf...)
			mut[i] = b
			checkEventsDecoding(t, mut)
		}
	}
}

// TestEventFormatV1StillDecodes checks that a record written in event format
// 1, before the saga fields, decodes with those fields zero.
func TestEventFormatV1StillDecodes(t *testing.T) {
	e := Event{Partition: 1, Position: 1, SKU: "A", Version: 1, Time: t0, Data: ReservationExtended{Reservation: "c1", ExpiresAt: t0}}
	v2 := AppendEvents(nil, []Event{e})
	// Format 1 had no Step: drop its varint (the last byte, a zero).
	v1 := append([]byte{eventFormatV1}, v2[1:len(v2)-1]...)
	got, err := DecodeEvents(v1, 1, 1)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], e) {
		t.Fatalf("format 1: %#v, %v", got, err)
	}
}

// TestEventFormatV2StillDecodes: format 2 had no sales caps; its
// SKUConfigured and shortfalls decode with none.
func TestEventFormatV2StillDecodes(t *testing.T) {
	for _, c := range []struct {
		d    EventData
		drop int // trailing bytes format 2 did not have
	}{
		// No cap and no preorders flag, both one zero byte.
		{SKUConfigured{SafetyStock: 1, LowStockThreshold: 2}, 2},
		{SagaStepAcked{Reservation: "c1", Step: 1, From: 2, Shortfalls: []Shortfall{{SKU: "B", Requested: 3, Available: 1}}}, 1},
	} {
		d := c.d
		e := Event{Partition: 1, Position: 1, SKU: "A", Version: 1, Time: t0, Data: d}
		now := AppendEvents(nil, []Event{e})
		// Format 2 had no cap, no customer limit and no preorders: drop
		// their bytes (the last ones, zeros).
		v2 := append([]byte{eventFormatV2}, now[1:len(now)-c.drop-limitBytes(d)]...)
		got, err := DecodeEvents(v2, 1, 1)
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], e) {
			t.Fatalf("format 2: %#v, %v", got, err)
		}
	}
}

// limitBytes is how many bytes, at the end of its encoding, event format 4
// writes for the (absent) customer limits of d, one of the data
// TestEventFormatV2StillDecodes and TestEventFormatV3StillDecodes use.
func limitBytes(d EventData) int {
	if _, ok := d.(SKUConfigured); ok {
		return 2 // units and window, zeros
	}
	return 1 // a shortfall's "no limit" byte
}

// TestEventFormatV3StillDecodes: format 3 had no customer limits; its
// SKUConfigured and shortfalls decode with none, and their sales caps.
func TestEventFormatV3StillDecodes(t *testing.T) {
	for _, d := range []EventData{
		SKUConfigured{SafetyStock: 1, LowStockThreshold: 2, SalesCap: 9},
		SagaStepAcked{Reservation: "c1", Step: 1, From: 2, Shortfalls: []Shortfall{{SKU: "B", Requested: 3, Available: 1, SalesCap: 4}}},
	} {
		e := Event{Partition: 1, Position: 1, SKU: "A", Version: 1, Time: t0, Data: d}
		now := AppendEvents(nil, []Event{e})
		drop := limitBytes(d)
		if _, ok := d.(SKUConfigured); ok {
			drop++ // the preorders flag of format 5
		}
		v3 := append([]byte{eventFormatV3}, now[1:len(now)-drop]...)
		got, err := DecodeEvents(v3, 1, 1)
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], e) {
			t.Fatalf("format 3: %#v, %v", got, err)
		}
	}
}

// checkEventsDecoding decodes data and, if that succeeds, checks that the
// events re-encode to an equivalent record.
func checkEventsDecoding(t *testing.T, data []byte) {
	t.Helper()
	events, err := DecodeEvents(data, 1, 1)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	again, err := DecodeEvents(AppendEvents(nil, events), 1, 1)
	if err != nil {
		t.Fatalf("re-encoded events do not decode: %v", err)
	}
	if !reflect.DeepEqual(again, events) {
		t.Fatalf("re-encoded events differ:\n%#v\n%#v", events, again)
	}
}

// sampleStates returns partitions in many conditions: stock with lots,
// backorders, transfers, records, configured locations, and reservations
// spanning partitions pending, held, committed and being undone.
func sampleStates(t testing.TB) []*State {
	w := newSagaWorld(t, 3, 1)
	c := w.cluster
	for _, cmd := range []Command{
		warehouse("w1", 1, "eu"), warehouse("w2", 2, "us"), ConfigureLocation{ID: "s1", Kind: KindStore, Priority: 3},
		ConfigureSKU{SKU: w.a, SafetyStock: 1, LowStockThreshold: 4},
		ConfigureSKU{SKU: w.b, SalesCap: 100},
		recvLot("ra2", w.a, "w2", 5, "L1", bb15), recvLot("ra3", w.a, "w2", 2, "L2", bb20),
		adjust("aa1", w.a, "w1", -2, ReasonDamaged), CountStock{ID: "na1", SKU: w.a, Location: "w2", OnHand: 6},
		TransferStock{ID: "ta1", SKU: w.a, From: "w2", To: "s1", Quantity: 2},
		TransferStock{ID: "ta2", SKU: w.a, From: "w1", To: "s1", Quantity: 1}, ArriveTransfer{ID: "ta2"},
		reserve("single", lineAt(w.a, 1, "w1")),
		Reserve{ID: "held", Customer: "k", Lines: []ReserveLine{line(w.a, 1), line(w.b, 2)}},
	} {
		mustDo(t, c, cmd)
		c.quiesce()
	}
	mustDo(t, c, Reserve{ID: "committed", Lines: []ReserveLine{{SKU: w.b, Quantity: 3, Split: true}, line(w.a, 1)}})
	c.quiesce()
	mustDo(t, c, CommitReservation{ID: "committed", Lines: []CommitLine{{SKU: w.a, Quantity: 1}}})
	// A per-customer limit, with a customer holding and one who committed
	// within the window.
	mustDo(t, c, ConfigureSKU{SKU: w.a, SafetyStock: 1, LowStockThreshold: 4, CustomerLimit: CustomerLimit{Units: 5, Window: 24 * time.Hour}})
	mustDo(t, c, Reserve{ID: "limited", Customer: "k2", Lines: []ReserveLine{line(w.a, 1)}})
	mustDo(t, c, CommitReservation{ID: "limited"})
	// A backorder: held stock lost, then committed.
	mustDo(t, c, reserve("short", lineAt(w.b, 2, "w1")))
	mustDo(t, c, CountStock{ID: "nb1", SKU: w.b, Location: "w1", OnHand: 0})
	mustDo(t, c, CommitReservation{ID: "short"})
	// Pending, and failing for lack of C: left half way.
	mustDo(t, c, Reserve{ID: "pending", Customer: "k3", Lines: []ReserveLine{line(w.a, 1), line(w.b, 1)}})
	mustDo(t, c, Reserve{ID: "failing", Customer: "k3", Lines: []ReserveLine{line(w.a, 1), line(w.b, 1), line(w.c, 5)}})
	c.deliver(0, 2)
	c.deliver(2, 0)
	return c.states
}

func TestStateRoundTrip(t *testing.T) {
	for _, s := range sampleStates(t) {
		data := EncodeState(s)
		got, err := DecodeState(data, s.Limits())
		if err != nil {
			t.Fatalf("partition %d: %v", s.Partition(), err)
		}
		got.SetCatalog(s.Catalog())
		if diff := sameState(s, got); diff != "" {
			t.Fatalf("partition %d: %s", s.Partition(), diff)
		}
		if !reflect.DeepEqual(keysOf(s), keysOf(got)) {
			t.Fatalf("partition %d: keys %v, decoded %v", s.Partition(), keysOf(s), keysOf(got))
		}
		for _, id := range s.SKUs() {
			a, _ := s.SKUView(id)
			b, _ := got.SKUView(id)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("partition %d: view of %s\n%+v\n%+v", s.Partition(), id, a, b)
			}
		}
		if s.Partition() == LocationPartition && !reflect.DeepEqual(s.Locations(), got.Locations()) {
			t.Fatalf("locations %v, decoded %v", s.Locations(), got.Locations())
		}
		for n := range len(data) {
			if _, err := DecodeState(data[:n], s.Limits()); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("partition %d truncated to %d of %d bytes: %v", s.Partition(), n, len(data), err)
			}
		}
		if _, err := DecodeState(append(data[:len(data):len(data)], 0), s.Limits()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("trailing byte: %v", err)
		}
	}
}

func TestDecodeStateRejectsDamage(t *testing.T) {
	s := NewState(1, 2, DefaultLimits)
	data := EncodeState(s)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"unknown format", append([]byte{9}, data[1:]...)},
		{"partition out of range", EncodeState(NewState(2, 2, DefaultLimits))},
		{"no partitions", EncodeState(&State{partition: 0, partitions: 0})},
	} {
		if _, err := DecodeState(c.data, DefaultLimits); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestDecodeStateLocationsOnlyInPartitionZero checks that a snapshot of
// another partition carrying locations, which EncodeState never writes, is
// refused rather than decoded into a state that encodes differently.
func TestDecodeStateLocationsOnlyInPartitionZero(t *testing.T) {
	s := NewState(0, 2, DefaultLimits)
	d, err := s.Decide(warehouse("w1", 1, "eu"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(d.Events[0]); err != nil {
		t.Fatal(err)
	}
	data := EncodeState(s)
	if data[1] != 0 || data[2] != 4 {
		t.Fatalf("unexpected header % x", data[:3])
	}
	data[1] = 2 // varint(1): partition 1 of 2
	checkStateDecoding(t, data)
	if _, err := DecodeState(data, DefaultLimits); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("partition 1 with locations: %v", err)
	}
}

// checkStateDecoding decodes data and, if that succeeds, checks that the state
// re-encodes to an equivalent one and that reading it does not fail.
func checkStateDecoding(t *testing.T, data []byte) {
	t.Helper()
	s, err := DecodeState(data, DefaultLimits)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	again, err := DecodeState(EncodeState(s), DefaultLimits)
	if err != nil {
		t.Fatalf("re-encoded state does not decode: %v", err)
	}
	if diff := sameState(s, again); diff != "" {
		t.Fatalf("re-encoded state differs: %s", diff)
	}
	for _, id := range s.SKUs() {
		a, _ := s.SKUView(id)
		b, _ := again.SKUView(id)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("view of %q differs:\n%+v\n%+v", id, a, b)
		}
	}
	for id := range s.reservations {
		a, _ := s.ReservationView(id)
		b, _ := again.ReservationView(id)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("view of reservation %q differs:\n%+v\n%+v", id, a, b)
		}
	}
	s.Recover()
	s.NextDeadline()
	s.Keys(func(Key, uint64) {})
}

func FuzzDecodeEvents(f *testing.F) {
	f.Add(AppendEvents(nil, sampleEvents()))
	for _, e := range sampleEvents() {
		f.Add(AppendEvents(nil, []Event{e}))
	}
	f.Add(AppendEvents(nil, nil))
	f.Fuzz(checkEventsDecoding)
}

func FuzzDecodeState(f *testing.F) {
	for _, s := range sampleStates(f) {
		f.Add(EncodeState(s))
	}
	f.Add(EncodeState(NewState(0, 1, DefaultLimits)))
	f.Fuzz(checkStateDecoding)
}

// TestEventFormatV3StillDecodesWithoutPreorders: format 3 had no preorders;
// its SKUConfigured, StockReserved and ReservationCommitted decode with none,
// and a format 3 record cannot carry an expected receipt's event.
func TestEventFormatV3StillDecodesWithoutPreorders(t *testing.T) {
	for _, d := range []EventData{
		SKUConfigured{SafetyStock: 1, LowStockThreshold: 2, SalesCap: 3},
		StockReserved{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w1", 2}}, ExpiresAt: t0, Home: 1},
		ReservationCommitted{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w1", 2}}},
	} {
		e := Event{Partition: 1, Position: 1, SKU: "A", Version: 1, Time: t0, Data: d}
		v5 := AppendEvents(nil, []Event{e})
		// Format 3 had no preorders: drop the flag or the empty list
		// (the last byte, a zero), and SKUConfigured's customer limit
		// of format 4 (two zeros before the flag).
		drop := 1
		if _, ok := d.(SKUConfigured); ok {
			drop += 2
		}
		v3 := append([]byte{eventFormatV3}, v5[1:len(v5)-drop]...)
		got, err := DecodeEvents(v3, 1, 1)
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], e) {
			t.Fatalf("format 3: %#v, %v", got, err)
		}
	}
	e := Event{Partition: 1, Position: 1, SKU: "A", Version: 1, Time: t0, Data: ExpectedReceiptRecorded{Location: "w1", Quantity: 1, ExpectedAt: t0}}
	v5 := AppendEvents(nil, []Event{e})
	if _, err := DecodeEvents(append([]byte{eventFormatV3}, v5[1:]...), 1, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("an expected receipt's event in format 3 decoded: %v", err)
	}
}
