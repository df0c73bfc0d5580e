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

	Receive(ctx context.Context, c ReceiveStock) (r Receipt, created bool, err error)
	Adjust(ctx context.Context, c AdjustStock) (a Adjustment, created bool, err error)
	Count(ctx context.Context, c CountStock) (n Count, created bool, err error)
	Transfer(ctx context.Context, c TransferStock) (t Transfer, created bool, err error)
	ArriveTransfer(ctx context.Context, c ArriveTransfer) (Transfer, error)
	GetTransfer(ctx context.Context, id string) (Transfer, error)

	Reserve(ctx context.Context, c Reserve) (r Reservation, created bool, err error)
	Extend(ctx context.Context, c ExtendReservation) (Reservation, error)
	Commit(ctx context.Context, c CommitReservation) (Reservation, error)
	Release(ctx context.Context, c ReleaseReservation) (Reservation, error)
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
	s := NewState(partition, partitions, limits)
	for _, e := range events {
		// The events of one SKU are a subsequence of the partition's log:
		// positions have gaps, versions do not.
		s.head = e.Position - 1
		if err := s.Apply(e); err != nil {
			return SKUState{}, false, err
		}
	}
	v, ok := s.SKUView(sku)
	return v, ok, nil
}

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
