package kafkapub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/publish"
	"github.com/stockd/stockd/publish/kafkapub"
	"github.com/stockd/stockd/publish/publishtest"
)

var quiet = slog.New(slog.DiscardHandler)

// runKafka starts an in-process fake Kafka cluster of one broker on port
// (0: a free one), keeping its data in dir (none when empty). It is closed
// when the test ends, or earlier by the caller.
func runKafka(t testing.TB, dir string, port int, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append(opts, kfake.NumBrokers(1), kfake.Ports(port), kfake.DefaultNumPartitions(8))
	if dir != "" {
		opts = append(opts, kfake.DataDir(dir), kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func portOf(t testing.TB, c *kfake.Cluster) int {
	_, port, err := net.SplitHostPort(c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

func newSink(t testing.TB, opts kafkapub.Options) *kafkapub.Sink {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := kafkapub.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// record is a record of the topic as a consumer reads it.
type record struct {
	partition int32
	offset    int64
	key       string
	id, typ   string
	value     []byte
	event     struct {
		ID        string `json:"id"`
		SKU       string `json:"sku"`
		Partition int    `json:"partition"`
		Position  uint64 `json:"position"`
	}
}

// consumed reads every record of the topic, up to each partition's high
// watermark, in offset order per partition.
func consumed(t testing.TB, c *kfake.Cluster, topic string) []record {
	t.Helper()
	var total int64
	for _, pi := range c.PartitionInfos(topic) {
		total += pi.HighWatermark - pi.LogStartOffset
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []record
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records in 30 s", len(out), total)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("consuming: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			rec := record{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: r.Value}
			for _, h := range r.Headers {
				switch h.Key {
				case kafkapub.HeaderID:
					rec.id = string(h.Value)
				case kafkapub.HeaderType:
					rec.typ = string(h.Value)
				}
			}
			if err := json.Unmarshal(r.Value, &rec.event); err != nil {
				t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
			}
			out = append(out, rec)
		})
	}
	return out
}

// checkTopic checks that records hold every event of every partition up to
// its durable head that is sent downstream, with its key, headers and body;
// that within each Kafka partition the first copy of each event comes in
// position order (per stockd partition); and returns how many records are
// repeats.
func checkTopic(t testing.TB, lg stockd.Log, head func(int) uint64, records []record) (repeats int) {
	t.Helper()
	want := map[string]stockd.Event{}
	for p := range lg.Partitions() {
		events, err := lg.ReadPartition(context.Background(), p, 0, int(head(p)))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if publish.Downstream(e) {
				want[e.ID()] = e
			}
		}
	}
	seen := map[string]bool{}
	type stream struct {
		kafka int32
		p     int
	}
	last := map[stream]uint64{}
	keyPartition := map[string]int32{}
	for _, r := range records {
		e, ok := want[r.id]
		if !ok {
			t.Fatalf("record %d/%d carries event %q, not in the log below the durable head", r.partition, r.offset, r.id)
		}
		if seen[r.id] {
			repeats++
			continue
		}
		seen[r.id] = true
		if r.event.ID != r.id || r.typ != e.Type().String() || r.key != string(kafkapub.Key(e)) {
			t.Fatalf("record of event %s: id %s/%s type %s key %q", e.ID(), r.id, r.event.ID, r.typ, r.key)
		}
		if body, _ := publish.JSON(e); string(body) != string(r.value) {
			t.Fatalf("event %s: value %s, want %s", e.ID(), r.value, body)
		}
		if kp, ok := keyPartition[r.key]; ok && kp != r.partition {
			t.Fatalf("key %q in Kafka partitions %d and %d", r.key, kp, r.partition)
		}
		keyPartition[r.key] = r.partition
		s := stream{r.partition, e.Partition}
		if e.Position <= last[s] {
			t.Fatalf("Kafka partition %d: event %s first came after position %d of its partition", r.partition, e.ID(), last[s])
		}
		last[s] = e.Position
	}
	if len(seen) != len(want) {
		t.Fatalf("%d of %d events in the topic", len(seen), len(want))
	}
	return repeats
}

type fakeLog struct {
	stockd.Log
	parts [][]stockd.Event
}

func (l fakeLog) Partitions() int { return len(l.parts) }
func (l fakeLog) ReadPartition(_ context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	var out []stockd.Event
	for _, e := range l.parts[p] {
		if e.Position > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}
func (l fakeLog) head(p int) uint64 { return uint64(len(l.parts[p])) }

func events(p int, n int) []stockd.Event {
	var out []stockd.Event
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range n {
		pos := uint64(i + 1)
		e := stockd.Event{Partition: p, Position: pos, Time: t0.Add(time.Duration(pos) * time.Millisecond)}
		if i%5 == 4 {
			e.Data = stockd.LocationConfigured{Location: stockd.Location{ID: fmt.Sprintf("w%d", pos), Kind: stockd.KindWarehouse}}
		} else {
			e.SKU, e.Version = fmt.Sprintf("sku-%d", i%7), pos
			e.Data = stockd.StockReceived{Location: "w1", Quantity: int64(pos)}
		}
		out = append(out, e)
	}
	return out
}

func TestRecordsAreKeyedBySKUWithTheEventsIDTypeAndBody(t *testing.T) {
	c := runKafka(t, "", 0)
	sink := newSink(t, kafkapub.Options{Brokers: c.ListenAddrs()})
	log := fakeLog{parts: [][]stockd.Event{events(0, 40), nil, events(2, 25)}}
	for p, evs := range log.parts {
		if len(evs) > 0 {
			if err := sink.Publish(context.Background(), p, evs); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c.TopicInfo(kafkapub.DefaultTopic) == nil {
		t.Fatal("the topic was not created")
	}
	if n := checkTopic(t, log, log.head, consumed(t, c, kafkapub.DefaultTopic)); n != 0 {
		t.Fatalf("%d repeats", n)
	}
	if got := string(kafkapub.Key(log.parts[2][4])); got != "p2" {
		t.Fatalf("key of an event without SKU: %q", got)
	}
}

// TestTheIdempotentProducerStoresARetriedRequestOnce has the broker write
// produce requests and then answer them REQUEST_TIMED_OUT, as when an answer
// is lost: the client sends them again with the same sequence numbers, and
// the broker keeps one copy.
func TestTheIdempotentProducerStoresARetriedRequestOnce(t *testing.T) {
	c := runKafka(t, "", 0, kfake.SeedTopics(8, kafkapub.DefaultTopic))
	sink := newSink(t, kafkapub.Options{Brokers: c.ListenAddrs()})
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: kafkapub.DefaultTopic, Err: kerr.RequestTimedOut, Count: 3})
	log := fakeLog{parts: [][]stockd.Event{events(0, 200)}}
	for i := 0; i < 200; i += 50 {
		if err := sink.Publish(context.Background(), 0, log.parts[0][i:i+50]); err != nil {
			t.Fatal(err)
		}
	}
	if h.Hits() == 0 {
		t.Fatal("no produce request was answered with a timeout: the test proved nothing")
	}
	if n := checkTopic(t, log, log.head, consumed(t, c, kafkapub.DefaultTopic)); n != 0 {
		t.Fatalf("%d repeats after %d answers lost", n, h.Hits())
	}
	t.Logf("%d produce answers lost, no repeats", h.Hits())
}

func TestAPublishWhileTheClusterIsDownFailsWithinItsTimeout(t *testing.T) {
	c := runKafka(t, "", 0)
	addrs := c.ListenAddrs()
	sink := newSink(t, kafkapub.Options{Brokers: addrs, Timeout: 500 * time.Millisecond})
	if err := sink.Publish(context.Background(), 0, events(0, 10)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for i := range 3 {
		start := time.Now()
		if err := sink.Publish(context.Background(), 0, events(0, 10)); err == nil {
			t.Fatal("a Publish with the cluster down succeeded")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("attempt %d: Publish took %v to fail, timeout 500ms", i, d)
		}
	}
}

// TestARunnerDeliversEverythingThroughABrokerRestart closes the cluster while
// events are written and published, and starts it again over its data on
// the same port: every event arrives, the first copy of each in order.
func TestARunnerDeliversEverythingThroughABrokerRestart(t *testing.T) {
	dir := t.TempDir()
	c := runKafka(t, dir, 0)
	port := portOf(t, c)
	srv := e2e.Start(t, e2e.Options{Partitions: 4, NoReadModel: true})
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	sink := &publishtest.CountingSink{Sink: newSink(t, kafkapub.Options{Brokers: c.ListenAddrs(), Timeout: 500 * time.Millisecond})}
	r, err := publish.Start(context.Background(), sink, publish.Options{
		Name: "kafka", Log: srv.Log, Checkpoints: srv.Store, DurableHead: srv.Engine.DurableHead, Heads: srv.Heads,
		Batch: 64, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := publishtest.StartWriter(t, srv, "r", 4)
	w.WaitFor(t, 500)
	publishtest.Eventually(t, 30*time.Second, func() bool { return r.Position(0) > 0 }, "the first events to be published")
	c.Close()
	failed := sink.Failures.Load()
	w.WaitFor(t, w.Written()+500)
	publishtest.Eventually(t, 30*time.Second, func() bool { return sink.Failures.Load() > failed }, "a Publish to fail while the cluster is down")
	lagWhileDown := r.Lag()
	c = runKafka(t, dir, port)
	w.WaitFor(t, w.Written()+500)
	w.Stop()
	publishtest.WaitCaughtUp(t, r)
	repeats := checkTopic(t, srv.Log, srv.Engine.DurableHead, consumed(t, c, kafkapub.DefaultTopic))
	t.Logf("%d events, %d Publish calls, %d failed; lag %d while the cluster was down; %d repeats in the topic", w.Written(), sink.Calls.Load(), sink.Failures.Load(), lagWhileDown, repeats)
	if lagWhileDown == 0 {
		t.Fatal("nothing waited for the cluster: the test proved nothing")
	}
}

func kafkaApp(t *testing.T, dir string, brokers []string, batch int) *e2e.Server {
	return e2e.Start(t, e2e.Options{Dir: dir, Partitions: 4, NoReadModel: true, App: func(c *app.Config) {
		c.Publish.Kafka = brokers
		c.Publish.Runner = publish.Options{Batch: batch, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	}})
}

// TestAnAppClosedMidStreamAndStartedAgainLosesNothing closes stockd while
// its Kafka publisher is behind and starts it again over the same data:
// every event is in the topic, the first copy of each in order, and a
// reservation made over HTTP after the restart arrives keyed by its SKU.
func TestAnAppClosedMidStreamAndStartedAgainLosesNothing(t *testing.T) {
	c := runKafka(t, "", 0)
	srv := kafkaApp(t, "", c.ListenAddrs(), 1)
	e2e.ConfigureLocations(t, srv.Engine, "w1")
	if len(srv.Publishers) != 1 || srv.Publishers[0].Name() != "kafka" {
		t.Fatalf("publishers %v", srv.Publishers)
	}
	w := publishtest.StartWriter(t, srv, "a", 8)
	w.WaitFor(t, 2000)
	w.Stop()
	lagAtClose := srv.Publishers[0].Lag()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv = kafkaApp(t, srv.Dir, c.ListenAddrs(), 64)
	if lagAtClose == 0 {
		t.Fatal("the publisher had caught up before the close: the test proved nothing")
	}
	ctx := context.Background()
	if _, _, err := srv.Client.Reserve(ctx, stockd.Reserve{ID: "cart-1", TTL: time.Minute, Lines: []stockd.ReserveLine{{SKU: "sku-1", Quantity: 2}}}); err != nil {
		t.Fatal(err)
	}
	w = publishtest.StartWriter(t, srv, "b", 4)
	w.WaitFor(t, 500)
	w.Stop()
	publishtest.WaitCaughtUp(t, srv.Publishers[0])
	records := consumed(t, c, kafkapub.DefaultTopic)
	repeats := checkTopic(t, srv.Log, srv.Engine.DurableHead, records)
	reserved := false
	for _, r := range records {
		reserved = reserved || (r.typ == "StockReserved" && r.key == "sku-1")
	}
	if !reserved {
		t.Fatal("no StockReserved record keyed sku-1")
	}
	t.Logf("closed %d events behind; %d records, %d repeats", lagAtClose, len(records), repeats)
}

// TestStockdServesWithTheClusterDownAndPublishesWhenItComes starts stockd
// producing to a Kafka cluster that is not running: it opens and takes
// commands all the same, and publishes everything once the cluster starts.
func TestStockdServesWithTheClusterDownAndPublishesWhenItComes(t *testing.T) {
	c := runKafka(t, "", 0)
	brokers, port := c.ListenAddrs(), portOf(t, c)
	c.Close()
	srv := kafkaApp(t, "", brokers, 0)
	ctx := context.Background()
	e2e.ConfigureLocations(t, srv.Client, "w1")
	for i := range 50 {
		if _, _, err := srv.Client.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("r-%d", i), SKU: fmt.Sprintf("sku-%d", i%7), Location: "w1", Quantity: 1}); err != nil {
			t.Fatalf("receive with the cluster down: %v", err)
		}
	}
	if lag := srv.Publishers[0].Lag(); lag == 0 {
		t.Fatal("published with no cluster")
	}
	c = runKafka(t, "", port)
	publishtest.WaitCaughtUp(t, srv.Publishers[0])
	checkTopic(t, srv.Log, srv.Engine.DurableHead, consumed(t, c, kafkapub.DefaultTopic))
}
