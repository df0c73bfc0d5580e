package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// fakeCluster is a test double of a cluster of stockd nodes on one store,
// for the load generator, NOT a stockd substitute: its nodes share one
// fakeStockd, answer GET /readyz, GET /v1/cluster and GET /v1/locations/{id},
// and count the requests each gets. The first node holds every partition
// until the last has started and been asked a few times about the cluster;
// then the leases spread over all of them, as a real cluster's hand-over
// does; the last node is not ready until then, and a location is known to
// the other nodes only a few looks after it was configured.
type fakeCluster struct {
	f     *fakeStockd
	n     int
	parts int

	mu       sync.Mutex
	ids      []string
	urls     []string
	schemas  map[string]bool
	looks    int // GET /v1/cluster answered since every node started
	located  int // looks since the location was configured; -1: never
	spreadAt int // the look at which the leases spread
	stopped  int // nodes stopped
	requests []*atomic.Int64
}

func newFakeCluster(n int) *fakeCluster {
	return &fakeCluster{f: newFakeStockd(), n: n, parts: 8, schemas: map[string]bool{}, located: -1, spreadAt: 6}
}

// install makes StartEmbedded start the nodes of c, restoring the previous
// StartEmbedded when the test ends.
func (c *fakeCluster) install(t *testing.T) {
	t.Helper()
	prev := StartEmbedded
	t.Cleanup(func() { StartEmbedded = prev })
	StartEmbedded = func(ctx context.Context, dir, _, store, schema string) (string, func(), error) {
		if dir == "" || store == "" || schema == "" {
			return "", nil, errors.New("a cluster node needs a data dir, a store and a schema")
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.ids) == c.n {
			return "", nil, errors.New("too many nodes")
		}
		c.schemas[schema] = true
		k := len(c.ids)
		c.ids = append(c.ids, fmt.Sprintf("node-%d", k+1))
		count := &atomic.Int64{}
		c.requests = append(c.requests, count)
		srv := httptest.NewServer(c.handler(k, count))
		c.urls = append(c.urls, srv.URL)
		return srv.URL, func() {
			srv.Close()
			c.mu.Lock()
			c.stopped++
			c.mu.Unlock()
		}, nil
	}
}

func (c *fakeCluster) spread() bool { return len(c.ids) == c.n && c.looks >= c.spreadAt }

func (c *fakeCluster) handler(k int, count *atomic.Int64) http.Handler {
	inner := c.f.handler()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		ready := k < c.n-1 || c.spread()
		c.mu.Unlock()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"type":"about:blank","title":"Unavailable","status":503,"code":"unavailable"}`))
			return
		}
		w.Write([]byte(`{"status":"ready"}`))
	})
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.ids) == c.n {
			c.looks++
		}
		if c.located >= 0 {
			c.located++
		}
		info := stockd.ClusterInfo{Node: c.ids[k], Store: stockd.StorePostgres}
		for _, id := range c.ids {
			info.Nodes = append(info.Nodes, stockd.Node{ID: id})
		}
		for p := range c.parts {
			l := stockd.Lease{Partition: p, Node: c.ids[0], Epoch: 1}
			if c.spread() {
				l.Node, l.Epoch = c.ids[p%c.n], 2
			}
			info.Leases = append(info.Leases, l)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(info)
	})
	mux.HandleFunc("PUT /v1/locations/{id}", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.located = 0
		c.mu.Unlock()
		inner.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /v1/locations/{id}", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		// The other nodes learn of it after a while: count the GETs.
		c.located++
		known := k == 0 || c.located > 3
		c.mu.Unlock()
		if !known {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write([]byte(`{"id":"w1"}`))
	})
	mux.Handle("/", inner)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && (r.URL.Path == "/v1/reservations" || r.URL.Path == "/v1/batch") {
			count.Add(1)
		}
		mux.ServeHTTP(w, r)
	})
}

// TestStartClusterSettles checks that startCluster starts its nodes on one
// schema with data directories of their own, and returns only once the
// leases have spread over every node and stayed put, every node ready.
func TestStartClusterSettles(t *testing.T) {
	c := newFakeCluster(3)
	c.install(t)
	start := time.Now()
	urls, stop, err := startCluster(context.Background(), NewHTTPClient(4), 3, t.TempDir(), "postgres://x/y", "s1")
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	spread, schemas := c.spread(), len(c.schemas)
	c.mu.Unlock()
	if len(urls) != 3 || !spread || schemas != 1 {
		t.Errorf("%d urls, leases spread %v, %d schemas; want 3, true, 1", len(urls), spread, schemas)
	}
	if d := time.Since(start); d < settleStable {
		t.Errorf("settled after %s, less than the %s the leases must stay put", d, settleStable)
	}
	stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped != 3 {
		t.Errorf("%d nodes stopped, want 3", c.stopped)
	}
}

// TestStartClusterNeverSettles checks that a cluster whose leases never
// spread over every node is an error that says why, and its nodes stopped.
func TestStartClusterNeverSettles(t *testing.T) {
	c := newFakeCluster(3)
	c.spreadAt = 1 << 30
	c.install(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _, err := startCluster(ctx, NewHTTPClient(4), 3, t.TempDir(), "postgres://x/y", "s1")
	if err == nil || !strings.Contains(err.Error(), "did not settle") || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("err = %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped != 3 {
		t.Errorf("%d nodes stopped, want 3", c.stopped)
	}
}

// TestClusterTargetsRoundRobin runs stockd-pg3 and stockd-pg3-client
// against a fake cluster: stocking waits until every node knows the
// location, and the clients spread their requests evenly over the nodes.
func TestClusterTargetsRoundRobin(t *testing.T) {
	c := newFakeCluster(3)
	c.install(t)
	hc := NewHTTPClient(16)
	urls, stop, err := startCluster(context.Background(), hc, 3, t.TempDir(), "postgres://x/y", "s1")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	s := NewStockdCluster(urls, hc, time.Minute)
	s.name = "stockd-pg3"
	w := Workload{Name: "uniform", SKUs: 30, Stock: 1000}
	for _, target := range []Target{s.Single(), s.Client()} {
		for _, n := range c.requests {
			n.Store(0)
		}
		rep, err := Run(context.Background(), Config{Workloads: []Workload{w}, Clients: []int{6}, Ops: 600}, []Target{target})
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[0]
		if r.OK != 600 || r.Errors.Total() != 0 {
			t.Errorf("%s: ok %d, errors %+v; want 600 ok", target.Name(), r.OK, r.Errors)
		}
		var total int64
		for i, n := range c.requests {
			got := n.Load()
			total += got
			if got == 0 {
				t.Errorf("%s: node %d got no request", target.Name(), i+1)
			}
		}
		// One request per reservation: exactly a third each (the
		// warm-up's requests count too, evenly enough).
		if target.Name() == "stockd-pg3" {
			for i, n := range c.requests {
				if got := n.Load(); got < total/4 || got > total/2 {
					t.Errorf("stockd-pg3: node %d got %d of %d requests, want about a third", i+1, got, total)
				}
			}
		}
	}
	if got := (Target)(s.Client()).Name(); got != "stockd-pg3-client" {
		t.Errorf("client target named %q", got)
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.f.dupIDs != 0 {
		t.Errorf("%d reservation ids were sent twice", c.f.dupIDs)
	}
}
