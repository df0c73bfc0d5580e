package api

import (
	"encoding/json"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/internal/jsonwire"
)

// marshal encodes an operation's answer. The answers of the batchable
// operations, the hot path, are written by hand, byte for byte as
// json.Marshal writes them but without its reflection (a reservation takes
// a fifth of the time and one allocation); others, and the rare value the
// hand-written encoders decline (a time json.Marshal refuses), go through
// json.Marshal.
func marshal(v any) ([]byte, error) {
	switch v.(type) {
	case *stockd.Reservation, *stockd.Receipt, *stockd.Adjustment, *stockd.Count, *stockd.Transfer:
		if b, ok := AppendEntity(make([]byte, 0, 256), v); ok {
			return b, nil
		}
	}
	return json.Marshal(v)
}

// AppendEntity appends the JSON of *v as json.Marshal writes it, for the
// entities batchable operations answer and their requests: a
// *stockd.Reservation, *stockd.Receipt, *stockd.Adjustment, *stockd.Count,
// *stockd.Transfer, or a pointer to one of the request types of the batchable
// operations. It reports false, with dst as it was, for any other type and
// for a time json.Marshal would refuse.
func AppendEntity(dst []byte, v any) ([]byte, bool) {
	n0 := len(dst)
	ok := true
	switch v := v.(type) {
	case *stockd.Reservation:
		dst, ok = appendReservation(dst, v)
	case *stockd.Receipt:
		dst = append(dst, `{"id":`...)
		dst = jsonwire.AppendString(dst, v.ID)
		dst = append(dst, `,"sku":`...)
		dst = jsonwire.AppendString(dst, v.SKU)
		dst = append(dst, `,"location":`...)
		dst = jsonwire.AppendString(dst, v.Location)
		dst = append(dst, `,"quantity":`...)
		dst = jsonwire.AppendInt(dst, v.Quantity)
		if v.Lot != "" {
			dst = append(dst, `,"lot":`...)
			dst = jsonwire.AppendString(dst, v.Lot)
		}
		if v.BestBefore != "" {
			dst = append(dst, `,"best_before":`...)
			dst = jsonwire.AppendString(dst, v.BestBefore)
		}
		dst = append(dst, `,"time":`...)
		dst, ok = jsonwire.AppendTime(dst, v.Time)
		dst = append(dst, `,"position":`...)
		dst = jsonwire.AppendUint(dst, v.Position)
		dst = append(dst, '}')
	case *stockd.Adjustment:
		dst = append(dst, `{"id":`...)
		dst = jsonwire.AppendString(dst, v.ID)
		dst = append(dst, `,"sku":`...)
		dst = jsonwire.AppendString(dst, v.SKU)
		dst = append(dst, `,"location":`...)
		dst = jsonwire.AppendString(dst, v.Location)
		dst = append(dst, `,"delta":`...)
		dst = jsonwire.AppendInt(dst, v.Delta)
		dst = append(dst, `,"reason":`...)
		dst = jsonwire.AppendString(dst, string(v.Reason))
		if v.Lot != "" {
			dst = append(dst, `,"lot":`...)
			dst = jsonwire.AppendString(dst, v.Lot)
		}
		dst = append(dst, `,"time":`...)
		dst, ok = jsonwire.AppendTime(dst, v.Time)
		dst = append(dst, `,"position":`...)
		dst = jsonwire.AppendUint(dst, v.Position)
		dst = append(dst, '}')
	case *stockd.Count:
		dst = append(dst, `{"id":`...)
		dst = jsonwire.AppendString(dst, v.ID)
		dst = append(dst, `,"sku":`...)
		dst = jsonwire.AppendString(dst, v.SKU)
		dst = append(dst, `,"location":`...)
		dst = jsonwire.AppendString(dst, v.Location)
		dst = append(dst, `,"on_hand":`...)
		dst = jsonwire.AppendInt(dst, v.OnHand)
		dst = append(dst, `,"delta":`...)
		dst = jsonwire.AppendInt(dst, v.Delta)
		dst = append(dst, `,"time":`...)
		dst, ok = jsonwire.AppendTime(dst, v.Time)
		dst = append(dst, `,"position":`...)
		dst = jsonwire.AppendUint(dst, v.Position)
		dst = append(dst, '}')
	case *stockd.Transfer:
		dst, ok = appendTransfer(dst, v)
	default:
		dst, ok = appendRequest(dst, v)
	}
	if !ok {
		return dst[:n0], false
	}
	return dst, true
}

func appendReservation(dst []byte, v *stockd.Reservation) ([]byte, bool) {
	dst = append(dst, `{"id":`...)
	dst = jsonwire.AppendString(dst, v.ID)
	dst = append(dst, `,"status":`...)
	dst = jsonwire.AppendString(dst, string(v.Status))
	if v.Customer != "" {
		dst = append(dst, `,"customer":`...)
		dst = jsonwire.AppendString(dst, v.Customer)
	}
	dst = append(dst, `,"created_at":`...)
	dst, ok1 := jsonwire.AppendTime(dst, v.CreatedAt)
	dst = append(dst, `,"expires_at":`...)
	dst, ok2 := jsonwire.AppendTime(dst, v.ExpiresAt)
	ok3 := true
	dst = append(dst, `,"lines":`...)
	if v.Lines == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range v.Lines {
			l := &v.Lines[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"sku":`...)
			dst = jsonwire.AppendString(dst, l.SKU)
			dst = append(dst, `,"quantity":`...)
			dst = jsonwire.AppendInt(dst, l.Quantity)
			dst = append(dst, `,"held":`...)
			dst = jsonwire.AppendInt(dst, l.Held)
			dst = append(dst, `,"allocations":`...)
			if l.Allocations == nil {
				dst = append(dst, "null"...)
			} else {
				dst = append(dst, '[')
				for j, a := range l.Allocations {
					if j > 0 {
						dst = append(dst, ',')
					}
					dst = append(dst, `{"location":`...)
					dst = jsonwire.AppendString(dst, a.Location)
					dst = append(dst, `,"quantity":`...)
					dst = jsonwire.AppendInt(dst, a.Quantity)
					dst = append(dst, '}')
				}
				dst = append(dst, ']')
			}
			dst = append(dst, `,"preorder":`...)
			dst = jsonwire.AppendInt(dst, l.Preorder)
			// A line held against expected stock is rare: json.Marshal
			// writes its preorders.
			ok3 = ok3 && len(l.Preorders) == 0
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if len(v.Bundles) > 0 {
		// Carts with bundles are rare: encoding/json writes them, as
		// it would the whole reservation.
		b, err := json.Marshal(v.Bundles)
		if err != nil {
			return dst, false
		}
		dst = append(dst, `,"bundles":`...)
		dst = append(dst, b...)
	}
	return append(dst, '}'), ok1 && ok2 && ok3
}

func appendTransfer(dst []byte, v *stockd.Transfer) ([]byte, bool) {
	dst = append(dst, `{"id":`...)
	dst = jsonwire.AppendString(dst, v.ID)
	dst = append(dst, `,"sku":`...)
	dst = jsonwire.AppendString(dst, v.SKU)
	dst = append(dst, `,"from":`...)
	dst = jsonwire.AppendString(dst, v.From)
	dst = append(dst, `,"to":`...)
	dst = jsonwire.AppendString(dst, v.To)
	dst = append(dst, `,"quantity":`...)
	dst = jsonwire.AppendInt(dst, v.Quantity)
	dst = append(dst, `,"status":`...)
	dst = jsonwire.AppendString(dst, string(v.Status))
	dst = append(dst, `,"lots":`...)
	if v.Lots == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, l := range v.Lots {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"lot":`...)
			dst = jsonwire.AppendString(dst, l.Lot)
			dst = append(dst, `,"quantity":`...)
			dst = jsonwire.AppendInt(dst, l.Quantity)
			if l.BestBefore != "" {
				dst = append(dst, `,"best_before":`...)
				dst = jsonwire.AppendString(dst, l.BestBefore)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"sent_at":`...)
	dst, ok := jsonwire.AppendTime(dst, v.SentAt)
	if v.ArrivedAt != nil {
		dst = append(dst, `,"arrived_at":`...)
		var ok2 bool
		dst, ok2 = jsonwire.AppendTime(dst, *v.ArrivedAt)
		ok = ok && ok2
	}
	return append(dst, '}'), ok
}

// appendRequest appends the request of a batchable operation, as the
// client sends it in a batch.
func appendRequest(dst []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case *ReservationRequest:
		dst = append(dst, `{"id":`...)
		dst = jsonwire.AppendString(dst, v.ID)
		dst = appendOptional(dst, `,"ttl":`, v.TTL)
		dst = appendOptional(dst, `,"customer":`, v.Customer)
		dst = appendOptional(dst, `,"region":`, v.Region)
		dst = append(dst, `,"lines":`...)
		if v.Lines == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, '[')
			for i := range v.Lines {
				l := &v.Lines[i]
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"sku":`...)
				dst = jsonwire.AppendString(dst, l.SKU)
				dst = append(dst, `,"quantity":`...)
				dst = jsonwire.AppendInt(dst, l.Quantity)
				dst = appendOptional(dst, `,"location":`, l.Location)
				if len(l.Locations) > 0 {
					dst = append(dst, `,"locations":[`...)
					for j, loc := range l.Locations {
						if j > 0 {
							dst = append(dst, ',')
						}
						dst = jsonwire.AppendString(dst, loc)
					}
					dst = append(dst, ']')
				}
				if l.Split {
					dst = append(dst, `,"split":true`...)
				}
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
	case *CommitRequest:
		dst = append(dst, '{')
		dst = appendOptional(dst, `"id":`, v.ID)
		if len(v.Lines) > 0 {
			if v.ID != "" {
				dst = append(dst, ',')
			}
			dst = append(dst, `"lines":[`...)
			for i, l := range v.Lines {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"sku":`...)
				dst = jsonwire.AppendString(dst, l.SKU)
				dst = append(dst, `,"quantity":`...)
				dst = jsonwire.AppendInt(dst, l.Quantity)
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
	case *ReleaseRequest:
		dst = append(dst, '{')
		dst = appendOptional(dst, `"id":`, v.ID)
	case *IDRequest:
		dst = append(dst, '{')
		dst = appendOptional(dst, `"id":`, v.ID)
	case *ExtendRequest:
		dst = append(dst, '{')
		if v.ID != "" {
			dst = append(dst, `"id":`...)
			dst = jsonwire.AppendString(dst, v.ID)
			dst = append(dst, ',')
		}
		dst = append(dst, `"ttl":`...)
		dst = jsonwire.AppendString(dst, v.TTL)
	case *ReceiptRequest:
		dst = appendStockLine(dst, v.ID, v.SKU, v.Location)
		dst = append(dst, `,"quantity":`...)
		dst = jsonwire.AppendInt(dst, v.Quantity)
		dst = appendOptional(dst, `,"lot":`, v.Lot)
		dst = appendOptional(dst, `,"best_before":`, v.BestBefore)
	case *AdjustmentRequest:
		dst = appendStockLine(dst, v.ID, v.SKU, v.Location)
		dst = append(dst, `,"delta":`...)
		dst = jsonwire.AppendInt(dst, v.Delta)
		dst = append(dst, `,"reason":`...)
		dst = jsonwire.AppendString(dst, string(v.Reason))
		dst = appendOptional(dst, `,"lot":`, v.Lot)
	case *CountRequest:
		dst = appendStockLine(dst, v.ID, v.SKU, v.Location)
		dst = append(dst, `,"on_hand":`...)
		if v.OnHand == nil {
			dst = append(dst, "null"...)
		} else {
			dst = jsonwire.AppendInt(dst, *v.OnHand)
		}
	case *TransferRequest:
		dst = append(dst, `{"id":`...)
		dst = jsonwire.AppendString(dst, v.ID)
		dst = append(dst, `,"sku":`...)
		dst = jsonwire.AppendString(dst, v.SKU)
		dst = append(dst, `,"from":`...)
		dst = jsonwire.AppendString(dst, v.From)
		dst = append(dst, `,"to":`...)
		dst = jsonwire.AppendString(dst, v.To)
		dst = append(dst, `,"quantity":`...)
		dst = jsonwire.AppendInt(dst, v.Quantity)
	default:
		return dst, false
	}
	return append(dst, '}'), true
}

// appendStockLine opens an object with an id, a SKU and a location.
func appendStockLine(dst []byte, id, sku, location string) []byte {
	dst = append(dst, `{"id":`...)
	dst = jsonwire.AppendString(dst, id)
	dst = append(dst, `,"sku":`...)
	dst = jsonwire.AppendString(dst, sku)
	dst = append(dst, `,"location":`...)
	return jsonwire.AppendString(dst, location)
}

// appendOptional appends a member whose value is left out when empty
// (omitempty); key includes the quotes, the colon and any comma before it.
func appendOptional(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, key...)
	return jsonwire.AppendString(dst, s)
}
