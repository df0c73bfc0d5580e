package pebble

import (
	"bytes"
	"encoding/binary"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// A chunked value is how a snapshot, or the state saved with a checkpoint, is
// stored: a header key, whose value records the length and the number of
// chunks, followed by the chunks, each under the header key extended by its
// 4-byte index. Chunk keys extend the header key, so one scan from the header
// reads the whole value, and the header and the chunks are written in one
// batch, so a crash leaves all of them or none.

// chunkSize is the size of the pieces a chunked value is split into. Pebble
// keeps a value whole in one block, so a value of hundreds of megabytes would
// be read, cached and compacted as one piece; 1 MiB pieces stream.
const chunkSize = 1 << 20

// chunkCount returns the number of chunks a value of n bytes is split into.
func chunkCount(n int) int {
	return (n + chunkSize - 1) / chunkSize
}

// chunkedBatchSize is the size to give a batch that writes a chunked value
// of n bytes, with room for the keys of its header and chunks and for a
// deletion or two, so that the batch is not grown while it is filled.
func chunkedBatchSize(n int) int {
	return n + 64*(chunkCount(n)+2)
}

// chunkKey is the key of chunk i of the value whose header is at header.
func chunkKey(header []byte, i uint32) []byte {
	return binary.BigEndian.AppendUint32(bytes.Clone(header), i)
}

// setChunks adds value to b in chunkCount(len(value)) chunks under the header
// key header. The caller writes the header itself, since what it records
// besides the length differs between kinds of values.
func setChunks(b *pebbledb.Batch, header, value []byte) error {
	for i := 0; i < chunkCount(len(value)); i++ {
		data := value[i*chunkSize : min(len(value), (i+1)*chunkSize)]
		if err := b.Set(chunkKey(header, uint32(i)), data, nil); err != nil {
			return err
		}
	}
	return nil
}

// readChunks reads the chunks of the value whose header is at header, which
// its header says are size bytes in chunks pieces, from the entries that
// follow it positioned on the header. Chunks that are missing or do not add
// up to size are reported with corrupt, which names the value, rather than
// returned.
func readChunks(it *pebbledb.Iterator, header []byte, size uint64, chunks uint32, corrupt func(format string, args ...any) error) ([]byte, error) {
	data := make([]byte, 0, size)
	for i := uint32(0); i < chunks; i++ {
		if !it.Next() || !bytes.Equal(it.Key(), chunkKey(header, i)) {
			if err := it.Error(); err != nil {
				return nil, err
			}
			return nil, corrupt("chunk %d of %d missing", i, chunks)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		if uint64(len(data))+uint64(len(v)) > size {
			return nil, corrupt("chunks exceed length %d", size)
		}
		data = append(data, v...)
	}
	if uint64(len(data)) != size {
		return nil, corrupt("%d bytes, want %d", len(data), size)
	}
	return data, nil
}
