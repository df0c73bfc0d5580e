package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/archive"
	"github.com/stockd/stockd/pebble"
	"github.com/stockd/stockd/storetest"
)

// TestArchiveVerify archives part of a store into the default folder, then
// checks that stockd archive verify passes, and fails once a segment is
// corrupted or missing.
func TestArchiveVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	for p := range 2 {
		log := storetest.NewLog(p)
		for range 30 {
			log.Append(t, s, "A", "B", "")
		}
		if err := s.SaveSnapshot(ctx, stockd.Snapshot{Partition: p, Position: log.Head, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := app.DefaultArchiveURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := archive.OpenBucket(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	a, err := archive.New(s, b, archive.Options{After: time.Hour, SegmentEvents: 20, MinEvents: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	s.Close()

	verify := func() (int, string) {
		var stdout, stderr bytes.Buffer
		code := Run(ctx, []string{"archive", "verify", "--data", dir}, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, out := verify(); code != exitOK || !strings.Contains(out, "ok") {
		t.Fatalf("verify of a sound archive: exit %d\n%s", code, out)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "archive", "p00001", "*.seg"))
	if len(segs) < 2 {
		t.Fatalf("segments: %q", segs)
	}
	raw, _ := os.ReadFile(segs[1])
	bad := bytes.Clone(raw)
	bad[len(bad)-2] ^= 1
	os.WriteFile(segs[1], bad, 0o644)
	if code, out := verify(); code != exitFailure || !strings.Contains(out, "checksum") {
		t.Fatalf("verify of a corrupt segment: exit %d\n%s", code, out)
	}
	os.Remove(segs[1])
	if code, out := verify(); code != exitFailure || !strings.Contains(out, "in no segment") {
		t.Fatalf("verify with a segment missing: exit %d\n%s", code, out)
	}
	if code, _ := verify(); code == exitOK {
		t.Fatal("unreachable")
	}
	var stdout, stderr bytes.Buffer
	if code := Run(ctx, []string{"archive", "nope"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("archive nope: exit %d", code)
	}
}
