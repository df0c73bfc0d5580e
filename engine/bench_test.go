package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/pebble"
)

// BenchmarkReserve measures reservations through the engine in-process with
// durable acknowledgements (every reply waits for its batch's fsync), on one
// hot SKU and on 100,000 SKUs chosen uniformly, at several numbers of
// concurrent callers. It reports throughput and latency percentiles.
//
//	go test ./engine -run='^$' -bench=Reserve -benchtime=200000x
func BenchmarkReserve(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(engine.GCPercent))
	for _, workload := range []string{"hot", "uniform"} {
		for _, callers := range []int{1, 64, 256, 1024} {
			b.Run(fmt.Sprintf("%s/callers=%d", workload, callers), func(b *testing.B) {
				benchReserve(b, workload, callers)
			})
		}
	}
}

const uniformSKUs = 100_000

// quiet drops the engine's logs, which would otherwise interleave with the
// benchmark lines and break tools such as benchstat.
var quiet = slog.New(slog.DiscardHandler)

func benchReserve(b *testing.B, workload string, callers int) {
	ctx := context.Background()
	obs := &batchCounter{}
	e, _ := open(b, 64, engine.Options{SkipSnapshotOnClose: true, Observer: obs, Logger: quiet})
	e2e.ConfigureLocations(b, e, "w1")
	skus := []string{"hot"}
	if workload == "uniform" {
		skus = make([]string, uniformSKUs)
		for i := range skus {
			skus[i] = "sku-" + strconv.Itoa(i)
		}
	}
	perSKU := int64(b.N/len(skus)) + 10
	receive := func(i int) {
		for left, k := perSKU, 0; left > 0; k++ {
			q := min(left, stockd.DefaultLimits.MaxQuantity)
			id := fmt.Sprintf("r-%d-%d", i, k)
			if _, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: id, SKU: skus[i], Location: "w1", Quantity: q}); err != nil {
				b.Fatal(err)
			}
			left -= q
		}
	}
	parallel(len(skus), 256, receive)

	lat := make([][]time.Duration, callers)
	var next atomic.Int64
	var refused atomic.Int64
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
				sku := skus[int(i)%len(skus)]
				t0 := time.Now()
				_, _, err := e.Reserve(ctx, stockd.Reserve{
					ID: prefix + strconv.FormatInt(i, 10), TTL: time.Hour,
					Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}},
				})
				for backOff(err) {
					refused.Add(1)
					t0 = time.Now()
					_, _, err = e.Reserve(ctx, stockd.Reserve{
						ID: prefix + strconv.FormatInt(i, 10), TTL: time.Hour,
						Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}},
					})
				}
				lat[c] = append(lat[c], time.Since(t0))
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatency(b, b.N, elapsed, slices.Concat(lat...))
	b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
	if n := obs.batches.Load(); n > 0 {
		b.ReportMetric(float64(obs.cmds.Load())/float64(n), "cmds/batch")
		b.ReportMetric(float64(obs.appendNs.Load())/float64(obs.appends.Load())/1e6, "append-ms")
	}
}

// backOff reports whether err is an overload refusal and, if so, waits the
// pause it asks for, as a well-behaved client does.
func backOff(err error) bool {
	var se *stockd.Error
	if !errors.As(err, &se) || se.Code != stockd.CodeOverloaded {
		return false
	}
	time.Sleep(se.RetryAfter)
	return true
}

// batchCounter is an Observer that counts batches and append latency, so
// benchmarks can report how much group commit is grouping.
type batchCounter struct {
	engine.NopObserver
	batches, cmds, appends, appendNs atomic.Int64
}

func (o *batchCounter) Batch(_, commands, _ int) { o.batches.Add(1); o.cmds.Add(int64(commands)) }
func (o *batchCounter) Appended(_ int, d time.Duration) {
	o.appends.Add(1)
	o.appendNs.Add(int64(d))
}

// reportLatency reports throughput and latency percentiles.
func reportLatency(b *testing.B, n int, elapsed time.Duration, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(int(float64(len(lat))*p), len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// parallel calls fn(i) for i in [0, n) on up to workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				fn(int(i))
			}
		}()
	}
	wg.Wait()
}

// BenchmarkRecovery measures start-up from the log alone (no snapshot): it
// writes STOCKD_BENCH_EVENTS events (default 1,000,000) of reservations,
// commits and releases over 10,000 SKUs in 64 partitions, then times
// engine.Open replaying all of them. STOCKD_BENCH_DIR keeps the generated
// store between runs.
//
//	STOCKD_BENCH_EVENTS=10000000 go test ./engine -run='^$' -bench=Recovery -benchtime=1x -timeout=30m
func BenchmarkRecovery(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(engine.GCPercent))
	total := 1_000_000
	if s := os.Getenv("STOCKD_BENCH_EVENTS"); s != "" {
		total, _ = strconv.Atoi(s)
	}
	const parts = 64
	// STOCKD_BENCH_DIR keeps the generated log between runs, so that
	// profiling recovery does not pay for writing it each time.
	dir := os.Getenv("STOCKD_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	done := filepath.Join(dir, "stockd-bench-"+strconv.Itoa(total))
	if _, err := os.Stat(done); err != nil {
		os.RemoveAll(dir)
		store, err := pebble.Open(dir, pebble.Options{Partitions: parts})
		if err != nil {
			b.Fatal(err)
		}
		writeLog(b, store, parts, total)
		store.Close()
		os.WriteFile(done, nil, 0o644)
	}

	b.ResetTimer()
	for range b.N {
		store, err := pebble.Open(dir, pebble.Options{})
		if err != nil {
			b.Fatal(err)
		}
		pprofStart(b)
		start := time.Now()
		e, err := engine.Open(context.Background(), store, engine.Options{SkipSnapshotOnClose: true, Logger: quiet})
		pprofStop()
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(total)/took.Seconds(), "events/s")
		b.ReportMetric(took.Seconds(), "recovery-s")
		e.Close(context.Background())
		store.Close()
		b.StartTimer()
	}
	b.ReportMetric(0, "ns/op")
}

// writeLog fills a store with about total events by deciding commands on
// per-partition states directly, as the engine would, in batches of 1,000.
func writeLog(b *testing.B, store stockd.Store, parts, total int) {
	per := total / parts
	parallel(parts, 2, func(p int) {
		l := newStateLog(b, store, p, parts, time.Now())
		var skus []string
		for i := 0; len(skus) < 10_000/parts; i++ {
			if sku := "sku-" + strconv.Itoa(i); stockd.PartitionOf(sku, parts) == p {
				skus = append(skus, sku)
			}
		}
		l.locations("w0", "w1", "w2")
		for i, sku := range skus {
			l.do(stockd.ReceiveStock{ID: "r-" + sku, SKU: sku, Location: "w" + strconv.Itoa(i%3), Quantity: 1_000_000_000})
		}
		for i := 0; int(l.st.Head()) < per; i++ {
			id := "c-" + strconv.Itoa(p) + "-" + strconv.Itoa(i)
			l.do(stockd.Reserve{ID: id, TTL: 24 * time.Hour, Lines: []stockd.ReserveLine{{SKU: skus[i%len(skus)], Quantity: 1}}})
			switch i % 3 {
			case 0:
				l.do(stockd.CommitReservation{ID: id})
			case 1:
				l.do(stockd.ReleaseReservation{ID: id})
			}
		}
		l.flush()
	})
}

// stateLog decides commands on one partition's State directly, as the
// engine would, and appends their events to a store in batches of 1,000:
// the fast way to fill a log for a benchmark.
type stateLog struct {
	tb    testing.TB
	store stockd.Store
	p     int
	st    *stockd.State
	now   time.Time
	batch []stockd.Event
}

func newStateLog(tb testing.TB, store stockd.Store, p, parts int, now time.Time) *stateLog {
	return &stateLog{tb: tb, store: store, p: p, st: stockd.NewState(p, parts, stockd.DefaultLimits), now: now}
}

// do decides and applies c, and returns its refusal, if any.
func (l *stateLog) do(c stockd.Command) error {
	d, err := l.st.Decide(c, l.now)
	if err != nil {
		return err
	}
	for _, ev := range d.Events {
		if err := l.st.Apply(ev); err != nil {
			l.tb.Error(err)
		}
		l.batch = append(l.batch, ev)
	}
	if len(l.batch) >= 1000 {
		l.flush()
	}
	return nil
}

// flush appends the events not yet written.
func (l *stateLog) flush() {
	if len(l.batch) == 0 {
		return
	}
	if err := l.store.Append(context.Background(), l.p, l.batch[0].Position-1, stockd.Batch{Events: l.batch}); err != nil {
		l.tb.Error(err)
	}
	l.batch = l.batch[:0]
}

// locations configures warehouses of those ids, of priorities 0, 1, …: in
// the partition that owns locations, by their events; in the others, handed
// over, as the engine does.
func (l *stateLog) locations(ids ...string) {
	locs := stockd.Locations{}
	for i, id := range ids {
		c := stockd.ConfigureLocation{ID: id, Kind: stockd.KindWarehouse, Priority: i}
		if l.p == stockd.LocationPartition {
			l.do(c)
		}
		locs[id] = stockd.Location(c)
	}
	if l.p != stockd.LocationPartition {
		l.st.SetLocations(locs)
	}
}

var pprofFile *os.File

// pprofStart profiles recovery alone, without writing the log, into the file
// STOCKD_BENCH_CPUPROFILE names.
func pprofStart(b *testing.B) {
	if p := os.Getenv("STOCKD_BENCH_CPUPROFILE"); p != "" {
		pprofFile, _ = os.Create(p)
		pprof.StartCPUProfile(pprofFile)
	}
}

func pprofStop() {
	if pprofFile != nil {
		pprof.StopCPUProfile()
		pprofFile.Close()
	}
}
