package pebble

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/stockd/stockd"
)

// lowSpaceFS reports avail bytes free, whatever the disk has.
type lowSpaceFS struct {
	vfs.FS
	avail uint64
}

func (fs lowSpaceFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	u, err := fs.FS.GetDiskUsage(path)
	u.AvailBytes = fs.avail
	return u, err
}

// TestOpenRefusesTooLittleFreeSpace: with less free space than
// MinFreeBytes, Open fails at once, saying how much is free and what to do,
// and touches nothing.
func TestOpenRefusesTooLittleFreeSpace(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir, Options{FS: lowSpaceFS{vfs.Default, 3 << 20}, MinFreeBytes: 256 << 20, Logger: testLogger})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Open with 3 MiB free and a minimum of 256 MiB: %v, want ErrDiskFull", err)
	}
	for _, want := range []string{dir, "3 MiB free", "256 MiB", "free some space"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	s, err := Open(dir, Options{FS: lowSpaceFS{vfs.Default, 512 << 20}, MinFreeBytes: 256 << 20, Logger: testLogger})
	if err != nil {
		t.Fatalf("Open with 512 MiB free: %v", err)
	}
	defer s.Close()
	if free, err := s.FreeBytes(); err != nil || free != 512<<20 {
		t.Errorf("FreeBytes = %d, %v", free, err)
	}
}

// TestOpenOnAFullDiskFailsFast reopens a store whose write-ahead log must be
// written out on a disk where every new table file finds no space: Open
// used to wait for the failing flush for ever; now it fails, saying the disk
// is full.
func TestOpenOnAFullDiskFailsFast(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{Partitions: 1})
	ctx := context.Background()
	var events []stockd.Event
	for i := range 2000 {
		events = append(events, stockd.Event{Partition: 0, Position: uint64(i + 1), SKU: "A", Version: uint64(i + 1),
			Time: time.Unix(1, 0), Data: stockd.StockReceived{Location: "w1", Quantity: 1}})
	}
	if err := s.Append(ctx, 0, 0, stockd.Batch{Events: events}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	full := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && strings.HasSuffix(op.Path, ".sst") {
			return syscall.ENOSPC
		}
		return nil
	}))
	type result struct {
		s   *Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Open(dir, Options{FS: full, Logger: testLogger})
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			r.s.Close()
			t.Skip("this Pebble opened without writing a table; the full-disk path was not reached")
		}
		if !errors.Is(r.err, ErrDiskFull) || !strings.Contains(r.err.Error(), "no space left") {
			t.Errorf("Open on a full disk: %v, want ErrDiskFull saying no space is left", r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Open on a full disk has not returned after 60 s")
	}
}
