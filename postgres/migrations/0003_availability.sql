-- stockd PostgreSQL store, schema version 3: the availability read model
-- as a table other services can query with SQL (stockd serve
-- --sql-availability; docs/sql-availability.md). Written only by
-- postgres.AvailabilityTable; empty unless it runs.
--
-- SKUs and locations are text (they are valid UTF-8 without control
-- characters) in the "C" collation, so that ORDER BY is Go's byte order and
-- a prefix match (sku LIKE 'ABC%') can use the index.

-- One row per SKU and location the read model knows, as GET
-- /v1/availability shows them: available = on_hand - reserved -
-- safety_stock, never pushed below 0 by safety stock alone (negative only for
-- a shortage: held units that are not there). A SKU's own available is
-- sum(greatest(available, 0)) over its rows. part and position are the
-- partition and log position of the last event of the SKU applied to the
-- row, event_at that event's time, updated_at when the row was written.
CREATE TABLE availability (
	sku          text COLLATE "C" NOT NULL,
	location     text COLLATE "C" NOT NULL,
	part         int NOT NULL,
	on_hand      bigint NOT NULL,
	reserved     bigint NOT NULL,
	safety_stock bigint NOT NULL,
	available    bigint NOT NULL,
	position     bigint NOT NULL,
	event_at     timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL,
	PRIMARY KEY (sku, location)
);

-- All rows of a location (the primary key serves all rows of a SKU).
CREATE INDEX availability_location ON availability (location, sku);

-- One row per partition the table has followed: the position of the last
-- event applied to the table, in the same transaction as the rows it
-- changed, so the rows are always exactly the fold of the partition's log up
-- to it. state is the fold itself (stockd.EncodeAvailability) at
-- state_position (at or below position), saved now and then so that a
-- restart folds only the events after it again in memory.
CREATE TABLE availability_partitions (
	part           int PRIMARY KEY,
	position       bigint NOT NULL DEFAULT 0,
	event_at       timestamptz,
	updated_at     timestamptz NOT NULL DEFAULT now(),
	state_position bigint NOT NULL DEFAULT 0,
	state          bytea,
	CHECK (state_position <= position)
);
