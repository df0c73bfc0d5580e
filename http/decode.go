package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// bind fills req, a pointer to op's request type, from the request: path
// segments, query parameters and headers by the type's api.Binding, and the
// JSON body strictly (see decodeJSON).
func (s *Server) bind(w http.ResponseWriter, r *http.Request, op *api.Operation, req any) error {
	v := reflect.ValueOf(req).Elem()
	b := api.BindingOf(v.Type())
	if b.HasBody {
		if err := s.readJSON(w, r, req, b.BodyNames, anyDepth, op.OptionalBody); err != nil {
			return err
		}
	} else if r.Method != http.MethodGet {
		// An operation without a body takes none, or an empty object.
		if err := s.readJSON(w, r, &struct{}{}, nil, anyDepth, true); err != nil {
			return err
		}
	}
	for _, p := range b.Path {
		v.Field(p.Index).SetString(r.PathValue(p.Name))
	}
	if len(b.Query) > 0 {
		q := r.URL.Query()
		for _, p := range b.Query {
			vals := q[p.Name]
			switch {
			case p.Multi:
				v.Field(p.Index).Set(reflect.ValueOf(vals))
			case len(vals) > 1:
				return stockd.Errorf(stockd.CodeInvalid, "the query parameter %s may be given once, got %d", p.Name, len(vals))
			case len(vals) == 1:
				v.Field(p.Index).SetString(vals[0])
			}
		}
	}
	for _, p := range b.Header {
		v.Field(p.Index).SetString(r.Header.Get(p.Name))
	}
	return nil
}

// readJSON reads a JSON request body into dst strictly, at most the
// configured size; see decodeJSON.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, dst any, names map[string]bool, depth int, optional bool) error {
	buf, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	defer releaseBody(buf)
	return decodeJSON(buf.Bytes(), dst, names, depth, optional)
}

// readBody reads a request body of at most the configured size into a
// buffer the caller hands back to releaseBody once it is done with its
// bytes. A body must be typed as JSON: the types a browser may send across
// origins without asking first (text/plain, forms) are refused, so that no
// page elsewhere can post to the API (CSRF).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, error) {
	if r.ContentLength != 0 {
		if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
			return nil, err
		}
	}
	buf := bodies.Get().(*bytes.Buffer)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)); err != nil {
		releaseBody(buf)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, stockd.Errorf(stockd.CodeBodyTooLarge, "the body is larger than %d bytes", tooBig.Limit)
		}
		return nil, badRequest("reading the body: %v", err)
	}
	return buf, nil
}

// releaseBody recycles a buffer of readBody.
func releaseBody(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 { // keep small buffers only
		buf.Reset()
		bodies.Put(buf)
	}
}

// checkContentType accepts JSON media types only: application/json and
// application/*+json, with any parameters.
func checkContentType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil
	}
	if ct == "" {
		ct = "none"
	}
	return stockd.Errorf(stockd.CodeUnsupportedMediaType, "send the body as JSON, with Content-Type: application/json (got %s)", ct)
}

// bodies recycles the buffers request bodies are read into.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeJSON decodes data into dst strictly: one JSON value, no unknown
// fields, no trailing data, object keys exactly as named (names, when not
// nil, lists those allowed in objects at most depth objects deep) and none
// repeated within an object.
// An empty body is allowed only when optional is true, and leaves dst as it
// is.
func decodeJSON(data []byte, dst any, names map[string]bool, depth int, optional bool) error {
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
	if names == nil {
		names = api.JSONNames(reflect.TypeOf(dst).Elem())
	}
	return checkKeys(data, names, depth)
}

// anyDepth checks keys at every depth.
const anyDepth = 1 << 30

// checkKeys scans data, which the decoder has already found to be valid
// JSON, once. It refuses a key of an object nested at most maxDepth objects
// deep that is not exactly one of names, and a key that repeats within one
// object. encoding/json matches names regardless of case, so {"QUANTITY":5}
// decodes, and lets the last of two equal keys win, so {"quantity":1,
// "quantity":500} decodes as 500: a strict API must accept neither. The
// decoder, which refuses unknown fields, has already checked that each known
// key stands where it may.
func checkKeys(data []byte, names map[string]bool, maxDepth int) error {
	// keys holds the keys seen in each open container; arrays have none.
	var keys [][][]byte
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{':
			depth++
			keys = append(keys, nil)
			continue
		case '[':
			keys = append(keys, nil)
			continue
		case '}':
			depth--
			keys = keys[:len(keys)-1]
			continue
		case ']':
			keys = keys[:len(keys)-1]
			continue
		case '"':
		default:
			continue
		}
		start, escaped := i+1, false
		for i++; i < len(data) && data[i] != '"'; i++ {
			if data[i] == '\\' {
				escaped = true
				i++
			}
		}
		key := data[start:i]
		j := i + 1
		for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
			j++
		}
		if j >= len(data) || data[j] != ':' || len(keys) == 0 {
			continue // a string value, not a key
		}
		if escaped {
			if k, err := strconv.Unquote(`"` + string(key) + `"`); err == nil {
				key = []byte(k)
			}
		}
		if depth <= maxDepth && !names[string(key)] {
			return badRequest("malformed JSON: unknown field %q (names are case-sensitive)", printable(key))
		}
		top := len(keys) - 1
		for _, k := range keys[top] {
			if bytes.Equal(k, key) {
				return badRequest("malformed JSON: the field %q appears twice in one object", printable(key))
			}
		}
		keys[top] = append(keys[top], key)
	}
	return nil
}

// printable bounds a name quoted in an error.
func printable(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
		for !utf8.Valid(b) && len(b) > 0 {
			b = b[:len(b)-1]
		}
		return string(b) + "…"
	}
	return string(b)
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
