package client

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// WithBatching makes the client coalesce concurrent commands into POST
// /v1/batch requests, as TigerBeetle's clients do: while up to inFlight
// batch requests are on their way, commands that arrive wait, and the next
// request carries up to maxOps of them at once. A lone command still goes
// at once, in a batch of one. Each command keeps its own answer and error,
// exactly as if it had been sent alone; reads are not batched. Defaults:
// maxOps 1000 (the server's --max-batch), inFlight 2.
//
// A server that is far away or busy then costs one round trip and one
// group commit per batch rather than per command: on one hot SKU over
// loopback, 64 concurrent callers reach several times the throughput of one
// request per command (see README, stockd bench target stockd-client).
func WithBatching(maxOps, inFlight int) Option {
	return func(c *Client) {
		if maxOps <= 0 {
			maxOps = 1000
		}
		if inFlight <= 0 {
			inFlight = 2
		}
		c.batch = &batcher{c: c, maxOps: maxOps, inFlight: inFlight}
	}
}

// batcher gathers commands and sends them in batches.
type batcher struct {
	c        *Client
	maxOps   int
	inFlight int

	mu      sync.Mutex
	pending []*queued
	sending int // batch requests on their way
}

// queued is one command waiting for its batch, and then for its result.
type queued struct {
	op   api.BatchOperation
	done chan batchOutcome
}

type batchOutcome struct {
	result api.BatchResult
	err    error // the whole batch failed
}

// send queues op and waits for its result.
func (b *batcher) send(ctx context.Context, op api.BatchOperation) (api.BatchResult, error) {
	q := &queued{op: op, done: make(chan batchOutcome, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, q)
	start := b.sending < b.inFlight
	if start {
		b.sending++
	}
	b.mu.Unlock()
	if start {
		go b.flush()
	}
	select {
	case o := <-q.done:
		return o.result, o.err
	case <-ctx.Done():
		// The command may still be carried out with its batch: as with a
		// request that got no answer, retry it with the same id.
		return api.BatchResult{}, ctx.Err()
	}
}

// flush sends batches while commands wait, then stops.
func (b *batcher) flush() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), b.maxOps)
		if n == 0 {
			b.sending--
			b.mu.Unlock()
			return
		}
		batch := make([]*queued, n)
		copy(batch, b.pending)
		b.pending = append(b.pending[:0], b.pending[n:]...)
		b.mu.Unlock()
		b.post(batch)
	}
}

// post sends one batch request and hands each command its result. The
// request is encoded and its answer decoded by hand (see appendBatchRequest). A batch
// carries no caller's context: commands already gathered are sent whatever
// happens to one of their callers.
func (b *batcher) post(batch []*queued) {
	var res api.BatchResponse
	status, data, err := b.c.send(context.Background(), api.Batch.Method, api.Batch.Path, nil, appendBatchRequest(make([]byte, 0, 128*len(batch)), batch), nil)
	if err == nil {
		if res, err = decodeBatchResponse(data); err != nil {
			err = notExpected(api.Batch.Method, api.Batch.Path, status, err)
		}
	}
	if err == nil && len(res.Results) != len(batch) {
		err = &stockd.Error{Code: stockd.CodeInternal, Message: fmt.Sprintf("the server answered %d results for %d operations", len(res.Results), len(batch))}
	}
	for i, q := range batch {
		if err != nil {
			q.done <- batchOutcome{err: err}
			continue
		}
		q.done <- batchOutcome{result: res.Results[i]}
	}
}

// batched carries out a batchable command through the batcher: its body is
// the request's JSON with the path fields in it (a batch operation has no
// path), its idempotency key travels beside it, and its answer is decoded
// into the operation's own response type.
func batched[Req, Res any](ctx context.Context, c *Client, ep *api.Endpoint[Req, Res], req *Req) (Res, bool, error) {
	var out Res
	body, ok := api.AppendEntity(make([]byte, 0, 128), req)
	if !ok {
		var err error
		if body, err = json.Marshal(req); err != nil {
			return out, false, fmt.Errorf("client: encoding the request: %w", err)
		}
	}
	op := api.BatchOperation{Op: ep.BatchName, Body: body}
	v := reflect.ValueOf(req).Elem()
	for _, p := range api.BindingOf(v.Type()).Header {
		if p.Name == "Idempotency-Key" {
			op.IdempotencyKey = v.Field(p.Index).String()
		}
	}
	r, err := c.batch.send(ctx, op)
	if err != nil {
		return out, false, err
	}
	if err := ResultError(r); err != nil {
		return out, false, err
	}
	if err := decodeEntity(r.Body, &out); err != nil {
		return out, false, &stockd.Error{Code: stockd.CodeInternal, Message: fmt.Sprintf("a %s result is not the expected JSON: %v", ep.BatchName, err)}
	}
	return out, r.Status == 201, nil
}
