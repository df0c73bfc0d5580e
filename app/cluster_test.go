package app

import (
	"regexp"
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

// TestSharesAreEvenAndMoveOnlyWithTheirNode: rendezvous hashing gives each
// of three nodes about a third of 64 partitions, and when one leaves only
// its partitions move.
func TestSharesAreEvenAndMoveOnlyWithTheirNode(t *testing.T) {
	live := []string{"node-a1b2c3d4", "node-a1b2c3d5", "other-host-00000001"}
	count := map[string]int{}
	before := make([]string, 64)
	for p := range before {
		before[p] = shareOf(p, live)
		count[before[p]]++
	}
	for _, id := range live {
		if count[id] < 10 || count[id] > 32 {
			t.Errorf("node %s has %d of 64 partitions, want about a third: %v", id, count[id], count)
		}
	}
	for p := range before {
		after := shareOf(p, live[:2])
		if before[p] != live[2] && after != before[p] {
			t.Errorf("partition %d moved from %s to %s when another node left", p, before[p], after)
		}
	}
}
