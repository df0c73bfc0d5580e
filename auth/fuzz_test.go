package auth

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseKeys feeds arbitrary files to ParseKeys. Whatever the input, it
// must not panic; it either accepts keys or reports bad lines as
// *ParseErrors; every key it accepts is valid, and its Line parses back to
// the same key; a file of those lines parses back to the same keys.
func FuzzParseKeys(f *testing.F) {
	h := HashHex("k")
	for _, seed := range []string{
		"",
		"# only a comment\n\n",
		"shop stock:read,reservations:write " + h + " rate=200 burst=400 # shop\n",
		"ops admin " + h + " rate=0.5\r\nware stock:write " + HashHex("w") + "\n",
		"a admin " + h + " rate=0.0010000000000000000001\n",
		"a admin " + h + " rate=999999.99999999999999 burst=007\n",
		"a admin " + h + " rate=1000000.0000000001\n",
		"a admin " + h + "\nb admin " + h + "\n",
		"A admin " + strings.ToUpper(h) + " rate=1e3 burst=-1\n",
		"a stock:read,,admin " + h + " burst=1\n",
		". admin " + h + "\n",
		"a\tadmin\t" + h + "#c\n",
		NewToken() + "\n",
		"a admin " + h + " x=y rate=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, file string) {
		keys, err := ParseKeys(strings.NewReader(file))
		if err != nil {
			if keys != nil {
				t.Fatalf("keys %v returned with error %v", keys, err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error %v is not a *ParseError with a line", err)
			}
			return
		}
		var lines []string
		for _, k := range keys {
			if err := k.Validate(); err != nil {
				t.Fatalf("accepted an invalid key %+v: %v", k, err)
			}
			line := k.Line()
			again, err := ParseKeys(strings.NewReader(line))
			if err != nil {
				t.Fatalf("%+v: its line %q does not parse: %v", k, line, err)
			}
			if !reflect.DeepEqual(again, []Key{k}) {
				t.Fatalf("%q parses to %+v, want %+v", line, again[0], k)
			}
			lines = append(lines, line)
		}
		if len(keys) > 0 {
			again, err := ParseKeys(strings.NewReader(strings.Join(lines, "\n")))
			if err != nil || !reflect.DeepEqual(again, keys) {
				t.Fatalf("the file of re-serialised lines parses to %v, %v; want %v", again, err, keys)
			}
			if _, err := NewKeyring(keys); err != nil {
				t.Fatalf("NewKeyring refuses accepted keys: %v", err)
			}
		}
	})
}
