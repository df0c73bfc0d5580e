package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// StatusError is the HTTP side of an error the server answered: its status
// code, the pause its Retry-After header asked for, and the problem details
// when the body was one. The client returns a *stockd.Error whose Err is a
// *StatusError, so stockd.ErrorCode works as with the engine and the HTTP
// details stay reachable with errors.As, StatusCode and RetryAfter.
type StatusError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// RetryAfter is the pause the Retry-After header asked for, or 0.
	RetryAfter time.Duration
	// Problem is the decoded problem details, or nil when the body was not
	// one.
	Problem *api.Problem
}

// Error implements the error interface.
func (e *StatusError) Error() string {
	s := "HTTP " + strconv.Itoa(e.StatusCode)
	if e.RetryAfter > 0 {
		s += ", retry after " + e.RetryAfter.String()
	}
	return s
}

// RetryAfter returns the pause the server asked for before a retry (its
// Retry-After header), or 0 when err carries none.
func RetryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// StatusCode returns the HTTP status of the answer err came from, or 0 when
// the server did not answer.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// Problem returns the problem details err came from, or nil when the server
// answered none.
func Problem(err error) *api.Problem {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Problem
	}
	return nil
}

// maxErrorSnippet bounds how much of an unexpected error body an error quotes.
const maxErrorSnippet = 200

// responseError turns a non-2xx answer into a *stockd.Error: problem details
// keep their code, detail, shortfall lines and reservation status; any other
// body becomes CodeInternal naming the HTTP status, except 429 and 503,
// which mean overloaded and unavailable whatever the body.
func responseError(resp *nethttp.Response, body []byte) error {
	retry := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if isProblem(resp.Header.Get("Content-Type")) {
		var p api.Problem
		if err := json.Unmarshal(body, &p); err == nil && p.Code != "" {
			return problemError(p, resp.StatusCode, retry)
		}
	}
	se := &StatusError{StatusCode: resp.StatusCode, RetryAfter: retry}
	snippet := strings.TrimSpace(string(body))
	if len(snippet) > maxErrorSnippet {
		snippet = snippet[:maxErrorSnippet] + "…"
	}
	msg := fmt.Sprintf("unexpected HTTP %d %s", resp.StatusCode, nethttp.StatusText(resp.StatusCode))
	if snippet != "" {
		msg += ": " + snippet
	}
	code := stockd.CodeInternal
	switch resp.StatusCode {
	case nethttp.StatusTooManyRequests:
		code = stockd.CodeOverloaded
	case nethttp.StatusServiceUnavailable:
		code = stockd.CodeUnavailable
	}
	return &stockd.Error{Code: code, Message: msg, Err: se}
}

// problemError is the *stockd.Error a problem stands for.
func problemError(p api.Problem, status int, retry time.Duration) *stockd.Error {
	if status == 0 {
		status = p.Status
	}
	pp := p
	return &stockd.Error{
		Code:    p.Code,
		Message: p.Detail,
		Lines:   p.Lines,
		Status:  p.ReservationStatus,
		Err:     &StatusError{StatusCode: status, RetryAfter: retry, Problem: &pp},
	}
}

func isProblem(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/problem+json" || mt == "application/json")
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := nethttp.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
