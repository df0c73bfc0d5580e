package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stockd/stockd"
)

// The location commands: location set, show and list.

func init() {
	register(command{name: "location", summary: "configure and list locations (set, show, list)", run: runLocation})
}

func runLocation(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return group(ctx, "location", "location set ID --kind KIND [--priority N] [--region R]\n       stockd location show ID\n       stockd location list",
		"Configures locations. Kinds: warehouse, store, third_party. Allocation prefers lower\npriority values; ties go by id.",
		`stockd location set w1 --kind warehouse --priority 1 --region eu
stockd location list`,
		[]verb{{"set", runLocationSet}, {"show", runLocationShow}, {"list", runLocationList}}, args, stdout, stderr)
}

func runLocationSet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("location set", "location set ID --kind KIND [--priority N] [--region R]",
		"Sets a location's kind, priority and region. Setting it again replaces them, so a command\nwhose answer was lost is sent again (--retries).",
		`stockd location set w1 --kind warehouse --priority 1 --region eu`, stdout, stderr)
	var cmd stockd.ConfigureLocation
	var kind string
	c.fs.StringVar(&kind, "kind", "", "warehouse, store or third_party (required)")
	c.fs.IntVar(&cmd.Priority, "priority", 0, "allocation priority: lower is used first")
	c.fs.StringVar(&cmd.Region, "region", "", "region, for reservations restricted to one")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one location id")
	}
	if code, ok := c.required("kind", kind); !ok {
		return code
	}
	cmd.ID, cmd.Kind = pos[0], stockd.LocationKind(kind)
	cl := c.client()
	var l stockd.Location
	err := c.send(ctx, "location "+cmd.ID, func() (err error) {
		l, err = cl.ConfigureLocation(ctx, cmd)
		return err
	})
	return c.showLocations(err, l)
}

func runLocationShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("location show", "location show ID", "Shows a location.", `stockd location show w1`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one location id")
	}
	l, err := c.client().Location(ctx, pos[0])
	return c.showLocations(err, l)
}

func runLocationList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("location list", "location list", "Lists every configured location.", `stockd location list --json`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	ls, err := c.client().Locations(ctx)
	if err == nil && c.json {
		c.printJSON(map[string]any{"items": ls})
		return exitOK
	}
	return c.showLocations(err, ls...)
}

// showLocations prints locations as a table, or the error.
func (c *clientCmd) showLocations(err error, ls ...stockd.Location) int {
	if err != nil {
		return c.fail(err)
	}
	if c.json && len(ls) == 1 {
		c.printJSON(ls[0])
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "ID\tKIND\tPRIORITY\tREGION")
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", l.ID, l.Kind, l.Priority, dash(l.Region))
	}
	tw.Flush()
	return exitOK
}
