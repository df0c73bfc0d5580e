package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stockd/stockd"
)

// The stock commands: receive, adjust, count and transfer (with transfer
// arrive and transfer show).

func init() {
	register(command{name: "receive", summary: "receive stock at a location (a receipt)", run: runReceive})
	register(command{name: "adjust", summary: "change on-hand stock with a reason (damaged, lost, found, ...)", run: runAdjust})
	register(command{name: "count", summary: "set on-hand stock to a physical count", run: runCount})
	register(command{name: "transfer", summary: "move stock between locations; transfer arrive <id> books its arrival", run: runTransfer})
}

func runReceive(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("receive", "receive --sku SKU --location LOC --quantity N [--lot L --best-before YYYY-MM-DD] [--id ID]",
		"Books a receipt. Repeating it with the same --id adds nothing; without --id a random id is made\nand printed first. When no answer comes, it is sent again with the same id (--retries).",
		`stockd receive --sku A --location w1 --quantity 10 --lot L1 --best-before 2027-03-15 --id r-1`, stdout, stderr)
	var cmd stockd.ReceiveStock
	c.fs.StringVar(&cmd.ID, "id", "", "receipt id (default: a new random id)")
	c.fs.StringVar(&cmd.SKU, "sku", "", "SKU received (required)")
	c.fs.StringVar(&cmd.Location, "location", "", "location received at (required)")
	c.fs.Int64Var(&cmd.Quantity, "quantity", 0, "units received, at least 1 (required)")
	c.alias("quantity", "q")
	c.fs.StringVar(&cmd.Lot, "lot", "", "lot, when the stock is dated or traced")
	c.fs.StringVar(&cmd.BestBefore, "best-before", "", "best-before date of the lot, YYYY-MM-DD")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	if code, ok := c.required("sku", cmd.SKU, "location", cmd.Location); !ok {
		return code
	}
	if code, ok := c.requireSet("quantity"); !ok {
		return code
	}
	c.useID(&cmd.ID, "r", "receipt")
	cl := c.client()
	var r stockd.Receipt
	var created bool
	err := c.send(ctx, "receipt "+cmd.ID, func() (err error) {
		r, created, err = cl.Receive(ctx, cmd)
		return err
	})
	if err != nil {
		return c.failSent(err, cmd.ID)
	}
	if c.json {
		c.printJSON(r)
		return exitOK
	}
	lot := ""
	if r.Lot != "" {
		lot = fmt.Sprintf(" lot %s", r.Lot)
		if r.BestBefore != "" {
			lot += " best before " + r.BestBefore
		}
	}
	fmt.Fprintf(stdout, "receipt %s: %d of %s at %s%s, position %d%s\n", r.ID, r.Quantity, r.SKU, r.Location, lot, r.Position, c.replayNote(created))
	return exitOK
}

func runAdjust(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("adjust", "adjust --sku SKU --location LOC --delta N --reason REASON [--lot L] [--id ID]",
		"Changes on-hand stock by a signed delta. Reasons: count, damaged, lost, found, returned, other.\nA negative delta takes from the named lot, or first-expiry-first-out. Without --id a random id\nis made and printed first; when no answer comes, it is sent again with the same id (--retries).",
		`stockd adjust --sku A --location w1 --delta -2 --reason damaged --id adj-1`, stdout, stderr)
	var cmd stockd.AdjustStock
	var reason string
	c.fs.StringVar(&cmd.ID, "id", "", "adjustment id (default: a new random id)")
	c.fs.StringVar(&cmd.SKU, "sku", "", "SKU (required)")
	c.fs.StringVar(&cmd.Location, "location", "", "location (required)")
	c.fs.Int64Var(&cmd.Delta, "delta", 0, "change of on-hand, negative to remove (required)")
	c.fs.StringVar(&reason, "reason", "", "count, damaged, lost, found, returned or other (required)")
	c.fs.StringVar(&cmd.Lot, "lot", "", "lot to take from or add to")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	if code, ok := c.required("sku", cmd.SKU, "location", cmd.Location, "reason", reason); !ok {
		return code
	}
	if code, ok := c.requireSet("delta"); !ok {
		return code
	}
	cmd.Reason = stockd.AdjustReason(reason)
	c.useID(&cmd.ID, "adj", "adjustment")
	cl := c.client()
	var a stockd.Adjustment
	var created bool
	err := c.send(ctx, "adjustment "+cmd.ID, func() (err error) {
		a, created, err = cl.Adjust(ctx, cmd)
		return err
	})
	if err != nil {
		return c.failSent(err, cmd.ID)
	}
	if c.json {
		c.printJSON(a)
		return exitOK
	}
	fmt.Fprintf(stdout, "adjustment %s: %+d of %s at %s (%s), position %d%s\n", a.ID, a.Delta, a.SKU, a.Location, a.Reason, a.Position, c.replayNote(created))
	return exitOK
}

func runCount(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("count", "count --sku SKU --location LOC --on-hand N [--id ID]",
		"Records a physical count: on-hand at the location becomes N, and the difference is recorded.\nWithout --id a random id is made and printed first; when no answer comes, it is sent again\nwith the same id (--retries).",
		`stockd count --sku A --location w1 --on-hand 7 --id c-1`, stdout, stderr)
	var cmd stockd.CountStock
	c.fs.StringVar(&cmd.ID, "id", "", "count id (default: a new random id)")
	c.fs.StringVar(&cmd.SKU, "sku", "", "SKU (required)")
	c.fs.StringVar(&cmd.Location, "location", "", "location (required)")
	c.fs.Int64Var(&cmd.OnHand, "on-hand", 0, "units counted, 0 or more (required)")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	if code, ok := c.required("sku", cmd.SKU, "location", cmd.Location); !ok {
		return code
	}
	if code, ok := c.requireSet("on-hand"); !ok {
		return code
	}
	c.useID(&cmd.ID, "cnt", "count")
	cl := c.client()
	var n stockd.Count
	var created bool
	err := c.send(ctx, "count "+cmd.ID, func() (err error) {
		n, created, err = cl.Count(ctx, cmd)
		return err
	})
	if err != nil {
		return c.failSent(err, cmd.ID)
	}
	if c.json {
		c.printJSON(n)
		return exitOK
	}
	fmt.Fprintf(stdout, "count %s: %s at %s is %d (%+d), position %d%s\n", n.ID, n.SKU, n.Location, n.OnHand, n.Delta, n.Position, c.replayNote(created))
	return exitOK
}

func runTransfer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "arrive":
			return runTransferArrive(ctx, args[1:], stdout, stderr)
		case "show":
			return runTransferShow(ctx, args[1:], stdout, stderr)
		}
	}
	c := newClientCmd("transfer", "transfer --sku SKU --from LOC --to LOC --quantity N [--id ID]\n       stockd transfer arrive ID\n       stockd transfer show ID",
		"Sends available stock from one location towards another (lots first-expiry-first-out);\nit is in transit until 'stockd transfer arrive ID' books it in. Without --id a random id is\nmade and printed first; when no answer comes, it is sent again with the same id (--retries).",
		`stockd transfer --sku A --from w1 --to s1 --quantity 3 --id t-1
stockd transfer arrive t-1`, stdout, stderr)
	var cmd stockd.TransferStock
	c.fs.StringVar(&cmd.ID, "id", "", "transfer id (default: a new random id)")
	c.fs.StringVar(&cmd.SKU, "sku", "", "SKU (required)")
	c.fs.StringVar(&cmd.From, "from", "", "location the stock leaves (required)")
	c.fs.StringVar(&cmd.To, "to", "", "location the stock goes to (required)")
	c.fs.Int64Var(&cmd.Quantity, "quantity", 0, "units, at least 1 (required)")
	c.alias("quantity", "q")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q (subcommands: arrive, show)", pos[0])
	}
	if code, ok := c.required("sku", cmd.SKU, "from", cmd.From, "to", cmd.To); !ok {
		return code
	}
	if code, ok := c.requireSet("quantity"); !ok {
		return code
	}
	c.useID(&cmd.ID, "t", "transfer")
	cl := c.client()
	var t stockd.Transfer
	var created bool
	err := c.send(ctx, "transfer "+cmd.ID, func() (err error) {
		t, created, err = cl.Transfer(ctx, cmd)
		return err
	})
	if err != nil {
		return c.failSent(err, cmd.ID)
	}
	if c.json {
		c.printJSON(t)
		return exitOK
	}
	fmt.Fprintf(stdout, "transfer %s: %d of %s from %s to %s, %s%s\n", t.ID, t.Quantity, t.SKU, t.From, t.To, t.Status, c.replayNote(created))
	printTransferLots(c, t)
	return exitOK
}

func runTransferArrive(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("transfer arrive", "transfer arrive ID",
		"Books a transfer's stock into its destination. Repeating it changes nothing.",
		`stockd transfer arrive t-1`, stdout, stderr)
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one transfer id")
	}
	cl := c.client()
	var t stockd.Transfer
	err := c.send(ctx, "the arrival of transfer "+pos[0], func() (err error) {
		t, err = cl.ArriveTransfer(ctx, stockd.ArriveTransfer{ID: pos[0]})
		return err
	})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(t)
		return exitOK
	}
	fmt.Fprintf(stdout, "transfer %s: %d of %s from %s to %s, %s at %s\n", t.ID, t.Quantity, t.SKU, t.From, t.To, t.Status, formatArrived(t))
	printTransferLots(c, t)
	return exitOK
}

func runTransferShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("transfer show", "transfer show ID", "Shows a transfer.", `stockd transfer show t-1`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one transfer id")
	}
	t, err := c.client().GetTransfer(ctx, pos[0])
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(t)
		return exitOK
	}
	fmt.Fprintf(stdout, "transfer %s: %d of %s from %s to %s, %s (sent %s, arrived %s)\n", t.ID, t.Quantity, t.SKU, t.From, t.To, t.Status, formatTime(t.SentAt), formatArrived(t))
	printTransferLots(c, t)
	return exitOK
}

func formatArrived(t stockd.Transfer) string {
	if t.ArrivedAt == nil {
		return "-"
	}
	return formatTime(*t.ArrivedAt)
}

func printTransferLots(c *clientCmd, t stockd.Transfer) {
	if len(t.Lots) == 0 {
		return
	}
	tw := c.table()
	fmt.Fprintln(tw, "LOT\tQUANTITY\tBEST BEFORE")
	for _, l := range t.Lots {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", dash(l.Lot), l.Quantity, dash(l.BestBefore))
	}
	tw.Flush()
}
