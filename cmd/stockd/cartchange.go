package main

import (
	"context"
	"io"

	"github.com/stockd/stockd"
)

func init() {
	register(command{name: "change", summary: "replace a held reservation's lines, all or nothing", run: runChange})
}

func runChange(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("change", "change ID [--ttl 15m] [--region R] [--split] [--idempotency-key KEY] SKU=QTY[@LOCATION] ...",
		"Replaces every line of a held reservation, all or nothing: name every line the cart is to\nhold afterwards. A SKU left out is released, a new SKU is added, a quantity may go up or\ndown. The deadline is kept unless --ttl is given. The same change sent again changes\nnothing, so a change whose answer was lost is sent again (--retries).",
		`stockd change cart-42 A=3 B=1@w1
stockd change cart-42 A=1 --ttl 30m`, stdout, stderr)
	var cmd stockd.ChangeReservation
	var split bool
	c.fs.DurationVar(&cmd.TTL, "ttl", 0, "move the deadline to now + ttl (default: keep it)")
	c.fs.StringVar(&cmd.Region, "region", "", "allocate lines that grow or move only from locations of this region")
	c.fs.BoolVar(&split, "split", false, "allow a line to be held across several locations")
	c.fs.StringVar(&cmd.Key, "idempotency-key", "", "idempotency key: the same key with another request is refused")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) < 2 {
		return c.usageError("name the reservation id and at least one line, such as A=2 or A=2@w1; release drops a cart")
	}
	cmd.ID = pos[0]
	for _, arg := range pos[1:] {
		sku, qty, loc, err := parseLine(arg, true)
		if err != nil {
			return c.usageError("%v", err)
		}
		cmd.Lines = append(cmd.Lines, stockd.ReserveLine{SKU: sku, Quantity: qty, Location: loc, Split: split})
	}
	cl := c.client()
	var r stockd.Reservation
	err := c.send(ctx, "the change of "+cmd.ID, func() (err error) {
		r, err = cl.Change(ctx, cmd)
		return err
	})
	return c.showReservation(r, err)
}
