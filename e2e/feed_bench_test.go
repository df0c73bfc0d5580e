package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/client"
)

// BenchmarkFeedOverHTTP fills a server of 8 partitions with 51,200 receipts,
// then reads them all from the beginning over HTTP, as pages of 1,000 and as
// a Server-Sent Events stream followed by the Go client, and reports the
// events served a second by each.
//
//	go test -run '^$' -bench FeedOverHTTP -benchtime 3x ./e2e
func BenchmarkFeedOverHTTP(b *testing.B) {
	s := Start(b, Options{Partitions: 8})
	ConfigureLocations(b, s.Engine, "w1")
	const writers, each = 64, 800
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, _, err := s.Engine.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("r-%d-%d", g, i), SKU: fmt.Sprintf("S%d", (g*31+i)%500), Location: "w1", Quantity: 1}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := writers*each + 1
	b.Run("pages", func(b *testing.B) {
		start := time.Now()
		served := 0
		for range b.N {
			for q := (stockd.FeedQuery{Limit: 1000}); ; {
				p, err := s.Client.FeedEvents(ctx, q)
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
	})
	b.Run("sse", func(b *testing.B) {
		start := time.Now()
		served := 0
		for range b.N {
			n := 0
			fctx, cancel := context.WithCancel(ctx)
			err := s.Client.FollowFeedEvents(fctx, stockd.FeedQuery{Limit: 1000}, client.FollowOptions{}, func(_ api.EventJSON, _ string) error {
				if n++; n == total {
					return client.ErrStopFollowing
				}
				return nil
			})
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
			served += n
		}
		b.ReportMetric(float64(served)/time.Since(start).Seconds(), "events/s")
	})
}
