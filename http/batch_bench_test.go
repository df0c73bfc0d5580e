package http

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// benchBatchBody is a POST /v1/batch body of n reservations, as the
// stockd-batch bench target sends it.
func benchBatchBody(n int) []byte {
	b := []byte(`{"operations":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"op":"reserve","body":{"id":"run-b1-%d","ttl":"15m0s","lines":[{"sku":"hot","quantity":1}]}}`, i)
	}
	return append(b, `]}`...)
}

// benchReservation is a held reservation as the engine answers one.
func benchReservation(i int) stockd.Reservation {
	at := time.Date(2026, 12, 2, 16, 56, 7, 123456789, time.UTC)
	return stockd.Reservation{
		ID: fmt.Sprint("run-b1-", i), Status: stockd.StatusHeld, CreatedAt: at, ExpiresAt: at.Add(15 * time.Minute),
		Lines: []stockd.ReservationLine{{SKU: "hot", Quantity: 1, Held: 1, Allocations: []stockd.Allocation{{Location: "w1", Quantity: 1}}}},
	}
}

// BenchmarkBatchDecode decodes a batch of 100 reservations and their
// bodies as postBatch and runOperation do: with decodeJSON alone
// (reflect), as before the batch codec, and with the batch codec (hand).
func BenchmarkBatchDecode(b *testing.B) {
	data := benchBatchBody(100)
	for _, bc := range []struct {
		name string
		fast bool
	}{{"reflect", false}, {"hand", true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if a := decodeBatchWith(data, bc.fast); a.refusal != nil || len(a.reqs) != 100 {
					b.Fatalf("%+v", a)
				}
			}
		})
	}
}

// encodeBatchReflect is the reflective encoding of a batch's answer: each
// result's entity, then the whole response.
func encodeBatchReflect(rs []stockd.Reservation) ([]byte, error) {
	out := api.BatchResponse{Results: make([]api.BatchResult, len(rs))}
	for i := range rs {
		body, err := json.Marshal(rs[i])
		if err != nil {
			return nil, err
		}
		out.Results[i] = api.BatchResult{Status: 201, Body: body}
	}
	return json.Marshal(out)
}

// BenchmarkBatchEncode encodes the answer of a batch of 100 reservations:
// each reservation, then the response, with json.Marshal (reflect) and by
// hand.
func BenchmarkBatchEncode(b *testing.B) {
	rs := make([]stockd.Reservation, 100)
	for i := range rs {
		rs[i] = benchReservation(i)
	}
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeBatchReflect(rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			results := make([]api.BatchResult, len(rs))
			size := 0
			for i := range rs {
				body, ok := api.AppendEntity(make([]byte, 0, 256), &rs[i])
				if !ok {
					b.Fatal("declined")
				}
				results[i] = api.BatchResult{Status: 201, Body: body}
				size += len(body) + 32
			}
			appendBatchResponse(make([]byte, 0, size), results)
		}
	})
}
