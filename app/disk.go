package app

import (
	"fmt"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/pebble"
)

// minFree is the free space to keep, in bytes; 0 means no guard.
func (a *App) minFree() uint64 {
	if a.cfg.MinFreeBytes < 0 {
		return 0
	}
	return uint64(a.cfg.MinFreeBytes)
}

// freeSpacer is a store that can tell the free space of the disk holding its
// data: the embedded store. A store on a server (PostgreSQL) cannot, and its
// disk is the server's to watch.
type freeSpacer interface {
	FreeBytes() (uint64, error)
}

// resumeMargin is how much more than the minimum must be free before writes
// resume: without it, a disk at the edge would flip between refusing and
// taking commands with every small write and compaction.
const resumeMargin = 1.1

// readOnlyRetry is the pause a client refused for want of disk space is
// asked to take: freeing space takes an operator.
const readOnlyRetry = 30 * time.Second

// guardDisk looks at the free space every DiskCheckEvery until Close, and
// makes the engine read-only while it is below the minimum. Holds and lots
// still expire meanwhile: only callers' commands are refused.
func (a *App) guardDisk() {
	defer close(a.guardDone)
	t := time.NewTicker(a.cfg.DiskCheckEvery)
	defer t.Stop()
	min := a.minFree()
	for {
		a.checkDisk(min)
		select {
		case <-a.stopGuard:
			return
		case <-t.C:
		}
	}
}

func (a *App) checkDisk(min uint64) {
	free, err := a.Store.(freeSpacer).FreeBytes()
	if err != nil {
		return // a file system that cannot tell is not guarded
	}
	readOnly := a.Engine.ReadOnly() != nil
	switch {
	case free < min:
		msg := fmt.Sprintf("read-only: the disk holding the data has %s free, below the %s stockd keeps for its own writes; commands are refused until space is freed",
			pebble.Bytes(free), pebble.Bytes(min))
		a.Engine.SetReadOnly(&stockd.Error{Code: stockd.CodeUnavailable, Message: msg, RetryAfter: readOnlyRetry})
		if !readOnly {
			a.log.Error("disk nearly full: refusing commands until space is freed", "free", pebble.Bytes(free).String(), "min_free", pebble.Bytes(min).String())
		}
	case readOnly && float64(free) >= float64(min)*resumeMargin:
		a.Engine.SetReadOnly(nil)
		a.log.Info("disk space freed: taking commands again", "free", pebble.Bytes(free).String())
	}
}
