// Package e2e holds stockd's end-to-end tests: a real server (Pebble store,
// engine, HTTP API) started in-process on a free port, driven through the Go
// client and with raw HTTP where the wire shape matters. Start is exported so
// that other packages' tests (the CLI's) can run against the same server.
package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net"
	nethttp "net/http"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/http"
	"github.com/stockd/stockd/pebble"
	"github.com/stockd/stockd/readmodel"
)

// Options configure a test server. The zero value is a server with 8
// partitions and default limits in a fresh temporary directory.
type Options struct {
	// Dir is the store's directory; empty means a new t.TempDir(). Pass a
	// previous server's Dir to restart over the same data.
	Dir string
	// Partitions of a new store; default 8.
	Partitions int
	// FS is the store's file system; nil means the operating system's.
	// Fuzz targets pass vfs.NewMem() so that an input costs no fsync.
	FS vfs.FS
	// Engine configures the engine. Its Logger defaults to a discarding one
	// and its Limits to HTTP.Limits.
	Engine engine.Options
	// HTTP configures the API. Service and ReadModel are filled in; its
	// Limits default to the engine's and its Logger to a discarding one.
	HTTP http.Config
	// NoReadModel leaves the read model out: availability and
	// reservations by customer then answer 503.
	NoReadModel bool
}

// Server is a running stockd: store, engine, read model (unless left out),
// HTTP API and a listener on 127.0.0.1.
type Server struct {
	// URL is the server's base address, such as http://127.0.0.1:41234.
	URL string
	// Dir is the store's directory.
	Dir string
	// Store, Engine and API are the server's parts.
	Store  *pebble.Store
	Engine *engine.Engine
	API    *http.Server
	// Client is a client of the server.
	Client *client.Client
	// HasReadModel reports whether availability and reservations by
	// customer are served.
	HasReadModel bool

	opts      Options
	closeOnce sync.Once
	closeErr  error
	close     func() error
}

// discard is a logger that drops everything: the servers of tests are quiet.
var discard = slog.New(slog.DiscardHandler)

// startReadModel starts the availability read model over store, following
// eng's durable heads, and returns what the HTTP server needs and a function
// that stops it.
func startReadModel(store *pebble.Store, eng *engine.Engine, limits stockd.Limits) (*http.ReadModel, func(), error) {
	proj := readmodel.New(store, readmodel.Options{DurableHead: eng.DurableHead, Limits: limits, Logger: discard})
	if err := proj.Start(context.Background()); err != nil {
		return nil, nil, err
	}
	rm := &http.ReadModel{
		Availability:           func(skus []string) any { return proj.Availability(skus) },
		ReservationsByCustomer: func(customer string, limit int) any { return proj.ReservationsByCustomer(customer, limit) },
	}
	return rm, func() { proj.Close() }, nil
}

// Start runs a server for the rest of the test; it is closed when the test
// ends, or earlier by Close.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := start(opts, t.TempDir)
	if err != nil {
		t.Fatalf("e2e: starting the server: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func start(opts Options, tempDir func() string) (*Server, error) {
	if opts.Dir == "" {
		opts.Dir = tempDir()
	}
	if opts.Partitions == 0 {
		opts.Partitions = 8
	}
	limits := opts.Engine.Limits
	if limits == (stockd.Limits{}) {
		limits = opts.HTTP.Limits
	}
	if limits == (stockd.Limits{}) {
		limits = stockd.DefaultLimits
	}
	eopts := opts.Engine
	eopts.Limits = limits
	if eopts.Logger == nil {
		eopts.Logger = discard
	}
	store, err := pebble.Open(opts.Dir, pebble.Options{Partitions: opts.Partitions, FS: opts.FS, Logger: discard})
	if err != nil {
		return nil, err
	}
	eng, err := engine.Open(context.Background(), store, eopts)
	if err != nil {
		store.Close()
		return nil, err
	}
	var rm *http.ReadModel
	stopRM := func() {}
	if !opts.NoReadModel {
		rm, stopRM, err = startReadModel(store, eng, limits)
		if err != nil {
			eng.Close(context.Background())
			store.Close()
			return nil, err
		}
	}
	cfg := opts.HTTP
	cfg.Service = eng
	cfg.ReadModel = rm
	cfg.Limits = limits
	if cfg.Logger == nil {
		cfg.Logger = discard
	}
	if cfg.Ready == nil {
		cfg.Ready = func() error {
			if eng.Err() != nil {
				return errors.New("storage failed")
			}
			return nil
		}
	}
	api := http.NewServer(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stopRM()
		eng.Close(context.Background())
		store.Close()
		return nil, err
	}
	hs := &nethttp.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(ln)
	}()
	url := "http://" + ln.Addr().String()
	s := &Server{
		URL: url, Dir: opts.Dir, Store: store, Engine: eng, API: api,
		Client: client.New(url), HasReadModel: rm != nil, opts: opts,
	}
	s.close = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs := []error{hs.Shutdown(ctx)}
		<-served
		stopRM()
		errs = append(errs, eng.Close(ctx), store.Close())
		return errors.Join(errs...)
	}
	return s, nil
}

// Close stops the server and closes its engine and store. It may be called
// more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

// Restart closes the server and starts a new one over the same directory and
// options, as a process restart would. The new server listens on a new port.
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("e2e: closing the server: %v", err)
	}
	opts := s.opts
	opts.Dir = s.Dir
	return Start(t, opts)
}
