package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/stockd/stockd"
)

// DefaultPartitions is the number of partitions of a new store when
// Options.Partitions is 0.
const DefaultPartitions = 64

// MaxPartitions is the largest number of partitions a store can have: keys
// carry the partition as a 16-bit integer.
const MaxPartitions = 1 << 16

// DefaultReadLimit is the number of events ReadPartition returns when asked
// for a limit of 0 or less, so that a careless caller cannot load a whole
// partition into memory.
const DefaultReadLimit = 1000

// MaxSnapshotSize bounds the data of one snapshot. A snapshot is written in
// one Pebble batch, and Pebble cannot hold a batch of 4 GiB or more.
const MaxSnapshotSize = 3 << 30

// MaxCheckpointStateSize bounds the state saved with one checkpoint, for the
// same reason as MaxSnapshotSize: it is written in one Pebble batch.
const MaxCheckpointStateSize = MaxSnapshotSize

// checkpointStripes is the number of locks that order writers of checkpoints.
const checkpointStripes = 64

// maxRecordSize bounds the encoding of one appended batch, for the same
// reason; real batches are a few hundred kilobytes at most.
const maxRecordSize = 1 << 30

// formatVersion is the version of the key layout, stored in the meta key so
// that a future layout change is detected instead of misread.
const formatVersion = 1

// snapshotChunk is the size of the pieces a snapshot, or the state saved with
// a checkpoint, is split into. Pebble
// keeps a value whole in one block, so a value of hundreds of megabytes would
// be read, cached and compacted as one piece; 1 MiB pieces stream.
const snapshotChunk = 1 << 20

// Key prefixes. Each kind of record has its own one-byte prefix so that the
// kinds never interleave and each can be scanned with simple bounds.
const (
	prefixMeta       = 'm'
	prefixEvents     = 'e'
	prefixHistory    = 'h'
	prefixKey        = 'k'
	prefixSnapshot   = 's'
	prefixCheckpoint = 'c'
)

// Options configures Open.
type Options struct {
	// Partitions is the number of partitions of a new store; 0 means
	// DefaultPartitions. It is ignored when an existing store is opened,
	// because the partition of every event is fixed by the value the store
	// was created with.
	Partitions int
	// FS is the file system to store data in; nil means the operating
	// system's. Tests pass an in-memory or error-injecting file system.
	FS vfs.FS
	// Logger receives Pebble's messages, informational ones at debug level
	// and errors at warn level; nil means slog.Default().
	Logger *slog.Logger
}

// Store is a stockd.Store and stockd.PipelinedAppender backed by a Pebble
// database. It is safe for concurrent use; calls made after Close return an
// error.
type Store struct {
	db         *pebbledb.DB
	log        *slog.Logger
	partitions int
	parts      []partition

	// failed holds the first write or sync error. Once set, every later write
	// returns it: after a failed fsync the state of the log is unknown, and
	// Pebble itself panics if it is written to again.
	failed atomic.Pointer[error]

	// closeMu is held for reading by every call and for writing by Close,
	// so that a call racing with Close gets an error instead of a Pebble
	// panic.
	closeMu sync.RWMutex
	closed  bool

	// checkpointMu orders the writers of each checkpoint, striped by key:
	// SetCheckpoint reads the previous header before replacing it.
	checkpointMu [checkpointStripes]sync.Mutex
}

// partition is the in-memory state of one partition's log.
type partition struct {
	// mu orders appends to the partition: the head check, the key checks
	// and the write happen under it.
	mu sync.Mutex
	// head is the position of the last event written, including batches
	// that are applied but not yet synced. It is written under mu and read
	// without it.
	head atomic.Uint64
}

var (
	_ stockd.Store             = (*Store)(nil)
	_ stockd.PipelinedAppender = (*Store)(nil)
)

// errClosed is returned by every call made after Close.
var errClosed = errors.New("pebble: store is closed")

// Open opens the store in dir, creating it with opts.Partitions partitions if
// it does not exist. It reads the head of every partition so that appends can
// check expected heads without reading the database.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Partitions < 0 || opts.Partitions > MaxPartitions {
		return nil, fmt.Errorf("pebble: partitions must be between 1 and %d, not %d", MaxPartitions, opts.Partitions)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "pebble")
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	db, err := pebbledb.Open(dir, pebbleOptions(fs, log))
	if err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	s := &Store{db: db, log: log}
	if err := s.init(opts.Partitions); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// pebbleOptions tunes Pebble for an append-heavy log that is read mostly by
// recent position and looked up by idempotency key.
func pebbleOptions(fs vfs.FS, log *slog.Logger) *pebbledb.Options {
	o := &pebbledb.Options{
		FS:                 fs,
		FormatMajorVersion: pebbledb.FormatNewest,
		// Large memtables absorb bursts of appends and make flushes (and so
		// L0 files) fewer and larger. Pebble starts small and doubles up to
		// this size, so short-lived stores in tests stay small.
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		CacheSize:                   64 << 20,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		LBaseMaxBytes:               256 << 20,
		CompactionConcurrencyRange: func() (int, int) {
			return 1, max(2, runtime.GOMAXPROCS(0)/2)
		},
		Logger: pebbleLogger{log},
		EventListener: &pebbledb.EventListener{
			BackgroundError: func(err error) { log.Warn("background error", "err", err) },
			DataCorruption: func(info pebbledb.DataCorruptionInfo) {
				log.Error("data corruption", "info", info.String())
			},
			DiskSlow:        func(info pebbledb.DiskSlowInfo) { log.Warn("disk slow", "info", info.String()) },
			WriteStallBegin: func(info pebbledb.WriteStallBeginInfo) { log.Warn("write stall", "reason", info.Reason) },
			WriteStallEnd:   func() { log.Info("write stall ended") },
		},
	}
	for i := range o.Levels {
		// Bloom filters make LookupKey and the key checks of appends cheap
		// for keys that were never recorded, which is the common case.
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].BlockSize = 32 << 10
	}
	return o
}

// init reads or writes the meta key and loads the head of every partition.
func (s *Store) init(partitions int) error {
	meta, closer, err := s.db.Get([]byte{prefixMeta})
	switch {
	case errors.Is(err, pebbledb.ErrNotFound):
		if err := s.checkEmpty(); err != nil {
			return err
		}
		if partitions == 0 {
			partitions = DefaultPartitions
		}
		var v [8]byte
		binary.BigEndian.PutUint32(v[0:4], formatVersion)
		binary.BigEndian.PutUint32(v[4:8], uint32(partitions))
		b := s.db.NewBatch()
		if err := b.Set([]byte{prefixMeta}, v[:], nil); err != nil {
			_ = b.Close()
			return fmt.Errorf("pebble: write meta: %w", err)
		}
		if err := s.commit(b); err != nil {
			return fmt.Errorf("pebble: write meta: %w", err)
		}
	case err != nil:
		return fmt.Errorf("pebble: read meta: %w", err)
	default:
		if len(meta) != 8 {
			_ = closer.Close()
			return fmt.Errorf("pebble: %w: meta record of %d bytes", stockd.ErrCorrupt, len(meta))
		}
		version := binary.BigEndian.Uint32(meta[0:4])
		stored := binary.BigEndian.Uint32(meta[4:8])
		_ = closer.Close()
		if version != formatVersion {
			return fmt.Errorf("pebble: unsupported store format version %d (this build reads version %d)", version, formatVersion)
		}
		if stored == 0 || stored > MaxPartitions {
			return fmt.Errorf("pebble: %w: meta records %d partitions", stockd.ErrCorrupt, stored)
		}
		partitions = int(stored)
	}
	s.partitions = partitions
	s.parts = make([]partition, partitions)
	return s.loadHeads()
}

// checkEmpty refuses to initialise a database that has data but no meta key:
// it is not a store of this format, and guessing its partition count would
// corrupt it.
func (s *Store) checkEmpty() error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("pebble: check empty: %w", err)
	}
	defer it.Close()
	if it.First() {
		return fmt.Errorf("pebble: database has data but no stockd meta record")
	}
	return it.Error()
}

// loadHeads finds the last record of every partition with one reverse seek
// each, and decodes it to learn the position of its last event.
func (s *Store) loadHeads() error {
	it, err := s.db.NewIter(&pebbledb.IterOptions{
		LowerBound: []byte{prefixEvents},
		UpperBound: []byte{prefixEvents + 1},
	})
	if err != nil {
		return fmt.Errorf("pebble: load heads: %w", err)
	}
	defer it.Close()
	for p := range s.parts {
		prefix := partitionPrefix(p)
		if !it.SeekLT(prefixEnd(prefix)) || !bytes.HasPrefix(it.Key(), prefix) {
			if err := it.Error(); err != nil {
				return fmt.Errorf("pebble: load head of partition %d: %w", p, err)
			}
			continue
		}
		first, err := parseEventKey(it.Key())
		if err != nil {
			return err
		}
		value, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("pebble: load head of partition %d: %w", p, err)
		}
		events, err := stockd.DecodeEvents(value, p, first)
		if err != nil {
			return fmt.Errorf("pebble: partition %d record at %d: %w", p, first, err)
		}
		if len(events) == 0 {
			return fmt.Errorf("pebble: %w: empty record in partition %d at %d", stockd.ErrCorrupt, p, first)
		}
		s.parts[p].head.Store(first + uint64(len(events)) - 1)
	}
	return it.Error()
}

// Partitions returns the number of partitions, fixed when the store was
// created.
func (s *Store) Partitions() int { return s.partitions }

// Head returns the position of the last event of partition p, or 0. It
// includes batches begun with BeginAppend that are not yet durable.
func (s *Store) Head(ctx context.Context, p int) (uint64, error) {
	if err := s.checkPartition(p); err != nil {
		return 0, err
	}
	return s.parts[p].head.Load(), nil
}

// Append durably appends batch to partition p if its head is expected: it
// checks and applies the batch like BeginAppend, then waits for the
// write-ahead log to be synced.
func (s *Store) Append(ctx context.Context, p int, expected uint64, batch stockd.Batch) error {
	appends := []stockd.Append{{Partition: p, Expected: expected, Batch: batch}}
	b, err := s.begin(ctx, appends)
	if err != nil {
		return err
	}
	return s.syncWait(b, describe(appends))
}

// BeginAppend checks and applies batch like Append, making it visible to
// reads, and returns without waiting for the write-ahead log to be synced.
// wait blocks until the batch is durable or reports why it is not; it may be
// called more than once. Batches of one partition become durable in the order
// they were begun because Pebble's log is written and synced sequentially.
func (s *Store) BeginAppend(ctx context.Context, p int, expected uint64, batch stockd.Batch) (wait func() error, err error) {
	return s.BeginAppendGroup(ctx, []stockd.Append{{Partition: p, Expected: expected, Batch: batch}})
}

// BeginAppendGroup begins the appends of several partitions as one Pebble
// batch: one write to the log and one sync for all of them.
func (s *Store) BeginAppendGroup(ctx context.Context, appends []stockd.Append) (wait func() error, err error) {
	b, err := s.begin(ctx, appends)
	if err != nil {
		return nil, err
	}
	// A goroutine, rather than wait itself, waits for the sync, so that a
	// failed sync stops the store as soon as it happens, not when the caller
	// gets round to calling wait. After a failed sync Pebble panics if its
	// log is written again, so the sooner later appends are refused the
	// better.
	// The caller may reuse appends once this returns, so the goroutine
	// keeps only what its error message needs.
	what := describe(appends)
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = s.syncWait(b, what)
		close(done)
	}()
	return func() error {
		<-done
		return waitErr
	}, nil
}

// begin validates the appends, checks them against the partitions' heads, and
// applies them as one batch without waiting for the sync. The returned batch
// must be passed to syncWait.
func (s *Store) begin(ctx context.Context, appends []stockd.Append) (*pebbledb.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(appends) == 0 {
		return nil, stockd.Errorf(stockd.CodeInvalid, "no appends")
	}
	// Several appends of one partition must chain: each expects the head
	// the previous one leaves.
	next := make(map[int]uint64, len(appends))
	for _, a := range appends {
		if err := s.checkPartition(a.Partition); err != nil {
			return nil, err
		}
		if err := s.validateBatch(a.Partition, a.Expected, a.Batch); err != nil {
			return nil, err
		}
		if want, ok := next[a.Partition]; ok && a.Expected != want {
			return nil, stockd.Errorf(stockd.CodeInvalid, "appends of partition %d in one group do not chain: expected %d after %d", a.Partition, a.Expected, want)
		}
		next[a.Partition] = a.Expected + uint64(len(a.Batch.Events))
	}
	// Encode and build the Pebble batch before taking any lock, so that
	// partitions are held only for the checks and the write.
	b := s.db.NewBatch()
	for _, a := range appends {
		if err := s.addRecord(b, a.Partition, a.Expected, a.Batch); err != nil {
			_ = b.Close()
			return nil, err
		}
	}

	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		_ = b.Close()
		return nil, errClosed
	}
	if err := s.failure(); err != nil {
		_ = b.Close()
		return nil, err
	}
	// Lock the partitions in ascending order, so that groups never deadlock.
	parts := make([]int, 0, len(next))
	for p := range next {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		s.parts[p].mu.Lock()
	}
	defer func() {
		for _, p := range parts {
			s.parts[p].mu.Unlock()
		}
	}()
	checked := make(map[int]bool, len(parts))
	for _, a := range appends {
		if checked[a.Partition] {
			continue
		}
		checked[a.Partition] = true
		if head := s.parts[a.Partition].head.Load(); head != a.Expected {
			_ = b.Close()
			return nil, stockd.Errorf(stockd.CodeConflict, "partition %d head is %d, not the expected %d", a.Partition, head, a.Expected)
		}
	}
	if err := s.db.ApplyNoSyncWait(b, pebbledb.Sync); err != nil {
		// The batch may or may not be in the log: fail-stop. The batch is
		// not closed because Pebble may still reference it.
		return nil, s.fail(fmt.Errorf("pebble: append to partitions %v: %w", parts, err))
	}
	for p, head := range next {
		s.parts[p].head.Store(head)
	}
	return b, nil
}

// groupInfo is what an error about a group of appends names: its first
// append and how many others there were.
type groupInfo struct {
	partition int
	from, to  uint64
	others    int
}

func describe(appends []stockd.Append) groupInfo {
	a := appends[0]
	return groupInfo{a.Partition, a.Expected + 1, a.Expected + uint64(len(a.Batch.Events)), len(appends) - 1}
}

// syncWait waits for a batch begun by begin to be durable. A failed sync is
// the store's failure: it is recorded and never retried.
func (s *Store) syncWait(b *pebbledb.Batch, g groupInfo) error {
	if err := b.SyncWait(); err != nil {
		return s.fail(fmt.Errorf("pebble: sync of partition %d positions %d..%d (and %d more appends): %w",
			g.partition, g.from, g.to, g.others, err))
	}
	_ = b.Close() // the batch is durable; closing only recycles it
	return nil
}

// validateBatch checks what the contract requires of a batch and what the key
// layout relies on, so that bad input is rejected with CodeInvalid instead of
// corrupting the index or panicking in the encoder.
func (s *Store) validateBatch(p int, expected uint64, batch stockd.Batch) error {
	if len(batch.Events) == 0 {
		return stockd.Errorf(stockd.CodeInvalid, "empty batch for partition %d", p)
	}
	if expected > math.MaxUint64-uint64(len(batch.Events)) {
		return stockd.Errorf(stockd.CodeInvalid, "positions of partition %d overflow", p)
	}
	for i := range batch.Events {
		e := &batch.Events[i]
		if e.Partition != p {
			return stockd.Errorf(stockd.CodeInvalid, "event %d of the batch belongs to partition %d, not %d", i, e.Partition, p)
		}
		if want := expected + uint64(i) + 1; e.Position != want {
			return stockd.Errorf(stockd.CodeInvalid, "event %d of the batch has position %d, want %d", i, e.Position, want)
		}
		if e.Data == nil {
			return stockd.Errorf(stockd.CodeInvalid, "event %d of the batch has no data", i)
		}
		if strings.IndexByte(e.SKU, 0) >= 0 {
			return stockd.Errorf(stockd.CodeInvalid, "event %d of the batch has a SKU containing a NUL byte", i)
		}
	}
	seen := make(map[string]struct{}, len(batch.Keys))
	for _, k := range batch.Keys {
		if k.Key == "" {
			return stockd.Errorf(stockd.CodeInvalid, "empty idempotency key")
		}
		if k.Partition < 0 || k.Partition >= s.partitions {
			return stockd.Errorf(stockd.CodeInvalid, "idempotency key %q names partition %d of %d", k.Key, k.Partition, s.partitions)
		}
		if _, dup := seen[k.Key]; dup {
			return stockd.Errorf(stockd.CodeInvalid, "idempotency key %q appears twice in one batch", k.Key)
		}
		seen[k.Key] = struct{}{}
	}
	return nil
}

// addRecord encodes batch into the Pebble batch b: the record, one history
// index entry per SKU, and the idempotency keys.
func (s *Store) addRecord(b *pebbledb.Batch, p int, expected uint64, batch stockd.Batch) error {
	value, err := encodeEvents(batch.Events)
	if err != nil {
		return err
	}
	if len(value) > maxRecordSize {
		return stockd.Errorf(stockd.CodeInvalid, "batch of %d bytes exceeds the limit of %d", len(value), maxRecordSize)
	}
	first := expected + 1
	set := func(key, value []byte) error {
		if err := b.Set(key, value, nil); err != nil {
			return fmt.Errorf("pebble: build batch: %w", err)
		}
		return nil
	}
	if err := set(eventKey(p, first), value); err != nil {
		return err
	}
	ref := make([]byte, 10)
	binary.BigEndian.PutUint16(ref[0:2], uint16(p))
	binary.BigEndian.PutUint64(ref[2:10], first)
	var indexed map[string]struct{}
	for i := range batch.Events {
		e := &batch.Events[i]
		if e.SKU == "" {
			continue
		}
		if indexed == nil {
			indexed = make(map[string]struct{})
		}
		if _, ok := indexed[e.SKU]; ok {
			continue
		}
		indexed[e.SKU] = struct{}{}
		if err := set(historyKey(e.SKU, e.Version), ref); err != nil {
			return err
		}
	}
	for _, k := range batch.Keys {
		var v [18]byte
		binary.BigEndian.PutUint16(v[0:2], uint16(k.Partition))
		binary.BigEndian.PutUint64(v[2:10], k.Position)
		binary.BigEndian.PutUint64(v[10:18], k.Fingerprint)
		if err := set(idempotencyKey(k.Key), v[:]); err != nil {
			return err
		}
	}
	return nil
}

// encodeEvents encodes events, turning the encoder's panic on an event data
// type it does not know into a CodeInvalid error.
func encodeEvents(events []stockd.Event) (value []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			value, err = nil, stockd.Errorf(stockd.CodeInvalid, "cannot encode events: %v", r)
		}
	}()
	return stockd.AppendEvents(nil, events), nil
}

func (s *Store) failure() error {
	if e := s.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// fail records err as the store's failure unless one is already recorded, and
// returns err.
func (s *Store) fail(err error) error {
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("store failed; no further writes will be attempted", "err", err)
	}
	return err
}

// commit applies b with a synced write and closes it. It uses ApplyNoSyncWait
// and SyncWait rather than Apply because Pebble's Apply treats a failed sync
// as fatal and calls Logger.Fatalf, while SyncWait returns it as an error.
// The caller holds closeMu for reading or is Open.
func (s *Store) commit(b *pebbledb.Batch) error {
	if err := s.failure(); err != nil {
		_ = b.Close()
		return err
	}
	if err := s.db.ApplyNoSyncWait(b, pebbledb.Sync); err != nil {
		return s.fail(err)
	}
	if err := b.SyncWait(); err != nil {
		return s.fail(err)
	}
	return b.Close()
}

// ReadPartition returns up to limit events of partition p with positions
// greater than after, in position order. A limit of 0 or less means
// DefaultReadLimit.
func (s *Store) ReadPartition(ctx context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.checkPartition(p); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	if after >= s.parts[p].head.Load() {
		// Consumers poll the tail often; answer without touching Pebble.
		return nil, nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	prefix := partitionPrefix(p)
	it, err := s.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebble: read partition %d: %w", p, err)
	}
	defer it.Close()

	// The record holding position after+1 is the last one whose first
	// position is at most after+1. Appending a byte to its key makes the
	// seek inclusive without computing after+2, which could overflow.
	seek := append(eventKey(p, after+1), 0)
	ok := it.SeekLT(seek)
	if !ok {
		ok = it.First()
	}
	var out []stockd.Event
	next := after + 1 // the position the next returned event must have
	for ; ok && len(out) < limit; ok = it.Next() {
		first, err := parseEventKey(it.Key())
		if err != nil {
			return nil, err
		}
		if first > next {
			return nil, fmt.Errorf("pebble: %w: partition %d has no event at position %d", stockd.ErrCorrupt, p, next)
		}
		value, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble: read partition %d: %w", p, err)
		}
		events, err := stockd.DecodeEvents(value, p, first)
		if err != nil {
			return nil, fmt.Errorf("pebble: partition %d record at %d: %w", p, first, err)
		}
		if out == nil && first == next && len(events) <= limit {
			// The common case when replaying: a whole record, kept as
			// decoded rather than copied.
			out = events
			next += uint64(len(events))
			continue
		}
		if cap(out)-len(out) < len(events) {
			// Double, up to the limit, rather than grow by append's steps
			// of a quarter: replaying reads thousands of events a call,
			// and copying them again at every step cost a third of
			// recovery. Growing straight to the limit would cost a tail
			// reader that finds a few small records a large allocation.
			grown := make([]stockd.Event, len(out), max(min(limit, 2*cap(out)), len(out)+len(events)))
			copy(grown, out)
			out = grown
		}
		for _, e := range events {
			if e.Position < next {
				continue
			}
			out = append(out, e)
			next++
			if len(out) == limit {
				break
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: read partition %d: %w", p, err)
	}
	return out, nil
}

// ReadSKU returns the events of one SKU in version order, as bounded by q. It
// walks the SKU's history index, which has one entry per batch that holds
// events of the SKU, and decodes the records the entries point at.
func (s *Store) ReadSKU(ctx context.Context, sku string, q stockd.SKUQuery) ([]stockd.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if strings.IndexByte(sku, 0) >= 0 {
		return nil, stockd.Errorf(stockd.CodeInvalid, "SKU contains a NUL byte")
	}
	if sku == "" || q.AfterVersion == math.MaxUint64 {
		// Events without a SKU are not indexed and belong to no history.
		return nil, nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	prefix := historyPrefix(sku)
	it, err := s.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("pebble: read SKU %q: %w", sku, err)
	}
	defer it.Close()

	ok := it.SeekLT(append(historyKey(sku, q.AfterVersion+1), 0))
	if !ok {
		ok = it.First()
	}
	var out []stockd.Event
	for ; ok; ok = it.Next() {
		value, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble: read SKU %q: %w", sku, err)
		}
		if len(value) != 10 {
			return nil, fmt.Errorf("pebble: %w: history entry of %d bytes for SKU %q", stockd.ErrCorrupt, len(value), sku)
		}
		p := int(binary.BigEndian.Uint16(value[0:2]))
		first := binary.BigEndian.Uint64(value[2:10])
		if q.UpToPosition != 0 && first > q.UpToPosition {
			break
		}
		events, err := s.readRecord(p, first)
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			if e.SKU != sku || e.Version <= q.AfterVersion {
				continue
			}
			if q.UpToPosition != 0 && e.Position > q.UpToPosition {
				return out, nil
			}
			if !q.UpToTime.IsZero() && e.Time.After(q.UpToTime) {
				return out, nil
			}
			out = append(out, e)
			if q.Limit > 0 && len(out) >= q.Limit {
				return out, nil
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebble: read SKU %q: %w", sku, err)
	}
	return out, nil
}

// readRecord reads and decodes the record of partition p that starts at
// position first.
func (s *Store) readRecord(p int, first uint64) ([]stockd.Event, error) {
	value, closer, err := s.db.Get(eventKey(p, first))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, fmt.Errorf("pebble: %w: history points at missing record %d of partition %d", stockd.ErrCorrupt, first, p)
	}
	if err != nil {
		return nil, fmt.Errorf("pebble: read record %d of partition %d: %w", first, p, err)
	}
	defer closer.Close()
	events, err := stockd.DecodeEvents(value, p, first)
	if err != nil {
		return nil, fmt.Errorf("pebble: partition %d record at %d: %w", p, first, err)
	}
	return events, nil
}

// LookupKey returns the record of an idempotency key, and false if the key was
// never recorded.
func (s *Store) LookupKey(ctx context.Context, key string) (stockd.KeyRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return stockd.KeyRecord{}, false, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return stockd.KeyRecord{}, false, errClosed
	}
	return s.lookupKey(key)
}

// lookupKey is LookupKey for callers that hold closeMu.
func (s *Store) lookupKey(key string) (stockd.KeyRecord, bool, error) {
	value, closer, err := s.db.Get(idempotencyKey(key))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return stockd.KeyRecord{}, false, nil
	}
	if err != nil {
		return stockd.KeyRecord{}, false, fmt.Errorf("pebble: look up key %q: %w", key, err)
	}
	defer closer.Close()
	if len(value) != 18 {
		return stockd.KeyRecord{}, false, fmt.Errorf("pebble: %w: key record of %d bytes for %q", stockd.ErrCorrupt, len(value), key)
	}
	return stockd.KeyRecord{
		Key:         key,
		Partition:   int(binary.BigEndian.Uint16(value[0:2])),
		Position:    binary.BigEndian.Uint64(value[2:10]),
		Fingerprint: binary.BigEndian.Uint64(value[10:18]),
	}, true, nil
}

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
	chunks := (len(snap.Data) + snapshotChunk - 1) / snapshotChunk
	b := s.db.NewBatchWithSize(len(snap.Data) + 64*(chunks+2))
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
	binary.BigEndian.PutUint32(header[8:12], uint32(chunks))
	if err := b.Set(snapshotKey(p, pos), header[:], nil); err != nil {
		_ = b.Close()
		return fmt.Errorf("pebble: save snapshot: %w", err)
	}
	for i := 0; i < chunks; i++ {
		data := snap.Data[i*snapshotChunk : min(len(snap.Data), (i+1)*snapshotChunk)]
		if err := b.Set(snapshotChunkKey(p, pos, uint32(i)), data, nil); err != nil {
			_ = b.Close()
			return fmt.Errorf("pebble: save snapshot: %w", err)
		}
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
	if size > uint64(chunks)*snapshotChunk || size > math.MaxInt {
		return stockd.Snapshot{}, false, corrupt("length %d in %d chunks", size, chunks)
	}
	data := make([]byte, 0, size)
	for i := uint32(0); i < chunks; i++ {
		want := snapshotChunkKey(p, pos, i)
		if !it.Next() || !bytes.Equal(it.Key(), want) {
			if err := it.Error(); err != nil {
				return stockd.Snapshot{}, false, err
			}
			return stockd.Snapshot{}, false, corrupt("chunk %d of %d missing", i, chunks)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return stockd.Snapshot{}, false, err
		}
		if uint64(len(data))+uint64(len(v)) > size {
			return stockd.Snapshot{}, false, corrupt("chunks exceed length %d", size)
		}
		data = append(data, v...)
	}
	if uint64(len(data)) != size {
		return stockd.Snapshot{}, false, corrupt("%d bytes, want %d", len(data), size)
	}
	return stockd.Snapshot{Partition: p, Position: pos, Data: data}, true, nil
}

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
	c.State = make([]byte, 0, size)
	for i := uint32(0); i < chunks; i++ {
		if !it.Next() || !bytes.Equal(it.Key(), checkpointChunkKey(key, i)) {
			if err := it.Error(); err != nil {
				return stockd.Checkpoint{}, err
			}
			return stockd.Checkpoint{}, corrupt("chunk %d of %d missing", i, chunks)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return stockd.Checkpoint{}, err
		}
		if uint64(len(c.State))+uint64(len(v)) > size {
			return stockd.Checkpoint{}, corrupt("chunks exceed length %d", size)
		}
		c.State = append(c.State, v...)
	}
	if uint64(len(c.State)) != size {
		return stockd.Checkpoint{}, corrupt("%d bytes of state, want %d", len(c.State), size)
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

	chunks := (len(c.State) + snapshotChunk - 1) / snapshotChunk
	b := s.db.NewBatchWithSize(len(c.State) + 64*(chunks+2))
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
			if err := b.DeleteRange(checkpointChunkKey(key, 0), prefixEnd(key), nil); err != nil {
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
	for i := 0; i < chunks; i++ {
		data := c.State[i*snapshotChunk : min(len(c.State), (i+1)*snapshotChunk)]
		if err := b.Set(checkpointChunkKey(key, uint32(i)), data, nil); err != nil {
			return fail(err)
		}
	}
	for i := uint32(chunks); i < old; i++ {
		if err := b.Delete(checkpointChunkKey(key, i), nil); err != nil {
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
		if size > uint64(chunks)*snapshotChunk || size > MaxCheckpointStateSize || (size == 0) != (chunks == 0) {
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

// Close closes the database. Calling it again does nothing and returns nil.
// Batches begun but not waited for are synced by Pebble's close.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("pebble: close: %w", err)
	}
	return nil
}

// checkPartition rejects a partition out of range.
func (s *Store) checkPartition(p int) error {
	if p < 0 || p >= s.partitions {
		return stockd.Errorf(stockd.CodeInvalid, "partition %d out of range [0, %d)", p, s.partitions)
	}
	return nil
}

// checkConsumer rejects a consumer name that would make checkpoint keys
// ambiguous.
func checkConsumer(consumer string) error {
	if strings.IndexByte(consumer, 0) >= 0 {
		return stockd.Errorf(stockd.CodeInvalid, "consumer name contains a NUL byte")
	}
	return nil
}

// partitionPrefix is the prefix of the records of partition p.
func partitionPrefix(p int) []byte {
	k := make([]byte, 3, 11)
	k[0] = prefixEvents
	binary.BigEndian.PutUint16(k[1:], uint16(p))
	return k
}

// eventKey is the key of the record of partition p whose first event has
// position first.
func eventKey(p int, first uint64) []byte {
	k := make([]byte, 11, 12)
	k[0] = prefixEvents
	binary.BigEndian.PutUint16(k[1:3], uint16(p))
	binary.BigEndian.PutUint64(k[3:11], first)
	return k
}

// parseEventKey returns the first position named by a record key.
func parseEventKey(k []byte) (uint64, error) {
	if len(k) != 11 || k[0] != prefixEvents {
		return 0, fmt.Errorf("pebble: %w: event key %x", stockd.ErrCorrupt, k)
	}
	return binary.BigEndian.Uint64(k[3:11]), nil
}

// historyPrefix is the prefix of the history index entries of sku. The NUL
// terminator keeps the entries of "A" apart from those of "AB".
func historyPrefix(sku string) []byte {
	k := make([]byte, 0, len(sku)+11)
	k = append(k, prefixHistory)
	k = append(k, sku...)
	return append(k, 0)
}

// historyKey is the index key of the batch in which sku's events start at
// version.
func historyKey(sku string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(historyPrefix(sku), version)
}

// idempotencyKey is the key of an idempotency record.
func idempotencyKey(key string) []byte {
	k := make([]byte, 0, len(key)+1)
	k = append(k, prefixKey)
	return append(k, key...)
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

// snapshotChunkKey is the key of one chunk of a snapshot.
func snapshotChunkKey(p int, pos uint64, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(snapshotKey(p, pos), chunk)
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

// checkpointChunkKey is the key of one chunk of the state of the checkpoint
// whose header is at key. Chunk keys extend the header key, so one scan from
// the header reads the whole checkpoint.
func checkpointChunkKey(key []byte, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(bytes.Clone(key), chunk)
}

// prefixEnd returns the smallest key greater than every key with the given
// prefix, for use as an exclusive upper bound.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // the prefix is all 0xff: no upper bound
}

// pebbleLogger routes Pebble's log to slog. Pebble is chatty at info level,
// so its informational messages go to debug.
type pebbleLogger struct{ l *slog.Logger }

// Infof logs at debug level.
func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...))
	}
}

// Errorf logs at warn level: Pebble reports errors it recovers from here.
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Warn(fmt.Sprintf(format, args...))
}

// Fatalf logs at error level and panics. Pebble calls it on invariant
// violations and expects it not to return, like its default logger, which
// exits the process.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic("pebble: fatal: " + msg)
}
