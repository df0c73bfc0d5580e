package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/sim"
)

// simulate runs the shop of package sim against a server: its own,
// embedded, unless --url names one.

func init() {
	register(command{name: "simulate", summary: "drive a simulated shop and chart its stock live in the terminal", run: runSimulate})
}

// startSimServer starts the server simulate uses without --url: the App
// serve would start, on dir and a free loopback port, with its engine on
// the clock now. It returns the server's URL and a func that stops it.
// Tests replace it to keep the server after the command ends.
var startSimServer = func(ctx context.Context, dir string, now func() time.Time) (string, func(), error) {
	fs, c := serveFlags(io.Discard)
	if err := fs.Parse(nil); err != nil {
		return "", nil, err
	}
	c.addr, c.data = "127.0.0.1:0", dir
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := c.appConfig(log)
	if err != nil {
		return "", nil, err
	}
	cfg.Engine.Now = now
	a, err := app.Open(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("the embedded server did not start: %w", err)
	}
	a.Serve()
	return a.URL(), func() { a.Close(context.Background()) }, nil
}

const simulateAbout = `Runs a simulated shop against stockd: customers hold carts (1 or 2 lines of 1
to 3 units, the first SKUs the most popular) at --rate attempts a second, at
most --customers at a time, and pay (--pay of them), release or abandon them
(half each of the rest: an abandoned cart expires after --hold); a supplier
drops a CSV file of dated lots (POST /v1/imports) every --drop-every. It draws
the available stock of the --watch SKUs live, from the change feed, with
throughput, refusals by code and expiries, and ends with a summary read
from the server: every SKU's state and the conservation check
  on_hand = received - committed - expired + adjusted
(exit 1 when a SKU fails it).

Without --url it starts a server of its own in a temporary directory, whose
clock moves on a day every --day, so that lots (best before a date) expire
within the run; it also expires the holds still open, as a shop closing for
the night would. With --url the server keeps its own clock: lots expire
only when its day ends. SKUs are named SIM-01, SIM-02, ...; the warehouse
is sim-w1.

The same --seed makes the same decisions (which SKUs, quantities, pay or
abandon, each drop's rows); what the server answers depends on timing, so
which carts are refused, and the counts that follow, may differ between
runs. On a terminal, without --json, it draws the live view; otherwise it
draws nothing and prints only the summary (JSON with --json).`

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("simulate", "simulate [flags]", simulateAbout,
		`stockd simulate --seed 1 --duration 30s
stockd simulate --skus 12 --rate 200 --customers 64 --watch SIM-01,SIM-05
stockd simulate --url http://127.0.0.1:8080 --duration 1m --json | jq .conserved`, stdout, stderr)
	// Without --url (or STOCKD_URL) the simulator starts its own server.
	c.url = os.Getenv("STOCKD_URL")
	f := c.fs.Lookup("url")
	f.DefValue, f.Usage = "", "base URL of a running stockd service (env STOCKD_URL); unset: start one in a temporary directory"
	f = c.fs.Lookup("json")
	f.Usage = "draw nothing and print the summary as JSON"
	var (
		plan      = sim.PlanConfig{}
		duration  time.Duration
		customers int
		day       time.Duration
		watch     string
	)
	c.fs.Uint64Var(&plan.Seed, "seed", 1, "seed of every decision the shop makes")
	c.fs.DurationVar(&duration, "duration", 30*time.Second, "how long customers shop")
	c.fs.IntVar(&plan.SKUs, "skus", 8, "SKUs the shop sells")
	c.fs.IntVar(&customers, "customers", 16, "carts open at once, at most")
	c.fs.Float64Var(&plan.Rate, "rate", 50, "reservation attempts a second")
	c.fs.Float64Var(&plan.Pay, "pay", 0.6, "fraction of held carts paid for; half the rest are released, half left to expire")
	c.fs.DurationVar(&plan.Hold, "hold", 2*time.Second, "ttl of a hold; customers think up to half of it before paying or releasing")
	c.fs.DurationVar(&plan.DropEvery, "drop-every", 5*time.Second, "time between supplier CSV drops")
	c.fs.DurationVar(&day, "day", 10*time.Second, "without --url: time between the shop's midnights (the embedded server's clock moves on a day); 0: never")
	c.fs.StringVar(&watch, "watch", "", "SKUs to chart, comma-separated; unset: the first four")
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return c.usageError("unexpected argument %q", pos[0])
	}
	switch {
	case duration <= 0:
		return c.usageError("--duration must be positive")
	case plan.SKUs < 1 || plan.SKUs > 9999:
		return c.usageError("--skus must be 1 to 9999")
	case customers < 1:
		return c.usageError("--customers must be 1 or more")
	case plan.Rate <= 0:
		return c.usageError("--rate must be positive")
	case plan.Pay < 0 || plan.Pay > 1:
		return c.usageError("--pay must be between 0 and 1")
	case plan.Hold < time.Second:
		return c.usageError("--hold must be 1s or more")
	case plan.DropEvery <= 0:
		return c.usageError("--drop-every must be positive")
	case day < 0:
		return c.usageError("--day must be 0 or more")
	}
	names := map[string]bool{}
	for i := range plan.SKUs {
		names[sim.SKUName(i, plan.SKUs)] = true
	}
	var watched []string
	for _, s := range strings.Split(watch, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !names[s] {
			return c.usageError("--watch %s: the shop sells %s to %s", s, sim.SKUName(0, plan.SKUs), sim.SKUName(plan.SKUs-1, plan.SKUs))
		}
		watched = append(watched, s)
	}

	o := sim.Options{Plan: plan, Duration: duration, Customers: customers, Watch: watched}
	if c.url == "" {
		dir, err := os.MkdirTemp("", "stockd-simulate-")
		if err != nil {
			fmt.Fprintf(stderr, "stockd simulate: %v\n", err)
			return exitFailure
		}
		defer os.RemoveAll(dir)
		clock := sim.NewShopClock()
		url, stop, err := startSimServer(ctx, dir, clock.Now)
		if err != nil {
			fmt.Fprintf(stderr, "stockd simulate: %v\n", err)
			return exitFailure
		}
		defer stop()
		c.url = url
		o.Now, o.Advance, o.Day, o.Server = clock.Now, clock.Advance, day, "an embedded server"
	} else {
		o.Server = c.url
	}
	o.Client = c.client()
	if f, ok := stdout.(*os.File); ok && !c.json && isTerminal(f) {
		o.Live = stdout
		o.Width = 80
		if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 40 {
			o.Width = n
		}
		defer fmt.Fprint(stdout, "\x1b[?25h") // the cursor, whatever happens
	}
	sum, err := sim.Run(ctx, o)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(sum)
	} else {
		if o.Live != nil {
			fmt.Fprintln(stdout)
		}
		sum.WriteText(stdout)
	}
	if !sum.Conserved {
		fmt.Fprintln(stderr, "stockd simulate: stock was not conserved (see the SKUs marked NO)")
		return exitFailure
	}
	return exitOK
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
