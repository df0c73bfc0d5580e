-- stockd PostgreSQL store, schema version 2: partition leases and the node
-- registry, so that several stockd nodes can share one store
-- (stockd.Leases). Every time is the database's (now()), never a node's.

-- One row per partition ever leased. node and epoch name the current (or
-- last) lease; epoch grows by one each time the partition is taken anew and
-- never decreases. The lease is current while expires_at > now(). An append
-- that carries a lease locks its row FOR SHARE, so a takeover (an UPDATE of
-- the row) waits for the append to commit or roll back.
CREATE TABLE leases (
	part       int PRIMARY KEY,
	node       text NOT NULL,
	epoch      bigint NOT NULL CHECK (epoch > 0),
	expires_at timestamptz NOT NULL
);

-- One row per node that sent a heartbeat: the URL other nodes reach it at
-- and when it was last seen.
CREATE TABLE nodes (
	id      text PRIMARY KEY,
	url     text NOT NULL,
	seen_at timestamptz NOT NULL
);
