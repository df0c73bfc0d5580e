package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/publish"
	"github.com/stockd/stockd/publish/kafkapub"
	"github.com/stockd/stockd/publish/publishtest"
)

// BenchmarkPublishersHotSKU measures reservations of one hot SKU with every
// publisher off and with every publisher on, side by side in one run: two
// Apps (64 partitions, read model on, real fsync), one with no publisher and
// one publishing every event to NATS JetStream, to Kafka (kfake, in memory)
// and to a webhook endpoint on loopback that answers 204. Rounds alternate,
// off, on, off, on..., so that the machine's drift hits both alike; each
// round settles b.N reservations (a reservation of 1 unit, then a commit or
// a release, half each) from the sub-benchmark's callers. They go through
// the engine in-process, as in the engine benchmarks: the highest rate of
// events the publishers must follow, and where their CPU weighs most (over
// HTTP, each request's handling would take most of the CPU and the
// reservations would come several times slower).
//
// Every publisher's LagSeconds is sampled every 10 ms from the start of each
// on-round until every publisher has caught up after it (a publisher slower
// than the writes is still falling behind when the round ends); then every
// sink must hold at least the events written. It reports the reservations a
// second off and on (the mean of the rounds), their ratio, the p50/p99/max
// of the worst publisher's lag at each sample, each publisher's p99 and max,
// and the longest catch-up after a round.
//
// NATS is the server at STOCKD_TEST_NATS when set (on a stream and subjects
// of the benchmark's own, deleted at the end), else an in-process
// nats-server with JetStream on file storage. STOCKD_BENCH_ROUNDS sets the
// pairs of rounds (default 3); STOCKD_BENCH_PUBLISHERS, a comma-separated
// subset of nats, kafka and webhook, the publishers turned on (default all);
// STOCKD_BENCH_RATE, when set, paces the reservations to that many a second
// (an offered load, to see whether the lag stays bounded below the most the
// machine does).
//
//	go test ./app -run='^$' -bench=PublishersHotSKU -benchtime=20000x -timeout=30m
func BenchmarkPublishersHotSKU(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(engine.GCPercent))
	for _, callers := range []int{64, 1024} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			benchPublishersHotSKU(b, callers)
		})
	}
}

// hookName is the benchmark's webhook endpoint.
const hookName = "bench"

// pubEnv is an App with its publishers on, and their sinks.
type pubEnv struct {
	pubs         map[string]bool
	srv          *e2e.Server
	natsURL      string
	js           jetstream.JetStream
	stream       string
	subjects     string
	kafka        *kfake.Cluster
	hookRequests atomic.Int64
	// written counts the durable events sent downstream, per partition
	// up to counted[p].
	written int64
	counted []uint64
}

func benchPublishersHotSKU(b *testing.B, callers int) {
	rounds := 3
	if s := os.Getenv("STOCKD_BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("STOCKD_BENCH_ROUNDS=%q: want a positive number", s)
		}
		rounds = n
	}
	var pace time.Duration // between reservations; 0: as fast as they go
	if s := os.Getenv("STOCKD_BENCH_RATE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("STOCKD_BENCH_RATE=%q: want reservations a second", s)
		}
		if n > 0 {
			pace = time.Second / time.Duration(n)
		}
	}
	off := e2e.Start(b, e2e.Options{Partitions: 64})
	on := startPublishing(b, benchPublishers(b))
	for _, s := range []*e2e.Server{off, on.srv} {
		e2e.ConfigureLocations(b, s.Engine, "w1")
	}

	// One untimed round each first: connections made, the stream and
	// the topic created, memory grown.
	warm := min(b.N, 5000)
	hotRound(b, off, callers, "warm", warm, pace)
	hotRound(b, on.srv, callers, "warm", warm, pace)
	on.caughtUp(b)

	var offRate, onRate []float64
	var worst []float64
	perPub := map[string][]float64{}
	var catchUp time.Duration
	b.ResetTimer()
	for r := range rounds {
		offRate = append(offRate, hotRound(b, off, callers, "off"+strconv.Itoa(r), b.N, pace))

		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				m := 0.0
				for name, s := range on.lagSeconds(b) {
					perPub[name] = append(perPub[name], s)
					m = max(m, s)
				}
				worst = append(worst, m)
			}
		}()
		rate := hotRound(b, on.srv, callers, "on"+strconv.Itoa(r), b.N, pace)
		onRate = append(onRate, rate)
		b.StopTimer()
		// The lag is sampled until every publisher has caught up: a
		// publisher slower than the writes is still falling behind when
		// the round ends.
		t0 := time.Now()
		on.caughtUp(b)
		caught := time.Since(t0)
		catchUp = max(catchUp, caught)
		close(stop)
		<-sampled
		on.checkSinks(b)
		if b.N > 1 {
			b.Logf("round %d: off %.0f/s, on %.0f/s (%.3f); worst lag p99 %.3f s max %.3f s over the rounds so far; catch-up %v",
				r, offRate[r], onRate[r], onRate[r]/offRate[r], quantile(worst, 0.99), quantile(worst, 1), caught.Round(time.Millisecond))
		}
		b.StartTimer()
	}
	b.StopTimer()

	offMean, onMean := mean(offRate), mean(onRate)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(offMean, "off-res/s")
	b.ReportMetric(onMean, "on-res/s")
	b.ReportMetric(onMean/offMean, "on/off")
	b.ReportMetric(quantile(worst, 0.50), "lag-p50-s")
	b.ReportMetric(quantile(worst, 0.99), "lag-p99-s")
	b.ReportMetric(quantile(worst, 1), "lag-max-s")
	for _, name := range []string{"nats", "kafka", "webhook"} {
		if !on.pubs[name] {
			continue
		}
		b.ReportMetric(quantile(perPub[name], 0.99), name+"-lag-p99-s")
		b.ReportMetric(quantile(perPub[name], 1), name+"-lag-max-s")
	}
	b.ReportMetric(catchUp.Seconds(), "catchup-max-s")
}

// benchPublishers returns the publishers to turn on: STOCKD_BENCH_PUBLISHERS,
// a comma-separated subset of nats, kafka and webhook, or all three.
func benchPublishers(b *testing.B) map[string]bool {
	on := map[string]bool{"nats": true, "kafka": true, "webhook": true}
	if s := os.Getenv("STOCKD_BENCH_PUBLISHERS"); s != "" {
		on = map[string]bool{}
		for name := range strings.SplitSeq(s, ",") {
			if name != "nats" && name != "kafka" && name != "webhook" {
				b.Fatalf("STOCKD_BENCH_PUBLISHERS=%q: %q is not nats, kafka or webhook", s, name)
			}
			on[name] = true
		}
	}
	return on
}

// startPublishing starts an App publishing to the publishers named: NATS,
// Kafka, a webhook endpoint.
func startPublishing(b *testing.B, pubs map[string]bool) *pubEnv {
	env := &pubEnv{pubs: pubs}
	if pubs["nats"] {
		env.startNATS(b)
	}
	if pubs["kafka"] {
		var err error
		env.kafka, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(8))
		if err != nil {
			b.Fatalf("kfake: %v", err)
		}
		b.Cleanup(env.kafka.Close)
	}
	hook := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		env.hookRequests.Add(1)
		w.WriteHeader(nethttp.StatusNoContent)
	}))
	b.Cleanup(hook.Close)

	env.srv = e2e.Start(b, e2e.Options{Partitions: 64, App: func(c *app.Config) {
		c.Publish.NATS, c.Publish.NATSStream, c.Publish.NATSSubjectPrefix = env.natsURL, env.stream, env.subjects
		if env.kafka != nil {
			c.Publish.Kafka = env.kafka.ListenAddrs()
		}
		c.Webhooks.AllowPrivate = true
	}})
	brokers := 0
	for _, name := range []string{"nats", "kafka"} {
		if pubs[name] {
			brokers++
		}
	}
	if len(env.srv.Publishers) != brokers {
		b.Fatalf("%d broker publishers running, want %d", len(env.srv.Publishers), brokers)
	}
	if pubs["webhook"] {
		if _, _, err := env.srv.Webhooks.PutWebhook(context.Background(), stockd.PutWebhook{Name: hookName, URL: hook.URL, Secret: "whsec_bench", From: stockd.WebhookFromBeginning}); err != nil {
			b.Fatal(err)
		}
	}
	env.counted = make([]uint64, env.srv.Engine.Partitions())
	return env
}

// startNATS picks the NATS server, the stream and its subjects, deleting
// the stream when the benchmark ends.
func (env *pubEnv) startNATS(b *testing.B) {
	suffix := fmt.Sprintf("%d_%x", os.Getpid(), rand.Uint64())
	env.stream = "STOCKD_BENCH_" + suffix
	env.subjects = "stockd_bench." + suffix + ".events"
	url := os.Getenv("STOCKD_TEST_NATS")
	if url == "" {
		url = publishtest.RunNATS(b, b.TempDir(), -1).ClientURL()
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		b.Fatalf("NATS at %s: %v", url, err)
	}
	env.natsURL = url
	env.js, _ = jetstream.New(nc)
	// Registered before the App starts, so it runs after the App closes.
	b.Cleanup(func() {
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := env.js.DeleteStream(ctx, env.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			b.Errorf("deleting stream %s: %v", env.stream, err)
		}
	})

}

// lagSeconds samples every publisher's LagSeconds.
func (env *pubEnv) lagSeconds(b *testing.B) map[string]float64 {
	lags := map[string]float64{}
	for _, r := range env.srv.Publishers {
		lags[r.Name()] = r.LagSeconds()
	}
	if env.pubs["webhook"] {
		s, err := env.srv.Webhooks.LagSeconds(hookName)
		if err != nil {
			b.Error(err)
		}
		lags["webhook"] = s
	}
	return lags
}

// caughtUp waits until every publisher has delivered every durable event.
func (env *pubEnv) caughtUp(b *testing.B) {
	const limit = 10 * time.Minute
	deadline := time.Now().Add(limit)
	for {
		behind := ""
		for _, r := range env.srv.Publishers {
			if n := r.Lag(); n > 0 {
				behind += fmt.Sprintf(" %s %d", r.Name(), n)
			}
		}
		if env.pubs["webhook"] {
			w, err := env.srv.Webhooks.GetWebhook(context.Background(), hookName)
			if err != nil {
				b.Fatal(err)
			}
			if w.Lag > 0 {
				behind += fmt.Sprintf(" webhook %d", w.Lag)
			}
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the publishers did not catch up within %v; events behind:%s", limit, behind)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSinks checks that every sink holds at least the events written
// downstream so far: JetStream the events once each (it drops repeats by
// Nats-Msg-Id), Kafka and the webhook receiver possibly with repeats.
func (env *pubEnv) checkSinks(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := env.srv
	for p := range s.Engine.Partitions() {
		head := s.Engine.DurableHead(p)
		for env.counted[p] < head {
			evs, err := s.Log.ReadPartition(ctx, p, env.counted[p], int(min(head-env.counted[p], 10_000)))
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				b.Fatalf("partition %d: no events after %d below the durable head %d", p, env.counted[p], head)
			}
			for _, e := range evs {
				if publish.Downstream(e) {
					env.written++
				}
			}
			env.counted[p] = evs[len(evs)-1].Position
		}
	}
	got := map[string]int64{}
	if env.pubs["nats"] {
		st, err := env.js.Stream(ctx, env.stream)
		if err != nil {
			b.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		got["nats"] = int64(info.State.Msgs)
	}
	if env.pubs["kafka"] {
		for _, pi := range env.kafka.PartitionInfos(kafkapub.DefaultTopic) {
			got["kafka"] += pi.HighWatermark - pi.LogStartOffset
		}
	}
	if env.pubs["webhook"] {
		got["webhook"] = env.hookRequests.Load()
	}
	for name, n := range got {
		if n < env.written {
			b.Fatalf("%s holds %d events, %d were written", name, n, env.written)
		}
	}
}

// roundSeq numbers rounds across an App's life, so that ids never repeat.
var roundSeq atomic.Int64

// hotRound receives enough stock, then settles n reservations of one unit of
// the SKU "hot" from callers goroutines (each a reservation, then a commit
// or a release), and returns the reservations settled a second. With pace,
// reservation i starts no earlier than i × pace after the first.
func hotRound(b *testing.B, s *e2e.Server, callers int, name string, n int, pace time.Duration) float64 {
	ctx := context.Background()
	round := strconv.FormatInt(roundSeq.Add(1), 10)
	for left, k := int64(n+callers), 0; left > 0; k++ {
		q := min(left, stockd.DefaultLimits.MaxQuantity)
		if _, _, err := s.Engine.Receive(ctx, stockd.ReceiveStock{ID: "r-" + round + "-" + strconv.Itoa(k), SKU: "hot", Location: "w1", Quantity: q}); err != nil {
			b.Fatal(err)
		}
		left -= q
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if pace > 0 {
					time.Sleep(time.Until(start.Add(time.Duration(i) * pace)))
				}
				id := name + "-" + round + "-" + strconv.FormatInt(i, 10)
				err := retryOverloaded(func() error {
					_, _, err := s.Engine.Reserve(ctx, stockd.Reserve{ID: id, TTL: time.Hour, Lines: []stockd.ReserveLine{{SKU: "hot", Quantity: 1}}})
					return err
				})
				if err == nil {
					err = retryOverloaded(func() error {
						if i%2 == 1 {
							_, err := s.Engine.Release(ctx, stockd.ReleaseReservation{ID: id})
							return err
						}
						_, err := s.Engine.Commit(ctx, stockd.CommitReservation{ID: id})
						return err
					})
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// retryOverloaded calls fn until it is not refused as overloaded, waiting
// the pause each refusal asks for, as a well-behaved client does.
func retryOverloaded(fn func() error) error {
	for {
		err := fn()
		var se *stockd.Error
		if !errors.As(err, &se) || se.Code != stockd.CodeOverloaded {
			return err
		}
		time.Sleep(se.RetryAfter)
	}
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// quantile returns the q-quantile of xs (q = 1: the largest), 0 for none.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(int(float64(len(s))*q), len(s)-1)]
}
