package storetest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/stockd/stockd"
)

// memStore is the simplest correct stockd.Store, and a stockd.KeyGuard, kept
// here to check that the suite passes a correct store: one mutex, slices and
// maps.
type memStore struct {
	mu     sync.Mutex
	parts  [][]stockd.Event
	keys   map[string]stockd.KeyRecord
	gone   map[string]stockd.RetiredRecord
	snaps  map[int]stockd.Snapshot
	checks map[string]stockd.Checkpoint
	closed bool
}

func newMemStore(partitions int) *memStore {
	return &memStore{
		parts:  make([][]stockd.Event, partitions),
		keys:   make(map[string]stockd.KeyRecord),
		gone:   make(map[string]stockd.RetiredRecord),
		snaps:  make(map[int]stockd.Snapshot),
		checks: make(map[string]stockd.Checkpoint),
	}
}

func (m *memStore) Partitions() int { return len(m.parts) }

// GuardsKeys marks memStore as a stockd.KeyGuard, so the suite's duplicate-key
// tests run against it.
func (m *memStore) GuardsKeys() {}

func (m *memStore) check(p int) error {
	if p < 0 || p >= len(m.parts) {
		return stockd.Errorf(stockd.CodeInvalid, "partition %d out of range", p)
	}
	return nil
}

func (m *memStore) Append(_ context.Context, p int, expected uint64, batch stockd.Batch) error {
	if err := m.check(p); err != nil {
		return err
	}
	if len(batch.Events) == 0 {
		return stockd.Errorf(stockd.CodeInvalid, "empty batch")
	}
	for i, e := range batch.Events {
		if e.Partition != p || e.Position != expected+uint64(i)+1 {
			return stockd.Errorf(stockd.CodeInvalid, "bad event %d", i)
		}
	}
	seen := map[string]bool{}
	for _, k := range batch.Keys {
		if seen[k.Key] {
			return stockd.Errorf(stockd.CodeInvalid, "key %q twice", k.Key)
		}
		seen[k.Key] = true
	}
	clear(seen)
	for _, r := range batch.Retired {
		if r.Key == "" || seen[r.Key] || r.Partition != p || r.Position <= expected || r.Position > expected+uint64(len(batch.Events)) {
			return stockd.Errorf(stockd.CodeInvalid, "bad retired record %q", r.Key)
		}
		seen[r.Key] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if uint64(len(m.parts[p])) != expected {
		return stockd.Errorf(stockd.CodeConflict, "stale head")
	}
	for _, k := range batch.Keys {
		if _, ok := m.keys[k.Key]; ok {
			return stockd.Errorf(stockd.CodeConflict, "key %q recorded", k.Key)
		}
	}
	m.parts[p] = append(m.parts[p], batch.Events...)
	for _, k := range batch.Keys {
		m.keys[k.Key] = k
	}
	for _, r := range batch.Retired {
		r.Data = bytes.Clone(r.Data)
		m.gone[r.Key] = r
	}
	return nil
}

func (m *memStore) LookupRetired(_ context.Context, key string) (stockd.RetiredRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.gone[key]
	r.Data = bytes.Clone(r.Data)
	return r, ok, nil
}

func (m *memStore) ReadPartition(_ context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	if err := m.check(p); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	events := m.parts[p]
	if after >= uint64(len(events)) {
		return nil, nil
	}
	events = events[after:]
	return append([]stockd.Event(nil), events[:min(limit, len(events))]...), nil
}

func (m *memStore) ReadSKU(_ context.Context, sku string, q stockd.SKUQuery) ([]stockd.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var stream []stockd.Event
	for _, events := range m.parts {
		stream = append(stream, filterSKU(events, sku)...)
	}
	return applyQuery(stream, q), nil
}

func (m *memStore) SaveSnapshot(_ context.Context, s stockd.Snapshot) error {
	if err := m.check(s.Partition); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.snaps[s.Partition]; !ok || old.Position <= s.Position {
		s.Data = bytes.Clone(s.Data)
		m.snaps[s.Partition] = s
	}
	return nil
}

func (m *memStore) LoadSnapshot(_ context.Context, p int) (stockd.Snapshot, bool, error) {
	if err := m.check(p); err != nil {
		return stockd.Snapshot{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.snaps[p]
	return s, ok, nil
}

func (m *memStore) Checkpoint(_ context.Context, consumer string, p int) (stockd.Checkpoint, error) {
	if err := m.check(p); err != nil {
		return stockd.Checkpoint{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.checks[consumer+"\x00"+strconv.Itoa(p)]
	c.State = bytes.Clone(c.State)
	return c, nil
}

func (m *memStore) SetCheckpoint(_ context.Context, consumer string, p int, c stockd.Checkpoint) error {
	if err := m.check(p); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c.State = bytes.Clone(c.State)
	m.checks[consumer+"\x00"+strconv.Itoa(p)] = c
	return nil
}

func (m *memStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("closed twice")
	}
	m.closed = true
	return nil
}

// TestSuiteOnMemStore runs the suite against memStore, so that a change to
// the suite that a correct store cannot pass is caught here.
func TestSuiteOnMemStore(t *testing.T) {
	Run(t, func(t *testing.T, partitions int) stockd.Store { return newMemStore(partitions) })
}

// TestGroupsNeedOnlyTheirInterface runs each group of the suite against a
// store that offers nothing but the group's interface (not even Close), as a
// backend that provides only some of them would. Hiding memStore's KeyGuard
// also runs the key tests of a log that does not guard keys against it.
func TestGroupsNeedOnlyTheirInterface(t *testing.T) {
	t.Run("Log", func(t *testing.T) {
		RunLog(t, func(t *testing.T, partitions int) stockd.Log {
			return struct{ stockd.Log }{newMemStore(partitions)}
		})
	})
	t.Run("Snapshots", func(t *testing.T) {
		RunSnapshots(t, func(t *testing.T, partitions int) stockd.Snapshots {
			return struct{ stockd.Snapshots }{newMemStore(partitions)}
		})
	})
	t.Run("Checkpoints", func(t *testing.T) {
		RunCheckpoints(t, func(t *testing.T, partitions int) stockd.Checkpoints {
			return struct{ stockd.Checkpoints }{newMemStore(partitions)}
		})
	})
}

// TestEvents checks that the stateless helper builds one consistent log from
// consecutive calls.
func TestEvents(t *testing.T) {
	a := Events(2, 0, 5)
	b := Events(2, 5, 7)
	versions := map[string]uint64{}
	for i, e := range append(a, b...) {
		if e.Partition != 2 || e.Position != uint64(i)+1 {
			t.Fatalf("event %d: partition %d position %d", i, e.Partition, e.Position)
		}
		if e.Version != versions[e.SKU]+1 {
			t.Fatalf("event %d: %s version %d after %d", i, e.SKU, e.Version, versions[e.SKU])
		}
		versions[e.SKU] = e.Version
		if i > 0 && !e.Time.After(TimeAt(uint64(i))) {
			t.Fatalf("event %d: time %v not after the previous event's", i, e.Time)
		}
	}
}

// TestLog checks that Log numbers positions and versions and only advances
// on Commit.
func TestLog(t *testing.T) {
	l := NewLog(1)
	first := l.Events("A", "", "A", "B")
	again := l.Events("A")
	if again[0].Position != 1 || again[0].Version != 1 {
		t.Fatalf("Events advanced the log: %+v", again[0])
	}
	l.Commit(first)
	next := l.Events("A", "B", "")
	want := []struct {
		pos     uint64
		version uint64
	}{{5, 3}, {6, 2}, {7, 0}}
	for i, w := range want {
		if next[i].Position != w.pos || next[i].Version != w.version {
			t.Errorf("event %d: position %d version %d, want %d %d", i, next[i].Position, next[i].Version, w.pos, w.version)
		}
	}
	if first[1].Version != 0 || first[1].SKU != "" {
		t.Errorf("event without SKU: %+v", first[1])
	}
}

// TestSampleDataCoversEveryType fails when an event type is added without a
// sample, so round-trip tests keep covering every type.
func TestSampleDataCoversEveryType(t *testing.T) {
	seen := map[stockd.EventType]bool{}
	for _, d := range SampleData() {
		seen[d.EventType()] = true
	}
	for typ := stockd.EventType(1); typ.String() != "EventType("+strconv.Itoa(int(typ))+")"; typ++ {
		if !seen[typ] {
			t.Errorf("SampleData has no %s", typ)
		}
	}
}

// TestSampleDataRoundTripsThroughCodec checks that the samples survive the
// binary encoding, so that a store test failing on them points at the store.
func TestSampleDataRoundTripsThroughCodec(t *testing.T) {
	events := Events(0, 0, 3*len(SampleData()))
	got, err := stockd.DecodeEvents(stockd.AppendEvents(nil, events), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(Normalize(got), Normalize(events)) {
		t.Fatalf("round trip changed the events:\n got %+v\nwant %+v", got, events)
	}
}
