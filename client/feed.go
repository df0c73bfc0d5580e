package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// feedRequest is the request of a feed query.
func feedRequest(q stockd.FeedQuery) *api.FeedRequest {
	r := &api.FeedRequest{After: q.After, Limit: limit(q.Limit), SKUPrefix: q.SKUPrefix}
	for _, t := range q.Types {
		r.Types = append(r.Types, t.String())
	}
	if q.Wait > 0 {
		r.Wait = api.FormatDuration(q.Wait)
	}
	return r
}

// FeedPage returns a page of the change feed with GET /v1/feed. Pass the
// page's Next as the After of the following query. With q.Wait the server
// holds the request until an event comes, or the wait (at most
// api.MaxFeedWait, and within the server's request timeout) ends.
func (c *Client) FeedPage(ctx context.Context, q stockd.FeedQuery) (stockd.FeedPage, error) {
	raw, err := c.FeedEvents(ctx, q)
	if err != nil {
		return stockd.FeedPage{}, err
	}
	return domainPage(raw), nil
}

// FeedEvents is FeedPage with the events as the API shows them, each
// event's data as JSON.
func (c *Client) FeedEvents(ctx context.Context, q stockd.FeedQuery) (api.EventPage, error) {
	out, _, err := call(ctx, c, api.GetFeed, feedRequest(q))
	if out.Events == nil {
		out.Events = []api.EventJSON{}
	}
	return out, err
}

func domainPage(raw api.EventPage) stockd.FeedPage {
	p := stockd.FeedPage{Events: make([]stockd.Event, 0, len(raw.Events)), Next: raw.Next}
	for _, e := range raw.Events {
		p.Events = append(p.Events, e.Event())
	}
	return p
}

// PutSubscription creates a subscription with PUT /v1/subscriptions/{name}.
func (c *Client) PutSubscription(ctx context.Context, name, from string) (stockd.Subscription, bool, error) {
	return call(ctx, c, api.PutSubscription, &api.SubscriptionRequest{Name: name, From: from})
}

// Subscription returns a subscription with GET /v1/subscriptions/{name}.
func (c *Client) Subscription(ctx context.Context, name string) (stockd.Subscription, error) {
	v, _, err := call(ctx, c, api.GetSubscription, &api.SubscriptionNameRequest{Name: name})
	return v, err
}

// Subscriptions lists subscriptions by name with GET /v1/subscriptions.
func (c *Client) Subscriptions(ctx context.Context, q stockd.SubscriptionListQuery) (stockd.SubscriptionPage, error) {
	v, _, err := call(ctx, c, api.ListSubscriptions, &api.SubscriptionListRequest{After: q.After, Limit: limit(q.Limit)})
	if v.Items == nil {
		v.Items = []stockd.Subscription{}
	}
	return v, err
}

// SubscriptionEvents returns the events after a subscription's acknowledged
// cursor with GET /v1/subscriptions/{name}/events.
func (c *Client) SubscriptionEvents(ctx context.Context, name string, n int) (stockd.FeedPage, error) {
	raw, _, err := call(ctx, c, api.SubscriptionEvents, &api.SubscriptionEventsRequest{Name: name, Limit: limit(n)})
	if err != nil {
		return stockd.FeedPage{}, err
	}
	return domainPage(raw), nil
}

// AckSubscription acknowledges a subscription's events up to cursor with
// POST /v1/subscriptions/{name}/ack.
func (c *Client) AckSubscription(ctx context.Context, name, cursor string) (stockd.Subscription, error) {
	v, _, err := call(ctx, c, api.AckSubscription, &api.AckRequest{Name: name, Cursor: cursor})
	return v, err
}

// ResetSubscription moves a subscription with
// POST /v1/subscriptions/{name}/reset.
func (c *Client) ResetSubscription(ctx context.Context, name, to string) (stockd.Subscription, error) {
	v, _, err := call(ctx, c, api.ResetSubscription, &api.ResetRequest{Name: name, To: to})
	return v, err
}

// DeleteSubscription removes a subscription with
// DELETE /v1/subscriptions/{name}.
func (c *Client) DeleteSubscription(ctx context.Context, name string) (stockd.Subscription, error) {
	v, _, err := call(ctx, c, api.DeleteSubscription, &api.SubscriptionNameRequest{Name: name})
	return v, err
}

// FollowOptions tune FollowFeed.
type FollowOptions struct {
	// Retry is the pause before reconnecting after a dropped stream or a
	// refusal worth retrying. Default 500 ms; the server's "retry:" field,
	// when sent, replaces it.
	Retry time.Duration
	// OnConnect, when set, is told of every connection the stream makes,
	// with the cursor it resumes from ("" for q.After the first time).
	OnConnect func(after string)
}

// ErrStopFollowing, returned by a FollowFeed handler, ends the stream with
// no error.
var ErrStopFollowing = errors.New("client: stop following the feed")

// FollowFeed streams the change feed from q.After as Server-Sent Events,
// calling fn with each event in order and the cursor just after it (what to
// keep, or acknowledge, to resume after that event). When the connection
// drops or the server goes away, it reconnects, resuming with Last-Event-ID
// from the last cursor the server sent, so fn sees every event once and in
// order. It returns when ctx is done (with ctx's error), when fn fails (with
// fn's error; nil for ErrStopFollowing), or when the server refuses the
// request for good (a bad cursor, a missing scope).
func (c *Client) FollowFeed(ctx context.Context, q stockd.FeedQuery, opts FollowOptions, fn func(e stockd.Event, cursor string) error) error {
	return c.FollowFeedEvents(ctx, q, opts, func(e api.EventJSON, cursor string) error { return fn(e.Event(), cursor) })
}

// FollowFeedEvents is FollowFeed with the events as the API shows them,
// each event's data as JSON.
func (c *Client) FollowFeedEvents(ctx context.Context, q stockd.FeedQuery, opts FollowOptions, fn func(e api.EventJSON, cursor string) error) error {
	if opts.Retry <= 0 {
		opts.Retry = 500 * time.Millisecond
	}
	last := "" // the last cursor the server sent: Last-Event-ID
	for {
		if opts.OnConnect != nil {
			opts.OnConnect(last)
		}
		err := c.followOnce(ctx, q, last, &last, &opts, fn)
		switch {
		case errors.Is(err, ErrStopFollowing):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, new(handlerError)):
			return errors.Unwrap(err)
		case err != nil && !retryable(err):
			return err
		}
		t := time.NewTimer(opts.Retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// handlerError carries the error of a FollowFeed handler out of the read
// loop.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

// retryable reports whether a failed connection is worth trying again.
func retryable(err error) bool {
	var se *stockd.Error
	if !errors.As(err, &se) {
		return true // the connection broke mid-stream
	}
	switch se.Code {
	case stockd.CodeUnavailable, stockd.CodeOverloaded, stockd.CodeRateLimited, stockd.CodeInternal:
		return true
	}
	return false
}

// followOnce makes one connection and reads events until it ends.
func (c *Client) followOnce(ctx context.Context, q stockd.FeedQuery, resume string, last *string, opts *FollowOptions, fn func(api.EventJSON, string) error) error {
	q.Wait = 0
	_, query, _, _, err := encode(&api.GetFeed.Operation, feedRequest(q))
	if err != nil {
		return err
	}
	u := c.base + api.GetFeed.Path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if resume != "" {
		req.Header.Set("Last-Event-ID", resume)
	}
	// A stream has no deadline of its own: the client's Timeout, meant for
	// requests, would cut it.
	hc := *c.hc
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return transportError(ctx, "GET", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != nethttp.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return responseError(resp, data)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return &stockd.Error{Code: stockd.CodeInternal, Message: fmt.Sprintf("GET %s answered %s, not an event stream", u, ct)}
	}
	return readEvents(resp.Body, func(id, data string, hasData bool) error {
		if id != "" && !hasData {
			*last = id
			return nil
		}
		if !hasData {
			return nil
		}
		var ej api.EventJSON
		if err := json.Unmarshal([]byte(data), &ej); err != nil {
			return &stockd.Error{Code: stockd.CodeInternal, Message: fmt.Sprintf("the feed sent an event that is not JSON: %v", err)}
		}
		if err := fn(ej, id); err != nil {
			return handlerError{err}
		}
		if id != "" {
			*last = id
		}
		return nil
	}, func(d time.Duration) { opts.Retry = d })
}

// readEvents parses a Server-Sent Events stream (the WHATWG rules: fields
// up to a blank line make a message; lines starting with ":" are comments)
// and calls message with each message's id and data. It returns when the
// stream ends (io.ErrUnexpectedEOF: streams end only when broken) or
// message fails.
func readEvents(r io.Reader, message func(id, data string, hasData bool) error, retry func(time.Duration)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var id string
	var data bytes.Buffer
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData || id != "" {
				if err := message(id, data.String(), hasData); err != nil {
					return err
				}
			}
			id, hasData = "", false
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "retry":
			var ms int64
			if _, err := fmt.Sscan(value, &ms); err == nil && ms > 0 {
				retry(time.Duration(ms) * time.Millisecond)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
