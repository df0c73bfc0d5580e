package intake_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/intake"
	"github.com/stockd/stockd/internal/testclock"
	"github.com/stockd/stockd/pebble"
)

// fakeService refuses the first `busy` receipts as overloaded, then books
// them; every other method is left out.
type fakeService struct {
	stockd.Service
	busy  atomic.Int32
	calls atomic.Int32
}

func (f *fakeService) Receive(_ context.Context, c stockd.ReceiveStock) (stockd.Receipt, bool, error) {
	f.calls.Add(1)
	if f.busy.Add(-1) >= 0 {
		return stockd.Receipt{}, false, stockd.Errorf(stockd.CodeOverloaded, "busy")
	}
	return stockd.Receipt{ID: c.ID, SKU: c.SKU, Location: c.Location, Quantity: c.Quantity}, true, nil
}

func openQueue(t *testing.T, svc stockd.Service, store *pebble.Store, opts intake.Options) *intake.Queue {
	t.Helper()
	opts.Service, opts.Records = svc, store
	opts.Logger = slog.New(slog.DiscardHandler)
	q, err := intake.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

func openStore(t *testing.T) *pebble.Store {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func receipt(id string) stockd.SubmitCommand {
	b, _ := json.Marshal(map[string]any{"id": id, "sku": "A", "location": "w1", "quantity": 1})
	return stockd.SubmitCommand{ID: "cmd-" + id, Type: stockd.CommandReceive, Body: b}
}

// TestOverloadedCommandIsRetried: a command the service asks to retry
// (overloaded) stays queued and is tried again until it is applied; it is
// not failed.
func TestOverloadedCommandIsRetried(t *testing.T) {
	svc := &fakeService{}
	svc.busy.Store(2)
	q := openQueue(t, svc, openStore(t), intake.Options{MaxBackoff: time.Millisecond})
	if _, created, err := q.SubmitCommand(t.Context(), receipt("r-1")); err != nil || !created {
		t.Fatal(created, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := q.Wait(ctx, "cmd-r-1")
	if err != nil || c.Status != stockd.CommandApplied || c.Attempts != 3 || svc.calls.Load() != 3 {
		t.Fatalf("%+v %v, calls %d", c, err, svc.calls.Load())
	}
}

// TestFinishedCommandsAreForgottenAfterRetention: a finished command's
// status is kept for the retention, then forgotten; a queued one is never
// forgotten, however old.
func TestFinishedCommandsAreForgottenAfterRetention(t *testing.T) {
	clk := testclock.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	store := openStore(t)
	q := openQueue(t, &fakeService{}, store, intake.Options{Retain: 24 * time.Hour, Now: clk.Now})
	if _, _, err := q.SubmitCommand(t.Context(), receipt("r-1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if c, err := q.Wait(ctx, "cmd-r-1"); err != nil || c.Status != stockd.CommandApplied {
		t.Fatal(c, err)
	}
	q.Close()
	// A paused queue over the same records: its command stays queued.
	paused := openQueue(t, &fakeService{}, store, intake.Options{Retain: 24 * time.Hour, Now: clk.Now, Paused: true})
	if _, _, err := paused.SubmitCommand(t.Context(), receipt("r-2")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(23 * time.Hour)
	if n, err := paused.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("sweep within the retention forgot %d: %v", n, err)
	}
	clk.Advance(2 * time.Hour)
	if n, err := paused.Sweep(t.Context()); err != nil || n != 1 {
		t.Fatalf("sweep after the retention forgot %d, want 1: %v", n, err)
	}
	if _, err := paused.GetCommand(t.Context(), "cmd-r-1"); !stockd.IsCode(err, stockd.CodeNotFound) {
		t.Errorf("cmd-r-1 after the retention: %v, want not_found", err)
	}
	if c, err := paused.GetCommand(t.Context(), "cmd-r-2"); err != nil || c.Status != stockd.CommandQueued {
		t.Errorf("the queued cmd-r-2 = %+v %v", c, err)
	}
}

// TestIntakeBounded: more commands than MaxQueued waiting are refused at
// once with overloaded and Retry-After, and nothing is stored for them.
func TestIntakeBounded(t *testing.T) {
	q := openQueue(t, &fakeService{}, openStore(t), intake.Options{MaxQueued: 2, Paused: true})
	for _, id := range []string{"r-1", "r-2"} {
		if _, _, err := q.SubmitCommand(t.Context(), receipt(id)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := q.SubmitCommand(t.Context(), receipt("r-3"))
	var e *stockd.Error
	if !stockd.IsCode(err, stockd.CodeOverloaded) || !errors.As(err, &e) || e.RetryAfter <= 0 {
		t.Fatalf("a third command: %v", err)
	}
	if _, err := q.GetCommand(t.Context(), "cmd-r-3"); !stockd.IsCode(err, stockd.CodeNotFound) {
		t.Errorf("the refused command was stored: %v", err)
	}
	// A repeat of a queued one is still answered.
	if c, created, err := q.SubmitCommand(t.Context(), receipt("r-1")); err != nil || created || c.ID != "cmd-r-1" {
		t.Errorf("a repeat on a full queue: %+v %v %v", c, created, err)
	}
}
