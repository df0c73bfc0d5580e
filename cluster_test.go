package stockd

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// cluster is a test model of the engine: one State per partition, each with
// its log, a durable prefix of that log, the messages of decisions that are
// not durable yet, and FIFO queues of delivered-but-not-yet-decided messages
// per (sender, receiver). It drives the core exactly as the engine does: due
// timers fire before every command, decisions are applied in order, messages
// leave a partition only once the decision that sent them is durable, and a
// crash drops everything that was not durable before every partition is
// rebuilt and recovered.
//
// With auto set, every decision is durable as soon as it is applied (its
// messages are queued at once); deliveries still happen only when asked for,
// so tests can look at a saga half way.
type cluster struct {
	tb     testing.TB
	p      int
	limits Limits
	now    time.Time
	auto   bool

	states  []*State
	logs    [][]Event
	durable []int         // number of durable events at the head of logs[p]
	outbox  [][]Message   // messages of decisions of p that are not durable yet
	queues  [][][]Command // queues[from][to]: messages in flight, oldest first
	snaps   []snap        // the latest snapshot of each partition, if any
	// retired are the retired records written with the logs' events, by
	// partition and key, as a store keeps them: those of events a crash
	// loses are lost with them. (Unlike the engine, the cluster has no
	// registry making an id unique across partitions: ids are unique per
	// partition here.)
	retired map[retiredAt]RetiredRecord

	// resolved collects, per reservation, the resolutions seen in applied
	// decisions, oldest first.
	resolved map[string][]Resolution
	// observe, when set, is called with every decision (or rejection)
	// before it is applied, while states[p] still holds the state it was
	// decided against.
	// st is the State decided against: states[p], or for a retired id
	// the State restored from its retired record.
	observe func(p int, st *State, cmd Command, d Decision, err error)
	// applied, when set, is called after a decision has been applied.
	applied func(p int, cmd Command, d Decision)
}

// snap is a stored snapshot: the encoding of a state whose events were all
// durable.
type snap struct {
	head uint64
	data []byte
}

// newCluster returns a cluster of p empty partitions at time now.
func newCluster(tb testing.TB, p int, now time.Time) *cluster {
	c := &cluster{
		tb: tb, p: p, limits: DefaultLimits, now: now, auto: true,
		states: make([]*State, p), logs: make([][]Event, p), durable: make([]int, p),
		outbox: make([][]Message, p), queues: make([][][]Command, p), snaps: make([]snap, p),
		resolved: make(map[string][]Resolution), retired: make(map[retiredAt]RetiredRecord),
	}
	for i := range p {
		c.states[i] = NewState(i, p, c.limits)
		c.queues[i] = make([][]Command, p)
	}
	return c
}

// fatalf stops the test, from any goroutine that owns tb.
func (c *cluster) fatalf(format string, args ...any) {
	c.tb.Helper()
	c.tb.Fatalf(format, args...)
}

// route returns the partition that decides cmd, as the engine's router and
// its id index would.
func (c *cluster) route(cmd Command) int {
	switch x := cmd.(type) {
	case ConfigureLocation, DefineBundle:
		return LocationPartition
	case ConfigureSKU:
		return PartitionOf(x.SKU, c.p)
	case ReceiveStock:
		return PartitionOf(x.SKU, c.p)
	case AdjustStock:
		return PartitionOf(x.SKU, c.p)
	case CountStock:
		return PartitionOf(x.SKU, c.p)
	case TransferStock:
		return PartitionOf(x.SKU, c.p)
	case ExpectReceipt:
		return PartitionOf(x.SKU, c.p)
	case ArriveExpected:
		return c.expectedHome(x.ID)
	case CancelExpected:
		return c.expectedHome(x.ID)
	case ArriveTransfer:
		for p, s := range c.states {
			if _, ok := s.TransferView(x.ID); ok {
				return p
			}
		}
		return 0
	case Reserve:
		if p, ok := c.home(x.ID); ok {
			return p
		}
		if len(x.Lines) == 0 {
			return 0
		}
		return PartitionOf(x.Lines[0].SKU, c.p)
	case ExtendReservation:
		p, _ := c.home(x.ID)
		return p
	case CommitReservation:
		p, _ := c.home(x.ID)
		return p
	case ReleaseReservation:
		p, _ := c.home(x.ID)
		return p
	case ChangeReservation:
		p, _ := c.home(x.ID)
		return p
	}
	return 0
}

// home returns the partition that drives reservation id.
func (c *cluster) home(id string) (int, bool) {
	for p, s := range c.states {
		if _, ok := s.ReservationView(id); ok {
			return p, true
		}
	}
	return 0, false
}

// tick fires the due timers of partition p.
func (c *cluster) tick(p int) {
	c.tb.Helper()
	for _, cmd := range c.states[p].Due(c.now) {
		d, err := c.states[p].Decide(cmd, c.now)
		if err != nil {
			c.fatalf("partition %d: due %#v: %v", p, cmd, err)
		}
		c.commit(p, cmd, d, err)
	}
}

// tickAll fires the due timers of every partition.
func (c *cluster) tickAll() {
	c.tb.Helper()
	for p := range c.states {
		c.tick(p)
	}
}

// do sends a client command to its partition, as the engine would: a
// command naming an entity that was retired is decided against the State
// restored from its retired record, and changes nothing.
func (c *cluster) do(cmd Command) (int, Decision, error) {
	c.tb.Helper()
	p := c.route(cmd)
	if key, lookup, ok := entityKey(cmd); ok {
		if rec, ok := c.retiredRecord(p, key, lookup); ok {
			st, err := RestoreRetired(rec, c.p, c.limits)
			if err != nil {
				c.fatalf("restore %s: %v", key, err)
			}
			d, err := st.Decide(cmd, c.now)
			if err == nil && (!d.Replay || len(d.Events) > 0) {
				c.fatalf("%#v would change retired %s", cmd, key)
			}
			if c.observe != nil {
				c.observe(rec.Partition, st, cmd, d, err)
			}
			return rec.Partition, d, err
		}
	}
	d, err := c.exec(p, cmd)
	return p, d, err
}

// retiredAt names a retired record in the cluster.
type retiredAt struct {
	partition int
	key       string
}

// retiredRecord returns the retired record of key that a command routed to
// p is answered from: for a command that creates its entity, the record of
// partition p, if p no longer holds the entity; for one that acts on an
// existing entity (lookup), the record of whichever partition retired it, if
// none holds it.
func (c *cluster) retiredRecord(p int, key Key, lookup bool) (RetiredRecord, bool) {
	if !lookup {
		rec, ok := c.retired[retiredAt{p, key.String()}]
		return rec, ok && !c.states[p].Knows(key)
	}
	for q, s := range c.states {
		if s.Knows(key) {
			return RetiredRecord{}, false
		}
		if rec, ok := c.retired[retiredAt{q, key.String()}]; ok {
			return rec, true
		}
	}
	return RetiredRecord{}, false
}

// entityKey returns the key of the entity a client command creates or acts
// on, as the engine's registry knows it, and whether the command acts on an
// existing entity rather than creating one.
func entityKey(cmd Command) (key Key, lookup, ok bool) {
	if !isClient(cmd) || cmd.Validate(DefaultLimits) != nil {
		return Key{}, false, false
	}
	rt := RouteOf(cmd)
	switch {
	case rt.Lookup.ID != "":
		return rt.Lookup, true, true
	case rt.Claim.ID != "":
		return rt.Claim, false, true
	}
	return Key{}, false, false
}

// exec fires p's due timers, then decides and applies cmd in p.
func (c *cluster) exec(p int, cmd Command) (Decision, error) {
	c.tb.Helper()
	c.tick(p)
	d, err := c.states[p].Decide(cmd, c.now)
	if err != nil {
		if len(d.Events) != 0 || len(d.Messages) != 0 {
			c.fatalf("partition %d: rejected %#v with events or messages", p, cmd)
		}
	}
	c.commit(p, cmd, d, err)
	return d, err
}

// commit observes a decision and, unless it was rejected, applies it.
func (c *cluster) commit(p int, cmd Command, d Decision, err error) {
	c.tb.Helper()
	if c.observe != nil {
		c.observe(p, c.states[p], cmd, d, err)
	}
	if err != nil {
		return
	}
	s := c.states[p]
	for _, e := range d.Events {
		if aerr := s.Apply(e); aerr != nil {
			c.fatalf("partition %d: apply %s: %v", p, e.Type(), aerr)
		}
		c.logs[p] = append(c.logs[p], e)
		if _, ok := (Catalog{}).Learn(e.Data); ok {
			c.publishLocations()
		}
	}
	for _, k := range d.Keys {
		if k.Partition != p || k.Position <= s.Head()-uint64(len(d.Events)) || k.Position > s.Head() {
			c.fatalf("partition %d: key %+v outside the decision's events", p, k)
		}
	}
	for _, r := range d.Retired {
		if r.Partition != p || r.Position <= s.Head()-uint64(len(d.Events)) || r.Position > s.Head() {
			c.fatalf("partition %d: retired record %+v outside the decision's events", p, r)
		}
		at := retiredAt{p, r.Key}
		if _, dup := c.retired[at]; dup {
			c.fatalf("partition %d: %s retired twice", p, r.Key)
		}
		c.retired[at] = r
	}
	for _, r := range d.Resolved {
		c.resolved[r.Reservation] = append(c.resolved[r.Reservation], r)
	}
	c.outbox[p] = append(c.outbox[p], d.Messages...)
	if c.applied != nil {
		c.applied(p, cmd, d)
	}
	if c.auto {
		c.flush(p)
	}
}

// publishLocations hands the location partition's map to the others.
func (c *cluster) publishLocations() {
	cat := c.states[LocationPartition].Catalog()
	for p, s := range c.states {
		if p != LocationPartition {
			s.SetCatalog(cat)
		}
	}
}

// flush makes every applied decision of p durable and sends its messages.
func (c *cluster) flush(p int) {
	c.durable[p] = len(c.logs[p])
	for _, m := range c.outbox[p] {
		if m.To < 0 || m.To >= c.p || m.To == p {
			c.fatalf("partition %d: message to partition %d", p, m.To)
		}
		c.queues[p][m.To] = append(c.queues[p][m.To], m.Command)
	}
	c.outbox[p] = nil
}

// flushAll makes everything durable.
func (c *cluster) flushAll() {
	for p := range c.states {
		c.flush(p)
	}
}

// inFlight returns the number of queued messages.
func (c *cluster) inFlight() int {
	n := 0
	for _, qs := range c.queues {
		for _, q := range qs {
			n += len(q)
		}
	}
	return n
}

// deliver decides the oldest message from one partition to another.
func (c *cluster) deliver(from, to int) bool {
	c.tb.Helper()
	q := c.queues[from][to]
	if len(q) == 0 {
		return false
	}
	cmd := q[0]
	c.queues[from][to] = q[1:]
	if _, err := c.exec(to, cmd); err != nil {
		c.fatalf("partition %d: message from %d %#v: %v", to, from, cmd, err)
	}
	return true
}

// quiesce flushes and delivers until nothing is left in flight.
func (c *cluster) quiesce() {
	c.tb.Helper()
	for guard := 0; ; guard++ {
		if guard > 100000 {
			c.fatalf("messages never stop")
		}
		c.flushAll()
		moved := false
		for from := range c.queues {
			for to := range c.queues[from] {
				for c.deliver(from, to) {
					moved = true
				}
			}
		}
		if !moved {
			c.flushAll()
			if c.inFlight() == 0 {
				return
			}
		}
	}
}

// snapshot stores the encoding of p's state if every event of it is durable.
func (c *cluster) snapshot(p int) bool {
	if c.durable[p] != len(c.logs[p]) {
		return false
	}
	c.snaps[p] = snap{head: c.states[p].Head(), data: EncodeState(c.states[p])}
	return true
}

// replay returns partition p rebuilt by applying events from its empty state,
// or from a snapshot when one is given.
func (c *cluster) replay(p int, events []Event, from *snap) *State {
	c.tb.Helper()
	s := NewState(p, c.p, c.limits)
	if from != nil && from.data != nil {
		var err error
		s, err = DecodeState(from.data, c.limits)
		if err != nil {
			c.fatalf("partition %d: decode snapshot: %v", p, err)
		}
		events = events[from.head:]
	}
	for _, e := range events {
		if err := s.Apply(e); err != nil {
			c.fatalf("partition %d: replay %s: %v", p, e.ID(), err)
		}
	}
	return s
}

// crash loses everything that was not durable, rebuilds every partition from
// its durable log (from its snapshot when useSnap says so), and recovers:
// commands returned by Recover are decided, messages sent.
func (c *cluster) crash(useSnap func(p int) bool) {
	c.tb.Helper()
	for k, r := range c.retired {
		if r.Position > uint64(c.durable[k.partition]) {
			delete(c.retired, k)
		}
	}
	for p := range c.states {
		c.logs[p] = c.logs[p][:c.durable[p]:c.durable[p]]
		c.outbox[p] = nil
		for to := range c.queues[p] {
			c.queues[p][to] = nil
		}
		var from *snap
		if c.snaps[p].data != nil && useSnap != nil && useSnap(p) {
			from = &c.snaps[p]
		}
		c.states[p] = c.replay(p, c.logs[p], from)
	}
	c.publishLocations()
	cmds := make([][]Command, c.p)
	for p, s := range c.states {
		var msgs []Message
		cmds[p], msgs = s.Recover()
		for _, m := range msgs {
			c.queues[p][m.To] = append(c.queues[p][m.To], m.Command)
		}
	}
	for p := range c.states {
		c.tick(p)
		for _, cmd := range cmds[p] {
			if _, err := c.exec(p, cmd); err != nil {
				c.fatalf("partition %d: recover %#v: %v", p, cmd, err)
			}
		}
	}
}

// sku returns the view of a SKU from its partition.
func (c *cluster) sku(sku string) SKUState {
	v, _ := c.states[PartitionOf(sku, c.p)].SKUView(sku)
	return v
}

// loc returns the stock of sku at location.
func (c *cluster) loc(sku, location string) LocationState {
	for _, l := range c.sku(sku).Locations {
		if l.Location == location {
			return l
		}
	}
	return LocationState{Location: location}
}

// res returns a reservation from its home.
func (c *cluster) res(id string) (Reservation, bool) {
	p, ok := c.home(id)
	if !ok {
		return Reservation{}, false
	}
	return c.states[p].ReservationView(id)
}

// lastResolution returns the latest resolution of reservation id.
func (c *cluster) lastResolution(id string) (Resolution, bool) {
	rs := c.resolved[id]
	if len(rs) == 0 {
		return Resolution{}, false
	}
	return rs[len(rs)-1], true
}

// skuIn returns a SKU name with the given prefix that lands in partition p of
// partitions.
func skuIn(prefix string, p, partitions int) string {
	for i := 0; ; i++ {
		s := prefix + strconv.Itoa(i)
		if PartitionOf(s, partitions) == p {
			return s
		}
	}
}

// keysOf lists a partition's accepted idempotency keys, sorted.
func keysOf(s *State) []string {
	var out []string
	s.Keys(func(k Key, fp uint64) { out = append(out, k.String()+"="+strconv.FormatUint(fp, 16)) })
	slices.Sort(out)
	return out
}

// sameState reports the first difference between two states' internals, or
// "" if they are equivalent: everything but the order of the timer heap,
// whose stale entries are allowed to differ as long as the live ones agree.
// It compares without formatting, and formats only what differs, because the
// simulation calls it after every step.
func sameState(a, b *State) string {
	if a.partition != b.partition || a.partitions != b.partitions || a.head != b.head || !a.clock.Equal(b.clock) {
		return fmt.Sprintf("header %d/%d@%d %v vs %d/%d@%d %v", a.partition, a.partitions, a.head, a.clock, b.partition, b.partitions, b.head, b.clock)
	}
	if len(a.skus) != len(b.skus) {
		return fmt.Sprintf("skus %v vs %v", a.SKUs(), b.SKUs())
	}
	for id, x := range a.skus {
		y := b.skus[id]
		if y == nil || !sameSKU(x, y) {
			return fmt.Sprintf("sku %s differs:\n%s\n%s", id, normSKU(x), normSKU(y))
		}
	}
	if len(a.reservations) != len(b.reservations) {
		return fmt.Sprintf("%d reservations vs %d", len(a.reservations), len(b.reservations))
	}
	for id, x := range a.reservations {
		y := b.reservations[id]
		if y == nil || !sameReservation(x, y) {
			return fmt.Sprintf("reservation %s differs:\n%s\n%s", id, normRes(x), normRes(y))
		}
	}
	if len(a.transfers) != len(b.transfers) {
		return "transfers differ"
	}
	for id, x := range a.transfers {
		y := b.transfers[id]
		if y == nil || x.id != y.id || x.fingerprint != y.fingerprint || x.sku != y.sku || x.from != y.from || x.to != y.to ||
			x.qty != y.qty || !slices.Equal(x.lots, y.lots) || !x.sentAt.Equal(y.sentAt) || !x.arrivedAt.Equal(y.arrivedAt) {
			return "transfer " + id + " differs"
		}
	}
	if !maps.EqualFunc(a.records, b.records, func(x, y record) bool {
		return x.fingerprint == y.fingerprint && x.position == y.position && x.time.Equal(y.time) && x.delta == y.delta
	}) {
		return "records differ"
	}
	if diff := samePreorderState(a, b); diff != "" {
		return diff
	}
	if !maps.Equal(a.locations, b.locations) {
		return fmt.Sprintf("locations differ:\n%v\n%v", a.locations, b.locations)
	}
	if !reflect.DeepEqual(a.bundles, b.bundles) {
		return fmt.Sprintf("bundles differ:\n%v\n%v", a.bundles, b.bundles)
	}
	if !maps.EqualFunc(a.outstanding, b.outstanding, func(x, y *reservation) bool { return x.id == y.id }) {
		return fmt.Sprintf("outstanding saga work differs:\n%v\n%v", slices.Sorted(maps.Keys(a.outstanding)), slices.Sorted(maps.Keys(b.outstanding)))
	}
	if ta, tb := a.liveTimers(), b.liveTimers(); !maps.Equal(ta, tb) {
		return fmt.Sprintf("live timers differ:\n%v\n%v", ta, tb)
	}
	return ""
}

func sameSKU(x, y *skuState) bool {
	if x.id != y.id || x.version != y.version || x.safety != y.safety || x.lowStock != y.lowStock || len(x.stocks) != len(y.stocks) ||
		!sameLimit(x.limit, y.limit) {
		return false
	}
	for loc, a := range x.all() {
		b := y.find(loc)
		if b == nil || a.onHand != b.onHand || a.reserved != b.reserved || a.inTransit != b.inTransit ||
			!slices.Equal(a.lots, b.lots) {
			return false
		}
	}
	return true
}

func sameReservation(x, y *reservation) bool {
	if x.id != y.id || x.fingerprint != y.fingerprint || x.status != y.status || x.customer != y.customer ||
		x.createdAt != y.createdAt || x.expiresAt != y.expiresAt || x.settledAt != y.settledAt || x.home != y.home || len(x.lines) != len(y.lines) ||
		x.attempt != y.attempt || x.step != y.step || !reflect.DeepEqual(x.bundles, y.bundles) {
		return false
	}
	for i, a := range x.lines {
		b := y.lines[i]
		if a.sku != b.sku || a.partition != b.partition || a.quantity != b.quantity || a.committed != b.committed ||
			!slices.Equal(a.allocations, b.allocations) || !slices.Equal(a.committedAt, b.committedAt) || a.released != b.released {
			return false
		}
	}
	g, h := x.saga, y.saga
	if g == nil || h == nil {
		return g == h
	}
	l, m := g.last, h.last
	return slices.Equal(g.participants, h.participants) && g.step == h.step && g.action == h.action &&
		slices.Equal(g.pending, h.pending) && slices.Equal(g.held, h.held) && slices.Equal(g.failed, h.failed) &&
		g.aborted == h.aborted && g.since == h.since && g.region == h.region && reflect.DeepEqual(g.hold, h.hold) &&
		l.Reservation == m.Reservation && l.Step == m.Step && l.Action == m.Action &&
		slices.Equal(l.Participants, m.Participants) && l.ExpiresAt.Equal(m.ExpiresAt) && l.Reason == m.Reason &&
		slices.Equal(l.Lines, m.Lines)
}

// timerKey identifies a timer: a hold (reservation id) or a lot (SKU,
// location, lot and best-before) due at a moment.
type timerKey struct {
	at                             int64
	hold                           string
	sku, location, lot, bestBefore string
}

// liveTimers returns the set of timers that still match the state.
func (s *State) liveTimers() map[timerKey]bool {
	out := map[timerKey]bool{}
	for _, t := range s.timers.holds {
		if s.liveHold(t) {
			out[timerKey{at: t.at, hold: t.r.id}] = true
		}
	}
	for _, t := range s.timers.lots {
		if s.liveLot(t) {
			out[timerKey{at: t.at, sku: t.sku, location: t.location, lot: t.lot, bestBefore: t.bestBefore}] = true
		}
	}
	return out
}

func normSKU(sk *skuState) string {
	if sk == nil {
		return "absent"
	}
	out := fmt.Sprintf("%s v%d s%d l%d [", sk.id, sk.version, sk.safety, sk.lowStock)
	for _, loc := range slices.Sorted(slices.Values(sk.stockList)) {
		st := sk.find(loc)
		out += fmt.Sprintf("%s:%d/%d/%d %v; ", loc, st.onHand, st.reserved, st.inTransit, st.lots)
	}
	return out + "]"
}

func normRes(r *reservation) string {
	if r == nil {
		return "absent"
	}
	out := fmt.Sprintf("%s %x %s %s %s %s h%d a%d s%d [", r.id, r.fingerprint, r.status, r.customer,
		fromUnixNano(r.createdAt).Format(time.RFC3339Nano), fromUnixNano(r.expiresAt).Format(time.RFC3339Nano), r.home, r.attempt, r.step)
	for _, l := range r.lines {
		out += fmt.Sprintf("%s p%d q%d c%d %v %v %v; ", l.sku, l.partition, l.quantity, l.committed, l.allocations, l.committedAt, l.released)
	}
	out += "]"
	if g := r.saga; g != nil {
		out += fmt.Sprintf(" saga %v s%d a%d p%v h%v f%v ab%v since%d region%q hold%v last%+v", g.participants, g.step, g.action,
			g.pending, g.held, g.failed, g.aborted, g.since, g.region, g.hold, g.last)
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
