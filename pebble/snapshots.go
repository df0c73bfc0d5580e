package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/stockd/stockd"
)

// MaxSnapshotSize bounds the data of one snapshot. A snapshot is written in
// one Pebble batch, and Pebble cannot hold a batch of 4 GiB or more.
const MaxSnapshotSize = 3 << 30

// SaveSnapshot durably stores a snapshot in 1 MiB chunks, deleting the
// partition's snapshots at the same or lower positions in the same synced
// batch, so that a crash leaves either the old snapshot or the new one.
func (s *Store) SaveSnapshot(ctx context.Context, snap stockd.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkPartition(snap.Partition); err != nil {
		return err
	}
	if len(snap.Data) > MaxSnapshotSize {
		return stockd.Errorf(stockd.CodeInvalid, "snapshot of %d bytes exceeds the limit of %d", len(snap.Data), MaxSnapshotSize)
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	p, pos := snap.Partition, snap.Position
	b := s.db.NewBatchWithSize(chunkedBatchSize(len(snap.Data)))
	start := partitionSnapshotPrefix(p)
	var end []byte
	if pos == math.MaxUint64 {
		end = prefixEnd(start)
	} else {
		end = snapshotKey(p, pos+1)
	}
	if err := b.DeleteRange(start, end, nil); err != nil {
		_ = b.Close()
		return fmt.Errorf("pebble: save snapshot: %w", err)
	}
	var header [12]byte
	binary.BigEndian.PutUint64(header[0:8], uint64(len(snap.Data)))
	binary.BigEndian.PutUint32(header[8:12], uint32(chunkCount(len(snap.Data))))
	if err := b.Set(snapshotKey(p, pos), header[:], nil); err != nil {
		_ = b.Close()
		return fmt.Errorf("pebble: save snapshot: %w", err)
	}
	if err := setChunks(b, snapshotKey(p, pos), snap.Data); err != nil {
		_ = b.Close()
		return fmt.Errorf("pebble: save snapshot: %w", err)
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("pebble: save snapshot of partition %d at %d: %w", p, pos, err)
	}
	return nil
}

// LoadSnapshot returns the snapshot of partition p with the highest position,
// and false if there is none. A snapshot whose chunks do not add up to its
// recorded length is reported as corrupt rather than returned.
func (s *Store) LoadSnapshot(ctx context.Context, p int) (stockd.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return stockd.Snapshot{}, false, err
	}
	if err := s.checkPartition(p); err != nil {
		return stockd.Snapshot{}, false, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return stockd.Snapshot{}, false, errClosed
	}
	prefix := partitionSnapshotPrefix(p)
	it, err := s.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return stockd.Snapshot{}, false, fmt.Errorf("pebble: load snapshot of partition %d: %w", p, err)
	}
	defer it.Close()
	if !it.Last() {
		return stockd.Snapshot{}, false, it.Error()
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("pebble: %w: snapshot of partition %d: %s", stockd.ErrCorrupt, p, fmt.Sprintf(format, args...))
	}
	key := it.Key()
	if len(key) < len(prefix)+8 {
		return stockd.Snapshot{}, false, corrupt("key of %d bytes", len(key))
	}
	pos := binary.BigEndian.Uint64(key[len(prefix):])
	if !it.SeekGE(snapshotKey(p, pos)) || !bytes.Equal(it.Key(), snapshotKey(p, pos)) {
		if err := it.Error(); err != nil {
			return stockd.Snapshot{}, false, err
		}
		return stockd.Snapshot{}, false, corrupt("no header at position %d", pos)
	}
	header, err := it.ValueAndErr()
	if err != nil {
		return stockd.Snapshot{}, false, err
	}
	if len(header) != 12 {
		return stockd.Snapshot{}, false, corrupt("header of %d bytes", len(header))
	}
	size := binary.BigEndian.Uint64(header[0:8])
	chunks := binary.BigEndian.Uint32(header[8:12])
	if size > uint64(chunks)*chunkSize || size > math.MaxInt {
		return stockd.Snapshot{}, false, corrupt("length %d in %d chunks", size, chunks)
	}
	data, err := readChunks(it, snapshotKey(p, pos), size, chunks, corrupt)
	if err != nil {
		return stockd.Snapshot{}, false, err
	}
	return stockd.Snapshot{Partition: p, Position: pos, Data: data}, true, nil
}

// partitionSnapshotPrefix is the prefix of the snapshots of partition p.
func partitionSnapshotPrefix(p int) []byte {
	k := make([]byte, 3, 15)
	k[0] = prefixSnapshot
	binary.BigEndian.PutUint16(k[1:], uint16(p))
	return k
}

// snapshotKey is the key of the header of partition p's snapshot at pos.
func snapshotKey(p int, pos uint64) []byte {
	return binary.BigEndian.AppendUint64(partitionSnapshotPrefix(p), pos)
}
