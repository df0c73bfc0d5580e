package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/stockd/stockd"
)

// MaxCheckpointStateSize bounds the state saved with one checkpoint, for the
// same reason as MaxSnapshotSize: it is written in one Pebble batch.
const MaxCheckpointStateSize = MaxSnapshotSize

// checkpointStripes is the number of locks that order writers of checkpoints.
const checkpointStripes = 64

// Checkpoint returns consumer's checkpoint in partition p, and the zero
// Checkpoint if it never saved one. The header and the chunks of the state
// are read through one iterator, which sees one consistent version of the
// database, so a concurrent SetCheckpoint cannot tear the result.
func (s *Store) Checkpoint(ctx context.Context, consumer string, p int) (stockd.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return stockd.Checkpoint{}, err
	}
	if err := s.checkPartition(p); err != nil {
		return stockd.Checkpoint{}, err
	}
	if err := checkConsumer(consumer); err != nil {
		return stockd.Checkpoint{}, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return stockd.Checkpoint{}, errClosed
	}
	key := checkpointKey(consumer, p)
	it, err := s.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: key, UpperBound: prefixEnd(key)})
	if err != nil {
		return stockd.Checkpoint{}, fmt.Errorf("pebble: read checkpoint %q of partition %d: %w", consumer, p, err)
	}
	defer it.Close()
	if !it.First() {
		return stockd.Checkpoint{}, it.Error()
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("pebble: %w: checkpoint %q of partition %d: %s", stockd.ErrCorrupt, consumer, p, fmt.Sprintf(format, args...))
	}
	if !bytes.Equal(it.Key(), key) {
		return stockd.Checkpoint{}, corrupt("state chunk without a header")
	}
	header, err := it.ValueAndErr()
	if err != nil {
		return stockd.Checkpoint{}, err
	}
	pos, size, chunks, err := parseCheckpointHeader(header)
	if err != nil {
		return stockd.Checkpoint{}, corrupt("%v", err)
	}
	c := stockd.Checkpoint{Position: pos}
	if size == 0 {
		return c, nil
	}
	if c.State, err = readChunks(it, key, size, chunks, corrupt); err != nil {
		return stockd.Checkpoint{}, err
	}
	return c, nil
}

// SetCheckpoint durably records consumer's checkpoint in partition p,
// replacing the previous one; it may move backwards. The header (position and
// the state's length) and the state, in chunks of 1 MiB like a snapshot's, are
// written in one synced batch together with the deletion of the previous
// state's surplus chunks, so that a crash leaves the old checkpoint or the new
// one, whole.
//
// The previous header is read to learn how many chunks to delete, rather than
// deleting a key range: a consumer saves every few seconds per partition, and
// a range tombstone per save would pile up in the memtable and slow every
// read of the store until compacted away.
func (s *Store) SetCheckpoint(ctx context.Context, consumer string, p int, c stockd.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkPartition(p); err != nil {
		return err
	}
	if err := checkConsumer(consumer); err != nil {
		return err
	}
	if len(c.State) > MaxCheckpointStateSize {
		return stockd.Errorf(stockd.CodeInvalid, "checkpoint state of %d bytes exceeds the limit of %d", len(c.State), MaxCheckpointStateSize)
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	key := checkpointKey(consumer, p)
	// The previous header must not change between reading it and writing
	// the new one, or the chunks of a larger state written meanwhile would
	// be left behind; writers of one checkpoint take turns.
	mu := &s.checkpointMu[checkpointStripe(key)]
	mu.Lock()
	defer mu.Unlock()

	chunks := chunkCount(len(c.State))
	b := s.db.NewBatchWithSize(chunkedBatchSize(len(c.State)))
	fail := func(err error) error {
		_ = b.Close()
		return fmt.Errorf("pebble: set checkpoint %q of partition %d: %w", consumer, p, err)
	}
	var old uint32
	switch value, closer, err := s.db.Get(key); {
	case errors.Is(err, pebbledb.ErrNotFound):
	case err != nil:
		return fail(err)
	default:
		_, _, n, perr := parseCheckpointHeader(value)
		_ = closer.Close()
		if perr != nil {
			// Nothing says how many chunks there are: delete them all.
			if err := b.DeleteRange(chunkKey(key, 0), prefixEnd(key), nil); err != nil {
				return fail(err)
			}
		}
		old = n
	}
	var header [20]byte
	binary.BigEndian.PutUint64(header[0:8], c.Position)
	binary.BigEndian.PutUint64(header[8:16], uint64(len(c.State)))
	binary.BigEndian.PutUint32(header[16:20], uint32(chunks))
	if err := b.Set(key, header[:], nil); err != nil {
		return fail(err)
	}
	if err := setChunks(b, key, c.State); err != nil {
		return fail(err)
	}
	for i := uint32(chunks); i < old; i++ {
		if err := b.Delete(chunkKey(key, i), nil); err != nil {
			return fail(err)
		}
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("pebble: set checkpoint %q of partition %d: %w", consumer, p, err)
	}
	return nil
}

// parseCheckpointHeader decodes a checkpoint header: the position, the length
// of the state and the number of its chunks. An 8-byte header is the position
// alone, as stores written before checkpoints carried state hold it.
func parseCheckpointHeader(v []byte) (pos, size uint64, chunks uint32, err error) {
	switch len(v) {
	case 8:
		return binary.BigEndian.Uint64(v), 0, 0, nil
	case 20:
		pos = binary.BigEndian.Uint64(v[0:8])
		size = binary.BigEndian.Uint64(v[8:16])
		chunks = binary.BigEndian.Uint32(v[16:20])
		if size > uint64(chunks)*chunkSize || size > MaxCheckpointStateSize || (size == 0) != (chunks == 0) {
			return 0, 0, 0, fmt.Errorf("state length %d in %d chunks", size, chunks)
		}
		return pos, size, chunks, nil
	}
	return 0, 0, 0, fmt.Errorf("header of %d bytes", len(v))
}

// checkpointStripe picks the lock that orders the writers of one checkpoint.
func checkpointStripe(key []byte) int {
	h := uint32(2166136261) // FNV-1a
	for _, c := range key {
		h = (h ^ uint32(c)) * 16777619
	}
	return int(h % checkpointStripes)
}

// checkConsumer rejects a consumer name that would make checkpoint keys
// ambiguous.
func checkConsumer(consumer string) error {
	if strings.IndexByte(consumer, 0) >= 0 {
		return stockd.Errorf(stockd.CodeInvalid, "consumer name contains a NUL byte")
	}
	return nil
}

// checkpointKey is the key of the header of consumer's checkpoint in
// partition p. Consumer names hold no NUL byte, so the terminator keeps the
// keys of "project" apart from those of "projector".
func checkpointKey(consumer string, p int) []byte {
	k := make([]byte, 0, len(consumer)+8)
	k = append(k, prefixCheckpoint)
	k = append(k, consumer...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint16(k, uint16(p))
}
