// Package engine runs stockd's partitions: one goroutine per partition owns
// that partition's state, decides whole batches of commands against it and
// writes each batch with one durable append, replying only once the append is
// durable. It implements stockd.Service in-process.
package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/internal/workers"
)

// Options configure an Engine. The zero value is usable: every field has a
// default.
type Options struct {
	// Limits bound what one command may ask for.
	Limits stockd.Limits
	// InboxSize bounds the requests waiting for one partition. A full inbox
	// rejects new requests at once with CodeOverloaded rather than queue
	// them without bound. Default 8192.
	InboxSize int
	// MaxQueueWait bounds how long a request may be expected to wait for
	// its partition before its batch is taken: a request whose estimated
	// wait is longer is refused at once with CodeOverloaded and a
	// RetryAfter (see admission.go for the estimate). An admitted request
	// then answers within about MaxQueueWait plus one batch's append.
	// Negative turns the check off, leaving only InboxSize. Default 200 ms:
	// above what a healthy partition makes anyone wait (BenchmarkOverload,
	// one hot SKU, plain store: p99 45 ms with 4,096 callers, nothing
	// refused; 120–180 ms with 16,384, when the inbox is full), and well
	// under the one-second timeouts of clients and the one-second
	// granularity of Retry-After, so that a partition whose store slows
	// down answers with a refusal, not a timeout.
	MaxQueueWait time.Duration
	// MaxHistoryReads bounds the reads of a SKU's past state (SKU with an
	// AsOf) running at once; each replays the SKU's history from the store.
	// More are refused at once with CodeOverloaded. Default 4.
	MaxHistoryReads int
	// MaxBatch bounds the commands decided in one batch. Default 4096.
	MaxBatch int
	// Pipeline is how many batches of one partition may be on their way to
	// disk at once. The engine writer syncs at most two groups at a time, so
	// two is enough to keep the disk busy: one batch is synced while the
	// next gathers every request that arrives meanwhile. A deeper pipeline
	// only cuts the batches smaller, and costs more goroutine hand-offs per
	// request: measured with BenchmarkReserve, 2 instead of 16 gave 1.3x
	// the throughput on one hot SKU at 64 callers and on 100,000 SKUs at
	// 1,024, and over HTTP about 10 % more. Default 2.
	Pipeline int
	// SnapshotEvery is how many events a partition may gain before a new
	// snapshot is written in the background. Default 50,000: with settled
	// entities retired, a snapshot holds live work only and is cheap to
	// write, and recovery replays at most this many events a partition
	// (64 partitions: 3.2 million, about two seconds, however long the
	// history).
	SnapshotEvery uint64
	// SnapshotCheck is how often the snapshotter looks. Default 10 s.
	SnapshotCheck time.Duration
	// SkipSnapshotOnClose stops Close from writing a snapshot of every
	// partition. Benchmarks of recovery use it; services should not.
	SkipSnapshotOnClose bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the engine's logs. Default slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told about batches, appends, expiries,
	// decisions, snapshots and recovery.
	Observer Observer
	// Lease, when set, returns the lease partition p's appends carry
	// (stockd.Batch.Lease). A store that leases partitions (stockd.Leases)
	// refuses them once that lease is no longer current, so a node that
	// lost a partition can never write to it again. nil: no lease (one
	// node owns the store).
	Lease func(p int) *stockd.Lease
	// OnDurable, when set, is called after each batch of partition p
	// becomes durable, so that consumers of the log (the read model) need
	// not poll. It must not block. With Dynamic, it is also called when
	// the head of a partition another node serves is seen to move.
	OnDurable func(p int)
	// Dynamic makes Open load no partition: the engine serves a partition
	// from Acquire until Drop. Several nodes share a store that way, each
	// serving the partitions it holds the lease of. A request for a
	// partition the engine does not serve is refused with an error that
	// NotServed recognises, for the caller to send to the node that does.
	// The store must guard keys (stockd.KeyGuard) and find them
	// (stockd.KeyFinder); it should read heads (stockd.HeadReader).
	Dynamic bool
	// Send, with Dynamic, carries a saga's message to a partition this
	// engine does not serve (see Deliver). It must not block; a message it
	// loses is sent again by the saga's home (stockd.State.Overdue).
	Send func(m stockd.Message)
	// SagaResend, with Dynamic, is how long a saga's step waits for its
	// answers before its messages are sent again (stockd.State.Overdue):
	// between nodes a message can be lost with the node that had it.
	// Default 2 s.
	SagaResend time.Duration
	// Follow, with Dynamic, is how often the heads of the partitions other
	// nodes serve, and the locations, are read from the store. Default
	// 100 ms.
	Follow time.Duration

	// clock, when set, replaces the monotonic clock that admission measures
	// service times with (tests drive it by hand). Nanoseconds.
	clock func() int64
}

// Observer receives measurements from the engine. Implementations must be
// fast and safe for concurrent use; they are called on the hot path. Embed
// NopObserver to implement only some of the methods.
type Observer interface {
	// Batch is called for every batch a partition decided: how many
	// commands and events it held.
	Batch(partition, commands, events int)
	// Appended is called when a batch became durable, with the time from
	// starting the append until it was durable.
	Appended(partition int, d time.Duration)
	// Expired is called when holds or lots expired on their own.
	Expired(partition int, holds, lots int)
	// Decided is called for every command a partition answered, once the
	// answer is final (its batch is durable) and just before the caller
	// gets it: created reports whether the command did something new
	// (false for a replay and for a refusal), code is "" when the command
	// was accepted and the refusal's code otherwise. Commands refused
	// before they reach a partition (invalid, overloaded, the engine
	// closed) and answers after a storage failure are not reported;
	// requests still waiting on a saga when the engine closes are, as
	// unavailable. cmd must not be kept: its request is reused.
	Decided(partition int, cmd stockd.Command, created bool, code stockd.Code)
	// Snapshot is called after a snapshot of a partition was saved, with
	// the time it took (rebuilding the state when written in the
	// background, encoding and saving) and its size in bytes.
	Snapshot(partition int, d time.Duration, bytes int)
	// Recovered is called once by Open when every partition was
	// recovered, with the time recovery took and the events it replayed.
	Recovered(d time.Duration, events int)
	// Retired is called when settled entities of a partition left memory,
	// once their retirement is durable.
	Retired(partition int, entities int)
	// AnsweredRetired is called for every command or read answered from a
	// retired record in the store rather than from memory.
	AnsweredRetired()
}

// NopObserver is an Observer that does nothing, to embed in observers that
// want only some of the measurements.
type NopObserver struct{}

func (NopObserver) Batch(partition, commands, events int)              {}
func (NopObserver) Appended(partition int, d time.Duration)            {}
func (NopObserver) Expired(partition int, holds, lots int)             {}
func (NopObserver) Decided(int, stockd.Command, bool, stockd.Code)     {}
func (NopObserver) Snapshot(partition int, d time.Duration, bytes int) {}
func (NopObserver) Recovered(d time.Duration, events int)              {}
func (NopObserver) Retired(partition int, entities int)                {}
func (NopObserver) AnsweredRetired()                                   {}

func (o *Options) setDefaults() {
	if o.Limits == (stockd.Limits{}) {
		o.Limits = stockd.DefaultLimits
	}
	if o.InboxSize <= 0 {
		o.InboxSize = 8192
	}
	if o.MaxQueueWait == 0 {
		o.MaxQueueWait = 200 * time.Millisecond
	}
	if o.MaxHistoryReads <= 0 {
		o.MaxHistoryReads = 4
	}
	if o.clock == nil {
		epoch := time.Now()
		o.clock = func() int64 { return int64(time.Since(epoch)) }
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 4096
	}
	if o.Pipeline <= 0 {
		o.Pipeline = 2
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = 50_000
	}
	if o.SnapshotCheck <= 0 {
		o.SnapshotCheck = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Follow <= 0 {
		o.Follow = 100 * time.Millisecond
	}
	if o.SagaResend <= 0 {
		o.SagaResend = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// GCPercent is the garbage collector's target (GOGC) that stockd runs with
// unless GOGC is set. The engine keeps every reservation in memory and
// allocates a little for each command; the default of 100 makes the collector
// trace that live heap twice as often, and that costs a third of the
// throughput on a hot SKU. Benchmarks use the same value.
const GCPercent = 400

// Engine is stockd's write path: partitions with group commit over a Store.
type Engine struct {
	store Store
	pipe  stockd.PipelinedAppender
	// keys is true when the store guards idempotency keys itself, being
	// shared by processes: only then are key records appended. A store
	// owned by one process has every key in its log already, and this
	// engine's registry is the guard.
	keys bool
	// retired is set once any entity has been retired (at start-up, if
	// the recovered states retired any): from then on a new id is looked
	// up among the store's retired records before it is accepted.
	retired atomic.Bool
	opts    Options
	// readOnly, when set, is the refusal every command from a caller gets:
	// the service only reads (see SetReadOnly).
	readOnly atomic.Pointer[stockd.Error]
	// history bounds the time-travel reads running at once.
	history chan struct{}
	log     *slog.Logger

	// slots[p] is partition p while this engine serves it, nil otherwise
	// (only with Options.Dynamic). It is set and cleared under the gate's
	// write lock, so a request that found it under the read lock reaches
	// its inbox before a Drop's stop request does.
	slots []atomic.Pointer[partition]
	reg   *registry
	// writes carries decided batches of every partition to the writer,
	// which appends whatever is waiting as one group.
	writes chan *batch
	// running counts the partitions started and not yet finished: Close
	// closes writes only once none can send to it any more.
	running sync.WaitGroup
	// locs is the catalog (locations and bundles) LocationPartition
	// published last, which every other partition decides with.
	locs atomic.Pointer[stockd.Catalog]
	// With Dynamic: the heads of the partitions other nodes serve, as last
	// read from the store, and the position of partition
	// LocationPartition's log the locations were read up to.
	followed []atomic.Uint64
	// followedAt is when the heads were last read (ns since the epoch).
	followedAt atomic.Int64
	// serving counts the partitions served, with Dynamic: while it is all
	// of them the registry holds every key, as in an engine that serves
	// them all, and no key is looked up in the store.
	serving  atomic.Int32
	locsMu   sync.Mutex
	locsHead uint64

	// gate orders new requests against Close: requests enter under the
	// read lock, Close takes the write lock to stop them.
	gate   sync.RWMutex
	closed bool

	fatalOnce sync.Once
	fatal     chan struct{}
	fatalErr  error

	wg         sync.WaitGroup
	stopSnap   chan struct{}
	snapDone   chan struct{}
	followDone chan struct{} // with Dynamic: closed when follow returns
}

var _ stockd.Service = (*Engine)(nil)

// Open recovers every partition of store (latest snapshot plus the log tail),
// re-arms timers, finishes interrupted sagas, and starts the partitions. With
// Options.Dynamic it loads none: Acquire does, one partition at a time.
func Open(ctx context.Context, store Store, opts Options) (*Engine, error) {
	opts.setDefaults()
	e := &Engine{
		store:    store,
		opts:     opts,
		log:      opts.Logger,
		reg:      newRegistry(),
		history:  make(chan struct{}, opts.MaxHistoryReads),
		fatal:    make(chan struct{}),
		stopSnap: make(chan struct{}),
		snapDone: make(chan struct{}),
	}
	e.pipe, _ = store.(stockd.PipelinedAppender)
	_, e.keys = store.(stockd.KeyGuard)
	n := store.Partitions()
	if n <= 0 {
		return nil, fmt.Errorf("engine: store has %d partitions", n)
	}
	e.slots = make([]atomic.Pointer[partition], n)
	e.writes = make(chan *batch, n*opts.Pipeline)
	if opts.Dynamic {
		return e, e.openDynamic(ctx)
	}
	start := time.Now()
	states, snaps, events, err := recoverAll(ctx, store, n, opts.Limits)
	if err != nil {
		return nil, err
	}
	keys := 0
	for _, st := range states {
		keys += st.KeyCount()
	}
	e.reg.reserve(keys)
	for _, st := range states {
		if st.RetiredCount() > 0 {
			e.retired.Store(true)
		}
	}
	workers.Each(n, func(p int) {
		states[p].Keys(func(key stockd.Key, fp uint64) { e.reg.put(key, p, fp) })
	})
	locs := states[stockd.LocationPartition].Catalog()
	e.locs.Store(&locs)
	parts := make([]*partition, n)
	for p, st := range states {
		if p != stockd.LocationPartition {
			st.SetCatalog(locs)
		}
		parts[p] = newPartition(e, p, st)
		parts[p].snapshotted.Store(snaps[p])
		e.slots[p].Store(parts[p])
	}
	// Sagas left unfinished by a crash are finished before anything else.
	for _, part := range parts {
		e.recoverSagas(part)
	}
	for _, part := range parts {
		e.running.Add(1)
		part.start()
	}
	e.wg.Add(1)
	go e.writer()
	go e.snapshotter()
	took := time.Since(start)
	if opts.Observer != nil {
		opts.Observer.Recovered(took, events)
	}
	e.log.Info("engine recovered", "partitions", n, "events_replayed", events, "keys", e.reg.size(), "took", took.Round(time.Millisecond))
	return e, nil
}

// recoverSagas queues what a partition's sagas left unfinished by a stop
// need: the steps to send again and the holds to abandon.
func (e *Engine) recoverSagas(part *partition) {
	cmds, msgs := part.state.Recover()
	for _, c := range cmds {
		part.post(c)
	}
	for _, m := range msgs {
		e.deliver(m)
	}
}

// part returns partition p if this engine serves it, else nil.
func (e *Engine) part(p int) *partition { return e.slots[p].Load() }

// served returns the partitions this engine serves now.
func (e *Engine) served() []*partition {
	out := make([]*partition, 0, len(e.slots))
	for i := range e.slots {
		if p := e.slots[i].Load(); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// deliver hands a saga's message to its partition: here if this engine
// serves it, else to Options.Send.
func (e *Engine) deliver(m stockd.Message) {
	if part := e.part(m.To); part != nil {
		part.post(m.Command)
		return
	}
	if e.opts.Send != nil {
		e.opts.Send(m)
		return
	}
	e.log.Error("a saga message has no partition to go to", "partition", m.To)
}

// recoverAll rebuilds every partition's state, several at a time.
func recoverAll(ctx context.Context, store Store, n int, limits stockd.Limits) ([]*stockd.State, []uint64, int, error) {
	states := make([]*stockd.State, n)
	snaps := make([]uint64, n)
	counts := make([]int, n)
	errs := make([]error, n)
	workers.Each(n, func(p int) {
		states[p], snaps[p], counts[p], errs[p] = load(ctx, store, p, limits, 0)
	})
	total := 0
	for p := range n {
		if errs[p] != nil {
			return nil, nil, 0, fmt.Errorf("engine: recover partition %d: %w", p, errs[p])
		}
		total += counts[p]
	}
	return states, snaps, total, nil
}

// load rebuilds partition p from its latest snapshot and its log, up to and
// including position upTo (0: the whole log). It returns the position of
// the snapshot it started from and the number of events replayed.
func load(ctx context.Context, store Store, p int, limits stockd.Limits, upTo uint64) (*stockd.State, uint64, int, error) {
	var st *stockd.State
	snap, ok, err := store.LoadSnapshot(ctx, p)
	if err != nil {
		return nil, 0, 0, err
	}
	var from uint64
	if ok && (upTo == 0 || snap.Position <= upTo) {
		st, err = stockd.DecodeState(snap.Data, limits)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("snapshot at %d: %w", snap.Position, err)
		}
		if st.Partition() != p || st.Head() != snap.Position {
			return nil, 0, 0, fmt.Errorf("snapshot of partition %d at %d holds partition %d at %d", p, snap.Position, st.Partition(), st.Head())
		}
		from = snap.Position
	} else {
		st = stockd.NewState(p, store.Partitions(), limits)
	}
	n := 0
	for {
		events, err := store.ReadPartition(ctx, p, st.Head(), 8192)
		if err != nil {
			return nil, 0, 0, err
		}
		if len(events) == 0 {
			return st, from, n, nil
		}
		for _, ev := range events {
			if upTo != 0 && ev.Position > upTo {
				return st, from, n, nil
			}
			if err := st.Apply(ev); err != nil {
				return nil, 0, 0, err
			}
			n++
		}
	}
}

// maxGroup bounds the batches appended as one group.
const maxGroup = 1024

// groupsInFlight bounds the groups being synced at once. A store syncs its
// log one write after another anyway; while the groups in flight are synced,
// the batches decided meanwhile gather and go out as the next group.
const groupsInFlight = 2

// writer appends decided batches, in the order the partitions decided them,
// and passes each on to its partition's completer. With a store that can
// append a group, it takes every batch waiting, of any partition, and writes
// them as one: under load spread over many partitions that is one write and
// one sync for all of them. Otherwise each batch is begun on its own, or, for
// a store that cannot pipeline, appended by the completer.
func (e *Engine) writer() {
	defer e.wg.Done()
	ctx := context.Background()
	group, _ := e.store.(stockd.GroupAppender)
	items := make([]*batch, 0, maxGroup)
	appends := make([]stockd.Append, 0, maxGroup)
	inflight := make(chan struct{}, groupsInFlight)
	for first := range e.writes {
		// Wait for room among the groups in flight first: the batches
		// decided meanwhile then join this group.
		inflight <- struct{}{}
		items = append(items[:0], first)
	drain:
		for len(items) < maxGroup {
			select {
			case b, ok := <-e.writes:
				if !ok {
					break drain
				}
				items = append(items, b)
			default:
				break drain
			}
		}
		appends = appends[:0]
		for _, b := range items {
			if len(b.events) == 0 || e.failed() {
				continue
			}
			a := stockd.Append{Partition: b.partition, Expected: b.expected, Batch: stockd.Batch{Events: b.events, Retired: b.retired}}
			if e.opts.Lease != nil {
				a.Batch.Lease = e.opts.Lease(b.partition)
			}
			if e.keys {
				a.Batch.Keys = b.keys
			}
			b.started = time.Now()
			switch {
			case group != nil:
				appends = append(appends, a)
			case e.pipe != nil:
				b.wait = begun(e.pipe.BeginAppend(ctx, a.Partition, a.Expected, a.Batch))
			default:
				b.wait = func() error { return e.store.Append(ctx, a.Partition, a.Expected, a.Batch) }
			}
		}
		if len(appends) > 0 {
			wait := begun(group.BeginAppendGroup(ctx, appends))
			for _, b := range items {
				if len(b.events) > 0 {
					b.wait = wait
				}
			}
			go func() {
				wait()
				<-inflight
			}()
		} else {
			<-inflight
		}
		for _, b := range items {
			b.part.batches <- b
		}
	}
}

// begun turns the result of beginning an append into a wait function that
// reports the failure to begin, if there was one.
func begun(wait func() error, err error) func() error {
	if err != nil {
		return func() error { return err }
	}
	return wait
}

// Fatal is closed when a storage write failed. From then on the engine
// acknowledges nothing; the process should exit and recover from the log on
// its next start.
func (e *Engine) Fatal() <-chan struct{} { return e.fatal }

// Err returns the storage error that stopped the engine, or nil.
func (e *Engine) Err() error {
	select {
	case <-e.fatal:
		return e.fatalErr
	default:
		return nil
	}
}

// fail stops the engine after a storage error. It never retries: after a
// failed write or fsync the state of the disk is unknown, so the only safe
// course is to stop acknowledging and recover from the log on restart.
func (e *Engine) fail(err error) {
	e.fatalOnce.Do(func() {
		e.fatalErr = err
		e.log.Error("the engine stops and acknowledges nothing more", "err", err)
		close(e.fatal)
	})
}

// Stop stops the engine as a failed write does: from now on it acknowledges
// and answers nothing, Fatal is closed and Err returns err. The app calls it
// when it can no longer be sure it owns its partitions (a lease it could not
// renew in time): a node that may have lost a partition must not answer for
// it.
func (e *Engine) Stop(err error) { e.fail(err) }

func (e *Engine) failed() bool {
	select {
	case <-e.fatal:
		return true
	default:
		return false
	}
}

var (
	errClosed = stockd.Errorf(stockd.CodeUnavailable, "the service is shutting down")
	errFailed = stockd.Errorf(stockd.CodeUnavailable, "the service stopped after a storage failure")
)

// Close stops taking requests, finishes every batch already taken (their
// replies go out once durable), writes a snapshot of each partition so the
// next start replays little, and returns. It does not close the store.
func (e *Engine) Close(ctx context.Context) error {
	e.gate.Lock()
	if e.closed {
		e.gate.Unlock()
		return nil
	}
	e.closed = true
	parts := e.served()
	e.gate.Unlock()
	for _, p := range parts {
		p.inbox <- &request{stop: true}
	}
	// Every partition, including one a Drop is stopping, has sent its last
	// batch: nothing writes any more.
	e.running.Wait()
	close(e.writes)
	e.wg.Wait()
	close(e.stopSnap)
	<-e.snapDone
	if e.followDone != nil {
		<-e.followDone
	}
	if e.failed() {
		return e.fatalErr
	}
	if e.opts.SkipSnapshotOnClose {
		return nil
	}
	var errs []error
	for _, p := range parts {
		if err := e.snapshotHead(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// snapshotHead saves a snapshot of a stopped partition's state at its head,
// unless one was saved there already.
func (e *Engine) snapshotHead(ctx context.Context, p *partition) error {
	if p.state.Head() <= p.snapshotted.Load() {
		return nil
	}
	start := time.Now()
	data := stockd.EncodeState(p.state)
	if err := e.store.SaveSnapshot(ctx, stockd.Snapshot{Partition: p.id, Position: p.state.Head(), Data: data}); err != nil {
		return err
	}
	if o := e.opts.Observer; o != nil {
		o.Snapshot(p.id, time.Since(start), len(data))
	}
	return nil
}

// Poke makes every partition check its timers now. Tests that drive the
// clock by hand call it after moving the clock.
func (e *Engine) Poke() {
	for _, p := range e.served() {
		p.signal()
	}
}

// submit hands a request to partition p, or refuses it at once.
func (e *Engine) submit(p int, r *request) error {
	e.gate.RLock()
	defer e.gate.RUnlock()
	if e.closed {
		return errClosed
	}
	if e.failed() {
		return errFailed
	}
	if r.cmd != nil {
		if ro := e.readOnly.Load(); ro != nil {
			return ro
		}
	}
	part := e.part(p)
	if part == nil {
		return notServed(p)
	}
	if err := part.adm.admit(e.opts.MaxQueueWait, e.opts.clock); err != nil {
		return err
	}
	select {
	case part.inbox <- r:
		return nil
	default:
		part.adm.cancel()
		return overloaded(errInboxMessage, e.QueueWait(p), max(e.opts.MaxQueueWait, 0))
	}
}

// SetReadOnly makes the engine refuse every command callers send with
// refusal (CodeUnavailable, say, with a RetryAfter), while it keeps answering
// reads and writing what its own timers decide: holds and lots must still
// expire. A nil refusal makes it take commands again. A guard of free disk
// space uses it to stop writes before the disk is full.
func (e *Engine) SetReadOnly(refusal *stockd.Error) { e.readOnly.Store(refusal) }

// ReadOnly returns the refusal SetReadOnly set, or nil when the engine takes
// commands.
func (e *Engine) ReadOnly() *stockd.Error { return e.readOnly.Load() }

// QueueWait returns how long a request sent to partition p now is expected
// to wait before its batch is taken: the estimate admission compares with
// MaxQueueWait.
func (e *Engine) QueueWait(p int) time.Duration {
	part := e.part(p)
	if part == nil {
		return 0
	}
	w, _ := part.adm.estimate(part.adm.queued.Load(), e.opts.clock())
	return w
}

// answerer stores the typed answer to a command, read off the partition's
// state once the command is decided (see answer in service.go).
type answerer interface {
	store(*stockd.State) error
}

// exec runs a command and reports whether it was new. result, when not nil,
// stores the command's answer once it is decided; it may still do so after
// exec has returned on a cancelled ctx, so the caller must read what it
// stores only when exec returns without an error.
func (e *Engine) exec(ctx context.Context, cmd stockd.Command, result answerer) (bool, error) {
	decidedWith := e.locs.Load()
	created, err := e.execOnce(ctx, cmd, result)
	if err != nil && stockd.IsCode(err, stockd.CodeUnknownLocation) && e.refreshLocations(ctx, decidedWith) {
		// A location configured through another node a moment ago:
		// refused with nothing written, and decided again now that this
		// node knows it.
		return e.execOnce(ctx, cmd, result)
	}
	return created, err
}

// execOnce is exec without the second look at the locations.
func (e *Engine) execOnce(ctx context.Context, cmd stockd.Command, result answerer) (bool, error) {
	if err := cmd.Validate(e.opts.Limits); err != nil {
		return false, err
	}
	rt := stockd.RouteOf(cmd)
	var p int
	switch {
	case rt.Locations:
		p = stockd.LocationPartition
	case rt.Lookup.ID != "":
		var ok bool
		if p, ok = e.reg.lookup(rt.Lookup); !ok {
			if q, elsewhere, err := e.servedElsewhere(ctx, rt.Lookup); err != nil || elsewhere {
				return false, cmp.Or(err, notServed(q))
			}
			return e.fromRetired(ctx, rt.Lookup, cmd, result, notFoundKey(rt.Lookup))
		}
	default:
		p = stockd.PartitionOf(rt.SKU, len(e.slots))
	}
	if e.opts.Dynamic && e.part(p) == nil {
		return false, notServed(p)
	}
	var c *claim
	var known stockd.Key
	if rt.Claim.ID != "" {
		var err error
		if c, err = e.reg.claim(ctx, rt.Claim, rt.Fingerprint, p); err != nil {
			return false, err
		}
		// fresh is set when the store says the key was never recorded
		// anywhere: then it cannot have been retired either.
		fresh := false
		if c != nil && e.partial() {
			seen, err := e.checkNewKey(ctx, rt.Claim, rt.Fingerprint, p)
			if err != nil {
				e.reg.settle(c, false)
				return false, err
			}
			fresh = !seen
		}
		switch {
		case c == nil:
			// A repeat of an accepted command: its partition answers,
			// unless it is retiring the entity right now.
			known = rt.Claim
		case e.retired.Load() && !fresh:
			// A key the registry does not hold may have been retired.
			st, ok, err := e.retiredState(ctx, rt.Claim)
			if err != nil || ok {
				e.reg.settle(c, false)
			}
			if err != nil {
				return false, err
			}
			if ok {
				return e.answerRetired(st, rt.Claim, cmd, result)
			}
		}
	}
	r := newRequest()
	r.cmd, r.result, r.actor, r.claim, r.known = cmd, result, stockd.ActorFrom(ctx), c, known
	if err := e.submit(p, r); err != nil {
		e.reg.settle(c, false)
		r.recycle()
		return false, err
	}
	select {
	case rep := <-r.done:
		r.recycle()
		switch {
		case rep.err == errRetired:
			return e.fromRetired(ctx, known, cmd, result, notFoundKey(known))
		case rt.Lookup.ID != "" && e.retired.Load() && stockd.IsCode(rep.err, stockd.CodeNotFound):
			// Retired while the command was on its way.
			return e.fromRetired(ctx, rt.Lookup, cmd, result, rep.err)
		}
		return rep.created, rep.err
	case <-ctx.Done():
		// The command may still be carried out; its claim is settled by
		// the partition either way. The request is not recycled: the
		// partition still holds it.
		return false, ctx.Err()
	}
}

// query runs fn on partition p's state. The answer waits, like a command's,
// until everything it reflects is durable: a read never shows a write that a
// crash could still take back.
func (e *Engine) query(ctx context.Context, p int, fn func(*stockd.State) error) error {
	r := newRequest()
	r.query = fn
	if err := e.submit(p, r); err != nil {
		r.recycle()
		return err
	}
	select {
	case rep := <-r.done:
		r.recycle()
		return rep.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queryAs runs fn on partition p's state and returns its typed answer. The
// answer is read only after the partition replied: fn may still run after
// a cancelled ctx made queryAs return.
func queryAs[T any](ctx context.Context, e *Engine, p int, fn func(*stockd.State) (T, error)) (T, error) {
	var out T
	err := e.query(ctx, p, func(s *stockd.State) error {
		v, err := fn(s)
		out = v
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

func notFoundKey(key stockd.Key) error {
	return stockd.Errorf(stockd.CodeNotFound, "%s %q not found", key.Kind, key.ID)
}

// Partitions returns the number of partitions.
func (e *Engine) Partitions() int { return len(e.slots) }

// DurableHead returns the position up to which partition p is durable: as
// this engine wrote it, or, for a partition another node serves, as last
// read from the store.
func (e *Engine) DurableHead(p int) uint64 {
	if part := e.part(p); part != nil {
		return part.durable.Load()
	}
	if e.followed != nil {
		return e.followed[p].Load()
	}
	return 0
}

// InboxDepth returns the number of requests waiting for partition p.
func (e *Engine) InboxDepth(p int) int {
	if part := e.part(p); part != nil {
		return len(part.inbox)
	}
	return 0
}

// Keys returns the number of idempotency keys the engine remembers.
func (e *Engine) Keys() int { return e.reg.size() }

// HoldsActive returns the number of reservations held, over every partition,
// as of each partition's last decided batch. It is cheap: one atomic load per
// partition.
func (e *Engine) HoldsActive() int {
	n := 0
	for _, p := range e.served() {
		n += int(p.held.Load())
	}
	return n
}

// snapshotter writes snapshots in the background: for a partition that has
// gained SnapshotEvery events since its last snapshot, it rebuilds the state
// at the durable head from the previous snapshot and the log, and saves it.
// It never touches the live state, so it never stalls a partition.
func (e *Engine) snapshotter() {
	defer close(e.snapDone)
	t := time.NewTicker(e.opts.SnapshotCheck)
	defer t.Stop()
	for {
		select {
		case <-e.stopSnap:
			return
		case <-t.C:
		}
		for _, p := range e.served() {
			select {
			case <-e.stopSnap:
				return
			default:
			}
			if err := e.snapshot(context.Background(), p); err != nil {
				e.log.Warn("snapshot failed; will try again", "partition", p.id, "err", err)
			}
		}
	}
}

// snapshot writes a snapshot of p if it is due.
func (e *Engine) snapshot(ctx context.Context, p *partition) error {
	durable := p.durable.Load()
	if durable-p.snapshotted.Load() < e.opts.SnapshotEvery || e.failed() {
		return nil
	}
	start := time.Now()
	st, _, _, err := load(ctx, e.store, p.id, e.opts.Limits, durable)
	if err != nil {
		return err
	}
	data := stockd.EncodeState(st)
	if err := e.store.SaveSnapshot(ctx, stockd.Snapshot{Partition: p.id, Position: st.Head(), Data: data}); err != nil {
		return err
	}
	if o := e.opts.Observer; o != nil {
		o.Snapshot(p.id, time.Since(start), len(data))
	}
	p.snapshotted.Store(st.Head())
	e.log.Debug("snapshot written", "partition", p.id, "position", st.Head())
	return nil
}

// Location returns a configured location.
func (e *Engine) Location(ctx context.Context, id string) (stockd.Location, error) {
	if l, ok := e.locs.Load().Locations[id]; ok {
		return l, nil
	}
	if e.refreshLocations(ctx, e.locs.Load()) {
		if l, ok := e.locs.Load().Locations[id]; ok {
			return l, nil
		}
	}
	return stockd.Location{}, stockd.Errorf(stockd.CodeNotFound, "location %q not found", id)
}

// Locations returns every configured location, by id.
func (e *Engine) Locations(ctx context.Context) ([]stockd.Location, error) {
	m := e.locs.Load().Locations
	out := make([]stockd.Location, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b stockd.Location) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, nil
}
