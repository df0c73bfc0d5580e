// Package http serves stockd's HTTP API: the v1 JSON contract, problem
// details for every error, the OpenAPI document, Prometheus metrics and
// health checks. It depends on the domain's Service interface, never on the
// engine's internals.
package http

import (
	"context"
	_ "embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/metrics"
)

// ReadModel answers the eventually consistent reads: availability of many
// SKUs and reservations by customer. Answers are encoded as they are; each
// must say how fresh it is (as_of and lag). The read model package provides
// them; the server only needs their JSON.
type ReadModel struct {
	Availability           func(skus []string) any
	ReservationsByCustomer func(customer string, limit int) any
}

// Config configures a Server.
type Config struct {
	// Service carries out commands and the read-your-writes queries.
	Service stockd.Service
	// ReadModel serves availability and reservations by customer; without
	// it those routes answer 503.
	ReadModel *ReadModel
	// Ready reports whether the service can take requests; nil means
	// always. /readyz answers 503 while it returns an error.
	Ready func() error
	// Limits bound commands; they must match the engine's.
	Limits stockd.Limits
	// MaxBodyBytes bounds request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// MaxBatch bounds the operations of one batch request. Default 1000.
	MaxBatch int
	// MaxSKUs bounds the SKUs of one availability request. Default 1000.
	MaxSKUs int
	// RequestTimeout bounds how long a request waits for the service.
	// Default 10 s.
	RequestTimeout time.Duration
	// Metrics receives the HTTP metrics and is served at /metrics; nil
	// makes a private one.
	Metrics *metrics.Metrics
	// Logger receives request logs at debug level and internal errors.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Limits == (stockd.Limits{}) {
		c.Limits = stockd.DefaultLimits
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.MaxSKUs <= 0 {
		c.MaxSKUs = 1000
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New(metrics.Options{Logger: c.Logger})
	}
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	cfg    Config
	svc    stockd.Service
	log    *slog.Logger
	mux    *http.ServeMux
	routes []string
}

// NewServer returns the API over cfg.Service.
func NewServer(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, svc: cfg.Service, log: cfg.Logger, mux: http.NewServeMux()}

	s.handle("PUT /v1/locations/{id}", s.putLocation)
	s.handle("GET /v1/locations/{id}", s.getLocation)
	s.handle("GET /v1/locations", s.listLocations)
	s.handle("PUT /v1/skus/{sku}/config", s.putSKUConfig)
	s.handle("GET /v1/skus/{sku}", s.getSKU)
	s.handle("GET /v1/skus/{sku}/events", s.getEvents)
	s.handle("POST /v1/receipts", s.postReceipt)
	s.handle("POST /v1/adjustments", s.postAdjustment)
	s.handle("POST /v1/counts", s.postCount)
	s.handle("POST /v1/transfers", s.postTransfer)
	s.handle("GET /v1/transfers/{id}", s.getTransfer)
	s.handle("POST /v1/transfers/{id}/arrive", s.arriveTransfer)
	s.handle("POST /v1/reservations", s.postReservation)
	s.handle("GET /v1/reservations", s.listReservations)
	s.handle("GET /v1/reservations/{id}", s.getReservation)
	s.handle("POST /v1/reservations/{id}/commit", s.commit)
	s.handle("POST /v1/reservations/{id}/release", s.release)
	s.handle("POST /v1/reservations/{id}/extend", s.extend)
	s.handle("GET /v1/availability", s.getAvailability)
	s.handle("POST /v1/batch", s.postBatch)
	s.handle("GET /openapi.json", s.openAPI)
	s.handle("GET /metrics", s.metrics)
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)
	unmatched := s.cfg.Metrics.Route(metrics.Unmatched)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.cfg.Metrics.StartRequest()
		defer s.cfg.Metrics.EndRequest()
		rw := &statusWriter{ResponseWriter: w}
		s.notFound(rw, r)
		unmatched.Observe(rw.status, time.Since(start))
	})
	return s
}

// Routes returns the route patterns the server serves, such as
// "POST /v1/reservations".
func (s *Server) Routes() []string { return s.routes }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handlerFunc answers a request with a status and a value to encode as JSON,
// or an error to answer as problem details.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (int, any, error)

// handle registers a route: the handler runs with the request timeout and
// the actor in its context, and every answer is counted and timed under the
// route's pattern.
func (s *Server) handle(pattern string, h handlerFunc) {
	s.routes = append(s.routes, pattern)
	route := s.cfg.Metrics.Route(pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.cfg.Metrics.StartRequest()
		defer s.cfg.Metrics.EndRequest()
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		if actor := r.Header.Get("X-Actor"); actor != "" {
			ctx = stockd.WithActor(ctx, actor)
		}
		r = r.WithContext(ctx)
		rw := &statusWriter{ResponseWriter: w}
		status, v, err := h(rw, r)
		switch {
		case err != nil:
			s.writeProblem(rw, r, err)
		case rw.status == 0:
			writeJSON(rw, status, v)
		}
		route.Observe(rw.status, time.Since(start))
		s.log.DebugContext(ctx, "request", "method", r.Method, "path", r.URL.Path, "status", rw.status, "took", time.Since(start))
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// notFound answers paths no route serves, and methods a path does not
// support, as problem details.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", joinComma(allowed))
		p := Problem{Type: "about:blank", Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: r.Method + " is not supported here; use " + joinComma(allowed), Code: stockd.CodeInvalid, Instance: r.URL.Path}
		writeProblemBody(w, p)
		return
	}
	s.writeProblem(w, r, stockd.Errorf(stockd.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
}

func writeProblemBody(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) (int, any, error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(openAPIDocument)
	return 0, nil, nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) (int, any, error) {
	s.cfg.Metrics.Handler().ServeHTTP(w, r)
	return 0, nil, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) (int, any, error) {
	return http.StatusOK, map[string]string{"status": "ok"}, nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return 0, nil, stockd.Errorf(stockd.CodeUnavailable, "not ready: %v", err)
		}
	}
	return http.StatusOK, map[string]string{"status": "ready"}, nil
}
