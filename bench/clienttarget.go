package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// Client returns the "stockd-client" target: one reservation per call of
// the Go client's Reserve, with the client coalescing concurrent calls into
// POST /v1/batch requests (client.WithBatching). It is what a Go service
// embedding the client gets without batching anything itself.
func (s *Stockd) Client() Target {
	return &clientTarget{s: s}
}

type clientTarget struct {
	s     *Stockd
	level int
}

func (t *clientTarget) Name() string {
	if t.s.name != "" {
		return t.s.name + "-client"
	}
	return "stockd-client"
}
func (t *clientTarget) OpsPerRequest() int { return 1 }
func (t *clientTarget) Close() error       { return nil }

func (t *clientTarget) Prepare(ctx context.Context, w Workload) error { return t.s.stock(ctx, w) }

func (t *clientTarget) Start(ctx context.Context, w Workload, clients int) (*Level, error) {
	t.level++
	ttl, err := time.ParseDuration(t.s.ttl[1 : len(t.s.ttl)-1])
	if err != nil {
		return nil, err
	}
	// One client for the level per node, shared by the workers sending to
	// that node (worker i to node i mod nodes): batching needs the calls of
	// many goroutines to meet in one client.
	bases := t.s.bases
	if len(bases) == 0 {
		bases = []string{t.s.base}
	}
	cs := make([]*client.Client, len(bases))
	for i, b := range bases {
		cs[i] = client.New(b, client.WithHTTPClient(t.s.client), client.WithBatching(1000, 2))
	}
	l := &Level{Workers: make([]Worker, clients)}
	for i := range l.Workers {
		l.Workers[i] = &clientWorker{
			c: cs[i%len(cs)], w: w, ttl: ttl, rnd: newRand(),
			prefix: fmt.Sprintf("%s-c%s%d-%d-", t.s.run, w.Name[:1], t.level, i),
		}
	}
	return l, nil
}

// clientWorker is one caller of the Go client.
type clientWorker struct {
	c      *client.Client
	w      Workload
	ttl    time.Duration
	prefix string
	seq    int64
	rnd    interface{ IntN(int) int }
}

func (k *clientWorker) Do(ctx context.Context, n int) Outcome {
	var out Outcome
	for range n {
		k.seq++
		sku := 0
		if k.w.SKUs > 1 {
			sku = k.rnd.IntN(k.w.SKUs)
		}
		_, _, err := k.c.Reserve(ctx, stockd.Reserve{
			ID: k.prefix + fmt.Sprint(k.seq), TTL: k.ttl,
			Lines: []stockd.ReserveLine{{SKU: k.w.SKU(sku), Quantity: 1}},
		})
		switch stockd.ErrorCode(err) {
		case "":
			out.OK++
		case stockd.CodeInsufficientStock:
			out.Insufficient++
		case stockd.CodeOverloaded, stockd.CodeRateLimited:
			out.Overloaded++
			out.Backoff = max(out.Backoff, client.RetryAfter(err))
		default:
			out.Other++
			if out.Err == nil {
				out.Err = err
			}
		}
	}
	return out
}
