package archive

import (
	"context"
	"fmt"
)

// Starts is what Verify needs of the store: its partitions and how far each
// is trimmed.
type Starts interface {
	Partitions() int
	LogStart(ctx context.Context, p int) (uint64, error)
}

// Report is what Verify found.
type Report struct {
	// Segments, Events and Bytes count the segments checked, the events
	// they hold and their size.
	Segments int
	Events   uint64
	Bytes    int64
	// Problems lists every segment that fails a check and every break in
	// the log's continuity. The archive is sound when it is empty.
	Problems []string
	// Pending lists segments beyond a partition's log start: left by an
	// archiving pass that was interrupted before it recorded the new start,
	// and overwritten by the next pass. They are not part of the log.
	Pending []string
}

// OK reports whether Verify found no problem.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Verify reads every segment in bucket, checks its header, index and events
// against their checksums and against each other, and checks each
// partition's continuity: its segments hold positions 1 to the store's log
// start, consecutively, with no gap and no overlap. An error is returned only
// when the check itself cannot run (the bucket or the store failing); what it
// finds wrong is in the Report.
func Verify(ctx context.Context, bucket *Bucket, store Starts) (Report, error) {
	var r Report
	problem := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }
	n := store.Partitions()
	keys, err := bucket.listAll(ctx)
	if err != nil {
		return r, err
	}
	for _, k := range keys {
		if p, _, ok := parseKey(k); !ok || p >= n {
			problem("%s: not a segment of this store's %d partitions", k, n)
		}
	}
	for p := range n {
		start, err := store.LogStart(ctx, p)
		if err != nil {
			return r, err
		}
		firsts, _, err := bucket.list(ctx, p)
		if err != nil {
			return r, err
		}
		next := uint64(1) // the first position the next segment must hold
		for _, first := range firsts {
			key := segmentKey(p, first)
			if first > start {
				if first == start+1 && first == next {
					r.Pending = append(r.Pending, key)
				} else {
					problem("%s: beyond the log start %d of partition %d", key, start, p)
				}
				continue
			}
			raw, err := bucket.get(ctx, key, 0, -1)
			if err != nil {
				return r, err
			}
			r.Segments++
			r.Bytes += int64(len(raw))
			seg, err := parseSegment(p, first, raw)
			if err != nil {
				problem("%s: %v", key, err)
				// Its extent is unknown; continuity resumes at the next.
				next = 0
				continue
			}
			r.Events += uint64(seg.h.Count)
			if err := checkEvents(p, seg); err != nil {
				problem("%s: %v", key, err)
			}
			switch {
			case next == 0:
			case first > next:
				problem("partition %d: positions %d..%d are in no segment", p, next, first-1)
			case first < next:
				problem("%s: overlaps the previous segment, which ends at %d", key, next-1)
			}
			next = seg.h.Last + 1
		}
		switch {
		case start == 0:
		case next == 0:
		case next-1 < start:
			problem("partition %d: archived up to %d, but the store starts after %d: positions %d..%d are lost or their segments missing", p, next-1, start, next, start)
		case next-1 > start:
			problem("partition %d: segments end at %d, beyond the store's log start %d", p, next-1, start)
		}
	}
	return r, nil
}

// checkEvents checks that a decoded segment's events are those its header
// and index describe.
func checkEvents(p int, seg *segmentData) error {
	for i, e := range seg.events {
		if want := seg.h.First + uint64(i); e.Position != want || e.Partition != p {
			return fmt.Errorf("event %d is partition %d position %d, want %d/%d", i, e.Partition, e.Position, p, want)
		}
	}
	return nil
}
