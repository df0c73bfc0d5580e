// Package kafkapub publishes stockd's events to Kafka: a publish.Sink on
// github.com/twmb/franz-go (kgo), a well-kept pure-Go client.
//
// Each event becomes one record of the topic (stockd.events). Its key is the
// event's SKU, so that every event of a SKU lands in the same Kafka partition,
// in order; an event of no single SKU (a location's configuration, the
// bookkeeping of a reservation spanning partitions) is keyed by its stockd
// partition, "p3", which keeps those of one stockd partition in order among
// themselves. The value is the event as the API shows it (publish.JSON),
// with its partition and position (and its time); the headers
// stockd-event-id ("3-1042") and stockd-event-type name it.
//
// The producer is idempotent (kgo's default, kept on): the broker drops the
// repeats of the client's own retries, so a network hiccup adds no
// duplicate. A batch the Runner offers again (after a failure, a timeout or
// a crash before its checkpoint) is produced again as new records: Kafka does
// not drop those, and consumers drop repeats by the stockd-event-id header
// (or the body's id), or keep, per stockd partition, the highest position
// seen.
package kafkapub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/publish"
)

// Defaults of Options.
const (
	DefaultTopic   = "stockd.events"
	DefaultTimeout = 30 * time.Second
)

// The headers of every record.
const (
	HeaderID   = "stockd-event-id"
	HeaderType = "stockd-event-type"
)

// Options configure a Sink.
type Options struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// Topic is the topic produced to; default stockd.events. The Sink
	// asks the cluster to create it, with the broker's default partitions
	// and replication, if it does not exist; a cluster that refuses (no
	// permission) must have it made beforehand, or allow auto-creation.
	Topic string
	// Timeout bounds one Publish. Records not yet sent when it passes (or
	// when the Runner stops) are failed; records already sent are waited for by the client, which
	// cannot know whether the broker took them (idempotence forbids
	// failing them), while Publish returns an error at once. Default 30 s.
	Timeout time.Duration
	// Logger receives errors of topic creation. Default slog.Default().
	Logger *slog.Logger
	// Kafka are more options of the client (SASL, TLS, ...). They must not
	// disable idempotent writes.
	Kafka []kgo.Opt
}

// Sink produces events to Kafka. It is safe for concurrent use.
type Sink struct {
	opts   Options
	cl     *kgo.Client
	topicd atomic.Bool // the topic was created or seen to exist

	mu    sync.Mutex
	parts map[int]*partitionState
}

// New makes the client. Brokers need not be up: the client connects when
// it first produces.
func New(opts Options) (*Sink, error) {
	if len(opts.Brokers) == 0 {
		return nil, errors.New("kafkapub: no brokers")
	}
	if opts.Topic == "" {
		opts.Topic = DefaultTopic
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ClientID("stockd"),
		kgo.DefaultProduceTopic(opts.Topic),
		// Every stockd event is kept: wait for all in-sync replicas.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Publish waits for its whole batch at once: waiting for more
		// records to come would only add the linger to every batch.
		kgo.ProducerLinger(0),
	}
	cl, err := kgo.NewClient(append(kopts, opts.Kafka...)...)
	if err != nil {
		return nil, fmt.Errorf("kafkapub: %w", err)
	}
	return &Sink{opts: opts, cl: cl, parts: map[int]*partitionState{}}, nil
}

// Topic returns the topic produced to.
func (s *Sink) Topic() string { return s.opts.Topic }

// Close closes the client; records still buffered fail.
func (s *Sink) Close() error {
	s.cl.Close()
	return nil
}

// Key returns the record key of e: its SKU, or "p" and its partition for an
// event of no single SKU.
func Key(e stockd.Event) []byte {
	if e.SKU != "" {
		return []byte(e.SKU)
	}
	return []byte("p" + strconv.Itoa(e.Partition))
}

// Record returns the record of e.
func Record(e stockd.Event) (*kgo.Record, error) {
	body, err := publish.JSON(e)
	if err != nil {
		return nil, fmt.Errorf("kafkapub: encoding event %s: %w", e.ID(), err)
	}
	// The timestamp is left to the client (the time of producing): an
	// event's own time is in the body, and old events published late (a
	// new publisher catching up) must not look expired to the topic's
	// time-based retention.
	return &kgo.Record{
		Key:   Key(e),
		Value: body,
		Headers: []kgo.RecordHeader{
			{Key: HeaderID, Value: []byte(e.ID())},
			{Key: HeaderType, Value: []byte(e.Type().String())},
		},
	}, nil
}

// Publish produces events, all of partition p, and returns once the brokers
// have acknowledged every one of them.
//
// An attempt that ends (timeout, cancellation) before every record is
// answered leaves the records already sent with the client: idempotence
// forbids failing them, as the broker may have written them. The next
// Publish of the partition first waits for those answers, within its own
// timeout, and then produces only the events not yet acknowledged. So a
// broker outage does not pile up copies of the same batch in the client, to
// land as repeats once the broker is back.
func (s *Sink) Publish(ctx context.Context, p int, events []stockd.Event) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	st := s.partition(p)
	// Calls for one partition never overlap (publish.Sink), so st is ours.
	if err := st.wait(ctx); err != nil {
		return fmt.Errorf("kafkapub: partition %d: records of an earlier attempt still unanswered: %w", p, err)
	}
	if err := s.ensureTopic(ctx); err != nil {
		return err
	}
	acked := make(map[string]bool, len(st.acked))
	var records []*kgo.Record
	for _, e := range events {
		if st.acked[e.ID()] {
			acked[e.ID()] = true // stored by an earlier attempt
			continue
		}
		r, err := Record(e)
		if err != nil {
			return err
		}
		records = append(records, r)
	}
	st.acked, st.failed = acked, nil
	st.results = make(chan result, len(records))
	st.outstanding = len(records)
	for _, r := range records {
		s.cl.Produce(ctx, r, func(r *kgo.Record, err error) { st.results <- result{r, err} })
	}
	if err := st.wait(ctx); err != nil {
		return fmt.Errorf("kafkapub: waiting for acknowledgements of partition %d: %w", p, err)
	}
	if st.failed != nil {
		err := st.failed
		st.failed = nil
		return err
	}
	st.acked = nil
	return nil
}

type result struct {
	r   *kgo.Record
	err error
}

// partitionState is what one partition's attempts leave for the next.
type partitionState struct {
	results     chan result // answers of the last attempt
	outstanding int         // records of the last attempt not answered yet
	acked       map[string]bool
	failed      error // the first failure of the last attempt
}

func (s *Sink) partition(p int) *partitionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.parts[p]
	if !ok {
		st = &partitionState{}
		s.parts[p] = st
	}
	return st
}

// wait collects the answers of the last attempt until none is outstanding
// or ctx ends.
func (st *partitionState) wait(ctx context.Context) error {
	for st.outstanding > 0 {
		select {
		case res := <-st.results:
			st.outstanding--
			id := header(res.r, HeaderID)
			if res.err != nil {
				if st.failed == nil {
					st.failed = fmt.Errorf("kafkapub: event %s not acknowledged: %w", id, res.err)
				}
				continue
			}
			if st.acked == nil {
				st.acked = map[string]bool{}
			}
			st.acked[id] = true
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// ensureTopic asks the cluster once to create the topic, with its default
// partitions and replication; a topic that exists is fine, and any other
// answer is logged and left to the produce requests to report. A cluster
// that cannot be reached is an error: producing to a topic that may not
// exist would only wait for it.
func (s *Sink) ensureTopic(ctx context.Context) error {
	if s.topicd.Load() {
		return nil
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = s.opts.Topic
	t.NumPartitions = -1
	t.ReplicationFactor = -1
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = int32(min(s.opts.Timeout, 10*time.Second).Milliseconds())
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return fmt.Errorf("kafkapub: asking the cluster to create topic %s: %w", s.opts.Topic, err)
	}
	s.topicd.Store(true)
	if len(resp.Topics) != 1 {
		return nil
	}
	err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	switch {
	case err == nil:
		s.opts.Logger.Info("kafka: created topic", "topic", s.opts.Topic)
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		s.opts.Logger.Warn("kafka: could not create the topic; it must exist, or the cluster must create topics on first use", "topic", s.opts.Topic, "err", err)
	}
	return nil
}
