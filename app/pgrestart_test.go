package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// pgCluster is a PostgreSQL cluster a test starts itself, in a temporary
// directory, so that it can restart it.
type pgCluster struct {
	t        *testing.T
	dir, log string
	opts     string // the server's options, given again to every start
	port     int
	asUser   []string // runuser prefix when the test runs as root
	binDir   string
}

// startPGCluster runs initdb and pg_ctl start; it skips the test where the
// PostgreSQL server binaries are missing. As root (initdb refuses root), it
// runs them as the user "postgres".
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	if os.Getenv("STOCKD_TEST_POSTGRES") == "" {
		t.Skip("STOCKD_TEST_POSTGRES is not set: the PostgreSQL tests are off")
	}
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		t.Skip("no initdb on the PATH: cannot start a PostgreSQL cluster of the test's own")
	}
	c := &pgCluster{t: t, binDir: filepath.Dir(initdb)}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			t.Skip("running as root without a postgres user: initdb refuses root")
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			t.Skip("running as root without runuser: initdb refuses root")
		}
		c.asUser = []string{runuser, "-u", "postgres", "--"}
	}
	base, err := os.MkdirTemp("", "stockd-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if c.asUser != nil {
		u, _ := user.Lookup("postgres")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c.dir = filepath.Join(base, "data")
	c.run("initdb", "-D", c.dir, "-A", "trust", "-U", "stockd", "--no-sync")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.log = filepath.Join(base, "log")
	c.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on", c.port, base)
	c.start()
	t.Cleanup(func() { c.run("pg_ctl", "stop", "-m", "immediate", "-D", c.dir) })
	return c
}

// start starts the server; -l keeps it from holding pg_ctl's output open.
func (c *pgCluster) start() { c.run("pg_ctl", "start", "-w", "-D", c.dir, "-l", c.log, "-o", c.opts) }

func (c *pgCluster) run(name string, args ...string) {
	c.t.Helper()
	argv := append(append([]string{}, c.asUser...), filepath.Join(c.binDir, name))
	argv = append(argv, args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func (c *pgCluster) dsn() string {
	return fmt.Sprintf("postgres://stockd@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// TestAPostgreSQLRestartUnderLoadLosesNothingAndServiceResumes stops the
// database while clients receive stock, until the node gives up on it and
// stops, then starts it again: the node recovers in place (RunRecovering),
// every receipt acknowledged before or after is in the log exactly once, the
// clients saw no error but unavailable (503, with Retry-After) or a refused
// connection meanwhile, and the service resumes on its own.
func TestAPostgreSQLRestartUnderLoadLosesNothingAndServiceResumes(t *testing.T) {
	pg := startPGCluster(t)
	cfg := Config{Addr: "127.0.0.1:0", Data: t.TempDir(), Store: pg.dsn(), Partitions: 4, LeaseTTL: 2 * time.Second,
		Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	apps := make(chan *App, 16)
	done := make(chan error, 1)
	go func() { done <- RunRecovering(ctx, cfg, 5*time.Second, func(a *App) { apps <- a }) }()
	first := <-apps
	c := client.New(first.URL())
	if _, err := c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}

	var acked sync.Map
	var writers sync.WaitGroup
	var seq atomic.Int64
	stop := make(chan struct{})
	unexpected := make(chan error, 1)
	for range 8 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("r-%d", seq.Add(1))
				for {
					_, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: id, SKU: "A", Location: "w1", Quantity: 1})
					if err == nil {
						acked.Store(id, true)
						break
					}
					var se *stockd.Error
					if errors.As(err, &se) && !se.Code.Retryable() {
						select {
						case unexpected <- err:
						default:
						}
						return
					}
					select { // unavailable, or no answer: the node recovers
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("not within 60 s: %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	count := func() (n int) {
		acked.Range(func(any, any) bool { n++; return true })
		return n
	}
	waitFor("100 receipts acknowledged", func() bool { return count() >= 100 })
	before := count()
	// The database goes away for as long as it takes the node to give up
	// on it (its appends' retries, or its leases, run out), then comes
	// back: the node must recover in place. (A quick restart is retried
	// by the store without the node noticing.)
	pg.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", pg.dir)
	select {
	case <-first.Engine.Fatal():
	case <-time.After(60 * time.Second):
		t.Fatal("the node did not stop within 60 s of losing its database")
	}
	pg.start()
	waitFor("200 more receipts acknowledged after the restart", func() bool { return count() >= before+200 })
	close(stop)
	writers.Wait()
	select {
	case err := <-unexpected:
		t.Fatalf("a client saw an error other than unavailable: %v", err)
	default:
	}

	// Every acknowledged receipt is in the log, once.
	var last *App
	for len(apps) > 0 {
		last = <-apps
	}
	if last == nil {
		last = first
	}
	seen := map[string]int{}
	for after := uint64(0); ; {
		page, err := last.Engine.History(ctx, "A", stockd.HistoryQuery{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			break
		}
		for _, e := range page.Events {
			if e.Type() == stockd.TypeStockReceived {
				seen[e.CommandID]++
			}
		}
		after = page.Next
	}
	lost := 0
	acked.Range(func(k, _ any) bool {
		if seen[k.(string)] != 1 {
			lost++
		}
		return true
	})
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged receipts are not in the log exactly once", lost, count())
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("RunRecovering: %v", err)
	}
	t.Logf("%d receipts acknowledged, %d before the restart; every one in the log once", count(), before)
}
