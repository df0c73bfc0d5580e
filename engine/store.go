package engine

import "github.com/stockd/stockd"

// Store is what the engine needs of a stockd.Store: the log it appends to and
// recovers from, and the snapshots that shorten recovery. The engine neither
// reads checkpoints nor closes the store; whoever opened the store does. The
// optional capabilities (stockd.PipelinedAppender, stockd.GroupAppender,
// stockd.KeyGuard) are discovered on it by type assertion.
type Store interface {
	stockd.Log
	stockd.Snapshots
}
