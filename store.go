package stockd

import (
	"context"
	"strings"
	"time"
)

// Store is the durable source of truth: the partitions' Log, with the
// Snapshots and consumer Checkpoints kept beside it. Each part has its own
// crash invariants, which every implementation MUST keep. Every
// implementation runs the conformance suite in package storetest unchanged:
// storetest.Run for a whole Store, or one group per interface (RunLog,
// RunSnapshots, RunCheckpoints) for a store that provides only some.
//
// Callers should depend on the smallest of these interfaces they need.
// Optional capabilities (PipelinedAppender, GroupAppender, KeyGuard, Leases)
// are discovered by type assertion.
type Store interface {
	Log
	Snapshots
	Checkpoints

	// Close releases the store. It must not be called while other calls are
	// in progress.
	Close() error
}

// Log is one ordered, gap-free log of events per partition: what the engine
// appends to and recovers from, and what everything else is derived from.
//
// Crash invariants, which every implementation MUST keep:
//   - Append MUST NOT return nil before its events and keys are durable
//     (fsynced, or committed by a database). After a crash every appended
//     batch is either wholly present or wholly absent, and a batch whose
//     Append returned nil is present.
//   - Positions MUST be consecutive: the events of partition p are exactly
//     positions 1, 2, ... up to its last, with no gaps and no rewrites.
//   - After Append returns an error other than a conflict the outcome is
//     unknown; the caller MUST stop using the store and recover by opening it
//     again (fail-stop). A store MUST NOT retry a failed fsync.
type Log interface {
	// Partitions returns the number of partitions, fixed when the store was
	// created.
	Partitions() int

	// Append durably appends batch to partition p if and only if the
	// partition's head (the position of its last event, 0 if it has none)
	// is expected. The events must carry partition p and positions
	// expected+1, expected+2, and so on; the batch must not be empty, and
	// must not name one key twice. If the head differs, Append MUST fail
	// with an *Error of code CodeConflict and write nothing.
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

	// LookupRetired returns the retired record written for key (the string
	// form of an idempotency key, "reservation:r-1"), and false if there is
	// none. Retired records MUST be written in the same atomic write as the
	// batch that carries them, and MUST stay readable for good, however
	// much of the log around them is archived: they are how an id is
	// answered after its entity left memory.
	LookupRetired(ctx context.Context, key string) (RetiredRecord, bool, error)
}

// Snapshots keeps the latest encoded State of each partition, so that
// recovery replays only the log after it. A snapshot is derived from the
// log: losing one costs replay time, never data.
//
// Rules, crash invariants first, which every implementation MUST keep:
//   - SaveSnapshot MUST NOT return nil before the snapshot is durable.
//   - A snapshot MUST be replaced atomically: after a crash LoadSnapshot
//     returns the previous snapshot or the new one, whole, never a part of
//     either.
//   - SaveSnapshot MUST NOT keep s.Data, which the caller may reuse.
type Snapshots interface {
	// SaveSnapshot durably stores a snapshot. LoadSnapshot then returns it
	// until one of a later position is saved for the same partition.
	SaveSnapshot(ctx context.Context, s Snapshot) error

	// LoadSnapshot returns the snapshot of partition p with the highest
	// position, and false if there is none.
	LoadSnapshot(ctx context.Context, p int) (Snapshot, bool, error)
}

// Checkpoints keeps, for each consumer of the log and each partition, how far
// the consumer has processed the partition and what it built by then.
//
// Rules, crash invariants first, which every implementation MUST keep:
//   - SetCheckpoint MUST NOT return nil before the checkpoint is durable.
//   - The position and the state MUST be replaced atomically: after a crash
//     Checkpoint returns either the old checkpoint or the new one, never the
//     new position with the old state or a part of either state.
//   - SetCheckpoint MUST NOT keep c.State, which the caller may reuse, and
//     Checkpoint MUST NOT return a State the store still uses.
type Checkpoints interface {
	// Checkpoint returns consumer's checkpoint in partition p: the position
	// up to which it has processed the partition and, optionally, the state
	// it saved with it. A consumer that never saved one gets the zero
	// Checkpoint. The returned State belongs to the caller.
	Checkpoint(ctx context.Context, consumer string, p int) (Checkpoint, error)

	// SetCheckpoint durably records consumer's checkpoint in partition p,
	// replacing the previous one, position and state together. It may move
	// backwards, which is how a consumer is rewound to replay.
	SetCheckpoint(ctx context.Context, consumer string, p int, c Checkpoint) error
}

// Records is an optional store capability, discovered by type assertion:
// small named records the service keeps about itself beside the log — feed
// subscriptions, webhook endpoints and their dead letters, queued commands,
// reports of imported files. Each kind of record has a key space of its own,
// listed in key order. Records are not events: they are the service's
// bookkeeping, never the history of stock.
//
// Crash invariants, which every implementation MUST keep:
//   - PutRecord, CreateRecord and DeleteRecord MUST NOT return nil before
//     the change is durable.
//   - A record MUST be replaced atomically: after a crash GetRecord returns
//     the old value or the new one, whole.
//   - A store MUST NOT keep the caller's value, nor return one it still
//     uses.
//
// Kinds and keys are non-empty strings without NUL bytes; values are at most
// MaxRecordSize bytes.
type Records interface {
	// PutRecord durably stores value under kind and key, replacing any
	// record there.
	PutRecord(ctx context.Context, kind, key string, value []byte) error
	// CreateRecord durably stores value under kind and key only if there
	// is no record there, and reports whether it did. Of concurrent
	// creates of one record exactly one succeeds.
	CreateRecord(ctx context.Context, kind, key string, value []byte) (bool, error)
	// GetRecord returns the record under kind and key, and false if there
	// is none.
	GetRecord(ctx context.Context, kind, key string) ([]byte, bool, error)
	// DeleteRecord durably removes the record under kind and key; removing
	// a missing record is not an error.
	DeleteRecord(ctx context.Context, kind, key string) error
	// ListRecords returns up to limit records of kind with keys greater
	// than after, in key order.
	ListRecords(ctx context.Context, kind, after string, limit int) ([]Record, error)
}

// MaxRecordSize bounds the value of one Record.
const MaxRecordSize = 1 << 20

// Record is one record of a kind: its key and value.
type Record struct {
	Key   string
	Value []byte
}

// PipelinedAppender is an optional Log capability, discovered by type
// assertion. BeginAppend checks and orders a batch exactly like Append but
// returns before the batch is durable; wait blocks until it is, or reports the
// failure. Batches begun for one partition become durable in the order they
// were begun, so a partition can decide its next batch while the previous one
// is being synced. Until wait returns nil, the batch MUST NOT be treated as
// durable, although reads may already see it.
type PipelinedAppender interface {
	BeginAppend(ctx context.Context, p int, expected uint64, batch Batch) (wait func() error, err error)
}

// KeyGuard is an optional Log capability, discovered by type assertion: the
// store's side of idempotency records. A store that implements it records the
// Keys of every batch and rejects a batch naming a key that is already
// recorded with an *Error of code CodeConflict, writing nothing, even when two
// processes race.
//
// Crash invariants, which every implementation MUST keep:
//   - A batch's keys MUST be written in the same atomic write as its events:
//     after a crash both are present or neither is, so a key is never
//     refused for a batch that was lost, nor accepted twice for one that
//     was kept.
//   - A recorded key MUST stay recorded across a restart.
//
// Stores shared by several processes (PostgreSQL) implement it, with a unique
// index. The embedded store does not: it is locked to one process, whose
// engine keeps every key in memory, and a read per key would cost the hot path
// more than the whole decision.
type KeyGuard interface {
	GuardsKeys()
}

// KeyFinder is an optional capability of a KeyGuard store: FindKey returns
// the record of an idempotency key, and false if none was recorded. An engine
// that serves only some of the partitions (several nodes share the store)
// asks it about a key it does not hold, so that an id used before in a
// partition another node serves is answered as a repeat or a mismatch, never
// accepted twice.
type KeyFinder interface {
	FindKey(ctx context.Context, key string) (KeyRecord, bool, error)
}

// HeadReader is an optional Log capability: Heads returns the head of every
// partition (the position of its last durable event), indexed by partition,
// in one read. A node reading partitions that other nodes append to follows
// their heads with it.
type HeadReader interface {
	Heads(ctx context.Context) ([]uint64, error)
}

// GroupAppender is an optional Log capability, discovered by type
// assertion. BeginAppendGroup begins the appends of several partitions as ONE
// atomic write, checked and ordered exactly as the same appends made one by
// one with PipelinedAppender (several appends of one partition must chain
// their expected heads); if any is refused, none is written. wait blocks until
// all of them are durable. It lets an engine with many partitions pay one
// write, not one per partition, for each group commit. An implementation
// MUST NOT keep appends after it returns: the caller reuses the slice.
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
	// Keys are idempotency records written with the events. The engine
	// sends them only to a KeyGuard store, which refuses keys already
	// recorded; with any other store the engine is the guard, keeping every
	// key in memory as its partitions' States rebuild them at start-up.
	Keys []KeyRecord
	// Retired are the records of entities this batch retires, written with
	// its events by every store.
	Retired []RetiredRecord
	// Lease, when set, fences the append: a store that implements Leases
	// MUST refuse it with an *Error of code CodeLeaseLost, writing
	// nothing, unless Lease is the partition's current lease (same node
	// and epoch) and has not expired by the store's clock, checked
	// atomically with the append: a takeover of the partition cannot
	// commit between the check and the append's commit. Lease.Partition
	// must be the partition appended to. In a group (GroupAppender) each
	// Append's Batch carries its own lease, and a refused lease refuses
	// the whole group. Stores without the Leases capability ignore it: one
	// process owns them.
	Lease *Lease
}

// RetiredRecord is what a store keeps of an entity that left memory: its
// idempotency key, the partition and position of the EntitiesRetired event
// that retired it, and its last state in the domain's encoding
// (RestoreRetired reads it).
type RetiredRecord struct {
	Key       string
	Partition int
	Position  uint64
	Data      []byte
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

// Checkpoint is how far a consumer has processed one partition, and what it
// had built by then. A consumer that keeps state (a read model, say) saves
// that state with its position in one write, so that after a restart it
// resumes from the position instead of replaying the partition from the
// start, and can never resume with a state that does not match its position.
type Checkpoint struct {
	// Position is the position of the last event the consumer processed; 0
	// means none.
	Position uint64
	// State is the consumer's own encoding of what it built from the events
	// up to and including Position, or empty for a consumer that keeps
	// none. Stores treat it as opaque bytes; an empty State may be read
	// back as nil.
	State []byte
}

// Snapshot is an encoded partition State as of a position.
type Snapshot struct {
	Partition int
	Position  uint64
	Data      []byte
}

// Trimmer is an optional Log capability, discovered by type assertion: a log
// whose oldest events can be removed once they are kept elsewhere, in cold
// storage (package archive). Trimming never changes positions: the head of a
// partition stays what it was, appends continue from it, and the positions up
// to the partition's log start are simply no longer held by this log.
//
// Trimming is two steps, so that the caller can make the copy durable
// between deciding and deleting, and delete in bounded chunks: SetLogStart
// records how far the log is trimmed, then Trim deletes, a chunk per call,
// what lies at or below that start.
//
// Crash invariants, which every implementation MUST keep:
//   - SetLogStart MUST NOT return nil before the new start is durable, and
//     MUST record it before anything at or below it is deleted; the start
//     never moves backwards and never passes the head.
//   - As soon as SetLogStart returns, and after any crash that kept the new
//     start, ReadPartition MUST refuse (see ErrTrimmed) to read from a
//     position below the start, and ReadSKU MUST return only events above
//     it, whether or not Trim has deleted them yet: a reader never sees a
//     half-trimmed range.
//   - Trim MUST delete only events at or below the durable start (with their
//     entries in the SKU history index), never idempotency records,
//     snapshots or checkpoints. A crash during Trim loses nothing but the
//     deletion itself, which a later Trim completes.
//   - DeleteConsumer MUST NOT return nil before the deletion is durable, and
//     MUST delete the consumer's checkpoints in every partition or in none,
//     crash or not; it MUST NOT touch another consumer's, even one whose
//     name starts with the same letters.
type Trimmer interface {
	// LogStart returns the position of the last trimmed event of partition
	// p, 0 if none was: the log holds the positions after it.
	LogStart(ctx context.Context, p int) (uint64, error)

	// SetLogStart durably records that partition p is trimmed up to and
	// including position start. A start at or below the current one
	// changes nothing; one above the head is refused with CodeInvalid.
	SetLogStart(ctx context.Context, p int, start uint64) error

	// Trim deletes up to about maxEvents events of partition p at or below
	// its log start (whole stored batches: a stored batch that straddles
	// the start is kept until the start passes its end) and reports
	// whether more remain to delete. It may be called at any time; with
	// nothing to delete it returns false.
	Trim(ctx context.Context, p int, maxEvents int) (more bool, err error)

	// Consumers returns, in order, the names of the consumers that have
	// saved a checkpoint in any partition.
	Consumers(ctx context.Context) ([]string, error)

	// DeleteConsumer deletes consumer's checkpoints in every partition, so
	// that archiving stops waiting for a consumer that is gone (a broker
	// no longer configured, a deleted webhook). The caller makes sure the
	// consumer is not running: one that saves a checkpoint afterwards is
	// listed again. Deleting a consumer that has none does nothing.
	DeleteConsumer(ctx context.Context, consumer string) error
}

// ErrTrimmed is wrapped, in an *Error of code CodeNotFound, by the error a
// Trimmer's ReadPartition returns when asked to read from a position below
// the partition's log start: those events are in cold storage, which a
// reader reaches through the archive package's Log.
var ErrTrimmed error = trimmedError{}

// trimmedError is the type of ErrTrimmed.
type trimmedError struct{}

func (trimmedError) Error() string {
	return "stockd: the log is trimmed: the positions asked for are in cold storage"
}

// CheckBatch checks what the contract requires of batch, appended to
// partition p (of partitions) at head expected, so that a store refuses bad
// input with CodeInvalid rather than corrupt its indexes: events numbered
// from expected+1 in partition p, each with data and a SKU without NUL
// bytes, positions up to maxPosition (what the store can hold), keys and
// retired records named once each, retired records within the batch.
func CheckBatch(p, partitions int, expected, maxPosition uint64, batch Batch) error {
	if len(batch.Events) == 0 {
		return Errorf(CodeInvalid, "empty batch for partition %d", p)
	}
	if expected > maxPosition-uint64(len(batch.Events)) {
		return Errorf(CodeInvalid, "positions of partition %d overflow", p)
	}
	for i := range batch.Events {
		e := &batch.Events[i]
		if e.Partition != p {
			return Errorf(CodeInvalid, "event %d of the batch belongs to partition %d, not %d", i, e.Partition, p)
		}
		if want := expected + uint64(i) + 1; e.Position != want {
			return Errorf(CodeInvalid, "event %d of the batch has position %d, want %d", i, e.Position, want)
		}
		if e.Data == nil {
			return Errorf(CodeInvalid, "event %d of the batch has no data", i)
		}
		if strings.IndexByte(e.SKU, 0) >= 0 {
			return Errorf(CodeInvalid, "event %d of the batch has a SKU containing a NUL byte", i)
		}
	}
	seen := make(map[string]struct{}, len(batch.Keys))
	for _, k := range batch.Keys {
		if k.Key == "" {
			return Errorf(CodeInvalid, "empty idempotency key")
		}
		if k.Partition < 0 || k.Partition >= partitions {
			return Errorf(CodeInvalid, "idempotency key %q names partition %d of %d", k.Key, k.Partition, partitions)
		}
		if _, dup := seen[k.Key]; dup {
			return Errorf(CodeInvalid, "idempotency key %q appears twice in one batch", k.Key)
		}
		seen[k.Key] = struct{}{}
	}
	clear(seen)
	for _, r := range batch.Retired {
		if r.Key == "" {
			return Errorf(CodeInvalid, "retired record without a key")
		}
		if r.Partition != p || r.Position <= expected || r.Position > expected+uint64(len(batch.Events)) {
			return Errorf(CodeInvalid, "retired record %q names partition %d position %d, outside the batch", r.Key, r.Partition, r.Position)
		}
		if _, dup := seen[r.Key]; dup {
			return Errorf(CodeInvalid, "retired record %q appears twice in one batch", r.Key)
		}
		seen[r.Key] = struct{}{}
	}
	return nil
}

// CheckRecordName refuses an empty record kind or key (what says which), or
// one with a NUL byte, which stores use as a separator.
func CheckRecordName(what, name string) error {
	if name == "" {
		return Errorf(CodeInvalid, "record %s is empty", what)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return Errorf(CodeInvalid, "record %s contains a NUL byte", what)
	}
	return nil
}

// CheckRecord checks a record's kind, key and value as every Records store
// must.
func CheckRecord(kind, key string, value []byte) error {
	if err := CheckRecordName("kind", kind); err != nil {
		return err
	}
	if err := CheckRecordName("key", key); err != nil {
		return err
	}
	if len(value) > MaxRecordSize {
		return Errorf(CodeInvalid, "record of %d bytes exceeds the limit of %d", len(value), MaxRecordSize)
	}
	return nil
}
