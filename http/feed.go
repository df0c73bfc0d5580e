package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// EventStream is the media type of the feed's Server-Sent Events.
const EventStream = "text/event-stream"

// StreamRoute is the route label the request metrics give feed streams:
// their durations are the streams' lifetimes.
const StreamRoute = "GET /v1/feed (stream)"

// streamBatch is the most events a stream reads at a time, unless the
// request's limit says otherwise.
const streamBatch = 500

// CloseStreams ends every feed stream, and makes new ones end at once: a
// graceful shutdown waits for requests in flight, and a stream never ends
// by itself. Register it with http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.closeStreams() }

// OpenStreams returns the number of feed streams open now.
func (s *Server) OpenStreams() int64 { return s.streams.Load() }

// routeFeed serves GET /v1/feed: a page of JSON like every declared
// operation, or, to a client that accepts text/event-stream, Server-Sent
// Events for as long as the client stays. Both go through the same key,
// scope and problem handling.
func (s *Server) routeFeed(h api.Handler) {
	op := h.Op()
	pattern := op.Pattern()
	s.routes = append(s.routes, pattern)
	page := s.timed(pattern, s.invoke(h))
	stream := s.keyed(func(ctx context.Context, key Key, w http.ResponseWriter, r *http.Request) (int, []byte, error) {
		if err := key.authorize(op.Scope); err != nil {
			return 0, nil, err
		}
		var req api.FeedRequest
		if err := s.bind(w, r, op, &req); err != nil {
			return 0, nil, err
		}
		q, err := req.Query()
		if err != nil {
			return 0, nil, err
		}
		return 0, nil, s.stream(ctx, w, q)
	})
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !acceptsEventStream(r.Header.Values("Accept")) {
			page(w, r)
			return
		}
		// No request timeout: the stream lasts until the client goes or
		// the server shuts down. Its own route label keeps the lifetimes
		// of streams out of the latencies of pages.
		s.answer(w, r, StreamRoute, time.Now(), func(ctx context.Context) (int, []byte, error) { return stream(ctx, w, r) })
	})
}

// acceptsEventStream reports whether an Accept header names
// text/event-stream (with a non-zero quality).
func acceptsEventStream(accept []string) bool {
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == EventStream && params["q"] != "0" && !strings.HasPrefix(params["q"], "0.0") {
				return true
			}
		}
	}
	return false
}

// stream writes the feed after q.After as Server-Sent Events: each event as
// "event: <type>", "id: <the cursor just after it>" and "data: <its JSON>";
// an "id:" alone when events a filter left out moved the cursor; a comment
// line when idle for the keep-alive interval. It returns an error only
// before anything is written (a bad cursor), to be answered as a problem.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, q stockd.FeedQuery) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	s.streams.Add(1)
	defer s.streams.Add(-1)

	// Where the stream starts, as a cursor: the cursor after each event
	// is made from it.
	var cur stockd.FeedCursor
	switch q.After {
	case "", "now":
		p, err := s.api.FeedPage(ctx, stockd.FeedQuery{After: "now", Limit: 1})
		if err != nil {
			return err
		}
		if cur, err = stockd.ParseFeedCursor(p.Next); err != nil {
			return err
		}
		if q.After == "" {
			clear(cur)
		}
	default:
		var err error
		if cur, err = stockd.ParseFeedCursor(q.After); err != nil {
			return err
		}
	}
	if q.Limit <= 0 {
		q.Limit = streamBatch
	}
	q.After, q.Wait = cur.String(), 0
	page, err := s.api.FeedPage(ctx, q) // refusals of the cursor come as problems
	if err != nil {
		return err
	}

	rc := http.NewResponseController(w)
	// The server's WriteTimeout counts from the request: each write of the
	// stream gets a deadline of its own instead. (Its ReadTimeout does not
	// end the stream: net/http clears the read deadline once a request
	// without a body is read.)
	rc.SetWriteDeadline(time.Now().Add(s.cfg.StreamWriteTimeout))
	h := w.Header()
	h.Set("Content-Type", EventStream)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	w.WriteHeader(http.StatusOK)
	// The start as an id alone: a client that loses the connection before
	// the first event resumes from here, not from a later "now".
	if _, err := io.WriteString(w, "id: "+cur.String()+"\n\n"); err != nil || rc.Flush() != nil {
		return nil
	}
	q.Wait = s.cfg.StreamKeepAlive
	var buf bytes.Buffer
	for {
		buf.Reset()
		for _, e := range page.Events {
			ej, err := api.NewEventJSON(e)
			if err != nil {
				s.log.ErrorContext(ctx, "feed stream: rendering an event", "event", e.ID(), "err", err)
				return nil
			}
			data, err := json.Marshal(ej)
			if err != nil {
				s.log.ErrorContext(ctx, "feed stream: rendering an event", "event", e.ID(), "err", err)
				return nil
			}
			cur[e.Partition] = e.Position
			buf.WriteString("event: ")
			buf.WriteString(ej.Type)
			buf.WriteString("\nid: ")
			buf.WriteString(cur.String())
			buf.WriteString("\ndata: ")
			buf.Write(data)
			buf.WriteString("\n\n")
		}
		switch next := page.Next; {
		case next != cur.String():
			// Events left out by a filter moved the cursor: an id
			// alone moves the client's Last-Event-ID without an event.
			if cur, err = stockd.ParseFeedCursor(next); err != nil {
				s.log.ErrorContext(ctx, "feed stream: the feed answered a bad cursor", "err", err)
				return nil
			}
			buf.WriteString("id: ")
			buf.WriteString(next)
			buf.WriteString("\n\n")
		case len(page.Events) == 0:
			buf.WriteString(": keep-alive\n\n")
		}
		rc.SetWriteDeadline(time.Now().Add(s.cfg.StreamWriteTimeout))
		if _, err := w.Write(buf.Bytes()); err != nil {
			return nil
		}
		if rc.Flush() != nil {
			return nil
		}
		q.After = cur.String()
		if page, err = s.api.FeedPage(ctx, q); err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "feed stream: reading the feed", "err", err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return nil // the client left or the server shuts down
		}
	}
}
