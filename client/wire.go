package client

import (
	"encoding/json"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/internal/jsonwire"
)

// The batcher encodes its requests and decodes their answers by hand, not
// with encoding/json: a client coalescing a thousand reservations a request
// spent most of its CPU in reflection, and in re-checking the JSON of each
// operation when embedding it, CPU a client on the same machine takes from
// the server (docs/benchmarks.md, "The batch codec"). What the readers here
// decline (any form they are not sure of, such as an unknown field) is
// decoded by encoding/json instead, so the result is the same either way;
// TestBatchWireMatchesEncodingJSON checks it.

// appendBatchRequest appends a batch request as json.Marshal writes it,
// given bodies that are compact JSON as json.Marshal writes it (those
// batched encodes), which json.Marshal would only check and copy.
func appendBatchRequest(dst []byte, batch []*queued) []byte {
	dst = append(dst, `{"operations":[`...)
	for i, q := range batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"op":`...)
		dst = jsonwire.AppendString(dst, q.op.Op)
		if q.op.IdempotencyKey != "" {
			dst = append(dst, `,"idempotency_key":`...)
			dst = jsonwire.AppendString(dst, q.op.IdempotencyKey)
		}
		dst = append(dst, `,"body":`...)
		if q.op.Body == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, q.op.Body...)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// decodeBatchResponse decodes the answer of a batch as json.Unmarshal into
// an api.BatchResponse does. Bodies are slices of data.
func decodeBatchResponse(data []byte) (api.BatchResponse, error) {
	if out, ok := readBatchResponse(data); ok {
		return out, nil
	}
	var out api.BatchResponse
	err := json.Unmarshal(data, &out)
	return out, err
}

// readBatchResponse reads the answers it is sure of: the server's own.
func readBatchResponse(data []byte) (api.BatchResponse, bool) {
	var out api.BatchResponse
	r := jsonwire.NewReader(data)
	r.Object()
	for n := 0; ; n++ {
		k, ok := r.Key(n)
		if !ok {
			break
		}
		if string(k) != "results" || out.Results != nil {
			return out, false
		}
		r.Array()
		out.Results = make([]api.BatchResult, 0, max(len(data)/256, 1))
		for m := 0; r.Elem(m); m++ {
			var res api.BatchResult
			var seen uint
			r.Object()
			for f := 0; ; f++ {
				k, ok := r.Key(f)
				if !ok {
					break
				}
				var bit uint
				switch string(k) {
				case "status":
					bit = 1
					res.Status = int(r.Int64())
				case "body":
					bit = 2
					if res.Body = r.Skip(); string(res.Body) == "null" {
						r.Fail()
					}
				case "problem":
					bit = 4
					raw := r.Skip()
					if r.Failed() {
						break
					}
					var p api.Problem
					if string(raw) == "null" || json.Unmarshal(raw, &p) != nil {
						r.Fail()
					}
					res.Problem = &p
				default:
					r.Fail()
				}
				if seen&bit != 0 {
					r.Fail()
				}
				seen |= bit
			}
			if r.Failed() {
				return out, false
			}
			out.Results = append(out.Results, res)
		}
	}
	r.End()
	return out, !r.Failed() && out.Results != nil
}

// decodeEntity decodes an operation's answer into out as json.Unmarshal
// does; a reservation, the answer of the hot path, by hand.
func decodeEntity[Res any](data []byte, out *Res) error {
	if v, ok := any(out).(*stockd.Reservation); ok {
		if res, ok := readReservation(data); ok {
			*v = res
			return nil
		}
	}
	return json.Unmarshal(data, out)
}

// readReservation reads a reservation as the server writes it.
func readReservation(data []byte) (stockd.Reservation, bool) {
	var v stockd.Reservation
	r := jsonwire.NewReader(data)
	fields(r, func(k []byte) {
		switch string(k) {
		case "id":
			v.ID = r.Str()
		case "status":
			v.Status = stockd.ReservationStatus(r.Str())
		case "customer":
			v.Customer = r.Str()
		case "created_at":
			v.CreatedAt = readTime(r)
		case "expires_at":
			v.ExpiresAt = readTime(r)
		case "lines":
			r.Array()
			v.Lines = make([]stockd.ReservationLine, 0, 1)
			for n := 0; r.Elem(n); n++ {
				var l stockd.ReservationLine
				fields(r, func(k []byte) {
					switch string(k) {
					case "sku":
						l.SKU = r.Str()
					case "quantity":
						l.Quantity = r.Int64()
					case "held":
						l.Held = r.Int64()
					case "preorder":
						l.Preorder = r.Int64()
					case "allocations":
						r.Array()
						l.Allocations = make([]stockd.Allocation, 0, 1)
						for m := 0; r.Elem(m); m++ {
							var a stockd.Allocation
							fields(r, func(k []byte) {
								switch string(k) {
								case "location":
									a.Location = r.Str()
								case "quantity":
									a.Quantity = r.Int64()
								default:
									r.Fail()
								}
							})
							l.Allocations = append(l.Allocations, a)
						}
					default:
						r.Fail()
					}
				})
				v.Lines = append(v.Lines, l)
			}
		default:
			r.Fail()
		}
	})
	r.End()
	return v, !r.Failed()
}

// fields reads an object, calling field with the reader at each value. It
// declines nulls and a key given twice (json.Unmarshal would let the last
// win), and field declines the keys it does not know.
func fields(r *jsonwire.Reader, field func(k []byte)) {
	r.Object()
	var seen [8][]byte
	for n := 0; ; n++ {
		k, ok := r.Key(n)
		if !ok {
			return
		}
		if n >= len(seen) || r.Null() {
			r.Fail()
			return
		}
		for _, s := range seen[:n] {
			if string(s) == string(k) {
				r.Fail()
				return
			}
		}
		seen[n] = k
		field(k)
	}
}

// readTime reads a time as time.Time's UnmarshalJSON does.
func readTime(r *jsonwire.Reader) time.Time {
	var t time.Time
	raw := r.Skip()
	if r.Failed() || len(raw) < 2 || raw[0] != '"' || t.UnmarshalJSON(raw) != nil {
		r.Fail()
	}
	return t
}
