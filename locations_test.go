package stockd

import "testing"

// TestUnknownLocationMessage: the refusal names the location and says how to
// configure it, with the id escaped as a URL path segment.
func TestUnknownLocationMessage(t *testing.T) {
	s := NewState(0, 1, DefaultLimits)
	for _, tc := range []struct {
		cmd  Command
		want string
	}{
		{recv("r1", "A", "w9", 1), `unknown_location: location "w9" is not configured: PUT /v1/locations/w9 first`},
		{recv("r1", "A", "Halle 9", 1), `unknown_location: location "Halle 9" is not configured: PUT /v1/locations/Halle%209 first`},
		{TransferStock{ID: "t1", SKU: "A", From: "w1", To: "w2", Quantity: 1}, `unknown_location: location "w1" is not configured: PUT /v1/locations/w1 first`},
	} {
		_, err := s.Decide(tc.cmd, t0)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%T: %v, want %s", tc.cmd, err, tc.want)
		}
	}
}

// TestOldEventsStillApply: events written before unknown locations and past
// best-before dates were refused name them; they apply and replay as they
// always did, their lots expire, their receipts are answered as replays and
// their transfers arrive. Only new commands are refused.
func TestOldEventsStillApply(t *testing.T) {
	old := recvLot("r-old", "A", "legacy", 5, "L0", "2020-01-01")
	oldUndated := recv("r-old2", "A", "legacy", 3)
	oldTransfer := TransferStock{ID: "t-old", SKU: "A", From: "legacy", To: "gone", Quantity: 1}
	events := []Event{
		{Partition: 0, Position: 1, SKU: "A", Version: 1, Time: t0, CommandID: old.ID,
			Data: StockReceived{Location: "legacy", Quantity: 5, Lot: "L0", BestBefore: "2020-01-01", Fingerprint: Fingerprint(old)}},
		{Partition: 0, Position: 2, SKU: "A", Version: 2, Time: t0, CommandID: oldUndated.ID,
			Data: StockReceived{Location: "legacy", Quantity: 3, Fingerprint: Fingerprint(oldUndated)}},
		{Partition: 0, Position: 3, SKU: "A", Version: 3, Time: t0, CommandID: oldTransfer.ID,
			Data: StockTransferred{From: "legacy", To: "gone", Quantity: 1, Lots: []LotQty{lq("legacy", "", "", 1)}, Fingerprint: Fingerprint(oldTransfer)}},
	}
	c := newCluster(t, 1, t0)
	for _, e := range events {
		if err := c.states[0].Apply(e); err != nil {
			t.Fatalf("apply %s: %v", e.Type(), err)
		}
		c.logs[0] = append(c.logs[0], e)
	}
	c.flushAll()
	// The past lot expires at once, by the timer, as it did.
	c.tickAll()
	if got := c.logs[0][len(c.logs[0])-1]; got.Type() != TypeLotExpired {
		t.Fatalf("last event %s, want the past lot to expire", got.Type())
	}
	wantLoc(t, c, "A", "legacy", 2, 0, 2, 0, 0)
	// Repeats of the old commands are answered, not refused.
	for _, cmd := range []Command{old, oldUndated, oldTransfer} {
		if _, d, err := c.do(cmd); err != nil || !d.Replay {
			t.Fatalf("repeat of %T: %+v, %v; want a replay", cmd, d, err)
		}
	}
	// The old transfer arrives at its unconfigured destination.
	mustDo(t, c, ArriveTransfer{ID: "t-old"})
	wantLoc(t, c, "A", "gone", 1, 0, 1, 0, 0)
	// A reservation naming no location holds stock wherever it is.
	mustDo(t, c, reserve("c1", line("A", 2)))
	wantLoc(t, c, "A", "legacy", 2, 2, 0, 0, 0)
	// New commands naming the old locations are refused until they are
	// configured.
	for _, cmd := range []Command{
		recv("r-new", "A", "legacy", 1),
		adjust("a-new", "A", "legacy", -1, ReasonLost),
		CountStock{ID: "n-new", SKU: "A", Location: "gone", OnHand: 0},
		TransferStock{ID: "t-new", SKU: "A", From: "gone", To: "legacy", Quantity: 1},
		reserve("c2", lineAt("A", 1, "gone")),
	} {
		if _, _, err := c.do(cmd); !IsCode(err, CodeUnknownLocation) {
			t.Fatalf("%T: %v, want unknown_location", cmd, err)
		}
	}
	mustDo(t, c, warehouse("gone", 1, ""))
	mustDo(t, c, CountStock{ID: "n-new", SKU: "A", Location: "gone", OnHand: 0})
	// And a rebuilt state is the same state.
	if diff := sameState(c.states[0], c.replay(0, c.logs[0], nil)); diff != "" {
		t.Fatalf("rebuilt from the log: %s", diff)
	}
}
