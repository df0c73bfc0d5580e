package client

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/readmodel"
)

// EventPage is the answer of GET /v1/skus/{sku}/events as it is on the wire.
// Next is the cursor to pass as the After of the following page.
type EventPage struct {
	Events []EventJSON `json:"events"`
	Next   string      `json:"next"`
}

// EventJSON is one event as the API shows it. Data is kept as it came; Event
// decodes it into its stockd type.
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

// RawData is the data of an event whose type the client cannot decode into a
// stockd type: a type newer than the client, or one whose JSON does not
// decode back (saga bookkeeping). JSON is the data as the server sent it.
type RawData struct {
	Type stockd.EventType
	Name string
	JSON json.RawMessage
}

// EventType implements stockd.EventData; it is 0 for a type name the client
// does not know.
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

// newData returns a pointer to a fresh value of an event type's data.
func newData(t stockd.EventType) any {
	switch t {
	case stockd.TypeStockReceived:
		return new(stockd.StockReceived)
	case stockd.TypeStockAdjusted:
		return new(stockd.StockAdjusted)
	case stockd.TypeStockCounted:
		return new(stockd.StockCounted)
	case stockd.TypeStockTransferred:
		return new(stockd.StockTransferred)
	case stockd.TypeTransferArrived:
		return new(stockd.TransferArrived)
	case stockd.TypeSKUConfigured:
		return new(stockd.SKUConfigured)
	case stockd.TypeLocationConfigured:
		return new(stockd.LocationConfigured)
	case stockd.TypeStockReserved:
		return new(stockd.StockReserved)
	case stockd.TypeReservationExtended:
		return new(stockd.ReservationExtended)
	case stockd.TypeReservationCommitted:
		return new(stockd.ReservationCommitted)
	case stockd.TypeReservationReleased:
		return new(stockd.ReservationReleased)
	case stockd.TypeLotExpired:
		return new(stockd.LotExpired)
	case stockd.TypeShortageDetected:
		return new(stockd.ShortageDetected)
	case stockd.TypeReservationHeld:
		return new(stockd.ReservationHeld)
	case stockd.TypeSagaSettled:
		return new(stockd.SagaSettled)
	}
	return nil
}

// Event returns the event as a stockd.Event. Data is the event's stockd data
// type (such as stockd.StockReceived) when the client knows the type, and a
// RawData otherwise. Fields the API does not show, such as fingerprints, are
// zero.
func (e EventJSON) Event() stockd.Event {
	ev := stockd.Event{
		Partition: e.Partition, Position: e.Position, SKU: e.SKU, Version: e.Version,
		Time: e.Time, CommandID: e.CommandID, Actor: e.Actor,
	}
	t := eventTypes[e.Type]
	ev.Data = RawData{Type: t, Name: e.Type, JSON: e.Data}
	if p := newData(t); p != nil {
		if err := json.Unmarshal(e.Data, p); err == nil {
			ev.Data = derefData(p)
		}
	}
	return ev
}

// derefData returns the value p points to as event data.
func derefData(p any) stockd.EventData {
	switch d := p.(type) {
	case *stockd.StockReceived:
		return *d
	case *stockd.StockAdjusted:
		return *d
	case *stockd.StockCounted:
		return *d
	case *stockd.StockTransferred:
		return *d
	case *stockd.TransferArrived:
		return *d
	case *stockd.SKUConfigured:
		return *d
	case *stockd.LocationConfigured:
		return *d
	case *stockd.StockReserved:
		return *d
	case *stockd.ReservationExtended:
		return *d
	case *stockd.ReservationCommitted:
		return *d
	case *stockd.ReservationReleased:
		return *d
	case *stockd.LotExpired:
		return *d
	case *stockd.ShortageDetected:
		return *d
	case *stockd.ReservationHeld:
		return *d
	case *stockd.SagaSettled:
		return *d
	}
	return nil
}

// The read model's answers are decoded into its own types: the client and
// the server cannot disagree on their shape.
type (
	// Availability is the answer of GET /v1/availability.
	Availability = readmodel.Availability
	// AvailabilityItem is the availability of one SKU.
	AvailabilityItem = readmodel.Item
	// LocationAvailability is the availability of one SKU at one location.
	LocationAvailability = readmodel.LocationAvailability
	// Lag says how far a read-model answer is behind the durable log.
	Lag = readmodel.Lag
	// CustomerReservations is the answer of GET /v1/reservations?customer=.
	CustomerReservations = readmodel.Reservations
)
