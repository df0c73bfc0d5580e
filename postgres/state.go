package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stockd/stockd"
)

// SaveSnapshot stores a snapshot, replacing the partition's previous one in
// one statement (so atomically) unless that one is of a later position.
func (s *Store) SaveSnapshot(ctx context.Context, snap stockd.Snapshot) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.checkPartition(snap.Partition); err != nil {
		return err
	}
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO snapshots (part, pos, data) VALUES ($1, $2, $3)
ON CONFLICT (part) DO UPDATE SET pos = excluded.pos, data = excluded.data WHERE snapshots.pos <= excluded.pos`,
		snap.Partition, int64(snap.Position), data)
	if err != nil {
		return fmt.Errorf("postgres: save snapshot of partition %d at %d: %w", snap.Partition, snap.Position, err)
	}
	return nil
}

// LoadSnapshot returns the latest snapshot of partition p, and false if there
// is none.
func (s *Store) LoadSnapshot(ctx context.Context, p int) (stockd.Snapshot, bool, error) {
	if err := s.check(ctx); err != nil {
		return stockd.Snapshot{}, false, err
	}
	if err := s.checkPartition(p); err != nil {
		return stockd.Snapshot{}, false, err
	}
	snap := stockd.Snapshot{Partition: p}
	var pos int64
	err := s.pool.QueryRow(ctx, `SELECT pos, data FROM snapshots WHERE part = $1`, p).Scan(&pos, &snap.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return stockd.Snapshot{}, false, nil
	}
	if err != nil {
		return stockd.Snapshot{}, false, fmt.Errorf("postgres: load snapshot of partition %d: %w", p, err)
	}
	snap.Position = uint64(pos)
	return snap, true, nil
}

// Checkpoint returns consumer's checkpoint in partition p, the zero
// Checkpoint if it saved none. An empty state is returned as nil.
func (s *Store) Checkpoint(ctx context.Context, consumer string, p int) (stockd.Checkpoint, error) {
	if err := s.check(ctx); err != nil {
		return stockd.Checkpoint{}, err
	}
	if err := s.checkPartition(p); err != nil {
		return stockd.Checkpoint{}, err
	}
	var c stockd.Checkpoint
	var pos int64
	err := s.pool.QueryRow(ctx, `SELECT pos, state FROM checkpoints WHERE consumer = $1 AND part = $2`, []byte(consumer), p).Scan(&pos, &c.State)
	if errors.Is(err, pgx.ErrNoRows) {
		return stockd.Checkpoint{}, nil
	}
	if err != nil {
		return stockd.Checkpoint{}, fmt.Errorf("postgres: read checkpoint of %q in partition %d: %w", consumer, p, err)
	}
	c.Position = uint64(pos)
	if len(c.State) == 0 {
		c.State = nil
	}
	return c, nil
}

// SetCheckpoint records consumer's checkpoint in partition p: position and
// state in one row, replaced by one statement.
func (s *Store) SetCheckpoint(ctx context.Context, consumer string, p int, c stockd.Checkpoint) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.checkPartition(p); err != nil {
		return err
	}
	var state []byte // NULL for no state
	if len(c.State) > 0 {
		state = c.State
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO checkpoints (consumer, part, pos, state) VALUES ($1, $2, $3, $4)
ON CONFLICT (consumer, part) DO UPDATE SET pos = excluded.pos, state = excluded.state`,
		[]byte(consumer), p, int64(c.Position), state)
	if err != nil {
		return fmt.Errorf("postgres: save checkpoint of %q in partition %d: %w", consumer, p, err)
	}
	return nil
}

// Consumers returns, in byte order, the consumers with a checkpoint in any
// partition.
func (s *Store) Consumers(ctx context.Context) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT consumer FROM checkpoints ORDER BY consumer`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list consumers: %w", err)
	}
	names, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var b []byte
		err := r.Scan(&b)
		return string(b), err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list consumers: %w", err)
	}
	return names, nil
}

// DeleteConsumer deletes consumer's checkpoints in every partition, in one
// statement.
func (s *Store) DeleteConsumer(ctx context.Context, consumer string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM checkpoints WHERE consumer = $1`, []byte(consumer)); err != nil {
		return fmt.Errorf("postgres: delete consumer %q: %w", consumer, err)
	}
	return nil
}

// LogStart returns the position of the last trimmed event of partition p.
func (s *Store) LogStart(ctx context.Context, p int) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := s.checkPartition(p); err != nil {
		return 0, err
	}
	var start int64
	if err := s.pool.QueryRow(ctx, `SELECT log_start FROM partitions WHERE part = $1`, p).Scan(&start); err != nil {
		return 0, fmt.Errorf("postgres: read log start of partition %d: %w", p, err)
	}
	return uint64(start), nil
}

// SetLogStart records that partition p is trimmed up to start. The start
// never moves backwards, and a start beyond the head is refused: both are
// checked by the one statement that moves it.
func (s *Store) SetLogStart(ctx context.Context, p int, start uint64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.checkPartition(p); err != nil {
		return err
	}
	var head int64
	if start <= 1<<63-1 {
		tag, err := s.pool.Exec(ctx, `UPDATE partitions SET log_start = greatest(log_start, $2) WHERE part = $1 AND head >= $2`, p, int64(start))
		if err != nil {
			return fmt.Errorf("postgres: set log start of partition %d to %d: %w", p, start, err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
	}
	if err := s.pool.QueryRow(ctx, `SELECT head FROM partitions WHERE part = $1`, p).Scan(&head); err != nil {
		return fmt.Errorf("postgres: set log start of partition %d to %d: %w", p, start, err)
	}
	return stockd.Errorf(stockd.CodeInvalid, "cannot trim partition %d to %d beyond its head %d", p, start, head)
}

// Trim deletes up to maxEvents events of partition p at or below its log
// start (10,000 if maxEvents is 0 or less) and reports whether more remain.
func (s *Store) Trim(ctx context.Context, p int, maxEvents int) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if err := s.checkPartition(p); err != nil {
		return false, err
	}
	if maxEvents <= 0 {
		maxEvents = 10_000
	}
	start, err := s.LogStart(ctx, p)
	if err != nil {
		return false, err
	}
	if start == 0 {
		return false, nil
	}
	// The start is durable and never moves back, so everything at or below
	// the start read above stays deletable.
	tag, err := s.pool.Exec(ctx, `DELETE FROM events WHERE part = $1 AND pos IN
(SELECT pos FROM events WHERE part = $1 AND pos <= $2 ORDER BY pos LIMIT $3)`, p, int64(start), maxEvents)
	if err != nil {
		return false, fmt.Errorf("postgres: trim partition %d: %w", p, err)
	}
	if tag.RowsAffected() < int64(maxEvents) {
		return false, nil
	}
	var more bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE part = $1 AND pos <= $2)`, p, int64(start)).Scan(&more); err != nil {
		return false, fmt.Errorf("postgres: trim partition %d: %w", p, err)
	}
	return more, nil
}

// PutRecord stores value under kind and key, replacing any record there.
func (s *Store) PutRecord(ctx context.Context, kind, key string, value []byte) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := stockd.CheckRecord(kind, key, value); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO records (kind, key, value) VALUES ($1, $2, $3)
ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`, []byte(kind), []byte(key), value)
	if err != nil {
		return fmt.Errorf("postgres: write record %s/%s: %w", kind, key, err)
	}
	return nil
}

// CreateRecord stores value under kind and key if there is no record there,
// and reports whether it did. The primary key makes exactly one of
// concurrent creates succeed.
func (s *Store) CreateRecord(ctx context.Context, kind, key string, value []byte) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if err := stockd.CheckRecord(kind, key, value); err != nil {
		return false, err
	}
	if value == nil {
		value = []byte{}
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO records (kind, key, value) VALUES ($1, $2, $3) ON CONFLICT (kind, key) DO NOTHING`,
		[]byte(kind), []byte(key), value)
	if err != nil {
		return false, fmt.Errorf("postgres: create record %s/%s: %w", kind, key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// GetRecord returns the record under kind and key, and false if there is
// none.
func (s *Store) GetRecord(ctx context.Context, kind, key string) ([]byte, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	if err := stockd.CheckRecordName("kind", kind); err != nil {
		return nil, false, err
	}
	if err := stockd.CheckRecordName("key", key); err != nil {
		return nil, false, err
	}
	var value []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM records WHERE kind = $1 AND key = $2`, []byte(kind), []byte(key)).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("postgres: read record %s/%s: %w", kind, key, err)
	}
	if value == nil {
		value = []byte{}
	}
	return value, true, nil
}

// DeleteRecord removes the record under kind and key, if there is one.
func (s *Store) DeleteRecord(ctx context.Context, kind, key string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := stockd.CheckRecordName("kind", kind); err != nil {
		return err
	}
	if err := stockd.CheckRecordName("key", key); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM records WHERE kind = $1 AND key = $2`, []byte(kind), []byte(key)); err != nil {
		return fmt.Errorf("postgres: delete record %s/%s: %w", kind, key, err)
	}
	return nil
}

// ListRecords returns up to limit records of kind with keys greater than
// after, in byte order of the keys.
func (s *Store) ListRecords(ctx context.Context, kind, after string, limit int) ([]stockd.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := stockd.CheckRecordName("kind", kind); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM records WHERE kind = $1 AND key > $2 ORDER BY key LIMIT $3`,
		[]byte(kind), []byte(after), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list records %s: %w", kind, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stockd.Record, error) {
		var key []byte
		var rec stockd.Record
		err := r.Scan(&key, &rec.Value)
		rec.Key = string(key)
		return rec, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list records %s: %w", kind, err)
	}
	return out, nil
}
