package http

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
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
// They need no JSON Schema library. They derive what the document must say
// from the operations declared in package api (route, operationId, summary,
// scope, request and response types, batch names), check the parts of the
// document that drift when the code changes (routes, property names,
// required properties, enums) against the types the server decodes and
// encodes, and send the document's own examples and refusals to a server to
// check its real answers against the documented statuses, headers and
// schemas.

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

// oaOperations returns the operations of the document by their
// "METHOD /path" patterns, the form Server.Routes and api.Operation.Pattern
// use.
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

// oaDeclared returns every declared operation: api.Operations and
// POST /v1/batch.
func oaDeclared() []*api.Operation {
	ops := make([]*api.Operation, 0, len(api.Operations)+1)
	for _, h := range api.Operations {
		ops = append(ops, h.Op())
	}
	return append(ops, &api.Batch)
}

// oaOp returns the documented operation of a declared one.
func oaOp(t *testing.T, doc map[string]any, op *api.Operation) map[string]any {
	t.Helper()
	o, ok := oaOperations(t, doc)[op.Pattern()]
	if !ok {
		t.Fatalf("%s (%s) is not documented", op.Pattern(), op.Name)
	}
	return o
}

// oaParams returns an operation's parameters, its path item's included,
// with references resolved, by "in" and then name.
func oaParams(t *testing.T, doc map[string]any, pattern string) map[string]map[string]map[string]any {
	t.Helper()
	_, path, _ := strings.Cut(pattern, " ")
	item := doc["paths"].(map[string]any)[path].(map[string]any)
	op := oaOperations(t, doc)[pattern]
	out := map[string]map[string]map[string]any{}
	for _, list := range []any{item["parameters"], op["parameters"]} {
		params, _ := list.([]any)
		for _, p := range params {
			pm, _ := p.(map[string]any)
			if ref, ok := pm["$ref"].(string); ok {
				r, err := oaResolve(doc, ref)
				if err != nil {
					t.Fatalf("%s: parameter %s: %v", pattern, ref, err)
				}
				pm, _ = r.(map[string]any)
			}
			in, _ := pm["in"].(string)
			name, _ := pm["name"].(string)
			if out[in] == nil {
				out[in] = map[string]map[string]any{}
			}
			out[in][name] = pm
		}
	}
	return out
}

// oaRequestSchema returns the schema of an operation's JSON request body,
// or nil when it documents none.
func oaRequestSchema(t *testing.T, doc map[string]any, op map[string]any) map[string]any {
	t.Helper()
	rb, ok := op["requestBody"].(map[string]any)
	if !ok {
		return nil
	}
	content, _ := rb["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	s, _ := media["schema"].(map[string]any)
	if s == nil {
		t.Fatalf("%v: the request body is not documented as application/json with a schema", op["operationId"])
	}
	return s
}

// oaResponse returns an operation's documented response for a status, with
// its reference resolved, or nil.
func oaResponse(t *testing.T, doc map[string]any, op map[string]any, status int) map[string]any {
	t.Helper()
	r, _ := op["responses"].(map[string]any)[strconv.Itoa(status)].(map[string]any)
	return oaDeref(t, doc, r)
}

// oaResponseSchema returns the name of the schema a response references
// for a media type.
func oaResponseSchema(t *testing.T, doc map[string]any, op map[string]any, status int, media string) string {
	t.Helper()
	r := oaResponse(t, doc, op, status)
	content, _ := r["content"].(map[string]any)
	m, _ := content[media].(map[string]any)
	s, _ := m["schema"].(map[string]any)
	ref, _ := s["$ref"].(string)
	name, ok := strings.CutPrefix(ref, "#/components/schemas/")
	if !ok {
		t.Fatalf("%v %d: the %s answer does not reference a components schema: %v", op["operationId"], status, media, s)
	}
	return name
}

// TestOpenAPIRoutesDocumented fails when the server serves a route the
// document does not describe, or the document describes one the server does
// not serve.
func TestOpenAPIRoutesDocumented(t *testing.T) {
	doc := oaLoad(t)
	ops := oaOperations(t, doc)
	routes := NewServer(Config{Metrics: http.NotFoundHandler()}).Routes()
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
		if served[key] {
			t.Errorf("route %s is registered twice", key)
		}
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
	for _, op := range oaDeclared() {
		if !served[op.Pattern()] {
			t.Errorf("operation %s (%s) is declared but not served", op.Pattern(), op.Name)
		}
	}
}

// oaNames returns the names of a parameter map, sorted.
func oaNames[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// oaTagged returns the values of a struct tag over a type's fields, sorted.
func oaTagged(t reflect.Type, tag string) []string {
	out := []string{}
	for f := range t.Fields() {
		if v := f.Tag.Get(tag); v != "" {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIOperationsDeclared checks every declared operation against its
// documentation: route, operationId, summary, the security requirement
// naming exactly its scope, the access refusals it can answer, whether and
// how it takes a body, and its path, query and header parameters. The
// routes that need no key say so with an empty security requirement.
func TestOpenAPIOperationsDeclared(t *testing.T) {
	doc := oaLoad(t)
	declared := map[string]bool{}
	for _, op := range oaDeclared() {
		declared[op.Pattern()] = true
		t.Run(op.Name, func(t *testing.T) {
			o := oaOp(t, doc, op)
			if o["operationId"] != op.Name {
				t.Errorf("operationId = %v, want %s", o["operationId"], op.Name)
			}
			if o["summary"] != op.Summary {
				t.Errorf("summary = %q, want %q", o["summary"], op.Summary)
			}

			// Security: the scheme with exactly the operation's scope;
			// the batch needs any key.
			roles := []any{}
			if op.Scope != "" {
				roles = append(roles, string(op.Scope))
			}
			want := []any{map[string]any{"bearerAuth": roles}}
			if !reflect.DeepEqual(o["security"], want) {
				t.Errorf("security = %v, want %v", o["security"], want)
			}
			if xs, ok := o["x-scope"]; (op.Scope == "" && ok) || (op.Scope != "" && xs != string(op.Scope)) {
				t.Errorf("x-scope = %v, want %q", xs, op.Scope)
			}
			responses := o["responses"].(map[string]any)
			for _, status := range []string{"401", "429"} {
				if responses[status] == nil {
					t.Errorf("a keyed operation answers %s, which is not documented", status)
				}
			}
			if _, ok := responses["403"]; ok != (op.Scope != "") {
				t.Errorf("403 documented = %v, but the operation's scope is %q (the batch refuses per operation, in its results)", ok, op.Scope)
			}

			// The body: every method but GET reads one (at least an
			// empty one), typed as JSON.
			b := api.BindingOf(op.Request)
			rb, hasBody := o["requestBody"].(map[string]any)
			if hasBody != (op.Method != http.MethodGet) {
				t.Errorf("requestBody documented = %v for a %s", hasBody, op.Method)
			}
			if hasBody {
				required, _ := rb["required"].(bool)
				if want := b.HasBody && !op.OptionalBody; required != want {
					t.Errorf("requestBody.required = %v, want %v (body fields %v, optional %v)", required, want, b.HasBody, op.OptionalBody)
				}
				for _, status := range []string{"400", "413", "415"} {
					if responses[status] == nil {
						t.Errorf("an operation that reads a body answers %s, which is not documented", status)
					}
				}
			} else if responses["415"] != nil {
				t.Error("415 is documented for an operation without a body")
			}

			// Parameters are the request type's path, query and
			// header fields.
			params := oaParams(t, doc, op.Pattern())
			for _, in := range []string{"path", "query", "header"} {
				if got, want := oaNames(params[in]), oaTagged(op.Request, in); !slices.Equal(got, want) {
					t.Errorf("%s parameters %v, but %s has the %s fields %v", in, got, op.Request, in, want)
				}
			}
			for name, p := range params["query"] {
				s, _ := p["schema"].(map[string]any)
				multi := s["type"] == "array"
				for _, q := range b.Query {
					if q.Name == name && q.Multi != multi {
						t.Errorf("query parameter %s: documented as an array %v, but the field takes every value %v", name, multi, q.Multi)
					}
				}
			}
		})
	}
	for key, o := range oaOperations(t, doc) {
		if declared[key] {
			continue
		}
		if s, ok := o["security"].([]any); !ok || len(s) != 0 {
			t.Errorf("%s is not a declared operation and needs no key, but its security is %v, not []", key, o["security"])
		}
	}
	// Commands naming a location say how an unknown one is refused.
	for _, h := range []api.Handler{api.Receive, api.Adjust, api.Count, api.Transfer} {
		o := oaOp(t, doc, h.Op())
		if d, _ := o["description"].(string); !strings.Contains(d, "unknown_location") {
			t.Errorf("%s does not document 422 unknown_location", h.Op().Name)
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

	// The licence is the repository's: Apache-2.0, by its SPDX identifier.
	info, _ := doc["info"].(map[string]any)
	if lic, _ := info["license"].(map[string]any); lic["identifier"] != "Apache-2.0" || lic["name"] != "Apache-2.0" {
		t.Errorf("info.license = %v, want Apache-2.0 by name and SPDX identifier", info["license"])
	}
	if b, err := os.ReadFile("../LICENSE"); err == nil && !bytes.Contains(b, []byte("Apache License")) {
		t.Error("info.license says Apache-2.0, but LICENSE is another licence")
	}
	if d, _ := info["description"].(string); strings.Contains(d, "X-Actor") {
		t.Error("info.description mentions X-Actor, which the server ignores: the actor is the key's name")
	}

	// The security scheme: bearer keys, and every requirement names it
	// with roles that are scopes.
	schemes, _ := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	bearer, _ := schemes["bearerAuth"].(map[string]any)
	if bearer["type"] != "http" || bearer["scheme"] != "bearer" || bearer["description"] == nil {
		t.Errorf("components.securitySchemes.bearerAuth = %v, want type http, scheme bearer and a description", bearer)
	}
	if len(schemes) != 1 {
		t.Errorf("security schemes %v, want bearerAuth only", oaKeys(schemes))
	}
	oaWalk(doc, "#", func(ptr, key string, v any) {
		if key != "security" || strings.Contains(ptr, "/properties") {
			return
		}
		reqs, ok := v.([]any)
		if !ok {
			t.Errorf("%s/security is not an array", ptr)
			return
		}
		for _, r := range reqs {
			rm, _ := r.(map[string]any)
			for name, roles := range rm {
				if name != "bearerAuth" {
					t.Errorf("%s/security names the scheme %q", ptr, name)
				}
				rs, _ := roles.([]any)
				for _, role := range rs {
					s, _ := role.(string)
					if _, err := stockd.ParseScope(s); err != nil {
						t.Errorf("%s/security: %v", ptr, err)
					}
				}
			}
		}
	})

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
		for name, pm := range oaParams(t, doc, key)["path"] {
			if pm["required"] != true {
				t.Errorf("%s: path parameter %v must be required", key, name)
			}
			declared[name] = true
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
// document as JSON, on a server without an API.
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
	// Every JSON answer ends with a newline; the document ends with its own.
	if !bytes.Equal(bytes.TrimRight(rec.Body.Bytes(), "\n"), bytes.TrimRight(openAPIDocument, "\n")) {
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
// oaCheckRequestType.
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

// oaBodyFields returns the JSON names of the fields of a request type that
// travel in its body: every exported field but those bound to the query or a
// header, and but those bound to the path unless withPath (a batch operation
// names its entity in its body).
func oaBodyFields(typ reflect.Type, withPath bool) []string {
	out := []string{}
	for f := range typ.Fields() {
		name := oaJSONName(f)
		if !f.IsExported() || name == "-" || f.Tag.Get("query") != "" || f.Tag.Get("header") != "" || (f.Tag.Get("path") != "" && !withPath) {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func oaJSONName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// oaCheckRequestType checks that a request schema is strict and documents
// exactly the body fields of typ, and descends into the fields whose type is
// a struct or a list of structs.
func oaCheckRequestType(t *testing.T, doc map[string]any, where string, s map[string]any, typ reflect.Type, withPath bool) {
	t.Helper()
	s = oaDeref(t, doc, s)
	if ap, ok := s["additionalProperties"].(bool); !ok || ap {
		t.Errorf("%s: a request schema must say additionalProperties: false, as the decoder refuses unknown fields", where)
	}
	got, want := oaProperties(s), oaBodyFields(typ, withPath)
	if !slices.Equal(got, want) {
		t.Errorf("%s: properties %v, but %s takes %v (undocumented %v, not accepted %v)",
			where, got, typ, want, oaDiff(want, got), oaDiff(got, want))
	}
	if missing := oaDiff(oaRequired(s), got); len(missing) > 0 {
		t.Errorf("%s: requires %v, which are not among its properties", where, missing)
	}
	props, _ := s["properties"].(map[string]any)
	for f := range typ.Fields() {
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() != reflect.Struct || ft == reflect.TypeFor[time.Time]() {
			continue
		}
		name := oaJSONName(f)
		ps, _ := props[name].(map[string]any)
		ps = oaDeref(t, doc, ps)
		if ps == nil {
			continue // reported above
		}
		if items, ok := ps["items"].(map[string]any); ok {
			ps = items
		}
		oaCheckRequestType(t, doc, where+"."+name, ps, ft, true)
	}
}

// oaSchemaNames returns every property name a schema documents, at any
// depth of its properties and array items.
func oaSchemaNames(t *testing.T, doc map[string]any, s map[string]any, names map[string]bool, seen map[string]bool) []string {
	t.Helper()
	if ref, ok := s["$ref"].(string); ok {
		if seen[ref] {
			return oaNames(names)
		}
		seen[ref] = true
	}
	s = oaDeref(t, doc, s)
	if items, ok := s["items"].(map[string]any); ok {
		oaSchemaNames(t, doc, items, names, seen)
	}
	props, _ := s["properties"].(map[string]any)
	for name, p := range props {
		names[name] = true
		if pm, ok := p.(map[string]any); ok {
			oaSchemaNames(t, doc, pm, names, seen)
		}
	}
	return oaNames(names)
}

// oaAt follows keys through nested objects.
func oaAt(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// TestOpenAPIRequestShapes checks that the request body of every declared
// operation is documented by a strict schema listing exactly the body fields
// of its request type, at every depth (the names a body may use, by
// api.BindingOf), and that the batch documents exactly the batchable
// operations, each with its request type's fields, path fields included.
func TestOpenAPIRequestShapes(t *testing.T) {
	doc := oaLoad(t)
	for _, op := range oaDeclared() {
		s := oaRequestSchema(t, doc, oaOp(t, doc, op))
		if s == nil {
			continue // TestOpenAPIOperationsDeclared checks which operations take a body
		}
		where := op.Name + " request body"
		oaCheckRequestType(t, doc, where, s, op.Request, false)
		got := oaSchemaNames(t, doc, s, map[string]bool{}, map[string]bool{})
		if want := oaNames(api.BindingOf(op.Request).BodyNames); !slices.Equal(got, want) {
			t.Errorf("%s: documents the names %v, but the server accepts %v", where, got, want)
		}
	}

	// The batch: an op enum and one body condition per batchable
	// operation.
	batchable := map[string]*api.Operation{}
	for _, h := range api.Operations {
		if n := h.Op().BatchName; n != "" {
			if batchable[n] != nil {
				t.Errorf("two operations are batched as %q", n)
			}
			batchable[n] = h.Op()
		}
	}
	want := oaNames(batchable)
	bo := oaSchema(t, doc, "BatchOperation")
	if got := oaEnum(oaAt(bo, "properties", "op").(map[string]any)); !slices.Equal(got, want) {
		t.Errorf("BatchOperation op enum = %v, want the batch names %v", got, want)
	}
	conditions, _ := bo["allOf"].([]any)
	bodies := map[string]map[string]any{}
	for i, c := range conditions {
		name, _ := oaAt(c, "if", "properties", "op", "const").(string)
		body, _ := oaAt(c, "then", "properties", "body").(map[string]any)
		if name == "" || body == nil || bodies[name] != nil {
			t.Errorf("BatchOperation.allOf[%d] is not one condition \"op is X then body is Y\": %v", i, c)
			continue
		}
		bodies[name] = body
	}
	if got := oaNames(bodies); !slices.Equal(got, want) {
		t.Errorf("BatchOperation documents the bodies of %v, want %v", got, want)
	}
	for name, body := range bodies {
		op := batchable[name]
		if op == nil {
			continue
		}
		where := "batch " + name + " body"
		oaCheckRequestType(t, doc, where, body, op.Request, true)
		got := oaSchemaNames(t, doc, body, map[string]bool{}, map[string]bool{})
		if want := oaNames(api.JSONNames(op.Request)); !slices.Equal(got, want) {
			t.Errorf("%s: documents the names %v, but the server accepts %v", where, got, want)
		}
	}

	// The server knows every documented op and refuses others as unknown.
	srv := NewServer(Config{API: oaFakeAPI{}})
	for _, name := range want {
		// An op the server does not know is refused as unknown before
		// its body is read; a known one fails on its empty body.
		_, _, err := srv.runOperation(context.Background(), anonymous, api.BatchOperation{Op: name})
		if err == nil || strings.Contains(err.Error(), "unknown operation") {
			t.Errorf("documented batch op %q: %v", name, err)
		}
	}
	_, _, err := srv.runOperation(context.Background(), anonymous, api.BatchOperation{Op: "undocumented"})
	if err == nil || !strings.Contains(err.Error(), "unknown operation") {
		t.Errorf("an unknown op is not refused as unknown: %v", err)
	}
}

// TestOpenAPIResponseShapes checks that the schemas of the response bodies
// list exactly the properties the server's types encode, and require exactly
// those always present: the answer of every declared operation (200, and 201
// for those that create), and the types they contain.
func TestOpenAPIResponseShapes(t *testing.T) {
	doc := oaLoad(t)
	checked := map[string]reflect.Type{}
	check := func(name string, v any) {
		if prev, ok := checked[name]; ok {
			if prev != reflect.TypeOf(v) {
				t.Errorf("schema %s documents both %s and %T", name, prev, v)
			}
			return
		}
		checked[name] = reflect.TypeOf(v)
		oaCheckType(t, doc, name, v)
	}
	for _, op := range oaDeclared() {
		o := oaOp(t, doc, op)
		responses := o["responses"].(map[string]any)
		if _, ok := responses["201"]; ok != op.Creates {
			t.Errorf("%s: 201 documented = %v, but Creates = %v", op.Name, ok, op.Creates)
		}
		statuses := []int{200}
		if op.Creates {
			statuses = append(statuses, 201)
		}
		if op.Accepted {
			statuses = []int{202}
		}
		if _, ok := responses["202"]; ok != op.Accepted {
			t.Errorf("%s: 202 documented = %v, but Accepted = %v", op.Name, ok, op.Accepted)
		}
		for _, status := range statuses {
			if responses[strconv.Itoa(status)] == nil {
				t.Errorf("%s: %d is not documented", op.Name, status)
				continue
			}
			check(oaResponseSchema(t, doc, o, status, "application/json"), reflect.Zero(op.Response).Interface())
		}
	}
	for name, v := range map[string]any{
		"Location":             stockd.Location{},
		"SKUState":             stockd.SKUState{},
		"LocationState":        stockd.LocationState{},
		"LotView":              stockd.LotView{},
		"HoldView":             stockd.HoldView{},
		"ReservationLine":      stockd.ReservationLine{},
		"Allocation":           stockd.Allocation{},
		"Shortfall":            stockd.Shortfall{},
		"Problem":              Problem{},
		"EventEnvelope":        api.EventJSON{},
		"LotQty":               stockd.LotQty{},
		"BatchResult":          api.BatchResult{},
		"SKUAvailability":      stockd.AvailabilityItem{},
		"LocationAvailability": stockd.LocationAvailability{},
		"Lag":                  stockd.Lag{},
		"SKUSummary":           stockd.SKUSummary{},
		"Health":               api.Status{},
	} {
		check(name, v)
	}

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

// oaEventData is one value of every event data type.
var oaEventData = []stockd.EventData{
	stockd.StockReceived{}, stockd.StockAdjusted{}, stockd.StockCounted{}, stockd.StockTransferred{},
	stockd.TransferArrived{}, stockd.SKUConfigured{}, stockd.LocationConfigured{}, stockd.StockReserved{},
	stockd.ReservationExtended{}, stockd.ReservationCommitted{}, stockd.ReservationReleased{}, stockd.LotExpired{},
	stockd.ShortageDetected{}, stockd.SagaStarted{}, stockd.SagaStepAcked{}, stockd.ReservationHeld{},
	stockd.SagaStepStarted{}, stockd.SagaSettled{}, stockd.EntitiesRetired{},
	stockd.LowStock{}, stockd.OutOfStock{}, stockd.BackInStock{},
}

// TestOpenAPIEventTypes checks that every event type is documented under its
// name, chosen by the discriminator on "type", with exactly its data's
// properties.
func TestOpenAPIEventTypes(t *testing.T) {
	doc := oaLoad(t)
	var names []string
	// Types are numbered with gaps (a rule's own types start at 60).
	for typ := stockd.EventType(1); typ != 0; typ++ {
		name := typ.String()
		if strings.HasPrefix(name, "EventType(") {
			continue
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
	e := stockd.Event{Partition: 3, Position: 17, SKU: "A", Version: 1, Time: time.Now(), CommandID: "r-1", Actor: "shop",
		Data: stockd.StockReceived{Location: "w1", Quantity: 10}}
	ej, err := api.NewEventJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	oaCheckObject(t, doc, "EventJSON", oaSchema(t, doc, "EventEnvelope"), oaJSONObject(t, ej))
}

// oaFakeAPI is a test double of the domain at the HTTP boundary. These tests
// check the document's shapes, so it answers every call with a value whose
// every field is set (an answer then shows every property it can have), and
// refuses a few ids the way the domain would: "short" (insufficient stock),
// "not-held" (a commit of a released reservation) and the SKU "offline" (the
// read model not running). The real service behind the same server is
// covered by the end-to-end tests.
type oaFakeAPI struct{}

var _ stockd.API = oaFakeAPI{}

func (oaFakeAPI) ConfigureLocation(context.Context, stockd.ConfigureLocation) (stockd.Location, error) {
	return oaFilled(stockd.Location{}), nil
}

func (oaFakeAPI) Location(context.Context, string) (stockd.Location, error) {
	return oaFilled(stockd.Location{}), nil
}

func (oaFakeAPI) Locations(context.Context) ([]stockd.Location, error) {
	return oaFilled([]stockd.Location{}), nil
}

func (oaFakeAPI) ConfigureSKU(context.Context, stockd.ConfigureSKU) (stockd.SKUConfig, error) {
	return oaFilled(stockd.SKUConfig{}), nil
}

func (oaFakeAPI) Receive(context.Context, stockd.ReceiveStock) (stockd.Receipt, bool, error) {
	return oaFilled(stockd.Receipt{}), true, nil
}

func (oaFakeAPI) Adjust(context.Context, stockd.AdjustStock) (stockd.Adjustment, bool, error) {
	return oaFilled(stockd.Adjustment{}), true, nil
}

func (oaFakeAPI) Count(context.Context, stockd.CountStock) (stockd.Count, bool, error) {
	return oaFilled(stockd.Count{}), true, nil
}

func (oaFakeAPI) Transfer(context.Context, stockd.TransferStock) (stockd.Transfer, bool, error) {
	return oaFilled(stockd.Transfer{}), true, nil
}

func (oaFakeAPI) ArriveTransfer(context.Context, stockd.ArriveTransfer) (stockd.Transfer, error) {
	return oaFilled(stockd.Transfer{}), nil
}

func (oaFakeAPI) GetTransfer(context.Context, string) (stockd.Transfer, error) {
	return oaFilled(stockd.Transfer{}), nil
}

func (oaFakeAPI) Reserve(_ context.Context, c stockd.Reserve) (stockd.Reservation, bool, error) {
	if c.ID == "short" {
		return stockd.Reservation{}, false, &stockd.Error{Code: stockd.CodeInsufficientStock, Message: "not enough stock",
			Lines: []stockd.Shortfall{{SKU: "A", Requested: 5, Available: 3}}}
	}
	return oaFilled(stockd.Reservation{}), true, nil
}

func (oaFakeAPI) Extend(context.Context, stockd.ExtendReservation) (stockd.Reservation, error) {
	return oaFilled(stockd.Reservation{}), nil
}

func (oaFakeAPI) Commit(_ context.Context, c stockd.CommitReservation) (stockd.Reservation, error) {
	if c.ID == "not-held" {
		return stockd.Reservation{}, &stockd.Error{Code: stockd.CodeNotHeld, Message: `reservation "not-held" is released`, Status: stockd.StatusReleased}
	}
	return oaFilled(stockd.Reservation{}), nil
}

func (oaFakeAPI) Release(context.Context, stockd.ReleaseReservation) (stockd.Reservation, error) {
	return oaFilled(stockd.Reservation{}), nil
}

func (oaFakeAPI) GetReservation(context.Context, string) (stockd.Reservation, error) {
	return oaFilled(stockd.Reservation{}), nil
}

func (oaFakeAPI) SKU(context.Context, string, stockd.AsOf) (stockd.SKUState, error) {
	return oaFilled(stockd.SKUState{}), nil
}

func (oaFakeAPI) History(context.Context, string, stockd.HistoryQuery) (stockd.HistoryPage, error) {
	e := oaFilled(stockd.Event{})
	e.Data = oaFilled(stockd.StockReceived{})
	return stockd.HistoryPage{Events: []stockd.Event{e}, Next: e.Version}, nil
}

func (oaFakeAPI) Availability(_ context.Context, skus []string) (stockd.Availability, error) {
	if slices.Contains(skus, "offline") {
		return stockd.Availability{}, stockd.Errorf(stockd.CodeUnavailable, "the read model is not running")
	}
	return oaFilled(stockd.Availability{}), nil
}

func (oaFakeAPI) CustomerReservations(context.Context, stockd.CustomerQuery) (stockd.ReservationPage, error) {
	return oaFilled(stockd.ReservationPage{}), nil
}

func (oaFakeAPI) SKUs(context.Context, stockd.SKUListQuery) (stockd.SKUPage, error) {
	return oaFilled(stockd.SKUPage{}), nil
}

// oaKeyring authenticates the tokens these tests send: a scope's name is a
// key holding that scope, "limited" a key over its rate; any other token is
// unknown.
type oaKeyring struct{}

func (oaKeyring) Authenticate(token string) (Key, error) {
	if token == "limited" {
		return Key{}, &stockd.Error{Code: stockd.CodeRateLimited, Message: `key "limited" is over its rate`, RetryAfter: 1500 * time.Millisecond}
	}
	if sc, err := stockd.ParseScope(token); err == nil {
		return Key{Name: "key-" + token, Scopes: []stockd.Scope{sc}}, nil
	}
	return Key{}, stockd.Errorf(stockd.CodeUnauthenticated, "unknown API key")
}

// oaExample is a request built from the document's examples.
type oaExample struct {
	name           string
	method, target string
	body           string
	header         http.Header
}

func (e oaExample) request(token, contentType string) *http.Request {
	var r *http.Request
	if e.body == "" {
		r = httptest.NewRequest(e.method, e.target, nil)
	} else {
		r = httptest.NewRequest(e.method, e.target, strings.NewReader(e.body))
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range e.header {
		r.Header[k] = v
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// oaExamples builds the requests an operation's documentation shows: one per
// example of its request body (or one without a body), with its path, query
// and header parameters taken from their examples.
func oaExamples(t *testing.T, doc map[string]any, op *api.Operation) []oaExample {
	t.Helper()
	o := oaOp(t, doc, op)
	params := oaParams(t, doc, op.Pattern())
	path := op.Path
	for name, p := range params["path"] {
		ex, ok := p["example"].(string)
		if !ok {
			t.Fatalf("%s: path parameter %s has no example", op.Name, name)
		}
		path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(ex))
	}
	q := url.Values{}
	for name, p := range params["query"] {
		switch ex := p["example"].(type) {
		case string:
			q.Add(name, ex)
		case float64:
			q.Add(name, strconv.FormatFloat(ex, 'f', -1, 64))
		case []any:
			for _, e := range ex {
				q.Add(name, e.(string))
			}
		case nil:
			if p["required"] == true {
				t.Errorf("%s: the required query parameter %s has no example", op.Name, name)
			}
		}
	}
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	header := http.Header{}
	for name, p := range params["header"] {
		if ex, ok := p["example"].(string); ok {
			header.Set(name, ex)
		}
	}
	bodies := map[string]any{"no body": nil}
	if s := oaRequestSchema(t, doc, o); s != nil {
		examples, _ := oaAt(o, "requestBody", "content", "application/json", "examples").(map[string]any)
		switch {
		case len(examples) > 0:
			bodies = map[string]any{}
			for name, ex := range examples {
				bodies[name] = oaAt(ex, "value")
			}
		case oaDeref(t, doc, s)["example"] != nil:
			bodies = map[string]any{"schema example": oaDeref(t, doc, s)["example"]}
		case oaAt(o, "requestBody", "required") == true:
			t.Errorf("%s: a required body without an example", op.Name)
		}
	}
	var out []oaExample
	for _, name := range oaNames(bodies) {
		e := oaExample{name: name, method: op.Method, target: target, header: header}
		if v := bodies[name]; v != nil {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			e.body = string(b)
		}
		out = append(out, e)
	}
	return out
}

// oaCheckAnswer checks a server's answer against its documented response
// (nil when the status is not documented): the media type is documented,
// the headers it documents are sent and those it sends (Retry-After,
// WWW-Authenticate, Allow) are documented, and a JSON body has every
// property its schema requires and none it does not list. It returns a JSON
// body decoded.
func oaCheckAnswer(t *testing.T, doc map[string]any, where string, resp map[string]any, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if resp == nil {
		t.Errorf("%s answered %d, which is not documented: %s", where, rec.Code, rec.Body)
		return nil
	}
	ct := rec.Header().Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	media, ok := oaAt(resp, "content", mt).(map[string]any)
	if !ok {
		t.Errorf("%s %d is documented as %v, served as %s", where, rec.Code, oaKeys(resp["content"].(map[string]any)), ct)
		return nil
	}
	headers, _ := resp["headers"].(map[string]any)
	for _, h := range []string{"Retry-After", "WWW-Authenticate", "Allow"} {
		if rec.Header().Get(h) != "" && headers[h] == nil {
			t.Errorf("%s %d sends %s, which is not documented", where, rec.Code, h)
		}
	}
	for h := range headers {
		if rec.Header().Get(h) == "" {
			t.Errorf("%s %d documents the header %s, which is not sent", where, rec.Code, h)
		}
	}
	if mt != "application/json" && mt != "application/problem+json" {
		return nil
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Errorf("%s: the body is not a JSON object: %v: %s", where, err, rec.Body)
		return nil
	}
	schema, _ := media["schema"].(map[string]any)
	oaCheckObject(t, doc, where, schema, got)
	if mt == "application/problem+json" {
		oaCheckProblem(t, doc, got, rec.Code)
	}
	return got
}

// TestOpenAPIExamplesServed sends every declared operation's documented
// example requests, with a key holding just the operation's scope, to a
// server over oaFakeAPI: each succeeds with its documented status, and the
// answer has the documented shape. A batch's results are checked against the
// answers of the operations they ran.
func TestOpenAPIExamplesServed(t *testing.T) {
	doc := oaLoad(t)
	srv := NewServer(Config{API: oaFakeAPI{}, Keys: oaKeyring{}})
	for _, op := range oaDeclared() {
		o := oaOp(t, doc, op)
		for _, ex := range oaExamples(t, doc, op) {
			t.Run(op.Name+"/"+ex.name, func(t *testing.T) {
				token := string(op.Scope)
				if token == "" {
					token = string(stockd.ScopeAdmin)
				}
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, ex.request(token, "application/json"))
				want := http.StatusOK
				if op.Creates {
					want = http.StatusCreated
				}
				if op.Accepted {
					want = http.StatusAccepted
				}
				if rec.Code != want {
					t.Fatalf("%s %s %s = %d, want %d: %s", ex.method, ex.target, ex.body, rec.Code, want, rec.Body)
				}
				got := oaCheckAnswer(t, doc, op.Name, oaResponse(t, doc, o, rec.Code), rec)
				if op != &api.Batch || got == nil {
					return
				}
				var sent api.BatchRequest
				if err := json.Unmarshal([]byte(ex.body), &sent); err != nil {
					t.Fatal(err)
				}
				results, _ := got["results"].([]any)
				if len(results) != len(sent.Operations) {
					t.Fatalf("%d results for %d operations", len(results), len(sent.Operations))
				}
				for i, r := range results {
					h, _ := api.Batchable(sent.Operations[i].Op)
					status := int(oaAt(r, "status").(float64))
					body, _ := oaAt(r, "body").(map[string]any)
					if body == nil || (status != 200 && status != 201) {
						t.Errorf("result %d (%s): %v", i, sent.Operations[i].Op, r)
						continue
					}
					bo := oaOp(t, doc, h.Op())
					if oaResponse(t, doc, bo, status) == nil {
						t.Errorf("result %d: %s answers %d, which its route does not document", i, h.Op().Name, status)
						continue
					}
					oaCheckObject(t, doc, "result "+strconv.Itoa(i), oaSchema(t, doc, oaResponseSchema(t, doc, bo, status, "application/json")), body)
				}
			})
		}
	}
}

// TestOpenAPIRefusalsServed sends every declared operation's first example
// without a key, with an unknown key, with a key over its rate, with a key
// lacking its scope and, when it takes a body, with a body not typed as JSON:
// each refusal has the documented status, headers and shape.
func TestOpenAPIRefusalsServed(t *testing.T) {
	doc := oaLoad(t)
	srv := NewServer(Config{API: oaFakeAPI{}, Keys: oaKeyring{}})
	for _, op := range oaDeclared() {
		o := oaOp(t, doc, op)
		ex := oaExamples(t, doc, op)[0]
		type refusal struct {
			name, token, contentType string
			status                   int
		}
		refusals := []refusal{
			{"no key", "", "application/json", http.StatusUnauthorized},
			{"unknown key", "not-a-key", "application/json", http.StatusUnauthorized},
			{"over its rate", "limited", "application/json", http.StatusTooManyRequests},
		}
		if op.Scope != "" {
			for _, sc := range stockd.Scopes {
				if sc != op.Scope && sc != stockd.ScopeAdmin {
					refusals = append(refusals, refusal{"scope " + string(sc), string(sc), "application/json", http.StatusForbidden})
				}
			}
		}
		if o["requestBody"] != nil {
			if ex.body == "" {
				ex.body = "{}"
			}
			refusals = append(refusals, refusal{"text/plain body", string(stockd.ScopeAdmin), "text/plain", http.StatusUnsupportedMediaType})
		}
		for _, rf := range refusals {
			t.Run(op.Name+"/"+rf.name, func(t *testing.T) {
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, ex.request(rf.token, rf.contentType))
				if rec.Code != rf.status {
					t.Fatalf("%s %s = %d, want %d: %s", ex.method, ex.target, rec.Code, rf.status, rec.Body)
				}
				oaCheckAnswer(t, doc, op.Name, oaResponse(t, doc, o, rec.Code), rec)
			})
		}
	}
}

// TestOpenAPIServerResponses sends requests that fail, or that no operation
// serves, and checks the answers against the document: the status is
// documented for the operation (or by the shared response that covers every
// path), with its media type, headers and schema.
func TestOpenAPIServerResponses(t *testing.T) {
	doc := oaLoad(t)
	ops := oaOperations(t, doc)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write([]byte("# HELP up Up.\n# TYPE up gauge\nup 1\n"))
	})
	srv := NewServer(Config{API: oaFakeAPI{}, Metrics: metrics})
	guarded := NewServer(Config{API: oaFakeAPI{}, AllowedHosts: []string{"stockd.example"}})

	tests := []struct {
		name        string
		method      string
		target      string
		body        string
		contentType string // of the body; default application/json
		operation   string // the operation, or "" for the shared response
		response    string // the shared response of requests no operation serves
		status      int
	}{
		{"unknown path", "GET", "/no/such/route", "", "", "", "NotFound", 404},
		{"method not allowed", "DELETE", "/v1/reservations/cart-42", "", "", "", "MethodNotAllowed", 405},
		{"host not served", "GET", "/v1/locations", "", "", "", "", 421},
		{"malformed body", "POST", "/v1/receipts", `{"id":`, "", "POST /v1/receipts", "", 400},
		{"unknown field", "POST", "/v1/receipts", `{"qty":1}`, "", "POST /v1/receipts", "", 400},
		{"repeated key", "POST", "/v1/receipts", `{"id":"r-1","sku":"A","location":"w1","quantity":1,"quantity":500}`, "", "POST /v1/receipts", "", 400},
		{"path field in the body", "POST", "/v1/reservations/cart-42/commit", `{"id":"other"}`, "", "POST /v1/reservations/{id}/commit", "", 400},
		{"form body", "POST", "/v1/receipts", `id=r-1`, "application/x-www-form-urlencoded", "POST /v1/receipts", "", 415},
		{"bad ttl", "POST", "/v1/reservations", `{"id":"c","ttl":"soon","lines":[{"sku":"A","quantity":1}]}`, "", "POST /v1/reservations", "", 422},
		{"insufficient stock", "POST", "/v1/reservations", `{"id":"short","lines":[{"sku":"A","quantity":5}]}`, "", "POST /v1/reservations", "", 409},
		{"not held", "POST", "/v1/reservations/not-held/commit", "", "", "POST /v1/reservations/{id}/commit", "", 409},
		{"read model not running", "GET", "/v1/availability?sku=offline", "", "", "GET /v1/availability", "", 503},
		{"availability without sku", "GET", "/v1/availability", "", "", "GET /v1/availability", "", 422},
		{"customer required", "GET", "/v1/reservations", "", "", "GET /v1/reservations", "", 422},
		{"bad as_of", "GET", "/v1/skus/A?as_of=yesterday", "", "", "GET /v1/skus/{sku}", "", 422},
		{"bad event limit", "GET", "/v1/skus/A/events?limit=0", "", "", "GET /v1/skus/{sku}/events", "", 422},
		{"bad SKU limit", "GET", "/v1/skus?limit=5000", "", "", "GET /v1/skus", "", 422},
		{"repeated query parameter", "GET", "/v1/skus?after=A&after=B", "", "", "GET /v1/skus", "", 422},
		{"empty batch", "POST", "/v1/batch", `{"operations":[]}`, "", "POST /v1/batch", "", 422},
		{"body too large", "POST", "/v1/batch", `{"operations":[` + strings.Repeat(" ", 1<<20) + `]}`, "", "POST /v1/batch", "", 413},
		{"batch", "POST", "/v1/batch", `{"operations":[{"op":"reserve","body":{"id":"short","lines":[{"sku":"A","quantity":5}]}},{"op":"reserve","body":{"id":"ok","lines":[{"sku":"A","quantity":1}]}},{"op":"nope","body":{}}]}`,
			"", "POST /v1/batch", "", 200},
		{"healthz", "GET", "/healthz", "", "", "GET /healthz", "", 200},
		{"readyz", "GET", "/readyz", "", "", "GET /readyz", "", 200},
		{"metrics", "GET", "/metrics", "", "", "GET /metrics", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.body != "" {
				req = httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				req.Header.Set("Content-Type", ct)
			}
			rec := httptest.NewRecorder()
			if tc.status == http.StatusMisdirectedRequest {
				guarded.ServeHTTP(rec, req)
			} else {
				srv.ServeHTTP(rec, req)
			}
			if rec.Code != tc.status {
				t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.target, rec.Code, tc.status, rec.Body)
			}
			var got map[string]any
			switch {
			case tc.operation != "":
				op, ok := ops[tc.operation]
				if !ok {
					t.Fatalf("operation %s is not documented", tc.operation)
				}
				got = oaCheckAnswer(t, doc, tc.operation, oaResponse(t, doc, op, tc.status), rec)
			case tc.response != "":
				r, err := oaResolve(doc, "#/components/responses/"+tc.response)
				if err != nil {
					t.Fatal(err)
				}
				got = oaCheckAnswer(t, doc, tc.response, r.(map[string]any), rec)
			default:
				if mt, _, _ := strings.Cut(rec.Header().Get("Content-Type"), ";"); mt != "application/problem+json" {
					t.Fatalf("Content-Type = %q, want application/problem+json", mt)
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				oaCheckObject(t, doc, tc.name, oaSchema(t, doc, "Problem"), got)
				oaCheckProblem(t, doc, got, tc.status)
			}
			if tc.status == 405 && rec.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if tc.name == "batch" && got != nil {
				// A problem per failure, a body per success, in
				// order.
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
// the status matches, the type names the code, the code is one of the
// documented codes, and the extension members have documented shapes.
func oaCheckProblem(t *testing.T, doc map[string]any, p map[string]any, status int) {
	t.Helper()
	if p["status"] != float64(status) {
		t.Errorf("problem status %v, want %d", p["status"], status)
	}
	code, _ := p["code"].(string)
	if !slices.Contains(oaEnum(oaSchema(t, doc, "ErrorCode")), code) {
		t.Errorf("problem code %q is not a documented ErrorCode", code)
	}
	if p["type"] != "/problems/"+code {
		t.Errorf("problem type %v, want /problems/%s", p["type"], code)
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
// application/problem+json with the Problem schema and an example of its
// status, and those whose answers carry Retry-After or WWW-Authenticate say
// so. Every status the problem table can produce is documented.
func TestOpenAPIProblemResponses(t *testing.T) {
	doc := oaLoad(t)
	want := map[string]int{
		"BadRequest": 400, "Unauthenticated": 401, "Forbidden": 403, "NotFound": 404, "MethodNotAllowed": 405,
		"Conflict": 409, "PayloadTooLarge": 413, "UnsupportedMediaType": 415, "UnprocessableEntity": 422,
		"RateLimited": 429, "InternalError": 500, "Unavailable": 503,
	}
	headers := map[string]string{"Unauthenticated": "WWW-Authenticate", "RateLimited": "Retry-After", "Unavailable": "Retry-After", "MethodNotAllowed": "Allow"}
	responses, _ := oaAt(doc, "components", "responses").(map[string]any)
	if got := oaKeys(responses); !slices.Equal(got, oaNames(want)) {
		t.Errorf("components.responses = %v, want %v", got, oaNames(want))
	}
	for name, status := range want {
		r, _ := responses[name].(map[string]any)
		media, _ := oaAt(r, "content", "application/problem+json").(map[string]any)
		if oaAt(media, "schema", "$ref") != "#/components/schemas/Problem" {
			t.Errorf("components.responses.%s is not application/problem+json with the Problem schema", name)
		}
		var examples []any
		if ex, ok := media["example"]; ok {
			examples = append(examples, ex)
		}
		named, _ := oaAt(media, "examples").(map[string]any)
		for _, ex := range named {
			examples = append(examples, oaAt(ex, "value"))
		}
		if len(examples) == 0 {
			t.Errorf("components.responses.%s has no example", name)
		}
		for _, ex := range examples {
			m, _ := ex.(map[string]any)
			oaCheckObject(t, doc, "components.responses."+name+" example", oaSchema(t, doc, "Problem"), m)
			oaCheckProblem(t, doc, m, status)
		}
		hs, _ := r["headers"].(map[string]any)
		if h := headers[name]; h != "" && hs[h] == nil {
			t.Errorf("components.responses.%s does not document %s", name, h)
		}
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
}
