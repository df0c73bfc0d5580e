package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/internal/pgtest"
)

// The proof of DESIGN §6 with real processes: several `stockd serve` on one
// PostgreSQL schema, killed and paused with signals.

// nodeTTL is the lease ttl the nodes of these tests run with.
const nodeTTL = 2 * time.Second

// clusterSchema returns the DSN of the test database and a fresh schema,
// dropped when the test ends; it skips the test without a database, and in
// the run of the e2e suite on PostgreSQL (which would only repeat it).
func clusterSchema(t *testing.T) (string, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the stockd binary and runs several of it; skipped with -short")
	}
	if OnPostgres() {
		t.Skip("runs in the e2e suite's run on the embedded store, with its own schema")
	}
	return pgtest.Schema(t, "e2e_nodes_", "the cluster tests need a PostgreSQL to share")
}

// node is one `stockd serve` process of a cluster.
type node struct {
	cmd *exec.Cmd
	url string
	c   *client.Client
}

// startNode runs `stockd serve` on the schema and waits until it listens.
func startNode(t *testing.T, exe, dsn, schema string) *node {
	t.Helper()
	cmd, u := runServe(t, exe, "--addr", "127.0.0.1:0", "--data", t.TempDir(),
		"--store", dsn, "--store-schema", schema, "--partitions", "8",
		"--lease-ttl", nodeTTL.String(), "--log-level", "error")
	return &node{cmd: cmd, url: u, c: client.New(u)}
}

// startCluster starts n nodes on one schema and waits until every partition
// is leased to a live node and every node is ready.
func startCluster(t *testing.T, n int) ([]*node, string, string) {
	t.Helper()
	dsn, schema := clusterSchema(t)
	exe := buildStockd(t)
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, exe, dsn, schema)
	}
	ctx := context.Background()
	waitUntil(t, 30*time.Second, "every node serves some partitions and is ready", func() error {
		info, err := nodes[0].c.Cluster(ctx)
		if err != nil {
			return err
		}
		holders := map[string]int{}
		for _, l := range info.Leases {
			if l.Expired || l.Node == "" {
				return fmt.Errorf("partition %d has no owner", l.Partition)
			}
			holders[l.Node]++
		}
		if len(holders) != n || len(info.Nodes) != n {
			return fmt.Errorf("%d nodes hold leases, %d live; want %d", len(holders), len(info.Nodes), n)
		}
		for _, nd := range nodes {
			if err := nd.c.Ready(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	return nodes, dsn, schema
}

// waitUntil polls cond every 20 ms until it returns nil, failing the test
// with its last error after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownerOf returns the node whose process holds partition p's lease, by
// asking via.
func ownerOf(t *testing.T, via *node, nodes []*node, p int) (*node, string) {
	t.Helper()
	info, err := via.c.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id := info.Leases[p].Node
	for _, nd := range info.Nodes {
		if nd.ID == id {
			for _, n := range nodes {
				if n.url == nd.URL {
					return n, id
				}
			}
		}
	}
	t.Fatalf("partition %d is held by %q, which is not among the nodes", p, id)
	return nil, ""
}

// retryable reports whether a caller should send the command again,
// through another node: the node did not answer, or answered unavailable.
func retryable(err error) bool {
	code := stockd.ErrorCode(err)
	return code == "" || code == stockd.CodeUnavailable || code == stockd.CodeOverloaded || code == stockd.CodeLeaseLost
}

// TestAFlashSaleThroughThreeNodesGrantsTheStockExactlyEvenWhenTheOwnerIsKilled
// is the proof: three stockd processes on one PostgreSQL, a flash
// sale on one hot SKU through all three at once; the node serving the SKU
// is killed with SIGKILL mid-sale. Its partitions move to the others within
// the lease ttl plus a second, callers retrying the same reservation through
// the other nodes succeed, every acknowledged reservation is there, and the
// SKU's reserved units are exactly the stock: none granted twice, none lost.
func TestAFlashSaleThroughThreeNodesGrantsTheStockExactlyEvenWhenTheOwnerIsKilled(t *testing.T) {
	nodes, _, _ := startCluster(t, 3)
	ctx := context.Background()
	const stock, callers = 300, 450
	const sku = "hot"
	p := stockd.PartitionOf(sku, 8)
	c0 := nodes[0].c
	if _, err := c0.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the receipt is taken", func() error {
		_, _, err := nodes[1].c.Receive(ctx, stockd.ReceiveStock{ID: "stock", SKU: sku, Location: "w1", Quantity: stock})
		return err
	})
	victim, victimID := ownerOf(t, nodes[0], nodes, p)
	var survivors []*node
	for _, n := range nodes {
		if n != victim {
			survivors = append(survivors, n)
		}
	}

	var granted, refused, acks atomic.Int64
	var mu sync.Mutex
	grantedIDs := map[string]bool{}
	var failures []string
	halfway := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id := fmt.Sprintf("c-%d", i)
			cmd := stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}}}
			deadline := time.Now().Add(nodeTTL + 20*time.Second)
			for attempt := 0; ; attempt++ {
				// Callers spread over every node, and move on to the
				// next when one does not answer.
				n := nodes[(i+attempt)%len(nodes)]
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				res, _, err := n.c.Reserve(rctx, cmd)
				cancel()
				switch {
				case err == nil && res.Status == stockd.StatusHeld:
					granted.Add(1)
					mu.Lock()
					grantedIDs[id] = true
					mu.Unlock()
					if acks.Add(1) == stock/3 {
						once.Do(func() { close(halfway) })
					}
					return
				case stockd.ErrorCode(err) == stockd.CodeInsufficientStock:
					refused.Add(1)
					return
				case err != nil && retryable(err) && time.Now().Before(deadline):
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %+v, %v", id, res, err))
				mu.Unlock()
				return
			}
		}()
	}
	close(start)
	select {
	case <-halfway:
	case <-time.After(time.Minute):
		t.Fatal("the sale did not get a third of the way within a minute")
	}
	killed := time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.cmd.Wait()
	// The partition moves to a live node within the ttl and a second.
	var moved time.Duration
	waitUntil(t, nodeTTL+5*time.Second, "the hot partition moves to a live node", func() error {
		info, err := survivors[0].c.Cluster(ctx)
		if err != nil {
			return err
		}
		if l := info.Leases[p]; l.Node == victimID || l.Expired {
			return fmt.Errorf("partition %d: %+v", p, l)
		}
		moved = time.Since(killed)
		return nil
	})
	if moved > nodeTTL+time.Second {
		t.Errorf("the hot partition moved %v after the kill; want within the lease ttl (%v) plus a second", moved, nodeTTL)
	}
	t.Logf("the hot partition moved %v after the kill (ttl %v)", moved.Round(time.Millisecond), nodeTTL)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if granted.Load() != stock || granted.Load()+refused.Load() != callers {
		t.Fatalf("granted %d, refused %d of %d callers; want %d granted", granted.Load(), refused.Load(), callers, stock)
	}
	// What the store holds, read through each survivor: exactly the
	// granted units, each acknowledged reservation held.
	for _, n := range survivors {
		var st stockd.SKUState
		waitUntil(t, 5*time.Second, "reading the SKU through a survivor", func() error {
			var err error
			st, err = n.c.SKU(ctx, sku, stockd.AsOf{})
			if err != nil && !retryable(err) {
				t.Fatalf("%s through %s: %v", sku, n.url, err)
			}
			return err
		})
		if st.Reserved != stock || st.Available != 0 {
			t.Fatalf("%s through %s = %+v; want %d reserved, none available", sku, n.url, st, stock)
		}
	}
	for id := range grantedIDs {
		r, err := survivors[0].c.GetReservation(ctx, id)
		if err != nil || r.Status != stockd.StatusHeld {
			t.Fatalf("acknowledged reservation %s = %+v, %v; want held", id, r, err)
		}
	}
}

// TestAStaleOwnerPausedPastItsLeaseAnswersNothingItCouldNotKnow: the node
// serving a hot SKU is paused (SIGSTOP) past its leases; the others take
// its partitions over and sell the rest of the stock. A reservation sent to
// the paused node meanwhile waits in its socket; when the node goes on
// (SIGCONT) it must not grant it from its stale state: it answers that
// there is no stock, or that it is unavailable, and the store holds exactly
// the stock reserved.
func TestAStaleOwnerPausedPastItsLeaseAnswersNothingItCouldNotKnow(t *testing.T) {
	nodes, _, _ := startCluster(t, 3)
	ctx := context.Background()
	const stock = 20
	const sku = "paused"
	p := stockd.PartitionOf(sku, 8)
	if _, err := nodes[0].c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the receipt is taken", func() error {
		_, _, err := nodes[0].c.Receive(ctx, stockd.ReceiveStock{ID: "stock", SKU: sku, Location: "w1", Quantity: stock})
		return err
	})
	stale, staleID := ownerOf(t, nodes[0], nodes, p)
	var other *node
	for _, n := range nodes {
		if n != stale {
			other = n
			break
		}
	}
	if err := stale.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			stale.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	// Sent to the paused node: it waits in the socket until SIGCONT.
	late := make(chan error, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, _, err := stale.c.Reserve(rctx, stockd.Reserve{ID: "late", Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}}})
		late <- err
	}()
	waitUntil(t, nodeTTL+5*time.Second, "another node takes the paused node's partition", func() error {
		info, err := other.c.Cluster(ctx)
		if err != nil {
			return err
		}
		if l := info.Leases[p]; l.Node == staleID || l.Expired {
			return fmt.Errorf("partition %d: %+v", p, l)
		}
		return nil
	})
	// The others sell everything.
	for i := range stock {
		waitUntil(t, 10*time.Second, "a reservation through a live node", func() error {
			_, _, err := other.c.Reserve(ctx, stockd.Reserve{ID: fmt.Sprintf("live-%d", i), Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}}})
			if err != nil && !retryable(err) {
				t.Fatalf("reservation live-%d: %v", i, err)
			}
			return err
		})
	}
	paused = false
	if err := stale.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-late:
		if err == nil {
			t.Fatal("the stale owner granted a reservation after the stock was sold by the others")
		}
		var se *stockd.Error
		if code := stockd.ErrorCode(err); code != stockd.CodeInsufficientStock && !retryable(err) && !errors.As(err, &se) {
			t.Fatalf("the stale owner answered %v", err)
		}
		t.Logf("the stale owner answered: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the stale owner did not answer within a minute of SIGCONT")
	}
	st, err := other.c.SKU(ctx, sku, stockd.AsOf{})
	if err != nil || st.Reserved != stock || st.OnHand != stock {
		t.Fatalf("%s = %+v, %v; want exactly the %d units reserved", sku, st, err, stock)
	}
	if _, err := other.c.GetReservation(ctx, "late"); stockd.ErrorCode(err) != stockd.CodeNotFound {
		t.Fatalf("the late reservation = %v, want not found", err)
	}
}
