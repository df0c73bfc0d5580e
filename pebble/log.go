package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/stockd/stockd"
)

// DefaultReadLimit is the number of events ReadPartition returns when asked
// for a limit of 0 or less, so that a careless caller cannot load a whole
// partition into memory.
const DefaultReadLimit = 1000

// maxRecordSize bounds the encoding of one appended batch, for the same
// reason as MaxSnapshotSize: it is written in one Pebble batch. Real batches
// are a few hundred kilobytes at most.
const maxRecordSize = 1 << 30

// partition is the in-memory state of one partition's log.
type partition struct {
	// mu orders appends to the partition: the head check, the key checks
	// and the write happen under it.
	mu sync.Mutex
	// head is the position of the last event written, including batches
	// that are applied but not yet synced. It is written under mu and read
	// without it.
	head atomic.Uint64
}

// loadHeads finds the last record of every partition with one reverse seek
// each, and decodes it to learn the position of its last event.
func (s *Store) loadHeads() error {
	it, err := s.db.NewIter(&pebbledb.IterOptions{
		LowerBound: []byte{prefixEvents},
		UpperBound: []byte{prefixEvents + 1},
	})
	if err != nil {
		return fmt.Errorf("pebble: load heads: %w", err)
	}
	defer it.Close()
	for p := range s.parts {
		prefix := partitionPrefix(p)
		if !it.SeekLT(prefixEnd(prefix)) || !bytes.HasPrefix(it.Key(), prefix) {
			if err := it.Error(); err != nil {
				return fmt.Errorf("pebble: load head of partition %d: %w", p, err)
			}
			continue
		}
		first, err := parseEventKey(it.Key())
		if err != nil {
			return err
		}
		value, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("pebble: load head of partition %d: %w", p, err)
		}
		events, err := stockd.DecodeEvents(value, p, first)
		if err != nil {
			return fmt.Errorf("pebble: partition %d record at %d: %w", p, first, err)
		}
		if len(events) == 0 {
			return fmt.Errorf("pebble: %w: empty record in partition %d at %d", stockd.ErrCorrupt, p, first)
		}
		s.parts[p].head.Store(first + uint64(len(events)) - 1)
	}
	return it.Error()
}

// Append durably appends batch to partition p if its head is expected: it
// checks and applies the batch like BeginAppend, then waits for the
// write-ahead log to be synced.
func (s *Store) Append(ctx context.Context, p int, expected uint64, batch stockd.Batch) error {
	appends := []stockd.Append{{Partition: p, Expected: expected, Batch: batch}}
	b, err := s.begin(ctx, appends)
	if err != nil {
		return err
	}
	return s.syncWait(b, describe(appends))
}

// BeginAppend checks and applies batch like Append, making it visible to
// reads, and returns without waiting for the write-ahead log to be synced.
// wait blocks until the batch is durable or reports why it is not; it may be
// called more than once. Batches of one partition become durable in the order
// they were begun because Pebble's log is written and synced sequentially.
func (s *Store) BeginAppend(ctx context.Context, p int, expected uint64, batch stockd.Batch) (wait func() error, err error) {
	return s.BeginAppendGroup(ctx, []stockd.Append{{Partition: p, Expected: expected, Batch: batch}})
}

// BeginAppendGroup begins the appends of several partitions as one Pebble
// batch: one write to the log and one sync for all of them.
func (s *Store) BeginAppendGroup(ctx context.Context, appends []stockd.Append) (wait func() error, err error) {
	b, err := s.begin(ctx, appends)
	if err != nil {
		return nil, err
	}
	// A goroutine, rather than wait itself, waits for the sync, so that a
	// failed sync stops the store as soon as it happens, not when the caller
	// gets round to calling wait. After a failed sync Pebble panics if its
	// log is written again, so the sooner later appends are refused the
	// better.
	// The caller may reuse appends once this returns, so the goroutine
	// keeps only what its error message needs.
	what := describe(appends)
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = s.syncWait(b, what)
		close(done)
	}()
	return func() error {
		<-done
		return waitErr
	}, nil
}

// begin validates the appends, checks them against the partitions' heads, and
// applies them as one batch without waiting for the sync. The returned batch
// must be passed to syncWait.
func (s *Store) begin(ctx context.Context, appends []stockd.Append) (*pebbledb.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(appends) == 0 {
		return nil, stockd.Errorf(stockd.CodeInvalid, "no appends")
	}
	// Several appends of one partition must chain: each expects the head
	// the previous one leaves.
	next := make(map[int]uint64, len(appends))
	for _, a := range appends {
		if err := s.checkPartition(a.Partition); err != nil {
			return nil, err
		}
		if err := stockd.CheckBatch(a.Partition, s.partitions, a.Expected, math.MaxUint64, a.Batch); err != nil {
			return nil, err
		}
		if want, ok := next[a.Partition]; ok && a.Expected != want {
			return nil, stockd.Errorf(stockd.CodeInvalid, "appends of partition %d in one group do not chain: expected %d after %d", a.Partition, a.Expected, want)
		}
		next[a.Partition] = a.Expected + uint64(len(a.Batch.Events))
	}
	// Encode and build the Pebble batch before taking any lock, so that
	// partitions are held only for the checks and the write. It starts at
	// about the size it will have (an event encodes to some 60 bytes), not
	// grown step by step.
	size := 0
	for _, a := range appends {
		size += 96*len(a.Batch.Events) + 64
	}
	b := s.db.NewBatchWithSize(size)
	for _, a := range appends {
		if err := s.addRecord(b, a.Partition, a.Expected, a.Batch); err != nil {
			_ = b.Close()
			return nil, err
		}
	}

	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		_ = b.Close()
		return nil, errClosed
	}
	if err := s.failure(); err != nil {
		_ = b.Close()
		return nil, err
	}
	// Lock the partitions in ascending order, so that groups never deadlock.
	parts := make([]int, 0, len(next))
	for p := range next {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		s.parts[p].mu.Lock()
	}
	defer func() {
		for _, p := range parts {
			s.parts[p].mu.Unlock()
		}
	}()
	checked := make(map[int]bool, len(parts))
	for _, a := range appends {
		if checked[a.Partition] {
			continue
		}
		checked[a.Partition] = true
		if head := s.parts[a.Partition].head.Load(); head != a.Expected {
			_ = b.Close()
			return nil, stockd.Errorf(stockd.CodeConflict, "partition %d head is %d, not the expected %d", a.Partition, head, a.Expected)
		}
	}
	if err := s.db.ApplyNoSyncWait(b, pebbledb.Sync); err != nil {
		// The batch may or may not be in the log: fail-stop. The batch is
		// not closed because Pebble may still reference it.
		return nil, s.fail(fmt.Errorf("pebble: append to partitions %v: %w", parts, err))
	}
	for p, head := range next {
		s.parts[p].head.Store(head)
	}
	return b, nil
}

// groupInfo is what an error about a group of appends names: its first
// append and how many others there were.
type groupInfo struct {
	partition int
	from, to  uint64
	others    int
}

func describe(appends []stockd.Append) groupInfo {
	a := appends[0]
	return groupInfo{a.Partition, a.Expected + 1, a.Expected + uint64(len(a.Batch.Events)), len(appends) - 1}
}

// syncWait waits for a batch begun by begin to be durable. A failed sync is
// the store's failure: it is recorded and never retried.
func (s *Store) syncWait(b *pebbledb.Batch, g groupInfo) error {
	if err := b.SyncWait(); err != nil {
		return s.fail(fmt.Errorf("pebble: sync of partition %d positions %d..%d (and %d more appends): %w",
			g.partition, g.from, g.to, g.others, err))
	}
	_ = b.Close() // the batch is durable; closing only recycles it
	return nil
}

// addRecord encodes batch into the Pebble batch b: the record, one history
// index entry per SKU, and the idempotency keys.
func (s *Store) addRecord(b *pebbledb.Batch, p int, expected uint64, batch stockd.Batch) error {
	buf := recordBuffers.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxPooledRecord {
			recordBuffers.Put(buf)
		}
	}()
	value, err := encodeEvents((*buf)[:0], batch.Events)
	if err != nil {
		return err
	}
	*buf = value
	if len(value) > maxRecordSize {
		return stockd.Errorf(stockd.CodeInvalid, "batch of %d bytes exceeds the limit of %d", len(value), maxRecordSize)
	}
	first := expected + 1
	set := func(key, value []byte) error {
		if err := b.Set(key, value, nil); err != nil {
			return fmt.Errorf("pebble: build batch: %w", err)
		}
		return nil
	}
	if err := set(eventKey(p, first), value); err != nil {
		return err
	}
	ref := make([]byte, 10)
	binary.BigEndian.PutUint16(ref[0:2], uint16(p))
	binary.BigEndian.PutUint64(ref[2:10], first)
	var indexed map[string]struct{}
	for i := range batch.Events {
		e := &batch.Events[i]
		if e.SKU == "" {
			continue
		}
		if indexed == nil {
			indexed = make(map[string]struct{})
		}
		if _, ok := indexed[e.SKU]; ok {
			continue
		}
		indexed[e.SKU] = struct{}{}
		if err := set(historyKey(e.SKU, e.Version), ref); err != nil {
			return err
		}
	}
	for _, k := range batch.Keys {
		if err := set(idempotencyKey(k.Key), keyValue(k)); err != nil {
			return err
		}
	}
	for _, r := range batch.Retired {
		if err := set(retiredKey(r.Key), retiredValue(r)); err != nil {
			return err
		}
	}
	return nil
}

// encodeEvents appends the encoding of events to dst, turning the encoder's
// panic on an event data type it does not know into a CodeInvalid error.
func encodeEvents(dst []byte, events []stockd.Event) (value []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			value, err = nil, stockd.Errorf(stockd.CodeInvalid, "cannot encode events: %v", r)
		}
	}()
	return stockd.AppendEvents(dst, events), nil
}

// recordBuffers hold encoded records until Pebble's batch has copied them
// (Set copies its arguments): a batch of hundreds of events otherwise grows
// a fresh buffer step by step on every append.
var recordBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledRecord bounds the buffers kept for reuse.
const maxPooledRecord = 4 << 20

// ReadPartition returns up to limit events of partition p with positions
// greater than after, in position order. A limit of 0 or less means
// DefaultReadLimit.
func (s *Store) ReadPartition(ctx context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.checkPartition(p); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	if start := s.logStart(p); after < start {
		return nil, trimmedError(p, after, start)
	}
	head := s.parts[p].head.Load()
	if after >= head {
		// Consumers poll the tail often; answer without touching Pebble.
		return nil, nil
	}
	// How many events this read returns, unless appends land meanwhile:
	// the one allocation the result needs, when it cannot keep a record
	// as decoded.
	want := int(min(uint64(limit), head-after))
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	prefix := partitionPrefix(p)
	it, err := s.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebble: read partition %d: %w", p, err)
	}
	defer it.Close()

	// The record holding position after+1 is the last one whose first
	// position is at most after+1. Appending a byte to its key makes the
	// seek inclusive without computing after+2, which could overflow.
	seek := append(eventKey(p, after+1), 0)
	ok := it.SeekLT(seek)
	if !ok {
		ok = it.First()
	}
	var out []stockd.Event
	next := after + 1 // the position the next returned event must have
	for ; ok && len(out) < limit; ok = it.Next() {
		first, err := parseEventKey(it.Key())
		if err != nil {
			return nil, err
		}
		if first > next {
			if start := s.logStart(p); next <= start {
				return nil, trimmedError(p, next-1, start) // trimmed meanwhile
			}
			return nil, fmt.Errorf("pebble: %w: partition %d has no event at position %d", stockd.ErrCorrupt, p, next)
		}
		value, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble: read partition %d: %w", p, err)
		}
		events, err := stockd.DecodeEvents(value, p, first)
		if err != nil {
			return nil, fmt.Errorf("pebble: partition %d record at %d: %w", p, first, err)
		}
		if out == nil && first == next && len(events) <= limit {
			// The common case when replaying: a whole record, kept as
			// decoded rather than copied.
			out = events
			next += uint64(len(events))
			continue
		}
		if cap(out)-len(out) < len(events) {
			// Grow once, to what the read will return as the head stood
			// when it started, rather than by append's steps: replaying
			// reads thousands of events a call, and copying them again at
			// every step cost a third of recovery.
			grown := make([]stockd.Event, len(out), max(want, len(out)+len(events)))
			copy(grown, out)
			out = grown
		}
		for _, e := range events {
			if e.Position < next {
				continue
			}
			out = append(out, e)
			next++
			if len(out) == limit {
				break
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: read partition %d: %w", p, err)
	}
	return out, nil
}

// ReadSKU returns the events of one SKU in version order, as bounded by q. It
// walks the SKU's history index, which has one entry per batch that holds
// events of the SKU, and decodes the records the entries point at.
func (s *Store) ReadSKU(ctx context.Context, sku string, q stockd.SKUQuery) ([]stockd.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if strings.IndexByte(sku, 0) >= 0 {
		return nil, stockd.Errorf(stockd.CodeInvalid, "SKU contains a NUL byte")
	}
	if sku == "" || q.AfterVersion == math.MaxUint64 {
		// Events without a SKU are not indexed and belong to no history.
		return nil, nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	prefix := historyPrefix(sku)
	it, err := s.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebble: read SKU %q: %w", sku, err)
	}
	defer it.Close()

	ok := it.SeekLT(append(historyKey(sku, q.AfterVersion+1), 0))
	if !ok {
		ok = it.First()
	}
	var out []stockd.Event
	for ; ok; ok = it.Next() {
		value, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble: read SKU %q: %w", sku, err)
		}
		if len(value) != 10 {
			return nil, fmt.Errorf("pebble: %w: history entry of %d bytes for SKU %q", stockd.ErrCorrupt, len(value), sku)
		}
		p := int(binary.BigEndian.Uint16(value[0:2]))
		first := binary.BigEndian.Uint64(value[2:10])
		if q.UpToPosition != 0 && first > q.UpToPosition {
			break
		}
		events, err := s.readRecord(p, first)
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			if e.SKU != sku || e.Version <= q.AfterVersion || e.Position <= s.logStart(p) {
				continue
			}
			if q.UpToPosition != 0 && e.Position > q.UpToPosition {
				return out, nil
			}
			if !q.UpToTime.IsZero() && e.Time.After(q.UpToTime) {
				return out, nil
			}
			out = append(out, e)
			if q.Limit > 0 && len(out) >= q.Limit {
				return out, nil
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: read SKU %q: %w", sku, err)
	}
	return out, nil
}

// readRecord reads and decodes the record of partition p that starts at
// position first.
func (s *Store) readRecord(p int, first uint64) ([]stockd.Event, error) {
	value, closer, err := s.db.Get(eventKey(p, first))
	if errors.Is(err, pebbledb.ErrNotFound) {
		if first <= s.logStart(p) {
			return nil, nil // trimmed since the history entry was read
		}
		return nil, fmt.Errorf("pebble: %w: history points at missing record %d of partition %d", stockd.ErrCorrupt, first, p)
	}
	if err != nil {
		return nil, fmt.Errorf("pebble: read record %d of partition %d: %w", first, p, err)
	}
	defer closer.Close()
	events, err := stockd.DecodeEvents(value, p, first)
	if err != nil {
		return nil, fmt.Errorf("pebble: partition %d record at %d: %w", p, first, err)
	}
	return events, nil
}

// partitionPrefix is the prefix of the records of partition p.
func partitionPrefix(p int) []byte {
	k := make([]byte, 3, 11)
	k[0] = prefixEvents
	binary.BigEndian.PutUint16(k[1:], uint16(p))
	return k
}

// eventKey is the key of the record of partition p whose first event has
// position first.
func eventKey(p int, first uint64) []byte {
	k := make([]byte, 11, 12)
	k[0] = prefixEvents
	binary.BigEndian.PutUint16(k[1:3], uint16(p))
	binary.BigEndian.PutUint64(k[3:11], first)
	return k
}

// parseEventKey returns the first position named by a record key.
func parseEventKey(k []byte) (uint64, error) {
	if len(k) != 11 || k[0] != prefixEvents {
		return 0, fmt.Errorf("pebble: %w: event key %x", stockd.ErrCorrupt, k)
	}
	return binary.BigEndian.Uint64(k[3:11]), nil
}

// historyPrefix is the prefix of the history index entries of sku. The NUL
// terminator keeps the entries of "A" apart from those of "AB".
func historyPrefix(sku string) []byte {
	k := make([]byte, 0, len(sku)+11)
	k = append(k, prefixHistory)
	k = append(k, sku...)
	return append(k, 0)
}

// historyKey is the index key of the batch in which sku's events start at
// version.
func historyKey(sku string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(historyPrefix(sku), version)
}
