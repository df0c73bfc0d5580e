package http

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// batchSeeds are batch requests covering every batchable operation, plain
// and in the forms the codec declines or must refuse.
var batchSeeds = []string{
	`{"operations":[{"op":"reserve","body":{"id":"c1","ttl":"15m","customer":"cu","region":"eu","lines":[{"sku":"A","quantity":1},{"sku":"B","quantity":2,"location":"w1"},{"sku":"C","quantity":3,"locations":["w1","w2"],"split":true}]}}]}`,
	`{"operations":[{"op":"commit","idempotency_key":"k1","body":{"id":"c1"}},{"op":"commit","body":{"id":"c2","lines":[{"sku":"A","quantity":1}]}}]}`,
	`{"operations":[{"op":"release","idempotency_key":"k2","body":{"id":"c1"}}]}`,
	`{"operations":[{"op":"extend","idempotency_key":"k3","body":{"id":"c1","ttl":"1h"}}]}`,
	`{"operations":[{"op":"receive","body":{"id":"r1","sku":"A","location":"w1","quantity":10,"lot":"L1","best_before":"2099-01-01"}}]}`,
	`{"operations":[{"op":"adjust","body":{"id":"a1","sku":"A","location":"w1","delta":-2,"reason":"lost","lot":"L1"}}]}`,
	`{"operations":[{"op":"count","body":{"id":"n1","sku":"A","location":"w1","on_hand":0}},{"op":"count","body":{"id":"n2","sku":"A","location":"w1","on_hand":null}}]}`,
	`{"operations":[{"op":"transfer","body":{"id":"t1","sku":"A","from":"w1","to":"w2","quantity":3}}]}`,
	`{"operations":[{"op":"arrive","body":{"id":"t1"}}]}`,
	` { "operations" : [ { "body" : { "id" : "c\u00e9\n\"" , "lines" : [ ] } , "op" : "reserve" } ] } `,
	`{"operations":[{"op":"explode","body":{"x":[1,2.5e3,true,null,{"y":"z"}]}}]}`,
	`{"operations":[{"op":null,"idempotency_key":null,"body":null},{"op":"reserve"}]}`,
	`{"operations":null}`,
	`{"operations":[]}`,
	`{"operations":[],"operations":[]}`,
	`{"Operations":[]}`,
	`{"operations":[{"op":"reserve","body":{"id":"c","lines":[{"sku":"A","quantity":1,"quantity":2}]}}]}`,
	`{"operations":[{"op":"explode","body":{"a":1,"a":2}}]}`,
	`{"operations":[{"op":"reserve","body":{"ID":"c","lines":[]}}]}`,
	`{"operations":[{"op":"reserve","body":{"id":"c","lines":[{"SKU":1}]}}]}`,
	`{"operations":[{"op":"receive","body":{"id":"r","sku":"A","location":"w1","quantity":1.5}}]}`,
	`{"operations":[{"op":"receive","body":{"id":"r","sku":"A","location":"w1","quantity":"1"}}]}`,
	`{"operations":[{"op":"receive","body":{"id":"r","sku":"A","location":"w1","quantity":99999999999999999999}}]}`,
	`{"operations":[{"op":"receive","body":{"id":"r","sku":"A","location":"w1","quantity":-9223372036854775808}}]}`,
	`{"operations":[{"op":"receive","body":{"id":"r","sku":"A","location":"w1","quantity":9223372036854775808}}]}`,
	`{"operations":[{"op":"receive","body":{"id":"r","sku":"A","location":"w1","quantity":1,"bogus":true}}]}`,
	`{"operations":[{"op":"reserve","body":{"id":"\ud83d\ude00","lines":[]}}]}`,
	"{\"operations\":[{\"op\":\"reserve\",\"body\":{\"id\":\"\xff\",\"lines\":[]}}]}",
	`{"operations":[{"op":"reserve","body":{"id":"c","lines":[null]}}]}`,
	`{"operations":[{"op":"reserve","body":{"id":"c","lines":[{"sku":"A","quantity":1,"locations":[null]}]}}]}`,
	`{"operations":[{"op":"\u0072eserve","body":{"\u0069d":"c","lines":[]}}]}`,
	`{"operations":[{"op":"reserve","body":{}}]} {}`,
	`{"operations":[{"op":"reserve","body":{}}]`,
	`{"operations":[{"op":"reserve","body":{},}]}`,
	`{"operations":[{"op":"extend","body":{"id":"c","ttl":60}}]}`,
	`{"operations":[{"op":"reserve","body":{"id":"c","lines":{"sku":"A"}}}]}`,
	`{"operations":[{"op":"reserve","body":[]}]}`,
	`{"operations":[{"op":"commit"}]}`,
	`{"operations":{}}`,
	`[]`,
	``,
	"\u00a0",
}

// batchAnswer is what a batch request decodes to, as comparable values:
// the refusal of the whole batch, or each operation with its request (or
// the refusal of its body).
type batchAnswer struct {
	refusal *api.Problem
	ops     []api.BatchOperation
	reqs    []any
}

func problemOf(err error) *api.Problem {
	p, _ := problemFor(context.Background(), slog.Default(), err, "/v1/batch")
	return &p
}

// decodeBatchWith decodes a batch request as postBatch and runOperation
// do, with the batch codec or (fast false) with decodeJSON alone.
func decodeBatchWith(data []byte, fast bool) batchAnswer {
	var a batchAnswer
	ok := false
	if fast {
		a.ops, ok = decodeBatch(data)
	}
	if !ok {
		var b api.BatchRequest
		if err := decodeJSON(data, &b, batchNames, batchDepth, false); err != nil {
			return batchAnswer{refusal: problemOf(err)}
		}
		a.ops = b.Operations
	}
	for _, op := range a.ops {
		h, ok := api.Batchable(op.Op)
		if !ok {
			a.reqs = append(a.reqs, nil)
			continue
		}
		req := reflect.New(h.Op().Request)
		if fast && decodeOperation(op.Body, op.IdempotencyKey, req.Interface()) {
			a.reqs = append(a.reqs, req.Interface())
			continue
		}
		if err := decodeJSON(op.Body, req.Interface(), api.JSONNames(req.Elem().Type()), anyDepth, false); err != nil {
			a.reqs = append(a.reqs, problemOf(err))
			continue
		}
		for _, p := range api.BindingOf(req.Elem().Type()).Header {
			if p.Name == "Idempotency-Key" {
				req.Elem().Field(p.Index).SetString(op.IdempotencyKey)
			}
		}
		a.reqs = append(a.reqs, req.Interface())
	}
	return a
}

// checkBatchDecode requires the batch codec to decode data as decodeJSON
// does: whatever decodeBatch and decodeOperation accept, decodeJSON accepts
// with the same values, and every answer, refusals included, is the same.
func checkBatchDecode(t *testing.T, data []byte) {
	t.Helper()
	want := decodeBatchWith(data, false)
	if ops, ok := decodeBatch(data); ok {
		if want.refusal != nil {
			t.Fatalf("decodeBatch took %q, which decodeJSON refuses: %s", data, want.refusal.Detail)
		}
		if len(ops) != len(want.ops) {
			t.Fatalf("decodeBatch found %d operations in %q, decodeJSON %d", len(ops), data, len(want.ops))
		}
		for i, op := range ops {
			w := want.ops[i]
			if op.Op != w.Op || op.IdempotencyKey != w.IdempotencyKey || !bytes.Equal(op.Body, w.Body) {
				t.Fatalf("operation %d of %q: decodeBatch %+v, decodeJSON %+v", i, data, op, w)
			}
		}
	}
	got := decodeBatchWith(data, true)
	if !reflect.DeepEqual(got.refusal, want.refusal) {
		t.Fatalf("%q: the batch codec answers %+v, decodeJSON %+v", data, got.refusal, want.refusal)
	}
	for i := range want.reqs {
		if !reflect.DeepEqual(got.reqs[i], want.reqs[i]) {
			t.Fatalf("%q: operation %d decodes to %#v with the batch codec, %#v with decodeJSON", data, i, got.reqs[i], want.reqs[i])
		}
	}
}

// FuzzBatchDecode feeds the same bytes to the batch codec and to
// decodeJSON, the reference, and requires the same operations, requests
// and refusals.
func FuzzBatchDecode(f *testing.F) {
	for _, s := range batchSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkBatchDecode(t, data) })
}

// TestBatchCodecTakesPlainRequests: the codec decodes plain batches itself,
// every batchable operation included, rather than declining them all.
func TestBatchCodecTakesPlainRequests(t *testing.T) {
	for _, s := range batchSeeds[:10] {
		ops, ok := decodeBatch([]byte(s))
		if !ok {
			t.Fatalf("decodeBatch declined %s", s)
		}
		for _, op := range ops {
			h, _ := api.Batchable(op.Op)
			if !decodeOperation(op.Body, op.IdempotencyKey, reflect.New(h.Op().Request).Interface()) {
				t.Errorf("decodeOperation declined %s %s", op.Op, op.Body)
			}
		}
	}
	seen := map[string]bool{}
	for _, s := range batchSeeds[:10] {
		ops, _ := decodeBatch([]byte(s))
		for _, op := range ops {
			seen[op.Op] = true
		}
	}
	for _, name := range batchOpNames() {
		if !seen[name] {
			t.Errorf("no plain seed of %s", name)
		}
	}
}

// TestBatchResponseEncoding: appendBatchResponse writes what json.Marshal
// writes.
func TestBatchResponseEncoding(t *testing.T) {
	body, _ := json.Marshal(benchReservation(1))
	results := []api.BatchResult{
		{Status: 201, Body: body},
		{Status: 409, Problem: &api.Problem{Type: "/problems/insufficient_stock", Title: "Insufficient stock", Status: 409, Detail: `<"a" & 'b'>` + "\u2028\xff\x01", Code: stockd.CodeInsufficientStock,
			Instance: "/v1/batch", Lines: []stockd.Shortfall{{SKU: "A", Requested: 2, Available: 1}, {SKU: "B", Requested: 3}}}},
		{Status: 409, Problem: &api.Problem{Type: "/problems/not_held", Title: "Reservation not held", Status: 409, Detail: "d", Code: stockd.CodeNotHeld, ReservationStatus: stockd.StatusCommitted}},
		{Status: 400, Problem: &api.Problem{Lines: []stockd.Shortfall{}}},
	}
	for _, rs := range [][]api.BatchResult{results, {}, nil} {
		want, err := json.Marshal(api.BatchResponse{Results: rs})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendBatchResponse(nil, rs); !bytes.Equal(got, want) {
			t.Errorf("appendBatchResponse:\n%s\njson.Marshal:\n%s", got, want)
		}
	}
}
