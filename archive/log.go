package archive

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/stockd/stockd"
)

// Source is what Log wraps: a log that trims its oldest events.
type Source interface {
	stockd.Log
	stockd.Trimmer
}

// LogOptions configures NewLog.
type LogOptions struct {
	// CachedSegments is how many decompressed segments are kept, so that a
	// consumer reading an archived range page by page fetches each segment
	// once. Default 4: with segments of 100,000 events, a few hundred
	// megabytes at most.
	CachedSegments int
	// CachedIndexes is how many segments' SKU indexes are kept. Default 256.
	CachedIndexes int
	// PartitionOf returns the partition of a SKU's events; default
	// stockd.PartitionOf with the source's number of partitions.
	PartitionOf func(sku string) int
}

// readLimit is the number of events ReadPartition returns for a limit of 0
// or less, as the embedded store does.
const readLimit = 1000

// Log is a stockd.Log that reads a trimmed log whole: positions at or below
// the source's log start come from the bucket's segments, the rest from the
// source, merged at the boundary. Appends go to the source. Archived reads
// cost a fetch and a decompression per segment not in the cache.
//
// Memory does not grow with history: Log keeps the first position of each
// segment (8 bytes a segment) and bounded caches, never an index of events or
// SKUs.
type Log struct {
	src         Source
	bucket      *Bucket
	partitionOf func(string) int

	// moving, per partition, is held for reading by a read that spans
	// the archive and the source, and for writing by an Archiver of this
	// process while it moves the log start, so that such reads never see
	// the start move under them. (A log start moved by another process is
	// caught by checking it again, and the read retried.)
	moving []sync.RWMutex

	mu    sync.Mutex
	parts []catalog
	data  *lru[*segmentData]
	index *lru[[]skuEntry]
	// loading holds the fetches in progress, by segment key, so that
	// readers of one segment wait for one fetch rather than each fetching.
	loading map[string]*load
}

// load is one fetch of a segment in progress; done is closed when seg and
// err are set.
type load struct {
	done chan struct{}
	seg  *segmentData
	err  error
}

// catalog is what Log knows of one partition's segments.
type catalog struct {
	// firsts are the first positions of the segments listed, in order.
	firsts []uint64
	// covered is the log start the listing was made for: every position up
	// to it is in a listed segment.
	covered uint64
}

// segmentData is a decompressed segment.
type segmentData struct {
	h      header
	events []stockd.Event
}

// NewLog returns a Log over src, reading archived events from bucket.
func NewLog(src Source, bucket *Bucket, opts LogOptions) *Log {
	if opts.CachedSegments <= 0 {
		opts.CachedSegments = 4
	}
	if opts.CachedIndexes <= 0 {
		opts.CachedIndexes = 256
	}
	n := src.Partitions()
	if opts.PartitionOf == nil {
		opts.PartitionOf = func(sku string) int { return stockd.PartitionOf(sku, n) }
	}
	return &Log{
		src: src, bucket: bucket, partitionOf: opts.PartitionOf,
		parts:   make([]catalog, n),
		moving:  make([]sync.RWMutex, n),
		data:    newLRU[*segmentData](opts.CachedSegments),
		index:   newLRU[[]skuEntry](opts.CachedIndexes),
		loading: make(map[string]*load),
	}
}

// Source returns the wrapped log.
func (l *Log) Source() Source { return l.src }

// Partitions returns the source's number of partitions.
func (l *Log) Partitions() int { return l.src.Partitions() }

// Append appends to the source.
func (l *Log) Append(ctx context.Context, p int, expected uint64, batch stockd.Batch) error {
	return l.src.Append(ctx, p, expected, batch)
}

// LookupRetired returns the source's retired record of key. Retired records
// are never archived: ids are answered from the fast store for good.
func (l *Log) LookupRetired(ctx context.Context, key string) (stockd.RetiredRecord, bool, error) {
	return l.src.LookupRetired(ctx, key)
}

// maxRetries bounds how often a read starts again because the archiver
// trimmed the range it was reading meanwhile.
const maxRetries = 8

// ReadPartition returns up to limit events of partition p after position
// after: archived ones from segments, then the source's.
func (l *Log) ReadPartition(ctx context.Context, p int, after uint64, limit int) ([]stockd.Event, error) {
	if p < 0 || p >= l.src.Partitions() {
		return l.src.ReadPartition(ctx, p, after, limit) // the source says why
	}
	if limit <= 0 {
		limit = readLimit
	}
	for range maxRetries {
		start, err := l.src.LogStart(ctx, p)
		if err != nil {
			return nil, err
		}
		if after >= start {
			events, err := l.src.ReadPartition(ctx, p, after, limit)
			if errors.Is(err, stockd.ErrTrimmed) {
				continue // trimmed meanwhile: read from the archive
			}
			return events, err
		}
		out, retry, err := l.readAcross(ctx, p, after, limit)
		if retry {
			continue
		}
		return out, err
	}
	return nil, fmt.Errorf("archive: partition %d: the log start kept moving during a read", p)
}

// readAcross reads from the archive up to the log start, then the source,
// with the start held still; retry says the start had moved before the lock
// was taken, so the caller must look again.
func (l *Log) readAcross(ctx context.Context, p int, after uint64, limit int) (out []stockd.Event, retry bool, err error) {
	l.moving[p].RLock()
	defer l.moving[p].RUnlock()
	start, err := l.src.LogStart(ctx, p)
	if err != nil {
		return nil, false, err
	}
	if after >= start {
		return nil, true, nil
	}
	out, err = l.readArchived(ctx, p, after, min(start, after+uint64(limit)), start)
	if err != nil || len(out) == limit {
		return out, false, err
	}
	rest, err := l.src.ReadPartition(ctx, p, start, limit-len(out))
	if errors.Is(err, stockd.ErrTrimmed) {
		return nil, true, nil // moved by another process
	}
	if err != nil {
		return nil, false, err
	}
	return append(out, rest...), false, nil
}

// setLogStart moves partition p's log start in the source, with the reads
// that span the boundary held off, and drops what Log knows of p's segments.
func (l *Log) setLogStart(ctx context.Context, p int, start uint64) error {
	l.moving[p].Lock()
	defer l.moving[p].Unlock()
	err := l.src.SetLogStart(ctx, p, start)
	l.forget(p)
	return err
}

// readArchived returns the archived events of partition p with positions in
// (after, upTo], where upTo is at most start, the source's log start.
func (l *Log) readArchived(ctx context.Context, p int, after, upTo, start uint64) ([]stockd.Event, error) {
	out := make([]stockd.Event, 0, upTo-after)
	for pos := after + 1; pos <= upTo; {
		first, err := l.segmentOf(ctx, p, pos, start)
		if err != nil {
			return nil, err
		}
		seg, err := l.loadData(ctx, p, first)
		if err != nil {
			return nil, err
		}
		if pos < seg.h.First || pos > seg.h.Last {
			return nil, fmt.Errorf("archive: %w: segment %s holds %d..%d, not position %d", ErrCorrupt, segmentKey(p, first), seg.h.First, seg.h.Last, pos)
		}
		end := min(upTo, seg.h.Last)
		out = append(out, seg.events[pos-seg.h.First:end-seg.h.First+1]...)
		pos = end + 1
	}
	return out, nil
}

// segments returns the first positions of partition p's segments that hold
// positions up to start, listing the bucket again if the catalog does not
// cover start yet.
func (l *Log) segments(ctx context.Context, p int, start uint64) ([]uint64, error) {
	l.mu.Lock()
	c := l.parts[p]
	l.mu.Unlock()
	if c.covered < start {
		firsts, _, err := l.bucket.list(ctx, p)
		if err != nil {
			return nil, err
		}
		c = catalog{firsts: firsts, covered: start}
		l.mu.Lock()
		if l.parts[p].covered < start {
			l.parts[p] = c
		}
		l.mu.Unlock()
	}
	// Objects beyond the log start are left by an interrupted pass and
	// will be overwritten: not part of the log.
	n, _ := slices.BinarySearch(c.firsts, start+1)
	return c.firsts[:n], nil
}

// segmentOf returns the first position of the segment holding pos, which is
// at most start.
func (l *Log) segmentOf(ctx context.Context, p int, pos, start uint64) (uint64, error) {
	firsts, err := l.segments(ctx, p, start)
	if err != nil {
		return 0, err
	}
	i, found := slices.BinarySearch(firsts, pos)
	if !found {
		i--
	}
	if i < 0 {
		return 0, fmt.Errorf("archive: partition %d position %d is archived (log start %d) but in no segment: run stockd archive verify", p, pos, start)
	}
	return firsts[i], nil
}

// loadData returns a decompressed segment, from the cache or the bucket.
func (l *Log) loadData(ctx context.Context, p int, first uint64) (*segmentData, error) {
	key := segmentKey(p, first)
	if seg, ok := l.data.get(key); ok {
		return seg, nil
	}
	// Readers of one range arrive together (consumers catching up): let
	// one fetch while the others wait for its result.
	l.mu.Lock()
	if f, ok := l.loading[key]; ok {
		l.mu.Unlock()
		select {
		case <-f.done:
			return f.seg, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &load{done: make(chan struct{})}
	l.loading[key] = f
	l.mu.Unlock()
	f.seg, f.err = l.fetch(ctx, p, first)
	if f.err == nil {
		l.data.put(key, f.seg)
	}
	l.mu.Lock()
	delete(l.loading, key)
	l.mu.Unlock()
	close(f.done)
	return f.seg, f.err
}

// fetch reads and decodes a whole segment from the bucket.
func (l *Log) fetch(ctx context.Context, p int, first uint64) (*segmentData, error) {
	key := segmentKey(p, first)
	raw, err := l.bucket.get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	seg, err := parseSegment(p, first, raw)
	if err != nil {
		return nil, fmt.Errorf("archive: segment %s: %w", key, err)
	}
	return seg, nil
}

// parseSegment checks and decodes a whole segment, which must be partition
// p's starting at first.
func parseSegment(p int, first uint64, raw []byte) (*segmentData, error) {
	h, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	if h.Partition != p || h.First != first {
		return nil, fmt.Errorf("%w: header names partition %d position %d", ErrCorrupt, h.Partition, h.First)
	}
	if int64(len(raw)) != h.size() {
		return nil, fmt.Errorf("%w: %d bytes, header says %d", ErrCorrupt, len(raw), h.size())
	}
	if _, err := decodeIndex(h, raw[headerSize:headerSize+int(h.IndexLen)]); err != nil {
		return nil, err
	}
	events, err := decodeData(h, raw[headerSize+int(h.IndexLen):])
	if err != nil {
		return nil, err
	}
	return &segmentData{h: h, events: events}, nil
}

// loadIndex returns a segment's header and SKU index, reading only the start
// of the object.
func (l *Log) loadIndex(ctx context.Context, p int, first uint64) ([]skuEntry, error) {
	key := segmentKey(p, first)
	if x, ok := l.index.get(key); ok {
		return x, nil
	}
	raw, err := l.bucket.get(ctx, key, 0, int64(headerSize))
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(raw)
	if err != nil {
		return nil, fmt.Errorf("archive: segment %s: %w", key, err)
	}
	raw, err = l.bucket.get(ctx, key, int64(headerSize), int64(h.IndexLen))
	if err != nil {
		return nil, err
	}
	x, err := decodeIndex(h, raw)
	if err != nil {
		return nil, fmt.Errorf("archive: segment %s: %w", key, err)
	}
	l.index.put(key, x)
	return x, nil
}

// ReadSKU returns the events of one SKU in version order, as bounded by q:
// its archived events from the segments whose index lists it, then the
// source's.
func (l *Log) ReadSKU(ctx context.Context, sku string, q stockd.SKUQuery) ([]stockd.Event, error) {
	if sku == "" {
		return l.src.ReadSKU(ctx, sku, q)
	}
	p := l.partitionOf(sku)
	if p < 0 || p >= len(l.moving) {
		return nil, stockd.Errorf(stockd.CodeInvalid, "SKU %q maps to partition %d of %d", sku, p, len(l.moving))
	}
	l.moving[p].RLock()
	defer l.moving[p].RUnlock()
	for range maxRetries {
		start, err := l.src.LogStart(ctx, p)
		if err != nil {
			return nil, err
		}
		var out []stockd.Event
		if start > 0 {
			var done bool
			out, done, err = l.readSKUArchived(ctx, p, start, sku, q)
			if err != nil || done {
				return out, err
			}
		}
		rest := q
		if len(out) > 0 {
			rest.AfterVersion = out[len(out)-1].Version
		}
		if q.Limit > 0 {
			rest.Limit = q.Limit - len(out)
		}
		events, err := l.src.ReadSKU(ctx, sku, rest)
		if err != nil {
			return nil, err
		}
		// The source hides events at or below its log start: if it moved
		// meanwhile, events between the two starts may be in neither part.
		if now, err := l.src.LogStart(ctx, p); err != nil || now != start {
			continue
		}
		return append(out, events...), nil
	}
	return nil, fmt.Errorf("archive: partition %d: the log start kept moving during a read", p)
}

// readSKUArchived returns sku's archived events as bounded by q, and whether
// a bound of q stopped the read (so the source need not be read).
func (l *Log) readSKUArchived(ctx context.Context, p int, start uint64, sku string, q stockd.SKUQuery) ([]stockd.Event, bool, error) {
	firsts, err := l.segments(ctx, p, start)
	if err != nil {
		return nil, false, err
	}
	var out []stockd.Event
	for _, first := range firsts {
		if q.UpToPosition != 0 && first > q.UpToPosition {
			return out, true, nil
		}
		index, err := l.loadIndex(ctx, p, first)
		if err != nil {
			return nil, false, err
		}
		x, ok := findSKU(index, sku)
		if !ok || x.LastVersion <= q.AfterVersion {
			continue
		}
		seg, err := l.loadData(ctx, p, first)
		if err != nil {
			return nil, false, err
		}
		for _, e := range seg.events[x.FirstPos-seg.h.First : x.LastPos-seg.h.First+1] {
			if e.SKU != sku || e.Version <= q.AfterVersion {
				continue
			}
			if q.UpToPosition != 0 && e.Position > q.UpToPosition {
				return out, true, nil
			}
			if !q.UpToTime.IsZero() && e.Time.After(q.UpToTime) {
				return out, true, nil
			}
			out = append(out, e)
			if q.Limit > 0 && len(out) >= q.Limit {
				return out, true, nil
			}
		}
	}
	return out, false, nil
}

// forget drops what Log knows of partition p's segments, after the archiver
// wrote one, so that the next read lists them again.
func (l *Log) forget(p int) {
	l.mu.Lock()
	l.parts[p] = catalog{}
	l.mu.Unlock()
}

// lru is a small least-recently-used cache, safe for concurrent use.
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *lruItem[V], most recent first
	items map[string]*list.Element
}

type lruItem[V any] struct {
	key   string
	value V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), items: make(map[string]*list.Element)}
}

func (c *lru[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruItem[V]).value, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value.(*lruItem[V]).value = v
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruItem[V]{key, v})
	for c.order.Len() > c.max {
		el := c.order.Back()
		c.order.Remove(el)
		delete(c.items, el.Value.(*lruItem[V]).key)
	}
}
