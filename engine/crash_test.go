package engine_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/pebble"
)

// The crash test runs the engine in a child process (this test binary,
// re-executed) under concurrent load, kills it with SIGKILL at a random
// moment, and checks in the parent that every operation the child
// acknowledged survived and that the invariants hold. The child prints one
// line per acknowledged operation, after the engine returned success: a line
// the parent read is a promise the engine made.

const (
	crashChildEnv = "STOCKD_CRASH_CHILD"
	crashCycleEnv = "STOCKD_CRASH_CYCLE"
	crashParts    = 8
)

// crashSKUs are four SKUs in different partitions, so carts span partitions.
var crashSKUs = skusInDistinctPartitions(4, crashParts)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir, os.Getenv(crashCycleEnv))
		return
	}
	os.Exit(m.Run())
}

// crashChild is the load generator that gets killed.
func crashChild(dir, cycle string) {
	store, err := pebble.Open(dir, pebble.Options{Partitions: crashParts})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	e, err := engine.Open(ctx, store, engine.Options{SnapshotEvery: 500, SnapshotCheck: 20 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		os.Exit(3)
	}
	if _, err := e.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		fmt.Fprintln(os.Stderr, "configure w1:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...) + "\n"
		mu.Lock()
		os.Stdout.WriteString(line) // unbuffered: what was written was acknowledged
		mu.Unlock()
	}
	ack("READY")
	for w := range 16 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(len(cycle))))
			var held []string
			for i := 0; ; i++ {
				id := fmt.Sprintf("%s-%d-%d", cycle, w, i)
				switch op := rng.IntN(10); {
				case op < 3:
					sku := crashSKUs[rng.IntN(len(crashSKUs))]
					if _, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r" + id, SKU: sku, Location: "w1", Quantity: 5}); err == nil {
						ack("receive r%s %s 5", id, sku)
					}
				case op < 7:
					n := 1 + rng.IntN(2)
					perm := rng.Perm(len(crashSKUs))[:n]
					var lines []stockd.ReserveLine
					for _, k := range perm {
						lines = append(lines, stockd.ReserveLine{SKU: crashSKUs[k], Quantity: int64(1 + rng.IntN(3))})
					}
					ttl := time.Duration(1+rng.IntN(3)) * time.Second
					if _, _, err := e.Reserve(ctx, stockd.Reserve{ID: "c" + id, TTL: ttl, Lines: lines}); err == nil {
						ack("reserve c%s", id)
						held = append(held, "c"+id)
					}
				case len(held) > 0:
					k := rng.IntN(len(held))
					res := held[k]
					held = append(held[:k], held[k+1:]...)
					if op < 9 {
						if _, err := e.Commit(ctx, stockd.CommitReservation{ID: res}); err == nil {
							ack("commit %s", res)
						}
					} else if _, err := e.Release(ctx, stockd.ReleaseReservation{ID: res}); err == nil {
						ack("release %s", res)
					}
				}
			}
		}()
	}
	select {} // until killed
}

type crashAck struct {
	kind, id, sku string
	qty           int64
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles take a while; skipped with -short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cycles := 20
	if s := os.Getenv("STOCKD_CRASH_CYCLES"); s != "" {
		cycles, _ = strconv.Atoi(s)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var acks []crashAck
	for cycle := range cycles {
		got := runCrashChild(t, exe, dir, cycle, time.Duration(20+rng.IntN(300))*time.Millisecond)
		acks = append(acks, got...)
		t.Logf("cycle %d: %d operations acknowledged before SIGKILL", cycle, len(got))
		verifyCrashState(t, dir, acks)
	}
}

// runCrashChild runs one child until it is killed after the given time under
// load, and returns what it acknowledged.
func runCrashChild(t *testing.T, exe, dir string, cycle int, after time.Duration) []crashAck {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashCycleEnv+"="+strconv.Itoa(cycle))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var acks []crashAck
	// Until the child is ready the deadline is generous; after that the
	// kill moment is random and load runs until then. Lines still in the
	// pipe after the kill were written, so acknowledged, before it.
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	kill := timer.C
	for open := true; open; {
		select {
		case line, ok := <-lines:
			switch {
			case !ok:
				open = false
			case line == "READY":
				timer.Reset(after)
			default:
				acks = append(acks, parseAck(line))
			}
		case <-kill:
			cmd.Process.Signal(syscall.SIGKILL)
			kill = nil
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child ended without SIGKILL: %v\n%s", err, stderr.String())
	}
	return acks
}

func parseAck(line string) crashAck {
	f := strings.Fields(line)
	a := crashAck{kind: f[0], id: f[1]}
	if a.kind == "receive" {
		a.sku = f[2]
		a.qty, _ = strconv.ParseInt(f[3], 10, 64)
	}
	return a
}

// verifyCrashState reopens the store and checks every acknowledged operation
// and the invariants.
func verifyCrashState(t *testing.T, dir string, acks []crashAck) {
	t.Helper()
	ctx := context.Background()
	store, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, err := engine.Open(ctx, store, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	status := map[string]stockd.ReservationStatus{}
	for _, a := range acks {
		switch a.kind {
		case "receive":
			c := stockd.ReceiveStock{ID: a.id, SKU: a.sku, Location: "w1", Quantity: a.qty}
			_, created, err := e.Receive(ctx, c)
			for backOff(err) { // a loaded machine's first batches can be slow
				_, created, err = e.Receive(ctx, c)
			}
			if err != nil || created {
				t.Fatalf("acknowledged receipt %s lost: created=%v err=%v", a.id, created, err)
			}
		case "reserve", "commit", "release":
			r, err := e.GetReservation(ctx, a.id)
			for backOff(err) {
				r, err = e.GetReservation(ctx, a.id)
			}
			if err != nil {
				t.Fatalf("acknowledged %s of %s lost: %v", a.kind, a.id, err)
			}
			status[a.id] = r.Status
			if a.kind == "commit" && r.Status != stockd.StatusCommitted {
				t.Fatalf("acknowledged commit of %s lost: status %s", a.id, r.Status)
			}
			if a.kind == "release" && r.Status != stockd.StatusReleased {
				t.Fatalf("acknowledged release of %s lost: status %s", a.id, r.Status)
			}
		}
	}
	for _, sku := range crashSKUs {
		s, err := e.SKU(ctx, sku, stockd.AsOf{})
		if stockd.IsCode(err, stockd.CodeNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		checkSKUInvariants(t, s)
		var received, committed int64
		for page := (stockd.HistoryPage{}); ; {
			page, err = e.History(ctx, sku, stockd.HistoryQuery{After: page.Next, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) == 0 {
				break
			}
			for _, ev := range page.Events {
				switch d := ev.Data.(type) {
				case stockd.StockReceived:
					received += d.Quantity
				case stockd.ReservationCommitted:
					committed += d.Quantity
				}
			}
		}
		if s.OnHand != received-committed {
			t.Fatalf("%s: on_hand %d, but history says received %d − committed %d", sku, s.OnHand, received, committed)
		}
	}
}

// checkSKUInvariants checks what must hold of any SKU in a workload without
// losses or safety stock.
func checkSKUInvariants(t *testing.T, s stockd.SKUState) {
	t.Helper()
	for _, l := range s.Locations {
		var lots, holds int64
		for _, lot := range l.Lots {
			lots += lot.Quantity
		}
		for _, h := range l.Holds {
			holds += h.Quantity
		}
		switch {
		case l.OnHand < 0 || l.Reserved < 0 || l.InTransit != 0:
			t.Fatalf("%s@%s: negative quantities: %+v", s.SKU, l.Location, l)
		case l.Available != l.OnHand-l.Reserved || l.Available < 0:
			t.Fatalf("%s@%s: oversold or inconsistent: %+v", s.SKU, l.Location, l)
		case lots != l.OnHand:
			t.Fatalf("%s@%s: lots add up to %d, on_hand is %d", s.SKU, l.Location, lots, l.OnHand)
		case l.HoldCount <= stockd.MaxHoldsListed && holds != l.Reserved:
			t.Fatalf("%s@%s: holds add up to %d, reserved is %d", s.SKU, l.Location, holds, l.Reserved)
		}
	}
}
