package feed

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"sync"
	"time"

	"github.com/stockd/stockd"
)

// Kind is the kind of record a subscription is kept as.
const Kind = "subscription"

// record is a subscription as kept in the store: JSON, so that a record can
// gain fields without a migration.
type record struct {
	From      string    `json:"from"`
	Cursor    string    `json:"cursor"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MaxSubscriptionsPage bounds a page of subscriptions; DefaultSubscriptions
// is its default size.
const (
	DefaultSubscriptions = 100
	MaxSubscriptionsPage = 1000
)

var errNoRecords = stockd.Errorf(stockd.CodeUnavailable, "subscriptions are not available: the store keeps no records")

// lock serializes the changes of one subscription: the store is one
// process's, and a read-modify-write of its record (an ack) must not lose
// another's.
func (s *Service) lock(name string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(name))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

func (s *Service) get(ctx context.Context, name string) (record, error) {
	if s.o.Records == nil {
		return record{}, errNoRecords
	}
	if err := stockd.CheckName("subscription", name); err != nil {
		return record{}, err
	}
	b, ok, err := s.o.Records.GetRecord(ctx, Kind, name)
	if err != nil {
		return record{}, err
	}
	if !ok {
		return record{}, stockd.Errorf(stockd.CodeNotFound, "subscription %q not found", name)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, stockd.Errorf(stockd.CodeInternal, "subscription %q: the stored record does not decode: %v", name, err)
	}
	return r, nil
}

func (s *Service) put(ctx context.Context, name string, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.o.Records.PutRecord(ctx, Kind, name, b)
}

// view is what the API shows of a subscription.
func (s *Service) view(name string, r record) stockd.Subscription {
	v := stockd.Subscription{Name: name, From: r.From, Cursor: r.Cursor, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if c, err := stockd.ParseFeedCursor(r.Cursor); err == nil && len(c) == s.n {
		for p, pos := range c {
			if h := s.o.DurableHead(p); h > pos {
				v.Lag.Events += h - pos
				v.Lag.Partitions++
			}
		}
	}
	return v
}

// position resolves a start or reset point: "beginning", "now", an RFC 3339
// time or, when cursors are allowed, a cursor.
func (s *Service) position(ctx context.Context, field, to string, cursors bool) (stockd.FeedCursor, error) {
	switch to {
	case "beginning":
		return make(stockd.FeedCursor, s.n), nil
	case "now":
		return s.heads(), nil
	case "":
		return nil, stockd.Errorf(stockd.CodeInvalid, "%s is required: \"beginning\", \"now\" or an RFC 3339 time", field)
	}
	if t, err := time.Parse(time.RFC3339Nano, to); err == nil {
		return s.CursorAt(ctx, t)
	}
	if !cursors {
		return nil, stockd.Errorf(stockd.CodeInvalid, "%s must be \"beginning\", \"now\" or an RFC 3339 time like 2026-11-27T10:00:00Z, got %q", field, to)
	}
	c, err := stockd.ParseFeedCursor(to)
	if err != nil {
		return nil, stockd.Errorf(stockd.CodeInvalid, "%s must be \"beginning\", \"now\", an RFC 3339 time or a feed cursor, got %q", field, to)
	}
	return c, s.check(c)
}

// CursorAt returns the cursor just before the first event after t in each
// partition: reading from it replays exactly the events that happened after
// t. It binary-searches each partition by event time, which is right as long
// as times do not decrease along a partition: the engine stamps a batch with
// its clock when deciding it, so only a wall clock stepped back makes the
// answer land at one of the places where time went back. Each probe of an
// archived range reads a segment from cold storage (cached afterwards).
func (s *Service) CursorAt(ctx context.Context, t time.Time) (stockd.FeedCursor, error) {
	c := make(stockd.FeedCursor, s.n)
	for p := range c {
		// Find the last position at or before t: lo is known to be, hi+1
		// known not to be (position 0 stands before everything).
		lo, hi := uint64(0), s.o.DurableHead(p)
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			evs, err := s.o.Log.ReadPartition(ctx, p, mid-1, 1)
			if err != nil {
				return nil, err
			}
			if len(evs) == 0 || evs[0].Position != mid {
				return nil, stockd.Errorf(stockd.CodeInternal, "feed: partition %d has no event at position %d", p, mid)
			}
			if evs[0].Time.After(t) {
				hi = mid - 1
			} else {
				lo = mid
			}
		}
		c[p] = lo
	}
	return c, nil
}

// PutSubscription implements stockd.Feed.
func (s *Service) PutSubscription(ctx context.Context, name, from string) (stockd.Subscription, bool, error) {
	if s.o.Records == nil {
		return stockd.Subscription{}, false, errNoRecords
	}
	if err := stockd.CheckName("subscription", name); err != nil {
		return stockd.Subscription{}, false, err
	}
	mu := s.lock(name)
	mu.Lock()
	defer mu.Unlock()
	if r, err := s.get(ctx, name); err == nil {
		if r.From != from {
			return stockd.Subscription{}, false, stockd.Errorf(stockd.CodeIdempotencyMismatch,
				"subscription %q exists, created from %q, not %q: reset it to move it, or delete it first", name, r.From, from)
		}
		return s.view(name, r), false, nil
	} else if !stockd.IsCode(err, stockd.CodeNotFound) {
		return stockd.Subscription{}, false, err
	}
	c, err := s.position(ctx, "from", from, false)
	if err != nil {
		return stockd.Subscription{}, false, err
	}
	now := s.o.Now().UTC()
	r := record{From: from, Cursor: c.String(), CreatedAt: now, UpdatedAt: now}
	b, err := json.Marshal(r)
	if err != nil {
		return stockd.Subscription{}, false, err
	}
	if _, err := s.o.Records.CreateRecord(ctx, Kind, name, b); err != nil {
		return stockd.Subscription{}, false, err
	}
	return s.view(name, r), true, nil
}

// Subscription implements stockd.Feed.
func (s *Service) Subscription(ctx context.Context, name string) (stockd.Subscription, error) {
	r, err := s.get(ctx, name)
	if err != nil {
		return stockd.Subscription{}, err
	}
	return s.view(name, r), nil
}

// Subscriptions implements stockd.Feed.
func (s *Service) Subscriptions(ctx context.Context, q stockd.SubscriptionListQuery) (stockd.SubscriptionPage, error) {
	if s.o.Records == nil {
		return stockd.SubscriptionPage{}, errNoRecords
	}
	if q.Limit <= 0 {
		q.Limit = DefaultSubscriptions
	}
	q.Limit = min(q.Limit, MaxSubscriptionsPage)
	recs, err := s.o.Records.ListRecords(ctx, Kind, q.After, q.Limit+1)
	if err != nil {
		return stockd.SubscriptionPage{}, err
	}
	page := stockd.SubscriptionPage{Items: make([]stockd.Subscription, 0, min(len(recs), q.Limit))}
	for i, rec := range recs {
		if i == q.Limit {
			page.Next = recs[i-1].Key
			break
		}
		var r record
		if err := json.Unmarshal(rec.Value, &r); err != nil {
			return stockd.SubscriptionPage{}, stockd.Errorf(stockd.CodeInternal, "subscription %q: the stored record does not decode: %v", rec.Key, err)
		}
		page.Items = append(page.Items, s.view(rec.Key, r))
	}
	return page, nil
}

// SubscriptionEvents implements stockd.Feed.
func (s *Service) SubscriptionEvents(ctx context.Context, name string, limit int) (stockd.FeedPage, error) {
	r, err := s.get(ctx, name)
	if err != nil {
		return stockd.FeedPage{}, err
	}
	return s.FeedPage(ctx, stockd.FeedQuery{After: r.Cursor, Limit: limit})
}

// AckSubscription implements stockd.Feed.
func (s *Service) AckSubscription(ctx context.Context, name, cursor string) (stockd.Subscription, error) {
	if cursor == "" {
		return stockd.Subscription{}, stockd.Errorf(stockd.CodeInvalid, "cursor is required: the next of a page, or the id of an event")
	}
	c, err := stockd.ParseFeedCursor(cursor)
	if err != nil {
		return stockd.Subscription{}, err
	}
	if err := s.check(c); err != nil {
		return stockd.Subscription{}, err
	}
	return s.update(ctx, name, func(r *record) error {
		old, err := stockd.ParseFeedCursor(r.Cursor)
		if err != nil || len(old) != len(c) {
			return stockd.Errorf(stockd.CodeInternal, "subscription %q: the stored cursor does not decode", name)
		}
		for p := range c {
			c[p] = max(c[p], old[p])
		}
		r.Cursor = c.String()
		return nil
	})
}

// ResetSubscription implements stockd.Feed.
func (s *Service) ResetSubscription(ctx context.Context, name, to string) (stockd.Subscription, error) {
	if _, err := s.get(ctx, name); err != nil {
		return stockd.Subscription{}, err // not found before a search of the log
	}
	c, err := s.position(ctx, "to", to, true)
	if err != nil {
		return stockd.Subscription{}, err
	}
	return s.update(ctx, name, func(r *record) error {
		r.Cursor = c.String()
		return nil
	})
}

// update changes a subscription's record under its lock.
func (s *Service) update(ctx context.Context, name string, change func(*record) error) (stockd.Subscription, error) {
	mu := s.lock(name)
	mu.Lock()
	defer mu.Unlock()
	r, err := s.get(ctx, name)
	if err != nil {
		return stockd.Subscription{}, err
	}
	if err := change(&r); err != nil {
		return stockd.Subscription{}, err
	}
	r.UpdatedAt = s.o.Now().UTC()
	if err := s.put(ctx, name, r); err != nil {
		return stockd.Subscription{}, err
	}
	return s.view(name, r), nil
}

// DeleteSubscription implements stockd.Feed.
func (s *Service) DeleteSubscription(ctx context.Context, name string) (stockd.Subscription, error) {
	mu := s.lock(name)
	mu.Lock()
	defer mu.Unlock()
	r, err := s.get(ctx, name)
	if err != nil {
		return stockd.Subscription{}, err
	}
	if err := s.o.Records.DeleteRecord(ctx, Kind, name); err != nil {
		return stockd.Subscription{}, err
	}
	return s.view(name, r), nil
}

var _ stockd.Feed = (*Service)(nil)
