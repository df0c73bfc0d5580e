package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/publish"
	"github.com/stockd/stockd/publish/kafkapub"
	"github.com/stockd/stockd/publish/natspub"
)

// PublishConfig names the brokers every event is published to (see
// docs/publishers.md). Each one configured gets a publish.Runner of its
// own, with its own checkpoints: "publish/nats", "publish/kafka".
type PublishConfig struct {
	// NATS is the URL of a NATS server with JetStream; empty: no NATS
	// publisher.
	NATS string
	// NATSStream is the stream published to; default STOCKD.
	NATSStream string
	// NATSSubjectPrefix is the prefix of the subjects, one a partition;
	// default stockd.events.
	NATSSubjectPrefix string
	// Kafka are the seed brokers of a Kafka cluster; empty: no Kafka
	// publisher.
	Kafka []string
	// KafkaTopic is the topic produced to; default stockd.events.
	KafkaTopic string
	// Runner tunes every Runner (batch, backoff); Name, Log,
	// Checkpoints, DurableHead, Heads, Skip, Metrics and Logger are
	// filled in.
	Runner publish.Options
	// Timeout bounds one delivery to a broker; default each sink's own.
	Timeout time.Duration
}

// publisherNames returns the names of the publishers configured.
func (c PublishConfig) publisherNames() []string {
	var names []string
	if c.NATS != "" {
		names = append(names, "nats")
	}
	if len(c.Kafka) > 0 {
		names = append(names, "kafka")
	}
	return names
}

// publisher is a running Runner and the sink it feeds.
type publisher struct {
	runner *publish.Runner
	close  func() error
}

// startPublishers starts a Runner for every broker configured.
func (a *App) startPublishers(ctx context.Context) error {
	if err := a.ensurePublishMetrics(); err != nil {
		return err
	}
	pc := a.cfg.Publish
	start := func(name string, sink publish.Sink, closeSink func() error) error {
		opts := a.runnerOptions(name, a.log.With("component", "publish"))
		opts.Skip = func(e stockd.Event) bool { return !publish.Downstream(e) }
		r, err := publish.Start(ctx, sink, opts)
		if err != nil {
			closeSink()
			return err
		}
		a.publishers = append(a.publishers, publisher{runner: r, close: closeSink})
		a.Publishers = append(a.Publishers, r)
		return nil
	}
	if pc.NATS != "" {
		sink, err := natspub.New(natspub.Options{
			URL: pc.NATS, Stream: pc.NATSStream, SubjectPrefix: pc.NATSSubjectPrefix,
			Timeout: pc.Timeout, Logger: a.log.With("component", "publish", "publisher", "nats"),
		})
		if err != nil {
			return err
		}
		if err := start("nats", sink, sink.Close); err != nil {
			return fmt.Errorf("nats publisher: %w", err)
		}
	}
	if len(pc.Kafka) > 0 {
		sink, err := kafkapub.New(kafkapub.Options{
			Brokers: pc.Kafka, Topic: pc.KafkaTopic,
			Timeout: pc.Timeout, Logger: a.log.With("component", "publish", "publisher", "kafka"),
		})
		if err != nil {
			return err
		}
		if err := start("kafka", sink, sink.Close); err != nil {
			return fmt.Errorf("kafka publisher: %w", err)
		}
	}
	return nil
}

// runnerOptions returns the options of a Runner named name over this node's
// log: the configured tuning, the store's checkpoints, and, in a cluster,
// only the partitions this node serves.
func (a *App) runnerOptions(name string, log *slog.Logger) publish.Options {
	opts := a.cfg.Publish.Runner
	opts.Name = name
	opts.Log = a.Log
	opts.Checkpoints = a.Store
	opts.DurableHead = a.Engine.DurableHead
	opts.Heads = a.Heads
	opts.Serves = a.serves()
	opts.Skip = nil
	opts.Metrics = a.PublishMetrics
	opts.Logger = log
	return opts
}

// closePublishers stops every Runner, then closes its sink. Events
// published but not yet checkpointed are published again at the next start.
func (a *App) closePublishers() error {
	var errs []error
	for _, p := range a.publishers {
		errs = append(errs, p.runner.Close(), p.close())
	}
	a.publishers, a.Publishers = nil, nil
	return errors.Join(errs...)
}

// ensurePublishMetrics makes and registers the one publish.Metrics that the
// brokers' Runners and the webhooks' share.
func (a *App) ensurePublishMetrics() error {
	if a.PublishMetrics != nil {
		return nil
	}
	m := publish.NewMetrics()
	if err := a.Metrics.Register(m); err != nil {
		return err
	}
	a.PublishMetrics = m
	return nil
}
