// Package auth holds stockd's access control: API keys, the scopes they
// carry, and a rate limit per key. It depends on the standard library and the
// domain package only, so that the HTTP server, the command line and tests
// can all use it without pulling in each other.
//
// A client presents its key as "Authorization: Bearer <key>" (see
// BearerToken). The server never holds the keys themselves: the keys file
// lists, for each key, the lowercase hex SHA-256 of the key, and a Keyring
// looks a presented key up by its hash. A leaked keys file therefore gives
// no one access, and a key is shown exactly once, when NewKey makes it.
// Because the lookup is by hash, how long it takes says nothing about the
// key being looked for.
//
// Every key has a name. The name is who acted: the server records it as the
// actor of every event a request with that key produces, so the audit trail
// names a key holder rather than whatever a client claims to be. Names are
// 1 to 64 characters from a-z, 0-9, "_", "." and "-" (not "." or "..").
//
// Every key carries one or more scopes (stockd.Scope): stock:read,
// stock:write, reservations:write and admin. An operation requires one scope;
// Authorize refuses a key that does not hold it, and admin allows
// everything. Authenticate refuses a missing or unknown key with
// stockd.CodeUnauthenticated, Authorize a key without the scope with
// stockd.CodeForbidden.
//
// A key may have a rate limit: a sustained rate in requests per second and a
// burst, the number of requests it may make at once after being idle.
// Keyring.Allow enforces it with a token bucket per key and, when it refuses,
// says how long until the next request would be allowed; the server answers
// stockd.CodeRateLimited with that delay in Retry-After. A key without a
// rate is not limited.
//
// # The keys file
//
// One key per line; "#" starts a comment, on a line of its own or after a
// key, and blank lines are ignored. Fields are separated by spaces or tabs:
//
//	NAME SCOPES SHA256HEX [rate=N] [burst=M]
//
// NAME is the key's name, SCOPES its scopes joined by commas, SHA256HEX the
// 64 lowercase hex digits of the SHA-256 of the key. rate=N is the
// sustained rate in requests per second, a decimal number such as 5 or 0.5
// between MinRate and MaxRate; burst=M, which needs rate=, is a whole number
// from 1 to MaxBurst and defaults to N rounded up (at least 1). For example:
//
//	# the web shop: reads stock, holds and commits carts
//	shop      stock:read,reservations:write  4f8b...e1  rate=200 burst=400
//	warehouse stock:read,stock:write         9c2d...07  # no limit
//	ops       admin                          0a1b...3c  rate=0.5
//
// Names and hashes are unique in a file. "stockd keys new" prints a new key
// and its line; "stockd keys hash" prints the hash of an existing key.
package auth
