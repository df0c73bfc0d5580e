package http

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"

	"github.com/stockd/stockd"
)

// ForwardedHeader marks a request that one node of a cluster sent on to the
// node serving its partition; its value is the actor (the name of the key
// the caller authenticated with at the first node, path-escaped). Such a
// request carries the cluster's token (Config.ClusterToken) as its bearer
// token: the first node checked the caller's key and scopes, and the node
// serving it records the caller's key as the actor. A node never sends a
// forwarded request on again: if it does not serve the partition either
// (the partition is moving), it answers unavailable with Retry-After, and
// the caller retries.
const ForwardedHeader = "Stockd-Forwarded"

type forwardedKey struct{}

// forwarded returns the key a request forwarded by another node of the
// cluster acts as, and false if the request is not one: without the header,
// or without the cluster's token, the header is ignored.
func (s *Server) forwarded(r *http.Request) (Key, bool) {
	actor := r.Header.Get(ForwardedHeader)
	if actor == "" || s.cfg.ClusterToken == "" {
		return Key{}, false
	}
	token, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.ClusterToken)) != 1 {
		return Key{}, false
	}
	name, err := url.PathUnescape(actor)
	if err != nil || name == "" {
		return Key{}, false
	}
	return Key{Name: name, Scopes: []stockd.Scope{stockd.ScopeAdmin}}, true
}

// Forwarded reports whether the request in ctx was forwarded by another
// node of the cluster: it must not be sent on again.
func Forwarded(ctx context.Context) bool {
	f, _ := ctx.Value(forwardedKey{}).(bool)
	return f
}
