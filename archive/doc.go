// Package archive is stockd's cold storage: it moves a partition's old events
// out of the embedded store into compressed, checksummed segments in a blob
// store named by URL (gocloud.dev/blob: file://, s3://, gs://, azblob://, and
// mem:// in tests), and serves them back so that every reader sees one
// gap-free log.
//
// Three parts:
//
//   - Archiver, a background loop off the hot path, writes the events of a
//     partition that are older than a configured age, behind the partition's
//     latest snapshot and behind every consumer checkpoint, as one segment,
//     then trims them from the store (stockd.Trimmer) in bounded chunks.
//   - Log wraps a stockd.Log whose store trims: reads below the store's log
//     start are served from segments (with a small cache of decompressed
//     segments), the rest from the store, merged at the boundary.
//   - Verify checks every segment against its checksums and the log's
//     continuity (stockd archive verify).
//
// # Segments
//
// A segment holds the consecutive events first..last of one partition, under
// the object name p<partition:05d>/<first:020d>.seg. The name depends only on
// the partition and the first position, which is always the store's log start
// plus one when the segment is written, so an archiving pass that is
// interrupted and run again overwrites the same object rather than writing a
// second copy of the events.
//
// The object is a fixed header, then the SKU index, then the events, both
// compressed with zstd:
//
//	magic "STKDSEG1"
//	partition u16, first u64, last u64, count u32,
//	min time i64, max time i64 (Unix nanoseconds),
//	index length u64, data length u64 (compressed bytes),
//	index CRC-32C u32, data CRC-32C u32 (of the compressed bytes),
//	header CRC-32C u32 (of everything before it)          all big-endian
//	index: zstd(count uvarint, then per SKU in SKU order: SKU (uvarint
//	       length + bytes), first version, last version, first position,
//	       last position, number of events, all uvarint)
//	data:  zstd(stockd.AppendEvents of the events)
//
// The index lets a read of one SKU's history skip, with one small range read
// per segment (cached), every segment that holds none of its wanted versions,
// without fetching or decompressing the events.
//
// # Crash safety
//
// A pass over a partition (1) writes the segment and makes it durable (for
// file:// the file and its directory are fsynced), (2) records the new log
// start in the store (stockd.Trimmer.SetLogStart, synced), and (3) deletes the
// trimmed events in bounded chunks. A crash after (1) leaves an object beyond
// the log start, which readers ignore and the next pass overwrites; after (2)
// the events are hidden from the store and served from the segment, and the
// first pass after a restart completes (3). Nothing is lost and nothing is
// archived twice at any point.
package archive
