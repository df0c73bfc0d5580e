package archive

import (
	"context"

	"github.com/stockd/stockd"
)

// Wrap returns store with its Log replaced by l, which must wrap it: reads go
// through the archive, and everything else (appends, snapshots, checkpoints,
// Close) to store. The optional capabilities stockd.GroupAppender (with
// stockd.PipelinedAppender when store has both, as the embedded store does,
// or alone, as the PostgreSQL store has it) and stockd.KeyGuard are kept
// when store has them: losing one would cost the engine its group commit.
func Wrap(store stockd.Store, l *Log) stockd.Store {
	w := wrapped{Log: l, store: store}
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
