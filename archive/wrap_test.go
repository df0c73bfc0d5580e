package archive

import (
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/pebble"
)

// TestWrapKeepsTheStoresAppendCapabilities: a store wrapped for cold storage
// keeps group commit, pipelining and key guarding exactly when the store
// has them. Losing GroupAppender once cost the PostgreSQL store a commit per
// partition per batch under uniform load.
func TestWrapKeepsTheStoresAppendCapabilities(t *testing.T) {
	real, err := pebble.Open(t.TempDir(), pebble.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	type (
		plain struct{ stockd.Store }
		group struct {
			stockd.Store
			stockd.GroupAppender
		}
		groupGuard struct {
			stockd.Store
			stockd.GroupAppender
			stockd.KeyGuard
		}
		guard struct {
			stockd.Store
			stockd.KeyGuard
		}
		pipeGroup struct {
			stockd.Store
			stockd.GroupAppender
			stockd.PipelinedAppender
		}
	)
	var kg stockd.KeyGuard = guardsKeys{}
	for _, c := range []struct {
		name              string
		store             stockd.Store
		pipe, grp, guards bool
	}{
		{"plain", plain{real}, false, false, false},
		{"group", group{real, real}, false, true, false},
		{"group and key guard", groupGuard{real, real, kg}, false, true, true},
		{"key guard", guard{real, kg}, false, false, true},
		{"pipelined group", pipeGroup{real, real, real}, true, true, false},
		{"the embedded store", real, true, true, false},
	} {
		w := Wrap(c.store, nil)
		_, pipe := w.(stockd.PipelinedAppender)
		_, grp := w.(stockd.GroupAppender)
		_, guards := w.(stockd.KeyGuard)
		if pipe != c.pipe || grp != c.grp || guards != c.guards {
			t.Errorf("%s: wrapped, pipelined %v group %v guards keys %v; want %v %v %v", c.name, pipe, grp, guards, c.pipe, c.grp, c.guards)
		}
	}
}

// guardsKeys is a stockd.KeyGuard marker.
type guardsKeys struct{}

func (guardsKeys) GuardsKeys() {}
