package stockd

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Code is a stable, machine-readable error code. Codes are part of the public
// contract: clients switch on them, so they are never renamed.
type Code string

// The error codes every client can count on.
const (
	// CodeInvalid means the request is malformed or a value is out of range.
	CodeInvalid Code = "invalid_request"
	// CodeInsufficientStock means a reservation, adjustment or transfer asked
	// for more than is available; Error.Lines says how much per SKU.
	CodeInsufficientStock Code = "insufficient_stock"
	// CodeNotHeld means the reservation is no longer held (committed,
	// released or expired) and the command needs a held one.
	CodeNotHeld Code = "reservation_not_held"
	// CodeNotFound means the named entity does not exist.
	CodeNotFound Code = "not_found"
	// CodeIdempotencyMismatch means an id or idempotency key was reused with
	// a different request.
	CodeIdempotencyMismatch Code = "idempotency_mismatch"
	// CodeOverloaded means the service refused the request at once because
	// a queue is full; retry after a short pause.
	CodeOverloaded Code = "overloaded"
	// CodeConflict means a store append named a stale head position.
	CodeConflict Code = "conflict"
	// CodeLeaseLost means a store refused an append or a lease renewal
	// because the partition's lease it carried is no longer current: the
	// lease expired, was released, or another node took the partition
	// over. Nothing was written; the partition is served elsewhere now, so
	// a client retries (with the same id) after a short pause.
	CodeLeaseLost Code = "lease_lost"
	// CodeUnavailable means the service is stopping or has stopped after a
	// fatal storage error; nothing was acknowledged.
	CodeUnavailable Code = "unavailable"
	// CodeBodyTooLarge means a request body exceeded the size limit.
	CodeBodyTooLarge Code = "body_too_large"
	// CodeInternal means an unexpected failure; details are logged, never
	// returned to clients.
	CodeInternal Code = "internal"
	// CodeUnauthenticated means the request carried no API key, or one the
	// server does not know.
	CodeUnauthenticated Code = "unauthenticated"
	// CodeForbidden means the request's API key lacks the scope the
	// operation requires.
	CodeForbidden Code = "forbidden"
	// CodeRateLimited means the request's API key is over its rate limit;
	// retry after the pause the answer names.
	CodeRateLimited Code = "rate_limited"
	// CodeUnknownLocation means a command named a location that was never
	// configured.
	CodeUnknownLocation Code = "unknown_location"
	// CodeUnsupportedMediaType means a request body was sent with a content
	// type other than JSON.
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	// CodeInUse means the named thing cannot be deleted while something
	// uses it, such as a consumer of the log this server runs.
	CodeInUse Code = "in_use"
	// CodeSalesCap means a reservation line asked for more units of
	// a SKU than its sales cap leaves: the units committed so far and those
	// held already count against the cap. Error.Lines says, per SKU, what
	// was requested and, for a capped SKU, the cap and the units it has
	// left (Available). Not retryable: only a release, an expiry or a higher
	// cap makes room.
	CodeSalesCap Code = "sales_cap"
	// CodeCustomerLimit means a reservation line asked for more units of a
	// SKU than its per-customer limit leaves the reservation's customer:
	// what the customer holds, and committed within the limit's window,
	// already counts. Error.Lines says, per SKU, what was requested and, for
	// a limited SKU, the limit, what the customer has and the units it
	// leaves (Available). Not retryable: only a release, an expiry or time
	// passing makes room.
	CodeCustomerLimit Code = "customer_limit"
	// CodeCustomerRequired means a reservation without a customer included
	// a SKU that limits the units per customer: the limit cannot be kept
	// without knowing whose units they are. Error.Lines lists the limited
	// lines.
	CodeCustomerRequired Code = "customer_required"
	// CodeExpectedReceiptClosed means an expected receipt can no longer
	// do what was asked: one that was cancelled cannot arrive, one that
	// arrived cannot be cancelled. Not retryable.
	CodeExpectedReceiptClosed Code = "expected_receipt_closed"
)

// Retryable reports whether a command refused with code may succeed if sent
// again, unchanged, after a pause: the service was too busy (overloaded,
// rate_limited), an append lost a race (conflict), the partition changed
// owner (lease_lost), the service could not answer (unavailable), or the
// reservation was being changed (reservation_busy). Sending
// a command again is safe: its id makes a repeat a replay.
func (c Code) Retryable() bool {
	switch c {
	case CodeOverloaded, CodeRateLimited, CodeConflict, CodeLeaseLost, CodeUnavailable, CodeReservationBusy:
		return true
	}
	return false
}

// Error is the one error type of stockd. Every rejection carries a Code; the
// HTTP layer maps codes to status codes in a single table.
type Error struct {
	// Code is the stable machine-readable code.
	Code Code
	// Message is a human-readable explanation that is safe to show clients.
	Message string
	// Lines lists, for CodeInsufficientStock, what was requested and what
	// was available per SKU.
	Lines []Shortfall
	// Status is, for CodeNotHeld, the reservation's current status.
	Status ReservationStatus
	// RetryAfter is, for refusals a client should retry (overloaded,
	// rate limited, unavailable), how long to wait first; 0 leaves the
	// pause to the code's default.
	RetryAfter time.Duration
	// Err is an underlying cause. It is for logs only and never shown to
	// clients.
	Err error
}

// Shortfall reports, for one SKU of a rejected command, the quantity asked for
// and the quantity that was available to satisfy it.
type Shortfall struct {
	SKU       string `json:"sku"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
	// SalesCap, when above 0, says the line was refused by the SKU's
	// sales cap, not by its stock: Available is then the units the cap
	// has left.
	SalesCap int64 `json:"sales_cap,omitempty"`
	// CustomerLimit, when set, says the line was refused by the SKU's
	// per-customer limit: Available is then the units the limit leaves the
	// customer.
	CustomerLimit *CustomerLimitShortfall `json:"customer_limit,omitempty"`
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: the Code of the first *Error in its chain,
// CodeInternal for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code Code) bool { return ErrorCode(err) == code }

// insufficient returns the coded error for a command that asked for more stock
// than was available.
func insufficient(lines ...Shortfall) *Error {
	msg := "not enough stock"
	if len(lines) == 1 {
		l := lines[0]
		msg = fmt.Sprintf("not enough stock of %q: requested %d, available %d", l.SKU, l.Requested, l.Available)
	}
	return &Error{Code: CodeInsufficientStock, Message: msg, Lines: lines}
}

// refusal returns the coded error for a reservation whose lines could not all
// be held: sales_cap when a line passed its SKU's sales cap (a cap
// is not lifted by stock arriving, so it is the refusal to report), and
// insufficient_stock otherwise. Lines lists every line that fell short.
func refusal(lines ...Shortfall) *Error {
	if e := limitRefusal(lines); e != nil {
		// A cart without a customer, or past a customer's limit, is
		// refused for that first: stock arriving would not lift it.
		return e
	}
	for _, l := range lines {
		if l.SalesCap > 0 {
			return &Error{
				Code: CodeSalesCap,
				Message: fmt.Sprintf("sales cap of %q reached: requested %d, %d of its cap of %d left",
					l.SKU, l.Requested, l.Available, l.SalesCap),
				Lines: lines,
			}
		}
	}
	return insufficient(lines...)
}

// notHeld returns the coded error for a command that needs a held reservation.
func notHeld(id string, status ReservationStatus) *Error {
	return &Error{
		Code:    CodeNotHeld,
		Message: fmt.Sprintf("reservation %q is %s", id, status),
		Status:  status,
	}
}

// notFound returns the coded error for an unknown entity.
func notFound(kind, id string) *Error {
	return Errorf(CodeNotFound, "%s %q not found", kind, id)
}

// mismatch returns the coded error for an id reused with a different request.
func mismatch(kind, id string) *Error {
	return Errorf(CodeIdempotencyMismatch, "%s id %q was already used with a different request", kind, id)
}

// unknownLocation returns the coded error for a command naming a location
// that was never configured, saying how to configure it.
func unknownLocation(id string) *Error {
	return Errorf(CodeUnknownLocation, "location %q is not configured: PUT /v1/locations/%s first", id, url.PathEscape(id))
}
