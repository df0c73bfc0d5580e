package auth

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stockd/stockd"
)

// Hashes of the keys "shop", "ware" and "ops", written out so that the test
// files read like real keys files.
var (
	hashShop = HashHex("shop")
	hashWare = HashHex("ware")
	hashOps  = HashHex("ops")
)

func TestParseKeysAcceptsTheDocumentedFormatWithComments(t *testing.T) {
	file := "# stockd keys\n" +
		"\n" +
		"   # an indented comment\n" +
		"shop      stock:read,reservations:write  " + hashShop + "  rate=200 burst=400  # the web shop\n" +
		"\tware\tstock:read,stock:write\t" + hashWare + "\r\n" + // tabs and a CRLF line end
		"ops admin " + hashOps + " rate=0.5#no space before the comment\n" +
		"   \t \n"
	keys, err := ParseKeys(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []Key{
		{Name: "shop", Scopes: []stockd.Scope{stockd.ScopeStockRead, stockd.ScopeReservationsWrite}, Rate: 200, Burst: 400, Hash: Hash("shop")},
		{Name: "ware", Scopes: []stockd.Scope{stockd.ScopeStockRead, stockd.ScopeStockWrite}, Hash: Hash("ware")},
		{Name: "ops", Scopes: []stockd.Scope{stockd.ScopeAdmin}, Rate: 0.5, Burst: 1, Hash: Hash("ops")},
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("got  %+v\nwant %+v", keys, want)
	}
}

func TestParseKeysDefaultsBurstToTheRateRoundedUp(t *testing.T) {
	for rate, burst := range map[string]int{"0.001": 1, "0.5": 1, "1": 1, "2.5": 3, "10": 10, "1000000": 1000000} {
		keys, err := ParseKeys(strings.NewReader("k admin " + hashOps + " rate=" + rate))
		if err != nil {
			t.Fatalf("rate=%s: %v", rate, err)
		}
		if keys[0].Burst != burst {
			t.Errorf("rate=%s: burst %d, want %d", rate, keys[0].Burst, burst)
		}
	}
}

func TestParseKeysAcceptsAnEmptyFile(t *testing.T) {
	keys, err := ParseKeys(strings.NewReader("# nothing yet\n\n"))
	if err != nil || len(keys) != 0 {
		t.Fatalf("got %v, %v; want no keys and no error", keys, err)
	}
}

func TestParseKeysRefusesEveryMalformedLineWithItsLineNumber(t *testing.T) {
	good := "ok admin " + hashOps + "\n"
	token := NewToken()
	cases := []struct {
		name, line, msg string
	}{
		{"one field", "shop", "1 fields"},
		{"no hash", "shop stock:read", "2 fields"},
		{"uppercase name", "Shop stock:read " + hashShop, `"S" at position 1`},
		{"space-like name character", "sh@p stock:read " + hashShop, `"@" at position 3`},
		{"non-ASCII name", "shöp stock:read " + hashShop, `"ö" at position 3`},
		{"name too long", strings.Repeat("a", 65) + " stock:read " + hashShop, "65 characters long"},
		{"name is a dot", ". stock:read " + hashShop, "not . or .."},
		{"name is two dots", ".. stock:read " + hashShop, "not . or .."},
		{"unknown scope", "shop stock:delete " + hashShop, `unknown scope "stock:delete"`},
		{"empty scope", "shop stock:read,,admin " + hashShop, "empty scope"},
		{"trailing comma", "shop stock:read, " + hashShop, "empty scope"},
		{"repeated scope", "shop admin,admin " + hashShop, "listed twice"},
		{"short hash", "shop admin " + hashShop[:63], "63 characters"},
		{"long hash", "shop admin " + hashShop + "0", "65 characters"},
		{"uppercase hash", "shop admin " + strings.ToUpper(hashShop), "lowercase"},
		{"non-hex hash", "shop admin " + strings.Repeat("g", 64), "not a hex digit at position 1"},
		{"key instead of hash", "shop admin " + token, "field 3 is an API key itself"},
		{"key instead of name", token + " admin " + hashShop, "field 1 is an API key itself"},
		{"key alone", token, "field 1 is an API key itself"},
		{"stray field", "shop admin " + hashShop + " fast", "unexpected field 4"},
		{"unknown option", "shop admin " + hashShop + " limit=5", `unknown option "limit="`},
		{"zero rate", "shop admin " + hashShop + " rate=0", "out of range"},
		{"negative rate", "shop admin " + hashShop + " rate=-1", "decimal number"},
		{"rate too small", "shop admin " + hashShop + " rate=0.0001", "out of range"},
		{"rate too large", "shop admin " + hashShop + " rate=1000001", "out of range"},
		{"rate with exponent", "shop admin " + hashShop + " rate=1e3", "decimal number"},
		{"rate not a number", "shop admin " + hashShop + " rate=NaN", "decimal number"},
		{"rate infinite", "shop admin " + hashShop + " rate=Inf", "decimal number"},
		{"rate with a leading dot", "shop admin " + hashShop + " rate=.5", "decimal number"},
		{"rate empty", "shop admin " + hashShop + " rate=", "decimal number"},
		{"rate twice", "shop admin " + hashShop + " rate=1 rate=2", "rate= is given twice"},
		{"burst without rate", "shop admin " + hashShop + " burst=5", "burst= needs rate="},
		{"burst zero", "shop admin " + hashShop + " rate=1 burst=0", "out of range"},
		{"burst fractional", "shop admin " + hashShop + " rate=1 burst=1.5", "whole number"},
		{"burst signed", "shop admin " + hashShop + " rate=1 burst=+5", "whole number"},
		{"burst too large", "shop admin " + hashShop + " rate=1 burst=1000001", "out of range"},
		{"burst twice", "shop admin " + hashShop + " rate=1 burst=1 burst=2", "burst= is given twice"},
		{"name used twice", "ok stock:read " + hashShop, `name "ok" is already used on line 2`},
		{"hash used twice", "other stock:read " + hashOps, "same hash as line 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The bad line is line 4, after a comment, a good key and a
			// blank line.
			_, err := ParseKeys(strings.NewReader("# keys\n" + good + "\n" + tc.line + "\n"))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *ParseError", err)
			}
			if pe.Line != 4 {
				t.Errorf("line %d, want 4: %v", pe.Line, err)
			}
			if !strings.Contains(err.Error(), "keys file line 4: ") || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not name line 4 and say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
}

func TestParseKeysReportsEveryBadLine(t *testing.T) {
	file := "a admin\nb admin " + hashShop + "\nc nope " + hashWare + "\nd admin " + hashOps + " rate=x\n"
	_, err := ParseKeys(strings.NewReader(file))
	var lines []int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var pe *ParseError
		if errors.As(e, &pe) {
			lines = append(lines, pe.Line)
		}
	}
	if !reflect.DeepEqual(lines, []int{1, 3, 4}) {
		t.Fatalf("bad lines %v, want [1 3 4]: %v", lines, err)
	}
}

func TestParseKeysRefusesAnOverlongLine(t *testing.T) {
	_, err := ParseKeys(strings.NewReader("ok admin " + hashOps + "\n# " + strings.Repeat("x", 5000) + "\n"))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Fatalf("got %v, want a *ParseError on line 2", err)
	}
}

func TestLoadKeysNamesTheFileAndRefusesAFileWithoutKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	os.WriteFile(path, []byte("ops admin "+hashOps+"\n"), 0o600)
	keys, err := LoadKeys(path)
	if err != nil || len(keys) != 1 || keys[0].Name != "ops" {
		t.Fatalf("got %v, %v", keys, err)
	}

	os.WriteFile(path, []byte("\n\nops admin nothex\n"), 0o600)
	if _, err := LoadKeys(path); err == nil || !strings.HasPrefix(err.Error(), path+":3: ") {
		t.Errorf("got %v, want an error starting %s:3:", err, path)
	}

	os.WriteFile(path, []byte("# no keys yet\n"), 0o600)
	if _, err := LoadKeys(path); err == nil || !strings.Contains(err.Error(), "no keys") {
		t.Errorf("got %v, want no keys", err)
	}

	if _, err := LoadKeys(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want not exist", err)
	}
}

func TestKeyLineParsesBackToTheSameKey(t *testing.T) {
	keys := []Key{
		{Name: "a", Scopes: []stockd.Scope{stockd.ScopeAdmin}, Hash: Hash("a")},
		{Name: "b.c-d_e", Scopes: stockd.Scopes, Rate: 0.1, Burst: 1, Hash: Hash("b")},
		{Name: "f", Scopes: []stockd.Scope{stockd.ScopeStockRead}, Rate: 2.5, Burst: 7, Hash: Hash("f")},
		{Name: "g", Scopes: []stockd.Scope{stockd.ScopeStockRead}, Rate: MaxRate, Burst: MaxBurst, Hash: Hash("g")},
		{Name: "h", Scopes: []stockd.Scope{stockd.ScopeStockRead}, Rate: MinRate, Burst: 1, Hash: Hash("h")},
	}
	for _, k := range keys {
		got, err := ParseKeys(strings.NewReader(k.Line()))
		if err != nil {
			t.Fatalf("%s: %v", k.Line(), err)
		}
		if !reflect.DeepEqual(got, []Key{k}) {
			t.Errorf("%s: got %+v, want %+v", k.Line(), got[0], k)
		}
	}
	if got, want := keys[1].Line(), "b.c-d_e stock:read,stock:write,reservations:write,admin "+HashHex("b")+" rate=0.1"; got != want {
		t.Errorf("line %q, want %q (burst= left out when it is the default)", got, want)
	}
}

func TestNewKeyMakesAKeyThatAuthenticatesWithItsScopes(t *testing.T) {
	token, k, err := NewKey("ci", []stockd.Scope{stockd.ScopeStockRead}, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !LooksLikeToken(token) || len(token) != len(TokenPrefix)+TokenChars {
		t.Errorf("key %q does not have the documented form", token)
	}
	if k.Burst != 2 || k.Hash != Hash(token) || HashHex(token) != strings.Fields(k.Line())[2] {
		t.Errorf("key %+v: wrong burst or hash", k)
	}
	keys, err := ParseKeys(strings.NewReader(k.Line()))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ring.Authenticate(token)
	if err != nil || got.Name != "ci" {
		t.Fatalf("got %v, %v", got, err)
	}
	if Authorize(got, stockd.ScopeStockRead) != nil || Authorize(got, stockd.ScopeStockWrite) == nil {
		t.Errorf("scopes %v not those asked for", got.Scopes)
	}

	other, _, _ := NewKey("ci", []stockd.Scope{stockd.ScopeStockRead}, 0, 0)
	if other == token {
		t.Error("two new keys are the same")
	}
}

func TestNewKeyRefusesABadNameScopeOrRate(t *testing.T) {
	read := []stockd.Scope{stockd.ScopeStockRead}
	for _, tc := range []struct {
		name   string
		scopes []stockd.Scope
		rate   float64
		burst  int
	}{
		{"Bad", read, 0, 0},
		{"", read, 0, 0},
		{"ok", nil, 0, 0},
		{"ok", []stockd.Scope{"stock:delete"}, 0, 0},
		{"ok", []stockd.Scope{stockd.ScopeAdmin, stockd.ScopeAdmin}, 0, 0},
		{"ok", read, -1, 0},
		{"ok", read, 0, 5},
		{"ok", read, 1, MaxBurst + 1},
	} {
		if token, _, err := NewKey(tc.name, tc.scopes, tc.rate, tc.burst); err == nil || token != "" {
			t.Errorf("NewKey(%q, %v, %v, %v) = %q, %v; want an error", tc.name, tc.scopes, tc.rate, tc.burst, token, err)
		}
	}
}

func TestLooksLikeTokenMatchesOnlyTheFormNewTokenMakes(t *testing.T) {
	token := NewToken()
	for s, want := range map[string]bool{
		token:                          true,
		token[:len(token)-1]:           false,
		token + "a":                    false,
		strings.ToUpper(token):         false,
		"sk_" + token[len("stockd_"):]: false,
		token[:len(token)-1] + "1":     false,
	} {
		if LooksLikeToken(s) != want {
			t.Errorf("LooksLikeToken(%q) = %v", s, !want)
		}
	}
}
