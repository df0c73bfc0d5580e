package e2e

import (
	"regexp"
	"testing"

	"github.com/stockd/stockd"
)

// The cluster route in the authorization matrix.
func init() {
	matrixRequests["GET /v1/cluster"] = matrixRequest{"/v1/cluster", ""}
}

// nodeIDPattern is the shape of a node id: a host name, a dash and 8 random
// hex digits.
var nodeIDPattern = regexp.MustCompile(`^.+-[0-9a-f]{8}$`)

// TestClusterWire covers GET /v1/cluster on the wire and through the client.
// On the embedded store the one node owns every partition with epoch 0 and
// no expiry; on PostgreSQL the node has registered and holds every
// partition's lease, epoch 1 or more, with an expiry. A restart answers with
// a new node id.
func TestClusterWire(t *testing.T) {
	s := Start(t, Options{})
	r := raw(t, s, "GET", "/v1/cluster", nil)
	wantStatus(t, r, 200)
	m := r.JSON(t)
	node, _ := m["node"].(string)
	if node != s.NodeID || !nodeIDPattern.MatchString(node) {
		t.Fatalf("node = %q, want the App's id %q (host-8 hex digits)", node, s.NodeID)
	}
	wantStore, wantNodes, wantNode := stockd.StoreEmbedded, 1, node
	if OnPostgres() {
		wantStore = stockd.StorePostgres
	}
	if m["store"] != wantStore {
		t.Errorf("store = %v, want %s", m["store"], wantStore)
	}
	nodes, ok := m["nodes"].([]any)
	if !ok || len(nodes) != wantNodes {
		t.Fatalf("nodes = %s, want %d", r.Body, wantNodes)
	}
	if wantNodes == 1 {
		n := nodes[0].(map[string]any)
		if n["id"] != node || n["url"] != s.URL || n["seen_at"] == nil {
			t.Errorf("node = %v, want this one, at %s", n, s.URL)
		}
	}
	leases, ok := m["leases"].([]any)
	if !ok || len(leases) != s.Engine.Partitions() {
		t.Fatalf("leases = %s, want one per partition (%d)", r.Body, s.Engine.Partitions())
	}
	for p, v := range leases {
		l := v.(map[string]any)
		epoch, _ := l["epoch"].(float64)
		_, expires := l["expires_at"]
		if l["partition"] != float64(p) || l["node"] != wantNode || l["expired"] != false ||
			OnPostgres() != (epoch >= 1) || OnPostgres() != expires {
			t.Errorf("lease %d = %v, want held by %q, not expired (on PostgreSQL: epoch 1 or more, with expires_at; embedded: epoch 0, none)", p, l, wantNode)
		}
	}

	// Through the client.
	info, err := s.Client.Cluster(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Node != node || info.Store != wantStore || len(info.Nodes) != wantNodes || len(info.Leases) != len(leases) {
		t.Fatalf("Cluster = %+v", info)
	}
	for p, l := range info.Leases {
		if l.Partition != p || l.Node != wantNode || l.Expired || OnPostgres() != (l.Epoch >= 1) {
			t.Errorf("Cluster: lease %d = %+v", p, l)
		}
	}
	if wantNodes == 1 && (info.Nodes[0].ID != node || info.Nodes[0].URL != s.URL || info.Nodes[0].SeenAt.IsZero()) {
		t.Errorf("Cluster: node = %+v", info.Nodes[0])
	}

	// A restarted process is another node to the store: a new id.
	s2 := s.Restart(t)
	info2, err := s2.Client.Cluster(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info2.Node == node || info2.Node != s2.NodeID {
		t.Errorf("after a restart, node = %q (was %q), want a new id", info2.Node, node)
	}
}
