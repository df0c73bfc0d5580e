// Package webhook delivers the log to HTTP endpoints that admins configure
// through the API (DESIGN §7, "Change feed"). Each endpoint is a
// publish.Runner of its own, named "webhook/<name>", with its own
// checkpoint: a slow or failing endpoint makes its own lag grow and holds up
// no other endpoint, and no endpoint can slow down or block reservations.
//
// Every event is POSTed as the event JSON of GET /v1/skus/{sku}/events, at
// least once, with the headers Stockd-Event-Id (for receivers to drop
// repeats) and Stockd-Signature (see Sign and Verify). A 2xx acknowledges;
// anything else, or no answer within the timeout, is retried with
// exponential backoff and full jitter, and once the retry budget (Attempts,
// MaxAge) is spent the event goes to the endpoint's dead-letter list and
// delivery moves on. Dead letters are listed and replayed through the API.
//
// Ordering: within a partition an endpoint delivers one event at a time, in
// log order, so a SKU's events arrive in version order on first delivery.
// An event being retried holds up the events after it in its partition (and
// only there) for at most the retry budget: order is worth that wait, and
// dead-lettering bounds it. Partitions are delivered concurrently, up to
// Concurrency requests at once per endpoint. Redeliveries (after a crash, a
// replay) may come out of order; Stockd-Event-Id and the event's SKU
// version tell a receiver what it has already seen.
//
// In a cluster (DESIGN §6) every node runs a Manager over the shared store.
// Options.Serves makes each node deliver only the partitions it serves, so
// that each event goes to each endpoint once across the cluster, and a
// partition that moves resumes on its new node from the checkpoint in the
// store. Endpoints are records in that store: Options.SyncEvery (or Sync)
// makes every node start, change and stop its endpoints as the records say,
// whichever node the change was made through. See Sync for the races of
// deletes and re-creations, and ReplayWebhookDeadLetters for how a dead
// letter is replayed once across the cluster.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/internal/notify"
	"github.com/stockd/stockd/publish"
)

// Record kinds.
const (
	// KindEndpoint holds each endpoint's configuration, secret included,
	// keyed by name.
	KindEndpoint = "webhook"
	// kindDeadPrefix + name + "/" + generation holds an endpoint's dead
	// letters keyed by event id. The generation (the endpoint's creation
	// time) gives an endpoint deleted and put again a fresh list while
	// the old one is still being purged.
	kindDeadPrefix = "webhook-dead/"
	// kindPurge lists dead-letter kinds of deleted endpoints still to be
	// emptied, so that a crash part-way through a purge resumes it.
	kindPurge = "webhook-purge"
	// kindClaimPrefix + name + "/" + generation holds the claims of the
	// replays in progress of an endpoint's dead letters (see claim): in a
	// cluster a dead letter is replayed by one node at a time.
	kindClaimPrefix = "webhook-replaying/"
)

// Store is what the webhooks keep in the store: their configuration and dead
// letters as records, their positions as checkpoints.
type Store interface {
	stockd.Records
	stockd.Checkpoints
}

// Options configure a Manager.
type Options struct {
	// Store keeps endpoints, dead letters and checkpoints. Required.
	Store Store
	// Log is read for events: the app's archive-aware log. Required.
	Log stockd.Log
	// DurableHead reports how far each partition is durable. Required.
	DurableHead func(p int) uint64
	// Heads wakes the Runners when there are new events.
	Heads *notify.Hub
	// Publishers, when set, counts each endpoint's Runner (events, errors,
	// lag) under the publisher name "webhook/<name>".
	Publishers *publish.Metrics
	// Metrics, when set, counts deliveries and dead letters.
	Metrics *Metrics
	// Logger receives what goes wrong. Default slog.Default().
	Logger *slog.Logger
	// Client sends the deliveries. Default NewHTTPClient(Timeout,
	// AllowPrivate).
	Client *http.Client
	// Timeout bounds one delivery attempt, from dialling to the end of the
	// answer's headers. Default 10 s.
	Timeout time.Duration
	// AllowPrivate allows endpoints on loopback, private and other
	// internal addresses. Off by default: see NewHTTPClient.
	AllowPrivate bool
	// Attempts is the most delivery attempts of one event before it is
	// dead-lettered. Default 10.
	Attempts int
	// MaxAge, when positive, dead-letters an event earlier once retrying
	// it would take longer than this since its first attempt. Default
	// 15 minutes.
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts: the
	// step doubles from one to the other and each wait is a random
	// fraction of it (full jitter). A receiver's Retry-After, up to
	// MaxBackoff, is honoured. Defaults 1 s and 5 minutes: with the
	// default Attempts an event is given up on after at most about 8.5
	// minutes of waits, 4 on average.
	MinBackoff, MaxBackoff time.Duration
	// Concurrency bounds each endpoint's requests in flight. Default 8.
	Concurrency int
	// MaxEndpoints bounds the endpoints. Default 100.
	MaxEndpoints int
	// MaxDeadLetters bounds each endpoint's dead-letter list. A full list
	// stops the endpoint's deliveries (its lag grows, nothing is dropped)
	// until dead letters are replayed or the endpoint is deleted. Default
	// 10,000.
	MaxDeadLetters int
	// Batch is the most events a Runner offers the endpoint at once
	// (it reads up to publish.ReadAhead from the log), and so the most a
	// crash can make an endpoint receive twice per partition. Default
	// 32.
	Batch int
	// Serves, when set, says whether this process serves partition p now
	// (publish.Options.Serves): in a cluster every node runs every
	// endpoint, each for the partitions it serves, so that each event
	// goes to each endpoint once across the cluster, from the node
	// serving its partition. A partition a node starts serving resumes
	// from the endpoint's checkpoint in the store. Lag and LagSeconds
	// then count the partitions this process serves: the cluster's lag
	// of an endpoint is the sum over the nodes. nil: every partition.
	Serves func(p int) bool
	// SyncEvery, when positive, makes the Manager call Sync that often,
	// so that an endpoint put or deleted through another process sharing
	// the store starts, changes or stops here within about SyncEvery.
	// 0: never, for a process that owns its store (every change goes
	// through its own Manager).
	SyncEvery time.Duration
}

func (o *Options) setDefaults() error {
	if o.Store == nil || o.Log == nil || o.DurableHead == nil {
		return errors.New("webhook: Options need Store, Log and DurableHead")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = NewHTTPClient(o.Timeout, o.AllowPrivate)
	}
	if o.Attempts <= 0 {
		o.Attempts = 10
	}
	if o.MaxAge == 0 {
		o.MaxAge = 15 * time.Minute
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Minute, o.MinBackoff)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.MaxEndpoints <= 0 {
		o.MaxEndpoints = 100
	}
	if o.MaxDeadLetters <= 0 {
		o.MaxDeadLetters = 10_000
	}
	if o.Batch <= 0 {
		o.Batch = 32
	}
	return nil
}

// config is an endpoint as the store keeps it.
type config struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Secret    string    `json:"secret"`
	Types     []string  `json:"types,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Start is, per partition, the position the endpoint started after
	// when it was created (nil in records written before it was kept).
	// Its checkpoints never go below it: a checkpoint found lower when a
	// Runner starts was deleted by a concurrent delete of an endpoint of
	// the same name (see Sync), and is raised back, so that such a race
	// costs events sent again, never the history before the endpoint.
	Start []uint64 `json:"start,omitempty"`
}

// same reports whether c and o are the same version of one endpoint.
func (c *config) same(o *config) bool {
	return c.Name == o.Name && c.URL == o.URL && c.Secret == o.Secret && slices.Equal(c.Types, o.Types) &&
		c.CreatedAt.Equal(o.CreatedAt) && c.UpdatedAt.Equal(o.UpdatedAt)
}

// claimKind is the record kind of the claims of the endpoint's replays.
func (c *config) claimKind() string { return claimKindOf(c.deadKind()) }

// claimKindOf returns the claim kind that goes with a dead-letter kind.
func claimKindOf(deadKind string) string {
	return kindClaimPrefix + strings.TrimPrefix(deadKind, kindDeadPrefix)
}

// deadKind is the record kind of the endpoint's dead letters.
func (c *config) deadKind() string {
	return kindDeadPrefix + c.Name + "/" + strconv.FormatInt(c.CreatedAt.UnixNano(), 10)
}

// publisher is the name of the endpoint's Runner.
func publisher(name string) string { return "webhook/" + name }

// Consumer returns the name endpoint name's checkpoints are saved under.
func Consumer(name string) string { return publish.Consumer(publisher(name)) }

// Consumers returns the checkpoint consumers of the endpoints that exist.
func (m *Manager) Consumers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.endpoints))
	for name := range m.endpoints {
		out = append(out, Consumer(name))
	}
	return out
}

// running is an endpoint with its Runner.
type running struct {
	ep     *endpoint
	runner *publish.Runner
}

// Manager runs every configured endpoint and implements stockd.Webhooks.
type Manager struct {
	opts   Options
	log    *slog.Logger
	client *http.Client
	parts  int

	mu        sync.Mutex // serializes changes; guards endpoints
	endpoints map[string]*running
	closed    bool

	purge     chan struct{} // wakes the purger
	stop      chan struct{}
	stopOnce  sync.Once
	purgeDone chan struct{}
	syncDone  chan struct{} // closed when the syncer (if any) has stopped
}

var _ stockd.Webhooks = (*Manager)(nil)

// Open starts a Runner for every configured endpoint, and finishes purging
// the dead letters of endpoints deleted before. With Options.SyncEvery it
// then keeps its endpoints in step with the store (see Sync).
func Open(ctx context.Context, opts Options) (*Manager, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m := &Manager{
		opts: opts, log: opts.Logger.With("component", "webhooks"), client: opts.Client, parts: opts.Log.Partitions(),
		endpoints: map[string]*running{}, purge: make(chan struct{}, 1), stop: make(chan struct{}),
		purgeDone: make(chan struct{}), syncDone: make(chan struct{}),
	}
	configs, err := m.stored(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range configs {
		dead, err := m.countDeadLetters(ctx, &c)
		if err != nil {
			m.closeRunners()
			return nil, err
		}
		if err := m.start(ctx, c, dead); err != nil {
			m.closeRunners()
			return nil, err
		}
	}
	if err := m.retireOrphans(ctx); err != nil {
		m.log.Warn("webhook: retiring the checkpoints of deleted endpoints failed; retried at the next start", "err", err)
	}
	go m.purger()
	m.purge <- struct{}{}
	if opts.SyncEvery > 0 {
		go m.syncer()
	} else {
		close(m.syncDone)
	}
	return m, nil
}

// stored returns the endpoints the store holds, in name order.
func (m *Manager) stored(ctx context.Context) ([]config, error) {
	var out []config
	after := ""
	for {
		recs, err := m.opts.Store.ListRecords(ctx, KindEndpoint, after, 100)
		if err != nil {
			return nil, fmt.Errorf("webhook: listing endpoints: %w", err)
		}
		for _, r := range recs {
			var c config
			if err := json.Unmarshal(r.Value, &c); err != nil {
				return nil, fmt.Errorf("webhook: endpoint %q: %w", r.Key, err)
			}
			out = append(out, c)
		}
		if len(recs) < 100 {
			return out, nil
		}
		after = recs[len(recs)-1].Key
	}
}

// storedOne returns endpoint name as the store holds it, or nil.
func (m *Manager) storedOne(ctx context.Context, name string) (*config, error) {
	v, ok, err := m.opts.Store.GetRecord(ctx, KindEndpoint, name)
	if err != nil || !ok {
		return nil, err
	}
	var c config
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("webhook: endpoint %q: %w", name, err)
	}
	return &c, nil
}

// syncer calls Sync every SyncEvery until Close.
func (m *Manager) syncer() {
	defer close(m.syncDone)
	t := time.NewTicker(m.opts.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(m.opts.SyncEvery, 30*time.Second))
		go func() {
			// Close must not wait for a slow store.
			select {
			case <-m.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := m.Sync(ctx); err != nil && !errors.Is(err, errClosed) && ctx.Err() == nil {
			m.log.Warn("webhook: syncing the endpoints with the store failed; retried at the next sync", "err", err)
		}
		cancel()
	}
}

// Sync makes the running endpoints those the store holds: it starts the
// endpoints put through another process since, restarts those changed there
// (the new configuration carries on from the checkpoints, as a change here
// does), stops those deleted there, and re-counts every endpoint's dead
// letters, which other processes add and replay. GET and list answers then
// show the store as it was read. With Options.SyncEvery the Manager calls it
// itself.
//
// Sync never deletes checkpoints or dead letters: the process a delete went
// through does (DeleteWebhook), so that a Sync that reads the store just
// before an endpoint of the same name is put again elsewhere cannot take
// the new endpoint's checkpoints. An endpoint deleted and put again under
// the same name between two syncs is a new generation (its creation time
// differs): Sync stops the old one and starts the new one, with its own
// dead-letter list.
//
// Until a process syncs, it keeps delivering an endpoint deleted or changed
// elsewhere as it was: for up to SyncEvery, events of the partitions it
// serves may still go to the old URL (at least once, as ever), and the
// checkpoints it saves may move those of an endpoint put again under the
// same name; they never go below where the new endpoint started (see
// config.Start), so that costs events sent again, not events lost, for an
// endpoint created "from now".
func (m *Manager) Sync(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	// Read under the lock, so that a put or delete through this process
	// cannot fall between the read and what is done with it.
	configs, err := m.stored(ctx)
	if err != nil {
		return err
	}
	var errs []error
	stored := make(map[string]bool, len(configs))
	removed := false
	for _, c := range configs {
		stored[c.Name] = true
		old := m.endpoints[c.Name]
		sameGen := old != nil && old.ep.cfg.CreatedAt.Equal(c.CreatedAt)
		if old != nil && old.ep.cfg.same(&c) {
			if err := m.recount(ctx, old.ep); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		var dead *atomic.Int64
		if sameGen {
			// Changed elsewhere: the dead-letter list goes on.
			dead = old.ep.dead
			if err := m.recount(ctx, old.ep); err != nil {
				errs = append(errs, err)
			}
		} else if dead, err = m.countDeadLetters(ctx, &c); err != nil {
			errs = append(errs, err)
			continue
		}
		if old != nil {
			old.runner.Close()
			delete(m.endpoints, c.Name)
			removed = removed || !sameGen
		}
		if err := m.start(ctx, c, dead); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log.Info("webhook synced from the store", "webhook", c.Name, "url", c.URL, "types", c.Types, "created", old == nil || !sameGen)
	}
	for name, r := range m.endpoints {
		if stored[name] {
			continue
		}
		r.runner.Close()
		delete(m.endpoints, name)
		m.opts.Metrics.forget(name)
		removed = true
		m.log.Info("webhook deleted elsewhere: stopped", "webhook", name)
	}
	if removed {
		// The node the delete went through purges; should it have
		// stopped part-way, this finishes the work.
		select {
		case m.purge <- struct{}{}:
		default:
		}
	}
	return errors.Join(errs...)
}

// recount sets an endpoint's dead-letter count to what the store holds:
// other processes dead-letter the events of the partitions they serve, and
// replay and delete dead letters. A dead letter written or replayed during
// the count may be missed by it; the next sync corrects that.
func (m *Manager) recount(ctx context.Context, ep *endpoint) error {
	n, err := m.countDeadLetters(ctx, &ep.cfg)
	if err != nil {
		return err
	}
	ep.dead.Store(n.Load())
	return nil
}

// consumerStore is the store capability of listing and deleting the
// consumers with a checkpoint (stockd.Trimmer; pebble has it). A store
// without it archives nothing, so no checkpoint of an endpoint can hold
// anything back there.
type consumerStore interface {
	Consumers(ctx context.Context) ([]string, error)
	DeleteConsumer(ctx context.Context, consumer string) error
}

// retireOrphans deletes the checkpoints of endpoints that no longer exist (a
// crash came between a delete and the deletion of its checkpoints, or a store
// written before stores could delete a consumer), which would otherwise hold
// back archiving.
func (m *Manager) retireOrphans(ctx context.Context) error {
	cs, ok := m.opts.Store.(consumerStore)
	if !ok {
		return nil
	}
	consumers, err := cs.Consumers(ctx)
	if err != nil {
		return err
	}
	prefix := Consumer("")
	for _, c := range consumers {
		name, ok := strings.CutPrefix(c, prefix)
		if !ok || m.endpoints[name] != nil {
			continue
		}
		// Another process may have put the endpoint since the
		// endpoints were listed: only a name the store still has no
		// endpoint of is retired (see DeleteWebhook for the window
		// left, and config.Start for why it is harmless).
		if cfg, err := m.storedOne(ctx, name); err != nil || cfg != nil {
			if err != nil {
				return err
			}
			continue
		}
		if err := cs.DeleteConsumer(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// countDeadLetters counts an endpoint's dead letters, up to the most it may
// have.
func (m *Manager) countDeadLetters(ctx context.Context, c *config) (*atomic.Int64, error) {
	n := &atomic.Int64{}
	after := ""
	for n.Load() <= int64(m.opts.MaxDeadLetters) {
		recs, err := m.opts.Store.ListRecords(ctx, c.deadKind(), after, 1000)
		if err != nil {
			return nil, fmt.Errorf("webhook: counting the dead letters of %q: %w", c.Name, err)
		}
		n.Add(int64(len(recs)))
		if len(recs) < 1000 {
			break
		}
		after = recs[len(recs)-1].Key
	}
	return n, nil
}

// start starts an endpoint's Runner; m.mu is held or m is not yet shared.
func (m *Manager) start(ctx context.Context, c config, dead *atomic.Int64) error {
	ep := &endpoint{
		m: m, cfg: c, dead: dead, done: make([]uint64, m.parts),
		sem: make(chan struct{}, m.opts.Concurrency), replaying: make(chan struct{}, 1),
	}
	if len(c.Types) > 0 {
		ep.types = map[string]bool{}
		for _, t := range c.Types {
			ep.types[t] = true
		}
	}
	// Checkpoints below where the endpoint started were deleted by a
	// racing delete of an endpoint of the same name: raise them back.
	for p, at := range c.Start {
		if p >= m.parts {
			break
		}
		cp, err := m.opts.Store.Checkpoint(ctx, Consumer(c.Name), p)
		if err != nil {
			return fmt.Errorf("webhook: starting %q: %w", c.Name, err)
		}
		if cp.Position < at {
			if err := m.opts.Store.SetCheckpoint(ctx, Consumer(c.Name), p, stockd.Checkpoint{Position: at}); err != nil {
				return fmt.Errorf("webhook: starting %q: %w", c.Name, err)
			}
		}
	}
	ep.counts = m.opts.Metrics.endpoint(c.Name, dead)
	r, err := publish.Start(ctx, ep, publish.Options{
		Name: publisher(c.Name), Log: m.opts.Log, Checkpoints: m.opts.Store, DurableHead: m.opts.DurableHead,
		Heads: m.opts.Heads, Batch: m.opts.Batch, Skip: ep.skip, Metrics: m.opts.Publishers, Logger: m.log,
		Serves: m.opts.Serves,
		// A failure the Runner retries (the store, a full dead-letter
		// list) waits as a failed delivery does.
		MinBackoff: m.opts.MinBackoff, MaxBackoff: m.opts.MaxBackoff,
	})
	if err != nil {
		return fmt.Errorf("webhook: starting %q: %w", c.Name, err)
	}
	m.endpoints[c.Name] = &running{ep: ep, runner: r}
	return nil
}

func (m *Manager) closeRunners() {
	for name, r := range m.endpoints {
		r.runner.Close()
		delete(m.endpoints, name)
	}
}

// Close stops every endpoint: deliveries in flight are cancelled and sent
// again at the next Open.
func (m *Manager) Close() error {
	// Stopped first, so that a sync in progress gives up rather than
	// holding Close up.
	m.stopOnce.Do(func() { close(m.stop) })
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.closeRunners()
	m.mu.Unlock()
	<-m.purgeDone
	<-m.syncDone
	return nil
}

var errClosed = stockd.Errorf(stockd.CodeUnavailable, "the webhooks are shutting down")

// MaxSecretBytes bounds an endpoint's secret.
const MaxSecretBytes = 1024

// eventTypes are the event type names an endpoint may filter on.
var eventTypes = func() map[string]bool {
	m := map[string]bool{}
	for t := 1; t < 256; t++ {
		if name := stockd.EventType(t).String(); !strings.HasPrefix(name, "EventType(") {
			m[name] = true
		}
	}
	return m
}()

// check validates a put and returns its types sorted, without repeats.
func (m *Manager) check(cmd stockd.PutWebhook) ([]string, error) {
	if err := stockd.CheckName("name", cmd.Name); err != nil {
		return nil, err
	}
	if _, err := checkURL(cmd.URL, m.opts.AllowPrivate); err != nil {
		return nil, stockd.Errorf(stockd.CodeInvalid, "%v", err)
	}
	if cmd.Secret == "" {
		return nil, stockd.Errorf(stockd.CodeInvalid, "secret is required: it keys the signature receivers check")
	}
	if len(cmd.Secret) > MaxSecretBytes {
		return nil, stockd.Errorf(stockd.CodeInvalid, "secret is longer than %d bytes", MaxSecretBytes)
	}
	switch cmd.From {
	case "", stockd.WebhookFromNow, stockd.WebhookFromBeginning:
	default:
		return nil, stockd.Errorf(stockd.CodeInvalid, "from must be %q or %q, got %q", stockd.WebhookFromNow, stockd.WebhookFromBeginning, cmd.From)
	}
	if len(cmd.Types) > len(eventTypes) {
		return nil, stockd.Errorf(stockd.CodeInvalid, "types names %d types; there are %d", len(cmd.Types), len(eventTypes))
	}
	var types []string
	for _, t := range cmd.Types {
		if !eventTypes[t] {
			return nil, stockd.Errorf(stockd.CodeInvalid, "types: %q is not an event type (see EventType in /openapi.json)", t)
		}
		types = append(types, t)
	}
	sort.Strings(types)
	return slices.Compact(types), nil
}

// PutWebhook implements stockd.Webhooks. Whether the endpoint is new or
// changed is decided by the store, not by what this process runs, so that a
// put through a process that has not synced yet neither re-creates an
// endpoint put elsewhere (resetting its checkpoints) nor revives one deleted
// elsewhere.
func (m *Manager) PutWebhook(ctx context.Context, cmd stockd.PutWebhook) (stockd.Webhook, bool, error) {
	types, err := m.check(cmd)
	if err != nil {
		return stockd.Webhook{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return stockd.Webhook{}, false, errClosed
	}
	cur, err := m.storedOne(ctx, cmd.Name)
	if err != nil {
		return stockd.Webhook{}, false, err
	}
	old := m.endpoints[cmd.Name]
	if cur != nil && cur.URL == cmd.URL && cur.Secret == cmd.Secret && slices.Equal(cur.Types, types) {
		// Nothing to change; this process may not run it as stored yet.
		if old == nil || !old.ep.cfg.same(cur) {
			if err := m.replace(ctx, *cur); err != nil {
				return stockd.Webhook{}, false, err
			}
		}
		return m.view(m.endpoints[cmd.Name]), false, nil
	}
	now := time.Now().UTC()
	c := config{Name: cmd.Name, URL: cmd.URL, Secret: cmd.Secret, Types: types, CreatedAt: now, UpdatedAt: now}
	v := func() ([]byte, error) { return json.Marshal(c) }
	if cur != nil {
		c.CreatedAt, c.Start = cur.CreatedAt, cur.Start
		b, err := v()
		if err != nil {
			return stockd.Webhook{}, false, err
		}
		if err := m.opts.Store.PutRecord(ctx, KindEndpoint, c.Name, b); err != nil {
			return stockd.Webhook{}, false, err
		}
	} else {
		if len(m.endpoints) >= m.opts.MaxEndpoints && old == nil {
			return stockd.Webhook{}, false, stockd.Errorf(stockd.CodeInvalid, "there are %d webhooks already, the most allowed: delete one first", len(m.endpoints))
		}
		// A new endpoint starts at the head, or at the beginning; a
		// checkpoint left by an endpoint of the same name deleted
		// before is overwritten either way. The checkpoints are written
		// before the record, so that no process can start the endpoint
		// from anywhere else. (The head of a partition another node
		// serves is the one last read from the store: "now" is a
		// moment older there.)
		c.Start = make([]uint64, m.parts)
		for p := range m.parts {
			if cmd.From != stockd.WebhookFromBeginning {
				c.Start[p] = m.opts.DurableHead(p)
			}
			if err := m.opts.Store.SetCheckpoint(ctx, Consumer(c.Name), p, stockd.Checkpoint{Position: c.Start[p]}); err != nil {
				return stockd.Webhook{}, false, err
			}
		}
		b, err := v()
		if err != nil {
			return stockd.Webhook{}, false, err
		}
		created, err := m.opts.Store.CreateRecord(ctx, KindEndpoint, c.Name, b)
		if err != nil {
			return stockd.Webhook{}, false, err
		}
		if !created {
			// Put through another process at the same moment: that
			// one won. Its checkpoints were just set to where this
			// one would have started, at or past where it started.
			return stockd.Webhook{}, false, stockd.Errorf(stockd.CodeConflict, "webhook %q was created through another node at the same moment: get it, or put again", c.Name)
		}
	}
	if err := m.replace(ctx, c); err != nil {
		return stockd.Webhook{}, false, err
	}
	m.log.Info("webhook configured", "webhook", c.Name, "url", c.URL, "types", c.Types, "created", cur == nil)
	return m.view(m.endpoints[c.Name]), cur == nil, nil
}

// replace runs endpoint c in place of what runs under its name, if
// anything; m.mu is held. A change of the same generation carries on from
// the old one's checkpoints and dead letters: what the old one had not
// acknowledged goes to the new configuration.
func (m *Manager) replace(ctx context.Context, c config) error {
	old := m.endpoints[c.Name]
	var dead *atomic.Int64
	if old != nil && old.ep.cfg.CreatedAt.Equal(c.CreatedAt) {
		dead = old.ep.dead
	} else {
		var err error
		if dead, err = m.countDeadLetters(ctx, &c); err != nil {
			return err
		}
	}
	if old != nil {
		old.runner.Close()
		delete(m.endpoints, c.Name)
	}
	return m.start(context.WithoutCancel(ctx), c, dead)
}

// view is an endpoint as the API shows it.
func (m *Manager) view(r *running) stockd.Webhook {
	c := &r.ep.cfg
	types := slices.Clone(c.Types)
	if types == nil {
		types = []string{}
	}
	return stockd.Webhook{
		Name: c.Name, URL: c.URL, Types: types, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		Lag: r.runner.Lag(), DeadLetters: int(r.ep.dead.Load()),
	}
}

func notFound(name string) error {
	return stockd.Errorf(stockd.CodeNotFound, "no webhook %q", name)
}

// lookup returns a running endpoint, or CodeNotFound.
func (m *Manager) lookup(name string) (*running, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	r := m.endpoints[name]
	if r == nil {
		return nil, notFound(name)
	}
	return r, nil
}

// GetWebhook implements stockd.Webhooks.
func (m *Manager) GetWebhook(_ context.Context, name string) (stockd.Webhook, error) {
	r, err := m.lookup(name)
	if err != nil {
		return stockd.Webhook{}, err
	}
	return m.view(r), nil
}

// LagSeconds returns how long the oldest durable event the endpoint called
// name has not yet delivered, dead-lettered or skipped has waited: 0 when it
// is caught up (publish.Runner.LagSeconds of its Runner, which /metrics
// shows as stockd_publisher_lag_seconds{publisher="webhook/<name>"}).
func (m *Manager) LagSeconds(name string) (float64, error) {
	r, err := m.lookup(name)
	if err != nil {
		return 0, err
	}
	return r.runner.LagSeconds(), nil
}

// DefaultLimit and MaxLimit bound the pages of endpoints and dead letters.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

func pageLimit(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return min(n, MaxLimit)
}

// ListWebhooks implements stockd.Webhooks.
func (m *Manager) ListWebhooks(_ context.Context, q stockd.WebhookQuery) (stockd.WebhookPage, error) {
	limit := pageLimit(q.Limit)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return stockd.WebhookPage{}, errClosed
	}
	names := make([]string, 0, len(m.endpoints))
	for name := range m.endpoints {
		if name > q.After {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	page := stockd.WebhookPage{Items: []stockd.Webhook{}}
	for i, name := range names {
		if i == limit {
			page.Next = names[i-1]
			break
		}
		page.Items = append(page.Items, m.view(m.endpoints[name]))
	}
	return page, nil
}

// DeleteWebhook implements stockd.Webhooks. The endpoint's configuration
// goes first: that is the moment it is deleted. Its checkpoints are then
// deleted (where the store can), and its dead letters are purged in the
// background. Other processes stop it at their next sync.
//
// Another process may put an endpoint of the same name again meanwhile. Its
// checkpoints are written before its record, so the checkpoints are deleted
// here only if the store still has no endpoint of the name after the record
// was deleted. A put whose checkpoints land between that check and the
// deletion loses them; its Runners then find none and raise them to where it
// started (config.Start): events sent again, none lost. Its dead letters are
// its own (a new generation), never purged by this delete.
func (m *Manager) DeleteWebhook(ctx context.Context, name string) (stockd.Webhook, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return stockd.Webhook{}, errClosed
	}
	c, err := m.storedOne(ctx, name)
	if err != nil {
		return stockd.Webhook{}, err
	}
	r := m.endpoints[name]
	if c == nil {
		if r != nil {
			// Deleted through another process since the last sync.
			r.runner.Close()
			delete(m.endpoints, name)
			m.opts.Metrics.forget(name)
		}
		return stockd.Webhook{}, notFound(name)
	}
	var view stockd.Webhook
	if r != nil && r.ep.cfg.same(c) {
		view = m.view(r)
	} else {
		view = stockd.Webhook{Name: c.Name, URL: c.URL, Types: slices.Clone(c.Types), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
		if view.Types == nil {
			view.Types = []string{}
		}
		if n, err := m.countDeadLetters(ctx, c); err == nil {
			view.DeadLetters = int(n.Load())
		}
	}
	if r != nil {
		r.runner.Close()
		delete(m.endpoints, name)
	}
	store := m.opts.Store
	// From here on the endpoint is gone from memory; a failure below
	// leaves it in the store, where the next sync or Open finds it again.
	if err := store.PutRecord(ctx, kindPurge, c.deadKind(), []byte("{}")); err != nil {
		return stockd.Webhook{}, err
	}
	if err := store.DeleteRecord(ctx, KindEndpoint, name); err != nil {
		return stockd.Webhook{}, err
	}
	m.opts.Metrics.forget(name)
	if cs, ok := store.(consumerStore); ok {
		again, err := m.storedOne(ctx, name)
		switch {
		case err != nil:
			m.log.Warn("webhook: a deleted endpoint's checkpoints were not deleted; they hold back archiving until the next start deletes them", "webhook", name, "err", err)
		case again != nil:
			m.log.Info("webhook put again through another node while being deleted: its checkpoints are kept", "webhook", name)
		default:
			if err := cs.DeleteConsumer(ctx, Consumer(name)); err != nil {
				m.log.Warn("webhook: a deleted endpoint's checkpoints were not deleted; they hold back archiving until the next start deletes them", "webhook", name, "err", err)
			}
		}
	}
	select {
	case m.purge <- struct{}{}:
	default:
	}
	m.log.Info("webhook deleted", "webhook", name)
	view.Lag = 0
	return view, nil
}

// purger empties the dead-letter lists of deleted endpoints.
func (m *Manager) purger() {
	defer close(m.purgeDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-m.stop:
			return
		case <-m.purge:
		}
		if err := m.purgeAll(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("webhook: purging the dead letters of deleted endpoints failed; retried at the next delete or start", "err", err)
		}
	}
}

func (m *Manager) purgeAll(ctx context.Context) error {
	store := m.opts.Store
	for {
		kinds, err := store.ListRecords(ctx, kindPurge, "", 100)
		if err != nil || len(kinds) == 0 {
			return err
		}
		for _, k := range kinds {
			// Several processes may purge one list at once: deleting
			// a record twice is no error.
			for _, kind := range []string{k.Key, claimKindOf(k.Key)} {
				for {
					recs, err := store.ListRecords(ctx, kind, "", 100)
					if err != nil {
						return err
					}
					for _, r := range recs {
						if err := store.DeleteRecord(ctx, kind, r.Key); err != nil {
							return err
						}
					}
					if len(recs) < 100 {
						break
					}
				}
			}
			if err := store.DeleteRecord(ctx, kindPurge, k.Key); err != nil {
				return err
			}
		}
	}
}

// WebhookDeadLetters implements stockd.Webhooks.
func (m *Manager) WebhookDeadLetters(ctx context.Context, q stockd.DeadLetterQuery) (stockd.DeadLetterPage, error) {
	r, err := m.lookup(q.Name)
	if err != nil {
		return stockd.DeadLetterPage{}, err
	}
	limit := pageLimit(q.Limit)
	recs, err := m.opts.Store.ListRecords(ctx, r.ep.cfg.deadKind(), q.After, limit+1)
	if err != nil {
		return stockd.DeadLetterPage{}, err
	}
	page := stockd.DeadLetterPage{Items: make([]stockd.DeadLetter, 0, min(len(recs), limit))}
	for i, rec := range recs {
		if i == limit {
			page.Next = recs[i-1].Key
			break
		}
		var dl stockd.DeadLetter
		if err := json.Unmarshal(rec.Value, &dl); err != nil {
			return stockd.DeadLetterPage{}, fmt.Errorf("webhook: dead letter %s of %q: %w", rec.Key, q.Name, err)
		}
		page.Items = append(page.Items, dl)
	}
	return page, nil
}

// MaxReplayIDs bounds the event ids one replay may name.
const MaxReplayIDs = 1000

// ReplayWebhookDeadLetters implements stockd.Webhooks. Each dead letter is
// sent once, in event id order, with a fresh signature; the replay stops
// early, leaving the rest untried, when the request's time runs short.
//
// Any process sharing the store may replay any of the endpoint's dead
// letters, whichever partitions it serves; each dead letter is claimed in
// the store before it is sent (see claim.go), so that replays through two
// processes at once send each dead letter once between them. One that
// another replay holds is left to it: untried here, in none of the lists.
func (m *Manager) ReplayWebhookDeadLetters(ctx context.Context, cmd stockd.ReplayDeadLetters) (stockd.DeadLetterReplay, error) {
	out := stockd.DeadLetterReplay{Delivered: []string{}, Failed: []string{}, NotFound: []string{}}
	if len(cmd.EventIDs) > MaxReplayIDs {
		return out, stockd.Errorf(stockd.CodeInvalid, "event_ids names %d events; at most %d per replay", len(cmd.EventIDs), MaxReplayIDs)
	}
	for _, id := range cmd.EventIDs {
		if err := stockd.CheckName("event_ids", id); err != nil {
			return out, err
		}
	}
	r, err := m.lookup(cmd.Name)
	if err != nil {
		return out, err
	}
	ep := r.ep
	select {
	case ep.replaying <- struct{}{}:
	case <-ctx.Done():
		return out, ctx.Err()
	}
	defer func() { <-ep.replaying }()
	kind := ep.cfg.deadKind()
	store := m.opts.Store
	// Attempts end half a second before the request must be answered,
	// so that the answer says what was done; an attempt cut short is
	// left untried.
	actx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(ctx, dl.Add(-500*time.Millisecond))
		defer cancel()
	}
	// replay sends one dead letter, as value holds it, and records the
	// outcome; named says whether it was asked for by id.
	replay := func(key string, value []byte, named bool) (stop bool, err error) {
		if actx.Err() != nil {
			return true, nil
		}
		var d stockd.DeadLetter
		if err := json.Unmarshal(value, &d); err != nil {
			return false, fmt.Errorf("webhook: dead letter %s of %q: %w", key, cmd.Name, err)
		}
		c, state, err := ep.claim(ctx, key, value)
		if err != nil {
			return false, err
		}
		switch state {
		case claimGone:
			if named {
				out.NotFound = append(out.NotFound, key)
			}
			return false, nil
		case claimBusy:
			return false, nil
		}
		cctx, cancel := context.WithDeadline(actx, c.deadline())
		defer cancel()
		res := ep.attempt(cctx, d.EventID, d.Event)
		if cctx.Err() != nil {
			c.release(ctx, false)
			return true, nil
		}
		if res.err == nil {
			if err := store.DeleteRecord(ctx, kind, key); err != nil {
				c.release(ctx, false)
				return false, err
			}
			c.release(ctx, true)
			ep.dead.Add(-1)
			out.Delivered = append(out.Delivered, d.EventID)
			return false, nil
		}
		d.Attempts++
		d.LastAttempt, d.LastStatus, d.LastError = time.Now().UTC(), res.status, errorText(res.err)
		v, err := json.Marshal(d)
		if err == nil {
			err = store.PutRecord(ctx, kind, key, v)
		}
		if err != nil {
			c.release(ctx, false)
			return false, err
		}
		c.release(ctx, true)
		out.Failed = append(out.Failed, d.EventID)
		return false, nil
	}
	if len(cmd.EventIDs) > 0 {
		seen := map[string]bool{}
		for _, id := range cmd.EventIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			v, ok, err := store.GetRecord(ctx, kind, id)
			if err != nil {
				return out, err
			}
			if !ok {
				out.NotFound = append(out.NotFound, id)
				continue
			}
			if stop, err := replay(id, v, true); err != nil || stop {
				return out, err
			}
		}
		m.log.Info("webhook dead letters replayed", "webhook", cmd.Name, "delivered", len(out.Delivered), "failed", len(out.Failed))
		return out, nil
	}
	after := ""
	for {
		recs, err := store.ListRecords(ctx, kind, after, 100)
		if err != nil {
			return out, err
		}
		for _, rec := range recs {
			if stop, err := replay(rec.Key, rec.Value, false); err != nil || stop {
				return out, err
			}
		}
		if len(recs) < 100 {
			break
		}
		after = recs[len(recs)-1].Key
	}
	m.log.Info("webhook dead letters replayed", "webhook", cmd.Name, "delivered", len(out.Delivered), "failed", len(out.Failed))
	return out, nil
}
