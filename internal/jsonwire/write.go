// Package jsonwire reads and writes the JSON of stockd's hot path by hand,
// without reflection: POST /v1/batch and the entities its operations answer.
// encoding/json spends most of a batch's time finding its way through
// struct types at run time, allocating as it goes, and re-validating the
// JSON of each operation's answer when the batch embeds it (see
// docs/benchmarks.md, "The batch codec").
//
// Writing is byte for byte what encoding/json.Marshal writes. Reading is
// deliberately partial: a Reader takes the plain JSON that clients send
// (exact key names, strings without surrogate escapes, valid UTF-8, integer
// numbers) and declines anything else by setting Failed, without saying
// why. Its callers then hand the same bytes to encoding/json, which either
// accepts them too or words the refusal: every error answer stays the one
// encoding/json gives, and unusual but valid input still decodes.
package jsonwire

import (
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string exactly as encoding/json.Marshal
// writes it: <, > and & escaped for HTML, U+2028 and U+2029 escaped, and
// each byte of invalid UTF-8 replaced by U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendInt appends n as a JSON number.
func AppendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// AppendUint appends n as a JSON number.
func AppendUint(dst []byte, n uint64) []byte { return strconv.AppendUint(dst, n, 10) }

// AppendTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, quoted). It reports false for the times MarshalJSON refuses:
// years outside 0–9999 and zone offsets of 24 hours or more or with seconds;
// dst is then returned as it was.
func AppendTime(dst []byte, t time.Time) ([]byte, bool) {
	n0 := len(dst)
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	s := dst[n0+1:]
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' {
		return dst[:n0], false
	}
	if s[len(s)-1] != 'Z' {
		c := s[len(s)-len("Z07:00")]
		h := s[len(s)-len("07:00"):]
		if ('0' <= c && c <= '9') || 10*(h[0]-'0')+(h[1]-'0') >= 24 {
			return dst[:n0], false
		}
	}
	return append(dst, '"'), true
}
