package stockd

import (
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/unicode/rangetable"
)

// Command is a request to change stock. Commands are plain values: they are
// validated on their own by Validate and decided against a State by
// State.Decide.
type Command interface {
	// Validate checks the command without looking at any state.
	Validate(Limits) error
	// route says where the command is decided.
	route() route
}

// route tells the engine where a command goes: the partition of SKU, or the
// partition recorded for Key (an existing reservation or transfer), or the
// partition that owns locations.
type route struct {
	sku      string
	key      Key
	location bool
}

// Limits bound what a single command may ask for. The zero value is not
// useful; start from DefaultLimits.
type Limits struct {
	// MaxLines is the largest number of lines in one reservation.
	MaxLines int
	// MaxQuantity bounds every quantity, delta and count.
	MaxQuantity int64
	// DefaultTTL is the hold time of a reservation that names none.
	DefaultTTL time.Duration
	// MaxTTL is the longest hold time a reservation or extension may ask.
	MaxTTL time.Duration
	// Retain is how long a settled entity stays in memory before it is
	// retired (see EntitiesRetired); 0 keeps everything.
	Retain time.Duration
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{
	MaxLines:    100,
	MaxQuantity: 1_000_000_000,
	DefaultTTL:  15 * time.Minute,
	MaxTTL:      7 * 24 * time.Hour,
	Retain:      7 * 24 * time.Hour,
}

// MaxIDLength bounds ids, SKUs, locations, lots, customers and regions.
const MaxIDLength = 128

// ConfigureLocation sets a location's kind, priority and region.
type ConfigureLocation struct {
	ID       string
	Kind     LocationKind
	Priority int
	Region   string
}

// ConfigureSKU sets a SKU's safety stock (units at each location that are
// never sold) and low-stock threshold: the SKU's log records LowStock when
// its available stock falls from above the threshold to it or below; 0 means
// never. Both are replaced: a threshold left out is 0. A change of the
// threshold alone records no signal; a change of safety stock records those
// its change of available stock crosses (see signals.go).
//
// SalesCap, when above 0, caps the units of the SKU that may ever be
// committed (a limited edition), whatever stock arrives: a reservation line
// is refused with CodeSalesCap when the units committed so far, the
// units held and the line's quantity together pass it. 0 means no cap, and
// it too is replaced: a cap left out is removed. A cap lowered below what is
// already held and committed takes nothing back: holds granted under the
// old cap stay valid and may still be committed, and the cap refuses every
// new hold until committed + held is below it again.
type ConfigureSKU struct {
	SKU               string
	SafetyStock       int64
	LowStockThreshold int64
	SalesCap          int64
	// CustomerLimit, when its Units are above 0, limits the units of the
	// SKU one customer may hold and commit within its Window (see
	// limits.go): a reservation line past it is refused with
	// CodeCustomerLimit, and a reservation of the SKU without a customer
	// with CodeCustomerRequired. It is replaced like the rest: a limit left
	// out is removed.
	CustomerLimit CustomerLimit
	// Preorders lets reservations hold expected stock (see
	// ExpectReceipt); it too is replaced. Turned off, it takes no
	// preorder hold back.
	Preorders bool
}

// ReceiveStock adds stock at a location, optionally as a dated lot. It is
// idempotent by ID: a re-dropped supplier file adds nothing.
type ReceiveStock struct {
	ID         string
	SKU        string
	Location   string
	Quantity   int64
	Lot        string
	BestBefore string // YYYY-MM-DD; the lot expires when that day ends (UTC)
}

// AdjustStock changes on_hand by Delta for a reason. A negative delta takes
// from the named lot, or first-expiry-first-out when none is named; a positive
// one adds to the named lot, or to undated stock.
type AdjustStock struct {
	ID       string
	SKU      string
	Location string
	Delta    int64
	Reason   AdjustReason
	Lot      string
}

// CountStock sets on_hand at a location to a counted value; the event records
// the difference.
type CountStock struct {
	ID       string
	SKU      string
	Location string
	OnHand   int64
}

// TransferStock moves available stock out of one location into the in-transit
// stock of another, lots first-expiry-first-out.
type TransferStock struct {
	ID       string
	SKU      string
	From     string
	To       string
	Quantity int64
}

// ArriveTransfer books a transfer's stock into its destination.
type ArriveTransfer struct {
	ID string
}

// Reserve holds stock for a cart: every line or none.
type Reserve struct {
	ID       string
	TTL      time.Duration // zero means Limits.DefaultTTL
	Customer string
	// Region, when set, restricts allocation to locations of that region.
	Region string
	Lines  []ReserveLine
}

// ReserveLine asks for a quantity of one SKU. With Location set only that
// location is used; with Locations set, those are tried in order; with
// neither, every location holding the SKU is tried by priority. Split allows
// the line to be held across several locations.
type ReserveLine struct {
	SKU       string   `json:"sku"`
	Quantity  int64    `json:"quantity"`
	Location  string   `json:"location,omitempty"`
	Locations []string `json:"locations,omitempty"`
	Split     bool     `json:"split,omitempty"`
}

// ExtendReservation moves a held reservation's deadline to now + TTL.
//
// Commands on an existing reservation may carry an idempotency key (the HTTP
// Idempotency-Key header): a repeat with the same key answers the reservation
// as it is instead of acting again, and the same key with a different request
// is refused. Keys are scoped to their reservation.
type ExtendReservation struct {
	ID  string
	TTL time.Duration
	Key string
}

// CommitReservation turns held stock into a sale. With no Lines the whole
// reservation is committed; otherwise each named SKU commits the given
// quantity and every remainder and unnamed line is released.
type CommitReservation struct {
	ID    string
	Lines []CommitLine
	Key   string
}

// CommitLine names the quantity of one SKU to commit.
type CommitLine struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// ReleaseReservation returns a reservation's held stock to available.
type ReleaseReservation struct {
	ID  string
	Key string
}

func (c ConfigureLocation) route() route  { return route{location: true} }
func (c ConfigureSKU) route() route       { return route{sku: c.SKU} }
func (c ReceiveStock) route() route       { return route{sku: c.SKU} }
func (c AdjustStock) route() route        { return route{sku: c.SKU} }
func (c CountStock) route() route         { return route{sku: c.SKU} }
func (c TransferStock) route() route      { return route{sku: c.SKU} }
func (c ArriveTransfer) route() route     { return route{key: Key{KindTransfer, c.ID}} }
func (c Reserve) route() route            { return route{sku: c.Lines[0].SKU} }
func (c ExtendReservation) route() route  { return route{key: Key{KindReservation, c.ID}} }
func (c CommitReservation) route() route  { return route{key: Key{KindReservation, c.ID}} }
func (c ReleaseReservation) route() route { return route{key: Key{KindReservation, c.ID}} }

// Key is an idempotency key: an entity id, namespaced by the kind of entity so
// that a receipt and a reservation may share an id.
type Key struct {
	Kind string
	ID   string
}

// The kinds of entity that claim idempotency keys.
const (
	KindReceipt     = "receipt"
	KindAdjustment  = "adjustment"
	KindCount       = "count"
	KindTransfer    = "transfer"
	KindReservation = "reservation"
)

// String returns the key as stores record it: "kind:id".
func (k Key) String() string { return k.Kind + ":" + k.ID }

// ParseKey is the inverse of Key.String.
func ParseKey(s string) Key {
	kind, id, _ := strings.Cut(s, ":")
	return Key{Kind: kind, ID: id}
}

// The string forms, as the state's records are keyed.
func receiptKey(id string) string     { return "receipt:" + id }
func adjustmentKey(id string) string  { return "adjustment:" + id }
func countKey(id string) string       { return "count:" + id }
func transferKey(id string) string    { return "transfer:" + id }
func reservationKey(id string) string { return "reservation:" + id }

// Routing describes where the engine sends a command.
type Routing struct {
	// SKU, when set, is the SKU whose partition decides the command.
	SKU string
	// Lookup, when set, is the key of an existing entity whose recorded
	// partition decides the command.
	Lookup Key
	// Locations is true for commands decided by the partition that owns
	// location configuration.
	Locations bool
	// Claim, when set, is the idempotency key a new entity claims, and
	// Fingerprint is the digest of the request that claims it.
	Claim       Key
	Fingerprint uint64
}

// RouteOf says where cmd is decided and which idempotency key it claims. The
// command must be valid.
func RouteOf(cmd Command) Routing {
	r := cmd.route()
	out := Routing{SKU: r.sku, Lookup: r.key, Locations: r.location}
	switch c := cmd.(type) {
	case ReceiveStock:
		out.Claim = Key{KindReceipt, c.ID}
	case AdjustStock:
		out.Claim = Key{KindAdjustment, c.ID}
	case CountStock:
		out.Claim = Key{KindCount, c.ID}
	case TransferStock:
		out.Claim = Key{KindTransfer, c.ID}
	case Reserve:
		out.Claim = Key{KindReservation, c.ID}
	case ExpectReceipt:
		out.Claim = Key{KindExpectedReceipt, c.ID}
	}
	if out.Claim.ID != "" {
		out.Fingerprint = Fingerprint(cmd)
	}
	return out
}

// PartitionOf returns the partition, in [0, partitions), that owns sku. It is
// FNV-1a of the SKU modulo the number of partitions: it must never change for
// an existing store.
func PartitionOf(sku string, partitions int) int {
	h := fnv1a(fnvOffset)
	h.string(sku)
	return int(uint64(h) % uint64(partitions))
}

// LocationPartition is the partition whose log holds location configuration.
const LocationPartition = 0

// Fingerprint is a digest of a command's content. Two requests with the same
// id are the same request exactly when their fingerprints are equal.
func Fingerprint(cmd Command) uint64 {
	h := fnv1a(fnvOffset)
	switch c := cmd.(type) {
	case ReceiveStock:
		h.strings("receive", c.ID, c.SKU, c.Location, c.Lot, c.BestBefore)
		h.int(c.Quantity)
	case AdjustStock:
		h.strings("adjust", c.ID, c.SKU, c.Location, string(c.Reason), c.Lot)
		h.int(c.Delta)
	case CountStock:
		h.strings("count", c.ID, c.SKU, c.Location)
		h.int(c.OnHand)
	case TransferStock:
		h.strings("transfer", c.ID, c.SKU, c.From, c.To)
		h.int(c.Quantity)
	case ExtendReservation:
		h.strings("extend", c.ID, c.Key)
		h.int(int64(c.TTL))
	case CommitReservation:
		h.strings("commit", c.ID, c.Key)
		h.int(int64(len(c.Lines)))
		if c.Lines == nil {
			h.int(-1)
		}
		for _, l := range c.Lines {
			h.strings(l.SKU)
			h.int(l.Quantity)
		}
	case ReleaseReservation:
		h.strings("release", c.ID, c.Key)
	case ChangeReservation:
		return changeFingerprint(c)
	case ExpectReceipt:
		return c.fingerprint()
	case Reserve:
		h.strings("reserve", c.ID, c.Customer, c.Region)
		h.int(int64(c.TTL))
		h.reserveLines(c.Lines)
	default:
		return 0
	}
	return uint64(h)
}

// fnv1a is an allocation-free FNV-1a 64-bit hash; it computes exactly what
// hash/fnv's New64a does.
type fnv1a uint64

const (
	fnvOffset fnv1a = 14695981039346656037
	fnvPrime  fnv1a = 1099511628211
)

func (h *fnv1a) string(s string) {
	for i := 0; i < len(s); i++ {
		*h ^= fnv1a(s[i])
		*h *= fnvPrime
	}
}

// strings hashes each string with its length, so that ("ab","c") and
// ("a","bc") differ.
func (h *fnv1a) strings(ss ...string) {
	for _, s := range ss {
		h.int(int64(len(s)))
		h.string(s)
	}
}

// reserveLines digests reservation lines, as a Reserve and a change carry
// them.
func (h *fnv1a) reserveLines(lines []ReserveLine) {
	h.int(int64(len(lines)))
	for _, l := range lines {
		h.strings(l.SKU, l.Location)
		h.int(l.Quantity)
		if l.Split {
			h.int(1)
		} else {
			h.int(0)
		}
		h.int(int64(len(l.Locations)))
		h.strings(l.Locations...)
	}
}

func (h *fnv1a) int(v int64) {
	for range 8 {
		*h ^= fnv1a(byte(v))
		*h *= fnvPrime
		v >>= 8
	}
}

// Validation.

func invalid(format string, args ...any) *Error { return Errorf(CodeInvalid, format, args...) }

// checkName validates a required id or name; see CheckName for the rules.
func checkName(field, s string) error {
	if s == "" {
		return invalid("%s is required", field)
	}
	return checkOptionalName(field, s)
}

// CheckName validates a required name — an id, SKU, location, customer —
// by the rules every command applies, so that adapters reject a bad name in
// a query exactly as a command would.
//
// Every id and name (SKUs, locations, reservation, transfer, receipt,
// adjustment and count ids, customers, lots, regions, idempotency keys)
// follows the same rules (DESIGN §7):
//
//   - 1 to MaxIDLength bytes of valid UTF-8, in Unicode normalization form
//     C (NFC), so that a name has a single encoding: "é" is the one code
//     point U+00E9, never "e" followed by a combining accent that looks the
//     same and compares unequal;
//   - no control characters (Unicode category Cc) and no format characters
//     (Cf): zero-width spaces and joiners, bidi overrides such as U+202E,
//     the byte order mark U+FEFF and the soft hyphen U+00AD are invisible,
//     and would let a SKU be created that looks exactly like another;
//   - the only white space is the plain space U+0020, and never at either
//     end: "Gouda 500g" is a name, " Gouda" is not. Other spaces (no-break,
//     en and em, ideographic, line and paragraph separators) look like U+0020
//     or break log lines, and were never accepted;
//   - no slash, and not "." or "..": every id must be addressable as one
//     URL path segment (where a space travels as %20, which the Go client
//     does), and path cleaning removes "." and ".." segments.
//
// Names of plain ASCII, nearly all of them, are checked byte by byte; only
// the others are decoded and checked for NFC.
func CheckName(field, value string) error { return checkName(field, value) }

func checkOptionalName(field, s string) error {
	if len(s) > MaxIDLength {
		return invalid("%s is longer than %d bytes", field, MaxIDLength)
	}
	if s == "" {
		return nil
	}
	if s == "." || s == ".." {
		// A URL path segment of . or .. is removed by path cleaning, so
		// such an id could never be addressed by its URL.
		return invalid("%s may not be %q", field, s)
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return invalid("%s may not begin or end with a space", field)
	}
	// Most names are plain ASCII: check those byte by byte, and only fall
	// back to decoding runes for the rest.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return checkUnicodeName(field, s)
		}
		if c < ' ' || c == 0x7f || c == '/' {
			return badRune(field, rune(c))
		}
	}
	return nil
}

// checkUnicodeName checks a name that is not plain ASCII, rune by rune, then
// for normalization form C.
func checkUnicodeName(field, s string) error {
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", field)
	}
	var top rune
	for _, r := range s {
		if r < utf8.RuneSelf {
			if r < ' ' || r == 0x7f || r == '/' {
				return badRune(field, r)
			}
			continue
		}
		top = max(top, r)
		if r < 0xa0 || unicode.Is(refusedRunes, r) {
			return badRune(field, r)
		}
	}
	// Every code point below U+0300 (Latin-1, Latin Extended, IPA) is its
	// own NFC form and none combines with its neighbours: names in European
	// languages need no normalization check. For the others the quick check
	// settles nearly every name without allocating; only a name it cannot
	// settle is checked in full.
	if top >= 0x300 && norm.NFC.QuickSpanString(s) != len(s) && !norm.NFC.IsNormalString(s) {
		return invalid("%s is not in Unicode normalization form C (NFC): send it composed, as %q", field, norm.NFC.String(s))
	}
	return nil
}

// refusedRunes are the characters outside ASCII a name may not contain:
// controls (Cc), format characters (Cf), and every white space but U+0020
// (Zs, Zl, Zp). One table, so that a rune costs one lookup.
var refusedRunes = rangetable.Merge(unicode.Cc, unicode.Cf, unicode.Zs, unicode.Zl, unicode.Zp)

// badRune returns the error for a name containing r, naming the character
// by its code point and what kind of character it is: the characters refused
// are mostly invisible, so quoting them would show nothing.
func badRune(field string, r rune) *Error {
	switch {
	case r == '/':
		return invalid("%s contains U+002F, a slash; names may not contain \"/\": every id must fit in one URL path segment", field)
	case unicode.IsControl(r):
		return invalid("%s contains U+%04X, a control character; names may not contain control or format characters", field, r)
	case unicode.Is(unicode.Cf, r):
		return invalid("%s contains U+%04X, a format character (invisible); names may not contain control or format characters", field, r)
	}
	return invalid("%s contains U+%04X, a space other than U+0020; names may contain only the plain space U+0020, and not at either end", field, r)
}

func checkQuantity(field string, q int64, lim Limits) error {
	if q < 1 || q > lim.MaxQuantity {
		return invalid("%s must be between 1 and %d, got %d", field, lim.MaxQuantity, q)
	}
	return nil
}

func checkTTL(ttl time.Duration, lim Limits, optional bool) error {
	if ttl == 0 && optional {
		return nil
	}
	if ttl <= 0 || ttl > lim.MaxTTL {
		return invalid("ttl must be positive and at most %s, got %s", lim.MaxTTL, ttl)
	}
	return nil
}

// checkDate validates a best-before date in the form YYYY-MM-DD.
func checkDate(field, s string) error {
	if s == "" {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil || len(s) != len(time.DateOnly) {
		return invalid("%s must be a date like 2027-03-15, got %q", field, s)
	}
	return nil
}

// Validate implements Command.
func (c ConfigureLocation) Validate(Limits) error {
	if err := checkName("location id", c.ID); err != nil {
		return err
	}
	switch c.Kind {
	case KindWarehouse, KindStore, KindThirdParty:
	default:
		return invalid("kind must be warehouse, store or third_party, got %q", c.Kind)
	}
	if c.Priority < 0 || c.Priority > math.MaxInt32 {
		return invalid("priority must be between 0 and %d", math.MaxInt32)
	}
	return checkOptionalName("region", c.Region)
}

// Validate implements Command.
func (c ConfigureSKU) Validate(lim Limits) error {
	if err := checkName("sku", c.SKU); err != nil {
		return err
	}
	if c.SafetyStock < 0 || c.SafetyStock > lim.MaxQuantity {
		return invalid("safety_stock must be between 0 and %d", lim.MaxQuantity)
	}
	if c.LowStockThreshold < 0 || c.LowStockThreshold > lim.MaxQuantity {
		return invalid("low_stock_threshold must be between 0 and %d", lim.MaxQuantity)
	}
	if c.SalesCap < 0 || c.SalesCap > lim.MaxQuantity {
		return invalid("sales_cap must be between 0 and %d", lim.MaxQuantity)
	}
	if err := checkCustomerLimit(c.CustomerLimit, lim); err != nil {
		return err
	}
	return nil
}

// Validate implements Command.
func (c ReceiveStock) Validate(lim Limits) error {
	return firstError(
		checkName("id", c.ID),
		checkName("sku", c.SKU),
		checkName("location", c.Location),
		checkQuantity("quantity", c.Quantity, lim),
		checkOptionalName("lot", c.Lot),
		checkDate("best_before", c.BestBefore),
	)
}

// Validate implements Command.
func (c AdjustStock) Validate(lim Limits) error {
	if err := firstError(
		checkName("id", c.ID),
		checkName("sku", c.SKU),
		checkName("location", c.Location),
		checkOptionalName("lot", c.Lot),
	); err != nil {
		return err
	}
	if c.Delta == 0 || c.Delta > lim.MaxQuantity || c.Delta < -lim.MaxQuantity {
		return invalid("delta must be non-zero and at most %d in size, got %d", lim.MaxQuantity, c.Delta)
	}
	switch c.Reason {
	case ReasonCount, ReasonDamaged, ReasonLost, ReasonFound, ReasonReturned, ReasonOther:
	default:
		return invalid("reason must be one of count, damaged, lost, found, returned, other; got %q", c.Reason)
	}
	return nil
}

// Validate implements Command.
func (c CountStock) Validate(lim Limits) error {
	if err := firstError(checkName("id", c.ID), checkName("sku", c.SKU), checkName("location", c.Location)); err != nil {
		return err
	}
	if c.OnHand < 0 || c.OnHand > lim.MaxQuantity {
		return invalid("on_hand must be between 0 and %d, got %d", lim.MaxQuantity, c.OnHand)
	}
	return nil
}

// Validate implements Command.
func (c TransferStock) Validate(lim Limits) error {
	if err := firstError(
		checkName("id", c.ID),
		checkName("sku", c.SKU),
		checkName("from", c.From),
		checkName("to", c.To),
		checkQuantity("quantity", c.Quantity, lim),
	); err != nil {
		return err
	}
	if c.From == c.To {
		return invalid("from and to are the same location %q", c.From)
	}
	return nil
}

// Validate implements Command.
func (c ArriveTransfer) Validate(Limits) error { return checkName("transfer id", c.ID) }

// Validate implements Command.
func (c Reserve) Validate(lim Limits) error {
	if err := firstError(
		checkName("id", c.ID),
		checkOptionalName("customer", c.Customer),
		checkOptionalName("region", c.Region),
		checkTTL(c.TTL, lim, true),
	); err != nil {
		return err
	}
	if len(c.Lines) == 0 {
		return invalid("a reservation needs at least one line")
	}
	if len(c.Lines) > lim.MaxLines {
		return invalid("a reservation may have at most %d lines, got %d", lim.MaxLines, len(c.Lines))
	}
	for i, l := range c.Lines {
		if err := checkName("sku", l.SKU); err != nil {
			return lineError(i, err)
		}
		if err := checkQuantity("quantity", l.Quantity, lim); err != nil {
			return lineError(i, err)
		}
		if err := checkOptionalName("location", l.Location); err != nil {
			return lineError(i, err)
		}
		if l.Location != "" && len(l.Locations) > 0 {
			return invalid("lines[%d] names both location and locations; use one", i)
		}
		if len(l.Locations) > lim.MaxLines {
			return invalid("lines[%d] lists more than %d locations", i, lim.MaxLines)
		}
		for _, loc := range l.Locations {
			if err := checkName("locations", loc); err != nil {
				return lineError(i, err)
			}
		}
	}
	if sku, dup := duplicateSKU(len(c.Lines), func(i int) string { return c.Lines[i].SKU }); dup {
		return invalid("sku %q appears on more than one line; combine them", sku)
	}
	return nil
}

// lineError prefixes a validation error with the line it is about. The
// prefix is built only on failure, so valid commands allocate nothing.
func lineError(i int, err error) error {
	if e, ok := err.(*Error); ok {
		return invalid("lines[%d]: %s", i, e.Message)
	}
	return err
}

// duplicateSKU reports a SKU that appears twice among n lines. Carts are
// short: comparing pairs is cheaper than a map for them.
func duplicateSKU(n int, sku func(int) string) (string, bool) {
	if n > 16 {
		seen := make(map[string]bool, n)
		for i := range n {
			if seen[sku(i)] {
				return sku(i), true
			}
			seen[sku(i)] = true
		}
		return "", false
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			if sku(i) == sku(j) {
				return sku(i), true
			}
		}
	}
	return "", false
}

// Validate implements Command.
func (c ExtendReservation) Validate(lim Limits) error {
	return firstError(checkName("reservation id", c.ID), checkTTL(c.TTL, lim, false), checkOptionalName("idempotency key", c.Key))
}

// Validate implements Command.
func (c CommitReservation) Validate(lim Limits) error {
	if err := firstError(checkName("reservation id", c.ID), checkOptionalName("idempotency key", c.Key)); err != nil {
		return err
	}
	if c.Lines != nil && len(c.Lines) == 0 {
		return invalid("a partial commit needs at least one line; omit lines to commit everything")
	}
	if len(c.Lines) > lim.MaxLines {
		return invalid("a commit may have at most %d lines", lim.MaxLines)
	}
	for i, l := range c.Lines {
		if err := checkName("sku", l.SKU); err != nil {
			return lineError(i, err)
		}
		if err := checkQuantity("quantity", l.Quantity, lim); err != nil {
			return lineError(i, err)
		}
	}
	if sku, dup := duplicateSKU(len(c.Lines), func(i int) string { return c.Lines[i].SKU }); dup {
		return invalid("sku %q appears on more than one commit line", sku)
	}
	return nil
}

// Validate implements Command.
func (c ReleaseReservation) Validate(Limits) error {
	return firstError(checkName("reservation id", c.ID), checkOptionalName("idempotency key", c.Key))
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
