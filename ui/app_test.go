package ui_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/e2e"
)

// TestServedBesideTheAPI: the App serves the UI at /ui/ without a key while
// the API still wants one, sends /ui to /ui/, and leaves the UI out with
// NoUI.
func TestServedBesideTheAPI(t *testing.T) {
	keys, _ := e2e.NewKeys(t, map[string][]stockd.Scope{"reader": {stockd.ScopeStockRead}})
	s := e2e.Start(t, e2e.Options{Keys: keys})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url string) (*http.Response, string) {
		t.Helper()
		res, err := noRedirect.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	if res, body := get(s.URL + "/ui/"); res.StatusCode != 200 || !strings.Contains(body, "js/app.js") {
		t.Errorf("GET /ui/ without a key = %d, want the page", res.StatusCode)
	}
	if res, _ := get(s.URL + "/ui"); res.StatusCode/100 != 3 || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui = %d to %q, want a redirect to /ui/", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := get(s.URL + "/v1/skus"); res.StatusCode != 401 {
		t.Errorf("GET /v1/skus without a key = %d, want 401: the UI must not open the API", res.StatusCode)
	}

	off := e2e.Start(t, e2e.Options{App: func(c *app.Config) { c.NoUI = true }})
	if res, body := get(off.URL + "/ui/"); res.StatusCode != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("GET /ui/ with NoUI = %d %s, want the API's 404", res.StatusCode, body)
	}
}
