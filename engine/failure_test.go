package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/pebble"
)

// openFS starts an engine over a Pebble store on fs.
func openFS(t *testing.T, fs vfs.FS, partitions int) (*engine.Engine, *pebble.Store) {
	t.Helper()
	store, err := pebble.Open("db", pebble.Options{Partitions: partitions, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(context.Background(), store, engine.Options{SkipSnapshotOnClose: true})
	if err != nil {
		t.Fatal(err)
	}
	return e, store
}

var errInjected = errors.New("injected fsync failure")

// TestFsyncFailureStopsTheEngine makes the write-ahead log's fsync fail under
// load. The engine must stop at once, acknowledge nothing from then on, never
// retry, and after a restart on what was really synced every acknowledged
// write must be there.
func TestFsyncFailureStopsTheEngine(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewCrashableMem()
	var failing atomic.Bool
	var syncs atomic.Int64
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if failing.Load() && strings.HasSuffix(op.Path, ".log") {
				syncs.Add(1)
				return errInjected
			}
		}
		return nil
	}))
	e, store := openFS(t, fs, 4)
	e2e.ConfigureLocations(t, e, "w1")
	for i := range 50 {
		if _, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprint("r-", i), SKU: fmt.Sprint("sku-", i%5), Location: "w1", Quantity: 3}); err != nil {
			t.Fatal(err)
		}
	}

	failing.Store(true)
	var acked atomic.Int64
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := e.Reserve(ctx, stockd.Reserve{ID: fmt.Sprint("c-", i), Lines: []stockd.ReserveLine{{SKU: fmt.Sprint("sku-", i%5), Quantity: 1}}})
			if err == nil {
				acked.Add(1)
			} else if !stockd.IsCode(err, stockd.CodeUnavailable) {
				t.Errorf("reserve during fsync failure: %v", err)
			}
		}()
	}
	wg.Wait()
	if acked.Load() != 0 {
		t.Fatalf("%d reservations acknowledged although their fsync failed", acked.Load())
	}
	select {
	case <-e.Fatal():
	default:
		t.Fatal("engine did not stop after a failed fsync")
	}
	if !errors.Is(e.Err(), errInjected) {
		t.Fatalf("engine error = %v, want the injected one", e.Err())
	}
	if _, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "late", SKU: "sku-0", Location: "w1", Quantity: 1}); !stockd.IsCode(err, stockd.CodeUnavailable) {
		t.Fatalf("receive after failure = %v, want unavailable", err)
	}
	if n := syncs.Load(); n > 4 {
		// Each partition may have had one append in flight; more failed
		// syncs would mean someone retried.
		t.Fatalf("%d failed syncs: a failed fsync was retried", n)
	}
	e.Close(ctx)
	store.Close()

	// Restart on exactly what was synced.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	e2, store2 := openFS(t, crashed, 4)
	defer store2.Close()
	defer e2.Close(ctx)
	for i := range 50 {
		_, created, err := e2.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprint("r-", i), SKU: fmt.Sprint("sku-", i%5), Location: "w1", Quantity: 3})
		if err != nil || created {
			t.Fatalf("acknowledged receipt r-%d lost after restart: created=%v err=%v", i, created, err)
		}
	}
	for i := range 5 {
		s := must(e2.SKU(ctx, fmt.Sprint("sku-", i), stockd.AsOf{}))
		if s.OnHand != 30 || s.Reserved != 0 {
			t.Fatalf("sku-%d after restart = on_hand %d reserved %d, want 30 and 0 (no unacknowledged hold)", i, s.OnHand, s.Reserved)
		}
	}
}

// TestCrashLosesOnlyUnacknowledged runs load on an in-memory file system and,
// at random moments, takes the state a power cut would leave (synced data,
// plus a random part of the unsynced data). Every operation acknowledged
// before the cut must survive it, and the invariants must hold.
func TestCrashLosesOnlyUnacknowledged(t *testing.T) {
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for round := range 8 {
		mem := vfs.NewCrashableMem()
		e, store := openFS(t, mem, 4)
		e2e.ConfigureLocations(t, e, "w1")
		var mu sync.Mutex
		var receipts, holds []string
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("%d-%d", w, i)
					sku := crashSKUs[(w+i)%len(crashSKUs)]
					if i%2 == 0 {
						if _, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r" + id, SKU: sku, Location: "w1", Quantity: 2}); err == nil {
							mu.Lock()
							receipts = append(receipts, "r"+id+" "+sku)
							mu.Unlock()
						}
					} else {
						lines := []stockd.ReserveLine{{SKU: sku, Quantity: 1}, {SKU: crashSKUs[(w+i+1)%len(crashSKUs)], Quantity: 1}}
						if _, _, err := e.Reserve(ctx, stockd.Reserve{ID: "c" + id, TTL: time.Hour, Lines: lines}); err == nil {
							mu.Lock()
							holds = append(holds, "c"+id)
							mu.Unlock()
						}
					}
				}
			}()
		}
		// Let load run for a random while, then cut the power.
		time.Sleep(time.Duration(5+rng.IntN(50)) * time.Millisecond)
		mu.Lock()
		ackedReceipts, ackedHolds := len(receipts), len(holds)
		mu.Unlock()
		crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(seed, uint64(round)))})
		close(stop)
		wg.Wait()
		e.Close(ctx)
		store.Close()

		e2, store2 := openFS(t, crashed, 4)
		for _, r := range receipts[:ackedReceipts] {
			id, sku, _ := strings.Cut(r, " ")
			if _, created, err := e2.Receive(ctx, stockd.ReceiveStock{ID: id, SKU: sku, Location: "w1", Quantity: 2}); err != nil || created {
				t.Fatalf("round %d: acknowledged receipt %s lost: created=%v err=%v", round, id, created, err)
			}
		}
		for _, id := range holds[:ackedHolds] {
			r, err := e2.GetReservation(ctx, id)
			if err != nil || r.Status != stockd.StatusHeld {
				t.Fatalf("round %d: acknowledged reservation %s lost: %+v %v", round, id, r, err)
			}
		}
		for _, sku := range crashSKUs {
			if s, err := e2.SKU(ctx, sku, stockd.AsOf{}); err == nil {
				checkSKUInvariants(t, s)
			}
		}
		t.Logf("round %d: %d receipts and %d holds acknowledged before the cut survived", round, ackedReceipts, ackedHolds)
		e2.Close(ctx)
		store2.Close()
	}
}
