package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/sim"
	"github.com/stockd/stockd/sim/simtest"
)

// keepSimServer makes stockd simulate start its embedded server as a test
// server that outlives the command, on the clock the command gives it, so
// that the test can read the server's state afterwards. It returns where
// the server will be.
func keepSimServer(t *testing.T) **e2e.Server {
	t.Helper()
	var s *e2e.Server
	prev := startSimServer
	t.Cleanup(func() { startSimServer = prev })
	startSimServer = func(_ context.Context, _ string, now func() time.Time) (string, func(), error) {
		s = e2e.Start(t, e2e.Options{Engine: engine.Options{Now: now}})
		return s.URL, func() {}, nil
	}
	return &s
}

// simulate runs stockd simulate with args and --json, and decodes its
// summary.
func simulate(t *testing.T, args ...string) *sim.Summary {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), append([]string{"simulate", "--json"}, args...), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var sum sim.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	return &sum
}

// TestSimulate runs stockd simulate --seed 1 for four seconds on its
// embedded server (a day every second, one-second holds, a drop every
// second) and checks the JSON summary against the server's state and
// histories: on_hand per SKU, conservation, the carts the customers were
// told of, and that carts were refused, holds and lots expired.
func TestSimulate(t *testing.T) {
	s := keepSimServer(t)
	sum := simulate(t, "--seed", "1", "--duration", "4s", "--day", "1s", "--hold", "1s", "--drop-every", "1s",
		"--skus", "6", "--rate", "60", "--watch", "SIM-01,SIM-03")
	if *s == nil {
		t.Fatal("no embedded server was started")
	}
	if sum.Seed != 1 || sum.Duration != "4s" || len(sum.SKUs) != 6 {
		t.Errorf("seed %d, duration %s, %d SKUs", sum.Seed, sum.Duration, len(sum.SKUs))
	}
	simtest.Check(t, *s, sum)
}

// TestSimulate30s is the proof: stockd simulate --seed 1
// --duration 30s, with every other flag at its default, checked against
// the server.
func TestSimulate30s(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s simulation; -short skips it")
	}
	s := keepSimServer(t)
	sum := simulate(t, "--seed", "1", "--duration", "30s")
	simtest.Check(t, *s, sum)
	if sum.Days < 2 {
		t.Errorf("%d shop midnights in 30s, one every 10s", sum.Days)
	}
}

// TestSimulateUsage: help, bad flags, and the text summary, which draws
// nothing when stdout is not a terminal.
func TestSimulateUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"simulate", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{"--seed", "--duration", "--watch", "--drop-every", "--day", "may differ", "on_hand = received - committed - expired + adjusted"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, stdout.String())
		}
	}
	for _, args := range [][]string{{"--pay", "2"}, {"--watch", "SIM-99"}, {"--duration", "0s"}, {"--hold", "10ms"}, {"extra"}} {
		stdout.Reset()
		stderr.Reset()
		if code := Run(context.Background(), append([]string{"simulate"}, args...), &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d, want %d; stderr: %s", args, code, exitUsage, stderr.String())
		}
	}

	keepSimServer(t)
	stdout.Reset()
	stderr.Reset()
	if code := Run(context.Background(), []string{"simulate", "--duration", "1s", "--skus", "3"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape sequences with no terminal:\n%q", out)
	}
	for _, want := range []string{"Simulated seed 1", "SIM-03", "Conserved:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q:\n%s", want, out)
		}
	}
}
