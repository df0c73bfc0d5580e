package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// ClusterNodes is how many nodes the stockd-pg3 targets' cluster has.
const ClusterNodes = 3

// settleTimeout bounds how long startCluster waits for the cluster to
// settle; settleStable is how long its leases must stay as they are to count
// as settled: a node looks at the cluster every 200 ms, so three looks of
// every node fit in it.
const (
	settleTimeout = 2 * time.Minute
	settleStable  = 600 * time.Millisecond
)

// startLabelled starts an embedded server, as StartEmbedded does, with every
// goroutine it starts carrying the profiler label node=label: a CPU profile
// of the run (--cpuprofile) then tells the load generator's CPU from each
// embedded server's (go tool pprof -tags, -tagfocus node=pg3-1).
func startLabelled(ctx context.Context, label, dir, keys, store, schema string) (url string, stop func(), err error) {
	pprof.Do(ctx, pprof.Labels("node", label), func(ctx context.Context) {
		url, stop, err = StartEmbedded(ctx, dir, keys, store, schema)
	})
	return url, stop, err
}

// startCluster starts n embedded servers on the same PostgreSQL DSN and
// schema, each with a data directory of its own under dir, so that they are
// the n nodes of one cluster, and waits until it has settled (settle). It
// returns the nodes' URLs, in the order they started, and a func that stops
// them all at once (one by one, each would hand its partitions to the
// others on its way out). Stopping, a node may still take a partition
// another released and log at ERROR that loading it failed because it is
// shutting down: the app closes its engine before it leaves the cluster.
func startCluster(ctx context.Context, client *http.Client, n int, dir, dsn, schema string) (urls []string, stop func(), err error) {
	var stops []func()
	stop = func() {
		var wg sync.WaitGroup
		for _, s := range stops {
			wg.Go(s)
		}
		wg.Wait()
	}
	for i := range n {
		u, s, err := startLabelled(ctx, fmt.Sprintf("pg%d-%d", n, i+1), filepath.Join(dir, fmt.Sprintf("node%d", i+1)), "", dsn, schema)
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		urls, stops = append(urls, u), append(stops, s)
	}
	sctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	if err := settle(sctx, client, urls); err != nil {
		stop()
		return nil, nil, err
	}
	return urls, stop, nil
}

// settle waits until the cluster of the nodes at urls has settled: every
// node answers GET /readyz with 200, lists all of them as live, and every
// partition's lease is held, unexpired, by one of them, each holding some,
// with no lease changing hands for settleStable. A node that joins takes its
// share from the others over a few of their looks; timing a level before
// then would measure the hand-over.
func settle(ctx context.Context, hc *http.Client, urls []string) error {
	cs := make([]*client.Client, len(urls))
	for i, u := range urls {
		cs[i] = client.New(u, client.WithHTTPClient(hc))
	}
	var (
		last    string
		since   time.Time
		waiting error
	)
	for {
		state, err := clusterState(ctx, cs)
		switch {
		case err != nil:
			waiting, last = err, ""
		case state != last:
			waiting, last, since = errors.New("leases still changing hands"), state, time.Now()
		case time.Since(since) >= settleStable:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster of %d nodes did not settle: %w (%v)", len(urls), waiting, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// clusterState returns which node holds each partition's lease, as one
// string, when every node is ready and the leases are spread over all of
// them, or why not.
func clusterState(ctx context.Context, cs []*client.Client) (string, error) {
	ids := make([]string, len(cs))
	var leases []stockd.Lease
	for i, c := range cs {
		if err := c.Ready(ctx); err != nil {
			return "", fmt.Errorf("node %d not ready: %w", i+1, err)
		}
		info, err := c.Cluster(ctx)
		if err != nil {
			return "", fmt.Errorf("node %d: GET /v1/cluster: %w", i+1, err)
		}
		if len(info.Nodes) != len(cs) {
			return "", fmt.Errorf("node %d sees %d live nodes, not %d", i+1, len(info.Nodes), len(cs))
		}
		ids[i] = info.Node
		if i == 0 {
			leases = info.Leases
		}
	}
	if len(leases) == 0 {
		return "", errors.New("no partitions")
	}
	held := make([]int, len(cs))
	var b strings.Builder
	for _, l := range leases {
		k := slices.Index(ids, l.Node)
		if k < 0 || l.Expired {
			return "", fmt.Errorf("partition %d has no live owner", l.Partition)
		}
		held[k]++
		fmt.Fprintf(&b, "%d:%d@%d ", l.Partition, k, l.Epoch)
	}
	for k, h := range held {
		if h == 0 {
			return "", fmt.Errorf("node %d holds no partition yet", k+1)
		}
	}
	return b.String(), nil
}
