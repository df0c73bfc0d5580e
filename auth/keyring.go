package auth

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/stockd/stockd"
)

// MaxTokenLength is the longest key Authenticate hashes; a longer one is
// refused at once, so that a client cannot make the server hash megabytes.
const MaxTokenLength = 512

// Keyring is the set of keys a server accepts, with a rate limiter per key.
// It is safe for concurrent use and does not change after NewKeyring.
type Keyring struct {
	byHash map[[32]byte]*entry
	now    func() time.Time
	epoch  time.Time
}

type entry struct {
	key    Key
	bucket *bucket // nil: not limited
}

// Option configures a Keyring.
type Option func(*Keyring)

// WithClock makes the Keyring's rate limiters read the time from now instead
// of time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(r *Keyring) { r.now = now }
}

// NewKeyring returns a Keyring of keys, checking each with Key.Validate and
// refusing repeated names or hashes.
func NewKeyring(keys []Key, opts ...Option) (*Keyring, error) {
	r := &Keyring{byHash: make(map[[32]byte]*entry, len(keys)), now: time.Now}
	for _, o := range opts {
		o(r)
	}
	r.epoch = r.now()
	names := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Name, err)
		}
		if names[k.Name] {
			return nil, fmt.Errorf("key name %q is used twice", k.Name)
		}
		if _, ok := r.byHash[k.Hash]; ok {
			return nil, fmt.Errorf("key %q has the same hash as another key", k.Name)
		}
		names[k.Name] = true
		k.Scopes = append([]stockd.Scope(nil), k.Scopes...)
		e := &entry{key: k}
		if k.Rate > 0 {
			e.bucket = newBucket(k.Rate, k.Burst)
		}
		r.byHash[k.Hash] = e
	}
	return r, nil
}

// Len returns the number of keys.
func (r *Keyring) Len() int { return len(r.byHash) }

// Authenticate returns the key whose hash is the SHA-256 of token. A missing
// or unknown key is refused with stockd.CodeUnauthenticated; the error never
// contains the token. The Key returned belongs to the Keyring: do not
// change it.
func (r *Keyring) Authenticate(token string) (*Key, error) {
	if token == "" {
		return nil, stockd.Errorf(stockd.CodeUnauthenticated, "no API key: send it as Authorization: Bearer <key>")
	}
	if len(token) > MaxTokenLength {
		return nil, stockd.Errorf(stockd.CodeUnauthenticated, "unknown API key")
	}
	e := r.byHash[sha256.Sum256([]byte(token))]
	if e == nil {
		return nil, stockd.Errorf(stockd.CodeUnauthenticated, "unknown API key")
	}
	return &e.key, nil
}

// Authorize returns nil if key may perform an operation that requires need,
// and otherwise an error with stockd.CodeForbidden naming the key and the
// scope (stockd.CodeUnauthenticated if key is nil).
func Authorize(key *Key, need stockd.Scope) error {
	if key == nil {
		return stockd.Errorf(stockd.CodeUnauthenticated, "no API key: send it as Authorization: Bearer <key>")
	}
	if stockd.Allows(key.Scopes, need) {
		return nil
	}
	return stockd.Errorf(stockd.CodeForbidden, "API key %q does not have scope %s", key.Name, need)
}

// Allow takes one request from key's rate limit. It returns true if the
// request may go ahead, and otherwise false and how long until one would be
// allowed (see RetryAfterSeconds). A key without a rate, or not of this
// Keyring, is always allowed. Allow does not allocate and takes only the
// key's own lock.
func (r *Keyring) Allow(key *Key) (ok bool, retryAfter time.Duration) {
	if key == nil || key.Rate == 0 {
		return true, 0
	}
	e := r.byHash[key.Hash]
	if e == nil || e.bucket == nil {
		return true, 0
	}
	return e.bucket.take(r)
}

// RetryAfterSeconds turns a wait into the value of a Retry-After header:
// whole seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	s := (d + time.Second - 1) / time.Second
	return int(max(s, 1))
}

// BearerToken returns the key in the value of an Authorization header of the
// form "Bearer <key>" (RFC 6750 §2.1): the scheme in any case, one or more
// spaces, and one token68 (RFC 9110 §11.2) with nothing after it. It
// reports false for any other header, including an empty one.
func BearerToken(header string) (string, bool) {
	header = strings.Trim(header, " \t")
	const scheme = "Bearer"
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) || header[len(scheme)] != ' ' {
		return "", false
	}
	token := strings.TrimLeft(header[len(scheme):], " ")
	if !isToken68(token) {
		return "", false
	}
	return token, true
}

// isToken68 reports whether s is a token68: 1*( ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	end := len(strings.TrimRight(s, "="))
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}
