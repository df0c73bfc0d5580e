package stockd

import (
	"strings"
	"testing"
)

func TestFeedCursorRoundTrips(t *testing.T) {
	for _, c := range []FeedCursor{{0}, {1, 2, 3}, make(FeedCursor, 64), {1 << 63, 0, 127, 128, 1<<64 - 1}} {
		s := c.String()
		got, err := ParseFeedCursor(s)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if got.String() != s || len(got) != len(c) {
			t.Fatalf("%v → %s → %v", c, s, got)
		}
		for i := range c {
			if got[i] != c[i] {
				t.Fatalf("%v → %v", c, got)
			}
		}
	}
}

func TestParseFeedCursorIsStrict(t *testing.T) {
	good := FeedCursor{5, 0, 9}.String()
	for name, s := range map[string]string{
		"empty":          "",
		"padding":        good + "=",
		"other alphabet": strings.ReplaceAll(good, "_", "/") + "+",
		"one char off":   good[:len(good)-1] + string(good[len(good)-1]^1),
		"truncated":      good[:len(good)-2],
		"no partitions":  FeedCursor{}.String(),
		"whitespace":     " " + good,
		"now":            "now",
		"a time":         "2026-11-27T10:00:00Z",
	} {
		if _, err := ParseFeedCursor(s); !IsCode(err, CodeInvalid) {
			t.Errorf("%s (%q): %v, want invalid_request", name, s, err)
		}
	}
}

// FuzzParseFeedCursor: whatever ParseFeedCursor accepts is a cursor String
// writes, byte for byte, and nothing makes it panic.
func FuzzParseFeedCursor(f *testing.F) {
	f.Add(FeedCursor{5, 0, 9}.String())
	f.Add(FeedCursor(make([]uint64, 64)).String())
	f.Add("AQEAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseFeedCursor(s)
		if err != nil {
			if !IsCode(err, CodeInvalid) {
				t.Fatalf("%q: %v is not invalid_request", s, err)
			}
			return
		}
		if c.String() != s {
			t.Fatalf("%q accepted as %v, which writes %q", s, c, c.String())
		}
		if len(c) == 0 || len(c) > MaxFeedPartitions {
			t.Fatalf("%q accepted with %d partitions", s, len(c))
		}
	})
}
