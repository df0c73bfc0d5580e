package stockd

import (
	"fmt"
	"strconv"
	"time"
)

// Event is an immutable fact in a partition's log. Events of one SKU form a
// stream with consecutive versions; events of one partition have consecutive,
// gap-free positions. Events that concern no single SKU (location
// configuration, the bookkeeping of reservations that span partitions) have an
// empty SKU and version 0.
type Event struct {
	Partition int
	Position  uint64
	SKU       string
	Version   uint64
	Time      time.Time
	// CommandID is the id of the entity or command that caused the event:
	// a receipt, adjustment, count, transfer or reservation id.
	CommandID string
	// Actor is who issued the command, when known.
	Actor string
	Data  EventData
}

// ID is the event's stable identity: its partition and position.
func (e Event) ID() string {
	return strconv.Itoa(e.Partition) + "-" + strconv.FormatUint(e.Position, 10)
}

// Type is the name of the event's type.
func (e Event) Type() EventType { return e.Data.EventType() }

// EventData is the type-specific content of an event.
type EventData interface {
	EventType() EventType
}

// EventType names a kind of event. The numeric values are stored; never
// reorder or reuse them.
type EventType uint8

// The event types.
const (
	TypeStockReceived        EventType = 1
	TypeStockAdjusted        EventType = 2
	TypeStockCounted         EventType = 3
	TypeStockTransferred     EventType = 4
	TypeTransferArrived      EventType = 5
	TypeSKUConfigured        EventType = 6
	TypeLocationConfigured   EventType = 7
	TypeStockReserved        EventType = 8
	TypeReservationExtended  EventType = 9
	TypeReservationCommitted EventType = 10
	TypeReservationReleased  EventType = 11
	TypeLotExpired           EventType = 12
	TypeShortageDetected     EventType = 13
	TypeSagaStarted          EventType = 14
	TypeSagaStepAcked        EventType = 15
	TypeReservationHeld      EventType = 16
	TypeSagaStepStarted      EventType = 17
	TypeSagaSettled          EventType = 18
	TypeEntitiesRetired      EventType = 19
	TypeLowStock             EventType = 20
	TypeOutOfStock           EventType = 21
	TypeBackInStock          EventType = 22
)

var eventTypeNames = [...]string{
	TypeStockReceived:            "StockReceived",
	TypeStockAdjusted:            "StockAdjusted",
	TypeStockCounted:             "StockCounted",
	TypeStockTransferred:         "StockTransferred",
	TypeTransferArrived:          "TransferArrived",
	TypeSKUConfigured:            "SKUConfigured",
	TypeLocationConfigured:       "LocationConfigured",
	TypeStockReserved:            "StockReserved",
	TypeReservationExtended:      "ReservationExtended",
	TypeReservationCommitted:     "ReservationCommitted",
	TypeReservationReleased:      "ReservationReleased",
	TypeLotExpired:               "LotExpired",
	TypeShortageDetected:         "ShortageDetected",
	TypeSagaStarted:              "SagaStarted",
	TypeSagaStepAcked:            "SagaStepAcked",
	TypeReservationHeld:          "ReservationHeld",
	TypeSagaStepStarted:          "SagaStepStarted",
	TypeSagaSettled:              "SagaSettled",
	TypeEntitiesRetired:          "EntitiesRetired",
	TypeLowStock:                 "LowStock",
	TypeOutOfStock:               "OutOfStock",
	TypeBackInStock:              "BackInStock",
	TypeReservationChanged:       "ReservationChanged",
	TypeBundleDefined:            "BundleDefined",
	TypeBundlesReserved:          "BundlesReserved",
	TypeBundlesCommitted:         "BundlesCommitted",
	TypeSagaChangeStarted:        "SagaChangeStarted",
	TypeSagaChangeAcked:          "SagaChangeAcked",
	TypeSagaChangeDecided:        "SagaChangeDecided",
	TypeSagaChangeGrown:          "SagaChangeGrown",
	TypeSagaChangeTrimmed:        "SagaChangeTrimmed",
	TypeExpectedReceiptRecorded:  "ExpectedReceiptRecorded",
	TypeExpectedReceiptArrived:   "ExpectedReceiptArrived",
	TypeExpectedReceiptCancelled: "ExpectedReceiptCancelled",
}

// String returns the type's name, such as "StockReserved".
func (t EventType) String() string {
	if int(t) < len(eventTypeNames) && eventTypeNames[t] != "" {
		return eventTypeNames[t]
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// StockReceived records a receipt; the receipt id is the event's CommandID.
type StockReceived struct {
	Location   string `json:"location"`
	Quantity   int64  `json:"quantity"`
	Lot        string `json:"lot,omitempty"`
	BestBefore string `json:"best_before,omitempty"`
	// Fingerprint is the digest of the receipt request, kept so a replay
	// can be told apart from a reuse of its id.
	Fingerprint uint64 `json:"-"`
}

// StockAdjusted records an adjustment; Lots lists what each lot gained or
// lost.
type StockAdjusted struct {
	Location    string       `json:"location"`
	Delta       int64        `json:"delta"`
	Reason      AdjustReason `json:"reason"`
	Lots        []LotQty     `json:"lots"`
	Fingerprint uint64       `json:"-"`
}

// StockCounted records a count that set on_hand; Delta is the change it made.
type StockCounted struct {
	Location    string   `json:"location"`
	OnHand      int64    `json:"on_hand"`
	Delta       int64    `json:"delta"`
	Lots        []LotQty `json:"lots"`
	Fingerprint uint64   `json:"-"`
}

// StockTransferred records stock leaving From for To, lots first-expiry-first-out.
type StockTransferred struct {
	From        string   `json:"from"`
	To          string   `json:"to"`
	Quantity    int64    `json:"quantity"`
	Lots        []LotQty `json:"lots"`
	Fingerprint uint64   `json:"-"`
}

// TransferArrived records a transfer's stock booked into its destination.
type TransferArrived struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Quantity int64    `json:"quantity"`
	Lots     []LotQty `json:"lots"`
}

// SKUConfigured records a SKU's configuration.
type SKUConfigured struct {
	SafetyStock       int64 `json:"safety_stock"`
	LowStockThreshold int64 `json:"low_stock_threshold"`
	// SalesCap is the most units that may ever be committed; 0 is no cap.
	SalesCap int64 `json:"sales_cap,omitempty"`
	// CustomerLimit is the per-customer limit; Units 0 is none.
	CustomerLimit CustomerLimit `json:"customer_limit,omitzero"`
	// Preorders lets reservations hold expected stock (preorders.go).
	Preorders bool `json:"preorders,omitempty"`
}

// LocationConfigured records a location's configuration.
type LocationConfigured struct {
	Location Location `json:"location"`
}

// StockReserved records one line of a reservation held in this partition.
type StockReserved struct {
	Reservation string       `json:"reservation"`
	Quantity    int64        `json:"quantity"`
	Allocations []Allocation `json:"allocations"`
	ExpiresAt   time.Time    `json:"expires_at"`
	Customer    string       `json:"customer,omitempty"`
	// Home is the partition that drives the reservation: it owns its
	// deadline and, for a reservation spanning partitions, its saga.
	Home        int    `json:"home"`
	Fingerprint uint64 `json:"-"`
	// Attempt, for a line held by a participant of a reservation spanning
	// partitions, names the attempt it was held for: the position of the
	// SagaStarted that began it at the home. It tells a late message of an
	// earlier attempt with the same id from one of this attempt. Zero for
	// lines held at the home, and in logs written before it existed.
	Attempt uint64 `json:"attempt,omitempty"`
	// Preorders are the units of the line held against expected
	// receipts, beyond Allocations (preorders.go).
	Preorders []PreorderHold `json:"preorders,omitempty"`
}

// ReservationExtended records a new deadline for one line.
type ReservationExtended struct {
	Reservation string    `json:"reservation"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Key is the idempotency key the command carried, if any; the
	// reservation remembers it with KeyFingerprint.
	Key            string `json:"idempotency_key,omitempty"`
	KeyFingerprint uint64 `json:"-"`
	// Step, for a participant's line, is the saga step that extended it:
	// a participant ignores an extension older than the one it carried
	// out, which a delayed message may bring.
	Step int `json:"step,omitempty"`
}

// ReservationCommitted records one line of a reservation turned into a sale:
// Quantity committed, Released returned to available, Allocations the
// committed quantity per location, Lots what was consumed.
type ReservationCommitted struct {
	Reservation    string       `json:"reservation"`
	Quantity       int64        `json:"quantity"`
	Released       int64        `json:"released"`
	Allocations    []Allocation `json:"allocations"`
	Lots           []LotQty     `json:"lots"`
	Key            string       `json:"idempotency_key,omitempty"`
	KeyFingerprint uint64       `json:"-"`
	// Preorders are the units committed against expected receipts before
	// they arrived, beyond Allocations: they leave on_hand when their
	// receipt arrives (preorders.go).
	Preorders []PreorderHold `json:"preorders,omitempty"`
}

// ReservationReleased records one line of a reservation returned to available.
type ReservationReleased struct {
	Reservation    string        `json:"reservation"`
	Reason         ReleaseReason `json:"reason"`
	Quantity       int64         `json:"quantity"`
	Key            string        `json:"idempotency_key,omitempty"`
	KeyFingerprint uint64        `json:"-"`
}

// LotExpired records the remainder of a lot leaving on_hand at its best-before.
type LotExpired struct {
	Location   string `json:"location"`
	Lot        string `json:"lot"`
	BestBefore string `json:"best_before"`
	Quantity   int64  `json:"quantity"`
}

// ShortageDetected records that held stock at a location exceeds what is
// physically there, because of a loss found after the holds were granted.
// Shortage is the number of held units that are missing.
type ShortageDetected struct {
	Location string `json:"location"`
	Shortage int64  `json:"shortage"`
}

// The stock signals. The core emits them itself, in the SKU's own stream,
// right after the events of the decision that made the SKU's available stock
// (as SKUState.Available reports it: the sum over locations of what each can
// sell) cross a line: once per crossing, never on every change. They carry
// the command id and actor of that decision and change no stock. See
// signals.go for the rules.

// LowStock records that the SKU's available stock fell from above its
// low-stock threshold to or below it. A SKU whose threshold is 0 never
// signals LowStock. A fall from above the threshold straight to 0 signals
// LowStock, then OutOfStock.
type LowStock struct {
	// Available is the SKU's available stock after the decision.
	Available int64 `json:"available"`
	// LowStockThreshold is the threshold that was crossed.
	LowStockThreshold int64 `json:"low_stock_threshold"`
}

// OutOfStock records that the SKU's available stock fell from above 0 to 0:
// nothing of it can be sold anywhere.
type OutOfStock struct {
	// Available is the SKU's available stock after the decision: 0.
	Available int64 `json:"available"`
}

// BackInStock records that the SKU's available stock rose from 0 to above
// 0, including the first time a SKU ever becomes available: a SKU is out of
// stock until its first BackInStock. LowStockThreshold lets a reader see
// whether it came back inside the low band (a rise through the threshold
// signals nothing else).
type BackInStock struct {
	// Available is the SKU's available stock after the decision.
	Available int64 `json:"available"`
	// LowStockThreshold is the SKU's threshold after the decision.
	LowStockThreshold int64 `json:"low_stock_threshold"`
}

// SagaStarted records, at its home partition, a reservation whose lines span
// partitions. Lines are all the requested lines; Participants are the other
// partitions asked to hold theirs.
type SagaStarted struct {
	Reservation  string        `json:"reservation"`
	Customer     string        `json:"customer,omitempty"`
	CreatedAt    time.Time     `json:"created_at"`
	ExpiresAt    time.Time     `json:"expires_at"`
	Lines        []ReserveLine `json:"lines"`
	Participants []int         `json:"participants"`
	Fingerprint  uint64        `json:"-"`
	// Region restricts allocation at the participants, as Reserve.Region
	// does; the home keeps it to ask again for a hold that went
	// unanswered.
	Region string `json:"region,omitempty"`
}

// SagaStepAcked records, at the home partition, a participant's answer to a
// saga step. For a hold step, Held lists the participant's lines and their
// allocations, or Shortfalls says why it could not hold them.
type SagaStepAcked struct {
	Reservation string            `json:"reservation"`
	Step        int               `json:"step"`
	From        int               `json:"from"`
	Held        []ReservationLine `json:"held,omitempty"`
	Shortfalls  []Shortfall       `json:"shortfalls,omitempty"`
}

// ReservationHeld records that every line of a reservation spanning
// partitions is held.
type ReservationHeld struct {
	Reservation string `json:"reservation"`
}

// SagaStepStarted records, at the home partition, an instruction sent to the
// participants of a reservation spanning partitions.
type SagaStepStarted struct {
	Reservation  string        `json:"reservation"`
	Step         int           `json:"step"`
	Action       SagaAction    `json:"action"`
	Participants []int         `json:"participants"`
	ExpiresAt    time.Time     `json:"expires_at,omitzero"`
	Reason       ReleaseReason `json:"reason,omitempty"`
	Lines        []CommitLine  `json:"lines,omitempty"`
}

// EntitiesRetired records that settled entities left the partition's memory
// once the retention window had passed since they settled: committed,
// released and expired reservations, arrived transfers, and the records of
// receipts, adjustments and counts. Keys are idempotency keys in their string
// form ("reservation:r-1"). Nothing about stock changes; the entities' ids are
// still answered, from the retired records the store keeps (RetiredRecord).
type EntitiesRetired struct {
	Keys []string `json:"keys"`
}

// SagaSettled records that every participant carried out a saga step.
type SagaSettled struct {
	Reservation string `json:"reservation"`
	Step        int    `json:"step"`
}

// SagaAction is what a saga step asks participants to do.
type SagaAction uint8

// The saga actions.
const (
	SagaHold    SagaAction = 1
	SagaCommit  SagaAction = 2
	SagaRelease SagaAction = 3
	SagaExtend  SagaAction = 4
)

// String returns the action's name.
func (a SagaAction) String() string {
	switch a {
	case SagaHold:
		return "hold"
	case SagaCommit:
		return "commit"
	case SagaRelease:
		return "release"
	case SagaExtend:
		return "extend"
	case SagaChange:
		return "change"
	case SagaTrim:
		return "trim"
	}
	return "SagaAction(" + strconv.Itoa(int(a)) + ")"
}

// MarshalText encodes the action by name.
func (a SagaAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// EventType implements EventData.
func (StockReceived) EventType() EventType { return TypeStockReceived }

// EventType implements EventData.
func (StockAdjusted) EventType() EventType { return TypeStockAdjusted }

// EventType implements EventData.
func (StockCounted) EventType() EventType { return TypeStockCounted }

// EventType implements EventData.
func (StockTransferred) EventType() EventType { return TypeStockTransferred }

// EventType implements EventData.
func (TransferArrived) EventType() EventType { return TypeTransferArrived }

// EventType implements EventData.
func (SKUConfigured) EventType() EventType { return TypeSKUConfigured }

// EventType implements EventData.
func (LocationConfigured) EventType() EventType { return TypeLocationConfigured }

// EventType implements EventData.
func (StockReserved) EventType() EventType { return TypeStockReserved }

// EventType implements EventData.
func (ReservationExtended) EventType() EventType { return TypeReservationExtended }

// EventType implements EventData.
func (ReservationCommitted) EventType() EventType { return TypeReservationCommitted }

// EventType implements EventData.
func (ReservationReleased) EventType() EventType { return TypeReservationReleased }

// EventType implements EventData.
func (LotExpired) EventType() EventType { return TypeLotExpired }

// EventType implements EventData.
func (ShortageDetected) EventType() EventType { return TypeShortageDetected }

// EventType implements EventData.
func (SagaStarted) EventType() EventType { return TypeSagaStarted }

// EventType implements EventData.
func (SagaStepAcked) EventType() EventType { return TypeSagaStepAcked }

// EventType implements EventData.
func (ReservationHeld) EventType() EventType { return TypeReservationHeld }

// EventType implements EventData.
func (SagaStepStarted) EventType() EventType { return TypeSagaStepStarted }

// EventType implements EventData.
func (SagaSettled) EventType() EventType { return TypeSagaSettled }

// EventType implements EventData.
func (EntitiesRetired) EventType() EventType { return TypeEntitiesRetired }

// EventType implements EventData.
func (LowStock) EventType() EventType { return TypeLowStock }

// EventType implements EventData.
func (OutOfStock) EventType() EventType { return TypeOutOfStock }

// EventType implements EventData.
func (BackInStock) EventType() EventType { return TypeBackInStock }

// IsSignal reports whether t is a stock signal (LowStock, OutOfStock,
// BackInStock): an event decided alongside the change that caused it, carrying
// that change's command id.
func (t EventType) IsSignal() bool {
	return t == TypeLowStock || t == TypeOutOfStock || t == TypeBackInStock
}
