// Package kafkapub publishes stockd's events to Kafka: a publish.Sink on
// github.com/twmb/franz-go (kgo), a well-kept pure-Go client.
//
// Each event becomes one record of the topic (stockd.events). Its key is the
// event's SKU, so that every event of a SKU lands in the same Kafka partition,
// in order; an event of no single SKU (a location's configuration, the
// bookkeeping of a reservation spanning partitions) is keyed by its stockd
// partition, "p3", which keeps those of one stockd partition in order among
// themselves. The value is the event as the API shows it (publish.JSON),
// with its partition and position; the headers stockd-event-id ("3-1042")
// and stockd-event-type name it; the record's timestamp is the event's.
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
	// Timeout bounds one Publish. Records not yet sent when it passes are
	// failed; records already sent are waited for by the client, which
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
		kgo.RecordDeliveryTimeout(opts.Timeout),
	}
	cl, err := kgo.NewClient(append(kopts, opts.Kafka...)...)
	if err != nil {
		return nil, fmt.Errorf("kafkapub: %w", err)
	}
	return &Sink{opts: opts, cl: cl}, nil
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
	return &kgo.Record{
		Key:       Key(e),
		Value:     body,
		Timestamp: e.Time,
		Headers: []kgo.RecordHeader{
			{Key: HeaderID, Value: []byte(e.ID())},
			{Key: HeaderType, Value: []byte(e.Type().String())},
		},
	}, nil
}

// Publish produces events, all of partition p, and returns once the brokers
// have acknowledged every one of them.
func (s *Sink) Publish(ctx context.Context, p int, events []stockd.Event) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	s.ensureTopic(ctx)
	records := make([]*kgo.Record, len(events))
	for i, e := range events {
		r, err := Record(e)
		if err != nil {
			return err
		}
		records[i] = r
	}
	// Like ProduceSync, but the wait ends with ctx: records already sent
	// stay with the client until the broker answers, and Publish must not
	// hold up the Runner's Close for them.
	type result struct {
		r   *kgo.Record
		err error
	}
	done := make(chan result, len(records))
	for _, r := range records {
		s.cl.Produce(ctx, r, func(r *kgo.Record, err error) { done <- result{r, err} })
	}
	var first error
	for range records {
		select {
		case res := <-done:
			if res.err != nil && first == nil {
				first = fmt.Errorf("kafkapub: event %s not acknowledged: %w", header(res.r, HeaderID), res.err)
			}
		case <-ctx.Done():
			return fmt.Errorf("kafkapub: waiting for acknowledgements of partition %d: %w", p, ctx.Err())
		}
	}
	return first
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
// answer is logged and left to the produce requests to report.
func (s *Sink) ensureTopic(ctx context.Context) {
	if s.topicd.Load() {
		return
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
		return // the cluster is not reachable: produce will say so, and we try again
	}
	s.topicd.Store(true)
	if len(resp.Topics) != 1 {
		return
	}
	err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	switch {
	case err == nil:
		s.opts.Logger.Info("kafka: created topic", "topic", s.opts.Topic)
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		s.opts.Logger.Warn("kafka: could not create the topic; it must exist, or the cluster must create topics on first use", "topic", s.opts.Topic, "err", err)
	}
}
