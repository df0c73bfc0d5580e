package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stockd/stockd"
)

// maxAttempts bounds the attempts of one append: serialization failures,
// deadlocks and lost connections are retried, a few times, with backoff.
const maxAttempts = 8

// The statements of an append. The head updates come first, in one
// statement, then one multi-row insert per table. Two groups sharing
// partitions may lock their rows in different orders and deadlock; the
// deadlock (40P01) rolls one back, which is retried. Within a process one
// writer appends at a time, and once partitions are leased to one node
// each, groups of different processes will share none.
const (
	sqlUpdateHead = `UPDATE partitions SET head = $1 WHERE part = $2 AND head = $3`
	// sqlUpdateHeads moves the heads of several partitions in one
	// statement, each only from its expected head: a group of appends to
	// many partitions pays one statement, not one a partition.
	sqlUpdateHeads = `UPDATE partitions p SET head = v.head
FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS v(head, part, expected)
WHERE p.part = v.part AND p.head = v.expected`
	sqlInsertEvents = `INSERT INTO events (part, pos, sku, version, batch_id, data)
SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[], $4::bigint[], $5::bytea[], $6::bytea[])`
	sqlInsertKeys = `INSERT INTO idempotency_keys (key, part, pos, fingerprint)
SELECT * FROM unnest($1::bytea[], $2::int[], $3::bigint[], $4::bigint[])`
	sqlUpsertRetired = `INSERT INTO retired (key, part, pos, data)
SELECT * FROM unnest($1::bytea[], $2::int[], $3::bigint[], $4::bytea[])
ON CONFLICT (key) DO UPDATE SET part = excluded.part, pos = excluded.pos, data = excluded.data`
	sqlBatchID = `SELECT batch_id FROM events WHERE part = $1 AND pos = $2`
)

// Append durably appends batch to partition p if its head is expected: one
// transaction, committed before Append returns.
func (s *Store) Append(ctx context.Context, p int, expected uint64, batch stockd.Batch) error {
	return s.appendGroup(ctx, []stockd.Append{{Partition: p, Expected: expected, Batch: batch}})
}

// BeginAppendGroup appends the appends of several partitions in one
// transaction, checked as stockd.GroupAppender says. The transaction is
// committed before it returns, so wait only reports that outcome: the store
// does not pipeline (a group waits for the commit of the one before it), but
// it pays one commit for the whole group.
func (s *Store) BeginAppendGroup(ctx context.Context, appends []stockd.Append) (func() error, error) {
	if err := s.appendGroup(ctx, appends); err != nil {
		return nil, err
	}
	return func() error { return nil }, nil
}

// group is an append transaction, ready to run: the head updates and the rows
// of each table, as the arrays the inserts take.
type group struct {
	heads []headUpdate
	// leases are the leases the appends carry, one per partition, in
	// partition order: the fence checked before the heads move.
	leases     []stockd.Lease
	leasePart  []int32
	leaseNode  []string
	leaseEpoch []int64
	// The first event of the first append, which carries id.
	firstPart int
	firstPos  uint64
	id        []byte

	evPart    []int32
	evPos     []int64
	evSKU     [][]byte
	evVersion []int64
	evBatch   [][]byte
	evData    [][]byte

	keys                 []stockd.KeyRecord
	retired              []stockd.RetiredRecord
	retiredKey, keyKey   [][]byte
	retiredPart, keyPart []int32
	retiredPos, keyPos   []int64
	retiredData          [][]byte
	keyFingerprint       []int64
}

// headUpdate moves one partition's head from expected to head.
type headUpdate struct {
	part     int
	expected uint64
	head     uint64
}

// prepare validates appends and builds the transaction that writes them.
func (s *Store) prepare(appends []stockd.Append) (*group, error) {
	if len(appends) == 0 {
		return nil, stockd.Errorf(stockd.CodeInvalid, "no appends")
	}
	g := &group{id: make([]byte, 16)}
	if _, err := rand.Read(g.id); err != nil {
		return nil, fmt.Errorf("postgres: batch id: %w", err)
	}
	heads := map[int]int{} // partition -> index in g.heads
	leases := map[int]stockd.Lease{}
	keys := map[string]struct{}{}
	retired := map[string]struct{}{}
	var n int
	for _, a := range appends {
		n += len(a.Batch.Events)
	}
	g.evPart = make([]int32, 0, n)
	g.evPos = make([]int64, 0, n)
	g.evSKU = make([][]byte, 0, n)
	g.evVersion = make([]int64, 0, n)
	g.evBatch = make([][]byte, 0, n)
	g.evData = make([][]byte, 0, n)
	for i, a := range appends {
		if err := s.checkPartition(a.Partition); err != nil {
			return nil, err
		}
		if err := stockd.CheckBatch(a.Partition, s.partitions, a.Expected, math.MaxInt64, a.Batch); err != nil {
			return nil, err
		}
		if l := a.Batch.Lease; l != nil {
			if l.Partition != a.Partition {
				return nil, stockd.Errorf(stockd.CodeInvalid, "an append to partition %d carries the lease of partition %d", a.Partition, l.Partition)
			}
			if err := s.checkLease(*l); err != nil {
				return nil, err
			}
			if prev, ok := leases[a.Partition]; ok {
				if prev.Node != l.Node || prev.Epoch != l.Epoch {
					return nil, stockd.Errorf(stockd.CodeInvalid, "appends of partition %d in one group carry different leases", a.Partition)
				}
			} else {
				leases[a.Partition] = *l
				g.leases = append(g.leases, *l)
			}
		}
		if j, ok := heads[a.Partition]; ok {
			if h := g.heads[j].head; a.Expected != h {
				return nil, stockd.Errorf(stockd.CodeInvalid, "appends of partition %d in one group do not chain: expected %d after %d", a.Partition, a.Expected, h)
			}
			g.heads[j].head = a.Expected + uint64(len(a.Batch.Events))
		} else {
			heads[a.Partition] = len(g.heads)
			g.heads = append(g.heads, headUpdate{part: a.Partition, expected: a.Expected, head: a.Expected + uint64(len(a.Batch.Events))})
		}
		if i == 0 {
			g.firstPart, g.firstPos = a.Partition, a.Expected+1
		}
		for j := range a.Batch.Events {
			e := &a.Batch.Events[j]
			data, err := encodeEvent(e)
			if err != nil {
				return nil, err
			}
			var sku, id []byte
			if e.SKU != "" {
				sku = []byte(e.SKU)
			}
			if j == 0 {
				id = g.id
			}
			if e.Version > math.MaxInt64 || e.Position > math.MaxInt64 {
				return nil, stockd.Errorf(stockd.CodeInvalid, "event %d of the batch has a position or version beyond 2^63-1", j)
			}
			g.evPart = append(g.evPart, int32(a.Partition))
			g.evPos = append(g.evPos, int64(e.Position))
			g.evSKU = append(g.evSKU, sku)
			g.evVersion = append(g.evVersion, int64(e.Version))
			g.evBatch = append(g.evBatch, id)
			g.evData = append(g.evData, data)
		}
		for _, k := range a.Batch.Keys {
			if _, dup := keys[k.Key]; dup {
				return nil, stockd.Errorf(stockd.CodeInvalid, "idempotency key %q appears twice in one group", k.Key)
			}
			keys[k.Key] = struct{}{}
			g.keys = append(g.keys, k)
		}
		for _, r := range a.Batch.Retired {
			if _, dup := retired[r.Key]; dup {
				return nil, stockd.Errorf(stockd.CodeInvalid, "retired record %q appears twice in one group", r.Key)
			}
			retired[r.Key] = struct{}{}
			g.retired = append(g.retired, r)
		}
	}
	if head := g.heads[0].head; head > math.MaxInt64 {
		return nil, stockd.Errorf(stockd.CodeInvalid, "positions of partition %d overflow", g.heads[0].part)
	}
	sort.SliceStable(g.heads, func(i, j int) bool { return g.heads[i].part < g.heads[j].part })
	sort.Slice(g.leases, func(i, j int) bool { return g.leases[i].Partition < g.leases[j].Partition })
	for _, l := range g.leases {
		g.leasePart = append(g.leasePart, int32(l.Partition))
		g.leaseNode = append(g.leaseNode, l.Node)
		g.leaseEpoch = append(g.leaseEpoch, int64(l.Epoch))
	}
	// Keys in key order, so that two transactions inserting the same keys
	// wait for each other instead of deadlocking.
	sort.Slice(g.keys, func(i, j int) bool { return g.keys[i].Key < g.keys[j].Key })
	for _, k := range g.keys {
		g.keyKey = append(g.keyKey, []byte(k.Key))
		g.keyPart = append(g.keyPart, int32(k.Partition))
		g.keyPos = append(g.keyPos, int64(k.Position))
		g.keyFingerprint = append(g.keyFingerprint, int64(k.Fingerprint))
	}
	sort.Slice(g.retired, func(i, j int) bool { return g.retired[i].Key < g.retired[j].Key })
	for _, r := range g.retired {
		g.retiredKey = append(g.retiredKey, []byte(r.Key))
		g.retiredPart = append(g.retiredPart, int32(r.Partition))
		g.retiredPos = append(g.retiredPos, int64(r.Position))
		data := r.Data
		if data == nil {
			data = []byte{}
		}
		g.retiredData = append(g.retiredData, data)
	}
	return g, nil
}

// encodeEvent encodes one event with stockd's codec, turning the encoder's
// panic on an event data type it does not know into a CodeInvalid error.
func encodeEvent(e *stockd.Event) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, stockd.Errorf(stockd.CodeInvalid, "cannot encode event at position %d: %v", e.Position, r)
		}
	}()
	return stockd.AppendEvents(nil, []stockd.Event{*e}), nil
}

// attemptResult is how one attempt at an append transaction ended.
type attemptResult int

const (
	committed attemptResult = iota // COMMIT returned success
	refused                        // a lease, a head or a key refused it: rolled back (err says which)
	aborted                        // rolled back, or never committed: safe to run again
	ambiguous                      // COMMIT was sent, its answer lost: it may have committed
	failed                         // an error that another attempt would not cure
)

// appendGroup runs the append transaction of appends until it commits, is
// refused, or fails.
//
// Retries never apply a batch twice. An attempt whose COMMIT was sent but not
// answered (a dropped connection) may or may not have committed; the next
// attempt runs the same transaction, whose conditional head update can
// succeed only if the first did not commit. If it is refused instead (by a
// head, a key, or a lease that expired or was taken over meanwhile), the
// first event's batch_id says whether the batch in the database is this one
// (then the append succeeded) or another writer's, or none (then the refusal
// stands).
func (s *Store) appendGroup(ctx context.Context, appends []stockd.Append) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	g, err := s.prepare(appends)
	if err != nil {
		return err
	}
	wasAmbiguous := false
	var last error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return s.unknown(g, wasAmbiguous, err)
			}
		}
		result, err := s.attempt(ctx, g, attempt)
		switch result {
		case committed:
			return nil
		case refused:
			if wasAmbiguous {
				mine, cerr := s.isMine(ctx, g)
				if cerr != nil {
					return s.unknown(g, true, cerr)
				}
				if mine {
					s.log.Info("an append whose commit was not acknowledged had committed", "partition", g.firstPart, "position", g.firstPos)
					return nil
				}
			}
			return err
		case ambiguous:
			wasAmbiguous = true
			s.log.Warn("append commit not acknowledged; checking whether it committed", "partition", g.firstPart, "position", g.firstPos, "err", err)
		case aborted:
			s.log.Debug("append transaction rolled back; retrying", "partition", g.firstPart, "attempt", attempt, "err", err)
		case failed:
			if wasAmbiguous {
				return s.unknown(g, true, err)
			}
			return fmt.Errorf("postgres: append to partition %d at %d: %w", g.firstPart, g.firstPos, err)
		}
		last = err
	}
	return s.unknown(g, wasAmbiguous, fmt.Errorf("gave up after %d attempts: %w", maxAttempts, last))
}

// unknown is the error of an append whose outcome is unknown: the caller must
// stop and recover from the database (stockd.Log's fail-stop rule).
func (s *Store) unknown(g *group, wasAmbiguous bool, err error) error {
	if wasAmbiguous {
		return fmt.Errorf("postgres: append to partition %d at %d: outcome unknown (a commit was not acknowledged): %w", g.firstPart, g.firstPos, err)
	}
	return fmt.Errorf("postgres: append to partition %d at %d: %w", g.firstPart, g.firstPos, err)
}

// isMine reports whether the first event of g's first append is in the
// database with g's batch id.
func (s *Store) isMine(ctx context.Context, g *group) (bool, error) {
	var id []byte
	err := s.pool.QueryRow(ctx, sqlBatchID, g.firstPart, int64(g.firstPos)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return bytes.Equal(id, g.id), nil
}

// attempt runs g's transaction once.
func (s *Store) attempt(ctx context.Context, g *group, attempt int) (attemptResult, error) {
	// READ COMMITTED is enough, and waits where stricter levels abort: the
	// conditional head update is evaluated again on the row a concurrent
	// append committed (so a stale head updates nothing), and unique
	// indexes refuse keys and positions whatever the isolation.
	// (CockroachDB runs it as SERIALIZABLE unless read committed is
	// enabled there; 40001 is then retried.)
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return classify(ctx, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	b := &pgx.Batch{}
	// The fence first: the lease rows are locked FOR SHARE before any
	// head moves, and stay locked until COMMIT or rollback.
	switch len(g.leases) {
	case 0:
	case 1:
		b.Queue(sqlCheckLease, g.leasePart[0], g.leaseNode[0], g.leaseEpoch[0])
	default:
		b.Queue(sqlCheckLeases, g.leasePart, g.leaseNode, g.leaseEpoch)
	}
	if len(g.heads) == 1 {
		h := g.heads[0]
		b.Queue(sqlUpdateHead, int64(h.head), h.part, int64(h.expected))
	} else {
		heads, parts, expected := make([]int64, len(g.heads)), make([]int32, len(g.heads)), make([]int64, len(g.heads))
		for i, h := range g.heads {
			heads[i], parts[i], expected[i] = int64(h.head), int32(h.part), int64(h.expected)
		}
		b.Queue(sqlUpdateHeads, heads, parts, expected)
	}
	b.Queue(sqlInsertEvents, g.evPart, g.evPos, g.evSKU, g.evVersion, g.evBatch, g.evData)
	if len(g.keys) > 0 {
		b.Queue(sqlInsertKeys, g.keyKey, g.keyPart, g.keyPos, g.keyFingerprint)
	}
	if len(g.retired) > 0 {
		b.Queue(sqlUpsertRetired, g.retiredKey, g.retiredPart, g.retiredPos, g.retiredData)
	}
	br := tx.SendBatch(ctx, b)
	result, err := func() (attemptResult, error) {
		if len(g.leases) > 0 {
			if result, err := checkLeases(ctx, br, g); result != committed {
				return result, err
			}
		}
		tag, err := br.Exec()
		if err != nil {
			return classify(ctx, err)
		}
		if n := tag.RowsAffected(); n != int64(len(g.heads)) {
			if len(g.heads) == 1 {
				return refused, stockd.Errorf(stockd.CodeConflict, "partition %d head is not the expected %d", g.heads[0].part, g.heads[0].expected)
			}
			return refused, stockd.Errorf(stockd.CodeConflict, "%d of the %d partitions of the group are not at their expected heads", int64(len(g.heads))-n, len(g.heads))
		}
		if _, err := br.Exec(); err != nil {
			if isCode(err, "23505") {
				// The heads matched, yet an event is there already:
				// the partitions table and the events disagree.
				return failed, fmt.Errorf("%w: events already stored after the head: %w", stockd.ErrCorrupt, err)
			}
			return classify(ctx, err)
		}
		if len(g.keys) > 0 {
			if _, err := br.Exec(); err != nil {
				if isCode(err, "23505") {
					return refused, &stockd.Error{Code: stockd.CodeConflict, Message: "an idempotency key of the batch is already recorded", Err: err}
				}
				return classify(ctx, err)
			}
		}
		if len(g.retired) > 0 {
			if _, err := br.Exec(); err != nil {
				return classify(ctx, err)
			}
		}
		return committed, nil
	}()
	if cerr := br.Close(); cerr != nil && result == committed {
		result, err = classify(ctx, cerr)
	}
	if result != committed {
		return result, err
	}

	// Nothing is acknowledged before COMMIT returns.
	if s.hooks != nil && s.hooks.commit != nil {
		err = s.hooks.commit(ctx, tx, attempt)
	} else {
		err = tx.Commit(ctx)
	}
	if err == nil {
		return committed, nil
	}
	switch {
	case retryable(err):
		// The server rolled the transaction back.
		return aborted, err
	case errors.Is(err, pgx.ErrTxCommitRollback):
		// The server answered COMMIT with ROLLBACK.
		return failed, err
	default:
		// The COMMIT may have reached the server and committed: a lost
		// connection, or an error the server sent after committing
		// (PostgreSQL terminating a session that waits for synchronous
		// replication after the local commit; CockroachDB's "result is
		// ambiguous", 40003). The next attempt finds out.
		return ambiguous, err
	}
}

// checkLeases reads the fence's answer: committed (the attempt may go on) if
// every lease of g is current, refused with stockd.CodeLeaseLost if any is
// not. A refusal after an ambiguous commit is checked by appendGroup as a
// head conflict is: the batch may be the one the lost commit wrote.
func checkLeases(ctx context.Context, br pgx.BatchResults, g *group) (attemptResult, error) {
	rows, err := br.Query()
	if err != nil {
		return classify(ctx, err)
	}
	current := map[int32]bool{}
	for rows.Next() {
		var p int32
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return classify(ctx, err)
		}
		current[p] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return classify(ctx, err)
	}
	if len(current) == len(g.leases) {
		return committed, nil
	}
	for _, l := range g.leases {
		if !current[int32(l.Partition)] {
			if len(g.leases) == 1 {
				return refused, leaseLost(l)
			}
			return refused, &stockd.Error{
				Code:    stockd.CodeLeaseLost,
				Message: fmt.Sprintf("%d of the %d partition leases of the group are not current, the first of partition %d", len(g.leases)-len(current), len(g.leases), l.Partition),
				Err:     leaseLost(l),
			}
		}
	}
	return failed, fmt.Errorf("postgres: the lease check returned %d partitions for %d leases", len(current), len(g.leases))
}

// classify says how an error before COMMIT ended an attempt. Nothing was
// committed: a transaction commits only with its COMMIT.
func classify(ctx context.Context, err error) (attemptResult, error) {
	var pgErr *pgconn.PgError
	switch {
	case retryable(err):
		return aborted, err
	case ctx.Err() != nil:
		return failed, err
	case errors.As(err, &pgErr) && !connectionLost(pgErr.Code):
		return failed, err
	default:
		// A lost connection: the server rolls the transaction back.
		return aborted, err
	}
}

// connectionLost reports whether a SQLSTATE says the session ended: a
// connection exception (class 08) or the server shutting the session down
// (57P01, 57P02, 57P03).
func connectionLost(code string) bool {
	return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
}

// ReadPartition returns up to limit events of partition p with positions
// greater than after, in position order; a limit of 0 or less means
// DefaultReadLimit. A read from below the log start is refused with
// stockd.ErrTrimmed. The log start and the events are read in one statement,
// so in one snapshot: a concurrent trim never shows half-deleted.
func (s *Store) ReadPartition(ctx context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := s.checkPartition(p); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	from := int64(after)
	if after > math.MaxInt64 {
		from = math.MaxInt64
	}
	rows, err := s.pool.Query(ctx, `SELECT p.log_start, e.pos, e.data FROM partitions p
LEFT JOIN LATERAL (SELECT pos, data FROM events WHERE part = p.part AND pos > $2 ORDER BY pos LIMIT $3) e ON true
WHERE p.part = $1`, p, from, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read partition %d: %w", p, err)
	}
	defer rows.Close()
	var out []stockd.Event
	var start int64
	for rows.Next() {
		var pos *int64
		var data []byte
		if err := rows.Scan(&start, &pos, &data); err != nil {
			return nil, fmt.Errorf("postgres: read partition %d: %w", p, err)
		}
		if after < uint64(start) {
			return nil, trimmedError(p, after, uint64(start))
		}
		if pos == nil {
			break
		}
		events, err := stockd.DecodeEvents(data, p, uint64(*pos))
		if err != nil || len(events) != 1 {
			return nil, fmt.Errorf("postgres: partition %d event at %d: %w (%d events)", p, *pos, err, len(events))
		}
		if out == nil {
			out = make([]stockd.Event, 0, min(limit, 256))
		}
		out = append(out, events[0])
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read partition %d: %w", p, err)
	}
	return out, nil
}

// trimmedError is the error of a read from below the log start.
func trimmedError(p int, after, start uint64) error {
	return &stockd.Error{
		Code:    stockd.CodeNotFound,
		Message: fmt.Sprintf("partition %d is trimmed up to position %d; position %d is in cold storage", p, start, after+1),
		Err:     stockd.ErrTrimmed,
	}
}

// ReadSKU returns the events of one SKU above its partition's log start, in
// version order, as bounded by q. The position bound and the limit are
// applied by the query (a SKU's positions grow with its versions); the time
// bound stops the read at the first event after it, as stockd.SKUQuery says,
// so it is applied here.
func (s *Store) ReadSKU(ctx context.Context, sku string, q stockd.SKUQuery) ([]stockd.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if strings.IndexByte(sku, 0) >= 0 {
		return nil, stockd.Errorf(stockd.CodeInvalid, "SKU contains a NUL byte")
	}
	if sku == "" || q.AfterVersion > math.MaxInt64 {
		return nil, nil
	}
	upTo := int64(math.MaxInt64)
	if q.UpToPosition != 0 && q.UpToPosition < math.MaxInt64 {
		upTo = int64(q.UpToPosition)
	}
	limit := int64(math.MaxInt64)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	rows, err := s.pool.Query(ctx, `SELECT e.part, e.pos, e.data FROM events e JOIN partitions p ON p.part = e.part
WHERE e.sku = $1 AND e.version > $2 AND e.pos <= $3 AND e.pos > p.log_start
ORDER BY e.version, e.part, e.pos LIMIT $4`, []byte(sku), int64(q.AfterVersion), upTo, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read SKU %q: %w", sku, err)
	}
	defer rows.Close()
	var out []stockd.Event
	for rows.Next() {
		var part int
		var pos int64
		var data []byte
		if err := rows.Scan(&part, &pos, &data); err != nil {
			return nil, fmt.Errorf("postgres: read SKU %q: %w", sku, err)
		}
		events, err := stockd.DecodeEvents(data, part, uint64(pos))
		if err != nil || len(events) != 1 {
			return nil, fmt.Errorf("postgres: partition %d event at %d: %w (%d events)", part, pos, err, len(events))
		}
		e := events[0]
		if !q.UpToTime.IsZero() && e.Time.After(q.UpToTime) {
			break
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read SKU %q: %w", sku, err)
	}
	return out, nil
}

// LookupRetired returns the retired record of key, and false if none was
// written.
func (s *Store) LookupRetired(ctx context.Context, key string) (stockd.RetiredRecord, bool, error) {
	if err := s.check(ctx); err != nil {
		return stockd.RetiredRecord{}, false, err
	}
	r := stockd.RetiredRecord{Key: key}
	var pos int64
	err := s.pool.QueryRow(ctx, `SELECT part, pos, data FROM retired WHERE key = $1`, []byte(key)).Scan(&r.Partition, &pos, &r.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return stockd.RetiredRecord{}, false, nil
	}
	if err != nil {
		return stockd.RetiredRecord{}, false, fmt.Errorf("postgres: look up retired %q: %w", key, err)
	}
	r.Position = uint64(pos)
	return r, true, nil
}

// Heads returns every partition's head in one read (stockd.HeadReader).
func (s *Store) Heads(ctx context.Context) ([]uint64, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT part, head FROM partitions`)
	if err != nil {
		return nil, fmt.Errorf("postgres: read heads: %w", err)
	}
	heads := make([]uint64, s.partitions)
	var part int
	var head int64
	_, err = pgx.ForEachRow(rows, []any{&part, &head}, func() error {
		if part >= 0 && part < len(heads) {
			heads[part] = uint64(head)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read heads: %w", err)
	}
	return heads, nil
}
