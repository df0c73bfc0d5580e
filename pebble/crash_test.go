package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/storetest"
)

// crashPoint is what the store had acknowledged, and what it had begun, when
// a crash was simulated by cloning the file system.
type crashPoint struct {
	fs *vfs.MemFS
	// acked is the head of each partition whose Append or wait had returned
	// nil; begun is the head including batches applied but not waited for.
	acked, begun []uint64
	// snap is the data of the last snapshot saved, by partition.
	snap map[int][]byte
	// checkpoint is the last checkpoint set, by partition, for consumer "c".
	checkpoint map[int]stockd.Checkpoint
}

// TestCrashConsistency appends batches to a store on a crash-simulating file
// system, clones the file system at random moments keeping a random share of
// the unsynced data, and checks that the store reopened on each clone holds
// every acknowledged batch, whole batches only, without gaps.
func TestCrashConsistency(t *testing.T) {
	// Run as many seeds as fit in a time budget, because the race detector
	// (which also turns on Pebble's invariant checks) makes a seed ten times
	// slower; always run a few, so that every configuration tests something.
	const (
		minSeeds = 5
		maxSeeds = 60
	)
	budget := 8 * time.Second
	if testing.Short() {
		budget = 2 * time.Second
	}
	start := time.Now()
	seed := 0
	for ; seed < maxSeeds && (seed < minSeeds || time.Since(start) < budget); seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { crashRun(t, uint64(seed)) })
	}
	t.Logf("%d seeds in %v", seed, time.Since(start).Round(time.Millisecond))
}

func crashRun(t *testing.T, seed uint64) {
	const partitions = 3
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	fs := vfs.NewCrashableMem()
	s, err := Open("db", Options{Partitions: partitions, FS: fs, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	acked := make([]uint64, partitions)
	begun := make([]uint64, partitions)
	// boundaries records the last position of every batch begun, so that a
	// partial batch can be told from a whole one.
	boundaries := make([]map[uint64]bool, partitions)
	for p := range boundaries {
		boundaries[p] = map[uint64]bool{0: true}
	}
	snaps := map[int][]byte{}
	checkpoints := map[int]stockd.Checkpoint{}
	var crashes []crashPoint
	crash := func() {
		crashes = append(crashes, crashPoint{
			fs:         fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng}),
			acked:      append([]uint64(nil), acked...),
			begun:      append([]uint64(nil), begun...),
			snap:       cloneSnaps(snaps),
			checkpoint: cloneCheckpoints(checkpoints),
		})
	}
	type pending struct {
		p    int
		last uint64
		wait func() error
	}
	var inflight []pending
	settle := func() {
		for _, w := range inflight {
			if err := w.wait(); err != nil {
				t.Fatalf("wait: %v", err)
			}
			acked[w.p] = max(acked[w.p], w.last)
		}
		inflight = inflight[:0]
	}
	for step := 0; step < 30; step++ {
		p := rng.IntN(partitions)
		n := 1 + rng.IntN(40)
		batch := stockd.Batch{
			Events: storetest.Events(p, begun[p], n),
			Keys:   []stockd.KeyRecord{{Key: fmt.Sprintf("k-%d-%d", p, begun[p]+1), Partition: p, Position: begun[p] + 1}},
		}
		switch rng.IntN(4) {
		case 0, 1:
			if err := s.Append(ctx, p, begun[p], batch); err != nil {
				t.Fatalf("Append: %v", err)
			}
			begun[p] += uint64(n)
			acked[p] = begun[p]
		default:
			wait, err := s.BeginAppend(ctx, p, begun[p], batch)
			if err != nil {
				t.Fatalf("BeginAppend: %v", err)
			}
			begun[p] += uint64(n)
			inflight = append(inflight, pending{p, begun[p], wait})
		}
		boundaries[p][begun[p]] = true
		switch r := rng.IntN(10); {
		case r < 3:
			// A crash while batches may be in flight.
			crash()
		case r < 4:
			data := bytes.Repeat([]byte{byte(step)}, rng.IntN(chunkSize+chunkSize/4))
			if err := s.SaveSnapshot(ctx, stockd.Snapshot{Partition: p, Position: begun[p], Data: data}); err != nil {
				t.Fatalf("SaveSnapshot: %v", err)
			}
			snaps[p] = data
		case r < 5:
			// States of up to two and a half chunks, so that a
			// checkpoint replaces one with more or fewer chunks.
			c := stockd.Checkpoint{Position: uint64(step), State: bytes.Repeat([]byte{byte(step), byte(p)}, rng.IntN(chunkSize+chunkSize/4))}
			if err := s.SetCheckpoint(ctx, "c", p, c); err != nil {
				t.Fatalf("SetCheckpoint: %v", err)
			}
			checkpoints[p] = c
		}
		if rng.IntN(3) == 0 {
			settle()
		}
	}
	settle()
	crash()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i, c := range crashes {
		verifyCrash(t, fmt.Sprintf("crash %d", i), c, boundaries)
	}
}

// verifyCrash reopens the store on a crashed file system and checks it
// against what was acknowledged before the crash.
func verifyCrash(t *testing.T, name string, c crashPoint, boundaries []map[uint64]bool) {
	t.Helper()
	s, err := Open("db", Options{FS: c.fs, Logger: testLogger})
	if err != nil {
		t.Fatalf("%s: reopen: %v", name, err)
	}
	defer s.Close()
	if n := s.Partitions(); n != len(c.acked) {
		t.Fatalf("%s: Partitions() = %d, want %d", name, n, len(c.acked))
	}
	for p := range c.acked {
		h := lastPosition(t, s, p)
		if h < c.acked[p] || h > c.begun[p] {
			t.Fatalf("%s: partition %d head %d, want between acknowledged %d and begun %d", name, p, h, c.acked[p], c.begun[p])
		}
		if !boundaries[p][h] {
			t.Fatalf("%s: partition %d head %d is inside a batch", name, p, h)
		}
		var got []stockd.Event
		for {
			page, err := s.ReadPartition(ctx, p, uint64(len(got)), 500)
			if err != nil {
				t.Fatalf("%s: ReadPartition(%d): %v", name, p, err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
		}
		if want := storetest.Events(p, 0, int(h)); !sameEvents(got, want) {
			t.Fatalf("%s: partition %d holds %d events that differ from the %d appended", name, p, len(got), len(want))
		}
		// Every SKU's history is complete up to the head.
		for k := 0; k < 3; k++ {
			sku := fmt.Sprintf("sku-%d-%d", p, k)
			events, err := s.ReadSKU(ctx, sku, stockd.SKUQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if want := (h + 2 - uint64(k)) / 3; uint64(len(events)) != want {
				t.Fatalf("%s: ReadSKU(%s) returned %d events, want %d", name, sku, len(events), want)
			}
		}
		if want, ok := c.snap[p]; ok {
			snap, found, err := s.LoadSnapshot(ctx, p)
			if err != nil || !found || !bytes.Equal(snap.Data, want) {
				t.Fatalf("%s: LoadSnapshot(%d) = %d bytes, %v, %v; want %d bytes", name, p, len(snap.Data), found, err, len(want))
			}
		}
		if want, ok := c.checkpoint[p]; ok {
			got, err := s.Checkpoint(ctx, "c", p)
			if err != nil || got.Position != want.Position || !bytes.Equal(got.State, want.State) {
				t.Fatalf("%s: Checkpoint(%d) = position %d, %d bytes, %v; want position %d, %d bytes",
					name, p, got.Position, len(got.State), err, want.Position, len(want.State))
			}
		}
	}
	// The key of every acknowledged batch is recorded.
	for p := range c.acked {
		for pos := uint64(1); pos <= c.acked[p]; pos++ {
			if !boundaries[p][pos-1] {
				continue // not the first position of a batch
			}
			if ok, err := hasKeyRecord(s, fmt.Sprintf("k-%d-%d", p, pos)); err != nil || !ok {
				t.Fatalf("%s: key of the batch at %d in partition %d: %v, %v", name, pos, p, ok, err)
			}
		}
	}
}

// hasKeyRecord reports whether the idempotency record of key is stored. It
// reads the database directly: nothing in the store reads the records back
// (see keys.go), yet they must survive a crash with their batch.
func hasKeyRecord(s *Store, key string) (bool, error) {
	_, closer, err := s.db.Get(idempotencyKey(key))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// sameEvents reports whether got and want hold the same events, with times
// normalised and nil equal to empty.
func sameEvents(got, want []stockd.Event) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return reflect.DeepEqual(storetest.Normalize(got), storetest.Normalize(want))
}

func cloneSnaps(m map[int][]byte) map[int][]byte {
	out := make(map[int][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneCheckpoints(m map[int]stockd.Checkpoint) map[int]stockd.Checkpoint {
	out := make(map[int]stockd.Checkpoint, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestSyncErrorFailsStop makes the write-ahead log's syncs fail and checks
// that the failing append reports it, that the store refuses every later
// write, and that a store reopened on a healthy file system holds every batch
// acknowledged before the failure.
func TestSyncErrorFailsStop(t *testing.T) {
	base := vfs.NewCrashableMem()
	var failing atomic.Bool
	var injected atomic.Int64
	fs := errorfs.Wrap(base, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !failing.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			injected.Add(1)
			return errorfs.ErrInjected
		}
		return nil
	}))
	// The store logs its failure at error level; that is expected here.
	quiet := slog.New(slog.DiscardHandler)
	s, err := Open("db", Options{Partitions: 2, FS: fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	logs := []*storetest.Log{storetest.NewLog(0), storetest.NewLog(1)}
	appended := make([][]stockd.Event, 2)
	for i := 0; i < 10; i++ {
		appended[i%2] = append(appended[i%2], logs[i%2].Append(t, s, "A", "", "B")...)
	}
	if err := s.SaveSnapshot(ctx, stockd.Snapshot{Partition: 0, Position: logs[0].Head, Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCheckpoint(ctx, "c", 1, stockd.Checkpoint{Position: 4, State: []byte("four")}); err != nil {
		t.Fatal(err)
	}
	acked := []uint64{logs[0].Head, logs[1].Head}

	failing.Store(true)
	failed := logs[0].Batch("A")
	err = s.Append(ctx, 0, logs[0].Head, failed)
	if err == nil {
		t.Fatal("Append succeeded although the log's sync failed")
	}
	if !errors.Is(err, errorfs.ErrInjected) && !strings.Contains(err.Error(), "injected error") {
		t.Errorf("Append: %v, want the injected sync error", err)
	}
	if stockd.IsCode(err, stockd.CodeConflict) {
		t.Errorf("a sync error was reported as a conflict: %v", err)
	}
	if injected.Load() == 0 {
		t.Fatal("no sync error was injected")
	}
	// Once failed, the store refuses every write with the same error, even
	// when the file system recovers, and does not retry the sync.
	failing.Store(false)
	before := injected.Load()
	if err2 := s.Append(ctx, 1, logs[1].Head, logs[1].Batch("B")); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("Append after a sync error: %v, want %v", err2, err)
	}
	if _, err2 := s.BeginAppend(ctx, 1, logs[1].Head, logs[1].Batch("B")); err2 == nil {
		t.Errorf("BeginAppend after a sync error succeeded")
	}
	if err2 := s.SetCheckpoint(ctx, "c", 1, stockd.Checkpoint{Position: 5}); err2 == nil {
		t.Errorf("SetCheckpoint after a sync error succeeded")
	}
	if err2 := s.SaveSnapshot(ctx, stockd.Snapshot{Partition: 1, Position: 1}); err2 == nil {
		t.Errorf("SaveSnapshot after a sync error succeeded")
	}
	failing.Store(true)
	if err := s.Close(); err != nil {
		t.Logf("Close after a sync error: %v", err)
	}
	if n := injected.Load() - before; n > 1 {
		t.Logf("%d further sync attempts after the failure (by Pebble's close)", n)
	}

	// Reopen twice: on the file system as it is (the failed batch's bytes
	// were written, so it may be present) and as it would be after a crash
	// that loses everything unsynced (so it must be absent).
	for _, c := range []struct {
		name    string
		fs      vfs.FS
		mayHold bool
	}{
		{"healthy", base, true},
		{"crashed", base.CrashClone(vfs.CrashCloneCfg{}), false},
	} {
		s, err := Open("db", Options{FS: c.fs, Logger: testLogger})
		if err != nil {
			t.Fatalf("%s: reopen: %v", c.name, err)
		}
		for p := range logs {
			h := lastPosition(t, s, p)
			want := appended[p]
			if p == 0 && c.mayHold && h == acked[0]+1 {
				// The failed batch reached the file but not the disk:
				// its outcome is unknown, and either outcome is valid.
				want = append(want, failed.Events...)
			}
			if h != uint64(len(want)) {
				t.Errorf("%s: partition %d ends at %d, want %d (acknowledged %d)", c.name, p, h, len(want), acked[p])
			}
			events, err := s.ReadPartition(ctx, p, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if !sameEvents(events, want) {
				t.Errorf("%s: partition %d holds %d events, want the %d acknowledged", c.name, p, len(events), len(want))
			}
		}
		if snap, ok, err := s.LoadSnapshot(ctx, 0); err != nil || !ok || string(snap.Data) != "state" {
			t.Errorf("%s: LoadSnapshot(0) = %q, %v, %v", c.name, snap.Data, ok, err)
		}
		if cp, err := s.Checkpoint(ctx, "c", 1); err != nil || cp.Position != 4 || string(cp.State) != "four" {
			t.Errorf("%s: Checkpoint = %d, %q, %v; want 4, \"four\"", c.name, cp.Position, cp.State, err)
		}
		// The reopened store appends again.
		h := lastPosition(t, s, 1)
		if err := s.Append(ctx, 1, h, stockd.Batch{Events: storetest.Events(1, h, 2)}); err != nil {
			t.Errorf("%s: Append after reopening: %v", c.name, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("%s: Close: %v", c.name, err)
		}
	}
}

// TestSyncErrorWithPipelinedBatches fails the log's syncs while batches are
// in flight: none of them may be reported durable, later appends are
// refused, and a crash keeps every batch acknowledged before.
func TestSyncErrorWithPipelinedBatches(t *testing.T) {
	base := vfs.NewCrashableMem()
	var failing atomic.Bool
	fs := errorfs.Wrap(base, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && strings.HasSuffix(op.Path, ".log") &&
			(op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo) {
			return errorfs.ErrInjected
		}
		return nil
	}))
	s, err := Open("db", Options{Partitions: 1, FS: fs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var head uint64
	for i := 0; i < 5; i++ {
		wait, err := s.BeginAppend(ctx, 0, head, stockd.Batch{Events: storetest.Events(0, head, 3)})
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		head += 3
	}
	acked := head

	failing.Store(true)
	var waits []func() error
	for i := 0; i < 4; i++ {
		wait, err := s.BeginAppend(ctx, 0, head, stockd.Batch{Events: storetest.Events(0, head, 3)})
		if err != nil {
			continue // refused because an earlier sync already failed
		}
		head += 3
		waits = append(waits, wait)
	}
	if len(waits) == 0 {
		t.Fatal("no batch was begun after the failure was injected")
	}
	for i, wait := range waits {
		if err := wait(); err == nil {
			t.Errorf("batch %d, begun after the log's syncs started failing, was reported durable", i)
		}
	}
	if err := s.Append(ctx, 0, head, stockd.Batch{Events: storetest.Events(0, head, 1)}); err == nil {
		t.Errorf("Append succeeded after a failed sync")
	}
	if _, err := s.BeginAppend(ctx, 0, head, stockd.Batch{Events: storetest.Events(0, head, 1)}); err == nil {
		t.Errorf("BeginAppend succeeded after a failed sync")
	}
	_ = s.Close()

	s, err = Open("db", Options{FS: base.CrashClone(vfs.CrashCloneCfg{}), Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if h := lastPosition(t, s, 0); h != acked {
		t.Errorf("after a crash the head is %d, want the %d acknowledged", h, acked)
	}
}
