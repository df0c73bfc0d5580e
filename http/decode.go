package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/stockd/stockd"
)

// decodeBody reads a JSON request body into dst strictly: one JSON value, no
// unknown fields, no trailing data, at most the configured size. An empty
// body is allowed only when optional is true, and leaves dst as it is.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return stockd.Errorf(stockd.CodeBodyTooLarge, "the body is larger than %d bytes", tooBig.Limit)
		}
		return badRequest("reading the body: %v", err)
	}
	return decodeJSON(data, dst, optional)
}

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
	return exactNames(data, reflect.TypeOf(dst))
}

// exactNames fails if an object in data has a key that is not exactly the
// JSON name of a field of the type it decoded into. encoding/json matches
// names regardless of case, so {"QUANTITY":5} decodes; a strict API must not
// accept it, nor let {"quantity":1,"Quantity":500} pick one of the two.
func exactNames(data []byte, t reflect.Type) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return badRequest("malformed JSON: %s", describeJSONError(err))
	}
	return walkNames(v, t, "")
}

func walkNames(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		for k, fv := range obj {
			ft, ok := fields[k]
			if !ok {
				return badRequest("malformed JSON: unknown field %q%s (names are case-sensitive)", k, at(path))
			}
			if err := walkNames(fv, ft, path+"."+k); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if t == reflect.TypeOf(json.RawMessage(nil)) {
			return nil // decoded, and checked, on its own later
		}
		if arr, ok := v.([]any); ok {
			for i, e := range arr {
				if err := walkNames(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return " in " + strings.TrimPrefix(path, ".")
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
