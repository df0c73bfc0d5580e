package pebble

import (
	"strconv"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Collector returns a Prometheus collector of Pebble's own metrics: WAL
// fsync latency, L0 files and sublevels, files and bytes per level,
// compactions and their debt, flushes, memtables, block cache and disk
// usage, all named stockd_pebble_*. It reads DB.Metrics at each scrape,
// which takes Pebble's locks briefly; after Close it reports nothing.
func (s *Store) Collector() prometheus.Collector { return storeCollector{s} }

type storeCollector struct{ s *Store }

func pebbleDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("stockd_pebble_"+name, help, labels, nil)
}

var (
	walFsyncDesc         = pebbleDesc("wal_fsync_duration_seconds", "Latency of the WAL's fsyncs.")
	walFilesDesc         = pebbleDesc("wal_files", "Live WAL files.")
	walBytesDesc         = pebbleDesc("wal_bytes", "Live data in the WAL files.")
	walWrittenDesc       = pebbleDesc("wal_written_bytes_total", "Bytes written to the WAL.")
	l0FilesDesc          = pebbleDesc("l0_files", "Tables in L0; many mean flushes outpace compactions.")
	l0SublevelsDesc      = pebbleDesc("l0_sublevels", "Sublevels of L0; Pebble slows writes when they pile up.")
	levelFilesDesc       = pebbleDesc("level_files", "Tables per LSM level.", "level")
	levelBytesDesc       = pebbleDesc("level_bytes", "Bytes of the tables per LSM level.", "level")
	readAmpDesc          = pebbleDesc("read_amplification", "L0 sublevels plus non-empty levels below: the tables a read may consult.")
	compactionsDesc      = pebbleDesc("compactions_total", "Compactions completed.")
	compactionDebtDesc   = pebbleDesc("compaction_debt_bytes", "Estimated bytes that must be compacted to reach a stable LSM shape.")
	compactionsInProgDes = pebbleDesc("compactions_in_progress", "Compactions running now.")
	flushesDesc          = pebbleDesc("flushes_total", "Memtable flushes completed.")
	memtableBytesDesc    = pebbleDesc("memtable_bytes", "Bytes of the memtables, the mutable one and those waiting to be flushed.")
	memtablesDesc        = pebbleDesc("memtables", "Memtables, the mutable one and those waiting to be flushed.")
	cacheBytesDesc       = pebbleDesc("block_cache_bytes", "Bytes in the block cache.")
	cacheHitsDesc        = pebbleDesc("block_cache_hits_total", "Block cache hits.")
	cacheMissesDesc      = pebbleDesc("block_cache_misses_total", "Block cache misses.")
	diskUsageDesc        = pebbleDesc("disk_usage_bytes", "Disk space used by the database: WAL, tables, blob files, manifest and options, live and obsolete.")
)

var levelLabels = func() []string {
	l := make([]string, 7)
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func (storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{walFsyncDesc, walFilesDesc, walBytesDesc, walWrittenDesc, l0FilesDesc, l0SublevelsDesc,
		levelFilesDesc, levelBytesDesc, readAmpDesc, compactionsDesc, compactionDebtDesc, compactionsInProgDes, flushesDesc,
		memtableBytesDesc, memtablesDesc, cacheBytesDesc, cacheHitsDesc, cacheMissesDesc, diskUsageDesc} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.s.dbMetrics()
	if m == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	if h := fsyncHistogram(m); h != nil {
		ch <- h
	}
	gauge(walFilesDesc, float64(m.WAL.Files))
	gauge(walBytesDesc, float64(m.WAL.Size))
	counter(walWrittenDesc, float64(m.WAL.BytesWritten))
	gauge(l0FilesDesc, float64(m.Levels[0].TablesCount))
	gauge(l0SublevelsDesc, float64(m.Levels[0].Sublevels))
	for i := range m.Levels {
		if i < len(levelLabels) {
			gauge(levelFilesDesc, float64(m.Levels[i].TablesCount), levelLabels[i])
			gauge(levelBytesDesc, float64(m.Levels[i].TablesSize), levelLabels[i])
		}
	}
	gauge(readAmpDesc, float64(m.ReadAmp()))
	counter(compactionsDesc, float64(m.Compact.Count))
	gauge(compactionDebtDesc, float64(m.Compact.EstimatedDebt))
	gauge(compactionsInProgDes, float64(m.Compact.NumInProgress))
	counter(flushesDesc, float64(m.Flush.Count))
	gauge(memtableBytesDesc, float64(m.MemTable.Size))
	gauge(memtablesDesc, float64(m.MemTable.Count))
	gauge(cacheBytesDesc, float64(m.BlockCache.Size))
	counter(cacheHitsDesc, float64(m.BlockCache.Hits))
	counter(cacheMissesDesc, float64(m.BlockCache.Misses))
	gauge(diskUsageDesc, float64(m.DiskSpaceUsage()))
}

// dbMetrics returns Pebble's metrics, or nil once the store is closed.
func (s *Store) dbMetrics() *pebbledb.Metrics {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil
	}
	return s.db.Metrics()
}

// fsyncHistogram re-exports Pebble's WAL fsync histogram, which has no name
// of its own and counts nanoseconds, in seconds. Pebble's 100 buckets are
// thinned to those at least 1.8 times the previous one kept: about 20,
// still exact, since a cumulative count at a kept bound is the same count.
func fsyncHistogram(m *pebbledb.Metrics) prometheus.Metric {
	h := m.LogWriter.FsyncLatency
	if h == nil {
		return nil
	}
	var pb dto.Metric
	if err := h.Write(&pb); err != nil || pb.Histogram == nil {
		return nil
	}
	buckets := make(map[float64]uint64)
	last := 0.0
	for _, b := range pb.Histogram.Bucket {
		ub := b.GetUpperBound() / 1e9
		if ub <= 0 || (last > 0 && ub < 1.8*last) {
			continue
		}
		buckets[ub] = b.GetCumulativeCount()
		last = ub
	}
	out, err := prometheus.NewConstHistogram(walFsyncDesc, pb.Histogram.GetSampleCount(), pb.Histogram.GetSampleSum()/1e9, buckets)
	if err != nil {
		return nil
	}
	return out
}
