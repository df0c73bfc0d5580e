package testclock

import (
	"testing"
	"time"
)

func TestAdvanceMovesNowByExactlyTheDuration(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := New(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", c.Now(), t0)
	}
	c.Advance(90 * time.Second)
	if got := c.Now().Sub(t0); got != 90*time.Second {
		t.Fatalf("after Advance(90s) the clock moved %v", got)
	}
}
