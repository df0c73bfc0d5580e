package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/stockd/stockd"
)

// The reservation commands: reserve, commit, release, extend, and
// reservation (show one, or list a customer's).

func init() {
	register(command{name: "reserve", summary: "hold stock for a cart: every line or none", run: runReserve})
	register(command{name: "commit", summary: "turn a held reservation, or part of it, into a sale", run: runCommit})
	register(command{name: "release", summary: "give a held reservation's stock back", run: runRelease})
	register(command{name: "extend", summary: "move a held reservation's deadline", run: runExtend})
	register(command{name: "reservation", summary: "show a reservation; reservation list --customer C lists a customer's", run: runReservation})
}

// stringList is a flag that may be repeated.
type stringList []string

// String implements flag.Value.
func (s *stringList) String() string { return strings.Join(*s, ",") }

// Set implements flag.Value: each use of the flag adds one value.
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runReserve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("reserve", "reserve [--id ID] [--ttl 15m] [--customer C] [--region R] [--split] SKU=QTY[@LOCATION] ...",
		"Holds every line or none. A line names a SKU and a quantity, and optionally a location;\nwithout one, stock is allocated by location priority. Without --id a random id is made and\nprinted first; when no answer comes, it is sent again with the same id (--retries).",
		`stockd reserve --id cart-42 --ttl 15m --customer c-9 A=2@w1 B=1`, stdout, stderr)
	var cmd stockd.Reserve
	var split bool
	var prefer stringList
	c.fs.StringVar(&cmd.ID, "id", "", "reservation id (default: a new random id)")
	c.fs.DurationVar(&cmd.TTL, "ttl", 0, "how long the hold lasts, such as 15m (default: the service's)")
	c.fs.StringVar(&cmd.Customer, "customer", "", "customer id, to list reservations by customer")
	c.fs.StringVar(&cmd.Region, "region", "", "allocate only from locations of this region")
	c.fs.BoolVar(&split, "split", false, "allow a line to be held across several locations")
	c.fs.Var(&prefer, "prefer", "preferred location for lines that name none, in order; repeat it")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return c.usageError("name at least one line, such as A=2 or A=2@w1")
	}
	for _, arg := range pos {
		sku, qty, loc, err := parseLine(arg, true)
		if err != nil {
			return c.usageError("%v", err)
		}
		l := stockd.ReserveLine{SKU: sku, Quantity: qty, Location: loc, Split: split}
		if loc == "" && len(prefer) > 0 {
			l.Locations = prefer
		}
		cmd.Lines = append(cmd.Lines, l)
	}
	c.useID(&cmd.ID, "res", "reservation")
	cl := c.client()
	var r stockd.Reservation
	var created bool
	err := c.send(ctx, "reservation "+cmd.ID, func() (err error) {
		r, created, err = cl.Reserve(ctx, cmd)
		return err
	})
	if err != nil {
		return c.failSent(err, cmd.ID)
	}
	if c.json {
		c.printJSON(r)
		return exitOK
	}
	fmt.Fprintf(stdout, "reservation %s%s\n", r.ID, c.replayNote(created))
	printReservation(c, r)
	return exitOK
}

func runCommit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("commit", "commit ID [SKU=QTY ...] [--idempotency-key KEY]",
		"Commits a held reservation. With lines, each named SKU commits that quantity and\nevery remainder and unnamed line is released (a partial commit). Committing a committed\nreservation changes nothing, so a commit whose answer was lost is sent again (--retries).",
		`stockd commit cart-42
stockd commit cart-42 A=1 --idempotency-key pay-7`, stdout, stderr)
	var cmd stockd.CommitReservation
	c.fs.StringVar(&cmd.Key, "idempotency-key", "", "idempotency key: the same key with another request is refused")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return c.usageError("name the reservation id")
	}
	cmd.ID = pos[0]
	for _, arg := range pos[1:] {
		sku, qty, _, err := parseLine(arg, false)
		if err != nil {
			return c.usageError("%v", err)
		}
		cmd.Lines = append(cmd.Lines, stockd.CommitLine{SKU: sku, Quantity: qty})
	}
	cl := c.client()
	var r stockd.Reservation
	err := c.send(ctx, "the commit of "+cmd.ID, func() (err error) {
		r, err = cl.Commit(ctx, cmd)
		return err
	})
	return c.showReservation(r, err)
}

func runRelease(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("release", "release ID [--idempotency-key KEY]",
		"Releases a held reservation: its stock is available again. Repeating it changes nothing,\nso a release whose answer was lost is sent again (--retries).",
		`stockd release cart-42`, stdout, stderr)
	var cmd stockd.ReleaseReservation
	c.fs.StringVar(&cmd.Key, "idempotency-key", "", "idempotency key")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one reservation id")
	}
	cmd.ID = pos[0]
	cl := c.client()
	var r stockd.Reservation
	err := c.send(ctx, "the release of "+cmd.ID, func() (err error) {
		r, err = cl.Release(ctx, cmd)
		return err
	})
	return c.showReservation(r, err)
}

func runExtend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("extend", "extend ID --ttl DURATION [--idempotency-key KEY]",
		"Moves a held reservation's deadline to DURATION from now. Without --idempotency-key a\nrandom key is made, so that an extend whose answer was lost is sent again (--retries)\nwithout being applied twice.",
		`stockd extend cart-42 --ttl 10m --idempotency-key ext-1`, stdout, stderr)
	var cmd stockd.ExtendReservation
	c.fs.DurationVar(&cmd.TTL, "ttl", 0, "new hold time from now, such as 10m (required)")
	c.fs.StringVar(&cmd.Key, "idempotency-key", "", "idempotency key: the same key with another ttl is refused (default: a new random key)")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one reservation id")
	}
	if code, ok := c.requireSet("ttl"); !ok {
		return code
	}
	cmd.ID = pos[0]
	if cmd.Key == "" {
		cmd.Key = newID("ext")
	}
	cl := c.client()
	var r stockd.Reservation
	err := c.send(ctx, "the extension of "+cmd.ID, func() (err error) {
		r, err = cl.Extend(ctx, cmd)
		return err
	})
	if err != nil && unknownOutcome(err) {
		defer fmt.Fprintf(c.stderr, "The extension may or may not have been applied. Run it again with --idempotency-key %s: it is never applied twice.\n", cmd.Key)
	}
	return c.showReservation(r, err)
}

func runReservation(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return runReservationList(ctx, args[1:], stdout, stderr)
		case "show":
			args = args[1:]
		}
	}
	c := newClientCmd("reservation", "reservation [show] ID\n       stockd reservation list --customer C [--limit N]",
		"Shows a reservation as it is now: held, committed, released or expired.",
		`stockd reservation cart-42
stockd reservation list --customer c-9`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one reservation id")
	}
	r, err := c.client().GetReservation(ctx, pos[0])
	return c.showReservation(r, err)
}

func runReservationList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("reservation list", "reservation list --customer C [--after CURSOR] [--limit N]",
		"Lists a customer's held reservations, newest first, a page at a time, from the read model\n(it may lag a moment; committed, released and expired ones are not listed). The output ends with the command that shows the next page.",
		`stockd reservation list --customer c-9 --limit 20`, stdout, stderr)
	var customer, after string
	var limit int
	c.fs.StringVar(&customer, "customer", "", "customer id (required)")
	c.fs.StringVar(&after, "after", "", "cursor: the 'next' of the previous page")
	c.fs.IntVar(&limit, "limit", 0, "reservations per page, 1 to 1000 (default: the service's)")
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	if code, ok := c.required("customer", customer); !ok {
		return code
	}
	rs, err := c.client().CustomerReservations(ctx, stockd.CustomerQuery{Customer: customer, After: after, Limit: limit})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(rs)
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "ID\tSTATUS\tCREATED\tEXPIRES\tLINES")
	for _, r := range rs.Items {
		var lines []string
		for _, l := range r.Lines {
			lines = append(lines, fmt.Sprintf("%s=%d", l.SKU, l.Quantity))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, formatTime(r.CreatedAt), formatTime(r.ExpiresAt), strings.Join(lines, " "))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d reservation(s) of %s, as of %s%s\n", len(rs.Items), customer, formatTime(rs.AsOf), lagNote(rs.Lag.Events))
	if rs.Next != "" {
		fmt.Fprintf(stdout, "next page: stockd reservation list --customer %s --after %s\n", customer, rs.Next)
	}
	return exitOK
}

// lagNote tells a human how far behind a read-model answer is.
func lagNote(events uint64) string {
	if events == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d event(s) behind)", events)
}

// showReservation prints a reservation, or the error.
func (c *clientCmd) showReservation(r stockd.Reservation, err error) int {
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(r)
		return exitOK
	}
	fmt.Fprintf(c.stdout, "reservation %s\n", r.ID)
	printReservation(c, r)
	return exitOK
}

func printReservation(c *clientCmd, r stockd.Reservation) {
	until := "expires"
	if r.Status != stockd.StatusHeld {
		until = "expiry was"
	}
	fmt.Fprintf(c.stdout, "status %s, %s %s", r.Status, until, formatTime(r.ExpiresAt))
	if r.Status == stockd.StatusHeld {
		fmt.Fprintf(c.stdout, " (in %s)", time.Until(r.ExpiresAt).Round(time.Second))
	}
	if r.Customer != "" {
		fmt.Fprintf(c.stdout, ", customer %s", r.Customer)
	}
	fmt.Fprintln(c.stdout)
	tw := c.table()
	fmt.Fprintln(tw, "SKU\tQUANTITY\tHELD\tALLOCATIONS")
	for _, l := range r.Lines {
		var allocs []string
		for _, a := range l.Allocations {
			allocs = append(allocs, fmt.Sprintf("%s:%d", a.Location, a.Quantity))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", l.SKU, l.Quantity, l.Held, dash(strings.Join(allocs, " ")))
	}
	tw.Flush()
}
