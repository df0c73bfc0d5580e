package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stockd/stockd"
)

// answer holds a command and, once the partition has decided it, the
// command's answer with its own type: view reads it off the partition's
// state. The caller reads out only after the partition replied (see exec),
// so no answer travels as an any.
type answer[C stockd.Command, T any] struct {
	cmd  C
	view func(*stockd.State, C) (T, error)
	out  T
}

func (a *answer[C, T]) store(s *stockd.State) error {
	v, err := a.view(s, a.cmd)
	a.out = v
	return err
}

// run executes cmd and returns its answer as view reads it. view is a
// method expression or a function that captures nothing, so that a command
// costs one allocation for its answer, as many as the any it replaces.
func run[C stockd.Command, T any](ctx context.Context, e *Engine, cmd C, view func(*stockd.State, C) (T, error)) (T, bool, error) {
	a := &answer[C, T]{cmd: cmd, view: view}
	created, err := e.exec(ctx, cmd, a)
	if err != nil {
		var zero T
		return zero, false, err
	}
	return a.out, created, nil
}

// Views of the answers to commands that name their entity by id.
func locationOf(s *stockd.State, c stockd.ConfigureLocation) (stockd.Location, error) {
	return s.LocationResult(c.ID)
}

func skuConfigOf(s *stockd.State, c stockd.ConfigureSKU) (stockd.SKUConfig, error) {
	return s.SKUConfigResult(c.SKU)
}

func transferOf(s *stockd.State, c stockd.TransferStock) (stockd.Transfer, error) {
	return s.TransferResult(c.ID)
}

func arrivedOf(s *stockd.State, c stockd.ArriveTransfer) (stockd.Transfer, error) {
	return s.TransferResult(c.ID)
}

func reservedOf(s *stockd.State, c stockd.Reserve) (stockd.Reservation, error) {
	return s.ReservationResult(c.ID)
}

func extendedOf(s *stockd.State, c stockd.ExtendReservation) (stockd.Reservation, error) {
	return s.ReservationResult(c.ID)
}

func committedOf(s *stockd.State, c stockd.CommitReservation) (stockd.Reservation, error) {
	return s.ReservationResult(c.ID)
}

func changedOf(s *stockd.State, c stockd.ChangeReservation) (stockd.Reservation, error) {
	return s.ReservationResult(c.ID)
}

func releasedOf(s *stockd.State, c stockd.ReleaseReservation) (stockd.Reservation, error) {
	return s.ReservationResult(c.ID)
}

// ConfigureLocation sets a location's kind, priority and region.
func (e *Engine) ConfigureLocation(ctx context.Context, c stockd.ConfigureLocation) (stockd.Location, error) {
	l, _, err := run(ctx, e, c, locationOf)
	return l, err
}

// ConfigureSKU sets a SKU's safety stock and low-stock threshold.
func (e *Engine) ConfigureSKU(ctx context.Context, c stockd.ConfigureSKU) (stockd.SKUConfig, error) {
	s, _, err := run(ctx, e, c, skuConfigOf)
	return s, err
}

// Receive books a receipt.
func (e *Engine) Receive(ctx context.Context, c stockd.ReceiveStock) (stockd.Receipt, bool, error) {
	return run(ctx, e, c, (*stockd.State).ReceiptResult)
}

// Adjust books an adjustment.
func (e *Engine) Adjust(ctx context.Context, c stockd.AdjustStock) (stockd.Adjustment, bool, error) {
	return run(ctx, e, c, (*stockd.State).AdjustmentResult)
}

// Count books a physical count.
func (e *Engine) Count(ctx context.Context, c stockd.CountStock) (stockd.Count, bool, error) {
	return run(ctx, e, c, (*stockd.State).CountResult)
}

// Transfer sends stock from one location towards another.
func (e *Engine) Transfer(ctx context.Context, c stockd.TransferStock) (stockd.Transfer, bool, error) {
	return run(ctx, e, c, transferOf)
}

// ArriveTransfer books a transfer into its destination.
func (e *Engine) ArriveTransfer(ctx context.Context, c stockd.ArriveTransfer) (stockd.Transfer, error) {
	t, _, err := run(ctx, e, c, arrivedOf)
	return t, err
}

// Reserve holds stock for a cart.
func (e *Engine) Reserve(ctx context.Context, c stockd.Reserve) (stockd.Reservation, bool, error) {
	decidedWith := e.locs.Load()
	r, created, err := run(ctx, e, c, reservedOf)
	if stockd.IsCode(err, stockd.CodeInsufficientStock) && e.refreshLocations(ctx, decidedWith) {
		// A bundle defined through another node a moment ago was taken
		// for a SKU of no stock: refused with nothing written, and
		// decided again now that this node knows it. (Only a node that
		// does not serve the catalog's partition reads it again, once
		// per refusal.)
		r, created, err = run(ctx, e, c, reservedOf)
	}
	if stockd.IsCode(err, stockd.CodeInsufficientStock) {
		err = e.everyShortLine(ctx, c, err)
	}
	return r, created, err
}

// everyShortLine completes the refusal of a cart spanning partitions: a home
// that is short itself refuses without asking the other partitions, so their
// short lines are looked up here, to be listed too. The lookup is a read: it
// may differ from what a hold would have found a moment earlier, which is
// fine for telling a shopper what is missing.
func (e *Engine) everyShortLine(ctx context.Context, c stockd.Reserve, err error) error {
	var refusal *stockd.Error
	if !errors.As(err, &refusal) {
		return err
	}
	listed := make(map[string]bool, len(refusal.Lines))
	for _, l := range refusal.Lines {
		listed[l.SKU] = true
	}
	lines := e.expandedLines(c)
	others := map[int]bool{}
	for _, l := range lines {
		if !listed[l.SKU] {
			others[stockd.PartitionOf(l.SKU, len(e.slots))] = true
		}
	}
	if len(others) == 0 {
		return err
	}
	found := map[string]stockd.Shortfall{}
	for p := range others {
		v, qerr := queryAs(ctx, e, p, func(s *stockd.State) ([]stockd.Shortfall, error) { return s.Shortfalls(lines, c.Region), nil })
		if qerr != nil {
			return err
		}
		for _, s := range v {
			found[s.SKU] = s
		}
	}
	if len(found) == 0 {
		return err
	}
	all := &stockd.Error{Code: refusal.Code, Message: "not enough stock", Status: refusal.Status}
	for _, l := range lines {
		if listed[l.SKU] {
			for _, s := range refusal.Lines {
				if s.SKU == l.SKU {
					all.Lines = append(all.Lines, s)
				}
			}
		} else if s, ok := found[l.SKU]; ok {
			all.Lines = append(all.Lines, s)
		}
	}
	for _, s := range all.Lines {
		if s.SalesCap > 0 {
			// A line another partition's sales cap refuses is the
			// refusal to report: stock arriving would not lift it.
			all.Code, all.Message = stockd.CodeSalesCap, fmt.Sprintf("sales cap of %q reached: requested %d, %d of its cap of %d left", s.SKU, s.Requested, s.Available, s.SalesCap)
			break
		}
	}
	return all
}

// Extend moves a held reservation's deadline.
func (e *Engine) Extend(ctx context.Context, c stockd.ExtendReservation) (stockd.Reservation, error) {
	r, _, err := run(ctx, e, c, extendedOf)
	return r, err
}

// Commit turns a held reservation, or part of it, into a sale.
func (e *Engine) Commit(ctx context.Context, c stockd.CommitReservation) (stockd.Reservation, error) {
	r, _, err := run(ctx, e, c, committedOf)
	return r, err
}

// Release returns a held reservation's stock to available.
func (e *Engine) Release(ctx context.Context, c stockd.ReleaseReservation) (stockd.Reservation, error) {
	r, _, err := run(ctx, e, c, releasedOf)
	return r, err
}

// Change replaces a held reservation's lines, all or nothing.
func (e *Engine) Change(ctx context.Context, c stockd.ChangeReservation) (stockd.Reservation, error) {
	r, _, err := run(ctx, e, c, changedOf)
	return r, err
}

// GetReservation returns a reservation as it is now.
func (e *Engine) GetReservation(ctx context.Context, id string) (stockd.Reservation, error) {
	key := stockd.Key{Kind: stockd.KindReservation, ID: id}
	r, err := getEntity(ctx, e, key, func(s *stockd.State) (stockd.Reservation, bool) { return s.ReservationView(id) })
	if err == nil {
		e.freshPreorders(ctx, &r)
	}
	return r, err
}

// GetTransfer returns a transfer as it is now.
func (e *Engine) GetTransfer(ctx context.Context, id string) (stockd.Transfer, error) {
	key := stockd.Key{Kind: stockd.KindTransfer, ID: id}
	return getEntity(ctx, e, key, func(s *stockd.State) (stockd.Transfer, bool) { return s.TransferView(id) })
}

// getEntity reads the entity of key with view: from the partition that
// accepted it or, once retired, from its retired record.
func getEntity[T any](ctx context.Context, e *Engine, key stockd.Key, view func(*stockd.State) (T, bool)) (T, error) {
	p, ok := e.reg.lookup(key)
	if !ok {
		if q, elsewhere, err := e.servedElsewhere(ctx, key); err != nil || elsewhere {
			var zero T
			return zero, cmp.Or(err, notServed(q))
		}
		return retiredView(ctx, e, key, view)
	}
	v, err := queryAs(ctx, e, p, func(s *stockd.State) (T, error) {
		v, ok := view(s)
		if !ok {
			return v, notFoundKey(key)
		}
		return v, nil
	})
	if stockd.IsCode(err, stockd.CodeNotFound) {
		// Retired between the lookup and the read.
		return retiredView(ctx, e, key, view)
	}
	return v, err
}

// stockOf returns a SKU's own state now, through its partition (reflecting every
// acknowledged write), or as of a past time or position, rebuilt from the
// log.
func (e *Engine) stockOf(ctx context.Context, sku string, at stockd.AsOf) (stockd.SKUState, error) {
	if sku == "" {
		return stockd.SKUState{}, stockd.Errorf(stockd.CodeInvalid, "sku is required")
	}
	p := stockd.PartitionOf(sku, len(e.slots))
	if at.IsZero() {
		return queryAs(ctx, e, p, func(s *stockd.State) (stockd.SKUState, error) {
			if v, ok := s.SKUView(sku); ok {
				return v, nil
			}
			return stockd.SKUState{}, stockd.Errorf(stockd.CodeNotFound, "sku %q not found", sku)
		})
	}
	select {
	case e.history <- struct{}{}:
		defer func() { <-e.history }()
	default:
		return stockd.SKUState{}, errHistoryBusy
	}
	upTo := e.DurableHead(p)
	if at.Position != 0 && at.Position < upTo {
		upTo = at.Position
	}
	// Fold the history a page at a time: memory for one page and for what
	// the SKU holds, however long its history.
	r := stockd.NewSKUReplayer(sku, p, len(e.slots), e.opts.Limits)
	q := stockd.SKUQuery{UpToPosition: upTo, UpToTime: at.Time, Limit: asOfPage}
	for {
		q.AfterVersion = r.Version()
		events, err := e.store.ReadSKU(ctx, sku, q)
		if err != nil {
			return stockd.SKUState{}, err
		}
		if err := r.Apply(events); err != nil {
			return stockd.SKUState{}, err
		}
		if len(events) < q.Limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return stockd.SKUState{}, err
		}
	}
	v, ok := r.View()
	if !ok {
		return stockd.SKUState{}, stockd.Errorf(stockd.CodeNotFound, "sku %q has no events at that point", sku)
	}
	// The view carries the position and time of the last event it
	// reflects; asked for a moment, it is the state as of that moment.
	if !at.Time.IsZero() {
		v.AsOf = at.Time
	}
	return v, nil
}

// asOfPage is how many events a time-travel read folds at a time.
var asOfPage = 4096

// errHistoryBusy refuses a time-travel read while MaxHistoryReads others run.
// Each takes about a second per 200,000 events of the SKU's history.
var errHistoryBusy = &stockd.Error{
	Code:       stockd.CodeOverloaded,
	Message:    "too many time-travel reads in progress; retry shortly",
	RetryAfter: time.Second,
}

// MaxHistoryPage bounds a page of history.
const MaxHistoryPage = 1000

// History returns a page of a SKU's events, oldest first. Only durable
// events are shown.
func (e *Engine) History(ctx context.Context, sku string, q stockd.HistoryQuery) (stockd.HistoryPage, error) {
	if q.Limit <= 0 || q.Limit > MaxHistoryPage {
		q.Limit = min(max(q.Limit, 100), MaxHistoryPage)
	}
	p := stockd.PartitionOf(sku, len(e.slots))
	events, err := e.store.ReadSKU(ctx, sku, stockd.SKUQuery{
		AfterVersion: q.After, UpToPosition: e.DurableHead(p), Limit: q.Limit,
	})
	if err != nil {
		return stockd.HistoryPage{}, err
	}
	page := stockd.HistoryPage{Events: events, Next: q.After}
	if len(events) > 0 {
		page.Next = events[len(events)-1].Version
	}
	if page.Events == nil {
		page.Events = []stockd.Event{}
	}
	return page, nil
}
