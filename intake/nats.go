package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// Defaults of NATSOptions.
const (
	DefaultStream  = "STOCKD_COMMANDS"
	DefaultSubject = "stockd.commands"
	DefaultDurable = "stockd-intake"
)

// NATSOptions configure a Consumer.
type NATSOptions struct {
	// URL is the NATS server (several separated by commas).
	URL string
	// Stream is the JetStream work-queue stream, created if missing;
	// default STOCKD_COMMANDS.
	Stream string
	// Subject is the subject commands are published on; default
	// stockd.commands.
	Subject string
	// Durable names the pull consumer; default stockd-intake.
	Durable string
	// AckWait is how long NATS waits for an acknowledgement before it
	// delivers a message again; default 30 s. A command still being
	// applied keeps its message with progress reports.
	AckWait time.Duration
	// NATS are extra connection options.
	NATS   []nats.Option
	Logger *slog.Logger
}

// Consumer takes commands from a JetStream work queue into a Queue. A message
// is the body of POST /v1/commands ({"id","type","command"}); without an id
// the message's Nats-Msg-Id names the command, or else it is derived from
// the command. A message is acknowledged only once its command is applied or
// refused for good, so a crash or a restart delivers it again, and the
// command's id makes that a repeat. A message that can never succeed (not
// JSON, an unknown type, an invalid command, an id reused for another
// command) is terminated and logged.
type Consumer struct {
	q      *Queue
	opts   NATSOptions
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	mu     sync.Mutex // guards iter, made by run once the stream is ready
	iter   jetstream.MessagesContext
	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// StartNATS connects to NATS and starts taking commands into q. A server
// that is down, or a stream that cannot be made yet, does not stop stockd
// from starting: the connection is retried for ever, and the stream and the
// durable consumer are made (with backoff, logged) once the server answers.
func StartNATS(ctx context.Context, q *Queue, opts NATSOptions) (*Consumer, error) {
	if opts.Stream == "" {
		opts.Stream = DefaultStream
	}
	if opts.Subject == "" {
		opts.Subject = DefaultSubject
	}
	if opts.Durable == "" {
		opts.Durable = DefaultDurable
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	nopts := append([]nats.Option{nats.Name("stockd intake"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}, opts.NATS...)
	nc, err := nats.Connect(opts.URL, nopts...)
	if err != nil {
		return nil, fmt.Errorf("intake: connecting to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &Consumer{q: q, opts: opts, log: opts.Logger, nc: nc, js: js}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.done.Add(1)
	go c.run()
	return c, nil
}

// start makes the stream and the consumer, retrying with backoff until it
// succeeds or the Consumer is closed, and returns the message iterator.
func (c *Consumer) start() (jetstream.MessagesContext, bool) {
	wait := 100 * time.Millisecond
	for {
		cons, err := c.setup(c.ctx)
		if err == nil {
			it, err := cons.Messages(jetstream.PullMaxMessages(16))
			if err == nil {
				return it, true
			}
		}
		if c.ctx.Err() != nil {
			return nil, false
		}
		c.log.Warn("intake: NATS work queue not ready; retrying", "stream", c.opts.Stream, "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil, false
		case <-t.C:
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// setup creates the work-queue stream and the durable pull consumer if they
// are missing.
func (c *Consumer) setup(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.js.Stream(ctx, c.opts.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = c.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        c.opts.Stream,
			Description: "stockd commands to apply (receive, adjust, count, transfer)",
			Subjects:    []string{c.opts.Subject},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	return c.js.CreateOrUpdateConsumer(ctx, c.opts.Stream, jetstream.ConsumerConfig{
		Durable:       c.opts.Durable,
		Description:   "stockd's intake",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.opts.AckWait,
		FilterSubject: c.opts.Subject,
		MaxAckPending: 64,
	})
}

// Close stops taking messages; one being handled is left unacknowledged
// unless its command finished, and is delivered again later.
func (c *Consumer) Close() error {
	c.cancel()
	c.mu.Lock()
	if c.iter != nil {
		c.iter.Stop()
	}
	c.mu.Unlock()
	c.done.Wait()
	c.nc.Close()
	return nil
}

func (c *Consumer) run() {
	defer c.done.Done()
	it, ok := c.start()
	if !ok {
		return
	}
	c.mu.Lock()
	c.iter = it
	stopped := c.ctx.Err() != nil
	c.mu.Unlock()
	if stopped { // Close came while the iterator was being made
		it.Stop()
		return
	}
	for {
		msg, err := it.Next()
		if err != nil {
			if c.ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			c.log.Warn("intake: reading from NATS", "err", err)
			continue
		}
		c.handle(msg)
	}
}

// handle takes one message: queue its command, wait until it finishes, then
// acknowledge.
func (c *Consumer) handle(msg jetstream.Msg) {
	var req api.CommandRequest
	dec := json.NewDecoder(strings.NewReader(string(msg.Data())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		c.terminate(msg, "", fmt.Errorf("the message is not a command ({\"id\",\"type\",\"command\"}): %v", err))
		return
	}
	if req.ID == "" {
		req.ID = msg.Headers().Get(jetstream.MsgIDHeader)
	}
	cmd, err := req.Submit("nats")
	var queued stockd.QueuedCommand
	if err == nil {
		queued, _, err = c.q.SubmitCommand(stockd.WithActor(c.ctx, "nats"), cmd)
	}
	switch code := stockd.ErrorCode(err); {
	case err == nil:
	case code == stockd.CodeInvalid || code == stockd.CodeIdempotencyMismatch || code == stockd.CodeUnknownLocation:
		c.terminate(msg, req.ID, err)
		return
	default: // overloaded, or the store failing: later
		c.log.Warn("intake: a command from NATS was not queued; it will be delivered again", "id", req.ID, "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	id := queued.ID
	for {
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.AckWait/2)
		qc, err := c.q.Wait(ctx, id)
		cancel()
		if err == nil {
			if qc.Status == stockd.CommandFailed && qc.Problem != nil {
				c.log.Info("intake: a command from NATS was refused", "id", id, "code", qc.Problem.Code, "detail", qc.Problem.Detail)
			}
			if err := msg.DoubleAck(c.ctx); err != nil && c.ctx.Err() == nil {
				c.log.Warn("intake: acknowledging a NATS message", "id", id, "err", err)
			}
			return
		}
		if c.ctx.Err() != nil {
			return // stopping: NATS delivers it again
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			c.log.Warn("intake: waiting for a command from NATS", "id", id, "err", err)
			msg.NakWithDelay(time.Second)
			return
		}
		msg.InProgress() // still queued: keep the message
	}
}

func (c *Consumer) terminate(msg jetstream.Msg, id string, err error) {
	c.log.Warn("intake: a NATS message was refused for good and terminated", "id", id, "subject", msg.Subject(), "err", err)
	c.q.opts.Metrics.count(stockd.CommandFailed)
	if err := msg.Term(); err != nil && c.ctx.Err() == nil {
		c.log.Warn("intake: terminating a NATS message", "err", err)
	}
}
