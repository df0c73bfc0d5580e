package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"regexp"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
)

func TestFeedCommand(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	if _, _, err := s.Client.Receive(context.Background(), stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 3}); err != nil {
		t.Fatal(err)
	}
	runCases(t, s, []cliCase{
		{name: "page", args: []string{"feed"}, stdout: `(?s)LocationConfigured.*StockReceived\s+A\s+1\s+r-1.*next page: stockd feed --after \S+ --limit 100`},
		{name: "json", args: []string{"feed", "--json", "--type", "StockReceived"}, json: true, stdout: `"next"`},
		{name: "bad type", args: []string{"feed", "--type", "Nope"}, code: exitUsage, stderr: "not an event type"},
		{name: "bad cursor", args: []string{"feed", "--after", "bogus"}, code: exitRejected, stderr: "not a feed cursor"},
	})

	// --follow streams JSON lines until interrupted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"feed", "--follow", "--url", s.URL}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	for _, want := range []string{"LocationConfigured", "StockReceived"} {
		if !sc.Scan() {
			t.Fatalf("the stream ended: %v", sc.Err())
		}
		var line struct {
			Cursor string
			Event  struct{ Type string }
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Event.Type != want || !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(line.Cursor) {
			t.Fatalf("line %s: %v, want a %s with its cursor", sc.Bytes(), err, want)
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if code := <-done; code != exitOK {
		t.Fatalf("--follow ended with %d when interrupted", code)
	}
}
