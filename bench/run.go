package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config says how long and how hard to drive each target.
type Config struct {
	// Workloads are run one after another.
	Workloads []Workload
	// Clients are the concurrency levels: for each, that many goroutines
	// each issue one request at a time (a closed loop).
	Clients []int
	// Duration is how long each level is measured, after Warmup.
	Duration time.Duration
	// Ops, when > 0, measures each level until that many operations have
	// been issued instead of for Duration.
	Ops int64
	// Warmup is how long each level runs unmeasured first, to open
	// connections and warm caches.
	Warmup time.Duration
	// Progress, when set, receives a line as each level starts.
	Progress io.Writer
}

// drainGrace bounds how long a level waits, after its measured window, for
// requests still in flight; past it they are cancelled. It only matters when
// a target hangs.
const drainGrace = 30 * time.Second

// maxBackoff caps how long a client honours a Retry-After before its next
// request: long enough not to hammer a shedding server, short enough that a
// "Retry-After: 1" does not idle the closed loop for most of a 5 s level.
const maxBackoff = 100 * time.Millisecond

// Run drives every target through every workload and concurrency level and
// returns the results. Targets run one at a time, so they never compete for
// the machine. Failed requests are counted, not fatal; a target that cannot
// be set up (stocking, connecting) or whose every request fails is skipped for
// the rest of the workload, and Run returns those errors, joined, with every
// result it did get. Cancelling ctx ends the run at once.
func Run(ctx context.Context, cfg Config, targets []Target) (*Report, error) {
	rep := &Report{
		Started:  time.Now().UTC(),
		Duration: cfg.Duration,
		Ops:      cfg.Ops,
		Warmup:   cfg.Warmup,
		Clients:  cfg.Clients,
		Machine: Machine{
			CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
			GoVersion: runtime.Version(), LoadStart: loadAverage(),
		},
	}
	// Ratios cover whatever ran, also when the run ends early.
	defer func() {
		rep.Machine.LoadEnd = loadAverage()
		rep.computeRatios()
	}()
	if err := cfg.check(); err != nil {
		return rep, err
	}
	var errs []error
	for _, w := range cfg.Workloads {
		rep.Workloads = append(rep.Workloads, WorkloadInfo{Name: w.Name, SKUs: w.SKUs, Stock: w.Stock})
	targets:
		for _, t := range targets {
			if err := ctx.Err(); err != nil {
				return rep, errors.Join(append(errs, err)...)
			}
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "bench: %s: %s: stocking %d SKU(s)\n", w.Name, t.Name(), w.SKUs)
			}
			if err := t.Prepare(ctx, w); err != nil {
				// One broken target does not hide the others' figures.
				errs = append(errs, fmt.Errorf("%s: %s: stocking: %w", w.Name, t.Name(), err))
				continue
			}
			for _, c := range cfg.Clients {
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "bench: %s: %s: %d client(s)\n", w.Name, t.Name(), c)
				}
				r, err := runLevel(ctx, cfg, t, w, c)
				if r.Target != "" {
					rep.Results = append(rep.Results, r)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %d clients: %w", w.Name, t.Name(), c, err))
					continue targets
				}
			}
		}
	}
	return rep, errors.Join(errs...)
}

func (cfg Config) check() error {
	if len(cfg.Clients) == 0 || slices.Min(cfg.Clients) < 1 {
		return errors.New("bench: Config.Clients needs at least one level, each ≥ 1")
	}
	if cfg.Ops <= 0 && cfg.Duration <= 0 {
		return errors.New("bench: Config needs a Duration or Ops")
	}
	for _, w := range cfg.Workloads {
		if w.Name == "" || w.SKUs < 1 || w.Stock < 1 || (w.hot() && w.SKUs != 1) {
			return fmt.Errorf("bench: bad workload %+v", w)
		}
	}
	return nil
}

// clientStats is what one client goroutine measured; each has its own so
// that recording takes no lock.
type clientStats struct {
	hist     Histogram
	requests int64
	out      Outcome
	last     time.Time
	_        [64]byte // keep neighbours' counters off this cache line
}

// runLevel runs one target at one concurrency level.
func runLevel(ctx context.Context, cfg Config, t Target, w Workload, clients int) (Result, error) {
	lvl, err := t.Start(ctx, w, clients)
	if err != nil {
		return Result{}, err
	}
	if len(lvl.Workers) != clients {
		return Result{}, fmt.Errorf("target gave %d workers for %d clients", len(lvl.Workers), clients)
	}
	defer func() {
		if lvl.Stop != nil {
			lvl.Stop()
		}
	}()

	parent := ctx
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	per := int64(t.OpsPerRequest())
	start := time.Now()
	from := start.Add(cfg.Warmup)
	var to time.Time
	if cfg.Ops <= 0 {
		to = from.Add(cfg.Duration)
		stop := time.AfterFunc(to.Add(drainGrace).Sub(start), cancel)
		defer stop.Stop()
	}
	var claimed atomic.Int64
	stats := make([]clientStats, clients)
	var wg sync.WaitGroup
	// The clients' goroutines, and those they start (connections, the Go
	// client's batches), carry the label load=<target> in a CPU profile.
	ctx = pprof.WithLabels(ctx, pprof.Labels("load", t.Name()))
	for i := range clients {
		wg.Go(func() {
			pprof.SetGoroutineLabels(ctx)
			s, wk := &stats[i], lvl.Workers[i]
			for ctx.Err() == nil {
				t0 := time.Now()
				n := per
				counted := false
				if cfg.Ops > 0 {
					if !t0.Before(from) {
						// Claim this request's operations from the level's budget.
						left := cfg.Ops - claimed.Add(per) + per
						if left <= 0 {
							return
						}
						n = min(per, left)
						counted = true
					}
				} else if !t0.Before(to) {
					return
				}
				out := wk.Do(ctx, int(n))
				t1 := time.Now()
				if cfg.Ops <= 0 {
					// Completions inside the window count: an unbiased
					// throughput in steady state.
					counted = !t1.Before(from) && t1.Before(to)
				}
				if counted && ctx.Err() == nil {
					s.requests++
					s.out.OK += out.OK
					s.out.Insufficient += out.Insufficient
					s.out.Overloaded += out.Overloaded
					s.out.Other += out.Other
					s.out.Retries += out.Retries
					if s.out.Err == nil && out.Err != nil {
						s.out.Err = out.Err
					}
					if out.OK > 0 {
						s.hist.Record(t1.Sub(t0))
					}
					s.last = t1
				}
				if out.Backoff > 0 {
					wait(ctx, min(out.Backoff, maxBackoff))
				}
			}
		})
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return Result{}, err
	}

	r := Result{
		Workload:      w.Name,
		Target:        t.Name(),
		Clients:       clients,
		Conns:         lvl.Conns,
		OpsPerRequest: int(per),
		Note:          lvl.Note,
	}
	var h Histogram
	var last time.Time
	for i := range stats {
		s := &stats[i]
		h.Merge(&s.hist)
		r.Requests += s.requests
		r.OK += int64(s.out.OK)
		r.Errors.Insufficient += int64(s.out.Insufficient)
		r.Errors.Overloaded += int64(s.out.Overloaded)
		r.Errors.Other += int64(s.out.Other)
		r.Retries += int64(s.out.Retries)
		if r.FirstError == "" && s.out.Err != nil {
			r.FirstError = s.out.Err.Error()
		}
		if s.last.After(last) {
			last = s.last
		}
	}
	elapsed := cfg.Duration
	if cfg.Ops > 0 {
		elapsed = last.Sub(from)
	}
	r.Seconds = elapsed.Seconds()
	if r.Seconds > 0 {
		r.OpsPerSec = float64(r.OK) / r.Seconds
		r.RequestsPerSec = float64(r.Requests) / r.Seconds
	}
	r.setLatency(&h)
	if r.OK == 0 && r.Errors.Other > 0 {
		return r, fmt.Errorf("every request failed: %s", r.FirstError)
	}
	return r, nil
}

// wait pauses for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
