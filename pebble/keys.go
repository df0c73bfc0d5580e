package pebble

import (
	"encoding/binary"

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
