// Package client talks to a stockd server over its HTTP API. Client
// implements stockd.API, the interface the server serves, so the CLI, the
// end-to-end tests and any Go program can drive the real API exactly as they
// would drive the service in-process: the same commands, the same result
// types, and errors that carry the same stockd codes. Every request is built
// from the operation's declaration in package api, the one the server routes
// by; the client imports no server package.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// Client is a stockd.API over HTTP. It is safe for concurrent use.
type Client struct {
	base      string
	hc        *nethttp.Client
	key       string
	userAgent string
	headers   map[string]string
	batch     *batcher // nil: one request per command
}

var _ stockd.API = (*Client)(nil)

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc instead of
// http.DefaultClient, for custom timeouts, transports or TLS.
func WithHTTPClient(hc *nethttp.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithKey makes the client present key as its API key, in an
// "Authorization: Bearer" header on every request. The server records the
// key's name as the actor of every event the client's commands cause.
func WithKey(key string) Option { return func(c *Client) { c.key = key } }

// WithHeader sets a header of every request, such as the marker a cluster
// node puts on requests it sends on to another node.
func WithHeader(name, value string) Option {
	return func(c *Client) {
		if c.headers == nil {
			c.headers = map[string]string{}
		}
		c.headers[name] = value
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// DefaultUserAgent is the User-Agent sent unless WithUserAgent sets another.
const DefaultUserAgent = "stockd-client/1"

// New returns a client of the stockd server at baseURL, such as
// "http://127.0.0.1:8080". A trailing slash is ignored.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: nethttp.DefaultClient, userAgent: DefaultUserAgent}
	for _, o := range opts {
		o(c)
	}
	// The API never redirects: a redirect means the URL is wrong, and
	// following it could turn a POST into a GET of something else. It is
	// answered as the unexpected status it is.
	hc := *c.hc
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }
	}
	c.hc = &hc
	return c
}

// BaseURL returns the server address the client talks to.
func (c *Client) BaseURL() string { return c.base }

// seg escapes one path segment, so that any id the domain accepts reaches the
// server as the same single segment. The ids "." and ".." are escaped too:
// as they are, routers clean them out of the path (and redirect).
func seg(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// call carries out a declared operation: req's fields go to the path, the
// query, the headers and the JSON body as the operation's api.Binding says,
// and the answer is decoded into the operation's own response type. It
// reports whether the server created the entity (201).
func call[Req, Res any](ctx context.Context, c *Client, ep *api.Endpoint[Req, Res], req *Req) (Res, bool, error) {
	if c.batch != nil && ep.BatchName != "" {
		return batched(ctx, c, ep, req)
	}
	var out Res
	path, query, header, body, err := encode(&ep.Operation, req)
	if err != nil {
		return out, false, err
	}
	status, err := c.do(ctx, ep.Method, path, query, body, header, &out)
	return out, err == nil && status == nethttp.StatusCreated, err
}

// encode splits a request by its binding. The body leaves out the fields
// that travel elsewhere, and is nil when nothing is left of it.
func encode[Req any](op *api.Operation, req *Req) (path string, query url.Values, header map[string]string, body []byte, err error) {
	v := reflect.ValueOf(req).Elem()
	b := api.BindingOf(v.Type())
	path = op.Path
	if len(b.Path) > 0 || len(b.Header) > 0 {
		// The body is encoded from a copy without them.
		cp := reflect.New(v.Type()).Elem()
		cp.Set(v)
		for _, p := range b.Path {
			path = strings.Replace(path, "{"+p.Name+"}", seg(cp.Field(p.Index).String()), 1)
			cp.Field(p.Index).SetString("")
		}
		for _, p := range b.Header {
			if h := cp.Field(p.Index).String(); h != "" {
				if header == nil {
					header = map[string]string{}
				}
				header[p.Name] = h
			}
		}
		v = cp
	}
	for _, p := range b.Query {
		f := v.Field(p.Index)
		if p.Multi {
			for _, s := range f.Interface().([]string) {
				if query == nil {
					query = url.Values{}
				}
				query.Add(p.Name, s)
			}
		} else if s := f.String(); s != "" {
			if query == nil {
				query = url.Values{}
			}
			query.Set(p.Name, s)
		}
	}
	if !b.HasBody {
		return path, query, header, nil, nil
	}
	body, err = json.Marshal(v.Interface())
	if err != nil {
		return "", nil, nil, nil, fmt.Errorf("client: encoding the request: %w", err)
	}
	if op.OptionalBody && string(body) == "{}" {
		body = nil
	}
	return path, query, header, body, nil
}

// do sends one request and decodes a successful answer into out (when out is
// not nil). It returns the HTTP status of a success; every failure is an
// error, a *stockd.Error for anything the server answered.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, header map[string]string, out any) (int, error) {
	status, data, err := c.send(ctx, method, path, query, body, header)
	if err != nil || out == nil {
		return status, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return status, notExpected(method, path, status, err)
	}
	return status, nil
}

// notExpected is the error of a successful answer whose body does not
// decode.
func notExpected(method, path string, status int, err error) error {
	return &stockd.Error{
		Code:    stockd.CodeInternal,
		Message: fmt.Sprintf("%s %s answered HTTP %d with a body that is not the expected JSON: %v", method, path, status, err),
		Err:     &StatusError{StatusCode: status},
	}
}

// send sends one request and returns the status and body of a successful
// answer; every failure is an error, a *stockd.Error for anything the
// server answered.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte, header map[string]string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := nethttp.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, transportError(ctx, method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, transportError(ctx, method, u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, nil, responseError(resp, data)
	}
	return resp.StatusCode, data, nil
}

// transportError describes a request that got no answer. A cancelled or
// expired context is returned as such, so errors.Is(err, context.Canceled)
// holds as it does with the engine; anything else means the service could
// not be reached and is CodeUnavailable. A command that got no answer may
// still have been carried out: retry it with the same id.
func transportError(ctx context.Context, method, u string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("client: %s %s: %w", method, u, ctxErr)
	}
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err // it repeats the method and URL otherwise
	}
	return &stockd.Error{
		Code:    stockd.CodeUnavailable,
		Message: fmt.Sprintf("no answer from %s %s: %v", method, u, cause),
		Err:     err,
	}
}

// ConfigureLocation sets a location's kind, priority and region with
// PUT /v1/locations/{id}.
func (c *Client) ConfigureLocation(ctx context.Context, cmd stockd.ConfigureLocation) (stockd.Location, error) {
	l, _, err := call(ctx, c, api.ConfigureLocation, &api.LocationRequest{ID: cmd.ID, Kind: cmd.Kind, Priority: cmd.Priority, Region: cmd.Region})
	return l, err
}

// Location returns a configured location with GET /v1/locations/{id}.
func (c *Client) Location(ctx context.Context, id string) (stockd.Location, error) {
	l, _, err := call(ctx, c, api.GetLocation, &api.IDRequest{ID: id})
	return l, err
}

// Locations returns every configured location with GET /v1/locations.
func (c *Client) Locations(ctx context.Context) ([]stockd.Location, error) {
	out, _, err := call(ctx, c, api.ListLocations, &api.NoRequest{})
	if err != nil {
		return nil, err
	}
	if out.Items == nil {
		out.Items = []stockd.Location{}
	}
	return out.Items, nil
}

// ConfigureSKU sets a SKU's safety stock and low-stock threshold with
// PUT /v1/skus/{sku}/config.
func (c *Client) ConfigureSKU(ctx context.Context, cmd stockd.ConfigureSKU) (stockd.SKUConfig, error) {
	v, _, err := call(ctx, c, api.ConfigureSKU, &api.SKUConfigRequest{SKU: cmd.SKU, SafetyStock: cmd.SafetyStock, LowStockThreshold: cmd.LowStockThreshold, SalesCap: cmd.SalesCap, CustomerLimit: api.LimitBody(cmd.CustomerLimit), Preorders: cmd.Preorders})
	return v, err
}

// Receive books a receipt with POST /v1/receipts.
func (c *Client) Receive(ctx context.Context, cmd stockd.ReceiveStock) (stockd.Receipt, bool, error) {
	return call(ctx, c, api.Receive, &api.ReceiptRequest{
		ID: cmd.ID, SKU: cmd.SKU, Location: cmd.Location, Quantity: cmd.Quantity, Lot: cmd.Lot, BestBefore: cmd.BestBefore,
	})
}

// Adjust books an adjustment with POST /v1/adjustments.
func (c *Client) Adjust(ctx context.Context, cmd stockd.AdjustStock) (stockd.Adjustment, bool, error) {
	return call(ctx, c, api.Adjust, &api.AdjustmentRequest{
		ID: cmd.ID, SKU: cmd.SKU, Location: cmd.Location, Delta: cmd.Delta, Reason: cmd.Reason, Lot: cmd.Lot,
	})
}

// Count books a physical count with POST /v1/counts.
func (c *Client) Count(ctx context.Context, cmd stockd.CountStock) (stockd.Count, bool, error) {
	onHand := cmd.OnHand
	return call(ctx, c, api.Count, &api.CountRequest{ID: cmd.ID, SKU: cmd.SKU, Location: cmd.Location, OnHand: &onHand})
}

// Transfer sends stock from one location towards another with
// POST /v1/transfers.
func (c *Client) Transfer(ctx context.Context, cmd stockd.TransferStock) (stockd.Transfer, bool, error) {
	return call(ctx, c, api.Transfer, &api.TransferRequest{ID: cmd.ID, SKU: cmd.SKU, From: cmd.From, To: cmd.To, Quantity: cmd.Quantity})
}

// ArriveTransfer books a transfer into its destination with
// POST /v1/transfers/{id}/arrive. Repeating it answers the transfer as it is.
func (c *Client) ArriveTransfer(ctx context.Context, cmd stockd.ArriveTransfer) (stockd.Transfer, error) {
	t, _, err := call(ctx, c, api.ArriveTransfer, &api.IDRequest{ID: cmd.ID})
	return t, err
}

// GetTransfer returns a transfer with GET /v1/transfers/{id}.
func (c *Client) GetTransfer(ctx context.Context, id string) (stockd.Transfer, error) {
	t, _, err := call(ctx, c, api.GetTransfer, &api.IDRequest{ID: id})
	return t, err
}

// Reserve holds stock for a cart with POST /v1/reservations. A zero TTL lets
// the server apply its default.
func (c *Client) Reserve(ctx context.Context, cmd stockd.Reserve) (stockd.Reservation, bool, error) {
	lines := cmd.Lines
	if lines == nil {
		lines = []stockd.ReserveLine{}
	}
	req := &api.ReservationRequest{ID: cmd.ID, Customer: cmd.Customer, Region: cmd.Region, Lines: lines}
	if cmd.TTL != 0 {
		req.TTL = api.FormatDuration(cmd.TTL)
	}
	return call(ctx, c, api.Reserve, req)
}

// Extend moves a held reservation's deadline with
// POST /v1/reservations/{id}/extend; cmd.Key, when set, is sent as the
// Idempotency-Key header.
func (c *Client) Extend(ctx context.Context, cmd stockd.ExtendReservation) (stockd.Reservation, error) {
	r, _, err := call(ctx, c, api.Extend, &api.ExtendRequest{ID: cmd.ID, TTL: api.FormatDuration(cmd.TTL), IdempotencyKey: cmd.Key})
	return r, err
}

// Commit turns a held reservation, or part of it, into a sale with
// POST /v1/reservations/{id}/commit. With no Lines the whole reservation is
// committed and no body is sent; cmd.Key, when set, is sent as the
// Idempotency-Key header.
func (c *Client) Commit(ctx context.Context, cmd stockd.CommitReservation) (stockd.Reservation, error) {
	r, _, err := call(ctx, c, api.Commit, &api.CommitRequest{ID: cmd.ID, Lines: cmd.Lines, IdempotencyKey: cmd.Key})
	return r, err
}

// Release returns a held reservation's stock to available with
// POST /v1/reservations/{id}/release; cmd.Key, when set, is sent as the
// Idempotency-Key header.
func (c *Client) Release(ctx context.Context, cmd stockd.ReleaseReservation) (stockd.Reservation, error) {
	r, _, err := call(ctx, c, api.Release, &api.ReleaseRequest{ID: cmd.ID, IdempotencyKey: cmd.Key})
	return r, err
}

// GetReservation returns a reservation as it is now with
// GET /v1/reservations/{id}.
func (c *Client) GetReservation(ctx context.Context, id string) (stockd.Reservation, error) {
	r, _, err := call(ctx, c, api.GetReservation, &api.IDRequest{ID: id})
	return r, err
}

// SKU returns a SKU's state with GET /v1/skus/{sku}: now, or, with at set,
// as of a past time (?as_of=) or partition position (?position=).
func (c *Client) SKU(ctx context.Context, sku string, at stockd.AsOf) (stockd.SKUState, error) {
	req := &api.SKURequest{SKU: sku}
	if !at.Time.IsZero() {
		req.AsOf = at.Time.Format(time.RFC3339Nano)
	}
	if at.Position != 0 {
		req.Position = strconv.FormatUint(at.Position, 10)
	}
	v, _, err := call(ctx, c, api.GetSKU, req)
	return v, err
}

// SKUs lists SKUs in lexical order with GET /v1/skus, from the read model.
// Pass a page's Next as the After of the following query.
func (c *Client) SKUs(ctx context.Context, q stockd.SKUListQuery) (stockd.SKUPage, error) {
	v, _, err := call(ctx, c, api.ListSKUs, &api.SKUListRequest{Prefix: q.Prefix, After: q.After, Limit: limit(q.Limit)})
	if v.Items == nil {
		v.Items = []stockd.SKUSummary{}
	}
	return v, err
}

// History returns a page of a SKU's events with GET /v1/skus/{sku}/events.
// Pass the page's Next as the After of the following query.
func (c *Client) History(ctx context.Context, sku string, hq stockd.HistoryQuery) (stockd.HistoryPage, error) {
	raw, err := c.Events(ctx, sku, hq)
	if err != nil {
		return stockd.HistoryPage{}, err
	}
	page := stockd.HistoryPage{Events: make([]stockd.Event, 0, len(raw.Events))}
	for _, e := range raw.Events {
		page.Events = append(page.Events, e.Event())
	}
	if raw.Next != "" {
		n, err := strconv.ParseUint(raw.Next, 10, 64)
		if err != nil {
			return stockd.HistoryPage{}, &stockd.Error{Code: stockd.CodeInternal, Message: fmt.Sprintf("the server answered a cursor %q that is not a number", raw.Next)}
		}
		page.Next = n
	}
	return page, nil
}

// Events returns a page of a SKU's events as the API shows them, with each
// event's data as JSON; api.EventJSON.Event decodes one into its stockd
// type. History is the same page as a stockd.HistoryPage.
func (c *Client) Events(ctx context.Context, sku string, hq stockd.HistoryQuery) (api.EventPage, error) {
	req := &api.EventsRequest{SKU: sku, Limit: limit(hq.Limit)}
	if hq.After != 0 {
		req.After = strconv.FormatUint(hq.After, 10)
	}
	out, _, err := call(ctx, c, api.SKUEvents, req)
	if err != nil {
		return api.EventPage{}, err
	}
	if out.Events == nil {
		out.Events = []api.EventJSON{}
	}
	return out, nil
}

// Availability returns the eventually consistent availability of skus with
// GET /v1/availability?sku=...; the answer says how fresh it is.
func (c *Client) Availability(ctx context.Context, skus []string) (stockd.Availability, error) {
	out, _, err := call(ctx, c, api.GetAvailability, &api.AvailabilityRequest{SKUs: skus})
	if out.Items == nil {
		out.Items = []stockd.AvailabilityItem{}
	}
	return out, err
}

// CustomerReservations returns a page of a customer's held reservations from
// the read model with GET /v1/reservations?customer=..., newest first. Pass a
// page's Next as the After of the following query.
func (c *Client) CustomerReservations(ctx context.Context, q stockd.CustomerQuery) (stockd.ReservationPage, error) {
	out, _, err := call(ctx, c, api.CustomerReservations, &api.CustomerReservationsRequest{Customer: q.Customer, After: q.After, Limit: limit(q.Limit)})
	if out.Items == nil {
		out.Items = []stockd.Reservation{}
	}
	return out, err
}

// limit writes a listing's limit; 0 leaves it to the server.
func limit(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// Batch sends many operations in one POST /v1/batch. The request as a whole
// fails only when the batch itself is refused; each operation has its own
// status and body or problem in the answer, in order. ResultError turns a
// failed result into the error the same operation would have returned alone.
func (c *Client) Batch(ctx context.Context, ops []api.BatchOperation) (api.BatchResponse, error) {
	if ops == nil {
		ops = []api.BatchOperation{}
	}
	body, err := json.Marshal(api.BatchRequest{Operations: ops})
	if err != nil {
		return api.BatchResponse{}, fmt.Errorf("client: encoding the request: %w", err)
	}
	var out api.BatchResponse
	_, err = c.do(ctx, api.Batch.Method, api.Batch.Path, nil, body, nil, &out)
	return out, err
}

// BatchOp builds a batch operation from an op name and a body that encodes to
// JSON, such as an api.ReceiptRequest.
func BatchOp(op string, body any) (api.BatchOperation, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return api.BatchOperation{}, err
	}
	return api.BatchOperation{Op: op, Body: data}, nil
}

// ResultError returns the error a failed batch result stands for, as a
// *stockd.Error, or nil for a success.
func ResultError(r api.BatchResult) error {
	if r.Status >= 200 && r.Status <= 299 {
		return nil
	}
	if r.Problem == nil {
		return &stockd.Error{Code: stockd.CodeInternal, Message: fmt.Sprintf("batch operation failed with HTTP %d and no problem", r.Status),
			Err: &StatusError{StatusCode: r.Status}}
	}
	return problemError(*r.Problem, r.Status, 0)
}

// Health checks GET /healthz: nil means the process is up.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, nethttp.MethodGet, "/healthz", nil, nil, nil, nil)
	return err
}

// Ready checks GET /readyz: nil means the service takes requests.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, nethttp.MethodGet, "/readyz", nil, nil, nil, nil)
	return err
}
