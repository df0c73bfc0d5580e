package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stockd/stockd"
)

// Run runs the whole conformance suite against the stores returned by open,
// which must return a fresh, empty store with the given number of partitions
// every time it is called: one group of tests per interface of stockd.Store
// (RunLog, RunSnapshots, RunCheckpoints). The suite calls open once or more
// per subtest and closes every store it gets.
func Run(t *testing.T, open func(t *testing.T, partitions int) stockd.Store) {
	t.Run("Log", func(t *testing.T) {
		RunLog(t, func(t *testing.T, partitions int) stockd.Log { return open(t, partitions) })
	})
	t.Run("Snapshots", func(t *testing.T) {
		RunSnapshots(t, func(t *testing.T, partitions int) stockd.Snapshots { return open(t, partitions) })
	})
	t.Run("Checkpoints", func(t *testing.T) {
		RunCheckpoints(t, func(t *testing.T, partitions int) stockd.Checkpoints { return open(t, partitions) })
	})
}

// opener returns a function that opens a store with open and, if the store
// has a Close method, closes it when the calling test ends, failing the test
// if Close does. The groups of the suite take stores that may implement no
// more than their interface, and so may have no Close.
func opener[S any](open func(t *testing.T, partitions int) S) func(t *testing.T, partitions int) S {
	return func(t *testing.T, partitions int) S {
		t.Helper()
		s := open(t, partitions)
		if c, ok := any(s).(interface{ Close() error }); ok {
			t.Cleanup(func() {
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		return s
	}
}

var ctx = context.Background()

// wantCode fails the test unless err carries code.
func wantCode(t testing.TB, err error, code stockd.Code, format string, args ...any) {
	t.Helper()
	if !stockd.IsCode(err, code) {
		t.Errorf("%s: got error %v, want code %s", fmt.Sprintf(format, args...), err, code)
	}
}

// equalEvents fails the test unless got and want hold the same events once
// their times are normalised, reporting the first difference.
func equalEvents(t testing.TB, got, want []stockd.Event, format string, args ...any) {
	t.Helper()
	g, w := Normalize(got), Normalize(want)
	if len(g) == 0 && len(w) == 0 {
		return
	}
	if reflect.DeepEqual(g, w) {
		return
	}
	what := fmt.Sprintf(format, args...)
	if len(g) != len(w) {
		t.Fatalf("%s: got %d events, want %d\ngot:  %s\nwant: %s", what, len(g), len(w), positions(g), positions(w))
	}
	for i := range g {
		if !reflect.DeepEqual(g[i], w[i]) {
			t.Fatalf("%s: event %d differs\ngot:  %+v\nwant: %+v", what, i, g[i], w[i])
		}
	}
}

// positions summarises events for a failure message.
func positions(events []stockd.Event) string {
	var b strings.Builder
	for i, e := range events {
		if i == 20 {
			b.WriteString(" ...")
			break
		}
		fmt.Fprintf(&b, " %d:%s/%d", e.Position, e.SKU, e.Version)
	}
	return b.String()
}
