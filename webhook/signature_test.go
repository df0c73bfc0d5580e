package webhook

import (
	"errors"
	"testing"
	"time"
)

// The worked example of docs/webhooks.md: a receiver in any language must
// compute this signature from this secret, timestamp and body.
const (
	exampleSecret    = "whsec_example"
	exampleTimestamp = 1795773600 // 2026-11-27T10:00:00Z
	exampleBody      = `{"id":"3-17","type":"StockReceived","sku":"A","version":4,"partition":3,"position":17,"time":"2026-11-27T10:00:00Z","command_id":"r-1","data":{"location":"w1","quantity":10}}`
	exampleHeader    = "t=1795773600,v1=0e6abcfbc8c485d2043f9ab25becb5fbeabadf063832da8a62ffc101152e706e"
)

func TestSignMatchesTheDocumentedExample(t *testing.T) {
	if got := Sign(exampleSecret, time.Unix(exampleTimestamp, 0), []byte(exampleBody)); got != exampleHeader {
		t.Fatalf("Sign = %s, want the documented %s", got, exampleHeader)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(exampleTimestamp, 0).Add(time.Minute)
	body := []byte(exampleBody)
	for _, tc := range []struct {
		name      string
		secret    string
		header    string
		body      []byte
		tolerance time.Duration
		want      error
	}{
		{"the example", exampleSecret, exampleHeader, body, 5 * time.Minute, nil},
		{"spaces after commas", exampleSecret, "t=1795773600, v1=0e6abcfbc8c485d2043f9ab25becb5fbeabadf063832da8a62ffc101152e706e", body, 5 * time.Minute, nil},
		{"a second v1 (a rotated secret)", exampleSecret, "t=1795773600,v1=" + zeros + ",v1=0e6abcfbc8c485d2043f9ab25becb5fbeabadf063832da8a62ffc101152e706e", body, 5 * time.Minute, nil},
		{"an unknown scheme is ignored", exampleSecret, exampleHeader + ",v9=abc", body, 5 * time.Minute, nil},
		{"no tolerance", exampleSecret, exampleHeader, body, 0, nil},
		{"another secret", "whsec_other", exampleHeader, body, 5 * time.Minute, ErrSignatureMismatch},
		{"a changed body", exampleSecret, exampleHeader, []byte(exampleBody + " "), 5 * time.Minute, ErrSignatureMismatch},
		{"a changed timestamp", exampleSecret, "t=1795773601,v1=0e6abcfbc8c485d2043f9ab25becb5fbeabadf063832da8a62ffc101152e706e", body, 5 * time.Minute, ErrSignatureMismatch},
		{"too old", exampleSecret, exampleHeader, body, 30 * time.Second, ErrSignatureExpired},
		{"empty", exampleSecret, "", body, 0, ErrMalformedSignature},
		{"no timestamp", exampleSecret, "v1=0e6abcfbc8c485d2043f9ab25becb5fbeabadf063832da8a62ffc101152e706e", body, 0, ErrMalformedSignature},
		{"no v1", exampleSecret, "t=1795773600", body, 0, ErrMalformedSignature},
		{"not hex", exampleSecret, "t=1795773600,v1=zz", body, 0, ErrMalformedSignature},
		{"short", exampleSecret, "t=1795773600,v1=0e6a", body, 0, ErrMalformedSignature},
		{"two timestamps", exampleSecret, "t=1,t=1795773600,v1=0e6abcfbc8c485d2043f9ab25becb5fbeabadf063832da8a62ffc101152e706e", body, 0, ErrMalformedSignature},
		{"timestamp not a number", exampleSecret, "t=soon,v1=0e6abcfbc8c485d2043f9ab25becb5fbeabadf063832da8a62ffc101152e706e", body, 0, ErrMalformedSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := verifyAt(tc.secret, tc.header, tc.body, tc.tolerance, now); !errors.Is(err, tc.want) {
				t.Fatalf("verify = %v, want %v", err, tc.want)
			}
		})
	}
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

func TestVerifyAcceptsWhatSignSigns(t *testing.T) {
	body := []byte(`{"id":"0-1"}`)
	if err := Verify("s3cret", Sign("s3cret", time.Now(), body), body, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := Verify("s3cret", Sign("s3cret", time.Now().Add(-time.Hour), body), body, time.Minute); !errors.Is(err, ErrSignatureExpired) {
		t.Fatalf("an hour-old signature with a minute's tolerance: %v", err)
	}
}
