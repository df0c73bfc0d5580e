package stockd

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// sampleMessages returns one message of every kind with every field set.
func sampleMessages() []Message {
	exp := t0.Add(time.Hour)
	return []Message{
		{To: 2, Command: sagaHold{
			reservation: "c1", home: 1, step: 1, attempt: 42,
			lines: []ReserveLine{
				{SKU: "A", Quantity: 2, Location: "w1"},
				{SKU: "B", Quantity: 1, Locations: []string{"w1", "w2"}, Split: true},
			},
			region: "eu", expiresAt: exp, customer: "kü",
		}},
		{To: 3, Command: sagaStep{
			reservation: "c1", home: 1, step: 4, attempt: 42, action: SagaCommit,
			lines: []CommitLine{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 0}}, expiresAt: exp, reason: ReleaseExpired,
		}},
		{To: 1, Command: sagaAck{
			reservation: "c1", step: 1, from: 2, attempt: 42,
			held: []ReservationLine{{
				SKU: "A", Quantity: 2, Held: 3, Allocations: []Allocation{{"w1", 1}, {"w2", 1}},
				Preorder: 1, Preorders: []PreorderHold{{ExpectedReceipt: "po-1", Location: "w1", Quantity: 1}},
			}},
			shortfalls: []Shortfall{
				{SKU: "B", Requested: 2, Available: 1, SalesCap: 3},
				{SKU: "C", Requested: 2, Available: 0, CustomerLimit: &CustomerLimitShortfall{Units: 2, Window: time.Hour, Customer: "kü", Has: 2}},
			},
		}},
		{To: 0, Command: abortSaga{reservation: "c1"}},
	}
}

func TestEveryMessageRoundTrips(t *testing.T) {
	for _, m := range sampleMessages() {
		t.Run(describe(m.Command), func(t *testing.T) {
			data, err := EncodeMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMessage(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
			}
		})
	}
}

// TestEveryKindOfMessageIsSampled keeps sampleMessages complete: every
// command a decision sends to another partition is among them.
func TestEveryKindOfMessageIsSampled(t *testing.T) {
	kinds := map[string]bool{}
	for _, m := range sampleMessages() {
		kinds[reflect.TypeOf(m.Command).Name()] = true
	}
	for _, k := range []string{"sagaHold", "sagaStep", "sagaAck", "abortSaga"} {
		if !kinds[k] {
			t.Errorf("no sample of %s", k)
		}
	}
}

func TestEncodeMessageRefusesWhatIsNotAMessage(t *testing.T) {
	for _, m := range []Message{
		{To: 1, Command: reserve("c1", line("A", 1))},
		{To: 1, Command: expireReservation{id: "c1"}},
		{To: 1},
		{To: -1, Command: abortSaga{reservation: "c1"}},
	} {
		if _, err := EncodeMessage(m); err == nil {
			t.Errorf("%#v encoded", m)
		}
	}
}

func TestDecodeMessageRejectsDamage(t *testing.T) {
	for _, m := range sampleMessages() {
		data, err := EncodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(data) {
			if _, err := DecodeMessage(data[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s truncated to %d of %d bytes: %v", describe(m.Command), n, len(data), err)
			}
		}
		if _, err := DecodeMessage(append(data[:len(data):len(data)], 0)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s with a trailing byte: %v", describe(m.Command), err)
		}
		for i := range data {
			for _, b := range []byte{0, 1, 0x7f, 0x80, 0xff} {
				mut := append([]byte{}, data...)
				mut[i] = b
				checkMessageDecoding(t, mut)
			}
		}
	}
	hold, _ := EncodeMessage(sampleMessages()[0])
	step, _ := EncodeMessage(sampleMessages()[1])
	for name, data := range map[string][]byte{
		"unknown format":      append([]byte{messageFormatV6 + 1}, hold[1:]...),
		"unknown kind":        append([]byte{hold[0], hold[1], 9}, hold[3:]...),
		"negative partition":  append([]byte{hold[0], 1}, hold[2:]...), // varint -1
		"unknown action":      withByte(step, len(step)-len(mustEncodeStepTail(t))-1, 9),
		"unknown reason":      append(step[:len(step)-len("expired")-1:len(step)-len("expired")-1], append([]byte{5}, "later"...)...),
		"empty":               nil,
		"only the format":     {messageFormatV1},
		"no command":          {messageFormatV1, 2},
		"list longer than in": {messageFormatV1, 2, kindSagaAck, 0, 2, 4, 0, 100},
	} {
		if _, err := DecodeMessage(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// mustEncodeStepTail is what the sample step encodes after its action byte.
func mustEncodeStepTail(t *testing.T) []byte {
	w := writer{}
	c := sampleMessages()[1].Command.(sagaStep)
	w.uvarint(uint64(len(c.lines)))
	for _, l := range c.lines {
		w.string(l.SKU)
		w.varint(l.Quantity)
	}
	w.time(c.expiresAt)
	w.string(string(c.reason))
	return w.buf
}

func withByte(data []byte, i int, b byte) []byte {
	out := append([]byte{}, data...)
	out[i] = b
	return out
}

// checkMessageDecoding decodes data and, if that succeeds, checks that the
// message encodes again to one that decodes equal.
func checkMessageDecoding(t *testing.T, data []byte) {
	t.Helper()
	m, err := DecodeMessage(data)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	again, err := EncodeMessage(m)
	if err != nil {
		t.Fatalf("decoded message %#v does not encode: %v", m, err)
	}
	back, err := DecodeMessage(again)
	if err != nil {
		t.Fatalf("re-encoded message does not decode: %v", err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("re-encoded message differs:\n%#v\n%#v", m, back)
	}
}

// FuzzDecodeMessage: decoding never panics, and whatever decodes encodes
// again to an equal message.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		data, err := EncodeMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(checkMessageDecoding)
}
