package http

import (
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// TestRetryAfterFromTheError: a refusal that names its pause is answered
// with that pause, rounded up to whole seconds (a client must not come back
// early); one that names none gets its code's default.
func TestRetryAfterFromTheError(t *testing.T) {
	s := NewServer(Config{Logger: slog.New(slog.DiscardHandler)})
	for _, c := range []struct {
		err  *stockd.Error
		want string
	}{
		{&stockd.Error{Code: stockd.CodeOverloaded, RetryAfter: 2300 * time.Millisecond}, "3"},
		{&stockd.Error{Code: stockd.CodeOverloaded, RetryAfter: 10 * time.Millisecond}, "1"},
		{&stockd.Error{Code: stockd.CodeRateLimited, RetryAfter: 7 * time.Second}, "7"},
		{&stockd.Error{Code: stockd.CodeUnavailable}, "5"},
		{&stockd.Error{Code: stockd.CodeInvalid, RetryAfter: time.Second}, ""},
	} {
		rec := httptest.NewRecorder()
		s.writeProblem(rec, httptest.NewRequest("GET", "/x", nil), c.err)
		if got := rec.Header().Get("Retry-After"); got != c.want {
			t.Errorf("%s with RetryAfter %v: Retry-After %q, want %q", c.err.Code, c.err.RetryAfter, got, c.want)
		}
	}
}
