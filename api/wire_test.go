package api

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// TestAppendEntity: the hand-written encoders write what json.Marshal
// writes, for every type they take, and decline what it refuses.
func TestAppendEntity(t *testing.T) {
	at := time.Date(2026, 12, 2, 16, 56, 7, 123456789, time.UTC)
	later := at.Add(time.Hour)
	odd := "<&>\"\\\n\u2028\xff"
	onHand := int64(-3)
	values := []any{
		&stockd.Reservation{},
		&stockd.Reservation{ID: "c1", Status: stockd.StatusHeld, Customer: odd, CreatedAt: at, ExpiresAt: later,
			Lines: []stockd.ReservationLine{{SKU: "A", Quantity: 1, Held: 2, Allocations: []stockd.Allocation{{Location: "w1", Quantity: 1}, {Location: odd, Quantity: -1}}}, {SKU: "B"}}},
		&stockd.Reservation{Lines: []stockd.ReservationLine{}},
		&stockd.Reservation{ID: "k", Lines: []stockd.ReservationLine{}, Bundles: []stockd.ReservationBundle{
			{SKU: odd, Quantity: 1, Held: 2, Components: []stockd.BundleComponent{{SKU: "A", Quantity: 2}}}}},
		&stockd.Receipt{},
		&stockd.Receipt{ID: "r", SKU: "A", Location: "w1", Quantity: 1 << 40, Lot: "L", BestBefore: "2099-01-01", Time: at, Position: 1<<64 - 1},
		&stockd.Adjustment{},
		&stockd.Adjustment{ID: "a", SKU: "A", Location: "w1", Delta: -5, Reason: stockd.ReasonLost, Lot: odd, Time: at, Position: 7},
		&stockd.Count{},
		&stockd.Count{ID: "n", SKU: "A", Location: "w1", OnHand: 4, Delta: -1, Time: at, Position: 9},
		&stockd.Transfer{},
		&stockd.Transfer{ID: "t", SKU: "A", From: "w1", To: "w2", Quantity: 3, Status: stockd.TransferStatusArrived,
			Lots: []stockd.LotView{{Lot: "L", Quantity: 1, BestBefore: "2099-01-01"}, {Quantity: 2}}, SentAt: at, ArrivedAt: &later},
		&stockd.Transfer{Lots: []stockd.LotView{}},
		&ReservationRequest{},
		&ReservationRequest{ID: "c", TTL: "15m", Customer: "cu", Region: "eu", Lines: []stockd.ReserveLine{
			{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 2, Location: "w1", Locations: []string{"w1", odd}, Split: true}, {Locations: []string{}}}},
		&CommitRequest{}, &CommitRequest{ID: "c", IdempotencyKey: "k"}, &CommitRequest{Lines: []stockd.CommitLine{{SKU: "A", Quantity: 1}}},
		&CommitRequest{ID: "c", Lines: []stockd.CommitLine{{SKU: "A", Quantity: 1}, {SKU: "B"}}}, &CommitRequest{Lines: []stockd.CommitLine{}},
		&ReleaseRequest{}, &ReleaseRequest{ID: "c", IdempotencyKey: "k"},
		&ExtendRequest{}, &ExtendRequest{ID: "c", TTL: "1h", IdempotencyKey: "k"},
		&IDRequest{}, &IDRequest{ID: odd},
		&ReceiptRequest{}, &ReceiptRequest{ID: "r", SKU: "A", Location: "w1", Quantity: 1, Lot: "L", BestBefore: "b"},
		&AdjustmentRequest{}, &AdjustmentRequest{ID: "a", SKU: "A", Location: "w1", Delta: -1, Reason: stockd.ReasonFound, Lot: "L"},
		&CountRequest{}, &CountRequest{ID: "n", SKU: "A", Location: "w1", OnHand: &onHand},
		&TransferRequest{}, &TransferRequest{ID: "t", SKU: "A", From: "w1", To: "w2", Quantity: 2},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := AppendEntity([]byte("x"), v)
		if !ok || !bytes.Equal(got[1:], want) {
			t.Errorf("%T: AppendEntity %s (%v), json.Marshal %s", v, got, ok, want)
		}
	}
	// Times json.Marshal refuses, and types the encoders do not know.
	for _, v := range []any{
		&stockd.Reservation{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		&stockd.Transfer{ArrivedAt: new(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC))},
		&stockd.Location{}, stockd.Reservation{},
	} {
		if got, ok := AppendEntity([]byte("x"), v); ok || string(got) != "x" {
			t.Errorf("%T: AppendEntity took it: %s", v, got)
		}
	}
	if _, err := marshal(&stockd.Reservation{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("marshal took a time json.Marshal refuses")
	}
}
