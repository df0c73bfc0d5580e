package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// TrimStore is what RunTrimmer tests: a Store with the Trimmer capability.
type TrimStore interface {
	stockd.Store
	stockd.Trimmer
}

// RunTrimmer checks the rules of stockd.Trimmer against the stores returned
// by open, which must return a fresh, empty store with the given number of
// partitions every time it is called; reopen, when not nil, must open the
// store in dir again (and open a new one in dir: open is then called as
// reopen on an empty dir), so that the log start is checked to survive a
// restart. The suite closes every store it gets.
func RunTrimmer(t *testing.T, open func(t *testing.T, dir string, partitions int) (TrimStore, error)) {
	mustOpen := func(t *testing.T, dir string, partitions int) TrimStore {
		t.Helper()
		s, err := open(t, dir, partitions)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	}
	t.Run("StartAndBounds", func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), 2)
		defer closeStore(t, s)
		testTrimBounds(t, s)
	})
	t.Run("TrimHidesThenDeletes", func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), 2)
		defer closeStore(t, s)
		testTrimHides(t, s)
	})
	t.Run("TrimToHead", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir, 2)
		testTrimToHead(t, s, func() TrimStore {
			closeStore(t, s)
			s = mustOpen(t, dir, 0)
			return s
		})
		closeStore(t, s)
	})
	t.Run("Consumers", func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), 3)
		defer closeStore(t, s)
		testConsumers(t, s)
	})
}

func logStart(t testing.TB, s stockd.Trimmer, p int) uint64 {
	t.Helper()
	n, err := s.LogStart(ctx, p)
	if err != nil {
		t.Fatalf("LogStart(%d): %v", p, err)
	}
	return n
}

func testTrimBounds(t *testing.T, s TrimStore) {
	if n := logStart(t, s, 0); n != 0 {
		t.Fatalf("LogStart of a new store = %d, want 0", n)
	}
	if _, err := s.LogStart(ctx, 2); err == nil {
		t.Errorf("LogStart(2) of a store with 2 partitions succeeded")
	}
	log := NewLog(0)
	log.Append(t, s, "A", "B")
	wantCode(t, s.SetLogStart(ctx, 0, 3), stockd.CodeInvalid, "SetLogStart beyond the head")
	if err := s.SetLogStart(ctx, 0, 2); err != nil {
		t.Fatalf("SetLogStart(0, 2): %v", err)
	}
	if err := s.SetLogStart(ctx, 0, 1); err != nil {
		t.Fatalf("SetLogStart(0, 1) below the start: %v", err)
	}
	if n := logStart(t, s, 0); n != 2 {
		t.Errorf("LogStart after moving it back = %d, want 2 (it never moves backwards)", n)
	}
	if more, err := s.Trim(ctx, 1, 10); err != nil || more {
		t.Errorf("Trim of an untrimmed partition = %v, %v; want false, nil", more, err)
	}
}

// testTrimHides appends batches of several sizes, so that the start falls
// inside a stored batch, and checks what the reads show before, during and
// after the deletion.
func testTrimHides(t *testing.T, s TrimStore) {
	const p = 1
	log := NewLog(p)
	var all []stockd.Event
	skus := []string{"A", "B", "C", ""}
	for i := 0; i < 40; i++ {
		batch := make([]string, 1+i%4)
		for j := range batch {
			batch[j] = skus[(i+j)%len(skus)]
		}
		all = append(all, log.Append(t, s, batch...)...)
	}
	// A retired record written with an early batch, which the trims below
	// pass: retired records are kept for good.
	retired := stockd.RetiredRecord{Key: "reservation:early", Partition: p, Position: log.Head + 1, Data: []byte{1, 2, 3}}
	events := log.Events("A")
	if err := s.Append(ctx, p, log.Head, stockd.Batch{Events: events, Retired: []stockd.RetiredRecord{retired}}); err != nil {
		t.Fatalf("Append with a retired record: %v", err)
	}
	log.Commit(events)
	all = append(all, events...)
	head := log.Head
	check := func(start uint64, when string) {
		t.Helper()
		for after := uint64(0); after <= head; after++ {
			events, err := s.ReadPartition(ctx, p, after, 7)
			if after < start {
				if !stockd.IsCode(err, stockd.CodeNotFound) || !errors.Is(err, stockd.ErrTrimmed) {
					t.Fatalf("%s: ReadPartition(after %d) below the start %d: %v, %d events; want CodeNotFound wrapping ErrTrimmed", when, after, start, err, len(events))
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: ReadPartition(after %d): %v", when, after, err)
			}
			end := min(after+7, head)
			equalEvents(t, events, all[after:end], "%s: ReadPartition(after %d)", when, after)
		}
		for _, sku := range []string{"A", "B", "C"} {
			var kept []stockd.Event
			for _, e := range filterSKU(all, sku) {
				if e.Position > start {
					kept = append(kept, e)
				}
			}
			for _, q := range skuQueries(kept) {
				equalEvents(t, readSKU(t, s, sku, q), applyQuery(kept, q), "%s: ReadSKU(%s, %+v)", when, sku, q)
			}
		}
	}
	check(0, "untrimmed")
	for _, start := range []uint64{5, 6, 31, 47} {
		if err := s.SetLogStart(ctx, p, start); err != nil {
			t.Fatalf("SetLogStart(%d): %v", start, err)
		}
		if n := logStart(t, s, p); n != start {
			t.Fatalf("LogStart = %d after SetLogStart(%d)", n, start)
		}
		check(start, fmt.Sprintf("start %d, nothing deleted", start))
		more, err := s.Trim(ctx, p, 3)
		if err != nil {
			t.Fatalf("Trim: %v", err)
		}
		check(start, fmt.Sprintf("start %d, one chunk deleted (more %v)", start, more))
		for i := 0; more; i++ {
			if i > 100 {
				t.Fatalf("Trim keeps reporting more")
			}
			if more, err = s.Trim(ctx, p, 3); err != nil {
				t.Fatalf("Trim: %v", err)
			}
		}
		check(start, fmt.Sprintf("start %d, deleted", start))
		if got, ok, err := s.LookupRetired(ctx, retired.Key); err != nil || !ok || got.Position != retired.Position || string(got.Data) != string(retired.Data) {
			t.Fatalf("start %d: the retired record written at %d = %+v, %v, %v; a trim must keep it", start, retired.Position, got, ok, err)
		}
	}
	// Appends continue from the head, and are read as usual.
	all = append(all, log.Append(t, s, "A", "", "B")...)
	head = log.Head
	check(47, "after a later append")
	if events := readPartition(t, s, 0, 0, 10); len(events) != 0 {
		t.Errorf("partition 0 gained events")
	}
}

// skuQueries returns queries that bound a SKU stream in every way ReadSKU
// can be bounded, around the positions, versions and times of stream.
func skuQueries(stream []stockd.Event) []stockd.SKUQuery {
	qs := []stockd.SKUQuery{{}, {Limit: 1}, {Limit: 3}}
	for i, e := range stream {
		if i%3 != 0 && i != len(stream)-1 {
			continue
		}
		qs = append(qs,
			stockd.SKUQuery{AfterVersion: e.Version},
			stockd.SKUQuery{AfterVersion: e.Version - 1, Limit: 2},
			stockd.SKUQuery{UpToPosition: e.Position},
			stockd.SKUQuery{UpToPosition: e.Position + 1, AfterVersion: 1},
			stockd.SKUQuery{UpToTime: e.Time},
			stockd.SKUQuery{UpToTime: e.Time.Add(-time.Nanosecond), Limit: 4},
		)
	}
	return qs
}

func testTrimToHead(t *testing.T, s TrimStore, reopen func() TrimStore) {
	log := NewLog(0)
	log.Append(t, s, "A", "B")
	log.Append(t, s, "A")
	if err := s.SetLogStart(ctx, 0, 3); err != nil {
		t.Fatalf("SetLogStart: %v", err)
	}
	for more := true; more; {
		var err error
		if more, err = s.Trim(ctx, 0, 1); err != nil {
			t.Fatalf("Trim: %v", err)
		}
	}
	check := func(s TrimStore, when string) {
		t.Helper()
		if n := logStart(t, s, 0); n != log.Head {
			t.Fatalf("%s: LogStart = %d, want %d", when, n, log.Head)
		}
		if events := readPartition(t, s, 0, log.Head, 10); len(events) != 0 {
			t.Fatalf("%s: ReadPartition after the head returned %d events", when, len(events))
		}
		if events := readSKU(t, s, "A", stockd.SKUQuery{}); len(events) != 0 {
			t.Fatalf("%s: ReadSKU(A) of a trimmed partition returned %d events", when, len(events))
		}
		// The head did not move: appending from 0 conflicts, from the
		// head succeeds.
		err := s.Append(ctx, 0, 0, stockd.Batch{Events: []stockd.Event{Event(0, 1, "A", 9)}})
		wantCode(t, err, stockd.CodeConflict, "%s: Append expecting 0 to a trimmed partition", when)
	}
	check(s, "trimmed to the head")
	s = reopen()
	check(s, "reopened")
	events := log.Append(t, s, "A")
	equalEvents(t, readPartition(t, s, 0, 3, 10), events, "after appending to a reopened trimmed partition")
	equalEvents(t, readSKU(t, s, "A", stockd.SKUQuery{}), events, "ReadSKU(A) after appending")
}

func testConsumers(t *testing.T, s TrimStore) {
	names, err := s.Consumers(ctx)
	if err != nil || len(names) != 0 {
		t.Fatalf("Consumers of a new store = %q, %v; want none", names, err)
	}
	for _, c := range []struct {
		name string
		p    int
	}{{"b", 2}, {"ab", 0}, {"a", 1}, {"a", 2}, {"b", 0}} {
		if err := s.SetCheckpoint(ctx, c.name, c.p, stockd.Checkpoint{Position: 1, State: make([]byte, 3<<20)}); err != nil {
			t.Fatalf("SetCheckpoint: %v", err)
		}
	}
	names, err = s.Consumers(ctx)
	if err != nil {
		t.Fatalf("Consumers: %v", err)
	}
	if fmt.Sprint(names) != "[a ab b]" {
		t.Errorf("Consumers = %q, want [a ab b]", names)
	}

	// Deleting "a" deletes its checkpoints in every partition, state
	// included, and leaves "ab", whose name starts with "a", alone.
	if err := s.DeleteConsumer(ctx, "a"); err != nil {
		t.Fatalf("DeleteConsumer(a): %v", err)
	}
	for p := range 3 {
		if c, err := s.Checkpoint(ctx, "a", p); err != nil || c.Position != 0 || c.State != nil {
			t.Fatalf("Checkpoint(a, %d) after DeleteConsumer = position %d, %d bytes, %v; want none", p, c.Position, len(c.State), err)
		}
	}
	if c, err := s.Checkpoint(ctx, "ab", 0); err != nil || c.Position != 1 || len(c.State) != 3<<20 {
		t.Fatalf("Checkpoint(ab, 0) after deleting a = position %d, %d bytes, %v", c.Position, len(c.State), err)
	}
	if err := s.DeleteConsumer(ctx, "never"); err != nil {
		t.Fatalf("DeleteConsumer of a consumer with no checkpoint: %v", err)
	}
	if names, err = s.Consumers(ctx); err != nil || fmt.Sprint(names) != "[ab b]" {
		t.Errorf("Consumers after deleting a = %q, %v; want [ab b]", names, err)
	}
	// A consumer that saves again is listed again, from its new checkpoint.
	if err := s.SetCheckpoint(ctx, "a", 1, stockd.Checkpoint{Position: 2}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Checkpoint(ctx, "a", 1); err != nil || c.Position != 2 || c.State != nil {
		t.Fatalf("Checkpoint(a, 1) saved after a delete = %d, %d bytes, %v", c.Position, len(c.State), err)
	}
	if names, err = s.Consumers(ctx); err != nil || fmt.Sprint(names) != "[a ab b]" {
		t.Errorf("Consumers after a saves again = %q, %v; want [a ab b]", names, err)
	}
}

// CompareReads fails the test unless got answers every read of partitions
// 0..partitions-1 and of skus exactly as want does: ReadPartition from every
// position with several limits, and ReadSKU bounded in every way (after a
// version, up to a position or time, with a limit). Archive tests use it to
// check that a log whose old events are in cold storage reads like one that
// never archived anything.
func CompareReads(t testing.TB, got, want stockd.Log, skus []string) {
	t.Helper()
	for p := 0; p < want.Partitions(); p++ {
		var all []stockd.Event
		for {
			page, err := want.ReadPartition(ctx, p, uint64(len(all)), 500)
			if err != nil {
				t.Fatalf("reference ReadPartition(%d, %d): %v", p, len(all), err)
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
		}
		for after := uint64(0); after <= uint64(len(all)); after++ {
			for _, limit := range []int{1, 7, 1000} {
				if limit == 1000 && after%16 != 0 && after != uint64(len(all)) {
					continue // long reads from every position cost n² time
				}
				events, err := got.ReadPartition(ctx, p, after, limit)
				if err != nil {
					t.Fatalf("ReadPartition(%d, %d, %d): %v", p, after, limit, err)
				}
				end := min(after+uint64(limit), uint64(len(all)))
				equalEvents(t, events, all[after:end], "ReadPartition(%d, %d, %d)", p, after, limit)
			}
		}
	}
	for _, sku := range skus {
		stream, err := want.ReadSKU(ctx, sku, stockd.SKUQuery{})
		if err != nil {
			t.Fatalf("reference ReadSKU(%q): %v", sku, err)
		}
		for _, q := range skuQueries(stream) {
			events, err := got.ReadSKU(ctx, sku, q)
			if err != nil {
				t.Fatalf("ReadSKU(%q, %+v): %v", sku, q, err)
			}
			equalEvents(t, events, applyQuery(stream, q), "ReadSKU(%q, %+v)", sku, q)
		}
	}
}
