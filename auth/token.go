package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"

	"github.com/stockd/stockd"
)

// TokenPrefix starts every key NewToken makes, so that a leaked key is easy
// to find in logs, repositories and chat: a key is TokenPrefix followed by
// TokenChars characters from a-z and 2-7, matched by the regular expression
// stockd_[a-z2-7]{52}.
const TokenPrefix = "stockd_"

// TokenChars is the number of characters after TokenPrefix.
const TokenChars = 52

// tokenEncoding is lowercase base32 without padding: letters and digits
// only, so that a double click selects the whole key, and case-insensitive
// to read aloud.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a new random key: 256 bits from crypto/rand after
// TokenPrefix.
func NewToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program rather than return an error
	return TokenPrefix + tokenEncoding.EncodeToString(b[:])
}

// LooksLikeToken reports whether s has the form of a key made by NewToken.
func LooksLikeToken(s string) bool {
	if len(s) != len(TokenPrefix)+TokenChars || s[:len(TokenPrefix)] != TokenPrefix {
		return false
	}
	for i := len(TokenPrefix); i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// Hash returns the SHA-256 of a key, as the keys file holds it.
func Hash(token string) [32]byte {
	return sha256.Sum256([]byte(token))
}

// HashHex returns the SHA-256 of a key in lowercase hex, the form of the
// keys file.
func HashHex(token string) string {
	h := Hash(token)
	return hex.EncodeToString(h[:])
}

// NewKey makes a new random key for name with the given scopes and rate
// limit (rate 0: not limited; burst 0: DefaultBurst). It returns the key,
// to be shown once to whoever will use it, and the Key to write to the keys
// file with Key.Line.
func NewKey(name string, scopes []stockd.Scope, rate float64, burst int) (string, Key, error) {
	k := Key{Name: name, Scopes: scopes, Rate: rate, Burst: burst}
	if rate > 0 && burst == 0 {
		k.Burst = DefaultBurst(rate)
	}
	if err := k.Validate(); err != nil {
		return "", Key{}, err
	}
	token := NewToken()
	k.Hash = Hash(token)
	return token, k, nil
}
