package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// This file holds what every client subcommand shares: the global flags
// (--url, --json, --api-key), flag parsing that allows flags after
// arguments, help with an example, turning errors into exit codes, and the
// output helpers.

// defaultURL is the service a client command talks to unless told otherwise.
const defaultURL = "http://127.0.0.1:8080"

// clientCmd is one client subcommand being run: its flags, the global ones,
// and where it writes.
type clientCmd struct {
	name           string // "receive", "sku history", ...
	fs             *flag.FlagSet
	url, key       string
	json           bool
	stdout, stderr io.Writer
	usage          func(io.Writer)
}

// newClientCmd returns a subcommand with the global flags registered. usage is
// the line after "Usage: stockd", about says what the command does, and
// example is one or more example invocations.
func newClientCmd(name, usage, about, example string, stdout, stderr io.Writer) *clientCmd {
	c := &clientCmd{name: name, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	c.fs.SetOutput(stderr)
	url := os.Getenv("STOCKD_URL")
	if url == "" {
		url = defaultURL
	}
	c.fs.StringVar(&c.url, "url", url, "base URL of the stockd service (env STOCKD_URL)")
	c.fs.BoolVar(&c.json, "json", false, "print the API's JSON instead of a table")
	c.fs.StringVar(&c.key, "api-key", os.Getenv("STOCKD_API_KEY"), "API key (from stockd keys new); its name is recorded on every event (env STOCKD_API_KEY)")
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
		c.fs.SetOutput(w)
		c.fs.PrintDefaults()
		c.fs.SetOutput(c.stderr)
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

// client returns a client of the service the flags name.
func (c *clientCmd) client() *client.Client {
	return client.New(c.url, client.WithKey(c.key), client.WithUserAgent("stockd-cli"))
}

// exitCode is the exit code for err: refusals by the service (the request
// was understood and declined) are exitRejected, everything else is
// exitFailure.
func exitCode(err error) int {
	switch stockd.ErrorCode(err) {
	case "":
		return exitOK
	case stockd.CodeInvalid, stockd.CodeInsufficientStock, stockd.CodeNotHeld, stockd.CodeNotFound,
		stockd.CodeIdempotencyMismatch, stockd.CodeBodyTooLarge, stockd.CodeUnknownLocation, stockd.CodeUnsupportedMediaType,
		stockd.CodeUnauthenticated, stockd.CodeForbidden:
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
func replayNote(created bool) string {
	if created {
		return ""
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

// requireSet checks flags that must be given on the command line, whatever
// their value, and reports the first one missing as a usage error.
func (c *clientCmd) requireSet(names ...string) (int, bool) {
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range names {
		if !set[n] {
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
