package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stockd/stockd"
)

// DefaultPartitions is the number of partitions of a new store when
// Options.Partitions is 0, as in the embedded store.
const DefaultPartitions = 64

// MaxPartitions is the largest number of partitions a store can have, as in
// the embedded store, so that a store can move between the two.
const MaxPartitions = 1 << 16

// DefaultSchema is the PostgreSQL schema the store lives in when
// Options.Schema is empty.
const DefaultSchema = "stockd"

// DefaultReadLimit is the number of events ReadPartition returns when asked
// for a limit of 0 or less, as in the embedded store.
const DefaultReadLimit = 1000

// DefaultNodeLiveness is Options.NodeLiveness when it is 0.
const DefaultNodeLiveness = 10 * time.Second

// Options configures Open.
type Options struct {
	// Schema is the PostgreSQL schema that holds the store's tables,
	// created if missing; empty means DefaultSchema. Every connection of
	// the store has it as its search_path, so that several stores (and
	// tests) can share one database.
	Schema string
	// Partitions is the number of partitions of the store. 0 means the
	// number the existing store was created with, or DefaultPartitions for
	// a new one. Opening an existing store with any other non-zero number
	// fails, as with the embedded store.
	Partitions int
	// MaxConns bounds the connection pool; 0 means pgxpool's default (the
	// larger of 4 and the number of CPUs) or the DSN's pool_max_conns.
	MaxConns int32
	// Logger receives the store's messages; nil means slog.Default().
	Logger *slog.Logger
	// NodeLiveness is how recently a node must have sent a heartbeat for
	// Nodes to list it, by the database's clock; 0 means
	// DefaultNodeLiveness.
	NodeLiveness time.Duration

	// hooks lets tests inject failures; nil in production.
	hooks *hooks
}

// hooks are the failure injection points of the tests.
type hooks struct {
	// commit, when not nil, is called in place of tx.Commit for every
	// append transaction; attempt counts the attempts of one append from 0.
	commit func(ctx context.Context, tx pgx.Tx, attempt int) error
}

// Store is a stockd.Store on PostgreSQL, with the optional capabilities
// stockd.GroupAppender, stockd.KeyGuard, stockd.Trimmer, stockd.Records and
// stockd.Leases.
// It is safe for concurrent use, and several Stores (in one process or many)
// may share one schema: every append is checked against the partition's head
// in the database, never against a copy in memory.
type Store struct {
	pool       *pgxpool.Pool
	schema     string
	partitions int
	log        *slog.Logger
	hooks      *hooks
	liveness   time.Duration
	closed     atomic.Bool
	finder     keyFinder
}

var (
	_ stockd.Store         = (*Store)(nil)
	_ stockd.GroupAppender = (*Store)(nil)
	_ stockd.KeyGuard      = (*Store)(nil)
	_ stockd.Trimmer       = (*Store)(nil)
	_ stockd.Records       = (*Store)(nil)
	_ stockd.Leases        = (*Store)(nil)
	_ stockd.KeyFinder     = (*Store)(nil)
	_ stockd.HeadReader    = (*Store)(nil)
)

// errClosed is returned by every call made after Close.
var errClosed = errors.New("postgres: store is closed")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. A file is
// named NNNN_what.sql; its version is NNNN.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration file %q is not named NNNN_what.sql", name)
		}
		b, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := range out {
		if out[i].version != i+1 {
			return nil, fmt.Errorf("postgres: migrations are not numbered 1, 2, ...: %q", out[i].name)
		}
	}
	return out, nil
}

// Open connects to the database at dsn (a libpq URL or key=value string, as
// pgx parses it), creates the schema and applies the embedded migrations that
// it lacks, creates the store with opts.Partitions partitions if the schema
// holds none, and returns it.
//
// Open fails, saying why, when opts.Partitions is neither 0 nor the number of
// partitions of the store in the schema, and when the schema was migrated by
// a newer build. Concurrent Opens of one schema, in one process or several,
// are safe: each migration is applied exactly once.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.NodeLiveness < 0 {
		return nil, fmt.Errorf("postgres: negative node liveness window %v", opts.NodeLiveness)
	}
	if opts.NodeLiveness == 0 {
		opts.NodeLiveness = DefaultNodeLiveness
	}
	if opts.Partitions < 0 || opts.Partitions > MaxPartitions {
		return nil, fmt.Errorf("postgres: partitions must be between 1 and %d, not %d", MaxPartitions, opts.Partitions)
	}
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if strings.IndexByte(schema, 0) >= 0 || len(schema) > 63 {
		return nil, fmt.Errorf("postgres: invalid schema name %q", schema)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "postgres", "schema", schema)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DSN: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "stockd"
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s := &Store{pool: pool, schema: schema, log: log, hooks: opts.hooks, liveness: opts.NodeLiveness}
	if err := s.init(ctx, opts.Partitions); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// init creates the schema, migrates it and reads or writes the number of
// partitions.
func (s *Store) init(ctx context.Context, partitions int) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	// The schema is created only if missing, so that a role without the
	// right to create schemas can open one made for it (PostgreSQL checks
	// that right before IF NOT EXISTS). CREATE ... IF NOT EXISTS is not
	// safe against itself in PostgreSQL: two sessions may both find the
	// name free and one then fails on the catalog's unique index. The loser
	// simply tries again.
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)", s.schema).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look for schema %s: %w", s.schema, err)
	}
	bootstrap := "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
	if !exists {
		bootstrap = "CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{s.schema}.Sanitize() + ";" + bootstrap
	}
	for attempt := 0; ; attempt++ {
		_, err = s.pool.Exec(ctx, bootstrap, pgx.QueryExecModeSimpleProtocol)
		if err == nil {
			break
		}
		if attempt >= 5 || !isCode(err, "23505", "42P06", "42P07") {
			return fmt.Errorf("postgres: create schema %s: %w", s.schema, err)
		}
	}
	var newest int
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&newest); err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	if newest > len(all) {
		return fmt.Errorf("postgres: schema %s is at version %d, newer than this build's %d: upgrade stockd", s.schema, newest, len(all))
	}
	for _, m := range all[newest:] {
		if err := s.migrate(ctx, m); err != nil {
			return err
		}
	}
	return s.initPartitions(ctx, partitions)
}

// migrate applies m in a transaction unless it is applied already. The row
// of m in schema_migrations is inserted first, in the same transaction: a
// concurrent Open applying m waits on it, and finds it recorded once the
// first commits (and applies m itself if the first rolls back). Correctness
// does not rest on advisory locks.
func (s *Store) migrate(ctx context.Context, m migration) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING", m.version, m.name)
		if err != nil {
			return fmt.Errorf("postgres: record migration %s: %w", m.name, err)
		}
		if tag.RowsAffected() == 0 {
			return nil // applied by someone else
		}
		if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("postgres: apply migration %s: %w", m.name, err)
		}
		s.log.Info("applied migration", "migration", m.name)
		return nil
	})
}

// initPartitions records the number of partitions of a new store, with a row
// per partition, or checks the one recorded.
func (s *Store) initPartitions(ctx context.Context, partitions int) error {
	n := partitions
	if n == 0 {
		n = DefaultPartitions
	}
	var stored int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO meta (id, partitions) VALUES (1, $1) ON CONFLICT (id) DO NOTHING", n)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			if _, err := tx.Exec(ctx, "INSERT INTO partitions (part) SELECT g FROM generate_series(0, $1::int - 1) AS g ON CONFLICT (part) DO NOTHING", n); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, "SELECT partitions FROM meta WHERE id = 1").Scan(&stored)
	})
	if err != nil {
		return fmt.Errorf("postgres: read the number of partitions: %w", err)
	}
	if stored <= 0 || stored > MaxPartitions {
		return fmt.Errorf("postgres: %w: meta records %d partitions", stockd.ErrCorrupt, stored)
	}
	if partitions != 0 && partitions != stored {
		return fmt.Errorf("postgres: the store in schema %s has %d partitions, not the %d asked for: "+
			"the number of partitions is fixed when a store is created; leave it unset (0) to open this store with its own",
			s.schema, stored, partitions)
	}
	s.partitions = stored
	return nil
}

// Partitions returns the number of partitions, fixed when the store was
// created.
func (s *Store) Partitions() int { return s.partitions }

// GuardsKeys marks the store as a stockd.KeyGuard: idempotency keys are rows
// of a table whose primary key refuses a key already recorded, in the
// transaction of the batch that names it.
func (s *Store) GuardsKeys() {}

// Schema returns the name of the PostgreSQL schema the store lives in.
func (s *Store) Schema() string { return s.schema }

// Close closes the connection pool, waiting for connections in use to be
// returned. Calling it again does nothing and returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}

// check returns errClosed after Close and the context's error if it is done.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// checkPartition rejects a partition out of range.
func (s *Store) checkPartition(p int) error {
	if p < 0 || p >= s.partitions {
		return stockd.Errorf(stockd.CodeInvalid, "partition %d out of range [0, %d)", p, s.partitions)
	}
	return nil
}

// isCode reports whether err is a PostgreSQL error with one of the SQLSTATE
// codes.
func isCode(err error, codes ...string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	for _, c := range codes {
		if pgErr.Code == c {
			return true
		}
	}
	return false
}

// retryable reports whether err is a PostgreSQL error after which the whole
// transaction was rolled back and may simply run again: a serialization
// failure (40001, also CockroachDB's "restart transaction") or a deadlock
// (40P01).
func retryable(err error) bool {
	return isCode(err, "40001", "40P01")
}

// backoff sleeps before retry attempt (counted from 1), or returns the
// context's error.
func backoff(ctx context.Context, attempt int) error {
	d := time.Millisecond << min(attempt, 8) // 2 ms ... 256 ms
	d = d/2 + time.Duration(time.Now().UnixNano()%int64(d/2+1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DropSchema drops schema of the database dsn names, with every table in it:
// a store and all it holds. Tests and benchmarks that make a store of their
// own drop it with this when they end.
func DropSchema(ctx context.Context, dsn, schema string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("dropping schema %s: %w", schema, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("dropping schema %s: %w", schema, err)
	}
	return nil
}
