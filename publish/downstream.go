package publish

import (
	"encoding/json"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// Downstream reports whether e is sent to receivers outside stockd. Every
// business fact is; EntitiesRetired is not: it records that settled entities
// left the engine's memory, which changes nothing anyone downstream can see.
// Runners of brokers skip what is not Downstream (Options.Skip), and the
// events still advance their checkpoints.
func Downstream(e stockd.Event) bool {
	return e.Type() != stockd.TypeEntitiesRetired
}

// JSON returns the body a publisher sends for e: the event as
// GET /v1/skus/{sku}/events shows it, with its partition and position, so
// that a receiver can order a partition's events and drop repeats by id.
func JSON(e stockd.Event) ([]byte, error) {
	ej, err := api.NewEventJSON(e)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ej)
}
