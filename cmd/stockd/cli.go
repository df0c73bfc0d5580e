package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	nethttp "net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// This file holds what every client subcommand shares: the global flags
// (--url, --key, --json, and --retries on commands that change
// something), flag parsing that allows flags after arguments, help with an
// example, retrying with the same id, turning errors into exit codes, and
// the output helpers.

// defaultURL is the service a client command talks to unless told otherwise.
const defaultURL = "http://127.0.0.1:8080"

// clientCmd is one client subcommand being run: its flags, the global ones,
// and where it writes.
type clientCmd struct {
	name           string // "receive", "sku history", ...
	fs             *flag.FlagSet
	url            string
	key            string // API key; empty means STOCKD_KEY
	json           bool
	retries        int // how often a command is sent again; see send
	stdout, stderr io.Writer
	usage          func(io.Writer)

	// aliasOf maps each alias of a flag to the flag's name. An alias in
	// shortNames is shown in the help beside its flag (-q, --quantity);
	// any other is hidden, kept for old command lines.
	aliasOf    map[string]string
	shortNames map[string][]string
	// retried is set once send has sent a command again after a failure
	// whose outcome was unknown: a replay may then be that attempt's.
	retried bool
}

// newClientCmd returns a subcommand with the global flags registered. usage is
// the line after "Usage: stockd", about says what the command does, and
// example is one or more example invocations.
func newClientCmd(name, usage, about, example string, stdout, stderr io.Writer) *clientCmd {
	c := &clientCmd{name: name, stdout: stdout, stderr: stderr, aliasOf: map[string]string{}, shortNames: map[string][]string{}}
	c.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	c.fs.SetOutput(stderr)
	url := os.Getenv("STOCKD_URL")
	if url == "" {
		url = defaultURL
	}
	c.fs.StringVar(&c.url, "url", url, "base URL of the stockd service (env STOCKD_URL)")
	// The key's default is not the environment's value, so that --help
	// never prints a secret; client() falls back to STOCKD_KEY.
	c.fs.StringVar(&c.key, "key", "", "API key, sent as a bearer token (env STOCKD_KEY; prefer the variable: a flag shows in the\nprocess list). Keys come from 'stockd keys new'; a server without --keys needs none")
	c.fs.BoolVar(&c.json, "json", false, "print the API's JSON instead of a table")
	// The flag package calls Usage on every parse error and for --help;
	// parse prints the full usage to stdout for --help, and a hint for an
	// error.
	c.fs.Usage = func() {}
	c.usage = func(w io.Writer) {
		fmt.Fprintf(w, "Usage: stockd %s\n\n%s\n\nExample:\n", usage, about)
		for _, line := range strings.Split(strings.TrimSpace(example), "\n") {
			fmt.Fprintf(w, "  %s\n", strings.TrimSpace(line))
		}
		fmt.Fprintln(w, "\nFlags:")
		c.printFlags(w)
		fmt.Fprintln(w, "\nExit status: 0 ok, 1 failure (service unreachable or failing), 2 usage error, 3 refused by the service.")
	}
	return c
}

// parse parses args, allowing flags before, between and after the
// positional arguments, and returns the positional ones. It returns an exit
// code and false when the command should stop: after --help (0) or a bad
// flag (2).
func (c *clientCmd) parse(args []string) ([]string, int, bool) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.usage(c.stdout)
				return nil, exitOK, false
			}
			fmt.Fprintf(c.stderr, "Run 'stockd %s --help' for usage.\n", c.name)
			return nil, exitUsage, false
		}
		if c.retries < 0 {
			return nil, c.usageError("--retries must be 0 or more"), false
		}
		rest := c.fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, true
		}
		if len(rest) == 0 {
			return pos, 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError reports a wrong command line and returns exitUsage.
func (c *clientCmd) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "stockd %s: %s\nRun 'stockd %s --help' for usage.\n", c.name, fmt.Sprintf(format, args...), c.name)
	return exitUsage
}

// alias makes name another spelling of the flag canonical. A one-letter
// alias is shown in the help beside the flag (-q, --quantity); a longer one
// is hidden, kept so that old command lines still work.
func (c *clientCmd) alias(canonical, name string) {
	f := c.fs.Lookup(canonical)
	c.fs.Var(f.Value, name, f.Usage)
	c.aliasOf[name] = canonical
	if len(name) == 1 {
		c.shortNames[canonical] = append(c.shortNames[canonical], name)
	}
}

// printFlags writes the flags' help: each flag once, with its short alias,
// its value's name and its default; hidden aliases are left out. (The
// --key flag has no default to show: see newClientCmd.)
func (c *clientCmd) printFlags(w io.Writer) {
	c.fs.VisitAll(func(f *flag.Flag) {
		if _, ok := c.aliasOf[f.Name]; ok {
			return
		}
		var names []string
		for _, a := range c.shortNames[f.Name] {
			names = append(names, "-"+a)
		}
		names = append(names, "--"+f.Name)
		typ, usage := flag.UnquoteUsage(f)
		if typ == "value" {
			typ = "string"
		}
		line := "  " + strings.Join(names, ", ")
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			if typ == "string" {
				fmt.Fprintf(w, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
		}
		fmt.Fprintln(w)
	})
}

// defaultRetries is how often a command that changes something is sent
// again, with the same id, when its outcome is unknown or the service asks
// for a pause.
const defaultRetries = 3

// maxRetryWait is the longest Retry-After a command waits for; a service
// that asks for a longer pause gets the error reported instead.
const maxRetryWait = 30 * time.Second

// retryFlag registers --retries, for commands that change something and
// carry an id (or are safe to repeat as they are).
func (c *clientCmd) retryFlag() {
	c.fs.IntVar(&c.retries, "retries", defaultRetries, "times the command is sent again, with the same id, after no answer, a 503 or a 429\n(it waits as long as Retry-After asks, up to "+maxRetryWait.String()+"); 0 to send once")
}

// send calls do, which sends one command that is safe to repeat: it carries
// the id (or idempotency key) every attempt reuses, or repeating it changes
// nothing. When the command may or may not have been carried out (no
// answer, 502, 503, 504) or was turned away for now (429, conflict), it is
// sent again, up to --retries times, after the pause the service asked for
// or a growing backoff. what names the command in messages, such as
// "receipt r-1".
func (c *clientCmd) send(ctx context.Context, what string, do func() error) error {
	for attempt := 0; ; attempt++ {
		err := do()
		if err == nil || attempt >= c.retries || !retryable(err) {
			return err
		}
		wait := client.RetryAfter(err)
		if wait > maxRetryWait {
			return err
		}
		if wait <= 0 {
			wait = backoff(attempt)
		}
		if unknownOutcome(err) {
			c.retried = true
		}
		fmt.Fprintf(c.stderr, "stockd %s: %s; sending %s again in %s (retry %d of %d)\n", c.name, errText(err), what, wait.Round(time.Millisecond), attempt+1, c.retries)
		if perr := pause(ctx, wait); perr != nil {
			return err
		}
	}
}

// retryable reports whether a command refused or lost with err may succeed
// when sent again: the service was too busy, or its answer never came (the
// command may have been carried out, and its id makes sending it again
// safe).
func retryable(err error) bool {
	var se *stockd.Error
	if !errors.As(err, &se) {
		return false // a cancelled context, an encoding error
	}
	return se.Code.Retryable() || unknownOutcome(err)
}

// unknownOutcome reports whether a command that failed with err may
// nevertheless have been carried out: no answer came (though the connection
// was made), or a 503 or a gateway (502, 504) answered instead of the
// service.
func unknownOutcome(err error) bool {
	switch client.StatusCode(err) {
	case 0:
		return stockd.ErrorCode(err) == stockd.CodeUnavailable && !errors.Is(err, syscall.ECONNREFUSED)
	case nethttp.StatusBadGateway, nethttp.StatusServiceUnavailable, nethttp.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is the pause before retry attempt+1 when the service named none:
// 200 ms doubling, with up to a quarter more at random so that many clients
// do not come back at once.
func backoff(attempt int) time.Duration {
	d := time.Duration(200<<min(attempt, 6)) * time.Millisecond
	return d + mrand.N(d/4+1)
}

// pause waits for d, or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errText is an error's message for one line of output.
func errText(err error) string {
	var se *stockd.Error
	if errors.As(err, &se) && se.Message != "" {
		return se.Message + " (" + string(se.Code) + ")"
	}
	return err.Error()
}

// useID fills in an id the user did not give with a new one, and says so on
// stderr before anything is sent, so that the command can be repeated with
// the same id whatever happens next. kind is what the id names, such as
// "receipt".
func (c *clientCmd) useID(id *string, prefix, kind string) {
	if *id != "" {
		return
	}
	*id = newID(prefix)
	fmt.Fprintf(c.stderr, "stockd %s: no --id given, so the %s has the new id %s (repeat with --id %s: it is never done twice)\n", c.name, kind, *id, *id)
}

// failSent reports the failure of a command that carries an id. When it may
// nevertheless have been carried out, it says how to find out safely.
func (c *clientCmd) failSent(err error, id string) int {
	code := c.fail(err)
	if unknownOutcome(err) {
		fmt.Fprintf(c.stderr, "The command may or may not have been carried out. Run it again with --id %s: it is never done twice.\n", id)
	}
	return code
}

// client returns a client of the service the flags name.
func (c *clientCmd) client() *client.Client {
	key := c.key
	if key == "" {
		key = os.Getenv("STOCKD_KEY")
	}
	return client.New(c.url, client.WithKey(key), client.WithUserAgent("stockd-cli/"+versionString()))
}

// exitCode is the exit code for err: refusals by the service (the request
// was understood and declined) are exitRejected, everything else is
// exitFailure.
func exitCode(err error) int {
	switch stockd.ErrorCode(err) {
	case "":
		return exitOK
	case stockd.CodeInvalid, stockd.CodeInsufficientStock, stockd.CodeNotHeld, stockd.CodeNotFound,
		stockd.CodeIdempotencyMismatch, stockd.CodeBodyTooLarge, stockd.CodeUnknownLocation,
		stockd.CodeUnauthenticated, stockd.CodeForbidden, stockd.CodeUnsupportedMediaType, stockd.CodeInUse,
		stockd.CodeSalesCap, stockd.CodeCustomerLimit, stockd.CodeCustomerRequired,
		stockd.CodeExpectedReceiptClosed:
		return exitRejected
	}
	return exitFailure
}

// fail reports err and returns its exit code. With --json, an error the
// service answered is also printed to stdout as its problem details, so that
// scripts read one JSON document either way.
func (c *clientCmd) fail(err error) int {
	var se *stockd.Error
	if !errors.As(err, &se) {
		fmt.Fprintf(c.stderr, "stockd %s: %v\n", c.name, err)
		return exitCode(err)
	}
	if c.json {
		if p := client.Problem(err); p != nil {
			c.printJSON(p)
		}
	}
	msg := se.Message
	if msg == "" {
		msg = string(se.Code)
	}
	fmt.Fprintf(c.stderr, "stockd %s: %s (%s)\n", c.name, msg, se.Code)
	if se.Code == stockd.CodeUnavailable && client.StatusCode(err) == 0 {
		fmt.Fprintf(c.stderr, "Is the service running at %s? Set --url or STOCKD_URL.\n", c.url)
	}
	if se.Code == stockd.CodeUnauthenticated {
		fmt.Fprintln(c.stderr, "Give an API key with --key or STOCKD_KEY; 'stockd keys new' makes one.")
	}
	if d := client.RetryAfter(err); d > 0 {
		fmt.Fprintf(c.stderr, "The service asks to retry after %s.\n", d)
	}
	if len(se.Lines) > 0 {
		tw := tabwriter.NewWriter(c.stderr, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SKU\tREQUESTED\tAVAILABLE")
		for _, l := range se.Lines {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", l.SKU, l.Requested, l.Available)
		}
		tw.Flush()
	}
	if se.Status != "" {
		fmt.Fprintf(c.stderr, "The reservation is %s.\n", se.Status)
	}
	return exitCode(err)
}

// printJSON writes v as indented JSON to stdout.
func (c *clientCmd) printJSON(v any) {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// table returns a tabwriter on stdout; call Flush when done.
func (c *clientCmd) table() *tabwriter.Writer {
	return tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
}

// newID returns a random id with a prefix, for commands whose id the user
// did not give. It is printed so that the command can be repeated safely.
func newID(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// replayNote is what a human reads after an answer that repeats an earlier
// command.
func (c *clientCmd) replayNote(created bool) string {
	switch {
	case created:
		return ""
	case c.retried:
		return " (already done, by an attempt whose answer was lost or earlier: done once)"
	}
	return " (already done earlier: nothing changed)"
}

// formatTime shows a time in the local zone without sub-second noise, or "-".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// dash shows an empty string as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// required checks flags that must be set, given as name, value pairs, and
// reports the first one missing as a usage error.
func (c *clientCmd) required(pairs ...string) (int, bool) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return c.usageError("--%s is required", pairs[i]), false
		}
	}
	return 0, true
}

// isSet reports whether the flag name, or one of its aliases, was given on
// the command line.
func (c *clientCmd) isSet(name string) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) {
		if f.Name == name || c.aliasOf[f.Name] == name {
			set = true
		}
	})
	return set
}

// requireSet checks flags that must be given on the command line, whatever
// their value, and reports the first one missing as a usage error.
func (c *clientCmd) requireSet(names ...string) (int, bool) {
	for _, n := range names {
		if !c.isSet(n) {
			return c.usageError("--%s is required", n), false
		}
	}
	return 0, true
}

// parseLine reads a reservation or commit line written SKU=QTY, with an
// optional @LOCATION for reservations (SKU=QTY@w1).
func parseLine(s string, allowLocation bool) (sku string, qty int64, loc string, err error) {
	sku, rest, ok := strings.Cut(s, "=")
	if !ok || sku == "" {
		return "", 0, "", fmt.Errorf("line %q: write SKU=QUANTITY", s)
	}
	if q, l, hasLoc := strings.Cut(rest, "@"); hasLoc {
		if !allowLocation {
			return "", 0, "", fmt.Errorf("line %q: a commit line takes no location", s)
		}
		if l == "" {
			return "", 0, "", fmt.Errorf("line %q: empty location after @", s)
		}
		rest, loc = q, l
	}
	qty, err = strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return "", 0, "", fmt.Errorf("line %q: quantity %q is not a whole number", s, rest)
	}
	return sku, qty, loc, nil
}

// verb is one subcommand of a command group, such as "list" of "stockd
// webhooks list".
type verb struct {
	name string
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// group runs the subcommand named by args[0] among verbs; without one, or
// with an unknown one, it explains the group (usage, about and example as
// newClientCmd takes them) and names the subcommands in their order.
func group(ctx context.Context, name, usage, about, example string, verbs []verb, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	names := make([]string, len(verbs))
	for i, v := range verbs {
		if v.name == sub {
			return v.run(ctx, args, stdout, stderr)
		}
		names[i] = v.name
	}
	c := newClientCmd(name, usage, about, example, stdout, stderr)
	if sub == "-h" || sub == "--help" || sub == "help" {
		_, code, _ := c.parse([]string{"--help"})
		return code
	}
	if sub == "" || strings.HasPrefix(sub, "-") {
		return c.usageError("name a subcommand first: stockd %s %s [flags]", name, strings.Join(names, "|"))
	}
	list := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	if len(names) == 1 {
		list = names[0]
	}
	return c.usageError("unknown subcommand %q: use %s", sub, list)
}
