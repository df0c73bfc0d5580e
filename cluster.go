package stockd

import "context"

// ClusterAdmin shows the cluster a server belongs to: its own node id, the
// live nodes and the lease of every partition. It only reads; it needs the
// admin scope.
type ClusterAdmin interface {
	// Cluster returns this node's id, the kind of store, the live nodes
	// and every partition's lease. On a store shared by several nodes
	// (PostgreSQL) nodes and leases are the store's (see Leases), as its
	// clock judges them; a partition never leased has an empty node,
	// epoch 0 and Expired true, and a node that never sent a heartbeat is
	// not listed. The embedded store has no leases: this node owns every
	// partition, and the answer says so with one node and, for every
	// partition, a lease of this node with epoch 0 and no expiry.
	Cluster(ctx context.Context) (ClusterInfo, error)
}

// ClusterInfo is the answer of ClusterAdmin.Cluster.
type ClusterInfo struct {
	// Node is the id of the node that answered: it names one running
	// process, and changes when the process restarts.
	Node string `json:"node"`
	// Store is the kind of store: "embedded" or "postgres".
	Store string `json:"store"`
	// Nodes are the live nodes, in id order.
	Nodes []Node `json:"nodes"`
	// Leases holds the lease of every partition, in partition order.
	Leases []Lease `json:"leases"`
}

// The kinds of store ClusterInfo.Store names.
const (
	StoreEmbedded = "embedded"
	StorePostgres = "postgres"
)
