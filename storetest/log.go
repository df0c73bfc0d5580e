package storetest

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// RunLog checks the rules of stockd.Log against the logs returned by open,
// which must return a fresh, empty log with the given number of partitions
// every time it is called, and the optional capabilities the log implements
// (stockd.PipelinedAppender, stockd.GroupAppender, stockd.KeyGuard); the tests
// of a capability it lacks are skipped. If a log has a Close method, the
// suite closes it.
func RunLog(t *testing.T, open func(t *testing.T, partitions int) stockd.Log) {
	newLog := opener(open)
	t.Run("Partitions", func(t *testing.T) { testPartitions(t, newLog) })
	t.Run("EmptyLog", func(t *testing.T) { testEmptyLog(t, newLog(t, 3)) })
	t.Run("AppendAndRead", func(t *testing.T) { testAppendAndRead(t, newLog(t, 3)) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, newLog(t, 2)) })
	t.Run("ConcurrentAppenders", func(t *testing.T) { testConcurrentAppenders(t, newLog(t, 2)) })
	t.Run("ConcurrentPartitions", func(t *testing.T) { testConcurrentPartitions(t, newLog(t, 4)) })
	t.Run("InvalidBatches", func(t *testing.T) { testInvalidBatches(t, newLog(t, 2)) })
	t.Run("ReadPartition", func(t *testing.T) { testReadPartition(t, newLog(t, 4)) })
	t.Run("ReadSKU", func(t *testing.T) { testReadSKU(t, newLog(t, 2)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newLog(t, 3)) })
	t.Run("IdempotencyKeys", func(t *testing.T) { testKeys(t, newLog(t, 2)) })
	t.Run("RetiredRecords", func(t *testing.T) { testRetired(t, newLog(t, 2)) })
	t.Run("ConcurrentKeys", func(t *testing.T) { testConcurrentKeys(t, newLog(t, 2)) })
	t.Run("KeysFound", func(t *testing.T) { testKeysFound(t, newLog(t, 2)) })
	t.Run("Pipelined", func(t *testing.T) { testPipelined(t, newLog(t, 2)) })
	t.Run("Group", func(t *testing.T) { testGroup(t, newLog(t, 3)) })
}

func testPartitions(t *testing.T, newLog func(*testing.T, int) stockd.Log) {
	for _, n := range []int{1, 3, 16} {
		s := newLog(t, n)
		if got := s.Partitions(); got != n {
			t.Errorf("Partitions() = %d, want %d", got, n)
		}
		for _, p := range []int{-1, n} {
			if _, err := s.ReadPartition(ctx, p, 0, 1); err == nil {
				t.Errorf("ReadPartition(%d) of a store with %d partitions succeeded", p, n)
			}
			err := s.Append(ctx, p, 0, stockd.Batch{Events: []stockd.Event{Event(p, 1, "A", 1)}})
			wantCode(t, err, stockd.CodeInvalid, "Append to partition %d of %d", p, n)
		}
	}
}

func testEmptyLog(t *testing.T, s stockd.Log) {
	for p := 0; p < s.Partitions(); p++ {
		if h := head(t, s, p); h != 0 {
			t.Errorf("head of partition %d of an empty store = %d, want 0", p, h)
		}
		if events := readPartition(t, s, p, 0, 10); len(events) != 0 {
			t.Errorf("ReadPartition(%d) of an empty store returned %d events", p, len(events))
		}
	}
	if events := readSKU(t, s, "A", stockd.SKUQuery{}); len(events) != 0 {
		t.Errorf("ReadSKU(A) of an empty store returned %d events", len(events))
	}
}

func testAppendAndRead(t *testing.T, s stockd.Log) {
	log := NewLog(1)
	var all []stockd.Event
	for i, skus := range [][]string{{"A"}, {"A", "B", ""}, {"B"}, {"C", "C", "C", "C"}} {
		all = append(all, log.Append(t, s, skus...)...)
		if h := head(t, s, 1); h != log.Head {
			t.Fatalf("after append %d: head = %d, want %d", i, h, log.Head)
		}
		equalEvents(t, readAll(t, s, 1), all, "ReadPartition after append %d", i)
	}
	for _, p := range []int{0, 2} {
		if h := head(t, s, p); h != 0 {
			t.Errorf("head of partition %d = %d after appends to partition 1 only", p, h)
		}
		if events := readAll(t, s, p); len(events) != 0 {
			t.Errorf("partition %d has %d events after appends to partition 1 only", p, len(events))
		}
	}
}

func testConflict(t *testing.T, s stockd.Log) {
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
		t.Errorf("head = %d after conflicts, want 3", h)
	}
	equalEvents(t, readAll(t, s, p), before, "ReadPartition after conflicts")
	equalEvents(t, readSKU(t, s, "A", stockd.SKUQuery{}), beforeA, "ReadSKU(A) after conflicts")
	if events := readSKU(t, s, "Z", stockd.SKUQuery{}); len(events) != 0 {
		t.Errorf("ReadSKU(Z) returned %d events of conflicting batches", len(events))
	}
	// An empty partition conflicts too.
	err := s.Append(ctx, 1, 1, stockd.Batch{Events: []stockd.Event{Event(1, 2, "Y", 1)}})
	wantCode(t, err, stockd.CodeConflict, "Append with expected head 1 to an empty partition")
	if h := head(t, s, 1); h != 0 {
		t.Errorf("head of partition 1 = %d after a conflict, want 0", h)
	}
	// The store still accepts the right head, with the key of the
	// conflicting batches, which none of them recorded.
	events := log.Events("A")
	key := stockd.KeyRecord{Key: "conflict-key", Partition: p, Position: log.Head + 1, Fingerprint: 7}
	if err := s.Append(ctx, p, log.Head, stockd.Batch{Events: events, Keys: []stockd.KeyRecord{key}}); err != nil {
		t.Fatalf("Append at the right head with the key of conflicting batches: %v", err)
	}
	log.Commit(events)
	if h := head(t, s, p); h != 4 {
		t.Errorf("head = %d, want 4", h)
	}
}

func testConcurrentAppenders(t *testing.T, s stockd.Log) {
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
			t.Fatalf("round %d: head = %d, want %d", round, got, h)
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

func testConcurrentPartitions(t *testing.T, s stockd.Log) {
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
			t.Errorf("head of partition %d = %d, want %d", p, h, batches*3)
		}
		equalEvents(t, readAll(t, s, p), want[p], "partition %d", p)
		if got := readSKU(t, s, fmt.Sprintf("P%d", p), stockd.SKUQuery{}); len(got) != batches*2 {
			t.Errorf("ReadSKU(P%d) returned %d events, want %d", p, len(got), batches*2)
		}
	}
}

func testInvalidBatches(t *testing.T, s stockd.Log) {
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
			t.Errorf("head of partition %d = %d after invalid batches", q, h)
		}
		if events := readAll(t, s, q); len(events) != 0 {
			t.Errorf("partition %d has %d events after invalid batches", q, len(events))
		}
	}
	// A valid batch is still accepted, with the key of an invalid one,
	// which was not recorded.
	batch := NewLog(p).Batch("A", "A")
	batch.Keys = []stockd.KeyRecord{{Key: "k", Partition: p, Position: 1}}
	if err := s.Append(ctx, p, 0, batch); err != nil {
		t.Fatalf("Append of a valid batch with the key of an invalid one: %v", err)
	}
}

func testReadPartition(t *testing.T, s stockd.Log) {
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
			t.Fatalf("head of partition %d = %d, want %d", p, h, hd)
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

func testReadSKU(t *testing.T, s stockd.Log) {
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

func testRoundTrip(t *testing.T, s stockd.Log) {
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

func testPipelined(t *testing.T, s stockd.Log) {
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
	wantKeyRecorded(t, s, p, "pipe-3")
	// Append interleaves with BeginAppend.
	log.Append(t, s, "Q")
	if h := head(t, s, p); h != log.Head {
		t.Errorf("head = %d, want %d", h, log.Head)
	}
}

// testGroup checks group appends: several partitions, and several chained
// batches of one partition, written as one; a stale or unchained member
// refuses the whole group.
func testGroup(t *testing.T, s stockd.Log) {
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
			t.Errorf("head of partition %d = %d after the group, want %d", p, h, log.Head)
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
			t.Errorf("head of partition %d = %d after refused groups, want %d", p, h, logs[p].Head)
		}
		equalEvents(t, readAll(t, s, p), before[p], "partition after refused groups")
	}
	if events := readSKU(t, s, "X0", stockd.SKUQuery{}); len(events) != 0 {
		t.Errorf("ReadSKU(X0) returned %d events of a refused group", len(events))
	}
}

// head returns the head of partition p, the position of its last event or 0,
// as ReadPartition shows it, failing the test on error.
func head(t testing.TB, s stockd.Log, p int) uint64 {
	t.Helper()
	all := readAll(t, s, p)
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Position
}

// readPartition calls ReadPartition, failing the test on error.
func readPartition(t testing.TB, s stockd.Log, p int, after uint64, limit int) []stockd.Event {
	t.Helper()
	events, err := s.ReadPartition(ctx, p, after, limit)
	if err != nil {
		t.Fatalf("ReadPartition(%d, %d, %d): %v", p, after, limit, err)
	}
	return events
}

// readAll reads a whole partition in pages, checking that each page
// continues the previous one.
func readAll(t testing.TB, s stockd.Log, p int) []stockd.Event {
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
func readSKU(t testing.TB, s stockd.Log, sku string, q stockd.SKUQuery) []stockd.Event {
	t.Helper()
	events, err := s.ReadSKU(ctx, sku, q)
	if err != nil {
		t.Fatalf("ReadSKU(%q, %+v): %v", sku, q, err)
	}
	return events
}
