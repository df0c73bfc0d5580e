package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stockd/stockd/pebble"
)

// TestServeWithoutPartitionsKeepsTheStores: serve without --partitions opens
// an existing store of any number of partitions. It used to pass 64 whether
// the flag was given or not, which the store now refuses for a store of
// another number.
func TestServeWithoutPartitionsKeepsTheStores(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{Partitions: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// serve stops as soon as it says it is listening.
	stdout := &watchWriter{want: "stockd listening", seen: cancel}
	var stderr bytes.Buffer
	// Not set, whatever the environment says; t.Setenv restores it.
	t.Setenv("STOCKD_PARTITIONS", "")
	os.Unsetenv("STOCKD_PARTITIONS")
	code := Run(ctx, []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-format", "json"}, stdout, &stderr)
	if code != exitOK {
		t.Fatalf("serve without --partitions on a store of 8: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"partitions":8`) {
		t.Errorf("serve did not report the store's 8 partitions:\n%s", stderr.String())
	}
	// Asking for another number is refused, saying why.
	code = Run(context.Background(), []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--partitions", "64"}, &bytes.Buffer{}, &stderr)
	if code == exitOK || !strings.Contains(stderr.String(), "fixed when a store is created") {
		t.Errorf("serve --partitions 64 on a store of 8: exit %d\n%s", code, stderr.String())
	}
}

// watchWriter collects what is written to it and calls seen once it holds
// want.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen func()
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.seen != nil && strings.Contains(w.buf.String(), w.want) {
		w.seen()
		w.seen = nil
	}
	return n, err
}
