package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/auth"
)

// printedKeyAndLine returns the two indented lines of "keys new": the key and
// its line for the keys file.
func printedKeyAndLine(t *testing.T, out string) (string, string) {
	t.Helper()
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  ") {
			got = append(got, strings.TrimSpace(l))
		}
	}
	if len(got) != 2 {
		t.Fatalf("want the key and its line, indented, in:\n%s", out)
	}
	return got[0], got[1]
}

func TestKeysNewPrintsAKeyThatAuthenticatesAgainstItsLineWithItsScopes(t *testing.T) {
	code, out, errOut := run(t, nil, "keys", "new", "--name", "shop", "--scope", "stock:read,reservations:write", "--scope", "stock:write", "--rate", "2.5")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "shown only this once") || !strings.Contains(out, "keys file") {
		t.Errorf("the output does not say the key is shown once and the line goes into the keys file:\n%s", out)
	}
	token, line := printedKeyAndLine(t, out)
	keys, err := auth.ParseKeys(strings.NewReader(line + "\n"))
	if err != nil {
		t.Fatalf("the printed line %q does not parse: %v", line, err)
	}
	ring, err := auth.NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ring.Authenticate(token)
	if err != nil {
		t.Fatalf("the printed key does not authenticate: %v", err)
	}
	want := []stockd.Scope{stockd.ScopeStockRead, stockd.ScopeReservationsWrite, stockd.ScopeStockWrite}
	if k.Name != "shop" || !slices.Equal(k.Scopes, want) || k.Rate != 2.5 || k.Burst != 3 {
		t.Errorf("key %+v, want shop with %v at 2.5/s, burst 3", k, want)
	}
	if auth.Authorize(k, stockd.ScopeAdmin) == nil {
		t.Error("the key may do more than its scopes")
	}
	if strings.Contains(line, token) {
		t.Error("the keys file line contains the key")
	}

	// keys hash gives the hash in the line, from the key on stdin.
	keysStdin = strings.NewReader(token + "\n")
	defer func() { keysStdin = os.Stdin }()
	code, out, errOut = run(t, nil, "keys", "hash")
	if code != exitOK || strings.TrimSpace(out) != strings.Fields(line)[2] {
		t.Fatalf("keys hash: exit %d, %q (%s); want the hash in %q", code, out, errOut, line)
	}
}

func TestKeysNewJSONHasTheNameTheKeyAndItsLine(t *testing.T) {
	code, out, errOut := run(t, nil, "keys", "new", "--name", "ops", "--scope", "admin", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v struct{ Name, Key, Line string }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "ops" || !auth.LooksLikeToken(v.Key) || v.Line != "ops admin "+auth.HashHex(v.Key) {
		t.Errorf("got %+v", v)
	}
}

func TestKeysCommandsRefuseBadUsage(t *testing.T) {
	runCases(t, nil, []cliCase{
		{name: "no subcommand", args: []string{"keys"}, code: exitUsage, stderr: "new\\|hash\\|check"},
		{name: "unknown subcommand", args: []string{"keys", "rotate"}, code: exitUsage, stderr: `unknown subcommand "rotate"`},
		{name: "help", args: []string{"keys", "--help"}, code: exitOK, stdout: "SHA256HEX"},
		{name: "new help", args: []string{"keys", "new", "--help"}, code: exitOK, stdout: "(?s)shown only this once.*--scope"},
		{name: "no name", args: []string{"keys", "new", "--scope", "admin"}, code: exitUsage, stderr: "--name is required"},
		{name: "bad name", args: []string{"keys", "new", "--name", "Shop", "--scope", "admin"}, code: exitUsage, stderr: `--name: the name has "S" at position 1`},
		{name: "long name", args: []string{"keys", "new", "--name", strings.Repeat("a", 65), "--scope", "admin"}, code: exitUsage, stderr: "at most 64"},
		{name: "no scope", args: []string{"keys", "new", "--name", "a"}, code: exitUsage, stderr: "--scope is required"},
		{name: "unknown scope", args: []string{"keys", "new", "--name", "a", "--scope", "stock:delete"}, code: exitUsage, stderr: `unknown scope "stock:delete"`},
		{name: "empty scope", args: []string{"keys", "new", "--name", "a", "--scope", "admin,"}, code: exitUsage, stderr: "empty scope"},
		{name: "repeated scope", args: []string{"keys", "new", "--name", "a", "--scope", "admin", "--scope", "admin"}, code: exitUsage, stderr: "listed twice"},
		{name: "negative rate", args: []string{"keys", "new", "--name", "a", "--scope", "admin", "--rate", "-1"}, code: exitUsage, stderr: "out of range"},
		{name: "rate not a number", args: []string{"keys", "new", "--name", "a", "--scope", "admin", "--rate", "fast"}, code: exitUsage, stderr: "invalid value \"fast\" for flag -rate"},
		{name: "burst without rate", args: []string{"keys", "new", "--name", "a", "--scope", "admin", "--burst", "5"}, code: exitUsage, stderr: "--burst needs --rate"},
		{name: "argument", args: []string{"keys", "new", "a", "--scope", "admin"}, code: exitUsage, stderr: "--name"},
		{name: "hash with an argument", args: []string{"keys", "hash", "stockd_abc"}, code: exitUsage, stderr: "standard input"},
		{name: "check without file", args: []string{"keys", "check"}, code: exitUsage, stderr: "name one keys file"},
	})
}

func TestKeysHashRefusesEmptyOrSeveralKeys(t *testing.T) {
	defer func() { keysStdin = os.Stdin }()
	for input, want := range map[string]string{
		"":                 "no key",
		"\n  \n":           "no key",
		"a\nb\n":           "2 lines",
		"has space\n":      "cannot be sent",
		"  padded\t\r\n":   "",
		"stockd_abc=\r\n ": "",
	} {
		keysStdin = strings.NewReader(input)
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"keys", "hash"}, &stdout, &stderr)
		if want == "" {
			if code != exitOK || strings.TrimSpace(stdout.String()) != auth.HashHex(strings.TrimSpace(input)) {
				t.Errorf("%q: exit %d, %q", input, code, stdout.String())
			}
			continue
		}
		if code != exitUsage || !strings.Contains(stderr.String(), want) {
			t.Errorf("%q: exit %d, stderr %q; want usage error %q", input, code, stderr.String(), want)
		}
	}
}

func TestKeysCheckListsKeysOrReportsBadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(path, []byte("# keys\nshop stock:read "+auth.HashHex("s")+" rate=0.5\nops admin "+auth.HashHex("o")+"\n"), 0o600)
	runCases(t, nil, []cliCase{
		{name: "good file", args: []string{"keys", "check", path}, code: exitOK, stdout: `(?m)^shop +stock:read +0\.5 +1\n^ops +admin +- +-$`},
	})
	os.WriteFile(path, []byte("shop stock:read nothex\n"), 0o600)
	runCases(t, nil, []cliCase{
		{name: "bad file", args: []string{"keys", "check", path}, code: exitFailure, stderr: `keys:1: the hash has 6 characters`},
	})
}
