package http

import (
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/stockd/stockd"
)

// Request bodies. Each decodes strictly: a field not listed here is an error.

// LocationBody is the body of PUT /v1/locations/{id}.
type LocationBody struct {
	Kind     stockd.LocationKind `json:"kind"`
	Priority int                 `json:"priority"`
	Region   string              `json:"region"`
}

// SKUConfigBody is the body of PUT /v1/skus/{sku}/config.
type SKUConfigBody struct {
	SafetyStock       int64 `json:"safety_stock"`
	LowStockThreshold int64 `json:"low_stock_threshold"`
}

// ReceiptBody is the body of POST /v1/receipts.
type ReceiptBody struct {
	ID         string `json:"id"`
	SKU        string `json:"sku"`
	Location   string `json:"location"`
	Quantity   int64  `json:"quantity"`
	Lot        string `json:"lot,omitempty"`
	BestBefore string `json:"best_before,omitempty"`
}

// AdjustmentBody is the body of POST /v1/adjustments.
type AdjustmentBody struct {
	ID       string              `json:"id"`
	SKU      string              `json:"sku"`
	Location string              `json:"location"`
	Delta    int64               `json:"delta"`
	Reason   stockd.AdjustReason `json:"reason"`
	Lot      string              `json:"lot,omitempty"`
}

// CountBody is the body of POST /v1/counts.
type CountBody struct {
	ID       string `json:"id"`
	SKU      string `json:"sku"`
	Location string `json:"location"`
	OnHand   *int64 `json:"on_hand"`
}

// TransferBody is the body of POST /v1/transfers.
type TransferBody struct {
	ID       string `json:"id"`
	SKU      string `json:"sku"`
	From     string `json:"from"`
	To       string `json:"to"`
	Quantity int64  `json:"quantity"`
}

// ReservationBody is the body of POST /v1/reservations.
type ReservationBody struct {
	ID       string               `json:"id"`
	TTL      string               `json:"ttl,omitempty"`
	Customer string               `json:"customer,omitempty"`
	Region   string               `json:"region,omitempty"`
	Lines    []stockd.ReserveLine `json:"lines"`
}

// CommitBody is the optional body of POST /v1/reservations/{id}/commit.
type CommitBody struct {
	Lines []stockd.CommitLine `json:"lines"`
}

// ExtendBody is the body of POST /v1/reservations/{id}/extend.
type ExtendBody struct {
	TTL string `json:"ttl"`
}

// Command builds the domain command.
func (b ReceiptBody) Command() stockd.ReceiveStock {
	return stockd.ReceiveStock{ID: b.ID, SKU: b.SKU, Location: b.Location, Quantity: b.Quantity, Lot: b.Lot, BestBefore: b.BestBefore}
}

// Command builds the domain command.
func (b AdjustmentBody) Command() stockd.AdjustStock {
	return stockd.AdjustStock{ID: b.ID, SKU: b.SKU, Location: b.Location, Delta: b.Delta, Reason: b.Reason, Lot: b.Lot}
}

// Command builds the domain command.
func (b CountBody) Command() (stockd.CountStock, error) {
	if b.OnHand == nil {
		return stockd.CountStock{}, stockd.Errorf(stockd.CodeInvalid, "on_hand is required")
	}
	return stockd.CountStock{ID: b.ID, SKU: b.SKU, Location: b.Location, OnHand: *b.OnHand}, nil
}

// Command builds the domain command.
func (b TransferBody) Command() stockd.TransferStock {
	return stockd.TransferStock{ID: b.ID, SKU: b.SKU, From: b.From, To: b.To, Quantity: b.Quantity}
}

// Command builds the domain command.
func (b ReservationBody) Command() (stockd.Reserve, error) {
	ttl, err := duration("ttl", b.TTL)
	if err != nil {
		return stockd.Reserve{}, err
	}
	if b.TTL != "" && ttl <= 0 {
		return stockd.Reserve{}, stockd.Errorf(stockd.CodeInvalid, "ttl must be positive, got %q", b.TTL)
	}
	return stockd.Reserve{ID: b.ID, TTL: ttl, Customer: b.Customer, Region: b.Region, Lines: b.Lines}, nil
}

func created(isNew bool) int {
	if isNew {
		return http.StatusCreated
	}
	return http.StatusOK
}

func (s *Server) putLocation(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b LocationBody
	if err := s.decodeBody(w, r, &b, false); err != nil {
		return 0, nil, err
	}
	l, err := s.svc.ConfigureLocation(r.Context(), stockd.ConfigureLocation{ID: r.PathValue("id"), Kind: b.Kind, Priority: b.Priority, Region: b.Region})
	return http.StatusOK, l, err
}

func (s *Server) getLocation(w http.ResponseWriter, r *http.Request) (int, any, error) {
	l, err := s.svc.Location(r.Context(), r.PathValue("id"))
	return http.StatusOK, l, err
}

// LocationList is the answer of GET /v1/locations.
type LocationList struct {
	Items []stockd.Location `json:"items"`
}

func (s *Server) listLocations(w http.ResponseWriter, r *http.Request) (int, any, error) {
	ls, err := s.svc.Locations(r.Context())
	if ls == nil {
		ls = []stockd.Location{}
	}
	return http.StatusOK, LocationList{Items: ls}, err
}

func (s *Server) putSKUConfig(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b SKUConfigBody
	if err := s.decodeBody(w, r, &b, false); err != nil {
		return 0, nil, err
	}
	c, err := s.svc.ConfigureSKU(r.Context(), stockd.ConfigureSKU{SKU: r.PathValue("sku"), SafetyStock: b.SafetyStock, LowStockThreshold: b.LowStockThreshold})
	return http.StatusOK, c, err
}

func (s *Server) getSKU(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var at stockd.AsOf
	q := r.URL.Query()
	if v := q.Get("as_of"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, nil, stockd.Errorf(stockd.CodeInvalid, "as_of must be an RFC 3339 time like 2026-11-27T10:00:00Z, got %q", v)
		}
		at.Time = t
	}
	if v := q.Get("position"); v != "" {
		p, err := strconv.ParseUint(v, 10, 64)
		if err != nil || p == 0 {
			return 0, nil, stockd.Errorf(stockd.CodeInvalid, "position must be a positive integer, got %q", v)
		}
		at.Position = p
	}
	v, err := s.svc.SKU(r.Context(), r.PathValue("sku"), at)
	return http.StatusOK, v, err
}

// EventJSON is how an event is shown: its identity, type, SKU stream version,
// partition position, time, cause and type-specific data.
type EventJSON struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	SKU       string    `json:"sku"`
	Version   uint64    `json:"version"`
	Partition int       `json:"partition"`
	Position  uint64    `json:"position"`
	Time      time.Time `json:"time"`
	CommandID string    `json:"command_id,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	Data      any       `json:"data"`
}

// NewEventJSON renders an event.
func NewEventJSON(e stockd.Event) EventJSON {
	return EventJSON{
		ID: e.ID(), Type: e.Type().String(), SKU: e.SKU, Version: e.Version, Partition: e.Partition,
		Position: e.Position, Time: e.Time, CommandID: e.CommandID, Actor: e.Actor, Data: emptyLists(e.Data),
	}
}

// emptyLists returns a copy of the struct v whose nil slices, at any depth,
// are empty ones: lists in responses are always [], never null. Events keep
// nil lists because that is what decoding gives; only their rendering is
// fixed here, in one place.
func emptyLists(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct {
		return v
	}
	cp := reflect.New(rv.Type()).Elem()
	cp.Set(rv)
	fillLists(cp)
	return cp.Interface()
}

func fillLists(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.Slice:
			if f.IsNil() {
				f.Set(reflect.MakeSlice(f.Type(), 0, 0))
				continue
			}
			if f.Type().Elem().Kind() == reflect.Struct {
				// Copy before filling: the event's own slices are shared.
				c := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
				reflect.Copy(c, f)
				for j := range c.Len() {
					fillLists(c.Index(j))
				}
				f.Set(c)
			}
		case reflect.Struct:
			fillLists(f)
		}
	}
}

// EventPage is the answer of GET /v1/skus/{sku}/events. Next is the cursor to
// pass as after for the following page; an empty page means there is nothing
// newer yet.
type EventPage struct {
	Events []EventJSON `json:"events"`
	Next   string      `json:"next"`
}

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	var hq stockd.HistoryQuery
	if v := q.Get("after"); v != "" {
		after, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, nil, stockd.Errorf(stockd.CodeInvalid, "after must be a cursor returned as next, got %q", v)
		}
		hq.After = after
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, stockd.Errorf(stockd.CodeInvalid, "limit must be between 1 and 1000, got %q", v)
		}
		hq.Limit = n
	}
	page, err := s.svc.History(r.Context(), r.PathValue("sku"), hq)
	if err != nil {
		return 0, nil, err
	}
	out := EventPage{Events: make([]EventJSON, 0, len(page.Events)), Next: strconv.FormatUint(page.Next, 10)}
	for _, e := range page.Events {
		out.Events = append(out.Events, NewEventJSON(e))
	}
	return http.StatusOK, out, nil
}

func (s *Server) postReceipt(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b ReceiptBody
	if err := s.decodeBody(w, r, &b, false); err != nil {
		return 0, nil, err
	}
	v, isNew, err := s.svc.Receive(r.Context(), b.Command())
	return created(isNew), v, err
}

func (s *Server) postAdjustment(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b AdjustmentBody
	if err := s.decodeBody(w, r, &b, false); err != nil {
		return 0, nil, err
	}
	v, isNew, err := s.svc.Adjust(r.Context(), b.Command())
	return created(isNew), v, err
}

func (s *Server) postCount(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b CountBody
	if err := s.decodeBody(w, r, &b, false); err != nil {
		return 0, nil, err
	}
	c, err := b.Command()
	if err != nil {
		return 0, nil, err
	}
	v, isNew, err := s.svc.Count(r.Context(), c)
	return created(isNew), v, err
}

func (s *Server) postTransfer(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b TransferBody
	if err := s.decodeBody(w, r, &b, false); err != nil {
		return 0, nil, err
	}
	v, isNew, err := s.svc.Transfer(r.Context(), b.Command())
	return created(isNew), v, err
}

func (s *Server) getTransfer(w http.ResponseWriter, r *http.Request) (int, any, error) {
	v, err := s.svc.GetTransfer(r.Context(), r.PathValue("id"))
	return http.StatusOK, v, err
}

func (s *Server) arriveTransfer(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := s.decodeBody(w, r, &struct{}{}, true); err != nil {
		return 0, nil, err
	}
	v, err := s.svc.ArriveTransfer(r.Context(), stockd.ArriveTransfer{ID: r.PathValue("id")})
	return http.StatusOK, v, err
}

func (s *Server) postReservation(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b ReservationBody
	if err := s.decodeBody(w, r, &b, false); err != nil {
		return 0, nil, err
	}
	c, err := b.Command()
	if err != nil {
		return 0, nil, err
	}
	v, isNew, err := s.svc.Reserve(r.Context(), c)
	return created(isNew), v, err
}

func (s *Server) getReservation(w http.ResponseWriter, r *http.Request) (int, any, error) {
	v, err := s.svc.GetReservation(r.Context(), r.PathValue("id"))
	return http.StatusOK, v, err
}

func (s *Server) listReservations(w http.ResponseWriter, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	customer := q.Get("customer")
	if customer == "" {
		return 0, nil, stockd.Errorf(stockd.CodeInvalid, "customer is required: reservations are listed by customer")
	}
	if err := stockd.CheckName("customer", customer); err != nil {
		return 0, nil, err
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, stockd.Errorf(stockd.CodeInvalid, "limit must be between 1 and 1000, got %q", v)
		}
		limit = n
	}
	if s.cfg.ReadModel == nil {
		return 0, nil, stockd.Errorf(stockd.CodeUnavailable, "the read model is not running")
	}
	return http.StatusOK, s.cfg.ReadModel.ReservationsByCustomer(customer, limit), nil
}

// idempotencyKey returns the Idempotency-Key header of a request.
func idempotencyKey(r *http.Request) string { return r.Header.Get("Idempotency-Key") }

func (s *Server) commit(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b CommitBody
	if err := s.decodeBody(w, r, &b, true); err != nil {
		return 0, nil, err
	}
	v, err := s.svc.Commit(r.Context(), stockd.CommitReservation{ID: r.PathValue("id"), Lines: b.Lines, Key: idempotencyKey(r)})
	return http.StatusOK, v, err
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := s.decodeBody(w, r, &struct{}{}, true); err != nil {
		return 0, nil, err
	}
	v, err := s.svc.Release(r.Context(), stockd.ReleaseReservation{ID: r.PathValue("id"), Key: idempotencyKey(r)})
	return http.StatusOK, v, err
}

func (s *Server) extend(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var b ExtendBody
	if err := s.decodeBody(w, r, &b, false); err != nil {
		return 0, nil, err
	}
	ttl, err := duration("ttl", b.TTL)
	if err != nil {
		return 0, nil, err
	}
	v, err := s.svc.Extend(r.Context(), stockd.ExtendReservation{ID: r.PathValue("id"), TTL: ttl, Key: idempotencyKey(r)})
	return http.StatusOK, v, err
}

func (s *Server) getAvailability(w http.ResponseWriter, r *http.Request) (int, any, error) {
	skus := r.URL.Query()["sku"]
	if len(skus) == 0 {
		return 0, nil, stockd.Errorf(stockd.CodeInvalid, "name at least one sku: /v1/availability?sku=A&sku=B")
	}
	if len(skus) > s.cfg.MaxSKUs {
		return 0, nil, stockd.Errorf(stockd.CodeInvalid, "at most %d skus per request, got %d", s.cfg.MaxSKUs, len(skus))
	}
	for _, sku := range skus {
		if err := stockd.CheckName("sku", sku); err != nil {
			return 0, nil, err
		}
	}
	if s.cfg.ReadModel == nil {
		return 0, nil, stockd.Errorf(stockd.CodeUnavailable, "the read model is not running")
	}
	return http.StatusOK, s.cfg.ReadModel.Availability(skus), nil
}
