package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/stockd/stockd"
)

// The bundle commands: bundle set and show.

func init() {
	register(command{name: "bundle", summary: "define and show bundles, SKUs made of components (set, show)", run: runBundle})
}

func runBundle(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return group(ctx, "bundle", "bundle set SKU COMPONENT=QTY [COMPONENT=QTY…]\n       stockd bundle show SKU",
		"Defines bundles (kits): a reservation line of a bundle holds every component ×\nits quantity, all or nothing; the bundle's stock (stockd sku SKU) is derived.",
		`stockd bundle set bike frame=1 wheel=2
stockd bundle show bike`,
		[]verb{{"set", runBundleSet}, {"show", runBundleShow}}, args, stdout, stderr)
}

func runBundleSet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("bundle set", "bundle set SKU COMPONENT=QTY [COMPONENT=QTY…]",
		"Makes SKU a bundle of the components, or changes its definition (reservations\nalready held keep what they hold). Setting it again changes nothing, so a command\nwhose answer was lost is sent again (--retries).",
		`stockd bundle set bike frame=1 wheel=2`, stdout, stderr)
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) < 2 {
		return c.usageError("name the bundle SKU and at least one COMPONENT=QTY")
	}
	cmd := stockd.DefineBundle{SKU: pos[0]}
	for _, arg := range pos[1:] {
		sku, qty, found := strings.Cut(arg, "=")
		q, err := strconv.ParseInt(qty, 10, 64)
		if !found || err != nil {
			return c.usageError("component %q is not COMPONENT=QTY", arg)
		}
		cmd.Components = append(cmd.Components, stockd.BundleComponent{SKU: sku, Quantity: q})
	}
	cl := c.client()
	var b stockd.Bundle
	err := c.send(ctx, "bundle "+cmd.SKU, func() (err error) {
		b, err = cl.DefineBundle(ctx, cmd)
		return err
	})
	return c.showBundle(err, b)
}

func runBundleShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("bundle show", "bundle show SKU", "Shows a bundle's components.", `stockd bundle show bike`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one bundle SKU")
	}
	b, err := c.client().Bundle(ctx, pos[0])
	return c.showBundle(err, b)
}

// showBundle prints a bundle's definition, or the error.
func (c *clientCmd) showBundle(err error, b stockd.Bundle) int {
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(b)
		return exitOK
	}
	parts := make([]string, len(b.Components))
	for i, comp := range b.Components {
		parts[i] = fmt.Sprintf("%s×%d", comp.SKU, comp.Quantity)
	}
	fmt.Fprintf(c.stdout, "bundle %s = %s\n", b.SKU, strings.Join(parts, " + "))
	return exitOK
}
