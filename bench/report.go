package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: one Result per target, workload and
// concurrency level, and the ratios between targets at each level.
type Report struct {
	Started   time.Time      `json:"started"`
	Duration  time.Duration  `json:"-"`
	Ops       int64          `json:"ops_per_level,omitempty"`
	Warmup    time.Duration  `json:"-"`
	Clients   []int          `json:"clients"`
	Workloads []WorkloadInfo `json:"workloads"`
	Results   []Result       `json:"results"`
	Ratios    []Ratio        `json:"ratios"`
	// Command is the command line that produced the report, for the
	// record; Main fills it in.
	Command string `json:"command,omitempty"`
	// Machine says what the run ran on and how busy the machine was: a
	// load generator, its server and its peers share it, so figures taken
	// while something else ran are not comparable.
	Machine Machine `json:"machine"`
}

// Machine describes the machine a run ran on.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	// LoadStart and LoadEnd are the 1-minute load averages at the start
	// and end of the run, where the system reports them (Linux). LoadEnd
	// includes the run's own load (database backends waiting on WAL
	// flushes count too); LoadStart is what else was running.
	LoadStart float64 `json:"load_start,omitempty"`
	LoadEnd   float64 `json:"load_end,omitempty"`
}

// loadAverage returns the 1-minute load average, or 0 where unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func (m Machine) busy() bool {
	return m.LoadStart > float64(m.CPUs)
}

// WorkloadInfo describes a workload in a report.
type WorkloadInfo struct {
	Name  string `json:"name"`
	SKUs  int    `json:"skus"`
	Stock int64  `json:"stock_per_sku"`
}

// Result is what one target achieved at one concurrency level.
type Result struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	Clients  int    `json:"clients"`
	// Conns is the number of database connections when a pool bounds it.
	Conns         int `json:"conns,omitempty"`
	OpsPerRequest int `json:"ops_per_request"`
	// Seconds is the measured time.
	Seconds float64 `json:"seconds"`
	// Requests counts requests completed in the measured time, OK the
	// operations among them that succeeded.
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	// OpsPerSec is successful operations per second; RequestsPerSec all
	// requests per second. They differ for batch targets and when
	// operations fail.
	OpsPerSec      float64 `json:"ops_per_sec"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	// Latencies are per request, over requests with at least one
	// successful operation, in microseconds.
	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
	// Errors counts failed operations by kind.
	Errors Errors `json:"errors"`
	// Retries counts optimistic-concurrency conflicts that were retried.
	Retries    int64  `json:"retries,omitempty"`
	FirstError string `json:"first_error,omitempty"`
	Note       string `json:"note,omitempty"`
}

// Errors counts failed operations by kind.
type Errors struct {
	Insufficient int64 `json:"insufficient"`
	Overloaded   int64 `json:"overloaded"`
	Other        int64 `json:"other"`
}

// Total is the number of failed operations.
func (e Errors) Total() int64 { return e.Insufficient + e.Overloaded + e.Other }

func (r *Result) setLatency(h *Histogram) {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	r.P50 = us(h.Quantile(0.50))
	r.P99 = us(h.Quantile(0.99))
	r.P999 = us(h.Quantile(0.999))
	r.Max = us(h.Max())
	r.Mean = us(h.Mean())
}

// Ratio compares the throughput (successful operations per second) of two
// targets at the same workload and concurrency level.
type Ratio struct {
	Workload string  `json:"workload"`
	Clients  int     `json:"clients"`
	Name     string  `json:"name"` // "stockd/pg-rowlock"
	Value    float64 `json:"value"`
	// Percent says the ratio reads best as a percentage (a share of a
	// ceiling) rather than as a multiple.
	Percent bool `json:"percent,omitempty"`
}

// ratioDefs are the comparisons a report makes, when both sides ran.
var ratioDefs = []struct {
	num, den string
	percent  bool
}{
	{"stockd", "pg-rowlock", false},
	{"stockd-batch", "pg-rowlock", false},
	{"stockd", "noop", true},
	{"stockd-keys", "stockd", true},
	{"stockd-client", "stockd", false},
	{"stockd-client", "pg-rowlock", false},
	{"stockd", "redis-lua", false},
	{"stockd-client", "redis-lua", false},
	{"stockd-batch", "redis-lua", false},
	{"stockd", "pg-events", false},
	{"stockd-batch", "pg-events", false},
	{"stockd-pg", "pg-rowlock", false},
	{"stockd-pg-client", "pg-rowlock", false},
	{"stockd-pg3", "pg-rowlock", false},
	{"stockd-pg3-client", "pg-rowlock", false},
	{"stockd-pg3", "stockd-pg", false},
	{"stockd-pg3-client", "stockd-pg-client", false},
	{"stockd-pg", "stockd", true},
	{"pg-rowlock", "noop", true},
}

func (rep *Report) computeRatios() {
	rep.Ratios = nil
	for _, w := range rep.Workloads {
		for _, c := range rep.Clients {
			for _, d := range ratioDefs {
				num, den := rep.find(w.Name, d.num, c), rep.find(w.Name, d.den, c)
				if num == nil || den == nil || den.OpsPerSec == 0 {
					continue
				}
				rep.Ratios = append(rep.Ratios, Ratio{
					Workload: w.Name, Clients: c, Name: d.num + "/" + d.den,
					Value: num.OpsPerSec / den.OpsPerSec, Percent: d.percent,
				})
			}
		}
	}
}

// merge returns rep with the workloads and results of o appended; a nil rep
// or o counts as empty.
func (rep *Report) merge(o *Report) *Report {
	if o == nil {
		return rep
	}
	if rep == nil {
		c := *o
		return &c
	}
	rep.Workloads = append(rep.Workloads, o.Workloads...)
	rep.Results = append(rep.Results, o.Results...)
	rep.Machine.LoadEnd = o.Machine.LoadEnd
	return rep
}

func (rep *Report) find(workload, target string, clients int) *Result {
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Workload == workload && r.Target == target && r.Clients == clients {
			return r
		}
	}
	return nil
}

// WriteJSON writes the report as one indented JSON document.
func (rep *Report) WriteJSON(w io.Writer) error {
	type alias Report
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*alias
		DurationSec float64 `json:"duration_per_level_sec,omitempty"`
		WarmupSec   float64 `json:"warmup_sec"`
	}{(*alias)(rep), rep.Duration.Seconds(), rep.Warmup.Seconds()})
}

// WriteText writes one table per workload (target × clients) and then the
// ratios between targets at each concurrency level.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if rep.Command != "" {
		fmt.Fprintf(&b, "$ %s\n", rep.Command)
	}
	span := fmt.Sprintf("%s per level", rep.Duration)
	if rep.Ops > 0 {
		span = fmt.Sprintf("%d operations per level", rep.Ops)
	}
	fmt.Fprintf(&b, "stockd bench, %s, %s, warm-up %s; one operation reserves 1 unit\n", rep.Started.Format(time.RFC3339), span, rep.Warmup)
	fmt.Fprintf(&b, "ops/s counts successful operations; latencies are per request (a stockd-batch request carries many)\n")
	m := rep.Machine
	fmt.Fprintf(&b, "machine: %d CPUs, GOMAXPROCS %d, %s", m.CPUs, m.GOMAXPROCS, m.GoVersion)
	if m.LoadStart > 0 || m.LoadEnd > 0 {
		fmt.Fprintf(&b, ", load average %.2f at start, %.2f at end", m.LoadStart, m.LoadEnd)
	}
	b.WriteString("\n")
	if m.busy() {
		fmt.Fprintf(&b, "WARNING: the machine was busy with other work (load average above its %d CPUs at the start): these figures are not those of a quiet machine\n", m.CPUs)
	}
	for _, wl := range rep.Workloads {
		fmt.Fprintf(&b, "\nworkload %s: %d SKU(s), %s units each\n", wl.Name, wl.SKUs, group(float64(wl.Stock)))
		var rows []Result
		width, retries := len("target"), false
		for _, r := range rep.Results {
			if r.Workload == wl.Name {
				rows = append(rows, r)
				width = max(width, len(r.Target))
				retries = retries || r.Retries > 0
			}
		}
		// Numbers align right; target names, padded, read left-aligned.
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := fmt.Sprintf("%-*s\tclients\tops/s\treq/s\tp50\tp99\tp999\terrors\t", width, "target")
		if retries {
			head += "retries\t"
		}
		fmt.Fprintln(tw, head)
		var notes []string
		for _, r := range rows {
			clients := strconv.Itoa(r.Clients)
			if r.Conns > 0 && r.Conns != r.Clients {
				clients += fmt.Sprintf(" (%d conns)", r.Conns)
			}
			line := fmt.Sprintf("%-*s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t",
				width, r.Target, clients, group(r.OpsPerSec), group(r.RequestsPerSec),
				us(r.P50), us(r.P99), us(r.P999), errorText(r.Errors))
			if retries {
				line += group(float64(r.Retries)) + "\t"
			}
			fmt.Fprintln(tw, line)
			if r.Note != "" {
				notes = append(notes, fmt.Sprintf("%s at %d clients: %s", r.Target, r.Clients, r.Note))
			}
			if r.FirstError != "" {
				notes = append(notes, fmt.Sprintf("%s at %d clients, first error: %s", r.Target, r.Clients, r.FirstError))
			}
		}
		tw.Flush()
		for _, n := range notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
	}
	rep.writeRatios(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func (rep *Report) writeRatios(b *strings.Builder) {
	fmt.Fprintf(b, "\nratios (successful operations per second; batch counts every reservation in a request)\n")
	if len(rep.Ratios) == 0 {
		fmt.Fprintf(b, "  none: a ratio needs both of its targets in the run (stockd with noop, pg-rowlock or pg-events)\n")
		return
	}
	for _, wl := range rep.Workloads {
		var names []string
		for _, d := range ratioDefs {
			name := d.num + "/" + d.den
			for _, r := range rep.Ratios {
				if r.Workload == wl.Name && r.Name == name {
					names = append(names, name)
					break
				}
			}
		}
		if len(names) == 0 {
			continue
		}
		fmt.Fprintf(b, "workload %s\n", wl.Name)
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "clients\t%s\t\n", strings.Join(names, "\t"))
		for _, c := range rep.Clients {
			cells := []string{strconv.Itoa(c)}
			for _, n := range names {
				cell := "-"
				for _, r := range rep.Ratios {
					if r.Workload == wl.Name && r.Clients == c && r.Name == n {
						cell = r.Text()
					}
				}
				cells = append(cells, cell)
			}
			fmt.Fprintf(tw, "%s\t\n", strings.Join(cells, "\t"))
		}
		tw.Flush()
	}
}

// Text formats the ratio as "11.2×" or, for a share of a ceiling, "82%".
func (r Ratio) Text() string {
	if r.Percent {
		return fmt.Sprintf("%.0f%%", r.Value*100)
	}
	if r.Value >= 10 {
		return fmt.Sprintf("%.1f×", r.Value)
	}
	return fmt.Sprintf("%.2f×", r.Value)
}

// group formats a non-negative number rounded to an integer with thousands
// separators: 31,234.
func group(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// us formats a latency given in microseconds with three significant digits.
func us(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 1000:
		return fmt.Sprintf("%.0fµs", v)
	case v < 10_000:
		return fmt.Sprintf("%.2fms", v/1000)
	case v < 100_000:
		return fmt.Sprintf("%.1fms", v/1000)
	case v < 10_000_000:
		return fmt.Sprintf("%.0fms", v/1000)
	default:
		return fmt.Sprintf("%.1fs", v/1e6)
	}
}

func errorText(e Errors) string {
	if e.Total() == 0 {
		return "0"
	}
	var parts []string
	if e.Insufficient > 0 {
		parts = append(parts, fmt.Sprintf("%d insufficient", e.Insufficient))
	}
	if e.Overloaded > 0 {
		parts = append(parts, fmt.Sprintf("%d overloaded", e.Overloaded))
	}
	if e.Other > 0 {
		parts = append(parts, fmt.Sprintf("%d other", e.Other))
	}
	return strings.Join(parts, ", ")
}
