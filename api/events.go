package api

import (
	"encoding/json"
	"reflect"

	"github.com/stockd/stockd"
)

// NewEventJSON renders an event as the API shows it.
func NewEventJSON(e stockd.Event) (EventJSON, error) {
	data, err := json.Marshal(emptyLists(e.Data))
	if err != nil {
		return EventJSON{}, err
	}
	return EventJSON{
		ID: e.ID(), Type: e.Type().String(), SKU: e.SKU, Version: e.Version, Partition: e.Partition,
		Position: e.Position, Time: e.Time, CommandID: e.CommandID, Actor: e.Actor, Data: data,
	}, nil
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
