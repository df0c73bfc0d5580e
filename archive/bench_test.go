package archive

import (
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/pebble"
	"github.com/stockd/stockd/storetest"
)

// benchLogs returns the same log twice: in the embedded store alone, and
// wholly archived in segments of 10,000 events in a mem:// bucket behind a
// Log. Each of the 3 partitions holds about 35,000 events, in
// batches of 30 on average.
func benchLogs(b *testing.B) (plain *pebble.Store, archived *Log, bucket *Bucket, src *pebble.Store) {
	plain = openStore(b, b.TempDir(), nil)
	src = openStore(b, b.TempDir(), nil)
	b.Cleanup(func() { plain.Close(); src.Close() })
	h := newHistory(9)
	h.maxBatch = 60 // batches of 30 events on average, as under load
	h.append(b, 1_150, plain, src)
	markRead(b, src, h)
	bucket = openBucket(b, "mem://")
	a, err := New(src, bucket, Options{After: time.Second, SegmentEvents: 10_000, MinEvents: 1, Now: func() time.Time { return storetest.TimeAt(1 << 30) }, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.RunOnce(ctx); err != nil {
		b.Fatal(err)
	}
	return plain, NewLog(src, bucket, LogOptions{}), bucket, src
}

// BenchmarkReadPartition reads partition 0 a page of 1,000 events at a time
// from the start, as a consumer replaying does: from Pebble, from segments
// with the cache warm (each segment fetched and decompressed once per 10
// pages), and from segments with a cold cache for every page (a fetch and
// decompression of a whole segment per page).
func BenchmarkReadPartition(b *testing.B) {
	plain, archived, bucket, src := benchLogs(b)
	head := uint64(0)
	if start, _ := src.LogStart(ctx, 0); start > 0 {
		head = start
	}
	run := func(b *testing.B, log func() stockd.Log) {
		b.ReportAllocs()
		after := uint64(0)
		events := 0
		for b.Loop() {
			page, err := log().ReadPartition(ctx, 0, after, 1000)
			if err != nil {
				b.Fatal(err)
			}
			events += len(page)
			after += uint64(len(page))
			if after >= head {
				after = 0
			}
		}
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("pebble", func(b *testing.B) { run(b, func() stockd.Log { return plain }) })
	b.Run("segments-warm", func(b *testing.B) { run(b, func() stockd.Log { return archived }) })
	b.Run("segments-cold", func(b *testing.B) {
		run(b, func() stockd.Log { return NewLog(src, bucket, LogOptions{}) })
	})
}

// BenchmarkReadSKU reads one SKU's whole history (about 4,000 events over
// the partition's segments), as a time-travel read does, from Pebble and
// from segments, warm and cold.
func BenchmarkReadSKU(b *testing.B) {
	plain, archived, bucket, src := benchLogs(b)
	sku := skus[0]
	run := func(b *testing.B, log func() stockd.Log) {
		b.ReportAllocs()
		events := 0
		for b.Loop() {
			got, err := log().ReadSKU(ctx, sku, stockd.SKUQuery{})
			if err != nil {
				b.Fatal(err)
			}
			events += len(got)
		}
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("pebble", func(b *testing.B) { run(b, func() stockd.Log { return plain }) })
	b.Run("segments-warm", func(b *testing.B) { run(b, func() stockd.Log { return archived }) })
	b.Run("segments-cold", func(b *testing.B) {
		run(b, func() stockd.Log { return NewLog(src, bucket, LogOptions{}) })
	})
}
