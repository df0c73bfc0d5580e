package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/stockd/stockd"
)

// RecordStore is what RunRecords tests: a store with the Records capability
// that can be closed and opened again.
type RecordStore interface {
	stockd.Records
	Close() error
}

// RunRecords checks the rules of stockd.Records against the stores returned
// by open, which must open the store in dir, creating an empty one in an
// empty dir, so that records are checked to survive a restart. The suite
// closes every store it gets.
func RunRecords(t *testing.T, open func(t *testing.T, dir string) (RecordStore, error)) {
	mustOpen := func(t *testing.T, dir string) RecordStore {
		t.Helper()
		s, err := open(t, dir)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	}
	t.Run("PutGetListDeleteSurviveRestart", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir)
		testRecords(t, s)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = mustOpen(t, dir)
		defer closeRecords(t, s)
		wantRecords(t, s, "subscription", "", 10, "b=2", "c=three")
		wantRecords(t, s, "sub", "", 10, "a=other kind")
	})
	t.Run("ConcurrentCreatesOneWins", func(t *testing.T) {
		s := mustOpen(t, t.TempDir())
		defer closeRecords(t, s)
		testConcurrentCreates(t, s)
	})
	t.Run("RefusesBadNamesAndLargeValues", func(t *testing.T) {
		s := mustOpen(t, t.TempDir())
		defer closeRecords(t, s)
		for _, c := range []struct{ kind, key string }{{"", "k"}, {"k", ""}, {"a\x00b", "k"}, {"k", "a\x00b"}} {
			wantCode(t, s.PutRecord(ctx, c.kind, c.key, []byte("v")), stockd.CodeInvalid, "PutRecord(%q, %q)", c.kind, c.key)
		}
		wantCode(t, s.PutRecord(ctx, "k", "big", make([]byte, stockd.MaxRecordSize+1)), stockd.CodeInvalid, "PutRecord of %d bytes", stockd.MaxRecordSize+1)
		if err := s.PutRecord(ctx, "k", "max", make([]byte, stockd.MaxRecordSize)); err != nil {
			t.Errorf("PutRecord of exactly MaxRecordSize bytes: %v", err)
		}
	})
}

// testRecords puts, replaces, creates, lists and deletes records of two
// kinds whose names share a prefix, leaving subscription b=2, c=three and
// sub a="other kind".
func testRecords(t *testing.T, s stockd.Records) {
	t.Helper()
	if _, ok, err := s.GetRecord(ctx, "subscription", "a"); err != nil || ok {
		t.Fatalf("GetRecord of a missing record = %v, %v; want not found", ok, err)
	}
	wantRecords(t, s, "subscription", "", 10)
	value := []byte("1")
	mustPut(t, s, "subscription", "a", value)
	value[0] = 'x' // the store must not keep the caller's buffer
	mustPut(t, s, "subscription", "c", []byte("3"))
	mustPut(t, s, "subscription", "b", []byte("2"))
	mustPut(t, s, "sub", "a", []byte("other kind"))
	mustPut(t, s, "subscriptions", "a", []byte("longer kind"))
	wantRecords(t, s, "subscription", "", 10, "a=1", "b=2", "c=3")
	wantRecords(t, s, "subscription", "", 2, "a=1", "b=2")
	wantRecords(t, s, "subscription", "a", 10, "b=2", "c=3")
	wantRecords(t, s, "subscription", "b", 1, "c=3")
	wantRecords(t, s, "subscription", "c", 10)

	got, ok, err := s.GetRecord(ctx, "subscription", "a")
	if err != nil || !ok || string(got) != "1" {
		t.Fatalf("GetRecord(subscription, a) = %q, %v, %v; want \"1\"", got, ok, err)
	}
	got[0] = 'y' // nor hand out its own
	if again, _, _ := s.GetRecord(ctx, "subscription", "a"); string(again) != "1" {
		t.Fatalf("a record changed when the caller changed what GetRecord returned: %q", again)
	}

	created, err := s.CreateRecord(ctx, "subscription", "c", []byte("three?"))
	if err != nil || created {
		t.Fatalf("CreateRecord over an existing record = %v, %v; want false, nil", created, err)
	}
	mustPut(t, s, "subscription", "c", []byte("three"))
	if err := s.DeleteRecord(ctx, "subscription", "a"); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	if err := s.DeleteRecord(ctx, "subscription", "never"); err != nil {
		t.Fatalf("DeleteRecord of a missing record: %v", err)
	}
	if err := s.DeleteRecord(ctx, "subscriptions", "a"); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	created, err = s.CreateRecord(ctx, "subscriptions", "a", []byte("again"))
	if err != nil || !created {
		t.Fatalf("CreateRecord after DeleteRecord = %v, %v; want true, nil", created, err)
	}
	if err := s.DeleteRecord(ctx, "subscriptions", "a"); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	wantRecords(t, s, "subscription", "", 10, "b=2", "c=three")
	wantRecords(t, s, "subscriptions", "", 10)
}

// testConcurrentCreates races creators of the same records: exactly one
// wins each, and the record holds the winner's value.
func testConcurrentCreates(t *testing.T, s stockd.Records) {
	const keys, racers = 20, 8
	var mu sync.Mutex
	winners := map[string][]int{}
	var wg sync.WaitGroup
	for r := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				key := fmt.Sprintf("k%02d", k)
				ok, err := s.CreateRecord(ctx, "race", key, []byte{byte(r)})
				if err != nil {
					t.Errorf("CreateRecord: %v", err)
					return
				}
				if ok {
					mu.Lock()
					winners[key] = append(winners[key], r)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for k := range keys {
		key := fmt.Sprintf("k%02d", k)
		w := winners[key]
		if len(w) != 1 {
			t.Errorf("record %s was created by %d racers %v; want exactly one", key, len(w), w)
			continue
		}
		got, _, err := s.GetRecord(ctx, "race", key)
		if err != nil || !bytes.Equal(got, []byte{byte(w[0])}) {
			t.Errorf("record %s = %v, %v; want the winner's value %d", key, got, err, w[0])
		}
	}
}

func mustPut(t *testing.T, s stockd.Records, kind, key string, value []byte) {
	t.Helper()
	if err := s.PutRecord(ctx, kind, key, value); err != nil {
		t.Fatalf("PutRecord(%s, %s): %v", kind, key, err)
	}
}

// wantRecords fails unless ListRecords(kind, after, limit) returns exactly
// want, given as "key=value".
func wantRecords(t *testing.T, s stockd.Records, kind, after string, limit int, want ...string) {
	t.Helper()
	recs, err := s.ListRecords(ctx, kind, after, limit)
	if err != nil {
		t.Fatalf("ListRecords(%s, %q, %d): %v", kind, after, limit, err)
	}
	got := make([]string, len(recs))
	for i, r := range recs {
		got[i] = r.Key + "=" + string(r.Value)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ListRecords(%s, %q, %d) = %v; want %v", kind, after, limit, got, want)
	}
}

func closeRecords(t *testing.T, s RecordStore) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
