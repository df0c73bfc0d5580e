package stockd

import (
	"context"
	"time"
)

// Store is the durable source of truth: one ordered, gap-free log per
// partition, plus idempotency records, snapshots and consumer checkpoints.
// Every implementation runs the conformance suite in package storetest
// unchanged.
//
// Crash invariants, which every implementation MUST keep:
//   - Append MUST NOT return nil before its events and keys are durable
//     (fsynced, or committed by a database). After a crash every appended
//     batch is either wholly present or wholly absent, and a batch whose
//     Append returned nil is present.
//   - Positions MUST be consecutive: the events of partition p are exactly
//     positions 1..Head(p), with no gaps and no rewrites.
//   - After Append returns an error other than a conflict the outcome is
//     unknown; the caller MUST stop using the store and recover by opening it
//     again (fail-stop). A store MUST NOT retry a failed fsync.
type Store interface {
	// Partitions returns the number of partitions, fixed when the store was
	// created.
	Partitions() int

	// Head returns the position of the last event of partition p, or 0 if
	// the partition is empty.
	Head(ctx context.Context, p int) (uint64, error)

	// Append durably appends batch to partition p if and only if the
	// partition's head is expected. The events must carry partition p and
	// positions expected+1, expected+2, and so on; the batch must not be
	// empty, and must not name one key twice. If the head differs, Append
	// MUST fail with an *Error of code CodeConflict and write nothing.
	//
	// A key MUST NOT be appended if it is already recorded. The engine
	// guarantees this within its process; a store that several processes
	// share must also enforce it (see KeyGuard).
	Append(ctx context.Context, p int, expected uint64, batch Batch) error

	// ReadPartition returns up to limit events of partition p with
	// positions greater than after, in position order.
	ReadPartition(ctx context.Context, p int, after uint64, limit int) ([]Event, error)

	// ReadSKU returns the events of one SKU in version order, as bounded by
	// q.
	ReadSKU(ctx context.Context, sku string, q SKUQuery) ([]Event, error)

	// LookupKey returns the record of an idempotency key, and false if the
	// key was never recorded.
	LookupKey(ctx context.Context, key string) (KeyRecord, bool, error)

	// SaveSnapshot durably stores a snapshot. LoadSnapshot then returns it
	// until one of a later position is saved for the same partition.
	SaveSnapshot(ctx context.Context, s Snapshot) error

	// LoadSnapshot returns the snapshot of partition p with the highest
	// position, and false if there is none.
	LoadSnapshot(ctx context.Context, p int) (Snapshot, bool, error)

	// Checkpoint returns the position up to which consumer has processed
	// partition p, or 0.
	Checkpoint(ctx context.Context, consumer string, p int) (uint64, error)

	// SetCheckpoint durably records consumer's position in partition p. It
	// may move backwards, which is how a consumer is rewound to replay.
	SetCheckpoint(ctx context.Context, consumer string, p int, position uint64) error

	// Close releases the store. It must not be called while other calls are
	// in progress.
	Close() error
}

// PipelinedAppender is an optional Store capability, discovered by type
// assertion. BeginAppend checks and orders a batch exactly like Append but
// returns before the batch is durable; wait blocks until it is, or reports the
// failure. Batches begun for one partition become durable in the order they
// were begun, so a partition can decide its next batch while the previous one
// is being synced. Until wait returns nil, the batch MUST NOT be treated as
// durable, although reads may already see it.
type PipelinedAppender interface {
	BeginAppend(ctx context.Context, p int, expected uint64, batch Batch) (wait func() error, err error)
}

// KeyGuard is an optional Store capability, discovered by type assertion. A
// store that implements it rejects a batch naming a key that is already
// recorded with an *Error of code CodeConflict, writing nothing, even when two
// processes race. Stores shared by several processes (PostgreSQL) implement
// it, with a unique index. The embedded store does not: it is locked to one
// process, whose engine keeps every key in memory, and a read per key would
// cost the hot path more than the whole decision.
type KeyGuard interface {
	GuardsKeys()
}

// GroupAppender is an optional Store capability, discovered by type
// assertion. BeginAppendGroup begins the appends of several partitions as ONE
// atomic write, checked and ordered exactly as the same appends made one by
// one with PipelinedAppender (several appends of one partition must chain
// their expected heads); if any is refused, none is written. wait blocks until
// all of them are durable. It lets an engine with many partitions pay one
// write, not one per partition, for each group commit.
type GroupAppender interface {
	BeginAppendGroup(ctx context.Context, appends []Append) (wait func() error, err error)
}

// Append is one partition's part of a group append.
type Append struct {
	Partition int
	Expected  uint64
	Batch     Batch
}

// Batch is what one Append writes atomically.
type Batch struct {
	// Events are consecutive events of one partition.
	Events []Event
	// Keys are idempotency records written with the events.
	Keys []KeyRecord
}

// KeyRecord remembers that an idempotency key was accepted: where, at which
// position, and for which request.
type KeyRecord struct {
	Key         string
	Partition   int
	Position    uint64
	Fingerprint uint64
}

// SKUQuery bounds a read of one SKU's events.
type SKUQuery struct {
	// AfterVersion skips events with versions up to and including it.
	AfterVersion uint64
	// UpToPosition, when non-zero, stops before events with a greater
	// partition position.
	UpToPosition uint64
	// UpToTime, when non-zero, stops before events that happened after it.
	UpToTime time.Time
	// Limit, when positive, bounds the number of events returned.
	Limit int
}

// Snapshot is an encoded partition State as of a position.
type Snapshot struct {
	Partition int
	Position  uint64
	Data      []byte
}
