package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/auth"
	"github.com/stockd/stockd/http"
	"github.com/stockd/stockd/imports"
)

// heads returns the durable head of every partition: any change to the
// state shows as a change of some head.
func heads(s *Server) []uint64 {
	out := make([]uint64, s.Engine.Partitions())
	for p := range out {
		out[p] = s.Engine.DurableHead(p)
	}
	return out
}

func sameHeads(a, b []uint64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// matrixRequest is a request of an operation that succeeds with the right
// key once the matrix's seed data exists.
type matrixRequest struct {
	path, body string
}

// matrixRequests has one request per declared operation, by pattern.
var matrixRequests = map[string]matrixRequest{
	"GET /v1/locations":                   {"/v1/locations", ""},
	"PUT /v1/locations/{id}":              {"/v1/locations/w2", `{"kind":"store","priority":2,"region":"eu"}`},
	"GET /v1/locations/{id}":              {"/v1/locations/w1", ""},
	"PUT /v1/bundles/{sku}":               {"/v1/bundles/m-kit", `{"components":[{"sku":"A","quantity":2}]}`},
	"GET /v1/bundles/{sku}":               {"/v1/bundles/m-kit2", ""},
	"GET /v1/skus":                        {"/v1/skus?limit=10", ""},
	"GET /v1/skus/{sku}":                  {"/v1/skus/A", ""},
	"PUT /v1/skus/{sku}/config":           {"/v1/skus/A/config", `{"safety_stock":0,"low_stock_threshold":2}`},
	"GET /v1/skus/{sku}/events":           {"/v1/skus/A/events", ""},
	"POST /v1/receipts":                   {"/v1/receipts", `{"id":"m-r","sku":"A","location":"w1","quantity":5}`},
	"POST /v1/adjustments":                {"/v1/adjustments", `{"id":"m-a","sku":"A","location":"w1","delta":-1,"reason":"damaged"}`},
	"POST /v1/counts":                     {"/v1/counts", `{"id":"m-c","sku":"B","location":"w1","on_hand":4}`},
	"POST /v1/transfers":                  {"/v1/transfers", `{"id":"m-t","sku":"A","from":"w1","to":"w2","quantity":1}`},
	"GET /v1/transfers/{id}":              {"/v1/transfers/seed-t", ""},
	"POST /v1/transfers/{id}/arrive":      {"/v1/transfers/seed-t/arrive", ""},
	"POST /v1/reservations":               {"/v1/reservations", `{"id":"m-new","customer":"c-1","lines":[{"sku":"A","quantity":1}]}`},
	"GET /v1/reservations":                {"/v1/reservations?customer=c-1", ""},
	"GET /v1/reservations/{id}":           {"/v1/reservations/m-commit", ""},
	"POST /v1/reservations/{id}/commit":   {"/v1/reservations/m-commit/commit", ""},
	"POST /v1/reservations/{id}/release":  {"/v1/reservations/m-release/release", ""},
	"POST /v1/reservations/{id}/extend":   {"/v1/reservations/m-extend/extend", `{"ttl":"20m"}`},
	"PATCH /v1/reservations/{id}":         {"/v1/reservations/m-change", `{"lines":[{"sku":"A","quantity":2}]}`},
	"GET /v1/availability":                {"/v1/availability?sku=A", ""},
	"POST /v1/batch":                      {"/v1/batch", `{"operations":[{"op":"receive","body":{"id":"m-b","sku":"A","location":"w1","quantity":1}}]}`},
	"GET /v1/feed":                        {"/v1/feed?limit=5", ""},
	"GET /v1/subscriptions":               {"/v1/subscriptions", ""},
	"PUT /v1/subscriptions/{name}":        {"/v1/subscriptions/m-new", `{"from":"now"}`},
	"GET /v1/subscriptions/{name}":        {"/v1/subscriptions/m-sub", ""},
	"DELETE /v1/subscriptions/{name}":     {"/v1/subscriptions/m-del", ""},
	"GET /v1/subscriptions/{name}/events": {"/v1/subscriptions/m-sub/events", ""},
	"POST /v1/subscriptions/{name}/ack":   {"/v1/subscriptions/m-sub/ack", `{"cursor":"` + stockd.FeedCursor(make([]uint64, 8)).String() + `"}`},
	"POST /v1/subscriptions/{name}/reset": {"/v1/subscriptions/m-sub/reset", `{"to":"beginning"}`},
	"POST /v1/commands":                   {"/v1/commands", `{"id":"m-cmd","type":"receive","command":{"id":"m-q","sku":"A","location":"w1","quantity":1}}`},
	"GET /v1/commands/{id}":               {"/v1/commands/m-cmd", ""},
	"POST /v1/imports":                    {"/v1/imports", `{"name":"m.csv","csv":"sku,quantity\nA,1\n","location":"w1"}`},
	"GET /v1/imports":                     {"/v1/imports", ""},
	// A dropped or posted file without a batch is known by its content.
	"GET /v1/imports/{id}": {"/v1/imports/" + imports.SHA256([]byte("sku,quantity\nA,1\n")), ""},
	"GET /openapi.json":    {"/openapi.json", ""},
	"GET /metrics":         {"/metrics", ""},
	"GET /healthz":         {"/healthz", ""},
	"GET /readyz":          {"/readyz", ""},
}

// matrixSetup is, for a route that needs an entity the seed does not make
// (or whose success cannot simply be repeated, like a delete), a PUT sent as
// root before each request expected to succeed.
var matrixSetup = map[string]matrixRequest{
	"GET /v1/bundles/{sku}": {"/v1/bundles/m-kit2", `{"components":[{"sku":"A","quantity":1}]}`},
}

// matrixPrepare is, for a route whose entity no request can make, what
// makes it in the store before each request expected to succeed.
var matrixPrepare = map[string]func(t *testing.T, s *Server){}

// publicRoutes need no key.
var publicRoutes = map[string]bool{"GET /openapi.json": true, "GET /metrics": true, "GET /healthz": true, "GET /readyz": true}

// TestAuthorizationMatrix sends every route with no key, an unknown key, a
// key without the operation's scope and a key with it: 401, 401, 403 and
// success, and no refusal changes anything.
func TestAuthorizationMatrix(t *testing.T) {
	keys, tok := NewKeys(t, map[string][]stockd.Scope{
		"reader": {stockd.ScopeStockRead}, "warehouse": {stockd.ScopeStockWrite},
		"shop": {stockd.ScopeReservationsWrite}, "root": {stockd.ScopeAdmin},
	})
	s := Start(t, Options{Keys: keys})
	auth := func(name string) []string { return []string{"Authorization", "Bearer " + tok[name]} }
	// Seed data, as root.
	for _, r := range []matrixRequest{
		{"/v1/locations/w1", `{"kind":"warehouse","priority":1,"region":"eu"}`},
		{"/v1/locations/w1b", `{"kind":"store","priority":3,"region":"eu"}`},
		{"/v1/receipts", `{"id":"seed-r","sku":"A","location":"w1","quantity":20}`},
		{"/v1/transfers", `{"id":"seed-t","sku":"A","from":"w1","to":"w1b","quantity":1}`},
		{"/v1/reservations", `{"id":"m-commit","lines":[{"sku":"A","quantity":1}]}`},
		{"/v1/reservations", `{"id":"m-release","lines":[{"sku":"A","quantity":1}]}`},
		{"/v1/reservations", `{"id":"m-extend","lines":[{"sku":"A","quantity":1}]}`},
		{"/v1/reservations", `{"id":"m-change","lines":[{"sku":"A","quantity":1}]}`},
		{"/v1/subscriptions/m-sub", `{"from":"beginning"}`},
		{"/v1/subscriptions/m-del", `{"from":"now"}`},
	} {
		method := "POST"
		if strings.HasPrefix(r.path, "/v1/locations/") || strings.HasPrefix(r.path, "/v1/subscriptions/") {
			method = "PUT"
		}
		if res := raw(t, s, method, r.path, r.body, auth("root")...); res.Status >= 300 {
			t.Fatalf("seed %s: %d %s", r.path, res.Status, res.Body)
		}
	}
	// A key without the scope: one whose scopes differ.
	wrong := map[stockd.Scope]string{stockd.ScopeStockRead: "shop", stockd.ScopeStockWrite: "reader", stockd.ScopeReservationsWrite: "warehouse", stockd.ScopeAdmin: "reader"}
	right := map[stockd.Scope]string{stockd.ScopeStockRead: "reader", stockd.ScopeStockWrite: "warehouse", stockd.ScopeReservationsWrite: "shop", stockd.ScopeAdmin: "root", "": "warehouse"}
	setup := func(pattern string) {
		if prepare, ok := matrixPrepare[pattern]; ok {
			prepare(t, s)
		}
		if r, ok := matrixSetup[pattern]; ok {
			if res := raw(t, s, "PUT", r.path, r.body, auth("root")...); res.Status >= 300 {
				t.Fatalf("setup of %s: %d %s", pattern, res.Status, res.Body)
			}
		}
	}

	routes := s.API.Routes()
	for _, pattern := range routes {
		req, ok := matrixRequests[pattern]
		if !ok {
			t.Errorf("route %s has no request in the authorization matrix", pattern)
			continue
		}
		method, _, _ := strings.Cut(pattern, " ")
		var body any
		if req.body != "" {
			body = req.body
		}
		if publicRoutes[pattern] {
			if res := raw(t, s, method, req.path, body); res.Status != 200 {
				t.Errorf("%s without a key = %d, want 200 (public)", pattern, res.Status)
			}
			continue
		}
		scope := scopeOf(pattern)
		before := heads(s)
		res := raw(t, s, method, req.path, body)
		wantProblem(t, res, 401, stockd.CodeUnauthenticated)
		if res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", pattern)
		}
		wantProblem(t, raw(t, s, method, req.path, body, "Authorization", "Bearer stockd_not-a-key"), 401, stockd.CodeUnauthenticated)
		wantProblem(t, raw(t, s, method, req.path, body, "Authorization", "Basic "+tok["root"]), 401, stockd.CodeUnauthenticated)
		if scope != "" {
			res := raw(t, s, method, req.path, body, auth(wrong[scope])...)
			if p := wantProblem(t, res, 403, stockd.CodeForbidden); !strings.Contains(fmt.Sprint(p["detail"]), string(scope)) {
				t.Errorf("%s: 403 does not name the scope %s: %v", pattern, scope, p["detail"])
			}
		}
		if after := heads(s); !sameHeads(before, after) {
			t.Errorf("%s: a refused request changed the log: heads %v -> %v", pattern, before, after)
		}
		setup(pattern)
		if res := raw(t, s, method, req.path, body, auth(right[scope])...); res.Status < 200 || res.Status > 299 {
			t.Errorf("%s with a %s key = %d %s, want success", pattern, scope, res.Status, res.Body)
		}
		if pattern == "POST /v1/commands" {
			// The worker applies it later: wait, so that it does not
			// change the log while a refusal is being checked.
			if _, err := s.Intake.Wait(t.Context(), "m-cmd"); err != nil {
				t.Fatal(err)
			}
		}
		if scope == stockd.ScopeAdmin {
			continue // done with the admin key already (a DELETE twice would not succeed)
		}
		setup(pattern)
		if res := raw(t, s, method, req.path, body, auth("root")...); res.Status < 200 || res.Status > 299 {
			t.Errorf("%s with an admin key = %d %s, want success", pattern, res.Status, res.Body)
		}
	}
	// A batch checks each operation against the key: the reader may
	// read nothing through it, and its receipt is refused alone.
	before := heads(s)
	res := raw(t, s, "POST", "/v1/batch", `{"operations":[{"op":"receive","body":{"id":"b-x","sku":"A","location":"w1","quantity":1}}]}`, auth("reader")...)
	wantStatus(t, res, 200)
	var out api.BatchResponse
	if err := json.Unmarshal(res.Body, &out); err != nil || len(out.Results) != 1 || out.Results[0].Status != 403 || out.Results[0].Problem.Code != stockd.CodeForbidden {
		t.Errorf("batch receipt with a reader key = %s", res.Body)
	}
	if !sameHeads(before, heads(s)) {
		t.Errorf("a refused batch operation changed the log")
	}
	// The actor of every event is the name of the key that caused it.
	page := must(s.Engine.History(ctx, "A", stockd.HistoryQuery{Limit: 1000}))
	actors := map[string]bool{}
	for _, e := range page.Events {
		actors[e.Actor] = true
	}
	for _, want := range []string{"root", "warehouse", "shop"} {
		if !actors[want] {
			t.Errorf("no event of A names %s as its actor: %v", want, actors)
		}
	}
	if actors[""] || actors["anonymous"] {
		t.Errorf("an event of a keyed server has no actor: %v", actors)
	}
}

// scopeOf returns the scope a route's operation declares.
func scopeOf(pattern string) stockd.Scope {
	for _, h := range api.Operations {
		if h.Op().Pattern() == pattern {
			return h.Op().Scope
		}
	}
	return ""
}

// TestRateLimitedKeyGets429 gives a key a burst of 2 and a rate so slow that
// no token comes back during the test: the third request is refused with
// 429 and a Retry-After, and changes nothing; another key is unaffected.
func TestRateLimitedKeyGets429(t *testing.T) {
	tokenSlow, slow, err := newKeyWithRate("slow", 0.001, 2)
	if err != nil {
		t.Fatal(err)
	}
	tokenFree, free, err := newKeyWithRate("free", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{Keys: keyringOf(t, slow, free)})
	for i := range 2 {
		res := raw(t, s, "GET", "/v1/locations", nil, "Authorization", "Bearer "+tokenSlow)
		if res.Status != 200 {
			t.Fatalf("request %d within the burst = %d", i, res.Status)
		}
	}
	before := heads(s)
	res := raw(t, s, "PUT", "/v1/locations/w9", `{"kind":"warehouse","priority":1,"region":"eu"}`, "Authorization", "Bearer "+tokenSlow)
	wantProblem(t, res, 429, stockd.CodeRateLimited)
	if ra := res.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 Retry-After = %q", ra)
	}
	if !sameHeads(before, heads(s)) {
		t.Error("a rate-limited request changed the log")
	}
	if res := raw(t, s, "GET", "/v1/locations", nil, "Authorization", "Bearer "+tokenFree); res.Status != 200 {
		t.Errorf("another key = %d, want 200", res.Status)
	}
}

// newKeyWithRate makes a key with every scope and the rate limit given.
func newKeyWithRate(name string, rate float64, burst int) (string, auth.Key, error) {
	return auth.NewKey(name, []stockd.Scope{stockd.ScopeAdmin}, rate, burst)
}

// keyringOf is the API's authentication over keys.
func keyringOf(t *testing.T, keys ...auth.Key) http.Keys {
	t.Helper()
	r, err := auth.NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return app.Keys(r)
}
