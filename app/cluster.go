package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/stockd/stockd"
)

// newNodeID returns a fresh id for this process: the host's name and 8
// random hex digits. A restarted process gets a new one, as stockd.Leases
// requires: the store fences by node and epoch, and two processes sharing
// an id would be one owner to it.
func newNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "stockd"
	}
	// A node id is UTF-8 without NUL bytes; a host name is, but be sure.
	host = strings.ToValidUTF8(strings.ReplaceAll(host, "\x00", ""), "?")
	var b [4]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather)
	return host + "-" + hex.EncodeToString(b[:])
}

// clusterAdmin implements stockd.ClusterAdmin over the app's store. It only
// reads: it starts no heartbeat and takes no lease.
type clusterAdmin struct{ a *App }

func (c clusterAdmin) Cluster(ctx context.Context) (stockd.ClusterInfo, error) {
	a := c.a
	info := stockd.ClusterInfo{Node: a.NodeID, Store: stockd.StoreEmbedded}
	if a.cfg.Store != "" {
		info.Store = stockd.StorePostgres
	}
	ls, ok := a.Store.(stockd.Leases)
	if !ok {
		// The embedded store has no leases: one process owns it, and so
		// this node every partition, for as long as it runs.
		info.Nodes = []stockd.Node{{ID: a.NodeID, URL: a.advertised(), SeenAt: time.Now().UTC()}}
		info.Leases = make([]stockd.Lease, a.Store.Partitions())
		for p := range info.Leases {
			info.Leases[p] = stockd.Lease{Partition: p, Node: a.NodeID}
		}
		return info, nil
	}
	nodes, err := ls.Nodes(ctx)
	if err != nil {
		return stockd.ClusterInfo{}, err
	}
	leases, err := ls.Leases(ctx)
	if err != nil {
		return stockd.ClusterInfo{}, err
	}
	info.Nodes, info.Leases = nodes, leases
	if info.Nodes == nil {
		info.Nodes = []stockd.Node{}
	}
	if info.Leases == nil {
		info.Leases = []stockd.Lease{}
	}
	return info, nil
}

// clusterToken returns the secret the nodes of the cluster sharing store
// authenticate the requests they forward to each other with: made by the
// first node to start, kept in the store, so every node that can reach the
// store knows it and nobody else does.
func clusterToken(ctx context.Context, store stockd.Records) (string, error) {
	var b [32]byte
	rand.Read(b[:])
	if _, err := store.CreateRecord(ctx, clusterRecords, "token", []byte(hex.EncodeToString(b[:]))); err != nil {
		return "", fmt.Errorf("making the cluster's token: %w", err)
	}
	v, ok, err := store.GetRecord(ctx, clusterRecords, "token")
	if err != nil || !ok {
		return "", fmt.Errorf("reading the cluster's token: %v", cmp.Or(err, errors.New("missing")))
	}
	return string(v), nil
}

// clusterRecords is the kind of the store's records about the cluster.
const clusterRecords = "cluster"
