package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stockd/stockd"
)

// RunReopen checks that a persistent store keeps everything across a close
// and reopen. open must open the store kept in dir, creating it with the given
// number of partitions if dir holds none (0 asking for the store's default).
// When dir holds a store, open must keep the number of partitions it was
// created with if asked for 0 or that number, and fail if asked for another:
// events are placed by the number of partitions, so a store that changed it
// would misplace them. The suite closes every store it gets.
func RunReopen(t *testing.T, open func(t *testing.T, dir string, partitions int) (stockd.Store, error)) {
	mustOpen := func(t *testing.T, dir string, partitions int) stockd.Store {
		t.Helper()
		s, err := open(t, dir, partitions)
		if err != nil {
			t.Fatalf("open with %d partitions: %v", partitions, err)
		}
		return s
	}
	t.Run("Reopen", func(t *testing.T) { testReopen(t, mustOpen) })
	t.Run("ReopenEmpty", func(t *testing.T) {
		dir := t.TempDir()
		closeStore(t, mustOpen(t, dir, 5))
		for _, n := range []int{0, 5} {
			s := mustOpen(t, dir, n)
			if got := s.Partitions(); got != 5 {
				t.Errorf("Partitions() = %d after reopening with %d, want the 5 it was created with", got, n)
			}
			for p := 0; p < 5; p++ {
				if h := head(t, s, p); h != 0 {
					t.Errorf("head of partition %d = %d in a reopened empty store", p, h)
				}
			}
			closeStore(t, s)
		}
	})
	t.Run("ReopenWithOtherPartitions", func(t *testing.T) {
		dir := t.TempDir()
		closeStore(t, mustOpen(t, dir, 5))
		for _, n := range []int{1, 4, 6} {
			if s, err := open(t, dir, n); err == nil {
				t.Errorf("reopening a store of 5 partitions with %d succeeded, with %d partitions", n, s.Partitions())
				closeStore(t, s)
			}
		}
		// The refusals changed nothing.
		s := mustOpen(t, dir, 0)
		defer closeStore(t, s)
		if got := s.Partitions(); got != 5 {
			t.Errorf("Partitions() = %d after refused reopenings, want 5", got)
		}
	})
}

// persisted is what testReopen wrote and expects to find again.
type persisted struct {
	logs   []*Log
	events [][]stockd.Event
	keys   []stockd.KeyRecord
	snaps  map[int]stockd.Snapshot
	checks map[string]map[int]stockd.Checkpoint
}

func testReopen(t *testing.T, open func(t *testing.T, dir string, partitions int) stockd.Store) {
	const partitions = 4
	dir := t.TempDir()
	s := open(t, dir, partitions)
	w := &persisted{
		logs:   make([]*Log, partitions),
		events: make([][]stockd.Event, partitions),
		snaps:  make(map[int]stockd.Snapshot),
		checks: map[string]map[int]stockd.Checkpoint{"projector": {}, "mailer": {}},
	}
	for p := range w.logs {
		w.logs[p] = NewLog(p)
	}
	w.write(t, s, 0)
	closeStore(t, s)

	// Reopening without a number of partitions keeps the created one.
	s = open(t, dir, 0)
	if n := s.Partitions(); n != partitions {
		t.Fatalf("Partitions() = %d after reopening with 0, want %d", n, partitions)
	}
	w.verify(t, s)
	// The reopened store appends after the persisted heads.
	w.write(t, s, 1)
	w.verify(t, s)
	closeStore(t, s)

	s = open(t, dir, partitions)
	defer closeStore(t, s)
	w.verify(t, s)
}

// write appends batches, keys, snapshots and checkpoints, using BeginAppend
// for some batches if the store supports it.
func (w *persisted) write(t *testing.T, s stockd.Store, round int) {
	t.Helper()
	pa, pipelined := s.(stockd.PipelinedAppender)
	for i := 0; i < 6; i++ {
		for p, log := range w.logs {
			if p == len(w.logs)-1 && round == 0 {
				continue // one partition stays empty until the second round
			}
			skus := []string{fmt.Sprintf("R%d", p), "", fmt.Sprintf("R%d", p), "shared-prefix"}[:1+(i+p)%4]
			if p != 0 {
				// Each SKU lives in one partition.
				for j := range skus {
					if skus[j] == "shared-prefix" {
						skus[j] = fmt.Sprintf("shared-prefix-%d", p)
					}
				}
			}
			events := log.Events(skus...)
			key := stockd.KeyRecord{Key: fmt.Sprintf("key-%d-%d-%d", round, i, p), Partition: p, Position: events[0].Position, Fingerprint: uint64(i*100 + p)}
			batch := stockd.Batch{Events: events, Keys: []stockd.KeyRecord{key}}
			if pipelined && i%2 == 1 {
				wait, err := pa.BeginAppend(ctx, p, log.Head, batch)
				if err != nil {
					t.Fatalf("BeginAppend(%d): %v", p, err)
				}
				if err := wait(); err != nil {
					t.Fatalf("wait(%d): %v", p, err)
				}
			} else if err := s.Append(ctx, p, log.Head, batch); err != nil {
				t.Fatalf("Append(%d): %v", p, err)
			}
			log.Commit(events)
			w.events[p] = append(w.events[p], events...)
			w.keys = append(w.keys, key)
		}
	}
	for p := 0; p < 2; p++ {
		snap := stockd.Snapshot{Partition: p, Position: w.logs[p].Head, Data: bytes.Repeat([]byte{byte(round), byte(p), 0xab}, 1000*(p+1)+round)}
		if p == 1 && round == 0 {
			snap.Data = bytes.Repeat([]byte("large "), (3<<20)/6+1234)
		}
		if err := s.SaveSnapshot(ctx, snap); err != nil {
			t.Fatalf("SaveSnapshot(%d): %v", p, err)
		}
		w.snaps[p] = snap
	}
	for consumer, parts := range w.checks {
		for p := range w.logs {
			c := stockd.Checkpoint{Position: w.logs[p].Head / uint64(1+len(consumer)%3)}
			switch {
			case consumer == "projector" && p == 1 && round == 0:
				// A large state, which the next round replaces with a
				// small one: none of it may survive the reopen.
				c.State = bytes.Repeat([]byte("state "), (3<<20)/6+777)
			case consumer == "mailer" && p == 2:
				// A consumer that keeps no state.
			default:
				c.State = []byte(fmt.Sprintf("%s state of partition %d in round %d", consumer, p, round))
			}
			if err := s.SetCheckpoint(ctx, consumer, p, c); err != nil {
				t.Fatalf("SetCheckpoint(%q, %d): %v", consumer, p, err)
			}
			parts[p] = c
		}
	}
}

// verify checks that s holds everything written so far.
func (w *persisted) verify(t *testing.T, s stockd.Store) {
	t.Helper()
	for p, log := range w.logs {
		if h := head(t, s, p); h != log.Head {
			t.Errorf("head of partition %d = %d, want %d", p, h, log.Head)
		}
		equalEvents(t, readAll(t, s, p), w.events[p], "partition %d", p)
		for sku := range log.Versions {
			equalEvents(t, readSKU(t, s, sku, stockd.SKUQuery{}), filterSKU(w.events[p], sku), "ReadSKU(%q)", sku)
		}
		want, wantOK := w.snaps[p]
		got, ok := loadSnapshot(t, s, p)
		if ok != wantOK || got.Partition != want.Partition || got.Position != want.Position || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("LoadSnapshot(%d) = position %d, %d bytes, %v; want position %d, %d bytes, %v",
				p, got.Position, len(got.Data), ok, want.Position, len(want.Data), wantOK)
		}
		for consumer, parts := range w.checks {
			equalCheckpoint(t, checkpoint(t, s, consumer, p), parts[p], "Checkpoint(%q, %d)", consumer, p)
		}
	}
	for _, k := range w.keys {
		wantKeyRecorded(t, s, k.Partition, k.Key)
	}
}

// closeStore closes s, failing the test on error.
func closeStore(t testing.TB, s stockd.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
