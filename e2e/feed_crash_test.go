package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// buildStockd builds the stockd binary into a temporary directory.
func buildStockd(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	exe := filepath.Join(t.TempDir(), "stockd")
	cmd := exec.Command(goTool, "build", "-o", exe, "github.com/stockd/stockd/cmd/stockd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// serveProcess runs `stockd serve` on addr over dir and returns the process
// and the URL it prints once it listens.
func serveProcess(t *testing.T, exe, addr, dir string) (*exec.Cmd, string) {
	t.Helper()
	return runServe(t, exe, "--addr", addr, "--data", dir, "--partitions", "8", "--log-level", "error")
}

// runServe runs `stockd serve` with args and returns the process and the
// URL it prints once it listens; the process is killed when the test ends
// (woken first, should the test have stopped it).
func runServe(t *testing.T, exe string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(exe, append([]string{"serve"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	urls := make(chan string, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "stockd listening on "); ok {
				u, _, _ := strings.Cut(rest, " ")
				select {
				case urls <- u:
				default:
				}
			}
		}
	}()
	select {
	case u := <-urls:
		return cmd, u
	case <-ended:
		cmd.Wait()
		t.Fatalf("stockd serve ended before listening: %s", stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("stockd serve did not listen within a minute: %s", stderr.String())
	}
	return nil, ""
}

// TestFeedFollowerAcrossKill9SeesEveryAcknowledgedEvent is the test:
// a feed reader follows the SSE stream of a real server process while
// writers append; the server is killed with SIGKILL mid-load and restarted on
// the same data and address; the reader, resuming with Last-Event-ID, sees
// every acknowledged event of every SKU, in order, with no gap.
func TestFeedFollowerAcrossKill9SeesEveryAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the stockd binary and kills it; skipped with -short")
	}
	exe := buildStockd(t)
	dir := t.TempDir()
	proc, url := serveProcess(t, exe, "127.0.0.1:0", dir)
	addr := strings.TrimPrefix(url, "http://")
	c := client.New(url)
	ConfigureLocations(t, c, "w1")

	// The reader: every event once, each SKU's versions consecutive.
	var mu sync.Mutex
	seen := map[string]bool{}   // command ids
	last := map[string]uint64{} // SKU → last version seen
	var problems []string
	changed := make(chan struct{}, 1)
	var connects atomic.Int32
	fctx, stop := context.WithCancel(context.Background())
	defer stop()
	followed := make(chan error, 1)
	go func() {
		followed <- c.FollowFeed(fctx, stockd.FeedQuery{}, client.FollowOptions{
			Retry:     50 * time.Millisecond,
			OnConnect: func(string) { connects.Add(1) },
		}, func(e stockd.Event, _ string) error {
			mu.Lock()
			defer mu.Unlock()
			if e.SKU != "" {
				if e.Version != last[e.SKU]+1 {
					problems = append(problems, fmt.Sprintf("SKU %s: version %d after %d (event %s)", e.SKU, e.Version, last[e.SKU], e.ID()))
				}
				last[e.SKU] = e.Version
			}
			if e.Type().IsSignal() {
				return nil // a signal carries the command id of the change it follows
			}
			if seen[e.CommandID] && e.SKU != "" {
				problems = append(problems, fmt.Sprintf("command %s seen twice", e.CommandID))
			}
			seen[e.CommandID] = true
			select {
			case changed <- struct{}{}:
			default:
			}
			return nil
		})
	}()

	// Writers: receipts on 12 SKUs, each remembered once acknowledged.
	var ackMu sync.Mutex
	var acked []string
	reached := make(chan struct{}) // closed at the 300th acknowledgement
	write := func(phase string, each int, stopOnError bool) {
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					id := fmt.Sprintf("%s-%d-%d", phase, w, i)
					_, _, err := c.Receive(context.Background(), stockd.ReceiveStock{ID: id, SKU: fmt.Sprintf("S%d", (w*5+i)%12), Location: "w1", Quantity: 1})
					if err != nil {
						if stopOnError {
							return // the server is gone: unacknowledged
						}
						t.Errorf("receive %s: %v", id, err)
						return
					}
					ackMu.Lock()
					acked = append(acked, id)
					if len(acked) == 300 {
						close(reached)
					}
					ackMu.Unlock()
				}
			}()
		}
		wg.Wait()
	}

	// Phase 1: kill -9 once a few hundred writes are acknowledged, with
	// the writers still writing.
	done1 := make(chan struct{})
	go func() { write("a", 100000, true); close(done1) }()
	select {
	case <-reached:
	case <-done1:
		t.Fatal("the writers stopped before the kill")
	}
	proc.Process.Signal(syscall.SIGKILL)
	proc.Wait()
	<-done1
	ackMu.Lock()
	t.Logf("%d writes acknowledged before SIGKILL", len(acked))
	ackMu.Unlock()

	// Phase 2: the same data and address; more writes.
	_, url2 := serveProcess(t, exe, addr, dir)
	if url2 != url {
		t.Fatalf("restarted on %s, not %s", url2, url)
	}
	write("b", 40, false)

	// Wait until the reader has every acknowledged write.
	deadline := time.After(2 * time.Minute)
	for {
		mu.Lock()
		missing := 0
		for _, id := range acked {
			if !seen[id] {
				missing++
			}
		}
		bad := append([]string(nil), problems...)
		mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("the reader saw %d problems, first: %s", len(bad), bad[0])
		}
		if missing == 0 {
			break
		}
		select {
		case <-changed:
		case err := <-followed:
			t.Fatalf("the follower ended: %v", err)
		case <-deadline:
			t.Fatalf("%d of %d acknowledged writes never reached the reader", missing, len(acked))
		}
	}
	if n := connects.Load(); n < 2 {
		t.Fatalf("the follower connected %d times: it never resumed", n)
	}
	t.Logf("%d acknowledged writes seen in order after %d connections", len(acked), connects.Load())
	stop()
	<-followed
}
