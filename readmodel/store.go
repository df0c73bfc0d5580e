package readmodel

import (
	"context"

	"github.com/stockd/stockd"
)

// Store is what a Projection needs of a stockd.Store: it reads the log (the
// Log's Partitions and ReadPartition), starts from the engine's latest
// snapshot (Snapshots.LoadSnapshot) and keeps its own Checkpoints. It never
// appends, saves a snapshot or closes the store. The methods keep the
// contracts, and the crash invariants, of stockd.Log, stockd.Snapshots and
// stockd.Checkpoints.
type Store interface {
	Partitions() int
	ReadPartition(ctx context.Context, p int, after uint64, limit int) ([]stockd.Event, error)
	LoadSnapshot(ctx context.Context, p int) (stockd.Snapshot, bool, error)
	stockd.Checkpoints
}
