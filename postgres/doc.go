// Package postgres is the stockd store on PostgreSQL, through pgx v5: the
// store several stockd processes share to scale out. It implements
// stockd.Store with the optional capabilities stockd.GroupAppender,
// stockd.KeyGuard, stockd.Trimmer, stockd.Records and stockd.Leases, and
// passes the conformance suite of package storetest unchanged.
//
// All tables live in one PostgreSQL schema (Options.Schema, "stockd" by
// default), created and migrated by Open from versioned migrations embedded
// in the binary (migrations/NNNN_what.sql, recorded in schema_migrations).
// docs/storage.md describes the tables.
//
// An append is one transaction: when its batches carry leases, a fence
// first (the lease rows, if current by the database's clock, are locked FOR
// SHARE until the commit, so that a takeover waits; a lease not current
// refuses the append with stockd.CodeLeaseLost); then a conditional update
// of each partition's head (UPDATE partitions SET head = new WHERE part = p
// AND head = expected; no row updated is a conflict), then the events,
// idempotency keys and retired records, each as one multi-row insert.
// Nothing is acknowledged before COMMIT returns. Serialization failures
// (40001), deadlocks (40P01) and connections lost before COMMIT are
// retried. A COMMIT whose answer is lost is retried too, and never applies a
// batch twice: the retry's conditional head update (or its fence, if the
// lease was lost meanwhile) fails if the first commit went through, and the
// batch id stored with the first event then says whether the batch found
// there is this one (success) or another writer's (the refusal stands).
//
// Partition leases (stockd.Leases) are rows of the leases table, one per
// partition, with an epoch that grows each time a partition is taken anew;
// nodes register in the nodes table. Every expiry is judged by the
// database's now(), never by a node's clock.
//
// The store does not implement stockd.PipelinedAppender: a pipelined append
// would hold the partition's row lock from BeginAppend until its wait, and
// the next BeginAppend of the partition would wait for it. BeginAppendGroup
// commits before it returns; the engine still pays one commit per group.
//
// # CockroachDB
//
// The SQL is meant to run on CockroachDB too: no advisory locks, no
// LISTEN/NOTIFY, no PL/pgSQL; upserts are INSERT ... ON CONFLICT; names
// compared as strings are bytea, so order is byte order on both (node IDs
// and URLs, only ever compared for equality, are text); retries
// cover 40001, which CockroachDB returns for every transaction it must
// restart. None of it has been run against CockroachDB yet. Still to check
// there: the migrations (DDL inside a transaction with the
// schema_migrations insert, which CockroachDB runs with restrictions; the
// partial index; CREATE SCHEMA and search_path), the multi-argument unnest
// and LEFT JOIN LATERAL of the inserts and ReadPartition, DELETE with an IN
// subquery and LIMIT in Trim, the lease statements (ON CONFLICT DO UPDATE
// ... WHERE with RETURNING; FOR SHARE, which CockroachDB honours only under
// READ COMMITTED, leaving the fence to serializability otherwise; now() as
// the transaction's timestamp), and the cost of its serializable isolation on
// a hot partition (every append to one partition conflicts on its row, and
// CockroachDB may abort where PostgreSQL's READ COMMITTED waits).
package postgres
