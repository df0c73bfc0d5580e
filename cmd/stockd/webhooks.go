package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/stockd/stockd"
)

// The webhook commands: webhooks list, show, put, delete, dead-letters and
// replay. Every one needs an admin key.

func init() {
	register(command{name: "webhooks", summary: "manage webhook endpoints and their dead letters (list, show, put, delete, dead-letters, replay)", run: runWebhooks})
}

const webhooksUsage = `webhooks list
       stockd webhooks show NAME
       stockd webhooks put NAME URL [--secret S] [--type T]... [--from now|beginning]
       stockd webhooks delete NAME
       stockd webhooks dead-letters NAME
       stockd webhooks replay NAME [EVENT_ID...]`

func runWebhooks(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return group(ctx, "webhooks", webhooksUsage,
		"Manages the endpoints stockd POSTs every event to, signed with each endpoint's secret, and\nthe events an endpoint did not take within its retry budget (its dead letters). Needs an\nadmin key. See docs/webhooks.md.",
		`stockd webhooks put shop https://shop.example/hooks/stockd --type ReservationCommitted
stockd webhooks dead-letters shop
stockd webhooks replay shop`,
		[]verb{{"list", runWebhooksList}, {"show", runWebhooksShow}, {"put", runWebhooksPut}, {"delete", runWebhooksDelete}, {"dead-letters", runWebhooksDeadLetters}, {"replay", runWebhooksReplay}}, args, stdout, stderr)
}

// oneName parses a command that takes exactly one endpoint name.
func (c *clientCmd) oneName(args []string) (string, int, bool) {
	pos, code, ok := c.parse(args)
	if !ok {
		return "", code, false
	}
	if len(pos) != 1 {
		return "", c.usageError("name one webhook"), false
	}
	return pos[0], 0, true
}

func runWebhooksList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("webhooks list", "webhooks list", "Lists every webhook endpoint with its lag and dead letters.", `stockd webhooks list`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	cl := c.client()
	var all []stockd.Webhook
	q := stockd.WebhookQuery{Limit: 1000}
	for {
		page, err := cl.ListWebhooks(ctx, q)
		if err != nil {
			return c.fail(err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	if c.json {
		if all == nil {
			all = []stockd.Webhook{}
		}
		c.printJSON(map[string]any{"items": all})
		return exitOK
	}
	return c.showWebhooks(nil, all...)
}

func runWebhooksShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("webhooks show", "webhooks show NAME", "Shows a webhook endpoint (never its secret).", `stockd webhooks show shop`, stdout, stderr)
	name, code, ok := c.oneName(args)
	if !ok {
		return code
	}
	w, err := c.client().GetWebhook(ctx, name)
	return c.showWebhooks(err, w)
}

func runWebhooksPut(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("webhooks put", "webhooks put NAME URL [--secret S] [--type T]... [--from now|beginning]",
		"Creates or changes a webhook endpoint. The secret keys the signature of every delivery;\nprefer the variable STOCKD_WEBHOOK_SECRET to --secret, which shows in the process list.\nWithout --type every event type is delivered. A new endpoint starts at the head of the log\n(--from now) or at its beginning; a changed one keeps its position.",
		`STOCKD_WEBHOOK_SECRET=whsec_... stockd webhooks put shop https://shop.example/hooks/stockd --type ReservationCommitted --type StockReceived`, stdout, stderr)
	var cmd stockd.PutWebhook
	var types stringList
	c.fs.StringVar(&cmd.Secret, "secret", "", "the signing secret (env STOCKD_WEBHOOK_SECRET; prefer the variable)")
	c.fs.Var(&types, "type", "an event type to deliver; repeat for more; none: every type")
	c.fs.StringVar(&cmd.From, "from", "", "where a new endpoint starts: now (default) or beginning")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		return c.usageError("name the webhook and the URL events are POSTed to (http or https)")
	}
	name := pos[0]
	cmd.URL = pos[1]
	if cmd.Secret == "" {
		cmd.Secret = os.Getenv("STOCKD_WEBHOOK_SECRET")
	}
	if code, ok := c.required("secret (or STOCKD_WEBHOOK_SECRET)", cmd.Secret); !ok {
		return code
	}
	cmd.Name, cmd.Types = name, types
	cl := c.client()
	var w stockd.Webhook
	var created bool
	// Putting the same endpoint again changes nothing: safe to resend.
	err := c.send(ctx, "webhook "+name, func() (err error) {
		w, created, err = cl.PutWebhook(ctx, cmd)
		return err
	})
	if err == nil && !c.json {
		if created {
			fmt.Fprintf(c.stderr, "created webhook %s\n", name)
		} else {
			fmt.Fprintf(c.stderr, "webhook %s as configured\n", name)
		}
	}
	return c.showWebhooks(err, w)
}

func runWebhooksDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("webhooks delete", "webhooks delete NAME", "Deletes a webhook endpoint, its position and its dead letters.", `stockd webhooks delete shop`, stdout, stderr)
	name, code, ok := c.oneName(args)
	if !ok {
		return code
	}
	w, err := c.client().DeleteWebhook(ctx, name)
	if err == nil && !c.json {
		fmt.Fprintf(c.stderr, "deleted webhook %s\n", name)
	}
	return c.showWebhooks(err, w)
}

// showWebhooks prints endpoints as a table, or the error.
func (c *clientCmd) showWebhooks(err error, ws ...stockd.Webhook) int {
	if err != nil {
		return c.fail(err)
	}
	if c.json && len(ws) == 1 {
		c.printJSON(ws[0])
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "NAME\tURL\tTYPES\tLAG\tDEAD LETTERS")
	for _, w := range ws {
		types := "all"
		if len(w.Types) > 0 {
			types = strings.Join(w.Types, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", w.Name, w.URL, types, w.Lag, w.DeadLetters)
	}
	tw.Flush()
	return exitOK
}

func runWebhooksDeadLetters(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("webhooks dead-letters", "webhooks dead-letters NAME [--limit N] [--after EVENT_ID]",
		"Lists the events a webhook endpoint did not take within its retry budget, in event id order.",
		`stockd webhooks dead-letters shop --limit 20`, stdout, stderr)
	var q stockd.DeadLetterQuery
	c.fs.IntVar(&q.Limit, "limit", 100, "most dead letters to list (1-1000)")
	c.fs.StringVar(&q.After, "after", "", "list those after this event id (a page's next)")
	name, code, ok := c.oneName(args)
	if !ok {
		return code
	}
	q.Name = name
	page, err := c.client().WebhookDeadLetters(ctx, q)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(page)
		return exitOK
	}
	tw := c.table()
	fmt.Fprintln(tw, "EVENT\tTYPE\tSKU\tATTEMPTS\tLAST ATTEMPT\tLAST ERROR")
	for _, d := range page.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.EventID, d.EventType, dash(d.SKU), d.Attempts, formatTime(d.LastAttempt), dash(d.LastError))
	}
	tw.Flush()
	if page.Next != "" {
		fmt.Fprintf(c.stderr, "more: --after %s\n", page.Next)
	}
	return exitOK
}

func runWebhooksReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("webhooks replay", "webhooks replay NAME [EVENT_ID...]",
		"Sends a webhook endpoint's dead letters again, once each: those named, or every one.\nDelivered ones leave the list; failed ones stay on it.",
		`stockd webhooks replay shop
stockd webhooks replay shop 3-17 5-2`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return c.usageError("name one webhook, then any event ids to replay")
	}
	res, err := c.client().ReplayWebhookDeadLetters(ctx, stockd.ReplayDeadLetters{Name: pos[0], EventIDs: pos[1:]})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(res)
		return exitOK
	}
	fmt.Fprintf(c.stdout, "delivered %d, failed %d, not on the list %d\n", len(res.Delivered), len(res.Failed), len(res.NotFound))
	for _, id := range res.Failed {
		fmt.Fprintf(c.stdout, "failed: %s\n", id)
	}
	for _, id := range res.NotFound {
		fmt.Fprintf(c.stdout, "not on the list: %s\n", id)
	}
	if len(res.Failed) > 0 {
		return exitFailure
	}
	return exitOK
}
