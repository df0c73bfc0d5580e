package natspub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/publish"
	"github.com/stockd/stockd/publish/natspub"
	"github.com/stockd/stockd/publish/publishtest"
)

// runNATS starts an in-process nats-server (see publishtest.RunNATS).
var runNATS = publishtest.RunNATS

func portOf(s *server.Server) int { return s.Addr().(*net.TCPAddr).Port }

// quiet drops logs: the tests' own failures say what went wrong.
var quiet = slog.New(slog.DiscardHandler)

// newSink makes a Sink for the test, closed when it ends.
func newSink(t testing.TB, opts natspub.Options) *natspub.Sink {
	t.Helper()
	if opts.NATS == nil {
		// Reconnect quickly, so that tests of outages are short.
		opts.NATS = []nats.Option{nats.ReconnectWait(20 * time.Millisecond)}
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := natspub.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// message is a message of the stream as a receiver reads it.
type message struct {
	subject  string
	msgID    string
	typ      string
	data     []byte
	event    eventBody
	sequence uint64
}

type eventBody struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	SKU       string          `json:"sku"`
	Version   uint64          `json:"version"`
	Partition int             `json:"partition"`
	Position  uint64          `json:"position"`
	Data      json.RawMessage `json:"data"`
}

// stored returns every message of the stream, in the order it stored them.
func stored(t testing.TB, url, stream string) []message {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []message
	if info.State.Msgs == 0 {
		return out
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d of stream %s: %v", seq, stream, err)
		}
		msg := message{subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader), typ: m.Header.Get(natspub.HeaderType), data: m.Data, sequence: seq}
		if err := json.Unmarshal(m.Data, &msg.event); err != nil {
			t.Fatalf("message %d: %v: %s", seq, err, m.Data)
		}
		out = append(out, msg)
	}
	return out
}

// checkStream checks that msgs hold every event of every partition up to
// its durable head that is sent downstream, exactly once, in position order
// per partition, on the partition's subject, with its id in Nats-Msg-Id and
// the body the API shows.
func checkStream(t testing.TB, lg stockd.Log, head func(p int) uint64, prefix string, msgs []message) {
	t.Helper()
	byPartition := map[int][]message{}
	for _, m := range msgs {
		byPartition[m.event.Partition] = append(byPartition[m.event.Partition], m)
	}
	total := 0
	for p := range lg.Partitions() {
		h := head(p)
		events, err := lg.ReadPartition(context.Background(), p, 0, int(h))
		if err != nil {
			t.Fatal(err)
		}
		var want []stockd.Event
		for _, e := range events {
			if publish.Downstream(e) {
				want = append(want, e)
			}
		}
		got := byPartition[p]
		if len(got) != len(want) {
			t.Fatalf("partition %d: %d messages in the stream, %d events up to the durable head %d", p, len(got), len(want), h)
		}
		subject := fmt.Sprintf("%s.%d", prefix, p)
		for i, e := range want {
			m := got[i]
			if m.event.Position != e.Position || m.msgID != e.ID() || m.event.ID != e.ID() {
				t.Fatalf("partition %d: message %d is event %s (Nats-Msg-Id %s), want %s: missing, repeated or out of order", p, i, m.event.ID, m.msgID, e.ID())
			}
			if m.subject != subject || m.typ != e.Type().String() {
				t.Fatalf("event %s: subject %s type header %q, want %s and %s", e.ID(), m.subject, m.typ, subject, e.Type())
			}
			body, err := publish.JSON(e)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != string(m.data) {
				t.Fatalf("event %s: body %s, want %s", e.ID(), m.data, body)
			}
		}
		total += len(want)
	}
	if total != len(msgs) {
		t.Fatalf("the stream holds %d messages, the log %d events", len(msgs), total)
	}
}
