package engine

import (
	"context"
	"errors"

	"github.com/stockd/stockd"
)

// Retired ids. Once a settled entity's retention has passed, its partition
// retires it (see stockd.EntitiesRetired) and, when the retirement is durable,
// the registry forgets its key. From then on the id is answered from the
// store's retired record: the command is decided against a State holding just
// that entity (stockd.RestoreRetired), which for a settled entity can only
// replay or refuse, and its answer is read with the same views as before.
//
// The cost falls only on what needs it: a repeat or a read of a retired id
// pays one point read of the store; a new id pays one lookup that the store's
// bloom filters answer "never retired", and only once the store has retired
// anything at all.

// errRetired is a partition's answer to a request for an entity the
// registry routed to it but whose retirement the partition is writing: the
// caller, which receives it only once that write is durable, answers from the
// retired record.
var errRetired = errors.New("engine: entity retired")

// retiredState returns a State holding the retired entity of key, and false
// if key was never retired.
func (e *Engine) retiredState(ctx context.Context, key stockd.Key) (*stockd.State, bool, error) {
	rec, ok, err := e.store.LookupRetired(ctx, key.String())
	if err != nil || !ok {
		return nil, false, err
	}
	st, err := stockd.RestoreRetired(rec, len(e.slots), e.opts.Limits)
	if err != nil {
		e.log.Error("retired record cannot be read", "key", key.String(), "err", err)
		return nil, false, stockd.Errorf(stockd.CodeInternal, "the record of %s %q cannot be read", key.Kind, key.ID)
	}
	if o := e.opts.Observer; o != nil {
		o.AnsweredRetired()
	}
	return st, true, nil
}

// fromRetired answers cmd, which names the entity of key, from its retired
// record. fallback is the error to return if key was never retired.
func (e *Engine) fromRetired(ctx context.Context, key stockd.Key, cmd stockd.Command, result answerer, fallback error) (bool, error) {
	st, ok, err := e.retiredState(ctx, key)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, fallback
	}
	return e.answerRetired(st, key, cmd, result)
}

// answerRetired answers cmd from st, the State RestoreRetired made of key's
// retired record.
func (e *Engine) answerRetired(st *stockd.State, key stockd.Key, cmd stockd.Command, result answerer) (bool, error) {
	d, err := st.Decide(cmd, e.opts.Now())
	if err != nil {
		return false, err
	}
	if !d.Replay || len(d.Events) > 0 {
		// A settled entity can only be repeated or refused; anything else
		// would mean the retired record disagrees with the rules.
		e.log.Error("a command would change a retired entity", "key", key.String())
		return false, stockd.Errorf(stockd.CodeConflict, "%s %q is settled and can no longer change", key.Kind, key.ID)
	}
	if result != nil {
		if err := result.store(st); err != nil {
			return false, err
		}
	}
	return false, nil
}

// retiredView reads a retired entity with view, or returns notFound if key
// was never retired.
func retiredView[T any](ctx context.Context, e *Engine, key stockd.Key, view func(*stockd.State) (T, bool)) (T, error) {
	var zero T
	st, ok, err := e.retiredState(ctx, key)
	if err != nil {
		return zero, err
	}
	if ok {
		if v, ok := view(st); ok {
			return v, nil
		}
	}
	return zero, notFoundKey(key)
}
