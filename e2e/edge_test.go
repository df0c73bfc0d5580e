package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/engine"
)

// TestSKUListingPagesInLexicalOrder lists SKUs a page at a time, with and
// without a prefix: every SKU once, in order, and next is "" on the last
// page.
func TestSKUListingPagesInLexicalOrder(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	must(c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	want := []string{"apple", "apricot", "banana", "blueberry", "cherry", "date", "elder", "fig", "grape"}
	for i, sku := range want {
		receive(t, c, fmt.Sprint("r-", i), sku, "w1", int64(i+1))
	}
	eventually(t, 5*time.Second, "the read model lists every SKU", func() bool {
		p, err := c.SKUs(ctx, stockd.SKUListQuery{Limit: 1000})
		return err == nil && len(p.Items) == len(want)
	})
	var got []string
	q := stockd.SKUListQuery{Limit: 4}
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("listing does not end")
		}
		p := must(c.SKUs(ctx, q))
		for _, it := range p.Items {
			got = append(got, it.SKU)
		}
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("pages = %v, want %v", got, want)
	}
	ap := must(c.SKUs(ctx, stockd.SKUListQuery{Prefix: "ap"}))
	if len(ap.Items) != 2 || ap.Items[0].SKU != "apple" || ap.Items[1].OnHand != 2 || ap.Items[1].Available != 2 || ap.Next != "" {
		t.Errorf("prefix ap = %+v", ap)
	}
	res := raw(t, s, "GET", "/v1/skus?limit=2", nil)
	wantStatus(t, res, 200)
	hasKeys(t, "SKU page", res.JSON(t), "items", "next", "as_of", "lag")
	wantProblem(t, raw(t, s, "GET", "/v1/skus?limit=5000", nil), 422, stockd.CodeInvalid)
}

// TestCustomerReservationsPageWithCursor lists more reservations than one
// page holds: following next gives each exactly once, newest first, where
// the list used to stop at the limit without a word.
func TestCustomerReservationsPageWithCursor(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client
	must(c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	receive(t, c, "r", "A", "w1", 100)
	for i := range 7 {
		must3(c.Reserve(ctx, stockd.Reserve{ID: fmt.Sprint("cart-", i), Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}))
	}
	eventually(t, 5*time.Second, "the read model has every cart", func() bool {
		p, err := c.CustomerReservations(ctx, stockd.CustomerQuery{Customer: "c-9", Limit: 100})
		return err == nil && len(p.Items) == 7
	})
	seen := map[string]bool{}
	var order []string
	q := stockd.CustomerQuery{Customer: "c-9", Limit: 3}
	for pages := 0; pages < 10; pages++ {
		p := must(c.CustomerReservations(ctx, q))
		for _, r := range p.Items {
			if seen[r.ID] {
				t.Errorf("%s listed twice", r.ID)
			}
			seen[r.ID] = true
			order = append(order, r.ID)
		}
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if len(seen) != 7 || order[0] != "cart-6" || order[6] != "cart-0" {
		t.Errorf("pages gave %v, want cart-6 … cart-0", order)
	}
	wantProblem(t, raw(t, s, "GET", "/v1/reservations?customer=c-9&after=garbage", nil), 422, stockd.CodeInvalid)
}

// TestBodiesMustBeJSON refuses the content types a browser sends across
// origins without a preflight, so no page elsewhere can post to the API;
// nothing changes.
func TestBodiesMustBeJSON(t *testing.T) {
	s := Start(t, Options{})
	body := `{"kind":"warehouse","priority":1,"region":"eu"}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain;charset=UTF-8"} {
		wantProblem(t, raw(t, s, "PUT", "/v1/locations/w1", body, "Content-Type", ct), 415, stockd.CodeUnsupportedMediaType)
	}
	if _, err := s.Client.Location(ctx, "w1"); !stockd.IsCode(err, stockd.CodeNotFound) {
		t.Errorf("a refused body configured the location: %v", err)
	}
	wantStatus(t, raw(t, s, "PUT", "/v1/locations/w1", body, "Content-Type", "application/json; charset=utf-8"), 200)
	wantStatus(t, raw(t, s, "PUT", "/v1/locations/w2", body, "Content-Type", "application/merge-patch+json"), 200)
}

// TestDuplicateJSONKeysRefused: encoding/json lets the last of two equal keys
// win; the API refuses the body instead, naming the field.
func TestDuplicateJSONKeysRefused(t *testing.T) {
	s := Start(t, Options{})
	p := wantProblem(t, raw(t, s, "PUT", "/v1/locations/w1", `{"kind":"warehouse","priority":1,"priority":500,"region":"eu"}`), 400, stockd.CodeInvalid)
	if !strings.Contains(fmt.Sprint(p["detail"]), `"priority"`) {
		t.Errorf("detail does not name the field: %v", p["detail"])
	}
	wantProblem(t, raw(t, s, "POST", "/v1/reservations", `{"id":"c","lines":[{"sku":"A","quantity":1,"quantity":2}]}`), 400, stockd.CodeInvalid)
	wantProblem(t, raw(t, s, "POST", "/v1/batch", `{"operations":[],"operations":[]}`), 400, stockd.CodeInvalid)
	// The same key in two different objects is fine.
	must(s.Client.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	receive(t, s.Client, "r", "A", "w1", 5)
	receive(t, s.Client, "r2", "B", "w1", 5)
	wantStatus(t, raw(t, s, "POST", "/v1/reservations", `{"id":"c","lines":[{"sku":"A","quantity":1},{"sku":"B","quantity":1}]}`), 201)
}

// TestAllowedHostsGuardAgainstDNSRebinding: with --allowed-hosts, a request
// naming another Host (what a browser sends after DNS rebinding) gets 421.
func TestAllowedHostsGuardAgainstDNSRebinding(t *testing.T) {
	s := Start(t, Options{App: func(c *app.Config) { c.HTTP.AllowedHosts = []string{"127.0.0.1", "stock.internal"} }})
	req := must(nethttp.NewRequest("GET", s.URL+"/v1/locations", nil))
	req.Host = "evil.example"
	res := must(nethttp.DefaultClient.Do(req))
	res.Body.Close()
	if res.StatusCode != 421 {
		t.Errorf("Host evil.example = %d, want 421", res.StatusCode)
	}
	req.Host = "stock.internal:8080"
	res = must(nethttp.DefaultClient.Do(req))
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("an allowed host = %d, want 200", res.StatusCode)
	}
}

// TestCORSOffUnlessOriginsNamed: without --cors-origin no answer carries
// CORS headers (browsers refuse cross-origin reads); with it, a named origin
// gets its preflight answered and others get nothing.
func TestCORSOffUnlessOriginsNamed(t *testing.T) {
	off := Start(t, Options{})
	res := raw(t, off, "OPTIONS", "/v1/locations", nil, "Origin", "https://admin.example", "Access-Control-Request-Method", "GET")
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS answered without --cors-origin: %v", res.Header)
	}
	on := Start(t, Options{App: func(c *app.Config) { c.HTTP.CORSOrigins = []string{"https://admin.example"} }})
	res = raw(t, on, "OPTIONS", "/v1/receipts", nil, "Origin", "https://admin.example", "Access-Control-Request-Method", "POST")
	if res.Status != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://admin.example" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight = %d %v", res.Status, res.Header)
	}
	res = raw(t, on, "GET", "/v1/locations", nil, "Origin", "https://evil.example")
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("an origin not named got CORS headers: %v", res.Header)
	}
}

// TestSlowBodyIsCut sends headers, then a body a byte at a time: the server
// closes the connection once its read timeout passes, instead of holding it
// for as long as the client likes.
func TestSlowBodyIsCut(t *testing.T) {
	s := Start(t, Options{App: func(c *app.Config) { c.ReadTimeout = 300 * time.Millisecond }})
	conn := must(net.Dial("tcp", s.Addr()))
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/receipts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, conn) // returns when the server closes
		close(closed)
	}()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case <-closed:
			return
		case <-deadline:
			t.Fatal("the server still holds a connection sending a byte every 50 ms after 20 s")
		case <-time.After(50 * time.Millisecond):
			conn.Write([]byte(" "))
		}
	}
}

// TestSlowHeadersAreCut: a client that never finishes its headers is cut
// after the header timeout.
func TestSlowHeadersAreCut(t *testing.T) {
	s := Start(t, Options{App: func(c *app.Config) { c.ReadHeaderTimeout = 200 * time.Millisecond }})
	conn := must(net.Dial("tcp", s.Addr()))
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("the server did not close a connection whose headers never ended: %v", err)
	}
}

// TestConnectionCapAnswers503AtOnce: with every connection slot taken, a new
// client is answered 503 with Retry-After at once rather than left waiting
// in the kernel's queue.
func TestConnectionCapAnswers503AtOnce(t *testing.T) {
	s := Start(t, Options{App: func(c *app.Config) { c.MaxConns = 2 }})
	for range 2 {
		c := must(net.Dial("tcp", s.Addr()))
		defer c.Close()
		// A complete request keeps the connection alive and accepted.
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		res := must(nethttp.ReadResponse(bufio.NewReader(c), nil))
		res.Body.Close()
	}
	third := must(net.Dial("tcp", s.Addr()))
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := nethttp.ReadResponse(bufio.NewReader(third), nil)
	if err != nil {
		t.Fatalf("no answer to a connection over the cap: %v", err)
	}
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Errorf("over the cap = %d %v, want 503 with Retry-After", res.StatusCode, res.Header)
	}
}

// TestConfigThatCannotWorkIsRefused: Open refuses a default ttl above the
// longest allowed and keyless serving on an address others can reach; a
// taken port fails before the data directory is created.
func TestConfigThatCannotWorkIsRefused(t *testing.T) {
	limits := stockd.DefaultLimits
	limits.DefaultTTL, limits.MaxTTL = time.Hour, time.Minute
	cfg := app.Config{Addr: "127.0.0.1:0", Data: t.TempDir(), Engine: engine.Options{Limits: limits}}
	if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "default ttl") {
		t.Errorf("default ttl above max ttl: %v", err)
	}
	cfg = app.Config{Addr: "0.0.0.0:0", Data: t.TempDir()}
	if _, err := app.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "--keys") {
		t.Errorf("keyless on 0.0.0.0: %v", err)
	}
	cfg.Insecure = true
	cfg.Engine = engine.Options{Limits: stockd.DefaultLimits}
	if err := cfg.Check(); err != nil {
		t.Errorf("--insecure: %v", err)
	}
	taken := must(net.Listen("tcp", "127.0.0.1:0"))
	defer taken.Close()
	dir := t.TempDir() + "/data"
	if _, err := app.Open(ctx, app.Config{Addr: taken.Addr().String(), Data: dir}); err == nil {
		t.Fatal("a taken port was accepted")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("a taken port failed only after the data directory %s was created", dir)
	}
}

// TestTLSServesOnlyModernVersions starts the App with a certificate: it
// answers over HTTPS and refuses a client that offers nothing newer than
// TLS 1.1.
func TestTLSServesOnlyModernVersions(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s := Start(t, Options{App: func(c *app.Config) { c.TLSCert, c.TLSKey = certFile, keyFile }})
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL = %s, want https", s.URL)
	}
	modern := &nethttp.Client{Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := modern.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil || res.TLS.Version < tls.VersionTLS12 {
		t.Errorf("HTTPS answer %d over %v", res.StatusCode, res.TLS)
	}
	old := &nethttp.Client{Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if res, err := old.Get(s.URL + "/healthz"); err == nil {
		res.Body.Close()
		t.Error("a TLS 1.1 client was served")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stockd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key))
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(key))}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(must(x509.ParseCertificate(der)))
	return certFile, keyFile, pool
}
