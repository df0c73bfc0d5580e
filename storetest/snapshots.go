package storetest

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/stockd/stockd"
)

// RunSnapshots checks the rules of stockd.Snapshots against the stores
// returned by open, which must return a fresh, empty store with the given
// number of partitions every time it is called. If a store has a Close
// method, the suite closes it.
func RunSnapshots(t *testing.T, open func(t *testing.T, partitions int) stockd.Snapshots) {
	newStore := opener(open)
	t.Run("Empty", func(t *testing.T) {
		s := newStore(t, 3)
		for p := range 3 {
			if _, ok := loadSnapshot(t, s, p); ok {
				t.Errorf("LoadSnapshot(%d) of an empty store found a snapshot", p)
			}
		}
	})
	t.Run("SaveAndLoad", func(t *testing.T) { testSnapshots(t, newStore(t, 3)) })
}

func testSnapshots(t *testing.T, s stockd.Snapshots) {
	const p = 1
	check := func(p int, want stockd.Snapshot) {
		t.Helper()
		got, ok := loadSnapshot(t, s, p)
		if !ok {
			t.Fatalf("LoadSnapshot(%d) found none, want position %d", p, want.Position)
		}
		if got.Partition != want.Partition || got.Position != want.Position || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("LoadSnapshot(%d) = partition %d position %d %d bytes, want partition %d position %d %d bytes",
				p, got.Partition, got.Position, len(got.Data), want.Partition, want.Position, len(want.Data))
		}
	}
	save := func(snap stockd.Snapshot) {
		t.Helper()
		if err := s.SaveSnapshot(ctx, snap); err != nil {
			t.Fatalf("SaveSnapshot(partition %d, position %d): %v", snap.Partition, snap.Position, err)
		}
	}
	first := stockd.Snapshot{Partition: p, Position: 10, Data: []byte("hello, state")}
	save(first)
	check(p, first)

	second := stockd.Snapshot{Partition: p, Position: 20, Data: []byte("a later state")}
	buf := bytes.Clone(second.Data)
	save(stockd.Snapshot{Partition: p, Position: 20, Data: buf})
	// The store must not keep the caller's buffer.
	copy(buf, "XXXXXXXXXXXXX")
	check(p, second)

	big := make([]byte, 3<<20+12345)
	rand.New(rand.NewSource(7)).Read(big)
	large := stockd.Snapshot{Partition: p, Position: 30, Data: big}
	save(large)
	check(p, large)

	// A small snapshot replaces a large one completely.
	small := stockd.Snapshot{Partition: p, Position: 40, Data: []byte{1}}
	save(small)
	check(p, small)

	for _, q := range []int{0, 2} {
		if _, ok := loadSnapshot(t, s, q); ok {
			t.Errorf("LoadSnapshot(%d) found a snapshot saved for partition %d", q, p)
		}
	}
	zero := stockd.Snapshot{Partition: 0, Position: 5, Data: []byte("partition zero")}
	save(zero)
	check(0, zero)
	check(p, small)
	empty := stockd.Snapshot{Partition: 2, Position: 7}
	save(empty)
	check(2, empty)
	check(p, small)

	err := s.SaveSnapshot(ctx, stockd.Snapshot{Partition: 3, Position: 1, Data: []byte("x")})
	if err == nil {
		t.Errorf("SaveSnapshot to partition 3 of 3 succeeded")
	}
}

// loadSnapshot calls LoadSnapshot, failing the test on error.
func loadSnapshot(t testing.TB, s stockd.Snapshots, p int) (stockd.Snapshot, bool) {
	t.Helper()
	snap, ok, err := s.LoadSnapshot(ctx, p)
	if err != nil {
		t.Fatalf("LoadSnapshot(%d): %v", p, err)
	}
	return snap, ok
}
