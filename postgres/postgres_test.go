package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/internal/flashsale"
	"github.com/stockd/stockd/storetest"
)

var ctx = context.Background()

// dsnEnv names the environment variable holding the test database's URL.
const dsnEnv = "STOCKD_TEST_POSTGRES"

// testLogger shows the store's warnings only.
var testLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// testDSN returns the test database's URL, or skips the test without one.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skipf("the PostgreSQL store's tests need a database: set %s to its URL (e.g. postgres://user@localhost:5432/test?sslmode=disable); every test works in a schema of its own, dropped when it ends", dsnEnv)
	}
	return dsn
}

// newSchema returns the name of a fresh schema, which is dropped (with
// everything in it) when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "stockd_test_" + hex.EncodeToString(b[:])
	dropWhenDone(t, schema)
	return schema
}

// dropWhenDone drops schema when t ends, after the stores the test closes in
// its own cleanups (registered later, so run earlier).
func dropWhenDone(t testing.TB, schema string) {
	dsn := testDSN(t)
	t.Cleanup(func() {
		if err := DropSchema(context.Background(), dsn, schema); err != nil {
			t.Error(err)
		}
	})
}

// openSchema opens the store in schema.
func openSchema(t testing.TB, schema string, opts Options) (*Store, error) {
	t.Helper()
	opts.Schema = schema
	if opts.Logger == nil {
		opts.Logger = testLogger
	}
	return Open(ctx, testDSN(t), opts)
}

// mustOpen opens the store in schema, failing the test on error, and closes
// it when the test ends.
func mustOpen(t testing.TB, schema string, opts Options) *Store {
	t.Helper()
	s, err := openSchema(t, schema, opts)
	if err != nil {
		t.Fatalf("Open(schema %s): %v", schema, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// dirSchemas maps the directories the suite's reopen tests name to schemas:
// a directory is where a store lives for the embedded store, a schema for
// this one. Each schema is dropped when the test that first named it ends.
var dirSchemas sync.Map // dir -> schema

func schemaOf(t *testing.T, dir string) string {
	sum := sha256.Sum256([]byte(dir))
	schema := "stockd_test_" + hex.EncodeToString(sum[:6])
	if _, loaded := dirSchemas.LoadOrStore(dir, schema); !loaded {
		dropWhenDone(t, schema)
	}
	return schema
}

func TestConformance(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(t *testing.T, partitions int) stockd.Store {
		s, err := openSchema(t, newSchema(t), Options{Partitions: partitions})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestReopen(t *testing.T) {
	testDSN(t)
	storetest.RunReopen(t, func(t *testing.T, dir string, partitions int) (stockd.Store, error) {
		return openSchema(t, schemaOf(t, dir), Options{Partitions: partitions})
	})
}

func TestTrimmer(t *testing.T) {
	testDSN(t)
	storetest.RunTrimmer(t, func(t *testing.T, dir string, partitions int) (storetest.TrimStore, error) {
		return openSchema(t, schemaOf(t, dir), Options{Partitions: partitions})
	})
}

func TestRecords(t *testing.T) {
	testDSN(t)
	storetest.RunRecords(t, func(t *testing.T, dir string) (storetest.RecordStore, error) {
		return openSchema(t, schemaOf(t, dir), Options{Partitions: 2})
	})
}

// readAll reads all of partition p.
func readAll(t testing.TB, s stockd.Log, p int) []stockd.Event {
	t.Helper()
	var all []stockd.Event
	for {
		page, err := s.ReadPartition(ctx, p, uint64(len(all)), 100)
		if err != nil {
			t.Fatalf("ReadPartition(%d, %d): %v", p, len(all), err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

// wantLog fails the test unless partition p holds exactly the events with
// the command ids want, at positions 1, 2, ...
func wantLog(t testing.TB, s stockd.Log, p int, want ...string) {
	t.Helper()
	all := readAll(t, s, p)
	got := make([]string, len(all))
	for i, e := range all {
		got[i] = e.CommandID
		if e.Position != uint64(i+1) {
			t.Fatalf("partition %d: event %d at position %d", p, i, e.Position)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("partition %d holds %v, want %v", p, got, want)
	}
}

// batch returns a batch of n events of partition p after head, whose command
// ids are name-0, name-1, ...
func batch(p int, head uint64, n int, name string) stockd.Batch {
	events := storetest.Events(p, head, n)
	for i := range events {
		events[i].CommandID = fmt.Sprintf("%s-%d", name, i)
	}
	return stockd.Batch{Events: events}
}

// ids returns the command ids batch gives its n events.
func ids(name string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", name, i)
	}
	return out
}

// TestStaleWriterRefused: two stores on one schema are two processes; the
// one whose idea of the head is stale is refused and writes nothing, and a
// key one recorded is refused to the other.
func TestStaleWriterRefused(t *testing.T) {
	schema := newSchema(t)
	a := mustOpen(t, schema, Options{Partitions: 2})
	b := mustOpen(t, schema, Options{})
	if b.Partitions() != 2 {
		t.Fatalf("second process sees %d partitions, want 2", b.Partitions())
	}
	first := batch(0, 0, 2, "a1")
	first.Keys = []stockd.KeyRecord{{Key: "receipt:r-1", Partition: 0, Position: 1, Fingerprint: 1}}
	if err := a.Append(ctx, 0, 0, first); err != nil {
		t.Fatal(err)
	}
	// b still believes the head is 0.
	err := b.Append(ctx, 0, 0, batch(0, 0, 1, "b-stale"))
	if !stockd.IsCode(err, stockd.CodeConflict) {
		t.Fatalf("stale Append = %v, want a conflict", err)
	}
	_, err = b.BeginAppendGroup(ctx, []stockd.Append{{Partition: 1, Expected: 0, Batch: batch(1, 0, 1, "b-group")}, {Partition: 0, Expected: 1, Batch: batch(0, 1, 1, "b-group")}})
	if !stockd.IsCode(err, stockd.CodeConflict) {
		t.Fatalf("group with a stale member = %v, want a conflict", err)
	}
	wantLog(t, b, 1)
	// b reloads the head and appends; now a is stale.
	if err := b.Append(ctx, 0, 2, batch(0, 2, 1, "b1")); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(ctx, 0, 2, batch(0, 2, 1, "a-stale")); !stockd.IsCode(err, stockd.CodeConflict) {
		t.Fatalf("stale Append = %v, want a conflict", err)
	}
	// The key a recorded is refused to b, in another partition too.
	dup := batch(1, 0, 1, "b-dup")
	dup.Keys = []stockd.KeyRecord{{Key: "receipt:r-1", Partition: 1, Position: 1}}
	if err := b.Append(ctx, 1, 0, dup); !stockd.IsCode(err, stockd.CodeConflict) {
		t.Fatalf("Append repeating a key the other process recorded = %v, want a conflict", err)
	}
	want := append(ids("a1", 2), ids("b1", 1)...)
	wantLog(t, a, 0, want...)
	wantLog(t, b, 0, want...)
	wantLog(t, a, 1)
}

// commitHook returns hooks whose commit runs do for each attempt, counting
// the attempts.
func commitHook(attempts *atomic.Int32, do func(ctx context.Context, tx pgx.Tx, attempt int) error) *hooks {
	return &hooks{commit: func(ctx context.Context, tx pgx.Tx, attempt int) error {
		attempts.Add(1)
		return do(ctx, tx, attempt)
	}}
}

// lostAnswer is what a client sees when the connection drops while COMMIT is
// in flight.
var lostAnswer = fmt.Errorf("commit: %w", io.ErrUnexpectedEOF)

// TestAmbiguousCommit: a COMMIT whose answer is lost is retried and reported
// truthfully, never applied twice: success if it had committed or the retry
// commits it, a conflict if another writer took the positions meanwhile.
func TestAmbiguousCommit(t *testing.T) {
	t.Run("CommittedAnswerLost", func(t *testing.T) {
		schema := newSchema(t)
		plain := mustOpen(t, schema, Options{Partitions: 2})
		var attempts atomic.Int32
		s := mustOpen(t, schema, Options{hooks: commitHook(&attempts, func(ctx context.Context, tx pgx.Tx, attempt int) error {
			if err := tx.Commit(ctx); err != nil || attempt > 0 {
				return err
			}
			return lostAnswer
		})})
		b := batch(0, 0, 3, "x")
		b.Keys = []stockd.KeyRecord{{Key: "k-1", Partition: 0, Position: 1}}
		b.Retired = []stockd.RetiredRecord{{Key: "reservation:old", Partition: 0, Position: 2, Data: []byte{7}}}
		if err := s.Append(ctx, 0, 0, b); err != nil {
			t.Fatalf("Append whose commit answer was lost: %v", err)
		}
		if n := attempts.Load(); n != 1 {
			t.Errorf("%d commits attempted, want 1 (the retry was refused by the head and found its batch)", n)
		}
		wantLog(t, plain, 0, ids("x", 3)...)
		if _, ok, err := plain.LookupRetired(ctx, "reservation:old"); err != nil || !ok {
			t.Errorf("retired record = %v, %v", ok, err)
		}
		dup := batch(0, 3, 1, "y")
		dup.Keys = []stockd.KeyRecord{{Key: "k-1", Partition: 0, Position: 4}}
		if err := plain.Append(ctx, 0, 3, dup); !stockd.IsCode(err, stockd.CodeConflict) {
			t.Errorf("the key of the batch was not recorded once: %v", err)
		}
	})
	t.Run("NotCommittedAnswerLost", func(t *testing.T) {
		schema := newSchema(t)
		plain := mustOpen(t, schema, Options{Partitions: 2})
		var attempts atomic.Int32
		s := mustOpen(t, schema, Options{hooks: commitHook(&attempts, func(ctx context.Context, tx pgx.Tx, attempt int) error {
			if attempt == 0 {
				_ = tx.Rollback(ctx)
				return lostAnswer
			}
			return tx.Commit(ctx)
		})})
		if err := s.Append(ctx, 1, 0, batch(1, 0, 2, "x")); err != nil {
			t.Fatalf("Append whose first commit was lost: %v", err)
		}
		if n := attempts.Load(); n != 2 {
			t.Errorf("%d commits attempted, want 2", n)
		}
		wantLog(t, plain, 1, ids("x", 2)...)
	})
	t.Run("AnotherWriterWon", func(t *testing.T) {
		schema := newSchema(t)
		plain := mustOpen(t, schema, Options{Partitions: 2})
		var attempts atomic.Int32
		s := mustOpen(t, schema, Options{hooks: commitHook(&attempts, func(ctx context.Context, tx pgx.Tx, attempt int) error {
			if attempt > 0 {
				return tx.Commit(ctx)
			}
			_ = tx.Rollback(ctx)
			if err := plain.Append(ctx, 0, 0, batch(0, 0, 2, "other")); err != nil {
				t.Errorf("the other writer's Append: %v", err)
			}
			return lostAnswer
		})})
		err := s.Append(ctx, 0, 0, batch(0, 0, 2, "x"))
		if !stockd.IsCode(err, stockd.CodeConflict) {
			t.Fatalf("Append whose positions another writer took = %v, want a conflict", err)
		}
		wantLog(t, plain, 0, ids("other", 2)...)
	})
	t.Run("Group", func(t *testing.T) {
		schema := newSchema(t)
		plain := mustOpen(t, schema, Options{Partitions: 3})
		var attempts atomic.Int32
		s := mustOpen(t, schema, Options{hooks: commitHook(&attempts, func(ctx context.Context, tx pgx.Tx, attempt int) error {
			if err := tx.Commit(ctx); err != nil || attempt > 0 {
				return err
			}
			return lostAnswer
		})})
		if err := plain.Append(ctx, 2, 0, batch(2, 0, 1, "before")); err != nil {
			t.Fatal(err)
		}
		wait, err := s.BeginAppendGroup(ctx, []stockd.Append{
			{Partition: 2, Expected: 1, Batch: batch(2, 1, 2, "g2")},
			{Partition: 0, Expected: 0, Batch: batch(0, 0, 1, "g0")},
		})
		if err != nil {
			t.Fatalf("BeginAppendGroup whose commit answer was lost: %v", err)
		}
		if err := wait(); err != nil {
			t.Fatalf("wait: %v", err)
		}
		wantLog(t, plain, 0, ids("g0", 1)...)
		wantLog(t, plain, 2, append([]string{"before-0"}, ids("g2", 2)...)...)
	})
	t.Run("Unresolvable", func(t *testing.T) {
		// Every commit's answer is lost and none commits: the store
		// gives up saying the outcome is unknown, not with a conflict.
		schema := newSchema(t)
		var attempts atomic.Int32
		s := mustOpen(t, schema, Options{Partitions: 1, hooks: commitHook(&attempts, func(ctx context.Context, tx pgx.Tx, attempt int) error {
			_ = tx.Rollback(ctx)
			return lostAnswer
		})})
		err := s.Append(ctx, 0, 0, batch(0, 0, 1, "x"))
		if err == nil || stockd.IsCode(err, stockd.CodeConflict) || !strings.Contains(err.Error(), "outcome unknown") {
			t.Fatalf("Append whose commits are all lost = %v, want an error saying the outcome is unknown", err)
		}
		wantLog(t, s, 0)
	})
}

// TestConnectionKilledAtCommit: the server ends the session of an append
// just before its COMMIT (pg_terminate_backend, as a failover or an
// administrator would): the transaction is lost, the append runs again on
// another connection, and its batch is written once.
func TestConnectionKilledAtCommit(t *testing.T) {
	schema := newSchema(t)
	plain := mustOpen(t, schema, Options{Partitions: 1})
	var attempts atomic.Int32
	s := mustOpen(t, schema, Options{hooks: commitHook(&attempts, func(ctx context.Context, tx pgx.Tx, attempt int) error {
		if attempt == 0 {
			var done bool
			pid := tx.Conn().PgConn().PID()
			if err := plain.pool.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", int(pid)).Scan(&done); err != nil || !done {
				t.Errorf("terminate backend %d: %v, %v", pid, done, err)
			}
		}
		return tx.Commit(ctx)
	})})
	b := batch(0, 0, 2, "x")
	b.Keys = []stockd.KeyRecord{{Key: "k", Partition: 0, Position: 1}}
	if err := s.Append(ctx, 0, 0, b); err != nil {
		t.Fatalf("Append whose session was killed at COMMIT: %v", err)
	}
	if n := attempts.Load(); n != 2 {
		t.Errorf("%d commits attempted, want 2", n)
	}
	wantLog(t, plain, 0, ids("x", 2)...)
	// The store goes on with fresh connections.
	if err := s.Append(ctx, 0, 2, batch(0, 2, 1, "y")); err != nil {
		t.Fatal(err)
	}
	wantLog(t, plain, 0, append(ids("x", 2), "y-0")...)
}

// TestSerializationFailureRetried: a transaction rolled back by a
// serialization failure (40001) or a deadlock (40P01) runs again, and is
// written once.
func TestSerializationFailureRetried(t *testing.T) {
	schema := newSchema(t)
	var attempts atomic.Int32
	s := mustOpen(t, schema, Options{Partitions: 2, hooks: commitHook(&attempts, func(ctx context.Context, tx pgx.Tx, attempt int) error {
		switch attempt {
		case 0:
			_ = tx.Rollback(ctx)
			return &pgconn.PgError{Code: "40001", Message: "could not serialize access (injected)"}
		case 1:
			_ = tx.Rollback(ctx)
			return &pgconn.PgError{Code: "40P01", Message: "deadlock detected (injected)"}
		}
		return tx.Commit(ctx)
	})})
	b := batch(0, 0, 2, "x")
	b.Keys = []stockd.KeyRecord{{Key: "k", Partition: 0, Position: 1}}
	if err := s.Append(ctx, 0, 0, b); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	wantLog(t, s, 0, ids("x", 2)...)

	t.Run("GivesUp", func(t *testing.T) {
		s := mustOpen(t, newSchema(t), Options{Partitions: 1, hooks: commitHook(new(atomic.Int32), func(ctx context.Context, tx pgx.Tx, attempt int) error {
			_ = tx.Rollback(ctx)
			return &pgconn.PgError{Code: "40001", Message: "could not serialize access (injected)"}
		})})
		err := s.Append(ctx, 0, 0, batch(0, 0, 1, "x"))
		if err == nil || stockd.IsCode(err, stockd.CodeConflict) {
			t.Fatalf("Append failing every attempt = %v, want an error other than a conflict", err)
		}
		wantLog(t, s, 0)
	})
	t.Run("ServerErrorAtCommitIsAmbiguous", func(t *testing.T) {
		// An error the server sends in answer to COMMIT does not prove
		// that it did not commit (a session terminated while waiting for
		// synchronous replication has committed locally): the append is
		// checked, not reported failed nor applied again.
		var attempts atomic.Int32
		s := mustOpen(t, newSchema(t), Options{Partitions: 1, hooks: commitHook(&attempts, func(ctx context.Context, tx pgx.Tx, attempt int) error {
			if err := tx.Commit(ctx); err != nil || attempt > 0 {
				return err
			}
			return &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command (injected)"}
		})})
		if err := s.Append(ctx, 0, 0, batch(0, 0, 2, "x")); err != nil {
			t.Fatalf("Append = %v", err)
		}
		if n := attempts.Load(); n != 1 {
			t.Errorf("%d commits attempted, want 1", n)
		}
		wantLog(t, s, 0, ids("x", 2)...)
	})
}

// TestConcurrentOpensMigrateOnce: stores opened at once on a new schema all
// succeed, agree on the partitions, and apply each migration once.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	schema := newSchema(t)
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = openSchema(t, schema, Options{Partitions: 3})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
		if p := stores[i].Partitions(); p != 3 {
			t.Errorf("Open %d: %d partitions", i, p)
		}
	}
	all, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := stores[0].pool.Query(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != len(all) {
		t.Fatalf("schema_migrations holds versions %v, want each of the %d migrations once", versions, len(all))
	}
	for i, v := range versions {
		if v != i+1 {
			t.Fatalf("schema_migrations holds versions %v", versions)
		}
	}
	var parts int
	if err := stores[0].pool.QueryRow(ctx, "SELECT count(*) FROM partitions").Scan(&parts); err != nil || parts != 3 {
		t.Fatalf("partitions table has %d rows (%v), want 3", parts, err)
	}
	// One process appends, another reads.
	if err := stores[1].Append(ctx, 2, 0, batch(2, 0, 2, "x")); err != nil {
		t.Fatal(err)
	}
	wantLog(t, stores[n-1], 2, ids("x", 2)...)
}

// TestOpenRefusesAnotherPartitionCount: the refusal names both numbers and
// why, and changes nothing.
func TestOpenRefusesAnotherPartitionCount(t *testing.T) {
	schema := newSchema(t)
	mustOpen(t, schema, Options{Partitions: 8}).Close()
	s, err := openSchema(t, schema, Options{Partitions: 64})
	if err == nil {
		s.Close()
		t.Fatal("Open of a store of 8 partitions with 64 succeeded")
	}
	for _, want := range []string{schema, "has 8 partitions", "not the 64", "fixed when a store is created"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open with another partition count: %q, want it to say %q", err, want)
		}
	}
	if s := mustOpen(t, schema, Options{}); s.Partitions() != 8 {
		t.Errorf("Partitions() = %d after a refused Open, want 8", s.Partitions())
	}
}

// TestDefaults: a store opened without a number of partitions has
// DefaultPartitions; calls after Close fail.
func TestDefaults(t *testing.T) {
	s := mustOpen(t, newSchema(t), Options{})
	if s.Partitions() != DefaultPartitions {
		t.Errorf("Partitions() = %d, want %d", s.Partitions(), DefaultPartitions)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, 0, 0, batch(0, 0, 1, "x")); err == nil {
		t.Error("Append after Close succeeded")
	}
	if _, err := s.ReadPartition(ctx, 0, 0, 1); err == nil {
		t.Error("ReadPartition after Close succeeded")
	}
}

// TestRows checks what an append leaves in the tables, which the suite
// cannot see: one row per event, a NULL SKU (so outside the partial SKU
// index) for an event without one, the batch id on the first event of each
// append only, and the head in the partitions table.
func TestRows(t *testing.T) {
	s := mustOpen(t, newSchema(t), Options{Partitions: 1})
	log := storetest.NewLog(0)
	log.Append(t, s, "A", "", "B")
	log.Append(t, s, "", "A")
	var events, noSKU, ids, head int
	err := s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE sku IS NULL), count(DISTINCT batch_id),
(SELECT head FROM partitions WHERE part = 0) FROM events`).Scan(&events, &noSKU, &ids, &head)
	if err != nil {
		t.Fatal(err)
	}
	if events != 5 || noSKU != 2 || ids != 2 || head != 5 {
		t.Errorf("%d events, %d without a SKU, %d batch ids, head %d; want 5, 2, 2, 5", events, noSKU, ids, head)
	}
	var firsts []int64
	rows, err := s.pool.Query(ctx, `SELECT pos FROM events WHERE batch_id IS NOT NULL ORDER BY pos`)
	if err == nil {
		firsts, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil || fmt.Sprint(firsts) != "[1 4]" {
		t.Errorf("batch ids on positions %v (%v), want [1 4]", firsts, err)
	}
}

// TestEngineOnPostgres runs the engine on the store (group appends, keys
// guarded by the store): a hot SKU under concurrent reservations sells
// exactly its stock, and a restarted engine recovers it from the database,
// answering a repeated reservation as a replay.
func TestEngineOnPostgres(t *testing.T) {
	schema := newSchema(t)
	s := mustOpen(t, schema, Options{Partitions: 4})
	quiet := slog.New(slog.DiscardHandler)
	e, err := engine.Open(ctx, s, engine.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1, Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r", SKU: "hot", Location: "w1", Quantity: 50}); err != nil {
		t.Fatal(err)
	}
	const callers = 200
	granted, refused := flashsale.Run(t, e, "hot", callers)
	if len(granted) != 50 || refused != callers-50 {
		t.Fatalf("granted %d, refused %d; want 50 and %d", len(granted), refused, callers-50)
	}
	// The engine sent the keys of the accepted commands to the store.
	var keys int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM idempotency_keys").Scan(&keys); err != nil || keys < 51 {
		t.Errorf("%d idempotency keys recorded (%v), want at least the receipt's and the 50 reservations'", keys, err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, schema, Options{})
	e, err = engine.Open(ctx, s, engine.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	sku, err := e.SKU(ctx, "hot", stockd.AsOf{})
	if err != nil || sku.Reserved != 50 || sku.Available != 0 {
		t.Fatalf("hot after a restart = %+v, %v; want 50 reserved, none available", sku, err)
	}
	id := granted[0]
	if _, err := e.GetReservation(ctx, id); err != nil {
		t.Fatalf("GetReservation(%s) after a restart: %v", id, err)
	}
	if _, created, err := e.Reserve(ctx, stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: "hot", Quantity: 1}}}); err != nil || created {
		t.Fatalf("repeating reservation %s after a restart = created %v, %v; want a replay", id, created, err)
	}
}

// BenchmarkAppend measures appends of N events per transaction (one commit)
// to one hot partition by one writer, and groups of one batch for each of 8
// partitions in one transaction.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			s := mustOpen(b, newSchema(b), Options{Partitions: 1})
			template := storetest.Events(0, 0, size)
			events := make([]stockd.Event, size)
			var head uint64
			n := 0
			for b.Loop() {
				copy(events, template)
				for i := range events {
					pos := head + uint64(i) + 1
					events[i].Position = pos
					events[i].Version = (pos-1)/3 + 1 // storetest.Events' three SKUs
				}
				if err := s.Append(ctx, 0, head, stockd.Batch{Events: events}); err != nil {
					b.Fatal(err)
				}
				head += uint64(size)
				n++
			}
			b.ReportMetric(float64(n*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
	for _, g := range []struct{ parts, size int }{{8, 100}, {64, 1}} {
		benchmarkGroup(b, g.parts, g.size)
	}
}

// benchmarkGroup appends size events to each of parts partitions in one
// group: 8x100 is a few busy partitions, 64x1 the uniform load of a shop
// whose carts spread over every partition.
func benchmarkGroup(b *testing.B, parts, size int) {
	b.Run(fmt.Sprintf("group=%dx%d", parts, size), func(b *testing.B) {
		s := mustOpen(b, newSchema(b), Options{Partitions: parts})
		heads := make([]uint64, parts)
		appends := make([]stockd.Append, parts)
		n := 0
		for b.Loop() {
			for p := range appends {
				appends[p] = stockd.Append{Partition: p, Expected: heads[p], Batch: stockd.Batch{Events: storetest.Events(p, heads[p], size)}}
				heads[p] += uint64(size)
			}
			wait, err := s.BeginAppendGroup(ctx, appends)
			if err == nil {
				err = wait()
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(n*parts*size)/b.Elapsed().Seconds(), "events/s")
	})
}

func TestLeases(t *testing.T) {
	testDSN(t)
	storetest.RunLeases(t, func(t *testing.T) (storetest.LeaseStore, error) {
		return openSchema(t, newSchema(t), Options{Partitions: 2})
	})
}

// TestAStaleOwnerPausedPastItsLeaseCannotAppend: node A (one process) holds
// partition 0, pauses past its lease, node B (another process on the same
// schema) takes the partition over and appends; A's appends with its old
// lease are refused, and B's events are intact.
func TestAStaleOwnerPausedPastItsLeaseCannotAppend(t *testing.T) {
	schema := newSchema(t)
	a := mustOpen(t, schema, Options{Partitions: 2})
	b := mustOpen(t, schema, Options{})
	storetest.StaleOwnerCannotAppend(t, a, b)
}

// TestATakeoverRacingAppendsNeverLosesAnAcknowledgedBatch: the same as the
// suite's test, with the two nodes in two processes.
func TestATakeoverRacingAppendsNeverLosesAnAcknowledgedBatch(t *testing.T) {
	schema := newSchema(t)
	a := mustOpen(t, schema, Options{Partitions: 2})
	b := mustOpen(t, schema, Options{})
	storetest.TakeoverRacingAppend(t, a, b)
}

// TestNodesNotSeenWithinTheLivenessWindowAreNotListed: a node that stops
// sending heartbeats leaves Nodes once the window passes by the database's
// clock; one that goes on stays.
func TestNodesNotSeenWithinTheLivenessWindowAreNotListed(t *testing.T) {
	s := mustOpen(t, newSchema(t), Options{Partitions: 1, NodeLiveness: 300 * time.Millisecond})
	for _, id := range []string{"gone", "alive"} {
		if err := s.Heartbeat(ctx, stockd.Node{ID: id, URL: "http://" + id}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := s.Heartbeat(ctx, stockd.Node{ID: "alive", URL: "http://alive"}); err != nil {
			t.Fatal(err)
		}
		nodes, err := s.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, n := range nodes {
			listed = append(listed, n.ID)
		}
		if fmt.Sprint(listed) == "[alive]" {
			break
		}
		if fmt.Sprint(listed) != "[alive gone]" {
			t.Fatalf("Nodes lists %v", listed)
		}
		if time.Now().After(deadline) {
			t.Fatalf("a node silent for 10s is still listed with a 300ms window")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAmbiguousCommitThenLeaseLost: an append carrying a lease commits, its
// answer is lost, and the lease is taken over before the retry: the retry's
// fence refuses it, and the batch id then shows that the first attempt had
// committed, so the append succeeds (it is reported once, and is in the log
// the new owner reads). An append whose lost commit had not committed is
// refused with lease_lost.
func TestAmbiguousCommitThenLeaseLost(t *testing.T) {
	for _, committedFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("committed=%v", committedFirst), func(t *testing.T) {
			schema := newSchema(t)
			plain := mustOpen(t, schema, Options{Partitions: 1})
			var attempts atomic.Int32
			var lease stockd.Lease
			s := mustOpen(t, schema, Options{hooks: commitHook(&attempts, func(ctx context.Context, tx pgx.Tx, attempt int) error {
				if attempt > 0 {
					return tx.Commit(ctx)
				}
				if committedFirst {
					if err := tx.Commit(ctx); err != nil {
						return err
					}
				} else {
					_ = tx.Rollback(ctx)
				}
				// The lease ends and another node takes it over
				// while the answer is lost.
				if err := plain.ReleaseLease(ctx, lease); err != nil {
					t.Errorf("ReleaseLease: %v", err)
				}
				if _, ok, err := plain.AcquireLease(ctx, 0, "other", time.Minute); err != nil || !ok {
					t.Errorf("takeover: %v, %v", ok, err)
				}
				return lostAnswer
			})})
			var ok bool
			var err error
			lease, ok, err = s.AcquireLease(ctx, 0, "me", time.Minute)
			if err != nil || !ok {
				t.Fatalf("AcquireLease: %v, %v", ok, err)
			}
			b := batch(0, 0, 2, "x")
			b.Lease = &lease
			err = s.Append(ctx, 0, 0, b)
			if committedFirst {
				if err != nil {
					t.Fatalf("Append that committed before its lease was taken over = %v, want success", err)
				}
				wantLog(t, plain, 0, ids("x", 2)...)
			} else {
				if !stockd.IsCode(err, stockd.CodeLeaseLost) {
					t.Fatalf("Append that did not commit before its lease was taken over = %v, want %s", err, stockd.CodeLeaseLost)
				}
				wantLog(t, plain, 0)
			}
			if n := attempts.Load(); n != 1 {
				t.Errorf("%d commits attempted, want 1 (the retry is refused by the lease)", n)
			}
		})
	}
}

// TestATakeoverWaitsForAnAppendHoldingTheLease: an append whose fence has
// passed holds its lease row until it commits; a takeover of the expired
// lease meanwhile waits for it (the database shows it blocked by the
// append's session) and completes after the commit, and the new owner then
// reads the append. The takeover cannot commit between the fence and the
// append's commit.
func TestATakeoverWaitsForAnAppendHoldingTheLease(t *testing.T) {
	schema := newSchema(t)
	plain := mustOpen(t, schema, Options{Partitions: 1})
	type takeover struct {
		lease stockd.Lease
		ok    bool
		err   error
	}
	took := make(chan takeover, 1)
	var lease stockd.Lease
	s := mustOpen(t, schema, Options{hooks: commitHook(new(atomic.Int32), func(ctx context.Context, tx pgx.Tx, attempt int) error {
		if attempt > 0 {
			return tx.Commit(ctx)
		}
		// The append's fence passed; its lease now expires by the
		// database's clock, and another node tries to take it.
		storetest.WaitExpired(t, plain, lease)
		go func() {
			l, ok, err := plain.AcquireLease(ctx, 0, "b", time.Minute)
			took <- takeover{l, ok, err}
		}()
		pid := tx.Conn().PgConn().PID()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var blocked int
			if err := plain.pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))", int(pid)).Scan(&blocked); err != nil {
				t.Errorf("pg_stat_activity: %v", err)
				break
			}
			if blocked > 0 {
				break
			}
			select {
			case r := <-took:
				t.Errorf("the takeover completed (%+v) while the append held the lease", r)
				took <- r
				return tx.Commit(ctx)
			default:
			}
			if time.Now().After(deadline) {
				t.Errorf("the takeover is not blocked by the append after 10s")
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		return tx.Commit(ctx)
	})})
	var ok bool
	var err error
	lease, ok, err = s.AcquireLease(ctx, 0, "a", 300*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("AcquireLease: %v, %v", ok, err)
	}
	b := batch(0, 0, 2, "x")
	b.Lease = &lease
	if err := s.Append(ctx, 0, 0, b); err != nil {
		t.Fatalf("Append holding its lease: %v", err)
	}
	r := <-took
	if r.err != nil || !r.ok || r.lease.Epoch != lease.Epoch+1 {
		t.Fatalf("takeover after the append = %+v, want the lease at epoch %d", r, lease.Epoch+1)
	}
	wantLog(t, plain, 0, ids("x", 2)...)
	b = batch(0, 2, 1, "late")
	b.Lease = &lease
	if err := s.Append(ctx, 0, 2, b); !stockd.IsCode(err, stockd.CodeLeaseLost) {
		t.Fatalf("Append with the lease taken over = %v, want %s", err, stockd.CodeLeaseLost)
	}
	wantLog(t, plain, 0, ids("x", 2)...)
}
