package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// Problem is an RFC 9457 problem details body; see api.Problem.
type Problem = api.Problem

// problemTypes maps every code to its HTTP status and title. It is the one
// place where errors become HTTP: handlers never choose a status for an
// error themselves.
var problemTypes = map[stockd.Code]struct {
	status int
	title  string
}{
	stockd.CodeInvalid:               {http.StatusUnprocessableEntity, "Invalid request"},
	stockd.CodeInsufficientStock:     {http.StatusConflict, "Insufficient stock"},
	stockd.CodeNotHeld:               {http.StatusConflict, "Reservation not held"},
	stockd.CodeNotFound:              {http.StatusNotFound, "Not found"},
	stockd.CodeIdempotencyMismatch:   {http.StatusUnprocessableEntity, "Idempotency mismatch"},
	stockd.CodeOverloaded:            {http.StatusServiceUnavailable, "Overloaded"},
	stockd.CodeConflict:              {http.StatusServiceUnavailable, "Write conflict"},
	stockd.CodeLeaseLost:             {http.StatusServiceUnavailable, "Partition lease lost"},
	stockd.CodeUnavailable:           {http.StatusServiceUnavailable, "Unavailable"},
	stockd.CodeBodyTooLarge:          {http.StatusRequestEntityTooLarge, "Body too large"},
	stockd.CodeInternal:              {http.StatusInternalServerError, "Internal error"},
	stockd.CodeUnauthenticated:       {http.StatusUnauthorized, "Unauthenticated"},
	stockd.CodeForbidden:             {http.StatusForbidden, "Forbidden"},
	stockd.CodeRateLimited:           {http.StatusTooManyRequests, "Rate limited"},
	stockd.CodeUnknownLocation:       {http.StatusUnprocessableEntity, "Unknown location"},
	stockd.CodeUnsupportedMediaType:  {http.StatusUnsupportedMediaType, "Unsupported media type"},
	stockd.CodeInUse:                 {http.StatusConflict, "In use"},
	stockd.CodeSalesCap:              {http.StatusConflict, "Sales cap reached"},
	stockd.CodeCustomerLimit:         {http.StatusConflict, "Customer limit reached"},
	stockd.CodeCustomerRequired:      {http.StatusUnprocessableEntity, "Customer required"},
	stockd.CodeReservationBusy:       {http.StatusConflict, "Reservation busy"},
	stockd.CodeExpectedReceiptClosed: {http.StatusConflict, "Expected receipt closed"},
}

// retryAfter is the default pause, in seconds, sent as Retry-After with
// codes a client should retry; an error's own RetryAfter wins.
var retryAfter = map[stockd.Code]int{
	stockd.CodeOverloaded:  1,
	stockd.CodeConflict:    1,
	stockd.CodeLeaseLost:   1,
	stockd.CodeUnavailable: 5,
	stockd.CodeRateLimited: 1,
	// A change of a cart spanning partitions settles within a few
	// message round trips.
	stockd.CodeReservationBusy: 1,
}

// statusError gives a coded error a status other than its code's: 400 for a
// request that could not be read at all (bad JSON, an unknown field, a wrong
// type) where a well-formed request with a bad value is 422; 405 and 421 for
// requests the routes refuse.
type statusError struct {
	status int
	err    *stockd.Error
}

func (m statusError) Error() string { return m.err.Error() }
func (m statusError) Unwrap() error { return m.err }

func withStatus(status int, err *stockd.Error) error { return statusError{status, err} }

func badRequest(format string, args ...any) error {
	return withStatus(http.StatusBadRequest, stockd.Errorf(stockd.CodeInvalid, format, args...))
}

// problemFor turns any error into the problem a client is shown, and the
// pause to ask for before a retry. Errors that carry no code are internal:
// they are logged with the request and the client is told only that
// something went wrong.
func problemFor(ctx context.Context, log *slog.Logger, err error, instance string) (Problem, time.Duration) {
	var e *stockd.Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e = stockd.Errorf(stockd.CodeUnavailable, "the request was not answered in time; it may still take effect, so retry it with the same id")
	default:
		log.ErrorContext(ctx, "internal error", "err", err, "instance", instance)
		e = stockd.Errorf(stockd.CodeInternal, "internal error")
	}
	if e.Code == stockd.CodeInternal && e.Err != nil {
		log.ErrorContext(ctx, "internal error", "err", err, "instance", instance)
		e = stockd.Errorf(stockd.CodeInternal, "internal error")
	}
	pt, ok := problemTypes[e.Code]
	if !ok {
		pt = problemTypes[stockd.CodeInternal]
	}
	p := Problem{
		Type:              "/problems/" + string(e.Code),
		Title:             pt.title,
		Status:            pt.status,
		Detail:            e.Message,
		Code:              e.Code,
		Instance:          instance,
		Lines:             e.Lines,
		ReservationStatus: e.Status,
	}
	var se statusError
	if errors.As(err, &se) {
		p.Status = se.status
	}
	return p, e.RetryAfter
}

// writeProblem answers with err as problem details and returns the status.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) int {
	p, pause := problemFor(r.Context(), s.log, err, r.URL.Path)
	if secs, ok := retryAfter[p.Code]; ok {
		if pause > 0 {
			// Whole seconds, rounded up: a client must not come back
			// before the pause is over.
			secs = int((pause + time.Second - 1) / time.Second)
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if p.Code == stockd.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stockd"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
	return p.Status
}

// CommandProblem is the problem a queued command's refusal is shown as: the
// problem details its synchronous route would have answered, by the same
// table. It logs nothing: an error without a code is shown as internal.
func CommandProblem(err error) stockd.CommandProblem {
	p, _ := problemFor(context.Background(), slog.New(slog.DiscardHandler), err, "")
	return stockd.CommandProblem{Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail, Code: p.Code, Lines: p.Lines}
}
