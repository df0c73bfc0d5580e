package engine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
)

// partition owns one partition's state. Three goroutines serve it, a pipeline
// joined by bounded channels:
//
//   - run, the decider, takes everything waiting in the inbox, decides each
//     command in order against the in-memory state, and applies the events at
//     once, so the next command sees them;
//   - appender encodes each batch and starts ONE append for all of it;
//   - complete waits for each batch's append to be durable, in order, and only
//     then replies to its requests and delivers its messages.
//
// With a store that pipelines appends, the decider goes on to the next batch
// while the previous ones are being encoded and synced. Replies, including
// rejections and reads, always wait for every earlier batch: nothing a client
// sees can be undone by a crash.
type partition struct {
	e     *Engine
	id    int
	state *stockd.State

	inbox chan *request
	// Messages from other partitions and recovery commands wait here. The
	// queue is not bounded by InboxSize: it only ever holds work that
	// accepted requests caused, and refusing it would break a saga.
	mu       sync.Mutex
	internal []stockd.Command
	wake     chan struct{}

	appends chan *batch // decider to the engine's writer
	batches chan *batch // writer to completer
	// done is closed when the completer has answered the partition's last
	// batch: the partition has stopped.
	done chan struct{}
	// inflight bounds the batches between the decider and the completer.
	// While the limit is reached the decider does not take requests, so
	// they gather in the inbox and the next batch takes them all: group
	// commit.
	inflight chan struct{}
	// waiters are requests whose answer depends on a saga still running,
	// by reservation id. Only the decider touches it.
	waiters map[string][]*request
	seen    *stockd.Catalog
	// resent is when the decider last asked the state for the saga
	// messages that are overdue (Options.Dynamic).
	resent time.Time

	durable     atomic.Uint64
	snapshotted atomic.Uint64
	// held is state.Held() as of the last batch decided, for metrics.
	held atomic.Int64
	// adm measures how fast the partition drains its queue and admits
	// requests by the wait they would have.
	adm admission
}

// request is one command or read waiting for a partition.
type request struct {
	cmd stockd.Command
	// result, when set, stores the typed answer for the caller, which
	// reads it after the reply, once the command is decided and applied
	// (or found to repeat one); its error is the command's.
	result answerer
	// query, when set, makes the request a read: it is called on the
	// state in the partition's order.
	query func(*stockd.State) error
	actor string
	claim *claim
	// known, when set, is the key of an entity the registry says this
	// partition holds: the command repeats it or acts on it. If the state
	// no longer knows it, its retirement is being written, and the
	// command is answered from the retired record instead (errRetired).
	known  stockd.Key
	replay bool // set while waiting: the command was a repeat
	stop   bool // the engine is closing
	done   chan reply
}

// requests are recycled: a request and its reply channel cost two
// allocations per command otherwise.
var requests = sync.Pool{New: func() any { return &request{done: make(chan reply, 1)} }}

func newRequest() *request { return requests.Get().(*request) }

// recycle returns a request whose reply has been received to the pool.
func (r *request) recycle() {
	*r = request{done: r.done}
	requests.Put(r)
}

type reply struct {
	req     *request
	created bool
	err     error
}

// batch is what one decider round produced.
type batch struct {
	partition int
	part      *partition
	// last marks the batch a stopping partition sends after all others:
	// its completer stops there.
	last     bool
	events   []stockd.Event
	keys     []stockd.KeyRecord
	retired  []stockd.RetiredRecord
	messages []stockd.Message
	replies  []reply
	expected uint64 // the head the batch's append expects
	head     uint64
	started  time.Time
	wait     func() error
	locs     *stockd.Catalog // set when this batch changed the catalog (locations, bundles)
	// For admission: how many requests and internal commands the decider
	// took for this batch, when, and whether they had waited for room.
	taken      int
	takenAt    int64
	backlogged bool
}

func newPartition(e *Engine, id int, st *stockd.State) *partition {
	p := &partition{
		e:        e,
		id:       id,
		state:    st,
		inbox:    make(chan *request, e.opts.InboxSize),
		wake:     make(chan struct{}, 1),
		appends:  e.writes,
		batches:  make(chan *batch, e.opts.Pipeline),
		inflight: make(chan struct{}, e.opts.Pipeline),
		waiters:  make(map[string][]*request),
		seen:     e.locs.Load(),
		done:     make(chan struct{}),
	}
	p.durable.Store(st.Head())
	p.held.Store(int64(st.Held()))
	p.adm.maxBatch, p.adm.pipeline = int64(e.opts.MaxBatch), int64(e.opts.Pipeline)
	return p
}

// start runs the partition's decider and completer. The caller has counted
// it in the engine's running partitions.
func (p *partition) start() {
	go p.run()
	go p.complete()
}

// post queues an internal command for this partition.
func (p *partition) post(c stockd.Command) {
	p.mu.Lock()
	p.internal = append(p.internal, c)
	p.mu.Unlock()
	p.signal()
}

func (p *partition) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is the decider loop.
func (p *partition) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	p.arm(timer)
	reqs := make([]*request, 0, 64)
	for {
		reqs = reqs[:0]
		// Wait for room in the pipeline. Requests that were waiting
		// meanwhile make this batch a measure of the partition's capacity.
		backlogged := false
		select {
		case p.inflight <- struct{}{}:
		default:
			p.inflight <- struct{}{}
			backlogged = len(p.inbox) > 0
		}
		select {
		case r := <-p.inbox:
			reqs = append(reqs, r)
		case <-p.wake:
		case <-timer.C:
		}
	drain:
		for len(reqs) < p.e.opts.MaxBatch {
			select {
			case r := <-p.inbox:
				reqs = append(reqs, r)
			default:
				break drain
			}
		}
		stopping := false
		if n := len(reqs); n > 0 && reqs[n-1].stop {
			// Close sends the stop request after it has shut the gate,
			// so it is always the last request this partition sees.
			reqs, stopping = reqs[:n-1], true
		}
		backlogged = backlogged || len(reqs) >= p.e.opts.MaxBatch
		if p.e.failed() {
			b := &batch{partition: p.id, part: p}
			p.take(b, len(reqs), 0, backlogged)
			for _, r := range reqs {
				b.reply(r, false, errFailed)
			}
			p.appends <- b
		} else {
			p.appends <- p.decide(reqs, backlogged)
		}
		if stopping {
			p.drop()
			p.appends <- &batch{partition: p.id, part: p, last: true}
			return
		}
		p.arm(timer)
	}
}

// arm sets the timer for the next deadline in the state, or, with sagas
// outstanding between nodes, for the next look at what is overdue.
func (p *partition) arm(t *time.Timer) {
	at, ok := p.state.NextDeadline()
	if p.e.opts.Dynamic && p.state.SagasOutstanding() > 0 {
		if next := p.resent.Add(p.e.opts.SagaResend); !ok || next.Before(at) {
			at, ok = next, true
		}
	}
	if !ok {
		t.Stop()
		return
	}
	t.Reset(max(at.Sub(p.e.opts.Now()), 0))
}

// drop answers the requests still waiting on sagas when the engine closes.
// Their sagas finish after the next start.
func (p *partition) drop() {
	if len(p.waiters) == 0 {
		return
	}
	p.inflight <- struct{}{}
	b := &batch{partition: p.id, part: p}
	p.take(b, 0, 0, false)
	for id, ws := range p.waiters {
		for _, w := range ws {
			b.reply(w, false, errClosed)
		}
		delete(p.waiters, id)
	}
	p.appends <- b
}

// take records in b, and tells admission, that the decider took n requests
// and internal more commands for it.
func (p *partition) take(b *batch, n, internal int, backlogged bool) {
	b.taken, b.takenAt, b.backlogged = n+internal, p.e.opts.clock(), backlogged
	p.adm.took(n, b.takenAt)
}

// decide decides a batch and starts its append.
func (p *partition) decide(reqs []*request, backlogged bool) *batch {
	now := p.e.opts.Now()
	st := p.state
	if l := p.e.locs.Load(); p.id != stockd.LocationPartition && l != p.seen {
		st.SetCatalog(*l)
		p.seen = l
	}
	p.mu.Lock()
	internal := p.internal
	p.internal = nil
	p.mu.Unlock()
	n := len(reqs) + len(internal)
	b := &batch{
		partition: p.id,
		part:      p,
		expected:  st.Head(),
		events:    make([]stockd.Event, 0, n),
		replies:   make([]reply, 0, len(reqs)),
	}
	p.take(b, len(reqs), len(internal), backlogged)
	for _, c := range internal {
		p.fire(b, now)
		p.apply(b, c, nil, now)
	}
	for _, r := range reqs {
		p.fire(b, now)
		if r.query != nil {
			b.reply(r, false, r.query(st))
			continue
		}
		p.apply(b, r.cmd, r, now)
	}
	p.fire(b, now)
	if p.e.opts.Dynamic && now.Sub(p.resent) >= p.e.opts.SagaResend && st.SagasOutstanding() > 0 {
		// Sent with this batch's messages, once it is durable: then so
		// is everything the state says.
		p.resent = now
		b.messages = append(b.messages, st.Overdue(now, p.e.opts.SagaResend)...)
	}
	b.head = st.Head()
	p.held.Store(int64(st.Held()))
	p.adm.decided(b.taken, p.e.opts.clock()-b.takenAt)
	if o := p.e.opts.Observer; o != nil && len(reqs)+len(internal) > 0 {
		o.Batch(p.id, len(reqs)+len(internal), len(b.events))
	}
	return b
}

// fire carries out whatever is due: expiries of holds and lots.
func (p *partition) fire(b *batch, now time.Time) {
	due := p.state.Due(now)
	if len(due) == 0 {
		return
	}
	before := len(b.events)
	for _, c := range due {
		p.apply(b, c, nil, now)
	}
	if o := p.e.opts.Observer; o != nil {
		holds, lots := 0, 0
		for _, ev := range b.events[before:] {
			switch d := ev.Data.(type) {
			case stockd.ReservationReleased:
				if d.Reason == stockd.ReleaseExpired {
					holds++
				}
			case stockd.LotExpired:
				lots++
			}
		}
		o.Expired(p.id, holds, lots)
	}
}

// apply decides one command, applies its events and records its answer.
func (p *partition) apply(b *batch, cmd stockd.Command, r *request, now time.Time) {
	st := p.state
	if r != nil && r.known.ID != "" && !st.Knows(r.known) {
		b.reply(r, false, errRetired)
		return
	}
	d, err := st.Decide(cmd, now)
	if err != nil {
		if r != nil {
			b.reply(r, false, err)
		} else {
			p.e.log.Error("internal command rejected", "partition", p.id, "command", fmt.Sprintf("%T", cmd), "err", err)
		}
		return
	}
	if len(d.Events) > 0 {
		actor := ""
		if r != nil {
			actor = r.actor
		}
		for i := range d.Events {
			d.Events[i].Actor = actor
			if err := st.Apply(d.Events[i]); err != nil {
				// Decide produced an event Apply refuses: the state can no
				// longer be trusted, so stop rather than write it.
				p.e.fail(fmt.Errorf("partition %d: applying a decided event: %w", p.id, err))
				return
			}
			if _, ok := (stockd.Catalog{}).Learn(d.Events[i].Data); ok {
				l := st.Catalog()
				b.locs = &l
			}
		}
		b.events = append(b.events, d.Events...)
		if p.e.keys {
			b.keys = append(b.keys, d.Keys...)
		}
		b.retired = append(b.retired, d.Retired...)
	}
	b.messages = append(b.messages, d.Messages...)
	for _, res := range d.Resolved {
		for _, w := range p.waiters[res.Reservation] {
			if res.Err != nil {
				b.reply(w, false, res.Err)
				continue
			}
			b.reply(w, !w.replay, w.answer(st))
		}
		delete(p.waiters, res.Reservation)
	}
	if r == nil {
		return
	}
	if d.Wait != "" {
		r.replay = d.Replay
		p.waiters[d.Wait] = append(p.waiters[d.Wait], r)
		return
	}
	b.reply(r, !d.Replay, r.answer(st))
}

// answer stores the typed answer to the request's command, if its caller
// asked for one.
func (r *request) answer(st *stockd.State) error {
	if r.result == nil {
		return nil
	}
	return r.result.store(st)
}

func (b *batch) reply(r *request, created bool, err error) {
	b.replies = append(b.replies, reply{req: r, created: created, err: err})
}

// complete is the completer loop: it makes batches durable in order, then
// acknowledges them.
func (p *partition) complete() {
	for b := range p.batches {
		if b.last {
			close(p.done)
			p.e.running.Done()
			return
		}
		if b.wait != nil {
			if err := b.wait(); err != nil {
				p.e.fail(fmt.Errorf("partition %d: append at %d: %w", p.id, b.head, err))
			} else if o := p.e.opts.Observer; o != nil {
				o.Appended(p.id, time.Since(b.started))
			}
		}
		// Admission counts the batch out before its replies go: a caller
		// that sends its next request at once must not find its last one
		// still counted ahead of it.
		p.adm.done(b.taken, b.takenAt, p.e.opts.clock(), b.backlogged)
		if p.e.failed() {
			for _, r := range b.replies {
				p.e.reg.settle(r.req.claim, false)
				r.req.done <- reply{err: errFailed}
			}
			<-p.inflight
			continue
		}
		p.durable.Store(b.head)
		if p.e.opts.OnDurable != nil && len(b.events) > 0 {
			p.e.opts.OnDurable(p.id)
		}
		if b.locs != nil {
			p.e.locs.Store(b.locs)
		}
		if len(b.retired) > 0 {
			// Durable now: the retired ids are answered from the store
			// from here on, and the registry forgets them.
			p.e.retired.Store(true)
			for _, rec := range b.retired {
				p.e.reg.forget(stockd.ParseKey(rec.Key))
			}
			if o := p.e.opts.Observer; o != nil {
				o.Retired(p.id, len(b.retired))
			}
		}
		for _, m := range b.messages {
			p.e.deliver(m)
		}
		o := p.e.opts.Observer
		for _, r := range b.replies {
			p.e.reg.settle(r.req.claim, r.err == nil)
			if o != nil && r.req.cmd != nil {
				o.Decided(p.id, r.req.cmd, r.created, codeOf(r.err))
			}
			r.req.done <- r
		}
		<-p.inflight
	}
}

// codeOf returns the code of a command's error without the cost of
// errors.As in the common case: the engine's refusals are *stockd.Error.
func codeOf(err error) stockd.Code {
	if e, ok := err.(*stockd.Error); ok {
		return e.Code
	}
	return stockd.ErrorCode(err)
}
