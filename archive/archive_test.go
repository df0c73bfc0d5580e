package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/pebble"
	"github.com/stockd/stockd/storetest"
)

var ctx = context.Background()

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

const parts = 3

// skus are SKUs spread over the partitions as the engine spreads them.
var skus = func() []string {
	var out []string
	for i := range 12 {
		out = append(out, fmt.Sprintf("sku-%d", i))
	}
	return out
}()

// history is a log to archive: batches of 1 to 6 events per partition, on
// the SKUs that partition owns and some without a SKU, at storetest's times.
type history struct {
	logs [parts]*storetest.Log
	rng  *rand.Rand
	// maxBatch is the most events in one batch; default 6.
	maxBatch int
}

func newHistory(seed uint64) *history {
	h := &history{rng: rand.New(rand.NewPCG(seed, 1))}
	for p := range h.logs {
		h.logs[p] = storetest.NewLog(p)
	}
	return h
}

// append appends n batches to every partition of each store.
func (h *history) append(t testing.TB, n int, stores ...stockd.Log) {
	t.Helper()
	for range n {
		for p := range parts {
			var mine []string
			for _, s := range skus {
				if stockd.PartitionOf(s, parts) == p {
					mine = append(mine, s)
				}
			}
			batch := make([]string, 1+h.rng.IntN(max(h.maxBatch, 6)))
			for i := range batch {
				if j := h.rng.IntN(len(mine) + 1); j < len(mine) {
					batch[i] = mine[j]
				}
			}
			events := h.logs[p].Events(batch...)
			for _, s := range stores {
				if err := s.Append(ctx, p, h.logs[p].Head, stockd.Batch{Events: events}); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			h.logs[p].Commit(events)
		}
	}
}

func openStore(t testing.TB, dir string, fs vfs.FS) *pebble.Store {
	t.Helper()
	s, err := pebble.Open(dir, pebble.Options{Partitions: parts, FS: fs, Logger: quiet})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	return s
}

func openBucket(t testing.TB, u string) *Bucket {
	t.Helper()
	b, err := OpenBucket(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// bucketURLs are the blob stores the tests run against.
func bucketURLs(t *testing.T) map[string]func() string {
	return map[string]func() string{
		"mem":  func() string { return "mem://" },
		"file": func() string { return (&url.URL{Scheme: "file", Path: filepath.ToSlash(t.TempDir())}).String() },
	}
}

// markRead records, in every partition, a snapshot and a checkpoint of
// consumer "c" at the head, so that everything may be archived.
func markRead(t testing.TB, s stockd.Store, h *history) {
	t.Helper()
	for p := range parts {
		if err := s.SaveSnapshot(ctx, stockd.Snapshot{Partition: p, Position: h.logs[p].Head, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetCheckpoint(ctx, "c", p, stockd.Checkpoint{Position: h.logs[p].Head}); err != nil {
			t.Fatal(err)
		}
	}
}

func verifyOK(t testing.TB, b *Bucket, s Starts) Report {
	t.Helper()
	r, err := Verify(ctx, b, s)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !r.OK() {
		t.Fatalf("Verify found problems: %q", r.Problems)
	}
	return r
}

// TestArchivedReadsEqualUnarchived archives a log in stages (bounded by age,
// by a snapshot, by a consumer) and checks after each that every read
// through the archive equals the same read of a store that archived nothing.
func TestArchivedReadsEqualUnarchived(t *testing.T) {
	for name, newURL := range bucketURLs(t) {
		t.Run(name, func(t *testing.T) {
			ref := openStore(t, t.TempDir(), nil)
			defer ref.Close()
			s := openStore(t, t.TempDir(), nil)
			defer s.Close()
			b := openBucket(t, newURL())
			l := NewLog(s, b, LogOptions{CachedSegments: 2, CachedIndexes: 4})
			h := newHistory(1)
			h.append(t, 60, ref, s)
			markRead(t, s, h)
			now := storetest.TimeAt(150)
			a, err := New(s, b, Options{After: time.Second, SegmentEvents: 25, MinEvents: 1, TrimChunk: 7, Log: l, Now: func() time.Time { return now }, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			storetest.CompareReads(t, l, ref, skus)
			// By age: only events older than a second before now.
			if err := a.RunOnce(ctx); err != nil {
				t.Fatalf("RunOnce: %v", err)
			}
			for p := range parts {
				start, _ := s.LogStart(ctx, p)
				if start == 0 || start >= 150 {
					t.Fatalf("partition %d archived up to %d, want in (0, 150)", p, start)
				}
			}
			storetest.CompareReads(t, l, ref, skus)
			verifyOK(t, b, s)
			// By snapshot and consumer: everything old enough, but only
			// up to the snapshot, then the checkpoint.
			now = storetest.TimeAt(1 << 20)
			for p := range parts {
				pos := h.logs[p].Head - 30
				if err := s.SaveSnapshot(ctx, stockd.Snapshot{Partition: p, Position: pos, Data: []byte("y")}); err != nil {
					t.Fatal(err)
				}
				if err := s.SetCheckpoint(ctx, "late", p, stockd.Checkpoint{Position: pos - 10}); err != nil {
					t.Fatal(err)
				}
			}
			h.append(t, 10, ref, s)
			if err := a.RunOnce(ctx); err != nil {
				t.Fatalf("RunOnce: %v", err)
			}
			for p := range parts {
				start, _ := s.LogStart(ctx, p)
				cp, _ := s.Checkpoint(ctx, "late", p)
				if start > cp.Position || cp.Position-start >= 25 {
					t.Errorf("partition %d archived up to %d, want up to the checkpoint %d (less a segment)", p, start, cp.Position)
				}
			}
			storetest.CompareReads(t, l, ref, skus)
			r := verifyOK(t, b, s)
			if r.Segments == 0 || len(r.Pending) != 0 {
				t.Errorf("Verify: %+v", r)
			}
			// A fresh Log (a restart) reads the same.
			storetest.CompareReads(t, NewLog(s, b, LogOptions{}), ref, skus)
		})
	}
}

// TestLogConformance runs the store conformance suite for a Log over the
// embedded store, archived or not.
func TestLogConformance(t *testing.T) {
	storetest.RunLog(t, func(t *testing.T, partitions int) stockd.Log {
		s := openStoreN(t, t.TempDir(), partitions)
		t.Cleanup(func() { s.Close() })
		return NewLog(s, openBucket(t, "mem://"), LogOptions{})
	})
}

func openStoreN(t testing.TB, dir string, n int) *pebble.Store {
	s, err := pebble.Open(dir, pebble.Options{Partitions: n, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var errCrash = errors.New("crash injected")

// TestCrashAtEveryStep crashes archiving after each of its steps (segment
// written, log start recorded, each chunk of the trim), losing whatever the
// store had not synced, then reopens the store and archives again. Every
// event appended must still read back, in order, through the archive; no
// segment may be written twice; the log must be continuous and verify.
func TestCrashAtEveryStep(t *testing.T) {
	for name, newURL := range bucketURLs(t) {
		t.Run(name, func(t *testing.T) {
			for _, step := range []string{"segment", "start", "trim"} {
				for nth := 1; nth <= 4; nth++ {
					t.Run(fmt.Sprintf("%s-%d", step, nth), func(t *testing.T) {
						crashAt(t, newURL(), step, nth)
					})
				}
			}
		})
	}
}

func crashAt(t *testing.T, bucketURL, step string, nth int) {
	fs := vfs.NewCrashableMem()
	ref := openStore(t, t.TempDir(), nil)
	defer ref.Close()
	s := openStore(t, "/data", fs)
	b := openBucket(t, bucketURL)
	h := newHistory(uint64(nth))
	h.append(t, 30, ref, s)
	markRead(t, s, h)
	opts := Options{After: time.Second, SegmentEvents: 25, MinEvents: 1, TrimChunk: 9, Now: func() time.Time { return storetest.TimeAt(1 << 20) }, Logger: quiet}
	a, err := New(s, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	a.step = func(got string, p int) error {
		if got == step {
			if calls++; calls == nth {
				return errCrash
			}
		}
		return nil
	}
	if err := a.RunOnce(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("RunOnce with a crash at %s #%d: %v", step, nth, err)
	}
	// The crash: what the store had not synced may be lost.
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(uint64(nth), 7))})
	_ = s.Close()
	s = openStore(t, "/data", crashed)
	defer s.Close()
	l := NewLog(s, b, LogOptions{})
	storetest.CompareReads(t, l, ref, skus) // acked ⊆ recovered, before the re-run
	before, err := Verify(ctx, b, s)
	if err != nil || !before.OK() {
		t.Fatalf("Verify after the crash: %+v, %v", before, err)
	}
	// Re-run to the end: everything eligible is archived once.
	opts.Log = l
	a, err = New(s, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce after the crash: %v", err)
	}
	storetest.CompareReads(t, l, ref, skus)
	r := verifyOK(t, b, s)
	if len(r.Pending) != 0 {
		t.Errorf("segments left pending: %q", r.Pending)
	}
	keys, err := b.listAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != r.Segments {
		t.Errorf("%d objects for %d segments: %q", len(keys), r.Segments, keys)
	}
	var archived uint64
	for p := range parts {
		start, _ := s.LogStart(ctx, p)
		if start != h.logs[p].Head {
			t.Errorf("partition %d archived up to %d, want its head %d", p, start, h.logs[p].Head)
		}
		archived += start
	}
	if r.Events != archived {
		t.Errorf("segments hold %d events, want %d (none twice)", r.Events, archived)
	}
	// The store holds no event at or below the start any more.
	for p := range parts {
		if more, err := s.Trim(ctx, p, 1<<30); err != nil || more {
			t.Errorf("Trim after the re-run: %v, %v", more, err)
		}
	}
}

// TestVerifyDetects checks that Verify finds a corrupted segment, a missing
// one and a stray object.
func TestVerifyDetects(t *testing.T) {
	for name, newURL := range bucketURLs(t) {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), nil)
			defer s.Close()
			b := openBucket(t, newURL())
			h := newHistory(3)
			h.append(t, 50, s)
			markRead(t, s, h)
			a, _ := New(s, b, Options{After: time.Second, SegmentEvents: 30, MinEvents: 1, Now: func() time.Time { return storetest.TimeAt(1 << 20) }, Logger: quiet})
			if err := a.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			verifyOK(t, b, s)
			keys, _ := b.listAll(ctx)
			if len(keys) < 6 {
				t.Fatalf("only %d segments", len(keys))
			}
			expect := func(what, want string) {
				t.Helper()
				r, err := Verify(ctx, b, s)
				if err != nil {
					t.Fatal(err)
				}
				if r.OK() || !strings.Contains(strings.Join(r.Problems, "\n"), want) {
					t.Fatalf("%s: Verify problems %q, want one containing %q", what, r.Problems, want)
				}
			}
			// Corrupt a byte in each section in turn.
			raw, _ := b.get(ctx, keys[1], 0, -1)
			hd, _ := parseHeader(raw)
			for _, off := range []int{10, headerSize + 1, headerSize + int(hd.IndexLen) + 3, len(raw) - 1} {
				bad := append([]byte(nil), raw...)
				bad[off] ^= 0x40
				if err := b.put(ctx, keys[1], bad); err != nil {
					t.Fatal(err)
				}
				expect(fmt.Sprintf("byte %d flipped", off), "checksum")
				// A read of the corrupt range fails instead of
				// returning wrong events.
				if _, err := NewLog(s, b, LogOptions{}).ReadPartition(ctx, hd.Partition, hd.First-1, 10); !errors.Is(err, ErrCorrupt) {
					t.Errorf("reading a corrupt segment: %v, want ErrCorrupt", err)
				}
			}
			if err := b.put(ctx, keys[1], raw); err != nil {
				t.Fatal(err)
			}
			verifyOK(t, b, s)
			if err := b.b.Delete(ctx, keys[1]); err != nil {
				t.Fatal(err)
			}
			expect("a segment deleted", "in no segment")
			if err := b.put(ctx, keys[1], raw); err != nil {
				t.Fatal(err)
			}
			last := keys[len(keys)-1]
			lraw, _ := b.get(ctx, last, 0, -1)
			if err := b.b.Delete(ctx, last); err != nil {
				t.Fatal(err)
			}
			expect("the last segment deleted", "lost or their segments missing")
			if err := b.put(ctx, last, lraw); err != nil {
				t.Fatal(err)
			}
			if err := b.put(ctx, "p00009/stray", []byte("x")); err != nil {
				t.Fatal(err)
			}
			expect("a stray object", "not a segment")
		})
	}
}

// TestReadsWhileArchiving reads through a Log while the archiver moves the
// range being read, so that reads meet a log start that moves under them:
// every read must still equal the same read of a store that archived
// nothing.
func TestReadsWhileArchiving(t *testing.T) {
	ref := openStore(t, t.TempDir(), nil)
	defer ref.Close()
	s := openStore(t, t.TempDir(), nil)
	defer s.Close()
	b := openBucket(t, "mem://")
	h := newHistory(5)
	h.append(t, 80, ref, s)
	markRead(t, s, h)
	l := NewLog(s, b, LogOptions{CachedSegments: 1, CachedIndexes: 1})
	a, err := New(s, b, Options{After: time.Second, SegmentEvents: 10, MinEvents: 1, TrimChunk: 3, Log: l, Now: func() time.Time { return storetest.TimeAt(1 << 20) }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.RunOnce(ctx) }()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		for p := range parts {
			for _, after := range []uint64{0, 13, 40} {
				got, err := l.ReadPartition(ctx, p, after, 25)
				if err != nil {
					t.Fatalf("ReadPartition(%d, %d) while archiving: %v", p, after, err)
				}
				want, _ := ref.ReadPartition(ctx, p, after, 25)
				if fmt.Sprint(storetest.Normalize(got)) != fmt.Sprint(storetest.Normalize(want)) {
					t.Fatalf("ReadPartition(%d, %d) while archiving differs", p, after)
				}
			}
		}
		for _, sku := range skus[:4] {
			got, err := l.ReadSKU(ctx, sku, stockd.SKUQuery{})
			if err != nil {
				t.Fatalf("ReadSKU(%s) while archiving: %v", sku, err)
			}
			want, _ := ref.ReadSKU(ctx, sku, stockd.SKUQuery{})
			if fmt.Sprint(storetest.Normalize(got)) != fmt.Sprint(storetest.Normalize(want)) {
				t.Fatalf("ReadSKU(%s) while archiving differs: %d events, want %d", sku, len(got), len(want))
			}
		}
	}
	if start, _ := s.LogStart(ctx, 0); start != h.logs[0].Head {
		t.Errorf("archived up to %d, want %d", start, h.logs[0].Head)
	}
}
