package engine_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/archive"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/pebble"
)

// BenchmarkSoak settles reservations at a steady rate for a long time with a
// short retention window, and checks that memory follows live work, not
// history: callers reserve one unit of one of 1,000 SKUs and at once commit
// (two in three) or release it, flat out, while the retention (seconds)
// retires what settled. It reports the process's memory and the engine's
// throughput over the first and the last million reservations, the time to
// recover the store afterwards, and the memory one live hold and one SKU ×
// location take.
//
//	STOCKD_SOAK_RESERVATIONS=20000000 STOCKD_SOAK_RETAIN=5s \
//	  go test ./engine -run='^$' -bench=Soak -benchtime=1x -timeout=2h
//
// STOCKD_SOAK_RESERVATIONS defaults to 3,000,000, STOCKD_SOAK_RETAIN to 5s,
// and STOCKD_SOAK_WINDOW, the reservations of each measured window, to
// 1,000,000.
func BenchmarkSoak(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(engine.GCPercent))
	total := envInt("STOCKD_SOAK_RESERVATIONS", 3_000_000)
	retain := 5 * time.Second
	if s := os.Getenv("STOCKD_SOAK_RETAIN"); s != "" {
		retain, _ = time.ParseDuration(s)
	}
	window := envInt("STOCKD_SOAK_WINDOW", 1_000_000) // reservations per measured window
	if total < 2*window {
		b.Fatalf("STOCKD_SOAK_RESERVATIONS must be at least twice STOCKD_SOAK_WINDOW (%d)", window)
	}
	const parts, skuCount, callers = 64, 1000, 256
	ctx := context.Background()
	limits := stockd.DefaultLimits
	limits.Retain = retain
	var e *engine.Engine
	// The clock is the real one, which the retention runs on, moved on
	// by hand to let the retention pass at the end.
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	pass := func() {
		offset.Add(int64(retain + time.Second))
		for p := range e.Partitions() {
			// A read makes the partition fire what is due first, and
			// answers once that is durable.
			_, _ = e.SKU(ctx, skuOfPartition(p, e.Partitions()), stockd.AsOf{})
		}
	}
	opts := engine.Options{Limits: limits, Logger: quiet, SkipSnapshotOnClose: true, Now: now}
	dir := b.TempDir()
	store, err := pebble.Open(dir, pebble.Options{Partitions: parts})
	if err != nil {
		b.Fatal(err)
	}
	// Old events go to cold storage as they would in production: behind
	// the latest snapshot, older than STOCKD_SOAK_ARCHIVE_AFTER (10s).
	archiveAfter := 10 * time.Second
	if s := os.Getenv("STOCKD_SOAK_ARCHIVE_AFTER"); s != "" {
		archiveAfter, _ = time.ParseDuration(s)
	}
	bucket, err := archive.OpenBucket(ctx, "file://"+filepath.ToSlash(filepath.Join(dir, "archive")))
	if err != nil {
		b.Fatal(err)
	}
	defer bucket.Close()
	alog := archive.NewLog(store, bucket, archive.LogOptions{})
	e, err = engine.Open(ctx, archive.Wrap(store, alog), opts)
	if err != nil {
		b.Fatal(err)
	}
	arc, err := archive.New(store, bucket, archive.Options{After: archiveAfter, Every: time.Second, Log: alog, Now: now, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	arc.Start()
	e2e.ConfigureLocations(b, e, "w1")
	skus := make([]string, skuCount)
	for i := range skus {
		skus[i] = "soak-" + strconv.Itoa(i)
		if _, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r-" + skus[i], SKU: skus[i], Location: "w1", Quantity: stockd.DefaultLimits.MaxQuantity}); err != nil {
			b.Fatal(err)
		}
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	// run settles reservations [from, to) and returns how long it took.
	run := func(from, to int64) time.Duration {
		next.Store(from)
		start := time.Now()
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1) - 1; i < to; i = next.Add(1) - 1 {
					id := "s-" + strconv.FormatInt(i, 10)
					sku := skus[i%skuCount]
					_, _, err := e.Reserve(ctx, stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}}})
					for backOff(err) {
						_, _, err = e.Reserve(ctx, stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}}})
					}
					settle := func() error {
						if i%3 == 2 {
							_, err := e.Release(ctx, stockd.ReleaseReservation{ID: id})
							return err
						}
						_, err := e.Commit(ctx, stockd.CommitReservation{ID: id})
						return err
					}
					if err == nil {
						err = settle()
						for backOff(err) {
							err = settle()
						}
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	first := run(0, int64(window))
	rssFirst, heapFirst := memory()
	if total > 2*window {
		run(int64(window), int64(total-window))
	}
	last := run(int64(total-window), int64(total))
	rssEnd, heapEnd := memory()
	b.StopTimer()
	b.ReportMetric(float64(window)/first.Seconds(), "first-window-res/s")
	b.ReportMetric(float64(window)/last.Seconds(), "last-window-res/s")
	b.ReportMetric(rssFirst/(1<<20), "rss-first-window-MiB")
	b.ReportMetric(rssEnd/(1<<20), "rss-end-MiB")
	b.ReportMetric(rssEnd/rssFirst, "rss-end/first")
	b.ReportMetric(heapFirst/(1<<20), "heap-first-window-MiB")
	b.ReportMetric(heapEnd/(1<<20), "heap-end-MiB")
	b.ReportMetric(float64(e.Keys()), "ids-in-memory")

	// Live work: holds that stay, and stock at new SKU × locations, once
	// everything settled has retired, with the archiver stopped so that
	// only the engine's memory moves.
	arc.Close()
	pass()
	const live = 100_000
	_, heap0 := memory()
	parallel(live, callers, func(i int) {
		c := stockd.Reserve{ID: "live-" + strconv.Itoa(i), TTL: 24 * time.Hour, Lines: []stockd.ReserveLine{{SKU: skus[i%skuCount], Quantity: 1}}}
		_, _, err := e.Reserve(ctx, c)
		for backOff(err) {
			_, _, err = e.Reserve(ctx, c)
		}
		if err != nil {
			b.Error(err)
		}
	})
	_, heap1 := memory()
	parallel(live, callers, func(i int) {
		c := stockd.ReceiveStock{ID: "rl-" + strconv.Itoa(i), SKU: "new-" + strconv.Itoa(i), Location: "w1", Quantity: 5}
		_, _, err := e.Receive(ctx, c)
		for backOff(err) {
			_, _, err = e.Receive(ctx, c)
		}
		if err != nil {
			b.Error(err)
		}
	})
	// The receipts' own records retire; what is left is the SKU ×
	// location.
	pass()
	_, heap2 := memory()
	b.ReportMetric((heap1-heap0)/live, "B/live-hold")
	b.ReportMetric((heap2-heap1)/live, "B/sku-location")

	// Recovery of the whole store, as after a crash: the latest
	// background snapshots plus the log since, with what was archived in
	// cold storage.
	events, archived := uint64(0), uint64(0)
	for p := range e.Partitions() {
		events += e.DurableHead(p)
		start, _ := store.LogStart(ctx, p)
		archived += start
	}
	if err := e.Close(ctx); err != nil {
		b.Fatal(err)
	}
	store.Close()
	store, err = pebble.Open(dir, pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	pprofStart(b) // STOCKD_BENCH_CPUPROFILE profiles the recovery alone
	start := time.Now()
	e, err = engine.Open(ctx, archive.Wrap(store, archive.NewLog(store, bucket, archive.LogOptions{})), opts)
	pprofStop()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(start).Seconds(), "recovery-s")
	b.ReportMetric(float64(events), "events")
	b.ReportMetric(float64(archived), "events-archived")
	e.Close(ctx)
	store.Close()
	b.ReportMetric(0, "ns/op")
	fmt.Fprintf(os.Stderr, "soak: %d reservations, retain %v\n", total, retain)
}

// memory returns the process's resident memory and the heap in use, after a
// collection that returns what it freed to the system.
func memory() (rss, heap float64) {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(residentBytes()), float64(m.HeapInuse)
}

// residentBytes reads VmRSS from /proc/self/status (Linux), or 0.
func residentBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func envInt(name string, def int) int {
	if s := os.Getenv(name); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	return def
}
