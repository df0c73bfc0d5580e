// Package pebble implements stockd.Store on Pebble, CockroachDB's embedded
// LSM key-value engine, with every append synced to its write-ahead log.
package pebble

import _ "github.com/cockroachdb/pebble/v2"
