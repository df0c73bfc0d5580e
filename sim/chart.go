package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// The chart follows the change feed of the shop's SKUs (GET /v1/feed as
// Server-Sent Events, through client.FollowFeed) and keeps, for each
// watched SKU, its on_hand and reserved: the state read once at the start,
// then every later event of the SKU applied to it. It also counts, over
// every SKU of the shop, what the live view shows: units received, holds
// and lots expired.

type watched struct {
	onHand, reserved int64
	version          uint64 // the last event applied
	samples          []int64
	// recent are the available stock after the latest events applied, by
	// version, oldest first: what the chart showed at a given version.
	recent []versioned
}

type versioned struct {
	version   uint64
	available int64
}

// keepRecent is how many of the latest versions a watched SKU remembers.
const keepRecent = 1024

// at returns the available stock as of version v: after the latest event
// applied at or before v.
func (w *watched) at(v uint64) int64 {
	for i := len(w.recent) - 1; i >= 0; i-- {
		if w.recent[i].version <= v {
			return w.recent[i].available
		}
	}
	return w.available()
}

func (w *watched) available() int64 { return w.onHand - w.reserved }

type chart struct {
	c      *client.Client
	prefix string
	after  string // the feed's head when the chart started
	order  []string

	mu           sync.Mutex
	skus         map[string]*watched
	received     int64
	committed    int64
	lotsExpired  int64
	expiredUnits int64
	holdsExpired map[string]bool
}

// newChart notes the feed's head, then reads the watched SKUs' state: the
// feed from that head brings every event after it, and those a state
// already includes (by version) are skipped.
func newChart(ctx context.Context, c *client.Client, prefix string, watch []string) (*chart, error) {
	ch := &chart{c: c, prefix: prefix, order: watch, skus: map[string]*watched{}, holdsExpired: map[string]bool{}}
	page, err := c.FeedPage(ctx, stockd.FeedQuery{After: "now", Limit: 1, SKUPrefix: prefix})
	if err != nil {
		return nil, fmt.Errorf("reading the change feed: %w", err)
	}
	ch.after = page.Next
	if ch.after == "" {
		ch.after = "now"
	}
	for _, sku := range watch {
		w := &watched{}
		st, err := c.SKU(ctx, sku, stockd.AsOf{})
		switch {
		case stockd.ErrorCode(err) == stockd.CodeNotFound:
		case err != nil:
			return nil, fmt.Errorf("reading %s: %w", sku, err)
		default:
			w.onHand, w.reserved, w.version = st.OnHand, st.Reserved, st.Version
		}
		ch.skus[sku] = w
	}
	return ch, nil
}

// follow applies the feed's events until ctx is done.
func (ch *chart) follow(ctx context.Context) error {
	err := ch.c.FollowFeed(ctx, stockd.FeedQuery{After: ch.after, SKUPrefix: ch.prefix}, client.FollowOptions{Retry: 200 * time.Millisecond},
		func(e stockd.Event, _ string) error {
			ch.apply(e)
			return nil
		})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (ch *chart) apply(e stockd.Event) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	switch d := e.Data.(type) {
	case stockd.StockReceived:
		ch.received += d.Quantity
	case stockd.ReservationCommitted:
		ch.committed += d.Quantity
	case stockd.LotExpired:
		ch.lotsExpired++
		ch.expiredUnits += d.Quantity
	case stockd.ReservationReleased:
		if d.Reason == stockd.ReleaseExpired {
			ch.holdsExpired[d.Reservation] = true
		}
	}
	w := ch.skus[e.SKU]
	if w == nil || e.Version <= w.version {
		return
	}
	w.version = e.Version
	switch d := e.Data.(type) {
	case stockd.StockReceived:
		w.onHand += d.Quantity
	case stockd.StockAdjusted:
		w.onHand += d.Delta
	case stockd.StockCounted:
		w.onHand += d.Delta
	case stockd.StockTransferred:
		w.onHand -= d.Quantity
	case stockd.TransferArrived:
		w.onHand += d.Quantity
	case stockd.LotExpired:
		w.onHand -= d.Quantity
	case stockd.StockReserved:
		w.reserved += d.Quantity
	case stockd.ReservationChanged:
		w.reserved += d.Quantity - d.PreviousQuantity
	case stockd.ReservationCommitted:
		w.onHand -= d.Quantity
		w.reserved -= d.Quantity + d.Released
	case stockd.ReservationReleased:
		w.reserved -= d.Quantity
	}
	w.recent = append(w.recent, versioned{e.Version, w.available()})
	if len(w.recent) > 2*keepRecent {
		w.recent = slices.Delete(w.recent, 0, len(w.recent)-keepRecent)
	}
}

// sample records every watched SKU's available stock, keeping the last n.
func (ch *chart) sample(n int) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, w := range ch.skus {
		w.samples = append(w.samples, w.available())
		if len(w.samples) > n {
			w.samples = slices.Delete(w.samples, 0, len(w.samples)-n)
		}
	}
}

// waitFor waits, up to timeout, until the chart has applied each SKU's
// events up to the version want names, and returns the watched SKUs'
// available stock as the chart had it at that version (holds may expire
// after it).
func (ch *chart) waitFor(ctx context.Context, want map[string]uint64, timeout time.Duration) map[string]int64 {
	deadline := time.Now().Add(timeout)
	for {
		ch.mu.Lock()
		done := true
		got := map[string]int64{}
		for sku, v := range want {
			w := ch.skus[sku]
			if w == nil {
				continue
			}
			if w.version < v {
				done = false
			}
			got[sku] = w.at(v)
		}
		ch.mu.Unlock()
		if done || time.Now().After(deadline) || sleep(ctx, 20*time.Millisecond) != nil {
			return got
		}
	}
}

// The live view: ANSI escapes only. The cursor is hidden while it runs and
// shown again when it ends.
const (
	escHide  = "\x1b[?25l"
	escShow  = "\x1b[?25h"
	escHome  = "\x1b[H"
	escClear = "\x1b[2J"
	escEOL   = "\x1b[K"
	escEOS   = "\x1b[J"
)

// sparkWidth is the width of a sparkline in a view w columns wide.
func sparkWidth(w int) int { return max(w-44, 10) }

// draw redraws the view every Redraw until ctx is done.
func (r *run) draw(ctx context.Context) {
	out := r.o.Live
	fmt.Fprint(out, escHide+escClear)
	t := time.NewTicker(r.o.Redraw)
	defer t.Stop()
	for {
		r.chart.sample(sparkWidth(r.o.Width))
		r.frame(out, false)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// frame draws the view once; the final one shows the cursor again and
// leaves it below the view.
func (r *run) frame(out io.Writer, final bool) {
	var b strings.Builder
	line := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		if rs := []rune(s); len(rs) > r.o.Width {
			s = string(rs[:r.o.Width])
		}
		b.WriteString(s + escEOL + "\n")
	}
	elapsed := time.Since(r.start).Round(100 * time.Millisecond)
	b.WriteString(escHome)
	line("stockd simulate   seed %d   %s of %s   %s", r.o.Plan.Seed, min(elapsed, r.o.Duration), r.o.Duration, r.o.Server)
	day := "the server's own"
	if r.o.Advance != nil {
		day = fmt.Sprintf("moved on %d times", r.st.days.Load())
	}
	line("shop date %s (clock %s)", r.o.Now().UTC().Format(time.DateOnly), day)
	line("")
	secs := max(time.Since(r.start).Seconds(), 0.001)
	refused := r.st.snapshot(r.st.refused)
	var total int64
	for _, n := range refused {
		total += n
	}
	line("carts      %6.1f/s   attempts %d   granted %d   refused %d%s", float64(r.st.attempts.Load())/secs,
		r.st.attempts.Load(), r.st.granted.Load(), total, byCode(refused))
	late := r.st.snapshot(r.st.payFailed)
	maps.Copy(late, r.st.snapshot(r.st.releaseFailed))
	var lateN int64
	for _, n := range late {
		lateN += n
	}
	line("customers  paid %d   released %d   abandoned %d   came back too late %d", r.st.paid.Load(), r.st.released.Load(), r.st.abandoned.Load(), lateN)
	ch := r.chart
	ch.mu.Lock()
	line("stock      received %d units in %d drops   committed %d   expired %d lots (%d units)", ch.received, r.st.drops.Load(), ch.committed, ch.lotsExpired, ch.expiredUnits)
	line("holds      expired %d", len(ch.holdsExpired))
	line("")
	line("%-10s %-*s %5s %5s %5s", "available", sparkWidth(r.o.Width), "(last "+(time.Duration(sparkWidth(r.o.Width))*r.o.Redraw).String()+")", "now", "min", "max")
	for _, sku := range ch.order {
		w := ch.skus[sku]
		lo, hi := int64(0), int64(0)
		if len(w.samples) > 0 {
			lo, hi = slices.Min(w.samples), slices.Max(w.samples)
		}
		line("%-10s %-*s %5d %5d %5d", sku, sparkWidth(r.o.Width), spark(w.samples, hi), w.available(), lo, hi)
	}
	ch.mu.Unlock()
	b.WriteString(escEOS)
	if final {
		b.WriteString(escShow)
	}
	io.WriteString(out, b.String())
}

// byCode shows counts by error code, " (code n, ...)", or nothing.
func byCode(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", code, m[code]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// bars are the eighths of a sparkline's cell.
var bars = []rune("▁▂▃▄▅▆▇█")

// spark draws samples as a sparkline scaled to hi: a dot for none in
// stock, else a bar of one to eight eighths.
func spark(samples []int64, hi int64) string {
	var b strings.Builder
	for _, v := range samples {
		switch {
		case v <= 0:
			b.WriteRune('·')
		case hi <= 0:
			b.WriteRune(bars[0])
		default:
			i := int((v*int64(len(bars)) - 1) / hi)
			b.WriteRune(bars[min(max(i, 0), len(bars)-1)])
		}
	}
	return b.String()
}
