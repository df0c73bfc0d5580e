package archive

import (
	"context"
	"time"

	"github.com/stockd/stockd"
)

// Wrap returns store with its Log replaced by l, which must wrap it: reads go
// through the archive, and everything else (appends, snapshots, checkpoints,
// Close) to store. The optional capabilities stockd.GroupAppender (with
// stockd.PipelinedAppender when store has both, as the embedded store does,
// or alone, as the PostgreSQL store has it) and stockd.KeyGuard are kept
// when store has them: losing one would cost the engine its group commit.
// A store several nodes share (PostgreSQL: GroupAppender, KeyGuard,
// KeyFinder, HeadReader and Leases together) keeps all of them.
func Wrap(store stockd.Store, l *Log) stockd.Store {
	w := wrapped{Log: l, store: store}
	if sh, ok := store.(sharedStore); ok {
		return shared{grouped{w, sh}, sh}
	}
	pipe, ok1 := store.(stockd.PipelinedAppender)
	group, ok2 := store.(stockd.GroupAppender)
	_, guard := store.(stockd.KeyGuard)
	switch {
	case ok1 && ok2 && guard:
		return guardedPipelined{pipelined{w, pipe, group}}
	case ok1 && ok2:
		return pipelined{w, pipe, group}
	case ok2 && guard:
		return guardedGrouped{grouped{w, group}}
	case ok2:
		return grouped{w, group}
	case guard:
		return guarded{w}
	}
	return w
}

type wrapped struct {
	*Log
	store stockd.Store
}

func (w wrapped) SaveSnapshot(ctx context.Context, s stockd.Snapshot) error {
	return w.store.SaveSnapshot(ctx, s)
}

func (w wrapped) LoadSnapshot(ctx context.Context, p int) (stockd.Snapshot, bool, error) {
	return w.store.LoadSnapshot(ctx, p)
}

func (w wrapped) Checkpoint(ctx context.Context, consumer string, p int) (stockd.Checkpoint, error) {
	return w.store.Checkpoint(ctx, consumer, p)
}

func (w wrapped) SetCheckpoint(ctx context.Context, consumer string, p int, c stockd.Checkpoint) error {
	return w.store.SetCheckpoint(ctx, consumer, p, c)
}

func (w wrapped) Close() error { return w.store.Close() }

type pipelined struct {
	wrapped
	pipe  stockd.PipelinedAppender
	group stockd.GroupAppender
}

func (w pipelined) BeginAppend(ctx context.Context, p int, expected uint64, batch stockd.Batch) (func() error, error) {
	return w.pipe.BeginAppend(ctx, p, expected, batch)
}

func (w pipelined) BeginAppendGroup(ctx context.Context, appends []stockd.Append) (func() error, error) {
	return w.group.BeginAppendGroup(ctx, appends)
}

// grouped keeps a GroupAppender of a store that does not pipeline.
type grouped struct {
	wrapped
	group stockd.GroupAppender
}

func (w grouped) BeginAppendGroup(ctx context.Context, appends []stockd.Append) (func() error, error) {
	return w.group.BeginAppendGroup(ctx, appends)
}

type guardedGrouped struct{ grouped }

func (guardedGrouped) GuardsKeys() {}

type guarded struct{ wrapped }

func (guarded) GuardsKeys() {}

type guardedPipelined struct{ pipelined }

func (guardedPipelined) GuardsKeys() {}

// sharedStore is what a store several nodes share has: the engine of a node
// serving some partitions needs every one of these.
type sharedStore interface {
	stockd.GroupAppender
	stockd.KeyGuard
	stockd.KeyFinder
	stockd.HeadReader
	stockd.Leases
}

// shared keeps every capability of a sharedStore.
type shared struct {
	grouped
	sh sharedStore
}

func (shared) GuardsKeys() {}

func (w shared) FindKey(ctx context.Context, key string) (stockd.KeyRecord, bool, error) {
	return w.sh.FindKey(ctx, key)
}

func (w shared) Heads(ctx context.Context) ([]uint64, error) { return w.sh.Heads(ctx) }

func (w shared) Heartbeat(ctx context.Context, n stockd.Node) error { return w.sh.Heartbeat(ctx, n) }

func (w shared) Leave(ctx context.Context, node string) error { return w.sh.Leave(ctx, node) }

func (w shared) Nodes(ctx context.Context) ([]stockd.Node, error) { return w.sh.Nodes(ctx) }

func (w shared) AcquireLease(ctx context.Context, p int, node string, ttl time.Duration) (stockd.Lease, bool, error) {
	return w.sh.AcquireLease(ctx, p, node, ttl)
}

func (w shared) RenewLease(ctx context.Context, l stockd.Lease, ttl time.Duration) (stockd.Lease, error) {
	return w.sh.RenewLease(ctx, l, ttl)
}

func (w shared) ReleaseLease(ctx context.Context, l stockd.Lease) error {
	return w.sh.ReleaseLease(ctx, l)
}

func (w shared) Leases(ctx context.Context) ([]stockd.Lease, error) { return w.sh.Leases(ctx) }
