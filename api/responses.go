package api

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/stockd/stockd"
)

// Problem is an RFC 9457 problem details body, with stockd's stable code and,
// where they apply, the per-line shortfalls of insufficient stock and the
// status of a reservation that is not held.
type Problem struct {
	Type              string                   `json:"type"`
	Title             string                   `json:"title"`
	Status            int                      `json:"status"`
	Detail            string                   `json:"detail"`
	Code              stockd.Code              `json:"code"`
	Instance          string                   `json:"instance,omitempty"`
	Lines             []stockd.Shortfall       `json:"lines,omitempty"`
	ReservationStatus stockd.ReservationStatus `json:"reservation_status,omitempty"`
}

// LocationList is the answer of GET /v1/locations.
type LocationList struct {
	Items []stockd.Location `json:"items"`
}

// EventPage is the answer of GET /v1/skus/{sku}/events. Next is the cursor to
// pass as after for the following page; an empty page means there is nothing
// newer yet.
type EventPage struct {
	Events []EventJSON `json:"events"`
	Next   string      `json:"next"`
}

// EventJSON is how an event is shown: its identity, type, SKU stream version,
// partition position, time, cause and type-specific data. Actor is the name
// of the API key whose request caused the event.
type EventJSON struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	SKU       string          `json:"sku"`
	Version   uint64          `json:"version"`
	Partition int             `json:"partition"`
	Position  uint64          `json:"position"`
	Time      time.Time       `json:"time"`
	CommandID string          `json:"command_id,omitempty"`
	Actor     string          `json:"actor,omitempty"`
	Data      json.RawMessage `json:"data"`
}

// RawData is the data of an event whose type cannot be decoded into a stockd
// type: a type newer than this package, or one whose JSON does not decode
// back (saga bookkeeping). JSON is the data as the server sent it.
type RawData struct {
	Type stockd.EventType
	Name string
	JSON json.RawMessage
}

// EventType implements stockd.EventData; it is 0 for a type name this
// package does not know.
func (d RawData) EventType() stockd.EventType { return d.Type }

// eventTypes maps type names, as the API shows them, to event types.
var eventTypes = func() map[string]stockd.EventType {
	m := map[string]stockd.EventType{}
	for t := 1; t < 256; t++ {
		et := stockd.EventType(t)
		if name := et.String(); !strings.HasPrefix(name, "EventType(") {
			m[name] = et
		}
	}
	return m
}()

// Event returns the event as a stockd.Event. Data is the event's stockd data
// type (such as stockd.StockReceived) when the type is known and decodes,
// and a RawData otherwise. Fields the API does not show, such as
// fingerprints, are zero.
func (e EventJSON) Event() stockd.Event {
	ev := stockd.Event{
		Partition: e.Partition, Position: e.Position, SKU: e.SKU, Version: e.Version,
		Time: e.Time, CommandID: e.CommandID, Actor: e.Actor,
	}
	t := eventTypes[e.Type]
	ev.Data = RawData{Type: t, Name: e.Type, JSON: e.Data}
	if d, ok := stockd.DecodeEventJSON(t, e.Data); ok {
		ev.Data = d
	}
	return ev
}

// BatchRequest is the body of POST /v1/batch: many operations in one request.
type BatchRequest struct {
	Operations []BatchOperation `json:"operations"`
}

// BatchOperation is one operation of a batch. Op names it (see BatchNames);
// Body is what the operation's own route takes, plus, for operations on an
// existing entity, its "id". IdempotencyKey plays the part of the
// Idempotency-Key header.
type BatchOperation struct {
	Op             string          `json:"op"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Body           json.RawMessage `json:"body"`
}

// BatchResult is the outcome of one operation: its HTTP status and either the
// entity (Body, as the operation's own route would answer it) or the problem.
type BatchResult struct {
	Status  int             `json:"status"`
	Body    json.RawMessage `json:"body,omitempty"`
	Problem *Problem        `json:"problem,omitempty"`
}

// BatchResponse is the answer of POST /v1/batch: one result per operation,
// in order.
type BatchResponse struct {
	Results []BatchResult `json:"results"`
}

// Status is the answer of the health and readiness checks.
type Status struct {
	Status string `json:"status"`
}
