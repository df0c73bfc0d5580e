package stockd

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"time"
)

// Feed is the change feed: every durable event of every partition, in pages
// a reader follows with a cursor, and named subscriptions that keep a
// reader's acknowledged cursor on the server. See docs/feed.md.
//
// Events are shown once durable, never before. Each SKU's events come in
// version order; following Next from any cursor never skips or repeats an
// event. Bookkeeping events that change no stock (InFeed) are left out, but
// cursors move past them.
type Feed interface {
	// FeedPage returns the events after q.After, across every partition.
	FeedPage(ctx context.Context, q FeedQuery) (FeedPage, error)

	// PutSubscription creates the subscription name, starting from
	// "beginning", "now" or an RFC 3339 time, and reports whether it
	// created it. Putting an existing subscription with the same from
	// changes nothing; with another from it fails with
	// CodeIdempotencyMismatch (reset moves a subscription).
	PutSubscription(ctx context.Context, name, from string) (Subscription, bool, error)
	// Subscription returns one subscription.
	Subscription(ctx context.Context, name string) (Subscription, error)
	// Subscriptions lists subscriptions by name.
	Subscriptions(ctx context.Context, q SubscriptionListQuery) (SubscriptionPage, error)
	// SubscriptionEvents returns the events after a subscription's
	// acknowledged cursor, without moving it.
	SubscriptionEvents(ctx context.Context, name string, limit int) (FeedPage, error)
	// AckSubscription durably records that the subscription's reader has
	// handled everything up to cursor (the Next of a page, or the id of an
	// SSE event). It never moves a subscription backwards: each partition
	// keeps the later of its acknowledged position and the cursor's.
	AckSubscription(ctx context.Context, name, cursor string) (Subscription, error)
	// ResetSubscription moves a subscription's cursor to "beginning",
	// "now", an RFC 3339 time (the first event after it in each partition)
	// or a cursor, backwards or forwards, so that its reader replays from
	// there.
	ResetSubscription(ctx context.Context, name, to string) (Subscription, error)
	// DeleteSubscription removes a subscription and returns it as it was.
	DeleteSubscription(ctx context.Context, name string) (Subscription, error)
}

// FeedQuery selects a page of the feed.
type FeedQuery struct {
	// After is a cursor (the Next of a page, or an SSE event's id); ""
	// starts at the beginning of the log and "now" at the durable heads.
	After string
	// Limit bounds the events of the page; 0 means a default.
	Limit int
	// Types, when not empty, keeps only events of these types.
	Types []EventType
	// SKUPrefix, when set, keeps only events of SKUs starting with it.
	SKUPrefix string
	// Wait, when positive, waits up to that long for an event when there
	// is none yet (long polling), and returns an empty page after it.
	Wait time.Duration
}

// FeedPage is a page of the feed: events in roughly chronological order
// (by time, then partition), each SKU's in version order. Next is the cursor
// to pass as After for the following page. It moves past every event the
// page looked at, those a filter left out included, so a page may be empty
// and still move Next; an empty page with Next unchanged means there is
// nothing newer yet.
type FeedPage struct {
	Events []Event
	Next   string
}

// Subscription is a named, server-kept position in the feed.
type Subscription struct {
	Name string `json:"name"`
	// From is where the subscription was created to start: "beginning",
	// "now" or an RFC 3339 time.
	From string `json:"from"`
	// Cursor is the acknowledged position: its events are those after it.
	Cursor    string    `json:"cursor"`
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is the time of the last create, ack or reset.
	UpdatedAt time.Time `json:"updated_at"`
	// Lag is how far Cursor is behind the durable heads, in events
	// (bookkeeping events included) and partitions.
	Lag Lag `json:"lag"`
}

// SubscriptionListQuery selects a page of subscriptions.
type SubscriptionListQuery struct {
	// After is the Next of the previous page: the last name seen.
	After string
	// Limit bounds the page; 0 means a default.
	Limit int
}

// SubscriptionPage is a page of subscriptions by name; Next is "" on the
// last one.
type SubscriptionPage struct {
	Items []Subscription `json:"items"`
	Next  string         `json:"next"`
}

// InFeed reports whether events of type t are shown in the feed. Left out
// are the bookkeeping events that change no stock: EntitiesRetired (settled
// entities leaving memory) and the saga's coordination between partitions
// (SagaStarted, SagaStepStarted, SagaStepAcked, SagaSettled), whose effects
// on stock are the StockReserved, ReservationCommitted and
// ReservationReleased events of each SKU, in the feed. ReservationHeld, which
// says a cart spanning partitions is wholly held, is shown. Types unknown to
// this version are shown.
func InFeed(t EventType) bool {
	switch t {
	case TypeEntitiesRetired, TypeSagaStarted, TypeSagaStepStarted, TypeSagaStepAcked, TypeSagaSettled:
		return false
	}
	return true
}

// EventTypeNamed returns the event type of a name, such as "StockReserved".
func EventTypeNamed(name string) (EventType, bool) {
	for t, n := range eventTypeNames {
		if n != "" && n == name {
			return EventType(t), true
		}
	}
	return 0, false
}

// FeedCursor is a position in the feed: for each partition, the position of
// the last event already seen (0 for none). Its string form is opaque to
// clients.
type FeedCursor []uint64

// feedCursorVersion is the first byte of every encoded cursor.
const feedCursorVersion = 1

// String encodes the cursor: base64url (no padding) of a version byte, the
// number of partitions and each partition's position as unsigned varints,
// and a CRC-32C of all that, so that a mistyped cursor is refused rather
// than read as another position.
func (c FeedCursor) String() string {
	b := make([]byte, 0, 2+len(c)*3+4)
	b = append(b, feedCursorVersion)
	b = binary.AppendUvarint(b, uint64(len(c)))
	for _, p := range c {
		b = binary.AppendUvarint(b, p)
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, feedCRC))
	return base64.RawURLEncoding.EncodeToString(b)
}

var feedCRC = crc32.MakeTable(crc32.Castagnoli)

// MaxFeedPartitions bounds the partitions a cursor may cover, as a store
// does.
const MaxFeedPartitions = 4096

// ParseFeedCursor decodes a cursor strictly: one written by String and
// nothing else (no other encoding of the same positions, no trailing
// bytes). It fails with CodeInvalid.
func ParseFeedCursor(s string) (FeedCursor, error) {
	bad := func(why string) (FeedCursor, error) {
		return nil, Errorf(CodeInvalid, "%q is not a feed cursor (%s): pass the next of a page or the id of an event", clip(s), why)
	}
	if len(s) > 4*(1+3+MaxFeedPartitions*10+4)/3+4 {
		return bad("too long")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return bad("not base64url")
	}
	if len(b) < 1+1+4 || b[0] != feedCursorVersion {
		return bad("unknown version")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, feedCRC) != sum {
		return bad("checksum mismatch")
	}
	rest := body[1:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > MaxFeedPartitions {
		return bad("bad partition count")
	}
	rest = rest[k:]
	c := make(FeedCursor, n)
	for i := range c {
		v, k := binary.Uvarint(rest)
		if k <= 0 {
			return bad("truncated")
		}
		c[i] = v
		rest = rest[k:]
	}
	if len(rest) != 0 {
		return bad("trailing bytes")
	}
	if c.String() != s { // a varint written with more bytes than needed
		return bad("not canonical")
	}
	return c, nil
}

// clip shortens a long value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
