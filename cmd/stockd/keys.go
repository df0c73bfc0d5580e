package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/auth"
)

// The keys commands make API keys and check keys files. They work offline:
// no service is involved, and a key is never sent anywhere.

func init() {
	register(command{name: "keys", summary: "make API keys and check keys files (new, hash, check)", run: runKeys})
}

// keysStdin is where "keys hash" reads the key; tests replace it.
var keysStdin io.Reader = os.Stdin

const keysAbout = `API keys give access to the service (serve --keys FILE). The server keeps only
each key's SHA-256, in the keys file, one key per line:

  NAME SCOPES SHA256HEX [rate=N] [burst=M]    # comment

Scopes: stock:read, stock:write, reservations:write, admin (everything).
rate= limits the key to N requests per second on average, burst= to M at
once (default: N rounded up).`

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "new":
		return runKeysNew(args, stdout, stderr)
	case "hash":
		return runKeysHash(args, stdout, stderr)
	case "check":
		return runKeysCheck(args, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintf(stdout, "Usage: stockd keys new --name NAME --scope SCOPE[,SCOPE...] [--rate N] [--burst M]\n"+
			"       stockd keys hash < KEYFILE\n       stockd keys check FILE\n\n%s\n\n"+
			"Run 'stockd keys <subcommand> --help' for its flags.\n", keysAbout)
		return exitOK
	case "":
		fmt.Fprintln(stderr, "stockd keys: name a subcommand: stockd keys new|hash|check\nRun 'stockd keys --help' for usage.")
		return exitUsage
	}
	fmt.Fprintf(stderr, "stockd keys: unknown subcommand %q: use new, hash or check\nRun 'stockd keys --help' for usage.\n", sub)
	return exitUsage
}

// keysCmd is one keys subcommand: its flags and its usage.
type keysCmd struct {
	name           string
	fs             *flag.FlagSet
	stdout, stderr io.Writer
	usage          func(io.Writer)
}

func newKeysCmd(name, usage, about, example string, stdout, stderr io.Writer) *keysCmd {
	c := &keysCmd{name: name, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() {}
	c.usage = func(w io.Writer) {
		fmt.Fprintf(w, "Usage: stockd %s\n\n%s\n\nExample:\n  %s\n", usage, about, example)
		hasFlags := false
		c.fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "\nFlags:")
			c.fs.SetOutput(w)
			c.fs.PrintDefaults()
			c.fs.SetOutput(c.stderr)
		}
	}
	return c
}

// parse parses args and returns the positional arguments, or an exit code
// and false: after --help (0) or a bad flag (2).
func (c *keysCmd) parse(args []string) ([]string, int, bool) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.stdout)
			return nil, exitOK, false
		}
		fmt.Fprintf(c.stderr, "Run 'stockd %s --help' for usage.\n", c.name)
		return nil, exitUsage, false
	}
	return c.fs.Args(), 0, true
}

func (c *keysCmd) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "stockd %s: %s\nRun 'stockd %s --help' for usage.\n", c.name, fmt.Sprintf(format, args...), c.name)
	return exitUsage
}

// scopeFlag collects --scope, which may be repeated and may list several
// scopes joined by commas.
type scopeFlag []stockd.Scope

func (s *scopeFlag) String() string {
	parts := make([]string, len(*s))
	for i, sc := range *s {
		parts[i] = string(sc)
	}
	return strings.Join(parts, ",")
}

func (s *scopeFlag) Set(v string) error {
	scopes, err := auth.ParseScopes(v)
	if err != nil {
		return err
	}
	*s = append(*s, scopes...)
	return nil
}

func runKeysNew(args []string, stdout, stderr io.Writer) int {
	c := newKeysCmd("keys new", "keys new --name NAME --scope SCOPE[,SCOPE...] [--scope SCOPE] [--rate N] [--burst M] [--json]",
		"Makes a new random API key and prints it with its line for the keys file. The key\n"+
			"is shown only this once: the server keeps only its hash. Nothing is sent anywhere.\n\n"+keysAbout,
		"stockd keys new --name shop --scope stock:read --scope reservations:write --rate 200", stdout, stderr)
	var (
		name   string
		scopes scopeFlag
		rate   float64
		burst  int
		asJSON bool
	)
	c.fs.StringVar(&name, "name", "", "the key's name, recorded as the actor of its events: 1-64 of a-z 0-9 _ . - (required)")
	c.fs.Var(&scopes, "scope", "scopes, joined by commas or repeated: stock:read, stock:write, reservations:write, admin (required)")
	c.fs.Float64Var(&rate, "rate", 0, "rate limit in requests per second, like 5 or 0.5 (0: not limited)")
	c.fs.IntVar(&burst, "burst", 0, "requests allowed at once after a pause (0: the rate rounded up); needs --rate")
	c.fs.BoolVar(&asJSON, "json", false, `print {"name","key","line"} as JSON`)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("unexpected argument %q: give the name with --name", pos[0])
	}
	if name == "" {
		return c.usageError("--name is required")
	}
	if err := auth.CheckName(name); err != nil {
		return c.usageError("--name: %v", err)
	}
	if len(scopes) == 0 {
		return c.usageError("--scope is required: one or more of stock:read, stock:write, reservations:write, admin")
	}
	if burst != 0 && rate == 0 {
		return c.usageError("--burst needs --rate: a key without a rate is not limited")
	}
	token, key, err := auth.NewKey(name, scopes, rate, burst)
	if err != nil {
		return c.usageError("%v", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Name string `json:"name"`
			Key  string `json:"key"`
			Line string `json:"line"`
		}{key.Name, token, key.Line()})
		return exitOK
	}
	fmt.Fprintf(stdout, "API key %q, shown only this once (give it to its user, who sends it as\n"+
		"Authorization: Bearer <key>, and keep it secret):\n\n  %s\n\n"+
		"Its line for the keys file (serve --keys FILE); the server keeps only the hash:\n\n  %s\n",
		key.Name, token, key.Line())
	return exitOK
}

func runKeysHash(args []string, stdout, stderr io.Writer) int {
	c := newKeysCmd("keys hash", "keys hash < KEYFILE",
		"Reads a key from standard input and prints its SHA-256 as the keys file holds it,\n"+
			"for a key kept elsewhere (a secret store) or when rotating keys. The key is read\n"+
			"from standard input, not an argument, so that it stays out of shell history.",
		"stockd keys hash < shop-key.txt", stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError("the key is read from standard input, not from an argument (which would stay in shell history)")
	}
	if f, ok := keysStdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(stderr, "Paste the key and press Enter:")
		}
	}
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(keysStdin, 64<<10))
	for sc.Scan() {
		if l := strings.Trim(sc.Text(), " \t"); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "stockd keys hash: reading standard input: %v\n", err)
		return exitFailure
	}
	switch {
	case len(lines) == 0:
		return c.usageError("no key on standard input")
	case len(lines) > 1:
		return c.usageError("%d lines on standard input: give one key", len(lines))
	}
	token := lines[0]
	if _, ok := auth.BearerToken("Bearer " + token); !ok || len(token) > auth.MaxTokenLength {
		return c.usageError("this key cannot be sent as \"Authorization: Bearer <key>\": use stockd keys new for a new one")
	}
	fmt.Fprintln(stdout, auth.HashHex(token))
	return exitOK
}

func runKeysCheck(args []string, stdout, stderr io.Writer) int {
	c := newKeysCmd("keys check", "keys check FILE",
		"Checks a keys file as serve --keys would read it and lists its keys; every bad\nline is reported with its number.",
		"stockd keys check /etc/stockd/keys", stdout, stderr)
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one keys file")
	}
	keys, err := auth.LoadKeys(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "stockd keys check: %v\n", err)
		return exitFailure
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPES\tRATE/S\tBURST")
	for _, k := range keys {
		scopes := scopeFlag(k.Scopes)
		r, b := "-", "-"
		if k.Rate > 0 {
			r, b = strconv.FormatFloat(k.Rate, 'f', -1, 64), strconv.Itoa(k.Burst)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, scopes.String(), r, b)
	}
	tw.Flush()
	return exitOK
}
