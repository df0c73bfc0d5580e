package api

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/stockd/stockd"
)

// CommandRequest is POST /v1/commands: a receipt, adjustment, count or
// transfer to apply asynchronously. Command is the body the synchronous
// route takes (POST /v1/receipts for "receive", and so on); ID is the
// client's id of the command, derived from the type and command when left
// out.
type CommandRequest struct {
	ID      string             `json:"id,omitempty"`
	Type    stockd.CommandType `json:"type"`
	Command CommandBody        `json:"command"`
}

// CommandBody holds the fields of every command the intake takes; each
// type uses its own route's fields, and a field of another type is refused.
type CommandBody struct {
	ID         string              `json:"id"`
	SKU        string              `json:"sku"`
	Location   string              `json:"location,omitempty"`
	Quantity   int64               `json:"quantity,omitempty"`
	Lot        string              `json:"lot,omitempty"`
	BestBefore string              `json:"best_before,omitempty"`
	Delta      int64               `json:"delta,omitempty"`
	Reason     stockd.AdjustReason `json:"reason,omitempty"`
	OnHand     *int64              `json:"on_hand,omitempty"`
	From       string              `json:"from,omitempty"`
	To         string              `json:"to,omitempty"`
}

// commandFields are the fields of each command type's body.
var commandFields = map[stockd.CommandType]map[string]bool{
	stockd.CommandReceive:  {"id": true, "sku": true, "location": true, "quantity": true, "lot": true, "best_before": true},
	stockd.CommandAdjust:   {"id": true, "sku": true, "location": true, "delta": true, "reason": true, "lot": true},
	stockd.CommandCount:    {"id": true, "sku": true, "location": true, "on_hand": true},
	stockd.CommandTransfer: {"id": true, "sku": true, "from": true, "to": true, "quantity": true},
}

// Typed returns the command as its synchronous route's request type: a
// *ReceiptRequest, *AdjustmentRequest, *CountRequest or *TransferRequest.
// A field another type uses is refused.
func (b *CommandBody) Typed(t stockd.CommandType) (any, error) {
	allowed, ok := commandFields[t]
	if !ok {
		return nil, stockd.Errorf(stockd.CodeInvalid, "type must be receive, adjust, count or transfer, got %q", t)
	}
	var set []string
	for name, present := range map[string]bool{
		"location": b.Location != "", "quantity": b.Quantity != 0, "lot": b.Lot != "", "best_before": b.BestBefore != "",
		"delta": b.Delta != 0, "reason": b.Reason != "", "on_hand": b.OnHand != nil, "from": b.From != "", "to": b.To != "",
	} {
		if present && !allowed[name] {
			set = append(set, name)
		}
	}
	if len(set) > 0 {
		return nil, stockd.Errorf(stockd.CodeInvalid, "a %s command takes no %s", t, strings.Join(set, ", "))
	}
	switch t {
	case stockd.CommandReceive:
		return &ReceiptRequest{ID: b.ID, SKU: b.SKU, Location: b.Location, Quantity: b.Quantity, Lot: b.Lot, BestBefore: b.BestBefore}, nil
	case stockd.CommandAdjust:
		return &AdjustmentRequest{ID: b.ID, SKU: b.SKU, Location: b.Location, Delta: b.Delta, Reason: b.Reason, Lot: b.Lot}, nil
	case stockd.CommandCount:
		return &CountRequest{ID: b.ID, SKU: b.SKU, Location: b.Location, OnHand: b.OnHand}, nil
	default:
		return &TransferRequest{ID: b.ID, SKU: b.SKU, From: b.From, To: b.To, Quantity: b.Quantity}, nil
	}
}

// Submit turns the request into the intake's command, its body in the
// synchronous route's own encoding.
func (r *CommandRequest) Submit(source string) (stockd.SubmitCommand, error) {
	typed, err := r.Command.Typed(r.Type)
	if err != nil {
		return stockd.SubmitCommand{}, err
	}
	body, err := json.Marshal(typed)
	if err != nil {
		return stockd.SubmitCommand{}, err
	}
	return stockd.SubmitCommand{ID: r.ID, Type: r.Type, Body: body, Source: source}, nil
}

// DecodeCommand decodes a queued command's body into its synchronous
// route's request type (see CommandBody.Typed), strictly.
func DecodeCommand(t stockd.CommandType, body []byte) (any, error) {
	var req any
	switch t {
	case stockd.CommandReceive:
		req = &ReceiptRequest{}
	case stockd.CommandAdjust:
		req = &AdjustmentRequest{}
	case stockd.CommandCount:
		req = &CountRequest{}
	case stockd.CommandTransfer:
		req = &TransferRequest{}
	default:
		return nil, stockd.Errorf(stockd.CodeInvalid, "type must be receive, adjust, count or transfer, got %q", t)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return nil, stockd.Errorf(stockd.CodeInvalid, "the %s command does not decode: %v", t, err)
	}
	return req, nil
}

// ImportRequest is POST /v1/imports: a supplier CSV file, as text.
type ImportRequest struct {
	// Name is the file's name, kept in its report.
	Name string `json:"name,omitempty"`
	// CSV is the file's content.
	CSV string `json:"csv"`
	// Location is the location of rows that name none.
	Location string `json:"location,omitempty"`
	// Batch names the delivery explicitly (see stockd.SubmitImport).
	Batch string `json:"batch,omitempty"`
	// NameBatch makes a new content's batch its name (stockd import's
	// rule) rather than its SHA-256.
	NameBatch bool `json:"name_batch,omitempty"`
}

// ImportListRequest is GET /v1/imports.
type ImportListRequest struct {
	After string `json:"-" query:"after"`
	Limit string `json:"-" query:"limit"`
}

// The intake's operations. Submitting a command needs the scope of the
// synchronous routes of receipts, adjustments, counts and transfers
// (stock:write); reading one, stock:read.
var (
	SubmitCommand = declare(&Endpoint[CommandRequest, stockd.QueuedCommand]{
		Operation: Operation{Name: "postCommand", Method: "POST", Path: "/v1/commands", Scope: stockd.ScopeStockWrite, Summary: "Queue a receipt, adjustment, count or transfer", Accepted: true, StatusPath: "/v1/commands/{id}"},
		Call: func(ctx context.Context, s stockd.API, r *CommandRequest) (stockd.QueuedCommand, bool, error) {
			cmd, err := r.Submit("http")
			if err != nil {
				return stockd.QueuedCommand{}, false, err
			}
			return s.SubmitCommand(ctx, cmd)
		},
	})
	GetCommand = declare(&Endpoint[IDRequest, stockd.QueuedCommand]{
		Operation: Operation{Name: "getCommand", Method: "GET", Path: "/v1/commands/{id}", Scope: stockd.ScopeStockRead, Summary: "Get a queued command's status and result"},
		Call: func(ctx context.Context, s stockd.API, r *IDRequest) (stockd.QueuedCommand, bool, error) {
			c, err := s.GetCommand(ctx, r.ID)
			return c, false, err
		},
	})
	SubmitImport = declare(&Endpoint[ImportRequest, stockd.ImportReport]{
		Operation: Operation{Name: "postImport", Method: "POST", Path: "/v1/imports", Scope: stockd.ScopeStockWrite, Summary: "Import a supplier CSV file"},
		Call: func(ctx context.Context, s stockd.API, r *ImportRequest) (stockd.ImportReport, bool, error) {
			rep, err := s.SubmitImport(ctx, stockd.SubmitImport{Name: r.Name, CSV: []byte(r.CSV), Location: r.Location, Batch: r.Batch, NameBatch: r.NameBatch})
			return rep, false, err
		},
	})
	ListImports = declare(&Endpoint[ImportListRequest, stockd.ImportPage]{
		Operation: Operation{Name: "listImports", Method: "GET", Path: "/v1/imports", Scope: stockd.ScopeStockRead, Summary: "List import reports"},
		Call: func(ctx context.Context, s stockd.API, r *ImportListRequest) (stockd.ImportPage, bool, error) {
			limit, err := Limit(r.Limit)
			if err != nil {
				return stockd.ImportPage{}, false, err
			}
			p, err := s.ListImports(ctx, stockd.ImportQuery{After: r.After, Limit: limit})
			return p, false, err
		},
	})
	GetImport = declare(&Endpoint[IDRequest, stockd.ImportReport]{
		Operation: Operation{Name: "getImport", Method: "GET", Path: "/v1/imports/{id}", Scope: stockd.ScopeStockRead, Summary: "Get an import report"},
		Call: func(ctx context.Context, s stockd.API, r *IDRequest) (stockd.ImportReport, bool, error) {
			rep, err := s.GetImport(ctx, r.ID)
			return rep, false, err
		},
	})
)
