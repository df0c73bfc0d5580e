// Package client talks to a stockd server over its HTTP API. Client
// implements stockd.Service, the interface the engine implements in-process,
// so the CLI, the end-to-end tests and any Go program can drive the real API
// exactly as they would drive an engine: the same commands, the same result
// types, and errors that carry the same stockd codes.
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
	"strconv"
	"strings"
	"time"

	"github.com/stockd/stockd"
	api "github.com/stockd/stockd/http"
)

// Client is a stockd.Service over HTTP. It is safe for concurrent use.
type Client struct {
	base      string
	hc        *nethttp.Client
	actor     string
	key       string
	userAgent string
}

var _ stockd.Service = (*Client)(nil)

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

// WithActor names who issues the client's commands: it is sent as the
// X-Actor header and recorded on every event the commands cause. An actor set
// on a request's context with stockd.WithActor takes precedence.
func WithActor(actor string) Option { return func(c *Client) { c.actor = actor } }

// WithKey makes the client present key as its API key, in an
// "Authorization: Bearer" header on every request. The server records the
// key's name as the actor of every event the client's commands cause.
func WithKey(key string) Option { return func(c *Client) { c.key = key } }

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

// do sends one request and decodes a successful answer into out (when out is
// not nil). It returns the HTTP status of a success; every failure is an
// error, a *stockd.Error for anything the server answered.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, header map[string]string, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("client: encoding the request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := nethttp.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("client: %w", err)
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
	actor := stockd.ActorFrom(ctx)
	if actor == "" {
		actor = c.actor
	}
	if actor != "" {
		req.Header.Set("X-Actor", actor)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, transportError(ctx, method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, transportError(ctx, method, u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, responseError(resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, &stockd.Error{
				Code:    stockd.CodeInternal,
				Message: fmt.Sprintf("%s %s answered HTTP %d with a body that is not the expected JSON: %v", method, path, resp.StatusCode, err),
				Err:     &StatusError{StatusCode: resp.StatusCode},
			}
		}
	}
	return resp.StatusCode, nil
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

// created reports whether a command's status says it was accepted now (201)
// rather than replayed (200).
func created(status int) bool { return status == nethttp.StatusCreated }

// ConfigureLocation sets a location's kind, priority and region with
// PUT /v1/locations/{id}.
func (c *Client) ConfigureLocation(ctx context.Context, cmd stockd.ConfigureLocation) (stockd.Location, error) {
	var out stockd.Location
	_, err := c.do(ctx, nethttp.MethodPut, "/v1/locations/"+seg(cmd.ID), nil,
		api.LocationBody{Kind: cmd.Kind, Priority: cmd.Priority, Region: cmd.Region}, nil, &out)
	return out, err
}

// Location returns a configured location with GET /v1/locations/{id}.
func (c *Client) Location(ctx context.Context, id string) (stockd.Location, error) {
	var out stockd.Location
	_, err := c.do(ctx, nethttp.MethodGet, "/v1/locations/"+seg(id), nil, nil, nil, &out)
	return out, err
}

// Locations returns every configured location with GET /v1/locations.
func (c *Client) Locations(ctx context.Context) ([]stockd.Location, error) {
	var out api.LocationList
	if _, err := c.do(ctx, nethttp.MethodGet, "/v1/locations", nil, nil, nil, &out); err != nil {
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
	var out stockd.SKUConfig
	_, err := c.do(ctx, nethttp.MethodPut, "/v1/skus/"+seg(cmd.SKU)+"/config", nil,
		api.SKUConfigBody{SafetyStock: cmd.SafetyStock, LowStockThreshold: cmd.LowStockThreshold}, nil, &out)
	return out, err
}

// Receive books a receipt with POST /v1/receipts.
func (c *Client) Receive(ctx context.Context, cmd stockd.ReceiveStock) (stockd.Receipt, bool, error) {
	var out stockd.Receipt
	status, err := c.do(ctx, nethttp.MethodPost, "/v1/receipts", nil, api.ReceiptBody{
		ID: cmd.ID, SKU: cmd.SKU, Location: cmd.Location, Quantity: cmd.Quantity, Lot: cmd.Lot, BestBefore: cmd.BestBefore,
	}, nil, &out)
	return out, err == nil && created(status), err
}

// Adjust books an adjustment with POST /v1/adjustments.
func (c *Client) Adjust(ctx context.Context, cmd stockd.AdjustStock) (stockd.Adjustment, bool, error) {
	var out stockd.Adjustment
	status, err := c.do(ctx, nethttp.MethodPost, "/v1/adjustments", nil, api.AdjustmentBody{
		ID: cmd.ID, SKU: cmd.SKU, Location: cmd.Location, Delta: cmd.Delta, Reason: cmd.Reason, Lot: cmd.Lot,
	}, nil, &out)
	return out, err == nil && created(status), err
}

// Count books a physical count with POST /v1/counts.
func (c *Client) Count(ctx context.Context, cmd stockd.CountStock) (stockd.Count, bool, error) {
	var out stockd.Count
	onHand := cmd.OnHand
	status, err := c.do(ctx, nethttp.MethodPost, "/v1/counts", nil, api.CountBody{
		ID: cmd.ID, SKU: cmd.SKU, Location: cmd.Location, OnHand: &onHand,
	}, nil, &out)
	return out, err == nil && created(status), err
}

// Transfer sends stock from one location towards another with
// POST /v1/transfers.
func (c *Client) Transfer(ctx context.Context, cmd stockd.TransferStock) (stockd.Transfer, bool, error) {
	var out stockd.Transfer
	status, err := c.do(ctx, nethttp.MethodPost, "/v1/transfers", nil, api.TransferBody{
		ID: cmd.ID, SKU: cmd.SKU, From: cmd.From, To: cmd.To, Quantity: cmd.Quantity,
	}, nil, &out)
	return out, err == nil && created(status), err
}

// ArriveTransfer books a transfer into its destination with
// POST /v1/transfers/{id}/arrive. Repeating it answers the transfer as it is.
func (c *Client) ArriveTransfer(ctx context.Context, cmd stockd.ArriveTransfer) (stockd.Transfer, error) {
	var out stockd.Transfer
	_, err := c.do(ctx, nethttp.MethodPost, "/v1/transfers/"+seg(cmd.ID)+"/arrive", nil, nil, nil, &out)
	return out, err
}

// GetTransfer returns a transfer with GET /v1/transfers/{id}.
func (c *Client) GetTransfer(ctx context.Context, id string) (stockd.Transfer, error) {
	var out stockd.Transfer
	_, err := c.do(ctx, nethttp.MethodGet, "/v1/transfers/"+seg(id), nil, nil, nil, &out)
	return out, err
}

// Reserve holds stock for a cart with POST /v1/reservations. A zero TTL lets
// the server apply its default.
func (c *Client) Reserve(ctx context.Context, cmd stockd.Reserve) (stockd.Reservation, bool, error) {
	var out stockd.Reservation
	lines := cmd.Lines
	if lines == nil {
		lines = []stockd.ReserveLine{}
	}
	body := api.ReservationBody{ID: cmd.ID, Customer: cmd.Customer, Region: cmd.Region, Lines: lines}
	if cmd.TTL != 0 {
		body.TTL = FormatDuration(cmd.TTL)
	}
	status, err := c.do(ctx, nethttp.MethodPost, "/v1/reservations", nil, body, nil, &out)
	return out, err == nil && created(status), err
}

// Extend moves a held reservation's deadline with
// POST /v1/reservations/{id}/extend; cmd.Key, when set, is sent as the
// Idempotency-Key header.
func (c *Client) Extend(ctx context.Context, cmd stockd.ExtendReservation) (stockd.Reservation, error) {
	var out stockd.Reservation
	_, err := c.do(ctx, nethttp.MethodPost, "/v1/reservations/"+seg(cmd.ID)+"/extend", nil,
		api.ExtendBody{TTL: FormatDuration(cmd.TTL)}, idempotency(cmd.Key), &out)
	return out, err
}

// Commit turns a held reservation, or part of it, into a sale with
// POST /v1/reservations/{id}/commit. With no Lines the whole reservation is
// committed and no body is sent; cmd.Key, when set, is sent as the
// Idempotency-Key header.
func (c *Client) Commit(ctx context.Context, cmd stockd.CommitReservation) (stockd.Reservation, error) {
	var out stockd.Reservation
	var body any
	if cmd.Lines != nil {
		body = api.CommitBody{Lines: cmd.Lines}
	}
	_, err := c.do(ctx, nethttp.MethodPost, "/v1/reservations/"+seg(cmd.ID)+"/commit", nil, body, idempotency(cmd.Key), &out)
	return out, err
}

// Release returns a held reservation's stock to available with
// POST /v1/reservations/{id}/release; cmd.Key, when set, is sent as the
// Idempotency-Key header.
func (c *Client) Release(ctx context.Context, cmd stockd.ReleaseReservation) (stockd.Reservation, error) {
	var out stockd.Reservation
	_, err := c.do(ctx, nethttp.MethodPost, "/v1/reservations/"+seg(cmd.ID)+"/release", nil, nil, idempotency(cmd.Key), &out)
	return out, err
}

// GetReservation returns a reservation as it is now with
// GET /v1/reservations/{id}.
func (c *Client) GetReservation(ctx context.Context, id string) (stockd.Reservation, error) {
	var out stockd.Reservation
	_, err := c.do(ctx, nethttp.MethodGet, "/v1/reservations/"+seg(id), nil, nil, nil, &out)
	return out, err
}

func idempotency(key string) map[string]string {
	if key == "" {
		return nil
	}
	return map[string]string{"Idempotency-Key": key}
}

// SKU returns a SKU's state with GET /v1/skus/{sku}: now, or, with at set,
// as of a past time (?as_of=) or partition position (?position=).
func (c *Client) SKU(ctx context.Context, sku string, at stockd.AsOf) (stockd.SKUState, error) {
	q := url.Values{}
	if !at.Time.IsZero() {
		q.Set("as_of", at.Time.Format(time.RFC3339Nano))
	}
	if at.Position != 0 {
		q.Set("position", strconv.FormatUint(at.Position, 10))
	}
	var out stockd.SKUState
	_, err := c.do(ctx, nethttp.MethodGet, "/v1/skus/"+seg(sku), q, nil, nil, &out)
	return out, err
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
// event's data decoded into its stockd type where the type is known. History
// is the same page as a stockd.HistoryPage.
func (c *Client) Events(ctx context.Context, sku string, hq stockd.HistoryQuery) (EventPage, error) {
	q := url.Values{}
	if hq.After != 0 {
		q.Set("after", strconv.FormatUint(hq.After, 10))
	}
	if hq.Limit != 0 {
		q.Set("limit", strconv.Itoa(hq.Limit))
	}
	var out EventPage
	if _, err := c.do(ctx, nethttp.MethodGet, "/v1/skus/"+seg(sku)+"/events", q, nil, nil, &out); err != nil {
		return EventPage{}, err
	}
	if out.Events == nil {
		out.Events = []EventJSON{}
	}
	return out, nil
}

// Availability returns the eventually consistent availability of skus with
// GET /v1/availability?sku=...; the answer says how fresh it is.
func (c *Client) Availability(ctx context.Context, skus ...string) (Availability, error) {
	q := url.Values{"sku": skus}
	var out Availability
	_, err := c.do(ctx, nethttp.MethodGet, "/v1/availability", q, nil, nil, &out)
	if out.Items == nil {
		out.Items = []AvailabilityItem{}
	}
	return out, err
}

// ReservationsByCustomer lists up to limit reservations of a customer from
// the read model with GET /v1/reservations?customer=...; limit 0 means the
// server's default.
func (c *Client) ReservationsByCustomer(ctx context.Context, customer string, limit int) (CustomerReservations, error) {
	q := url.Values{"customer": {customer}}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out CustomerReservations
	_, err := c.do(ctx, nethttp.MethodGet, "/v1/reservations", q, nil, nil, &out)
	if out.Items == nil {
		out.Items = []stockd.Reservation{}
	}
	return out, err
}

// Batch sends many operations in one POST /v1/batch. The request as a whole
// fails only when the batch itself is refused; each operation has its own
// status and body or problem in the answer, in order. ResultError turns a
// failed result into the error the same operation would have returned alone.
func (c *Client) Batch(ctx context.Context, ops []api.BatchOperation) (api.BatchResponse, error) {
	if ops == nil {
		ops = []api.BatchOperation{}
	}
	var out api.BatchResponse
	_, err := c.do(ctx, nethttp.MethodPost, "/v1/batch", nil, api.BatchBody{Operations: ops}, nil, &out)
	return out, err
}

// BatchOp builds a batch operation from an op name and a body that encodes to
// JSON, such as an http.ReceiptBody.
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

// FormatDuration writes d as a Go duration string without the zero units
// time.Duration.String leaves at the end: "15m" rather than "15m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
