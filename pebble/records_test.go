package pebble

import (
	"testing"

	"github.com/stockd/stockd/storetest"
)

func TestRecords(t *testing.T) {
	storetest.RunRecords(t, func(t *testing.T, dir string) (storetest.RecordStore, error) {
		return Open(dir, Options{Partitions: 2, Logger: testLogger})
	})
}
