package readmodel

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

var (
	benchSettled = flag.Int("readmodel.settled", 1_000_000, "settled reservations in BenchmarkFoldMemory")
	benchLive    = flag.Int("readmodel.live", 1000, "live (held) reservations in BenchmarkFoldMemory")
)

// BenchmarkFoldMemory compares what the read model keeps per partition
// before (a whole stockd.State, as it folded until it kept only
// availability) and after (stockd.AvailabilityState): one partition's log of
// -readmodel.settled reservations on a few SKUs, each committed, released or
// expired, then -readmodel.live held ones. It reports, for each fold:
//
//	events/s         apply throughput (only Apply is timed)
//	checkpoint-bytes the encoded state a checkpoint saves
//	live-heap-MB     the heap still in use after the fold, after a GC
//	rss-MB           the process's resident memory after the fold
//
// rss-MB is the whole process's: run each fold on its own for it to mean
// something, as docs/operations.md does:
//
//	go test -run '^$' -bench 'FoldMemory/fold=State$' -benchtime 1x ./readmodel/
//	go test -run '^$' -bench 'FoldMemory/fold=Availability$' -benchtime 1x ./readmodel/
func BenchmarkFoldMemory(b *testing.B) {
	for _, f := range []struct {
		name string
		fold func() (apply func(stockd.Event) error, encode func() []byte)
	}{
		{name: "State", fold: func() (func(stockd.Event) error, func() []byte) {
			st := stockd.NewState(0, 1, stockd.DefaultLimits)
			return st.Apply, func() []byte { return stockd.EncodeState(st) }
		}},
		{name: "Availability", fold: func() (func(stockd.Event) error, func() []byte) {
			av := stockd.NewAvailabilityState(0, 1)
			return av.Apply, func() []byte { return stockd.EncodeAvailability(av) }
		}},
	} {
		b.Run("fold="+f.name, func(b *testing.B) {
			for range b.N {
				runtime.GC()
				debug.FreeOSMemory()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)

				apply, encode := f.fold()
				g := newSettledLog(*benchSettled, *benchLive)
				chunk := make([]stockd.Event, 0, 1<<14)
				var took time.Duration
				events := 0
				for {
					chunk = g.next(chunk[:0])
					if len(chunk) == 0 {
						break
					}
					start := time.Now()
					for _, e := range chunk {
						if err := apply(e); err != nil {
							b.Fatal(err)
						}
					}
					took += time.Since(start)
					events += len(chunk)
				}
				clear(chunk[:cap(chunk)])
				chunk = nil
				runtime.GC()
				debug.FreeOSMemory()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				data := encode()
				b.ReportMetric(float64(events)/took.Seconds(), "events/s")
				b.ReportMetric(float64(len(data)), "checkpoint-bytes")
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(base.HeapAlloc))/(1<<20), "live-heap-MB")
				b.ReportMetric(float64(rssBytes())/(1<<20), "rss-MB")
				runtime.KeepAlive(apply)
			}
		})
	}
}

// settledLog generates, in order, the events of one partition of one: stock
// for a few SKUs, then settled reservations (committed, released, expired)
// of one line each, then live ones, the way the engine would write them.
type settledLog struct {
	settled, live int
	skus          []string
	versions      map[string]uint64
	pos           uint64
	now           time.Time
	i             int
	started       bool
}

func newSettledLog(settled, live int) *settledLog {
	return &settledLog{
		settled: settled, live: live,
		skus:     []string{"sku-a", "sku-b", "sku-c", "sku-d"},
		versions: map[string]uint64{},
		now:      time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func (g *settledLog) event(sku, id string, data stockd.EventData) stockd.Event {
	g.pos++
	e := stockd.Event{Partition: 0, Position: g.pos, SKU: sku, Time: g.now, CommandID: id, Data: data}
	if sku != "" {
		g.versions[sku]++
		e.Version = g.versions[sku]
	}
	return e
}

// next appends the next events to dst, up to its capacity, and returns it;
// empty when the log is over.
func (g *settledLog) next(dst []stockd.Event) []stockd.Event {
	if !g.started {
		g.started = true
		dst = append(dst, g.event("", "w1", stockd.LocationConfigured{Location: stockd.Location{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}}))
		for _, sku := range g.skus {
			dst = append(dst, g.event(sku, "r-"+sku, stockd.StockReceived{Location: "w1", Quantity: 1 << 40}))
		}
	}
	for g.i < g.settled+g.live && len(dst)+2 <= cap(dst) {
		i := g.i
		g.i++
		g.now = g.now.Add(time.Millisecond)
		sku := g.skus[i%len(g.skus)]
		id := "cart-" + strconv.Itoa(i)
		q := int64(1 + i%3)
		dst = append(dst, g.event(sku, id, stockd.StockReserved{
			Reservation: id, Quantity: q, Allocations: []stockd.Allocation{{Location: "w1", Quantity: q}},
			ExpiresAt: g.now.Add(15 * time.Minute), Customer: "c-" + strconv.Itoa(i%10_000), Fingerprint: uint64(i),
		}))
		if i >= g.settled {
			continue // live
		}
		switch i % 20 {
		case 0, 1, 2:
			dst = append(dst, g.event(sku, id, stockd.ReservationReleased{Reservation: id, Reason: stockd.ReleaseRequested, Quantity: q}))
		case 3:
			dst = append(dst, g.event(sku, id, stockd.ReservationReleased{Reservation: id, Reason: stockd.ReleaseExpired, Quantity: q}))
		default:
			dst = append(dst, g.event(sku, id, stockd.ReservationCommitted{
				Reservation: id, Quantity: q, Allocations: []stockd.Allocation{{Location: "w1", Quantity: q}},
				Lots: []stockd.LotQty{{Location: "w1", Quantity: q}},
			}))
		}
	}
	return dst
}

// rssBytes returns the process's resident memory, or 0 where /proc does not
// say.
func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}
