package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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

// formatVersion is the version of the key layout, stored in the meta key so
// that a future layout change is detected instead of misread.
const formatVersion = 1

// Key prefixes. Each kind of record has its own one-byte prefix so that the
// kinds never interleave and each can be scanned with simple bounds.
const (
	prefixMeta       = 'm'
	prefixEvents     = 'e'
	prefixHistory    = 'h'
	prefixKey        = 'k'
	prefixSnapshot   = 's'
	prefixCheckpoint = 'c'
	prefixRetired    = 'r'
	prefixRecord     = 'x'
)

// Options configures Open.
type Options struct {
	// Partitions is the number of partitions of the store. 0 means the
	// number the existing store was created with, or DefaultPartitions for
	// a new one. The partition of every event is fixed by the number the
	// store was created with, so opening an existing store with any other
	// non-zero number fails rather than misplace events: a caller that was
	// not told a number (a flag left unset) passes 0.
	Partitions int
	// FS is the file system to store data in; nil means the operating
	// system's. Tests pass an in-memory or error-injecting file system.
	FS vfs.FS
	// Logger receives Pebble's messages, informational ones at debug level
	// and errors at warn level; nil means slog.Default().
	Logger *slog.Logger
	// MinFreeBytes, when not zero, makes Open refuse, with ErrDiskFull, a
	// data directory whose disk has less free space than this.
	MinFreeBytes uint64
}

// Store is a stockd.Store, stockd.PipelinedAppender and
// stockd.GroupAppender backed by a Pebble database. It is safe for concurrent use; calls made after Close return an
// error.
type Store struct {
	db *pebbledb.DB
	// lock is Pebble's lock on the data directory, taken by Open before it
	// opens the database and released by Close after closing it.
	lock       *pebbledb.Lock
	log        *slog.Logger
	fs         vfs.FS
	dir        string
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
	// recordMu orders creators of records, so that a check and a write
	// of one record are not interleaved with another's.
	recordMu sync.Mutex

	// trim holds the partitions' log starts (trim.go).
	trim trimState
}

var (
	_ stockd.Store             = (*Store)(nil)
	_ stockd.PipelinedAppender = (*Store)(nil)
	_ stockd.GroupAppender     = (*Store)(nil)
)

// errClosed is returned by every call made after Close.
var errClosed = errors.New("pebble: store is closed")

// Open opens the store in dir, creating it with opts.Partitions partitions if
// it does not exist. It reads the head of every partition so that appends can
// check expected heads without reading the database.
//
// Open fails, saying why, when another process or another Store of this
// process holds dir, and when opts.Partitions is neither 0 nor the number of
// partitions of the store in dir.
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
	if err := checkFree(fs, dir, opts.MinFreeBytes); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir, fs)
	if err != nil {
		return nil, err
	}
	full := make(chan error, 1)
	po := pebbleOptions(fs, log, full)
	po.Lock = lock
	db, err := openDB(dir, po, full)
	if errors.Is(err, ErrDiskFull) {
		// The lock stays with the open still running in the background.
		return nil, fmt.Errorf("pebble: %w", err)
	}
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	s := &Store{db: db, lock: lock, log: log, fs: fs, dir: dir}
	if err := s.init(dir, opts.Partitions); err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, err
	}
	return s, nil
}

// lockDir takes Pebble's lock on dir, which keeps a second process, or a
// second Store in this one, from opening the same database. It is taken here
// rather than by Pebble's Open so that a refusal says why in words: Pebble
// passes on the bare error of fcntl(2), "resource temporarily unavailable".
func lockDir(dir string, fs vfs.FS) (*pebbledb.Lock, error) {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pebble: create data directory %s: %w", dir, err)
	}
	lock, err := pebbledb.LockDirectory(dir, fs)
	if err == nil {
		return lock, nil
	}
	var pathErr *iofs.PathError
	var errno syscall.Errno
	switch {
	case errors.As(err, &pathErr):
		// The lock file could not be created or opened (no permission,
		// say): no one is known to hold it.
		return nil, fmt.Errorf("pebble: lock data directory %s: %w", dir, err)
	case errors.As(err, &errno):
		// The operating system refused the lock: another process holds it.
		return nil, fmt.Errorf("pebble: data directory %s is in use by another stockd process (lock held): %w", dir, err)
	default:
		// Pebble refuses a lock its own process holds before asking the
		// operating system, which would grant it again.
		return nil, fmt.Errorf("pebble: data directory %s is already open in this process (lock held): %w", dir, err)
	}
}

// pebbleOptions tunes Pebble for an append-heavy log that is read mostly by
// recent position.
// pebbleOptions configures Pebble. The first full-disk error of a background
// operation is also sent to full, without blocking.
func pebbleOptions(fs vfs.FS, log *slog.Logger, full chan<- error) *pebbledb.Options {
	var lastFull atomic.Int64 // unix nanoseconds of the last full-disk log
	backgroundError := func(err error) {
		if !isDiskFull(err) {
			log.Warn("background error", "err", err)
			return
		}
		select {
		case full <- err:
		default:
		}
		now := time.Now().UnixNano()
		if last := lastFull.Load(); now-last >= int64(diskFullLogEvery) && lastFull.CompareAndSwap(last, now) {
			log.Error("the disk is full: Pebble cannot flush or compact (retrying; logged every 10 s)", "err", err.Error())
		}
	}
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
			BackgroundError: backgroundError,
			DataCorruption: func(info pebbledb.DataCorruptionInfo) {
				log.Error("data corruption", "info", info.String())
			},
			DiskSlow:        func(info pebbledb.DiskSlowInfo) { log.Warn("disk slow", "info", info.String()) },
			WriteStallBegin: func(info pebbledb.WriteStallBeginInfo) { log.Warn("write stall", "reason", info.Reason) },
			WriteStallEnd:   func() { log.Info("write stall ended") },
		},
	}
	for i := range o.Levels {
		// Bloom filters let a point lookup of a key that is absent, which
		// is the common case, skip the files that cannot hold it.
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].BlockSize = 32 << 10
	}
	return o
}

// init reads or writes the meta key and loads the head of every partition.
// partitions is Options.Partitions; dir only names the store in errors.
func (s *Store) init(dir string, partitions int) error {
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
		if partitions != 0 && partitions != int(stored) {
			return fmt.Errorf("pebble: the store in %s has %d partitions, not the %d asked for: "+
				"the number of partitions is fixed when a store is created; leave it unset (0) to open this store with its own",
				dir, stored, partitions)
		}
		partitions = int(stored)
	}
	s.partitions = partitions
	s.parts = make([]partition, partitions)
	if err := s.loadHeads(); err != nil {
		return err
	}
	return s.loadTrims()
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

// Partitions returns the number of partitions, fixed when the store was
// created.
func (s *Store) Partitions() int { return s.partitions }

// Close closes the database. Calling it again does nothing and returns nil.
// Batches begun but not waited for are synced by Pebble's close.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// The lock is released even if closing the database fails, as Pebble's
	// Close does with a lock it took itself.
	err := s.db.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
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
