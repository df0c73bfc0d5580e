// Package app is stockd's one composition root: it opens the store, the
// engine and the read model, puts the HTTP API and metrics in front of them,
// listens, and closes them in order. `stockd serve`, the end-to-end tests and
// `stockd bench` all start an App, so the tests run exactly the production
// wiring.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/archive"
	"github.com/stockd/stockd/drops"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/feed"
	"github.com/stockd/stockd/http"
	"github.com/stockd/stockd/imports"
	"github.com/stockd/stockd/intake"
	"github.com/stockd/stockd/internal/notify"
	"github.com/stockd/stockd/metrics"
	"github.com/stockd/stockd/publish"
	"github.com/stockd/stockd/readmodel"
	"github.com/stockd/stockd/ui"
	"github.com/stockd/stockd/webhook"
)

// Config is everything an App can be told. The zero value, with Data set,
// is a server on 127.0.0.1:8080 with default limits and no keys.
type Config struct {
	// Addr is the address to listen on; port 0 picks a free one.
	// Default 127.0.0.1:8080.
	Addr string
	// Data is the embedded store's directory, created if missing (with
	// the PostgreSQL store: cold storage's default folder only).
	Data string
	// Store names the store: empty for the embedded store in Data, or a
	// PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=…).
	Store string
	// StoreSchema is the PostgreSQL schema of the store's tables, created
	// if missing; default "stockd".
	StoreSchema string
	// LeaseTTL is how long a partition lease lasts without renewal, with a
	// store that leases partitions (PostgreSQL); default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Advertise is the URL other nodes reach this one at; default the
	// address it listens on.
	Advertise string
	// FS is the store's file system; nil means the operating system's.
	FS vfs.FS
	// Partitions of a new store; 0 uses the existing store's count, or
	// 64 for a new one.
	Partitions int
	// Engine configures the engine; its Limits are the service's.
	Engine engine.Options
	// NoReadModel leaves the read model out: availability, SKU listings
	// and reservations by customer then answer 503. For tests.
	NoReadModel bool
	// Keys authenticates requests; nil serves everyone, which Open allows
	// only on a loopback address unless Insecure is set.
	Keys http.Keys
	// NoUI leaves the admin web UI (package ui, at /ui/) out.
	NoUI bool
	// Insecure allows serving without keys on any address.
	Insecure bool
	// TLSCert and TLSKey, when both set, are the PEM files of the
	// certificate and key to serve TLS 1.2 or later with.
	TLSCert, TLSKey string
	// HTTP configures the API; API, Keys, Ready and Metrics are filled in.
	HTTP http.Config
	// ReadHeaderTimeout bounds the time to read a request's headers, and
	// ReadTimeout the whole request, body included, so that a client
	// sending a byte at a time cannot hold a connection. Defaults 5 s and
	// 30 s.
	ReadHeaderTimeout, ReadTimeout time.Duration
	// WriteTimeout bounds the time to write an answer. Default 60 s.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long. Default
	// 120 s.
	IdleTimeout time.Duration
	// MaxConns caps open connections; more are answered 503 at once and
	// closed. Default 4096.
	MaxConns int
	// MinFreeBytes is the free space the data directory's disk must keep
	// for stockd's own writes: with less, Open refuses to start, and a
	// running App refuses new commands (503 unavailable, Retry-After) until
	// space is freed, so that Pebble's flushes and compactions can still
	// run and nothing is lost. Default 256 MiB; negative turns the guard
	// off.
	MinFreeBytes int64
	// DiskCheckEvery is how often a running App looks at the free space.
	// Default 1 s.
	DiskCheckEvery time.Duration
	// ArchiveAfter is the age after which events, once behind their
	// partition's latest snapshot and every consumer's checkpoint, move to
	// cold storage at ArchiveURL (see package archive); 0 turns archiving
	// off (archived history stays readable).
	ArchiveAfter time.Duration
	// ArchiveURL is the blob store of cold storage (file://, s3://, gs://,
	// azblob://, mem://). Default: the folder "archive" in Data, or mem://
	// with FS set.
	ArchiveURL string
	// ArchiveEvery is how often the archiver looks for events to move.
	// Default 1 minute.
	ArchiveEvery time.Duration
	// Publish names the brokers every event is published to; none by
	// default.
	Publish PublishConfig
	// SQLAvailability keeps the availability read model in the table
	// availability of the PostgreSQL store too, for other services to
	// query with SQL (docs/sql-availability.md). It needs a PostgreSQL
	// Store.
	SQLAvailability bool
	// Metrics configures the metrics (build labels); their Logger is the
	// App's.
	Metrics metrics.Options
	// Intake configures the asynchronous intake of commands and supplier
	// file drops; its NATS work queue uses Publish.NATS.
	Intake IntakeConfig
	// Webhooks configures webhook delivery (timeouts, retry budget,
	// limits, AllowPrivate); the store, log and metrics are the App's.
	Webhooks webhook.Options
	// Logger receives the logs of every part. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.Engine.Limits == (stockd.Limits{}) {
		c.Engine.Limits = stockd.DefaultLimits
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 60 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 4096
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.DiskCheckEvery <= 0 {
		c.DiskCheckEvery = time.Second
	}

	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// DefaultMinFreeBytes is the free disk space an App keeps for its own
// writes unless told otherwise: room for Pebble to flush its 64 MiB
// memtables and compact a few files.
const DefaultMinFreeBytes = 256 << 20

// Check refuses a configuration that cannot work, before anything is opened.
func (c *Config) Check() error {
	l := c.Engine.Limits
	if l.DefaultTTL > l.MaxTTL {
		return fmt.Errorf("the default ttl %v is longer than the longest allowed, %v: raise --max-ttl or lower --default-ttl", l.DefaultTTL, l.MaxTTL)
	}
	if l.DefaultTTL <= 0 || l.MaxTTL <= 0 {
		return errors.New("--default-ttl and --max-ttl must be positive")
	}
	if l.MaxLines < 1 {
		return errors.New("--max-lines must be at least 1")
	}
	if l.Retain < 0 {
		return errors.New("--retain must not be negative (0 keeps every settled entity in memory)")
	}
	if c.Partitions < 0 || c.Partitions > 4096 {
		return fmt.Errorf("--partitions must be between 1 and 4096, got %d", c.Partitions)
	}
	if err := c.checkSQLAvailability(); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if c.Keys == nil && !c.Insecure {
		if err := loopbackOnly(c.Addr); err != nil {
			return err
		}
	}
	return nil
}

// loopbackOnly refuses an address that others can reach.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to serve %s without API keys: anyone who can reach it could change stock. Give --keys FILE (see stockd keys new), listen on 127.0.0.1, or pass --insecure if something else guards the address", addr)
}

// Store is what an App needs of its store: the log, snapshots and
// checkpoints (stockd.Store), trimming for cold storage and the list of
// consumers archiving waits for (stockd.Trimmer), and the service's own
// records (stockd.Records). The embedded store (package pebble) is one.
type Store interface {
	stockd.Store
	stockd.Trimmer
	stockd.Records
}

// App is a running stockd.
type App struct {
	// member keeps this node in the cluster of a store that leases
	// partitions; nil for the embedded store.
	member *member
	// tlsConfig is the TLS the API is served with, nil for plain HTTP.
	tlsConfig *tls.Config
	// Store, Engine, ReadModel and API are the parts; ReadModel is nil
	// when left out.
	Store  Store
	Engine *engine.Engine
	// Service is what requests are served by: the engine, or on a node of
	// a cluster the engine with each request for a partition another node
	// serves sent on to that node.
	Service   stockd.Service
	ReadModel *readmodel.Projection
	API       *http.Server
	Metrics   *metrics.Metrics
	// Archiver moves old events to cold storage, and ArchiveLog reads
	// them back; nil when cold storage is off and nothing was archived.
	Archiver   *archive.Archiver
	ArchiveLog *archive.Log
	// Log is the store's log as readers downstream of the engine see it:
	// archived ranges read back from cold storage. Readers must not read
	// past the engine's DurableHead.
	Log stockd.Log
	// Heads is told after every durable batch, so that whatever follows
	// the log (feed streams, publishers) waits for new events without
	// polling.
	Heads *notify.Hub
	// Feed serves the change feed and its subscriptions.
	Feed *feed.Service
	// Publishers are the Runners of the brokers configured (and of the
	// SQL availability table), and
	// PublishMetrics counts what every publisher does.
	Publishers     []*publish.Runner
	PublishMetrics *publish.Metrics
	// Webhooks runs the webhook endpoints.
	Webhooks *webhook.Manager
	// Intake queues and applies asynchronous commands; IntakeNATS takes
	// them from a JetStream work queue (nil without NATS); Importer
	// imports supplier files; Drops watches the drop bucket (nil without
	// one).
	Intake     *intake.Queue
	IntakeNATS *intake.Consumer
	Importer   *imports.Importer
	Drops      *drops.Watcher
	// NodeID names this process in the cluster (GET /v1/cluster; the
	// node a shared store's leases are taken for): the host's name and a
	// random suffix, new every time the process starts.
	NodeID string

	publishers    []publisher
	archiveBucket *archive.Bucket
	// clusterToken is the secret the nodes of a cluster forward requests
	// to each other with; "" without a cluster. messenger carries saga
	// messages to the other nodes; nil without a cluster.
	clusterToken string
	messenger    *messenger

	cfg       Config
	log       *slog.Logger
	ln        net.Listener
	srv       *nethttp.Server
	scheme    string
	served    chan error
	stopGuard chan struct{} // closed by Close; nil without a disk guard
	guardDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open checks cfg, listens on its address (so that a taken port fails before
// the data directory is touched), opens the store, recovers the engine,
// starts the read model and builds the API. Serve then answers requests.
func Open(ctx context.Context, cfg Config) (*App, error) {
	cfg.setDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("loading the TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: cfg.Logger, ln: ln, scheme: "http", served: make(chan error, 1), NodeID: newNodeID(), tlsConfig: tlsConfig}
	if tlsConfig != nil {
		a.scheme = "https" // for the URL this node registers
	}
	if err := a.open(ctx); err != nil {
		ln.Close()
		return nil, err
	}
	a.ln = limitConns(ln, cfg.MaxConns)
	if tlsConfig != nil {
		a.ln = tls.NewListener(a.ln, tlsConfig)
	}
	mux := nethttp.NewServeMux()
	if a.messenger != nil {
		mux.Handle("POST "+messagesPath, a.messenger.messagesHandler())
	}
	if !cfg.NoUI {
		// The admin UI's files hold no data, so they are served without a
		// key; the pages call the API with the key the user signs in with.
		mux.Handle("GET "+ui.Prefix, ui.Handler())
	}
	mux.Handle("/", counted(a.Metrics, a.API))
	var handler nethttp.Handler = mux
	a.srv = &nethttp.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelDebug),
	}
	// Shutdown waits for requests to end, and a feed stream never does
	// by itself: tell the streams to end.
	a.srv.RegisterOnShutdown(a.API.CloseStreams)
	return a, nil
}

// open opens the store, the engine, the read model and the API.
func (a *App) open(ctx context.Context) error {
	cfg := a.cfg
	store, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	a.Store = store
	mopts := cfg.Metrics
	mopts.Logger = a.log.With("component", "metrics")
	m := metrics.New(mopts)
	a.Metrics = m
	if c, ok := store.(interface{ Collector() prometheus.Collector }); ok {
		if err := m.Register(c.Collector()); err != nil {
			store.Close()
			return err
		}
	}
	reads, err := a.openArchive(ctx, store)
	if err != nil {
		store.Close()
		return err
	}
	// With a store several nodes share, the engine serves the partitions
	// this node holds the leases of, loading each once its lease is taken.
	if ls, ok := store.(stockd.Leases); ok {
		if a.member, err = a.newMember(ctx, ls, store.Partitions()); err == nil {
			a.clusterToken, err = clusterToken(ctx, store)
		}
		if err != nil {
			a.closeArchive()
			store.Close()
			return err
		}
	}
	// The read model needs the engine's durable heads and the engine wakes
	// the read model after each durable batch; the pointer ties the knot.
	var projection atomic.Pointer[readmodel.Projection]
	eopts := cfg.Engine
	if eopts.Logger == nil {
		eopts.Logger = a.log.With("component", "engine")
	}
	if eopts.Observer == nil {
		eopts.Observer = m
	}
	a.Log = reads
	a.Heads = notify.New(store.Partitions())
	eopts.OnDurable = func(p int) {
		if pr := projection.Load(); pr != nil {
			pr.Notify(p)
		}
		a.Heads.Notify(p)
	}
	var engRef atomic.Pointer[engine.Engine]
	if a.member != nil {
		eopts.Lease = a.member.lease
		eopts.Dynamic = true
		a.messenger = newMessenger(a.member, a.clusterToken, engRef.Load, a.log.With("component", "cluster"))
		eopts.Send = a.messenger.send
	}
	eng, err := engine.Open(ctx, reads, eopts)
	if err != nil {
		a.leave()
		a.closeArchive()
		store.Close()
		return err
	}
	a.Engine = eng
	engRef.Store(eng)
	a.Service = eng
	if a.member != nil {
		a.Service = newRouter(eng, a.member, a.clusterToken, a.log.With("component", "cluster"))
		a.member.join(ctx, eng, eng.Stop)
	}
	if !cfg.NoReadModel {
		proj := readmodel.New(reads, readmodel.Options{DurableHead: eng.DurableHead, HeadKnownAt: eng.HeadKnownAt, Limits: eopts.Limits, Logger: a.log})
		if err := proj.Start(ctx); err != nil {
			eng.Close(context.Background())
			a.closeArchive()
			store.Close()
			return err
		}
		projection.Store(proj)
		a.ReadModel = proj
	}
	if err := a.startArchive(); err != nil {
		return a.closeParts(err)
	}
	if err := a.startPublishers(ctx); err != nil {
		return a.closeParts(err)
	}
	if err := a.startSQLAvailability(ctx); err != nil {
		return a.closeParts(err)
	}
	if err := m.RegisterEngine(eng); err != nil {
		return a.closeParts(err)
	}
	if a.ReadModel != nil {
		if err := m.RegisterReadModel(a.ReadModel); err != nil {
			return a.closeParts(err)
		}
	}
	a.Feed = feed.New(feed.Options{Log: reads, DurableHead: eng.DurableHead, Heads: a.Heads, Records: store, Logger: a.log.With("component", "feed")})
	if err := a.registerFeedMetrics(); err != nil {
		return a.closeParts(err)
	}
	if err := a.openWebhooks(ctx); err != nil {
		return a.closeParts(err)
	}
	if err := a.openIntake(ctx); err != nil {
		return a.closeParts(err)
	}
	hc := cfg.HTTP
	hc.ClusterToken = a.clusterToken
	hc.API = service{commands: a.Service, rm: a.ReadModel, bundles: a.Engine.KnownBundle, Service: a.Feed, Webhooks: a.Webhooks, consumerAdmin: consumerAdmin{a}, clusterAdmin: clusterAdmin{a}, Intake: a.Intake, Imports: a.Importer}
	hc.Keys = cfg.Keys
	if hc.Ready == nil {
		hc.Ready = func() error {
			if eng.Err() != nil {
				return errors.New("storage failed")
			}
			if ro := eng.ReadOnly(); ro != nil {
				return errors.New(ro.Message)
			}
			if a.member != nil {
				return a.member.ready()
			}
			return nil
		}
	}
	if _, ok := a.Store.(freeSpacer); ok && a.minFree() > 0 {
		a.stopGuard = make(chan struct{})
		a.guardDone = make(chan struct{})
		go a.guardDisk()
	}
	hc.Observe = m.ObserveRequest
	hc.Metrics = m.Handler()
	if hc.Logger == nil {
		hc.Logger = a.log.With("component", "http")
	}
	a.API = http.NewServer(hc)
	return nil
}

// closeParts closes what open opened, after a failure, and returns err.
func (a *App) closeParts(err error) error {
	a.closeIntake()
	if a.Webhooks != nil {
		a.Webhooks.Close()
	}
	a.closePublishers()
	a.closeArchive()
	if a.ReadModel != nil {
		a.ReadModel.Close()
	}
	if a.member != nil {
		a.member.stopLooking()
	}
	a.Engine.Close(context.Background())
	a.leave()
	if a.messenger != nil {
		a.messenger.close()
	}
	a.Store.Close()
	return err
}

// Addr returns the address the App listens on, such as 127.0.0.1:41234.
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL returns the App's base URL, such as http://127.0.0.1:41234.
func (a *App) URL() string { return a.scheme + "://" + a.Addr() }

// Serve answers requests in the background until Close.
func (a *App) Serve() {
	go func() { a.served <- a.srv.Serve(a.ln) }()
}

// Run serves until ctx is done, the listener fails or storage fails, and
// then closes the App. It returns nil after a clean shutdown, and the cause
// otherwise; ErrFatal wraps a storage failure.
func (a *App) Run(ctx context.Context, shutdownTimeout time.Duration) error {
	a.Serve()
	select {
	case <-a.Engine.Fatal():
		// Fail-stop: nothing more may be acknowledged. Exit at once; the
		// next start recovers from the log.
		return fmt.Errorf("%w: %v", ErrFatal, a.Engine.Err())
	case err := <-a.served:
		a.Close(context.Background())
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return a.Close(sctx)
}

// RunRecovering opens an App on cfg and runs it (Open, then Run) until ctx is
// done. With a store on a database server (PostgreSQL), when the engine stops
// on a failure of the store (the database restarted, the connection to it
// was lost with a commit's outcome unknown), it recovers in place: it closes
// the App and opens it again on the same address, as a restart of the
// process would, recovering from the log what was acknowledged, and retries
// with backoff while the database does not answer. A failure of the
// embedded store still ends the process (ErrFatal): after a failed fsync the
// state of its disk is unknown, and only a restart may look at it again.
// opened, when set, is called with every App opened.
func RunRecovering(ctx context.Context, cfg Config, shutdown time.Duration, opened func(*App)) error {
	a, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		if opened != nil {
			opened(a)
		}
		err := a.Run(ctx, shutdown)
		if !errors.Is(err, ErrFatal) || cfg.Store == "" || ctx.Err() != nil {
			return err
		}
		a.log.Error("the store failed: recovering from it in place", "err", err)
		a.Close(context.Background())
		// Keep the address, even one whose port was picked.
		cfg.Addr = a.Addr()
		if a, err = reopen(ctx, cfg); err != nil {
			return err
		}
		a.log.Info("recovered from the store failure", "addr", a.Addr())
	}
}

// reopen opens an App on cfg, retrying with backoff (up to 5 s between
// attempts) until it opens or ctx is done.
func reopen(ctx context.Context, cfg Config) (*App, error) {
	wait := 100 * time.Millisecond
	for {
		a, err := Open(ctx, cfg)
		if err == nil {
			return a, nil
		}
		log := cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("reopening after a store failure; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// ErrFatal marks a storage failure: the process must stop without
// acknowledging anything more.
var ErrFatal = errors.New("storage failure")

// Close stops taking connections, finishes requests in flight within ctx,
// then stops the intake (drop watcher, NATS work queue, worker), closes the
// publishers, the read model, the engine (which writes
// snapshots) and the store. It may be called more than once.
func (a *App) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		var errs []error
		if err := a.srv.Shutdown(ctx); err != nil {
			a.log.Warn("requests still in flight at the shutdown deadline", "err", err)
		}
		if a.stopGuard != nil {
			close(a.stopGuard)
			<-a.guardDone
		}
		errs = append(errs, a.closeIntake())
		a.Webhooks.Close()
		errs = append(errs, a.closePublishers(), a.closeArchive())
		if a.ReadModel != nil {
			a.ReadModel.Close()
		}
		if a.member != nil {
			a.member.stopLooking()
		}
		errs = append(errs, a.Engine.Close(ctx), a.leave())
		if a.messenger != nil {
			a.messenger.close()
		}
		errs = append(errs, a.Store.Close())
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// commands names stockd.Service where service embeds it beside the feed's
// Service.
type commands = stockd.Service

// service is the API the server serves: the engine's commands and
// read-your-writes queries (sent on to the node serving their partition in a
// cluster), and the read model's listings.
type service struct {
	commands
	rm *readmodel.Projection
	// bundles tells a bundle SKU from a plain one, for availability.
	bundles func(sku string) (stockd.Bundle, bool)
	*feed.Service
	stockd.Webhooks
	consumerAdmin
	clusterAdmin
	stockd.Intake
	stockd.Imports
}

var errNoReadModel = stockd.Errorf(stockd.CodeUnavailable, "the read model is not running")

func (s service) Availability(_ context.Context, skus []string) (stockd.Availability, error) {
	if s.rm == nil {
		return stockd.Availability{}, errNoReadModel
	}
	return bundleAvailability(skus, s.bundles, s.rm.Availability), nil
}

func (s service) CustomerReservations(_ context.Context, q stockd.CustomerQuery) (stockd.ReservationPage, error) {
	if s.rm == nil {
		return stockd.ReservationPage{}, errNoReadModel
	}
	return s.rm.Reservations(q)
}

func (s service) SKUs(_ context.Context, q stockd.SKUListQuery) (stockd.SKUPage, error) {
	if s.rm == nil {
		return stockd.SKUPage{}, errNoReadModel
	}
	return s.rm.SKUs(q)
}

// openWebhooks starts the webhook endpoints, with the publishers' metrics.
func (a *App) openWebhooks(ctx context.Context) error {
	if err := a.ensurePublishMetrics(); err != nil {
		return err
	}
	wm := webhook.NewMetrics()
	if err := a.Metrics.Register(wm); err != nil {
		return err
	}
	o := a.cfg.Webhooks
	o.Store, o.Log, o.DurableHead, o.Heads = a.Store, a.Log, a.Engine.DurableHead, a.Heads
	if a.member != nil {
		// Each partition's events go to each endpoint from the node
		// serving it; endpoints put or deleted through another node
		// start or stop here within a second.
		o.Serves = a.serves()
		if o.SyncEvery == 0 {
			o.SyncEvery = time.Second
		}
	}
	o.Publishers, o.Metrics = a.PublishMetrics, wm
	if o.Logger == nil {
		o.Logger = a.log
	}
	wh, err := webhook.Open(ctx, o)
	if err != nil {
		return err
	}
	a.Webhooks = wh
	return nil
}
