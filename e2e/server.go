// Package e2e holds stockd's end-to-end tests: the production App (Pebble
// store, engine, read model, HTTP API, metrics) started in-process on a free
// port, driven through the Go client and with raw HTTP where the wire shape
// matters. Start is exported so that other packages' tests (the CLI's) can
// run against the same server.
package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/auth"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/http"
	"github.com/stockd/stockd/postgres"
)

// Options configure a test server. The zero value is a server with 8
// partitions, default limits and no keys in a fresh temporary directory.
type Options struct {
	// Dir is the store's directory; empty means a new t.TempDir(). Pass a
	// previous server's Dir to restart over the same data.
	Dir string
	// Partitions of a new store; default 8.
	Partitions int
	// FS is the store's file system; nil means the operating system's.
	// Fuzz targets pass vfs.NewMem() so that an input costs no fsync.
	FS vfs.FS
	// Engine configures the engine. Its Logger defaults to a discarding
	// one.
	Engine engine.Options
	// HTTP configures the API.
	HTTP http.Config
	// Keys, when set, makes the server require API keys.
	Keys http.Keys
	// App, when set, changes the App's configuration last.
	App func(*app.Config)
	// NoReadModel leaves the read model out: availability, listings and
	// reservations by customer then answer 503.
	NoReadModel bool
}

// Server is a running stockd App, with a client of it.
type Server struct {
	*app.App
	// URL is the server's base address, such as http://127.0.0.1:41234.
	URL string
	// Dir is the store's directory.
	Dir string
	// Client is a client of the server (without a key).
	Client *client.Client
	// HasReadModel reports whether availability and reservations by
	// customer are served.
	HasReadModel bool

	opts Options
}

// discard is a logger that drops everything: the servers of tests are quiet.
var discard = slog.New(slog.DiscardHandler)

// StoreEnv names the variable that runs the end-to-end tests on PostgreSQL:
// set to a postgres:// URL, every server Start makes keeps its store there,
// in a schema of its own (one per Dir, so that a restart finds its data)
// dropped when the test ends. Servers on an in-memory file system (FS set)
// stay on the embedded store.
const StoreEnv = "STOCKD_E2E_STORE"

// OnPostgres reports whether the servers of this run keep their stores in
// PostgreSQL (see StoreEnv); tests of the embedded store's own behaviour
// (its disk guard) skip then.
func OnPostgres() bool { return os.Getenv(StoreEnv) != "" }

// Start runs a server for the rest of the test; it is closed when the test
// ends, or earlier by Close.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if dsn := os.Getenv(StoreEnv); dsn != "" && opts.FS == nil {
		// Registered before the server's own Close, so it runs after.
		t.Cleanup(func() { dropSchema(t, dsn, schemaOf(opts.Dir)) })
	}
	s, err := start(opts, t.TempDir)
	if err != nil {
		t.Fatalf("e2e: starting the server: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// schemaOf is the PostgreSQL schema of the store of a server over dir.
func schemaOf(dir string) string {
	h := sha256.Sum256([]byte(dir))
	return "e2e_" + hex.EncodeToString(h[:8])
}

// dropSchema drops a test's schema, whatever it holds.
func dropSchema(t testing.TB, dsn, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.DropSchema(ctx, dsn, schema); err != nil {
		t.Errorf("e2e: %v", err)
	}
}

func start(opts Options, tempDir func() string) (*Server, error) {
	if opts.Dir == "" {
		opts.Dir = tempDir()
	}
	if opts.Partitions == 0 {
		opts.Partitions = 8
	}
	cfg := app.Config{
		Addr: "127.0.0.1:0", Data: opts.Dir, FS: opts.FS, Partitions: opts.Partitions,
		Engine: opts.Engine, HTTP: opts.HTTP, Keys: opts.Keys, NoReadModel: opts.NoReadModel, Logger: discard,
		// The machines tests run on may have little disk left; the guard
		// of free space has a test of its own.
		MinFreeBytes: -1,
	}
	if dsn := os.Getenv(StoreEnv); dsn != "" && opts.FS == nil {
		cfg.Store, cfg.StoreSchema = dsn, schemaOf(opts.Dir)
	}
	if opts.App != nil {
		opts.App(&cfg)
	}
	a, err := app.Open(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	a.Serve()
	return &Server{App: a, URL: a.URL(), Dir: opts.Dir, Client: client.New(a.URL()), HasReadModel: a.ReadModel != nil, opts: opts}, nil
}

// Close stops the server and closes its engine and store. It may be called
// more than once.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.App.Close(ctx)
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

// NewKeys makes a fresh key for each name, with the scopes given, and
// returns the API's authentication over them and each key's token by name.
func NewKeys(t testing.TB, scopes map[string][]stockd.Scope) (http.Keys, map[string]string) {
	t.Helper()
	var keys []auth.Key
	tokens := map[string]string{}
	for name, sc := range scopes {
		token, key, err := auth.NewKey(name, sc, 0, 0)
		if err != nil {
			t.Fatalf("e2e: a key for %s: %v", name, err)
		}
		keys = append(keys, key)
		tokens[name] = token
	}
	ring, err := auth.NewKeyring(keys)
	if err != nil {
		t.Fatalf("e2e: keyring: %v", err)
	}
	return app.Keys(ring), tokens
}

// Requests returns how many requests the server has answered on route, as
// its own metrics count them: tests use it to see which route a client
// called.
func (s *Server) Requests(route string) (float64, error) {
	mfs, err := s.Metrics.Registry().Gather()
	if err != nil {
		return 0, err
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "stockd_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == route {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n, nil
}

// ConfigureLocations configures each id as a warehouse of priority 1 through
// s (an engine, a client), as a test must before it receives, counts,
// adjusts, moves or reserves stock there: commands naming a location never
// configured are refused with unknown_location (DESIGN §7).
func ConfigureLocations(t testing.TB, s stockd.Service, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := s.ConfigureLocation(context.Background(), stockd.ConfigureLocation{ID: id, Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
			t.Fatalf("configure location %q: %v", id, err)
		}
	}
}
