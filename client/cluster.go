package client

import (
	"context"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// Cluster returns the node that answered, the live nodes and every
// partition's lease with GET /v1/cluster.
func (c *Client) Cluster(ctx context.Context) (stockd.ClusterInfo, error) {
	v, _, err := call(ctx, c, api.GetCluster, &api.ClusterRequest{})
	if v.Nodes == nil {
		v.Nodes = []stockd.Node{}
	}
	if v.Leases == nil {
		v.Leases = []stockd.Lease{}
	}
	return v, err
}
