package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// serve answers one request of the UI's handler.
func serve(t *testing.T, method, path string, header ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w.Result()
}

// TestIndexServed: /ui/ is the page, typed as HTML, revalidated on every
// load, and loading only its own module script and stylesheet.
func TestIndexServed(t *testing.T) {
	res := serve(t, "GET", "/ui/")
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET /ui/ = %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", cc)
	}
	for _, want := range []string{`<script type="module" src="js/app.js">`, `href="app.css"`, `role="alert"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want scripts and calls limited to the origin", csp)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options: nosniff")
	}
}

// TestAssetsTypedAndCached: every asset has the type a browser needs to use
// it (a module script served as anything else does not run), and an ETag a
// revalidation answers with 304.
func TestAssetsTypedAndCached(t *testing.T) {
	for path, want := range map[string]string{
		"/ui/app.css":           "text/css; charset=utf-8",
		"/ui/js/app.js":         "text/javascript; charset=utf-8",
		"/ui/js/screens/sku.js": "text/javascript; charset=utf-8",
		"/ui/favicon.svg":       "image/svg+xml",
		"/ui/index.html":        "text/html; charset=utf-8",
	} {
		res := serve(t, "GET", path)
		if res.StatusCode != 200 {
			t.Errorf("GET %s = %d", path, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != want {
			t.Errorf("GET %s: Content-Type %q, want %q", path, ct, want)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", path, cc)
		}
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", path)
			continue
		}
		if again := serve(t, "GET", path, "If-None-Match", etag); again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag = %d, want 304", path, again.StatusCode)
		}
	}
	if res := serve(t, "HEAD", "/ui/js/app.js"); res.StatusCode != 200 || res.Header.Get("Content-Type") == "" {
		t.Errorf("HEAD = %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/ui/nope.js", "/ui/js/", "/ui/../go.mod", "/other"} {
		if res := serve(t, "GET", path); res.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", path, res.StatusCode)
		}
	}
	if res := serve(t, "POST", "/ui/"); res.StatusCode != 405 {
		t.Errorf("POST /ui/ = %d, want 405", res.StatusCode)
	}
}

// absoluteURL finds absolute and protocol-relative URLs in source text.
var absoluteURL = regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s'"` + "`" + `)]*`)

// xmlNamespaces are URIs the code names but never fetches: createElementNS
// needs SVG's namespace.
var xmlNamespaces = map[string]bool{"http://www.w3.org/2000/svg": true}

// TestOnlySameOriginURLs: the embedded files call and load nothing from
// another host, so the UI works without a CDN and an API key typed into it
// goes to this server only; and the scripts call only the /v1 API.
func TestOnlySameOriginURLs(t *testing.T) {
	n := 0
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, name)
		if err != nil {
			return err
		}
		n++
		text := stripComments(string(b), name)
		for _, u := range absoluteURL.FindAllString(text, -1) {
			if !xmlNamespaces[u] {
				t.Errorf("%s references another host: %s", name, u)
			}
		}
		if strings.HasSuffix(name, ".js") {
			// Requests leave through fetch in api.js (which refuses any
			// path outside /v1/) and the feed's stream in feed.js, and
			// nowhere else.
			if regexp.MustCompile(`\b(XMLHttpRequest|WebSocket|EventSource|sendBeacon|importScripts)\b`).MatchString(text) {
				t.Errorf("%s makes requests other than fetch", name)
			}
			if strings.Contains(text, "fetch(") && !strings.HasSuffix(name, "/api.js") && !strings.HasSuffix(name, "/feed.js") {
				t.Errorf("%s calls fetch: calls go through api.js", name)
			}
			for _, m := range regexp.MustCompile(`fetch\(\s*(['"`+"`"+`]?)([^,)]*)`).FindAllStringSubmatch(text, -1) {
				if m[1] != "" && !strings.HasPrefix(m[2], "/v1/") {
					t.Errorf("%s fetches %s, outside /v1/", name, m[2])
				}
			}
			if strings.HasSuffix(name, "/api.js") && !strings.Contains(text, "if (!path.startsWith('/v1/')) throw") {
				t.Errorf("%s lost its guard: every call must go to /v1/", name)
			}
			if regexp.MustCompile(`\b(eval|new Function|innerHTML|outerHTML|insertAdjacentHTML|document\.write)\b`).MatchString(text) {
				t.Errorf("%s parses text as code or markup", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("only %d embedded files", n)
	}
}

// stripComments drops // and /* */ comments from JavaScript and CSS, which
// may mention URLs in prose; strings are left alone.
func stripComments(s, name string) string {
	if !strings.HasSuffix(name, ".js") && !strings.HasSuffix(name, ".css") {
		return s
	}
	s = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(s, "")
	return regexp.MustCompile(`(?m)^\s*//.*$`).ReplaceAllString(s, "")
}
