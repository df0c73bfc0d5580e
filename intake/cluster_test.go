package intake_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/intake"
	"github.com/stockd/stockd/pebble"
)

// adoptEvery is the adoption interval of the cluster tests; "a few rounds"
// below is a bound in multiples of it.
const adoptEvery = 100 * time.Millisecond

// cluster is several intake nodes over one store and one engine, as nodes
// over one PostgreSQL share Records; live is what Options.Live reports.
type cluster struct {
	store *pebble.Store
	eng   *engine.Engine

	mu   sync.Mutex
	live map[string]bool
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	store := openStore(t)
	eng, err := engine.Open(t.Context(), store, engine.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	e2e.ConfigureLocations(t, eng, "w1")
	return &cluster{store: store, eng: eng, live: map[string]bool{}}
}

func (c *cluster) Live(context.Context) (map[string]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.live), nil
}

func (c *cluster) setLive(node string, live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if live {
		c.live[node] = true
	} else {
		delete(c.live, node)
	}
}

// node opens a live node's queue (paused: it queues without applying).
func (c *cluster) node(t *testing.T, id string, paused bool) *intake.Queue {
	t.Helper()
	c.setLive(id, true)
	return openQueue(t, c.eng, c.store, intake.Options{Node: id, Live: c.Live, AdoptEvery: adoptEvery, Paused: paused})
}

// recordNode is the node a command's record names.
func (c *cluster) recordNode(t *testing.T, id string) string {
	t.Helper()
	b, ok, err := c.store.GetRecord(t.Context(), intake.Kind, id)
	if err != nil || !ok {
		t.Fatalf("record %s: %v %v", id, ok, err)
	}
	var r struct {
		Node string `json:"node"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Node
}

func (c *cluster) onHand(t *testing.T, sku string) int64 {
	t.Helper()
	st, err := c.eng.SKU(t.Context(), sku, stockd.AsOf{})
	if err != nil {
		t.Fatal(err)
	}
	return st.OnHand
}

func submit(t *testing.T, q *intake.Queue, cmd stockd.SubmitCommand) {
	t.Helper()
	if _, created, err := q.SubmitCommand(t.Context(), cmd); err != nil || !created {
		t.Fatalf("submit %s: %v %v", cmd.ID, created, err)
	}
}

func command(id string, typ stockd.CommandType, body map[string]any) stockd.SubmitCommand {
	b, _ := json.Marshal(body)
	return stockd.SubmitCommand{ID: id, Type: typ, Body: b}
}

// dyingNodesCommands are a receipt of 5 and an adjustment of -5 of SKU B:
// applied out of order, the adjustment fails for want of stock.
func dyingNodesCommands(prefix string) []stockd.SubmitCommand {
	return []stockd.SubmitCommand{
		command(prefix+"-receive", stockd.CommandReceive, map[string]any{"id": prefix + "-r", "sku": "B", "location": "w1", "quantity": 5}),
		command(prefix+"-adjust", stockd.CommandAdjust, map[string]any{"id": prefix + "-a", "sku": "B", "location": "w1", "delta": -5, "reason": "damaged"}),
		command(prefix+"-receive-2", stockd.CommandReceive, map[string]any{"id": prefix + "-r2", "sku": "B", "location": "w1", "quantity": 3}),
	}
}

// waitApplied waits on q until the command finishes, at most within, and
// requires it applied.
func waitApplied(t *testing.T, q *intake.Queue, id string, within time.Duration) stockd.QueuedCommand {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	c, err := q.Wait(ctx, id)
	if err != nil || c.Status != stockd.CommandApplied {
		t.Fatalf("command %s within %v: %+v %v", id, within, c, err)
	}
	return c
}

// TestDeadNodesCommandsAreAppliedByAnother: commands queued by a node that
// then died without applying them (its queue paused, then closed, and Live
// no longer listing it) are adopted by a live node within a few AdoptEvery,
// applied once each in the dead node's submission order, and their records
// name the adopter.
func TestDeadNodesCommandsAreAppliedByAnother(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "node-a", true)
	b := c.node(t, "node-b", false)
	cmds := dyingNodesCommands("a")
	for _, cmd := range cmds {
		submit(t, a, cmd)
	}
	a.Close()
	c.setLive("node-a", false)
	start := time.Now()
	for _, cmd := range cmds {
		waitApplied(t, b, cmd.ID, 20*adoptEvery)
	}
	t.Logf("adopted and applied in %v (AdoptEvery %v)", time.Since(start), adoptEvery)
	for _, cmd := range cmds {
		if n := c.recordNode(t, cmd.ID); n != "node-b" {
			t.Errorf("record %s names %q, want the adopter node-b", cmd.ID, n)
		}
	}
	if got := c.onHand(t, "B"); got != 3 {
		t.Errorf("on hand %d, want 3: each command applied once, in order", got)
	}
	if b.Queued() != 0 {
		t.Errorf("node-b still has %d queued", b.Queued())
	}
}

// TestLiveNodesCommandsAreNotAdopted: a live node's queued commands (it is
// paused, so they stay queued) are left to it, even after another node has
// adopted, in the same rounds, the commands of a dead node; once it is no
// longer live they are adopted too.
func TestLiveNodesCommandsAreNotAdopted(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "node-a", true)
	dead := c.node(t, "node-c", true)
	b := c.node(t, "node-b", false)
	submit(t, a, receipt("a-1"))
	submit(t, dead, receipt("c-1"))
	dead.Close()
	c.setLive("node-c", false)
	// node-b has looked at every queued command, node-a's among them.
	waitApplied(t, b, "cmd-c-1", 20*adoptEvery)
	time.Sleep(3 * adoptEvery) // and a few rounds more
	if got, err := a.GetCommand(t.Context(), "cmd-a-1"); err != nil || got.Status != stockd.CommandQueued {
		t.Fatalf("the live node's command: %+v %v, want queued", got, err)
	}
	if n := c.recordNode(t, "cmd-a-1"); n != "node-a" {
		t.Fatalf("the live node's command names %q, want node-a", n)
	}
	if got := c.onHand(t, "A"); got != 1 {
		t.Fatalf("on hand %d, want 1 (only node-c's receipt)", got)
	}
	if a.Queued() != 1 {
		t.Fatalf("node-a has %d queued, want 1", a.Queued())
	}
	// The same command once node-a is gone.
	a.Close()
	c.setLive("node-a", false)
	waitApplied(t, b, "cmd-a-1", 20*adoptEvery)
	if got := c.onHand(t, "A"); got != 2 {
		t.Fatalf("on hand %d, want 2", got)
	}
}

// TestWaitOnOneNodeSeesCommandAppliedByAnother: Wait on a node sees a
// command finish that another node queued and applied — whether the waiter
// started before the command was submitted or after.
func TestWaitOnOneNodeSeesCommandAppliedByAnother(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "node-a", false)
	b := c.node(t, "node-b", false)
	early := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		got, err := b.Wait(ctx, "cmd-r-1")
		if err == nil && got.Status != stockd.CommandApplied {
			err = &stockd.Error{Code: stockd.CodeInternal, Message: "finished " + string(got.Status)}
		}
		early <- err
	}()
	time.Sleep(2 * adoptEvery) // the waiter waits for a command not yet submitted
	submit(t, a, receipt("r-1"))
	if err := <-early; err != nil {
		t.Fatalf("waiting on node-b before the submission: %v", err)
	}
	submit(t, a, receipt("r-2"))
	got := waitApplied(t, b, "cmd-r-2", 10*time.Second)
	if got.Attempts != 1 || !got.Created {
		t.Errorf("cmd-r-2 as node-b sees it: %+v", got)
	}
	if n := c.recordNode(t, "cmd-r-2"); n != "node-a" {
		t.Errorf("cmd-r-2 names %q, want node-a (not adopted)", n)
	}
}

// TestCommandsQueuedBeforeNodesAreAdopted: commands queued by a queue
// outside a cluster (their records name no node) are nobody's: the first
// node of a cluster adopts and applies them.
func TestCommandsQueuedBeforeNodesAreAdopted(t *testing.T) {
	c := newCluster(t)
	old := openQueue(t, c.eng, c.store, intake.Options{Paused: true})
	submit(t, old, receipt("r-1"))
	old.Close()
	if n := c.recordNode(t, "cmd-r-1"); n != "" {
		t.Fatalf("a record from outside a cluster names %q", n)
	}
	b := c.node(t, "node-b", false)
	waitApplied(t, b, "cmd-r-1", 20*adoptEvery)
	if n := c.recordNode(t, "cmd-r-1"); n != "node-b" {
		t.Errorf("adopted record names %q, want node-b", n)
	}
}
