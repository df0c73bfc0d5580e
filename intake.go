package stockd

import (
	"context"
	"encoding/json"
	"time"
)

// Intake takes warehouse and admin commands — receipts, adjustments, counts
// and transfers — asynchronously, so that they never hold up checkout: a
// command is acknowledged once it is durably queued, and a worker applies it
// through the Service at its own pace. Applying is at least once and
// idempotent: a command carries the id of what it creates (a receipt id, say),
// so applying it twice is a replay.
type Intake interface {
	// SubmitCommand durably queues a command and reports whether it queued
	// it now (false: a command with that id was queued before, with the
	// same request, and is returned as it is). The same id with another
	// request fails with CodeIdempotencyMismatch.
	SubmitCommand(ctx context.Context, cmd SubmitCommand) (QueuedCommand, bool, error)
	// GetCommand returns a queued command with its status and, once
	// finished, its result or the problem that refused it; CodeNotFound
	// when there is none (or it finished longer ago than the retention).
	GetCommand(ctx context.Context, id string) (QueuedCommand, error)
}

// Imports books supplier CSV files of receipts, each file once: a file is
// known by the SHA-256 of its content, and every row's receipt id derives
// from the file's batch, so a file dropped twice, or under another name,
// books nothing twice. Every file has a report.
type Imports interface {
	// SubmitImport imports a CSV file and returns its report.
	SubmitImport(ctx context.Context, cmd SubmitImport) (ImportReport, error)
	// GetImport returns the report of an import by its id; CodeNotFound
	// when there is none.
	GetImport(ctx context.Context, id string) (ImportReport, error)
	// ListImports returns a page of reports in id order.
	ListImports(ctx context.Context, q ImportQuery) (ImportPage, error)
}

// CommandType names the kind of a queued command.
type CommandType string

// The commands the intake takes: those of POST /v1/receipts,
// /v1/adjustments, /v1/counts and /v1/transfers.
const (
	CommandReceive  CommandType = "receive"
	CommandAdjust   CommandType = "adjust"
	CommandCount    CommandType = "count"
	CommandTransfer CommandType = "transfer"
)

// CommandStatus is where a queued command stands.
type CommandStatus string

// The statuses of a queued command: queued until the worker has applied it
// (applied, with the result the synchronous route answers) or the service
// refused it for good (failed, with the problem the synchronous route
// answers). A refusal the service asks to retry (overloaded, unavailable)
// leaves the command queued.
const (
	CommandQueued  CommandStatus = "queued"
	CommandApplied CommandStatus = "applied"
	CommandFailed  CommandStatus = "failed"
)

// SubmitCommand queues one command. Body is the command's request body,
// exactly as its synchronous route takes it (POST /v1/receipts for
// "receive", and so on).
type SubmitCommand struct {
	// ID is the client's id of the command; empty: one is derived from
	// the type and body, so that a retry without an id is the same
	// command.
	ID   string
	Type CommandType
	Body json.RawMessage
	// Source says where the command came from: "http", "nats".
	Source string
}

// QueuedCommand is a command in the intake and what became of it.
type QueuedCommand struct {
	ID     string        `json:"id"`
	Type   CommandType   `json:"type"`
	Status CommandStatus `json:"status"`
	// Command is the command's request body.
	Command json.RawMessage `json:"command"`
	// Source is where it came from: http or nats.
	Source      string    `json:"source"`
	SubmittedAt time.Time `json:"submitted_at"`
	// FinishedAt is when it was applied or refused; absent while queued.
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Attempts counts the worker's tries so far.
	Attempts int `json:"attempts"`
	// Result is, once applied, the answer of the synchronous route (a
	// receipt, an adjustment, a count or a transfer).
	Result json.RawMessage `json:"result,omitempty"`
	// Created is, once applied, whether the command created its entity
	// (false: it was a replay of one applied before).
	Created bool `json:"created"`
	// Problem is, once failed, the problem details the synchronous route
	// would have answered.
	Problem *CommandProblem `json:"problem,omitempty"`
}

// CommandProblem is why a queued command was refused: the RFC 9457 problem
// details the synchronous route would have answered.
type CommandProblem struct {
	Type   string      `json:"type"`
	Title  string      `json:"title"`
	Status int         `json:"status"`
	Detail string      `json:"detail"`
	Code   Code        `json:"code"`
	Lines  []Shortfall `json:"lines,omitempty"`
}

// SubmitImport imports one supplier CSV file.
type SubmitImport struct {
	// Name is the file's name (without its directory), kept in the report.
	Name string
	// CSV is the file's content.
	CSV []byte
	// Location is the location of rows that name none.
	Location string
	// Batch, when set, names the delivery explicitly: the file is imported
	// as that batch even if its content was imported before as another.
	Batch string
	// NameBatch makes a file whose content was never imported the batch
	// of its Name (the rule of `stockd import`); otherwise a new file's
	// batch is the SHA-256 of its content. A file whose content was
	// imported before keeps the batch it had.
	NameBatch bool
}

// ImportStatus is where an import stands.
type ImportStatus string

// The statuses of an import: applying while its rows are being booked (a
// crash leaves it so, and the next delivery of the file finishes it); done
// when every row was booked or refused; failed when the file could not be
// read at all or the import was interrupted.
const (
	ImportApplying ImportStatus = "applying"
	ImportDone     ImportStatus = "done"
	ImportFailed   ImportStatus = "failed"
)

// ImportReport is what became of a supplier file. The counts are those of
// the file's latest delivery; Files and Deliveries cover every one.
type ImportReport struct {
	// ID names the report: the file's SHA-256 when its batch is its
	// content, else the SHA-256 and a hash of the batch.
	ID     string       `json:"id"`
	SHA256 string       `json:"sha256"`
	Batch  string       `json:"batch"`
	Status ImportStatus `json:"status"`
	// Files are the names the file arrived under, first first.
	Files []string `json:"files"`
	// Deliveries counts the times the file arrived.
	Deliveries int       `json:"deliveries"`
	FirstAt    time.Time `json:"first_at"`
	LastAt     time.Time `json:"last_at"`
	// Rows counts the data rows, good and bad.
	Rows int `json:"rows"`
	// Applied counts the rows booked by the latest delivery, and
	// AlreadyApplied those it found booked before (by an earlier
	// delivery of the file).
	Applied        int `json:"applied"`
	AlreadyApplied int `json:"already_applied"`
	// Refused lists the rows not booked, by line, with the reason.
	Refused []RefusedRow `json:"refused"`
	// RefusedMore counts refused rows beyond the ones listed.
	RefusedMore int `json:"refused_more"`
	// Error says why a failed file could not be read or finished.
	Error string `json:"error,omitempty"`
}

// RefusedRow is a row of a file that was not booked. ID is the receipt id
// it was sent with, empty for a row that could not be read (then Code is
// invalid_request).
type RefusedRow struct {
	Line   int    `json:"line"`
	ID     string `json:"id,omitempty"`
	Code   Code   `json:"code"`
	Reason string `json:"reason"`
}

// ImportQuery asks for a page of import reports: those with ids after
// After, at most Limit (0: the default).
type ImportQuery struct {
	After string
	Limit int
}

// ImportPage is a page of import reports. Next is the After of the
// following page, "" on the last.
type ImportPage struct {
	Items []ImportReport `json:"items"`
	Next  string         `json:"next"`
}
