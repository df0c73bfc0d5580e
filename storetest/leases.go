package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// LeaseStore is what RunLeases tests: a Log with the Leases capability that
// can be closed.
type LeaseStore interface {
	stockd.Log
	stockd.Leases
	Close() error
}

// ShortTTL is the lease duration of the tests that wait for a lease to
// expire; LongTTL that of the tests that need it not to.
const (
	ShortTTL = 200 * time.Millisecond
	LongTTL  = time.Minute
)

// RunLeases checks the rules of stockd.Leases, and the fencing of appends
// that carry a lease (stockd.Batch.Lease), against the stores returned by
// open, which must return a fresh, empty store of at least two partitions
// every time it is called. Two nodes are two node IDs on one store: leases
// are the store's, not a process's. (TakeoverRacingAppend and
// StaleOwnerCannotAppend take two stores, to be run on two handles of one
// database as well.) The suite closes every store it gets.
func RunLeases(t *testing.T, open func(t *testing.T) (LeaseStore, error)) {
	mustOpen := func(t *testing.T) LeaseStore {
		t.Helper()
		s, err := open(t)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		if s.Partitions() < 2 {
			t.Fatalf("the store has %d partitions; the lease tests need 2", s.Partitions())
		}
		return s
	}
	t.Run("AFreeLeaseIsAcquiredWithEpochOne", func(t *testing.T) { testFreeLease(t, mustOpen(t)) })
	t.Run("AHeldLeaseIsRefusedToAnotherNode", func(t *testing.T) { testHeldLease(t, mustOpen(t)) })
	t.Run("ItsOwnNodeRenewsAnUnexpiredLeaseKeepingTheEpoch", func(t *testing.T) { testOwnRenewal(t, mustOpen(t)) })
	t.Run("AnExpiredLeaseIsTakenWithTheNextEpoch", func(t *testing.T) { testExpiredTaken(t, mustOpen(t)) })
	t.Run("AnExpiredLeaseRetakenByItsOwnNodeGetsTheNextEpoch", func(t *testing.T) { testExpiredRetaken(t, mustOpen(t)) })
	t.Run("RenewalOfALostLeaseFails", func(t *testing.T) { testRenewLost(t, mustOpen(t)) })
	t.Run("AReleasedLeaseIsFreeAndFenced", func(t *testing.T) { testReleased(t, mustOpen(t)) })
	t.Run("AnAppendCarryingTheCurrentLeaseSucceeds", func(t *testing.T) { testCurrentLeaseAppends(t, mustOpen(t)) })
	t.Run("AnAppendCarryingAStaleLeaseIsRefusedAndWritesNothing", func(t *testing.T) { testStaleLeaseRefused(t, mustOpen(t)) })
	t.Run("AGroupWithOneStaleLeaseIsRefusedWhole", func(t *testing.T) { testStaleGroup(t, mustOpen(t)) })
	t.Run("BadLeaseArgumentsAreInvalid", func(t *testing.T) { testBadLeaseArguments(t, mustOpen(t)) })
	t.Run("HeartbeatsRegisterNodesWithTheStoresTime", func(t *testing.T) { testHeartbeat(t, mustOpen(t)) })
	t.Run("ATakeoverRacingAppendsNeverLosesAnAcknowledgedBatch", func(t *testing.T) {
		s := mustOpen(t)
		TakeoverRacingAppend(t, s, s)
	})
	t.Run("AStaleOwnerPausedPastItsLeaseCannotAppend", func(t *testing.T) {
		s := mustOpen(t)
		StaleOwnerCannotAppend(t, s, s)
	})
}

// acquire takes partition p's lease for node, failing the test unless it
// gets it.
func acquire(t testing.TB, s stockd.Leases, p int, node string, ttl time.Duration) stockd.Lease {
	t.Helper()
	l, ok, err := s.AcquireLease(ctx, p, node, ttl)
	if err != nil || !ok {
		t.Fatalf("AcquireLease(%d, %q, %v) = %v, %v, %v; want the lease", p, node, ttl, l, ok, err)
	}
	if l.Partition != p || l.Node != node || l.ExpiresAt.IsZero() {
		t.Fatalf("AcquireLease(%d, %q) returned %+v", p, node, l)
	}
	return l
}

// wantHeld fails the test unless node cannot acquire partition p's lease.
func wantHeld(t testing.TB, s stockd.Leases, p int, node string) {
	t.Helper()
	l, ok, err := s.AcquireLease(ctx, p, node, LongTTL)
	if err != nil || ok || l != (stockd.Lease{}) {
		t.Fatalf("AcquireLease(%d, %q) of a lease another node holds = %+v, %v, %v; want the zero lease, false, nil", p, node, l, ok, err)
	}
}

// leaseOf returns partition p's lease as Leases reports it.
func leaseOf(t testing.TB, s stockd.Leases, p int) stockd.Lease {
	t.Helper()
	all, err := s.Leases(ctx)
	if err != nil {
		t.Fatalf("Leases: %v", err)
	}
	for _, l := range all {
		if l.Partition == p {
			return l
		}
	}
	t.Fatalf("Leases returned no lease of partition %d: %+v", p, all)
	return stockd.Lease{}
}

// WaitExpired waits, polling Leases, until l is no longer current by the
// store's clock (expired, or replaced), failing the test after ten seconds.
func WaitExpired(t testing.TB, s stockd.Leases, l stockd.Lease) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cur := leaseOf(t, s, l.Partition)
		if cur.Expired || cur.Node != l.Node || cur.Epoch != l.Epoch {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease %+v has not expired after 10s (its ttl was far shorter)", l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leased returns batch with lease l.
func leased(b stockd.Batch, l stockd.Lease) stockd.Batch {
	b.Lease = &l
	return b
}

// named returns a batch of n events of partition p after head whose command
// ids are name-0, name-1, ...
func named(p int, head uint64, n int, name string) stockd.Batch {
	events := Events(p, head, n)
	for i := range events {
		events[i].CommandID = fmt.Sprintf("%s-%d", name, i)
	}
	return stockd.Batch{Events: events}
}

// commandIDs returns the command ids of events.
func commandIDs(events []stockd.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.CommandID
	}
	return out
}

// wantCommands fails the test unless partition p holds exactly the events
// with the command ids want.
func wantCommands(t testing.TB, s stockd.Log, p int, want ...string) {
	t.Helper()
	got := commandIDs(readAll(t, s, p))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("partition %d holds %v, want %v", p, got, want)
	}
}

func ids(name string, n int) []string {
	return commandIDs(named(0, 0, n, name).Events)
}

func testFreeLease(t *testing.T, s LeaseStore) {
	all, err := s.Leases(ctx)
	if err != nil {
		t.Fatalf("Leases: %v", err)
	}
	if len(all) != s.Partitions() {
		t.Fatalf("Leases returned %d leases for %d partitions", len(all), s.Partitions())
	}
	for i, l := range all {
		if l.Partition != i || l.Node != "" || l.Epoch != 0 || !l.Expired {
			t.Fatalf("lease of a partition never leased = %+v, want partition %d, no node, epoch 0, expired", l, i)
		}
	}
	l := acquire(t, s, 0, "a", LongTTL)
	if l.Epoch != 1 {
		t.Errorf("first lease of partition 0 has epoch %d, want 1", l.Epoch)
	}
	if got := leaseOf(t, s, 0); got.Node != "a" || got.Epoch != 1 || got.Expired || !got.ExpiresAt.Equal(l.ExpiresAt) {
		t.Errorf("Leases shows %+v after %+v was acquired", got, l)
	}
	if got := leaseOf(t, s, 1); got.Node != "" || !got.Expired {
		t.Errorf("Leases shows %+v for partition 1, never leased", got)
	}
	if l := acquire(t, s, 1, "b", LongTTL); l.Epoch != 1 {
		t.Errorf("first lease of partition 1 has epoch %d, want 1", l.Epoch)
	}
}

func testHeldLease(t *testing.T, s LeaseStore) {
	l := acquire(t, s, 0, "a", LongTTL)
	wantHeld(t, s, 0, "b")
	if got := leaseOf(t, s, 0); got.Node != "a" || got.Epoch != l.Epoch || got.Expired {
		t.Errorf("after another node was refused, Leases shows %+v, want %+v", got, l)
	}
	if _, err := s.RenewLease(ctx, l, LongTTL); err != nil {
		t.Errorf("RenewLease by the holder after another node was refused: %v", err)
	}
}

func testOwnRenewal(t *testing.T, s LeaseStore) {
	l := acquire(t, s, 0, "a", LongTTL)
	again := acquire(t, s, 0, "a", LongTTL)
	if again.Epoch != l.Epoch {
		t.Errorf("AcquireLease of its own unexpired lease changed the epoch from %d to %d", l.Epoch, again.Epoch)
	}
	if again.ExpiresAt.Before(l.ExpiresAt) {
		t.Errorf("AcquireLease of its own lease moved its expiry back from %v to %v", l.ExpiresAt, again.ExpiresAt)
	}
	renewed, err := s.RenewLease(ctx, l, LongTTL)
	if err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	if renewed.Epoch != l.Epoch || renewed.Node != "a" || renewed.Partition != 0 || renewed.ExpiresAt.Before(again.ExpiresAt) {
		t.Errorf("RenewLease(%+v) = %+v", l, renewed)
	}
	// The renewed lease appends; so does the lease value from before the
	// renewals, which names the same node and epoch.
	if err := s.Append(ctx, 0, 0, leased(named(0, 0, 1, "x"), l)); err != nil {
		t.Errorf("Append with the renewed lease: %v", err)
	}
}

func testExpiredTaken(t *testing.T, s LeaseStore) {
	a := acquire(t, s, 0, "a", ShortTTL)
	WaitExpired(t, s, a)
	b := acquire(t, s, 0, "b", LongTTL)
	if b.Epoch != a.Epoch+1 {
		t.Errorf("takeover of an expired lease of epoch %d has epoch %d, want %d", a.Epoch, b.Epoch, a.Epoch+1)
	}
	wantHeld(t, s, 0, "a")
	if got := leaseOf(t, s, 0); got.Node != "b" || got.Epoch != b.Epoch || got.Expired {
		t.Errorf("Leases shows %+v after the takeover %+v", got, b)
	}
}

func testExpiredRetaken(t *testing.T, s LeaseStore) {
	a := acquire(t, s, 0, "a", ShortTTL)
	WaitExpired(t, s, a)
	again := acquire(t, s, 0, "a", LongTTL)
	if again.Epoch != a.Epoch+1 {
		t.Errorf("its own expired lease of epoch %d retaken with epoch %d, want %d", a.Epoch, again.Epoch, a.Epoch+1)
	}
	// The expired lease stays dead: it neither appends nor renews.
	wantCode(t, s.Append(ctx, 0, 0, leased(named(0, 0, 1, "old"), a)), stockd.CodeLeaseLost, "Append with the expired lease, retaken")
	if _, err := s.RenewLease(ctx, a, LongTTL); !stockd.IsCode(err, stockd.CodeLeaseLost) {
		t.Errorf("RenewLease of the expired lease, retaken = %v, want %s", err, stockd.CodeLeaseLost)
	}
	if err := s.Append(ctx, 0, 0, leased(named(0, 0, 1, "new"), again)); err != nil {
		t.Errorf("Append with the new lease: %v", err)
	}
	wantCommands(t, s, 0, "new-0")
}

func testRenewLost(t *testing.T, s LeaseStore) {
	t.Run("Expired", func(t *testing.T) {
		a := acquire(t, s, 0, "a", ShortTTL)
		WaitExpired(t, s, a)
		if _, err := s.RenewLease(ctx, a, LongTTL); !stockd.IsCode(err, stockd.CodeLeaseLost) {
			t.Fatalf("RenewLease of an expired lease = %v, want %s", err, stockd.CodeLeaseLost)
		}
		if got := leaseOf(t, s, 0); !got.Expired {
			t.Errorf("a refused renewal revived the lease: %+v", got)
		}
	})
	t.Run("TakenOver", func(t *testing.T) {
		a := acquire(t, s, 1, "a", ShortTTL)
		WaitExpired(t, s, a)
		b := acquire(t, s, 1, "b", LongTTL)
		if _, err := s.RenewLease(ctx, a, LongTTL); !stockd.IsCode(err, stockd.CodeLeaseLost) {
			t.Fatalf("RenewLease of a lease taken over = %v, want %s", err, stockd.CodeLeaseLost)
		}
		if got := leaseOf(t, s, 1); got.Node != "b" || got.Epoch != b.Epoch || got.Expired {
			t.Errorf("a refused renewal changed the new owner's lease: %+v, want %+v", got, b)
		}
		// A lease of another node at the current epoch is not current.
		forged := b
		forged.Node = "a"
		if _, err := s.RenewLease(ctx, forged, LongTTL); !stockd.IsCode(err, stockd.CodeLeaseLost) {
			t.Errorf("RenewLease naming another node at the current epoch = %v, want %s", err, stockd.CodeLeaseLost)
		}
	})
}

func testReleased(t *testing.T, s LeaseStore) {
	a := acquire(t, s, 0, "a", LongTTL)
	if err := s.ReleaseLease(ctx, a); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	if got := leaseOf(t, s, 0); !got.Expired {
		t.Errorf("Leases shows %+v after the release", got)
	}
	wantCode(t, s.Append(ctx, 0, 0, leased(named(0, 0, 1, "released"), a)), stockd.CodeLeaseLost, "Append with a released lease")
	if _, err := s.RenewLease(ctx, a, LongTTL); !stockd.IsCode(err, stockd.CodeLeaseLost) {
		t.Errorf("RenewLease of a released lease = %v, want %s", err, stockd.CodeLeaseLost)
	}
	b := acquire(t, s, 0, "b", LongTTL) // at once: no need to wait for LongTTL
	if b.Epoch != a.Epoch+1 {
		t.Errorf("lease taken after a release has epoch %d, want %d", b.Epoch, a.Epoch+1)
	}
	if err := s.ReleaseLease(ctx, a); err != nil {
		t.Errorf("ReleaseLease of a lease no longer current = %v, want nil", err)
	}
	if got := leaseOf(t, s, 0); got.Node != "b" || got.Epoch != b.Epoch || got.Expired {
		t.Errorf("releasing an old lease changed the current one: %+v, want %+v", got, b)
	}
	// Released and retaken by the same node: a new epoch.
	if err := s.ReleaseLease(ctx, b); err != nil {
		t.Fatal(err)
	}
	if again := acquire(t, s, 0, "b", LongTTL); again.Epoch != b.Epoch+1 {
		t.Errorf("lease retaken by its node after a release has epoch %d, want %d", again.Epoch, b.Epoch+1)
	}
	wantCommands(t, s, 0)
}

func testCurrentLeaseAppends(t *testing.T, s LeaseStore) {
	l := acquire(t, s, 0, "a", LongTTL)
	b := leased(named(0, 0, 2, "x"), l)
	b.Keys = []stockd.KeyRecord{{Key: "lease:k1", Partition: 0, Position: 1}}
	if err := s.Append(ctx, 0, 0, b); err != nil {
		t.Fatalf("Append with the current lease: %v", err)
	}
	// The lease does not lift the head check.
	wantCode(t, s.Append(ctx, 0, 0, leased(named(0, 0, 1, "stale-head"), l)), stockd.CodeConflict, "Append with the current lease at a stale head")
	if err := s.Append(ctx, 0, 2, leased(named(0, 2, 1, "y"), l)); err != nil {
		t.Fatalf("second Append with the current lease: %v", err)
	}
	wantCommands(t, s, 0, "x-0", "x-1", "y-0")
	ga, ok := s.(stockd.GroupAppender)
	if !ok {
		return
	}
	l1 := acquire(t, s, 1, "a", LongTTL)
	wait, err := ga.BeginAppendGroup(ctx, []stockd.Append{
		{Partition: 1, Expected: 0, Batch: leased(named(1, 0, 1, "g1"), l1)},
		{Partition: 0, Expected: 3, Batch: leased(named(0, 3, 1, "g0"), l)},
		{Partition: 0, Expected: 4, Batch: leased(named(0, 4, 1, "g0b"), l)},
	})
	if err == nil {
		err = wait()
	}
	if err != nil {
		t.Fatalf("group with current leases: %v", err)
	}
	wantCommands(t, s, 0, "x-0", "x-1", "y-0", "g0-0", "g0b-0")
	wantCommands(t, s, 1, "g1-0")
}

func testStaleLeaseRefused(t *testing.T, s LeaseStore) {
	// Partition 0 holds one batch of b's; its lease history: a (expired),
	// then b (current).
	a := acquire(t, s, 0, "a", ShortTTL)
	WaitExpired(t, s, a)
	b := acquire(t, s, 0, "b", LongTTL)
	if err := s.Append(ctx, 0, 0, leased(named(0, 0, 2, "b"), b)); err != nil {
		t.Fatalf("Append of the owner: %v", err)
	}
	// Partition 1's lease expired without being taken over.
	c := acquire(t, s, 1, "c", ShortTTL)
	WaitExpired(t, s, c)

	other := b
	other.Node = "never"
	cases := []struct {
		name  string
		p     int
		lease stockd.Lease
	}{
		{"OldEpoch", 0, a},
		{"AnotherNodeAtTheCurrentEpoch", 0, other},
		{"AFutureEpoch", 0, stockd.Lease{Partition: 0, Node: "b", Epoch: b.Epoch + 1}},
		{"ExpiredNotTakenOver", 1, c},
		{"AnEpochNeverGranted", 1, stockd.Lease{Partition: 1, Node: "c", Epoch: c.Epoch + 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := head(t, s, tc.p)
			before := readAll(t, s, tc.p)
			batch := leased(named(tc.p, h, 2, "stale"), tc.lease)
			batch.Keys = []stockd.KeyRecord{{Key: "stale:" + tc.name, Partition: tc.p, Position: h + 1}}
			batch.Retired = []stockd.RetiredRecord{{Key: "retired:" + tc.name, Partition: tc.p, Position: h + 1, Data: []byte{1}}}
			wantCode(t, s.Append(ctx, tc.p, h, batch), stockd.CodeLeaseLost, "Append with lease %+v", tc.lease)
			if got := head(t, s, tc.p); got != h {
				t.Errorf("a refused append moved the head from %d to %d", h, got)
			}
			equalEvents(t, readAll(t, s, tc.p), before, "partition %d after a refused append", tc.p)
			if _, ok, err := s.LookupRetired(ctx, "retired:"+tc.name); err != nil || ok {
				t.Errorf("a refused append wrote its retired record: %v, %v", ok, err)
			}
		})
	}
	// The refused keys were not recorded: the owner appends them.
	fresh := leased(named(0, 2, 1, "b2"), b)
	fresh.Keys = []stockd.KeyRecord{{Key: "stale:OldEpoch", Partition: 0, Position: 3}}
	if err := s.Append(ctx, 0, 2, fresh); err != nil {
		t.Errorf("Append by the owner of a key a refused append named: %v", err)
	}
	wantCommands(t, s, 0, "b-0", "b-1", "b2-0")
	wantCommands(t, s, 1)
	// A lease of another partition is a caller's error.
	wantCode(t, s.Append(ctx, 1, 0, leased(named(1, 0, 1, "wrong"), b)), stockd.CodeInvalid, "Append carrying another partition's lease")
	wantCommands(t, s, 1)
}

func testStaleGroup(t *testing.T, s LeaseStore) {
	ga, ok := s.(stockd.GroupAppender)
	if !ok {
		t.Skip("the store is not a GroupAppender")
	}
	cur := acquire(t, s, 0, "a", LongTTL)
	old := acquire(t, s, 1, "a", ShortTTL)
	WaitExpired(t, s, old)
	acquire(t, s, 1, "b", LongTTL)
	wait, err := ga.BeginAppendGroup(ctx, []stockd.Append{
		{Partition: 0, Expected: 0, Batch: leased(named(0, 0, 2, "g0"), cur)},
		{Partition: 1, Expected: 0, Batch: leased(named(1, 0, 1, "g1"), old)},
	})
	if err == nil {
		err = wait()
	}
	wantCode(t, err, stockd.CodeLeaseLost, "group with one stale lease")
	wantCommands(t, s, 0)
	wantCommands(t, s, 1)
	// Two appends of one partition in one group carrying different
	// leases are a caller's error.
	_, err = ga.BeginAppendGroup(ctx, []stockd.Append{
		{Partition: 0, Expected: 0, Batch: leased(named(0, 0, 1, "g0"), cur)},
		{Partition: 0, Expected: 1, Batch: leased(named(0, 1, 1, "g0b"), stockd.Lease{Partition: 0, Node: "z", Epoch: 9})},
	})
	wantCode(t, err, stockd.CodeInvalid, "group whose appends of one partition carry different leases")
	wantCommands(t, s, 0)
}

func testBadLeaseArguments(t *testing.T, s LeaseStore) {
	for _, c := range []struct {
		p    int
		node string
		ttl  time.Duration
	}{{-1, "a", LongTTL}, {s.Partitions(), "a", LongTTL}, {0, "", LongTTL}, {0, "a\x00b", LongTTL}, {0, "a", 0}, {0, "a", -time.Second}} {
		_, ok, err := s.AcquireLease(ctx, c.p, c.node, c.ttl)
		wantCode(t, err, stockd.CodeInvalid, "AcquireLease(%d, %q, %v)", c.p, c.node, c.ttl)
		if ok {
			t.Errorf("AcquireLease(%d, %q, %v) granted a lease", c.p, c.node, c.ttl)
		}
	}
	l := acquire(t, s, 0, "a", LongTTL)
	zero := l
	zero.Epoch = 0
	_, err := s.RenewLease(ctx, zero, LongTTL)
	wantCode(t, err, stockd.CodeInvalid, "RenewLease of epoch 0")
	_, err = s.RenewLease(ctx, l, 0)
	wantCode(t, err, stockd.CodeInvalid, "RenewLease for 0s")
	wantCode(t, s.Heartbeat(ctx, stockd.Node{ID: "", URL: "http://x"}), stockd.CodeInvalid, "Heartbeat without an ID")
}

func testHeartbeat(t *testing.T, s LeaseStore) {
	nodes, err := s.Nodes(ctx)
	if err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes of a new store = %v, %v", nodes, err)
	}
	if err := s.Heartbeat(ctx, stockd.Node{ID: "n2", URL: "http://n2:8080"}); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if err := s.Heartbeat(ctx, stockd.Node{ID: "n1", URL: "http://n1:8080", SeenAt: time.Unix(1, 0)}); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	nodes, err = s.Nodes(ctx)
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	if len(nodes) != 2 || nodes[0].ID != "n1" || nodes[1].ID != "n2" || nodes[0].URL != "http://n1:8080" || nodes[1].URL != "http://n2:8080" {
		t.Fatalf("Nodes = %+v, want n1 and n2 with their URLs, in ID order", nodes)
	}
	first := nodes[0].SeenAt
	if first.IsZero() || first.Year() < 2000 {
		t.Errorf("n1 seen at %v: the store's time, not the caller's, is wanted", first)
	}
	if err := s.Heartbeat(ctx, stockd.Node{ID: "n1", URL: "http://n1:9090"}); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	nodes, err = s.Nodes(ctx)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	if nodes[0].URL != "http://n1:9090" || nodes[0].SeenAt.Before(first) {
		t.Errorf("after a second heartbeat n1 is %+v, want URL http://n1:9090 seen at or after %v", nodes[0], first)
	}
	// A node that leaves is no longer listed; leaving twice, or a node
	// never seen, is not an error.
	if err := s.Leave(ctx, "n1"); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := s.Leave(ctx, "n1"); err != nil {
		t.Fatalf("Leave a second time: %v", err)
	}
	nodes, err = s.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].ID != "n2" {
		t.Fatalf("Nodes after n1 left = %+v, %v; want n2 only", nodes, err)
	}
}

// TakeoverRacingAppend checks that a takeover racing a stream of appends
// carrying the lease it takes over never loses an acknowledged batch: every
// append is either committed before the takeover (and the new owner, reading
// the partition once it holds the lease, sees it) or refused with
// CodeLeaseLost (and is nowhere), never committed after the new owner read
// the partition. The lease goes back and forth between a node on store a and
// a node on store b, which may be one store.
func TakeoverRacingAppend(t *testing.T, a, b LeaseStore) {
	type side struct {
		s    LeaseStore
		node string
	}
	owner, other := side{a, "racer-a"}, side{b, "racer-b"}
	l := acquire(t, owner.s, 0, owner.node, ShortTTL)
	for round := range 4 {
		h := head(t, owner.s, 0)
		type result struct {
			acked []string
			err   error
		}
		done := make(chan result, 1)
		go func(s LeaseStore, l stockd.Lease, h uint64) {
			var r result
			for i := 0; ; i++ {
				n := 1 + i%3
				batch := leased(named(0, h, n, fmt.Sprintf("r%d-%d", round, i)), l)
				err := s.Append(ctx, 0, h, batch)
				if err != nil {
					if !stockd.IsCode(err, stockd.CodeLeaseLost) {
						r.err = err
					}
					done <- r
					return
				}
				r.acked = append(r.acked, commandIDs(batch.Events)...)
				h += uint64(n)
			}
		}(owner.s, l, h)

		// The other node takes the partition over as soon as the lease
		// expires, while the owner keeps appending, and reads it.
		var next stockd.Lease
		deadline := time.Now().Add(10 * time.Second)
		for {
			nl, ok, err := other.s.AcquireLease(ctx, 0, other.node, ShortTTL)
			if err != nil {
				t.Fatalf("round %d: AcquireLease: %v", round, err)
			}
			if ok {
				next = nl
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the lease was not free after 10s", round)
			}
			time.Sleep(2 * time.Millisecond)
		}
		seen := readAll(t, other.s, 0)
		r := <-done
		if r.err != nil {
			t.Fatalf("round %d: the owner's append failed with %v, want success or %s", round, r.err, stockd.CodeLeaseLost)
		}
		if next.Epoch != l.Epoch+1 {
			t.Errorf("round %d: takeover epoch %d, want %d", round, next.Epoch, l.Epoch+1)
		}
		// What the new owner read is exactly what was there before, and
		// every batch the old owner was told was written.
		want := commandIDs(seen[:min(int(h), len(seen))])
		want = append(want, r.acked...)
		if got := commandIDs(seen); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: the new owner read %d events, want the %d before the round and the %d acknowledged (%d)", round, len(got), h, len(r.acked), len(want))
		}
		// Nothing was committed after the new owner read.
		if after := readAll(t, other.s, 0); len(after) != len(seen) {
			t.Fatalf("round %d: %d events were committed with the old lease after the takeover", round, len(after)-len(seen))
		}
		t.Logf("round %d: %d events acknowledged before the takeover at epoch %d", round, len(r.acked), next.Epoch)
		owner, other, l = other, owner, next
	}
}

// StaleOwnerCannotAppend: node A on store a holds partition 0 and appends,
// then pauses (stops renewing) past its lease; node B on store b takes the
// partition over (a new epoch) and appends; A resumes and appends with its
// old lease at what it believes the head is, and at the real head: both are
// refused, nothing is written, and B's events are intact. Stores a and b may
// be one store.
func StaleOwnerCannotAppend(t *testing.T, a, b LeaseStore) {
	la := acquire(t, a, 0, "node-a", ShortTTL)
	if err := a.Append(ctx, 0, 0, leased(named(0, 0, 2, "a"), la)); err != nil {
		t.Fatalf("A's append while it holds the lease: %v", err)
	}
	// A pauses: no renewal. B waits for the lease to expire by the
	// store's clock and takes it over.
	WaitExpired(t, b, la)
	lb := acquire(t, b, 0, "node-b", LongTTL)
	if lb.Epoch != la.Epoch+1 {
		t.Fatalf("B took the lease at epoch %d, want %d", lb.Epoch, la.Epoch+1)
	}
	if h := head(t, b, 0); h != 2 {
		t.Fatalf("B reads head %d, want 2", h)
	}
	if err := b.Append(ctx, 0, 2, leased(named(0, 2, 3, "b"), lb)); err != nil {
		t.Fatalf("B's append: %v", err)
	}
	// A resumes, unaware.
	err := a.Append(ctx, 0, 2, leased(named(0, 2, 1, "a-stale"), la))
	if !stockd.IsCode(err, stockd.CodeLeaseLost) {
		t.Fatalf("A's append with its old lease at its old head = %v, want %s", err, stockd.CodeLeaseLost)
	}
	err = a.Append(ctx, 0, 5, leased(named(0, 5, 1, "a-stale-at-head"), la))
	if !stockd.IsCode(err, stockd.CodeLeaseLost) {
		t.Fatalf("A's append with its old lease at the real head = %v, want %s", err, stockd.CodeLeaseLost)
	}
	var se *stockd.Error
	if !errors.As(err, &se) || se.Message == "" {
		t.Errorf("refusal %v carries no message", err)
	}
	if _, err := a.RenewLease(ctx, la, LongTTL); !stockd.IsCode(err, stockd.CodeLeaseLost) {
		t.Errorf("A's renewal after the takeover = %v, want %s", err, stockd.CodeLeaseLost)
	}
	wantHeld(t, a, 0, "node-a")
	want := append(ids("a", 2), ids("b", 3)...)
	wantCommands(t, a, 0, want...)
	wantCommands(t, b, 0, want...)
	// B goes on.
	if err := b.Append(ctx, 0, 5, leased(named(0, 5, 1, "b2"), lb)); err != nil {
		t.Fatalf("B's next append: %v", err)
	}
}
