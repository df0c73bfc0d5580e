package stockd

import "time"

// LocationKind says what a location is.
type LocationKind string

// The kinds of location.
const (
	KindWarehouse  LocationKind = "warehouse"
	KindStore      LocationKind = "store"
	KindThirdParty LocationKind = "third_party"
)

// Location is a place that holds stock. Allocation by priority prefers lower
// Priority values; ties are broken by id. A location that holds stock but was
// never configured sorts after every configured one.
type Location struct {
	ID       string       `json:"id"`
	Kind     LocationKind `json:"kind"`
	Priority int          `json:"priority"`
	Region   string       `json:"region"`
}

// AdjustReason says why stock was adjusted.
type AdjustReason string

// The reasons for an adjustment.
const (
	ReasonCount    AdjustReason = "count"
	ReasonDamaged  AdjustReason = "damaged"
	ReasonLost     AdjustReason = "lost"
	ReasonFound    AdjustReason = "found"
	ReasonReturned AdjustReason = "returned"
	ReasonOther    AdjustReason = "other"
)

// ReservationStatus is where a reservation is in its life.
type ReservationStatus string

// The statuses of a reservation. Pending is only seen while a reservation that
// spans partitions is still being held; clients are answered once it is held
// or rejected.
const (
	StatusPending   ReservationStatus = "pending"
	StatusHeld      ReservationStatus = "held"
	StatusCommitted ReservationStatus = "committed"
	StatusReleased  ReservationStatus = "released"
	StatusExpired   ReservationStatus = "expired"
)

// ReleaseReason says why held stock went back to available.
type ReleaseReason string

// The reasons for a release.
const (
	// ReleaseRequested is a release asked for by a client.
	ReleaseRequested ReleaseReason = "released"
	// ReleaseExpired is a hold that reached its deadline.
	ReleaseExpired ReleaseReason = "expired"
	// ReleaseCompensated undoes the lines of a reservation spanning
	// partitions that could not be held completely.
	ReleaseCompensated ReleaseReason = "compensated"
	// ReleasePartialCommit returns the part of a line that a partial commit
	// did not take.
	ReleasePartialCommit ReleaseReason = "partial_commit"
)

// Allocation is a quantity held or taken at one location.
type Allocation struct {
	Location string `json:"location"`
	Quantity int64  `json:"quantity"`
}

// LotQty is a quantity of one lot at one location. An empty Lot with an empty
// BestBefore is undated stock.
type LotQty struct {
	Location   string `json:"location"`
	Lot        string `json:"lot"`
	BestBefore string `json:"best_before,omitempty"`
	Quantity   int64  `json:"quantity"`
}

// SKUState is the state of one SKU across its locations at one position.
type SKUState struct {
	SKU               string `json:"sku"`
	OnHand            int64  `json:"on_hand"`
	Reserved          int64  `json:"reserved"`
	Available         int64  `json:"available"`
	InTransit         int64  `json:"in_transit"`
	Shortage          int64  `json:"shortage"`
	SafetyStock       int64  `json:"safety_stock"`
	LowStockThreshold int64  `json:"low_stock_threshold"`
	// SalesCap is the most units that may ever be committed, 0 for no
	// cap; SalesCapRemaining, set only with a cap, is how many more may
	// still be held: the cap less the units committed and those held,
	// never below 0.
	SalesCap          int64           `json:"sales_cap"`
	SalesCapRemaining *int64          `json:"sales_cap_remaining,omitempty"`
	Version           uint64          `json:"version"`
	Position          uint64          `json:"position"`
	AsOf              time.Time       `json:"as_of"`
	Locations         []LocationState `json:"locations"`

	// CustomerLimit is the per-customer limit, nil for none.
	CustomerLimit *CustomerLimit `json:"customer_limit,omitempty"`

	// Derived is true for a bundle, whose stock is its Components':
	// Available is derived from theirs (see BundleStock).
	Derived    bool              `json:"derived,omitempty"`
	Components []BundleComponent `json:"components,omitempty"`

	// Preorders says whether reservations may hold expected stock;
	// Expected, Preordered and Preorderable add up the locations'.
	Preorders    bool  `json:"preorders"`
	Expected     int64 `json:"expected"`
	Preordered   int64 `json:"preordered"`
	Preorderable int64 `json:"preorderable"`
}

// LocationState is the stock of one SKU at one location. Available is
// on_hand − reserved − safety_stock; it is never pushed below zero by safety
// stock alone, only by a shortage: held units that are not physically there
// because of a loss found after the holds were granted.
type LocationState struct {
	Location  string    `json:"location"`
	OnHand    int64     `json:"on_hand"`
	Reserved  int64     `json:"reserved"`
	Available int64     `json:"available"`
	InTransit int64     `json:"in_transit"`
	Shortage  int64     `json:"shortage"`
	Lots      []LotView `json:"lots"`
	// Holds lists up to MaxHoldsListed active holds, earliest deadline
	// first; HoldCount is the full number.
	Holds     []HoldView `json:"holds"`
	HoldCount int        `json:"hold_count"`

	// Expected is the units the location's expected receipts will still
	// bring (less those sold before arrival), Preordered those held by
	// preorders, Preorderable those a preorder may still hold (0 unless
	// the SKU takes preorders).
	Expected     int64 `json:"expected"`
	Preordered   int64 `json:"preordered"`
	Preorderable int64 `json:"preorderable"`
}

// MaxHoldsListed bounds the holds listed per location in a SKUState.
const MaxHoldsListed = 100

// LotView is one lot in a LocationState.
type LotView struct {
	Lot        string `json:"lot"`
	Quantity   int64  `json:"quantity"`
	BestBefore string `json:"best_before,omitempty"`
}

// HoldView is one active hold in a LocationState.
type HoldView struct {
	Reservation string    `json:"reservation"`
	Quantity    int64     `json:"quantity"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Reservation is a hold of stock for a cart.
type Reservation struct {
	ID        string            `json:"id"`
	Status    ReservationStatus `json:"status"`
	Customer  string            `json:"customer,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt time.Time         `json:"expires_at"`
	Lines     []ReservationLine `json:"lines"`
	// Bundles lists the cart's bundle lines, whose components Lines hold.
	Bundles []ReservationBundle `json:"bundles,omitempty"`
}

// ReservationLine is one SKU of a reservation. Quantity is what the line holds
// or, once the reservation is committed, what was committed; Held keeps the
// quantity originally held.
type ReservationLine struct {
	SKU         string       `json:"sku"`
	Quantity    int64        `json:"quantity"`
	Held        int64        `json:"held"`
	Allocations []Allocation `json:"allocations"`

	// Preorder is how many of Quantity are held against expected stock
	// (listed in Preorders), not in Allocations; for a committed line,
	// how many were sold before they arrived. An arrival turns held
	// preorders into allocations, and Preorder falls to 0.
	Preorder  int64          `json:"preorder"`
	Preorders []PreorderHold `json:"preorders,omitempty"`
}

// TransferStatus is where a transfer is in its life.
type TransferStatus string

// The statuses of a transfer.
const (
	TransferStatusInTransit TransferStatus = "in_transit"
	TransferStatusArrived   TransferStatus = "arrived"
)

// Transfer is stock moving from one location to another.
type Transfer struct {
	ID        string         `json:"id"`
	SKU       string         `json:"sku"`
	From      string         `json:"from"`
	To        string         `json:"to"`
	Quantity  int64          `json:"quantity"`
	Status    TransferStatus `json:"status"`
	Lots      []LotView      `json:"lots"`
	SentAt    time.Time      `json:"sent_at"`
	ArrivedAt *time.Time     `json:"arrived_at,omitempty"`
}

// Receipt is stock received at a location.
type Receipt struct {
	ID         string    `json:"id"`
	SKU        string    `json:"sku"`
	Location   string    `json:"location"`
	Quantity   int64     `json:"quantity"`
	Lot        string    `json:"lot,omitempty"`
	BestBefore string    `json:"best_before,omitempty"`
	Time       time.Time `json:"time"`
	Position   uint64    `json:"position"`
}

// Adjustment is a change of on_hand with a reason.
type Adjustment struct {
	ID       string       `json:"id"`
	SKU      string       `json:"sku"`
	Location string       `json:"location"`
	Delta    int64        `json:"delta"`
	Reason   AdjustReason `json:"reason"`
	Lot      string       `json:"lot,omitempty"`
	Time     time.Time    `json:"time"`
	Position uint64       `json:"position"`
}

// Count is a physical count that set on_hand; Delta is the change it made.
type Count struct {
	ID       string    `json:"id"`
	SKU      string    `json:"sku"`
	Location string    `json:"location"`
	OnHand   int64     `json:"on_hand"`
	Delta    int64     `json:"delta"`
	Time     time.Time `json:"time"`
	Position uint64    `json:"position"`
}

// SKUConfig is the configuration of one SKU: its safety stock per location
// and the low-stock threshold of its LowStock signal (0: none).
type SKUConfig struct {
	SKU               string `json:"sku"`
	SafetyStock       int64  `json:"safety_stock"`
	LowStockThreshold int64  `json:"low_stock_threshold"`
	// SalesCap is the most units that may ever be committed, 0 for no
	// cap; SalesCapRemaining, set only with a cap, is how many more may
	// still be held (the cap less the units committed and held, never
	// below 0).
	SalesCap          int64  `json:"sales_cap"`
	SalesCapRemaining *int64 `json:"sales_cap_remaining,omitempty"`

	// CustomerLimit is the per-customer limit, nil for none.
	CustomerLimit *CustomerLimit `json:"customer_limit,omitempty"`

	// Preorders lets reservations hold expected stock.
	Preorders bool `json:"preorders"`
}
