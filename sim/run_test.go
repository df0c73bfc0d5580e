package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/sim"
	"github.com/stockd/stockd/sim/simtest"
)

// TestRunAgainstServer runs the shop for a few seconds against a real
// server in this process, whose clock moves on a day every second so that
// lots expire, with one-second holds so that abandoned carts expire, and
// checks the summary against the server's own state and histories, read
// here independently of the simulator.
func TestRunAgainstServer(t *testing.T) {
	clock := sim.NewShopClock()
	s := e2e.Start(t, e2e.Options{Engine: engine.Options{Now: clock.Now}})
	o := sim.Options{
		Client:   s.Client,
		Plan:     sim.PlanConfig{Seed: 1, SKUs: 6, Pay: 0.6, Hold: time.Second, Rate: 60, DropEvery: time.Second},
		Duration: 4 * time.Second, Customers: 16,
		Now: clock.Now, Advance: clock.Advance, Day: time.Second,
		Watch: []string{"SIM-01", "SIM-04"},
	}
	sum, err := sim.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	simtest.Check(t, s, sum)
	if sum.Days < 3 {
		t.Errorf("%d shop midnights in 4s, one a second", sum.Days)
	}
	for _, sk := range sum.SKUs {
		watched := sk.SKU == "SIM-01" || sk.SKU == "SIM-04"
		if watched != (sk.Chart != nil) {
			t.Errorf("%s: chart %v, watched %v", sk.SKU, sk.Chart, watched)
		}
	}
}
