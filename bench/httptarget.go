package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NewHTTPClient returns the one client a run shares between all its HTTP
// clients: a Transport that keeps up to maxClients idle keep-alive connections
// per host (the default keeps 2, which would make most requests of a
// 64-client run open a new connection and measure TCP handshakes instead of
// the server), no proxy (the targets are local), no compression and HTTP/1.1.
func NewHTTPClient(maxClients int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no limit across hosts
		MaxIdleConnsPerHost: maxClients + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     16 << 10,
		ReadBufferSize:      16 << 10,
	}}
}

// Stockd drives a stockd server over its HTTP API. Its two targets, Single
// ("stockd": one reservation per POST /v1/reservations) and Batch
// ("stockd-batch": many reservations per POST /v1/batch), share the server and
// its stock: a workload is stocked once for both.
type Stockd struct {
	base   string
	client *http.Client
	ttl    string // JSON-quoted
	run    string // makes receipt and reservation ids unique to this run
	auth   string // the Authorization header, or "" for a server without keys
	name   string // the name of its one-per-request target: "stockd" unless set
	// bases, when set, are the base URLs of every node of a cluster the
	// targets spread their clients over, round-robin (base is the first).
	bases []string

	mu      sync.Mutex
	stocked map[string]error
}

// NewStockd returns a driver for the stockd server at baseURL
// ("http://127.0.0.1:8080"). Reservations ask for a hold of ttl. Every id it
// sends carries a random run id, so runs against the same server never replay
// each other's commands.
func NewStockd(baseURL string, client *http.Client, ttl time.Duration) *Stockd {
	return &Stockd{
		base:    strings.TrimRight(baseURL, "/"),
		client:  client,
		ttl:     quoteTTL(ttl),
		run:     randomID(),
		stocked: map[string]error{},
	}
}

// NewStockdCluster returns a driver for the stockd cluster whose nodes
// answer at baseURLs: it stocks through the first, and its targets give
// client i the node i mod len(baseURLs), so that every node takes an equal
// share of the requests and most arrive at a node that does not own the
// partition and send it on.
func NewStockdCluster(baseURLs []string, client *http.Client, ttl time.Duration) *Stockd {
	s := NewStockd(baseURLs[0], client, ttl)
	for _, u := range baseURLs {
		s.bases = append(s.bases, strings.TrimRight(u, "/"))
	}
	return s
}

// urls returns path on every node the targets spread their clients over.
func (s *Stockd) urls(path string) []string {
	if len(s.bases) == 0 {
		return []string{s.base + path}
	}
	out := make([]string, len(s.bases))
	for i, b := range s.bases {
		out[i] = b + path
	}
	return out
}

// quoteTTL returns ttl as a JSON string in Go's notation: "15m0s".
func quoteTTL(ttl time.Duration) string {
	q, _ := json.Marshal(ttl.String())
	return string(q)
}

// newRand returns a generator for one client: each has its own, so that
// choosing a SKU takes no lock.
func newRand() *mrand.Rand { return mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64())) }

// randomID returns 8 random hex digits.
func randomID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Single returns the "stockd" target: one reservation per request.
func (s *Stockd) Single() Target {
	name, tag := "stockd", "s"
	if s.name != "" {
		name, tag = s.name, "p"
	}
	return &httpTarget{name: name, tag: tag, urls: s.urls("/v1/reservations"), per: 1, client: s.client, ttl: s.ttl, run: s.run, prepare: s.stock}
}

// Keyed returns the "stockd-keys" target: one reservation per request, each
// with its API key, to a server that checks it.
func (s *Stockd) Keyed() Target {
	return &httpTarget{name: "stockd-keys", tag: "k", urls: s.urls("/v1/reservations"), per: 1, client: s.client, ttl: s.ttl, run: s.run, auth: s.auth, prepare: s.stock}
}

// Batch returns the "stockd-batch" target: n reservations per POST /v1/batch,
// each with its own result.
func (s *Stockd) Batch(n int) Target {
	return &httpTarget{name: "stockd-batch", tag: "b", urls: s.urls("/v1/batch"), per: n, batch: true, client: s.client, ttl: s.ttl, run: s.run, prepare: s.stock}
}

// stock receives w.Stock units of every SKU of w, once per workload.
func (s *Stockd) stock(ctx context.Context, w Workload) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprintf("%s/%d/%d", w.Name, w.SKUs, w.Stock)
	if err, ok := s.stocked[key]; ok {
		return err
	}
	err := s.configureLocation(ctx)
	if err == nil {
		err = s.receiveAll(ctx, w)
	}
	s.stocked[key] = err
	return err
}

// configureLocation configures the location receipts go to: stock may only
// be received where a location was configured.
func (s *Stockd) configureLocation(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/v1/locations/"+benchLocation, strings.NewReader(`{"kind":"warehouse","priority":1,"region":"bench"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("configuring location %s: HTTP %d: %s", benchLocation, resp.StatusCode, snippet(b))
	}
	return nil
}

// benchLocation is the location every receipt goes to.
const benchLocation = "w1"

// maxReceipt is the largest quantity one receipt may carry.
const maxReceipt = 1_000_000_000

// receipt is one receive command: quantity q of SKU i, the part-th receipt
// for it (a stock above maxReceipt takes several).
type receipt struct {
	sku, part int
	q         int64
}

func (s *Stockd) receiptBody(b []byte, w Workload, r receipt) []byte {
	b = append(b, `{"id":"bench-`...)
	b = append(b, s.run...)
	b = append(b, '-')
	b = append(b, w.Name...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(r.sku), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(r.part), 10)
	b = append(b, `","sku":"`...)
	b = w.appendSKU(b, r.sku)
	b = append(b, `","location":"w1","quantity":`...)
	b = strconv.AppendInt(b, r.q, 10)
	return append(b, '}')
}

// receiveAll stocks w: through /v1/batch, 1000 receipts a request, a few
// requests at a time, falling back to one POST /v1/receipts per receipt (many
// at a time) when the server has no batch endpoint.
func (s *Stockd) receiveAll(ctx context.Context, w Workload) error {
	var all []receipt
	for i := range w.SKUs {
		left := w.Stock
		for part := 0; left > 0; part++ {
			q := min(left, maxReceipt)
			all = append(all, receipt{i, part, q})
			left -= q
		}
	}
	const perBatch = 1000
	chunks := make(chan []receipt)
	go func() {
		defer close(chunks)
		for i := 0; i < len(all); i += perBatch {
			select {
			case chunks <- all[i:min(i+perBatch, len(all))]:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		mu       sync.Mutex
		firstErr error
		noBatch  bool
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for range 4 {
		wg.Go(func() {
			var buf []byte
			for chunk := range chunks {
				mu.Lock()
				stop, single := firstErr != nil, noBatch
				mu.Unlock()
				if stop {
					continue // drain
				}
				if !single {
					buf = buf[:0]
					buf = append(buf, `{"operations":[`...)
					for j, r := range chunk {
						if j > 0 {
							buf = append(buf, ',')
						}
						buf = append(buf, `{"op":"receive","body":`...)
						buf = s.receiptBody(buf, w, r)
						buf = append(buf, '}')
					}
					buf = append(buf, "]}"...)
					batched, err := s.postReceipts(ctx, buf, len(chunk))
					if err != nil {
						fail(err)
						continue
					}
					if batched {
						continue
					}
					mu.Lock()
					noBatch = true
					mu.Unlock()
				}
				if err := s.receiveEach(ctx, w, chunk); err != nil {
					fail(err)
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// postReceipts sends one batch of n receipts, and sends it again, after a
// pause, while the service refuses some as overloaded: receipt ids make the
// repeats replays. It reports false when the service has no batch endpoint.
func (s *Stockd) postReceipts(ctx context.Context, batch []byte, n int) (bool, error) {
	for attempt := 1; ; attempt++ {
		status, body, err := s.post(ctx, "/v1/batch", batch)
		switch {
		case err != nil:
			return true, err
		case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
			return false, nil
		case status != http.StatusOK:
			return true, fmt.Errorf("POST /v1/batch: HTTP %d: %s", status, snippet(body))
		}
		bad, overloaded := "", false
		got, err := scanBatchResults(body, func(st int, code string) {
			switch {
			case st == http.StatusOK || st == http.StatusCreated:
			case code == "overloaded":
				overloaded = true
			case bad == "":
				bad = fmt.Sprintf("a receive answered %d %s", st, code)
			}
		})
		if err == nil && got != n {
			err = fmt.Errorf("%d results for %d operations", got, n)
		}
		if err == nil && bad != "" {
			err = errors.New(bad)
		}
		if err != nil {
			return true, fmt.Errorf("POST /v1/batch: %w", err)
		}
		if !overloaded {
			return true, nil
		}
		if attempt == maxStockingAttempts {
			return true, fmt.Errorf("POST /v1/batch: receipts still refused as overloaded after %d attempts", attempt)
		}
		wait(ctx, time.Duration(attempt)*50*time.Millisecond)
		if err := ctx.Err(); err != nil {
			return true, err
		}
	}
}

// maxStockingAttempts bounds how often a batch of receipts is sent again
// while the service is overloaded.
const maxStockingAttempts = 40

// receiveEach posts receipts one per request, 16 at a time.
func (s *Stockd) receiveEach(ctx context.Context, w Workload, rs []receipt) error {
	var wg sync.WaitGroup
	errs := make([]error, len(rs))
	sem := make(chan struct{}, 16)
	for i, r := range rs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			status, body, err := s.post(ctx, "/v1/receipts", s.receiptBody(nil, w, r))
			if err == nil && status != http.StatusOK && status != http.StatusCreated {
				err = fmt.Errorf("POST /v1/receipts: HTTP %d: %s", status, snippet(body))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Stockd) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// snippet shortens a response body for an error message.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// httpTarget sends reservation requests: one per request to
// /v1/reservations (stockd, noop), or many per request to /v1/batch.
type httpTarget struct {
	name, tag string
	// urls are where requests go: client i sends to urls[i mod len(urls)].
	urls    []string
	auth    string // the Authorization header, or ""
	per     int
	batch   bool
	client  *http.Client
	ttl     string
	run     string
	prepare func(context.Context, Workload) error // nil: nothing to stock
	level   int                                   // counts levels, for unique ids
}

func (t *httpTarget) Name() string       { return t.name }
func (t *httpTarget) OpsPerRequest() int { return t.per }
func (t *httpTarget) Close() error       { return nil }

func (t *httpTarget) Prepare(ctx context.Context, w Workload) error {
	if t.prepare == nil {
		return nil
	}
	return t.prepare(ctx, w)
}

func (t *httpTarget) Start(ctx context.Context, w Workload, clients int) (*Level, error) {
	t.level++
	l := &Level{Workers: make([]Worker, clients)}
	for i := range l.Workers {
		// An id prefix unique to the run, target, workload, level and
		// client; a sequence number completes it.
		prefix := fmt.Sprintf("%s-%s%s%d-%d-", t.run, t.tag, w.Name[:1], t.level, i)
		l.Workers[i] = &httpWorker{
			t: t, w: w, prefix: prefix, url: t.urls[i%len(t.urls)],
			rnd: newRand(),
		}
	}
	return l, nil
}

// httpWorker is one client of an HTTP target. Bodies are built by appending
// to reused buffers: the generator shares two cores with the server it
// measures and must cost it as little as possible.
type httpWorker struct {
	t      *httpTarget
	w      Workload
	url    string
	prefix string
	seq    int64
	rnd    *mrand.Rand
	body   []byte
	resp   bytes.Buffer
}

// appendReserve appends one reservation body:
// {"id":"…","ttl":"15m0s","lines":[{"sku":"hot","quantity":1}]}.
func (k *httpWorker) appendReserve(b []byte) []byte {
	k.seq++
	b = append(b, `{"id":"`...)
	b = append(b, k.prefix...)
	b = strconv.AppendInt(b, k.seq, 10)
	b = append(b, `","ttl":`...)
	b = append(b, k.t.ttl...)
	b = append(b, `,"lines":[{"sku":"`...)
	sku := 0
	if k.w.SKUs > 1 {
		sku = k.rnd.IntN(k.w.SKUs)
	}
	b = k.w.appendSKU(b, sku)
	return append(b, `","quantity":1}]}`...)
}

func (k *httpWorker) Do(ctx context.Context, n int) Outcome {
	b := k.body[:0]
	if k.t.batch {
		b = append(b, `{"operations":[`...)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"op":"reserve","body":`...)
			b = k.appendReserve(b)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	} else {
		b = k.appendReserve(b)
	}
	k.body = b

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url, bytes.NewReader(b))
	if err != nil {
		return Outcome{Other: n, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if k.t.auth != "" {
		req.Header.Set("Authorization", k.t.auth)
	}
	resp, err := k.t.client.Do(req)
	if err != nil {
		return Outcome{Other: n, Err: err}
	}
	k.resp.Reset()
	_, err = k.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Outcome{Other: n, Err: err}
	}
	body := k.resp.Bytes()

	if k.t.batch && resp.StatusCode == http.StatusOK {
		var out Outcome
		got, err := scanBatchResults(body, func(status int, code string) {
			classify(&out, status, code, nil)
		})
		if err == nil && got != n {
			err = fmt.Errorf("POST /v1/batch: %d results for %d operations", got, n)
		}
		if err != nil {
			out.Other += max(n-got, 0)
			if out.Err == nil {
				out.Err = err
			}
		}
		return out
	}
	var out Outcome
	code := ""
	if resp.StatusCode == http.StatusConflict && bytes.Contains(body, []byte(`"insufficient_stock"`)) {
		code = "insufficient_stock"
	}
	for range n {
		classify(&out, resp.StatusCode, code, body)
	}
	if out.Overloaded > 0 {
		out.Backoff = retryAfter(resp.Header.Get("Retry-After"))
	}
	return out
}

// classify counts one operation's result by its status and problem code.
func classify(out *Outcome, status int, code string, body []byte) {
	switch {
	case status == http.StatusOK || status == http.StatusCreated:
		out.OK++
	case status == http.StatusConflict && code == "insufficient_stock":
		out.Insufficient++
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		out.Overloaded++
	default:
		out.Other++
		if out.Err == nil {
			if body != nil {
				out.Err = fmt.Errorf("HTTP %d: %s", status, snippet(body))
			} else {
				out.Err = fmt.Errorf("HTTP %d %s", status, code)
			}
		}
	}
}

// retryAfter parses a Retry-After header in seconds; absent or unparsable
// means a short default pause.
func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return 10 * time.Millisecond
}
