package api_test

import (
	"testing"
	"time"

	"github.com/stockd/stockd/api"
)

// TestFormatDuration: durations are written without trailing zero units,
// and parse back to themselves.
func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute:        "15m",
		time.Hour:               "1h",
		90 * time.Minute:        "1h30m",
		time.Second:             "1s",
		1500 * time.Millisecond: "1.5s",
		10 * time.Second:        "10s",
		time.Hour + time.Second: "1h0m1s",
	} {
		if got := api.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(api.FormatDuration(d)); err != nil || back != d {
			t.Errorf("FormatDuration(%v) does not parse back: %v %v", d, back, err)
		}
	}
}
