package app

import (
	"context"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"sync"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/http"
)

// router is the stockd.Service a cluster node serves: its engine's, with
// every request for a partition another node serves sent on to that node
// (DESIGN §6: any node accepts any request). The engine decides where a
// request belongs, as it does for its own partitions, and refuses one it
// does not serve with engine.NotServed; the router then sends it to the node
// that held the partition's lease at the last look, with the cluster's token
// and the caller's name as the actor (http.ForwardedHeader).
//
// Commands sent to one node by one actor are batched as a client batches
// them (POST /v1/batch): while a batch is on its way, the next gathers, so a
// hot SKU on another node costs one round trip and one group commit per
// batch, not per request. Reads go one by one.
//
// A request forwarded once is never forwarded again; a node that gets one
// for a partition it does not serve (it is moving) answers unavailable with
// Retry-After, as does a node whose owner of the partition does not answer.
type router struct {
	*engine.Engine
	m     *member
	token string
	hc    *nethttp.Client
	log   *slog.Logger

	mu      sync.Mutex
	clients map[peerKey]*client.Client
}

// peerKey names the client that forwards one actor's requests to one node.
type peerKey struct{ url, actor string }

func newRouter(eng *engine.Engine, m *member, token string, log *slog.Logger) *router {
	t := nethttp.DefaultTransport.(*nethttp.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &router{
		Engine: eng, m: m, token: token, log: log,
		hc:      &nethttp.Client{Transport: t, Timeout: 30 * time.Second},
		clients: map[peerKey]*client.Client{},
	}
}

// handOverWait bounds how long a request for a partition that is changing
// hands waits for a node to serve it: while no live node holds its lease, or
// this node holds it and is still loading it.
const handOverWait = time.Second

// route sends on a request the engine refused with err: it returns the
// client of the node serving the request's partition, or false when the
// request is not to be sent on (err is not engine.NotServed, or the request
// was forwarded already) and the caller answers err. While no other node is
// known to serve the partition it waits, up to handOverWait, and then tells
// the caller to run the request here again (retry), in case this node
// took the partition meanwhile.
func (r *router) route(ctx context.Context, err error, waited *time.Duration) (c *client.Client, p int, retry bool) {
	p, ok := engine.NotServed(err)
	if !ok || http.Forwarded(ctx) {
		return nil, p, false
	}
	owner, ok := r.m.owner(p)
	if !ok || owner.ID == r.m.node.ID || owner.URL == "" {
		if *waited >= handOverWait {
			return nil, p, false
		}
		const step = 25 * time.Millisecond
		select {
		case <-ctx.Done():
			return nil, p, false
		case <-time.After(step):
		}
		*waited += step
		return nil, p, true
	}
	key := peerKey{url: owner.URL, actor: stockd.ActorFrom(ctx)}
	r.mu.Lock()
	defer r.mu.Unlock()
	c = r.clients[key]
	if c == nil {
		actor := key.actor
		if actor == "" {
			actor = http.Anonymous
		}
		c = client.New(owner.URL, client.WithHTTPClient(r.hc), client.WithKey(r.token),
			client.WithHeader(http.ForwardedHeader, url.PathEscape(actor)),
			client.WithUserAgent("stockd-node/"+r.m.node.ID), client.WithBatching(0, 0))
		r.clients[key] = c
	}
	return c, p, false
}

// unreachable turns the failure to reach partition p's node into an
// unavailable answer the caller may retry; a refusal the node answered
// passes as it is.
func (r *router) unreachable(p int, err error) error {
	if err == nil || stockd.ErrorCode(err) != "" {
		return err
	}
	r.log.Warn("the node serving a partition did not answer a forwarded request", "partition", p, "err", err)
	return &stockd.Error{Code: stockd.CodeUnavailable, Message: fmt.Sprintf("the node serving partition %d did not answer; retry", p), RetryAfter: time.Second}
}

// forwardCreated runs a command that reports whether it created its entity.
func forwardCreated[C, T any](ctx context.Context, r *router, c C,
	local func(*engine.Engine, context.Context, C) (T, bool, error),
	remote func(*client.Client, context.Context, C) (T, bool, error),
) (T, bool, error) {
	var waited time.Duration
	for {
		v, created, err := local(r.Engine, ctx, c)
		cl, p, retry := r.route(ctx, err, &waited)
		switch {
		case retry:
			continue
		case cl != nil:
			v, created, err = remote(cl, ctx, c)
			err = r.unreachable(p, err)
		}
		return v, created, err
	}
}

// forward runs a command or a read.
func forward[C, T any](ctx context.Context, r *router, c C,
	local func(*engine.Engine, context.Context, C) (T, error),
	remote func(*client.Client, context.Context, C) (T, error),
) (T, error) {
	var waited time.Duration
	for {
		v, err := local(r.Engine, ctx, c)
		cl, p, retry := r.route(ctx, err, &waited)
		switch {
		case retry:
			continue
		case cl != nil:
			v, err = remote(cl, ctx, c)
			err = r.unreachable(p, err)
		}
		return v, err
	}
}

func (r *router) ConfigureLocation(ctx context.Context, c stockd.ConfigureLocation) (stockd.Location, error) {
	return forward(ctx, r, c, (*engine.Engine).ConfigureLocation, (*client.Client).ConfigureLocation)
}

func (r *router) ConfigureSKU(ctx context.Context, c stockd.ConfigureSKU) (stockd.SKUConfig, error) {
	return forward(ctx, r, c, (*engine.Engine).ConfigureSKU, (*client.Client).ConfigureSKU)
}

func (r *router) Receive(ctx context.Context, c stockd.ReceiveStock) (stockd.Receipt, bool, error) {
	return forwardCreated(ctx, r, c, (*engine.Engine).Receive, (*client.Client).Receive)
}

func (r *router) Adjust(ctx context.Context, c stockd.AdjustStock) (stockd.Adjustment, bool, error) {
	return forwardCreated(ctx, r, c, (*engine.Engine).Adjust, (*client.Client).Adjust)
}

func (r *router) Count(ctx context.Context, c stockd.CountStock) (stockd.Count, bool, error) {
	return forwardCreated(ctx, r, c, (*engine.Engine).Count, (*client.Client).Count)
}

func (r *router) Transfer(ctx context.Context, c stockd.TransferStock) (stockd.Transfer, bool, error) {
	return forwardCreated(ctx, r, c, (*engine.Engine).Transfer, (*client.Client).Transfer)
}

func (r *router) ArriveTransfer(ctx context.Context, c stockd.ArriveTransfer) (stockd.Transfer, error) {
	return forward(ctx, r, c, (*engine.Engine).ArriveTransfer, (*client.Client).ArriveTransfer)
}

func (r *router) GetTransfer(ctx context.Context, id string) (stockd.Transfer, error) {
	return forward(ctx, r, id, (*engine.Engine).GetTransfer, (*client.Client).GetTransfer)
}

func (r *router) ExpectReceipt(ctx context.Context, c stockd.ExpectReceipt) (stockd.ExpectedReceipt, bool, error) {
	return forwardCreated(ctx, r, c, (*engine.Engine).ExpectReceipt, (*client.Client).ExpectReceipt)
}

func (r *router) ArriveExpected(ctx context.Context, c stockd.ArriveExpected) (stockd.ExpectedReceipt, error) {
	return forward(ctx, r, c, (*engine.Engine).ArriveExpected, (*client.Client).ArriveExpected)
}

func (r *router) CancelExpected(ctx context.Context, c stockd.CancelExpected) (stockd.ExpectedReceipt, error) {
	return forward(ctx, r, c, (*engine.Engine).CancelExpected, (*client.Client).CancelExpected)
}

func (r *router) GetExpectedReceipt(ctx context.Context, id string) (stockd.ExpectedReceipt, error) {
	return forward(ctx, r, id, (*engine.Engine).GetExpectedReceipt, (*client.Client).GetExpectedReceipt)
}

func (r *router) Reserve(ctx context.Context, c stockd.Reserve) (stockd.Reservation, bool, error) {
	return forwardCreated(ctx, r, c, (*engine.Engine).Reserve, (*client.Client).Reserve)
}

func (r *router) Extend(ctx context.Context, c stockd.ExtendReservation) (stockd.Reservation, error) {
	return forward(ctx, r, c, (*engine.Engine).Extend, (*client.Client).Extend)
}

func (r *router) Change(ctx context.Context, c stockd.ChangeReservation) (stockd.Reservation, error) {
	return forward(ctx, r, c, (*engine.Engine).Change, (*client.Client).Change)
}

func (r *router) Commit(ctx context.Context, c stockd.CommitReservation) (stockd.Reservation, error) {
	return forward(ctx, r, c, (*engine.Engine).Commit, (*client.Client).Commit)
}

func (r *router) Release(ctx context.Context, c stockd.ReleaseReservation) (stockd.Reservation, error) {
	return forward(ctx, r, c, (*engine.Engine).Release, (*client.Client).Release)
}

func (r *router) GetReservation(ctx context.Context, id string) (stockd.Reservation, error) {
	return forward(ctx, r, id, (*engine.Engine).GetReservation, (*client.Client).GetReservation)
}

// SKU reads a SKU's state now through the node serving it; a past state is
// rebuilt here from the store. A bundle's is derived here from its
// components', each read through the node serving it.
func (r *router) SKU(ctx context.Context, sku string, at stockd.AsOf) (stockd.SKUState, error) {
	if b, ok := r.Engine.KnownBundle(sku); ok && !http.Forwarded(ctx) {
		return stockd.DeriveBundleSKU(ctx, b, at, r.SKU)
	}
	v, err := r.stock(ctx, sku, at)
	if stockd.IsCode(err, stockd.CodeNotFound) && !http.Forwarded(ctx) {
		// A bundle defined through another node a moment ago has no
		// events of its own: look at the catalog again.
		if b, berr := r.Engine.Bundle(ctx, sku); berr == nil {
			return stockd.DeriveBundleSKU(ctx, b, at, r.SKU)
		}
	}
	return v, err
}

// stock reads a SKU's own state through the node serving it.
func (r *router) stock(ctx context.Context, sku string, at stockd.AsOf) (stockd.SKUState, error) {
	type read struct {
		sku string
		at  stockd.AsOf
	}
	return forward(ctx, r, read{sku, at},
		func(e *engine.Engine, ctx context.Context, q read) (stockd.SKUState, error) {
			return e.SKU(ctx, q.sku, q.at)
		},
		func(c *client.Client, ctx context.Context, q read) (stockd.SKUState, error) {
			return c.SKU(ctx, q.sku, q.at)
		})
}

func (r *router) DefineBundle(ctx context.Context, c stockd.DefineBundle) (stockd.Bundle, error) {
	return forward(ctx, r, c, (*engine.Engine).DefineBundle, (*client.Client).DefineBundle)
}

// Bundle returns a bundle's definition: every node knows the catalog.
func (r *router) Bundle(ctx context.Context, sku string) (stockd.Bundle, error) {
	return r.Engine.Bundle(ctx, sku)
}
