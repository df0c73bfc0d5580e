package api

import (
	"context"

	"github.com/stockd/stockd"
)

// ClusterRequest is GET /v1/cluster.
type ClusterRequest struct{}

// The cluster operation needs the admin scope: it names the nodes and the
// URLs they are reached at.
var GetCluster = declare(&Endpoint[ClusterRequest, stockd.ClusterInfo]{
	Operation: Operation{Name: "getCluster", Method: "GET", Path: "/v1/cluster", Scope: stockd.ScopeAdmin, Summary: "Show this node, the live nodes and every partition's lease"},
	Call: func(ctx context.Context, s stockd.API, _ *ClusterRequest) (stockd.ClusterInfo, bool, error) {
		c, err := s.Cluster(ctx)
		return c, false, err
	},
})
