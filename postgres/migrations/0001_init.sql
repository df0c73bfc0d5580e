-- stockd PostgreSQL store, schema version 1.
--
-- Every name that is compared or ordered as a Go string (SKUs, idempotency
-- keys, consumer names, record kinds and keys) is bytea, so that equality
-- and order are byte-wise whatever the database's collation and encoding,
-- exactly as in the embedded store. Unsigned 64-bit values (positions,
-- versions, fingerprints) are stored as bigint holding the same 64 bits.

-- The number of partitions, fixed when the store is created.
CREATE TABLE meta (
	id         int PRIMARY KEY CHECK (id = 1),
	partitions int NOT NULL CHECK (partitions > 0)
);

-- One row per partition: the position of its last event (the head that
-- every append names and updates conditionally) and its log start (the last
-- position trimmed to cold storage).
CREATE TABLE partitions (
	part      int PRIMARY KEY,
	head      bigint NOT NULL DEFAULT 0,
	log_start bigint NOT NULL DEFAULT 0,
	CHECK (log_start <= head)
);

-- One row per event. data is the event in stockd's binary codec
-- (stockd.AppendEvents of the one event; partition and position implied).
-- batch_id is set on the first event of each append: it is how a retry after
-- an ambiguous COMMIT recognises its own batch.
CREATE TABLE events (
	part     int NOT NULL,
	pos      bigint NOT NULL,
	sku      bytea,
	version  bigint NOT NULL,
	batch_id bytea,
	data     bytea NOT NULL,
	PRIMARY KEY (part, pos)
);

-- The SKU history index: a SKU's events in version order.
CREATE INDEX events_sku_version ON events (sku, version) WHERE sku IS NOT NULL;

-- Idempotency records (stockd.KeyGuard): the primary key refuses a key
-- already recorded.
CREATE TABLE idempotency_keys (
	key         bytea PRIMARY KEY,
	part        int NOT NULL,
	pos         bigint NOT NULL,
	fingerprint bigint NOT NULL
);

-- Retired records, kept for good (trimming never deletes them).
CREATE TABLE retired (
	key  bytea PRIMARY KEY,
	part int NOT NULL,
	pos  bigint NOT NULL,
	data bytea NOT NULL
);

-- The latest snapshot of each partition.
CREATE TABLE snapshots (
	part int PRIMARY KEY,
	pos  bigint NOT NULL,
	data bytea NOT NULL
);

-- Consumer checkpoints: position and state in one row, replaced together.
CREATE TABLE checkpoints (
	consumer bytea NOT NULL,
	part     int NOT NULL,
	pos      bigint NOT NULL,
	state    bytea,
	PRIMARY KEY (consumer, part)
);

-- The service's own records (stockd.Records).
CREATE TABLE records (
	kind  bytea NOT NULL,
	key   bytea NOT NULL,
	value bytea NOT NULL,
	PRIMARY KEY (kind, key)
);
