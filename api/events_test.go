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
