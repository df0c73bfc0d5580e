package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// The SKU commands: sku (show, as of a past time), sku history, sku config;
// and availability from the read model.

func init() {
	register(command{name: "sku", summary: "show a SKU's stock (now or --as-of a past time); sku history SKU lists its events", run: runSKU})
	register(command{name: "availability", summary: "show the availability of SKUs from the read model", run: runAvailability})
}

func runSKU(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "history":
			return runSKUHistory(ctx, args[1:], stdout, stderr)
		case "config":
			return runSKUConfig(ctx, args[1:], stdout, stderr)
		case "list":
			return runSKUList(ctx, args[1:], stdout, stderr)
		case "show":
			args = args[1:]
		}
	}
	c := newClientCmd("sku", "sku [show] SKU [--as-of RFC3339 | --position N]\n       stockd sku history SKU [--after N] [--limit N] [--all]\n       stockd sku list [--prefix P] [--after SKU] [--limit N] [--all]\n       stockd sku config SKU --safety-stock N [--low-stock-threshold N]",
		"Shows a SKU's stock per location, with lots and holds. It reflects every acknowledged\nwrite; --as-of shows the state at a past moment, rebuilt from the events.",
		`stockd sku A
stockd sku A --as-of 2026-11-27T10:00:00Z
stockd sku history A --limit 20`, stdout, stderr)
	var asOf string
	var at stockd.AsOf
	c.fs.StringVar(&asOf, "as-of", "", "show the state at this past time (RFC 3339, such as 2026-11-27T10:00:00Z)")
	c.fs.Uint64Var(&at.Position, "position", 0, "show the state at this position of the SKU's partition")
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one SKU")
	}
	if asOf != "" {
		t, err := time.Parse(time.RFC3339Nano, asOf)
		if err != nil {
			return c.usageError("--as-of %q is not an RFC 3339 time like 2026-11-27T10:00:00Z", asOf)
		}
		at.Time = t
	}
	s, err := c.client().SKU(ctx, pos[0], at)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(s)
		return exitOK
	}
	when := "now"
	if !at.IsZero() {
		when = "as of " + formatTime(s.AsOf)
		if !at.Time.IsZero() {
			when = "as of " + formatTime(at.Time)
		}
	}
	fmt.Fprintf(stdout, "%s %s (version %d, position %d): on hand %d, reserved %d, available %d, in transit %d",
		s.SKU, when, s.Version, s.Position, s.OnHand, s.Reserved, s.Available, s.InTransit)
	if s.Shortage > 0 {
		fmt.Fprintf(stdout, ", SHORTAGE %d", s.Shortage)
	}
	if s.SafetyStock > 0 {
		fmt.Fprintf(stdout, ", safety stock %d", s.SafetyStock)
	}
	fmt.Fprintln(stdout)
	tw := c.table()
	fmt.Fprintln(tw, "LOCATION\tON HAND\tRESERVED\tAVAILABLE\tIN TRANSIT\tHOLDS\tLOTS")
	for _, l := range s.Locations {
		var lots []string
		for _, lot := range l.Lots {
			name := lot.Lot
			if name == "" {
				name = "(undated)"
			}
			if lot.BestBefore != "" {
				name += " bb " + lot.BestBefore
			}
			lots = append(lots, fmt.Sprintf("%s:%d", name, lot.Quantity))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", l.Location, l.OnHand, l.Reserved, l.Available, l.InTransit, l.HoldCount, dash(strings.Join(lots, ", ")))
	}
	tw.Flush()
	return exitOK
}

func runSKUHistory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("sku history", "sku history SKU [--after N] [--limit N] [--all]",
		"Lists a SKU's events, oldest first, a page at a time. The output ends with the\ncommand that shows the next page.",
		`stockd sku history A --limit 50
stockd sku history A --after 50 --limit 50
stockd sku history A --all --json`, stdout, stderr)
	var q stockd.HistoryQuery
	var all bool
	c.fs.Uint64Var(&q.After, "after", 0, "cursor: show events after this version (the 'next' of the previous page)")
	c.fs.IntVar(&q.Limit, "limit", 100, "events per page, 1 to 1000")
	c.fs.BoolVar(&all, "all", false, "follow the cursor to the end")
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one SKU")
	}
	cl := c.client()
	var events []api.EventJSON
	next := q.After
	for {
		page, err := cl.Events(ctx, pos[0], q)
		if err != nil {
			return c.fail(err)
		}
		events = append(events, page.Events...)
		if n, err := strconv.ParseUint(page.Next, 10, 64); err == nil {
			next = n
		}
		if !all || len(page.Events) == 0 || next == q.After {
			break
		}
		q.After = next
	}
	if c.json {
		c.printJSON(api.EventPage{Events: events, Next: fmt.Sprint(next)})
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "VERSION\tPOSITION\tTIME\tTYPE\tCOMMAND\tACTOR\tDATA")
	for _, e := range events {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\n", e.Version, e.Position, formatTime(e.Time), e.Type, dash(e.CommandID), dash(e.Actor), compactJSON(e.Data))
	}
	tw.Flush()
	if len(events) == 0 {
		fmt.Fprintln(stdout, "no more events")
	}
	if !all {
		fmt.Fprintf(stdout, "next page: stockd sku history %s --after %d --limit %d\n", pos[0], next, q.Limit)
	}
	return exitOK
}

func runSKUList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("sku list", "sku list [--prefix P] [--after SKU] [--limit N] [--all]",
		"Lists SKUs in lexical order with their stock, a page at a time, from the read model\n(it may lag a moment). The output ends with the command that shows the next page.",
		`stockd sku list --prefix shoe- --limit 50
stockd sku list --all --json`, stdout, stderr)
	var q stockd.SKUListQuery
	var all bool
	c.fs.StringVar(&q.Prefix, "prefix", "", "list only SKUs that start with this")
	c.fs.StringVar(&q.After, "after", "", "cursor: list SKUs after this one (the 'next' of the previous page)")
	c.fs.IntVar(&q.Limit, "limit", 100, "SKUs per page, 1 to 1000")
	c.fs.BoolVar(&all, "all", false, "follow the cursor to the end")
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	cl := c.client()
	var page stockd.SKUPage
	var items []stockd.SKUSummary
	for {
		p, err := cl.SKUs(ctx, q)
		if err != nil {
			return c.fail(err)
		}
		page = p
		items = append(items, p.Items...)
		if !all || p.Next == "" {
			break
		}
		q.After = p.Next
	}
	page.Items = items
	if c.json {
		c.printJSON(page)
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "SKU\tON HAND\tRESERVED\tAVAILABLE")
	for _, it := range items {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", it.SKU, it.OnHand, it.Reserved, it.Available)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d SKU(s), as of %s%s\n", len(items), formatTime(page.AsOf), lagNote(page.Lag.Events))
	if page.Next != "" {
		fmt.Fprintf(stdout, "next page: stockd sku list --after %s --limit %d%s\n", page.Next, q.Limit, prefixFlag(q.Prefix))
	}
	return exitOK
}

// prefixFlag repeats a --prefix in a suggested command line.
func prefixFlag(p string) string {
	if p == "" {
		return ""
	}
	return " --prefix " + p
}

// compactJSON shows event data on one line.
func compactJSON(data json.RawMessage) string {
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		return string(data)
	}
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func runSKUConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("sku config", "sku config SKU --safety-stock N [--low-stock-threshold N] [--sales-cap N] [--customer-limit N --customer-window D] [--preorders]",
		"Configures a SKU: safety stock is never sold at any location; the low-stock\nthreshold drives low-stock signals; a sales cap bounds the units ever committed;\na customer limit bounds the units one customer holds and commits in a window;\npreorders let reservations hold expected stock.",
		`stockd sku config A --safety-stock 2 --low-stock-threshold 10`, stdout, stderr)
	var cmd stockd.ConfigureSKU
	c.fs.Int64Var(&cmd.SafetyStock, "safety-stock", 0, "units at each location that are never sold")
	c.fs.Int64Var(&cmd.LowStockThreshold, "low-stock-threshold", 0, "available units at or below which the SKU is low on stock: falling to it records a LowStock event (0: never)")
	c.alias("low-stock-threshold", "low-stock") // its name before the API's
	c.fs.Int64Var(&cmd.SalesCap, "sales-cap", 0, "units that may ever be committed, whatever stock arrives (0: no cap)")
	c.fs.Int64Var(&cmd.CustomerLimit.Units, "customer-limit", 0, "units one customer may hold and commit within --customer-window (0: no limit)")
	c.fs.DurationVar(&cmd.CustomerLimit.Window, "customer-window", 24*time.Hour, "the window of --customer-limit")
	c.fs.BoolVar(&cmd.Preorders, "preorders", false, "let reservations hold expected stock (see stockd expected)")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one SKU")
	}
	cmd.SKU = pos[0]
	cl := c.client()
	var cfg stockd.SKUConfig
	err := c.send(ctx, "the configuration of "+cmd.SKU, func() (err error) {
		cfg, err = cl.ConfigureSKU(ctx, cmd)
		return err
	})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(cfg)
		return exitOK
	}
	fmt.Fprintf(stdout, "sku %s: safety stock %d, low-stock threshold %d", cfg.SKU, cfg.SafetyStock, cfg.LowStockThreshold)
	if cfg.SalesCap > 0 && cfg.SalesCapRemaining != nil {
		fmt.Fprintf(stdout, ", sales cap %d (%d left)", cfg.SalesCap, *cfg.SalesCapRemaining)
	}
	if l := cfg.CustomerLimit; l != nil {
		fmt.Fprintf(stdout, ", customer limit %d per %s", l.Units, api.FormatDuration(l.Window))
	}
	if cfg.Preorders {
		fmt.Fprint(stdout, ", preorders")
	}
	fmt.Fprintln(stdout)
	return exitOK
}

func runAvailability(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("availability", "availability SKU...",
		"Shows what can be sold of each SKU, per location, from the read model: fast, and\nfresh within a moment (the answer says how fresh).",
		`stockd availability A B C`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return c.usageError("name at least one SKU")
	}
	a, err := c.client().Availability(ctx, pos)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(a)
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "SKU\tAVAILABLE\tON HAND\tRESERVED\tLOCATIONS")
	for _, it := range a.Items {
		var locs []string
		for _, l := range it.Locations {
			locs = append(locs, fmt.Sprintf("%s:%d", l.Location, l.Available))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", it.SKU, it.Available, it.OnHand, it.Reserved, dash(strings.Join(locs, " ")))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "as of %s%s\n", formatTime(a.AsOf), lagNote(a.Lag.Events))
	return exitOK
}
