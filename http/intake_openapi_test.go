package http

import (
	"context"
	"encoding/json"
	"time"

	"github.com/stockd/stockd"
)

// oaFakeAPI's intake operations, for the OpenAPI tests: every field set,
// and the command and import "missing" not found.

var oaTime = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func (oaFakeAPI) SubmitCommand(_ context.Context, cmd stockd.SubmitCommand) (stockd.QueuedCommand, bool, error) {
	c := oaCommand(cmd.ID)
	c.Type, c.Command, c.Status = cmd.Type, cmd.Body, stockd.CommandQueued
	c.FinishedAt, c.Result, c.Problem = nil, nil, nil
	return c, true, nil
}

func (oaFakeAPI) GetCommand(_ context.Context, id string) (stockd.QueuedCommand, error) {
	if id == "missing" {
		return stockd.QueuedCommand{}, stockd.Errorf(stockd.CodeNotFound, "command %q not found", id)
	}
	return oaCommand(id), nil
}

func oaCommand(id string) stockd.QueuedCommand {
	if id == "" {
		id = "cmd-0123456789abcdef01234567"
	}
	return stockd.QueuedCommand{
		ID: id, Type: stockd.CommandAdjust, Status: stockd.CommandFailed,
		Command:     json.RawMessage(`{"id":"adj-1","sku":"A","location":"w1","delta":-50,"reason":"damaged"}`),
		Source:      "http",
		SubmittedAt: oaTime, FinishedAt: &oaTime, Attempts: 1,
		Result:  json.RawMessage(`{}`),
		Created: true,
		Problem: &stockd.CommandProblem{Type: "/problems/insufficient_stock", Title: "Insufficient stock", Status: 409, Detail: "not enough stock", Code: stockd.CodeInsufficientStock,
			Lines: []stockd.Shortfall{{SKU: "A", Requested: 50, Available: 7}}},
	}
}

func oaReport() stockd.ImportReport {
	return stockd.ImportReport{
		ID: "5d41402abc4b2a76b9719d911017c592", SHA256: "5d41402abc4b2a76b9719d911017c592", Batch: "5d41402abc4b2a76b9719d911017c592",
		Status: stockd.ImportDone, Files: []string{"delivery.csv"}, Deliveries: 1, FirstAt: oaTime, LastAt: oaTime,
		Rows: 3, Applied: 1, AlreadyApplied: 1,
		Refused:     []stockd.RefusedRow{{Line: 4, ID: "imp-x-0123", Code: stockd.CodeUnknownLocation, Reason: "unknown location"}},
		RefusedMore: 0, Error: "none",
	}
}

func (oaFakeAPI) SubmitImport(context.Context, stockd.SubmitImport) (stockd.ImportReport, error) {
	return oaReport(), nil
}

func (oaFakeAPI) GetImport(_ context.Context, id string) (stockd.ImportReport, error) {
	if id == "missing" {
		return stockd.ImportReport{}, stockd.Errorf(stockd.CodeNotFound, "import %q not found", id)
	}
	return oaReport(), nil
}

func (oaFakeAPI) ListImports(context.Context, stockd.ImportQuery) (stockd.ImportPage, error) {
	return stockd.ImportPage{Items: []stockd.ImportReport{oaReport()}, Next: "5d41402abc4b2a76b9719d911017c592"}, nil
}
