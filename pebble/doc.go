// Package pebble implements stockd.Store on Pebble, CockroachDB's embedded
// LSM key-value engine, with every append synced to its write-ahead log.
//
// # Key layout
//
// All integers are big-endian so that the byte order of keys is their numeric
// order, which is what makes seeks by position and version work.
//
//	m                                   -> format version (uint32), partitions (uint32)
//	e partition(u16) firstPosition(u64) -> stockd.AppendEvents of one appended batch
//	h sku 0x00 firstVersion(u64)        -> partition(u16), batch first position(u64)
//	k key                               -> partition(u16), position(u64), fingerprint(u64)
//	s partition(u16) position(u64)      -> snapshot length(u64), chunk count(u32)
//	s partition(u16) position(u64) chunk(u32) -> up to 1 MiB of snapshot data
//	c consumer 0x00 partition(u16)      -> position(u64), state length(u64), chunk count(u32)
//	c consumer 0x00 partition(u16) chunk(u32) -> up to 1 MiB of the consumer's state
//
// A checkpoint header of 8 bytes, the position alone, is what stores written
// before checkpoints carried state hold; it reads as a checkpoint without state.
//
// A batch is stored as one record rather than one key an event because a
// record per batch syncs about twice as fast and reads back with one seek.
// The SKU history index has one entry per SKU and batch, pointing at the
// record; a reader decodes the record and picks out that SKU's events.
//
// # Files
//
// store.go opens and closes the store (Options, the lock on the data
// directory, the meta record, fail-stop); log.go appends and reads events and
// keeps the SKU history index; keys.go writes the idempotency records;
// snapshots.go and checkpoints.go store the two kinds of chunked values, and
// chunks.go the chunking they share.
package pebble
