package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/http"
	"github.com/stockd/stockd/metrics"
	"github.com/stockd/stockd/pebble"
	"github.com/stockd/stockd/readmodel"
)

func init() {
	register(command{name: "serve", summary: "run the service on embedded storage", run: runServe})
}

// serveConfig is everything serve can be told, by flag or STOCKD_* variable.
type serveConfig struct {
	addr, data, logLevel, logFormat string
	debugAddr                       string
	partitions, inbox, maxLines     int
	maxBatch                        int
	defaultTTL, maxTTL, shutdown    time.Duration
	snapshotEvery                   uint64
}

func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveConfig) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on; port 0 picks a free one")
	fs.StringVar(&c.data, "data", "./data", "directory of the embedded store, created if missing")
	fs.IntVar(&c.partitions, "partitions", 64, "partitions of a NEW store (fixed once created)")
	fs.IntVar(&c.inbox, "inbox", 8192, "requests that may wait per partition before new ones get 503 overloaded")
	fs.IntVar(&c.maxLines, "max-lines", stockd.DefaultLimits.MaxLines, "most lines in one reservation")
	fs.IntVar(&c.maxBatch, "max-batch", 1000, "most operations in one POST /v1/batch")
	fs.DurationVar(&c.defaultTTL, "default-ttl", stockd.DefaultLimits.DefaultTTL, "hold time of a reservation that names no ttl")
	fs.DurationVar(&c.maxTTL, "max-ttl", stockd.DefaultLimits.MaxTTL, "longest ttl a reservation or extension may ask")
	fs.Uint64Var(&c.snapshotEvery, "snapshot-every", 1_000_000, "events a partition gains before a background snapshot")
	fs.DurationVar(&c.shutdown, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown waits for requests in flight")
	fs.StringVar(&c.debugAddr, "debug-addr", "", "if set, serve Go's pprof profiles on this address (keep it private)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: stockd serve [flags]\n\nRuns the stockd HTTP API on embedded storage (no server to install).\nEvery flag can also be set by an environment variable: --max-ttl by STOCKD_MAX_TTL, and so on.\n\nFlags:")
		fs.PrintDefaults()
	}
	return fs, c
}

// parseFlags sets flags from STOCKD_* variables, then from args, which win.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "STOCKD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", name, v, e)
			}
		}
	})
	if err != nil {
		return err
	}
	return fs.Parse(args)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, c := serveFlags(stderr)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, "stockd serve:", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "stockd serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	log, err := newLogger(stderr, c.logLevel, c.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "stockd serve:", err)
		return exitUsage
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(engine.GCPercent)
	}
	code, err := serve(ctx, c, stdout, log)
	if err != nil {
		log.Error("stockd stopped", "err", err)
	}
	return code
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// serve runs the service until ctx is done or storage fails.
func serve(ctx context.Context, c *serveConfig, stdout io.Writer, log *slog.Logger) (int, error) {
	if err := os.MkdirAll(c.data, 0o755); err != nil {
		return exitFailure, err
	}
	store, err := pebble.Open(c.data, pebble.Options{Partitions: c.partitions, Logger: log})
	if err != nil {
		return exitFailure, err
	}
	defer store.Close()

	limits := stockd.DefaultLimits
	limits.MaxLines, limits.DefaultTTL, limits.MaxTTL = c.maxLines, c.defaultTTL, c.maxTTL
	reg := metrics.New(metrics.Options{Logger: log.With("component", "metrics")})
	if err := reg.Register(store.Collector()); err != nil {
		return exitFailure, err
	}
	// The read model needs the engine's durable heads and the engine wakes
	// the read model after each durable batch; the pointer ties the knot.
	var projection atomic.Pointer[readmodel.Projection]
	eng, err := engine.Open(ctx, store, engine.Options{
		Limits: limits, InboxSize: c.inbox, SnapshotEvery: c.snapshotEvery,
		Logger: log.With("component", "engine"), Observer: reg,
		OnDurable: func(p int) {
			if pr := projection.Load(); pr != nil {
				pr.Notify(p)
			}
		},
	})
	if err != nil {
		return exitFailure, err
	}
	proj := readmodel.New(store, readmodel.Options{DurableHead: eng.DurableHead, Limits: limits, Logger: log})
	if err := proj.Start(ctx); err != nil {
		eng.Close(context.Background())
		return exitFailure, err
	}
	projection.Store(proj)
	if err := errors.Join(reg.RegisterEngine(eng), reg.RegisterReadModel(proj)); err != nil {
		proj.Close()
		eng.Close(context.Background())
		return exitFailure, err
	}

	api := http.NewServer(http.Config{
		Service: eng,
		ReadModel: &http.ReadModel{
			Availability:           func(skus []string) any { return proj.Availability(skus) },
			ReservationsByCustomer: func(customer string, limit int) any { return proj.ReservationsByCustomer(customer, limit) },
		},
		Ready: func() error {
			if err := eng.Err(); err != nil {
				return errors.New("storage failed")
			}
			return nil
		},
		Limits: limits, MaxBatch: c.maxBatch, Metrics: reg, Logger: log.With("component", "http"),
	})
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		proj.Close()
		eng.Close(context.Background())
		return exitFailure, err
	}
	srv := &nethttp.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if c.debugAddr != "" {
		// Profiles are served apart from the API, on an address the
		// operator chooses, never on the public one.
		go func() {
			mux := nethttp.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			log.Info("serving profiles", "addr", c.debugAddr)
			if err := nethttp.ListenAndServe(c.debugAddr, mux); err != nil {
				log.Warn("profiles not served", "err", err)
			}
		}()
	}
	fmt.Fprintf(stdout, "stockd listening on http://%s (data in %s)\n", ln.Addr(), c.data)
	log.Info("listening", "addr", ln.Addr().String(), "data", c.data, "partitions", store.Partitions())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-eng.Fatal():
		// Fail-stop: nothing more may be acknowledged. Exit at once; the
		// next start recovers from the log.
		log.Error("storage failure: stopping without acknowledging anything more", "err", eng.Err())
		return exitFatal, eng.Err()
	case err := <-served:
		return exitFailure, err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the shutdown deadline", "err", err)
	}
	proj.Close()
	if err := eng.Close(sctx); err != nil {
		return exitFailure, err
	}
	log.Info("stopped cleanly")
	return exitOK, nil
}
