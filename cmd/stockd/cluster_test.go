package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
)

// TestCluster shows the node, the NODES and LEASES tables, and --json.
func TestCluster(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	code, out, errOut := run(t, s, "cluster")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"node " + s.NodeID + ",", "\nNODES\n", "\nLEASES\n", "PARTITION", "EPOCH", "EXPIRES"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !e2e.OnPostgres() && !strings.Contains(out, s.NodeID+" (this node)") {
		t.Errorf("NODES does not show this node:\n%s", out)
	}
	code, out, errOut = run(t, s, "cluster", "--json")
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var info stockd.ClusterInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Node != s.NodeID || len(info.Leases) != s.Engine.Partitions() {
		t.Errorf("--json = %s (%v)", out, err)
	}
	if code, _, _ := run(t, s, "cluster", "extra"); code == 0 {
		t.Error("an argument was accepted")
	}
}
