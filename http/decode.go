package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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
	return nil
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
