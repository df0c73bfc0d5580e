// Package api is stockd's HTTP contract as Go: the request and response
// types of every operation, and one declaration per operation (its name,
// method and route, required scope, request and response types, and how it is
// carried out on a stockd.API). The server (package http) derives its routes,
// its batch operations and its authorization from the declarations; the
// client (package client) derives its requests from them; the OpenAPI
// document is checked against them by a test. The package depends only on
// the domain, so a client never imports a server package.
//
// Binding rules, shared by server and client: a request type's fields tagged
// path:"name" fill the route's {name} segment, query:"name" a query
// parameter, header:"Name" a header; every other field is the JSON body.
// Path fields also carry a JSON name, which is how a batch operation, having
// no path, names its entity ({"op":"commit","body":{"id":"cart-1"}}); over
// HTTP a body may not repeat them.
package api
