package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/stockd/stockd/postgres"
	"github.com/stockd/stockd/publish"
)

// SQLAvailabilityName names the publisher that keeps the availability table
// (Config.SQLAvailability): its checkpoints are "publish/sql-availability",
// and /metrics and GET /v1/consumers show it under that name.
const SQLAvailabilityName = "sql-availability"

// errSQLAvailabilityStore refuses Config.SQLAvailability without a
// PostgreSQL store.
var errSQLAvailabilityStore = errors.New("--sql-availability keeps the availability read model in a table of the PostgreSQL store: it needs --store postgres://… (STOCKD_STORE)")

// checkSQLAvailability refuses Config.SQLAvailability without a PostgreSQL
// store.
func (c *Config) checkSQLAvailability() error {
	if c.SQLAvailability && !isPostgres(c.Store) {
		return errSQLAvailabilityStore
	}
	return nil
}

// startSQLAvailability starts, with Config.SQLAvailability, the Runner that
// keeps the availability table of the PostgreSQL store
// (postgres.AvailabilityTable, docs/sql-availability.md). It runs like the
// brokers' publishers, behind a checkpoint of its own, and is closed with
// them; unlike them it is offered every event, bookkeeping included, because
// its fold needs every position.
func (a *App) startSQLAvailability(ctx context.Context) error {
	if !a.cfg.SQLAvailability {
		return nil
	}
	ps, ok := a.Store.(*postgres.Store)
	if !ok {
		return errSQLAvailabilityStore
	}
	if err := a.ensurePublishMetrics(); err != nil {
		return err
	}
	log := a.log.With("component", "publish", "publisher", SQLAvailabilityName)
	table := ps.AvailabilityTable(postgres.AvailabilityTableOptions{Log: a.Log, Logger: log})
	r, err := publish.Start(ctx, table, a.runnerOptions(SQLAvailabilityName, log))
	if err != nil {
		return fmt.Errorf("sql availability: %w", err)
	}
	// The Runner is closed first (closePublishers), then the table saves
	// its folds.
	a.publishers = append(a.publishers, publisher{runner: r, close: func() error { return table.Close(context.Background()) }})
	a.Publishers = append(a.Publishers, r)
	return nil
}
