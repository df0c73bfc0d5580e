package app

import (
	"regexp"
	"slices"
	"testing"
)

// TestNewNodeID: a host name, a dash and 8 random hex digits, different
// every time, as a restarted process needs.
func TestNewNodeID(t *testing.T) {
	shape := regexp.MustCompile(`^.+-[0-9a-f]{8}$`)
	seen := map[string]bool{}
	for range 100 {
		id := newNodeID()
		if !shape.MatchString(id) {
			t.Fatalf("newNodeID() = %q, want host-8 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("newNodeID() repeated %q", id)
		}
		seen[id] = true
	}
}

// TestSharesAreBalancedAndALeavingNodeMovesFewOthers: every node gets its
// fair share of the partitions, within one, however few there are; and when
// a node leaves, its partitions go to the others while few of theirs move.
func TestSharesAreBalancedAndALeavingNodeMovesFewOthers(t *testing.T) {
	live := []string{"node-a1b2c3d4", "node-a1b2c3d5", "other-host-00000001"}
	for _, n := range []int{3, 8, 64, 256} {
		count := map[string]int{}
		for _, id := range shares(n, live) {
			count[id]++
		}
		for _, id := range live {
			if c := count[id]; c < n/3 || c > (n+2)/3 {
				t.Errorf("%d partitions: node %s has %d, want %d or %d: %v", n, id, c, n/3, (n+2)/3, count)
			}
		}
	}
	before, after := shares(64, live), shares(64, live[:2])
	moved := 0
	for p := range before {
		switch {
		case before[p] == live[2] && after[p] == live[2]:
			t.Errorf("partition %d stays with the node that left", p)
		case before[p] != live[2] && after[p] != before[p]:
			moved++
		}
	}
	if moved > 64/6 {
		t.Errorf("%d partitions of the nodes that stayed moved when another left, want few", moved)
	}
	// Every node computes the same, whatever the order it lists them in.
	reversed := []string{live[2], live[1], live[0]}
	if a, b := shares(64, live), shares(64, reversed); !slices.Equal(a, b) {
		t.Errorf("shares depend on the order of the live nodes")
	}
}
