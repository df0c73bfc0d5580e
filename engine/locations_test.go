package engine_test

import (
	"context"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
)

// configureLocations configures each id as a warehouse of priority 1, as a
// test must before it receives or reserves stock there: commands naming a
// location never configured are refused with unknown_location.
func configureLocations(t testing.TB, e *engine.Engine, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := e.ConfigureLocation(context.Background(), stockd.ConfigureLocation{ID: id, Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
			t.Fatalf("configure location %q: %v", id, err)
		}
	}
}
