package ui_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/e2e"
)

// ChromeEnv names the variable that points the browser tests at a Chromium
// or Chrome binary; without it they look for chromium on the PATH.
const ChromeEnv = "STOCKD_TEST_CHROME"

// ArtifactsEnv names the directory the browser tests save screenshots in;
// without it they go to the test's temporary directory (logged).
const ArtifactsEnv = "STOCKD_TEST_ARTIFACTS"

// findChrome returns the browser to drive, or "" when there is none.
func findChrome() string {
	if p := os.Getenv(ChromeEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium for a test, and what its pages wrote to
// the console (shown when the test fails).
type browser struct {
	ctx context.Context
	t   *testing.T

	mu      sync.Mutex
	console []string
}

// timeout bounds each wait for the page. It is generous: the machines the
// tests run on may be small and busy, and a wait ends as soon as the page
// shows what it waits for.
const timeout = 60 * time.Second

// newBrowser starts a headless Chromium for the rest of the test, or skips
// the test when none can be found.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findChrome()
	if path == "" {
		t.Skipf("no Chromium found: install Debian's chromium package (.ci/run does) or set %s to a Chrome binary; the browser tests are skipped", ChromeEnv)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()), // a fresh profile: no state from other runs
		// Chromium refuses to run as root with its sandbox, and
		// containers often lack the namespaces it needs; the browser only
		// visits the test's own server.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), // small /dev/shm in containers
		chromedp.WindowSize(1280, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Start the browser now, so that one that cannot start fails here,
	// clearly. (The first action starts it, bound to the context it runs
	// with: that must be ctx itself, not a shorter one.)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// tab opens a new tab of the browser, recording its console.
func tab(t *testing.T, browserCtx context.Context) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	b := &browser{ctx: ctx, t: t}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, fmt.Sprintf("%s: %s", m.Type, m.Text))
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs actions in the tab, failing the test with what the page shows.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// waitFor waits until the JavaScript expression is truthy in the page.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	b.do(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluating "+expr, err)
	}
	return v
}

// fail ends the test with the page's text and console: what a person would
// have seen.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 3000)`))
	b.mu.Lock()
	console := strings.Join(b.console, "\n")
	b.mu.Unlock()
	b.t.Fatalf("%s: %v\n--- page ---\n%s\n--- console ---\n%s", what, err, page, console)
}

// fill sets form fields by name: an input's value is set as a user would
// leave it.
func (b *browser) fill(form string, fields map[string]string) {
	b.t.Helper()
	var actions []chromedp.Action[chromedp.Void]
	for name, v := range fields {
		actions = append(actions, chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`%s [name="%s"]`, form, name)), v))
	}
	b.do("filling "+form, actions...)
}

// screenshot saves a PNG of the whole page as a test artifact.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("taking a screenshot", err)
	}
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		dir = b.t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string { return strconv.Quote(s) }

// textOf is the expression of the trimmed text of the first element sel
// matches ("" when none does).
func textOf(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? "").trim()`, js(sel))
}

// signIn signs in on the login screen with a key.
func (b *browser) signIn(key string) {
	b.t.Helper()
	b.do("typing the key", chromedp.WaitVisible(chromedp.CSS("#login-key")), chromedp.SetValue(chromedp.CSS("#login-key"), key),
		chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
}

// show shows a screen by its hash, as following a link does.
func (b *browser) show(hash, ready string) {
	b.t.Helper()
	b.do("showing "+hash, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %s`, js(hash))))
	b.waitFor("the screen "+hash, fmt.Sprintf(`document.querySelector(%s)`, js(ready)))
}

// TestBrowserAdmin drives the admin UI in a real Chromium against a real
// server with API keys: sign in, receive stock through the form, see the
// SKU's availability, chart and history change live when stock arrives from
// elsewhere (through the change feed, without a reload), travel back in its
// history, see a bad form input refused with the API's problem detail and
// nothing changed, release a customer's reservation, and see a key without
// the scope shown the API's 403.
func TestBrowserAdmin(t *testing.T) {
	browserCtx := newBrowser(t)
	keys, tok := e2e.NewKeys(t, map[string][]stockd.Scope{
		"clerk":  {stockd.ScopeStockRead, stockd.ScopeStockWrite, stockd.ScopeReservationsWrite},
		"reader": {stockd.ScopeStockRead},
	})
	s := e2e.Start(t, e2e.Options{Keys: keys})
	ctx := context.Background()
	c := client.New(s.URL, client.WithKey(tok["clerk"]))
	for _, id := range []string{"w1", "w2"} {
		if _, err := c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: id, Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// A customer's cart, to find and release in the UI.
	if _, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-bean", SKU: "BEAN", Location: "w2", Quantity: 4, Lot: "B1", BestBefore: time.Now().AddDate(0, 0, 3).UTC().Format("2006-01-02")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Reserve(ctx, stockd.Reserve{ID: "cart-1", Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: "BEAN", Quantity: 3}}}); err != nil {
		t.Fatal(err)
	}
	onHand := func(sku string) int64 {
		t.Helper()
		st, err := c.SKU(ctx, sku, stockd.AsOf{})
		if err != nil {
			t.Fatal(err)
		}
		return st.OnHand
	}

	b := tab(t, browserCtx)
	b.do("opening /ui/", chromedp.Navigate(s.URL+"/ui/"))

	t.Run("an unknown key is refused", func(t *testing.T) {
		b.t = t
		b.signIn("stockd_not-a-key")
		b.waitFor("the 401 in the alert", `document.querySelector('#alert .problem[data-status="401"]') && document.querySelector('#login-key')`)
		if visible := eval[bool](b, `document.getElementById('nav').checkVisibility()`); visible {
			t.Error("the screens' links show before signing in")
		}
	})

	t.Run("sign in and receive through the form", func(t *testing.T) {
		b.t = t
		b.signIn(tok["clerk"])
		b.waitFor("the screens and the live feed", `!document.getElementById('nav').hidden && document.getElementById('live-status').dataset.status === 'live'`)
		b.show("#/ops", "#receive-form")
		b.fill("#receive-form", map[string]string{"sku": "APPLE", "location": "w1", "quantity": "5", "lot": "L1", "best_before": "2099-01-31"})
		b.do("submitting", chromedp.Click(chromedp.CSS(`#receive-form button[type=submit]`)))
		b.waitFor("the receipt", textOf("#receive-form .result")+`.startsWith("Received 5 × APPLE at w1")`)
		if got := onHand("APPLE"); got != 5 {
			t.Fatalf("APPLE on hand after the form = %d, want 5", got)
		}
	})

	t.Run("the SKU changes live", func(t *testing.T) {
		b.t = t
		b.show("#/sku/APPLE", "#sku-available")
		b.waitFor("the SKU's state, history and chart", textOf("#sku-available")+` === "5" && document.querySelectorAll('#history-table tr[data-type=StockReceived]').length === 1 && document.querySelector('#chart svg[data-points]')?.dataset.points >= 1`)
		b.waitFor("the lot", textOf("#locations-table tr[data-location=w1]")+`.includes("L1: 5 — best before 2099-01-31")`)
		// A page that reloads loses this mark: the change below must come
		// through the feed into the page as it is.
		b.do("marking the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
		if _, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-elsewhere", SKU: "APPLE", Location: "w1", Quantity: 7}); err != nil {
			t.Fatal(err)
		}
		b.waitFor("availability 12 from the feed", textOf("#sku-available")+` === "12" && window.notReloaded === true`)
		b.waitFor("the history and the chart to grow", `document.querySelectorAll('#history-table tr[data-type=StockReceived]').length === 2 && document.querySelector('#chart svg').dataset.points >= 2 && document.querySelectorAll('#chart circle').length >= 2`)
	})

	t.Run("back in time with the slider", func(t *testing.T) {
		b.t = t
		b.do("moving the slider to the first event", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('travel'); s.value = 0; s.dispatchEvent(new Event('input', {bubbles: true})); })()`))
		b.waitFor("the state after the first receipt", textOf("#travel-available")+` === "5"`)
		b.screenshot("ui-sku.png")
	})

	t.Run("the stock list follows the feed", func(t *testing.T) {
		b.t = t
		b.do("following the Stock link", chromedp.Click(chromedp.CSS(`nav a[href="#/stock"]`)))
		b.waitFor("APPLE and BEAN listed", textOf(`#stock-table tr[data-sku=APPLE] [data-col=available]`)+` === "12" && document.querySelector('#stock-table tr[data-sku=BEAN]')`)
		if _, _, err := c.Adjust(ctx, stockd.AdjustStock{ID: "adj-1", SKU: "APPLE", Location: "w1", Delta: -2, Reason: stockd.ReasonDamaged}); err != nil {
			t.Fatal(err)
		}
		b.waitFor("APPLE at 10", textOf(`#stock-table tr[data-sku=APPLE] [data-col=available]`)+` === "10" && window.notReloaded === true`)
	})

	t.Run("a bad input shows the problem and changes nothing", func(t *testing.T) {
		b.t = t
		b.show("#/ops", "#receive-form")
		b.fill("#receive-form", map[string]string{"sku": "APPLE", "location": "w1", "quantity": "0"})
		b.do("submitting", chromedp.Click(chromedp.CSS(`#receive-form button[type=submit]`)))
		b.waitFor("the problem detail, on the field", `document.querySelector('#alert .problem[data-status="422"]') && `+textOf("#alert .problem-detail")+`.startsWith("quantity must be between 1") && document.querySelector('#receive-form [name=quantity]').getAttribute('aria-invalid') === 'true'`)
		b.fill("#receive-form", map[string]string{"quantity": "3", "location": "nowhere"})
		b.do("submitting", chromedp.Click(chromedp.CSS(`#receive-form button[type=submit]`)))
		b.waitFor("the unknown location", `document.querySelector('#alert .problem[data-code="unknown_location"]') && document.querySelector('#receive-form [name=location]').getAttribute('aria-invalid') === 'true'`)
		b.screenshot("ui-refused.png")
		if got := onHand("APPLE"); got != 10 {
			t.Fatalf("APPLE on hand after refused forms = %d, want 10", got)
		}
	})

	t.Run("release a customer's reservation", func(t *testing.T) {
		b.t = t
		b.show("#/reservations", "#res-customer")
		b.fill("#res-by-customer", map[string]string{"customer": "c-9"})
		b.do("listing", chromedp.Click(chromedp.CSS(`#res-by-customer button[type=submit]`)))
		b.waitFor("cart-1 listed", `document.querySelector('#customer-reservations a[href="#/reservations/cart-1"]')`)
		b.do("opening it", chromedp.Click(chromedp.CSS(`#customer-reservations a[href="#/reservations/cart-1"]`)))
		b.waitFor("the held reservation", textOf("#reservation-status")+` === "held"`)
		b.do("releasing", chromedp.Click(chromedp.CSS("#release")))
		b.waitFor("the confirmation step", textOf("#release")+` === "Confirm release"`)
		b.do("confirming", chromedp.Click(chromedp.CSS("#release")))
		b.waitFor("the released reservation", textOf("#reservation-status")+` === "released"`)
		r, err := c.GetReservation(ctx, "cart-1")
		if err != nil || r.Status != stockd.StatusReleased {
			t.Fatalf("cart-1 after the release = %+v, %v", r, err)
		}
	})

	t.Run("adjust, count, transfer and arrival through their forms", func(t *testing.T) {
		b.t = t
		b.show("#/ops", "#receive-form")
		steps := []struct {
			form   string
			fields map[string]string
			result string
		}{
			{"#receive-form", map[string]string{"sku": "CORN", "location": "w1", "quantity": "10"}, "Received 10 × CORN"},
			{"#adjust-form", map[string]string{"sku": "CORN", "location": "w1", "delta": "-1", "reason": "damaged"}, "Adjusted CORN at w1 by -1 (damaged)"},
			{"#count-form", map[string]string{"sku": "CORN", "location": "w1", "on_hand": "8"}, "Counted CORN at w1: 8 on hand (-1)"},
			{"#transfer-form", map[string]string{"sku": "CORN", "from": "w1", "to": "w2", "quantity": "3"}, "Sent 3 × CORN from w1 to w2"},
			// The transfer's id is filled in by the transfer form.
			{"#arrive-form", nil, "3 × CORN arrived at w2"},
		}
		for _, st := range steps {
			if st.fields != nil {
				b.fill(st.form, st.fields)
			}
			b.do("submitting "+st.form, chromedp.Click(chromedp.CSS(st.form+` button[type=submit]`)))
			b.waitFor(st.result, textOf(st.form+" .result")+`.includes(`+js(st.result)+`)`)
		}
		st, err := c.SKU(ctx, "CORN", stockd.AsOf{})
		if err != nil {
			t.Fatal(err)
		}
		if st.OnHand != 8 || len(st.Locations) != 2 {
			t.Fatalf("CORN after the forms = %+v, want 8 on hand over w1 and w2", st)
		}
		b.do("following the Live feed link", chromedp.Click(chromedp.CSS(`nav a[href="#/feed"]`)))
		b.waitFor("the arrival in the feed", `document.querySelector('#feed-table tr[data-type=TransferArrived][data-sku=CORN]') && document.querySelector('#feed-table tr[data-type=StockCounted][data-sku=CORN]')`)
	})

	t.Run("a key without the scope sees the 403", func(t *testing.T) {
		b.t = t
		b.do("signing out", chromedp.Click(chromedp.CSS("#logout")))
		b.signIn(tok["reader"])
		b.waitFor("the screens", `!document.getElementById('nav').hidden`)
		b.show("#/ops", "#receive-form")
		b.fill("#receive-form", map[string]string{"sku": "APPLE", "location": "w1", "quantity": "4"})
		b.do("submitting", chromedp.Click(chromedp.CSS(`#receive-form button[type=submit]`)))
		b.waitFor("the 403", `document.querySelector('#alert .problem[data-code="forbidden"]') && `+textOf("#alert .problem-detail")+`.includes("stock:write")`)
		if got := onHand("APPLE"); got != 10 {
			t.Fatalf("APPLE on hand after a refused receipt = %d, want 10", got)
		}
	})
}

// TestBrowserOpenServer: on a server without keys (development mode) the UI
// needs no sign-in, says so, and works.
func TestBrowserOpenServer(t *testing.T) {
	browserCtx := newBrowser(t)
	s := e2e.Start(t, e2e.Options{})
	if _, err := s.Client.ConfigureLocation(context.Background(), stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse}); err != nil {
		t.Fatal(err)
	}
	b := tab(t, browserCtx)
	b.do("opening /ui/", chromedp.Navigate(s.URL+"/ui/"))
	b.waitFor("the screens without a sign-in", `!document.getElementById('nav').hidden && !document.querySelector('#login-key') && `+textOf("#who")+`.includes("no keys")`)
	b.show("#/ops", "#receive-form")
	b.fill("#receive-form", map[string]string{"sku": "PEAR", "location": "w1", "quantity": "2"})
	b.do("submitting", chromedp.Click(chromedp.CSS(`#receive-form button[type=submit]`)))
	b.waitFor("the receipt", textOf("#receive-form .result")+`.startsWith("Received 2 × PEAR")`)
	// Narrow, as on a phone: the screens still fit.
	b.do("narrowing", chromedp.EmulateViewport(360, 740))
	b.show("#/sku/PEAR", "#sku-available")
	b.waitFor("PEAR at 2", textOf("#sku-available")+` === "2"`)
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 360 {
		t.Errorf("at 360 px wide the page is %d px wide: it scrolls sideways", w)
	}
	b.screenshot("ui-narrow.png")
}
