package feed_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// BenchmarkFeedPages reads a log of 8 partitions from the beginning in pages
// of 1,000 and reports the events served a second.
//
//	go test -run '^$' -bench FeedPages -benchtime 5x ./feed
func BenchmarkFeedPages(b *testing.B) {
	w := newWorld(b, 8)
	ctx := context.Background()
	const writers, each = 64, 800
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, _, err := w.eng.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("r-%d-%d", g, i), SKU: fmt.Sprintf("S%d", (g*31+i)%500), Location: "w1", Quantity: 1}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	served := 0
	for range b.N {
		q := stockd.FeedQuery{Limit: 1000}
		for {
			p, err := w.feed.FeedPage(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			served += len(p.Events)
			if len(p.Events) == 0 {
				break
			}
			q.After = p.Next
		}
	}
	b.ReportMetric(float64(served)/time.Since(start).Seconds(), "events/s")
}
