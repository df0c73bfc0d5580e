package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/stockd/stockd"
)

// Trimming (stockd.Trimmer) removes a partition's oldest events once cold
// storage holds them. The log start of partition p, the position of its last
// trimmed event, is kept under the key 't' + p(2) as 8 bytes, and in memory
// in trimState. SetLogStart writes it in a synced batch before anything is
// deleted, and every read checks it, so a reader never sees a half-trimmed
// range: ReadPartition refuses to read from below the start, and ReadSKU skips
// events at or below it, whether or not Trim has deleted them yet.
//
// Trim deletes whole records (a record is one appended batch) whose last
// position is at or below the start, together with the history entries that
// point at them, in unsynced batches of bounded size: a deletion lost in a
// crash is redone by the next Trim, and the synced start already hides what it
// would have deleted. A record that straddles the start is kept whole; its
// events at or below the start stay hidden. Idempotency records, snapshots and
// checkpoints are never touched.
//
// The head never moves: a partition trimmed to its head has no records left,
// so Open takes the head to be at least the log start.

// prefixTrim is the prefix of the log-start keys.
const prefixTrim = 't'

// trimState is the log start of every partition.
type trimState struct {
	// mu orders SetLogStart and Trim, which are rare and never on the
	// append path.
	mu    sync.Mutex
	start []atomic.Uint64
}

var _ stockd.Trimmer = (*Store)(nil)

// trimKey is the key of partition p's log start.
func trimKey(p int) []byte {
	return binary.BigEndian.AppendUint16([]byte{prefixTrim}, uint16(p))
}

// loadTrims reads the log start of every partition, after loadHeads, and
// raises the head of a partition trimmed to its end, which has no record
// left to learn it from.
func (s *Store) loadTrims() error {
	s.trim.start = make([]atomic.Uint64, s.partitions)
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{prefixTrim}, UpperBound: []byte{prefixTrim + 1}})
	if err != nil {
		return fmt.Errorf("pebble: load log starts: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("pebble: load log starts: %w", err)
		}
		if len(k) != 3 || len(v) != 8 {
			return fmt.Errorf("pebble: %w: log start key %x value of %d bytes", stockd.ErrCorrupt, k, len(v))
		}
		p := int(binary.BigEndian.Uint16(k[1:3]))
		if p >= s.partitions {
			return fmt.Errorf("pebble: %w: log start of partition %d of %d", stockd.ErrCorrupt, p, s.partitions)
		}
		start := binary.BigEndian.Uint64(v)
		s.trim.start[p].Store(start)
		if s.parts[p].head.Load() < start {
			s.parts[p].head.Store(start)
		}
	}
	return it.Error()
}

// logStart returns the log start of partition p, which must be in range.
func (s *Store) logStart(p int) uint64 {
	if s.trim.start == nil {
		return 0
	}
	return s.trim.start[p].Load()
}

// trimmedError is the error of a read from below the log start.
func trimmedError(p int, after, start uint64) error {
	return &stockd.Error{
		Code:    stockd.CodeNotFound,
		Message: fmt.Sprintf("partition %d is trimmed up to position %d; position %d is in cold storage", p, start, after+1),
		Err:     stockd.ErrTrimmed,
	}
}

// LogStart returns the position of the last trimmed event of partition p.
func (s *Store) LogStart(ctx context.Context, p int) (uint64, error) {
	if err := s.checkPartition(p); err != nil {
		return 0, err
	}
	return s.logStart(p), nil
}

// SetLogStart durably records that partition p is trimmed up to start.
func (s *Store) SetLogStart(ctx context.Context, p int, start uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkPartition(p); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	s.trim.mu.Lock()
	defer s.trim.mu.Unlock()
	if start <= s.logStart(p) {
		return nil
	}
	if head := s.parts[p].head.Load(); start > head {
		return stockd.Errorf(stockd.CodeInvalid, "cannot trim partition %d to %d beyond its head %d", p, start, head)
	}
	b := s.db.NewBatch()
	if err := b.Set(trimKey(p), binary.BigEndian.AppendUint64(nil, start), nil); err != nil {
		_ = b.Close()
		return fmt.Errorf("pebble: set log start of partition %d: %w", p, err)
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("pebble: set log start of partition %d to %d: %w", p, start, err)
	}
	s.trim.start[p].Store(start)
	return nil
}

// Trim deletes up to about maxEvents events of partition p at or below its
// log start, in one unsynced batch, and reports whether more remain.
func (s *Store) Trim(ctx context.Context, p int, maxEvents int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := s.checkPartition(p); err != nil {
		return false, err
	}
	if maxEvents <= 0 {
		maxEvents = DefaultReadLimit
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return false, errClosed
	}
	if err := s.failure(); err != nil {
		return false, err
	}
	s.trim.mu.Lock()
	defer s.trim.mu.Unlock()
	start := s.logStart(p)
	if start == 0 {
		return false, nil
	}
	prefix := partitionPrefix(p)
	it, err := s.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: prefix, UpperBound: eventKey(p, start+1)})
	if err != nil {
		return false, fmt.Errorf("pebble: trim partition %d: %w", p, err)
	}
	defer it.Close()
	b := s.db.NewBatch()
	deleted := 0
	more := false
	for ok := it.First(); ok; ok = it.Next() {
		if deleted >= maxEvents {
			more = true
			break
		}
		first, err := parseEventKey(it.Key())
		if err != nil {
			_ = b.Close()
			return false, err
		}
		value, err := it.ValueAndErr()
		if err != nil {
			_ = b.Close()
			return false, fmt.Errorf("pebble: trim partition %d: %w", p, err)
		}
		events, err := stockd.DecodeEvents(value, p, first)
		if err != nil {
			_ = b.Close()
			return false, fmt.Errorf("pebble: partition %d record at %d: %w", p, first, err)
		}
		if first+uint64(len(events))-1 > start {
			break // straddles the start: kept until the start passes its end
		}
		if err := b.Delete(bytes.Clone(it.Key()), nil); err != nil {
			_ = b.Close()
			return false, err
		}
		// The history entries addRecord wrote for this record: one per
		// SKU, at the version of the SKU's first event in the record.
		seen := make(map[string]struct{})
		for _, e := range events {
			if e.SKU == "" {
				continue
			}
			if _, ok := seen[e.SKU]; ok {
				continue
			}
			seen[e.SKU] = struct{}{}
			if err := b.Delete(historyKey(e.SKU, e.Version), nil); err != nil {
				_ = b.Close()
				return false, err
			}
		}
		deleted += len(events)
	}
	if err := it.Error(); err != nil {
		_ = b.Close()
		return false, fmt.Errorf("pebble: trim partition %d: %w", p, err)
	}
	if b.Empty() {
		_ = b.Close()
		return false, nil
	}
	// Unsynced: the synced log start already hides these events, and a
	// deletion lost in a crash is redone by the next Trim. A later synced
	// write syncs it anyway, Pebble's log being sequential.
	if err := s.db.Apply(b, pebbledb.NoSync); err != nil {
		return false, s.fail(fmt.Errorf("pebble: trim partition %d: %w", p, err))
	}
	_ = b.Close()
	return more, nil
}

// Consumers returns the names of the consumers that have saved a checkpoint,
// seeking past each consumer's keys rather than reading them all.
func (s *Store) Consumers(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	it, err := s.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: []byte{prefixCheckpoint}, UpperBound: []byte{prefixCheckpoint + 1}})
	if err != nil {
		return nil, fmt.Errorf("pebble: list consumers: %w", err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; {
		k := it.Key()
		end := bytes.IndexByte(k[1:], 0)
		if end < 0 {
			return nil, fmt.Errorf("pebble: %w: checkpoint key %x", stockd.ErrCorrupt, k)
		}
		name := string(k[1 : 1+end])
		out = append(out, name)
		// Every key of this consumer starts with 'c' name 0; the next
		// consumer's keys sort after 'c' name 1.
		next := append([]byte{prefixCheckpoint}, name...)
		ok = it.SeekGE(append(next, 1))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: list consumers: %w", err)
	}
	return out, nil
}

// DeleteConsumer deletes every checkpoint of consumer, headers and state
// chunks of every partition, with one range deletion in one synced batch: all
// or nothing. The range is 'c' name 0 up to 'c' name 1, which holds this
// consumer's keys and no other's, since names hold no NUL byte. A range
// tombstone is cheap here: consumers are deleted rarely, unlike checkpoints,
// which are saved every few seconds (see SetCheckpoint).
func (s *Store) DeleteConsumer(ctx context.Context, consumer string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkConsumer(consumer); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	start := append([]byte{prefixCheckpoint}, consumer...)
	end := append(slices.Clone(start), 1)
	start = append(start, 0)
	b := s.db.NewBatch()
	if err := b.DeleteRange(start, end, nil); err != nil {
		_ = b.Close()
		return fmt.Errorf("pebble: delete consumer %q: %w", consumer, err)
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("pebble: delete consumer %q: %w", consumer, err)
	}
	return nil
}
