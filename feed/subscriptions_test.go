package feed_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// drain reads a subscription's events, acknowledging each page, until none
// are left.
func drain(t *testing.T, f stockd.Feed, name string, limit int) []stockd.Event {
	t.Helper()
	ctx := context.Background()
	var out []stockd.Event
	for range 10000 {
		p, err := f.SubscriptionEvents(ctx, name, limit)
		if err != nil {
			t.Fatalf("SubscriptionEvents: %v", err)
		}
		out = append(out, p.Events...)
		s, err := f.AckSubscription(ctx, name, p.Next)
		if err != nil {
			t.Fatalf("AckSubscription: %v", err)
		}
		if s.Cursor != p.Next {
			t.Fatalf("acknowledged %s, the subscription is at %s", p.Next, s.Cursor)
		}
		if len(p.Events) == 0 {
			return out
		}
	}
	t.Fatal("the subscription never caught up")
	return nil
}

func ids(evs []stockd.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.CommandID
	}
	return out
}

// TestAcknowledgedCursorSurvivesARestart: a subscription's acknowledged
// cursor is durable, and after a restart its events are exactly those
// written after what was acknowledged.
func TestAcknowledgedCursorSurvivesARestart(t *testing.T) {
	w := newWorld(t, 4)
	ctx := context.Background()
	if _, created, err := w.feed.PutSubscription(ctx, "erp", "beginning"); err != nil || !created {
		t.Fatalf("PutSubscription: created %v, %v", created, err)
	}
	for i := range 20 {
		w.receive(fmt.Sprintf("r-%d", i), fmt.Sprintf("S%d", i%5), 1)
	}
	first := drain(t, w.feed, "erp", 6)
	if len(first) != 26 { // the location, 20 receipts, and each SKU's first back in stock
		t.Fatalf("%d events, want 26", len(first))
	}
	w.restart()
	for i := range 5 {
		w.receive(fmt.Sprintf("after-%d", i), "S1", 1)
	}
	rest := drain(t, w.feed, "erp", 100)
	if fmt.Sprint(ids(rest)) != "[after-0 after-1 after-2 after-3 after-4]" {
		t.Fatalf("after a restart: %v, want the 5 receipts written since", ids(rest))
	}
}

// TestResetReplaysExactlyTheEventsAfterThePoint resets a subscription to the
// beginning, to a time and to a cursor, and checks each time that it
// replays exactly the events after that point.
func TestResetReplaysExactlyTheEventsAfterThePoint(t *testing.T) {
	w := newWorld(t, 8)
	ctx := context.Background()
	for i := range 40 {
		w.receive(fmt.Sprintf("r-%d", i), fmt.Sprintf("S%d", i%13), 1)
	}
	all, _ := follow(t, w.feed, stockd.FeedQuery{})
	if _, _, err := w.feed.PutSubscription(ctx, "bi", "now"); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, w.feed, "bi", 10); len(got) != 0 {
		t.Fatalf("a subscription from now has %d old events", len(got))
	}

	if _, err := w.feed.ResetSubscription(ctx, "bi", "beginning"); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, w.feed, "bi", 7); fmt.Sprint(ids(got)) != fmt.Sprint(ids(all)) {
		t.Fatalf("reset to the beginning replays %v, want %v", ids(got), ids(all))
	}

	// A time: the events after it, in every partition. Each command is a
	// millisecond after the last, so the 25th event's time cuts the log.
	cut := all[24].Time
	var want []string
	for _, e := range all {
		if e.Time.After(cut) {
			want = append(want, e.CommandID)
		}
	}
	if _, err := w.feed.ResetSubscription(ctx, "bi", cut.Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	if got := ids(drain(t, w.feed, "bi", 5)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reset to %v replays %v, want %v", cut, got, want)
	}
	for _, at := range []time.Time{t0.Add(-time.Hour), t0.Add(time.Hour)} {
		if _, err := w.feed.ResetSubscription(ctx, "bi", at.Format(time.RFC3339)); err != nil {
			t.Fatal(err)
		}
		got := drain(t, w.feed, "bi", 100)
		if at.Before(t0) && len(got) != len(all) || at.After(t0) && len(got) != 0 {
			t.Fatalf("reset to %v replays %d events", at, len(got))
		}
	}

	// A cursor: the Next of a page in the middle.
	p, err := w.feed.FeedPage(ctx, stockd.FeedQuery{Limit: 17})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.feed.ResetSubscription(ctx, "bi", p.Next); err != nil {
		t.Fatal(err)
	}
	if got := ids(drain(t, w.feed, "bi", 9)); fmt.Sprint(got) != fmt.Sprint(ids(all[17:])) {
		t.Fatalf("reset to a cursor replays %v, want %v", got, ids(all[17:]))
	}
	for _, bad := range []string{"", "yesterday", stockd.FeedCursor{1}.String()} {
		if _, err := w.feed.ResetSubscription(ctx, "bi", bad); !stockd.IsCode(err, stockd.CodeInvalid) {
			t.Errorf("reset to %q: %v, want invalid_request", bad, err)
		}
	}
}

// TestPutSubscriptionIsAnIdempotentCreate: the same from again changes
// nothing, another from is refused, and reset is how a subscription moves.
func TestPutSubscriptionIsAnIdempotentCreate(t *testing.T) {
	w := newWorld(t, 2)
	ctx := context.Background()
	w.receive("r-1", "A", 1)
	s1, created, err := w.feed.PutSubscription(ctx, "crm", "beginning")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if s1.Lag.Events != 3 { // the location, the receipt, BackInStock
		t.Fatalf("lag %+v, want 3 events", s1.Lag)
	}
	drain(t, w.feed, "crm", 10)
	s2, created, err := w.feed.PutSubscription(ctx, "crm", "beginning")
	if err != nil || created {
		t.Fatalf("repeat: %v %v", created, err)
	}
	if s2.Cursor == s1.Cursor || s2.Lag.Events != 0 {
		t.Fatalf("a repeated PUT moved the subscription back: %+v", s2)
	}
	if _, _, err := w.feed.PutSubscription(ctx, "crm", "now"); !stockd.IsCode(err, stockd.CodeIdempotencyMismatch) {
		t.Fatalf("another from: %v, want idempotency_mismatch", err)
	}
	if _, _, err := w.feed.PutSubscription(ctx, "x", "soon"); !stockd.IsCode(err, stockd.CodeInvalid) {
		t.Fatalf("a bad from: %v", err)
	}
	if _, _, err := w.feed.PutSubscription(ctx, "", "now"); !stockd.IsCode(err, stockd.CodeInvalid) {
		t.Fatalf("no name: %v", err)
	}

	// Ack never moves back.
	old := s1.Cursor
	s3, err := w.feed.AckSubscription(ctx, "crm", old)
	if err != nil || s3.Cursor != s2.Cursor {
		t.Fatalf("an ack of an older cursor moved the subscription: %v %v", s3.Cursor, err)
	}
	if _, err := w.feed.AckSubscription(ctx, "crm", "bogus"); !stockd.IsCode(err, stockd.CodeInvalid) {
		t.Fatalf("ack of a bad cursor: %v", err)
	}

	// List, and delete.
	if _, _, err := w.feed.PutSubscription(ctx, "bi", "now"); err != nil {
		t.Fatal(err)
	}
	page, err := w.feed.Subscriptions(ctx, stockd.SubscriptionListQuery{Limit: 1})
	if err != nil || len(page.Items) != 1 || page.Items[0].Name != "bi" || page.Next != "bi" {
		t.Fatalf("first page %+v, %v", page, err)
	}
	page, err = w.feed.Subscriptions(ctx, stockd.SubscriptionListQuery{After: page.Next, Limit: 1})
	if err != nil || len(page.Items) != 1 || page.Items[0].Name != "crm" {
		t.Fatalf("second page %+v, %v", page, err)
	}
	if _, err := w.feed.DeleteSubscription(ctx, "crm"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		func() error { _, err := w.feed.Subscription(ctx, "crm"); return err }(),
		func() error { _, err := w.feed.DeleteSubscription(ctx, "crm"); return err }(),
		func() error { _, err := w.feed.SubscriptionEvents(ctx, "crm", 1); return err }(),
		func() error { _, err := w.feed.AckSubscription(ctx, "crm", s1.Cursor); return err }(),
	} {
		if !stockd.IsCode(err, stockd.CodeNotFound) {
			t.Errorf("a deleted subscription: %v, want not_found", err)
		}
	}
}
