// Package http serves stockd's HTTP API: every operation declared in package
// api, POST /v1/batch, problem details for every error, API keys and their
// scopes, the OpenAPI document, metrics and health checks. It depends on the
// domain's API interface, never on the engine's internals.
package http

import (
	"context"
	_ "embed"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// Key is what the server knows of an API key: its name, recorded as the
// actor of every event its requests cause, and its scopes.
type Key struct {
	Name   string
	Scopes []stockd.Scope
}

// Keys authenticates requests by the bearer token they present.
type Keys interface {
	// Authenticate returns the key a token stands for, after charging it
	// one request against the key's rate limit. It fails with
	// CodeUnauthenticated for an unknown token and CodeRateLimited (with
	// RetryAfter) for a key over its rate. It never echoes the token.
	Authenticate(token string) (Key, error)
}

// Anonymous is the actor recorded on events when the server runs without
// keys: every request may do everything, and no one is named.
const Anonymous = "anonymous"

// Config configures a Server.
type Config struct {
	// API carries out the operations.
	API stockd.API
	// Keys authenticates requests; nil serves everyone with every scope
	// (only sensible on a loopback address).
	Keys Keys
	// ClusterToken, when set, is the secret the nodes of a cluster send
	// the requests they forward to each other with (see ForwardedHeader).
	ClusterToken string
	// Ready reports whether the service can take requests; nil means
	// always. /readyz answers 503 while it returns an error.
	Ready func() error
	// MaxBodyBytes bounds request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// MaxBatch bounds the operations of one batch request. Default 1000.
	MaxBatch int
	// RequestTimeout bounds how long a request waits for the service.
	// Default 10 s.
	RequestTimeout time.Duration
	// StreamKeepAlive is how often an idle feed stream sends a comment
	// line, so that proxies and clients see it alive. Default 15 s.
	StreamKeepAlive time.Duration
	// StreamWriteTimeout bounds each write of a feed stream (the
	// server's WriteTimeout would end the stream). Default 30 s.
	StreamWriteTimeout time.Duration
	// AllowedHosts, when not empty, are the only Host headers served
	// (host names, with or without a port): a guard against DNS
	// rebinding. Others get 421.
	AllowedHosts []string
	// CORSOrigins are the origins a browser page may call the API from
	// (exact, such as https://admin.example.com, or "*"). None means CORS
	// is off: browsers refuse cross-origin reads.
	CORSOrigins []string
	// Observe, when set, is told of every answered request: its route
	// pattern ("unmatched" for 404s and 405s), status and duration.
	Observe func(route string, status int, d time.Duration)
	// Metrics serves GET /metrics; nil answers 404 there.
	Metrics http.Handler
	// Logger receives request logs at debug level and internal errors.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.StreamKeepAlive <= 0 {
		c.StreamKeepAlive = 15 * time.Second
	}
	if c.StreamWriteTimeout <= 0 {
		c.StreamWriteTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	cfg    Config
	api    stockd.API
	log    *slog.Logger
	mux    *http.ServeMux
	routes []string
	// closing is cancelled by CloseStreams, which ends the feed's
	// streams.
	closing      context.Context
	closeStreams context.CancelFunc
	streams      atomic.Int64 // open feed streams
}

// NewServer returns the API over cfg.API.
func NewServer(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, api: cfg.API, log: cfg.Logger, mux: http.NewServeMux()}
	s.closing, s.closeStreams = context.WithCancel(context.Background())
	for _, h := range api.Operations {
		if h == api.Handler(api.GetFeed) {
			s.routeFeed(h) // pages, and Server-Sent Events
			continue
		}
		s.route(h)
	}
	s.handle(api.Batch.Pattern(), s.keyed(s.postBatch))
	s.handle("GET /openapi.json", s.openAPI)
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)
	if cfg.Metrics != nil {
		s.routes = append(s.routes, "GET /metrics")
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	s.mux.HandleFunc("/", s.notFound)
	return s
}

// Routes returns the route patterns the server serves, such as
// "POST /v1/reservations".
func (s *Server) Routes() []string { return s.routes }

// ServeHTTP implements http.Handler: the host guard and CORS come first, then
// the route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.AllowedHosts) > 0 && !s.hostAllowed(r.Host) {
		s.answer(w, r, "unmatched", time.Now(), func(context.Context) (int, []byte, error) {
			return 0, nil, withStatus(http.StatusMisdirectedRequest, stockd.Errorf(stockd.CodeInvalid, "host %q is not served here", r.Host))
		})
		return
	}
	if len(s.cfg.CORSOrigins) > 0 && s.cors(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// hostAllowed reports whether the Host header names one of the allowed
// hosts. A browser tricked by DNS rebinding sends the attacker's host name,
// which is not among them.
func (s *Server) hostAllowed(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	for _, a := range s.cfg.AllowedHosts {
		if strings.EqualFold(a, host) || strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

// cors adds the CORS headers for an allowed origin and answers preflight
// requests itself; it reports whether it answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	w.Header().Add("Vary", "Origin")
	if !slices.Contains(s.cfg.CORSOrigins, origin) && !slices.Contains(s.cfg.CORSOrigins, "*") {
		return false // no CORS headers: the browser refuses the answer
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate")
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// action carries out a request and returns the status and JSON answer, or
// an error to answer as problem details. An action that writes its answer
// itself returns status 0 and no error.
type action func(ctx context.Context, w http.ResponseWriter, r *http.Request) (int, []byte, error)

// route serves one declared operation: its key must carry the operation's
// scope.
func (s *Server) route(h api.Handler) {
	s.handle(h.Op().Pattern(), s.invoke(h))
}

// invoke is the action of a declared operation: its key must carry the
// operation's scope.
func (s *Server) invoke(h api.Handler) action {
	op := h.Op()
	return s.keyed(func(ctx context.Context, key Key, w http.ResponseWriter, r *http.Request) (int, []byte, error) {
		if err := key.authorize(op.Scope); err != nil {
			return 0, nil, err
		}
		status, body, err := h.Invoke(ctx, s.api, func(req any) error { return s.bind(w, r, op, req) })
		if err == nil && op.Accepted && op.StatusPath != "" {
			var v struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(body, &v) == nil && v.ID != "" {
				w.Header().Set("Location", strings.Replace(op.StatusPath, "{id}", url.PathEscape(v.ID), 1))
			}
		}
		return status, body, err
	})
}

// keyedAction is an action that runs on behalf of an authenticated key.
type keyedAction func(ctx context.Context, key Key, w http.ResponseWriter, r *http.Request) (int, []byte, error)

// anonymous is the key of every request to a server without keys.
var anonymous = Key{Name: Anonymous, Scopes: []stockd.Scope{stockd.ScopeAdmin}}

// keyed wraps an action that needs a key: the request's bearer token is
// authenticated (and charged against the key's rate) before it runs, and
// the key's name becomes the actor of every event it causes.
func (s *Server) keyed(a keyedAction) action {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request) (int, []byte, error) {
		key := anonymous
		if k, ok := s.forwarded(r); ok {
			key = k
			ctx = context.WithValue(ctx, forwardedKey{}, true)
		} else if s.cfg.Keys != nil {
			token, ok := bearerToken(r.Header.Get("Authorization"))
			if !ok {
				return 0, nil, stockd.Errorf(stockd.CodeUnauthenticated, "this route needs an API key: send Authorization: Bearer <key>")
			}
			var err error
			if key, err = s.cfg.Keys.Authenticate(token); err != nil {
				return 0, nil, err
			}
		}
		return a(stockd.WithActor(ctx, key.Name), key, w, r)
	}
}

// authorize fails with CodeForbidden unless the key holds need.
func (k Key) authorize(need stockd.Scope) error {
	if need == "" || stockd.Allows(k.Scopes, need) {
		return nil
	}
	return stockd.Errorf(stockd.CodeForbidden, "key %q lacks the scope %s this operation needs", k.Name, need)
}

// bearerToken returns the token of an Authorization header of the Bearer
// scheme (RFC 6750; the scheme name is case-insensitive).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// handle registers a route whose action runs with the request timeout.
func (s *Server) handle(pattern string, a action) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, s.timed(pattern, a))
}

// timed serves an action with the request timeout.
func (s *Server) timed(pattern string, a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		s.answer(w, r, pattern, start, func(ctx context.Context) (int, []byte, error) { return a(ctx, w, r) })
	}
}

// answer runs fn and writes its answer or problem, then counts and logs it
// under route.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, route string, start time.Time, fn func(context.Context) (int, []byte, error)) {
	status, body, err := fn(r.Context())
	switch {
	case err != nil:
		status = s.writeProblem(w, r, err)
	case status != 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
		if len(body) == 0 || body[len(body)-1] != '\n' {
			w.Write(newline)
		}
	default:
		status = http.StatusOK // the action wrote its own answer
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(route, status, time.Since(start))
	}
	s.log.DebugContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path, "status", status, "took", time.Since(start))
}

var newline = []byte("\n")

// notFound answers paths no route serves, and methods a path does not
// support, as problem details.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.answer(w, r, "unmatched", time.Now(), func(context.Context) (int, []byte, error) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			return 0, nil, withStatus(http.StatusMethodNotAllowed, stockd.Errorf(stockd.CodeInvalid, "%s is not supported here; use %s", r.Method, strings.Join(allowed, ", ")))
		}
		return 0, nil, stockd.Errorf(stockd.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path)
	})
}

//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) openAPI(_ context.Context, w http.ResponseWriter, _ *http.Request) (int, []byte, error) {
	return http.StatusOK, openAPIDocument, nil
}

func (s *Server) healthz(context.Context, http.ResponseWriter, *http.Request) (int, []byte, error) {
	return status("ok")
}

func (s *Server) readyz(context.Context, http.ResponseWriter, *http.Request) (int, []byte, error) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return 0, nil, stockd.Errorf(stockd.CodeUnavailable, "not ready: %v", err)
		}
	}
	return status("ready")
}

func status(v string) (int, []byte, error) {
	b, err := json.Marshal(api.Status{Status: v})
	return http.StatusOK, b, err
}
