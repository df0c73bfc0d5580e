package stockd

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the moment the given/when/then specs start at.
var t0 = time.Date(2027, 3, 10, 12, 0, 0, 0, time.UTC)

// spec is one given/when/then case: the given commands are applied first (each
// must be accepted), then when is decided, and the outcome is compared with
// the expectations.
type spec struct {
	name string
	// partitions is the number of partitions; zero means one.
	partitions int
	// given are applied in order, each after the due timers and with the
	// messages it causes delivered. Wrap a command with at to run it at a
	// later moment; otherwise it runs when the previous one did.
	given []Command
	// when is decided after the due timers of every partition have fired.
	// It may be wrapped with at, and may be tick{} to only fire timers.
	when Command

	// want are the events of when, compared by SKU and data, ignoring
	// fingerprints and times of events.
	want []Event
	// wantDue are the events the timers fired just before when.
	wantDue []Event
	// code is the expected error code; empty means accepted.
	code Code
	// lines are the expected shortfalls of an insufficient_stock error.
	lines []Shortfall
	// status is the expected status of a reservation_not_held error.
	status ReservationStatus
	// replay says when must be answered as a repeat.
	replay bool
	// check looks at the views afterwards.
	check func(t *testing.T, c *cluster)
	// unknown lists locations the spec names that must stay unconfigured.
	// Every other location a command of the spec names, and that no
	// ConfigureLocation of the spec configures, is configured before given,
	// last in priority (see configureNamed).
	unknown []string
}

// timed runs a command at t0 plus after.
type timed struct {
	after time.Duration
	cmd   Command
}

func (t timed) Validate(l Limits) error { return t.cmd.Validate(l) }
func (timed) route() route              { return route{} }

// at wraps a command to run at t0 plus d.
func at(d time.Duration, cmd Command) Command { return timed{after: d, cmd: cmd} }

// tick is a when that fires due timers and decides nothing else.
type tick struct{}

func (tick) Validate(Limits) error { return nil }
func (tick) route() route          { return route{} }

// ev builds an expected event.
func ev(sku string, data EventData) Event { return Event{SKU: sku, Data: data} }

// unwrap moves the cluster clock for a timed command and returns the command.
func (c *cluster) unwrap(cmd Command) Command {
	if t, ok := cmd.(timed); ok {
		next := t0.Add(t.after)
		if next.Before(c.now) {
			c.fatalf("spec goes back in time to %v", next)
		}
		c.now = next
		return t.cmd
	}
	return cmd
}

func runSpecs(t *testing.T, specs []spec) {
	t.Helper()
	seen := map[string]bool{}
	for _, sp := range specs {
		if seen[sp.name] {
			t.Fatalf("duplicate spec name %q", sp.name)
		}
		seen[sp.name] = true
		t.Run(sp.name, func(t *testing.T) { sp.run(t) })
	}
}

func (sp spec) run(t *testing.T) {
	c := newCluster(t, max(sp.partitions, 1), t0)
	c.configureNamed(append(slices.Clone(sp.given), sp.when), sp.unknown)
	for i, g := range sp.given {
		cmd := c.unwrap(g)
		c.tickAll()
		if _, ok := cmd.(tick); ok {
			continue
		}
		if _, _, err := c.do(cmd); err != nil {
			t.Fatalf("given[%d] %#v: %v", i, cmd, err)
		}
		c.quiesce()
	}
	cmd := c.unwrap(sp.when)
	before := make([]int, c.p)
	for p := range c.logs {
		before[p] = len(c.logs[p])
	}
	c.tickAll()
	var due []Event
	for p := range c.logs {
		due = append(due, c.logs[p][before[p]:]...)
	}
	var (
		d   Decision
		err error
		p   int
	)
	if _, ok := cmd.(tick); !ok {
		p, d, err = c.do(cmd)
	}
	compareEvents(t, "timer events", due, sp.wantDue)
	if sp.code != "" {
		if ErrorCode(err) != sp.code {
			t.Fatalf("error = %v, want code %s", err, sp.code)
		}
		var e *Error
		if !asError(err, &e) {
			t.Fatalf("error %T is not an *Error", err)
		}
		if sp.lines != nil && !reflect.DeepEqual(e.Lines, sp.lines) {
			t.Fatalf("shortfalls = %+v, want %+v", e.Lines, sp.lines)
		}
		if sp.code == CodeInsufficientStock && len(e.Lines) == 0 {
			t.Fatalf("insufficient_stock without lines")
		}
		if sp.status != "" && e.Status != sp.status {
			t.Fatalf("status = %q, want %q", e.Status, sp.status)
		}
	} else {
		if err != nil {
			t.Fatalf("error = %v, want none", err)
		}
		if d.Replay != sp.replay {
			t.Fatalf("replay = %v, want %v", d.Replay, sp.replay)
		}
		compareEvents(t, "events", d.Events, sp.want)
		if _, ok := cmd.(tick); !ok {
			if _, rerr := result(c.states[p], cmd); rerr != nil {
				t.Fatalf("Result after an accepted command: %v", rerr)
			}
		}
	}
	c.quiesce()
	if sp.check != nil {
		sp.check(t, c)
	}
	// Whatever happened, a rebuilt state must agree with the live one.
	for p, s := range c.states {
		re := c.replay(p, c.logs[p], nil)
		if p != LocationPartition {
			// As the engine does: locations come from their partition.
			re.SetCatalog(c.states[LocationPartition].Catalog())
		}
		if diff := sameState(s, re); diff != "" {
			t.Fatalf("partition %d rebuilt from its log differs: %s", p, diff)
		}
		dec, derr := DecodeState(EncodeState(s), c.limits)
		if derr != nil {
			t.Fatalf("partition %d: decode its snapshot: %v", p, derr)
		}
		dec.SetCatalog(s.Catalog())
		if diff := sameState(s, dec); diff != "" {
			t.Fatalf("partition %d rebuilt from a snapshot differs: %s", p, diff)
		}
	}
}

// configureNamed configures, before anything else happens, every valid
// location that cmds name without configuring it themselves, except those
// listed in unknown: commands are refused at locations never configured, and most
// specs are not about that. The locations get the lowest priority there is
// and no region, so that allocation orders them as it would order locations
// never configured: after every location a spec configures, by id.
func (c *cluster) configureNamed(cmds []Command, unknown []string) {
	c.tb.Helper()
	named := map[string]bool{}
	configured := map[string]bool{}
	for _, cmd := range cmds {
		if t, ok := cmd.(timed); ok {
			cmd = t.cmd
		}
		for _, loc := range locationsOf(cmd) {
			named[loc] = true
		}
		if l, ok := cmd.(ConfigureLocation); ok {
			configured[l.ID] = true
		}
	}
	for _, loc := range slices.Sorted(maps.Keys(named)) {
		if configured[loc] || slices.Contains(unknown, loc) || CheckName("location", loc) != nil {
			continue
		}
		if _, _, err := c.do(ConfigureLocation{ID: loc, Kind: KindWarehouse, Priority: math.MaxInt32}); err != nil {
			c.fatalf("configure %s: %v", loc, err)
		}
	}
	c.quiesce()
}

// locationsOf returns the locations a command names.
func locationsOf(cmd Command) []string {
	switch c := cmd.(type) {
	case ReceiveStock:
		return []string{c.Location}
	case AdjustStock:
		return []string{c.Location}
	case CountStock:
		return []string{c.Location}
	case TransferStock:
		return []string{c.From, c.To}
	case ExpectReceipt:
		return []string{c.Location}
	case Reserve, ChangeReservation:
		var lines []ReserveLine
		if r, ok := c.(Reserve); ok {
			lines = r.Lines
		} else {
			lines = c.(ChangeReservation).Lines
		}
		var out []string
		for _, l := range lines {
			if l.Location != "" {
				out = append(out, l.Location)
			}
			out = append(out, l.Locations...)
		}
		return out
	}
	return nil
}

func asError(err error, e **Error) bool { return errors.As(err, e) }

// compareEvents compares events by SKU and data, ignoring fingerprints.
func compareEvents(t *testing.T, what string, got, want []Event) {
	t.Helper()
	g, w := renderEvents(got), renderEvents(want)
	if g != w {
		t.Fatalf("%s:\n got: %s\nwant: %s", what, g, w)
	}
}

func renderEvents(events []Event) string {
	var b strings.Builder
	for i, e := range events {
		if i > 0 {
			b.WriteString("\n      ")
		}
		fmt.Fprintf(&b, "%s %s %+v", e.SKU, e.Data.EventType(), canon(e.Data))
	}
	return b.String()
}

// canon returns a copy of v with fingerprints zeroed, nil slices made empty
// and times in UTC, so that equal values print equally.
func canon(v any) any {
	rv := reflect.ValueOf(v)
	cp := reflect.New(rv.Type()).Elem()
	cp.Set(rv)
	canonValue(cp)
	return cp.Interface()
}

var timeType = reflect.TypeFor[time.Time]()

func canonValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
			return
		}
		for i := range v.NumField() {
			f := v.Field(i)
			if !f.CanSet() {
				continue
			}
			if v.Type().Field(i).Name == "Fingerprint" {
				f.SetUint(0)
				continue
			}
			canonValue(f)
		}
	case reflect.Slice:
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		for i := range cp.Len() {
			canonValue(cp.Index(i))
		}
		v.Set(cp)
	}
}

// Command builders.

func recv(id, sku, loc string, q int64) ReceiveStock {
	return ReceiveStock{ID: id, SKU: sku, Location: loc, Quantity: q}
}

func recvLot(id, sku, loc string, q int64, lot, bestBefore string) ReceiveStock {
	return ReceiveStock{ID: id, SKU: sku, Location: loc, Quantity: q, Lot: lot, BestBefore: bestBefore}
}

func adjust(id, sku, loc string, delta int64, reason AdjustReason) AdjustStock {
	return AdjustStock{ID: id, SKU: sku, Location: loc, Delta: delta, Reason: reason}
}

func reserve(id string, lines ...ReserveLine) Reserve { return Reserve{ID: id, Lines: lines} }

func line(sku string, q int64) ReserveLine { return ReserveLine{SKU: sku, Quantity: q} }

func lineAt(sku string, q int64, loc string) ReserveLine {
	return ReserveLine{SKU: sku, Quantity: q, Location: loc}
}

func warehouse(id string, priority int, region string) ConfigureLocation {
	return ConfigureLocation{ID: id, Kind: KindWarehouse, Priority: priority, Region: region}
}

func lq(loc, lot, bestBefore string, q int64) LotQty {
	return LotQty{Location: loc, Lot: lot, BestBefore: bestBefore, Quantity: q}
}

// View assertions.

func wantLoc(t *testing.T, c *cluster, sku, loc string, onHand, reserved, available, inTransit, shortage int64) {
	t.Helper()
	l := c.loc(sku, loc)
	got := [5]int64{l.OnHand, l.Reserved, l.Available, l.InTransit, l.Shortage}
	want := [5]int64{onHand, reserved, available, inTransit, shortage}
	if got != want {
		t.Fatalf("%s@%s on_hand/reserved/available/in_transit/shortage = %v, want %v", sku, loc, got, want)
	}
}

func wantLots(t *testing.T, c *cluster, sku, loc string, lots ...LotView) {
	t.Helper()
	got := c.loc(sku, loc).Lots
	if lots == nil {
		lots = []LotView{}
	}
	if got == nil {
		got = []LotView{}
	}
	if !reflect.DeepEqual(got, lots) {
		t.Fatalf("%s@%s lots = %+v, want %+v", sku, loc, got, lots)
	}
}

func wantRes(t *testing.T, c *cluster, id string, status ReservationStatus) Reservation {
	t.Helper()
	r, ok := c.res(id)
	if !ok {
		t.Fatalf("reservation %s not found", id)
	}
	if r.Status != status {
		t.Fatalf("reservation %s status = %s, want %s", id, r.Status, status)
	}
	return r
}

func wantNoRes(t *testing.T, c *cluster, id string) {
	t.Helper()
	if r, ok := c.res(id); ok {
		t.Fatalf("reservation %s exists: %+v", id, r)
	}
}

// result returns the typed answer to cmd, as the engine would give it, as an
// any: the given/when/then specs compare it with what they expect.
func result(s *State, cmd Command) (any, error) {
	switch c := cmd.(type) {
	case ConfigureLocation:
		return s.LocationResult(c.ID)
	case ConfigureSKU:
		return s.SKUConfigResult(c.SKU)
	case DefineBundle:
		return s.BundleResult(c.SKU)
	case ReceiveStock:
		return s.ReceiptResult(c)
	case AdjustStock:
		return s.AdjustmentResult(c)
	case CountStock:
		return s.CountResult(c)
	case TransferStock:
		return s.TransferResult(c.ID)
	case ArriveTransfer:
		return s.TransferResult(c.ID)
	case Reserve:
		return s.ReservationResult(c.ID)
	case ExtendReservation:
		return s.ReservationResult(c.ID)
	case CommitReservation:
		return s.ReservationResult(c.ID)
	case ReleaseReservation:
		return s.ReservationResult(c.ID)
	case ChangeReservation:
		return s.ReservationResult(c.ID)
	case ExpectReceipt:
		return s.ExpectedReceiptResult(c)
	case ArriveExpected:
		return s.ExpectedArrivalResult(c)
	case CancelExpected:
		return s.ExpectedCancelResult(c)
	}
	return nil, nil
}
