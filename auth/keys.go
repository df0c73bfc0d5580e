package auth

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/stockd/stockd"
)

// Limits of a key's name and rate limit. The bounds on rate and burst keep
// the limiter's arithmetic in whole nanoseconds well inside an int64.
const (
	MaxNameLength = 64
	// MinRate is the slowest sustained rate: one request in about 17 minutes.
	MinRate = 0.001
	// MaxRate is the fastest sustained rate a key may be given.
	MaxRate = 1e6
	// MaxBurst is the largest burst a key may be given.
	MaxBurst = 1_000_000
)

// Key is one API key as the server knows it: its name, its scopes, its rate
// limit and the SHA-256 of the key itself, never the key.
type Key struct {
	// Name identifies the key holder and is the actor recorded on events.
	Name string
	// Scopes are the permissions the key carries, at least one.
	Scopes []stockd.Scope
	// Rate is the sustained rate limit in requests per second; 0 means
	// the key is not limited.
	Rate float64
	// Burst is how many requests the key may make at once; it is 0 exactly
	// when Rate is 0.
	Burst int
	// Hash is the SHA-256 of the key.
	Hash [32]byte
}

// DefaultBurst is the burst of a key whose line gives rate= without burst=:
// the rate rounded up, and at least 1.
func DefaultBurst(rate float64) int {
	return max(1, int(math.Ceil(rate)))
}

// Line returns k as a line of the keys file, without a newline. ParseKeys
// reads it back as k. burst= is written only when it differs from
// DefaultBurst.
func (k Key) Line() string {
	var b strings.Builder
	b.WriteString(k.Name)
	for i, s := range k.Scopes {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(string(s))
	}
	b.WriteByte(' ')
	b.WriteString(hex.EncodeToString(k.Hash[:]))
	if k.Rate > 0 {
		b.WriteString(" rate=")
		b.WriteString(strconv.FormatFloat(k.Rate, 'f', -1, 64))
		if k.Burst != DefaultBurst(k.Rate) {
			b.WriteString(" burst=")
			b.WriteString(strconv.Itoa(k.Burst))
		}
	}
	return b.String()
}

// Validate reports the first thing wrong with k: a bad name, no or unknown or
// repeated scopes, or a rate or burst out of range.
func (k Key) Validate() error {
	if err := CheckName(k.Name); err != nil {
		return err
	}
	if err := checkScopes(k.Scopes); err != nil {
		return err
	}
	if k.Rate == 0 {
		if k.Burst != 0 {
			return errors.New("a burst needs a rate")
		}
		return nil
	}
	if err := checkRate(k.Rate); err != nil {
		return err
	}
	return checkBurst(k.Burst)
}

// CheckName reports whether name is a valid key name: 1 to MaxNameLength
// characters from a-z, 0-9, "_", "." and "-", and not "." or "..".
func CheckName(name string) error {
	if name == "" {
		return errors.New("the name is empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("the name is %d characters long: at most %d", len(name), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			// The message quotes the character, not the name: a key
			// pasted into the name's place must not end up in a log.
			r, _ := utf8.DecodeRuneInString(name[i:])
			return fmt.Errorf(`the name has %q at position %d: use only a-z, 0-9, "_", "." and "-"`, string(r), i+1)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("name %q: not . or ..", name)
	}
	return nil
}

// ParseScopes reads scopes joined by commas ("stock:read,stock:write"),
// refusing empty, unknown and repeated ones.
func ParseScopes(s string) ([]stockd.Scope, error) {
	var scopes []stockd.Scope
	for part := range strings.SplitSeq(s, ",") {
		if part == "" {
			return nil, fmt.Errorf("scopes %q: an empty scope (join scopes with single commas)", s)
		}
		sc, err := stockd.ParseScope(part)
		if err != nil {
			if len(part) > 32 { // no scope is this long: do not echo what may be a key
				return nil, fmt.Errorf("an unknown scope of %d characters: use %s", len(part), scopeNames())
			}
			return nil, err
		}
		scopes = append(scopes, sc)
	}
	if err := checkScopes(scopes); err != nil {
		return nil, err
	}
	return scopes, nil
}

func scopeNames() string {
	names := make([]string, len(stockd.Scopes))
	for i, s := range stockd.Scopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func checkScopes(scopes []stockd.Scope) error {
	if len(scopes) == 0 {
		return errors.New("no scope: give at least one")
	}
	for i, s := range scopes {
		if _, err := stockd.ParseScope(string(s)); err != nil {
			return err
		}
		for _, t := range scopes[:i] {
			if s == t {
				return fmt.Errorf("scope %s is listed twice", s)
			}
		}
	}
	return nil
}

func checkRate(r float64) error {
	if !(r >= MinRate && r <= MaxRate) { // also refuses NaN
		return fmt.Errorf("rate %v is out of range: between %v and %v requests per second", r, MinRate, MaxRate)
	}
	return nil
}

func checkBurst(b int) error {
	if b < 1 || b > MaxBurst {
		return fmt.Errorf("burst %d is out of range: from 1 to %d", b, MaxBurst)
	}
	return nil
}

// ParseError is what is wrong with one line of a keys file.
type ParseError struct {
	// File is the file's path, if known.
	File string
	// Line is the line number, from 1.
	Line int
	// Msg says what is wrong. It never contains a key.
	Msg string
}

func (e *ParseError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("keys file line %d: %s", e.Line, e.Msg)
}

// maxLine is the longest line a keys file may have; a key's line is about
// 150 bytes.
const maxLine = 4096

// ParseKeys reads a keys file (see the package documentation). It reports
// every bad line, each as a *ParseError naming its line, joined with
// errors.Join; it returns keys only when there is none.
func ParseKeys(r io.Reader) ([]Key, error) {
	return parseKeys(r, "")
}

// LoadKeys reads the keys file at path. A file without any key is an error:
// a server using it would refuse every request.
func LoadKeys(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	keys, err := parseKeys(f, path)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys: every request would be refused", path)
	}
	return keys, nil
}

func parseKeys(r io.Reader, file string) ([]Key, error) {
	var (
		keys   []Key
		errs   []error
		names  = map[string]int{}
		hashes = map[[32]byte]int{}
	)
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		k, err := parseLine(fields)
		if err != nil {
			fail(n, "%v", err)
			continue
		}
		if prev, ok := names[k.Name]; ok {
			fail(n, "name %q is already used on line %d", k.Name, prev)
			continue
		}
		if prev, ok := hashes[k.Hash]; ok {
			fail(n, "the same hash as line %d: two names for one key (make a new key with stockd keys new)", prev)
			continue
		}
		names[k.Name], hashes[k.Hash] = n, n
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			fail(n+1, "longer than %d bytes", maxLine)
		} else {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

// parseLine reads the fields of one line. Its errors never quote a field
// that could be a key: someone may paste a key where its hash belongs.
func parseLine(fields []string) (Key, error) {
	var k Key
	for i, f := range fields {
		if LooksLikeToken(f) {
			return k, fmt.Errorf("field %d is an API key itself: the file holds only its hash (stockd keys hash prints it)", i+1)
		}
	}
	if len(fields) < 3 {
		return k, fmt.Errorf("%d fields: want NAME SCOPES SHA256HEX [rate=N] [burst=M]", len(fields))
	}
	k.Name = fields[0]
	if err := CheckName(k.Name); err != nil {
		return k, err
	}
	scopes, err := ParseScopes(fields[1])
	if err != nil {
		return k, err
	}
	k.Scopes = scopes
	if err := parseHash(fields[2], &k.Hash); err != nil {
		return k, err
	}
	var rateSet, burstSet bool
	for i, f := range fields[3:] {
		name, val, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			return k, fmt.Errorf("unexpected field %d after the hash: options are rate=N and burst=M", i+4)
		case name == "rate" && rateSet, name == "burst" && burstSet:
			return k, fmt.Errorf("%s= is given twice", name)
		case name == "rate":
			rateSet = true
			if !isDecimal(val) {
				return k, fmt.Errorf("rate=%s: write the requests per second as a decimal number, like 5 or 0.5", short(val))
			}
			k.Rate, _ = strconv.ParseFloat(val, 64) // isDecimal checked the syntax
			if err := checkRate(k.Rate); err != nil {
				return k, err
			}
		case name == "burst":
			burstSet = true
			b, err := strconv.Atoi(val)
			if err != nil || !isDigits(val) {
				return k, fmt.Errorf("burst=%s: write a whole number from 1 to %d", short(val), MaxBurst)
			}
			if err := checkBurst(b); err != nil {
				return k, err
			}
			k.Burst = b
		default:
			return k, fmt.Errorf("unknown option %s in field %d: options are rate=N and burst=M", short(name+"="), i+4)
		}
	}
	if burstSet && !rateSet {
		return k, errors.New("burst= needs rate=: a key without a rate is not limited")
	}
	if rateSet && !burstSet {
		k.Burst = DefaultBurst(k.Rate)
	}
	return k, nil
}

func parseHash(s string, h *[32]byte) error {
	if len(s) != 2*len(h) {
		return fmt.Errorf("the hash has %d characters: want the %d lowercase hex digits of the key's SHA-256", len(s), 2*len(h))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'F' {
			return errors.New("the hash has uppercase hex digits: write it in lowercase")
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("the hash has a character that is not a hex digit at position %d", i+1)
		}
	}
	_, err := hex.Decode(h[:], []byte(s))
	return err
}

// isDecimal reports whether s is digits with an optional fraction: 5, 0.5.
func isDecimal(s string) bool {
	whole, frac, hasFrac := strings.Cut(s, ".")
	return isDigits(whole) && (!hasFrac || isDigits(frac))
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// short quotes s for an error message if it is too short to be a key, and
// otherwise only says how long it is.
func short(s string) string {
	if len(s) > 16 {
		return fmt.Sprintf("(%d characters)", len(s))
	}
	return strconv.Quote(s)
}
