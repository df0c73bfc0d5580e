package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stockd/stockd"
)

// testKeys checks the idempotency records that batches carry. Every log
// accepts a batch with keys and refuses one that names a key twice. What a
// log records can only be seen through stockd.KeyGuard, by a later batch that
// names a recorded key being refused, so the rest runs on guarding logs only.
func testKeys(t *testing.T, s stockd.Log) {
	log := NewLog(0)
	longKey := strings.Repeat("k", 300) + "/ünïcode"
	k1 := stockd.KeyRecord{Key: "receipt:r-1", Partition: 0, Position: 1, Fingerprint: 0xdeadbeefdeadbeef}
	k2 := stockd.KeyRecord{Key: longKey, Partition: 0, Position: 2, Fingerprint: 0}
	events := log.Events("A", "B")
	if err := s.Append(ctx, 0, 0, stockd.Batch{Events: events, Keys: []stockd.KeyRecord{k1, k2}}); err != nil {
		t.Fatalf("Append with keys: %v", err)
	}
	log.Commit(events)
	before := readAll(t, s, 0)

	// A store that guards keys rejects a later batch that repeats a
	// recorded key, and writes nothing, not even its other keys.
	k3 := stockd.KeyRecord{Key: "receipt:r-3", Partition: 0, Position: 3, Fingerprint: 3}
	_, guards := s.(stockd.KeyGuard)
	if guards {
		dup := stockd.KeyRecord{Key: k1.Key, Partition: 0, Position: 4, Fingerprint: 4}
		err := s.Append(ctx, 0, log.Head, stockd.Batch{Events: log.Events("A", "C"), Keys: []stockd.KeyRecord{k3, dup}})
		wantCode(t, err, stockd.CodeConflict, "Append repeating a recorded key")
		// So does one in another partition.
		err = s.Append(ctx, 1, 0, stockd.Batch{Events: NewLog(1).Events("D"), Keys: []stockd.KeyRecord{{Key: longKey, Partition: 1, Position: 1}}})
		wantCode(t, err, stockd.CodeConflict, "Append to another partition repeating a recorded key")
	}
	// A batch that names one key twice is rejected too.
	k4 := stockd.KeyRecord{Key: "receipt:r-4", Partition: 0, Position: 3}
	err := s.Append(ctx, 0, log.Head, stockd.Batch{Events: log.Events("A"), Keys: []stockd.KeyRecord{k4, k4}})
	if err == nil {
		t.Errorf("Append of a batch naming a key twice succeeded")
	}

	for p, want := range map[int]uint64{0: 2, 1: 0} {
		if h := head(t, s, p); h != want {
			t.Errorf("head of partition %d = %d after rejected batches, want %d", p, h, want)
		}
	}
	equalEvents(t, readAll(t, s, 0), before, "partition 0 after rejected batches")
	if events := readSKU(t, s, "C", stockd.SKUQuery{}); len(events) != 0 {
		t.Errorf("ReadSKU(C) returned %d events of a rejected batch", len(events))
	}
	// The keys of the rejected batches were not recorded, and neither were
	// keys that merely share a prefix with recorded ones: a batch naming
	// them all is accepted.
	fresh := []stockd.KeyRecord{k3, k4}
	for _, key := range []string{"receipt:r-", "receipt:r-10", "receipt:r-2", strings.Repeat("k", 300)} {
		fresh = append(fresh, stockd.KeyRecord{Key: key, Partition: 0, Position: log.Head + 1})
	}
	events = log.Events("A")
	if err := s.Append(ctx, 0, log.Head, stockd.Batch{Events: events, Keys: fresh}); err != nil {
		t.Fatalf("Append with fresh keys: %v", err)
	}
	log.Commit(events)
	if guards {
		for _, k := range []stockd.KeyRecord{k1, k2, k3, k4} {
			wantKeyRecorded(t, s, 1, k.Key)
		}
	}
}

// testConcurrentKeys races two partitions recording one key: a store that
// guards keys lets exactly one win.
func testConcurrentKeys(t *testing.T, s stockd.Log) {
	if _, ok := s.(stockd.KeyGuard); !ok {
		t.Skip("the store does not guard keys (stockd.KeyGuard); its engine does")
	}
	logs := []*Log{NewLog(0), NewLog(1)}
	for round := 0; round < 20; round++ {
		key := fmt.Sprintf("race-%d", round)
		errs := make([]error, len(logs))
		batches := make([][]stockd.Event, len(logs))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for p, log := range logs {
			batches[p] = log.Events(fmt.Sprintf("K%d", p))
			rec := stockd.KeyRecord{Key: key, Partition: p, Position: log.Head + 1, Fingerprint: uint64(p)}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[p] = s.Append(ctx, p, log.Head, stockd.Batch{Events: batches[p], Keys: []stockd.KeyRecord{rec}})
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for p, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: both partitions recorded key %q", round, key)
			case err == nil:
				winner = p
				logs[p].Commit(batches[p])
			case !stockd.IsCode(err, stockd.CodeConflict):
				t.Fatalf("round %d: partition %d: %v, want a conflict or success", round, p, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither partition recorded key %q", round, key)
		}
	}
	for p, log := range logs {
		if h := head(t, s, p); h != log.Head {
			t.Errorf("head of partition %d = %d, want %d", p, h, log.Head)
		}
	}
	for round := 0; round < 20; round++ {
		wantKeyRecorded(t, s, round%2, fmt.Sprintf("race-%d", round))
	}
}

// wantKeyRecorded checks that a store that guards keys has recorded key: a
// batch of partition p naming it again is refused with a conflict, and writes
// nothing.
func wantKeyRecorded(t testing.TB, s stockd.Log, p int, key string) {
	t.Helper()
	if _, ok := s.(stockd.KeyGuard); !ok {
		return
	}
	h := head(t, s, p)
	batch := stockd.Batch{Events: Events(p, h, 1), Keys: []stockd.KeyRecord{{Key: key, Partition: p, Position: h + 1}}}
	err := s.Append(ctx, p, h, batch)
	wantCode(t, err, stockd.CodeConflict, "Append naming the recorded key %q again", key)
	if after := head(t, s, p); after != h {
		t.Fatalf("a refused batch naming the recorded key %q moved the head of partition %d from %d to %d", key, p, h, after)
	}
}

// testRetired checks retired records: written with their batch and read back
// by key, whole; absent for a key never retired; not written by a refused
// batch; and refused when they do not belong to the batch.
func testRetired(t *testing.T, s stockd.Log) {
	if _, ok, err := s.LookupRetired(ctx, "reservation:never"); err != nil || ok {
		t.Fatalf("LookupRetired of a key never retired = %v, %v; want false, nil", ok, err)
	}
	log := NewLog(0)
	data := []byte{1, 2, 0, 255, 7}
	rec := stockd.RetiredRecord{Key: "reservation:cart-1", Partition: 0, Position: 2, Data: data}
	long := stockd.RetiredRecord{Key: strings.Repeat("r", 300) + "/ünïcode", Partition: 0, Position: 2, Data: make([]byte, 64<<10)}
	events := log.Events("A", "B")
	if err := s.Append(ctx, 0, 0, stockd.Batch{Events: events, Retired: []stockd.RetiredRecord{rec, long}}); err != nil {
		t.Fatalf("Append with retired records: %v", err)
	}
	log.Commit(events)
	data[0] = 99 // the store must not keep the caller's slice
	for _, want := range []stockd.RetiredRecord{{Key: rec.Key, Partition: 0, Position: 2, Data: []byte{1, 2, 0, 255, 7}}, long} {
		got, ok, err := s.LookupRetired(ctx, want.Key)
		if err != nil || !ok {
			t.Fatalf("LookupRetired(%.20q) = %v, %v; want the record", want.Key, ok, err)
		}
		if got.Key != want.Key || got.Partition != want.Partition || got.Position != want.Position || string(got.Data) != string(want.Data) {
			t.Fatalf("LookupRetired(%.20q) = %+.40v, want %+.40v", want.Key, got, want)
		}
	}

	// A batch refused for its head writes none of its records.
	stale := stockd.RetiredRecord{Key: "receipt:stale", Partition: 0, Position: 1, Data: []byte{1}}
	err := s.Append(ctx, 0, 0, stockd.Batch{Events: NewLog(0).Events("A"), Retired: []stockd.RetiredRecord{stale}})
	wantCode(t, err, stockd.CodeConflict, "Append at a stale head with a retired record")
	if _, ok, _ := s.LookupRetired(ctx, stale.Key); ok {
		t.Fatalf("a refused batch's retired record was written")
	}

	// Records must name the batch's partition and one of its positions,
	// once each.
	for name, bad := range map[string][]stockd.RetiredRecord{
		"without a key":        {{Partition: 0, Position: log.Head + 1}},
		"of another position":  {{Key: "receipt:x", Partition: 0, Position: log.Head + 5}},
		"of a position before": {{Key: "receipt:x", Partition: 0, Position: log.Head}},
		"of another partition": {{Key: "receipt:x", Partition: 1, Position: log.Head + 1}},
		"twice":                {{Key: "receipt:x", Partition: 0, Position: log.Head + 1}, {Key: "receipt:x", Partition: 0, Position: log.Head + 1}},
	} {
		err := s.Append(ctx, 0, log.Head, stockd.Batch{Events: log.Events("A"), Retired: bad})
		wantCode(t, err, stockd.CodeInvalid, "Append with a retired record %s", name)
		if _, ok, _ := s.LookupRetired(ctx, "receipt:x"); ok {
			t.Fatalf("a retired record %s was written", name)
		}
	}
	if got := readAll(t, s, 0); len(got) != int(log.Head) {
		t.Fatalf("partition 0 has %d events after refused batches, want %d", len(got), log.Head)
	}
}

// testKeysFound checks stockd.KeyFinder: a recorded key is found with its
// record, one never recorded is not, and many lookups at once (which a store
// may answer with one query) each get their own answer.
func testKeysFound(t *testing.T, s stockd.Log) {
	kf, ok := s.(stockd.KeyFinder)
	if !ok {
		t.Skip("the store does not find keys (stockd.KeyFinder)")
	}
	want := map[string]stockd.KeyRecord{}
	for p := range 2 {
		for i := range 3 {
			h := head(t, s, p)
			rec := stockd.KeyRecord{Key: fmt.Sprintf("reservation:found-%d-%d", p, i), Partition: p, Position: h + 1, Fingerprint: uint64(1000*p + i + 1)}
			if err := s.Append(ctx, p, h, stockd.Batch{Events: Events(p, h, 1), Keys: []stockd.KeyRecord{rec}}); err != nil {
				t.Fatalf("Append with key %s: %v", rec.Key, err)
			}
			want[rec.Key] = rec
		}
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("reservation:found-%d-%d", i%2, i%4)
			got, found, err := kf.FindKey(ctx, key)
			w, recorded := want[key]
			switch {
			case err != nil:
				t.Errorf("FindKey(%s): %v", key, err)
			case found != recorded:
				t.Errorf("FindKey(%s) found %v, want %v", key, found, recorded)
			case found && got != w:
				t.Errorf("FindKey(%s) = %+v, want %+v", key, got, w)
			}
		}()
	}
	wg.Wait()
}
