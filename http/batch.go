package http

import (
	"context"
	"encoding/json"
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
	var b api.BatchRequest
	if err := s.readJSON(w, r, &b, batchNames, batchDepth, false); err != nil {
		return 0, nil, err
	}
	if len(b.Operations) == 0 {
		return 0, nil, stockd.Errorf(stockd.CodeInvalid, "a batch needs at least one operation")
	}
	if len(b.Operations) > s.cfg.MaxBatch {
		return 0, nil, stockd.Errorf(stockd.CodeInvalid, "a batch may have at most %d operations, got %d", s.cfg.MaxBatch, len(b.Operations))
	}
	out := api.BatchResponse{Results: make([]api.BatchResult, len(b.Operations))}
	var wg sync.WaitGroup
	for i, op := range b.Operations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body, err := s.runOperation(ctx, key, op)
			if err != nil {
				p, _ := problemFor(ctx, s.log, err, r.URL.Path)
				out.Results[i] = api.BatchResult{Status: p.Status, Problem: &p}
				return
			}
			out.Results[i] = api.BatchResult{Status: status, Body: body}
		}()
	}
	wg.Wait()
	body, err := json.Marshal(out)
	return http.StatusOK, body, err
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
