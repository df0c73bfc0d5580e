package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stockd/stockd"
)

// DefaultSaveStateEvery is AvailabilityTableOptions.SaveStateEvery when it is
// 0.
const DefaultSaveStateEvery = 30 * time.Second

// availabilityReadBatch is the most events an AvailabilityTable reads from the
// log at once when it folds events it was not offered.
const availabilityReadBatch = 1024

// AvailabilityTableOptions configure an AvailabilityTable.
type AvailabilityTableOptions struct {
	// Log is where the table reads the events it must fold without
	// having been offered them: after a restart, those between its saved
	// fold and its position; after a gap, those before the events
	// offered. Reads of archived ranges must work (the app's
	// archive-aware log). Default: the Store's own log.
	Log stockd.Log
	// SaveStateEvery is how often a partition saves its fold with the
	// rows, so that a restart folds again only what came after it.
	// Default DefaultSaveStateEvery.
	SaveStateEvery time.Duration
	// Logger receives warnings about saved folds that cannot be used.
	// Default the Store's logger.
	Logger *slog.Logger
}

// AvailabilityTable keeps the availability read model in the table
// availability of the store's schema (migration 0003): one row per SKU and
// location with on_hand, reserved, safety_stock and available exactly as GET
// /v1/availability shows them, for other services to query with SQL. It is a
// publish.Sink: a publish.Runner feeds it every event of every partition, in
// order (no Skip: the fold needs every position).
//
// # Exactly once, whatever is delivered twice
//
// A Runner delivers at least once: after a crash between a Publish and the
// Runner's checkpoint, or a checkpoint set back by hand, events come again.
// The table's own progress is therefore not the Runner's checkpoint but a row
// per partition in availability_partitions, whose position is written in the
// SAME transaction as the rows those events changed. So the rows are always
// exactly the fold of the partition's log up to that position, and nothing
// is ever counted twice:
//
//   - Publish keeps in memory the partition's fold (a stockd.AvailabilityState,
//     the one the in-memory read model folds) at exactly the table's position,
//     drops every event offered at or below it, and applies the rest.
//   - Its transaction first runs UPDATE availability_partitions SET position
//     = new WHERE part = p AND position = old. That locks the partition's row,
//     so two writers of one partition (two nodes while a partition changes
//     hands, say) take turns; the second then finds the position moved, and
//     its transaction is rolled back. The rows of the SKUs the events touched
//     are upserted in the same transaction (a SKU lives in one partition, so
//     its rows are guarded by that partition's row).
//   - A Publish that fails anywhere after its fold, commit included (an
//     ambiguous commit too), forgets its fold: the next Publish loads it
//     again from the table, and so learns whether the commit went through.
//   - Loading reads the partition's row: its position, and the fold saved
//     at state_position (every SaveStateEvery, and at Close, in the same kind
//     of guarded statement). It folds the events in between again, in memory
//     only (the rows hold them already).
//   - Events offered beyond the table's position + 1 (the Runner's
//     checkpoint ahead of the table: a table emptied by hand) are preceded by
//     the missing ones, read from the log, so the fold never skips one.
//
// The Runner's checkpoint thus only says where delivery resumes; it is never
// ahead of the table's position, because the Runner saves it after Publish
// returns.
//
// Publish is safe for concurrent use on different partitions; calls for one
// partition are serialised.
type AvailabilityTable struct {
	s     *Store
	opts  AvailabilityTableOptions
	log   *slog.Logger
	parts []*tablePart
}

// tablePart is the table's view of one partition.
type tablePart struct {
	mu sync.Mutex
	// av is the fold of the partition's log at exactly the table's
	// position, nil until loaded and after any failure.
	av *stockd.AvailabilityState
	// statePos is the position of the fold saved in the table, and
	// nextSave when it may be saved again.
	statePos uint64
	nextSave time.Time
}

// AvailabilityTable returns the sink that keeps the availability table of
// the store's schema. It reads nothing before its first Publish.
func (s *Store) AvailabilityTable(opts AvailabilityTableOptions) *AvailabilityTable {
	if opts.Log == nil {
		opts.Log = s
	}
	if opts.SaveStateEvery <= 0 {
		opts.SaveStateEvery = DefaultSaveStateEvery
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	t := &AvailabilityTable{s: s, opts: opts, log: opts.Logger.With("component", "availability_table"), parts: make([]*tablePart, s.partitions)}
	for p := range t.parts {
		t.parts[p] = &tablePart{}
	}
	return t
}

// errTableMoved is the error of a transaction that found the partition's
// position moved by another writer.
var errTableMoved = errors.New("moved by another writer since it was loaded; loading it again")

// Publish applies events of partition p, in position order, to the table.
// Events the table holds already are dropped; see AvailabilityTable.
func (t *AvailabilityTable) Publish(ctx context.Context, p int, events []stockd.Event) error {
	if err := t.s.check(ctx); err != nil {
		return err
	}
	if err := t.s.checkPartition(p); err != nil {
		return err
	}
	part := t.parts[p]
	part.mu.Lock()
	defer part.mu.Unlock()
	if part.av == nil {
		if err := t.load(ctx, p, part); err != nil {
			return err
		}
	}
	head := part.av.Head()
	i := 0
	for i < len(events) && events[i].Position <= head {
		i++
	}
	events = events[i:]
	if len(events) == 0 {
		return nil
	}
	// Events the table was not offered come first, from the log.
	if first := events[0].Position; first > head+1 {
		err := t.read(ctx, p, head, first-1, func(chunk []stockd.Event) error {
			return t.apply(ctx, p, part, chunk)
		})
		if err != nil {
			return err
		}
	}
	return t.apply(ctx, p, part, events)
}

// apply folds events, which follow the table's position without a gap, and
// writes the rows they changed and the new position in one transaction. On
// failure the fold is forgotten.
func (t *AvailabilityTable) apply(ctx context.Context, p int, part *tablePart, events []stockd.Event) (err error) {
	av := part.av
	old := av.Head()
	defer func() {
		if err != nil {
			part.av = nil
			err = fmt.Errorf("postgres: availability table, partition %d at %d: %w", p, old, err)
		}
	}()
	touched := make(map[string]stockd.Event)
	for _, e := range events {
		if err := av.Apply(e); err != nil {
			return err
		}
		if e.SKU != "" {
			touched[e.SKU] = e
		}
	}
	last := events[len(events)-1]
	var r rows
	skus := make([]string, 0, len(touched))
	for sku := range touched {
		skus = append(skus, sku)
	}
	slices.Sort(skus)
	for _, sku := range skus {
		it, _ := av.Availability(sku)
		e := touched[sku]
		safety := av.SafetyStock(sku)
		for _, l := range it.Locations {
			r.add(sku, l, safety, e)
		}
	}
	save := !time.Now().Before(part.nextSave)
	err = pgx.BeginFunc(ctx, t.s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if save {
			b.Queue(`UPDATE availability_partitions SET position = $2, event_at = $3, updated_at = now(), state_position = $2, state = $4
WHERE part = $1 AND position = $5`, p, int64(last.Position), last.Time, stockd.EncodeAvailability(av), int64(old))
		} else {
			b.Queue(`UPDATE availability_partitions SET position = $2, event_at = $3, updated_at = now() WHERE part = $1 AND position = $4`,
				p, int64(last.Position), last.Time, int64(old))
		}
		if len(r.sku) > 0 {
			// A row never goes back in the log, whoever writes it.
			b.Queue(`INSERT INTO availability AS a (sku, location, part, on_hand, reserved, safety_stock, available, position, event_at, updated_at)
SELECT v.sku, v.location, $1, v.on_hand, v.reserved, v.safety_stock, v.available, v.position, v.event_at, now()
FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::timestamptz[])
	AS v(sku, location, on_hand, reserved, safety_stock, available, position, event_at)
ON CONFLICT (sku, location) DO UPDATE SET part = excluded.part, on_hand = excluded.on_hand, reserved = excluded.reserved,
	safety_stock = excluded.safety_stock, available = excluded.available, position = excluded.position,
	event_at = excluded.event_at, updated_at = excluded.updated_at
WHERE a.position < excluded.position`,
				p, r.sku, r.location, r.onHand, r.reserved, r.safety, r.available, r.position, r.eventAt)
		}
		br := tx.SendBatch(ctx, b)
		tag, err := br.Exec()
		if err == nil && tag.RowsAffected() != 1 {
			err = errTableMoved
		}
		if err == nil && len(r.sku) > 0 {
			_, err = br.Exec()
		}
		return errors.Join(err, br.Close())
	})
	if err != nil {
		return err
	}
	if save {
		part.statePos = last.Position
		part.nextSave = time.Now().Add(t.opts.SaveStateEvery)
	}
	return nil
}

// rows are the columns of the rows one transaction upserts.
type rows struct {
	sku, location                                 []string
	onHand, reserved, safety, available, position []int64
	eventAt                                       []time.Time
}

func (r *rows) add(sku string, l stockd.LocationAvailability, safety int64, e stockd.Event) {
	r.sku = append(r.sku, sku)
	r.location = append(r.location, l.Location)
	r.onHand = append(r.onHand, l.OnHand)
	r.reserved = append(r.reserved, l.Reserved)
	r.safety = append(r.safety, safety)
	r.available = append(r.available, l.Available)
	r.position = append(r.position, int64(e.Position))
	r.eventAt = append(r.eventAt, e.Time)
}

// load sets part's fold to the partition's at the table's position: the fold
// saved with the table, or an empty one, and the events after it up to the
// position, read from the log.
func (t *AvailabilityTable) load(ctx context.Context, p int, part *tablePart) error {
	if _, err := t.s.pool.Exec(ctx, `INSERT INTO availability_partitions (part) VALUES ($1) ON CONFLICT (part) DO NOTHING`, p); err != nil {
		return fmt.Errorf("postgres: availability table, partition %d: %w", p, err)
	}
	var pos, statePos int64
	var state []byte
	err := t.s.pool.QueryRow(ctx, `SELECT position, state_position, state FROM availability_partitions WHERE part = $1`, p).Scan(&pos, &statePos, &state)
	if err != nil {
		return fmt.Errorf("postgres: availability table, partition %d: %w", p, err)
	}
	av := stockd.NewAvailabilityState(p, t.s.partitions)
	if len(state) > 0 {
		saved, err := stockd.DecodeAvailability(state)
		switch {
		case err != nil:
			t.log.Warn("the saved fold is unusable; folding the log from the start", "partition", p, "err", err)
		case saved.Partition() != p || saved.Head() != uint64(statePos):
			t.log.Warn("the saved fold is of another position; folding the log from the start", "partition", p,
				"fold_partition", saved.Partition(), "fold_position", saved.Head(), "state_position", statePos)
		default:
			av = saved
		}
	}
	err = t.read(ctx, p, av.Head(), uint64(pos), func(chunk []stockd.Event) error {
		for _, e := range chunk {
			if err := av.Apply(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: availability table, partition %d: folding the log up to the table's position %d: %w", p, pos, err)
	}
	part.av, part.statePos = av, uint64(statePos)
	part.nextSave = time.Now().Add(t.opts.SaveStateEvery)
	return nil
}

// read calls fn with the events of partition p after position after, up to
// and including upto, a page at a time, in order and without a gap.
func (t *AvailabilityTable) read(ctx context.Context, p int, after, upto uint64, fn func([]stockd.Event) error) error {
	for after < upto {
		events, err := t.opts.Log.ReadPartition(ctx, p, after, int(min(upto-after, availabilityReadBatch)))
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return fmt.Errorf("no events of partition %d after %d, want them up to %d", p, after, upto)
		}
		for i, e := range events {
			if e.Position != after+uint64(i)+1 {
				return fmt.Errorf("partition %d: event at %d where %d was expected", p, e.Position, after+uint64(i)+1)
			}
			if e.Position > upto {
				events = events[:i]
				break
			}
		}
		if err := fn(events); err != nil {
			return err
		}
		after = events[len(events)-1].Position
	}
	return nil
}

// Close saves, for every partition whose fold moved since it was last saved,
// the fold with the table's position, so that the next start folds nothing
// again. Call it after the Runner that feeds the table has stopped. A
// partition another writer moved meanwhile is left as it is.
func (t *AvailabilityTable) Close(ctx context.Context) error {
	if err := t.s.check(ctx); err != nil {
		return err
	}
	var errs []error
	for p, part := range t.parts {
		part.mu.Lock()
		if av := part.av; av != nil && av.Head() > part.statePos {
			_, err := t.s.pool.Exec(ctx, `UPDATE availability_partitions SET state_position = $2, state = $3 WHERE part = $1 AND position = $2`,
				p, int64(av.Head()), stockd.EncodeAvailability(av))
			if err != nil {
				errs = append(errs, fmt.Errorf("postgres: availability table, saving the fold of partition %d: %w", p, err))
			} else {
				part.statePos = av.Head()
			}
		}
		part.mu.Unlock()
	}
	return errors.Join(errs...)
}
