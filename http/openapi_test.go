package http

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// The OpenAPI document is a promise to clients: these tests keep it true.
// They need no JSON Schema library: they check the parts of the document
// that drift when the code changes (routes, property names, required
// properties, enums) against the server and the types it encodes.

// oaMethods are the operation keys of an OpenAPI path item.
var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaLoad decodes the embedded document.
func oaLoad(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// oaOperations returns the operations of the document as
// "METHOD /path" patterns, the form Server.Routes uses.
func oaOperations(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("openapi.json has no paths object")
	}
	out := make(map[string]map[string]any)
	for path, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not an object", path)
		}
		for _, m := range oaMethods {
			if op, ok := item[m].(map[string]any); ok {
				out[strings.ToUpper(m)+" "+path] = op
			}
		}
	}
	return out
}

// TestOpenAPIRoutesDocumented fails when the server serves a route the
// document does not describe, or the document describes one the server does
// not serve.
func TestOpenAPIRoutesDocumented(t *testing.T) {
	doc := oaLoad(t)
	ops := oaOperations(t, doc)
	routes := NewServer(Config{}).Routes()
	if len(routes) == 0 {
		t.Fatal("the server registers no routes")
	}
	served := make(map[string]bool, len(routes))
	for _, r := range routes {
		method, path, ok := strings.Cut(r, " ")
		if !ok || method == "" || !strings.HasPrefix(path, "/") {
			t.Errorf("route %q is not of the form \"METHOD /path\": the document cannot be checked against it", r)
			continue
		}
		// Go's {name...} wildcard is {name} in OpenAPI; {$} only anchors.
		path = strings.ReplaceAll(strings.TrimSuffix(path, "{$}"), "...}", "}")
		key := method + " " + path
		served[key] = true
		if _, ok := ops[key]; !ok {
			t.Errorf("route %s is served but not documented in openapi.json", key)
		}
	}
	for key := range ops {
		if !served[key] {
			t.Errorf("openapi.json documents %s, which the server does not serve", key)
		}
	}
}

// TestOpenAPIDocumentValid checks the document's structure: OpenAPI 3.1.0,
// every $ref and discriminator mapping resolves, every operation has a unique
// operationId, a summary and at least one response, and every path template
// parameter is declared.
func TestOpenAPIDocumentValid(t *testing.T) {
	doc := oaLoad(t)
	if v, _ := doc["openapi"].(string); v != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", v)
	}
	if info, _ := doc["info"].(map[string]any); info == nil || info["title"] == nil || info["version"] == nil {
		t.Error("info must have a title and a version")
	}

	refs := 0
	oaWalk(doc, "#", func(ptr string, key string, v any) {
		switch {
		case key == "$ref":
			refs++
			s, ok := v.(string)
			if !ok {
				t.Errorf("%s: $ref is not a string", ptr)
				return
			}
			if _, err := oaResolve(doc, s); err != nil {
				t.Errorf("%s: $ref %q does not resolve: %v", ptr, s, err)
			}
		case key == "mapping" && strings.HasSuffix(ptr, "/discriminator"):
			m, _ := v.(map[string]any)
			for name, target := range m {
				s, _ := target.(string)
				if _, err := oaResolve(doc, s); err != nil {
					t.Errorf("%s: discriminator mapping %s → %q does not resolve: %v", ptr, name, s, err)
				}
			}
		}
	})
	if refs == 0 {
		t.Error("the document has no $ref at all; is it the real document?")
	}

	ids := make(map[string]string)
	ops := oaOperations(t, doc)
	paths := doc["paths"].(map[string]any)
	for key, op := range ops {
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", key)
		} else if other, dup := ids[id]; dup {
			t.Errorf("operationId %q is used by both %s and %s", id, other, key)
		} else {
			ids[id] = key
		}
		if s, _ := op["summary"].(string); s == "" {
			t.Errorf("%s has no summary", key)
		}
		if s, _ := op["description"].(string); s == "" {
			t.Errorf("%s has no description", key)
		}
		responses, _ := op["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s has no responses", key)
		}
		for status := range responses {
			if n, err := strconv.Atoi(status); (err != nil || n < 100 || n > 599) && status != "default" {
				t.Errorf("%s has response key %q, which is not a status code", key, status)
			}
		}

		// Every {name} of the path is a declared path parameter.
		_, path, _ := strings.Cut(key, " ")
		declared := make(map[string]bool)
		item := paths[path].(map[string]any)
		for _, list := range []any{item["parameters"], op["parameters"]} {
			params, _ := list.([]any)
			for _, p := range params {
				pm, _ := p.(map[string]any)
				if ref, ok := pm["$ref"].(string); ok {
					r, err := oaResolve(doc, ref)
					if err != nil {
						continue // reported above
					}
					pm, _ = r.(map[string]any)
				}
				if pm["in"] == "path" {
					if pm["required"] != true {
						t.Errorf("%s: path parameter %v must be required", key, pm["name"])
					}
					declared[pm["name"].(string)] = true
				}
			}
		}
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") && !declared[seg[1:len(seg)-1]] {
				t.Errorf("%s: path parameter %s is not declared", key, seg)
			}
		}
	}

	// The file on disk is what is embedded: nobody forgot to rebuild.
	onDisk, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, openAPIDocument) {
		t.Error("openapi.json on disk differs from the embedded document")
	}
}

// oaWalk calls fn for every member of every object in v, with the JSON
// pointer of the object that holds it.
func oaWalk(v any, ptr string, fn func(ptr, key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			fn(ptr, k, e)
			oaWalk(e, ptr+"/"+oaEscape(k), fn)
		}
	case []any:
		for i, e := range x {
			oaWalk(e, ptr+"/"+strconv.Itoa(i), fn)
		}
	}
}

func oaEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// oaResolve resolves a local reference such as
// "#/components/schemas/Problem" within doc.
func oaResolve(doc any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, oaError("only references within the document are allowed")
	}
	cur := doc
	if rest == "" {
		return cur, nil
	}
	if !strings.HasPrefix(rest, "/") {
		return nil, oaError("not a JSON pointer")
	}
	for _, tok := range strings.Split(rest[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, oaError("no member " + strconv.Quote(tok))
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, oaError("no element " + strconv.Quote(tok))
			}
			cur = c[i]
		default:
			return nil, oaError("cannot descend into a scalar at " + strconv.Quote(tok))
		}
	}
	return cur, nil
}

type oaError string

func (e oaError) Error() string { return string(e) }

// TestOpenAPIServed checks that GET /openapi.json serves the embedded
// document as JSON, on a server without a Service.
func TestOpenAPIServed(t *testing.T) {
	srv := NewServer(Config{})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d, want 200: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), openAPIDocument) {
		t.Error("GET /openapi.json does not serve the embedded document")
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Error("GET /openapi.json serves invalid JSON")
	}
}

// Schema helpers.

// oaSchema returns components.schemas[name].
func oaSchema(t *testing.T, doc map[string]any, name string) map[string]any {
	t.Helper()
	v, err := oaResolve(doc, "#/components/schemas/"+oaEscape(name))
	if err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	return v.(map[string]any)
}

// oaDeref follows a schema's $ref, if it has one.
func oaDeref(t *testing.T, doc map[string]any, s map[string]any) map[string]any {
	t.Helper()
	for s != nil {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		v, err := oaResolve(doc, ref)
		if err != nil {
			t.Fatalf("$ref %s: %v", ref, err)
		}
		s, _ = v.(map[string]any)
	}
	return s
}

func oaProperties(s map[string]any) []string {
	props, _ := s["properties"].(map[string]any)
	out := make([]string, 0, len(props))
	for k := range props {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func oaRequired(s map[string]any) []string {
	req, _ := s["required"].([]any)
	out := make([]string, 0, len(req))
	for _, r := range req {
		out = append(out, r.(string))
	}
	sort.Strings(out)
	return out
}

func oaEnum(s map[string]any) []string {
	enum, _ := s["enum"].([]any)
	out := make([]string, 0, len(enum))
	for _, e := range enum {
		out = append(out, e.(string))
	}
	sort.Strings(out)
	return out
}

// oaJSONObject encodes v and decodes it as a JSON object.
func oaJSONObject(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%T does not encode as a JSON object: %s", v, b)
	}
	return m
}

func oaKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// oaDiff returns what is in a and not in b.
func oaDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// oaCheckObject checks that a JSON object has every property the
// schema requires and none it does not list, and descends into properties
// whose schema is an object (or array of objects) with properties of its own.
func oaCheckObject(t *testing.T, doc map[string]any, where string, s map[string]any, obj map[string]any) {
	t.Helper()
	s = oaDeref(t, doc, s)
	props := oaProperties(s)
	keys := oaKeys(obj)
	if missing := oaDiff(oaRequired(s), keys); len(missing) > 0 {
		t.Errorf("%s: required %v missing from %v", where, missing, keys)
	}
	if undocumented := oaDiff(keys, props); len(undocumented) > 0 {
		t.Errorf("%s: %v not among the schema's properties %v", where, undocumented, props)
	}
	propSchemas, _ := s["properties"].(map[string]any)
	for _, k := range keys {
		ps, _ := propSchemas[k].(map[string]any)
		ps = oaDeref(t, doc, ps)
		if ps == nil {
			continue
		}
		switch v := obj[k].(type) {
		case map[string]any:
			if len(oaProperties(ps)) > 0 {
				oaCheckObject(t, doc, where+"."+k, ps, v)
			}
		case []any:
			items, _ := ps["items"].(map[string]any)
			items = oaDeref(t, doc, items)
			if items == nil || len(oaProperties(items)) == 0 {
				continue
			}
			for i, e := range v {
				if m, ok := e.(map[string]any); ok {
					oaCheckObject(t, doc, where+"."+k+"["+strconv.Itoa(i)+"]", items, m)
				}
			}
		}
	}
}

// oaFill sets every field of the value v points to to a non-zero value,
// recursively, so that no omitempty field is left out of its JSON: slices get
// one element, pointers a filled value, times a fixed moment.
func oaFill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		oaFill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				oaFill(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // json.RawMessage and []byte
			v.SetBytes([]byte(`{"x":1}`))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		oaFill(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		oaFill(k)
		oaFill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Interface:
		if v.IsNil() && v.NumMethod() == 0 {
			v.Set(reflect.ValueOf(map[string]any{"x": 1}))
		}
	}
}

// oaFilled returns a copy of v with every field set. For an interface type it
// fills a copy of the dynamic value.
func oaFilled[T any](v T) T {
	if rv := reflect.ValueOf(v); rv.IsValid() && reflect.TypeFor[T]().Kind() == reflect.Interface {
		c := reflect.New(rv.Type()).Elem()
		c.Set(rv)
		oaFill(c)
		return c.Interface().(T)
	}
	oaFill(reflect.ValueOf(&v).Elem())
	return v
}

// oaCheckType checks that the schema documents exactly the JSON
// properties of a Go type: the filled value shows every property it can
// have, and the zero value shows those always present, which are the
// schema's required ones. Use it for response types; request types (whose
// required fields are a matter of validation, not encoding) use
// oaCheckRequest.
func oaCheckType[T any](t *testing.T, doc map[string]any, name string, zero T) {
	t.Helper()
	s := oaSchema(t, doc, name)
	full := oaJSONObject(t, oaFilled(zero))
	if got, want := oaKeys(full), oaProperties(s); !slices.Equal(got, want) {
		t.Errorf("schema %s: properties %v, but %T encodes %v (undocumented %v, not encoded %v)",
			name, want, zero, got, oaDiff(got, want), oaDiff(want, got))
	}
	always := oaKeys(oaJSONObject(t, zero))
	if got, want := always, oaRequired(s); !slices.Equal(got, want) {
		t.Errorf("schema %s: required %v, but %T always encodes %v (add to required %v, not always present %v)",
			name, want, zero, got, oaDiff(got, want), oaDiff(want, got))
	}
	oaCheckObject(t, doc, name, s, full)
}

// oaCheckRequest checks that a request schema is strict and
// documents exactly the fields the decoder accepts.
func oaCheckRequest[T any](t *testing.T, doc map[string]any, name string, zero T) {
	t.Helper()
	s := oaSchema(t, doc, name)
	if ap, ok := s["additionalProperties"].(bool); !ok || ap {
		t.Errorf("request schema %s must say additionalProperties: false, as the decoder refuses unknown fields", name)
	}
	got, want := oaKeys(oaJSONObject(t, oaFilled(zero))), oaProperties(s)
	if !slices.Equal(got, want) {
		t.Errorf("request schema %s: properties %v, but %T decodes %v (undocumented %v, not accepted %v)",
			name, want, zero, got, oaDiff(got, want), oaDiff(want, got))
	}
	if missing := oaDiff(oaRequired(s), want); len(missing) > 0 {
		t.Errorf("request schema %s requires %v, which are not among its properties", name, missing)
	}
}

// TestOpenAPIResponseShapes checks that the schemas of the response bodies
// list exactly the properties the server's types encode, and require exactly
// those always present.
func TestOpenAPIResponseShapes(t *testing.T) {
	doc := oaLoad(t)
	oaCheckType(t, doc, "Location", stockd.Location{})
	oaCheckType(t, doc, "LocationList", api.LocationList{})
	oaCheckType(t, doc, "SKUConfig", stockd.SKUConfig{})
	oaCheckType(t, doc, "SKUState", stockd.SKUState{})
	oaCheckType(t, doc, "LocationState", stockd.LocationState{})
	oaCheckType(t, doc, "LotView", stockd.LotView{})
	oaCheckType(t, doc, "HoldView", stockd.HoldView{})
	oaCheckType(t, doc, "Reservation", stockd.Reservation{})
	oaCheckType(t, doc, "ReservationLine", stockd.ReservationLine{})
	oaCheckType(t, doc, "Allocation", stockd.Allocation{})
	oaCheckType(t, doc, "Transfer", stockd.Transfer{})
	oaCheckType(t, doc, "Receipt", stockd.Receipt{})
	oaCheckType(t, doc, "Adjustment", stockd.Adjustment{})
	oaCheckType(t, doc, "Count", stockd.Count{})
	oaCheckType(t, doc, "Shortfall", stockd.Shortfall{})
	oaCheckType(t, doc, "Problem", Problem{})
	oaCheckType(t, doc, "EventEnvelope", api.EventJSON{})
	oaCheckType(t, doc, "EventPage", api.EventPage{})
	oaCheckType(t, doc, "LotQty", stockd.LotQty{})
	oaCheckType(t, doc, "BatchResult", api.BatchResult{})
	oaCheckType(t, doc, "BatchResponse", api.BatchResponse{})

	// The enums are the domain's values.
	enums := map[string][]string{
		"LocationKind":      {string(stockd.KindWarehouse), string(stockd.KindStore), string(stockd.KindThirdParty)},
		"AdjustReason":      {string(stockd.ReasonCount), string(stockd.ReasonDamaged), string(stockd.ReasonLost), string(stockd.ReasonFound), string(stockd.ReasonReturned), string(stockd.ReasonOther)},
		"ReservationStatus": {string(stockd.StatusPending), string(stockd.StatusHeld), string(stockd.StatusCommitted), string(stockd.StatusReleased), string(stockd.StatusExpired)},
		"ReleaseReason":     {string(stockd.ReleaseRequested), string(stockd.ReleaseExpired), string(stockd.ReleaseCompensated), string(stockd.ReleasePartialCommit)},
		"TransferStatus":    {string(stockd.TransferStatusInTransit), string(stockd.TransferStatusArrived)},
	}
	codes := make([]string, 0, len(problemTypes))
	for c := range problemTypes {
		codes = append(codes, string(c))
	}
	enums["ErrorCode"] = codes
	for name, want := range enums {
		sort.Strings(want)
		if got := oaEnum(oaSchema(t, doc, name)); !slices.Equal(got, want) {
			t.Errorf("enum %s = %v, want %v", name, got, want)
		}
	}
}

// TestOpenAPIReadModelShapes checks the schemas of the eventually consistent
// answers against the read model's types, which the server encodes as they
// are, and an answer served through a ReadModel.
func TestOpenAPIReadModelShapes(t *testing.T) {
	doc := oaLoad(t)
	oaCheckType(t, doc, "Availability", stockd.Availability{})
	oaCheckType(t, doc, "SKUAvailability", stockd.AvailabilityItem{})
	oaCheckType(t, doc, "LocationAvailability", stockd.LocationAvailability{})
	oaCheckType(t, doc, "Lag", stockd.Lag{})
	oaCheckType(t, doc, "ReservationList", stockd.ReservationPage{})

	srv := NewServer(Config{ReadModel: &ReadModel{
		Availability: func(skus []string) any {
			return oaFilled(stockd.Availability{})
		},
		ReservationsByCustomer: func(customer string, limit int) any {
			return oaFilled(stockd.ReservationPage{})
		},
	}})
	for target, schema := range map[string]string{
		"/v1/availability?sku=A&sku=B":  "Availability",
		"/v1/reservations?customer=c-9": "ReservationList",
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d: %s", target, rec.Code, rec.Body)
			continue
		}
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		oaCheckObject(t, doc, target, oaSchema(t, doc, schema), got)
	}
}

// TestOpenAPIRequestShapes checks that every request schema is strict and
// lists exactly the fields its body type decodes.
func TestOpenAPIRequestShapes(t *testing.T) {
	doc := oaLoad(t)
	oaCheckRequest(t, doc, "LocationBody", api.LocationBody{})
	oaCheckRequest(t, doc, "SKUConfigBody", api.SKUConfigBody{})
	oaCheckRequest(t, doc, "ReceiptBody", api.ReceiptBody{})
	oaCheckRequest(t, doc, "AdjustmentBody", api.AdjustmentBody{})
	oaCheckRequest(t, doc, "CountBody", api.CountBody{})
	oaCheckRequest(t, doc, "TransferBody", api.TransferBody{})
	oaCheckRequest(t, doc, "ReservationBody", api.ReservationBody{})
	oaCheckRequest(t, doc, "ReserveLine", stockd.ReserveLine{})
	oaCheckRequest(t, doc, "CommitBody", api.CommitBody{})
	oaCheckRequest(t, doc, "CommitLine", stockd.CommitLine{})
	oaCheckRequest(t, doc, "ExtendBody", api.ExtendBody{})
	oaCheckRequest(t, doc, "EmptyBody", struct{}{})
	oaCheckRequest(t, doc, "BatchBody", api.BatchBody{})
	oaCheckRequest(t, doc, "BatchOperation", api.BatchOperation{})
	oaCheckRequest(t, doc, "BatchIDBody", idBody{})
	oaCheckRequest(t, doc, "BatchCommitBody", commitOp{})
	oaCheckRequest(t, doc, "BatchExtendBody", extendOp{})

	// Every batch op the server knows is documented, with its body.
	op := oaSchema(t, doc, "BatchOperation")
	props := op["properties"].(map[string]any)
	ops := oaEnum(props["op"].(map[string]any))
	want := []string{"adjust", "arrive", "commit", "count", "extend", "release", "receive", "reserve", "transfer"}
	sort.Strings(want)
	if !slices.Equal(ops, want) {
		t.Errorf("BatchOperation op enum = %v, want %v", ops, want)
	}
	srv := NewServer(Config{})
	for _, name := range ops {
		// An op the server does not know is refused as unknown before
		// its body is read; a known one fails on its empty body.
		_, _, err := srv.runOperation(context.Background(), api.BatchOperation{Op: name})
		if err == nil || strings.Contains(err.Error(), "unknown operation") {
			t.Errorf("documented batch op %q: %v", name, err)
		}
	}
	_, _, err := srv.runOperation(context.Background(), api.BatchOperation{Op: "undocumented"})
	if err == nil || !strings.Contains(err.Error(), "unknown operation") {
		t.Errorf("an unknown op is not refused as unknown: %v", err)
	}
	conditional, _ := op["allOf"].([]any)
	if len(conditional) != len(ops) {
		t.Errorf("BatchOperation has %d body conditions for %d ops", len(conditional), len(ops))
	}
}

// oaEventData is one value of every event data type.
var oaEventData = []stockd.EventData{
	stockd.StockReceived{}, stockd.StockAdjusted{}, stockd.StockCounted{}, stockd.StockTransferred{},
	stockd.TransferArrived{}, stockd.SKUConfigured{}, stockd.LocationConfigured{}, stockd.StockReserved{},
	stockd.ReservationExtended{}, stockd.ReservationCommitted{}, stockd.ReservationReleased{}, stockd.LotExpired{},
	stockd.ShortageDetected{}, stockd.SagaStarted{}, stockd.SagaStepAcked{}, stockd.ReservationHeld{},
	stockd.SagaStepStarted{}, stockd.SagaSettled{},
}

// TestOpenAPIEventTypes checks that every event type is documented under its
// name, chosen by the discriminator on "type", with exactly its data's
// properties.
func TestOpenAPIEventTypes(t *testing.T) {
	doc := oaLoad(t)
	var names []string
	for typ := stockd.EventType(1); ; typ++ {
		name := typ.String()
		if strings.HasPrefix(name, "EventType(") {
			break
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if got := oaEnum(oaSchema(t, doc, "EventType")); !slices.Equal(got, names) {
		t.Errorf("EventType enum = %v, want the event types %v", got, names)
	}

	ev := oaSchema(t, doc, "EventJSON")
	disc, _ := ev["discriminator"].(map[string]any)
	if disc["propertyName"] != "type" {
		t.Errorf("EventJSON discriminator = %v, want on \"type\"", disc)
	}
	mapping, _ := disc["mapping"].(map[string]any)
	if got := oaKeys(mapping); !slices.Equal(got, names) {
		t.Errorf("EventJSON discriminator maps %v, want %v", got, names)
	}
	if oneOf, _ := ev["oneOf"].([]any); len(oneOf) != len(names) {
		t.Errorf("EventJSON has %d alternatives for %d event types", len(oneOf), len(names))
	}

	seen := make(map[string]bool)
	for _, d := range oaEventData {
		name := d.EventType().String()
		seen[name] = true
		// The variant pins type and data.
		variant, err := oaResolve(doc, mapping[name].(string))
		if err != nil {
			t.Errorf("event %s: %v", name, err)
			continue
		}
		b, _ := json.Marshal(variant)
		if !bytes.Contains(b, []byte(`"const":"`+name+`"`)) || !bytes.Contains(b, []byte(`"#/components/schemas/`+name+`"`)) {
			t.Errorf("event variant %s does not pin type %q and data %s: %s", mapping[name], name, name, b)
		}
		oaCheckType(t, doc, name, d)
	}
	for _, n := range names {
		if !seen[n] {
			t.Errorf("event type %s has no value in this test's oaEventData: add it", n)
		}
	}
	// A real event renders with the envelope's properties.
	e := stockd.Event{Partition: 3, Position: 17, SKU: "A", Version: 1, Time: time.Now(), CommandID: "r-1",
		Data: stockd.StockReceived{Location: "w1", Quantity: 10}}
	oaCheckObject(t, doc, "EventJSON", oaSchema(t, doc, "EventEnvelope"), oaJSONObject(t, NewEventJSON(e)))
}

// oaStubService answers the few calls TestOpenAPIServerResponses makes; any
// other call panics on the nil embedded interface.
type oaStubService struct {
	stockd.Service
	reserve func(stockd.Reserve) (stockd.Reservation, bool, error)
	commit  func(stockd.CommitReservation) (stockd.Reservation, error)
}

func (s oaStubService) Reserve(_ context.Context, c stockd.Reserve) (stockd.Reservation, bool, error) {
	return s.reserve(c)
}

func (s oaStubService) Commit(_ context.Context, c stockd.CommitReservation) (stockd.Reservation, error) {
	return s.commit(c)
}

// TestOpenAPIServerResponses sends requests to a server and checks real
// answers against the document: the status is documented for the operation,
// the media type is the documented one, and the body has every property its
// schema requires and none it does not list.
func TestOpenAPIServerResponses(t *testing.T) {
	doc := oaLoad(t)
	ops := oaOperations(t, doc)
	stub := oaStubService{
		reserve: func(c stockd.Reserve) (stockd.Reservation, bool, error) {
			if c.ID == "short" {
				return stockd.Reservation{}, false, &stockd.Error{Code: stockd.CodeInsufficientStock, Message: "not enough stock",
					Lines: []stockd.Shortfall{{SKU: "A", Requested: 5, Available: 3}}}
			}
			return oaFilled(stockd.Reservation{}), true, nil
		},
		commit: func(c stockd.CommitReservation) (stockd.Reservation, error) {
			return stockd.Reservation{}, &stockd.Error{Code: stockd.CodeNotHeld, Message: "reservation \"cart-42\" is released", Status: stockd.StatusReleased}
		},
	}
	srv := NewServer(Config{Service: stub})

	tests := []struct {
		name        string
		method      string
		target      string
		body        string
		operation   string // "" for requests no route serves
		status      int
		contentType string
		schema      string
	}{
		{"unknown path", "GET", "/no/such/route", "", "", 404, "application/problem+json", "Problem"},
		{"method not allowed", "DELETE", "/v1/reservations/cart-42", "", "", 405, "application/problem+json", "Problem"},
		{"malformed body", "POST", "/v1/receipts", `{"id":`, "POST /v1/receipts", 400, "application/problem+json", "Problem"},
		{"unknown field", "POST", "/v1/receipts", `{"qty":1}`, "POST /v1/receipts", 400, "application/problem+json", "Problem"},
		{"bad ttl", "POST", "/v1/reservations", `{"id":"c","ttl":"soon","lines":[{"sku":"A","quantity":1}]}`, "POST /v1/reservations", 422, "application/problem+json", "Problem"},
		{"insufficient stock", "POST", "/v1/reservations", `{"id":"short","lines":[{"sku":"A","quantity":5}]}`, "POST /v1/reservations", 409, "application/problem+json", "Problem"},
		{"reserved", "POST", "/v1/reservations", `{"id":"cart-42","lines":[{"sku":"A","quantity":2}]}`, "POST /v1/reservations", 201, "application/json", "Reservation"},
		{"not held", "POST", "/v1/reservations/cart-42/commit", "", "POST /v1/reservations/{id}/commit", 409, "application/problem+json", "Problem"},
		{"no read model", "GET", "/v1/availability?sku=A&sku=B", "", "GET /v1/availability", 503, "application/problem+json", "Problem"},
		{"availability without sku", "GET", "/v1/availability", "", "GET /v1/availability", 422, "application/problem+json", "Problem"},
		{"customer required", "GET", "/v1/reservations", "", "GET /v1/reservations", 422, "application/problem+json", "Problem"},
		{"bad as_of", "GET", "/v1/skus/A?as_of=yesterday", "", "GET /v1/skus/{sku}", 422, "application/problem+json", "Problem"},
		{"bad limit", "GET", "/v1/skus/A/events?limit=0", "", "GET /v1/skus/{sku}/events", 422, "application/problem+json", "Problem"},
		{"empty batch", "POST", "/v1/batch", `{"operations":[]}`, "POST /v1/batch", 422, "application/problem+json", "Problem"},
		{"body too large", "POST", "/v1/batch", `{"operations":[` + strings.Repeat(" ", 1<<20) + `]}`, "POST /v1/batch", 413, "application/problem+json", "Problem"},
		{"batch", "POST", "/v1/batch", `{"operations":[{"op":"reserve","body":{"id":"short","lines":[{"sku":"A","quantity":5}]}},{"op":"reserve","body":{"id":"ok","lines":[{"sku":"A","quantity":1}]}},{"op":"nope","body":{}}]}`,
			"POST /v1/batch", 200, "application/json", "BatchResponse"},
		{"healthz", "GET", "/healthz", "", "GET /healthz", 200, "application/json", "Health"},
		{"readyz", "GET", "/readyz", "", "GET /readyz", 200, "application/json", "Health"},
		{"metrics", "GET", "/metrics", "", "GET /metrics", 200, "text/plain", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if body != nil {
				req = httptest.NewRequest(tc.method, tc.target, body)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.target, rec.Code, tc.status, rec.Body)
			}
			ct := rec.Header().Get("Content-Type")
			if mt, _, _ := strings.Cut(ct, ";"); mt != tc.contentType {
				t.Errorf("Content-Type = %q, want %s", ct, tc.contentType)
			}
			if tc.operation != "" {
				op, ok := ops[tc.operation]
				if !ok {
					t.Fatalf("operation %s is not documented", tc.operation)
				}
				resp, ok := op["responses"].(map[string]any)[strconv.Itoa(tc.status)].(map[string]any)
				if !ok {
					t.Fatalf("%s answered %d, which its documentation does not list", tc.operation, tc.status)
				}
				resp = oaDeref(t, doc, resp)
				content, _ := resp["content"].(map[string]any)
				if _, ok := content[tc.contentType]; !ok {
					t.Errorf("%s %d is documented as %v, served as %s", tc.operation, tc.status, oaKeys(content), tc.contentType)
				}
				if ra := rec.Header().Get("Retry-After"); ra != "" {
					headers, _ := resp["headers"].(map[string]any)
					if _, ok := headers["Retry-After"]; !ok {
						t.Errorf("%s %d sends Retry-After, which its documentation does not list", tc.operation, tc.status)
					}
				}
			}
			if tc.status == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if tc.status == 405 && rec.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if tc.schema == "" {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body is not a JSON object: %v: %s", err, rec.Body)
			}
			oaCheckObject(t, doc, tc.name, oaSchema(t, doc, tc.schema), got)
			if tc.schema == "Problem" {
				oaCheckProblem(t, doc, got, tc.status)
			}
			if tc.schema == "BatchResponse" {
				// Results are documented: a problem per failure,
				// a body per success, in order.
				results := got["results"].([]any)
				wantStatus := []float64{409, 201, 400}
				for i, r := range results {
					rm := r.(map[string]any)
					if rm["status"] != wantStatus[i] {
						t.Errorf("result %d: status %v, want %v", i, rm["status"], wantStatus[i])
					}
					if p, ok := rm["problem"].(map[string]any); ok {
						oaCheckProblem(t, doc, p, int(rm["status"].(float64)))
					}
					if b, ok := rm["body"].(map[string]any); ok {
						oaCheckObject(t, doc, "result body", oaSchema(t, doc, "Reservation"), b)
					}
				}
			}
		})
	}
}

// oaCheckProblem checks what the Problem schema cannot say in property names:
// the status matches, the code is one of the documented codes, and the
// extension members have documented shapes.
func oaCheckProblem(t *testing.T, doc map[string]any, p map[string]any, status int) {
	t.Helper()
	if p["status"] != float64(status) {
		t.Errorf("problem status %v, want %d", p["status"], status)
	}
	code, _ := p["code"].(string)
	if !slices.Contains(oaEnum(oaSchema(t, doc, "ErrorCode")), code) {
		t.Errorf("problem code %q is not a documented ErrorCode", code)
	}
	if code == string(stockd.CodeInsufficientStock) {
		lines, _ := p["lines"].([]any)
		if len(lines) == 0 {
			t.Error("insufficient_stock without lines")
		}
	}
	if code == string(stockd.CodeNotHeld) {
		rs, _ := p["reservation_status"].(string)
		if !slices.Contains(oaEnum(oaSchema(t, doc, "ReservationStatus")), rs) {
			t.Errorf("reservation_not_held with reservation_status %q", rs)
		}
	}
}

// TestOpenAPIProblemResponses checks the shared problem responses: each is
// application/problem+json with the Problem schema, and the 503 says
// Retry-After.
func TestOpenAPIProblemResponses(t *testing.T) {
	doc := oaLoad(t)
	want := map[string]int{"BadRequest": 400, "NotFound": 404, "Conflict": 409, "PayloadTooLarge": 413, "UnprocessableEntity": 422, "Unavailable": 503}
	for name := range want {
		r, err := oaResolve(doc, "#/components/responses/"+name)
		if err != nil {
			t.Errorf("components.responses.%s: %v", name, err)
			continue
		}
		content, _ := r.(map[string]any)["content"].(map[string]any)
		media, _ := content["application/problem+json"].(map[string]any)
		schema, _ := media["schema"].(map[string]any)
		if schema["$ref"] != "#/components/schemas/Problem" {
			t.Errorf("components.responses.%s is not application/problem+json with the Problem schema", name)
		}
	}
	r, _ := oaResolve(doc, "#/components/responses/Unavailable")
	if headers, _ := r.(map[string]any)["headers"].(map[string]any); headers["Retry-After"] == nil {
		t.Error("components.responses.Unavailable does not document Retry-After")
	}
	// Every status the problem table can produce is documented somewhere.
	documented := make(map[int]bool)
	for _, op := range oaOperations(t, doc) {
		for s := range op["responses"].(map[string]any) {
			n, _ := strconv.Atoi(s)
			documented[n] = true
		}
	}
	for code, pt := range problemTypes {
		if !documented[pt.status] {
			t.Errorf("code %s answers %d, which no operation documents", code, pt.status)
		}
	}
	// Commands on a reservation take the Idempotency-Key header.
	for _, key := range []string{"POST /v1/reservations/{id}/commit", "POST /v1/reservations/{id}/release", "POST /v1/reservations/{id}/extend"} {
		op := oaOperations(t, doc)[key]
		b, _ := json.Marshal(op["parameters"])
		if !bytes.Contains(b, []byte("IdempotencyKey")) {
			t.Errorf("%s does not document the Idempotency-Key header", key)
		}
	}
}
