package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The headers of every delivery.
const (
	// HeaderEventID carries the event's id (stockd.Event.ID,
	// "<partition>-<position>"): the same on every delivery of one event,
	// so that a receiver drops repeats by it.
	HeaderEventID = "Stockd-Event-Id"
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>" keyed with the endpoint's secret>".
	HeaderSignature = "Stockd-Signature"
	// UserAgent is the User-Agent of every delivery.
	UserAgent = "stockd-webhook/1"
)

// Sign returns the Stockd-Signature header of body sent at t with secret.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Errors of Verify.
var (
	// ErrMalformedSignature: the header is not t=<seconds>,v1=<hex>.
	ErrMalformedSignature = errors.New("webhook: malformed Stockd-Signature header")
	// ErrSignatureMismatch: no v1 signature matches the body and secret.
	ErrSignatureMismatch = errors.New("webhook: signature does not match")
	// ErrSignatureExpired: the timestamp is further from now than the
	// tolerance; an old delivery replayed by someone who recorded it.
	ErrSignatureExpired = errors.New("webhook: signature timestamp outside the tolerance")
)

// Verify checks a delivery as a receiver should: header is the
// Stockd-Signature header, body the raw request body (before any JSON
// decoding), and tolerance how far the signature's time may be from now
// (5 minutes is usual; 0 or less skips the check, for tests and for
// replaying stored deliveries). The header may carry several v1 values;
// one matching is enough. The comparison takes constant time.
func Verify(secret, header string, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, header, body, tolerance, time.Now())
}

func verifyAt(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformedSignature
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrMalformedSignature
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return ErrMalformedSignature
			}
			sigs = append(sigs, sig)
		}
		// Other schemes are ignored: a receiver written for v1 keeps
		// working if a later version adds one.
	}
	if ts == "" || len(sigs) == 0 {
		return ErrMalformedSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrMalformedSignature
	}
	want := mac(secret, ts, body)
	ok := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			ok = true
		}
	}
	if !ok {
		return ErrSignatureMismatch
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return ErrSignatureExpired
		}
	}
	return nil
}
