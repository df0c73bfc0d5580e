package http

import (
	"context"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// batchNames are the names a batch request may use outside its operations'
// bodies, which are checked when each is decoded.
var batchNames = map[string]bool{"operations": true, "op": true, "idempotency_key": true, "body": true}

// batchDepth is how deep batchNames apply: the request object and its
// operation objects.
const batchDepth = 2

// postBatch carries out every operation of a batch at once: they reach their
// partitions together and share their group commits, which is what makes a
// batch cheaper than as many requests. Each operation is checked against the
// key's scopes on its own and answers as it would alone. Operations are
// independent: one that depends on another of the same batch (a commit of a
// reservation the batch makes) belongs in a later request.
func (s *Server) postBatch(ctx context.Context, key Key, w http.ResponseWriter, r *http.Request) (int, []byte, error) {
	buf, err := s.readBody(w, r)
	if err != nil {
		return 0, nil, err
	}
	defer releaseBody(buf) // the operations' bodies are slices of it
	ops, ok := decodeBatch(buf.Bytes())
	if !ok {
		// What the batch codec declines, decodeJSON refuses (and words)
		// or, for rare forms, takes.
		var b api.BatchRequest
		if err := decodeJSON(buf.Bytes(), &b, batchNames, batchDepth, false); err != nil {
			return 0, nil, err
		}
		ops = b.Operations
	}
	if len(ops) == 0 {
		return 0, nil, stockd.Errorf(stockd.CodeInvalid, "a batch needs at least one operation")
	}
	if len(ops) > s.cfg.MaxBatch {
		return 0, nil, stockd.Errorf(stockd.CodeInvalid, "a batch may have at most %d operations, got %d", s.cfg.MaxBatch, len(ops))
	}
	results := make([]api.BatchResult, len(ops))
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body, err := s.runOperation(ctx, key, op)
			if err != nil {
				p, _ := problemFor(ctx, s.log, err, r.URL.Path)
				results[i] = api.BatchResult{Status: p.Status, Problem: &p}
				return
			}
			results[i] = api.BatchResult{Status: status, Body: body}
		}()
	}
	wg.Wait()
	size := len(`{"results":[]}`)
	for i := range results {
		size += len(`{"status":200,"body":},`) + len(results[i].Body)
		if results[i].Problem != nil {
			size += 256
		}
	}
	return http.StatusOK, appendBatchResponse(make([]byte, 0, size), results), nil
}

// runOperation checks, decodes and carries out one batch operation. Its body
// is what the operation's route takes, with the route's path parameters
// (such as "id") as fields; idempotency_key stands for the header.
func (s *Server) runOperation(ctx context.Context, key Key, op api.BatchOperation) (int, []byte, error) {
	h, ok := api.Batchable(op.Op)
	if !ok {
		return 0, nil, badRequest("unknown operation %q: use %s", op.Op, strings.Join(batchOpNames(), ", "))
	}
	if err := key.authorize(h.Op().Scope); err != nil {
		return 0, nil, err
	}
	return h.Invoke(ctx, s.api, func(req any) error {
		if decodeOperation(op.Body, op.IdempotencyKey, req) {
			return nil
		}
		// What the batch codec declines, decodeJSON refuses (and words)
		// or, for rare forms, takes.
		v := reflect.ValueOf(req).Elem()
		if err := decodeJSON(op.Body, req, api.JSONNames(v.Type()), anyDepth, false); err != nil {
			return err
		}
		for _, p := range api.BindingOf(v.Type()).Header {
			if p.Name == "Idempotency-Key" {
				v.Field(p.Index).SetString(op.IdempotencyKey)
			}
		}
		return nil
	})
}

// batchOpNames lists the operations a batch may name, sorted.
func batchOpNames() []string {
	var names []string
	for _, h := range api.Operations {
		if n := h.Op().BatchName; n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
