package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stockd/stockd"
)

// The cluster command: the node that answered, the live nodes and every
// partition's lease. It needs an admin key.

func init() {
	register(command{name: "cluster", summary: "show the node that answers, the live nodes and every partition's lease", run: runCluster})
}

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("cluster", "cluster",
		"Shows the node that answered (its id is new every time the process starts), the live\nnodes and the lease of every partition: which node may append to it, the lease's epoch\nand when it expires by the store's clock. The embedded store has no leases: its one\nnode owns every partition, with epoch 0. Needs an admin key.",
		`stockd cluster
stockd cluster --json`, stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	info, err := c.client().Cluster(ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(info)
		return exitOK
	}
	return c.showCluster(info)
}

// showCluster prints the node that answered, then the nodes and the leases
// as tables.
func (c *clientCmd) showCluster(info stockd.ClusterInfo) int {
	fmt.Fprintf(c.stdout, "node %s, %s store\n\nNODES\n", info.Node, info.Store)
	if len(info.Nodes) == 0 {
		fmt.Fprintln(c.stdout, "(none live: no node has sent a heartbeat lately)")
	} else {
		tw := c.table()
		fmt.Fprintln(tw, "ID\tURL\tSEEN")
		for _, n := range info.Nodes {
			id := n.ID
			if id == info.Node {
				id += " (this node)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", id, dash(n.URL), formatTime(n.SeenAt))
		}
		tw.Flush()
	}
	fmt.Fprintln(c.stdout, "\nLEASES")
	tw := c.table()
	fmt.Fprintln(tw, "PARTITION\tNODE\tEPOCH\tEXPIRES")
	for _, l := range info.Leases {
		expires := formatTime(l.ExpiresAt)
		if l.Expired && !l.ExpiresAt.IsZero() {
			expires += " (expired)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", l.Partition, dash(l.Node), l.Epoch, expires)
	}
	tw.Flush()
	return exitOK
}
