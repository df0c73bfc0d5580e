package e2e

import (
	"testing"

	"github.com/stockd/stockd"
)

// goneConsumer leaves behind the checkpoint of a publisher that no longer
// runs, as one removed from the configuration does.
func goneConsumer(t *testing.T, s *Server, name string) {
	t.Helper()
	if err := s.Store.SetCheckpoint(t.Context(), name, 0, stockd.Checkpoint{Position: 1}); err != nil {
		t.Fatal(err)
	}
}

// The consumer routes in the authorization matrix.
func init() {
	matrixRequests["GET /v1/consumers"] = matrixRequest{"/v1/consumers", ""}
	matrixRequests["DELETE /v1/consumers/{name}"] = matrixRequest{"/v1/consumers/publish%2Fgone", ""}
	matrixPrepare["DELETE /v1/consumers/{name}"] = func(t *testing.T, s *Server) { goneConsumer(t, s, "publish/gone") }
}

// TestConsumersWire covers the consumer routes on the wire: the list, a
// name with '/' escaped in the path, and the refusals.
func TestConsumersWire(t *testing.T) {
	s := Start(t, Options{})
	goneConsumer(t, s, "publish/kafka")
	r := raw(t, s, "GET", "/v1/consumers", nil)
	wantStatus(t, r, 200)
	items, _ := r.JSON(t)["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("consumers = %s, want the read model and the gone publisher", r.Body)
	}
	if c := items[1].(map[string]any); c["name"] != "publish/kafka" || c["running"] != false {
		t.Errorf("second consumer = %v", c)
	}
	if c := items[0].(map[string]any); c["name"] != "availability" || c["running"] != true {
		t.Errorf("first consumer = %v", c)
	}

	r = raw(t, s, "DELETE", "/v1/consumers/publish%2Fkafka", nil)
	wantStatus(t, r, 200)
	if m := r.JSON(t); m["name"] != "publish/kafka" || m["running"] != false {
		t.Errorf("DELETE = %s", r.Body)
	}
	wantProblem(t, raw(t, s, "DELETE", "/v1/consumers/publish%2Fkafka", nil), 404, stockd.CodeNotFound)
	wantProblem(t, raw(t, s, "DELETE", "/v1/consumers/availability", nil), 409, stockd.CodeInUse)
	if l, err := s.Client.ListConsumers(t.Context()); err != nil || len(l.Items) != 1 || l.Items[0].Name != "availability" {
		t.Fatalf("after the delete, through the client: %+v, %v", l, err)
	}
}
