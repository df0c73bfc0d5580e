package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// The subscription commands: create, list, show, events, ack, reset and
// delete named subscriptions of the change feed.

func init() {
	register(command{name: "subscription", summary: "named feed subscriptions (create, list, show, events, ack, reset, delete)", run: runSubscription})
}

func runSubscription(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return group(ctx, "subscription", "subscription create NAME --from beginning|now|TIME\n       stockd subscription list|show NAME|events NAME|ack NAME CURSOR|reset NAME --to POINT|delete NAME",
		"Manages named subscriptions of the change feed: a cursor the server keeps for a reader.\nRead a subscription's events, handle them, then acknowledge the page's next cursor.",
		`stockd subscription create erp --from beginning
stockd subscription events erp --limit 100
stockd subscription ack erp AQgBAAABAAAAAOHVa9I
stockd subscription reset erp --to 2026-11-27T09:30:00Z`,
		[]verb{
			{"create", runSubscriptionCreate}, {"list", runSubscriptionList},
			{"show", func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
				return runSubscriptionOne(ctx, "show", args, stdout, stderr)
			}},
			{"events", runSubscriptionEvents}, {"ack", runSubscriptionAck}, {"reset", runSubscriptionReset},
			{"delete", func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
				return runSubscriptionOne(ctx, "delete", args, stdout, stderr)
			}},
		}, args, stdout, stderr)
}

// oneName parses a command that takes one subscription name.
func oneName(c *clientCmd, args []string) (string, int, bool) {
	pos, code, ok := c.parse(args)
	if !ok {
		return "", code, false
	}
	if len(pos) != 1 {
		return "", c.usageError("name one subscription"), false
	}
	return pos[0], 0, true
}

func runSubscriptionCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("subscription create", "subscription create NAME --from beginning|now|TIME",
		"Creates a subscription starting at the beginning of the log, now, or an RFC 3339 time.\nCreating it again with the same --from changes nothing; another --from is refused (reset\nmoves a subscription).",
		`stockd subscription create erp --from beginning`, stdout, stderr)
	var from string
	c.fs.StringVar(&from, "from", "", "beginning, now or an RFC 3339 time (required)")
	name, code, ok := oneName(c, args)
	if !ok {
		return code
	}
	if code, ok := c.required("from", from); !ok {
		return code
	}
	s, created, err := c.client().PutSubscription(ctx, name, from)
	if err == nil && !created && !c.json {
		fmt.Fprintln(c.stdout, "already exists with the same --from: unchanged")
	}
	return c.showSubscriptions(err, s)
}

func runSubscriptionOne(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) int {
	about := map[string]string{"show": "Shows a subscription: its acknowledged cursor and how far behind it is.", "delete": "Deletes a subscription."}[verb]
	c := newClientCmd("subscription "+verb, "subscription "+verb+" NAME", about, "stockd subscription "+verb+" erp", stdout, stderr)
	name, code, ok := oneName(c, args)
	if !ok {
		return code
	}
	cl := c.client()
	var s stockd.Subscription
	var err error
	if verb == "delete" {
		s, err = cl.DeleteSubscription(ctx, name)
	} else {
		s, err = cl.Subscription(ctx, name)
	}
	return c.showSubscriptions(err, s)
}

func runSubscriptionList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("subscription list", "subscription list [--after NAME] [--limit N]", "Lists subscriptions by name.", `stockd subscription list --json`, stdout, stderr)
	var q stockd.SubscriptionListQuery
	c.fs.StringVar(&q.After, "after", "", "list after this name (the next of the previous page)")
	c.fs.IntVar(&q.Limit, "limit", 100, "subscriptions per page, 1 to 1000")
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	p, err := c.client().Subscriptions(ctx, q)
	if err == nil && c.json {
		c.printJSON(p)
		return exitOK
	}
	code = c.showSubscriptions(err, p.Items...)
	if err == nil && p.Next != "" {
		fmt.Fprintf(stdout, "next page: stockd subscription list --after %s --limit %d\n", p.Next, q.Limit)
	}
	return code
}

func runSubscriptionEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("subscription events", "subscription events NAME [--limit N]",
		"Shows the events after a subscription's acknowledged cursor, without moving it, and the\ncommand that acknowledges them.",
		`stockd subscription events erp --limit 100`, stdout, stderr)
	var limit int
	c.fs.IntVar(&limit, "limit", 100, "events, 1 to 1000")
	name, code, ok := oneName(c, args)
	if !ok {
		return code
	}
	page, err := c.client().SubscriptionEvents(ctx, name, limit)
	if err != nil {
		return c.fail(err)
	}
	out := api.EventPage{Events: make([]api.EventJSON, 0, len(page.Events)), Next: page.Next}
	for _, e := range page.Events {
		ej, err := api.NewEventJSON(e)
		if err != nil {
			return c.fail(err)
		}
		out.Events = append(out.Events, ej)
	}
	if c.json {
		c.printJSON(out)
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "ID\tTIME\tTYPE\tSKU\tVERSION\tCOMMAND\tDATA")
	for _, e := range out.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, formatTime(e.Time), e.Type, dash(e.SKU), e.Version, dash(e.CommandID), compactJSON(e.Data))
	}
	tw.Flush()
	if len(out.Events) == 0 {
		fmt.Fprintln(stdout, "no more events")
		return exitOK
	}
	fmt.Fprintf(stdout, "acknowledge them: stockd subscription ack %s %s\n", name, page.Next)
	return exitOK
}

func runSubscriptionAck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("subscription ack", "subscription ack NAME CURSOR",
		"Acknowledges a subscription's events up to CURSOR (the next of a page of its events).\nAn ack never moves a subscription backwards.",
		`stockd subscription ack erp AQgBAAABAAAAAOHVa9I`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		return c.usageError("name a subscription and a cursor")
	}
	s, err := c.client().AckSubscription(ctx, pos[0], pos[1])
	return c.showSubscriptions(err, s)
}

func runSubscriptionReset(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("subscription reset", "subscription reset NAME --to beginning|now|TIME|CURSOR",
		"Moves a subscription, backwards or forwards, so that it replays the events after the point:\nthe beginning, now, an RFC 3339 time (the first event after it in each partition) or a cursor.",
		`stockd subscription reset erp --to 2026-11-27T09:30:00Z`, stdout, stderr)
	var to string
	c.fs.StringVar(&to, "to", "", "beginning, now, an RFC 3339 time or a cursor (required)")
	name, code, ok := oneName(c, args)
	if !ok {
		return code
	}
	if code, ok := c.required("to", to); !ok {
		return code
	}
	s, err := c.client().ResetSubscription(ctx, name, to)
	return c.showSubscriptions(err, s)
}

// showSubscriptions prints subscriptions as a table, or the error.
func (c *clientCmd) showSubscriptions(err error, ss ...stockd.Subscription) int {
	if err != nil {
		return c.fail(err)
	}
	if c.json && len(ss) == 1 {
		c.printJSON(ss[0])
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "NAME\tFROM\tLAG\tUPDATED\tCURSOR")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Name, s.From, s.Lag.Events, formatTime(s.UpdatedAt), s.Cursor)
	}
	tw.Flush()
	return exitOK
}
