package pebble

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
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

// lastPosition returns the position of the last event of partition p, or 0,
// read back through ReadPartition as recovery finds it.
func lastPosition(t testing.TB, s *Store, p int) uint64 {
	t.Helper()
	var last uint64
	for {
		page, err := s.ReadPartition(ctx, p, last, 0)
		if err != nil {
			t.Fatalf("ReadPartition(%d, %d): %v", p, last, err)
		}
		if len(page) == 0 {
			return last
		}
		last = page[len(page)-1].Position
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, partitions int) stockd.Store {
		return openTest(t, t.TempDir(), Options{Partitions: partitions})
	})
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T, dir string, partitions int) (stockd.Store, error) {
		return Open(dir, Options{Partitions: partitions, Logger: testLogger})
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
	s = openTest(t, dir, Options{})
	defer s.Close()
	if n := s.Partitions(); n != DefaultPartitions {
		t.Errorf("Partitions() after reopening = %d, want %d", n, DefaultPartitions)
	}
	if h := lastPosition(t, s, DefaultPartitions-1); h != 2 {
		t.Errorf("partition %d ends at %d, want 2", DefaultPartitions-1, h)
	}
}

// TestOpenWithoutPartitionsUsesTheStores: a caller that was not told a
// number of partitions (stockd serve without --partitions) opens an existing
// store of any number, not only of DefaultPartitions.
func TestOpenWithoutPartitionsUsesTheStores(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Partitions: 5})
	storetest.NewLog(4).Append(t, s, "A")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	defer s.Close()
	if n := s.Partitions(); n != 5 {
		t.Errorf("Partitions() after reopening with 0 = %d, want the 5 it was created with", n)
	}
	if h := lastPosition(t, s, 4); h != 1 {
		t.Errorf("partition 4 ends at %d, want 1", h)
	}
}

// TestOpenRefusesAnotherPartitionCount: asking for another number of
// partitions than the store was created with fails, naming both numbers and
// why, instead of being ignored in silence.
func TestOpenRefusesAnotherPartitionCount(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, Options{Partitions: 8}).Close()
	s, err := Open(dir, Options{Partitions: 64, Logger: testLogger})
	if err == nil {
		s.Close()
		t.Fatal("Open of a store of 8 partitions with 64 succeeded")
	}
	for _, want := range []string{dir, "has 8 partitions", "not the 64", "fixed when a store is created"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open with another partition count: %q, want it to say %q", err, want)
		}
	}
	// The refusal released the directory and changed nothing.
	s = openTest(t, dir, Options{Partitions: 8})
	defer s.Close()
	if n := s.Partitions(); n != 8 {
		t.Errorf("Partitions() = %d after a refused Open, want 8", n)
	}
}

// TestOpenRefusesADirectoryOpenInThisProcess: a second Store on one
// directory in one process is refused by Pebble's lock, with an error that
// says so in words.
func TestOpenRefusesADirectoryOpenInThisProcess(t *testing.T) {
	dir := t.TempDir()
	first := openTest(t, dir, Options{Partitions: 2})
	s, err := Open(dir, Options{Logger: testLogger})
	if err == nil {
		s.Close()
		t.Fatal("a second Open of an open directory succeeded")
	}
	for _, want := range []string{"data directory " + dir, "already open in this process", "lock held"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("second Open: %q, want it to say %q", err, want)
		}
	}
	// Close releases the directory.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir, Options{}).Close()
}

// lockHolderEnv names the directory that the test binary, started again by
// TestOpenRefusesADirectoryAnotherProcessHolds, opens and holds.
const lockHolderEnv = "STOCKD_TEST_HOLD_STORE"

// TestOpenRefusesADirectoryAnotherProcessHolds: a directory that another
// process holds is refused with an error that names the cause in words, not
// with the bare "resource temporarily unavailable" of fcntl(2).
func TestOpenRefusesADirectoryAnotherProcessHolds(t *testing.T) {
	if dir := os.Getenv(lockHolderEnv); dir != "" {
		holdStore(dir)
		return
	}
	dir := t.TempDir()
	openTest(t, dir, Options{Partitions: 2}).Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenRefusesADirectoryAnotherProcessHolds$")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close() // tells the holder to close the store and exit
		if err := cmd.Wait(); err != nil {
			t.Errorf("lock holder: %v", err)
		}
	}()
	// The holder prints a line once it holds the store.
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "holding\n" {
		t.Fatalf("lock holder said %q, %v; want \"holding\"", line, err)
	}
	s, err := Open(dir, Options{Logger: testLogger})
	if err == nil {
		s.Close()
		t.Fatal("Open of a directory another process holds succeeded")
	}
	for _, want := range []string{"data directory " + dir, "in use by another stockd process", "lock held"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open of a held directory: %q, want it to say %q", err, want)
		}
	}
}

// holdStore is the other process of
// TestOpenRefusesADirectoryAnotherProcessHolds: it opens the store in dir,
// says so on stdout, and holds it until stdin is closed.
func holdStore(dir string) {
	s, err := Open(dir, Options{Logger: testLogger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lock holder:", err)
		os.Exit(1)
	}
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "lock holder:", err)
		os.Exit(1)
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
	if h := lastPosition(t, s, 0); h != 0 {
		t.Errorf("partition 0 ends at %d after invalid batches", h)
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
	if _, err := s.ReadSKU(ctx, "A", stockd.SKUQuery{}); err == nil {
		t.Errorf("ReadSKU after Close succeeded")
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
