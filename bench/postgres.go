package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stockd/stockd/postgres"
)

// The SQL of the PostgreSQL peers: the usual ways to hold stock without
// stockd, run against the same workload in the same run so that the ratios
// compare like with like.
const (
	// pg-rowlock: one row per SKU, one statement per reservation in its own
	// (autocommit) transaction. The row lock serialises reservations of a
	// SKU, and each costs one commit (one WAL flush) while the lock is held:
	// the cost stockd's group commit exists to avoid.
	rowlockSchema = `CREATE TABLE stock (sku text PRIMARY KEY, available bigint NOT NULL)`
	rowlockStock  = `INSERT INTO stock (sku, available) SELECT CASE WHEN $3::bool THEN 'hot' ELSE 'sku-' || g END, $1::bigint FROM generate_series(0, $2::int - 1) g`
	rowlockOp     = `UPDATE stock SET available = available - $2 WHERE sku = $1 AND available >= $2`

	// pg-events: an append-only event table with optimistic concurrency on
	// (sku, version), and a head row per SKU (latest version and available
	// units) maintained in the same transaction, so that a reservation
	// reads one row instead of summing a SKU's history. A reservation reads
	// the head (version v), checks availability, and appends event v+1
	// together with the head update in one statement; if another
	// reservation appended v+1 first, the primary key refuses the event
	// (23505 unique_violation) and the reservation starts again from the
	// read. Retries are counted.
	eventsSchema = `CREATE TABLE stock_events (sku text NOT NULL, version bigint NOT NULL, delta bigint NOT NULL, PRIMARY KEY (sku, version));
CREATE TABLE stock_heads (sku text PRIMARY KEY, version bigint NOT NULL, available bigint NOT NULL)`
	eventsStockEvents = `INSERT INTO stock_events (sku, version, delta) SELECT CASE WHEN $3::bool THEN 'hot' ELSE 'sku-' || g END, 1, $1::bigint FROM generate_series(0, $2::int - 1) g`
	eventsStockHeads  = `INSERT INTO stock_heads (sku, version, available) SELECT sku, version, delta FROM stock_events`
	eventsRead        = `SELECT version, available FROM stock_heads WHERE sku = $1`
	eventsAppend      = `WITH e AS (INSERT INTO stock_events (sku, version, delta) VALUES ($1, $2, $3))
UPDATE stock_heads SET version = $2, available = available + $3 WHERE sku = $1 AND version = $2 - 1`
)

// maxConflicts bounds the retries of one pg-events reservation; past it the
// operation counts as failed. Someone always wins a conflict, so this only
// guards against a client starved for the whole run.
const maxConflicts = 10_000

// PG is a PostgreSQL peer target: "pg-rowlock" or "pg-events". It creates its
// own schema (SchemaName) on first use, works only inside it
// (search_path), and drops it on Close.
type PG struct {
	name   string
	dsn    string
	events bool
	schema string
	admin  *pgx.Conn
}

// SchemaName returns a new name for a schema the bench works in:
// stockd_bench_<process id>_<random>, so that a run (or a test) can tell the
// schemas it made from those of another run on the same database.
func SchemaName() string {
	return fmt.Sprintf("stockd_bench_%d_%s", os.Getpid(), randomID())
}

// NewPGRowLock returns the "pg-rowlock" target on the database at dsn.
func NewPGRowLock(dsn string) *PG {
	return &PG{name: "pg-rowlock", dsn: dsn, schema: SchemaName()}
}

// NewPGEvents returns the "pg-events" target on the database at dsn.
func NewPGEvents(dsn string) *PG {
	return &PG{name: "pg-events", dsn: dsn, events: true, schema: SchemaName()}
}

// Name implements Target.
func (p *PG) Name() string { return p.name }

// OpsPerRequest implements Target.
func (p *PG) OpsPerRequest() int { return 1 }

// Schema returns the name of the schema the target works in.
func (p *PG) Schema() string { return p.schema }

// connect opens one connection whose search_path is the target's schema.
func (p *PG) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.dsn)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["search_path"] = p.schema
	cfg.RuntimeParams["application_name"] = "stockd-bench"
	return pgx.ConnectConfig(ctx, cfg)
}

// Prepare creates the schema on first use, then (re)stocks the workload.
func (p *PG) Prepare(ctx context.Context, w Workload) error {
	if p.admin == nil {
		c, err := p.connect(ctx)
		if err != nil {
			return err
		}
		p.admin = c
		ddl := rowlockSchema
		if p.events {
			ddl = eventsSchema
		}
		if _, err := c.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{p.schema}.Sanitize()+";"+ddl); err != nil {
			return err
		}
	}
	stmts := []string{`TRUNCATE stock`}
	if p.events {
		stmts = []string{`TRUNCATE stock_events, stock_heads`}
	}
	tx, err := p.admin.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	if p.events {
		if _, err := tx.Exec(ctx, eventsStockEvents, w.Stock, w.SKUs, w.hot()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, eventsStockHeads); err != nil {
			return err
		}
	} else if _, err := tx.Exec(ctx, rowlockStock, w.Stock, w.SKUs, w.hot()); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	_, err = p.admin.Exec(ctx, "ANALYZE")
	return err
}

// freeConns returns how many more client connections the server accepts,
// less a margin for other users.
func (p *PG) freeConns(ctx context.Context) (free, max int, err error) {
	err = p.admin.QueryRow(ctx, `SELECT current_setting('max_connections')::int,
		current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
		- (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int`).Scan(&max, &free)
	return free - 5, max, err
}

// Start opens a pool of one connection per client — the pool size a service
// with that many concurrent requests would use — capped by what the server's
// max_connections allows (then clients queue for a connection, as they
// would in such a service, and the report says so).
func (p *PG) Start(ctx context.Context, w Workload, clients int) (*Level, error) {
	if p.admin == nil {
		return nil, errors.New("Start before Prepare")
	}
	free, maxConns, err := p.freeConns(ctx)
	if err != nil {
		return nil, err
	}
	size := min(clients, max(free, 1))
	pool := &pgPool{p: p, ch: make(chan *pgx.Conn, size)}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 16)
	)
	for range size {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := p.connect(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			pool.all = append(pool.all, c)
			pool.ch <- c
		})
	}
	wg.Wait()
	if first != nil {
		pool.close()
		return nil, first
	}
	l := &Level{Workers: make([]Worker, clients), Conns: size, Stop: func() error { pool.close(); return nil }}
	if size < clients {
		l.Note = fmt.Sprintf("pool capped at %d connections by max_connections=%d; clients wait for a connection", size, maxConns)
	}
	for i := range l.Workers {
		l.Workers[i] = &pgWorker{pool: pool, w: w, events: p.events, rnd: newRand()}
	}
	return l, nil
}

// Close drops the schema and everything in it.
func (p *PG) Close() error {
	if p.admin == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := p.admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{p.schema}.Sanitize()+" CASCADE")
	p.admin.Close(ctx)
	p.admin = nil
	return err
}

// pgPool is a fixed set of connections handed out through a channel. (pgxpool
// would do the same; this keeps the dependency to pgx itself.)
type pgPool struct {
	p   *PG
	ch  chan *pgx.Conn
	mu  sync.Mutex
	all []*pgx.Conn
}

func (pp *pgPool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case c := <-pp.ch:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release returns c to the pool, replacing it first if an error closed it.
func (pp *pgPool) release(ctx context.Context, c *pgx.Conn) {
	if c.IsClosed() && ctx.Err() == nil {
		if nc, err := pp.p.connect(ctx); err == nil {
			pp.mu.Lock()
			pp.all = append(pp.all, nc)
			pp.mu.Unlock()
			c = nc
		}
	}
	pp.ch <- c
}

// close closes every connection and waits until the server has ended their
// backends, so that the next level's count of free connections does not
// include them.
func (pp *pgPool) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pp.mu.Lock()
	defer pp.mu.Unlock()
	var pids []int64
	for _, c := range pp.all {
		pids = append(pids, int64(c.PgConn().PID()))
		c.Close(ctx)
	}
	pp.all = nil
	for pp.p.admin != nil && len(pids) > 0 {
		var n int
		err := pp.p.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::bigint[])`, pids).Scan(&n)
		if err != nil || n == 0 {
			return
		}
		wait(ctx, 5*time.Millisecond)
	}
}

// pgWorker is one client of a PostgreSQL target.
type pgWorker struct {
	pool   *pgPool
	w      Workload
	events bool
	rnd    interface{ IntN(int) int }
}

func (k *pgWorker) Do(ctx context.Context, n int) Outcome {
	var out Outcome
	c, err := k.pool.acquire(ctx)
	if err != nil {
		return Outcome{Other: n, Err: err}
	}
	defer k.pool.release(ctx, c)
	for range n {
		sku := k.w.SKU(0)
		if k.w.SKUs > 1 {
			sku = k.w.SKU(k.rnd.IntN(k.w.SKUs))
		}
		if k.events {
			k.reserveEvents(ctx, c, sku, 1, &out)
		} else {
			k.reserveRowLock(ctx, c, sku, 1, &out)
		}
	}
	return out
}

func (k *pgWorker) reserveRowLock(ctx context.Context, c *pgx.Conn, sku string, q int64, out *Outcome) {
	tag, err := c.Exec(ctx, rowlockOp, sku, q)
	switch {
	case err != nil:
		out.fail(err)
	case tag.RowsAffected() == 1:
		out.OK++
	default:
		out.Insufficient++
	}
}

func (k *pgWorker) reserveEvents(ctx context.Context, c *pgx.Conn, sku string, q int64, out *Outcome) {
	for conflicts := 0; ; conflicts++ {
		if conflicts > maxConflicts {
			out.fail(fmt.Errorf("gave up after %d version conflicts", maxConflicts))
			return
		}
		var version, available int64
		if err := c.QueryRow(ctx, eventsRead, sku).Scan(&version, &available); err != nil {
			out.fail(err)
			return
		}
		if available < q {
			out.Insufficient++
			return
		}
		tag, err := c.Exec(ctx, eventsAppend, sku, version+1, -q)
		if err != nil {
			var pe *pgconn.PgError
			// unique_violation: someone appended version+1 first;
			// serialization_failure and deadlock_detected are retried
			// by every client of such a design too.
			if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "40001" || pe.Code == "40P01") {
				out.Retries++
				continue
			}
			out.fail(err)
			return
		}
		if tag.RowsAffected() != 1 {
			// The event went in but the head had moved: impossible while
			// every writer appends an event first.
			out.fail(errors.New("stock head moved without an event"))
			return
		}
		out.OK++
		return
	}
}

// fail counts one failed operation.
func (o *Outcome) fail(err error) {
	o.Other++
	if o.Err == nil {
		o.Err = err
	}
}

// dropSchema drops schema of the database dsn names, and everything in it:
// the store of the stockd-pg targets' server.
func dropSchema(dsn, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return postgres.DropSchema(ctx, dsn, schema)
}
