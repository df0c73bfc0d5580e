package pebble

import ()

// snapshotChunk is the size of the pieces a snapshot, or the state saved with
// a checkpoint, is split into. Pebble
// keeps a value whole in one block, so a value of hundreds of megabytes would
// be read, cached and compacted as one piece; 1 MiB pieces stream.
const snapshotChunk = 1 << 20
