package client

import (
	"context"
	"encoding/json"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// SubmitCommand queues a receipt, adjustment, count or transfer with
// POST /v1/commands; cmd.Body is the body of the command's synchronous
// route. The answer (202) comes once the command is durably queued; its
// status is read with GetCommand. The bool is true for every success: a 202
// does not tell a new command from a repeat of one queued before (compare
// SubmittedAt, or Status, to tell).
func (c *Client) SubmitCommand(ctx context.Context, cmd stockd.SubmitCommand) (stockd.QueuedCommand, bool, error) {
	req := api.CommandRequest{ID: cmd.ID, Type: cmd.Type}
	if len(cmd.Body) > 0 {
		if err := json.Unmarshal(cmd.Body, &req.Command); err != nil {
			return stockd.QueuedCommand{}, false, stockd.Errorf(stockd.CodeInvalid, "the command body is not JSON of a command: %v", err)
		}
	}
	v, _, err := call(ctx, c, api.SubmitCommand, &req)
	return v, err == nil, err
}

// GetCommand returns a queued command's status and, once finished, its
// result or problem, with GET /v1/commands/{id}.
func (c *Client) GetCommand(ctx context.Context, id string) (stockd.QueuedCommand, error) {
	v, _, err := call(ctx, c, api.GetCommand, &api.IDRequest{ID: id})
	return v, err
}

// SubmitImport imports a supplier CSV file with POST /v1/imports and returns
// its report.
func (c *Client) SubmitImport(ctx context.Context, cmd stockd.SubmitImport) (stockd.ImportReport, error) {
	v, _, err := call(ctx, c, api.SubmitImport, &api.ImportRequest{Name: cmd.Name, CSV: string(cmd.CSV), Location: cmd.Location, Batch: cmd.Batch, NameBatch: cmd.NameBatch})
	return fixReport(v), err
}

// GetImport returns an import report with GET /v1/imports/{id}.
func (c *Client) GetImport(ctx context.Context, id string) (stockd.ImportReport, error) {
	v, _, err := call(ctx, c, api.GetImport, &api.IDRequest{ID: id})
	return fixReport(v), err
}

// ListImports returns a page of import reports with GET /v1/imports.
func (c *Client) ListImports(ctx context.Context, q stockd.ImportQuery) (stockd.ImportPage, error) {
	p, _, err := call(ctx, c, api.ListImports, &api.ImportListRequest{After: q.After, Limit: limit(q.Limit)})
	if p.Items == nil {
		p.Items = []stockd.ImportReport{}
	}
	for i := range p.Items {
		p.Items[i] = fixReport(p.Items[i])
	}
	return p, err
}

// fixReport makes a decoded report's lists empty rather than nil, as the
// server's are.
func fixReport(r stockd.ImportReport) stockd.ImportReport {
	if r.Files == nil {
		r.Files = []string{}
	}
	if r.Refused == nil {
		r.Refused = []stockd.RefusedRow{}
	}
	return r
}
