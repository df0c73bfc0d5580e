package bench

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// reserveRequest is the body of POST /v1/reservations, as the no-op handler
// decodes it: the same shape and the same strictness (unknown fields refused)
// as a real handler, so that the ceiling includes the decoding every real
// request pays.
type reserveRequest struct {
	ID       string        `json:"id"`
	TTL      string        `json:"ttl"`
	Customer string        `json:"customer,omitempty"`
	Lines    []reserveLine `json:"lines"`
}

type reserveLine struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	Location string `json:"location,omitempty"`
}

// reserveResponse is the small body the no-op handler answers with: the shape
// of a held reservation.
type reserveResponse struct {
	ID        string         `json:"id"`
	Status    string         `json:"status"`
	ExpiresAt time.Time      `json:"expires_at"`
	Lines     []responseLine `json:"lines"`
}

type responseLine struct {
	SKU         string       `json:"sku"`
	Quantity    int64        `json:"quantity"`
	Allocations []allocation `json:"allocations"`
}

type allocation struct {
	Location string `json:"location"`
	Quantity int64  `json:"quantity"`
}

// NoopHandler answers POST /v1/reservations without doing anything: it decodes
// the body strictly with encoding/json, checks it the way a real handler
// would (an id, at least one line, quantities ≥ 1), and answers 201 with a
// small reservation-shaped JSON body. Driven by the same load generator as
// stockd, it measures the machine's per-request HTTP ceiling: what net/http,
// encoding/json and the generator itself cost, with no work behind them.
func NoopHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/reservations", func(w http.ResponseWriter, r *http.Request) {
		var req reserveRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
			http.Error(w, "trailing data after the JSON body", http.StatusBadRequest)
			return
		}
		if req.ID == "" || len(req.Lines) == 0 {
			http.Error(w, "id and lines are required", http.StatusUnprocessableEntity)
			return
		}
		if req.TTL != "" {
			if _, err := time.ParseDuration(req.TTL); err != nil {
				http.Error(w, "bad ttl", http.StatusUnprocessableEntity)
				return
			}
		}
		resp := reserveResponse{ID: req.ID, Status: "held", ExpiresAt: time.Now().Add(15 * time.Minute).UTC()}
		for _, l := range req.Lines {
			if l.SKU == "" || l.Quantity < 1 {
				http.Error(w, "bad line", http.StatusUnprocessableEntity)
				return
			}
			resp.Lines = append(resp.Lines, responseLine{SKU: l.SKU, Quantity: l.Quantity,
				Allocations: []allocation{{Location: "w1", Quantity: l.Quantity}}})
		}
		b, err := json.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(b)
	})
	return mux
}

// Noop is the "noop" target: NoopHandler on a free loopback port, in this
// process, driven over HTTP like stockd.
type Noop struct {
	httpTarget
	srv *http.Server
	ln  net.Listener
}

// StartNoop starts NoopHandler on 127.0.0.1 at a free port. Its clients send
// the same bodies as stockd's, holds of ttl included. Close stops it.
func StartNoop(client *http.Client, ttl time.Duration) (*Noop, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: NoopHandler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	n := &Noop{srv: srv, ln: ln}
	n.httpTarget = httpTarget{
		name: "noop", tag: "n", urls: []string{"http://" + ln.Addr().String() + "/v1/reservations"},
		per: 1, client: client, ttl: quoteTTL(ttl), run: randomID(),
	}
	return n, nil
}

// URL returns the base URL the no-op server listens on.
func (n *Noop) URL() string { return "http://" + n.ln.Addr().String() }

// Close stops the server and closes its connections at once. (Shutdown would
// wait up to 5 s for connections the client Transport dialed but never used,
// which net/http counts as possibly about to send a request.)
func (n *Noop) Close() error { return n.srv.Close() }
