package storetest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// Run runs the conformance suite against the stores returned by open, which
// must return a fresh, empty store with the given number of partitions every
// time it is called. The suite calls open once or more per subtest and closes
// every store it gets.
func Run(t *testing.T, open func(t *testing.T, partitions int) stockd.Store) {
	newStore := func(t *testing.T, partitions int) stockd.Store {
		t.Helper()
		s := open(t, partitions)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	t.Run("Partitions", func(t *testing.T) { testPartitions(t, newStore) })
	t.Run("EmptyStore", func(t *testing.T) { testEmptyStore(t, newStore(t, 3)) })
	t.Run("AppendAndHead", func(t *testing.T) { testAppendAndHead(t, newStore(t, 3)) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, newStore(t, 2)) })
	t.Run("ConcurrentAppenders", func(t *testing.T) { testConcurrentAppenders(t, newStore(t, 2)) })
	t.Run("ConcurrentPartitions", func(t *testing.T) { testConcurrentPartitions(t, newStore(t, 4)) })
	t.Run("InvalidBatches", func(t *testing.T) { testInvalidBatches(t, newStore(t, 2)) })
	t.Run("ReadPartition", func(t *testing.T) { testReadPartition(t, newStore(t, 4)) })
	t.Run("ReadSKU", func(t *testing.T) { testReadSKU(t, newStore(t, 2)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t, 3)) })
	t.Run("IdempotencyKeys", func(t *testing.T) { testKeys(t, newStore(t, 2)) })
	t.Run("ConcurrentKeys", func(t *testing.T) { testConcurrentKeys(t, newStore(t, 2)) })
	t.Run("Snapshots", func(t *testing.T) { testSnapshots(t, newStore(t, 3)) })
	t.Run("Checkpoints", func(t *testing.T) { testCheckpoints(t, newStore(t, 3)) })
	t.Run("Pipelined", func(t *testing.T) { testPipelined(t, newStore(t, 2)) })
	t.Run("Group", func(t *testing.T) { testGroup(t, newStore(t, 3)) })
}

var ctx = context.Background()

func testPartitions(t *testing.T, newStore func(*testing.T, int) stockd.Store) {
	for _, n := range []int{1, 3, 16} {
		s := newStore(t, n)
		if got := s.Partitions(); got != n {
			t.Errorf("Partitions() = %d, want %d", got, n)
		}
		for _, p := range []int{-1, n} {
			if _, err := s.Head(ctx, p); err == nil {
				t.Errorf("Head(%d) of a store with %d partitions succeeded", p, n)
			}
			err := s.Append(ctx, p, 0, stockd.Batch{Events: []stockd.Event{Event(p, 1, "A", 1)}})
			wantCode(t, err, stockd.CodeInvalid, "Append to partition %d of %d", p, n)
		}
	}
}

func testEmptyStore(t *testing.T, s stockd.Store) {
	for p := 0; p < s.Partitions(); p++ {
		if h := head(t, s, p); h != 0 {
			t.Errorf("Head(%d) of an empty store = %d, want 0", p, h)
		}
		if events := readPartition(t, s, p, 0, 10); len(events) != 0 {
			t.Errorf("ReadPartition(%d) of an empty store returned %d events", p, len(events))
		}
		if _, ok := loadSnapshot(t, s, p); ok {
			t.Errorf("LoadSnapshot(%d) of an empty store found a snapshot", p)
		}
		if c := checkpoint(t, s, "consumer", p); c.Position != 0 || len(c.State) != 0 {
			t.Errorf("Checkpoint(consumer, %d) of an empty store = position %d, %d bytes of state; want the zero Checkpoint", p, c.Position, len(c.State))
		}
	}
	if events := readSKU(t, s, "A", stockd.SKUQuery{}); len(events) != 0 {
		t.Errorf("ReadSKU(A) of an empty store returned %d events", len(events))
	}
	if rec, ok := lookupKey(t, s, "key"); ok {
		t.Errorf("LookupKey of an empty store = %+v, true", rec)
	}
}

func testAppendAndHead(t *testing.T, s stockd.Store) {
	log := NewLog(1)
	var all []stockd.Event
	for i, skus := range [][]string{{"A"}, {"A", "B", ""}, {"B"}, {"C", "C", "C", "C"}} {
		all = append(all, log.Append(t, s, skus...)...)
		if h := head(t, s, 1); h != log.Head {
			t.Fatalf("after append %d: Head = %d, want %d", i, h, log.Head)
		}
		equalEvents(t, readAll(t, s, 1), all, "ReadPartition after append %d", i)
	}
	for _, p := range []int{0, 2} {
		if h := head(t, s, p); h != 0 {
			t.Errorf("Head(%d) = %d after appends to partition 1 only", p, h)
		}
		if events := readAll(t, s, p); len(events) != 0 {
			t.Errorf("partition %d has %d events after appends to partition 1 only", p, len(events))
		}
	}
}

func testConflict(t *testing.T, s stockd.Store) {
	const p = 0
	log := NewLog(p)
	log.Append(t, s, "A", "B")
	log.Append(t, s, "A")
	before := readAll(t, s, p)
	beforeA := readSKU(t, s, "A", stockd.SKUQuery{})

	stale := func(expected uint64) stockd.Batch {
		return stockd.Batch{
			Events: []stockd.Event{Event(p, expected+1, "Z", 1), Event(p, expected+2, "A", 99)},
			Keys:   []stockd.KeyRecord{{Key: "conflict-key", Partition: p, Position: expected + 1, Fingerprint: 7}},
		}
	}
	for _, expected := range []uint64{0, 1, 2, 4, 100} {
		err := s.Append(ctx, p, expected, stale(expected))
		wantCode(t, err, stockd.CodeConflict, "Append with expected head %d when the head is 3", expected)
		if pa, ok := s.(stockd.PipelinedAppender); ok {
			wait, err := pa.BeginAppend(ctx, p, expected, stale(expected))
			wantCode(t, err, stockd.CodeConflict, "BeginAppend with expected head %d when the head is 3", expected)
			if wait != nil && err != nil {
				t.Errorf("BeginAppend returned a wait function with an error")
			}
		}
	}
	if h := head(t, s, p); h != 3 {
		t.Errorf("Head = %d after conflicts, want 3", h)
	}
	equalEvents(t, readAll(t, s, p), before, "ReadPartition after conflicts")
	equalEvents(t, readSKU(t, s, "A", stockd.SKUQuery{}), beforeA, "ReadSKU(A) after conflicts")
	if events := readSKU(t, s, "Z", stockd.SKUQuery{}); len(events) != 0 {
		t.Errorf("ReadSKU(Z) returned %d events of conflicting batches", len(events))
	}
	if _, ok := lookupKey(t, s, "conflict-key"); ok {
		t.Errorf("the key of a conflicting batch was recorded")
	}
	// An empty partition conflicts too.
	err := s.Append(ctx, 1, 1, stockd.Batch{Events: []stockd.Event{Event(1, 2, "Y", 1)}})
	wantCode(t, err, stockd.CodeConflict, "Append with expected head 1 to an empty partition")
	if h := head(t, s, 1); h != 0 {
		t.Errorf("Head(1) = %d after a conflict, want 0", h)
	}
	// The store still accepts the right head.
	log.Append(t, s, "A")
	if h := head(t, s, p); h != 4 {
		t.Errorf("Head = %d, want 4", h)
	}
}

func testConcurrentAppenders(t *testing.T, s stockd.Store) {
	const (
		p          = 1
		appenders  = 8
		rounds     = 25
		batchSize  = 2
		raceSKU    = "race"
		otherSKU   = "other"
		otherEvery = 5
	)
	var winners []int
	var h uint64
	for round := 0; round < rounds; round++ {
		start := make(chan struct{})
		errs := make([]error, appenders)
		var wg sync.WaitGroup
		for g := 0; g < appenders; g++ {
			events := make([]stockd.Event, batchSize)
			for i := range events {
				pos := h + uint64(i) + 1
				events[i] = Event(p, pos, raceSKU, pos)
				events[i].CommandID = fmt.Sprintf("g%d-r%d", g, round)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[g] = s.Append(ctx, p, h, stockd.Batch{Events: events})
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for g, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: appenders %d and %d both appended at head %d", round, winner, g, h)
			case err == nil:
				winner = g
			case !stockd.IsCode(err, stockd.CodeConflict):
				t.Fatalf("round %d: appender %d: %v, want a conflict or success", round, g, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no appender won at head %d", round, h)
		}
		winners = append(winners, winner)
		h += batchSize
		if got := head(t, s, p); got != h {
			t.Fatalf("round %d: Head = %d, want %d", round, got, h)
		}
	}
	events := readAll(t, s, p)
	if len(events) != rounds*batchSize {
		t.Fatalf("partition has %d events, want %d", len(events), rounds*batchSize)
	}
	for i, e := range events {
		round := i / batchSize
		if want := fmt.Sprintf("g%d-r%d", winners[round], round); e.CommandID != want || e.Position != uint64(i)+1 {
			t.Fatalf("event %d is %s at %d, want %s at %d", i, e.CommandID, e.Position, want, i+1)
		}
	}
	if got := readSKU(t, s, raceSKU, stockd.SKUQuery{}); len(got) != rounds*batchSize {
		t.Errorf("ReadSKU(%s) returned %d events, want %d", raceSKU, len(got), rounds*batchSize)
	}
}

func testConcurrentPartitions(t *testing.T, s stockd.Store) {
	const batches = 20
	var wg sync.WaitGroup
	logs := make([]*Log, s.Partitions())
	want := make([][]stockd.Event, s.Partitions())
	for p := range logs {
		logs[p] = NewLog(p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sku := fmt.Sprintf("P%d", p)
			for i := 0; i < batches; i++ {
				events := logs[p].Events(sku, "", sku)
				if err := s.Append(ctx, p, logs[p].Head, stockd.Batch{Events: events}); err != nil {
					t.Errorf("partition %d batch %d: %v", p, i, err)
					return
				}
				logs[p].Commit(events)
				want[p] = append(want[p], events...)
			}
		}()
	}
	wg.Wait()
	for p := range logs {
		if h := head(t, s, p); h != batches*3 {
			t.Errorf("Head(%d) = %d, want %d", p, h, batches*3)
		}
		equalEvents(t, readAll(t, s, p), want[p], "partition %d", p)
		if got := readSKU(t, s, fmt.Sprintf("P%d", p), stockd.SKUQuery{}); len(got) != batches*2 {
			t.Errorf("ReadSKU(P%d) returned %d events, want %d", p, len(got), batches*2)
		}
	}
}

func testInvalidBatches(t *testing.T, s stockd.Store) {
	const p = 0
	ev := func(part int, pos uint64) stockd.Event { return Event(part, pos, "A", pos) }
	cases := []struct {
		name     string
		p        int
		expected uint64
		batch    stockd.Batch
	}{
		{"nil events", p, 0, stockd.Batch{}},
		{"no events with keys", p, 0, stockd.Batch{Events: []stockd.Event{}, Keys: []stockd.KeyRecord{{Key: "k", Partition: p, Position: 1}}}},
		{"wrong partition", p, 0, stockd.Batch{Events: []stockd.Event{ev(1, 1)}}},
		{"mixed partitions", p, 0, stockd.Batch{Events: []stockd.Event{ev(p, 1), ev(1, 2)}}},
		{"gap", p, 0, stockd.Batch{Events: []stockd.Event{ev(p, 1), ev(p, 3)}}},
		{"repeated position", p, 0, stockd.Batch{Events: []stockd.Event{ev(p, 1), ev(p, 1)}}},
		{"descending positions", p, 0, stockd.Batch{Events: []stockd.Event{ev(p, 2), ev(p, 1)}}},
		{"first position not expected+1", p, 0, stockd.Batch{Events: []stockd.Event{ev(p, 2), ev(p, 3)}}},
		{"position 0", p, 0, stockd.Batch{Events: []stockd.Event{ev(p, 0)}}},
		{"negative partition", -1, 0, stockd.Batch{Events: []stockd.Event{ev(-1, 1)}}},
		{"partition out of range", 2, 0, stockd.Batch{Events: []stockd.Event{ev(2, 1)}}},
	}
	pa, pipelined := s.(stockd.PipelinedAppender)
	for _, c := range cases {
		err := s.Append(ctx, c.p, c.expected, c.batch)
		wantCode(t, err, stockd.CodeInvalid, "Append of a batch with %s", c.name)
		if pipelined {
			wait, err := pa.BeginAppend(ctx, c.p, c.expected, c.batch)
			wantCode(t, err, stockd.CodeInvalid, "BeginAppend of a batch with %s", c.name)
			if wait != nil && err != nil {
				t.Errorf("BeginAppend of a batch with %s returned a wait function with an error", c.name)
			}
		}
	}
	for q := 0; q < s.Partitions(); q++ {
		if h := head(t, s, q); h != 0 {
			t.Errorf("Head(%d) = %d after invalid batches", q, h)
		}
		if events := readAll(t, s, q); len(events) != 0 {
			t.Errorf("partition %d has %d events after invalid batches", q, len(events))
		}
	}
	if _, ok := lookupKey(t, s, "k"); ok {
		t.Errorf("the key of an invalid batch was recorded")
	}
	// A valid batch is still accepted.
	NewLog(p).Append(t, s, "A", "A")
}

func testReadPartition(t *testing.T, s stockd.Store) {
	rng := rand.New(rand.NewSource(1))
	const used = 3 // partition 3 stays empty
	logs := make([]*Log, used)
	want := make([][]stockd.Event, used)
	for p := range logs {
		logs[p] = NewLog(p)
	}
	sizes := []int{1, 1, 2, 3, 5, 8, 13, 40, 100, 1, 7}
	for round := 0; round < 12; round++ {
		for p := range logs {
			n := sizes[rng.Intn(len(sizes))]
			skus := make([]string, n)
			for i := range skus {
				if k := rng.Intn(5); k > 0 {
					skus[i] = fmt.Sprintf("p%d-s%d", p, k)
				}
			}
			want[p] = append(want[p], logs[p].Append(t, s, skus...)...)
		}
	}
	for p := range logs {
		all := want[p]
		hd := uint64(len(all))
		if h := head(t, s, p); h != hd {
			t.Fatalf("Head(%d) = %d, want %d", p, h, hd)
		}
		equalEvents(t, readAll(t, s, p), all, "all of partition %d", p)
		afters := []uint64{0, 1, 2, hd / 2, hd - 2, hd - 1, hd, hd + 1, hd + 1000, math.MaxUint64}
		for i := 0; i < 10; i++ {
			afters = append(afters, uint64(rng.Int63n(int64(hd))))
		}
		for _, after := range afters {
			for _, limit := range []int{1, 2, 7, 50, 1000, 100000} {
				got := readPartition(t, s, p, after, limit)
				lo := min(after, hd)
				hi := min(lo+uint64(limit), hd)
				equalEvents(t, got, all[lo:hi], "ReadPartition(%d, after %d, limit %d)", p, after, limit)
			}
			for _, limit := range []int{0, -1} {
				got := readPartition(t, s, p, after, limit)
				if after < hd && len(got) == 0 {
					t.Errorf("ReadPartition(%d, after %d, limit %d) returned nothing", p, after, limit)
				}
				lo := min(after, hd)
				if len(got) > len(all[lo:]) {
					t.Fatalf("ReadPartition(%d, after %d, limit %d) returned %d events, only %d exist", p, after, limit, len(got), len(all[lo:]))
				}
				equalEvents(t, got, all[lo:lo+uint64(len(got))], "ReadPartition(%d, after %d, limit %d)", p, after, limit)
			}
		}
	}
	if events := readAll(t, s, used); len(events) != 0 {
		t.Errorf("untouched partition %d has %d events", used, len(events))
	}
}

func testReadSKU(t *testing.T, s stockd.Store) {
	logs := []*Log{NewLog(0), NewLog(1)}
	var all []stockd.Event
	batches := []struct {
		p    int
		skus []string
	}{
		{0, []string{"A", "AB", "A", "", "B"}},
		{1, []string{"C", "AC"}},
		{0, []string{"A"}},
		{0, []string{"AB", "AB", "AB"}},
		{0, []string{"", ""}},
		{1, []string{"AC", "C", "", "C"}},
		{0, []string{"B", "A", "B", "A"}},
		{0, []string{"A~", "A0", "Ab", "a"}},
	}
	for _, b := range batches {
		all = append(all, logs[b.p].Append(t, s, b.skus...)...)
	}
	// A large batch that mixes everything, and a few small ones after it.
	mixed := make([]string, 60)
	for i := range mixed {
		mixed[i] = []string{"A", "AB", "B", "", "A"}[i%5]
	}
	all = append(all, logs[0].Append(t, s, mixed...)...)
	all = append(all, logs[0].Append(t, s, "B")...)
	all = append(all, logs[0].Append(t, s, "A", "AB")...)
	all = append(all, logs[1].Append(t, s, "C")...)

	for _, sku := range []string{"A", "AB", "B", "C", "AC", "A~", "A0", "Ab", "a", "nope", "ABC"} {
		stream := filterSKU(all, sku)
		equalEvents(t, readSKU(t, s, sku, stockd.SKUQuery{}), stream, "ReadSKU(%q)", sku)
		n := uint64(len(stream))
		for after := uint64(0); after <= n+1; after++ {
			q := stockd.SKUQuery{AfterVersion: after}
			equalEvents(t, readSKU(t, s, sku, q), applyQuery(stream, q), "ReadSKU(%q, %+v)", sku, q)
		}
		for _, limit := range []int{1, 2, 3, 1000} {
			var paged []stockd.Event
			q := stockd.SKUQuery{Limit: limit}
			for i := 0; ; i++ {
				page := readSKU(t, s, sku, q)
				if len(page) > limit {
					t.Fatalf("ReadSKU(%q, %+v) returned %d events", sku, q, len(page))
				}
				if len(page) == 0 || i > len(stream) {
					break
				}
				paged = append(paged, page...)
				q.AfterVersion = page[len(page)-1].Version
			}
			equalEvents(t, paged, stream, "ReadSKU(%q) paged by %d", sku, limit)
		}
		for _, e := range stream {
			for _, q := range []stockd.SKUQuery{
				{UpToPosition: e.Position},
				{UpToPosition: e.Position - 1},
				{UpToPosition: e.Position + 1},
				{UpToTime: e.Time},
				{UpToTime: e.Time.Add(-time.Nanosecond)},
				{UpToTime: e.Time.Add(time.Nanosecond)},
				{AfterVersion: 1, UpToPosition: e.Position, Limit: 2},
				{AfterVersion: 2, UpToTime: e.Time, Limit: 3},
				{UpToPosition: e.Position, UpToTime: e.Time.Add(-time.Nanosecond)},
			} {
				if q.UpToPosition == 0 && q.UpToTime.IsZero() {
					continue
				}
				equalEvents(t, readSKU(t, s, sku, q), applyQuery(stream, q), "ReadSKU(%q, %+v)", sku, q)
			}
		}
	}
	// Events without a SKU belong to no history.
	events, err := s.ReadSKU(ctx, "", stockd.SKUQuery{})
	if err == nil && len(events) != 0 {
		t.Errorf("ReadSKU(\"\") returned %d events", len(events))
	}
}

// filterSKU returns the events of sku in all, which hold events of several
// partitions, in version order.
func filterSKU(all []stockd.Event, sku string) []stockd.Event {
	var out []stockd.Event
	for _, e := range all {
		if e.SKU == sku && sku != "" {
			out = append(out, e)
		}
	}
	return out
}

// applyQuery is the model of ReadSKU: it bounds a SKU's stream, in version
// order, by q.
func applyQuery(stream []stockd.Event, q stockd.SKUQuery) []stockd.Event {
	var out []stockd.Event
	for _, e := range stream {
		if e.Version <= q.AfterVersion {
			continue
		}
		if q.UpToPosition != 0 && e.Position > q.UpToPosition {
			break
		}
		if !q.UpToTime.IsZero() && e.Time.After(q.UpToTime) {
			break
		}
		out = append(out, e)
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out
}

func testRoundTrip(t *testing.T, s stockd.Store) {
	const p = 2
	zone := time.FixedZone("UTC-7", -7*3600)
	data := SampleData()
	events := make([]stockd.Event, len(data))
	skus := []string{"rt-1", "rt-2", ""}
	versions := map[string]uint64{}
	for i, d := range data {
		sku := skus[i%len(skus)]
		var version uint64
		if sku != "" {
			versions[sku]++
			version = versions[sku]
		}
		events[i] = stockd.Event{
			Partition: p,
			Position:  uint64(i) + 1,
			SKU:       sku,
			Version:   version,
			// Times go back and forth around the first event's, in a zone
			// other than UTC.
			Time:      BaseTime.In(zone).Add(time.Duration((i%3)-1)*time.Hour*24*400 + time.Duration(i)*time.Nanosecond),
			CommandID: fmt.Sprintf("cmd-%d-%s", i, strings.Repeat("x", i*50)),
			Actor:     []string{"", "alice@example.com", "Zoë ✓ 東京"}[i%3],
			Data:      d,
		}
	}
	if err := s.Append(ctx, p, 0, stockd.Batch{Events: events}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	// A second record with a single event.
	single := Event(p, uint64(len(events))+1, "rt-1", versions["rt-1"]+1)
	if err := s.Append(ctx, p, uint64(len(events)), stockd.Batch{Events: []stockd.Event{single}}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	all := append(append([]stockd.Event(nil), events...), single)
	equalEvents(t, readAll(t, s, p), all, "ReadPartition")
	for _, sku := range skus[:2] {
		equalEvents(t, readSKU(t, s, sku, stockd.SKUQuery{}), filterSKU(all, sku), "ReadSKU(%q)", sku)
	}
	for i := range all {
		equalEvents(t, readPartition(t, s, p, uint64(i), 1), all[i:i+1], "ReadPartition(after %d, limit 1)", i)
	}
}

func testKeys(t *testing.T, s stockd.Store) {
	log := NewLog(0)
	longKey := strings.Repeat("k", 300) + "/ünïcode"
	k1 := stockd.KeyRecord{Key: "receipt:r-1", Partition: 0, Position: 1, Fingerprint: 0xdeadbeefdeadbeef}
	k2 := stockd.KeyRecord{Key: longKey, Partition: 0, Position: 2, Fingerprint: 0}
	events := log.Events("A", "B")
	if err := s.Append(ctx, 0, 0, stockd.Batch{Events: events, Keys: []stockd.KeyRecord{k1, k2}}); err != nil {
		t.Fatalf("Append with keys: %v", err)
	}
	log.Commit(events)
	for _, want := range []stockd.KeyRecord{k1, k2} {
		got, ok := lookupKey(t, s, want.Key)
		if !ok || got != want {
			t.Errorf("LookupKey(%q) = %+v, %v; want %+v, true", want.Key, got, ok, want)
		}
	}
	for _, unknown := range []string{"receipt:r-2", "receipt:r-", "receipt:r-10", "", strings.Repeat("k", 300)} {
		if got, ok := lookupKey(t, s, unknown); ok || got != (stockd.KeyRecord{}) {
			t.Errorf("LookupKey(%q) = %+v, %v; want the zero record, false", unknown, got, ok)
		}
	}
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
			t.Errorf("Head(%d) = %d after rejected batches, want %d", p, h, want)
		}
	}
	equalEvents(t, readAll(t, s, 0), before, "partition 0 after rejected batches")
	if events := readSKU(t, s, "C", stockd.SKUQuery{}); len(events) != 0 {
		t.Errorf("ReadSKU(C) returned %d events of a rejected batch", len(events))
	}
	for _, k := range []string{k3.Key, k4.Key} {
		if _, ok := lookupKey(t, s, k); ok {
			t.Errorf("key %q of a rejected batch was recorded", k)
		}
	}
	if got, _ := lookupKey(t, s, k1.Key); got != k1 {
		t.Errorf("LookupKey(%q) = %+v after a conflict, want %+v", k1.Key, got, k1)
	}
	// A fresh key is still accepted.
	events = log.Events("A")
	if err := s.Append(ctx, 0, log.Head, stockd.Batch{Events: events, Keys: []stockd.KeyRecord{k3}}); err != nil {
		t.Fatalf("Append with a fresh key: %v", err)
	}
	if got, ok := lookupKey(t, s, k3.Key); !ok || got != k3 {
		t.Errorf("LookupKey(%q) = %+v, %v; want %+v, true", k3.Key, got, ok, k3)
	}
}

// testConcurrentKeys races two partitions recording one key: a store that
// guards keys lets exactly one win.
func testConcurrentKeys(t *testing.T, s stockd.Store) {
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
		if rec, ok := lookupKey(t, s, key); !ok || rec.Partition != winner {
			t.Fatalf("round %d: LookupKey(%q) = %+v, %v; want partition %d", round, key, rec, ok, winner)
		}
	}
	for p, log := range logs {
		if h := head(t, s, p); h != log.Head {
			t.Errorf("Head(%d) = %d, want %d", p, h, log.Head)
		}
	}
}

func testSnapshots(t *testing.T, s stockd.Store) {
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

func testCheckpoints(t *testing.T, s stockd.Store) {
	big := make([]byte, 3<<20+4321)
	rand.New(rand.NewSource(11)).Read(big)
	want := map[string]map[int]stockd.Checkpoint{"projector": {}, "mailer": {}, "project": {}}
	set := func(consumer string, p int, c stockd.Checkpoint) {
		t.Helper()
		arg := c
		if c.State != nil {
			arg.State = bytes.Clone(c.State)
		}
		if err := s.SetCheckpoint(ctx, consumer, p, arg); err != nil {
			t.Fatalf("SetCheckpoint(%q, %d, position %d, %d bytes): %v", consumer, p, c.Position, len(c.State), err)
		}
		// The store must not keep the caller's buffer.
		for i := range arg.State {
			arg.State[i] ^= 0x5a
		}
		want[consumer][p] = c
	}
	verify := func(step string) {
		t.Helper()
		for consumer, parts := range want {
			for p := 0; p < s.Partitions(); p++ {
				got := checkpoint(t, s, consumer, p)
				equalCheckpoint(t, got, parts[p], "%s: Checkpoint(%q, %d)", step, consumer, p)
			}
		}
	}
	verify("empty store")
	steps := []struct {
		name     string
		consumer string
		p        int
		c        stockd.Checkpoint
	}{
		{"position only", "projector", 0, stockd.Checkpoint{Position: 5}},
		{"small state", "projector", 1, stockd.Checkpoint{Position: 7, State: []byte("seven")}},
		{"empty state", "mailer", 0, stockd.Checkpoint{Position: 2, State: []byte{}}},
		{"backwards, gaining a state", "projector", 0, stockd.Checkpoint{Position: 3, State: []byte("three")}},
		{"largest position", "project", 2, stockd.Checkpoint{Position: math.MaxUint64, State: []byte{0}}},
		{"large state", "projector", 1, stockd.Checkpoint{Position: 9, State: big}},
		{"small after large", "projector", 1, stockd.Checkpoint{Position: 10, State: []byte("small after large")}},
		{"exactly 1 MiB", "projector", 1, stockd.Checkpoint{Position: 11, State: big[:1<<20]}},
		{"1 MiB and a byte", "projector", 1, stockd.Checkpoint{Position: 12, State: big[:1<<20+1]}},
		{"rewound to the start", "projector", 1, stockd.Checkpoint{}},
		{"large again", "mailer", 0, stockd.Checkpoint{Position: 1000, State: big[7:]}},
		{"none after large", "mailer", 0, stockd.Checkpoint{Position: 1001}},
		{"same partition, other consumer", "project", 0, stockd.Checkpoint{Position: 4, State: []byte("project")}},
	}
	for _, st := range steps {
		set(st.consumer, st.p, st.c)
		verify(st.name)
	}

	// The state returned belongs to the caller.
	got := checkpoint(t, s, "project", 0)
	for i := range got.State {
		got.State[i] = 'X'
	}
	equalCheckpoint(t, checkpoint(t, s, "project", 0), want["project"][0], "Checkpoint after changing a returned state")

	for _, p := range []int{-1, s.Partitions()} {
		_, err := s.Checkpoint(ctx, "projector", p)
		wantCode(t, err, stockd.CodeInvalid, "Checkpoint of partition %d of %d", p, s.Partitions())
		err = s.SetCheckpoint(ctx, "projector", p, stockd.Checkpoint{Position: 1, State: []byte("x")})
		wantCode(t, err, stockd.CodeInvalid, "SetCheckpoint of partition %d of %d", p, s.Partitions())
	}
	verify("after invalid partitions")
}

// equalCheckpoint fails the test unless got and want have the same position
// and the same state, an empty state being equal to a nil one.
func equalCheckpoint(t testing.TB, got, want stockd.Checkpoint, format string, args ...any) {
	t.Helper()
	if got.Position != want.Position || !bytes.Equal(got.State, want.State) {
		t.Errorf("%s = position %d, %d bytes of state; want position %d, %d bytes", fmt.Sprintf(format, args...),
			got.Position, len(got.State), want.Position, len(want.State))
	}
}

func testPipelined(t *testing.T, s stockd.Store) {
	pa, ok := s.(stockd.PipelinedAppender)
	if !ok {
		t.Skip("the store does not implement stockd.PipelinedAppender")
	}
	const p = 1
	log := NewLog(p)
	var (
		waits []func() error
		all   []stockd.Event
	)
	for i := 0; i < 20; i++ {
		events := log.Events("P", "", "Q", "P")[:1+i%4]
		var keys []stockd.KeyRecord
		if i%3 == 0 {
			keys = []stockd.KeyRecord{{Key: fmt.Sprintf("pipe-%d", i), Partition: p, Position: log.Head + 1}}
		}
		wait, err := pa.BeginAppend(ctx, p, log.Head, stockd.Batch{Events: events, Keys: keys})
		if err != nil {
			t.Fatalf("BeginAppend %d at head %d: %v", i, log.Head, err)
		}
		if wait == nil {
			t.Fatalf("BeginAppend %d returned a nil wait function", i)
		}
		log.Commit(events)
		all = append(all, events...)
		waits = append(waits, wait)
		if h := head(t, s, p); h != log.Head {
			t.Fatalf("Head after BeginAppend %d = %d, want %d", i, h, log.Head)
		}
	}
	// A stale head conflicts even while earlier batches are being synced.
	_, err := pa.BeginAppend(ctx, p, log.Head-1, stockd.Batch{Events: []stockd.Event{Event(p, log.Head, "P", 1)}})
	wantCode(t, err, stockd.CodeConflict, "BeginAppend at a stale head")
	for i, wait := range waits {
		if err := wait(); err != nil {
			t.Fatalf("wait %d: %v", i, err)
		}
	}
	equalEvents(t, readAll(t, s, p), all, "ReadPartition after pipelined appends")
	equalEvents(t, readSKU(t, s, "P", stockd.SKUQuery{}), filterSKU(all, "P"), "ReadSKU(P)")
	if _, ok := lookupKey(t, s, "pipe-3"); !ok {
		t.Errorf("the key of a pipelined batch was not recorded")
	}
	// Append interleaves with BeginAppend.
	log.Append(t, s, "Q")
	if h := head(t, s, p); h != log.Head {
		t.Errorf("Head = %d, want %d", h, log.Head)
	}
}

// head returns the head of partition p, failing the test on error.
func head(t testing.TB, s stockd.Store, p int) uint64 {
	t.Helper()
	h, err := s.Head(ctx, p)
	if err != nil {
		t.Fatalf("Head(%d): %v", p, err)
	}
	return h
}

// readPartition calls ReadPartition, failing the test on error.
func readPartition(t testing.TB, s stockd.Store, p int, after uint64, limit int) []stockd.Event {
	t.Helper()
	events, err := s.ReadPartition(ctx, p, after, limit)
	if err != nil {
		t.Fatalf("ReadPartition(%d, %d, %d): %v", p, after, limit, err)
	}
	return events
}

// readAll reads a whole partition in pages, checking that each page
// continues the previous one.
func readAll(t testing.TB, s stockd.Store, p int) []stockd.Event {
	t.Helper()
	var all []stockd.Event
	for {
		page := readPartition(t, s, p, uint64(len(all)), 64)
		if len(page) == 0 {
			return all
		}
		if len(page) > 64 {
			t.Fatalf("ReadPartition(%d, %d, 64) returned %d events", p, len(all), len(page))
		}
		all = append(all, page...)
	}
}

// readSKU calls ReadSKU, failing the test on error.
func readSKU(t testing.TB, s stockd.Store, sku string, q stockd.SKUQuery) []stockd.Event {
	t.Helper()
	events, err := s.ReadSKU(ctx, sku, q)
	if err != nil {
		t.Fatalf("ReadSKU(%q, %+v): %v", sku, q, err)
	}
	return events
}

// lookupKey calls LookupKey, failing the test on error.
func lookupKey(t testing.TB, s stockd.Store, key string) (stockd.KeyRecord, bool) {
	t.Helper()
	rec, ok, err := s.LookupKey(ctx, key)
	if err != nil {
		t.Fatalf("LookupKey(%q): %v", key, err)
	}
	return rec, ok
}

// loadSnapshot calls LoadSnapshot, failing the test on error.
func loadSnapshot(t testing.TB, s stockd.Store, p int) (stockd.Snapshot, bool) {
	t.Helper()
	snap, ok, err := s.LoadSnapshot(ctx, p)
	if err != nil {
		t.Fatalf("LoadSnapshot(%d): %v", p, err)
	}
	return snap, ok
}

// checkpoint calls Checkpoint, failing the test on error.
func checkpoint(t testing.TB, s stockd.Store, consumer string, p int) stockd.Checkpoint {
	t.Helper()
	c, err := s.Checkpoint(ctx, consumer, p)
	if err != nil {
		t.Fatalf("Checkpoint(%q, %d): %v", consumer, p, err)
	}
	return c
}

// wantCode fails the test unless err carries code.
func wantCode(t testing.TB, err error, code stockd.Code, format string, args ...any) {
	t.Helper()
	if !stockd.IsCode(err, code) {
		t.Errorf("%s: got error %v, want code %s", fmt.Sprintf(format, args...), err, code)
	}
}

// equalEvents fails the test unless got and want hold the same events once
// their times are normalised, reporting the first difference.
func equalEvents(t testing.TB, got, want []stockd.Event, format string, args ...any) {
	t.Helper()
	g, w := Normalize(got), Normalize(want)
	if len(g) == 0 && len(w) == 0 {
		return
	}
	if reflect.DeepEqual(g, w) {
		return
	}
	what := fmt.Sprintf(format, args...)
	if len(g) != len(w) {
		t.Fatalf("%s: got %d events, want %d\ngot:  %s\nwant: %s", what, len(g), len(w), positions(g), positions(w))
	}
	for i := range g {
		if !reflect.DeepEqual(g[i], w[i]) {
			t.Fatalf("%s: event %d differs\ngot:  %+v\nwant: %+v", what, i, g[i], w[i])
		}
	}
}

// positions summarises events for a failure message.
func positions(events []stockd.Event) string {
	var b strings.Builder
	for i, e := range events {
		if i == 20 {
			b.WriteString(" ...")
			break
		}
		fmt.Fprintf(&b, " %d:%s/%d", e.Position, e.SKU, e.Version)
	}
	return b.String()
}

// testGroup checks group appends: several partitions, and several chained
// batches of one partition, written as one; a stale or unchained member
// refuses the whole group.
func testGroup(t *testing.T, s stockd.Store) {
	ga, ok := s.(stockd.GroupAppender)
	if !ok {
		t.Skip("the store does not implement stockd.GroupAppender")
	}
	logs := []*Log{NewLog(0), NewLog(1), NewLog(2)}
	logs[2].Append(t, s, "G2")
	var group []stockd.Append
	want := make([][]stockd.Event, len(logs))
	add := func(p int, skus ...string) {
		events := logs[p].Events(skus...)
		group = append(group, stockd.Append{Partition: p, Expected: logs[p].Head, Batch: stockd.Batch{Events: events}})
		logs[p].Commit(events)
		want[p] = append(want[p], events...)
	}
	add(0, "G0", "G0")
	add(1, "G1")
	add(1, "G1", "", "G1b")
	add(2, "G2")
	wait, err := ga.BeginAppendGroup(ctx, group)
	if err != nil {
		t.Fatalf("BeginAppendGroup: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatalf("wait: %v", err)
	}
	for p, log := range logs {
		if h := head(t, s, p); h != log.Head {
			t.Errorf("Head(%d) = %d after the group, want %d", p, h, log.Head)
		}
	}
	equalEvents(t, readAll(t, s, 0), want[0], "partition 0 after the group")
	equalEvents(t, readAll(t, s, 1), want[1], "partition 1 after the group")
	equalEvents(t, readSKU(t, s, "G1", stockd.SKUQuery{}), filterSKU(want[1], "G1"), "ReadSKU(G1)")

	before := [][]stockd.Event{readAll(t, s, 0), readAll(t, s, 1), readAll(t, s, 2)}
	fresh := func(p int, expected uint64, skus ...string) stockd.Append {
		return stockd.Append{Partition: p, Expected: expected, Batch: logs[p].Batch(skus...)}
	}
	// One stale member refuses the group.
	stale := stockd.Append{Partition: 1, Expected: logs[1].Head - 1, Batch: stockd.Batch{Events: Events(1, logs[1].Head-1, 1)}}
	_, err = ga.BeginAppendGroup(ctx, []stockd.Append{fresh(0, logs[0].Head, "X0"), stale})
	wantCode(t, err, stockd.CodeConflict, "BeginAppendGroup with a stale member")
	// So do two batches of one partition that do not chain.
	_, err = ga.BeginAppendGroup(ctx, []stockd.Append{fresh(2, logs[2].Head, "X2"), fresh(2, logs[2].Head, "X2")})
	if err == nil {
		t.Errorf("BeginAppendGroup with unchained batches of one partition succeeded")
	}
	for p := range logs {
		if h := head(t, s, p); h != logs[p].Head {
			t.Errorf("Head(%d) = %d after refused groups, want %d", p, h, logs[p].Head)
		}
		equalEvents(t, readAll(t, s, p), before[p], "partition after refused groups")
	}
	if events := readSKU(t, s, "X0", stockd.SKUQuery{}); len(events) != 0 {
		t.Errorf("ReadSKU(X0) returned %d events of a refused group", len(events))
	}
}
