package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestAStoreThatCannotBeOpenedNeverShowsItsPassword: the error of a store URL
// that cannot be used names the store without its password, whatever the
// driver says.
func TestAStoreThatCannotBeOpenedNeverShowsItsPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, store := range []string{
		"postgres://stockd:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=2", // nothing listens on port 1
		"postgresql://stockd:s3cr3t-pw@127.0.0.1:1/db?password=s3cr3t-pw&connect_timeout=2",
		"mysql://stockd:s3cr3t-pw@127.0.0.1/db",
	} {
		_, err := Open(ctx, Config{Addr: "127.0.0.1:0", Data: t.TempDir(), Store: store, Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			t.Fatalf("%s: opened", store)
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("the error does not name the store: %v", err)
		}
	}
}

func TestStoreNameIsEmbeddedOrTheURLWithoutItsPassword(t *testing.T) {
	if got := (Config{}).StoreName(); got != "embedded" {
		t.Errorf("StoreName of the embedded store = %q", got)
	}
	if got := (Config{Store: "postgres://u:pw@db.example:5432/shop?sslmode=require"}).StoreName(); got != "postgres://u:xxxxx@db.example:5432/shop" {
		t.Errorf("StoreName = %q", got)
	}
}
