package engine_test

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/pebble"
)

// BenchmarkAsOf measures one time-travel read (Engine.SKU with an AsOf) of a
// SKU with STOCKD_BENCH_EVENTS events (default 200,000) of reservations,
// commits and releases: the bytes allocated per read (B/op), and the most
// the heap held live at any collection during the reads above what it held
// before (live-heap-MB): what a read keeps, which concurrent reads multiply.
//
//	go test ./engine -run='^$' -bench=AsOf -benchtime=5x
func BenchmarkAsOf(b *testing.B) {
	total := 200_000
	if s := os.Getenv("STOCKD_BENCH_EVENTS"); s != "" {
		total, _ = strconv.Atoi(s)
	}
	const parts = 4
	dir := b.TempDir()
	store, err := pebble.Open(dir, pebble.Options{Partitions: parts})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	head := writeSKUHistory(b, store, "hot", parts, total)
	e, err := engine.Open(context.Background(), store, engine.Options{SkipSnapshotOnClose: true, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		at   stockd.AsOf
	}{
		{"end", stockd.AsOf{Position: head}},
		{"middle", stockd.AsOf{Position: head / 2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			runtime.GC()
			base := heapBytes()
			var peak atomic.Uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if h := heapBytes(); h > peak.Load() {
							peak.Store(h)
						}
					}
				}
			}()
			b.ResetTimer()
			for range b.N {
				v, err := e.SKU(ctx, "hot", bc.at)
				if err != nil {
					b.Fatal(err)
				}
				if v.OnHand <= 0 {
					b.Fatalf("state = %+v", v)
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			if p := peak.Load(); p > base {
				b.ReportMetric(float64(p-base)/(1<<20), "live-heap-MB")
			} else {
				b.ReportMetric(0, "live-heap-MB")
			}
		})
	}
}

// heapBytes returns the bytes of the heap found live by the last collection.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// writeSKUHistory appends about total events of one SKU to store, deciding
// them on a State as the engine would, in batches of 1,000: one receipt, then
// reservations of which two in three are committed or released, so that the
// history holds settled reservations and live ones. It returns the head of
// the SKU's partition.
func writeSKUHistory(t testing.TB, store stockd.Store, sku string, parts, total int) uint64 {
	l := newStateLog(t, store, stockd.PartitionOf(sku, parts), parts, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	must := func(c stockd.Command) {
		if err := l.do(c); err != nil {
			t.Fatal(err)
		}
	}
	l.locations("w1")
	must(stockd.ReceiveStock{ID: "r-1", SKU: sku, Location: "w1", Quantity: 1_000_000_000})
	for i := 0; int(l.st.Head()) < total; i++ {
		l.now = l.now.Add(time.Millisecond)
		id := "c-" + strconv.Itoa(i)
		must(stockd.Reserve{ID: id, TTL: 24 * time.Hour, Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}}})
		switch i % 3 {
		case 0:
			must(stockd.CommitReservation{ID: id})
		case 1:
			must(stockd.ReleaseReservation{ID: id})
		}
	}
	l.flush()
	return l.st.Head()
}
