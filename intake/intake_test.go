package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/e2e"
)

// post sends a JSON body and returns the status, headers and body.
func post(t *testing.T, s *e2e.Server, path, body string) (int, nethttp.Header, []byte) {
	t.Helper()
	req, err := nethttp.NewRequestWithContext(t.Context(), "POST", s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// wait waits until the command has finished, through the queue's own
// notification rather than a sleep.
func wait(t *testing.T, s *e2e.Server, id string) stockd.QueuedCommand {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := s.Intake.Wait(ctx, id)
	if err != nil {
		t.Fatalf("command %s did not finish: %v", id, err)
	}
	return c
}

func onHand(t *testing.T, s *e2e.Server, sku string) int64 {
	t.Helper()
	st, err := s.Client.SKU(t.Context(), sku, stockd.AsOf{})
	if stockd.IsCode(err, stockd.CodeNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.OnHand
}

// TestCommandAcceptedThenApplied: POST /v1/commands answers 202 with a
// Location once the command is queued; the worker applies it, and
// GET /v1/commands/{id} then shows it applied with the receipt the
// synchronous route answers.
func TestCommandAcceptedThenApplied(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	status, h, body := post(t, s, "/v1/commands", `{"id":"cmd-1","type":"receive","command":{"id":"r-1","sku":"A","location":"w1","quantity":10,"lot":"L1","best_before":"2099-03-15"}}`)
	if status != 202 || h.Get("Location") != "/v1/commands/cmd-1" {
		t.Fatalf("POST /v1/commands = %d, Location %q: %s", status, h.Get("Location"), body)
	}
	var queued stockd.QueuedCommand
	if err := json.Unmarshal(body, &queued); err != nil || queued.ID != "cmd-1" || queued.Type != stockd.CommandReceive || queued.Source != "http" {
		t.Fatalf("the 202 body: %v %+v", err, queued)
	}
	wait(t, s, "cmd-1")
	got, err := s.Client.GetCommand(t.Context(), "cmd-1")
	if err != nil {
		t.Fatal(err)
	}
	var receipt stockd.Receipt
	if got.Status != stockd.CommandApplied || !got.Created || got.FinishedAt == nil || json.Unmarshal(got.Result, &receipt) != nil ||
		receipt.ID != "r-1" || receipt.Quantity != 10 || receipt.Lot != "L1" || receipt.Position == 0 {
		t.Fatalf("GET /v1/commands/cmd-1 = %+v (result %s)", got, got.Result)
	}
	if n := onHand(t, s, "A"); n != 10 {
		t.Errorf("A on hand = %d, want 10", n)
	}
	// A command the synchronous route already booked is a replay.
	status, _, body = post(t, s, "/v1/commands", `{"id":"cmd-2","type":"receive","command":{"id":"r-1","sku":"A","location":"w1","quantity":10,"lot":"L1","best_before":"2099-03-15"}}`)
	if status != 202 {
		t.Fatalf("cmd-2: %d %s", status, body)
	}
	if c := wait(t, s, "cmd-2"); c.Status != stockd.CommandApplied || c.Created {
		t.Errorf("a command repeating a receipt = %+v, want applied, not created", c)
	}
	if n := onHand(t, s, "A"); n != 10 {
		t.Errorf("A on hand after the repeat = %d, want 10", n)
	}
}

// TestCommandRepeatAndMismatch: the same command id with the same body is
// the same command (its first submission's time, applied once); with
// another body it is refused as an idempotency mismatch, and nothing is
// queued. Without an id, the same command gets the same derived id.
func TestCommandRepeatAndMismatch(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	const body = `{"id":"cmd-1","type":"receive","command":{"id":"r-1","sku":"A","location":"w1","quantity":4}}`
	_, _, first := post(t, s, "/v1/commands", body)
	var a, b stockd.QueuedCommand
	json.Unmarshal(first, &a)
	wait(t, s, "cmd-1")
	// Keys in another order and spaces: the same command.
	status, _, again := post(t, s, "/v1/commands", `{"type":"receive", "command":{"quantity":4,"location":"w1","sku":"A","id":"r-1"}, "id":"cmd-1"}`)
	json.Unmarshal(again, &b)
	if status != 202 || b.ID != "cmd-1" || !b.SubmittedAt.Equal(a.SubmittedAt) || b.Status != stockd.CommandApplied {
		t.Errorf("the same command again = %d %s, want 202 with the first one, applied", status, again)
	}
	status, _, refused := post(t, s, "/v1/commands", `{"id":"cmd-1","type":"receive","command":{"id":"r-1","sku":"A","location":"w1","quantity":5}}`)
	if status != 422 || !bytes.Contains(refused, []byte(`"code":"idempotency_mismatch"`)) {
		t.Errorf("cmd-1 with another body = %d %s, want 422 idempotency_mismatch", status, refused)
	}
	if n := onHand(t, s, "A"); n != 4 {
		t.Errorf("A on hand = %d, want 4", n)
	}
	// No id: derived from the command, the same for a retry.
	_, _, x := post(t, s, "/v1/commands", `{"type":"count","command":{"id":"c-1","sku":"A","location":"w1","on_hand":3}}`)
	_, _, y := post(t, s, "/v1/commands", `{"type":"count","command":{"id":"c-1","sku":"A","location":"w1","on_hand":3}}`)
	var cx, cy stockd.QueuedCommand
	json.Unmarshal(x, &cx)
	json.Unmarshal(y, &cy)
	if cx.ID == "" || !strings.HasPrefix(cx.ID, "cmd-") || cx.ID != cy.ID {
		t.Errorf("derived ids %q and %q", cx.ID, cy.ID)
	}
	if c := wait(t, s, cx.ID); c.Status != stockd.CommandApplied {
		t.Errorf("count = %+v", c)
	}
	if n := onHand(t, s, "A"); n != 3 {
		t.Errorf("A on hand after the count = %d, want 3", n)
	}
}

// TestCommandRefused: a command the service refuses when it applies it ends
// failed, with the problem details the synchronous route answers; one that
// is malformed is refused at once and never queued.
func TestCommandRefused(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	if _, _, err := s.Client.Receive(t.Context(), stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	status, _, body := post(t, s, "/v1/commands", `{"id":"cmd-x","type":"adjust","command":{"id":"adj-1","sku":"A","location":"w1","delta":-5,"reason":"damaged"}}`)
	if status != 202 {
		t.Fatalf("%d %s", status, body)
	}
	c := wait(t, s, "cmd-x")
	if c.Status != stockd.CommandFailed || c.Problem == nil || c.Problem.Code != stockd.CodeInsufficientStock || c.Problem.Status != 409 ||
		c.Problem.Type != "/problems/insufficient_stock" || len(c.Problem.Lines) != 1 || c.Problem.Lines[0].Available != 2 || c.Result != nil {
		t.Fatalf("adjust below zero = %+v (problem %+v)", c, c.Problem)
	}
	if n := onHand(t, s, "A"); n != 2 {
		t.Errorf("A on hand = %d, want 2", n)
	}
	for i, bad := range []string{
		`"type":"receive","command":{"id":"r-2","sku":"A","location":"w1","quantity":0}}`,
		`"type":"receive","command":{"id":"r-2","sku":"A","location":"w1","quantity":1,"delta":3}}`,
		`"type":"reserve","command":{"id":"r-2","sku":"A"}}`,
		`"type":"receive","command":{"id":"r-2","sku":"A","location":"w1","quantity":1,"extra":1}}`,
	} {
		id := fmt.Sprintf("bad-%d", i)
		bad = `{"id":"` + id + `",` + bad
		if status, _, body := post(t, s, "/v1/commands", bad); status != 422 && status != 400 {
			t.Errorf("%s = %d %s, want 400 or 422", bad, status, body)
		}
		// Refused at once means never queued: there is no such command.
		if _, err := s.Client.GetCommand(t.Context(), id); !stockd.IsCode(err, stockd.CodeNotFound) {
			t.Errorf("%s was refused, yet GET /v1/commands/%s = %v, want not_found", bad, id, err)
		}
	}
}

// TestQueuedCommandSurvivesRestart: a command acknowledged but not yet
// applied when the service stops is applied after the next start.
func TestQueuedCommandSurvivesRestart(t *testing.T) {
	s := e2e.Start(t, e2e.Options{App: func(c *app.Config) { c.Intake.Paused = true }})
	e2e.ConfigureLocations(t, s.Client, "w1")
	for _, body := range []string{
		`{"id":"cmd-1","type":"receive","command":{"id":"r-1","sku":"A","location":"w1","quantity":7}}`,
		`{"id":"cmd-2","type":"adjust","command":{"id":"a-1","sku":"A","location":"w1","delta":-2,"reason":"damaged"}}`,
	} {
		if status, _, b := post(t, s, "/v1/commands", body); status != 202 {
			t.Fatalf("%d %s", status, b)
		}
	}
	if c, err := s.Client.GetCommand(t.Context(), "cmd-2"); err != nil || c.Status != stockd.CommandQueued {
		t.Fatalf("before the restart: %+v %v", c, err)
	}
	if n := onHand(t, s, "A"); n != 0 {
		t.Fatalf("a paused intake applied something: A = %d", n)
	}
	dir := s.Dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = e2e.Start(t, e2e.Options{Dir: dir})
	// In order: the adjustment needs the receipt's stock.
	if c := wait(t, s, "cmd-2"); c.Status != stockd.CommandApplied {
		t.Fatalf("cmd-2 after the restart = %+v %+v", c, c.Problem)
	}
	if c := wait(t, s, "cmd-1"); c.Status != stockd.CommandApplied {
		t.Fatalf("cmd-1 after the restart = %+v", c)
	}
	if n := onHand(t, s, "A"); n != 5 {
		t.Errorf("A after the restart = %d, want 5", n)
	}
}
