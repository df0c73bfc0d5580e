package engine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/pebble"
)

// BenchmarkOverload sends reservations of one hot SKU from 4,096 and 16,384
// callers, each in a loop that honours the RetryAfter of a refusal, with admission by
// expected wait off (MaxQueueWait < 0: only the inbox bound refuses) and on
// (the default MaxQueueWait), on the plain store and on one whose appends
// take 250 ms more, one at a time (a disk whose fsync has slowed down). It
// reports the latency of admitted requests (p50, p99, max), the share of
// attempts refused, and the p99 latency of a refusal.
//
//	go test ./engine -run='^$' -bench=Overload -benchtime=50000x
func BenchmarkOverload(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(engine.GCPercent))
	for _, callers := range []int{4096, 16384} {
		for _, slow := range []time.Duration{0, 250 * time.Millisecond} {
			for _, wait := range []time.Duration{-1, 0} {
				admission := "on"
				if wait < 0 {
					admission = "off"
				}
				name := fmt.Sprintf("callers=%d/fsync+%v/admission=%s", callers, slow, admission)
				b.Run(name, func(b *testing.B) { benchOverload(b, callers, slow, wait) })
			}
		}
	}
}

func benchOverload(b *testing.B, callers int, slow, maxWait time.Duration) {
	ctx := context.Background()
	store, err := pebble.Open(b.TempDir(), pebble.Options{Partitions: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	var s stockd.Store = store
	if slow > 0 {
		s = &slowStore{Store: store, delay: slow}
	}
	e, err := engine.Open(ctx, s, engine.Options{SkipSnapshotOnClose: true, Logger: quiet, MaxQueueWait: maxWait})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	for left, k := int64(b.N)+10, 0; left > 0; k++ {
		q := min(left, stockd.DefaultLimits.MaxQuantity)
		must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r-" + strconv.Itoa(k), SKU: "hot", Location: "w1", Quantity: q}))
		left -= q
	}

	lat := make([][]time.Duration, callers)
	refusals := make([][]time.Duration, callers)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prefix := "c" + strconv.Itoa(c) + "-"
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				for {
					t0 := time.Now()
					_, _, err := e.Reserve(ctx, stockd.Reserve{
						ID: prefix + strconv.FormatInt(i, 10), TTL: time.Hour,
						Lines: []stockd.ReserveLine{{SKU: "hot", Quantity: 1}},
					})
					d := time.Since(t0)
					var se *stockd.Error
					if errors.As(err, &se) && se.Code == stockd.CodeOverloaded {
						refusals[c] = append(refusals[c], d)
						time.Sleep(se.RetryAfter)
						continue
					}
					if err != nil {
						b.Error(err)
						return
					}
					lat[c] = append(lat[c], d)
					break
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	admitted := slices.Concat(lat...)
	reportLatency(b, b.N, elapsed, admitted)
	b.ReportMetric(float64(admitted[len(admitted)-1])/float64(time.Millisecond), "max-ms")
	refused := slices.Concat(refusals...)
	b.ReportMetric(100*float64(len(refused))/float64(len(refused)+b.N), "refused-%")
	if len(refused) > 0 {
		slices.Sort(refused)
		b.ReportMetric(float64(refused[len(refused)*99/100])/float64(time.Millisecond), "refusal-p99-ms")
	}
}

// slowStore adds delay to every append, one append at a time, as a disk
// whose fsync has slowed down would. It has the plain Store methods only, so
// the engine appends each batch with Append from its completer.
type slowStore struct {
	stockd.Store
	delay time.Duration
	mu    sync.Mutex
}

func (s *slowStore) Append(ctx context.Context, p int, expected uint64, batch stockd.Batch) error {
	if err := s.Store.Append(ctx, p, expected, batch); err != nil {
		return err
	}
	s.mu.Lock()
	time.Sleep(s.delay)
	s.mu.Unlock()
	return nil
}
