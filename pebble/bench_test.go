package pebble

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/storetest"
)

// batchMaker builds consecutive batches of one partition cheaply, by copying
// a template and renumbering it, so that benchmarks measure the store rather
// than event construction.
type batchMaker struct {
	p        int
	head     uint64
	template []stockd.Event
	buf      []stockd.Event
}

func newBatchMaker(p, size int) *batchMaker {
	return &batchMaker{p: p, template: storetest.Events(p, 0, size), buf: make([]stockd.Event, size)}
}

// next returns the batch that follows the last one returned; the caller
// must append it before calling next again.
func (m *batchMaker) next() (expected uint64, batch stockd.Batch) {
	copy(m.buf, m.template)
	for i := range m.buf {
		pos := m.head + uint64(i) + 1
		m.buf[i].Position = pos
		m.buf[i].Version = (pos-1)/3 + 1 // storetest.Events' three SKUs
	}
	expected = m.head
	m.head += uint64(len(m.buf))
	return expected, stockd.Batch{Events: m.buf}
}

// BenchmarkAppend measures synced appends by one writer on the real disk,
// for batches of 1, 100 and 1000 events.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			s := openTest(b, b.TempDir(), Options{Partitions: 1})
			defer s.Close()
			m := newBatchMaker(0, size)
			n := 0
			for b.Loop() {
				expected, batch := m.next()
				if err := s.Append(ctx, 0, expected, batch); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendParallel measures synced appends by one writer per
// partition, which Pebble groups into shared log syncs.
func BenchmarkAppendParallel(b *testing.B) {
	const writers = 16
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			s := openTest(b, b.TempDir(), Options{Partitions: writers})
			defer s.Close()
			var next atomic.Int64
			var events atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := newBatchMaker(w, size)
					for next.Add(1) <= int64(b.N) {
						expected, batch := m.next()
						if err := s.Append(ctx, w, expected, batch); err != nil {
							b.Error(err)
							return
						}
						events.Add(int64(size))
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(events.Load())/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkPipelined measures one writer that begins the next batch while
// the previous ones are being synced, up to depth batches in flight.
func BenchmarkPipelined(b *testing.B) {
	const depth = 4
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			s := openTest(b, b.TempDir(), Options{Partitions: 1})
			defer s.Close()
			m := newBatchMaker(0, size)
			var waits []func() error
			n := 0
			for b.Loop() {
				expected, batch := m.next()
				wait, err := s.BeginAppend(ctx, 0, expected, batch)
				if err != nil {
					b.Fatal(err)
				}
				waits = append(waits, wait)
				if len(waits) == depth {
					if err := waits[0](); err != nil {
						b.Fatal(err)
					}
					waits = waits[1:]
				}
				n++
			}
			for _, wait := range waits {
				if err := wait(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkLookupRetired measures what a new id costs once a store has
// retired anything: LookupRetired of a key that was never retired (a miss),
// and of one that was (a hit), in a store of STOCKD_BENCH_EVENTS events
// (default 1,000,000) written in batches of 1,000, each batch retiring 300
// ids, as a busy partition's would.
//
//	go test ./pebble -run='^$' -bench=LookupRetired
func BenchmarkLookupRetired(b *testing.B) {
	total := 1_000_000
	if s := os.Getenv("STOCKD_BENCH_EVENTS"); s != "" {
		total, _ = strconv.Atoi(s)
	}
	s, err := Open(b.TempDir(), Options{Partitions: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	m := newBatchMaker(0, 1000)
	data := make([]byte, 120) // about a settled one-line cart's record
	n := 0
	for m.head < uint64(total) {
		expected, batch := m.next()
		for range 300 {
			batch.Retired = append(batch.Retired, stockd.RetiredRecord{
				Key: "reservation:c-" + strconv.Itoa(n), Partition: 0, Position: expected + 1, Data: data,
			})
			n++
		}
		if err := s.Append(context.Background(), 0, expected, batch); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.Run("miss", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok, err := s.LookupRetired(ctx, "reservation:new-"+strconv.Itoa(i)); err != nil || ok {
				b.Fatal(ok, err)
			}
			i++
		}
	})
	b.Run("hit", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok, err := s.LookupRetired(ctx, "reservation:c-"+strconv.Itoa(i*7919%n)); err != nil || !ok {
				b.Fatal(ok, err)
			}
			i++
		}
	})
}
