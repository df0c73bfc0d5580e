package publish_test

import (
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/publish"
)

// BenchmarkJSON measures the encoding of one event's body, which every
// publisher pays per event.
func BenchmarkJSON(b *testing.B) {
	e := stockd.Event{Partition: 3, Position: 1042, SKU: "sku-1", Version: 7, Time: time.Now(), CommandID: "r-1", Data: stockd.StockReceived{Location: "w1", Quantity: 5}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := publish.JSON(e); err != nil {
			b.Fatal(err)
		}
	}
}
