package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/drops"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/http"
	"github.com/stockd/stockd/intake"
	"github.com/stockd/stockd/pebble"
	"github.com/stockd/stockd/publish/kafkapub"
	"github.com/stockd/stockd/publish/natspub"
	"github.com/stockd/stockd/webhook"
)

func init() {
	register(command{name: "serve", summary: "run the service: on embedded storage, or as a node of a cluster on PostgreSQL (--store)", run: runServe})
}

// serveConfig is everything serve can be told, by flag or STOCKD_* variable.
type serveConfig struct {
	addr, data, logLevel, logFormat string
	debugAddr                       string
	archive                         string
	archiveAfter                    time.Duration
	keys, tlsCert, tlsKey           string
	allowedHosts, corsOrigins       string
	insecure, noUI                  bool
	store, storeSchema, advertise   string
	leaseTTL                        time.Duration
	sqlAvailability                 bool
	partitions, inbox, maxLines     int
	maxBatch, maxConns              int
	defaultTTL, maxTTL, shutdown    time.Duration
	retain                          time.Duration
	readTimeout, maxQueueWait       time.Duration
	snapshotEvery                   uint64
	minFree                         byteSize
	// Publishers (docs/publishers.md).
	nats, natsStream, kafka, kafkaTopic string
	webhooks                            webhook.Options
	// The intake of commands and supplier file drops (docs/intake.md).
	intake app.IntakeConfig
}

func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveConfig) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String(configFlag, "", "file of settings, one \"flag-name = value\" per line (# comments); flags and STOCKD_* variables override it")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on; port 0 picks a free one")
	fs.StringVar(&c.data, "data", "./data", "directory of the embedded store, created if missing (with --store postgres://…: only the default folder of cold storage)")
	fs.StringVar(&c.store, "store", "", "the store: unset for the embedded one in --data, or a PostgreSQL URL, postgres://user:password@host:5432/db (prefer the variable STOCKD_STORE: a password on the command line shows in the process list)")
	fs.StringVar(&c.storeSchema, "store-schema", "stockd", "PostgreSQL schema of the store's tables, created if missing (one store per schema)")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", app.DefaultLeaseTTL, "with --store postgres://…: how long this node's partition leases last unrenewed: the other nodes take its partitions that long after it dies (at once when it stops)")
	fs.BoolVar(&c.sqlAvailability, "sql-availability", false, "with --store postgres://…: keep the availability read model in the table availability of --store-schema too, one row per SKU and location, for other services to query with SQL (docs/sql-availability.md)")
	fs.StringVar(&c.advertise, "advertise", "", "the URL other nodes reach this one at, registered in the store; unset: the address it listens on")
	fs.StringVar(&c.keys, "keys", "", "file of API keys (see stockd keys new); without it everyone may do everything, so serve only on loopback")
	fs.BoolVar(&c.insecure, "insecure", false, "allow serving without --keys on an address others can reach")
	fs.BoolVar(&c.noUI, "no-ui", false, "do not serve the admin web UI at /ui/ (docs/ui.md)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate file: serve HTTPS (TLS 1.2 or later) with --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.StringVar(&c.allowedHosts, "allowed-hosts", "", "comma-separated Host names served (others get 421): guards against DNS rebinding")
	fs.StringVar(&c.corsOrigins, "cors-origin", "", "comma-separated origins browser pages may call the API from; CORS is off without it")
	fs.IntVar(&c.partitions, "partitions", 0, fmt.Sprintf("partitions of a NEW store; unset: %d, or an existing store's own (fixed once created; another number is refused)", pebble.DefaultPartitions))
	fs.IntVar(&c.inbox, "inbox", 8192, "requests that may wait per partition before new ones get 503 overloaded")
	fs.IntVar(&c.maxLines, "max-lines", stockd.DefaultLimits.MaxLines, "most lines in one reservation")
	fs.IntVar(&c.maxBatch, "max-batch", 1000, "most operations in one POST /v1/batch")
	fs.IntVar(&c.maxConns, "max-conns", 4096, "most open connections; more are answered 503 at once")
	fs.DurationVar(&c.maxQueueWait, "max-queue-wait", 200*time.Millisecond, "longest a request may be expected to wait in its partition's queue before it is refused at once with 503 overloaded and Retry-After; negative: only a full inbox refuses")
	c.minFree = app.DefaultMinFreeBytes
	fs.Var(&c.minFree, "min-free", "free disk space kept for stockd's own writes (like 256MiB or 2GiB): below it serve refuses to start and refuses commands with 503 until space is freed; -1 turns the guard off")
	fs.DurationVar(&c.readTimeout, "read-timeout", 30*time.Second, "longest time to read one request, body included (headers: 5s)")
	fs.DurationVar(&c.defaultTTL, "default-ttl", stockd.DefaultLimits.DefaultTTL, "hold time of a reservation that names no ttl")
	fs.DurationVar(&c.maxTTL, "max-ttl", stockd.DefaultLimits.MaxTTL, "longest ttl a reservation or extension may ask")
	fs.DurationVar(&c.retain, "retain", stockd.DefaultLimits.Retain, "how long a settled reservation, arrived transfer or receipt/adjustment/count record stays in memory before it is retired to disk (its id is still answered, from the store); 0 keeps everything in memory")
	fs.Uint64Var(&c.snapshotEvery, "snapshot-every", 50_000, "events a partition gains before a background snapshot; recovery replays at most this many a partition")
	fs.StringVar(&c.archive, "archive", "", "blob store URL of cold storage (file:///path, s3://bucket, gs://bucket, azblob://container); unset: the folder archive in --data")
	fs.DurationVar(&c.archiveAfter, "archive-after", 720*time.Hour, "age after which events behind the latest snapshot and every consumer move to --archive (history and as_of still read them, more slowly); 720h keeps a month of history, more than any hold, retention or replay window, on the fast disk; 0 turns archiving off")
	fs.DurationVar(&c.webhooks.Timeout, "webhook-timeout", 10*time.Second, "longest a webhook delivery attempt may take before it counts as failed")
	fs.IntVar(&c.webhooks.Attempts, "webhook-attempts", 10, "delivery attempts of one event before it goes to its webhook's dead letters")
	fs.DurationVar(&c.webhooks.MaxAge, "webhook-max-age", 15*time.Minute, "longest an event is retried (from its first attempt) before it goes to its webhook's dead letters; negative: only --webhook-attempts bounds it")
	fs.DurationVar(&c.webhooks.MaxBackoff, "webhook-max-backoff", 5*time.Minute, "longest pause between attempts of a webhook delivery (the pauses double from 1s, with full jitter)")
	fs.BoolVar(&c.webhooks.AllowPrivate, "webhook-allow-private", false, "allow webhook endpoints on loopback, private and other internal addresses (refused by default: see docs/webhooks.md)")
	fs.DurationVar(&c.shutdown, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown waits for requests in flight")
	fs.StringVar(&c.debugAddr, "debug-addr", "", "if set, serve Go's pprof profiles on this address (keep it private)")
	fs.StringVar(&c.nats, "nats", "", "NATS server URL (nats://host:4222, several separated by commas): publish every event to JetStream, stream --nats-stream, subject stockd.events.<partition>; and take commands from the work queue STOCKD_COMMANDS, subject stockd.commands")
	fs.StringVar(&c.natsStream, "nats-stream", natspub.DefaultStream, "JetStream stream the events of --nats go to, created (or given the subjects stockd.events.*) if needed")
	fs.StringVar(&c.kafka, "kafka", "", "comma-separated Kafka seed brokers (host:9092): publish every event to --kafka-topic, keyed by SKU")
	fs.StringVar(&c.kafkaTopic, "kafka-topic", kafkapub.DefaultTopic, "Kafka topic the events of --kafka go to; created with the cluster's defaults if missing and allowed")
	fs.DurationVar(&c.intake.Retain, "intake-retain", intake.DefaultRetain, "how long the status of a finished command of POST /v1/commands (or the NATS work queue) is kept")
	fs.IntVar(&c.intake.MaxQueued, "intake-max-queued", intake.DefaultMaxQueued, "most commands waiting to be applied; more are refused with 503 overloaded")
	fs.StringVar(&c.intake.DropsURL, "drops", "", "folder or bucket URL where suppliers drop CSV files of receipts (file:///path, s3://bucket, gs://bucket, azblob://container): each new file is imported once")
	fs.DurationVar(&c.intake.DropsEvery, "drops-every", drops.DefaultEvery, "pause between two looks at --drops")
	fs.DurationVar(&c.intake.DropsSettle, "drops-settle", drops.DefaultSettle, "how long a dropped file must stay unchanged before it is read (so a file still being written is not); 0 reads it at once")
	fs.StringVar(&c.intake.DropsLocation, "drops-location", "", "location of the rows of a dropped file that name none")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: stockd serve [flags]\n\nRuns the stockd HTTP API on embedded storage (no server to install).\nEvery flag can also be set by an environment variable (--max-ttl by STOCKD_MAX_TTL,\nand so on) or in the file named by --config (STOCKD_CONFIG), one \"max-ttl = 20m\" per line.\nThe command line wins over the environment, which wins over the file.\n\nFlags:")
		fs.PrintDefaults()
	}
	return fs, c
}

// parseFlags sets flags from the configuration file named by --config or
// STOCKD_CONFIG, if any, then from STOCKD_* variables, then from args, which
// win.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if path := configPath(args); path != "" && fs.Lookup(configFlag) != nil {
		if err := applyConfigFile(fs, path); err != nil {
			return err
		}
	}
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

// appConfig turns the flags into the App's configuration.
func (c *serveConfig) appConfig(log *slog.Logger) (app.Config, error) {
	limits := stockd.DefaultLimits
	limits.MaxLines, limits.DefaultTTL, limits.MaxTTL, limits.Retain = c.maxLines, c.defaultTTL, c.maxTTL, c.retain
	cfg := app.Config{
		Addr: c.addr, Data: c.data, Store: c.store, StoreSchema: c.storeSchema, LeaseTTL: c.leaseTTL, Advertise: c.advertise, Partitions: c.partitions, Insecure: c.insecure, NoUI: c.noUI,
		TLSCert: c.tlsCert, TLSKey: c.tlsKey, MaxConns: c.maxConns, ReadTimeout: c.readTimeout,
		MinFreeBytes: int64(c.minFree),
		Engine:       engine.Options{Limits: limits, InboxSize: c.inbox, SnapshotEvery: c.snapshotEvery, MaxQueueWait: c.maxQueueWait},
		HTTP: http.Config{
			MaxBatch: c.maxBatch, AllowedHosts: splitList(c.allowedHosts), CORSOrigins: splitList(c.corsOrigins),
		},
		Logger: log,
	}
	cfg.ArchiveURL, cfg.ArchiveAfter = c.archive, c.archiveAfter
	cfg.SQLAvailability = c.sqlAvailability
	cfg.Publish = app.PublishConfig{NATS: c.nats, NATSStream: c.natsStream, Kafka: splitList(c.kafka), KafkaTopic: c.kafkaTopic}
	cfg.Webhooks = c.webhooks
	cfg.Intake = c.intake
	cfg.Intake.DropsSettleSet = true
	if c.keys != "" {
		keys, err := app.LoadKeys(c.keys)
		if err != nil {
			return cfg, err
		}
		cfg.Keys = keys
	}
	return cfg, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// serve runs the service until ctx is done or storage fails.
func serve(ctx context.Context, c *serveConfig, stdout io.Writer, log *slog.Logger) (int, error) {
	cfg, err := c.appConfig(log)
	if err != nil {
		return exitUsage, err
	}
	if err := cfg.Check(); err != nil {
		return exitUsage, err
	}
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
	where := "data in " + c.data
	if c.store != "" {
		where = "store " + cfg.StoreName() + ", schema " + c.storeSchema
	}
	first := true
	err = app.RunRecovering(ctx, cfg, c.shutdown, func(a *app.App) {
		if first {
			fmt.Fprintf(stdout, "stockd listening on %s (%s)\n", a.URL(), where)
			first = false
		}
		log.Info("listening", "addr", a.Addr(), "store", cfg.StoreName(), "data", c.data, "partitions", a.Store.Partitions(), "keys", cfg.Keys != nil, "node", a.NodeID)
	})
	if err != nil {
		if errors.Is(err, app.ErrFatal) {
			log.Error("storage failure: stopping without acknowledging anything more", "err", err)
			return exitFatal, err
		}
		return exitFailure, err
	}
	log.Info("stopped cleanly")
	return exitOK, nil
}
