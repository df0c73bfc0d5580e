package postgres

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stockd/stockd"
)

// The statements of leases and nodes. Every time is the database's now(): a
// lease is current while expires_at > now(), whatever the nodes' clocks say.
// Durations are sent as whole microseconds ($n::bigint * interval '1
// microsecond'), which PostgreSQL and CockroachDB both read.
const (
	// sqlAcquireLease takes a partition's lease in one statement: inserted
	// for a partition never leased (epoch 1); otherwise updated only if the
	// row is free (released), expired, or node's own. The epoch stays for
	// the renewal of node's own unexpired lease and grows by one for every
	// other acquisition. ON CONFLICT DO UPDATE locks the row and judges the
	// WHERE on its latest version, so a takeover waits for an append that
	// holds the row FOR SHARE, and of concurrent acquisitions one wins.
	sqlAcquireLease = `INSERT INTO leases AS l (part, node, epoch, expires_at)
VALUES ($1, $2, 1, now() + $3::bigint * interval '1 microsecond')
ON CONFLICT (part) DO UPDATE SET
	epoch = CASE WHEN l.node = excluded.node AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
	node = excluded.node,
	expires_at = excluded.expires_at
WHERE l.node = excluded.node OR l.node = '' OR l.expires_at <= now()
RETURNING epoch, expires_at`
	sqlRenewLease = `UPDATE leases SET expires_at = now() + $4::bigint * interval '1 microsecond'
WHERE part = $1 AND node = $2 AND epoch = $3 AND expires_at > now()
RETURNING expires_at`
	// sqlReleaseLease frees the lease by clearing its node (no node is
	// named ''), so that the released lease matches no lease an append
	// carries even if the database's clock were set back.
	sqlReleaseLease = `UPDATE leases SET node = '', expires_at = now()
WHERE part = $1 AND node = $2 AND epoch = $3 AND expires_at > now()`
	sqlLeases = `SELECT p.part, coalesce(l.node, ''), coalesce(l.epoch, 0), l.expires_at,
	coalesce(l.node = '' OR l.expires_at <= now(), true)
FROM partitions p LEFT JOIN leases l ON l.part = p.part
ORDER BY p.part`

	// sqlCheckLease and sqlCheckLeases are the fence of an append, the
	// first statement of its transaction: they return the partitions whose
	// lease is the one the append carries and has not expired, and lock
	// those rows FOR SHARE until the transaction ends, so that a takeover
	// (which updates the row) waits for the append to commit or roll back.
	// At READ COMMITTED a row that a takeover updated after the
	// statement's snapshot is locked in its new version and judged again:
	// its node or epoch no longer match, and it is not returned.
	sqlCheckLease = `SELECT part FROM leases
WHERE part = $1 AND node = $2 AND epoch = $3 AND expires_at > now()
FOR SHARE`
	sqlCheckLeases = `SELECT l.part FROM leases l
JOIN unnest($1::int[], $2::text[], $3::bigint[]) AS v(part, node, epoch)
	ON l.part = v.part AND l.node = v.node AND l.epoch = v.epoch
WHERE l.expires_at > now()
FOR SHARE OF l`

	sqlHeartbeat = `INSERT INTO nodes (id, url, seen_at) VALUES ($1, $2, now())
ON CONFLICT (id) DO UPDATE SET url = excluded.url, seen_at = excluded.seen_at`
	sqlForgetNodes = `DELETE FROM nodes WHERE seen_at < now() - $1::bigint * interval '1 microsecond'`
	sqlNodes       = `SELECT id, url, seen_at FROM nodes WHERE seen_at > now() - $1::bigint * interval '1 microsecond'`
)

// forgetNodesAfter is how long a node that sent no heartbeat stays in the
// nodes table (a restarted process registers under a new ID): the longer of
// a day and a hundred liveness windows.
func (s *Store) forgetNodesAfter() time.Duration {
	return max(24*time.Hour, 100*s.liveness)
}

// Heartbeat registers n, or refreshes its URL and last-seen time (the
// database's now()), and forgets nodes not seen for a day.
func (s *Store) Heartbeat(ctx context.Context, n stockd.Node) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := checkName("node ID", n.ID); err != nil {
		return err
	}
	if err := checkName("node URL", n.URL); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, sqlHeartbeat, n.ID, n.URL); err != nil {
		return fmt.Errorf("postgres: heartbeat of node %q: %w", n.ID, err)
	}
	if _, err := s.pool.Exec(ctx, sqlForgetNodes, s.forgetNodesAfter().Microseconds()); err != nil {
		return fmt.Errorf("postgres: forget old nodes: %w", err)
	}
	return nil
}

// Leave removes node from the nodes table.
func (s *Store) Leave(ctx context.Context, node string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM nodes WHERE id = $1`, node); err != nil {
		return fmt.Errorf("postgres: node %q leaving: %w", node, err)
	}
	return nil
}

// Nodes returns the nodes seen within the liveness window
// (Options.NodeLiveness) by the database's clock, in ID order.
func (s *Store) Nodes(ctx context.Context) ([]stockd.Node, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sqlNodes, s.liveness.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("postgres: read nodes: %w", err)
	}
	defer rows.Close()
	var out []stockd.Node
	for rows.Next() {
		var n stockd.Node
		if err := rows.Scan(&n.ID, &n.URL, &n.SeenAt); err != nil {
			return nil, fmt.Errorf("postgres: read nodes: %w", err)
		}
		n.SeenAt = n.SeenAt.UTC()
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read nodes: %w", err)
	}
	// In Go's string order, whatever the database's collation.
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// AcquireLease takes partition p's lease for node, for ttl from the
// database's now, as stockd.Leases says: one statement, committed before it
// returns.
func (s *Store) AcquireLease(ctx context.Context, p int, node string, ttl time.Duration) (stockd.Lease, bool, error) {
	if err := s.check(ctx); err != nil {
		return stockd.Lease{}, false, err
	}
	if err := s.checkPartition(p); err != nil {
		return stockd.Lease{}, false, err
	}
	if err := checkName("node ID", node); err != nil {
		return stockd.Lease{}, false, err
	}
	if err := checkTTL(ttl); err != nil {
		return stockd.Lease{}, false, err
	}
	l := stockd.Lease{Partition: p, Node: node}
	var epoch int64
	rows, err := s.pool.Query(ctx, sqlAcquireLease, p, node, ttl.Microseconds())
	if err != nil {
		return stockd.Lease{}, false, fmt.Errorf("postgres: acquire the lease of partition %d: %w", p, err)
	}
	defer rows.Close()
	got := false
	for rows.Next() {
		if err := rows.Scan(&epoch, &l.ExpiresAt); err != nil {
			return stockd.Lease{}, false, fmt.Errorf("postgres: acquire the lease of partition %d: %w", p, err)
		}
		got = true
	}
	if err := rows.Err(); err != nil {
		return stockd.Lease{}, false, fmt.Errorf("postgres: acquire the lease of partition %d: %w", p, err)
	}
	if !got {
		return stockd.Lease{}, false, nil
	}
	l.Epoch = uint64(epoch)
	l.ExpiresAt = l.ExpiresAt.UTC()
	return l, true, nil
}

// RenewLease extends l by ttl from the database's now if it is still the
// partition's current, unexpired lease; otherwise it fails with
// stockd.CodeLeaseLost.
func (s *Store) RenewLease(ctx context.Context, l stockd.Lease, ttl time.Duration) (stockd.Lease, error) {
	if err := s.check(ctx); err != nil {
		return stockd.Lease{}, err
	}
	if err := s.checkLease(l); err != nil {
		return stockd.Lease{}, err
	}
	if err := checkTTL(ttl); err != nil {
		return stockd.Lease{}, err
	}
	rows, err := s.pool.Query(ctx, sqlRenewLease, l.Partition, l.Node, int64(l.Epoch), ttl.Microseconds())
	if err != nil {
		return stockd.Lease{}, fmt.Errorf("postgres: renew the lease of partition %d: %w", l.Partition, err)
	}
	defer rows.Close()
	got := false
	for rows.Next() {
		if err := rows.Scan(&l.ExpiresAt); err != nil {
			return stockd.Lease{}, fmt.Errorf("postgres: renew the lease of partition %d: %w", l.Partition, err)
		}
		got = true
	}
	if err := rows.Err(); err != nil {
		return stockd.Lease{}, fmt.Errorf("postgres: renew the lease of partition %d: %w", l.Partition, err)
	}
	if !got {
		return stockd.Lease{}, leaseLost(l)
	}
	l.ExpiresAt = l.ExpiresAt.UTC()
	l.Expired = false
	return l, nil
}

// ReleaseLease frees l's partition at once if l is still its current lease.
func (s *Store) ReleaseLease(ctx context.Context, l stockd.Lease) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.checkLease(l); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, sqlReleaseLease, l.Partition, l.Node, int64(l.Epoch)); err != nil {
		return fmt.Errorf("postgres: release the lease of partition %d: %w", l.Partition, err)
	}
	return nil
}

// Leases returns every partition's lease, in partition order, with Expired
// judged by the database's clock.
func (s *Store) Leases(ctx context.Context) ([]stockd.Lease, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sqlLeases)
	if err != nil {
		return nil, fmt.Errorf("postgres: read leases: %w", err)
	}
	defer rows.Close()
	out := make([]stockd.Lease, 0, s.partitions)
	for rows.Next() {
		var l stockd.Lease
		var epoch int64
		var expires *time.Time
		if err := rows.Scan(&l.Partition, &l.Node, &epoch, &expires, &l.Expired); err != nil {
			return nil, fmt.Errorf("postgres: read leases: %w", err)
		}
		l.Epoch = uint64(epoch)
		if expires != nil {
			l.ExpiresAt = expires.UTC()
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read leases: %w", err)
	}
	return out, nil
}

// checkLease rejects a lease no acquisition can have returned.
func (s *Store) checkLease(l stockd.Lease) error {
	if err := s.checkPartition(l.Partition); err != nil {
		return err
	}
	if err := checkName("lease node", l.Node); err != nil {
		return err
	}
	if l.Epoch == 0 || l.Epoch > math.MaxInt64 {
		return stockd.Errorf(stockd.CodeInvalid, "lease of partition %d has epoch %d, outside [1, 2^63-1]", l.Partition, l.Epoch)
	}
	return nil
}

// checkName rejects an empty node ID or URL, and one the database's text
// cannot hold.
func checkName(what, v string) error {
	if v == "" {
		return stockd.Errorf(stockd.CodeInvalid, "empty %s", what)
	}
	if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
		return stockd.Errorf(stockd.CodeInvalid, "%s %q is not UTF-8 without NUL bytes", what, v)
	}
	return nil
}

// checkTTL rejects a lease duration the database cannot count.
func checkTTL(ttl time.Duration) error {
	if ttl < time.Microsecond {
		return stockd.Errorf(stockd.CodeInvalid, "lease duration %v is not positive (at least 1µs)", ttl)
	}
	return nil
}

// leaseLost is the error of a renewal or an append whose lease is no longer
// current.
func leaseLost(l stockd.Lease) error {
	return stockd.Errorf(stockd.CodeLeaseLost, "partition %d: the lease of node %q at epoch %d is not current: it expired, was released, or another node took the partition over", l.Partition, l.Node, l.Epoch)
}
