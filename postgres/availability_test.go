package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/internal/stockmix"
	"github.com/stockd/stockd/internal/testclock"
)

// tableRow is a row of the availability table.
type tableRow struct {
	SKU, Location                                 string
	Part                                          int
	OnHand, Reserved, SafetyStock, Available, Pos int64
	UpdatedAt                                     time.Time
}

func (r tableRow) String() string {
	return fmt.Sprintf("%s@%s p%d on_hand %d reserved %d safety %d available %d position %d",
		r.SKU, r.Location, r.Part, r.OnHand, r.Reserved, r.SafetyStock, r.Available, r.Pos)
}

// tableRows reads the whole availability table, ordered by SKU and location.
func tableRows(t testing.TB, s *Store) []tableRow {
	t.Helper()
	rows, err := s.pool.Query(ctx, `SELECT sku, location, part, on_hand, reserved, safety_stock, available, position, updated_at
FROM availability ORDER BY sku, location`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tableRow, error) {
		var x tableRow
		err := r.Scan(&x.SKU, &x.Location, &x.Part, &x.OnHand, &x.Reserved, &x.SafetyStock, &x.Available, &x.Pos, &x.UpdatedAt)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mixedLog runs a stockmix workload on the engine on s, with a test clock so
// that holds and lots expire, and returns every partition's events.
func mixedLog(t *testing.T, s *Store, seed uint64, ops int) [][]stockd.Event {
	t.Helper()
	clock := testclock.New(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	e, err := engine.Open(ctx, s, engine.Options{Logger: slog.New(slog.DiscardHandler), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	m := stockmix.New(e, seed, clock.Now, func(d time.Duration) { clock.Advance(d); e.Poke() })
	m.Setup(t)
	m.Run(t, ops)
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	logs := make([][]stockd.Event, s.Partitions())
	for p := range logs {
		logs[p] = readAll(t, s, p)
	}
	return logs
}

// wantRows folds every partition's log with stockd.AvailabilityState, the
// fold of the in-memory read model, and returns the rows the table must
// hold: one per SKU and location, with the position of the SKU's last event.
func wantRows(t testing.TB, logs [][]stockd.Event) []tableRow {
	t.Helper()
	var out []tableRow
	for p, events := range logs {
		av := stockd.NewAvailabilityState(p, len(logs))
		last := map[string]uint64{}
		for _, e := range events {
			if err := av.Apply(e); err != nil {
				t.Fatal(err)
			}
			if e.SKU != "" {
				last[e.SKU] = e.Position
			}
		}
		for _, sku := range av.SKUs() {
			it, _ := av.Availability(sku)
			for _, l := range it.Locations {
				out = append(out, tableRow{SKU: sku, Location: l.Location, Part: p, OnHand: l.OnHand, Reserved: l.Reserved,
					SafetyStock: av.SafetyStock(sku), Available: l.Available, Pos: int64(last[sku])})
			}
		}
	}
	slices.SortFunc(out, func(a, b tableRow) int {
		return strings.Compare(a.SKU+"\x00"+a.Location, b.SKU+"\x00"+b.Location)
	})
	return out
}

// checkTable fails unless the table holds exactly want (updated_at aside) and
// every partition's position is its head.
func checkTable(t testing.TB, s *Store, logs [][]stockd.Event, want []tableRow) {
	t.Helper()
	got := tableRows(t, s)
	if len(got) != len(want) {
		t.Errorf("the table holds %d rows, want %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i].String()
		}
		if i < len(want) {
			w = want[i].String()
		}
		if g != w {
			t.Errorf("row %d:\n got %s\nwant %s", i, g, w)
		}
	}
	for p, events := range logs {
		var pos int64
		if err := s.pool.QueryRow(ctx, `SELECT position FROM availability_partitions WHERE part = $1`, p).Scan(&pos); err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		if pos != int64(len(events)) {
			t.Errorf("the table of partition %d is at position %d, want its head %d", p, pos, len(events))
		}
	}
}

// TestTheAvailabilityTableCountsEveryEventOnceHoweverItIsDelivered: events
// delivered at least once, as a publish.Runner does after crashes — batches
// offered again after their commit (a crash before the checkpoint), restarts
// that forget everything in memory and set the delivery back (to the start,
// sometimes), deliveries that skip ahead of the table, folds saved after
// every batch or never — leave the table row for row equal to the in-memory
// read model's fold of the log: no event counted twice or missed.
func TestTheAvailabilityTableCountsEveryEventOnceHoweverItIsDelivered(t *testing.T) {
	s := mustOpen(t, newSchema(t), Options{Partitions: 4})
	logs := mixedLog(t, s, 1, 400)
	want := wantRows(t, logs)
	if len(want) < 24 {
		t.Fatalf("the workload left only %d rows", len(want))
	}
	rng := rand.New(rand.NewPCG(7, 11))
	newTable := func() *AvailabilityTable {
		every := []time.Duration{time.Nanosecond, time.Hour}[rng.IntN(2)]
		return s.AvailabilityTable(AvailabilityTableOptions{SaveStateEvery: every, Logger: testLogger})
	}
	table := newTable()
	var redelivered, restarts, gaps int
	for p, events := range logs {
		c := 0 // the Runner's checkpoint: events[:c] acknowledged
		for c < len(events) {
			end := min(len(events), c+1+rng.IntN(12))
			if err := table.Publish(ctx, p, events[c:end]); err != nil {
				t.Fatalf("partition %d, events %d..%d: %v", p, c+1, end, err)
			}
			switch x := rng.IntN(10); {
			case x < 3: // the commit went through, the checkpoint did not
				redelivered++
			case x < 4: // a restart, the checkpoint set back
				table = newTable()
				c = rng.IntN(end + 1)
				restarts++
			case x < 5 && end+5 < len(events): // delivery skips ahead of the table
				c = end + 1 + rng.IntN(4)
				gaps++
			default:
				c = end
			}
		}
	}
	if err := table.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows; %d batches delivered again, %d restarts, %d gaps", len(want), redelivered, restarts, gaps)
	checkTable(t, s, logs, want)

	// A replay of the whole log, from the start, by a new table (a
	// restart with every checkpoint reset) writes nothing at all.
	before := tableRows(t, s)
	var progress time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(updated_at) FROM availability_partitions`).Scan(&progress); err != nil {
		t.Fatal(err)
	}
	table = s.AvailabilityTable(AvailabilityTableOptions{Logger: testLogger})
	for p, events := range logs {
		for i := 0; i < len(events); i += 100 {
			if err := table.Publish(ctx, p, events[i:min(len(events), i+100)]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if after := tableRows(t, s); !slices.Equal(before, after) {
		t.Errorf("a replay from the start changed the table")
	}
	var progressAfter time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(updated_at) FROM availability_partitions`).Scan(&progressAfter); err != nil {
		t.Fatal(err)
	}
	if !progressAfter.Equal(progress) {
		t.Errorf("a replay from the start wrote the partitions' progress")
	}
}

// TestTwoWritersOfOnePartitionTakeTurnsAndCountOnce: two tables (two nodes
// while partitions change hands) publishing the same events of the same
// partitions at once, each retrying what fails as a Runner does, leave the
// table exactly the fold of the log: the partition's row serialises them,
// and the one that finds it moved loads it again.
func TestTwoWritersOfOnePartitionTakeTurnsAndCountOnce(t *testing.T) {
	s := mustOpen(t, newSchema(t), Options{Partitions: 2})
	logs := mixedLog(t, s, 2, 200)
	want := wantRows(t, logs)
	var moved sync.Map
	var wg sync.WaitGroup
	for w := range 2 {
		table := s.AvailabilityTable(AvailabilityTableOptions{SaveStateEvery: time.Duration(w+1) * time.Millisecond, Logger: testLogger})
		for p, events := range logs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := 0; c < len(events); {
					end := min(len(events), c+1+(c+w)%7)
					err := table.Publish(ctx, p, events[c:end])
					if err != nil {
						if !errors.Is(err, errTableMoved) {
							t.Errorf("writer %d, partition %d: %v", w, p, err)
							return
						}
						moved.Store(fmt.Sprint(w, p, c), true)
						continue // as a Runner retries
					}
					c = end
				}
			}()
		}
	}
	wg.Wait()
	n := 0
	moved.Range(func(any, any) bool { n++; return true })
	t.Logf("%d transactions found the partition moved by the other writer", n)
	checkTable(t, s, logs, want)
}
