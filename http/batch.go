package http

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/stockd/stockd"
)

// BatchBody is the body of POST /v1/batch: many operations in one request.
type BatchBody struct {
	Operations []BatchOperation `json:"operations"`
}

// checkNames checks the names of the batch and of its operations exactly;
// each operation's body is checked when it is decoded.
func (*BatchBody) checkNames(data []byte) error {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(data, &outer); err != nil {
		return badRequest("malformed JSON: %s", describeJSONError(err))
	}
	for k := range outer {
		if k != "operations" {
			return badRequest("malformed JSON: unknown field %q (names are case-sensitive)", k)
		}
	}
	var ops []map[string]json.RawMessage
	if err := json.Unmarshal(outer["operations"], &ops); err != nil {
		return nil // not a list: the decoder has already said so
	}
	for i, op := range ops {
		for k := range op {
			if k != "op" && k != "idempotency_key" && k != "body" {
				return badRequest("malformed JSON: unknown field %q in operations[%d] (names are case-sensitive)", k, i)
			}
		}
	}
	return nil
}

// BatchOperation is one operation of a batch. Op names it: "receive",
// "adjust", "count", "transfer", "arrive", "reserve", "commit", "release" or
// "extend". Body is what the operation's own route takes, plus, for the
// operations on an existing entity, its "id". IdempotencyKey plays the part of
// the Idempotency-Key header.
type BatchOperation struct {
	Op             string          `json:"op"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Body           json.RawMessage `json:"body"`
}

// BatchResult is the outcome of one operation: its HTTP status and either the
// entity (Body) or the problem.
type BatchResult struct {
	Status  int      `json:"status"`
	Body    any      `json:"body,omitempty"`
	Problem *Problem `json:"problem,omitempty"`
}

// BatchResponse is the answer of POST /v1/batch: one result per operation,
// in order.
type BatchResponse struct {
	Results []BatchResult `json:"results"`
}

// Bodies of the operations on existing entities, as they appear in a batch.
type (
	idBody struct {
		ID string `json:"id"`
	}
	commitOp struct {
		ID    string              `json:"id"`
		Lines []stockd.CommitLine `json:"lines"`
	}
	extendOp struct {
		ID  string `json:"id"`
		TTL string `json:"ttl"`
	}
)

// postBatch carries out every operation of a batch at once: they reach their
// partitions together and share their group commits, which is what makes a
// batch cheaper than as many requests. Operations are independent: one that
// depends on another of the same batch (a commit of a reservation the batch
// makes) belongs in a later request.
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b BatchBody
	if err := s.decodeBody(w, r, &b, false); err != nil {
		return 0, nil, err
	}
	if len(b.Operations) == 0 {
		return 0, nil, stockd.Errorf(stockd.CodeInvalid, "a batch needs at least one operation")
	}
	if len(b.Operations) > s.cfg.MaxBatch {
		return 0, nil, stockd.Errorf(stockd.CodeInvalid, "a batch may have at most %d operations, got %d", s.cfg.MaxBatch, len(b.Operations))
	}
	out := BatchResponse{Results: make([]BatchResult, len(b.Operations))}
	var wg sync.WaitGroup
	for i, op := range b.Operations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, v, err := s.runOperation(r.Context(), op)
			if err != nil {
				p := problemFor(r.Context(), s.log, err, r.URL.Path)
				out.Results[i] = BatchResult{Status: p.Status, Problem: &p}
				return
			}
			out.Results[i] = BatchResult{Status: status, Body: v}
		}()
	}
	wg.Wait()
	return http.StatusOK, out, nil
}

// runOperation decodes and carries out one batch operation.
func (s *Server) runOperation(ctx context.Context, op BatchOperation) (int, any, error) {
	decode := func(dst any) error { return decodeJSON(op.Body, dst, false) }
	switch op.Op {
	case "receive":
		var b ReceiptBody
		if err := decode(&b); err != nil {
			return 0, nil, err
		}
		v, isNew, err := s.svc.Receive(ctx, b.Command())
		return created(isNew), v, err
	case "adjust":
		var b AdjustmentBody
		if err := decode(&b); err != nil {
			return 0, nil, err
		}
		v, isNew, err := s.svc.Adjust(ctx, b.Command())
		return created(isNew), v, err
	case "count":
		var b CountBody
		if err := decode(&b); err != nil {
			return 0, nil, err
		}
		c, err := b.Command()
		if err != nil {
			return 0, nil, err
		}
		v, isNew, err := s.svc.Count(ctx, c)
		return created(isNew), v, err
	case "transfer":
		var b TransferBody
		if err := decode(&b); err != nil {
			return 0, nil, err
		}
		v, isNew, err := s.svc.Transfer(ctx, b.Command())
		return created(isNew), v, err
	case "arrive":
		var b idBody
		if err := decode(&b); err != nil {
			return 0, nil, err
		}
		v, err := s.svc.ArriveTransfer(ctx, stockd.ArriveTransfer{ID: b.ID})
		return http.StatusOK, v, err
	case "reserve":
		var b ReservationBody
		if err := decode(&b); err != nil {
			return 0, nil, err
		}
		c, err := b.Command()
		if err != nil {
			return 0, nil, err
		}
		v, isNew, err := s.svc.Reserve(ctx, c)
		return created(isNew), v, err
	case "commit":
		var b commitOp
		if err := decode(&b); err != nil {
			return 0, nil, err
		}
		v, err := s.svc.Commit(ctx, stockd.CommitReservation{ID: b.ID, Lines: b.Lines, Key: op.IdempotencyKey})
		return http.StatusOK, v, err
	case "release":
		var b idBody
		if err := decode(&b); err != nil {
			return 0, nil, err
		}
		v, err := s.svc.Release(ctx, stockd.ReleaseReservation{ID: b.ID, Key: op.IdempotencyKey})
		return http.StatusOK, v, err
	case "extend":
		var b extendOp
		if err := decode(&b); err != nil {
			return 0, nil, err
		}
		ttl, err := duration("ttl", b.TTL)
		if err != nil {
			return 0, nil, err
		}
		v, err := s.svc.Extend(ctx, stockd.ExtendReservation{ID: b.ID, TTL: ttl, Key: op.IdempotencyKey})
		return http.StatusOK, v, err
	}
	return 0, nil, badRequest("unknown operation %q: use receive, adjust, count, transfer, arrive, reserve, commit, release or extend", op.Op)
}
