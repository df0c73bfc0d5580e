// Package drops watches a folder or bucket where suppliers drop CSV files of
// receipts (gocloud.dev/blob: file://, s3://, gs://, azblob://, mem://) and
// imports every new file once, through package imports.
//
// A file is read only once it has stayed unchanged (size, modification time
// and, where the store gives one, MD5) for the settle time, so a file still
// being written is not read half-way. Each file version read is recorded in
// Records (kind "drops/files", by key), so a restart does not read it again;
// a file changed later is read again. Files are never deleted or moved: the
// record says what became of them. Whatever a file's content was called, the
// importer knows it by its SHA-256, so the same content dropped twice, or
// under another name, books nothing twice. One file's failure never stops
// the watcher.
package drops

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gocloud.dev/blob"

	"github.com/stockd/stockd"
)

// Kind is the kind of Records a file version read is recorded under, keyed
// by the file's key in the bucket.
const Kind = "drops/files"

// Defaults of Options.
const (
	DefaultEvery    = 10 * time.Second
	DefaultSettle   = 30 * time.Second
	DefaultMaxBytes = 64 << 20
)

// Options configure a Watcher.
type Options struct {
	// URL names the folder or bucket, such as file:///srv/drops or
	// s3://bucket?prefix=drops/.
	URL string
	// Every is the pause between two looks at the bucket; default 10 s.
	Every time.Duration
	// Settle is how long a file must stay unchanged before it is read;
	// default 30 s. Zero reads a file as soon as it is seen.
	Settle time.Duration
	// SettleSet makes a zero Settle mean zero rather than the default.
	SettleSet bool
	// Location is the location of rows that name none.
	Location string
	// MaxBytes bounds a file's size; larger ones are refused (recorded as
	// failed). Default 64 MiB.
	MaxBytes int64
	// Imports imports the files.
	Imports stockd.Imports
	// Records keeps what was read.
	Records stockd.Records
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics counts files; nil counts nothing.
	Metrics *Metrics
}

// File is what the watcher recorded of a file version it read.
type File struct {
	Key     string    `json:"key"`
	Version string    `json:"version"`
	SHA256  string    `json:"sha256,omitempty"`
	Report  string    `json:"report,omitempty"`
	Result  string    `json:"result"`
	Error   string    `json:"error,omitempty"`
	ReadAt  time.Time `json:"read_at"`
}

// The results of a file: imported (new content), repeat (content imported
// before: nothing booked twice), failed (unreadable, too large, or refused
// as a whole).
const (
	ResultImported = "imported"
	ResultRepeat   = "repeat"
	ResultFailed   = "failed"
)

// Watcher imports the CSV files dropped into a bucket.
type Watcher struct {
	opts   Options
	log    *slog.Logger
	bucket *blob.Bucket

	mu      sync.Mutex // one Scan at a time
	waiting map[string]candidate
	read    map[string]string // key → version recorded

	cancel context.CancelFunc
	done   chan struct{}
}

// candidate is a file seen but not yet read: its version and since when it
// has had it.
type candidate struct {
	version string
	since   time.Time
}

// Open opens the bucket. Start then watches it; Scan looks once.
func Open(ctx context.Context, opts Options) (*Watcher, error) {
	if opts.Every <= 0 {
		opts.Every = DefaultEvery
	}
	if opts.Settle <= 0 && !opts.SettleSet {
		opts.Settle = DefaultSettle
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b, err := blob.OpenBucket(ctx, opts.URL)
	if err != nil {
		return nil, fmt.Errorf("drops: opening %s: %w", opts.URL, err)
	}
	return &Watcher{opts: opts, log: opts.Logger, bucket: b, waiting: map[string]candidate{}, read: map[string]string{}}, nil
}

// Start looks at the bucket every Options.Every until Close.
func (w *Watcher) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(w.opts.Every)
		defer t.Stop()
		for {
			if err := w.Scan(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("drops: looking at the bucket", "url", w.opts.URL, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops watching (after the file being imported, if any) and closes
// the bucket.
func (w *Watcher) Close() error {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
	return w.bucket.Close()
}

// Scan looks at the bucket once: every CSV file whose version was not read
// yet and has settled is imported. It returns an error only when the bucket
// cannot be listed; a file's own failure is logged, counted and recorded.
func (w *Watcher) Scan(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.opts.Now()
	present := map[string]bool{}
	it := w.bucket.List(nil)
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if obj.IsDir || !strings.HasSuffix(strings.ToLower(obj.Key), ".csv") {
			continue
		}
		present[obj.Key] = true
		version := versionOf(obj.Size, obj.ModTime, obj.MD5)
		done, err := w.readVersion(ctx, obj.Key)
		if err != nil {
			return err
		}
		if done == version {
			continue
		}
		c, ok := w.waiting[obj.Key]
		if !ok || c.version != version {
			c = candidate{version: version, since: now}
			w.waiting[obj.Key] = c
		}
		if now.Sub(c.since) < w.opts.Settle {
			continue
		}
		if err := w.importFile(ctx, obj, version); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.log.Warn("drops: a file was not imported; it is tried again", "key", obj.Key, "err", err)
			continue
		}
		delete(w.waiting, obj.Key)
	}
	for k := range w.waiting {
		if !present[k] {
			delete(w.waiting, k)
		}
	}
	for k := range w.read {
		if !present[k] {
			delete(w.read, k) // memory follows the bucket; the record stays
		}
	}
	return nil
}

// versionOf is what tells two versions of a file apart.
func versionOf(size int64, mod time.Time, md5 []byte) string {
	return fmt.Sprintf("%d/%d/%s", size, mod.UnixNano(), hex.EncodeToString(md5))
}

// readVersion returns the version of key recorded as read, "" if none.
func (w *Watcher) readVersion(ctx context.Context, key string) (string, error) {
	if v, ok := w.read[key]; ok {
		return v, nil
	}
	b, ok, err := w.opts.Records.GetRecord(ctx, Kind, key)
	if err != nil || !ok {
		return "", err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return "", nil // read it again
	}
	w.read[key] = f.Version
	return f.Version, nil
}

// importFile reads and imports one settled file, and records what became of
// it. It returns an error, recording nothing, when the file should be tried
// again (the bucket or the service failing); a file refused as a whole is
// recorded as failed and not tried again until it changes.
func (w *Watcher) importFile(ctx context.Context, obj *blob.ListObject, version string) error {
	key := obj.Key
	f := File{Key: key, Version: version, ReadAt: w.opts.Now().UTC()}
	data, err := w.readFile(ctx, obj)
	var rep stockd.ImportReport
	switch {
	case errors.Is(err, errChanged):
		return err // settle again
	case errors.Is(err, errTooLarge):
		f.Result, f.Error = ResultFailed, err.Error()
	case err != nil:
		return err
	default:
		rep, err = w.opts.Imports.SubmitImport(ctx, stockd.SubmitImport{Name: key, CSV: data, Location: w.opts.Location})
		f.SHA256, f.Report = rep.SHA256, rep.ID
		switch code := stockd.ErrorCode(err); {
		case err == nil && rep.Deliveries > 1:
			f.Result = ResultRepeat
		case err == nil:
			f.Result = ResultImported
		case code == stockd.CodeInvalid:
			f.Result, f.Error = ResultFailed, err.Error()
		default:
			w.opts.Metrics.count(ResultFailed)
			return err
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := w.opts.Records.PutRecord(ctx, Kind, key, b); err != nil {
		return err
	}
	w.read[key] = version
	w.opts.Metrics.count(f.Result)
	if f.Result == ResultFailed {
		w.log.Warn("drops: a file was refused", "key", key, "err", f.Error)
	} else {
		w.log.Info("drops: a file was read", "key", key, "result", f.Result, "report", rep.ID,
			"applied", rep.Applied, "already_applied", rep.AlreadyApplied, "refused", len(rep.Refused)+rep.RefusedMore)
	}
	return nil
}

var (
	errChanged  = errors.New("the file changed while it was read")
	errTooLarge = errors.New("the file is too large")
)

// readFile reads a file whole, making sure it is still the version that
// settled (its size, and a modification time no later than listed, give or
// take the second some stores round to).
func (w *Watcher) readFile(ctx context.Context, obj *blob.ListObject) ([]byte, error) {
	r, err := w.bucket.NewReader(ctx, obj.Key, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Size() > w.opts.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errTooLarge, r.Size(), w.opts.MaxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(r, w.opts.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != r.Size() || r.Size() != obj.Size || r.ModTime().After(obj.ModTime.Add(time.Second)) {
		return nil, errChanged
	}
	return data, nil
}

// Metrics count the files the watcher read:
// stockd_drops_files_total{result="imported"|"repeat"|"failed"}.
type Metrics struct {
	files *prometheus.CounterVec
}

// NewMetrics returns the watcher's metrics, to be registered.
func NewMetrics() *Metrics {
	return &Metrics{files: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stockd_drops_files_total",
		Help: "Supplier files dropped and read, by result: imported (new content), repeat (content imported before, nothing booked twice), failed.",
	}, []string{"result"})}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { m.files.Describe(ch) }

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) { m.files.Collect(ch) }

func (m *Metrics) count(result string) {
	if m != nil {
		m.files.WithLabelValues(result).Inc()
	}
}
