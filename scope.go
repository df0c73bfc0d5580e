package stockd

import (
	"fmt"
	"strings"
)

// Scope is a permission an API key carries. Every operation requires one
// scope; a key holding ScopeAdmin may do everything.
type Scope string

// The scopes of DESIGN §7 "Access control". They are part of the public
// contract: key files name them, so they are never renamed.
const (
	// ScopeStockRead allows every read: stock, SKUs, reservations,
	// transfers, locations, availability and the feed.
	ScopeStockRead Scope = "stock:read"
	// ScopeStockWrite allows changes to stock and its configuration:
	// locations, SKU settings, receipts, adjustments, counts, transfers.
	ScopeStockWrite Scope = "stock:write"
	// ScopeReservationsWrite allows reserving, committing, releasing and
	// extending reservations.
	ScopeReservationsWrite Scope = "reservations:write"
	// ScopeAdmin allows everything.
	ScopeAdmin Scope = "admin"
)

// Scopes lists every scope, in the order documentation shows them.
var Scopes = []Scope{ScopeStockRead, ScopeStockWrite, ScopeReservationsWrite, ScopeAdmin}

// ParseScope returns the scope named s, or an error naming the valid ones.
func ParseScope(s string) (Scope, error) {
	for _, sc := range Scopes {
		if string(sc) == s {
			return sc, nil
		}
	}
	names := make([]string, len(Scopes))
	for i, sc := range Scopes {
		names[i] = string(sc)
	}
	return "", fmt.Errorf("unknown scope %q: use %s", s, strings.Join(names, ", "))
}

// Allows reports whether a key holding the scopes granted may perform an
// operation that requires need.
func Allows(granted []Scope, need Scope) bool {
	for _, g := range granted {
		if g == need || g == ScopeAdmin {
			return true
		}
	}
	return false
}
