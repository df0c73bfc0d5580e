package jsonwire

import (
	"bytes"
	"unicode/utf8"
)

// maxDepth bounds the nesting Skip follows; deeper values are declined.
const maxDepth = 64

// Reader decodes JSON it is sure of and declines the rest. Once it
// declines, Failed reports true and every method returns zero values, so a
// decoder may read a whole value and check Failed once at the end.
//
// Strictness is the caller's part: a Reader returns keys as written (a key
// with an escape is declined), and Skip declines an object with a repeated
// key.
type Reader struct {
	data   []byte
	i      int
	failed bool
	keys   [][]byte // the keys of the objects Skip is in
}

// NewReader returns a Reader of data.
func NewReader(data []byte) *Reader { return &Reader{data: data} }

// Reset makes r read data from the start.
func (r *Reader) Reset(data []byte) {
	r.data, r.i, r.failed, r.keys = data, 0, false, r.keys[:0]
}

// Failed reports whether r declined something.
func (r *Reader) Failed() bool { return r.failed }

// Fail declines the input: the caller found something it does not take.
func (r *Reader) Fail() { r.failed = true }

func (r *Reader) ws() {
	for r.i < len(r.data) {
		switch r.data[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, or 0 at the end or once r
// has failed.
func (r *Reader) peek() byte {
	if r.failed {
		return 0
	}
	r.ws()
	if r.i >= len(r.data) {
		return 0
	}
	return r.data[r.i]
}

// End declines anything but whitespace after the value.
func (r *Reader) End() {
	if r.peek() != 0 || r.i != len(r.data) {
		r.failed = true
	}
}

// Null consumes a null and reports whether there was one.
func (r *Reader) Null() bool {
	if r.peek() == 'n' {
		if bytes.HasPrefix(r.data[r.i:], []byte("null")) {
			r.i += 4
			return true
		}
		r.failed = true
	}
	return false
}

// Object starts reading an object; it declines anything else.
func (r *Reader) Object() {
	if r.peek() != '{' {
		r.failed = true
		return
	}
	r.i++
}

// Key returns the n-th key (from 0) of the object being read, with the
// reader at its value, or false at the end of the object, which it
// consumes.
func (r *Reader) Key(n int) ([]byte, bool) {
	c := r.peek()
	if n > 0 {
		if c == ',' {
			r.i++
			c = r.peek()
		} else if c != '}' {
			r.failed = true
			return nil, false
		} else {
			r.i++
			return nil, false
		}
	} else if c == '}' {
		r.i++
		return nil, false
	}
	if c != '"' {
		r.failed = true
		return nil, false
	}
	key, escaped := r.rawString()
	if escaped {
		r.failed = true
	}
	if r.peek() != ':' {
		r.failed = true
		return nil, false
	}
	r.i++
	return key, !r.failed
}

// Array starts reading an array; it declines anything else.
func (r *Reader) Array() {
	if r.peek() != '[' {
		r.failed = true
		return
	}
	r.i++
}

// Elem reports whether the array being read has an n-th element (from 0),
// with the reader at it, or consumes the end of the array.
func (r *Reader) Elem(n int) bool {
	c := r.peek()
	if c == ']' {
		r.i++
		return false
	}
	if n > 0 {
		if c != ',' {
			r.failed = true
			return false
		}
		r.i++
		c = r.peek()
	}
	if c == 0 || c == ']' {
		r.failed = true
		return false
	}
	return true
}

// rawString reads a string whose opening quote is next and returns what is
// between the quotes, and whether it has escapes. It checks the escapes
// and refuses control characters, not UTF-8.
func (r *Reader) rawString() ([]byte, bool) {
	r.i++ // "
	start, escaped := r.i, false
	for r.i < len(r.data) {
		c := r.data[r.i]
		switch {
		case c == '"':
			r.i++
			return r.data[start : r.i-1], escaped
		case c == '\\':
			escaped = true
			if r.i+1 >= len(r.data) {
				r.failed = true
				return nil, false
			}
			switch r.data[r.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i += 2
			case 'u':
				if r.i+6 > len(r.data) || !isHex4(r.data[r.i+2:r.i+6]) {
					r.failed = true
					return nil, false
				}
				r.i += 6
			default:
				r.failed = true
				return nil, false
			}
		case c < 0x20:
			r.failed = true
			return nil, false
		default:
			r.i++
		}
	}
	r.failed = true
	return nil, false
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if unhex(c) < 0 {
			return false
		}
	}
	return true
}

func unhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// Bytes reads a string into buf (reused) and returns its decoded bytes. It
// declines invalid UTF-8 and escapes of surrogates, which encoding/json
// replaces rather than refuses.
func (r *Reader) Bytes(buf []byte) []byte {
	if r.peek() != '"' {
		r.failed = true
		return nil
	}
	raw, escaped := r.rawString()
	if r.failed {
		return nil
	}
	if !escaped {
		if !utf8.Valid(raw) {
			r.failed = true
			return nil
		}
		return raw
	}
	buf = buf[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			buf = append(buf, c)
			i++
			continue
		}
		switch e := raw[i+1]; e {
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			v := unhex(raw[i+2])<<12 | unhex(raw[i+3])<<8 | unhex(raw[i+4])<<4 | unhex(raw[i+5])
			if 0xD800 <= v && v < 0xE000 {
				r.failed = true
				return nil
			}
			buf = utf8.AppendRune(buf, v)
			i += 6
			continue
		default: // " \ /
			buf = append(buf, e)
		}
		i += 2
	}
	if !utf8.Valid(buf) {
		r.failed = true
		return nil
	}
	return buf
}

// Str reads a string.
func (r *Reader) Str() string {
	var buf [64]byte
	b := r.Bytes(buf[:0])
	if r.failed {
		return ""
	}
	return string(b)
}

// Int64 reads an integer: a JSON number without fraction or exponent that
// fits in an int64. It declines other numbers, which encoding/json refuses
// for an integer field.
func (r *Reader) Int64() int64 {
	c := r.peek()
	neg := c == '-'
	if neg {
		r.i++
	}
	start := r.i
	var u uint64
	for r.i < len(r.data) && '0' <= r.data[r.i] && r.data[r.i] <= '9' {
		d := uint64(r.data[r.i] - '0')
		if u > (1<<63)/10 {
			r.failed = true
			return 0
		}
		u = u*10 + d
		r.i++
	}
	n := r.i - start
	if n == 0 || (n > 1 && r.data[start] == '0') || u > 1<<63 || (!neg && u == 1<<63) {
		r.failed = true
		return 0
	}
	if r.i < len(r.data) {
		switch r.data[r.i] {
		case '.', 'e', 'E':
			r.failed = true
			return 0
		}
	}
	if neg {
		return -int64(u)
	}
	return int64(u)
}

// Bool reads true or false.
func (r *Reader) Bool() bool {
	switch r.peek() {
	case 't':
		if bytes.HasPrefix(r.data[r.i:], []byte("true")) {
			r.i += 4
			return true
		}
	case 'f':
		if bytes.HasPrefix(r.data[r.i:], []byte("false")) {
			r.i += 5
			return false
		}
	}
	r.failed = true
	return false
}

// Skip reads one value of any kind and returns its bytes. It checks the
// value's syntax fully and declines an object with a repeated key (or a key
// with an escape, which it cannot compare as written).
func (r *Reader) Skip() []byte {
	c := r.peek()
	start := r.i
	r.skip(c, 0)
	if r.failed {
		return nil
	}
	return r.data[start:r.i]
}

func (r *Reader) skip(c byte, depth int) {
	if depth > maxDepth {
		r.failed = true
		return
	}
	switch c {
	case '{':
		r.i++
		base := len(r.keys)
		for n := 0; ; n++ {
			k, ok := r.Key(n)
			if !ok {
				break
			}
			for _, seen := range r.keys[base:] {
				if bytes.Equal(seen, k) {
					r.failed = true
				}
			}
			r.keys = append(r.keys, k)
			r.skip(r.peek(), depth+1)
		}
		r.keys = r.keys[:base]
	case '[':
		r.i++
		for n := 0; r.Elem(n); n++ {
			r.skip(r.peek(), depth+1)
		}
	case '"':
		r.rawString()
	case 't', 'f':
		r.Bool()
	case 'n':
		if !r.Null() {
			r.failed = true
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		r.number()
	default:
		r.failed = true
	}
}

// number reads a JSON number of any form.
func (r *Reader) number() {
	d := r.data
	if r.i < len(d) && d[r.i] == '-' {
		r.i++
	}
	switch {
	case r.i < len(d) && d[r.i] == '0':
		r.i++
	case r.i < len(d) && '1' <= d[r.i] && d[r.i] <= '9':
		r.digits()
	default:
		r.failed = true
		return
	}
	if r.i < len(d) && d[r.i] == '.' {
		r.i++
		if r.digits() == 0 {
			r.failed = true
			return
		}
	}
	if r.i < len(d) && (d[r.i] == 'e' || d[r.i] == 'E') {
		r.i++
		if r.i < len(d) && (d[r.i] == '+' || d[r.i] == '-') {
			r.i++
		}
		if r.digits() == 0 {
			r.failed = true
		}
	}
}

func (r *Reader) digits() int {
	start := r.i
	for r.i < len(r.data) && '0' <= r.data[r.i] && r.data[r.i] <= '9' {
		r.i++
	}
	return r.i - start
}
