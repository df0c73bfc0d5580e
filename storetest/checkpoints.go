package storetest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/stockd/stockd"
)

// RunCheckpoints checks the rules of stockd.Checkpoints against the stores
// returned by open, which must return a fresh, empty store with the given
// number of partitions every time it is called. If a store has a Close
// method, the suite closes it.
func RunCheckpoints(t *testing.T, open func(t *testing.T, partitions int) stockd.Checkpoints) {
	newStore := opener(open)
	t.Run("SetAndGet", func(t *testing.T) { testCheckpoints(t, newStore(t, 3), 3) })
}

// testCheckpoints checks the checkpoints of a store with the given number of
// partitions, starting from an empty store.
func testCheckpoints(t *testing.T, s stockd.Checkpoints, partitions int) {
	big := make([]byte, 3<<20+4321)
	rand.New(rand.NewSource(11)).Read(big)
	want := map[string]map[int]stockd.Checkpoint{"projector": {}, "mailer": {}, "project": {}}
	set := func(consumer string, p int, c stockd.Checkpoint) {
		t.Helper()
		arg := c
		if c.State != nil {
			arg.State = bytes.Clone(c.State)
		}
		if err := s.SetCheckpoint(ctx, consumer, p, arg); err != nil {
			t.Fatalf("SetCheckpoint(%q, %d, position %d, %d bytes): %v", consumer, p, c.Position, len(c.State), err)
		}
		// The store must not keep the caller's buffer.
		for i := range arg.State {
			arg.State[i] ^= 0x5a
		}
		want[consumer][p] = c
	}
	verify := func(step string) {
		t.Helper()
		for consumer, parts := range want {
			for p := 0; p < partitions; p++ {
				got := checkpoint(t, s, consumer, p)
				equalCheckpoint(t, got, parts[p], "%s: Checkpoint(%q, %d)", step, consumer, p)
			}
		}
	}
	verify("empty store")
	steps := []struct {
		name     string
		consumer string
		p        int
		c        stockd.Checkpoint
	}{
		{"position only", "projector", 0, stockd.Checkpoint{Position: 5}},
		{"small state", "projector", 1, stockd.Checkpoint{Position: 7, State: []byte("seven")}},
		{"empty state", "mailer", 0, stockd.Checkpoint{Position: 2, State: []byte{}}},
		{"backwards, gaining a state", "projector", 0, stockd.Checkpoint{Position: 3, State: []byte("three")}},
		{"largest position", "project", 2, stockd.Checkpoint{Position: math.MaxUint64, State: []byte{0}}},
		{"large state", "projector", 1, stockd.Checkpoint{Position: 9, State: big}},
		{"small after large", "projector", 1, stockd.Checkpoint{Position: 10, State: []byte("small after large")}},
		{"exactly 1 MiB", "projector", 1, stockd.Checkpoint{Position: 11, State: big[:1<<20]}},
		{"1 MiB and a byte", "projector", 1, stockd.Checkpoint{Position: 12, State: big[:1<<20+1]}},
		{"rewound to the start", "projector", 1, stockd.Checkpoint{}},
		{"large again", "mailer", 0, stockd.Checkpoint{Position: 1000, State: big[7:]}},
		{"none after large", "mailer", 0, stockd.Checkpoint{Position: 1001}},
		{"same partition, other consumer", "project", 0, stockd.Checkpoint{Position: 4, State: []byte("project")}},
	}
	for _, st := range steps {
		set(st.consumer, st.p, st.c)
		verify(st.name)
	}

	// The state returned belongs to the caller.
	got := checkpoint(t, s, "project", 0)
	for i := range got.State {
		got.State[i] = 'X'
	}
	equalCheckpoint(t, checkpoint(t, s, "project", 0), want["project"][0], "Checkpoint after changing a returned state")

	for _, p := range []int{-1, partitions} {
		_, err := s.Checkpoint(ctx, "projector", p)
		wantCode(t, err, stockd.CodeInvalid, "Checkpoint of partition %d of %d", p, partitions)
		err = s.SetCheckpoint(ctx, "projector", p, stockd.Checkpoint{Position: 1, State: []byte("x")})
		wantCode(t, err, stockd.CodeInvalid, "SetCheckpoint of partition %d of %d", p, partitions)
	}
	verify("after invalid partitions")
}

// equalCheckpoint fails the test unless got and want have the same position
// and the same state, an empty state being equal to a nil one.
func equalCheckpoint(t testing.TB, got, want stockd.Checkpoint, format string, args ...any) {
	t.Helper()
	if got.Position != want.Position || !bytes.Equal(got.State, want.State) {
		t.Errorf("%s = position %d, %d bytes of state; want position %d, %d bytes", fmt.Sprintf(format, args...),
			got.Position, len(got.State), want.Position, len(want.State))
	}
}

// checkpoint calls Checkpoint, failing the test on error.
func checkpoint(t testing.TB, s stockd.Checkpoints, consumer string, p int) stockd.Checkpoint {
	t.Helper()
	c, err := s.Checkpoint(ctx, consumer, p)
	if err != nil {
		t.Fatalf("Checkpoint(%q, %d): %v", consumer, p, err)
	}
	return c
}
