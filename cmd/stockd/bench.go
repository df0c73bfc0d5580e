package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/stockd/stockd/bench"
	"github.com/stockd/stockd/engine"
)

// bench runs the benchmark suite of package bench. Without --url it starts
// its own server in this process, exactly as serve would, on a temporary
// directory and a free port.

func init() {
	register(command{name: "bench", summary: "benchmark stockd against the usual alternatives", run: bench.Main})
	bench.StartEmbedded = startEmbedded
}

// startEmbedded runs serve on dir and a free loopback port until stop is
// called, and returns the address it listens on.
func startEmbedded(ctx context.Context, dir string) (string, func(), error) {
	fs, c := serveFlags(io.Discard)
	if err := fs.Parse(nil); err != nil {
		return "", nil, err
	}
	c.addr, c.data = "127.0.0.1:0", dir
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(engine.GCPercent)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := serve(ctx, c, pw, log)
		pw.CloseWithError(errors.Join(err, io.EOF))
		done <- err
	}()
	// serve prints "stockd listening on http://ADDR (data in DIR)" once it
	// listens; anything it prints later is drained.
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	const prefix = "stockd listening on "
	if err != nil || !strings.HasPrefix(line, prefix) {
		cancel()
		serr := <-done
		return "", nil, fmt.Errorf("the embedded server did not start: %v", errors.Join(err, serr))
	}
	url, _, _ := strings.Cut(strings.TrimPrefix(line, prefix), " ")
	stop := func() {
		cancel()
		<-done
	}
	return url, stop, nil
}
