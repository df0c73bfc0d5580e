package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/stockd/stockd"
)

// Idempotency records are written with the events of the batch that names
// them, in the same Pebble batch, so that after a crash both are present or
// neither is. Nothing in this package reads them back: the store does not
// implement stockd.KeyGuard, because the engine that owns it keeps every key
// in memory and a read per key would cost the hot path more than the whole
// decision.

// idempotencyKey is the key of an idempotency record.
func idempotencyKey(key string) []byte {
	k := make([]byte, 0, len(key)+1)
	k = append(k, prefixKey)
	return append(k, key...)
}

// keyValue encodes an idempotency record: partition(2) position(8)
// fingerprint(8).
func keyValue(k stockd.KeyRecord) []byte {
	v := make([]byte, 18)
	binary.BigEndian.PutUint16(v[0:2], uint16(k.Partition))
	binary.BigEndian.PutUint64(v[2:10], k.Position)
	binary.BigEndian.PutUint64(v[10:18], k.Fingerprint)
	return v
}

// Retired records are written with the events of the batch that retires
// their entities, like idempotency records, and are read back one at a time
// when a retired id comes up again. They are point lookups in a key space of
// their own: the bloom filters of Pebble's tables answer "never retired" for
// a new id without reading a block, and a hit costs one block read, cached
// like any other.

// retiredKey is the key of the retired record of an idempotency key.
func retiredKey(key string) []byte {
	k := make([]byte, 0, len(key)+1)
	k = append(k, prefixRetired)
	return append(k, key...)
}

// retiredValue encodes a retired record: partition(2) position(8) data.
func retiredValue(r stockd.RetiredRecord) []byte {
	v := make([]byte, 10, 10+len(r.Data))
	binary.BigEndian.PutUint16(v[0:2], uint16(r.Partition))
	binary.BigEndian.PutUint64(v[2:10], r.Position)
	return append(v, r.Data...)
}

// LookupRetired returns the retired record of key, and false if none was
// written.
func (s *Store) LookupRetired(ctx context.Context, key string) (stockd.RetiredRecord, bool, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return stockd.RetiredRecord{}, false, errClosed
	}
	value, closer, err := s.db.Get(retiredKey(key))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return stockd.RetiredRecord{}, false, nil
	}
	if err != nil {
		return stockd.RetiredRecord{}, false, fmt.Errorf("pebble: look up retired %q: %w", key, err)
	}
	defer closer.Close()
	if len(value) < 10 {
		return stockd.RetiredRecord{}, false, fmt.Errorf("pebble: %w: retired record of %q has %d bytes", stockd.ErrCorrupt, key, len(value))
	}
	return stockd.RetiredRecord{
		Key:       key,
		Partition: int(binary.BigEndian.Uint16(value[0:2])),
		Position:  binary.BigEndian.Uint64(value[2:10]),
		Data:      append([]byte(nil), value[10:]...),
	}, true, nil
}
