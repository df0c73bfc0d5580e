package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/auth"
)

// StartEmbedded starts a stockd server in this process, keeping its data in
// dir and listening on a free loopback port, and returns its base URL and a
// func that stops it; keys, when not empty, is the keys file it requires API
// keys from; store, when not empty, is a PostgreSQL URL to keep the store in
// instead, in schema. The stockd command sets it (so that tests can start a
// fake); when it is nil, Main needs --url.
var StartEmbedded func(ctx context.Context, dir, keys, store, schema string) (url string, stop func(), err error)

// TargetNames lists every target Main knows.
var TargetNames = []string{"stockd", "stockd-keys", "stockd-client", "stockd-batch", "noop", "pg-rowlock", "pg-events", "stockd-pg", "stockd-pg-client", "stockd-pg3", "stockd-pg3-client", "redis-lua"}

// WorkloadNames lists every workload Main knows.
var WorkloadNames = []string{"hot", "uniform"}

// options are Main's parsed flags.
type options struct {
	url       string
	embedded  bool
	data      string
	postgres  string
	redis     string
	targets   []string
	workloads []string
	clients   []int
	duration  time.Duration
	ops       int64
	warmup    time.Duration
	batch     int
	skus      int
	ttl       time.Duration
	json      bool
	profile   string
}

const usageText = `Usage: stockd bench [flags]

Runs a closed-loop load generator against stockd over HTTP and, side by side
in the same run, against the usual alternatives, and prints throughput and
p50/p99/p999 latency for every target, workload and number of clients, then
the ratios between targets.

Targets:
  stockd        one reservation per POST /v1/reservations
  stockd-keys   as stockd, on a second server that requires API keys
  stockd-client one reservation per call of the Go client, which coalesces
                concurrent calls into POST /v1/batch requests
  stockd-batch  --batch reservations per POST /v1/batch (ops/s counts
                reservations, req/s requests)
  noop          a Go net/http handler in this process that decodes the same
                body strictly and answers 201: the machine's per-request HTTP
                ceiling
  pg-rowlock    UPDATE stock SET available = available - $2
                WHERE sku = $1 AND available >= $2, autocommit, one
                connection per client
  pg-events     an event table with optimistic concurrency on (sku, version):
                read the head, check availability, append event v+1 and
                retry on unique violation (retries reported)
  stockd-pg     as stockd, on a second embedded server whose store is in
                PostgreSQL (--postgres), in a schema dropped at the end
  stockd-pg-client
                as stockd-client, on that server
  stockd-pg3    as stockd-pg, on a cluster of three embedded servers (nodes)
                sharing one fresh schema, started once every partition is
                leased and every node ready; the clients go round-robin
                over the nodes (client i to node i mod 3), so two requests
                in three arrive at a node that does not own the partition
                and are forwarded to the one that does
  stockd-pg3-client
                as stockd-client, on that cluster: one Go client per node,
                client i calling through node i mod 3's
Workloads:
  hot           one SKU "hot"; every operation reserves 1 unit
  uniform       --skus SKUs "sku-0"…; every operation reserves 1 unit of
                one chosen uniformly at random

Without --url, the bench starts an embedded stockd server in this process on
a free port, a fresh one per workload (data in a temporary directory, or in
--data/<workload>). Each workload runs noop first, then stockd, stockd-batch,
stockd-pg, stockd-pg3, pg-rowlock and pg-events, one at a time. The
PostgreSQL targets each work in a schema of their own (stockd_bench_<pid>_<random>)
and drop it at the end. The embedded servers all run in this process, beside
the load generator: with --cpuprofile, the profile labels each server's
goroutines node=<name> and the generator's load=<target> (go tool pprof
-tags shows the split).

Examples:
  stockd bench
  stockd bench --url http://127.0.0.1:8080 --postgres postgres://localhost/test
  stockd bench --targets stockd,noop --workloads hot --clients 64 --json
  stockd bench --postgres postgres://localhost/test --clients 64 \
    --targets stockd-pg,stockd-pg-client,stockd-pg3,stockd-pg3-client,pg-rowlock

Flags:
`

// newFlagSet declares Main's flags on a fresh FlagSet bound to o.
func newFlagSet(o *options) (*flag.FlagSet, func() error) {
	fs := flag.NewFlagSet("stockd bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var targets, workloads, clients string
	fs.StringVar(&o.url, "url", "", "base URL of a running stockd server to drive, e.g. http://127.0.0.1:8080 (default: an embedded server)")
	fs.BoolVar(&o.embedded, "embedded", false, "start an in-process stockd server on a free port (the default when --url is not given)")
	fs.StringVar(&o.data, "data", "", "data directory of the embedded servers, one subdirectory per workload; put it on the disk you mean to measure (default: a new temporary directory, removed afterwards)")
	fs.StringVar(&o.redis, "redis", "", "Redis host:port for the redis-lua target, a Lua check-and-decrement per reservation (env STOCKD_BENCH_REDIS); the report says whether the server fsyncs each write (appendfsync always)")
	fs.StringVar(&o.postgres, "postgres", "", "PostgreSQL DSN for the pg-rowlock and pg-events targets, and the store of the stockd-pg targets' server and the stockd-pg3 targets' cluster, e.g. postgres://localhost:5432/test (env STOCKD_BENCH_POSTGRES)")
	fs.StringVar(&targets, "targets", "", "comma-separated targets among "+strings.Join(TargetNames, ",")+" (default stockd,stockd-keys,stockd-client,stockd-batch,noop, and pg-rowlock,pg-events,stockd-pg,stockd-pg-client,stockd-pg3,stockd-pg3-client when a DSN is given)")
	fs.StringVar(&workloads, "workloads", "hot,uniform", "comma-separated workloads among "+strings.Join(WorkloadNames, ","))
	fs.StringVar(&clients, "clients", "1,64,256", "comma-separated numbers of concurrent clients; each level is measured separately")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per target and level")
	fs.Int64Var(&o.ops, "ops", 0, "measure this many operations per target and level instead of --duration (0: use --duration); warm-up requests come on top")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured run before each level")
	fs.IntVar(&o.batch, "batch", 100, "reservations per /v1/batch request for stockd-batch (1-1000)")
	fs.IntVar(&o.skus, "skus", DefaultUniformSKUs, "number of SKUs of the uniform workload")
	fs.DurationVar(&o.ttl, "ttl", 15*time.Minute, "hold time each reservation asks for")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of tables")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the whole run (load generator and embedded server alike) to this file")
	finish := func() error {
		var err error
		if o.targets, err = parseNames("--targets", targets, TargetNames); err != nil {
			return err
		}
		if o.workloads, err = parseNames("--workloads", workloads, WorkloadNames); err != nil {
			return err
		}
		o.clients, err = parseInts("--clients", clients)
		return err
	}
	return fs, finish
}

// parseFlags parses and checks Main's arguments.
func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs, finish := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// The environment applies unless the flag is given (even empty, to
	// leave the PostgreSQL targets out); --help never prints the DSN,
	// which may hold a password.
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "postgres" })
	if !set {
		o.postgres = os.Getenv("STOCKD_BENCH_POSTGRES")
	}
	set = false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "redis" })
	if !set {
		o.redis = os.Getenv("STOCKD_BENCH_REDIS")
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if len(o.targets) == 0 {
		o.targets = []string{"stockd", "stockd-keys", "stockd-client", "stockd-batch", "noop"}
		if o.postgres != "" {
			o.targets = append(o.targets, "pg-rowlock", "pg-events", "stockd-pg", "stockd-pg-client", "stockd-pg3", "stockd-pg3-client")
		}
		if o.redis != "" {
			o.targets = append(o.targets, "redis-lua")
		}
	}
	if len(o.workloads) == 0 {
		return nil, errors.New("--workloads: name at least one workload")
	}
	if len(o.clients) == 0 {
		return nil, errors.New("--clients: give at least one number")
	}
	switch {
	case o.ops < 0:
		return nil, errors.New("--ops must be ≥ 0")
	case o.ops == 0 && o.duration <= 0:
		return nil, errors.New("--duration must be > 0")
	case o.warmup < 0:
		return nil, errors.New("--warmup must be ≥ 0")
	case o.batch < 1 || o.batch > 1000:
		return nil, errors.New("--batch must be between 1 and 1000")
	case o.skus < 1 || o.skus > 10_000_000:
		return nil, errors.New("--skus must be between 1 and 10,000,000")
	case o.ttl <= 0:
		return nil, errors.New("--ttl must be > 0")
	case o.url != "" && o.embedded:
		return nil, errors.New("--url and --embedded exclude each other")
	}
	if o.data != "" && o.url != "" {
		return nil, errors.New("--data is for the embedded server; it cannot be used with --url")
	}
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--url: want http://host:port, got %q", o.url)
		}
	}
	for _, t := range o.targets {
		if (strings.HasPrefix(t, "pg-") || strings.HasPrefix(t, "stockd-pg")) && o.postgres == "" {
			return nil, fmt.Errorf("target %s needs --postgres DSN (or STOCKD_BENCH_POSTGRES)", t)
		}
		if t == "redis-lua" {
			if err := redisAddr(o.redis); err != nil {
				return nil, fmt.Errorf("target redis-lua needs --redis host:port (or STOCKD_BENCH_REDIS): %w", err)
			}
		}
	}
	if o.needsStockd() && o.url == "" && StartEmbedded == nil {
		return nil, errors.New("no --url given and this build has no embedded server: start one with `stockd serve` and pass --url http://127.0.0.1:8080, or leave stockd and stockd-batch out of --targets")
	}
	return o, nil
}

func (o *options) needsStockd() bool {
	return slices.Contains(o.targets, "stockd") || slices.Contains(o.targets, "stockd-batch") ||
		slices.Contains(o.targets, "stockd-keys") || slices.Contains(o.targets, "stockd-client")
}

// embeds reports whether the targets start embedded servers, which need
// data directories: a temporary one unless --data names one, never the
// current directory.
func (o *options) embeds() bool {
	return slices.ContainsFunc(o.targets, func(t string) bool { return strings.HasPrefix(t, "stockd") })
}

// parseNames splits a comma-separated list and checks every name is known
// and given once.
func parseNames(flagName, s string, known []string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(known, f) {
			return nil, fmt.Errorf("%s: unknown name %q (known: %s)", flagName, f, strings.Join(known, ", "))
		}
		if slices.Contains(out, f) {
			return nil, fmt.Errorf("%s: %q given twice", flagName, f)
		}
		out = append(out, f)
	}
	return out, nil
}

// parseInts splits a comma-separated list of client counts.
func parseInts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 100_000 {
			return nil, fmt.Errorf("%s: want numbers between 1 and 100000, got %q", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// usage writes the help text and every flag with its default.
func usage(w io.Writer) {
	fs, _ := newFlagSet(&options{})
	fs.SetOutput(w)
	fmt.Fprint(w, usageText)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Exit status: 0 when every target ran, 1 when a run failed (a target could not
be set up, or all its requests failed), 2 for a usage error.
`)
}

// Main runs `stockd bench` with args (the arguments after "bench") and returns
// the exit status: 0 when every target ran, 1 when the run failed, 2 for a
// usage error. The report goes to stdout; progress and errors to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "stockd bench: %v\nRun 'stockd bench --help' for usage.\n", err)
		return 2
	}
	if o.profile != "" {
		stop, err := startProfile(o.profile)
		if err != nil {
			fmt.Fprintf(stderr, "stockd bench: %v\n", err)
			return 1
		}
		defer stop()
	}
	rep, err := run(ctx, o, stderr)
	if rep != nil {
		rep.Command = strings.Join(append([]string{"stockd", "bench"}, redactArgs(args)...), " ")
		var werr error
		if o.json {
			werr = rep.WriteJSON(stdout)
		} else {
			werr = rep.WriteText(stdout)
		}
		err = errors.Join(err, werr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "stockd bench: %v\n", err)
		return 1
	}
	return 0
}

// startProfile starts a CPU profile written to path and returns the func that
// ends it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// redactArgs returns args with any password in a --postgres DSN replaced by
// "xxxxx", for printing the command in a report.
func redactArgs(args []string) []string {
	out := slices.Clone(args)
	redact := func(dsn string) string {
		if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
			return u.Redacted()
		}
		// key=value form: password=secret
		f := strings.Fields(dsn)
		for i, kv := range f {
			if strings.HasPrefix(kv, "password=") {
				f[i] = "password=xxxxx"
			}
		}
		return strings.Join(f, " ")
	}
	for i := 0; i < len(out); i++ {
		a := out[i]
		switch {
		case a == "-postgres" || a == "--postgres":
			if i+1 < len(out) {
				out[i+1] = redact(out[i+1])
				i++
			}
		case strings.HasPrefix(a, "-postgres=") || strings.HasPrefix(a, "--postgres="):
			k, v, _ := strings.Cut(a, "=")
			out[i] = k + "=" + redact(v)
		}
	}
	return out
}

// run runs each workload of o in turn, with targets set up afresh for it and
// torn down after it: with the embedded server, a new server on a directory of
// its own per workload, stopped before the next. Otherwise the millions of
// holds of one workload would stay in this process's heap and make the
// garbage collector, which every target here shares, slower for the next.
func run(ctx context.Context, o *options, progress io.Writer) (*Report, error) {
	client := NewHTTPClient(slices.Max(o.clients))
	defer client.CloseIdleConnections()
	dir := o.data
	if o.embeds() && o.url == "" && dir == "" {
		tmp, err := os.MkdirTemp("", "stockd-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	var total *Report
	var errs []error
	for _, name := range o.workloads {
		w := Hot()
		if name == "uniform" {
			w = Uniform(o.skus)
		}
		rep, err := runWorkload(ctx, o, client, w, filepath.Join(dir, name), progress)
		total = total.merge(rep)
		if err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if total != nil {
		total.computeRatios()
	}
	return total, errors.Join(errs...)
}

// runWorkload sets up the targets o names, runs them through w and tears
// them down. dir is the embedded server's data directory.
func runWorkload(ctx context.Context, o *options, client *http.Client, w Workload, dir string, progress io.Writer) (rep *Report, err error) {
	var targets []Target
	defer func() {
		for _, t := range targets {
			if cerr := t.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("%s: close: %w", t.Name(), cerr))
			}
		}
	}()
	var stockd *Stockd
	if o.needsStockd() {
		base := o.url
		if base == "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			u, stop, err := startLabelled(ctx, "stockd", dir, "", "", "")
			if err != nil {
				return nil, fmt.Errorf("starting the embedded server: %w", err)
			}
			defer func() {
				stop()
				client.CloseIdleConnections()
				// Leave the next workload a heap without this
				// server's state.
				runtime.GC()
			}()
			fmt.Fprintf(progress, "bench: %s: embedded stockd at %s, data in %s\n", w.Name, u, dir)
			base = u
		}
		stockd = NewStockd(base, client, o.ttl)
	}
	var keyed *Stockd
	if slices.Contains(o.targets, "stockd-keys") {
		if o.url != "" || StartEmbedded == nil {
			return nil, errors.New("stockd-keys needs the embedded server (no --url): it starts a second one that requires API keys")
		}
		u, token, stop, err := startKeyed(ctx, dir+"-keys")
		if err != nil {
			return nil, fmt.Errorf("starting the embedded server with keys: %w", err)
		}
		defer func() {
			stop()
			client.CloseIdleConnections()
			runtime.GC()
		}()
		fmt.Fprintf(progress, "bench: %s: embedded stockd with API keys at %s\n", w.Name, u)
		keyed = NewStockd(u, client, o.ttl)
		keyed.auth = "Bearer " + token
	}
	var onPG *Stockd
	if slices.Contains(o.targets, "stockd-pg") || slices.Contains(o.targets, "stockd-pg-client") {
		if o.url != "" || StartEmbedded == nil {
			return nil, errors.New("stockd-pg needs the embedded server (no --url): it starts one whose store is in PostgreSQL")
		}
		schema := SchemaName()
		u, stop, err := startLabelled(ctx, "pg1", dir+"-pg", "", o.postgres, schema)
		if err != nil {
			return nil, fmt.Errorf("starting the embedded server on PostgreSQL: %w", err)
		}
		defer func() {
			stop()
			client.CloseIdleConnections()
			if derr := dropSchema(o.postgres, schema); derr != nil {
				err = errors.Join(err, derr)
			}
			runtime.GC()
		}()
		fmt.Fprintf(progress, "bench: %s: embedded stockd on PostgreSQL at %s, schema %s\n", w.Name, u, schema)
		onPG = NewStockd(u, client, o.ttl)
		onPG.name = "stockd-pg"
	}
	var onPG3 *Stockd
	if slices.Contains(o.targets, "stockd-pg3") || slices.Contains(o.targets, "stockd-pg3-client") {
		if o.url != "" || StartEmbedded == nil {
			return nil, errors.New("stockd-pg3 needs the embedded server (no --url): it starts a cluster of three whose store is in PostgreSQL")
		}
		schema := SchemaName()
		fmt.Fprintf(progress, "bench: %s: starting %d embedded stockd nodes on PostgreSQL, schema %s, and waiting for the cluster to settle\n", w.Name, ClusterNodes, schema)
		start := time.Now()
		urls, stop, err := startCluster(ctx, client, ClusterNodes, dir+"-pg3", o.postgres, schema)
		if err != nil {
			if derr := dropSchema(o.postgres, schema); derr != nil {
				err = errors.Join(err, derr)
			}
			return nil, fmt.Errorf("starting the embedded cluster on PostgreSQL: %w", err)
		}
		defer func() {
			stop()
			client.CloseIdleConnections()
			if derr := dropSchema(o.postgres, schema); derr != nil {
				err = errors.Join(err, derr)
			}
			runtime.GC()
		}()
		fmt.Fprintf(progress, "bench: %s: embedded stockd cluster on PostgreSQL at %s, settled in %s\n", w.Name, strings.Join(urls, " "), time.Since(start).Round(time.Millisecond))
		onPG3 = NewStockdCluster(urls, client, o.ttl)
		onPG3.name = "stockd-pg3"
	}
	// A fixed order, whatever the flag's: the ceiling first, before any
	// server has accumulated state or background work, then stockd, then
	// its peers.
	for _, name := range []string{"noop", "stockd", "stockd-keys", "stockd-client", "stockd-batch", "stockd-pg", "stockd-pg-client", "stockd-pg3", "stockd-pg3-client", "pg-rowlock", "pg-events", "redis-lua"} {
		if !slices.Contains(o.targets, name) {
			continue
		}
		switch name {
		case "stockd":
			targets = append(targets, stockd.Single())
		case "stockd-keys":
			targets = append(targets, keyed.Keyed())
		case "stockd-client":
			targets = append(targets, stockd.Client())
		case "stockd-batch":
			targets = append(targets, stockd.Batch(o.batch))
		case "stockd-pg":
			targets = append(targets, onPG.Single())
		case "stockd-pg-client":
			targets = append(targets, onPG.Client())
		case "stockd-pg3":
			targets = append(targets, onPG3.Single())
		case "stockd-pg3-client":
			targets = append(targets, onPG3.Client())
		case "noop":
			n, err := StartNoop(client, o.ttl)
			if err != nil {
				return nil, err
			}
			targets = append(targets, n)
		case "redis-lua":
			targets = append(targets, NewRedisLua(o.redis))
		case "pg-rowlock":
			targets = append(targets, NewPGRowLock(o.postgres))
		case "pg-events":
			targets = append(targets, NewPGEvents(o.postgres))
		}
	}
	cfg := Config{Workloads: []Workload{w}, Clients: o.clients, Duration: o.duration, Ops: o.ops, Warmup: o.warmup, Progress: progress}
	return Run(ctx, cfg, targets)
}

// startKeyed starts an embedded server in dir that requires an API key, and
// returns its URL and a key with every scope and no rate limit: the cost
// measured is authentication's, not a limit's.
func startKeyed(ctx context.Context, dir string) (url, token string, stop func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", nil, err
	}
	token, key, err := auth.NewKey("bench", []stockd.Scope{stockd.ScopeAdmin}, 0, 0)
	if err != nil {
		return "", "", nil, err
	}
	file := filepath.Join(dir, "keys.txt")
	if err := os.WriteFile(file, []byte(key.Line()+"\n"), 0o600); err != nil {
		return "", "", nil, err
	}
	url, stop, err = startLabelled(ctx, "stockd-keys", filepath.Join(dir, "data"), file, "", "")
	return url, token, stop, err
}
