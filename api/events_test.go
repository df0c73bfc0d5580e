package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// TestEventListsNeverNull renders events whose lists are nil, as decoding
// gives them, and checks that every list comes out as [].
func TestEventListsNeverNull(t *testing.T) {
	for _, data := range []stockd.EventData{
		stockd.StockCounted{Location: "w1", OnHand: 3},
		stockd.ReservationCommitted{Reservation: "c1", Released: 2},
		stockd.SagaStepAcked{Reservation: "c1", Held: []stockd.ReservationLine{{SKU: "A"}}},
	} {
		e, err := api.NewEventJSON(stockd.Event{SKU: "A", Data: data})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "null") {
			t.Errorf("%T renders a null: %s", data, b)
		}
	}
}

// TestSignalEventsRoundTrip renders the stock signals as GET
// /v1/skus/{sku}/events shows them and reads them back as the client does.
func TestSignalEventsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		data stockd.EventData
		json string
	}{
		{stockd.LowStock{Available: 4, LowStockThreshold: 5}, `"type":"LowStock"`},
		{stockd.OutOfStock{}, `"type":"OutOfStock"`},
		{stockd.BackInStock{Available: 7, LowStockThreshold: 5}, `"type":"BackInStock"`},
	} {
		e, err := api.NewEventJSON(stockd.Event{SKU: "A", Version: 3, CommandID: "c1", Actor: "shop", Data: tc.data})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.json) || !strings.Contains(string(b), `"available":`) {
			t.Errorf("%T renders as %s", tc.data, b)
		}
		var back api.EventJSON
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if got := back.Event(); got.Data != tc.data || got.SKU != "A" || got.CommandID != "c1" || got.Actor != "shop" {
			t.Errorf("%T reads back as %+v", tc.data, got)
		}
	}
}
