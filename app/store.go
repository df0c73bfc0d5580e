package app

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/stockd/stockd/pebble"
	"github.com/stockd/stockd/postgres"
)

// openStore opens the store Config names: the embedded store in Data, or
// PostgreSQL when Store is a postgres:// URL.
func (a *App) openStore(ctx context.Context) (Store, error) {
	cfg := a.cfg
	if cfg.Store == "" {
		if cfg.FS == nil {
			if err := os.MkdirAll(cfg.Data, 0o755); err != nil {
				return nil, err
			}
		}
		return pebble.Open(cfg.Data, pebble.Options{Partitions: cfg.Partitions, FS: cfg.FS, Logger: a.log, MinFreeBytes: a.minFree()})
	}
	if !isPostgres(cfg.Store) {
		return nil, fmt.Errorf("--store %s: want a postgres:// URL, or nothing for the embedded store in --data", RedactURL(cfg.Store))
	}
	s, err := postgres.Open(ctx, cfg.Store, postgres.Options{Schema: cfg.StoreSchema, Partitions: cfg.Partitions, NodeLiveness: a.leaseTTL(), Logger: a.log.With("component", "postgres")})
	if err != nil {
		// pgx's errors may quote the connection string: never show a
		// password.
		return nil, fmt.Errorf("opening the store at %s: %s", RedactURL(cfg.Store), redactIn(err.Error(), cfg.Store))
	}
	return s, nil
}

// isPostgres reports whether store names a PostgreSQL server.
func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// StoreName describes the store Config names, for logs: "embedded" or the
// PostgreSQL URL without its password.
func (c Config) StoreName() string {
	if c.Store == "" {
		return "embedded"
	}
	return RedactURL(c.Store)
}

// RedactURL returns u with any password replaced by "xxxxx", and its query
// dropped (it may carry a password too), for logs and errors.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(an unparsable URL)"
	}
	p.RawQuery = ""
	return p.Redacted()
}

// redactIn removes the password of the URL u from msg.
func redactIn(msg, u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return msg
	}
	if pw, ok := p.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}
