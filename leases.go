package stockd

import (
	"context"
	"time"
)

// Leases is an optional store capability, discovered by type assertion: the
// partition leases and node registry of a store that several stockd nodes
// share (PostgreSQL). Each partition is leased to at most one node at a time;
// the lease carries an epoch that grows by one every time the partition is
// taken anew, and an append that carries a lease (Batch.Lease) is refused
// unless that lease is still the partition's current one. A node whose lease
// was taken over can therefore never append again with it, however late its
// append arrives: it is fenced.
//
// Time is the store's: expiry is judged by the store's clock (the database's
// now()), never by a node's. ExpiresAt is reported for diagnostics; a node
// MUST NOT compare it with its own clock. A node that wants to know how long
// it may go on serving counts ttl from the moment it sent the call that
// returned the lease, on its own monotonic clock: the store started the
// lease's ttl no earlier than that, so the node's count ends first (less any
// clock rate drift, which the caller leaves a margin for).
//
// Safety invariants, which every implementation MUST keep:
//   - At most one lease of a partition is current at any time: AcquireLease
//     takes a partition only if it is free, its lease has expired by the
//     store's clock, or its current lease is the caller's own (a renewal).
//     Concurrent AcquireLease calls for one partition give it to at most
//     one node.
//   - The epoch of a partition never decreases, and a lease taken anew
//     (any acquisition other than the renewal of an unexpired lease of the
//     same node) has an epoch greater than every earlier lease of the
//     partition: a lease that expired, was released or was taken over can
//     never become current again.
//   - An append whose Batch carries a Lease is refused with an *Error of
//     code CodeLeaseLost, writing nothing, unless the lease is the
//     partition's current one (same node and epoch) and has not expired by
//     the store's clock. The check and the append MUST be atomic: a
//     takeover of the partition commits either before the check (and the
//     append is refused) or after the append committed (and the new owner,
//     which reads the partition after its AcquireLease returns, sees it),
//     never between them.
//   - AcquireLease, RenewLease and ReleaseLease MUST NOT return before their
//     change is durable; after a crash a lease is as the last of them that
//     returned left it, or as a call in progress left it.
//
// A node's ID names one running process: a restarted process MUST use a new
// ID (a random suffix), because the store fences by node and epoch, and two
// processes sharing an ID would be one owner to it. Node IDs and URLs are
// non-empty UTF-8 strings without NUL bytes.
//
// Appends without a Lease are not fenced (a single node, or a tool that
// writes with the engine stopped). Stores without the capability ignore
// Batch.Lease: they are owned by one process.
type Leases interface {
	// Heartbeat registers node n, or refreshes it: its URL becomes n.URL
	// and its last-seen time the store's now. n.SeenAt is ignored.
	Heartbeat(ctx context.Context, n Node) error

	// Nodes returns, in ID order, the nodes whose last heartbeat is within
	// the store's liveness window (a store option), each with its
	// last-seen time by the store's clock.
	Nodes(ctx context.Context) ([]Node, error)

	// Leave removes node from the registry at once: Nodes no longer lists
	// it. A node that stops calls it once it has released its leases, so
	// that its share of the partitions goes to the others now, not after
	// the liveness window. Leaving twice, or as a node never registered,
	// is not an error.
	Leave(ctx context.Context, node string) error
	// AcquireLease takes the lease of partition p for node, for ttl from
	// the store's now, if the partition is free, its lease has expired by
	// the store's clock, or its current lease is node's own. A renewal of
	// node's own unexpired lease keeps the epoch; any other acquisition
	// sets it to one more than the partition's last epoch (1 for a
	// partition never leased). If another node holds an unexpired lease,
	// AcquireLease returns the zero Lease, false and no error.
	AcquireLease(ctx context.Context, p int, node string, ttl time.Duration) (Lease, bool, error)

	// RenewLease extends l to ttl from the store's now if l is still the
	// partition's current lease (same node and epoch) and has not expired,
	// and returns it with its new ExpiresAt. Otherwise it changes nothing
	// and returns an *Error of code CodeLeaseLost: the node must stop
	// serving the partition at once.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)

	// ReleaseLease ends l at once if it is still the partition's current
	// lease, so that another node may take the partition without waiting
	// for it to expire; l can never append again. Releasing a lease that is
	// no longer current does nothing and returns nil.
	ReleaseLease(ctx context.Context, l Lease) error

	// Leases returns the lease of every partition, in partition order,
	// with Expired set by the store's clock. A partition never leased has
	// an empty Node, epoch 0, and Expired true.
	Leases(ctx context.Context) ([]Lease, error)
}

// Lease is a node's right to append to one partition, until ExpiresAt by the
// store's clock. Stores compare leases by Partition, Node and Epoch.
type Lease struct {
	Partition int    `json:"partition"`
	Node      string `json:"node"`
	// Epoch is the partition's lease epoch: 1 for its first lease, one more
	// for each lease taken anew.
	Epoch uint64 `json:"epoch"`
	// ExpiresAt is when the lease ends, by the store's clock; zero (and
	// left out of JSON) for a partition never leased, and for the
	// embedded store, which has no leases.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Expired reports, in a Lease returned by Leases, whether the lease had
	// expired by the store's clock when it was read. Other calls ignore it.
	Expired bool `json:"expired"`
}

// Node is a stockd process registered in a shared store: its ID, the URL
// other nodes reach it at, and when it was last seen, by the store's clock.
type Node struct {
	ID     string    `json:"id"`
	URL    string    `json:"url"`
	SeenAt time.Time `json:"seen_at"`
}
