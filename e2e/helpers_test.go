package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	nethttp "net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// ctx is the context of test requests.
var ctx = context.Background()

// must returns v, failing the test through a panic if err is not nil.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// must3 is must for the (value, created, error) results of commands.
func must3[T any](v T, _ bool, err error) T { return must(v, err) }

func wantCode(t testing.TB, err error, code stockd.Code) *stockd.Error {
	t.Helper()
	if got := stockd.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	e, _ := err.(*stockd.Error)
	return e
}

// response is a raw HTTP answer.
type response struct {
	Status int
	Header nethttp.Header
	Body   []byte
}

// JSON decodes the body into a generic value, failing the test if it is not
// JSON.
func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// raw sends a request with a raw body (a string, []byte, or a value to
// encode) and returns the answer.
func raw(t testing.TB, s *Server, method, path string, body any, header ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		rd = bytes.NewReader(must(json.Marshal(b)))
	}
	req := must(nethttp.NewRequestWithContext(ctx, method, s.URL+path, rd))
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// wantStatus fails the test unless r has the status.
func wantStatus(t testing.TB, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); status < 400 && !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
}

// wantProblem checks that r is problem details with the status and code and
// every field the contract promises, and returns the decoded body.
func wantProblem(t testing.TB, r response, status int, code stockd.Code) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.Body)
	}
	m := r.JSON(t)
	for _, f := range []string{"type", "title", "detail", "code"} {
		if v, ok := m[f].(string); !ok || v == "" {
			t.Fatalf("problem field %q = %#v, want a non-empty string; body %s", f, m[f], r.Body)
		}
	}
	if got, _ := m["status"].(float64); int(got) != status {
		t.Fatalf("problem status = %v, want %d", m["status"], status)
	}
	if got := m["code"]; got != string(code) {
		t.Fatalf("problem code = %v, want %q; body %s", got, code, r.Body)
	}
	return m
}

// noNullLists fails the test if any value in v, at any depth, is a JSON null
// where a list is expected: a key named in lists whose value is null.
func noNullLists(t testing.TB, body []byte, lists ...string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	want := map[string]bool{}
	for _, l := range lists {
		want[l] = true
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if want[k] {
					if _, ok := c.([]any); !ok {
						t.Errorf("%s.%s = %#v, want an array", path, k, c)
					}
				}
				walk(path+"."+k, c)
			}
		case []any:
			for _, c := range x {
				walk(path+"[]", c)
			}
		}
	}
	walk("$", v)
}

// hasKeys fails the test unless m has every key.
func hasKeys(t testing.TB, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s has no %q: %v", what, k, m)
		}
	}
}

// eventually polls fn until it returns true or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// equalJSON reports whether two JSON documents are the same value.
func equalJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("not JSON: %s", a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return reflect.DeepEqual(x, y)
}

// stockOf returns a SKU's state through the client.
func stockOf(t testing.TB, c *client.Client, sku string) stockd.SKUState {
	t.Helper()
	s, err := c.SKU(ctx, sku, stockd.AsOf{})
	if err != nil {
		t.Fatalf("GET sku %s: %v", sku, err)
	}
	return s
}

// receive books a receipt through the client.
func receive(t testing.TB, c *client.Client, id, sku, loc string, qty int64) stockd.Receipt {
	t.Helper()
	r, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: id, SKU: sku, Location: loc, Quantity: qty})
	if err != nil {
		t.Fatalf("receive %s: %v", id, err)
	}
	return r
}

// backOff reports whether err refuses a request as overloaded and, if so,
// waits the pause the server asked for, as a well-behaved client does before
// it retries with the same id: a slow machine (the race detector, a loaded
// CI runner) may refuse some requests of a burst.
func backOff(err error) bool {
	if stockd.ErrorCode(err) != stockd.CodeOverloaded {
		return false
	}
	time.Sleep(max(client.RetryAfter(err), 10*time.Millisecond))
	return true
}
