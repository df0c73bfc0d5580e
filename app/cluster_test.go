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
