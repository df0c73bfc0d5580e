package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/stockd/stockd"
)

// Records live under their own prefix, keyed by kind, a NUL byte and key, so
// that one kind is one contiguous range listed in key order. They are small
// and written rarely (a subscription acknowledged, a command queued, a file
// imported), each in a synced batch of its own. Every write takes recordMu:
// CreateRecord's check and write must not interleave with another write of
// the same record, and record writes are too rare for one lock to matter.

// recordKey is the key of the record kind/key.
func recordKey(kind, key string) []byte {
	k := make([]byte, 0, len(kind)+len(key)+2)
	k = append(k, prefixRecord)
	k = append(k, kind...)
	k = append(k, 0)
	return append(k, key...)
}

// PutRecord implements stockd.Records.
func (s *Store) PutRecord(ctx context.Context, kind, key string, value []byte) error {
	_, err := s.writeRecord(ctx, kind, key, value, false)
	return err
}

// CreateRecord implements stockd.Records.
func (s *Store) CreateRecord(ctx context.Context, kind, key string, value []byte) (bool, error) {
	return s.writeRecord(ctx, kind, key, value, true)
}

func (s *Store) writeRecord(ctx context.Context, kind, key string, value []byte, onlyNew bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := stockd.CheckRecord(kind, key, value); err != nil {
		return false, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return false, errClosed
	}
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	k := recordKey(kind, key)
	if onlyNew {
		switch _, closer, err := s.db.Get(k); {
		case err == nil:
			_ = closer.Close()
			return false, nil
		case !errors.Is(err, pebbledb.ErrNotFound):
			return false, fmt.Errorf("pebble: read record %s/%s: %w", kind, key, err)
		}
	}
	b := s.db.NewBatchWithSize(len(k) + len(value) + 16)
	if err := b.Set(k, value, nil); err != nil {
		_ = b.Close()
		return false, fmt.Errorf("pebble: write record %s/%s: %w", kind, key, err)
	}
	if err := s.commit(b); err != nil {
		return false, fmt.Errorf("pebble: write record %s/%s: %w", kind, key, err)
	}
	return true, nil
}

// GetRecord implements stockd.Records.
func (s *Store) GetRecord(ctx context.Context, kind, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if err := stockd.CheckRecord(kind, key, nil); err != nil {
		return nil, false, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, false, errClosed
	}
	v, closer, err := s.db.Get(recordKey(kind, key))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pebble: read record %s/%s: %w", kind, key, err)
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// DeleteRecord implements stockd.Records.
func (s *Store) DeleteRecord(ctx context.Context, kind, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := stockd.CheckRecord(kind, key, nil); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	b := s.db.NewBatch()
	if err := b.Delete(recordKey(kind, key), nil); err != nil {
		_ = b.Close()
		return fmt.Errorf("pebble: delete record %s/%s: %w", kind, key, err)
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("pebble: delete record %s/%s: %w", kind, key, err)
	}
	return nil
}

// ListRecords implements stockd.Records.
func (s *Store) ListRecords(ctx context.Context, kind, after string, limit int) ([]stockd.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := stockd.CheckRecordName("kind", kind); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	lower := recordKey(kind, after)
	if after != "" {
		lower = append(lower, 0) // the smallest key after "after"
	}
	it, err := s.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(recordKey(kind, ""))})
	if err != nil {
		return nil, fmt.Errorf("pebble: list records %s: %w", kind, err)
	}
	defer it.Close()
	start := len(kind) + 2
	var out []stockd.Record
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble: list records %s: %w", kind, err)
		}
		out = append(out, stockd.Record{Key: string(it.Key()[start:]), Value: bytes.Clone(v)})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: list records %s: %w", kind, err)
	}
	return out, nil
}

var _ stockd.Records = (*Store)(nil)
