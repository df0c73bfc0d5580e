package e2e

import (
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// locations configures each id as a warehouse of priority 1, as a test must
// before it receives, counts, adjusts, moves or reserves stock there:
// commands naming a location never configured are refused (DESIGN §7).
func locations(t testing.TB, c *client.Client, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: id, Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
			t.Fatalf("configure location %q: %v", id, err)
		}
	}
}
