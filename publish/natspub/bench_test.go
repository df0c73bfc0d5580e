package natspub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/publish/natspub"
)

// BenchmarkNATSPublish measures the events per second a Sink sustains to an
// in-process nats-server with JetStream (file storage), publishing
// pre-built events in batches of 256, as a Runner offers them: one
// partition at a time, and 8 partitions at once. Run it with
//
//	go test -run '^$' -bench NATSPublish -benchtime 100000x ./publish/natspub/
func BenchmarkNATSPublish(b *testing.B) {
	for _, parts := range []int{1, 8} {
		b.Run(map[int]string{1: "1-partition", 8: "8-partitions"}[parts], func(b *testing.B) {
			ns := runNATS(b, b.TempDir(), -1)
			sink := newSink(b, natspub.Options{URL: ns.ClientURL(), Timeout: time.Minute})
			const batch = 256
			per := (b.N + parts - 1) / parts
			evs := make([][]stockd.Event, parts)
			for p := range parts {
				evs[p] = events(p, 1, per, "sku")
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for p := range parts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i += batch {
						if err := sink.Publish(context.Background(), p, evs[p][i:min(i+batch, per)]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*parts)/time.Since(start).Seconds(), "events/s")
		})
	}
}
