package http

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// oaFakeAPI's cluster operation, for the OpenAPI tests: every field set.

func (oaFakeAPI) Cluster(context.Context) (stockd.ClusterInfo, error) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	return stockd.ClusterInfo{
		Node:   "node-a-1f2e3d4c",
		Store:  stockd.StorePostgres,
		Nodes:  []stockd.Node{{ID: "node-a-1f2e3d4c", URL: "http://10.0.0.1:8080", SeenAt: at}},
		Leases: []stockd.Lease{{Partition: 0, Node: "node-a-1f2e3d4c", Epoch: 3, ExpiresAt: at.Add(10 * time.Second), Expired: false}},
	}, nil
}

// TestOpenAPIClusterShapes checks the schemas the cluster's answer is made
// of against their Go types, and the store kinds against the enum.
func TestOpenAPIClusterShapes(t *testing.T) {
	doc := oaLoad(t)
	oaCheckType(t, doc, "ClusterNode", stockd.Node{})
	oaCheckType(t, doc, "Lease", stockd.Lease{})
	want := []string{stockd.StoreEmbedded, stockd.StorePostgres}
	props, _ := oaSchema(t, doc, "ClusterInfo")["properties"].(map[string]any)
	store, _ := props["store"].(map[string]any)
	if got := oaEnum(store); !slices.Equal(got, want) {
		t.Errorf("ClusterInfo.store enum = %v, want %v", got, want)
	}
}
