package kafkapub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/publish/kafkapub"
)

// BenchmarkKafkaPublish measures the events per second a Sink sustains to
// kfake, an in-process fake Kafka cluster of one broker (in memory),
// producing pre-built events in batches of 256, as a Runner offers them:
// one partition at a time, and 8 partitions at once. kfake is not Kafka:
// the numbers bound the Sink and the client, not a real cluster. Run it
// with
//
//	go test -run '^$' -bench KafkaPublish -benchtime 100000x ./publish/kafkapub/
func BenchmarkKafkaPublish(b *testing.B) {
	for _, parts := range []int{1, 8} {
		b.Run(map[int]string{1: "1-partition", 8: "8-partitions"}[parts], func(b *testing.B) {
			c := runKafka(b, "", 0)
			sink := newSink(b, kafkapub.Options{Brokers: c.ListenAddrs(), Timeout: time.Minute})
			const batch = 256
			per := (b.N + parts - 1) / parts
			evs := make([][]stockd.Event, parts)
			for p := range parts {
				evs[p] = events(p, per)
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
