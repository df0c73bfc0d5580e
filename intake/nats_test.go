package intake_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/intake"
	"github.com/stockd/stockd/publish/publishtest"
)

// TestNATSWorkQueueAppliesOnce runs against an in-process server.
func TestNATSWorkQueueAppliesOnce(t *testing.T) {
	testNATSWorkQueue(t, publishtest.RunNATS(t, t.TempDir(), -1).ClientURL())
}

// TestNATSWorkQueueExternal runs the same against the server named by
// STOCKD_TEST_NATS, on streams and subjects of its own, deleted at the end.
func TestNATSWorkQueueExternal(t *testing.T) {
	url := os.Getenv("STOCKD_TEST_NATS")
	if url == "" {
		t.Skip("STOCKD_TEST_NATS is not set: no external NATS server to test against")
	}
	testNATSWorkQueue(t, url)
}

// testNATSWorkQueue: commands published on the work-queue subject are
// applied once each, even when the same command arrives twice; a message
// that is not a command is terminated without stopping the others; every
// message is acknowledged once its command finished (the work queue ends
// empty), and the commands' status is readable through the API.
func testNATSWorkQueue(t *testing.T, url string) {
	var b [4]byte
	rand.Read(b[:])
	uniq := strings.ToUpper(hex.EncodeToString(b[:]))
	cmdStream, cmdSubject := "T_CMD_"+uniq, "t."+uniq+".commands"
	evStream, evPrefix := "T_EV_"+uniq, "t."+uniq+".events"
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close) // last: the streams are deleted through it
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range []string{cmdStream, evStream} {
			if err := js.DeleteStream(ctx, s); err != nil {
				t.Logf("deleting stream %s: %v", s, err)
			}
		}
	})
	s := e2e.Start(t, e2e.Options{App: func(c *app.Config) {
		c.Publish.NATS, c.Publish.NATSStream, c.Publish.NATSSubjectPrefix = url, evStream, evPrefix
		c.Intake.NATSStream, c.Intake.NATSSubject, c.Intake.NATSDurable = cmdStream, cmdSubject, "d"+uniq
	}})
	t.Cleanup(func() { s.Close() }) // before the streams are deleted
	if s.IntakeNATS == nil {
		t.Fatal("--nats did not start the work-queue consumer")
	}
	e2e.ConfigureLocations(t, s.Client, "w1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	publish := func(data string, opts ...jetstream.PublishOpt) {
		t.Helper()
		if _, err := js.Publish(ctx, cmdSubject, []byte(data), opts...); err != nil {
			t.Fatal(err)
		}
	}
	receive := `{"id":"cmd-n1","type":"receive","command":{"id":"r-n1","sku":"A","location":"w1","quantity":5}}`
	publish(receive)
	publish("not a command")
	publish(receive) // the same command again: a repeat
	publish(`{"type":"adjust","command":{"id":"a-n2","sku":"A","location":"w1","delta":-1,"reason":"lost"}}`, jetstream.WithMsgID("cmd-n2"))

	for _, id := range []string{"cmd-n1", "cmd-n2"} {
		c, err := s.Intake.Wait(ctx, id)
		if err != nil || c.Status != stockd.CommandApplied || c.Source != "nats" {
			t.Fatalf("%s from NATS = %+v %v", id, c, err)
		}
	}
	if c, err := s.Client.GetCommand(ctx, "cmd-n2"); err != nil || c.Status != stockd.CommandApplied {
		t.Errorf("GET /v1/commands/cmd-n2 = %+v %v", c, err)
	}
	// Every message is acknowledged (or terminated): the work queue
	// empties. Acknowledgements follow the commands, so wait for them.
	cons, err := js.Consumer(ctx, cmdStream, "d"+uniq)
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= 4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the work queue did not empty: %+v", info)
		case <-time.After(20 * time.Millisecond):
		}
	}
	st, err := s.Client.SKU(ctx, "A", stockd.AsOf{})
	if err != nil || st.OnHand != 4 {
		t.Fatalf("A = %+v %v, want 4 on hand: the receipt applied once, the adjustment once", st, err)
	}
}

// TestNATSDownAtStartTakesCommandsOnceItComes: stockd starts while its NATS
// server is down (a broker must never keep the shop closed), and takes
// commands from the work queue once the server is up.
func TestNATSDownAtStartTakesCommandsOnceItComes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	s := e2e.Start(t, e2e.Options{App: func(c *app.Config) { c.Publish.NATS = url }})
	e2e.ConfigureLocations(t, s.Client, "w1")
	if _, _, err := s.Client.Receive(t.Context(), stockd.ReceiveStock{ID: "r-0", SKU: "A", Location: "w1", Quantity: 1}); err != nil {
		t.Fatalf("stockd does not serve while NATS is down: %v", err)
	}

	publishtest.RunNATS(t, t.TempDir(), port)
	t.Cleanup(func() { s.Close() }) // before the server shuts down
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	// The stream appears once stockd's consumer has retried; publish then.
	for {
		if _, err := js.Stream(ctx, intake.DefaultStream); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("stockd did not make its work-queue stream within 60 s of NATS coming up")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := js.Publish(ctx, intake.DefaultSubject, []byte(`{"id":"cmd-late","type":"receive","command":{"id":"r-late","sku":"A","location":"w1","quantity":4}}`)); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Intake.Wait(ctx, "cmd-late"); err != nil || c.Status != stockd.CommandApplied {
		t.Fatalf("cmd-late = %+v, %v", c, err)
	}
}
