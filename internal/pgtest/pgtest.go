// Package pgtest gives a test a PostgreSQL schema of its own, in the
// database STOCKD_TEST_POSTGRES names.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/stockd/stockd/postgres"
)

// Env names the environment variable holding the test database's URL.
const Env = "STOCKD_TEST_POSTGRES"

// Schema returns the test database's URL and the name of a fresh schema,
// prefix and random hex digits, which is dropped with everything in it when
// t ends: after the stores and servers the test closes in cleanups it
// registers later. Without the database it skips t, saying why the test
// wanted one.
func Schema(t testing.TB, prefix, why string) (dsn, schema string) {
	t.Helper()
	dsn = os.Getenv(Env)
	if dsn == "" {
		t.Skipf("%s is not set: %s", Env, why)
	}
	var b [6]byte
	rand.Read(b[:])
	schema = prefix + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := postgres.DropSchema(ctx, dsn, schema); err != nil {
			t.Error(err)
		}
	})
	return dsn, schema
}
