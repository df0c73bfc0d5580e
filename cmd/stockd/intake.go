package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// The intake commands: commands submit and show (POST and GET
// /v1/commands), imports list and show (GET /v1/imports), and batch (POST
// /v1/batch from a file). See docs/intake.md.

func init() {
	register(command{name: "commands", summary: "queue receipts, adjustments, counts and transfers to apply asynchronously, and follow them (submit, show)", run: runCommands})
	register(command{name: "imports", summary: "the reports of imported supplier files (list, show)", run: runImports})
	register(command{name: "batch", summary: "send many operations from a JSON file in one POST /v1/batch", run: runBatch})
}

func runCommands(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return group(ctx, "commands", "commands submit TYPE BODY [--id ID] [--wait]\n       stockd commands show ID",
		"Queues a receipt, adjustment, count or transfer (TYPE receive, adjust, count or transfer; BODY\nthe JSON body of its route, or - to read it from stdin) with POST /v1/commands, and shows\na queued command's status and result. See docs/intake.md.",
		`stockd commands submit receive '{"id":"r-9","sku":"A","location":"w1","quantity":3}' --wait
stockd commands show cmd-7`,
		[]verb{{"submit", runCommandsSubmit}, {"show", runCommandsShow}}, args, stdout, stderr)
}

func runCommandsSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("commands submit", "commands submit TYPE BODY [--id ID] [--wait]",
		"Queues a command to apply asynchronously: TYPE is receive, adjust, count or transfer and\nBODY the JSON body of its synchronous route (- reads it from stdin). The answer comes once\nthe command is durably queued; --wait then waits until it is applied or refused. Without\n--id the command's id is derived from it, so sending it again is the same command.",
		`stockd commands submit adjust '{"id":"adj-1","sku":"A","location":"w1","delta":-2,"reason":"damaged"}' --id cmd-1 --wait`, stdout, stderr)
	var id string
	var wait bool
	var timeout time.Duration
	c.fs.StringVar(&id, "id", "", "the command's id (default: derived from the command)")
	c.fs.BoolVar(&wait, "wait", false, "wait until the command is applied or refused")
	c.fs.DurationVar(&timeout, "wait-timeout", time.Minute, "longest --wait waits")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		return c.usageError("name the type (receive, adjust, count, transfer) and the JSON body")
	}
	body := []byte(pos[1])
	if pos[1] == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(stderr, "stockd commands submit:", err)
			return exitFailure
		}
		body = b
	}
	if !json.Valid(body) {
		return c.usageError("the body is not JSON")
	}
	cl := c.client()
	cmd := stockd.SubmitCommand{ID: id, Type: stockd.CommandType(pos[0]), Body: body}
	var qc stockd.QueuedCommand
	err := c.send(ctx, "command", func() (err error) {
		qc, _, err = cl.SubmitCommand(ctx, cmd)
		return err
	})
	if err != nil {
		return c.fail(err)
	}
	if wait {
		deadline := time.Now().Add(timeout)
		for qc.Status == stockd.CommandQueued && time.Now().Before(deadline) {
			if err := pause(ctx, 100*time.Millisecond); err != nil {
				return c.fail(err)
			}
			if qc, err = cl.GetCommand(ctx, qc.ID); err != nil {
				return c.fail(err)
			}
		}
	}
	return c.showCommand(qc)
}

func runCommandsShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("commands show", "commands show ID", "Shows a queued command: its status and, once finished, its result or the problem that refused it.", `stockd commands show cmd-7`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one command id")
	}
	qc, err := c.client().GetCommand(ctx, pos[0])
	if err != nil {
		return c.fail(err)
	}
	return c.showCommand(qc)
}

// showCommand prints a queued command; a refused one exits 3.
func (c *clientCmd) showCommand(qc stockd.QueuedCommand) int {
	if c.json {
		c.printJSON(qc)
	} else {
		fmt.Fprintf(c.stdout, "command %s (%s): %s\n", qc.ID, qc.Type, qc.Status)
		switch {
		case qc.Status == stockd.CommandApplied:
			fmt.Fprintf(c.stdout, "result: %s\n", qc.Result)
		case qc.Problem != nil:
			fmt.Fprintf(c.stdout, "refused: %s (%s)\n", qc.Problem.Detail, qc.Problem.Code)
		}
	}
	if qc.Status == stockd.CommandFailed {
		return exitRejected
	}
	return exitOK
}

func runImports(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return group(ctx, "imports", "imports list [--after ID] [--limit N]\n       stockd imports show ID",
		"Shows the reports of imported supplier files (stockd import, POST /v1/imports, dropped files):\nthe names a file arrived under, its SHA-256 and batch, its rows, those booked and those refused.",
		`stockd imports list
stockd imports show 3f2a…`,
		[]verb{{"list", runImportsList}, {"show", runImportsShow}}, args, stdout, stderr)
}

func runImportsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("imports list", "imports list [--after ID] [--limit N]", "Lists import reports in id order.", `stockd imports list --limit 20`, stdout, stderr)
	var q stockd.ImportQuery
	c.fs.StringVar(&q.After, "after", "", "list those after this id (a page's next)")
	c.fs.IntVar(&q.Limit, "limit", 100, "most reports to list (1-1000)")
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	page, err := c.client().ListImports(ctx, q)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(page)
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "ID\tSTATUS\tFILES\tROWS\tBOOKED\tREFUSED\tLAST")
	for _, r := range page.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", shortID(r.ID), r.Status, strings.Join(r.Files, ","), r.Rows, r.Applied+r.AlreadyApplied, len(r.Refused)+r.RefusedMore, formatTime(r.LastAt))
	}
	tw.Flush()
	if page.Next != "" {
		fmt.Fprintf(c.stderr, "more: --after %s\n", page.Next)
	}
	return exitOK
}

// shortID shortens a report id for a table; show takes the whole one.
func shortID(id string) string {
	if len(id) > 20 {
		return id[:16] + "…"
	}
	return id
}

func runImportsShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("imports show", "imports show ID", "Shows an import report, with every refused row by line.", `stockd imports show 3f2a…`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one import id")
	}
	r, err := c.client().GetImport(ctx, pos[0])
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(r)
		return exitOK
	}
	fmt.Fprintf(stdout, "import %s: %s\nfiles: %s\nsha256: %s\nbatch: %s\ndeliveries: %d (first %s, last %s)\nrows: %d: %d booked (%d by the latest delivery, %d before it), %d refused\n",
		r.ID, r.Status, strings.Join(r.Files, ", "), r.SHA256, r.Batch, r.Deliveries, formatTime(r.FirstAt), formatTime(r.LastAt),
		r.Rows, r.Applied+r.AlreadyApplied, r.Applied, r.AlreadyApplied, len(r.Refused)+r.RefusedMore)
	if r.Error != "" {
		fmt.Fprintf(stdout, "error: %s\n", r.Error)
	}
	for _, row := range r.Refused {
		fmt.Fprintf(stdout, "line %d: %s (%s)\n", row.Line, row.Reason, row.Code)
	}
	if r.RefusedMore > 0 {
		fmt.Fprintf(stdout, "… and %d more refused rows\n", r.RefusedMore)
	}
	return exitOK
}

func runBatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("batch", "batch FILE.json",
		"Sends the operations of a JSON file ({\"operations\":[{\"op\":\"receive\",\"body\":{...}},...]},\nor - for stdin) in one POST /v1/batch and prints each one's result as JSON. Exit 3 when any\nwas refused.",
		`stockd batch ops.json`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one JSON file (or -)")
	}
	var data []byte
	var err error
	if pos[0] == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(pos[0])
	}
	if err != nil {
		fmt.Fprintln(stderr, "stockd batch:", err)
		return exitFailure
	}
	var req api.BatchRequest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return c.usageError("%s is not a batch: %v", pos[0], err)
	}
	resp, err := c.client().Batch(ctx, req.Operations)
	if err != nil {
		return c.fail(err)
	}
	c.printJSON(resp)
	for _, r := range resp.Results {
		if r.Status >= 300 {
			return exitRejected
		}
	}
	return exitOK
}
