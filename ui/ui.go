// Package ui is stockd's admin web UI: plain HTML, CSS and JavaScript
// modules embedded in the binary and served at /ui/ beside the API. The
// pages hold no data and need no key; the data comes from the public /v1 API,
// called from the browser with the API key the user signs in with, so the UI
// can do exactly what that key may do and nothing more.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the UI is served under.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// contentTypes are the types of the files the UI is made of. They are fixed
// here rather than looked up in the system's MIME tables, which differ
// between machines: a module script served with another type does not run.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".txt":  "text/plain; charset=utf-8",
}

// contentSecurityPolicy lets the pages load and call only their own origin:
// no inline script, no other host, no framing. It is the UI's guarantee that
// an API key typed into it goes nowhere else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the UI's files at /ui/ (index.html for /ui/ itself) to GET
// and HEAD. Every answer carries a strong ETag and "Cache-Control: no-cache":
// a browser revalidates each time (a cheap 304), so a new binary's UI is seen
// at once without fingerprinted file names or a build step.
func Handler() http.Handler {
	files := map[string]file{}
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		files[name] = file{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // reading an embed.FS does not fail
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		// ServeContent answers If-None-Match with 304, HEAD and ranges.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}
