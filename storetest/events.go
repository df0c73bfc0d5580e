// Package storetest is the conformance suite of stockd.Store: every backend
// runs Run (and, if it persists data, RunReopen) unchanged, so that the engine
// can rely on one behaviour whatever stores its log. Run is made of one group
// of tests per interface (RunLog, RunSnapshots, RunCheckpoints), so that a
// backend that provides only some of them runs just those. The package also
// provides helpers that build valid events, for the tests of other packages.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// BaseTime is the time of position 0 in events built by this package. Events
// get later times as their positions grow, so that time bounds can be tested
// against positions.
var BaseTime = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

// TimeAt returns the time of the event at position pos built by this
// package: one second and a few nanoseconds per position, so that times are
// increasing and have a non-trivial sub-second part.
func TimeAt(pos uint64) time.Time {
	return BaseTime.Add(time.Duration(pos)*time.Second + time.Duration(pos%977)*time.Nanosecond)
}

// Event returns an event of partition p at position pos for sku at version,
// with a time from TimeAt and data that varies with the position, so that a
// log built from it exercises every event type.
func Event(p int, pos uint64, sku string, version uint64) stockd.Event {
	return stockd.Event{
		Partition: p,
		Position:  pos,
		SKU:       sku,
		Version:   version,
		Time:      TimeAt(pos),
		CommandID: fmt.Sprintf("cmd-%d-%d", p, pos),
		Actor:     fmt.Sprintf("actor-%d", pos%3),
		Data:      samples[pos%uint64(len(samples))],
	}
}

// Events returns n valid events of partition p following position after. It
// needs no state: positions go round-robin over three SKUs named
// "sku-<p>-0", "sku-<p>-1" and "sku-<p>-2", whose versions are derived from
// the position, so calls for consecutive ranges build one consistent log.
func Events(p int, after uint64, n int) []stockd.Event {
	events := make([]stockd.Event, n)
	for i := range events {
		pos := after + uint64(i) + 1
		events[i] = Event(p, pos, fmt.Sprintf("sku-%d-%d", p, (pos-1)%3), (pos-1)/3+1)
	}
	return events
}

// samples is SampleData computed once, because Event is called for every
// event of a benchmark.
var samples = SampleData()

// Log builds valid events for one partition, tracking its head and the next
// version of every SKU. Its state advances only through Commit (or Append),
// so a batch that a store rejects can simply be dropped.
type Log struct {
	// Partition is the partition the events belong to.
	Partition int
	// Head is the position of the last committed event.
	Head uint64
	// Versions is the version of the last committed event of each SKU.
	Versions map[string]uint64
}

// NewLog returns a Log for an empty partition p.
func NewLog(p int) *Log {
	return &Log{Partition: p, Versions: make(map[string]uint64)}
}

// Events returns the events that would follow the log's head, one for each
// of skus in order. An empty SKU makes an event that concerns no SKU, with
// version 0.
func (l *Log) Events(skus ...string) []stockd.Event {
	events := make([]stockd.Event, len(skus))
	next := make(map[string]uint64, len(skus))
	for i, sku := range skus {
		var version uint64
		if sku != "" {
			if _, ok := next[sku]; !ok {
				next[sku] = l.Versions[sku]
			}
			next[sku]++
			version = next[sku]
		}
		events[i] = Event(l.Partition, l.Head+uint64(i)+1, sku, version)
	}
	return events
}

// Batch returns a batch of the events Events would return.
func (l *Log) Batch(skus ...string) stockd.Batch {
	return stockd.Batch{Events: l.Events(skus...)}
}

// Commit advances the log past events, which a store accepted.
func (l *Log) Commit(events []stockd.Event) {
	for _, e := range events {
		l.Head = e.Position
		if e.SKU != "" {
			l.Versions[e.SKU] = e.Version
		}
	}
}

// Append appends the events for skus to s with the log's head as the
// expected head, fails the test if s rejects them, and commits them.
func (l *Log) Append(t testing.TB, s stockd.Log, skus ...string) []stockd.Event {
	t.Helper()
	events := l.Events(skus...)
	if err := s.Append(context.Background(), l.Partition, l.Head, stockd.Batch{Events: events}); err != nil {
		t.Fatalf("Append(partition %d, expected %d, %d events): %v", l.Partition, l.Head, len(events), err)
	}
	l.Commit(events)
	return events
}

// SampleData returns one value of every event data type, with non-trivial
// field values: non-empty lists, negative numbers, non-UTC times and large
// fingerprints. It is what round-trip tests of encodings should use; a new
// event type must be added here.
func SampleData() []stockd.EventData {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	t1 := time.Date(2025, 6, 1, 12, 30, 45, 123456789, zone)
	t2 := time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)
	lots := []stockd.LotQty{
		{Location: "wh-1", Lot: "L-001", BestBefore: "2025-12-31", Quantity: 7},
		{Location: "wh-2", Lot: "", BestBefore: "", Quantity: -3},
	}
	allocs := []stockd.Allocation{{Location: "wh-1", Quantity: 5}, {Location: "store-9", Quantity: 2}}
	return []stockd.EventData{
		stockd.StockReceived{Location: "wh-1", Quantity: 120, Lot: "L-001", BestBefore: "2025-12-31", Fingerprint: 0xfeedfacecafebeef},
		stockd.StockAdjusted{Location: "wh-2", Delta: -4, Reason: stockd.ReasonDamaged, Lots: lots, Fingerprint: 1},
		stockd.StockCounted{Location: "wh-1", OnHand: 99, Delta: -21, Lots: lots[:1], Fingerprint: 1 << 63},
		stockd.StockTransferred{From: "wh-1", To: "store-9", Quantity: 12, Lots: lots, Fingerprint: 42},
		stockd.TransferArrived{From: "wh-1", To: "store-9", Quantity: 12, Lots: lots[1:]},
		stockd.SKUConfigured{SafetyStock: 5, LowStockThreshold: 17},
		stockd.LocationConfigured{Location: stockd.Location{ID: "wh-1", Kind: stockd.KindWarehouse, Priority: -2, Region: "eu-west"}},
		stockd.StockReserved{Reservation: "r-1", Quantity: 7, Allocations: allocs, ExpiresAt: t1, Customer: "c-77", Home: 3, Fingerprint: 9},
		stockd.ReservationExtended{Reservation: "r-1", ExpiresAt: t2},
		stockd.ReservationCommitted{Reservation: "r-1", Quantity: 6, Released: 1, Allocations: allocs, Lots: lots},
		stockd.ReservationReleased{Reservation: "r-2", Reason: stockd.ReleaseExpired, Quantity: 3},
		stockd.LotExpired{Location: "wh-1", Lot: "L-000", BestBefore: "2025-01-01", Quantity: 8},
		stockd.ShortageDetected{Location: "wh-2", Shortage: 2},
		stockd.SagaStarted{
			Reservation: "r-3", Customer: "c-1", CreatedAt: t1, ExpiresAt: t2,
			Lines: []stockd.ReserveLine{
				{SKU: "A", Quantity: 2, Location: "wh-1"},
				{SKU: "B", Quantity: 5, Locations: []string{"wh-1", "wh-2"}, Split: true},
			},
			Participants: []int{1, 4, 63},
			Fingerprint:  0xffffffffffffffff,
		},
		stockd.SagaStepAcked{
			Reservation: "r-3", Step: 2, From: 4,
			Held:       []stockd.ReservationLine{{SKU: "B", Quantity: 5, Held: 5, Allocations: allocs}},
			Shortfalls: []stockd.Shortfall{{SKU: "C", Requested: 9, Available: 1}},
		},
		stockd.ReservationHeld{Reservation: "r-3"},
		stockd.SagaStepStarted{
			Reservation: "r-3", Step: 3, Action: stockd.SagaCommit, Participants: []int{4},
			ExpiresAt: t2, Reason: stockd.ReleaseCompensated,
			Lines: []stockd.CommitLine{{SKU: "B", Quantity: 4}},
		},
		stockd.SagaStepStarted{Reservation: "r-4", Step: 1, Action: stockd.SagaRelease, Participants: []int{0, 2}},
		stockd.SagaSettled{Reservation: "r-3", Step: 3},
		stockd.EntitiesRetired{Keys: []string{"reservation:r-3", "receipt:rc-ü", "transfer:t-1"}},
		stockd.LowStock{Available: 3, LowStockThreshold: 17},
		stockd.OutOfStock{},
		stockd.BackInStock{Available: 1 << 40, LowStockThreshold: 17},
	}
}

// Normalize returns a copy of events with every time in UTC, so that events
// read back from a store compare equal (with reflect.DeepEqual) to the events
// that were appended, whatever time zone they were built in.
func Normalize(events []stockd.Event) []stockd.Event {
	if events == nil {
		return nil
	}
	out := make([]stockd.Event, len(events))
	for i, e := range events {
		e.Time = utc(e.Time)
		switch d := e.Data.(type) {
		case stockd.StockReserved:
			d.ExpiresAt = utc(d.ExpiresAt)
			e.Data = d
		case stockd.ReservationExtended:
			d.ExpiresAt = utc(d.ExpiresAt)
			e.Data = d
		case stockd.SagaStarted:
			d.CreatedAt = utc(d.CreatedAt)
			d.ExpiresAt = utc(d.ExpiresAt)
			e.Data = d
		case stockd.SagaStepStarted:
			d.ExpiresAt = utc(d.ExpiresAt)
			e.Data = d
		}
		out[i] = e
	}
	return out
}

// utc returns t in UTC without its monotonic clock reading; the zero time
// stays zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}
