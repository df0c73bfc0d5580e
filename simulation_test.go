package stockd

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The simulation drives the core like the engine does, through the cluster
// model, with random valid and invalid commands, random deliveries, random
// durability and random crashes, and checks the invariants after every step.
// In half the sequences the network between partitions is faulty, as between
// nodes: a message may be dropped, delivered twice, or overtaken by later
// ones; the driver then asks every partition for its overdue messages now and
// then (State.Overdue), as the engine does, and before every check of a
// quiet cluster.
// Every sequence is determined by its seed alone; a failure prints the seed
// and the steps that led to it. Reproduce one with
//
//	go test -run TestSimulation -seed=N -v .
//
// (or STOCKD_SIM_SEED=N go test -run TestSimulation .).
var (
	simSeed  = flag.Uint64("seed", 0, "run only the simulation sequence with this seed")
	simBase  = flag.Uint64("sim.base", 1, "seed of the first simulation sequence; 0 picks one at random")
	simCount = flag.Int("sim.n", 0, "number of simulation sequences (default 10000, 1000 with -short)")
	simSteps = flag.Int("sim.steps", 0, "steps per simulation sequence (default 40)")
)

const (
	defaultSimSequences = 10_000
	shortSimSequences   = 1_000
	defaultSimSteps     = 40
)

func TestSimulation(t *testing.T) {
	steps := defaultSimSteps
	if *simSteps > 0 {
		steps = *simSteps
	}
	seed := *simSeed
	if env := os.Getenv("STOCKD_SIM_SEED"); env != "" && seed == 0 {
		v, err := strconv.ParseUint(env, 10, 64)
		if err != nil {
			t.Fatalf("STOCKD_SIM_SEED=%q: %v", env, err)
		}
		seed = v
	}
	if seed != 0 {
		var stats simStats
		trace, err := runSequence(t, seed, steps, &stats, true)
		if err != nil {
			t.Fatalf("%v\ntrace:\n%s", err, trace)
		}
		if testing.Verbose() {
			t.Logf("seed %d passed:\n%s", seed, trace)
		}
		return
	}
	n := defaultSimSequences
	if testing.Short() {
		n = shortSimSequences
	}
	if *simCount > 0 {
		n = *simCount
	}
	base := *simBase
	if base == 0 {
		base = rand.Uint64() >> 1
	}
	t.Logf("simulating %d sequences of %d steps, seeds %d..%d", n, steps, base, base+uint64(n)-1)

	var (
		stats  simStats
		next   atomic.Int64
		failed atomic.Bool
		mu     sync.Mutex
		first  string
		wg     sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				seed := base + uint64(i)
				_, err := runSequence(t, seed, steps, &stats, false)
				if err != nil && failed.CompareAndSwap(false, true) {
					trace, again := runSequence(t, seed, steps, &simStats{}, true)
					if again == nil || again.Error() != err.Error() {
						trace += fmt.Sprintf("\n(NOT REPRODUCED with tracing: %v)", again)
					}
					mu.Lock()
					first = fmt.Sprintf("%v\nreproduce: go test -run 'TestSimulation$' -seed=%d -v .\ntrace (last steps):\n%s", err, seed, lastLines(trace, 80))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		t.Fatal(first)
	}
	t.Logf("exercised: %s", &stats)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... %d earlier lines", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// simTB lets the cluster model fail a sequence from a worker goroutine: it
// panics with a simFailure that runSequence recovers.
type simTB struct{ testing.TB }

type simFailure struct{ msg string }

func (simTB) Helper() {}

func (simTB) Fatalf(format string, args ...any) { panic(simFailure{fmt.Sprintf(format, args...)}) }

// runSequence runs one simulated sequence and returns its trace and the first
// broken invariant.
func runSequence(tb testing.TB, seed uint64, steps int, stats *simStats, tracing bool) (trace string, err error) {
	s := newSim(tb, seed)
	s.tracing = tracing
	defer func() { stats.add(s.stats) }()
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(simFailure); ok {
				err = fmt.Errorf("seed %d (P=%d) failed at step %d: %s", seed, s.c.p, s.step, f.msg)
			} else {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				err = fmt.Errorf("seed %d (P=%d) panicked at step %d: %v\n%s", seed, s.c.p, s.step, r, buf)
			}
		}
		trace = s.trace.String()
	}()
	s.run(steps)
	return s.trace.String(), nil
}

var simStart = time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC)

// sim is one simulated sequence.
type sim struct {
	rng *rand.Rand
	c   *cluster
	// tracing records every step in trace. It is off for speed; a failed
	// sequence is run again with it on, which its seed makes identical.
	tracing bool
	skus    []string
	locs    []string
	lots    []string
	trace   strings.Builder
	step    int

	// What the generator has sent, to repeat and reuse.
	receipts  []ReceiveStock
	adjusts   []AdjustStock
	counts    []CountStock
	transfers []TransferStock
	expected  []ExpectReceipt
	reserves  []Reserve
	ids       int
	// held lists the ids of reservations that were accepted, the ones
	// worth extending, committing and releasing.
	held []string

	// The client command being decided, what it was meant to be, and
	// whether its decision is still to be judged (the due timers fired
	// before it are decided first).
	current   Command
	meant     intent
	judging   bool
	decisions int

	// checked is, per partition, the head and crash count at which its
	// invariants were last checked: a partition that has not changed since
	// is not checked again.
	checked [][2]uint64
	crashes uint64

	// availBefore is, for the decision being applied, the available stock
	// of each SKU its events name, as the State it was decided against
	// showed it: the "before" of its stock signals.
	availBefore map[string]int64

	// accepted holds every idempotency key accepted, with the partition
	// and position of the event that accepted it, so that an id accepted
	// twice is caught however the second acceptance came about (a crash
	// takes back only what was not durable).
	accepted map[string][2]uint64

	// faulty says whether messages between partitions may be dropped,
	// duplicated or delayed; overdueAfter is the after the driver passes to
	// State.Overdue.
	faulty       bool
	overdueAfter time.Duration

	// changes are the changes of carts spanning partitions waiting for
	// their outcome, by reservation.
	changes map[string]pendingChange

	// stats counts what the sequence exercised: event types, outcomes of
	// client commands, crashes.
	stats map[string]int
}

// simStats adds up the stats of every sequence of a run.
type simStats struct {
	mu sync.Mutex
	n  map[string]int
}

func (a *simStats) add(m map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	for k, v := range m {
		a.n[k] += v
	}
}

func (a *simStats) String() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(a.n)) {
		fmt.Fprintf(&b, "%s=%d ", k, a.n[k])
	}
	return b.String()
}

// intent says what the generator meant a command to be.
type intent uint8

const (
	meantValid   intent = iota // may still be refused for a domain reason
	meantInvalid               // must be refused as invalid_request
)

func newSim(tb testing.TB, seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := 1 + rng.IntN(3)
	s := &sim{
		rng:      rng,
		c:        newCluster(simTB{tb}, p, simStart),
		locs:     []string{"w1", "w2", "s1", "x"},
		lots:     []string{"L1", "L2", "L3"},
		stats:    map[string]int{},
		accepted: map[string][2]uint64{},
		changes:  map[string]pendingChange{},
	}
	s.c.auto = false
	s.faulty = rng.IntN(2) == 0
	s.overdueAfter = []time.Duration{0, 5 * time.Second, time.Minute}[rng.IntN(3)]
	// Settled entities retire after the default week, or after an hour or
	// two, so that sequences retire much of what they did while it is
	// still being repeated, extended and committed.
	retain := []time.Duration{DefaultLimits.Retain, time.Hour, 2 * time.Hour}[rng.IntN(3)]
	s.c.limits.Retain = retain
	for i := range s.c.states {
		s.c.states[i] = NewState(i, p, s.c.limits)
	}
	// Four SKUs spread over the partitions.
	for i := range 4 {
		s.skus = append(s.skus, skuIn(string(rune('A'+i)), i%p, p))
	}
	s.c.observe = s.observe
	s.c.applied = func(p int, cmd Command, d Decision) {
		for _, e := range d.Events {
			s.stats["event."+e.Type().String()]++
		}
		s.checkSignals(p, cmd, d)
		for _, k := range d.Keys {
			// Per partition: the cluster, unlike the engine, has no
			// registry making ids unique across partitions. A cart
			// spanning partitions claims its key once held everywhere.
			at := strconv.Itoa(p) + "/" + k.Key
			if was, dup := s.accepted[at]; dup {
				s.fail("partition %d: %s accepted again at %d, after it was accepted at %d, by %s", p, k.Key, k.Position, was[1], describe(cmd))
			}
			s.accepted[at] = [2]uint64{uint64(k.Partition), k.Position}
		}
		s.stats["retired"] += len(d.Retired)
		s.checkChangeResolved(p, d)
		if c, ok := cmd.(sagaStep); ok && c.step == 0 && len(d.Events) > 0 {
			s.stats["unwanted-lines-released"]++
		}
	}
	return s
}

func (s *sim) logf(format string, args ...any) {
	if !s.tracing {
		return
	}
	fmt.Fprintf(&s.trace, "%4d +%-9s ", s.step, s.c.now.Sub(simStart).Round(time.Second))
	fmt.Fprintf(&s.trace, format, args...)
	s.trace.WriteByte('\n')
}

func (s *sim) fail(format string, args ...any) {
	panic(simFailure{fmt.Sprintf(format, args...)})
}

func (s *sim) run(steps int) {
	s.logf("P=%d skus=%v", s.c.p, s.skus)
	// The locations configured, but the last, and some stock to start
	// with, sent like any other command. Commands naming the last location
	// are refused until a later step configures it, if one does.
	for _, loc := range s.locs[:len(s.locs)-1] {
		s.send(ConfigureLocation{ID: loc, Kind: KindWarehouse, Priority: s.rng.IntN(4), Region: s.pick([]string{"", "eu", "us"})}, meantValid)
	}
	for _, sku := range s.skus {
		for range 1 + s.rng.IntN(2) {
			c := ReceiveStock{ID: s.newID("r"), SKU: sku, Location: s.loc(), Quantity: int64(5 + s.rng.IntN(15))}
			if s.chance(40) {
				c.Lot, c.BestBefore = s.pick(s.lots), s.bestBefore()
			}
			s.receipts = append(s.receipts, c)
			s.send(c, meantValid)
		}
	}
	s.c.flushAll()
	for s.step = 1; s.step <= steps; s.step++ {
		s.advance()
		s.c.tickAll()
		s.checkDeadlines()
		switch r := s.rng.IntN(100); {
		case r < 55:
			s.send(s.generate())
		case r < 72:
			s.deliverOne()
		case r < 75:
			s.overdue(s.overdueAfter)
		case r < 91:
			p := s.rng.IntN(s.c.p)
			s.c.flush(p)
			s.logf("flush %d", p)
			if s.rng.IntN(3) == 0 && s.c.snapshot(p) {
				s.logf("snapshot %d at %d", p, s.c.states[p].Head())
			}
		case r < 99:
			s.logf("quiesce")
			s.settle()
			s.checkQuiescent()
		default:
			s.crash()
		}
		s.checkChanged()
	}
	// Finish: deliver everything, then let every hold and lot expire.
	s.logf("final quiesce")
	s.settle()
	s.checkChanged()
	s.checkQuiescent()
	s.c.now = s.c.now.Add(DefaultLimits.MaxTTL + 24*time.Hour)
	s.logf("final expiry at +%s", s.c.now.Sub(simStart))
	s.c.tickAll()
	s.settle()
	s.checkDeadlines()
	s.checkQuiescent()
	s.checked = nil
	s.checkChanged()
	for p, st := range s.c.states {
		for _, id := range st.SKUs() {
			v, _ := st.SKUView(id)
			if v.Reserved != 0 {
				s.fail("partition %d: %s still has %d reserved after every deadline", p, id, v.Reserved)
			}
		}
		for id, r := range st.reservations {
			if r.status == StatusHeld || r.status == StatusPending {
				s.fail("partition %d: reservation %s is %s after every deadline", p, id, r.status)
			}
		}
	}
	// Then let everything retire, crash, and send every command again:
	// each is answered as it was before (a replay, or a mismatch for a
	// body that differs from the first), none is accepted anew.
	s.c.now = s.c.now.Add(s.c.limits.Retain + time.Hour)
	s.logf("final retirement at +%s", s.c.now.Sub(simStart))
	s.c.tickAll()
	s.settle()
	for p, st := range s.c.states {
		if n := len(st.records) + len(st.transfers) + len(st.reservations) - st.Held(); n > 0 && s.c.limits.Retain > 0 {
			for _, t := range st.transfers {
				if t.arrivedAt.IsZero() {
					n-- // still in transit: live
				}
			}
			if n > 0 {
				s.fail("partition %d: %d settled entities left after the retention", p, n)
			}
		}
	}
	s.crash()
	for _, c := range s.receipts {
		s.send(c, meantValid)
	}
	for _, c := range s.adjusts {
		s.send(c, meantValid)
	}
	for _, c := range s.counts {
		s.send(c, meantValid)
	}
	for _, c := range s.transfers {
		s.send(c, meantValid)
	}
	for _, c := range s.reserves {
		s.send(c, meantValid)
	}
	s.settle()
	s.checked = nil
	s.checkChanged()
	s.checkSignalLogs()
}

// advance moves the clock by a random amount.
func (s *sim) advance() {
	var d time.Duration
	switch r := s.rng.IntN(1000); {
	case r < 450:
		d = 0
	case r < 800:
		d = time.Duration(s.rng.IntN(60)) * time.Second
	case r < 950:
		d = time.Duration(1+s.rng.IntN(5)) * time.Minute
	case r < 985:
		d = time.Duration(5+s.rng.IntN(55)) * time.Minute
	default:
		d = time.Duration(12+s.rng.IntN(24)) * time.Hour
	}
	// Sometimes land exactly on a deadline, to test the boundary.
	if s.rng.IntN(8) == 0 {
		for _, st := range s.c.states {
			if at, ok := st.NextDeadline(); ok && at.After(s.c.now) && at.Sub(s.c.now) < time.Hour {
				d = at.Sub(s.c.now)
				break
			}
		}
	}
	s.c.now = s.c.now.Add(d)
}

// overdue sends what every partition's Overdue returns, as the engine's
// periodic call does: like a decision's messages, once what the state
// holds is durable.
func (s *sim) overdue(after time.Duration) int {
	n := 0
	for p, st := range s.c.states {
		for _, m := range st.Overdue(s.c.now, after) {
			s.logf("overdue %d->%d %s", p, m.To, describe(m.Command))
			s.c.outbox[p] = append(s.c.outbox[p], m)
			n++
		}
	}
	s.stats["overdue"] += n
	return n
}

// settle delivers everything in flight over a network that loses nothing,
// and asks for what is overdue until nothing is: what a faulty network lost
// is sent again. Lines a participant holds for a cart its home no longer
// wants, whose answer was lost, are asked about only once their deadline has
// passed (see State.Overdue): they may remain (see checkQuiescent).
func (s *sim) settle() {
	for range 100 {
		s.c.tickAll()
		s.c.quiesce()
		if s.overdue(0) == 0 {
			return
		}
	}
	s.fail("overdue messages never stop")
}

func (s *sim) deliverOne() {
	var chans [][2]int
	for from := range s.c.queues {
		for to, q := range s.c.queues[from] {
			if len(q) > 0 {
				chans = append(chans, [2]int{from, to})
			}
		}
	}
	if len(chans) == 0 {
		s.logf("deliver: nothing in flight")
		return
	}
	ch := chans[s.rng.IntN(len(chans))]
	from, to := ch[0], ch[1]
	head := s.c.queues[from][to][0]
	if s.faulty {
		switch r := s.rng.IntN(100); {
		case r < 15:
			s.logf("DROP %d->%d %s", from, to, describe(head))
			s.stats["net.drop"]++
			s.c.drop(from, to)
			return
		case r < 30:
			s.logf("DELAY %d->%d %s", from, to, describe(head))
			s.stats["net.delay"]++
			s.c.inject(from, to, s.c.drop(from, to))
			return
		case r < 45:
			s.logf("deliver %d->%d %s, and again later", from, to, describe(head))
			s.stats["net.duplicate"]++
			s.c.inject(from, to, head)
			s.c.deliver(from, to)
			return
		}
	}
	s.logf("deliver %d->%d %s", from, to, describe(head))
	s.c.deliver(from, to)
}

func (s *sim) crash() {
	snaps := s.rng.IntN(2) == 0
	s.logf("CRASH (durable heads %v, snapshots %v)", s.c.durable, snaps)
	s.stats["crash"]++
	s.crashes++
	for k, at := range s.accepted {
		if at[1] > uint64(s.c.durable[at[0]]) {
			delete(s.accepted, k) // lost with the crash: may be accepted again
		}
	}
	s.c.crash(func(int) bool { return snaps })
	// A change that was in flight finishes from the log (or was lost with
	// what was not durable); its client's wait died with the crash.
	clear(s.changes)
}

// pendingChange is a change waiting for its outcome: the lines it asked
// for, and those the cart held before.
type pendingChange struct {
	lines  []ReserveLine
	before []ReservationLine
}

// checkChangeResolved checks the outcome of every change decision d
// resolved, once applied in partition p: all or nothing. Made, the cart
// holds the lines asked for; refused for want of stock (or by a cap or a
// customer limit), exactly the lines
// (and allocations) it held before; refused otherwise, it is held no more.
func (s *sim) checkChangeResolved(p int, d Decision) {
	for _, res := range d.Resolved {
		pc, ok := s.changes[res.Reservation]
		if !ok {
			continue
		}
		delete(s.changes, res.Reservation)
		v, _ := s.c.states[p].ReservationView(res.Reservation)
		switch code := ErrorCode(res.Err); code {
		case "":
			s.stats["change.made"]++
			got := make([]ReserveLine, 0, len(v.Lines))
			for _, l := range v.Lines {
				got = append(got, ReserveLine{SKU: l.SKU, Quantity: l.Quantity})
			}
			want := make([]ReserveLine, 0, len(pc.lines))
			for _, l := range pc.lines {
				want = append(want, ReserveLine{SKU: l.SKU, Quantity: l.Quantity})
			}
			if v.Status != StatusHeld || !reflect.DeepEqual(got, want) {
				s.fail("partition %d: change of %s made, but the cart is %s with %+v, not %+v", p, res.Reservation, v.Status, got, want)
			}
		case CodeInsufficientStock, CodeSalesCap, CodeCustomerLimit, CodeCustomerRequired:
			s.stats["change.refused"]++
			if v.Status != StatusHeld || !reflect.DeepEqual(v.Lines, pc.before) {
				s.fail("partition %d: change of %s refused (%v), but the cart is %s with %+v, not %+v", p, res.Reservation, res.Err, v.Status, v.Lines, pc.before)
			}
		case CodeNotHeld:
			s.stats["change.expired"]++
			if v.Status == StatusHeld {
				s.fail("partition %d: change of %s answered %v, but the cart is held", p, res.Reservation, res.Err)
			}
		default:
			s.fail("partition %d: change of %s answered %v", p, res.Reservation, res.Err)
		}
	}
}

// send sends a client command.
func (s *sim) send(cmd Command, meant intent) {
	s.current, s.meant, s.judging = cmd, meant, true
	var before []ReservationLine
	if c, ok := cmd.(ChangeReservation); ok {
		v, _ := s.c.res(c.ID)
		before = v.Lines
	}
	p, d, err := s.c.do(cmd)
	if c, ok := cmd.(ChangeReservation); ok && err == nil && d.Wait != "" && !d.Replay &&
		slices.ContainsFunc(d.Events, func(e Event) bool { return e.Type() == TypeSagaChangeStarted }) {
		// Answered later, once every partition holds the outcome: see
		// checkChangeResolved.
		s.changes[c.ID] = pendingChange{lines: c.Lines, before: before}
		s.stats["change.saga"]++
	}
	s.current, s.judging = nil, false
	tag := ""
	if meant == meantInvalid {
		tag = " (meant invalid)"
	}
	switch {
	case err != nil:
		s.logf("p%d %s%s -> %v", p, describe(cmd), tag, err)
	case d.Replay:
		s.logf("p%d %s%s -> replay", p, describe(cmd), tag)
	default:
		s.logf("p%d %s%s -> %d events%s", p, describe(cmd), tag, len(d.Events), waitNote(d))
		if c, ok := cmd.(Reserve); ok {
			s.held = append(s.held, c.ID)
		}
	}
}

func waitNote(d Decision) string {
	if d.Wait != "" {
		return ", waits for " + d.Wait
	}
	return ""
}

// describe renders a command for the trace.
func describe(cmd Command) string {
	switch c := cmd.(type) {
	case sagaHold:
		return fmt.Sprintf("sagaHold{%s home %d step %d %v}", c.reservation, c.home, c.step, c.lines)
	case sagaStep:
		return fmt.Sprintf("sagaStep{%s home %d step %d %s %v %s}", c.reservation, c.home, c.step, c.action, c.lines, c.reason)
	case sagaAck:
		return fmt.Sprintf("sagaAck{%s step %d from %d held %v short %v}", c.reservation, c.step, c.from, c.held, c.shortfalls)
	case sagaGrow:
		return fmt.Sprintf("sagaGrow{%s home %d step %d %v}", c.reservation, c.home, c.step, c.lines)
	case sagaTrim:
		return fmt.Sprintf("sagaTrim{%s home %d step %d %v}", c.reservation, c.home, c.step, c.lines)
	}
	return fmt.Sprintf("%T%+v", cmd, cmd)
}

// Generation.

func (s *sim) pick(xs []string) string { return xs[s.rng.IntN(len(xs))] }

// loc returns a location for a command: rarely the last one, which starts
// unconfigured.
func (s *sim) loc() string {
	if s.chance(8) {
		return s.locs[len(s.locs)-1]
	}
	return s.pick(s.locs[:len(s.locs)-1])
}

func (s *sim) newID(prefix string) string {
	s.ids++
	return prefix + strconv.Itoa(s.ids)
}

func (s *sim) chance(n int) bool { return s.rng.IntN(100) < n }

// bestBefore returns a date from a day before the start of the sequence to
// two days after it, or none.
func (s *sim) bestBefore() string {
	if s.chance(30) {
		return ""
	}
	return simStart.AddDate(0, 0, s.rng.IntN(4)-1).Format(time.DateOnly)
}

func (s *sim) generate() (Command, intent) {
	if s.chance(10) {
		return s.genExpected()
	}
	switch r := s.rng.IntN(100); {
	case r < 13:
		return s.genReceive()
	case r < 20:
		return s.genAdjust()
	case r < 23:
		return s.genCount()
	case r < 28:
		return s.genTransfer()
	case r < 32:
		return s.genArrive()
	case r < 35:
		if s.chance(5) {
			return ConfigureSKU{SKU: s.pick(s.skus), SafetyStock: -1}, meantInvalid
		}
		c := ConfigureSKU{SKU: s.pick(s.skus), SafetyStock: int64(s.rng.IntN(4)), LowStockThreshold: int64(s.rng.IntN(12))}
		if s.chance(40) {
			// Caps small enough to be reached, raised, and sometimes
			// refused for being below what is held and committed.
			c.SalesCap = int64(1 + s.rng.IntN(40))
		}
		if s.chance(30) {
			// Limits small enough to be reached by one customer's
			// carts, with windows the simulated clock passes.
			c.CustomerLimit = CustomerLimit{Units: int64(1 + s.rng.IntN(8)), Window: time.Duration(1+s.rng.IntN(180)) * time.Minute}
		}
		c.Preorders = s.chance(50)
		return c, meantValid
	case r < 38:
		if s.chance(25) {
			return s.genBundle()
		}
		kinds := []LocationKind{KindWarehouse, KindStore, KindThirdParty}
		c := ConfigureLocation{ID: s.pick(s.locs), Kind: kinds[s.rng.IntN(3)], Priority: s.rng.IntN(4), Region: s.pick([]string{"", "eu", "us"})}
		if s.chance(5) {
			c.Kind = "shed"
			return c, meantInvalid
		}
		return c, meantValid
	case r < 65:
		return s.genReserve()
	case r < 73:
		id := s.reservationID()
		if s.chance(5) {
			return ExtendReservation{ID: id}, meantInvalid
		}
		return ExtendReservation{ID: id, TTL: time.Duration(1+s.rng.IntN(90)) * time.Minute}, meantValid
	case r < 87:
		return s.genCommit()
	case r < 95:
		return s.genChange()
	default:
		return ReleaseReservation{ID: s.reservationID()}, meantValid
	}
}

// genChange changes a cart: mostly its lines as its home shows them, with
// quantities up or down, a line dropped or one added (of any partition's
// SKU), sometimes lines of its own, rarely an invalid list.
func (s *sim) genChange() (Command, intent) {
	id := s.reservationID()
	// Mostly a cart held now: those are the changes worth making.
	var live []string
	for _, h := range s.held[max(len(s.held)-12, 0):] {
		if v, ok := s.c.res(h); ok && v.Status == StatusHeld {
			live = append(live, h)
		}
	}
	if len(live) > 0 && s.chance(80) {
		id = s.pick(live)
	}
	c := ChangeReservation{ID: id}
	if v, ok := s.c.res(id); ok && s.chance(75) {
		for _, l := range v.Lines {
			if s.chance(15) {
				continue // dropped
			}
			q := max(l.Quantity+int64(s.rng.IntN(5))-2, 1)
			nl := ReserveLine{SKU: l.SKU, Quantity: q, Split: s.chance(25)}
			if s.chance(15) {
				nl.Location = s.loc()
			}
			c.Lines = append(c.Lines, nl)
		}
		if s.chance(30) {
			sku := s.pick(s.skus)
			if !slices.ContainsFunc(c.Lines, func(l ReserveLine) bool { return l.SKU == sku }) {
				c.Lines = append(c.Lines, ReserveLine{SKU: sku, Quantity: int64(1 + s.rng.IntN(4))})
			}
		}
	}
	if len(c.Lines) == 0 {
		c.Lines = s.genLines()
	}
	if s.chance(15) {
		c.TTL = time.Duration(1+s.rng.IntN(90)) * time.Minute
	}
	if s.chance(5) {
		c.Region = s.pick([]string{"eu", "us"})
	}
	if s.chance(3) {
		c.Lines = nil
		return c, meantInvalid
	}
	return c, meantValid
}

// reuse decides how to use an id already sent: 0 for a new one, 1 to repeat
// the request, 2 to send a different request with the same id.
func (s *sim) reuse(n int) int {
	if n == 0 {
		return 0
	}
	switch r := s.rng.IntN(100); {
	case r < 15:
		return 1
	case r < 25:
		return 2
	}
	return 0
}

func (s *sim) genReceive() (Command, intent) {
	c := ReceiveStock{ID: s.newID("r"), SKU: s.pick(s.skus), Location: s.loc(), Quantity: int64(1 + s.rng.IntN(15))}
	if s.chance(60) {
		c.Lot, c.BestBefore = s.pick(s.lots), s.bestBefore()
	}
	switch s.reuse(len(s.receipts)) {
	case 1:
		return s.receipts[s.rng.IntN(len(s.receipts))], meantValid
	case 2:
		old := s.receipts[s.rng.IntN(len(s.receipts))]
		c.ID, c.SKU = old.ID, old.SKU
	}
	if s.chance(5) {
		c.Quantity = 0
		return c, meantInvalid
	}
	s.receipts = append(s.receipts, c)
	return c, meantValid
}

// heldLocation returns, most of the time, a SKU and location where units are
// held, so that losses there make shortages and commits there backorders.
func (s *sim) heldLocation() (string, string) {
	var found [][2]string
	for _, st := range s.c.states {
		for id, sk := range st.skus {
			for loc, stock := range sk.all() {
				if stock.reserved > 0 {
					found = append(found, [2]string{id, loc})
				}
			}
		}
	}
	if len(found) == 0 || s.chance(40) {
		return s.pick(s.skus), s.loc()
	}
	slices.SortFunc(found, func(a, b [2]string) int { return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1]) })
	k := found[s.rng.IntN(len(found))]
	return k[0], k[1]
}

func (s *sim) genAdjust() (Command, intent) {
	reasons := []AdjustReason{ReasonCount, ReasonDamaged, ReasonLost, ReasonFound, ReasonReturned, ReasonOther}
	sku, loc := s.heldLocation()
	c := AdjustStock{ID: s.newID("a"), SKU: sku, Location: loc, Delta: int64(1 + s.rng.IntN(5)), Reason: reasons[s.rng.IntN(len(reasons))]}
	if s.chance(60) {
		c.Delta = -c.Delta
	}
	if s.chance(25) {
		c.Lot = s.pick(s.lots)
	}
	switch s.reuse(len(s.adjusts)) {
	case 1:
		return s.adjusts[s.rng.IntN(len(s.adjusts))], meantValid
	case 2:
		old := s.adjusts[s.rng.IntN(len(s.adjusts))]
		c.ID, c.SKU = old.ID, old.SKU
	}
	if s.chance(5) {
		c.Delta = 0
		return c, meantInvalid
	}
	s.adjusts = append(s.adjusts, c)
	return c, meantValid
}

func (s *sim) genCount() (Command, intent) {
	sku, loc := s.heldLocation()
	c := CountStock{ID: s.newID("n"), SKU: sku, Location: loc, OnHand: int64(s.rng.IntN(12))}
	switch s.reuse(len(s.counts)) {
	case 1:
		return s.counts[s.rng.IntN(len(s.counts))], meantValid
	case 2:
		old := s.counts[s.rng.IntN(len(s.counts))]
		c.ID, c.SKU = old.ID, old.SKU
	}
	if s.chance(5) {
		c.OnHand = -1
		return c, meantInvalid
	}
	s.counts = append(s.counts, c)
	return c, meantValid
}

func (s *sim) genTransfer() (Command, intent) {
	c := TransferStock{ID: s.newID("t"), SKU: s.pick(s.skus), From: s.loc(), To: s.loc(), Quantity: int64(1 + s.rng.IntN(5))}
	switch s.reuse(len(s.transfers)) {
	case 1:
		return s.transfers[s.rng.IntN(len(s.transfers))], meantValid
	case 2:
		old := s.transfers[s.rng.IntN(len(s.transfers))]
		c.ID, c.SKU = old.ID, old.SKU
	}
	if c.From == c.To {
		return c, meantInvalid
	}
	s.transfers = append(s.transfers, c)
	return c, meantValid
}

func (s *sim) genArrive() (Command, intent) {
	if len(s.transfers) == 0 || s.chance(5) {
		return ArriveTransfer{ID: s.newID("t")}, meantValid
	}
	// Mostly transfers still in transit.
	for range 3 {
		t := s.transfers[s.rng.IntN(len(s.transfers))]
		p := PartitionOf(t.SKU, s.c.p)
		if v, ok := s.c.states[p].TransferView(t.ID); ok && v.Status == TransferStatusInTransit {
			return ArriveTransfer{ID: t.ID}, meantValid
		}
	}
	return ArriveTransfer{ID: s.transfers[s.rng.IntN(len(s.transfers))].ID}, meantValid
}

// reservationID returns mostly the id of an accepted reservation, sometimes
// any id sent, rarely an unknown one.
func (s *sim) reservationID() string {
	switch r := s.rng.IntN(100); {
	case r < 85 && len(s.held) > 0:
		// Recent ones are more interesting: still held.
		n := min(len(s.held), 6)
		return s.held[len(s.held)-1-s.rng.IntN(n)]
	case r < 97 && len(s.reserves) > 0:
		return s.reserves[s.rng.IntN(len(s.reserves))].ID
	}
	return s.newID("c")
}

func (s *sim) genLines() (lines []ReserveLine) {
	skus := slices.Clone(s.skus)
	s.rng.Shuffle(len(skus), func(i, j int) { skus[i], skus[j] = skus[j], skus[i] })
	n := 1
	switch r := s.rng.IntN(100); {
	case r < 30:
		n = 2
	case r < 45:
		n = 3
	}
	lines = make([]ReserveLine, n)
	defer func() {
		// A bundle line besides, often sharing a component with another
		// line of the cart.
		if _, ok := s.c.states[LocationPartition].Bundle(simBundle); ok && s.chance(25) {
			lines = append(lines, ReserveLine{SKU: simBundle, Quantity: int64(1 + s.rng.IntN(2))})
		}
	}()
	for i := range lines {
		l := ReserveLine{SKU: skus[i], Quantity: int64(1 + s.rng.IntN(4))}
		switch r := s.rng.IntN(100); {
		case r < 20:
			l.Location = s.loc()
		case r < 35:
			for range 1 + s.rng.IntN(3) {
				l.Locations = append(l.Locations, s.loc())
			}
		}
		l.Split = s.chance(25)
		lines[i] = l
	}
	return lines
}

func (s *sim) genReserve() (Command, intent) {
	c := Reserve{ID: s.newID("c"), Lines: s.genLines()}
	if s.chance(60) {
		c.TTL = time.Duration(1+s.rng.IntN(120)) * time.Minute
	}
	if s.chance(10) {
		c.Region = s.pick([]string{"eu", "us"})
	}
	if s.chance(60) {
		c.Customer = "k" + strconv.Itoa(s.rng.IntN(3))
	}
	switch s.reuse(len(s.reserves)) {
	case 1:
		return s.reserves[s.rng.IntN(len(s.reserves))], meantValid
	case 2:
		// Same id and first SKU, so the same home; other content.
		old := s.reserves[s.rng.IntN(len(s.reserves))]
		c.ID = old.ID
		c.Lines = slices.Clone(old.Lines)
		c.Lines[0].Quantity++
	}
	switch r := s.rng.IntN(100); {
	case r < 2:
		c.Lines = nil
		return c, meantInvalid
	case r < 4:
		c.Lines = append(c.Lines, c.Lines[0])
		return c, meantInvalid
	case r < 6:
		c.TTL = DefaultLimits.MaxTTL + time.Minute
		return c, meantInvalid
	case r < 7:
		c.Lines[0].Quantity = 0
		return c, meantInvalid
	}
	s.reserves = append(s.reserves, c)
	return c, meantValid
}

func (s *sim) genCommit() (Command, intent) {
	id := s.reservationID()
	if s.chance(55) {
		return CommitReservation{ID: id}, meantValid
	}
	var lines []ReserveLine
	for _, r := range s.reserves {
		if r.ID == id {
			lines = r.Lines
		}
	}
	c := CommitReservation{ID: id}
	for _, l := range lines {
		if s.chance(60) {
			// Sometimes more than held: the domain must refuse it.
			c.Lines = append(c.Lines, CommitLine{SKU: l.SKU, Quantity: 1 + s.rng.Int64N(l.Quantity+1)})
		}
	}
	if len(c.Lines) == 0 {
		c.Lines = []CommitLine{{SKU: s.pick(s.skus), Quantity: 1}}
	}
	return c, meantValid
}

// The oracle: what the command must come to, worked out from the state it
// is decided against by the rules of the domain rather than by its code.

// observe checks every decision before it is applied.
func (s *sim) observe(p int, st *State, cmd Command, d Decision, err error) {
	s.decisions++
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			s.fail("partition %d: %s: error %T is not an *Error: %v", p, describe(cmd), err, err)
		}
		if e.Code == CodeInternal {
			s.fail("partition %d: %s: internal error %v", p, describe(cmd), err)
		}
		if e.Code == CodeInsufficientStock && len(e.Lines) == 0 {
			s.fail("partition %d: %s: insufficient_stock without lines", p, describe(cmd))
		}
	} else {
		if d.Replay && len(d.Events) > 0 {
			s.fail("partition %d: %s: a replay with events", p, describe(cmd))
		}
		s.checkEvents(p, st, d)
		s.availBefore = map[string]int64{}
		for _, e := range d.Events {
			if e.SKU != "" {
				v, _ := st.StockLevels(e.SKU)
				s.availBefore[e.SKU] = v.Available
			}
		}
	}
	for _, r := range d.Resolved {
		if IsCode(r.Err, CodeInsufficientStock) {
			var e *Error
			errors.As(r.Err, &e)
			if len(e.Lines) == 0 {
				s.fail("partition %d: reservation %s resolved insufficient_stock without lines", p, r.Reservation)
			}
		}
	}
	if !s.judging || !isClient(cmd) {
		return
	}
	s.judging = false
	// A client command: judge its outcome.
	if vErr := cmd.Validate(st.Limits()); vErr != nil || s.meant == meantInvalid {
		if !IsCode(err, CodeInvalid) {
			s.fail("partition %d: %s: invalid command answered %v (validate: %v)", p, describe(cmd), err, vErr)
		}
		return
	}
	want := s.expect(p, st, cmd)
	got := outcomeOf(d, err)
	s.stats[fmt.Sprintf("%T.%s", cmd, strings.Fields(got.String())[0])]++
	if !want.matches(got) {
		s.fail("partition %d: %s: got %s, want %s", p, describe(cmd), got, want)
	}
}

// outcome is what a decision came to.
type outcome struct {
	code   Code // "" when accepted
	replay bool
	lines  []Shortfall // for insufficient_stock; nil means any
	status ReservationStatus
}

func outcomeOf(d Decision, err error) outcome {
	if err != nil {
		var e *Error
		errors.As(err, &e)
		return outcome{code: e.Code, lines: e.Lines, status: e.Status}
	}
	return outcome{replay: d.Replay}
}

func (o outcome) String() string {
	switch {
	case o.code == "" && o.replay:
		return "replay"
	case o.code == "":
		return "accepted"
	case o.code == CodeInsufficientStock, o.code == CodeSalesCap, o.code == CodeCustomerLimit, o.code == CodeCustomerRequired:
		return fmt.Sprintf("%s %+v", o.code, o.lines)
	case o.code == CodeNotHeld:
		return fmt.Sprintf("%s (%s)", o.code, o.status)
	}
	return string(o.code)
}

func (o outcome) matches(got outcome) bool {
	if o.code != got.code || o.replay != got.replay {
		return false
	}
	if (o.code == CodeInsufficientStock || o.code == CodeSalesCap || o.code == CodeCustomerLimit || o.code == CodeCustomerRequired) && o.lines != nil && !reflect.DeepEqual(o.lines, got.lines) {
		return false
	}
	if o.code == CodeNotHeld && o.status != got.status {
		return false
	}
	return true
}

var (
	accepted = outcome{}
	replayed = outcome{replay: true}
)

func refused(code Code) outcome { return outcome{code: code} }

// shortCode is the code a reservation short of lines is refused with: a line
// refused for want of a customer makes it customer_required, else one past a
// customer limit customer_limit, else one its sales cap refused sales_cap.
func shortCode(lines []Shortfall) Code {
	for _, l := range lines {
		if l.CustomerLimit != nil && l.CustomerLimit.Customer == "" {
			return CodeCustomerRequired
		}
	}
	for _, l := range lines {
		if l.CustomerLimit != nil {
			return CodeCustomerLimit
		}
	}
	for _, l := range lines {
		if l.SalesCap > 0 {
			return CodeSalesCap
		}
	}
	return CodeInsufficientStock
}

// oracleCap is the shortfall of a line its SKU's sales cap refuses: the cap,
// less the units committed and held, is less than the line asks for.
func oracleCap(st *State, l ReserveLine) *Shortfall {
	v, ok := st.SKUView(l.SKU)
	if !ok || v.SalesCap == 0 {
		return nil
	}
	left := v.SalesCap - st.skus[l.SKU].committed - v.Reserved - v.Preordered
	if l.Quantity <= left {
		return nil
	}
	return &Shortfall{SKU: l.SKU, Requested: l.Quantity, Available: max(left, 0), SalesCap: v.SalesCap}
}

// expect returns the outcome cmd must have in partition p.
func (s *sim) expect(p int, st *State, cmd Command) outcome {
	now := s.c.now
	if now.Before(st.Clock()) {
		now = st.Clock()
	}
	keyed := func(key string, fp uint64) (outcome, bool) {
		if r, ok := st.records[key]; ok {
			if r.fingerprint == fp {
				return replayed, true
			}
			return refused(CodeIdempotencyMismatch), true
		}
		return outcome{}, false
	}
	// Only locations configured in the state decided against may be named.
	known := func(loc string) bool {
		_, ok := st.Locations()[loc]
		return ok
	}
	if o, ok := expectPreorder(st, cmd, now, known); ok {
		return o
	}
	switch c := cmd.(type) {
	case ConfigureLocation:
		if old, ok := st.Locations()[c.ID]; ok && old == Location(c) {
			return replayed
		}
		return accepted
	case DefineBundle:
		if old, ok := st.Bundle(c.SKU); ok && reflect.DeepEqual(old.Components, c.Components) {
			return replayed
		}
		return accepted
	case ConfigureSKU:
		v, ok := st.SKUView(c.SKU)
		if ok && v.SafetyStock == c.SafetyStock && v.LowStockThreshold == c.LowStockThreshold && v.SalesCap == c.SalesCap &&
			viewLimit(v) == normalLimit(c.CustomerLimit) && v.Preorders == c.Preorders {
			return replayed
		}
		if ok && c.SalesCap > 0 && c.SalesCap < st.skus[c.SKU].committed+v.Reserved {
			return outcome{code: CodeSalesCap}
		}
		return accepted
	case ReceiveStock:
		if o, ok := keyed(receiptKey(c.ID), Fingerprint(c)); ok {
			return o
		}
		// The lot would expire the moment it arrived: at the end of its
		// best-before day, UTC.
		if c.BestBefore != "" {
			d, _ := time.Parse(time.DateOnly, c.BestBefore)
			if !now.Before(d.Add(24 * time.Hour)) {
				return refused(CodeInvalid)
			}
		}
		if !known(c.Location) {
			return refused(CodeUnknownLocation)
		}
		return accepted
	case CountStock:
		if o, ok := keyed(countKey(c.ID), Fingerprint(c)); ok {
			return o
		}
		if !known(c.Location) {
			return refused(CodeUnknownLocation)
		}
		return accepted
	case AdjustStock:
		if o, ok := keyed(adjustmentKey(c.ID), Fingerprint(c)); ok {
			return o
		}
		if !known(c.Location) {
			return refused(CodeUnknownLocation)
		}
		if c.Delta > 0 {
			return accepted
		}
		var have int64
		for _, l := range viewLoc(st, c.SKU, c.Location).Lots {
			if c.Lot == "" || l.Lot == c.Lot {
				have += l.Quantity
			}
		}
		if have < -c.Delta {
			return outcome{code: CodeInsufficientStock, lines: []Shortfall{{SKU: c.SKU, Requested: -c.Delta, Available: have}}}
		}
		return accepted
	case TransferStock:
		if t := st.transfers[c.ID]; t != nil {
			if t.fingerprint == Fingerprint(c) {
				return replayed
			}
			return refused(CodeIdempotencyMismatch)
		}
		if !known(c.From) || !known(c.To) {
			return refused(CodeUnknownLocation)
		}
		if avail := viewLoc(st, c.SKU, c.From).Available; avail < c.Quantity {
			return outcome{code: CodeInsufficientStock, lines: []Shortfall{{SKU: c.SKU, Requested: c.Quantity, Available: max(avail, 0)}}}
		}
		return accepted
	case ArriveTransfer:
		t, ok := st.TransferView(c.ID)
		switch {
		case !ok:
			return refused(CodeNotFound)
		case t.Status == TransferStatusArrived:
			return replayed
		}
		return accepted
	case Reserve:
		if r := st.reservations[c.ID]; r != nil {
			switch {
			case r.home != p || r.fingerprint != Fingerprint(c):
				return refused(CodeIdempotencyMismatch)
			case r.saga != nil && r.saga.aborted && len(r.saga.failed) > 0:
				return outcome{code: shortCode(r.saga.failed), lines: r.saga.failed}
			case r.saga != nil && r.saga.aborted:
				return refused(CodeUnavailable)
			}
			return replayed
		}
		// A line naming a location that does not exist is refused, on
		// whichever partition the line would be held.
		for _, l := range c.Lines {
			if (l.Location != "" && !known(l.Location)) || !all(l.Locations, known) {
				return refused(CodeUnknownLocation)
			}
		}
		lines, ok := oracleExpand(st, c.Lines)
		if !ok {
			return refused(CodeInvalid)
		}
		var short []Shortfall
		for _, l := range lines {
			if PartitionOf(l.SKU, s.c.p) != p {
				continue
			}
			if sf := oracleLimit(s.c.logs[p], st, l, c.Customer, c.ID, now); sf != nil {
				short = append(short, *sf)
			} else if sf := oracleCap(st, l); sf != nil {
				short = append(short, *sf)
			} else if _, sf := oracleAllocate(st, l, c.Region); sf != nil {
				short = append(short, *sf)
			}
		}
		if short != nil {
			return outcome{code: shortCode(short), lines: short}
		}
		return accepted
	case ExtendReservation, CommitReservation, ReleaseReservation:
		return s.expectOnReservation(p, st, cmd, now)
	case ChangeReservation:
		return s.expectChange(p, st, c, now)
	}
	s.fail("no expectation for %T", cmd)
	return outcome{}
}

func (s *sim) expectOnReservation(p int, st *State, cmd Command, now time.Time) outcome {
	var id string
	switch c := cmd.(type) {
	case ExtendReservation:
		id = c.ID
	case CommitReservation:
		id = c.ID
	case ReleaseReservation:
		id = c.ID
	}
	v, ok := st.ReservationView(id)
	if !ok {
		return refused(CodeNotFound)
	}
	held := v.Status == StatusHeld && now.Before(v.ExpiresAt)
	status := v.Status
	if v.Status == StatusHeld && !held {
		status = StatusExpired
	}
	notHeld := outcome{code: CodeNotHeld, status: status}
	switch c := cmd.(type) {
	case ExtendReservation:
		if !held {
			return notHeld
		}
		if changing(st, id) {
			return refused(CodeReservationBusy)
		}
		return accepted
	case ReleaseReservation:
		switch v.Status {
		case StatusReleased, StatusExpired:
			return replayed
		case StatusCommitted, StatusPending:
			return outcome{code: CodeNotHeld, status: v.Status}
		}
		if changing(st, id) {
			return refused(CodeReservationBusy)
		}
		return accepted
	case CommitReservation:
		if v.Status == StatusCommitted {
			return replayed
		}
		if !held {
			return notHeld
		}
		lines, ok := oracleCommitBundles(v, c.Lines)
		if !ok {
			return refused(CodeInvalid)
		}
		for _, cl := range lines {
			i := slices.IndexFunc(v.Lines, func(l ReservationLine) bool { return l.SKU == cl.SKU })
			if i < 0 || cl.Quantity > v.Lines[i].Quantity {
				return refused(CodeInvalid)
			}
		}
		if changing(st, id) {
			return refused(CodeReservationBusy)
		}
		return accepted
	}
	return outcome{}
}

// changing reports whether reservation id has a change in flight at its
// home: from the change's first event to its trim step's settlement.
func changing(st *State, id string) bool {
	r := st.reservations[id]
	return r != nil && r.saga != nil && r.saga.change != nil
}

// expectChange works out what a change must come to, from the rules of
// changing a held cart: a line that keeps no more units than it holds where
// they are held stays there; any other is held afresh with the cart's own
// units of its SKU free for it (and for its sales cap). Lines of other
// partitions are not checked here: a change of them goes through the saga
// and is answered later (checked when it resolves, see send).
func (s *sim) expectChange(p int, st *State, c ChangeReservation, now time.Time) outcome {
	r := st.reservations[c.ID]
	if r == nil || r.home != p || (r.saga != nil && r.saga.aborted) {
		return refused(CodeNotFound)
	}
	v, _ := st.ReservationView(c.ID)
	switch {
	case v.Status != StatusHeld:
		return outcome{code: CodeNotHeld, status: v.Status}
	case !now.Before(v.ExpiresAt):
		return outcome{code: CodeNotHeld, status: StatusExpired}
	}
	locs := st.Locations()
	known := func(loc string) bool { _, ok := locs[loc]; return ok }
	for _, l := range c.Lines {
		if (l.Location != "" && !known(l.Location)) || !all(l.Locations, known) {
			return refused(CodeUnknownLocation)
		}
	}
	for _, l := range v.Lines {
		if PartitionOf(l.SKU, s.c.p) == p && l.Preorder > 0 {
			return refused(CodeInvalid) // a cart holding preorders does not change
		}
	}
	if len(v.Bundles) > 0 {
		return refused(CodeInvalid) // nor one holding bundles
	}
	for _, l := range c.Lines {
		if _, ok := st.Bundle(l.SKU); ok {
			return refused(CodeInvalid) // nor does a change add one
		}
	}
	old := func(sku string) *ReservationLine {
		for i := range v.Lines {
			if v.Lines[i].SKU == sku {
				return &v.Lines[i]
			}
		}
		return nil
	}
	// stays reports whether line l can keep its units where o holds them:
	// the first l.Quantity of them, in order, at locations l allows, at
	// one location unless it may split.
	stays := func(o *ReservationLine, l ReserveLine) bool {
		if o == nil || o.Quantity < l.Quantity {
			return false
		}
		var kept []Allocation
		left := l.Quantity
		for _, a := range o.Allocations {
			if left == 0 {
				break
			}
			n := min(a.Quantity, left)
			left -= n
			kept = append(kept, Allocation{Location: a.Location, Quantity: n})
		}
		if len(kept) > 1 && !l.Split {
			return false
		}
		for _, a := range kept {
			if (l.Location != "" && a.Location != l.Location) || (len(l.Locations) > 0 && !slices.Contains(l.Locations, a.Location)) ||
				(c.Region != "" && locs[a.Location].Region != c.Region) {
				return false
			}
		}
		return true
	}
	remote := false
	for _, l := range c.Lines {
		if PartitionOf(l.SKU, s.c.p) != p {
			if o := old(l.SKU); o == nil || o.Quantity != l.Quantity || !stays(o, l) {
				remote = true
			}
		}
	}
	for _, o := range v.Lines {
		if PartitionOf(o.SKU, s.c.p) != p && !slices.ContainsFunc(c.Lines, func(l ReserveLine) bool { return l.SKU == o.SKU }) {
			remote = true
		}
	}
	if g := r.saga; g != nil && g.change != nil {
		if remote && g.change.fingerprint == Fingerprint(c) {
			return replayed
		}
		return refused(CodeReservationBusy)
	}
	if remote && r.saga != nil && len(r.saga.pending) > 0 {
		return refused(CodeReservationBusy)
	}
	var short []Shortfall
	unchanged := len(c.Lines) == len(v.Lines)
	type grown struct {
		l      ReserveLine
		prev   []Allocation
		allocs []Allocation
	}
	var plan []grown
	for _, l := range c.Lines {
		if PartitionOf(l.SKU, s.c.p) != p {
			continue
		}
		o := old(l.SKU)
		var prev []Allocation
		var own int64
		if o != nil {
			prev, own = o.Allocations, o.Quantity
		}
		if stays(o, l) {
			kept := commitAllocations(o.Allocations, l.Quantity)
			plan = append(plan, grown{l, prev, kept})
			if o.Quantity != l.Quantity {
				unchanged = false
			}
			continue
		}
		unchanged = false
		if sf := oracleLimit(s.c.logs[p], st, l, r.customer, r.id, now); sf != nil {
			short = append(short, *sf)
			continue
		}
		sv, _ := st.SKUView(l.SKU)
		if sv.SalesCap > 0 {
			left := sv.SalesCap - st.skus[l.SKU].committed - sv.Reserved + own
			if l.Quantity > left {
				short = append(short, Shortfall{SKU: l.SKU, Requested: l.Quantity, Available: max(left, 0), SalesCap: sv.SalesCap})
				continue
			}
		}
		a, sf := oracleAllocateFree(st, l, c.Region, prev)
		if sf != nil {
			short = append(short, *sf)
			continue
		}
		plan = append(plan, grown{l, prev, a})
	}
	if short == nil && remote {
		// The union of old and new is held until the trim: its growth
		// must fit the cap as it stands.
		for _, g := range plan {
			sv, _ := st.SKUView(g.l.SKU)
			if sv.SalesCap == 0 {
				continue
			}
			left := sv.SalesCap - st.skus[g.l.SKU].committed - sv.Reserved
			var prevQ int64
			for _, a := range g.prev {
				prevQ += a.Quantity
			}
			var union int64
			for _, a := range unionAllocations(g.prev, g.allocs) {
				union += a.Quantity
			}
			if union-prevQ > left {
				short = append(short, Shortfall{SKU: g.l.SKU, Requested: g.l.Quantity, Available: max(left+prevQ, 0), SalesCap: sv.SalesCap})
			}
		}
	}
	if short != nil {
		return outcome{code: shortCode(short), lines: short}
	}
	if !remote && unchanged && c.TTL == 0 {
		return replayed
	}
	return accepted
}

// oracleAllocateFree is oracleAllocate with the units own holds counted as
// available, as a change counts the cart's own units of a line's SKU, and
// without expected stock: a change never holds preorders.
func oracleAllocateFree(st *State, l ReserveLine, region string, own []Allocation) ([]Allocation, *Shortfall) {
	if st.skus[l.SKU] == nil {
		return oracleAllocate(st, l, region)
	}
	adjusted := *st
	adjusted.skus = maps.Clone(st.skus)
	sk := *st.skus[l.SKU]
	sk.preorders = false
	sk.stocks = slices.Clone(sk.stocks)
	for i, loc := range sk.stockList {
		st := *sk.stocks[i]
		for _, a := range own {
			if a.Location == loc {
				st.reserved -= a.Quantity
			}
		}
		sk.stocks[i] = &st
	}
	adjusted.skus[l.SKU] = &sk
	return oracleAllocate(&adjusted, l, region)
}

// all reports whether ok holds for every element of xs.
func all(xs []string, ok func(string) bool) bool {
	for _, x := range xs {
		if !ok(x) {
			return false
		}
	}
	return true
}

// viewLoc returns the view of sku at location in st.
func viewLoc(st *State, sku, location string) LocationState {
	v, _ := st.SKUView(sku)
	for _, l := range v.Locations {
		if l.Location == location {
			return l
		}
	}
	return LocationState{Location: location}
}

// oracleAllocate works out where a line must be held, from the views and the
// allocation rules: a named location only; else the preferred locations in
// order; else every location of the SKU, configured ones by priority then
// id, then unconfigured ones by id; only locations of the region, if one is
// asked; without Split the first location that can hold the whole line,
// with Split as much as each can hold in that order.
func oracleAllocate(st *State, l ReserveLine, region string) ([]Allocation, *Shortfall) {
	v, _ := st.SKUView(l.SKU)
	avail := map[string]int64{}
	var all []string
	for _, ls := range v.Locations {
		avail[ls.Location] = oracleAvailable(v, ls)
		all = append(all, ls.Location)
	}
	locs := st.Locations()
	var candidates []string
	switch {
	case l.Location != "":
		candidates = []string{l.Location}
	case len(l.Locations) > 0:
		candidates = l.Locations
	default:
		slices.SortFunc(all, func(a, b string) int {
			la, okA := locs[a]
			lb, okB := locs[b]
			if okA != okB {
				if okA {
					return -1
				}
				return 1
			}
			if okA && la.Priority != lb.Priority {
				return la.Priority - lb.Priority
			}
			return strings.Compare(a, b)
		})
		candidates = all
	}
	var (
		allocs      []Allocation
		best, total int64
		left        = l.Quantity
		used        = map[string]bool{}
	)
	for _, loc := range candidates {
		if used[loc] || (region != "" && locs[loc].Region != region) {
			continue
		}
		used[loc] = true
		a := avail[loc]
		if a <= 0 {
			continue
		}
		if !l.Split {
			if a >= l.Quantity {
				return []Allocation{{Location: loc, Quantity: l.Quantity}}, nil
			}
			best = max(best, a)
			continue
		}
		total += a
		if n := min(a, left); n > 0 {
			allocs = append(allocs, Allocation{Location: loc, Quantity: n})
			left -= n
		}
	}
	if !l.Split {
		return nil, &Shortfall{SKU: l.SKU, Requested: l.Quantity, Available: best}
	}
	if left > 0 {
		return nil, &Shortfall{SKU: l.SKU, Requested: l.Quantity, Available: total}
	}
	return allocs, nil
}

// fefoTake returns the lots that taking n units first-expiry-first-out from
// a location's lots (listed in that order) consumes.
func fefoTake(location string, lots []LotView, n int64) []LotQty {
	var out []LotQty
	for _, l := range lots {
		if n == 0 {
			break
		}
		q := min(l.Quantity, n)
		out = append(out, LotQty{Location: location, Lot: l.Lot, BestBefore: l.BestBefore, Quantity: q})
		n -= q
	}
	return out
}

// checkEvents checks an accepted decision against the state it was decided
// against: nothing is held, sent or taken beyond what was there, and lots go
// first-expiry-first-out.
func (s *sim) checkEvents(p int, st *State, d Decision) {
	held := map[[2]string]int64{}
	for i, e := range d.Events {
		if e.Partition != p || e.Position != st.Head()+uint64(i)+1 {
			s.fail("partition %d: event %d is %s", p, i, e.ID())
		}
		if e.SKU != "" && PartitionOf(e.SKU, s.c.p) != p {
			s.fail("partition %d: event of %s, which belongs to partition %d", p, e.SKU, PartitionOf(e.SKU, s.c.p))
		}
		switch data := e.Data.(type) {
		case StockReserved:
			if len(data.Allocations) > 1 {
				s.stats["split"]++
			}
			if data.Home != p {
				s.stats["participant-hold"]++
			}
			var sum int64
			for _, a := range data.Allocations {
				if a.Quantity <= 0 {
					s.fail("partition %d: allocation %+v of %s", p, a, data.Reservation)
				}
				sum += a.Quantity
				held[[2]string{e.SKU, a.Location}] += a.Quantity
			}
			sum += s.checkPreorderHolds(p, st, e.SKU, data)
			if sum != data.Quantity {
				s.fail("partition %d: %s of %s allocates %d for %d", p, data.Reservation, e.SKU, sum, data.Quantity)
			}
		case ReservationChanged:
			// What a change holds beyond what the line held, at each
			// location, must have been available there.
			var sum int64
			for _, a := range data.Allocations {
				if a.Quantity <= 0 {
					s.fail("partition %d: allocation %+v of %s", p, a, data.Reservation)
				}
				sum += a.Quantity
				prev := int64(0)
				for _, b := range data.PreviousAllocations {
					if b.Location == a.Location {
						prev += b.Quantity
					}
				}
				if a.Quantity > prev {
					held[[2]string{e.SKU, a.Location}] += a.Quantity - prev
				}
			}
			if sum != data.Quantity {
				s.fail("partition %d: change of %s of %s allocates %d for %d", p, data.Reservation, e.SKU, sum, data.Quantity)
			}
			s.stats["line-changed"]++
		case StockTransferred:
			if avail := viewLoc(st, e.SKU, data.From).Available; data.Quantity > avail {
				s.fail("partition %d: transfer %s of %d from %s with %d available", p, e.CommandID, data.Quantity, data.From, avail)
			}
			if want := fefoTake(data.From, viewLoc(st, e.SKU, data.From).Lots, data.Quantity); !sameLots(want, data.Lots) {
				s.fail("partition %d: transfer %s took lots %+v, want %+v", p, e.CommandID, data.Lots, want)
			}
		case TransferArrived:
			t, ok := st.TransferView(e.CommandID)
			var want []LotQty
			for _, l := range t.Lots {
				want = append(want, LotQty{Location: t.To, Lot: l.Lot, BestBefore: l.BestBefore, Quantity: l.Quantity})
			}
			if !ok || t.Status != TransferStatusInTransit || data.Quantity != t.Quantity || data.To != t.To || !sameLots(want, data.Lots) {
				s.fail("partition %d: arrival %+v of transfer %+v", p, data, t)
			}
		case ReservationCommitted:
			for _, a := range data.Allocations {
				want := fefoTake(a.Location, viewLoc(st, e.SKU, a.Location).Lots, a.Quantity)
				var got []LotQty
				for _, l := range data.Lots {
					if l.Location == a.Location {
						got = append(got, l)
					}
				}
				if !sameLots(want, got) {
					s.fail("partition %d: commit of %s at %s took lots %+v, want %+v", p, data.Reservation, a.Location, got, want)
				}
			}
		case StockAdjusted:
			if data.Delta < 0 {
				named := ""
				if c, ok := s.current.(AdjustStock); ok {
					named = c.Lot
				}
				var lots []LotView
				for _, l := range viewLoc(st, e.SKU, data.Location).Lots {
					if named == "" || l.Lot == named {
						lots = append(lots, l)
					}
				}
				if want := fefoTake(data.Location, lots, -data.Delta); !sameLots(want, data.Lots) {
					s.fail("partition %d: adjustment %s took lots %+v, want %+v", p, e.CommandID, data.Lots, want)
				}
			}
		case StockCounted:
			if data.Delta < 0 {
				if want := fefoTake(data.Location, viewLoc(st, e.SKU, data.Location).Lots, -data.Delta); !sameLots(want, data.Lots) {
					s.fail("partition %d: count %s took lots %+v, want %+v", p, e.CommandID, data.Lots, want)
				}
			}
		}
	}
	// Never sold beyond zero: what a decision holds at a location was
	// available there just before.
	for k, q := range held {
		if avail := viewLoc(st, k[0], k[1]).Available; q > avail {
			s.fail("partition %d: OVERSOLD: held %d of %s at %s with %d available", p, q, k[0], k[1], avail)
		}
	}
}

// isClient reports whether cmd is one a client sends, not a timer's or a
// partition's.
func isClient(cmd Command) bool {
	switch cmd.(type) {
	case ConfigureLocation, ConfigureSKU, ReceiveStock, AdjustStock, CountStock, TransferStock, ArriveTransfer,
		Reserve, ExtendReservation, CommitReservation, ReleaseReservation, ChangeReservation,
		ExpectReceipt, ArriveExpected, CancelExpected:
		return true
	}
	return false
}

func sameLots(a, b []LotQty) bool { return reflect.DeepEqual(nonNil(a), nonNil(b)) }

// Invariants.

// checkDeadlines checks, right after due timers fired, that nothing past
// its deadline is still held or stocked.
func (s *sim) checkDeadlines() {
	for p, st := range s.c.states {
		for id, r := range st.reservations {
			if r.home == p && (r.status == StatusHeld || r.status == StatusPending) && r.expiresAt <= unixNano(s.c.now) {
				s.fail("partition %d: reservation %s is %s past its deadline %v", p, id, r.status, fromUnixNano(r.expiresAt))
			}
		}
		for sku, sk := range st.skus {
			for loc, stock := range sk.all() {
				for _, l := range stock.lots {
					if at, ok := LotExpiry(l.bestBefore); ok && !at.After(s.c.now) {
						s.fail("partition %d: lot %+v of %s at %s is past its best_before", p, l, sku, loc)
					}
				}
			}
		}
	}
}

// ledger is what the events of the logs say about stock.
type ledger struct {
	onHand, inTransit map[[2]string]int64
	shortage          map[[2]string]bool
	// Per SKU.
	received, plus, minus, counted, committed, expired, sent, arrived map[string]int64
	// Sales caps, per SKU: held is what the log holds now; overCap says
	// how the log broke the cap, if it did. A cap bounds committed + held:
	// no hold passes it, and it is never configured below them.
	held    map[string]int64
	overCap map[string]string
	// precommitted is, per SKU, the units committed against expected
	// receipts that have not arrived (or been cancelled) yet: sold, but
	// not out of on_hand until their receipt arrives.
	precommitted map[string]int64
}

func ledgerOf(logs [][]Event) *ledger {
	g := &ledger{
		onHand: map[[2]string]int64{}, inTransit: map[[2]string]int64{}, shortage: map[[2]string]bool{},
		received: map[string]int64{}, plus: map[string]int64{}, minus: map[string]int64{}, counted: map[string]int64{},
		committed: map[string]int64{}, expired: map[string]int64{}, sent: map[string]int64{}, arrived: map[string]int64{},
		held: map[string]int64{}, overCap: map[string]string{}, precommitted: map[string]int64{},
	}
	ceiling := map[string]int64{}
	for _, log := range logs {
		for _, e := range log {
			switch d := e.Data.(type) {
			case SKUConfigured:
				ceiling[e.SKU] = 0
				if d.SalesCap > 0 {
					ceiling[e.SKU] = d.SalesCap
				}
			case StockReserved:
				g.held[e.SKU] += d.Quantity
			case ReservationCommitted:
				g.held[e.SKU] -= d.Quantity + d.Released
			case ReservationReleased:
				g.held[e.SKU] -= d.Quantity
			case ReservationChanged:
				g.held[e.SKU] += d.Quantity - d.PreviousQuantity
			}
			k := func(loc string) [2]string { return [2]string{e.SKU, loc} }
			switch d := e.Data.(type) {
			case StockReceived:
				g.received[e.SKU] += d.Quantity
				g.onHand[k(d.Location)] += d.Quantity
			case StockAdjusted:
				if d.Delta > 0 {
					g.plus[e.SKU] += d.Delta
				} else {
					g.minus[e.SKU] -= d.Delta
				}
				g.onHand[k(d.Location)] += d.Delta
			case StockCounted:
				g.counted[e.SKU] += d.Delta
				g.onHand[k(d.Location)] += d.Delta
			case StockTransferred:
				g.sent[e.SKU] += d.Quantity
				g.onHand[k(d.From)] -= d.Quantity
				g.inTransit[k(d.To)] += d.Quantity
			case TransferArrived:
				g.arrived[e.SKU] += d.Quantity
				g.onHand[k(d.To)] += d.Quantity
				g.inTransit[k(d.To)] -= d.Quantity
			case ReservationCommitted:
				g.committed[e.SKU] += d.Quantity
				for _, a := range d.Allocations {
					g.onHand[k(a.Location)] -= a.Quantity
				}
				for _, pre := range d.Preorders {
					g.precommitted[e.SKU] += pre.Quantity
				}
			case ExpectedReceiptArrived:
				g.received[e.SKU] += d.Quantity
				g.precommitted[e.SKU] -= d.Committed
				g.onHand[k(d.Location)] += d.Quantity - d.Committed
			case ExpectedReceiptCancelled:
				g.precommitted[e.SKU] -= d.Committed
				g.onHand[k(d.Location)] -= d.Committed
			case LotExpired:
				g.expired[e.SKU] += d.Quantity
				g.onHand[k(d.Location)] -= d.Quantity
			case ShortageDetected:
				g.shortage[k(d.Location)] = true
			}
			if c := ceiling[e.SKU]; c > 0 && g.overCap[e.SKU] == "" && g.committed[e.SKU]+g.held[e.SKU] > c {
				g.overCap[e.SKU] = fmt.Sprintf("event %s: committed %d + held %d passed the cap %d", e.ID(), g.committed[e.SKU], g.held[e.SKU], c)
			}
		}
	}
	return g
}

// checkChanged checks the invariants of every partition that changed since it
// was last checked, and that it is rebuilt identically from its log and from
// a snapshot.
func (s *sim) checkChanged() {
	if len(s.checked) != s.c.p {
		s.checked = make([][2]uint64, s.c.p)
		for p := range s.checked {
			s.checked[p][0] = ^uint64(0)
		}
	}
	for p, st := range s.c.states {
		mark := [2]uint64{st.Head(), s.crashes}
		if s.checked[p] == mark {
			continue
		}
		s.checked[p] = mark
		s.checkInvariants(p)
		s.checkRebuild(p)
	}
}

// checkInvariants checks a partition's views against each other, against its
// reservations and against the ledger of its log.
func (s *sim) checkInvariants(p int) {
	g := ledgerOf(s.c.logs[p : p+1])
	st := s.c.states[p]
	holds := expectedHolds(p, st)
	held := 0
	for _, r := range st.reservations {
		if r.home == p && r.status == StatusHeld {
			held++
		}
	}
	if st.Held() != held {
		s.fail("partition %d: Held() = %d, but %d reservations it drives are held", p, st.Held(), held)
	}
	transit := map[[2]string]int64{}
	for _, t := range st.transfers {
		if t.arrivedAt.IsZero() {
			transit[[2]string{t.sku, t.to}] += t.qty
		}
	}
	for _, sku := range st.SKUs() {
		if PartitionOf(sku, s.c.p) != p {
			s.fail("partition %d holds %s of partition %d", p, sku, PartitionOf(sku, s.c.p))
		}
		v, _ := st.SKUView(sku)
		var onHand, reserved, available, inTransit, shortage int64
		for _, ls := range v.Locations {
			k := [2]string{sku, ls.Location}
			at := fmt.Sprintf("partition %d: %s at %s %+v", p, sku, ls.Location, ls)
			free := ls.OnHand - ls.Reserved
			want := free
			if free >= 0 {
				want = max(free-v.SafetyStock, 0)
			}
			switch {
			case ls.Available != want:
				s.fail("%s: available is not on_hand - reserved - safety_stock (%d)", at, want)
			case ls.Available < 0 && ls.Shortage <= 0:
				s.fail("%s: negative availability without a shortage", at)
			case ls.Shortage != max(ls.Reserved-ls.OnHand, 0):
				s.fail("%s: shortage is not max(reserved - on_hand, 0)", at)
			case ls.Reserved < 0 || ls.InTransit < 0:
				s.fail("%s: negative reserved or in_transit", at)
			case ls.OnHand < 0 && !g.shortage[k]:
				s.fail("%s: negative on_hand without a recorded shortage", at)
			case ls.Shortage > 0 && !g.shortage[k]:
				s.fail("%s: a shortage that no ShortageDetected announced", at)
			case ls.OnHand != g.onHand[k]:
				s.fail("%s: on_hand is not what the events add up to (%d)", at, g.onHand[k])
			case ls.InTransit != g.inTransit[k] || ls.InTransit != transit[k]:
				s.fail("%s: in_transit %d, events say %d, open transfers %d", at, ls.InTransit, g.inTransit[k], transit[k])
			case ls.HoldCount != len(ls.Holds):
				s.fail("%s: hold count", at)
			}
			var lots int64
			for i, l := range ls.Lots {
				if l.Quantity <= 0 {
					s.fail("%s: empty lot", at)
				}
				if i > 0 && !lotOrdered(ls.Lots[i-1], l) {
					s.fail("%s: lots out of first-expiry-first-out order", at)
				}
				lots += l.Quantity
			}
			if lots != max(ls.OnHand, 0) {
				s.fail("%s: lots add up to %d", at, lots)
			}
			var held int64
			got := map[string]int64{}
			for _, h := range ls.Holds {
				held += h.Quantity
				got[h.Reservation] = h.Quantity
			}
			if held != ls.Reserved {
				s.fail("%s: holds add up to %d", at, held)
			}
			if want := holds[k]; !maps.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				s.fail("%s: holds %v, reservations hold %v", at, got, want)
			}
			if ls.OnHand < 0 {
				s.stats["state.backorder"]++
			}
			if ls.Shortage > 0 {
				s.stats["state.shortage"]++
			}
			if ls.HoldCount > 1 {
				s.stats["state.holds>1"]++
			}
			onHand += ls.OnHand
			reserved += ls.Reserved
			available += max(ls.Available, 0) // a short location does not net against the others
			inTransit += ls.InTransit
			shortage += ls.Shortage
		}
		if v.OnHand != onHand || v.Reserved != reserved || v.Available != available || v.InTransit != inTransit || v.Shortage != shortage {
			s.fail("partition %d: %s totals %+v disagree with its locations", p, sku, v)
		}
		// received + positive adjustments + count deltas - negative
		// adjustments - committed - expired - in flight = on_hand,
		// where expected receipts count as received, and the units
		// sold before them as committed, when they arrive.
		sum := g.received[sku] + g.plus[sku] + g.counted[sku] - g.minus[sku] - g.committed[sku] - g.expired[sku] - (g.sent[sku] - g.arrived[sku]) +
			g.precommitted[sku]
		if sum != v.OnHand {
			s.fail("partition %d: %s: the ledger says %d on hand, the view %d", p, sku, sum, v.OnHand)
		}
		// Sales caps: committed + held never pass the cap (or what was
		// committed and held when a cap was set below it), and the view
		// shows what the cap has left.
		if why := g.overCap[sku]; why != "" {
			s.fail("partition %d: %s: sales cap broken: %s", p, sku, why)
		}
		if c := st.skus[sku].committed; c != g.committed[sku] || v.Reserved+v.Preordered != g.held[sku] {
			s.fail("partition %d: %s: committed %d and reserved %d, the log says %d and %d", p, sku, c, v.Reserved, g.committed[sku], g.held[sku])
		}
		switch {
		case v.SalesCap == 0 && v.SalesCapRemaining != nil:
			s.fail("partition %d: %s: remaining units under no cap", p, sku)
		case v.SalesCap > 0 && (v.SalesCapRemaining == nil || *v.SalesCapRemaining != max(v.SalesCap-g.committed[sku]-g.held[sku], 0)):
			s.fail("partition %d: %s: sales cap %d, remaining %v, committed %d, held %d", p, sku, v.SalesCap, v.SalesCapRemaining, g.committed[sku], g.held[sku])
		}
		if v.SalesCap > 0 {
			s.stats["state.capped"]++
			if *v.SalesCapRemaining == 0 {
				s.stats["state.cap_reached"]++
			}
		}
	}
	s.checkPreorders(p, st)
	for k, want := range holds {
		if len(want) > 0 && viewLoc(st, k[0], k[1]).Reserved == 0 {
			s.fail("partition %d: reservations hold %v of %s at %s, which has none reserved", p, want, k[0], k[1])
		}
	}
}

// lotOrdered reports whether lot a may come before lot b: by best-before
// date, undated last, then by lot code.
func lotOrdered(a, b LotView) bool {
	if a.BestBefore != b.BestBefore {
		if a.BestBefore == "" {
			return false
		}
		if b.BestBefore == "" {
			return true
		}
		return a.BestBefore < b.BestBefore
	}
	return a.Lot < b.Lot
}

// expectedHolds returns what the reservations of partition p hold, per SKU
// and location, per reservation, from the reservations' views.
func expectedHolds(p int, st *State) map[[2]string]map[string]int64 {
	out := map[[2]string]map[string]int64{}
	for id, r := range st.reservations {
		if r.status != StatusHeld && r.status != StatusPending {
			continue
		}
		for _, l := range r.view(p).Lines {
			if PartitionOf(l.SKU, st.partitions) != p {
				continue
			}
			for _, a := range l.Allocations {
				k := [2]string{l.SKU, a.Location}
				if out[k] == nil {
					out[k] = map[string]int64{}
				}
				out[k][id] += a.Quantity
			}
		}
	}
	return out
}

// checkRebuild checks that a partition rebuilt from its log, and from its own
// snapshot, is the live one: the same internals, views, recovery and next
// deadline.
func (s *sim) checkRebuild(p int) {
	live := s.c.states[p]
	replayed := s.c.replay(p, s.c.logs[p], nil)
	replayed.SetCatalog(live.Catalog())
	if diff := sameState(live, replayed); diff != "" {
		s.fail("partition %d rebuilt from its log differs: %s", p, diff)
	}
	for _, id := range live.SKUs() {
		a, _ := live.SKUView(id)
		b, _ := replayed.SKUView(id)
		if !reflect.DeepEqual(a, b) {
			s.fail("partition %d: view of %s rebuilt from the log differs:\n%+v\n%+v", p, id, a, b)
		}
	}
	for id := range live.reservations {
		a, oka := live.ReservationView(id)
		b, okb := replayed.ReservationView(id)
		if oka != okb || !reflect.DeepEqual(a, b) {
			s.fail("partition %d: view of reservation %s rebuilt from the log differs:\n%+v\n%+v", p, id, a, b)
		}
	}
	if sn := s.c.snaps[p]; sn.data != nil && sn.head <= uint64(len(s.c.logs[p])) {
		// The last stored snapshot, taken at an earlier position, plus
		// the log since.
		tail := s.c.replay(p, s.c.logs[p], &sn)
		tail.SetCatalog(live.Catalog())
		if diff := sameState(live, tail); diff != "" {
			s.fail("partition %d rebuilt from its snapshot at %d and the log since differs: %s", p, sn.head, diff)
		}
	}
	dec, err := DecodeState(EncodeState(live), s.c.limits)
	if err != nil {
		s.fail("partition %d: decode snapshot: %v", p, err)
	}
	dec.SetCatalog(live.Catalog())
	if diff := sameState(live, dec); diff != "" {
		s.fail("partition %d rebuilt from a snapshot differs: %s", p, diff)
	}
	for _, x := range []*State{dec, replayed} {
		ca, ma := live.Recover()
		cb, mb := x.Recover()
		if len(ca) != len(cb) || len(ma) != len(mb) || (len(ca)+len(ma) > 0 && fmt.Sprint(ca, ma) != fmt.Sprint(cb, mb)) {
			s.fail("partition %d: recovery of a rebuilt state differs:\n%v %v\n%v %v", p, ca, ma, cb, mb)
		}
	}
	for _, x := range []*State{dec, replayed} {
		for _, after := range []time.Duration{0, s.overdueAfter} {
			if a, b := live.Overdue(s.c.now, after), x.Overdue(s.c.now, after); fmt.Sprint(a) != fmt.Sprint(b) {
				s.fail("partition %d: overdue messages of a rebuilt state differ:\n%v\n%v", p, a, b)
			}
		}
	}
	la, oka := live.NextDeadline()
	lb, okb := replayed.NextDeadline()
	if oka != okb || !la.Equal(lb) {
		s.fail("partition %d: next deadline %v/%v, rebuilt %v/%v", p, la, oka, lb, okb)
	}
}

// retiredIn reports whether partition p's log retired reservation id.
func (s *sim) retiredIn(p int, id string) bool {
	key := reservationKey(id)
	for _, e := range s.c.logs[p] {
		if d, ok := e.Data.(EntitiesRetired); ok && slices.Contains(d.Keys, key) {
			return true
		}
	}
	return false
}

// checkQuiescent checks, with nothing in flight, that every reservation
// spanning partitions is held, committed or released on every line alike.
func (s *sim) checkQuiescent() {
	if s.c.inFlight() != 0 {
		s.fail("messages in flight at quiescence")
	}
	for h, st := range s.c.states {
		for id, r := range st.reservations {
			if r.home != h {
				// A participant's part: its home must agree, unless
				// these are lines held after the home was done with the
				// cart, not yet past their deadline (see State.Overdue).
				hr := s.c.states[r.home].reservations[id]
				if (hr == nil || hr.home != r.home || !sameAttempt(hr, r.attempt)) && !s.unwanted(h, r) {
					s.fail("partition %d: reservation %s of home %d is unknown at its home (%s)", h, id, r.home, r.status)
				}
				continue
			}
			if r.status == StatusPending || (r.saga != nil && len(r.saga.pending) > 0) {
				s.fail("partition %d: reservation %s is still %s with steps pending at quiescence", h, id, r.status)
			}
			if r.saga == nil {
				continue
			}
			for _, q := range r.saga.participants {
				pr := s.c.states[q].reservations[id]
				if pr != nil && pr.home != h {
					continue // refused as another home's cart
				}
				want := r.view(h)
				if pr == nil && s.retiredIn(q, id) {
					continue // settled there and retired since
				}
				switch r.status {
				case StatusHeld, StatusCommitted:
					if pr == nil || pr.status != r.status {
						s.fail("reservation %s is %s at home %d but %v at participant %d", id, r.status, h, statusOf(pr), q)
					}
					got := pr.view(q)
					n := 0
					for _, l := range want.Lines {
						if PartitionOf(l.SKU, s.c.p) == q {
							n++
						}
					}
					if r.status == StatusHeld && len(pr.liveLines(q)) != n {
						s.fail("reservation %s: home %d lists %d lines in partition %d, which holds %+v", id, h, n, q, pr.liveLines(q))
					}
					for _, l := range want.Lines {
						if PartitionOf(l.SKU, s.c.p) != q {
							continue
						}
						i := slices.IndexFunc(got.Lines, func(g ReservationLine) bool { return g.SKU == l.SKU })
						// The home is not told when the participant's
						// expected receipt arrives and converts the line's
						// preorders (docs/api.md): its allocations are then
						// the home's, moved from preorders to stock.
						converted := i >= 0 && l.Preorder > 0 && got.Lines[i].Preorder < l.Preorder
						if i < 0 || (!converted && fmt.Sprint(nonNil(got.Lines[i].Allocations)) != fmt.Sprint(nonNil(l.Allocations))) || got.Lines[i].Quantity != l.Quantity {
							s.fail("reservation %s line %s: home %d says %+v, participant %d says %+v", id, l.SKU, h, l, q, got.Lines)
						}
					}
				default:
					if pr != nil && (pr.status == StatusHeld || pr.status == StatusPending) && !s.unwanted(q, pr) {
						s.fail("reservation %s is %s at home %d but still held at participant %d", id, r.status, h, q)
					}
				}
			}
		}
	}
}

// unwanted reports whether a participant's part r, in partition p, may be
// lines held after the home was done with the cart, on a faulty network,
// whose answer was lost: held, and not yet past the deadline after which the
// participant asks the home again. Held past it, they are never left after
// settle.
func (s *sim) unwanted(p int, r *reservation) bool {
	return s.faulty && r.home != p && r.status == StatusHeld && unixNano(s.c.now) < r.expiresAt
}

func statusOf(r *reservation) string {
	if r == nil {
		return "absent"
	}
	return string(r.status)
}

// checkSignals checks the stock signals of a decision just applied in
// partition p against the rule, with the available stock of each SKU before
// (from the State the decision was made against) and after (from the State
// it made), as the views show it: for each SKU the decision's events name,
// OutOfStock when it fell from above 0 to 0, BackInStock when it rose from 0,
// LowStock (before OutOfStock) when it fell from above a threshold T > 0 to
// T or below, and nothing else; signals come after every other event of the
// decision, and change no stock.
func (s *sim) checkSignals(p int, cmd Command, d Decision) {
	st := s.c.states[p]
	tail := len(d.Events)
	for i, e := range d.Events {
		if isSignal(e.Data) {
			if tail == len(d.Events) {
				tail = i
			}
		} else if tail < len(d.Events) {
			s.fail("partition %d: %s: %s after the decision's signals", p, describe(cmd), e.Type())
		}
	}
	var skus []string
	for _, e := range d.Events[:tail] {
		if e.SKU != "" && !slices.Contains(skus, e.SKU) {
			skus = append(skus, e.SKU)
		}
	}
	var want []string
	for _, sku := range skus {
		before := s.availBefore[sku]
		v, _ := st.StockLevels(sku)
		after, threshold := v.Available, v.LowStockThreshold
		cause := ""
		for _, e := range d.Events[:tail] {
			if e.SKU == sku {
				cause = e.CommandID
			}
		}
		sig := func(data EventData) {
			want = append(want, fmt.Sprintf("%s %s %+v by %q", sku, data.EventType(), data, cause))
		}
		switch {
		case before > 0 && after == 0:
			if threshold > 0 && before > threshold {
				sig(LowStock{Available: after, LowStockThreshold: threshold})
			}
			sig(OutOfStock{Available: after})
		case before == 0 && after > 0:
			sig(BackInStock{Available: after, LowStockThreshold: threshold})
		case threshold > 0 && before > threshold && after <= threshold:
			sig(LowStock{Available: after, LowStockThreshold: threshold})
		}
		if after < 0 || before < 0 {
			s.fail("partition %d: %s: %s available %d, then %d: below zero", p, describe(cmd), sku, before, after)
		}
	}
	var got []string
	for _, e := range d.Events[tail:] {
		got = append(got, fmt.Sprintf("%s %s %+v by %q", e.SKU, e.Type(), e.Data, e.CommandID))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		s.fail("partition %d: %s: signals %q, want %q (available before %v)", p, describe(cmd), got, want, s.availBefore)
	}
	s.availBefore = nil
}

func isSignal(d EventData) bool {
	switch d.(type) {
	case LowStock, OutOfStock, BackInStock:
		return true
	}
	return false
}

// checkSignalLogs folds every partition's log and checks each SKU's stream
// of signals: a signal changes no stock and tells the available it follows;
// OutOfStock and BackInStock alternate, starting with BackInStock (a SKU is
// out of stock until it first has some); LowStock comes at or below the
// threshold; and at the end of the log, as after every decision, the SKU is
// available exactly when its last OutOfStock or BackInStock is BackInStock.
func (s *sim) checkSignalLogs() {
	for p, log := range s.c.logs {
		st := NewState(p, s.c.p, s.c.limits)
		in := map[string]bool{}
		for _, e := range log {
			var before SKUState
			if e.SKU != "" {
				before, _ = st.StockLevels(e.SKU)
			}
			if err := st.Apply(e); err != nil {
				s.fail("partition %d: refold: %v", p, err)
			}
			if !isSignal(e.Data) {
				continue
			}
			after, _ := st.StockLevels(e.SKU)
			after.Version, after.Position, after.AsOf = before.Version, before.Position, before.AsOf
			if !reflect.DeepEqual(before, after) {
				s.fail("partition %d: %s %s changed stock: %+v, then %+v", p, e.SKU, e.Type(), before, after)
			}
			switch d := e.Data.(type) {
			case OutOfStock:
				if !in[e.SKU] || after.Available != 0 || d.Available != 0 {
					s.fail("partition %d: %s OutOfStock at %d with %d available (in stock before: %v)", p, e.SKU, e.Position, after.Available, in[e.SKU])
				}
				in[e.SKU] = false
			case BackInStock:
				if in[e.SKU] || after.Available <= 0 || d.Available != after.Available {
					s.fail("partition %d: %s BackInStock %+v at %d with %d available (in stock before: %v)", p, e.SKU, d, e.Position, after.Available, in[e.SKU])
				}
				in[e.SKU] = true
			case LowStock:
				if d.LowStockThreshold <= 0 || d.LowStockThreshold != after.LowStockThreshold || d.Available != after.Available || after.Available > d.LowStockThreshold {
					s.fail("partition %d: %s LowStock %+v at %d with %d available, threshold %d", p, e.SKU, d, e.Position, after.Available, after.LowStockThreshold)
				}
			}
		}
		for _, sku := range st.SKUs() {
			v, _ := st.StockLevels(sku)
			if (v.Available > 0) != in[sku] {
				s.fail("partition %d: %s ends with %d available, but its last signal says in stock: %v", p, sku, v.Available, in[sku])
			}
		}
	}
}

// simBundle is the bundle the simulation defines, and defines again, over
// two of its SKUs.
const simBundle = "KIT"

func (s *sim) genBundle() (Command, intent) {
	a, b := s.rng.IntN(len(s.skus)), s.rng.IntN(len(s.skus)-1)
	if b >= a {
		b++
	}
	c := DefineBundle{SKU: simBundle, Components: []BundleComponent{
		{SKU: s.skus[a], Quantity: int64(1 + s.rng.IntN(2))},
		{SKU: s.skus[b], Quantity: 1},
	}}
	if s.chance(5) {
		c.Components = append(c.Components, BundleComponent{SKU: simBundle, Quantity: 1})
		return c, meantInvalid
	}
	return c, meantValid
}

// oracleExpand expands a cart's bundle lines into their components with the
// definitions st knows, summing every SKU's units, in its own way: false
// when two lines of one SKU ask for different locations.
func oracleExpand(st *State, lines []ReserveLine) ([]ReserveLine, bool) {
	var out []ReserveLine
	at := map[string]int{}
	add := func(l ReserveLine) bool {
		i, seen := at[l.SKU]
		if !seen {
			at[l.SKU] = len(out)
			out = append(out, l)
			return true
		}
		o := &out[i]
		if o.Location != l.Location || !slices.Equal(o.Locations, l.Locations) || o.Split != l.Split {
			return false
		}
		o.Quantity += l.Quantity
		return true
	}
	for _, l := range lines {
		b, isBundle := st.Bundle(l.SKU)
		if !isBundle {
			if !add(l) {
				return nil, false
			}
			continue
		}
		for _, c := range b.Components {
			part := l
			part.SKU, part.Quantity = c.SKU, c.Quantity*l.Quantity
			if !add(part) {
				return nil, false
			}
		}
	}
	return out, true
}

// oracleCommitBundles turns a partial commit's lines naming the
// reservation's bundles into component units, from what its view shows:
// false for more bundles than held.
func oracleCommitBundles(v Reservation, lines []CommitLine) ([]CommitLine, bool) {
	units := map[string]int64{}
	var order []string
	add := func(sku string, q int64) {
		if _, ok := units[sku]; !ok {
			order = append(order, sku)
		}
		units[sku] += q
	}
	for _, cl := range lines {
		i := slices.IndexFunc(v.Bundles, func(b ReservationBundle) bool { return b.SKU == cl.SKU })
		if i < 0 {
			add(cl.SKU, cl.Quantity)
			continue
		}
		b := v.Bundles[i]
		if cl.Quantity > b.Held {
			return nil, false
		}
		for _, c := range b.Components {
			add(c.SKU, c.Quantity/b.Held*cl.Quantity)
		}
	}
	out := make([]CommitLine, 0, len(order))
	for _, sku := range order {
		out = append(out, CommitLine{SKU: sku, Quantity: units[sku]})
	}
	return out, true
}
