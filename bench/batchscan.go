package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// scanBatchResults reads a /v1/batch response body,
// {"results":[{"status":201,"body":{...}},{"status":409,"problem":{"code":...}},...]},
// and calls fn with the status and problem code (empty when there is none) of
// each result, in order. It returns the number of results.
//
// It is a small purpose-built scanner rather than encoding/json because the load
// generator shares the machine with the server it measures: decoding a hundred
// reservation bodies per request with reflection would take CPU away from the
// server and lower the very figure being measured. The test checks it against
// encoding/json.
func scanBatchResults(body []byte, fn func(status int, code string)) (int, error) {
	s := scanner{b: body}
	n := 0
	err := s.object(func(key []byte) error {
		if string(key) != "results" {
			return s.skip()
		}
		if s.peek() == 'n' { // null
			return s.skip()
		}
		return s.array(func() error {
			status, code := 0, ""
			err := s.object(func(key []byte) error {
				switch string(key) {
				case "status":
					v, err := s.int()
					status = v
					return err
				case "problem":
					if s.peek() != '{' {
						return s.skip()
					}
					return s.object(func(key []byte) error {
						if string(key) != "code" || s.peek() != '"' {
							return s.skip()
						}
						v, err := s.str()
						code = v
						return err
					})
				}
				return s.skip()
			})
			if err != nil {
				return err
			}
			fn(status, code)
			n++
			return nil
		})
	})
	if err != nil {
		return n, err
	}
	s.ws()
	if s.i != len(s.b) {
		return n, s.errorf("trailing data")
	}
	return n, nil
}

// scanner walks a JSON document without building values.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("batch response: offset %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.errorf("want %q", c)
	}
	s.i++
	return nil
}

// object reads {"k": v, ...}, calling member for each key with the scanner
// positioned at the value, which member must consume.
func (s *scanner) object(member func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.rawString()
		if err != nil {
			return err
		}
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(s.b[s.i-len(key)-2:s.i], &k); err != nil {
				return s.errorf("bad key: %v", err)
			}
			key = []byte(k)
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or '}'")
		}
	}
}

// array reads [v, ...], calling elem with the scanner at each value.
func (s *scanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or ']'")
		}
	}
}

// rawString reads a string and returns its bytes between the quotes, escapes
// left as they are.
func (s *scanner) rawString() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return s.b[start : s.i-1], nil
		default:
			s.i++
		}
	}
	return nil, s.errorf("unterminated string")
}

// str reads a string value, unescaped.
func (s *scanner) str() (string, error) {
	raw, err := s.rawString()
	if err != nil {
		return "", err
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), nil
	}
	var v string
	if err := json.Unmarshal(s.b[s.i-len(raw)-2:s.i], &v); err != nil {
		return "", s.errorf("bad string: %v", err)
	}
	return v, nil
}

// int reads an integer number.
func (s *scanner) int() (int, error) {
	s.ws()
	start := s.i
	for s.i < len(s.b) && (s.b[s.i] == '-' || s.b[s.i] >= '0' && s.b[s.i] <= '9') {
		s.i++
	}
	v, err := strconv.Atoi(string(s.b[start:s.i]))
	if err != nil {
		return 0, s.errorf("want an integer")
	}
	return v, nil
}

var errDepth = errors.New("batch response: nested too deeply")

// skip consumes one value of any kind.
func (s *scanner) skip() error {
	switch c := s.peek(); c {
	case '"':
		_, err := s.rawString()
		return err
	case '{', '[':
		// Walk to the matching bracket, stepping over strings.
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, err := s.rawString(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
				if depth > 1000 {
					return errDepth
				}
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return nil
				}
			}
			s.i++
		}
		return s.errorf("unterminated value")
	case 0:
		return s.errorf("unexpected end")
	default:
		// Numbers and literals: up to the next delimiter.
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if s.i == start {
					return s.errorf("empty value")
				}
				return nil
			}
			s.i++
		}
		return nil
	}
}
