package stockd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The binary encoding of events. A batch of consecutive events of one
// partition is encoded as one record: the partition and positions are implied
// by where the record is stored, and times are deltas from the first event's
// time, so a batch of reservations decided together costs a few dozen bytes an
// event. The format is versioned by its first byte; decoding is defensive and
// never panics or allocates more than the input can justify.

// The event formats: 2 added the fields a saga needs to survive lost and
// repeated messages (SagaStarted.Region, StockReserved.Attempt,
// ReservationExtended.Step). Format 1 is still read; its events decode with
// those fields zero. 3 added sales caps: SKUConfigured.SalesCap and
// Shortfall.SalesCap (in SagaStepAcked); formats 1 and 2 decode with them 0.
// 4 added per-customer limits: SKUConfigured.CustomerLimit and
// Shortfall.CustomerLimit; formats 1 to 3 decode with none. 6 added
// bundles: the event types BundleDefined, BundlesReserved and
// BundlesCommitted (bundles.go); no older event changed. 7 added
// ReservationChanged (a held cart changed), refused in older formats.
// 5 added incoming stock and preorders: the ExpectedReceipt* events (types
// 60 to 62), SKUConfigured.Preorders, StockReserved.Preorders,
// ReservationCommitted.Preorders and the preorders of SagaStepAcked's held
// lines; older formats decode without them.
const (
	eventFormatV1 = 1
	eventFormatV2 = 2
	eventFormatV3 = 3
	eventFormatV4 = 4
	eventFormatV5 = 5
	eventFormatV6 = 6
	eventFormatV7 = 7

	// eventFormatLatest is the format AppendEvents writes; DecodeEvents
	// reads it and every one before it.
	eventFormatLatest = eventFormatV7
)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("stockd: corrupt encoding")

// AppendEvents appends the encoding of events, which must be consecutive
// events of one partition, to dst and returns the extended slice.
func AppendEvents(dst []byte, events []Event) []byte {
	w := writer{buf: dst}
	w.byte(eventFormatLatest)
	w.uvarint(uint64(len(events)))
	var base int64
	if len(events) > 0 {
		base = unixNano(events[0].Time)
	}
	w.varint(base)
	for i := range events {
		e := &events[i]
		w.byte(byte(e.Data.EventType()))
		w.string(e.SKU)
		w.uvarint(e.Version)
		w.varint(unixNano(e.Time) - base)
		w.string(e.CommandID)
		w.string(e.Actor)
		encodeData(&w, e.Data)
	}
	return w.buf
}

// DecodeEvents decodes a record written by AppendEvents whose first event has
// the given partition and position.
func DecodeEvents(src []byte, partition int, first uint64) ([]Event, error) {
	r := reader{buf: src}
	v := r.byte()
	if (v < eventFormatV1 || v > eventFormatLatest) && r.err == nil {
		return nil, fmt.Errorf("%w: unknown event format %d", ErrCorrupt, v)
	}
	n := r.count()
	base := r.varint()
	if r.err != nil {
		return nil, r.err
	}
	events := make([]Event, 0, n)
	for i := 0; i < n; i++ {
		e := Event{Partition: partition, Position: first + uint64(i)}
		t := EventType(r.byte())
		e.SKU = r.recent()
		e.Version = r.uvarint()
		e.Time = fromUnixNano(base + r.varint())
		e.CommandID = r.recent()
		e.Actor = r.recent()
		e.Data = decodeData(&r, t, v)
		if r.err != nil {
			return nil, r.err
		}
		events = append(events, e)
	}
	if len(r.buf) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(r.buf))
	}
	return events, nil
}

func encodeData(w *writer, d EventData) {
	switch d := d.(type) {
	case StockReceived:
		w.strings(d.Location, d.Lot, d.BestBefore)
		w.varint(d.Quantity)
		w.u64(d.Fingerprint)
	case StockAdjusted:
		w.string(d.Location)
		w.varint(d.Delta)
		w.string(string(d.Reason))
		w.lots(d.Lots)
		w.u64(d.Fingerprint)
	case StockCounted:
		w.string(d.Location)
		w.varint(d.OnHand)
		w.varint(d.Delta)
		w.lots(d.Lots)
		w.u64(d.Fingerprint)
	case StockTransferred:
		w.strings(d.From, d.To)
		w.varint(d.Quantity)
		w.lots(d.Lots)
		w.u64(d.Fingerprint)
	case TransferArrived:
		w.strings(d.From, d.To)
		w.varint(d.Quantity)
		w.lots(d.Lots)
	case SKUConfigured:
		w.varint(d.SafetyStock)
		w.varint(d.LowStockThreshold)
		w.varint(d.SalesCap)
		w.varint(d.CustomerLimit.Units)
		w.varint(int64(d.CustomerLimit.Window))
		w.bool(d.Preorders)
	case LocationConfigured:
		w.location(d.Location)
	case StockReserved:
		w.string(d.Reservation)
		w.varint(d.Quantity)
		w.allocations(d.Allocations)
		w.time(d.ExpiresAt)
		w.string(d.Customer)
		w.varint(int64(d.Home))
		w.u64(d.Fingerprint)
		w.uvarint(d.Attempt)
		w.preorderHolds(d.Preorders)
	case ReservationExtended:
		w.string(d.Reservation)
		w.time(d.ExpiresAt)
		w.string(d.Key)
		w.u64(d.KeyFingerprint)
		w.varint(int64(d.Step))
	case ReservationCommitted:
		w.string(d.Reservation)
		w.varint(d.Quantity)
		w.varint(d.Released)
		w.allocations(d.Allocations)
		w.lots(d.Lots)
		w.string(d.Key)
		w.u64(d.KeyFingerprint)
		w.preorderHolds(d.Preorders)
	case ReservationReleased:
		w.strings(d.Reservation, string(d.Reason))
		w.varint(d.Quantity)
		w.string(d.Key)
		w.u64(d.KeyFingerprint)
	case LotExpired:
		w.strings(d.Location, d.Lot, d.BestBefore)
		w.varint(d.Quantity)
	case ShortageDetected:
		w.string(d.Location)
		w.varint(d.Shortage)
	case SagaStarted:
		w.strings(d.Reservation, d.Customer)
		w.time(d.CreatedAt)
		w.time(d.ExpiresAt)
		w.reserveLines(d.Lines)
		w.ints(d.Participants)
		w.u64(d.Fingerprint)
		w.string(d.Region)
	case SagaStepAcked:
		w.string(d.Reservation)
		w.varint(int64(d.Step))
		w.varint(int64(d.From))
		w.uvarint(uint64(len(d.Held)))
		for _, l := range d.Held {
			w.string(l.SKU)
			w.varint(l.Quantity)
			w.allocations(l.Allocations)
			w.preorderHolds(l.Preorders)
		}
		w.shortfalls(d.Shortfalls)
	case ReservationHeld:
		w.string(d.Reservation)
	case SagaStepStarted:
		w.string(d.Reservation)
		w.varint(int64(d.Step))
		w.byte(byte(d.Action))
		w.ints(d.Participants)
		w.time(d.ExpiresAt)
		w.string(string(d.Reason))
		w.uvarint(uint64(len(d.Lines)))
		for _, l := range d.Lines {
			w.string(l.SKU)
			w.varint(l.Quantity)
		}
	case SagaSettled:
		w.string(d.Reservation)
		w.varint(int64(d.Step))
	case ReservationChanged:
		w.string(d.Reservation)
		w.varint(d.Quantity)
		w.allocations(d.Allocations)
		w.varint(d.PreviousQuantity)
		w.allocations(d.PreviousAllocations)
		w.time(d.ExpiresAt)
		w.string(d.Key)
		w.u64(d.KeyFingerprint)
	case SagaChangeStarted:
		w.string(d.Reservation)
		w.varint(int64(d.Step))
		w.ints(d.Participants)
		w.reserveLines(d.Lines)
		w.string(d.Region)
		w.time(d.ExpiresAt)
		w.resLines(d.Previous)
		w.resLines(d.Local)
		w.string(d.Key)
		w.u64(d.KeyFingerprint)
		w.u64(d.Fingerprint)
	case SagaChangeAcked:
		w.string(d.Reservation)
		w.varint(int64(d.Step))
		w.varint(int64(d.From))
		w.resLines(d.Lines)
		w.shortfalls(d.Shortfalls)
	case SagaChangeDecided:
		w.string(d.Reservation)
		w.varint(int64(d.Step))
		w.bool(d.Made)
		w.ints(d.Participants)
		w.resLines(d.Lines)
		w.time(d.ExpiresAt)
		w.shortfalls(d.Shortfalls)
	case SagaChangeGrown:
		w.string(d.Reservation)
		w.varint(int64(d.Step))
		w.resLines(d.Lines)
		w.shortfalls(d.Shortfalls)
	case SagaChangeTrimmed:
		w.string(d.Reservation)
		w.varint(int64(d.Step))
		w.time(d.ExpiresAt)
	case EntitiesRetired:
		w.stringList(d.Keys)
	case LowStock:
		w.varint(d.Available)
		w.varint(d.LowStockThreshold)
	case OutOfStock:
		w.varint(d.Available)
	case BackInStock:
		w.varint(d.Available)
		w.varint(d.LowStockThreshold)
	case BundleDefined:
		w.bundle(d.Bundle)
	case BundlesReserved:
		w.string(d.Reservation)
		w.bundleLines(d.Lines)
	case BundlesCommitted:
		w.string(d.Reservation)
		w.commitLines(d.Lines)
	case ExpectedReceiptRecorded, ExpectedReceiptArrived, ExpectedReceiptCancelled:
		encodeExpectedData(w, d)
	default:
		panic(fmt.Sprintf("stockd: cannot encode event data %T", d))
	}
}

// decodeData decodes the data of an event of type t written in event format
// v (snapshots, which embed event data, use the current one).
func decodeData(r *reader, t EventType, v byte) EventData {
	switch t {
	case TypeStockReceived:
		d := StockReceived{Location: r.recent(), Lot: r.recent(), BestBefore: r.recent()}
		d.Quantity = r.varint()
		d.Fingerprint = r.u64()
		return d
	case TypeStockAdjusted:
		d := StockAdjusted{Location: r.string(), Delta: r.varint(), Reason: AdjustReason(r.string())}
		d.Lots = r.lots()
		d.Fingerprint = r.u64()
		return d
	case TypeStockCounted:
		d := StockCounted{Location: r.string(), OnHand: r.varint(), Delta: r.varint()}
		d.Lots = r.lots()
		d.Fingerprint = r.u64()
		return d
	case TypeStockTransferred:
		d := StockTransferred{From: r.string(), To: r.string(), Quantity: r.varint()}
		d.Lots = r.lots()
		d.Fingerprint = r.u64()
		return d
	case TypeTransferArrived:
		d := TransferArrived{From: r.string(), To: r.string(), Quantity: r.varint()}
		d.Lots = r.lots()
		return d
	case TypeSKUConfigured:
		d := SKUConfigured{SafetyStock: r.varint(), LowStockThreshold: r.varint()}
		if v >= eventFormatV3 {
			d.SalesCap = r.varint()
		}
		if v >= eventFormatV4 {
			d.CustomerLimit = CustomerLimit{Units: r.varint(), Window: time.Duration(r.varint())}
		}
		if v >= eventFormatV5 {
			d.Preorders = r.bool()
		}
		return d
	case TypeLocationConfigured:
		return LocationConfigured{Location: r.location()}
	case TypeStockReserved:
		d := StockReserved{Reservation: r.recent(), Quantity: r.varint()}
		d.Allocations = r.allocations()
		d.ExpiresAt = r.time()
		d.Customer = r.string()
		d.Home = r.int()
		d.Fingerprint = r.u64()
		if v >= eventFormatV2 {
			d.Attempt = r.uvarint()
		}
		if v >= eventFormatV5 {
			d.Preorders = r.preorderHolds()
		}
		return d
	case TypeReservationExtended:
		d := ReservationExtended{Reservation: r.recent(), ExpiresAt: r.time()}
		d.Key = r.string()
		d.KeyFingerprint = r.u64()
		if v >= eventFormatV2 {
			d.Step = r.int()
		}
		return d
	case TypeReservationCommitted:
		d := ReservationCommitted{Reservation: r.recent(), Quantity: r.varint(), Released: r.varint()}
		d.Allocations = r.allocations()
		d.Lots = r.lots()
		d.Key = r.string()
		d.KeyFingerprint = r.u64()
		if v >= eventFormatV5 {
			d.Preorders = r.preorderHolds()
		}
		return d
	case TypeReservationReleased:
		d := ReservationReleased{Reservation: r.recent(), Reason: ReleaseReason(r.recent()), Quantity: r.varint()}
		d.Key = r.string()
		d.KeyFingerprint = r.u64()
		return d
	case TypeLotExpired:
		return LotExpired{Location: r.string(), Lot: r.string(), BestBefore: r.string(), Quantity: r.varint()}
	case TypeShortageDetected:
		return ShortageDetected{Location: r.string(), Shortage: r.varint()}
	case TypeSagaStarted:
		d := SagaStarted{Reservation: r.string(), Customer: r.string(), CreatedAt: r.time(), ExpiresAt: r.time()}
		d.Lines = r.reserveLines()
		d.Participants = r.ints()
		d.Fingerprint = r.u64()
		if v >= eventFormatV2 {
			d.Region = r.string()
		}
		return d
	case TypeSagaStepAcked:
		d := SagaStepAcked{Reservation: r.string(), Step: r.int(), From: r.int()}
		if n := r.count(); n > 0 {
			d.Held = make([]ReservationLine, 0, n)
			for i := 0; i < n && r.err == nil; i++ {
				l := ReservationLine{SKU: r.string(), Quantity: r.varint()}
				l.Held = l.Quantity
				l.Allocations = r.allocations()
				if v >= eventFormatV5 {
					l.Preorders = r.preorderHolds()
					l.Preorder = sumPreorders(l.Preorders)
				}
				d.Held = append(d.Held, l)
			}
		}
		d.Shortfalls = r.shortfalls(v >= eventFormatV3, v >= eventFormatV4)
		return d
	case TypeReservationHeld:
		return ReservationHeld{Reservation: r.string()}
	case TypeSagaStepStarted:
		d := SagaStepStarted{Reservation: r.string(), Step: r.int(), Action: SagaAction(r.byte())}
		d.Participants = r.ints()
		d.ExpiresAt = r.time()
		d.Reason = ReleaseReason(r.string())
		if n := r.count(); n > 0 {
			d.Lines = make([]CommitLine, 0, n)
			for i := 0; i < n && r.err == nil; i++ {
				d.Lines = append(d.Lines, CommitLine{SKU: r.string(), Quantity: r.varint()})
			}
		}
		return d
	case TypeSagaSettled:
		return SagaSettled{Reservation: r.string(), Step: r.int()}
	case TypeReservationChanged:
		if v < eventFormatV7 {
			r.fail("event type %s in format %d", t, v)
			return nil
		}
		d := ReservationChanged{Reservation: r.recent(), Quantity: r.varint()}
		d.Allocations = r.allocations()
		d.PreviousQuantity = r.varint()
		d.PreviousAllocations = r.allocations()
		d.ExpiresAt = r.time()
		d.Key = r.string()
		d.KeyFingerprint = r.u64()
		return d
	case TypeSagaChangeStarted, TypeSagaChangeAcked, TypeSagaChangeDecided, TypeSagaChangeGrown, TypeSagaChangeTrimmed:
		if v < eventFormatV7 {
			r.fail("event type %s in format %d", t, v)
			return nil
		}
		return decodeChangeSaga(r, t)
	case TypeEntitiesRetired:
		return EntitiesRetired{Keys: r.stringList()}
	case TypeLowStock:
		return LowStock{Available: r.varint(), LowStockThreshold: r.varint()}
	case TypeOutOfStock:
		return OutOfStock{Available: r.varint()}
	case TypeBackInStock:
		return BackInStock{Available: r.varint(), LowStockThreshold: r.varint()}
	case TypeBundleDefined:
		return BundleDefined{Bundle: r.bundle()}
	case TypeBundlesReserved:
		return BundlesReserved{Reservation: r.string(), Lines: r.bundleLines()}
	case TypeBundlesCommitted:
		return BundlesCommitted{Reservation: r.string(), Lines: r.commitLines()}
	case TypeExpectedReceiptRecorded, TypeExpectedReceiptArrived, TypeExpectedReceiptCancelled:
		if v >= eventFormatV5 {
			return decodeExpectedData(r, t)
		}
	}
	r.fail("unknown event type %d", t)
	return nil
}

// writer appends primitive values to a byte slice.
type writer struct{ buf []byte }

func (w *writer) byte(b byte)      { w.buf = append(w.buf, b) }
func (w *writer) uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }
func (w *writer) varint(v int64)   { w.buf = binary.AppendVarint(w.buf, v) }
func (w *writer) u64(v uint64)     { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }
func (w *writer) time(t time.Time) { w.varint(unixNano(t)) }
func (w *writer) string(s string)  { w.uvarint(uint64(len(s))); w.buf = append(w.buf, s...) }
func (w *writer) strings(s ...string) {
	for _, x := range s {
		w.string(x)
	}
}
func (w *writer) bool(b bool) {
	if b {
		w.byte(1)
	} else {
		w.byte(0)
	}
}

func (w *writer) shortfalls(v []Shortfall) {
	w.uvarint(uint64(len(v)))
	for _, s := range v {
		w.string(s.SKU)
		w.varint(s.Requested)
		w.varint(s.Available)
		w.varint(s.SalesCap)
		w.limitShortfall(s.CustomerLimit)
	}
}

func (w *writer) stringList(v []string) {
	w.uvarint(uint64(len(v)))
	w.strings(v...)
}

func (w *writer) ints(v []int) {
	w.uvarint(uint64(len(v)))
	for _, x := range v {
		w.varint(int64(x))
	}
}

func (w *writer) lots(lots []LotQty) {
	w.uvarint(uint64(len(lots)))
	for _, l := range lots {
		w.strings(l.Location, l.Lot, l.BestBefore)
		w.varint(l.Quantity)
	}
}

func (w *writer) allocations(as []Allocation) {
	w.uvarint(uint64(len(as)))
	for _, a := range as {
		w.string(a.Location)
		w.varint(a.Quantity)
	}
}

func (w *writer) location(l Location) {
	w.strings(l.ID, string(l.Kind), l.Region)
	w.varint(int64(l.Priority))
}

func (w *writer) reserveLines(lines []ReserveLine) {
	w.uvarint(uint64(len(lines)))
	for _, l := range lines {
		w.strings(l.SKU, l.Location)
		w.varint(l.Quantity)
		w.bool(l.Split)
		w.uvarint(uint64(len(l.Locations)))
		w.strings(l.Locations...)
	}
}

// resLines writes the lines of a reservation: SKU, quantity and
// allocations (Held is Quantity wherever they are written).
func (w *writer) resLines(lines []ReservationLine) {
	w.uvarint(uint64(len(lines)))
	for _, l := range lines {
		w.string(l.SKU)
		w.varint(l.Quantity)
		w.allocations(l.Allocations)
	}
}

func (r *reader) resLines() []ReservationLine {
	n := r.count()
	if n == 0 {
		return nil
	}
	lines := make([]ReservationLine, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		l := ReservationLine{SKU: r.string(), Quantity: r.varint()}
		l.Held = l.Quantity
		l.Allocations = r.allocations()
		lines = append(lines, l)
	}
	return lines
}

// decodeChangeSaga decodes the events of a change of a cart spanning
// partitions, all written in event format 7 or later.
func decodeChangeSaga(r *reader, t EventType) EventData {
	switch t {
	case TypeSagaChangeStarted:
		d := SagaChangeStarted{Reservation: r.string(), Step: r.int()}
		d.Participants = r.ints()
		d.Lines = r.reserveLines()
		d.Region = r.string()
		d.ExpiresAt = r.time()
		d.Previous = r.resLines()
		d.Local = r.resLines()
		d.Key = r.string()
		d.KeyFingerprint = r.u64()
		d.Fingerprint = r.u64()
		return d
	case TypeSagaChangeAcked:
		d := SagaChangeAcked{Reservation: r.string(), Step: r.int(), From: r.int()}
		d.Lines = r.resLines()
		d.Shortfalls = r.shortfalls(true, true)
		return d
	case TypeSagaChangeDecided:
		d := SagaChangeDecided{Reservation: r.string(), Step: r.int(), Made: r.bool()}
		d.Participants = r.ints()
		d.Lines = r.resLines()
		d.ExpiresAt = r.time()
		d.Shortfalls = r.shortfalls(true, true)
		return d
	case TypeSagaChangeGrown:
		d := SagaChangeGrown{Reservation: r.string(), Step: r.int()}
		d.Lines = r.resLines()
		d.Shortfalls = r.shortfalls(true, true)
		return d
	default:
		return SagaChangeTrimmed{Reservation: r.string(), Step: r.int(), ExpiresAt: r.time()}
	}
}

// reader consumes primitive values from a byte slice. The first error sticks:
// later reads return zero values, so decoders check r.err once at the end.
type reader struct {
	buf []byte
	err error
	// seen keeps the last few strings read by recent, so that the SKU and
	// locations repeated through a batch are allocated once: replaying a
	// hot SKU's log then costs fewer allocations, and the recovered state
	// shares its strings.
	seen [4]string
	next int
}

// recent reads a string like string, but returns an identical string read
// recently instead of allocating a new one.
func (r *reader) recent() string {
	n := r.uvarint()
	if n > uint64(len(r.buf)) {
		r.fail("string length %d exceeds input", n)
		return ""
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	for _, s := range r.seen {
		if s == string(b) { // compiled without allocating
			return s
		}
	}
	s := string(b)
	r.seen[r.next%len(r.seen)] = s
	r.next++
	return s
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	r.buf = nil
}

func (r *reader) byte() byte {
	if len(r.buf) < 1 {
		r.fail("unexpected end of input")
		return 0
	}
	b := r.buf[0]
	r.buf = r.buf[1:]
	return b
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *reader) int() int {
	v := r.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail("integer %d out of range", v)
		return 0
	}
	return int(v)
}

func (r *reader) u64() uint64 {
	if len(r.buf) < 8 {
		r.fail("unexpected end of input")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.buf)
	r.buf = r.buf[8:]
	return v
}

func (r *reader) bool() bool { return r.byte() != 0 }

func (r *reader) time() time.Time { return fromUnixNano(r.varint()) }

// count reads a list length. Every encoded item takes at least one byte, so a
// length beyond the remaining input is corrupt; checking it here keeps a
// hostile input from forcing a huge allocation.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.buf)) {
		r.fail("list length %d exceeds input", n)
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.buf)) {
		r.fail("string length %d exceeds input", n)
		return ""
	}
	s := string(r.buf[:n])
	r.buf = r.buf[n:]
	return s
}

// shortfalls decodes shortfalls; caps says whether the encoding carries
// their sales caps (event format 3, snapshot format 4 and retired record
// format 3 do), limits whether it carries their customer limits (event
// format 4, snapshot format 5, retired record format 4 and message format 3
// do).
func (r *reader) shortfalls(caps, limits bool) []Shortfall {
	n := r.count()
	if n == 0 {
		return nil
	}
	v := make([]Shortfall, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		s := Shortfall{SKU: r.string(), Requested: r.varint(), Available: r.varint()}
		if caps {
			s.SalesCap = r.varint()
		}
		if limits {
			s.CustomerLimit = r.limitShortfall()
		}
		v = append(v, s)
	}
	return v
}

func (r *reader) stringList() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	v := make([]string, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		v = append(v, r.string())
	}
	return v
}

func (r *reader) ints() []int {
	n := r.count()
	if n == 0 {
		return nil
	}
	v := make([]int, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		v = append(v, r.int())
	}
	return v
}

func (r *reader) lots() []LotQty {
	n := r.count()
	if n == 0 {
		return nil
	}
	lots := make([]LotQty, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		lots = append(lots, LotQty{Location: r.recent(), Lot: r.recent(), BestBefore: r.recent(), Quantity: r.varint()})
	}
	return lots
}

func (r *reader) allocations() []Allocation {
	n := r.count()
	if n == 0 {
		return nil
	}
	as := make([]Allocation, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		as = append(as, Allocation{Location: r.recent(), Quantity: r.varint()})
	}
	return as
}

func (r *reader) location() Location {
	l := Location{ID: r.string(), Kind: LocationKind(r.string()), Region: r.string()}
	l.Priority = r.int()
	return l
}

func (r *reader) reserveLines() []ReserveLine {
	n := r.count()
	if n == 0 {
		return nil
	}
	lines := make([]ReserveLine, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		l := ReserveLine{SKU: r.string(), Location: r.string(), Quantity: r.varint(), Split: r.bool()}
		if m := r.count(); m > 0 {
			l.Locations = make([]string, 0, m)
			for j := 0; j < m && r.err == nil; j++ {
				l.Locations = append(l.Locations, r.string())
			}
		}
		lines = append(lines, l)
	}
	return lines
}

// unixNano encodes a time as nanoseconds since the Unix epoch, with the zero
// time as 0, so that "no time" survives a round trip.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
