package http

import (
	"strconv"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/internal/jsonwire"
)

// The batch codec reads POST /v1/batch and the bodies of its operations,
// and writes its answer, by hand rather than through encoding/json's
// reflection: a batch of 100 reservations spent about 10 µs per operation
// decoding and 3 µs encoding that way, more than carrying the operations
// out (docs/benchmarks.md, "The batch codec").
//
// The decoders take what decodeJSON takes and build the same values, and
// decline everything else (an error, or a rare form such as a surrogate
// escape or a null inside a list); their callers then run decodeJSON on the
// same bytes, which words the refusal. So every error answer is decodeJSON's
// own, by construction; FuzzBatchDecode checks that what the decoders
// accept decodeJSON accepts alike.

// decodeBatch decodes a batch request as decodeJSON(data, &BatchRequest,
// batchNames, batchDepth, false) would, and reports false when it declines.
// The operations' bodies are slices of data.
func decodeBatch(data []byte) ([]api.BatchOperation, bool) {
	var r jsonwire.Reader
	r.Reset(data)
	r.Object()
	var ops []api.BatchOperation
	seen := false
	var scratch [32]byte
	for n := 0; ; n++ {
		k, ok := r.Key(n)
		if !ok {
			break
		}
		if string(k) != "operations" || seen {
			return nil, false
		}
		seen = true
		if r.Null() {
			continue
		}
		r.Array()
		ops = make([]api.BatchOperation, 0, max(len(data)/128, 1))
		for m := 0; r.Elem(m); m++ {
			var op api.BatchOperation
			var fields uint
			r.Object()
			for f := 0; ; f++ {
				k, ok := r.Key(f)
				if !ok {
					break
				}
				switch string(k) {
				case "op":
					once(&r, &fields, 1)
					if !r.Null() {
						name := r.Bytes(scratch[:0])
						if h, ok := api.Batchable(string(name)); ok {
							op.Op = h.Op().BatchName
						} else {
							op.Op = string(name)
						}
					}
				case "idempotency_key":
					once(&r, &fields, 2)
					str(&r, &op.IdempotencyKey)
				case "body":
					once(&r, &fields, 4)
					op.Body = r.Skip()
				default:
					r.Fail()
				}
			}
			if r.Failed() {
				return nil, false
			}
			ops = append(ops, op)
		}
	}
	r.End()
	return ops, !r.Failed()
}

// decodeOperation decodes the body of a batch operation into req, a
// pointer to its request type, as decodeJSON(body, req, api.JSONNames(…),
// anyDepth, false) would, with key as its idempotency key. It reports false
// when it declines, leaving req as it was, and for request types it does
// not know.
func decodeOperation(body []byte, key string, req any) bool {
	if len(body) == 0 {
		return false
	}
	var r jsonwire.Reader
	r.Reset(body)
	switch q := req.(type) {
	case *api.ReservationRequest:
		var v api.ReservationRequest
		if !r.Null() {
			readReservation(&r, &v)
		}
		return finish(&r, q, v)
	case *api.CommitRequest:
		v := api.CommitRequest{IdempotencyKey: key}
		if !r.Null() {
			readCommit(&r, &v)
		}
		return finish(&r, q, v)
	case *api.ReleaseRequest:
		v := api.ReleaseRequest{IdempotencyKey: key}
		if !r.Null() {
			readFields(&r, func(f []byte) int {
				if string(f) == "id" {
					str(&r, &v.ID)
					return 1
				}
				return 0
			})
		}
		return finish(&r, q, v)
	case *api.ExtendRequest:
		v := api.ExtendRequest{IdempotencyKey: key}
		if !r.Null() {
			readFields(&r, func(f []byte) int {
				switch string(f) {
				case "id":
					str(&r, &v.ID)
					return 1
				case "ttl":
					str(&r, &v.TTL)
					return 2
				}
				return 0
			})
		}
		return finish(&r, q, v)
	case *api.IDRequest:
		var v api.IDRequest
		if !r.Null() {
			readFields(&r, func(f []byte) int {
				if string(f) == "id" {
					str(&r, &v.ID)
					return 1
				}
				return 0
			})
		}
		return finish(&r, q, v)
	case *api.ReceiptRequest:
		var v api.ReceiptRequest
		if !r.Null() {
			readFields(&r, func(f []byte) int {
				switch string(f) {
				case "id":
					str(&r, &v.ID)
					return 1
				case "sku":
					str(&r, &v.SKU)
					return 2
				case "location":
					str(&r, &v.Location)
					return 3
				case "quantity":
					integer(&r, &v.Quantity)
					return 4
				case "lot":
					str(&r, &v.Lot)
					return 5
				case "best_before":
					str(&r, &v.BestBefore)
					return 6
				}
				return 0
			})
		}
		return finish(&r, q, v)
	case *api.AdjustmentRequest:
		var v api.AdjustmentRequest
		if !r.Null() {
			readFields(&r, func(f []byte) int {
				switch string(f) {
				case "id":
					str(&r, &v.ID)
					return 1
				case "sku":
					str(&r, &v.SKU)
					return 2
				case "location":
					str(&r, &v.Location)
					return 3
				case "delta":
					integer(&r, &v.Delta)
					return 4
				case "reason":
					str(&r, (*string)(&v.Reason))
					return 5
				case "lot":
					str(&r, &v.Lot)
					return 6
				}
				return 0
			})
		}
		return finish(&r, q, v)
	case *api.CountRequest:
		var v api.CountRequest
		if !r.Null() {
			readFields(&r, func(f []byte) int {
				switch string(f) {
				case "id":
					str(&r, &v.ID)
					return 1
				case "sku":
					str(&r, &v.SKU)
					return 2
				case "location":
					str(&r, &v.Location)
					return 3
				case "on_hand":
					if r.Null() {
						v.OnHand = nil
					} else {
						n := r.Int64()
						v.OnHand = &n
					}
					return 4
				}
				return 0
			})
		}
		return finish(&r, q, v)
	case *api.TransferRequest:
		var v api.TransferRequest
		if !r.Null() {
			readFields(&r, func(f []byte) int {
				switch string(f) {
				case "id":
					str(&r, &v.ID)
					return 1
				case "sku":
					str(&r, &v.SKU)
					return 2
				case "from":
					str(&r, &v.From)
					return 3
				case "to":
					str(&r, &v.To)
					return 4
				case "quantity":
					integer(&r, &v.Quantity)
					return 5
				}
				return 0
			})
		}
		return finish(&r, q, v)
	}
	return false
}

// finish stores v in q when the whole body was read without declining.
func finish[T any](r *jsonwire.Reader, q *T, v T) bool {
	r.End()
	if r.Failed() {
		return false
	}
	*q = v
	return true
}

// readFields reads an object, calling field with the reader at each value;
// field reads it and returns the field's number (1–63), or 0 for a name it
// does not know, which declines. A field given twice declines.
func readFields(r *jsonwire.Reader, field func(name []byte) int) {
	r.Object()
	var seen uint64
	for n := 0; ; n++ {
		k, ok := r.Key(n)
		if !ok {
			return
		}
		f := field(k)
		if f == 0 || seen&(1<<f) != 0 {
			r.Fail()
			return
		}
		seen |= 1 << f
	}
}

// once declines a field seen before.
func once(r *jsonwire.Reader, seen *uint, bit uint) {
	if *seen&bit != 0 {
		r.Fail()
	}
	*seen |= bit
}

// str reads a string field; null leaves it as it is, as with encoding/json.
func str(r *jsonwire.Reader, dst *string) {
	if !r.Null() {
		*dst = r.Str()
	}
}

// integer reads an integer field; null leaves it as it is.
func integer(r *jsonwire.Reader, dst *int64) {
	if !r.Null() {
		*dst = r.Int64()
	}
}

func readReservation(r *jsonwire.Reader, v *api.ReservationRequest) {
	readFields(r, func(f []byte) int {
		switch string(f) {
		case "id":
			str(r, &v.ID)
			return 1
		case "ttl":
			str(r, &v.TTL)
			return 2
		case "customer":
			str(r, &v.Customer)
			return 3
		case "region":
			str(r, &v.Region)
			return 4
		case "lines":
			v.Lines = nil
			if r.Null() {
				return 5
			}
			r.Array()
			v.Lines = make([]stockd.ReserveLine, 0, 1)
			for n := 0; r.Elem(n); n++ {
				var l stockd.ReserveLine
				readFields(r, func(f []byte) int {
					switch string(f) {
					case "sku":
						str(r, &l.SKU)
						return 1
					case "quantity":
						integer(r, &l.Quantity)
						return 2
					case "location":
						str(r, &l.Location)
						return 3
					case "locations":
						l.Locations = readStrings(r)
						return 4
					case "split":
						if !r.Null() {
							l.Split = r.Bool()
						}
						return 5
					}
					return 0
				})
				if r.Failed() {
					return 5
				}
				v.Lines = append(v.Lines, l)
			}
			return 5
		}
		return 0
	})
}

func readCommit(r *jsonwire.Reader, v *api.CommitRequest) {
	readFields(r, func(f []byte) int {
		switch string(f) {
		case "id":
			str(r, &v.ID)
			return 1
		case "lines":
			v.Lines = nil
			if r.Null() {
				return 2
			}
			r.Array()
			v.Lines = make([]stockd.CommitLine, 0, 1)
			for n := 0; r.Elem(n); n++ {
				var l stockd.CommitLine
				readFields(r, func(f []byte) int {
					switch string(f) {
					case "sku":
						str(r, &l.SKU)
						return 1
					case "quantity":
						integer(r, &l.Quantity)
						return 2
					}
					return 0
				})
				if r.Failed() {
					return 2
				}
				v.Lines = append(v.Lines, l)
			}
			return 2
		}
		return 0
	})
}

// readStrings reads a list of strings, or null as nil. A null in the list
// declines.
func readStrings(r *jsonwire.Reader) []string {
	if r.Null() {
		return nil
	}
	r.Array()
	out := []string{}
	for n := 0; r.Elem(n); n++ {
		if r.Null() {
			r.Fail()
			return nil
		}
		out = append(out, r.Str())
	}
	return out
}

// appendBatchResponse appends the answer of a batch as
// json.Marshal(api.BatchResponse{Results: results}) writes it. Each Body is
// written as it is: it is the compact JSON an operation answered, which
// json.Marshal would only check and copy.
func appendBatchResponse(dst []byte, results []api.BatchResult) []byte {
	dst = append(dst, `{"results":`...)
	if results == nil {
		return append(dst, "null}"...)
	}
	dst = append(dst, '[')
	for i := range results {
		if i > 0 {
			dst = append(dst, ',')
		}
		res := &results[i]
		dst = append(dst, `{"status":`...)
		dst = strconv.AppendInt(dst, int64(res.Status), 10)
		if len(res.Body) > 0 {
			dst = append(dst, `,"body":`...)
			dst = append(dst, res.Body...)
		}
		if res.Problem != nil {
			dst = append(dst, `,"problem":`...)
			dst = appendProblem(dst, res.Problem)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// appendProblem appends p as json.Marshal writes it.
func appendProblem(dst []byte, p *Problem) []byte {
	dst = append(dst, `{"type":`...)
	dst = jsonwire.AppendString(dst, p.Type)
	dst = append(dst, `,"title":`...)
	dst = jsonwire.AppendString(dst, p.Title)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(p.Status), 10)
	dst = append(dst, `,"detail":`...)
	dst = jsonwire.AppendString(dst, p.Detail)
	dst = append(dst, `,"code":`...)
	dst = jsonwire.AppendString(dst, string(p.Code))
	if p.Instance != "" {
		dst = append(dst, `,"instance":`...)
		dst = jsonwire.AppendString(dst, p.Instance)
	}
	if len(p.Lines) > 0 {
		dst = append(dst, `,"lines":[`...)
		for i, l := range p.Lines {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"sku":`...)
			dst = jsonwire.AppendString(dst, l.SKU)
			dst = append(dst, `,"requested":`...)
			dst = strconv.AppendInt(dst, l.Requested, 10)
			dst = append(dst, `,"available":`...)
			dst = strconv.AppendInt(dst, l.Available, 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if p.ReservationStatus != "" {
		dst = append(dst, `,"reservation_status":`...)
		dst = jsonwire.AppendString(dst, string(p.ReservationStatus))
	}
	return append(dst, '}')
}
