// Package intake takes warehouse and admin commands — receipts,
// adjustments, counts and transfers — asynchronously, so that they never
// slow checkout: a command is acknowledged (202) once it is durably queued in
// the store's Records, and one worker applies the queue in order through the
// service at the pace the service takes. Commands also arrive from a NATS
// JetStream work queue (see Consumer). Application is at least once and
// idempotent: every command carries the id of what it creates (a receipt id,
// say), so applying it twice, after a crash or a redelivery, is a replay.
//
// Bounds: at most Options.MaxQueued commands wait (more are refused with 503
// overloaded); a finished command's status is kept for Options.Retain, then
// forgotten (its effect is not: a repeat is still a replay in the engine).
//
// In a cluster (Options.Live set) every node runs a Queue over the shared
// Records. A command is applied by the node that queued it, whose id its
// record keeps; every Options.AdoptEvery each node adopts the commands still
// queued by nodes no longer live (crashed, or stopped for good), so a dead
// node's queue is applied by the others. Order: each node numbers the
// commands it queues (Seq) with a counter of its own, so submission order is
// kept per node that queued, not across nodes; an adopting node takes a dead
// node's commands in that node's order. Wait sees a command finish whichever
// node applies it.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// Kind is the kind of Records the commands are kept under, keyed by command
// id.
const Kind = "intake/commands"

// Defaults of Options.
const (
	DefaultRetain     = 24 * time.Hour
	DefaultMaxQueued  = 10000
	DefaultAdoptEvery = 2 * time.Second
)

// waitPoll is how often Wait reads a command's record, in a cluster, when
// the command is not queued on this node: another node applies it, and
// nothing here is told when it is done.
const waitPoll = 100 * time.Millisecond

// Options configure a Queue.
type Options struct {
	// Service applies the commands.
	Service stockd.Service
	// Records keeps the commands, durably.
	Records stockd.Records
	// Limits validate a command before it is queued, as the engine
	// would; default stockd.DefaultLimits.
	Limits stockd.Limits
	// Problem shows a refusal as the synchronous route would; default a
	// problem with the error's code and message.
	Problem func(error) stockd.CommandProblem
	// Retain is how long a finished command's status is kept; default
	// 24 h.
	Retain time.Duration
	// MaxQueued bounds the commands waiting; default 10,000.
	MaxQueued int
	// MaxBackoff bounds the pause before a command the service asked to
	// retry is tried again; default 5 s.
	MaxBackoff time.Duration
	// Paused leaves the worker stopped: commands are queued, not applied
	// (for maintenance, and for tests of restarts).
	Paused bool
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics counts commands; nil counts nothing.
	Metrics *Metrics

	// Node is this node's id in the cluster, required with Live; the
	// commands it queues are recorded as its own.
	Node string
	// Live returns the ids of the nodes live now (this one among them or
	// not: this node counts as live anyway). Nil: no cluster — Open loads
	// every command still queued and nothing is adopted. Set: Open loads
	// only this node's own queued commands, and every AdoptEvery the
	// commands still queued by nodes Live does not list, or by no node
	// (recorded before nodes were), are adopted. A Paused queue adopts
	// nothing. When Live fails, that round adopts nothing.
	Live func(ctx context.Context) (map[string]bool, error)
	// AdoptEvery is the pause between looks for commands to adopt;
	// default 2 s. Used only with Live.
	AdoptEvery time.Duration
}

// record is a command as stored.
type record struct {
	stockd.QueuedCommand
	Fingerprint string `json:"fingerprint"`
	Actor       string `json:"actor,omitempty"`
	// Seq numbers the commands Node queued, in submission order; each
	// node counts its own.
	Seq uint64 `json:"seq"`
	// Node is the node that queued the command, or the one that adopted
	// it since; empty in records from before clusters (nobody's: adopted
	// by the first node that looks).
	Node string `json:"node,omitempty"`
}

// Queue is the intake of commands and its worker.
type Queue struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	pending []string // ids, in order of submission
	seq     uint64
	waiters map[string][]chan struct{}
	wake    chan struct{}

	stop context.CancelFunc
	ctx  context.Context
	done sync.WaitGroup
}

// Open loads the commands still queued in Records, in the order they were
// submitted, and starts the worker on them and on every command submitted
// from now on.
func Open(ctx context.Context, opts Options) (*Queue, error) {
	if opts.Limits == (stockd.Limits{}) {
		opts.Limits = stockd.DefaultLimits
	}
	if opts.Problem == nil {
		opts.Problem = func(err error) stockd.CommandProblem {
			c := stockd.ErrorCode(err)
			return stockd.CommandProblem{Type: "/problems/" + string(c), Title: string(c), Code: c, Detail: err.Error()}
		}
	}
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = DefaultMaxQueued
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Live != nil && opts.Node == "" {
		return nil, errors.New("intake: Options.Live needs Options.Node, this node's id")
	}
	if opts.AdoptEvery <= 0 {
		opts.AdoptEvery = DefaultAdoptEvery
	}
	q := &Queue{opts: opts, log: opts.Logger, waiters: map[string][]chan struct{}{}, wake: make(chan struct{}, 1)}
	var queued []record
	if err := q.scan(ctx, func(r record) {
		q.seq = max(q.seq, r.Seq)
		// In a cluster only this node's own; the rest are adopted, or
		// applied by the live nodes that queued them.
		if r.Status == stockd.CommandQueued && (opts.Live == nil || (opts.Node != "" && r.Node == opts.Node)) {
			queued = append(queued, r)
		}
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(queued, bySubmission)
	for _, r := range queued {
		q.pending = append(q.pending, r.ID)
	}
	if len(queued) > 0 {
		q.log.Info("intake: commands queued before the restart", "commands", len(queued))
	}
	opts.Metrics.setDepth(len(q.pending))
	q.ctx, q.stop = context.WithCancel(context.WithoutCancel(ctx))
	if !opts.Paused {
		q.done.Add(1)
		go q.work()
	}
	q.done.Add(1)
	go q.sweepEvery(min(opts.Retain/4, time.Minute))
	if opts.Live != nil && !opts.Paused {
		q.done.Add(1)
		go q.adoptEvery(opts.AdoptEvery)
	}
	return q, nil
}

// bySubmission orders records by Seq, then id: submission order among the
// commands of one node.
func bySubmission(a, b record) int {
	if c := cmpUint(a.Seq, b.Seq); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Close stops the worker after the command it is applying, if any. Commands
// still queued stay in Records and are applied after the next Open — in a
// cluster, by the node that adopts them once this one is no longer live.
func (q *Queue) Close() {
	q.stop()
	q.done.Wait()
}

// scan calls fn with every stored command, in id order.
func (q *Queue) scan(ctx context.Context, fn func(record)) error {
	after := ""
	for {
		recs, err := q.opts.Records.ListRecords(ctx, Kind, after, 1000)
		if err != nil {
			return err
		}
		for _, r := range recs {
			var rec record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				q.log.Error("intake: a stored command does not decode; skipped", "id", r.Key, "err", err)
				continue
			}
			fn(rec)
		}
		if len(recs) < 1000 {
			return nil
		}
		after = recs[len(recs)-1].Key
	}
}

// SubmitCommand implements stockd.Intake: the command is checked as its
// synchronous route would check it, then durably stored before it is
// acknowledged.
func (q *Queue) SubmitCommand(ctx context.Context, cmd stockd.SubmitCommand) (stockd.QueuedCommand, bool, error) {
	req, err := api.DecodeCommand(cmd.Type, cmd.Body)
	if err != nil {
		return stockd.QueuedCommand{}, false, err
	}
	if err := validate(req, q.opts.Limits); err != nil {
		return stockd.QueuedCommand{}, false, err
	}
	body, err := json.Marshal(req) // one encoding per command, whatever was sent
	if err != nil {
		return stockd.QueuedCommand{}, false, err
	}
	sum := sha256.Sum256(append([]byte(string(cmd.Type)+"\n"), body...))
	fp := hex.EncodeToString(sum[:])
	id := cmd.ID
	if id == "" {
		id = "cmd-" + fp[:24]
	}
	if err := stockd.CheckName("command id", id); err != nil {
		return stockd.QueuedCommand{}, false, err
	}
	if prev, ok, err := q.get(ctx, id); err != nil || ok {
		return q.repeat(prev, ok, fp, err)
	}
	q.mu.Lock()
	if len(q.pending) >= q.opts.MaxQueued {
		q.mu.Unlock()
		return stockd.QueuedCommand{}, false, &stockd.Error{Code: stockd.CodeOverloaded, RetryAfter: 5 * time.Second,
			Message: fmt.Sprintf("%d commands are waiting to be applied, the most the intake keeps; retry later", q.opts.MaxQueued)}
	}
	q.seq++
	seq := q.seq
	q.mu.Unlock()
	source := cmd.Source
	if source == "" {
		source = "http"
	}
	rec := record{
		QueuedCommand: stockd.QueuedCommand{ID: id, Type: cmd.Type, Status: stockd.CommandQueued, Command: body, Source: source, SubmittedAt: q.opts.Now().UTC()},
		Fingerprint:   fp, Actor: stockd.ActorFrom(ctx), Seq: seq, Node: q.opts.Node,
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return stockd.QueuedCommand{}, false, err
	}
	created, err := q.opts.Records.CreateRecord(ctx, Kind, id, b)
	if err != nil {
		return stockd.QueuedCommand{}, false, err
	}
	if !created { // a concurrent submission of the same id won
		prev, ok, err := q.get(ctx, id)
		return q.repeat(prev, ok, fp, err)
	}
	q.mu.Lock()
	q.pending = append(q.pending, id)
	depth := len(q.pending)
	q.mu.Unlock()
	q.opts.Metrics.count(stockd.CommandQueued)
	q.opts.Metrics.setDepth(depth)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return rec.QueuedCommand, true, nil
}

// repeat answers a submission of an id already stored.
func (q *Queue) repeat(prev record, ok bool, fp string, err error) (stockd.QueuedCommand, bool, error) {
	if err != nil {
		return stockd.QueuedCommand{}, false, err
	}
	if !ok {
		return stockd.QueuedCommand{}, false, stockd.Errorf(stockd.CodeUnavailable, "the command was removed while it was submitted; submit it again")
	}
	if prev.Fingerprint != fp {
		return stockd.QueuedCommand{}, false, stockd.Errorf(stockd.CodeIdempotencyMismatch, "command id %q was already used with a different request", prev.ID)
	}
	return prev.QueuedCommand, false, nil
}

// validate checks a command as the engine will, so that bad input is
// refused at once rather than queued to fail.
func validate(req any, lim stockd.Limits) error {
	switch r := req.(type) {
	case *api.ReceiptRequest:
		return r.Command().Validate(lim)
	case *api.AdjustmentRequest:
		return r.Command().Validate(lim)
	case *api.CountRequest:
		c, err := r.Command()
		if err != nil {
			return err
		}
		return c.Validate(lim)
	case *api.TransferRequest:
		return r.Command().Validate(lim)
	}
	return stockd.Errorf(stockd.CodeInvalid, "unknown command")
}

// GetCommand implements stockd.Intake.
func (q *Queue) GetCommand(ctx context.Context, id string) (stockd.QueuedCommand, error) {
	if err := stockd.CheckName("command id", id); err != nil {
		return stockd.QueuedCommand{}, err
	}
	r, ok, err := q.get(ctx, id)
	if err != nil {
		return stockd.QueuedCommand{}, err
	}
	if !ok {
		return stockd.QueuedCommand{}, stockd.Errorf(stockd.CodeNotFound, "command %q not found", id)
	}
	return r.QueuedCommand, nil
}

// Wait blocks until the command id is applied or failed, or ctx is done,
// and returns it. A command not submitted yet is waited for too. In a
// cluster a command not queued on this node — queued on another, adopted by
// another, or not submitted yet — is waited for by reading its record every
// 100 ms, since it may finish on any node; one queued here is woken when
// this node's worker finishes it.
func (q *Queue) Wait(ctx context.Context, id string) (stockd.QueuedCommand, error) {
	for {
		ch := make(chan struct{})
		q.mu.Lock()
		q.waiters[id] = append(q.waiters[id], ch)
		poll := q.opts.Live != nil && !slices.Contains(q.pending, id)
		q.mu.Unlock()
		c, err := q.GetCommand(ctx, id)
		if (err != nil && !stockd.IsCode(err, stockd.CodeNotFound)) || (err == nil && c.Status != stockd.CommandQueued) {
			q.dropWaiter(id, ch)
			return c, err
		}
		var tick <-chan time.Time
		var t *time.Timer
		if poll {
			t = time.NewTimer(waitPoll)
			tick = t.C
		}
		select {
		case <-ch:
		case <-tick:
			q.dropWaiter(id, ch)
		case <-ctx.Done():
			q.dropWaiter(id, ch)
			if t != nil {
				t.Stop()
			}
			return c, ctx.Err()
		}
		if t != nil {
			t.Stop()
		}
	}
}

func (q *Queue) dropWaiter(id string, ch chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ws := q.waiters[id]
	if i := slices.Index(ws, ch); i >= 0 {
		ws = slices.Delete(ws, i, i+1)
	}
	if len(ws) == 0 {
		delete(q.waiters, id)
	} else {
		q.waiters[id] = ws
	}
}

func (q *Queue) get(ctx context.Context, id string) (record, bool, error) {
	b, ok, err := q.opts.Records.GetRecord(ctx, Kind, id)
	if err != nil || !ok {
		return record{}, false, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, false, fmt.Errorf("intake: command %q does not decode: %w", id, err)
	}
	return r, true, nil
}

// work applies the queue in order, one command at a time: the intake never
// takes more of the engine than one caller does.
func (q *Queue) work() {
	defer q.done.Done()
	for {
		q.mu.Lock()
		var id string
		if len(q.pending) > 0 {
			id = q.pending[0]
		}
		q.mu.Unlock()
		if id == "" {
			select {
			case <-q.ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		if !q.apply(id) {
			return // stopping: the command stays queued
		}
		q.finish(id)
	}
}

// finish takes id, done, off the head of the queue and wakes those waiting
// for it, in one step: whoever is woken sees the queue without it.
func (q *Queue) finish(id string) {
	q.mu.Lock()
	if len(q.pending) > 0 && q.pending[0] == id {
		q.pending = q.pending[1:]
	}
	depth := len(q.pending)
	for _, ch := range q.waiters[id] {
		close(ch)
	}
	delete(q.waiters, id)
	q.mu.Unlock()
	q.opts.Metrics.setDepth(depth)
}

// apply applies one command until it is applied or refused for good, and
// records the outcome. It returns false when the queue is stopping first.
func (q *Queue) apply(id string) bool {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if q.ctx.Err() != nil {
			return false
		}
		rec, ok, err := q.get(q.ctx, id)
		if err == nil && (!ok || rec.Status != stockd.CommandQueued) {
			return true // finished, or swept, already
		}
		var res any
		var created bool
		if err == nil {
			res, created, err = q.call(stockd.WithActor(q.ctx, rec.Actor), rec)
		}
		code := stockd.ErrorCode(err)
		switch {
		case err == nil:
			rec.Result, err = json.Marshal(res)
			rec.Status, rec.Created = stockd.CommandApplied, created
		case q.ctx.Err() != nil:
			return false
		case code.Retryable() || (code == stockd.CodeInternal && attempt < 10):
			q.log.Warn("intake: a command is to be tried again", "id", id, "attempt", attempt, "err", err)
			t := time.NewTimer(wait)
			select {
			case <-q.ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
			wait = min(wait*2, q.opts.MaxBackoff)
			continue
		default:
			p := q.opts.Problem(err)
			rec.Status, rec.Problem = stockd.CommandFailed, &p
			err = nil
		}
		if err != nil { // the result does not encode: a bug, recorded as such
			p := q.opts.Problem(err)
			rec.Status, rec.Problem, rec.Result = stockd.CommandFailed, &p, nil
		}
		now := q.opts.Now().UTC()
		rec.FinishedAt, rec.Attempts = &now, rec.Attempts+attempt
		if err := q.put(rec); err != nil {
			// The outcome is in the engine; only its record is lost
			// for now. Trying again replays it.
			q.log.Error("intake: recording a command's outcome", "id", id, "err", err)
			t := time.NewTimer(wait)
			select {
			case <-q.ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
			continue
		}
		q.opts.Metrics.count(rec.Status)
		return true
	}
}

// call applies a command through the service.
func (q *Queue) call(ctx context.Context, rec record) (any, bool, error) {
	req, err := api.DecodeCommand(rec.Type, rec.Command)
	if err != nil {
		return nil, false, err
	}
	s := q.opts.Service
	switch r := req.(type) {
	case *api.ReceiptRequest:
		return s.Receive(ctx, r.Command())
	case *api.AdjustmentRequest:
		return s.Adjust(ctx, r.Command())
	case *api.CountRequest:
		c, err := r.Command()
		if err != nil {
			return nil, false, err
		}
		return s.Count(ctx, c)
	case *api.TransferRequest:
		return s.Transfer(ctx, r.Command())
	}
	return nil, false, errors.New("intake: unknown command")
}

func (q *Queue) put(r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return q.opts.Records.PutRecord(context.WithoutCancel(q.ctx), Kind, r.ID, b)
}

// sweepEvery forgets finished commands older than the retention, every
// interval.
func (q *Queue) sweepEvery(interval time.Duration) {
	defer q.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-q.ctx.Done():
			return
		case <-t.C:
			if _, err := q.Sweep(q.ctx); err != nil && q.ctx.Err() == nil {
				q.log.Warn("intake: forgetting old commands", "err", err)
			}
		}
	}
}

// Sweep forgets the commands that finished longer than the retention ago,
// and returns how many it forgot.
func (q *Queue) Sweep(ctx context.Context) (int, error) {
	cutoff := q.opts.Now().Add(-q.opts.Retain)
	var old []string
	if err := q.scan(ctx, func(r record) {
		if r.FinishedAt != nil && r.FinishedAt.Before(cutoff) {
			old = append(old, r.ID)
		}
	}); err != nil {
		return 0, err
	}
	for i, id := range old {
		if err := q.opts.Records.DeleteRecord(ctx, Kind, id); err != nil {
			return i, err
		}
	}
	return len(old), nil
}

// adoptEvery adopts the commands of nodes no longer live, at once and then
// every interval.
func (q *Queue) adoptEvery(interval time.Duration) {
	defer q.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := q.adopt(q.ctx); err != nil && q.ctx.Err() == nil {
			q.log.Warn("intake: adopting the commands of nodes no longer live", "err", err)
		}
		select {
		case <-q.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adopt takes over the commands still queued by nodes that are not live (or
// by no node), not already queued here: each record is rewritten to name
// this node, then the command is queued here, in its node's submission
// order. It returns how many it adopted.
//
// Records have no compare-and-swap, so two live nodes that look at once may
// both adopt a command (each reads it queued before the other's rewrite), and
// a node seen as dead for a moment may still be applying one. Both then apply
// it; application is idempotent (the command's own id makes the second a
// replay), so the stock is booked once. The status record then says what the
// last node to write it saw: applied (or failed, with the same problem), by
// that node, its result the replay's answer — the same receipt, transfer,
// ... — with created false when the replay came last; a waiter may see it
// queued again for a moment before that.
func (q *Queue) adopt(ctx context.Context) (int, error) {
	live, err := q.opts.Live(ctx)
	if err != nil {
		return 0, err
	}
	q.mu.Lock()
	here := make(map[string]bool, len(q.pending))
	for _, id := range q.pending {
		here[id] = true
	}
	q.mu.Unlock()
	orphaned := func(r record) bool {
		return r.Status == stockd.CommandQueued && r.Node != q.opts.Node && (r.Node == "" || !live[r.Node]) && !here[r.ID]
	}
	var found []record
	if err := q.scan(ctx, func(r record) {
		if orphaned(r) {
			found = append(found, r)
		}
	}); err != nil {
		return 0, err
	}
	slices.SortFunc(found, bySubmission)
	adopted := 0
	from := map[string]int{}
	for _, f := range found {
		// Read again just before the rewrite: it may have been
		// adopted, or finished, since the scan.
		r, ok, err := q.get(ctx, f.ID)
		if err != nil {
			return adopted, err
		}
		if !ok || !orphaned(r) || r.Node != f.Node {
			continue
		}
		r.Node = q.opts.Node
		b, err := json.Marshal(r)
		if err != nil {
			return adopted, err
		}
		if err := q.opts.Records.PutRecord(ctx, Kind, r.ID, b); err != nil {
			return adopted, err
		}
		q.mu.Lock()
		q.pending = append(q.pending, r.ID) // adopted ones are queued already: never refused
		depth := len(q.pending)
		q.mu.Unlock()
		q.opts.Metrics.setDepth(depth)
		select {
		case q.wake <- struct{}{}:
		default:
		}
		adopted++
		from[f.Node]++
	}
	if adopted > 0 {
		q.log.Info("intake: adopted the commands of nodes no longer live", "commands", adopted, "nodes", from)
	}
	return adopted, nil
}

// Queued returns the number of commands waiting.
func (q *Queue) Queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}
