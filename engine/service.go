package engine

import (
	"context"
	"errors"
	"time"

	"github.com/stockd/stockd"
)

// run executes a command whose result has type T.
func run[T any](ctx context.Context, e *Engine, cmd stockd.Command) (T, bool, error) {
	v, created, err := e.exec(ctx, cmd)
	if err != nil {
		var zero T
		return zero, false, err
	}
	return v.(T), created, nil
}

// ConfigureLocation sets a location's kind, priority and region.
func (e *Engine) ConfigureLocation(ctx context.Context, c stockd.ConfigureLocation) (stockd.Location, error) {
	l, _, err := run[stockd.Location](ctx, e, c)
	return l, err
}

// ConfigureSKU sets a SKU's safety stock and low-stock threshold.
func (e *Engine) ConfigureSKU(ctx context.Context, c stockd.ConfigureSKU) (stockd.SKUConfig, error) {
	s, _, err := run[stockd.SKUConfig](ctx, e, c)
	return s, err
}

// Receive books a receipt.
func (e *Engine) Receive(ctx context.Context, c stockd.ReceiveStock) (stockd.Receipt, bool, error) {
	return run[stockd.Receipt](ctx, e, c)
}

// Adjust books an adjustment.
func (e *Engine) Adjust(ctx context.Context, c stockd.AdjustStock) (stockd.Adjustment, bool, error) {
	return run[stockd.Adjustment](ctx, e, c)
}

// Count books a physical count.
func (e *Engine) Count(ctx context.Context, c stockd.CountStock) (stockd.Count, bool, error) {
	return run[stockd.Count](ctx, e, c)
}

// Transfer sends stock from one location towards another.
func (e *Engine) Transfer(ctx context.Context, c stockd.TransferStock) (stockd.Transfer, bool, error) {
	return run[stockd.Transfer](ctx, e, c)
}

// ArriveTransfer books a transfer into its destination.
func (e *Engine) ArriveTransfer(ctx context.Context, c stockd.ArriveTransfer) (stockd.Transfer, error) {
	t, _, err := run[stockd.Transfer](ctx, e, c)
	return t, err
}

// Reserve holds stock for a cart.
func (e *Engine) Reserve(ctx context.Context, c stockd.Reserve) (stockd.Reservation, bool, error) {
	r, created, err := run[stockd.Reservation](ctx, e, c)
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
	others := map[int]bool{}
	for _, l := range c.Lines {
		if !listed[l.SKU] {
			others[stockd.PartitionOf(l.SKU, len(e.parts))] = true
		}
	}
	if len(others) == 0 {
		return err
	}
	found := map[string]stockd.Shortfall{}
	for p := range others {
		v, qerr := e.query(ctx, p, func(s *stockd.State) (any, error) { return s.Shortfalls(c.Lines, c.Region), nil })
		if qerr != nil {
			return err
		}
		for _, s := range v.([]stockd.Shortfall) {
			found[s.SKU] = s
		}
	}
	if len(found) == 0 {
		return err
	}
	all := &stockd.Error{Code: refusal.Code, Message: "not enough stock", Status: refusal.Status}
	for _, l := range c.Lines {
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
	return all
}

// Extend moves a held reservation's deadline.
func (e *Engine) Extend(ctx context.Context, c stockd.ExtendReservation) (stockd.Reservation, error) {
	r, _, err := run[stockd.Reservation](ctx, e, c)
	return r, err
}

// Commit turns a held reservation, or part of it, into a sale.
func (e *Engine) Commit(ctx context.Context, c stockd.CommitReservation) (stockd.Reservation, error) {
	r, _, err := run[stockd.Reservation](ctx, e, c)
	return r, err
}

// Release returns a held reservation's stock to available.
func (e *Engine) Release(ctx context.Context, c stockd.ReleaseReservation) (stockd.Reservation, error) {
	r, _, err := run[stockd.Reservation](ctx, e, c)
	return r, err
}

// GetReservation returns a reservation as it is now.
func (e *Engine) GetReservation(ctx context.Context, id string) (stockd.Reservation, error) {
	key := stockd.Key{Kind: stockd.KindReservation, ID: id}
	p, ok := e.reg.lookup(key)
	if !ok {
		return stockd.Reservation{}, notFoundKey(key)
	}
	v, err := e.query(ctx, p, func(s *stockd.State) (any, error) {
		if r, ok := s.ReservationView(id); ok {
			return r, nil
		}
		return nil, notFoundKey(key)
	})
	if err != nil {
		return stockd.Reservation{}, err
	}
	return v.(stockd.Reservation), nil
}

// GetTransfer returns a transfer as it is now.
func (e *Engine) GetTransfer(ctx context.Context, id string) (stockd.Transfer, error) {
	key := stockd.Key{Kind: stockd.KindTransfer, ID: id}
	p, ok := e.reg.lookup(key)
	if !ok {
		return stockd.Transfer{}, notFoundKey(key)
	}
	v, err := e.query(ctx, p, func(s *stockd.State) (any, error) {
		if t, ok := s.TransferView(id); ok {
			return t, nil
		}
		return nil, notFoundKey(key)
	})
	if err != nil {
		return stockd.Transfer{}, err
	}
	return v.(stockd.Transfer), nil
}

// SKU returns a SKU's state now, through its partition (reflecting every
// acknowledged write), or as of a past time or position, rebuilt from the
// log.
func (e *Engine) SKU(ctx context.Context, sku string, at stockd.AsOf) (stockd.SKUState, error) {
	if sku == "" {
		return stockd.SKUState{}, stockd.Errorf(stockd.CodeInvalid, "sku is required")
	}
	p := stockd.PartitionOf(sku, len(e.parts))
	if at.IsZero() {
		v, err := e.query(ctx, p, func(s *stockd.State) (any, error) {
			if v, ok := s.SKUView(sku); ok {
				return v, nil
			}
			return nil, stockd.Errorf(stockd.CodeNotFound, "sku %q not found", sku)
		})
		if err != nil {
			return stockd.SKUState{}, err
		}
		return v.(stockd.SKUState), nil
	}
	select {
	case e.history <- struct{}{}:
		defer func() { <-e.history }()
	default:
		return stockd.SKUState{}, errHistoryBusy
	}
	upTo := e.parts[p].durable.Load()
	if at.Position != 0 && at.Position < upTo {
		upTo = at.Position
	}
	// Fold the history a page at a time: memory for one page and for what
	// the SKU holds, however long its history.
	r := stockd.NewSKUReplayer(sku, p, len(e.parts), e.opts.Limits)
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
	p := stockd.PartitionOf(sku, len(e.parts))
	events, err := e.store.ReadSKU(ctx, sku, stockd.SKUQuery{
		AfterVersion: q.After, UpToPosition: e.parts[p].durable.Load(), Limit: q.Limit,
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
