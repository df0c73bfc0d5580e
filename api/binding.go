package api

import (
	"reflect"
	"strings"
	"sync"
)

// Binding is where each field of a request type travels: in the path, the
// query, a header or the JSON body. Server and client read the same Binding
// of the same type, so they cannot disagree.
type Binding struct {
	// Path, Query and Header are the fields bound to route segments,
	// query parameters and headers.
	Path, Query, Header []Param
	// BodyNames are the JSON names a body may use over HTTP: every JSON
	// name of the type at any depth, except those of path fields.
	BodyNames map[string]bool
	// HasBody reports whether any field travels in the body.
	HasBody bool
}

// Param is one field bound outside the body. Multi reports a []string field,
// which takes every value of a repeated query parameter.
type Param struct {
	Name  string
	Index int
	Multi bool
}

var bindings sync.Map // reflect.Type → *Binding

// BindingOf returns the binding of a request struct type.
func BindingOf(t reflect.Type) *Binding {
	if b, ok := bindings.Load(t); ok {
		return b.(*Binding)
	}
	b := &Binding{BodyNames: map[string]bool{}}
	pathNames := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		p := Param{Index: i, Multi: f.Type.Kind() == reflect.Slice}
		jsonName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Tag.Get("path") != "":
			p.Name = f.Tag.Get("path")
			b.Path = append(b.Path, p)
			pathNames[jsonName] = true
		case f.Tag.Get("query") != "":
			p.Name = f.Tag.Get("query")
			b.Query = append(b.Query, p)
		case f.Tag.Get("header") != "":
			p.Name = f.Tag.Get("header")
			b.Header = append(b.Header, p)
		case jsonName != "-" && f.IsExported():
			b.HasBody = true
		}
	}
	collectNames(t, b.BodyNames, map[reflect.Type]bool{})
	for n := range pathNames {
		delete(b.BodyNames, n)
	}
	bindings.Store(t, b)
	return b
}

// JSONNames returns every JSON name the type t can contain, at any depth.
func JSONNames(t reflect.Type) map[string]bool {
	m := map[string]bool{}
	collectNames(t, m, map[reflect.Type]bool{})
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
		names[name] = true
		collectNames(f.Type, names, seen)
	}
}
