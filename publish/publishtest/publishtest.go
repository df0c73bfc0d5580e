// Package publishtest holds what the tests of every publisher share: a
// writer that receives stock through a test server while a publisher runs, a
// Sink that counts its calls and failures, an in-process NATS server, and
// waits on conditions with a deadline.
package publishtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/publish"
)

// Writer receives stock through a server's engine, one SKU of 53 after
// another, from several goroutines, until stopped.
type Writer struct {
	n    atomic.Int64
	stop chan struct{}
	done sync.WaitGroup
}

// StartWriter starts callers goroutines receiving one unit each, with
// receipt ids prefix-1, prefix-2, and so on, at location w1.
func StartWriter(t testing.TB, srv *e2e.Server, prefix string, callers int) *Writer {
	w := &Writer{stop: make(chan struct{})}
	var next atomic.Int64
	for range callers {
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				i := next.Add(1)
				cmd := stockd.ReceiveStock{ID: fmt.Sprintf("%s-%d", prefix, i), SKU: fmt.Sprintf("sku-%d", i%53), Location: "w1", Quantity: 1}
				_, _, err := srv.Engine.Receive(context.Background(), cmd)
				// A busy machine (-race, tests in parallel) may
				// refuse a receipt as overloaded: retry it with the
				// same id after a pause, as a client does.
				for stockd.IsCode(err, stockd.CodeOverloaded) {
					time.Sleep(10 * time.Millisecond)
					_, _, err = srv.Engine.Receive(context.Background(), cmd)
				}
				if err != nil {
					t.Errorf("receive %d: %v", i, err)
					return
				}
				w.n.Add(1)
			}
		}()
	}
	return w
}

// WaitFor waits until n receipts were written.
func (w *Writer) WaitFor(t testing.TB, n int64) {
	t.Helper()
	Eventually(t, 30*time.Second, func() bool { return w.n.Load() >= n }, "the writer wrote %d events", n)
}

// Written returns the number of receipts written so far.
func (w *Writer) Written() int64 { return w.n.Load() }

// Stop stops the writer and waits for its goroutines.
func (w *Writer) Stop() {
	close(w.stop)
	w.done.Wait()
}

// RunNATS starts an in-process nats-server with JetStream keeping its data in
// dir, on port (-1: a free one). It is shut down when the test ends, or
// earlier by the caller.
func RunNATS(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start within 10 s")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Eventually polls cond until it holds, failing the test after d.
func Eventually(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for: "+format, append([]any{d}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitCaughtUp waits until r has published and checkpointed every durable
// event.
func WaitCaughtUp(t testing.TB, r *publish.Runner) {
	t.Helper()
	Eventually(t, 60*time.Second, func() bool { return r.Lag() == 0 }, "publisher %s to catch up (lag %d)", r.Name(), r.Lag())
}

// CountingSink passes Publish on to Sink and counts calls and failures.
type CountingSink struct {
	publish.Sink
	Calls, Failures atomic.Int64
}

// Publish implements publish.Sink.
func (s *CountingSink) Publish(ctx context.Context, p int, events []stockd.Event) error {
	s.Calls.Add(1)
	err := s.Sink.Publish(ctx, p, events)
	if err != nil {
		s.Failures.Add(1)
	}
	return err
}
