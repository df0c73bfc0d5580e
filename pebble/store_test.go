package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/storetest"
)

var ctx = context.Background()

// testLogger keeps Pebble quiet in tests but shows its warnings. It writes to
// stderr rather than t.Log because Pebble's background goroutines may log
// after a test has finished.
var testLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// openTest opens a store in dir on the real file system, failing the test on
// error.
func openTest(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, partitions int) stockd.Store {
		return openTest(t, t.TempDir(), Options{Partitions: partitions})
	})
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T, dir string, partitions int) stockd.Store {
		return openTest(t, dir, Options{Partitions: partitions})
	})
}

func TestDefaultPartitions(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if n := s.Partitions(); n != DefaultPartitions {
		t.Errorf("Partitions() = %d, want %d", n, DefaultPartitions)
	}
	storetest.NewLog(DefaultPartitions-1).Append(t, s, "A", "B")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{Partitions: 3})
	defer s.Close()
	if n := s.Partitions(); n != DefaultPartitions {
		t.Errorf("Partitions() after reopening = %d, want %d", n, DefaultPartitions)
	}
	if h, _ := s.Head(ctx, DefaultPartitions-1); h != 2 {
		t.Errorf("Head(%d) = %d, want 2", DefaultPartitions-1, h)
	}
}

func TestOpenRejectsBadOptionsAndFormats(t *testing.T) {
	for _, n := range []int{-1, MaxPartitions + 1} {
		if s, err := Open(t.TempDir(), Options{Partitions: n, Logger: testLogger}); err == nil {
			s.Close()
			t.Errorf("Open with %d partitions succeeded", n)
		}
	}

	// A store of an unknown format version is refused, not misread.
	dir := t.TempDir()
	openTest(t, dir, Options{Partitions: 2}).Close()
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: pebbleLogger{testLogger}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte{prefixMeta}, []byte{0, 0, 0, 2, 0, 0, 0, 2}, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{Logger: testLogger})
	if err == nil {
		s.Close()
		t.Fatal("Open of a store of format version 2 succeeded")
	}
	if !strings.Contains(err.Error(), "format version 2") {
		t.Errorf("Open of a store of format version 2: %v, want a message naming the version", err)
	}

	// A database that is not a stockd store is refused too.
	dir = t.TempDir()
	db, err = pebbledb.Open(dir, &pebbledb.Options{Logger: pebbleLogger{testLogger}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("foreign"), []byte("data"), pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir, Options{Logger: testLogger}); err == nil {
		s.Close()
		t.Fatal("Open of a foreign database succeeded")
	}
}

// unknownData is an event data type the codec does not know.
type unknownData struct{}

func (unknownData) EventType() stockd.EventType { return 200 }

func TestBadInputIsRejectedWithoutPanics(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Partitions: 2})
	defer s.Close()
	ev := storetest.Event(0, 1, "A", 1)
	bad := func(mutate func(*stockd.Event)) stockd.Batch {
		e := ev
		mutate(&e)
		return stockd.Batch{Events: []stockd.Event{e}}
	}
	cases := map[string]stockd.Batch{
		"nil data":             bad(func(e *stockd.Event) { e.Data = nil }),
		"unknown data type":    bad(func(e *stockd.Event) { e.Data = unknownData{} }),
		"NUL in SKU":           bad(func(e *stockd.Event) { e.SKU = "A\x00B" }),
		"empty key":            {Events: []stockd.Event{ev}, Keys: []stockd.KeyRecord{{Key: ""}}},
		"key partition -1":     {Events: []stockd.Event{ev}, Keys: []stockd.KeyRecord{{Key: "k", Partition: -1}}},
		"key partition 2 of 2": {Events: []stockd.Event{ev}, Keys: []stockd.KeyRecord{{Key: "k", Partition: 2}}},
		"key twice":            {Events: []stockd.Event{ev}, Keys: []stockd.KeyRecord{{Key: "k"}, {Key: "k", Position: 1}}},
	}
	for name, batch := range cases {
		if err := s.Append(ctx, 0, 0, batch); !stockd.IsCode(err, stockd.CodeInvalid) {
			t.Errorf("Append of a batch with %s: %v, want %s", name, err, stockd.CodeInvalid)
		}
	}
	if h, _ := s.Head(ctx, 0); h != 0 {
		t.Errorf("Head = %d after invalid batches", h)
	}
	if _, err := s.ReadSKU(ctx, "A\x00", stockd.SKUQuery{}); !stockd.IsCode(err, stockd.CodeInvalid) {
		t.Errorf("ReadSKU with a NUL byte: %v, want %s", err, stockd.CodeInvalid)
	}
	if err := s.SetCheckpoint(ctx, "a\x00b", 0, stockd.Checkpoint{Position: 1}); !stockd.IsCode(err, stockd.CodeInvalid) {
		t.Errorf("SetCheckpoint with a NUL byte: %v, want %s", err, stockd.CodeInvalid)
	}
	for _, p := range []int{-1, 2} {
		if _, err := s.ReadPartition(ctx, p, 0, 10); !stockd.IsCode(err, stockd.CodeInvalid) {
			t.Errorf("ReadPartition(%d): %v, want %s", p, err, stockd.CodeInvalid)
		}
		if _, _, err := s.LoadSnapshot(ctx, p); !stockd.IsCode(err, stockd.CodeInvalid) {
			t.Errorf("LoadSnapshot(%d): %v, want %s", p, err, stockd.CodeInvalid)
		}
		if _, err := s.Checkpoint(ctx, "c", p); !stockd.IsCode(err, stockd.CodeInvalid) {
			t.Errorf("Checkpoint(%d): %v, want %s", p, err, stockd.CodeInvalid)
		}
	}
	// Reads beyond the head and at the largest positions and versions are
	// empty, not errors or overflows.
	storetest.NewLog(0).Append(t, s, "A")
	for _, after := range []uint64{1, 2, 1<<64 - 2, 1<<64 - 1} {
		if events, err := s.ReadPartition(ctx, 0, after, 10); err != nil || len(events) != 0 {
			t.Errorf("ReadPartition(after %d) = %d events, %v", after, len(events), err)
		}
		if events, err := s.ReadSKU(ctx, "A", stockd.SKUQuery{AfterVersion: after}); err != nil || len(events) != 0 {
			t.Errorf("ReadSKU(after %d) = %d events, %v", after, len(events), err)
		}
	}
	// A cancelled context is honoured before any work.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Append(cancelled, 0, 1, stockd.Batch{Events: storetest.Events(0, 1, 1)}); err == nil {
		t.Errorf("Append with a cancelled context succeeded")
	}
}

func TestCloseIsIdempotentAndLaterCallsFail(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Partitions: 1})
	storetest.NewLog(0).Append(t, s, "A")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Append(ctx, 0, 1, stockd.Batch{Events: storetest.Events(0, 1, 1)}); err == nil {
		t.Errorf("Append after Close succeeded")
	}
	if _, err := s.ReadPartition(ctx, 0, 0, 10); err == nil {
		t.Errorf("ReadPartition after Close succeeded")
	}
	if _, _, err := s.LookupKey(ctx, "k"); err == nil {
		t.Errorf("LookupKey after Close succeeded")
	}
	if err := s.SetCheckpoint(ctx, "c", 0, stockd.Checkpoint{Position: 1}); err == nil {
		t.Errorf("SetCheckpoint after Close succeeded")
	}
}

func TestWaitMayBeCalledTwice(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Partitions: 1})
	defer s.Close()
	wait, err := s.BeginAppend(ctx, 0, 0, stockd.Batch{Events: storetest.Events(0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := wait(); err != nil {
			t.Fatalf("wait %d: %v", i, err)
		}
	}
}

// TestOneRecordPerBatch checks the key layout the package promises: one
// record per batch and one history entry per SKU and batch.
func TestOneRecordPerBatch(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Partitions: 2})
	log := storetest.NewLog(1)
	log.Append(t, s, "A", "B", "A", "", "A")
	log.Append(t, s, "B")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: pebbleLogger{testLogger}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(prefix byte) int {
		it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		return n
	}
	if n := count(prefixEvents); n != 2 {
		t.Errorf("%d event records, want 2", n)
	}
	if n := count(prefixHistory); n != 3 {
		t.Errorf("%d history entries, want 3 (A and B in the first batch, B in the second)", n)
	}
}

func TestSnapshotChunking(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Partitions: 1})
	defer s.Close()
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 7} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		pos := uint64(size + 1)
		if err := s.SaveSnapshot(ctx, stockd.Snapshot{Partition: 0, Position: pos, Data: data}); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.LoadSnapshot(ctx, 0)
		if err != nil || !ok || got.Position != pos || string(got.Data) != string(data) {
			t.Fatalf("snapshot of %d bytes: got position %d, %d bytes, %v, %v", size, got.Position, len(got.Data), ok, err)
		}
	}
	// Saving at a position at or below the latest keeps the latest: only
	// older snapshots are deleted.
	if err := s.SaveSnapshot(ctx, stockd.Snapshot{Partition: 0, Position: 1, Data: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.LoadSnapshot(ctx, 0); got.Position != 3*chunkSize+8 {
		t.Errorf("LoadSnapshot after saving an older one: position %d", got.Position)
	}
}

// TestCheckpointLayout checks what the conformance suite cannot see: a
// checkpoint that shrinks leaves none of its old chunks behind, and a header
// of the layout before checkpoints carried state (the position alone) reads
// as a checkpoint without state and can be replaced.
func TestCheckpointLayout(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Partitions: 2})
	defer s.Close()
	key := checkpointKey("proj", 1)
	keys := func() int {
		t.Helper()
		it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: key, UpperBound: prefixEnd(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		return n
	}
	for _, c := range []struct {
		size, keys int
	}{
		{3*chunkSize + 1, 5}, {chunkSize, 2}, {0, 1}, {2 * chunkSize, 3}, {10, 2},
	} {
		state := bytes.Repeat([]byte{7}, c.size)
		if err := s.SetCheckpoint(ctx, "proj", 1, stockd.Checkpoint{Position: uint64(c.size), State: state}); err != nil {
			t.Fatal(err)
		}
		if n := keys(); n != c.keys {
			t.Errorf("checkpoint with %d bytes of state has %d keys, want %d", c.size, n, c.keys)
		}
		got, err := s.Checkpoint(ctx, "proj", 1)
		if err != nil || got.Position != uint64(c.size) || !bytes.Equal(got.State, state) {
			t.Errorf("Checkpoint = %d, %d bytes, %v; want %d, %d bytes", got.Position, len(got.State), err, c.size, c.size)
		}
	}

	var legacy [8]byte
	binary.BigEndian.PutUint64(legacy[:], 42)
	if err := s.db.Set(checkpointKey("old", 0), legacy[:], pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	got, err := s.Checkpoint(ctx, "old", 0)
	if err != nil || got.Position != 42 || got.State != nil {
		t.Fatalf("legacy Checkpoint = %d, %d bytes, %v; want 42 without state", got.Position, len(got.State), err)
	}
	if err := s.SetCheckpoint(ctx, "old", 0, stockd.Checkpoint{Position: 43, State: []byte("now with state")}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Checkpoint(ctx, "old", 0); err != nil || got.Position != 43 || string(got.State) != "now with state" {
		t.Fatalf("Checkpoint after replacing a legacy one = %d, %q, %v", got.Position, got.State, err)
	}

	// A corrupt header is reported, not misread, and can be overwritten.
	if err := s.db.Set(checkpointKey("bad", 0), []byte{1, 2, 3}, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx, "bad", 0); !errors.Is(err, stockd.ErrCorrupt) {
		t.Errorf("Checkpoint with a corrupt header: %v, want ErrCorrupt", err)
	}
	if err := s.SetCheckpoint(ctx, "bad", 0, stockd.Checkpoint{Position: 1}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Checkpoint(ctx, "bad", 0); err != nil || got.Position != 1 {
		t.Errorf("Checkpoint after overwriting a corrupt one = %d, %v", got.Position, err)
	}
}
