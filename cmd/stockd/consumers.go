package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stockd/stockd"
)

// The consumer commands: consumers list and delete. Both need an admin key.

func init() {
	register(command{name: "consumers", summary: "list the log's checkpointed consumers, or delete the checkpoints of one that is gone (list, delete)", run: runConsumers})
}

func runConsumers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return group(ctx, "consumers", "consumers list\n       stockd consumers delete NAME",
		"Shows the consumers of the log that keep checkpoints (the read model, each broker's\npublisher, each webhook endpoint), with their lag. Archiving waits for all of them: when a\nbroker is removed from the configuration, delete its consumer so that archiving goes on.\nNeeds an admin key. See docs/publishers.md.",
		`stockd consumers list
stockd consumers delete publish/kafka`,
		[]verb{{"list", runConsumersList}, {"delete", runConsumersDelete}}, args, stdout, stderr)
}

func runConsumersList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("consumers list", "consumers list", "Lists every checkpointed consumer of the log, whether this server runs it, and its lag.", `stockd consumers list`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	l, err := c.client().ListConsumers(ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(l)
		return exitOK
	}
	return c.showConsumers(l.Items...)
}

func runConsumersDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("consumers delete", "consumers delete NAME",
		"Deletes the checkpoints of a consumer this server does not run, so that archiving no longer\nwaits for it. If it ever runs again, it starts from the beginning of the log.",
		`stockd consumers delete publish/kafka`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one consumer, as stockd consumers list shows it")
	}
	v, err := c.client().DeleteConsumer(ctx, pos[0])
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(v)
		return exitOK
	}
	fmt.Fprintf(c.stderr, "deleted the checkpoints of consumer %s\n", v.Name)
	return c.showConsumers(v)
}

// showConsumers prints consumers as a table.
func (c *clientCmd) showConsumers(cs ...stockd.Consumer) int {
	tw := c.table()
	fmt.Fprintln(tw, "NAME\tRUNNING\tLAG")
	for _, v := range cs {
		fmt.Fprintf(tw, "%s\t%v\t%d\n", v.Name, v.Running, v.Lag)
	}
	tw.Flush()
	return exitOK
}
