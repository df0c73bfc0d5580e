package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stockd/stockd"
)

// decodeBody reads a JSON request body into dst strictly: one JSON value, no
// unknown fields, no trailing data, at most the configured size. An empty
// body is allowed only when optional is true, and leaves dst as it is.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	buf := bodies.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // keep small buffers only
			buf.Reset()
			bodies.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return stockd.Errorf(stockd.CodeBodyTooLarge, "the body is larger than %d bytes", tooBig.Limit)
		}
		return badRequest("reading the body: %v", err)
	}
	return decodeJSON(buf.Bytes(), dst, optional)
}

// bodies recycles the buffers request bodies are read into.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeJSON decodes data into dst strictly; see decodeBody.
func decodeJSON(data []byte, dst any, optional bool) error {
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return nil
		}
		return badRequest("a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badRequest("malformed JSON: %s", describeJSONError(err))
	}
	if dec.More() {
		return badRequest("malformed JSON: unexpected data after the first value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed JSON: unexpected data after the first value")
	}
	return exactNames(data, dst)
}

// namesChecker is implemented by bodies whose names exactNames cannot check
// by scanning, because they carry raw JSON that is decoded, and checked, on
// its own later.
type namesChecker interface {
	checkNames(data []byte) error
}

// exactNames fails if an object in data has a key that is not exactly the
// JSON name of a field. encoding/json matches names regardless of case, so
// {"QUANTITY":5} decodes; a strict API must not accept it, nor let
// {"quantity":1,"Quantity":500} pick one of the two. It scans the bytes once,
// without decoding them again: every key must be one of the names the type
// can have at any depth, and the decoder, which refuses unknown fields, has
// already checked that each is known where it stands.
func exactNames(data []byte, dst any) error {
	if c, ok := dst.(namesChecker); ok {
		return c.checkNames(data)
	}
	names := jsonNames(reflect.TypeOf(dst))
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue
		}
		start, escaped := i+1, false
		for i++; i < len(data) && data[i] != '"'; i++ {
			if data[i] == '\\' {
				escaped = true
				i++
			}
		}
		end := i
		j := end + 1
		for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
			j++
		}
		if j >= len(data) || data[j] != ':' {
			continue // a string value, not a key
		}
		key := string(data[start:end])
		if escaped {
			if k, err := strconv.Unquote(`"` + key + `"`); err == nil {
				key = k
			}
		}
		if !names[key] {
			return badRequest("malformed JSON: unknown field %q (names are case-sensitive)", key)
		}
	}
	return nil
}

// nameCache maps a type to every JSON field name it can contain, at any
// depth.
var nameCache sync.Map

func jsonNames(t reflect.Type) map[string]bool {
	if m, ok := nameCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := make(map[string]bool)
	collectNames(t, m, map[reflect.Type]bool{})
	nameCache.Store(t, m)
	return m
}

func collectNames(t reflect.Type, names map[string]bool, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	for name, ft := range jsonFields(t) {
		names[name] = true
		collectNames(ft, names, seen)
	}
}

// fieldCache maps a struct type to its fields by exact JSON name.
var fieldCache sync.Map

func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := make(map[string]reflect.Type)
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}

// describeJSONError makes encoding/json's errors read well in a problem.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("%s at byte %d", syntax.Error(), syntax.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the body"
		}
		return fmt.Sprintf("%s must be %s, not %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends too early"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	return strings.TrimPrefix(msg, "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint64":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return goKind
}

// duration parses a Go-style duration such as "15m". An empty string is the
// zero duration.
func duration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, stockd.Errorf(stockd.CodeInvalid, "%s must be a duration like \"15m\" or \"90s\", got %q", field, s)
	}
	return d, nil
}
