package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/stockd/stockd"
)

// Problem is an RFC 9457 problem details body, with stockd's stable code and,
// where they apply, the per-line shortfalls of insufficient stock and the
// status of a reservation that is not held.
type Problem struct {
	Type              string                   `json:"type"`
	Title             string                   `json:"title"`
	Status            int                      `json:"status"`
	Detail            string                   `json:"detail"`
	Code              stockd.Code              `json:"code"`
	Instance          string                   `json:"instance,omitempty"`
	Lines             []stockd.Shortfall       `json:"lines,omitempty"`
	ReservationStatus stockd.ReservationStatus `json:"reservation_status,omitempty"`
}

// problemTypes maps every code to its HTTP status and title. It is the one
// place where errors become HTTP: handlers never choose a status for an
// error themselves.
var problemTypes = map[stockd.Code]struct {
	status int
	title  string
}{
	stockd.CodeInvalid:              {http.StatusUnprocessableEntity, "Invalid request"},
	stockd.CodeInsufficientStock:    {http.StatusConflict, "Insufficient stock"},
	stockd.CodeNotHeld:              {http.StatusConflict, "Reservation not held"},
	stockd.CodeNotFound:             {http.StatusNotFound, "Not found"},
	stockd.CodeIdempotencyMismatch:  {http.StatusUnprocessableEntity, "Idempotency mismatch"},
	stockd.CodeOverloaded:           {http.StatusServiceUnavailable, "Overloaded"},
	stockd.CodeConflict:             {http.StatusServiceUnavailable, "Write conflict"},
	stockd.CodeUnavailable:          {http.StatusServiceUnavailable, "Unavailable"},
	stockd.CodeBodyTooLarge:         {http.StatusRequestEntityTooLarge, "Body too large"},
	stockd.CodeInternal:             {http.StatusInternalServerError, "Internal error"},
	stockd.CodeUnauthenticated:      {http.StatusUnauthorized, "Unauthenticated"},
	stockd.CodeForbidden:            {http.StatusForbidden, "Forbidden"},
	stockd.CodeRateLimited:          {http.StatusTooManyRequests, "Rate limited"},
	stockd.CodeUnknownLocation:      {http.StatusUnprocessableEntity, "Unknown location"},
	stockd.CodeUnsupportedMediaType: {http.StatusUnsupportedMediaType, "Unsupported media type"},
}

// retryAfter is the Retry-After, in seconds, sent with codes a client should
// retry after a pause.
var retryAfter = map[stockd.Code]string{
	stockd.CodeOverloaded:  "1",
	stockd.CodeConflict:    "1",
	stockd.CodeUnavailable: "5",
}

// malformed marks a request that could not be read at all (bad JSON, an
// unknown field, a wrong type): it is a 400, where a well-formed request with
// a bad value is a 422.
type malformed struct{ err *stockd.Error }

func (m malformed) Error() string { return m.err.Error() }
func (m malformed) Unwrap() error { return m.err }

func badRequest(format string, args ...any) error {
	return malformed{stockd.Errorf(stockd.CodeInvalid, format, args...)}
}

// problemFor turns any error into the problem a client is shown. Errors that
// carry no code are internal: they are logged with the request and the client
// is told only that something went wrong.
func problemFor(ctx context.Context, log *slog.Logger, err error, instance string) Problem {
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
	var m malformed
	if errors.As(err, &m) {
		p.Status = http.StatusBadRequest
	}
	return p
}

// writeProblem answers with err as problem details.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(r.Context(), s.log, err, r.URL.Path)
	if ra, ok := retryAfter[p.Code]; ok {
		w.Header().Set("Retry-After", ra)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}
