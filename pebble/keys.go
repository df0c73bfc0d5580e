package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/stockd/stockd"
)

// LookupKey returns the record of an idempotency key, and false if the key was
// never recorded.
func (s *Store) LookupKey(ctx context.Context, key string) (stockd.KeyRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return stockd.KeyRecord{}, false, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return stockd.KeyRecord{}, false, errClosed
	}
	return s.lookupKey(key)
}

// lookupKey is LookupKey for callers that hold closeMu.
func (s *Store) lookupKey(key string) (stockd.KeyRecord, bool, error) {
	value, closer, err := s.db.Get(idempotencyKey(key))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return stockd.KeyRecord{}, false, nil
	}
	if err != nil {
		return stockd.KeyRecord{}, false, fmt.Errorf("pebble: look up key %q: %w", key, err)
	}
	defer closer.Close()
	if len(value) != 18 {
		return stockd.KeyRecord{}, false, fmt.Errorf("pebble: %w: key record of %d bytes for %q", stockd.ErrCorrupt, len(value), key)
	}
	return stockd.KeyRecord{
		Key:         key,
		Partition:   int(binary.BigEndian.Uint16(value[0:2])),
		Position:    binary.BigEndian.Uint64(value[2:10]),
		Fingerprint: binary.BigEndian.Uint64(value[10:18]),
	}, true, nil
}

// idempotencyKey is the key of an idempotency record.
func idempotencyKey(key string) []byte {
	k := make([]byte, 0, len(key)+1)
	k = append(k, prefixKey)
	return append(k, key...)
}
