package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// endpoint is one configured endpoint while it runs: its configuration,
// its Runner's Sink, and its counters.
type endpoint struct {
	m      *Manager
	cfg    config
	types  map[string]bool // nil: every type
	counts *counts
	dead   *atomic.Int64 // events on the dead-letter list
	// done[p] is the last position of partition p this Sink delivered,
	// dead-lettered or skipped: when the Runner offers a batch again
	// (after a failed checkpoint save or a full dead-letter list), events
	// already handled are not sent twice. Each element is touched only by
	// its partition's goroutine.
	done []uint64
	// sem bounds the endpoint's requests in flight, over its partitions
	// and replays; other endpoints have their own.
	sem chan struct{}
	// replaying serializes replays of this endpoint's dead letters, so
	// that two replays never deliver and remove one dead letter twice.
	replaying chan struct{}
}

// skip reports whether the endpoint's type filter leaves e out.
func (ep *endpoint) skip(e stockd.Event) bool {
	return ep.types != nil && !ep.types[e.Type().String()]
}

// Publish implements publish.Sink: each event is delivered in order, retried
// with exponential backoff and full jitter within the retry budget, and
// dead-lettered when the budget is spent, so that one event the receiver
// keeps refusing holds up its partition for at most the budget. Publish
// returns an error only when the outcome of an event could not be recorded
// (the store failed, the dead-letter list is full) or the Runner is
// stopping; the Runner then offers the events again.
func (ep *endpoint) Publish(ctx context.Context, p int, events []stockd.Event) error {
	for _, e := range events {
		if e.Position <= ep.done[p] {
			continue
		}
		if err := ep.send(ctx, e); err != nil {
			return err
		}
		ep.done[p] = e.Position
	}
	return nil
}

// send delivers one event within the retry budget, or dead-letters it.
func (ep *endpoint) send(ctx context.Context, e stockd.Event) error {
	ej, err := api.NewEventJSON(e)
	if err != nil {
		return err
	}
	body, err := json.Marshal(ej)
	if err != nil {
		return err
	}
	o := &ep.m.opts
	first := time.Now()
	backoff := o.MinBackoff
	for attempt := 1; ; attempt++ {
		res := ep.attempt(ctx, ej.ID, body)
		if res.err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Full jitter: anywhere from nothing to the current step, so
		// that partitions retrying one dead receiver spread out.
		wait := rand.N(backoff + 1)
		if res.retryAfter > wait {
			wait = min(res.retryAfter, o.MaxBackoff)
		}
		backoff = min(2*backoff, o.MaxBackoff)
		if attempt >= o.Attempts || (o.MaxAge > 0 && time.Since(first)+wait > o.MaxAge) {
			return ep.deadLetter(ctx, ej, body, attempt, first, res)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// result is the outcome of one delivery attempt.
type result struct {
	status     int           // the HTTP status, 0 without an answer
	err        error         // nil for a 2xx
	retryAfter time.Duration // the receiver's Retry-After, if any
}

// maxErrorBody is how much of a refusal's body is kept in its error.
const maxErrorBody = 200

// maxDrain bounds how much of an answer's body is read (and thrown away, so
// that the connection can be reused).
const maxDrain = 64 << 10

// attempt POSTs body once, within the endpoint's timeout.
func (ep *endpoint) attempt(ctx context.Context, id string, body []byte) result {
	m := ep.m
	select {
	case ep.sem <- struct{}{}:
	case <-ctx.Done():
		return result{err: ctx.Err()}
	}
	defer func() { <-ep.sem }()
	actx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, ep.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return ep.failed(result{err: err})
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderEventID, id)
	req.Header.Set(HeaderSignature, Sign(ep.cfg.Secret, time.Now(), body))
	resp, err := m.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return result{err: ctx.Err()}
		}
		return ep.failed(result{err: cleanError(err)})
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		ep.counts.delivered.Add(1)
		return result{status: resp.StatusCode}
	}
	res := result{status: resp.StatusCode, err: fmt.Errorf("HTTP %d: %s", resp.StatusCode, printable(head))}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		res.retryAfter = time.Duration(s) * time.Second
	}
	return ep.failed(res)
}

func (ep *endpoint) failed(r result) result {
	ep.counts.failed.Add(1)
	return r
}

// cleanError drops the method and URL net/http puts in front of a transport
// error: the dead letter and the log already name the endpoint.
func cleanError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Post ") {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// printable returns b as one line of valid UTF-8, for an error message.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "(no body)"
	}
	if !utf8.ValidString(s) {
		return "(binary body)"
	}
	return s
}

// errDeadLettersFull stops an endpoint whose dead-letter list is full: its
// events wait (its lag grows) rather than being dropped.
var errDeadLettersFull = errors.New("the dead-letter list is full: replay or delete dead letters, or fix the receiver; deliveries wait until then")

// deadLetter records an event the endpoint did not take within the retry
// budget. It returns nil once the dead letter is durable, so that the Runner
// moves on past the event.
func (ep *endpoint) deadLetter(ctx context.Context, ej api.EventJSON, body []byte, attempts int, first time.Time, res result) error {
	kind := ep.cfg.deadKind()
	store := ep.m.opts.Store
	dl := stockd.DeadLetter{
		EventID: ej.ID, EventType: ej.Type, SKU: ej.SKU, Attempts: attempts,
		FirstAttempt: first.UTC(), LastAttempt: time.Now().UTC(), LastStatus: res.status, LastError: errorText(res.err),
		Event: body,
	}
	old, ok, err := store.GetRecord(ctx, kind, ej.ID)
	if err != nil {
		return err
	}
	if ok {
		// The event was dead-lettered before (a restart offered it
		// again): one dead letter, with every attempt counted.
		var prev stockd.DeadLetter
		if json.Unmarshal(old, &prev) == nil {
			dl.Attempts += prev.Attempts
			dl.FirstAttempt = prev.FirstAttempt
		}
	} else if !ep.takePlace() {
		return errDeadLettersFull
	}
	v, err := json.Marshal(dl)
	if err == nil {
		err = store.PutRecord(ctx, kind, ej.ID, v)
	}
	if err != nil {
		if !ok {
			ep.dead.Add(-1)
		}
		return err
	}
	ep.counts.deadLettered.Add(1)
	ep.m.log.Warn("webhook: event dead-lettered after its retry budget", "webhook", ep.cfg.Name, "event", ej.ID,
		"attempts", dl.Attempts, "status", dl.LastStatus, "err", dl.LastError)
	return nil
}

// takePlace counts one more dead letter if the list has room. The place is
// taken before the record is written, so that partitions dead-lettering at
// once cannot pass the bound.
func (ep *endpoint) takePlace() bool {
	for {
		n := ep.dead.Load()
		if n >= int64(ep.m.opts.MaxDeadLetters) {
			return false
		}
		if ep.dead.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// errorText is err's message, bounded.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "") + "…"
	}
	return s
}
