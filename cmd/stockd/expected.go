package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/stockd/stockd"
)

func init() {
	register(command{name: "expected", summary: "record incoming stock that preorders may hold; expected arrive <id> books it", run: runExpected})
}

func runExpected(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "arrive":
			return runExpectedArrive(ctx, args[1:], stdout, stderr)
		case "cancel":
			return runExpectedCancel(ctx, args[1:], stdout, stderr)
		case "show":
			return runExpectedShow(ctx, args[1:], stdout, stderr)
		}
	}
	c := newClientCmd("expected", "expected --sku SKU --location LOC --quantity N --at TIME [--id ID]\n       stockd expected arrive ID [--quantity N] [--lot L --best-before YYYY-MM-DD]\n       stockd expected cancel ID\n       stockd expected show ID",
		"Records incoming stock (a purchase order line) expected at a location by a time (RFC 3339).\nReservations of a SKU configured with 'stockd sku config SKU --preorders' may hold it once\non-hand stock runs out. Without --id a random id is made and printed first; when no answer\ncomes, it is sent again with the same id (--retries).",
		`stockd expected --sku A --location w1 --quantity 50 --at 2027-04-01T08:00:00Z --id po-7
stockd expected arrive po-7 --quantity 48`, stdout, stderr)
	var cmd stockd.ExpectReceipt
	var at string
	c.fs.StringVar(&cmd.ID, "id", "", "expected receipt id (default: a new random id)")
	c.fs.StringVar(&cmd.SKU, "sku", "", "SKU expected (required)")
	c.fs.StringVar(&cmd.Location, "location", "", "location it is expected at (required)")
	c.fs.Int64Var(&cmd.Quantity, "quantity", 0, "units expected, at least 1 (required)")
	c.alias("quantity", "q")
	c.fs.StringVar(&at, "at", "", "when it is expected, RFC 3339 (required)")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q (subcommands: arrive, cancel, show)", pos[0])
	}
	if code, ok := c.required("sku", cmd.SKU, "location", cmd.Location, "at", at); !ok {
		return code
	}
	if code, ok := c.requireSet("quantity"); !ok {
		return code
	}
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return c.usageError("--at %q is not an RFC 3339 time", at)
	}
	cmd.ExpectedAt = t
	c.useID(&cmd.ID, "po", "expected receipt")
	cl := c.client()
	var e stockd.ExpectedReceipt
	var created bool
	err = c.send(ctx, "expected receipt "+cmd.ID, func() (err error) {
		e, created, err = cl.ExpectReceipt(ctx, cmd)
		return err
	})
	if err != nil {
		return c.failSent(err, cmd.ID)
	}
	return printExpected(c, stdout, e, c.replayNote(created))
}

func runExpectedArrive(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("expected arrive", "expected arrive ID [--quantity N] [--lot L --best-before YYYY-MM-DD]",
		"Books an expected receipt into stock and turns the preorders held on it into holds.\nWithout --quantity the quantity expected arrives; fewer is a short delivery, whose\nmissing units show as a shortage. Repeating it changes nothing.",
		`stockd expected arrive po-7 --quantity 48`, stdout, stderr)
	cmd := stockd.ArriveExpected{}
	c.fs.Int64Var(&cmd.Quantity, "quantity", 0, "units that arrived (default: the quantity expected)")
	c.alias("quantity", "q")
	c.fs.StringVar(&cmd.Lot, "lot", "", "lot the units arrive as")
	c.fs.StringVar(&cmd.BestBefore, "best-before", "", "best-before date of the lot, YYYY-MM-DD")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one expected receipt id")
	}
	cmd.ID = pos[0]
	cl := c.client()
	var e stockd.ExpectedReceipt
	err := c.send(ctx, "the arrival of expected receipt "+cmd.ID, func() (err error) {
		e, err = cl.ArriveExpected(ctx, cmd)
		return err
	})
	if err != nil {
		return c.fail(err)
	}
	return printExpected(c, stdout, e, "")
}

func runExpectedCancel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("expected cancel", "expected cancel ID",
		"Cancels an expected receipt that has not arrived. Preorders held on it become holds at its\nlocation, a shortage unless stock covers them. Repeating it changes nothing.",
		`stockd expected cancel po-7`, stdout, stderr)
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one expected receipt id")
	}
	cl := c.client()
	var e stockd.ExpectedReceipt
	err := c.send(ctx, "the cancel of expected receipt "+pos[0], func() (err error) {
		e, err = cl.CancelExpected(ctx, stockd.CancelExpected{ID: pos[0]})
		return err
	})
	if err != nil {
		return c.fail(err)
	}
	return printExpected(c, stdout, e, "")
}

func runExpectedShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("expected show", "expected show ID", "Shows an expected receipt.", `stockd expected show po-7`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one expected receipt id")
	}
	e, err := c.client().GetExpectedReceipt(ctx, pos[0])
	if err != nil {
		return c.fail(err)
	}
	return printExpected(c, stdout, e, "")
}

func printExpected(c *clientCmd, stdout io.Writer, e stockd.ExpectedReceipt, note string) int {
	if c.json {
		c.printJSON(e)
		return exitOK
	}
	fmt.Fprintf(stdout, "expected receipt %s: %d of %s at %s by %s, %s", e.ID, e.Quantity, e.SKU, e.Location, e.ExpectedAt.Format(time.RFC3339), e.Status)
	switch e.Status {
	case stockd.ExpectedStatusExpected:
		fmt.Fprintf(stdout, " (%d promised, %d sold, %d preorderable)", e.Promised, e.Committed, e.Preorderable)
	case stockd.ExpectedStatusArrived:
		fmt.Fprintf(stdout, " (%d arrived, %d sold before)", e.Arrived, e.Committed)
	}
	fmt.Fprintf(stdout, "%s\n", note)
	return exitOK
}
