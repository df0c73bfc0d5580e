package pebble

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A full disk. Pebble opening a store whose write-ahead log must be flushed
// on a disk with no space left does not fail: its flush fails in the
// background, is retried, and Open never returns (observed: not listening,
// not exiting, a stack trace in the log every 150 ms). Open therefore checks
// the free space before it opens anything, and gives up on an open that hits
// a full disk instead of waiting for it.

// ErrDiskFull marks an Open refused because the disk holding the data
// directory is full, or fuller than Options.MinFreeBytes allows.
var ErrDiskFull = errors.New("the disk is full")

// FreeBytes returns the bytes free for unprivileged use on the disk holding
// the store.
func (s *Store) FreeBytes() (uint64, error) { return freeBytes(s.fs, s.dir) }

func freeBytes(fs vfs.FS, dir string) (uint64, error) {
	u, err := fs.GetDiskUsage(dir)
	if err != nil {
		return 0, err
	}
	return u.AvailBytes, nil
}

// checkFree refuses to open dir when its disk has less than min bytes free.
// A file system that cannot tell (an in-memory one) passes.
func checkFree(fs vfs.FS, dir string, min uint64) error {
	if min == 0 {
		return nil
	}
	free, err := freeBytes(fs, dir)
	if err != nil {
		return nil
	}
	if free < min {
		return fmt.Errorf("pebble: %w: the disk holding %s has %s free, less than the %s needed to open and write: free some space, or lower the minimum (serve --min-free)",
			ErrDiskFull, dir, Bytes(free), Bytes(min))
	}
	return nil
}

// openDB opens the Pebble database, giving up as soon as one of its
// background operations finds the disk full (full receives those errors).
// An open that was given up on keeps running in the background; the caller
// is expected to stop the process.
func openDB(dir string, po *pebbledb.Options, full <-chan error) (*pebbledb.DB, error) {
	type result struct {
		db  *pebbledb.DB
		err error
	}
	done := make(chan result, 1)
	go func() {
		db, err := pebbledb.Open(dir, po)
		done <- result{db, err}
	}()
	select {
	case r := <-done:
		return r.db, r.err
	case err := <-full:
		return nil, fmt.Errorf("%w: opening the store needs to write, and the disk holding %s has no space left (%v): free some space and start again", ErrDiskFull, dir, err)
	}
}

// isDiskFull reports whether err is the operating system's "no space left
// on device".
func isDiskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// diskFullLogEvery bounds how often the same full-disk error of a
// background operation is logged: Pebble retries them every few
// milliseconds.
const diskFullLogEvery = 10 * time.Second

// Bytes formats a byte count for people: 512 MiB, 3.2 GiB.
type Bytes uint64

func (b Bytes) String() string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", uint64(b))
	}
	div, exp := uint64(unit), 0
	for n := uint64(b) / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	v := float64(b) / float64(div)
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %ciB", int64(v), "KMGTPE"[exp])
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[exp])
}
