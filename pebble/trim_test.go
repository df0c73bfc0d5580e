package pebble

import (
	"testing"

	"github.com/stockd/stockd/storetest"
)

func TestTrimmer(t *testing.T) {
	storetest.RunTrimmer(t, func(t *testing.T, dir string, partitions int) (storetest.TrimStore, error) {
		return Open(dir, Options{Partitions: partitions, Logger: testLogger})
	})
}
