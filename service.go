package stockd

import (
	"context"
	"time"
)

// Service is everything stockd does, as seen by a client. The engine
// implements it in-process; the HTTP client implements it over the wire, so
// the CLI and the end-to-end tests drive the real API through the same
// interface.
//
// Commands that create an entity report created: true when the command was
// accepted now, false when it repeats one accepted earlier (same id, same
// content), in which case the entity is returned as it is now.
type Service interface {
	ConfigureLocation(ctx context.Context, c ConfigureLocation) (Location, error)
	Location(ctx context.Context, id string) (Location, error)
	Locations(ctx context.Context) ([]Location, error)
	ConfigureSKU(ctx context.Context, c ConfigureSKU) (SKUConfig, error)
	// DefineBundle makes a SKU a bundle of components, or changes its
	// definition (see DefineBundle); Bundle returns a bundle's definition.
	DefineBundle(ctx context.Context, c DefineBundle) (Bundle, error)
	Bundle(ctx context.Context, sku string) (Bundle, error)

	Receive(ctx context.Context, c ReceiveStock) (r Receipt, created bool, err error)
	Adjust(ctx context.Context, c AdjustStock) (a Adjustment, created bool, err error)
	Count(ctx context.Context, c CountStock) (n Count, created bool, err error)
	Transfer(ctx context.Context, c TransferStock) (t Transfer, created bool, err error)
	ArriveTransfer(ctx context.Context, c ArriveTransfer) (Transfer, error)
	GetTransfer(ctx context.Context, id string) (Transfer, error)

	// Incoming stock (preorders.go).
	ExpectReceipt(ctx context.Context, c ExpectReceipt) (e ExpectedReceipt, created bool, err error)
	ArriveExpected(ctx context.Context, c ArriveExpected) (ExpectedReceipt, error)
	CancelExpected(ctx context.Context, c CancelExpected) (ExpectedReceipt, error)
	GetExpectedReceipt(ctx context.Context, id string) (ExpectedReceipt, error)

	Reserve(ctx context.Context, c Reserve) (r Reservation, created bool, err error)
	Extend(ctx context.Context, c ExtendReservation) (Reservation, error)
	Commit(ctx context.Context, c CommitReservation) (Reservation, error)
	Release(ctx context.Context, c ReleaseReservation) (Reservation, error)
	// Change replaces a held reservation's lines, all or nothing (see
	// ChangeReservation).
	Change(ctx context.Context, c ChangeReservation) (Reservation, error)
	GetReservation(ctx context.Context, id string) (Reservation, error)

	// SKU returns a SKU's state now, or as of a past time or position.
	SKU(ctx context.Context, sku string, at AsOf) (SKUState, error)
	// History returns a page of a SKU's events.
	History(ctx context.Context, sku string, q HistoryQuery) (HistoryPage, error)
}

// AsOf selects a past state. The zero value means now.
type AsOf struct {
	// Time, when set, selects the state after every event up to and
	// including that moment.
	Time time.Time
	// Position, when set, selects the state after every event of the SKU's
	// partition up to and including that position.
	Position uint64
}

// IsZero reports whether a selects the current state.
func (a AsOf) IsZero() bool { return a.Time.IsZero() && a.Position == 0 }

// HistoryQuery selects a page of a SKU's events.
type HistoryQuery struct {
	// After is the version of the last event already seen; 0 starts at
	// the beginning.
	After uint64
	// Limit bounds the page; 0 means a default.
	Limit int
}

// HistoryPage is a page of a SKU's events. Next is the After of the following
// page, or 0 when there is none yet.
type HistoryPage struct {
	Events []Event
	Next   uint64
}

// ReplaySKU folds the events of one SKU, in version order, into the state of
// that SKU. It is how a SKU's state as of a past moment is rebuilt: the same
// Apply as live, over a subset of a partition's log.
func ReplaySKU(sku string, partition, partitions int, limits Limits, events []Event) (SKUState, bool, error) {
	r := NewSKUReplayer(sku, partition, partitions, limits)
	if err := r.Apply(events); err != nil {
		return SKUState{}, false, err
	}
	v, ok := r.View()
	return v, ok, nil
}

// SKUReplayer folds the events of one SKU page by page, so that rebuilding a
// SKU with a long history needs memory for one page and for what the SKU
// holds at that point, not for the whole history. Between pages it forgets
// what no later event of the SKU can need and no view shows: reservations
// that are no longer held (committed, released, expired), the records of
// receipts, adjustments and counts, and transfers that arrived. Once a
// reservation is settled no later event of the SKU holds stock for it again
// (a retry of a cart that a participant compensated is a new hold, and the
// participant forgot the old one): forgetting it changes no view.
type SKUReplayer struct {
	sku string
	s   *State
	// settled counts what became forgettable since the last compaction.
	settled int
}

// NewSKUReplayer returns a replayer of sku, which lives in partition of
// partitions.
func NewSKUReplayer(sku string, partition, partitions int, limits Limits) *SKUReplayer {
	return &SKUReplayer{sku: sku, s: NewState(partition, partitions, limits)}
}

// compactEvery is the least number of settled entries that makes a
// replayer compact its state; it also waits until they are at least half of
// what it holds, so compaction costs O(1) per event.
var compactEvery = 4096

// Apply folds the next events of the SKU, in version order, continuing from
// the last event applied.
func (r *SKUReplayer) Apply(events []Event) error {
	s := r.s
	for _, e := range events {
		// The events of one SKU are a subsequence of the partition's log:
		// positions have gaps, versions do not.
		s.head = e.Position - 1
		if err := s.Apply(e); err != nil {
			return err
		}
		switch d := e.Data.(type) {
		case ReservationReleased:
			r.settled++
			if d.Reason == ReleaseCompensated {
				// A cart that could not be held is forgotten once it is
				// undone, so that a retry with its id holds afresh: by a
				// participant in the decision that releases its lines, by
				// the home at SagaSettled. Neither the other lines nor
				// SagaSettled are in this SKU's history, so the fold
				// forgets the cart here; nothing of this SKU refers to it
				// in between. Otherwise a retry's hold would join the
				// released cart: counted in reserved, not listed in holds.
				delete(s.reservations, d.Reservation)
			}
		case ReservationCommitted, StockReceived, StockAdjusted, StockCounted, TransferArrived:
			r.settled++
		}
	}
	if r.settled >= compactEvery && 2*r.settled >= len(s.reservations)+len(s.records)+len(s.transfers) {
		r.compact()
	}
	return nil
}

// compact forgets what no later event of the SKU needs and no view shows.
func (r *SKUReplayer) compact() {
	s := r.s
	for id, res := range s.reservations {
		if res.status != StatusHeld && res.status != StatusPending {
			delete(s.reservations, id)
		}
	}
	for id, t := range s.transfers {
		if !t.arrivedAt.IsZero() {
			delete(s.transfers, id)
		}
	}
	clear(s.records)
	// Timers point at reservations: rebuild them from those kept.
	s.rearm()
	r.settled = 0
}

// Version returns the SKU version of the last event applied, 0 if none: the
// AfterVersion of the next page to read.
func (r *SKUReplayer) Version() uint64 {
	if sk := r.s.skus[r.sku]; sk != nil {
		return sk.version
	}
	return 0
}

// View returns the SKU's state after the events applied so far, with the
// position and time of the last of them, and false if none was applied.
func (r *SKUReplayer) View() (SKUState, bool) { return r.s.SKUView(r.sku) }

type actorKey struct{}

// WithActor returns a context that names who issues the commands made with
// it; events record the actor.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor named by WithActor, or "".
func ActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}
