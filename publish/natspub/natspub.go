// Package natspub publishes stockd's events to NATS JetStream: a
// publish.Sink on the official client, github.com/nats-io/nats.go.
//
// Each event becomes one message on the subject <prefix>.<partition>
// (stockd.events.3) of a stream (STOCKD), created if missing and updated to
// take the subjects if it exists without them. The body is the event as the
// API shows it (publish.JSON), with its partition and position; the header
// Nats-Msg-Id is the event's id ("3-1042"), so that JetStream drops a message
// sent again within the stream's duplicate window (2 minutes unless the
// stream says otherwise), and Stockd-Event-Type names its type.
//
// A Publish sends its batch without waiting between messages and then waits
// for every acknowledgement; one missing or failed fails the batch, which
// the Runner offers again. It never waits longer than its context and
// Options.Timeout: while the connection is down (the client reconnects by
// itself, without end), a Publish fails after Timeout and is retried with
// backoff.
package natspub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/publish"
)

// Defaults of Options.
const (
	DefaultStream        = "STOCKD"
	DefaultSubjectPrefix = "stockd.events"
	DefaultTimeout       = 10 * time.Second
)

// HeaderType is the header that names an event's type, such as
// StockReserved.
const HeaderType = "Stockd-Event-Type"

// Options configure a Sink.
type Options struct {
	// URL is the NATS server, or several separated by commas. Required.
	URL string
	// Stream is the JetStream stream published to; default STOCKD.
	Stream string
	// SubjectPrefix is the prefix of the subjects: partition p's events go
	// to SubjectPrefix + "." + p. Default stockd.events.
	SubjectPrefix string
	// Duplicates is the duplicate window of a stream this Sink creates; 0
	// leaves the server's default (2 minutes). A stream that exists keeps
	// its own.
	Duplicates time.Duration
	// Timeout bounds one Publish: sending its batch and every
	// acknowledgement. Default 10 s.
	Timeout time.Duration
	// Logger receives connection events. Default slog.Default().
	Logger *slog.Logger
	// NATS are more options of the connection (credentials, TLS, ...).
	NATS []nats.Option
}

// Sink publishes events to JetStream. It is safe for concurrent use.
type Sink struct {
	opts Options
	nc   *nats.Conn
	js   jetstream.JetStream

	// ensuring holds the right to look at the stream, taken by select so
	// that waiting for it ends with the context.
	ensuring chan struct{}
	ready    atomic.Bool // the stream exists with our subjects
}

// New connects to opts.URL. The server need not be up: the connection is
// retried in the background, for ever, and Publish fails until it is up.
func New(opts Options) (*Sink, error) {
	if opts.URL == "" {
		return nil, errors.New("natspub: no URL")
	}
	if opts.Stream == "" {
		opts.Stream = DefaultStream
	}
	if opts.SubjectPrefix == "" {
		opts.SubjectPrefix = DefaultSubjectPrefix
	}
	if strings.ContainsAny(opts.SubjectPrefix, "*> \t") || strings.HasPrefix(opts.SubjectPrefix, ".") || strings.HasSuffix(opts.SubjectPrefix, ".") {
		return nil, fmt.Errorf("natspub: subject prefix %q is not a plain subject", opts.SubjectPrefix)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger
	nopts := []nats.Option{
		nats.Name("stockd publisher"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats: disconnected; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted())
		}),
	}
	nc, err := nats.Connect(opts.URL, append(nopts, opts.NATS...)...)
	if err != nil {
		return nil, fmt.Errorf("natspub: connecting to %s: %w", opts.URL, err)
	}
	js, err := jetstream.New(nc,
		// Acks not back within Timeout fail, so that a Publish cancelled
		// or timed out leaves nothing pending for ever.
		jetstream.WithPublishAsyncTimeout(opts.Timeout),
		jetstream.WithPublishAsyncMaxPending(16384),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natspub: %w", err)
	}
	return &Sink{opts: opts, nc: nc, js: js, ensuring: make(chan struct{}, 1)}, nil
}

// Subject returns the subject of partition p's events.
func (s *Sink) Subject(p int) string { return s.opts.SubjectPrefix + "." + strconv.Itoa(p) }

// Stream returns the name of the stream published to.
func (s *Sink) Stream() string { return s.opts.Stream }

// Close closes the connection; a Publish in flight fails.
func (s *Sink) Close() error {
	s.nc.Close()
	return nil
}

// Publish sends events, all of partition p, and returns once JetStream has
// stored (or, for repeats, recognised) every one of them.
func (s *Sink) Publish(ctx context.Context, p int, events []stockd.Event) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.ensureStream(ctx); err != nil {
		return err
	}
	subject := s.Subject(p)
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, e := range events {
		body, err := publish.JSON(e)
		if err != nil {
			return fmt.Errorf("natspub: encoding event %s: %w", e.ID(), err)
		}
		msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, e.ID())
		msg.Header.Set(HeaderType, e.Type().String())
		wait := time.Until(deadline(ctx))
		if wait <= 0 {
			return fmt.Errorf("natspub: publishing event %s: %w", e.ID(), context.DeadlineExceeded)
		}
		f, err := s.js.PublishMsgAsync(msg, jetstream.WithExpectStream(s.opts.Stream), jetstream.WithStallWait(wait))
		if err != nil {
			return fmt.Errorf("natspub: publishing event %s: %w", e.ID(), err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				// The stream may have been deleted: make it again next time.
				s.ready.Store(false)
			}
			return fmt.Errorf("natspub: event %s not acknowledged: %w", events[i].ID(), err)
		case <-ctx.Done():
			return fmt.Errorf("natspub: waiting for the acknowledgement of event %s: %w", events[i].ID(), ctx.Err())
		}
	}
	return nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline() // Publish always sets one
	return d
}

// ensureStream creates the stream if it is missing, or adds the Sink's
// subjects to it if it does not take them yet. It does the work once; a
// failure is tried again at the next Publish.
func (s *Sink) ensureStream(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	select {
	case s.ensuring <- struct{}{}:
		defer func() { <-s.ensuring }()
	case <-ctx.Done():
		return fmt.Errorf("natspub: waiting to look up stream %s: %w", s.opts.Stream, ctx.Err())
	}
	if s.ready.Load() {
		return nil
	}
	want := s.opts.SubjectPrefix + ".*"
	for range 2 {
		st, err := s.js.Stream(ctx, s.opts.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        s.opts.Stream,
				Description: "stockd events, one subject per partition",
				Subjects:    []string{want},
				Storage:     jetstream.FileStorage,
				Duplicates:  s.opts.Duplicates,
			})
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				continue // made meanwhile by someone else: look again
			}
			if err != nil {
				return fmt.Errorf("natspub: creating stream %s: %w", s.opts.Stream, err)
			}
			s.opts.Logger.Info("nats: created stream", "stream", s.opts.Stream, "subjects", want)
			s.ready.Store(true)
			return nil
		}
		if err != nil {
			return fmt.Errorf("natspub: looking up stream %s: %w", s.opts.Stream, err)
		}
		cfg := st.CachedInfo().Config
		for _, sub := range cfg.Subjects {
			if covers(sub, want) {
				s.ready.Store(true)
				return nil
			}
		}
		cfg.Subjects = append(cfg.Subjects, want)
		if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("natspub: adding subjects %s to stream %s: %w", want, s.opts.Stream, err)
		}
		s.opts.Logger.Info("nats: added subjects to stream", "stream", s.opts.Stream, "subjects", want)
		s.ready.Store(true)
		return nil
	}
	return fmt.Errorf("natspub: stream %s keeps appearing and vanishing", s.opts.Stream)
}

// covers reports whether the subject filter pattern takes every subject
// that the filter want takes.
func covers(pattern, want string) bool {
	pt, wt := strings.Split(pattern, "."), strings.Split(want, ".")
	for i, t := range pt {
		if t == ">" {
			return i < len(wt)
		}
		if i >= len(wt) {
			return false
		}
		if wt[i] == ">" || (t != "*" && t != wt[i]) {
			return false
		}
	}
	return len(pt) == len(wt)
}
