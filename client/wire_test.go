package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// TestBatchWireMatchesEncodingJSON: the batcher's hand-written request is
// what json.Marshal writes, and its readers decode what json.Unmarshal
// decodes, or decline.
func TestBatchWireMatchesEncodingJSON(t *testing.T) {
	var batch []*queued
	var ops []api.BatchOperation
	for _, req := range []any{
		&api.ReservationRequest{ID: "c<1>", TTL: "15m", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}},
		&api.CommitRequest{ID: "c1", IdempotencyKey: "k&1"},
		&api.ReceiptRequest{ID: "r", SKU: "A", Location: "w1", Quantity: 3},
	} {
		body, ok := api.AppendEntity(nil, req)
		if !ok {
			t.Fatalf("%T declined", req)
		}
		op := api.BatchOperation{Op: "op", Body: body}
		if c, ok := req.(*api.CommitRequest); ok {
			op.IdempotencyKey = c.IdempotencyKey
		}
		batch = append(batch, &queued{op: op})
		ops = append(ops, op)
	}
	batch = append(batch, &queued{op: api.BatchOperation{Op: "nobody"}})
	ops = append(ops, api.BatchOperation{Op: "nobody"})
	want, err := json.Marshal(api.BatchRequest{Operations: ops})
	if err != nil {
		t.Fatal(err)
	}
	if got := appendBatchRequest(nil, batch); !bytes.Equal(got, want) {
		t.Errorf("appendBatchRequest:\n%s\njson.Marshal:\n%s", got, want)
	}

	at := time.Date(2026, 12, 2, 16, 56, 7, 123456789, time.UTC)
	res := stockd.Reservation{ID: "c\u00e91", Status: stockd.StatusHeld, Customer: "cu", CreatedAt: at, ExpiresAt: at.Add(time.Hour).In(time.FixedZone("", 3600)),
		Lines: []stockd.ReservationLine{{SKU: "A", Quantity: 1, Held: 1, Allocations: []stockd.Allocation{{Location: "w1", Quantity: 1}}}, {SKU: "B", Allocations: []stockd.Allocation{}}}}
	body, _ := json.Marshal(res)
	answer := []byte(`{"results":[{"status":201,"body":` + string(body) + `},{"status":409,"problem":{"type":"/problems/insufficient_stock","title":"t","status":409,"detail":"d","code":"insufficient_stock","lines":[{"sku":"A","requested":2,"available":1}]}}]}`)
	for _, data := range [][]byte{
		answer,
		[]byte(`{"results":[]}`),
		[]byte(`{"results":null}`),
		[]byte(`{"results":[{"status":200,"body":{"id":"x"},"extra":1}]}`),
		[]byte(`{"Results":[{"Status":200}]}`),
		[]byte(`{"results":[{"status":200,"body":null,"problem":null}]}`),
	} {
		var want api.BatchResponse
		wantErr := json.Unmarshal(data, &want)
		got, err := decodeBatchResponse(data)
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeBatchResponse(%s) = %+v, %v; json.Unmarshal %+v, %v", data, got, err, want, wantErr)
		}
	}
	if _, ok := readBatchResponse(answer); !ok {
		t.Errorf("readBatchResponse declined the server's answer %s", answer)
	}

	for _, data := range [][]byte{
		body,
		[]byte(`{"id":"x","lines":[]}`),
		[]byte(`{"id":"x","lines":null}`),
		[]byte(`{"ID":"x"}`),
		[]byte(`{"id":"x","id":"y"}`),
		[]byte(`{"id":"x","created_at":"2026-12-02T16:56:07.1+01:00","extra":[1]}`),
		[]byte(`{"id":"x","created_at":"yesterday"}`),
	} {
		var want stockd.Reservation
		wantErr := json.Unmarshal(data, &want)
		var got stockd.Reservation
		err := decodeEntity(data, &got)
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeEntity(%s) = %+v, %v; json.Unmarshal %+v, %v", data, got, err, want, wantErr)
		}
	}
	if _, ok := readReservation(body); !ok {
		t.Errorf("readReservation declined the server's answer %s", body)
	}
}

// BenchmarkBatchWire is the batcher's share of a batch of 100
// reservations: encoding each request and the batch, and decoding the
// answer and each reservation, with encoding/json (reflect) and by hand.
func BenchmarkBatchWire(b *testing.B) {
	at := time.Date(2026, 12, 2, 16, 56, 7, 123456789, time.UTC)
	reqs := make([]api.ReservationRequest, 100)
	answer := []byte(`{"results":[`)
	for i := range reqs {
		reqs[i] = api.ReservationRequest{ID: "run-c1-" + strconv.Itoa(i), TTL: "15m", Lines: []stockd.ReserveLine{{SKU: "hot", Quantity: 1}}}
		body, _ := json.Marshal(stockd.Reservation{ID: reqs[i].ID, Status: stockd.StatusHeld, CreatedAt: at, ExpiresAt: at.Add(15 * time.Minute),
			Lines: []stockd.ReservationLine{{SKU: "hot", Quantity: 1, Held: 1, Allocations: []stockd.Allocation{{Location: "w1", Quantity: 1}}}}})
		if i > 0 {
			answer = append(answer, ',')
		}
		answer = append(answer, `{"status":201,"body":`...)
		answer = append(answer, body...)
		answer = append(answer, '}')
	}
	answer = append(answer, "]}"...)
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ops := make([]api.BatchOperation, len(reqs))
			for i := range reqs {
				body, _ := json.Marshal(&reqs[i])
				ops[i] = api.BatchOperation{Op: "reserve", Body: body}
			}
			if _, err := json.Marshal(api.BatchRequest{Operations: ops}); err != nil {
				b.Fatal(err)
			}
			var out api.BatchResponse
			if err := json.Unmarshal(answer, &out); err != nil {
				b.Fatal(err)
			}
			for _, r := range out.Results {
				var v stockd.Reservation
				if err := json.Unmarshal(r.Body, &v); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			batch := make([]*queued, len(reqs))
			for i := range reqs {
				body, _ := api.AppendEntity(make([]byte, 0, 128), &reqs[i])
				batch[i] = &queued{op: api.BatchOperation{Op: "reserve", Body: body}}
			}
			appendBatchRequest(make([]byte, 0, 128*len(batch)), batch)
			out, err := decodeBatchResponse(answer)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range out.Results {
				var v stockd.Reservation
				if err := decodeEntity(r.Body, &v); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// FuzzBatchWire: what the batcher's readers take, json.Unmarshal decodes
// to the same values.
func FuzzBatchWire(f *testing.F) {
	f.Add([]byte(`{"results":[{"status":201,"body":{"id":"c1","status":"held","customer":"cu","created_at":"2026-12-02T16:56:07.123456789Z","expires_at":"2026-12-02T17:11:07+01:00","lines":[{"sku":"A","quantity":1,"held":1,"allocations":[{"location":"w1","quantity":1}]}]}},{"status":409,"problem":{"code":"insufficient_stock"}}]}`))
	f.Add([]byte(`{"id":"c\u00e9","status":"held","created_at":"2026-12-02T16:56:07Z","lines":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, ok := readBatchResponse(data); ok {
			var want api.BatchResponse
			if err := json.Unmarshal(data, &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("readBatchResponse(%q) = %+v; json.Unmarshal %+v, %v", data, got, want, err)
			}
		}
		if got, ok := readReservation(data); ok {
			var want stockd.Reservation
			if err := json.Unmarshal(data, &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("readReservation(%q) = %+v; json.Unmarshal %+v, %v", data, got, want, err)
			}
		}
	})
}
