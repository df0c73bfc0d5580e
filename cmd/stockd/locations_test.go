package main

import (
	"context"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
)

// configureLocations configures each id as a warehouse of priority 1, as a
// test must before it receives or moves stock there: commands naming a
// location never configured are refused with unknown_location.
func configureLocations(t testing.TB, s *e2e.Server, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := s.Client.ConfigureLocation(context.Background(), stockd.ConfigureLocation{ID: id, Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
			t.Fatalf("configure location %q: %v", id, err)
		}
	}
}
