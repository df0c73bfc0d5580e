// Package sim is a simulated shop that drives a stockd server through its
// HTTP API: customers hold carts and pay, release or abandon them, a
// supplier drops CSV files of dated lots, and lots expire. It follows the
// change feed to chart the stock of chosen SKUs live in a terminal, and
// ends with a summary checked against the server: every SKU's on_hand must
// equal what its history received, less what was committed and what
// expired, plus adjustments. `stockd simulate` runs it.
//
// The decisions (which SKUs, how many, pay or abandon, what each drop
// holds) come from the seed (see Plan); the server's answers depend on
// timing, so which carts are refused may differ between runs.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// Options configure a run.
type Options struct {
	// Client talks to the server.
	Client *client.Client
	// Plan draws the decisions.
	Plan PlanConfig
	// Duration is how long customers shop; default 30 s.
	Duration time.Duration
	// Customers is how many carts may be open at once; default 16.
	Customers int
	// Location is the warehouse the drops are booked into; default sim-w1.
	Location string
	// Watch names the SKUs to chart; default the first four.
	Watch []string
	// Now is the server's clock, which dates the lots; default time.Now.
	Now func() time.Time
	// Advance, when set, moves the server's clock on (ShopClock.Advance):
	// by a day every Day, so that lots expire. Without it lots expire only
	// when the server's own day ends.
	Advance func(time.Duration)
	Day     time.Duration
	// Live, when set, is a terminal the live view is drawn on every
	// Redraw (default 250 ms), Width columns wide (default 80).
	Live   io.Writer
	Width  int
	Redraw time.Duration
	// Tag prefixes the ids of the run's carts and drops; default one made
	// of the seed and the start time, so that runs against the same server
	// do not collide.
	Tag string
	// Server names the server in the summary.
	Server string
}

// Summary is what a run did, and the server's state after it.
type Summary struct {
	Seed     uint64  `json:"seed"`
	Run      string  `json:"run"`
	Server   string  `json:"server"`
	Duration string  `json:"duration"`
	Elapsed  float64 `json:"elapsed_seconds"`
	// Days counts the shop midnights the clock was moved over.
	Days int `json:"days"`

	// What the customers did and were told.
	Attempts       int64            `json:"attempts"`
	AttemptsPerSec float64          `json:"attempts_per_second"`
	Granted        int64            `json:"granted"`
	Refused        map[string]int64 `json:"refused"`
	Paid           int64            `json:"paid"`
	Released       int64            `json:"released"`
	Abandoned      int64            `json:"abandoned"`
	// PayFailed and ReleaseFailed count, by code, the carts whose
	// customer came back too late (reservation_not_held: the hold had
	// expired, at a shop midnight) or failed otherwise.
	PayFailed     map[string]int64 `json:"pay_failed"`
	ReleaseFailed map[string]int64 `json:"release_failed"`

	// The supplier's drops, by their import reports.
	Drops       int   `json:"drops"`
	RowsBooked  int   `json:"rows_booked"`
	RowsRefused int   `json:"rows_refused"`
	DropUnits   int64 `json:"drop_units"`

	// History is what the SKUs' event histories on the server say about
	// this run's carts, and about all their stock.
	History HistoryCounts `json:"history"`

	// SKUs are the server's state of each SKU after the run, with the
	// conservation check.
	SKUs      []SKUSummary `json:"skus"`
	Conserved bool         `json:"conserved"`
}

// HistoryCounts are counted from the server's event histories of the
// shop's SKUs: carts by reservation id (those of this run), units and lots
// over the SKUs' whole history.
type HistoryCounts struct {
	CartsHeld      int `json:"carts_held"`
	CartsCommitted int `json:"carts_committed"`
	CartsReleased  int `json:"carts_released"`
	HoldsExpired   int `json:"holds_expired"`
	// CartsCompensated counts carts of several lines refused after a line
	// was held in another partition: that line is released again.
	CartsCompensated int `json:"carts_compensated"`
	// CartsOpen counts the carts still held when the run ended.
	CartsOpen   int   `json:"carts_open"`
	LotsExpired int   `json:"lots_expired"`
	Received    int64 `json:"received"`
	Committed   int64 `json:"committed"`
	Expired     int64 `json:"expired"`
	Adjusted    int64 `json:"adjusted"`
}

// SKUSummary is one SKU after the run: its state from GET /v1/skus/{sku},
// and the totals of its history up to that state's version.
type SKUSummary struct {
	SKU       string `json:"sku"`
	Version   uint64 `json:"version"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	Received  int64  `json:"received"`
	Committed int64  `json:"committed"`
	// Expired is the units of lots that expired, LotsExpired their number.
	Expired     int64 `json:"expired"`
	LotsExpired int   `json:"lots_expired"`
	// Adjusted is the net of adjustments and counts, Transferred the net
	// of transfers out and arrivals (the simulator makes neither).
	Adjusted    int64 `json:"adjusted"`
	Transferred int64 `json:"transferred"`
	// Conserved: on_hand = received − committed − expired + adjusted +
	// transferred.
	Conserved bool `json:"conserved"`
	// Chart is the available stock the live chart, built from the change
	// feed, ended at (watched SKUs only).
	Chart *int64 `json:"chart_available,omitempty"`
}

// stats are the counters the customers and the supplier keep.
type stats struct {
	attempts, granted, paid, released, abandoned atomic.Int64
	drops, rowsBooked, rowsRefused, days         atomic.Int64
	dropUnits                                    atomic.Int64

	mu                                sync.Mutex
	refused, payFailed, releaseFailed map[string]int64
}

func (s *stats) count(m map[string]int64, err error) {
	code := string(stockd.ErrorCode(err))
	if code == "" {
		code = "error"
	}
	s.mu.Lock()
	m[code]++
	s.mu.Unlock()
}

func (s *stats) snapshot(m map[string]int64) map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(m)
}

// run is one simulation under way.
type run struct {
	o     Options
	plan  *Plan
	skus  []string
	st    stats
	chart *chart
	start time.Time
}

// Run runs the shop for o.Duration, or until ctx is done, and returns its
// summary. An error means the shop could not be set up or the server's
// state not read; a summary whose Conserved is false is not an error.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if o.Client == nil {
		return nil, errors.New("sim: no client")
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Customers <= 0 {
		o.Customers = 16
	}
	if o.Location == "" {
		o.Location = "sim-w1"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Redraw <= 0 {
		o.Redraw = 250 * time.Millisecond
	}
	if o.Width <= 0 {
		o.Width = 80
	}
	if o.Plan.SKUs <= 0 {
		o.Plan.SKUs = 8
	}
	if o.Plan.Rate <= 0 {
		o.Plan.Rate = 50
	}
	if o.Plan.Hold <= 0 {
		o.Plan.Hold = 2 * time.Second
	}
	if o.Plan.DropEvery <= 0 {
		o.Plan.DropEvery = 5 * time.Second
	}
	if o.Tag == "" {
		o.Tag = "sim" + strconv.FormatUint(o.Plan.Seed, 10) + "-" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	}
	r := &run{o: o, plan: NewPlan(o.Plan)}
	r.st.refused, r.st.payFailed, r.st.releaseFailed = map[string]int64{}, map[string]int64{}, map[string]int64{}
	for i := range o.Plan.SKUs {
		r.skus = append(r.skus, SKUName(i, o.Plan.SKUs))
	}
	watch := o.Watch
	if len(watch) == 0 {
		watch = r.skus[:min(4, len(r.skus))]
	}

	if _, err := o.Client.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: o.Location, Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		return nil, fmt.Errorf("configuring location %s: %w", o.Location, err)
	}
	var err error
	r.chart, err = newChart(ctx, o.Client, skuPrefix, watch)
	if err != nil {
		return nil, err
	}
	feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
	feedDone := make(chan error, 1)
	go func() { feedDone <- r.chart.follow(feedCtx) }()
	defer func() {
		stopFeed()
		<-feedDone
	}()

	r.start = time.Now()
	// Drop 0 stocks the shop before the first customer.
	if err := r.drop(ctx, 0); err != nil {
		return nil, err
	}
	shopCtx, stopShop := context.WithTimeout(ctx, o.Duration)
	defer stopShop()
	var wg sync.WaitGroup
	wg.Go(func() { r.supplier(shopCtx) })
	var next atomic.Int64
	for range o.Customers {
		wg.Go(func() { r.customer(shopCtx, &next) })
	}
	drawDone := make(chan struct{})
	if o.Live != nil {
		go func() {
			defer close(drawDone)
			r.draw(shopCtx)
		}()
	} else {
		close(drawDone)
	}
	wg.Wait()
	<-drawDone
	elapsed := time.Since(r.start)

	// The server is read even when ctx was cancelled (an interrupt): the
	// summary is what the run is for.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	sum, err := r.summarize(rctx, elapsed, watch)
	if o.Live != nil {
		r.frame(o.Live, true)
	}
	return sum, err
}

// skuPrefix starts the name of every SKU the shop sells.
const skuPrefix = "SIM-"

// customer takes carts in turn, each at its time in the schedule (cart n
// at n/rate seconds), until ctx is done. A customer in the middle of a
// cart finishes it (thinking at most half the hold) before stopping.
func (r *run) customer(ctx context.Context, next *atomic.Int64) {
	for {
		n := int(next.Add(1) - 1)
		at := r.start.Add(time.Duration(float64(n) / r.o.Plan.Rate * float64(time.Second)))
		if sleep(ctx, time.Until(at)) != nil {
			return
		}
		r.cart(context.WithoutCancel(ctx), r.plan.Cart(n))
	}
}

// retried calls fn again while the server asks to retry (overloaded,
// unavailable), as a client does, for up to 30 s: a customer who pays keeps
// trying until the server answers, and a refusal to retry is not an answer
// about the cart.
// A hold refused that way is simply refused: nothing was held.
func retried[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	wait := 20 * time.Millisecond
	for start := time.Now(); ; {
		v, err := fn()
		if err == nil || !stockd.ErrorCode(err).Retryable() || ctx.Err() != nil || time.Since(start) > 30*time.Second {
			return v, err
		}
		time.Sleep(wait)
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// cart runs one cart: hold it, then pay, release or abandon it.
func (r *run) cart(ctx context.Context, c Cart) {
	id := r.o.Tag + "-c" + strconv.Itoa(c.N)
	cmd := stockd.Reserve{ID: id, TTL: r.o.Plan.Hold, Customer: "cust-" + strconv.Itoa(c.Customer)}
	for _, l := range c.Lines {
		cmd.Lines = append(cmd.Lines, stockd.ReserveLine{SKU: r.skus[l.SKU], Quantity: l.Quantity})
	}
	r.st.attempts.Add(1)
	if _, _, err := r.o.Client.Reserve(ctx, cmd); err != nil {
		r.st.count(r.st.refused, err)
		return
	}
	r.st.granted.Add(1)
	if c.Outcome == Abandon {
		r.st.abandoned.Add(1)
		return
	}
	time.Sleep(c.Think)
	switch c.Outcome {
	case Pay:
		if _, err := retried(ctx, func() (stockd.Reservation, error) {
			return r.o.Client.Commit(ctx, stockd.CommitReservation{ID: id})
		}); err != nil {
			r.st.count(r.st.payFailed, err)
			return
		}
		r.st.paid.Add(1)
	case Release:
		res, err := retried(ctx, func() (stockd.Reservation, error) {
			return r.o.Client.Release(ctx, stockd.ReleaseReservation{ID: id})
		})
		if err != nil {
			r.st.count(r.st.releaseFailed, err)
			return
		}
		if res.Status != stockd.StatusReleased {
			// Released too late: the hold had expired (the answer is the
			// reservation as it is).
			r.st.mu.Lock()
			r.st.releaseFailed[string(res.Status)]++
			r.st.mu.Unlock()
			return
		}
		r.st.released.Add(1)
	}
}

// supplier drops a CSV file every DropEvery and, with Advance, moves the
// shop's clock over a midnight every Day. Both happen here, one after the
// other, so that a drop never dates a lot on a day that is already over.
func (r *run) supplier(ctx context.Context) {
	drops := time.NewTicker(r.o.Plan.DropEvery)
	defer drops.Stop()
	var days <-chan time.Time
	if r.o.Advance != nil && r.o.Day > 0 {
		t := time.NewTicker(r.o.Day)
		defer t.Stop()
		days = t.C
	}
	for k := 1; ; {
		select {
		case <-ctx.Done():
			return
		case <-drops.C:
			// A drop under way when the run ends is finished, and
			// counted: the server books it either way.
			// A drop the server could not take at all is left out of
			// the counts, as it is out of the stock.
			_ = r.drop(context.WithoutCancel(ctx), k)
			k++
		case <-days:
			r.o.Advance(24 * time.Hour)
			r.st.days.Add(1)
		}
	}
}

// drop sends the k-th supplier file through POST /v1/imports. Only a file
// the server could not take at all is an error.
func (r *run) drop(ctx context.Context, k int) error {
	d := r.plan.Drop(k)
	today := r.o.Now().UTC()
	var b strings.Builder
	b.WriteString("sku,quantity,best_before,lot\n")
	var units int64
	for _, row := range d.Rows {
		bb := today.AddDate(0, 0, row.Days).Format(time.DateOnly)
		fmt.Fprintf(&b, "%s,%d,%s,D%d\n", r.skus[row.SKU], row.Quantity, bb, k)
		units += row.Quantity
	}
	name := r.o.Tag + "-drop-" + strconv.Itoa(k)
	// Sent again while the server asks to retry: the importer knows the
	// file by its content, so what it booked the first time is not
	// booked twice.
	rep, err := retried(ctx, func() (stockd.ImportReport, error) {
		return r.o.Client.SubmitImport(ctx, stockd.SubmitImport{Name: name + ".csv", Batch: name, CSV: []byte(b.String()), Location: r.o.Location})
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("supplier drop %d: %w", k, err)
	}
	r.st.drops.Add(1)
	r.st.rowsBooked.Add(int64(rep.Applied + rep.AlreadyApplied))
	r.st.rowsRefused.Add(int64(len(rep.Refused) + rep.RefusedMore))
	if len(rep.Refused) == 0 && rep.RefusedMore == 0 {
		r.st.dropUnits.Add(units)
	}
	return nil
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// summarize reads every SKU's state and history from the server.
func (r *run) summarize(ctx context.Context, elapsed time.Duration, watch []string) (*Summary, error) {
	s := &Summary{
		Seed: r.o.Plan.Seed, Run: r.o.Tag, Server: r.o.Server, Duration: r.o.Duration.String(),
		Elapsed: elapsed.Seconds(), Days: int(r.st.days.Load()),
		Attempts: r.st.attempts.Load(), Granted: r.st.granted.Load(),
		Refused: r.st.snapshot(r.st.refused), Paid: r.st.paid.Load(), Released: r.st.released.Load(),
		Abandoned: r.st.abandoned.Load(), PayFailed: r.st.snapshot(r.st.payFailed),
		ReleaseFailed: r.st.snapshot(r.st.releaseFailed),
		Drops:         int(r.st.drops.Load()), RowsBooked: int(r.st.rowsBooked.Load()),
		RowsRefused: int(r.st.rowsRefused.Load()), DropUnits: r.st.dropUnits.Load(),
		Conserved: true,
	}
	if elapsed > 0 {
		s.AttemptsPerSec = float64(s.Attempts) / elapsed.Seconds()
	}
	carts := map[stockd.ReleaseReason]map[string]bool{}
	held, committed := map[string]bool{}, map[string]bool{}
	for _, sku := range r.skus {
		ours := func(id string) bool { return strings.HasPrefix(id, r.o.Tag+"-c") }
		sk, err := Tally(ctx, r.o.Client, sku, func(e stockd.Event) {
			switch d := e.Data.(type) {
			case stockd.StockReserved:
				if ours(d.Reservation) {
					held[d.Reservation] = true
				}
			case stockd.ReservationCommitted:
				if ours(d.Reservation) {
					committed[d.Reservation] = true
				}
			case stockd.ReservationReleased:
				if !ours(d.Reservation) {
					break
				}
				if carts[d.Reason] == nil {
					carts[d.Reason] = map[string]bool{}
				}
				carts[d.Reason][d.Reservation] = true
			}
		})
		if err != nil {
			return nil, err
		}
		h := &s.History
		h.Received += sk.Received
		h.Committed += sk.Committed
		h.Expired += sk.Expired
		h.Adjusted += sk.Adjusted
		h.LotsExpired += sk.LotsExpired
		s.Conserved = s.Conserved && sk.Conserved
		s.SKUs = append(s.SKUs, sk)
	}
	s.History.CartsHeld = len(held)
	s.History.CartsCommitted = len(committed)
	s.History.CartsReleased = len(carts[stockd.ReleaseRequested])
	s.History.HoldsExpired = len(carts[stockd.ReleaseExpired])
	s.History.CartsCompensated = len(carts[stockd.ReleaseCompensated])
	for id := range held {
		if !carts[stockd.ReleaseCompensated][id] && !committed[id] && !carts[stockd.ReleaseRequested][id] && !carts[stockd.ReleaseExpired][id] {
			s.History.CartsOpen++
		}
	}

	// The chart has the last word on the watched SKUs once the feed has
	// brought it every event up to the versions just read.
	want := map[string]uint64{}
	for _, sk := range s.SKUs {
		if slices.Contains(watch, sk.SKU) {
			want[sk.SKU] = sk.Version
		}
	}
	got := r.chart.waitFor(ctx, want, 10*time.Second)
	for i := range s.SKUs {
		if v, ok := got[s.SKUs[i].SKU]; ok {
			s.SKUs[i].Chart = &v
		}
	}
	return s, nil
}

// Tally reads a SKU's state with GET /v1/skus/{sku} and its history with
// GET /v1/skus/{sku}/events up to that state's version, totals what the
// history received, committed, expired and adjusted, and checks that they
// account for the state's on_hand. Each event up to the version is also
// passed to fn, when set. A SKU never seen is all zeros, and conserved.
func Tally(ctx context.Context, c *client.Client, sku string, fn func(stockd.Event)) (SKUSummary, error) {
	for attempt := 0; ; attempt++ {
		st, err := c.SKU(ctx, sku, stockd.AsOf{})
		if stockd.ErrorCode(err) == stockd.CodeNotFound {
			return SKUSummary{SKU: sku, Conserved: true}, nil
		}
		if err != nil {
			return SKUSummary{}, fmt.Errorf("reading %s: %w", sku, err)
		}
		sk := SKUSummary{SKU: sku, Version: st.Version, OnHand: st.OnHand, Reserved: st.Reserved, Available: st.Available}
		var events []stockd.Event
		var last uint64
		for after := uint64(0); ; {
			page, err := c.History(ctx, sku, stockd.HistoryQuery{After: after, Limit: 1000})
			if err != nil {
				return SKUSummary{}, fmt.Errorf("reading the history of %s: %w", sku, err)
			}
			for _, e := range page.Events {
				if e.Version <= st.Version {
					events = append(events, e)
				}
				last = max(last, e.Version)
			}
			if page.Next == 0 || len(page.Events) == 0 || last >= st.Version {
				break
			}
			after = page.Next
		}
		if last < st.Version {
			// The state showed events not yet in the history: read again.
			if attempt >= 50 {
				return SKUSummary{}, fmt.Errorf("the history of %s ends at version %d, its state is at %d", sku, last, st.Version)
			}
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				return SKUSummary{}, err
			}
			continue
		}
		for _, e := range events {
			switch d := e.Data.(type) {
			case stockd.StockReceived:
				sk.Received += d.Quantity
			case stockd.ReservationCommitted:
				sk.Committed += d.Quantity
			case stockd.LotExpired:
				sk.Expired += d.Quantity
				sk.LotsExpired++
			case stockd.StockAdjusted:
				sk.Adjusted += d.Delta
			case stockd.StockCounted:
				sk.Adjusted += d.Delta
			case stockd.StockTransferred:
				sk.Transferred -= d.Quantity
			case stockd.TransferArrived:
				sk.Transferred += d.Quantity
			}
			if fn != nil {
				fn(e)
			}
		}
		sk.Conserved = sk.OnHand == sk.Received-sk.Committed-sk.Expired+sk.Adjusted+sk.Transferred
		return sk, nil
	}
}
