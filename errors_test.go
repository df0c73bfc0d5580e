package stockd

import "testing"

// TestRetryableCodesAreThoseWhereNothingWasDecided: a client sends a command
// again, unchanged, only after a refusal that says nothing about the command
// itself (busy, a lost race, a moved partition, no answer); a verdict on the
// command (invalid, insufficient stock, not found, …) is final.
func TestRetryableCodesAreThoseWhereNothingWasDecided(t *testing.T) {
	retry := map[Code]bool{CodeOverloaded: true, CodeRateLimited: true, CodeConflict: true, CodeLeaseLost: true, CodeUnavailable: true}
	for _, c := range []Code{CodeInvalid, CodeInsufficientStock, CodeNotHeld, CodeNotFound, CodeIdempotencyMismatch,
		CodeOverloaded, CodeConflict, CodeLeaseLost, CodeUnavailable, CodeBodyTooLarge, CodeInternal, CodeUnauthenticated,
		CodeForbidden, CodeRateLimited, CodeUnknownLocation, CodeUnsupportedMediaType, CodeInUse, CodeSalesCap} {
		if c.Retryable() != retry[c] {
			t.Errorf("%s.Retryable() = %v, want %v", c, c.Retryable(), retry[c])
		}
	}
}
