package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/client"
)

// The feed command: a page of the change feed, or --follow to stream it.

func init() {
	register(command{name: "feed", summary: "read the change feed of every partition, or --follow it", run: runFeed})
}

// feedLine is one line of stockd feed --follow: an event as the API shows
// it, and the cursor to resume after it.
type feedLine struct {
	Cursor string        `json:"cursor"`
	Event  api.EventJSON `json:"event"`
}

func runFeed(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("feed", "feed [--after CURSOR|now] [--limit N] [--type TYPE]... [--sku-prefix P] [--follow]",
		"Reads the change feed: every durable event of every partition, each SKU's in order.\nWithout --follow it prints one page and the command that shows the next. With --follow\nit streams events (Server-Sent Events) as JSON lines {\"cursor\",\"event\"} until\ninterrupted, resuming by itself when the connection drops; pass the last cursor as\n--after to go on later. Without --after it starts at the beginning of the log.",
		`stockd feed --limit 20
stockd feed --follow --after now --type StockReserved --type ReservationReleased
stockd feed --follow --sku-prefix SHOE- | jq .event.type`, stdout, stderr)
	var q stockd.FeedQuery
	var types stringList
	var follow bool
	c.fs.StringVar(&q.After, "after", "", "cursor: events after it (a page's next, or a line's cursor); now: only new events")
	c.fs.IntVar(&q.Limit, "limit", 100, "events per page, 1 to 1000")
	c.fs.Var(&types, "type", "keep only events of this type (repeat for several)")
	c.fs.StringVar(&q.SKUPrefix, "sku-prefix", "", "keep only events of SKUs starting with this prefix")
	c.fs.BoolVar(&follow, "follow", false, "stream events as JSON lines until interrupted")
	c.alias("follow", "f")
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	for _, name := range types {
		t, ok := stockd.EventTypeNamed(name)
		if !ok {
			return c.usageError("--type %q is not an event type", name)
		}
		q.Types = append(q.Types, t)
	}
	cl := c.client()
	if follow {
		enc := json.NewEncoder(stdout)
		err := cl.FollowFeedEvents(ctx, q, client.FollowOptions{}, func(e api.EventJSON, cursor string) error {
			return enc.Encode(feedLine{Cursor: cursor, Event: e})
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			return c.fail(err)
		}
		return exitOK
	}
	page, err := cl.FeedEvents(ctx, q)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(page)
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "ID\tTIME\tTYPE\tSKU\tVERSION\tCOMMAND\tDATA")
	for _, e := range page.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, formatTime(e.Time), e.Type, dash(e.SKU), e.Version, dash(e.CommandID), compactJSON(e.Data))
	}
	tw.Flush()
	if len(page.Events) == 0 {
		fmt.Fprintln(stdout, "no more events")
	}
	next := []string{"stockd feed --after " + page.Next, fmt.Sprintf("--limit %d", q.Limit)}
	for _, t := range types {
		next = append(next, "--type "+t)
	}
	if q.SKUPrefix != "" {
		next = append(next, "--sku-prefix "+q.SKUPrefix)
	}
	fmt.Fprintf(stdout, "next page: %s\n", strings.Join(next, " "))
	return exitOK
}
