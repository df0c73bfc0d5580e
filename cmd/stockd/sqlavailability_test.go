package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestServeRefusesSQLAvailabilityWithoutAPostgreSQLStore: --sql-availability
// (or STOCKD_SQL_AVAILABILITY) keeps a table in the PostgreSQL store, so on
// the embedded store serve refuses to start, as a usage error saying what it
// needs, and creates nothing.
func TestServeRefusesSQLAvailabilityWithoutAPostgreSQLStore(t *testing.T) {
	t.Setenv("STOCKD_STORE", "")
	os.Unsetenv("STOCKD_STORE")
	for name, setup := range map[string]func(t *testing.T) []string{
		"flag": func(*testing.T) []string { return []string{"--sql-availability"} },
		"environment": func(t *testing.T) []string {
			t.Setenv("STOCKD_SQL_AVAILABILITY", "true")
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir() + "/data"
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--data", dir, "--addr", "127.0.0.1:0"}, setup(t)...)
			code := Run(context.Background(), args, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit %d, want %d (usage)", code, exitUsage)
			}
			if !strings.Contains(stderr.String(), "--sql-availability") || !strings.Contains(stderr.String(), "--store postgres://") {
				t.Errorf("the refusal does not say what --sql-availability needs:\n%s", stderr.String())
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("serve created its data directory before refusing (%v)", err)
			}
		})
	}
}
