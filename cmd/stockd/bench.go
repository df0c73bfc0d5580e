package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/stockd/stockd/app"
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

// startEmbedded starts the App serve would start, on dir and a free
// loopback port, requiring the keys of the file keys when it is not empty,
// with its store in PostgreSQL (store, schema) when store is not empty,
// until stop is called, and returns its base URL.
func startEmbedded(ctx context.Context, dir, keys, store, schema string) (string, func(), error) {
	fs, c := serveFlags(io.Discard)
	if err := fs.Parse(nil); err != nil {
		return "", nil, err
	}
	c.addr, c.data, c.keys = "127.0.0.1:0", dir, keys
	if store != "" {
		c.store, c.storeSchema = store, schema
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(engine.GCPercent)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := c.appConfig(log)
	if err != nil {
		return "", nil, err
	}
	a, err := app.Open(ctx, cfg)
	if err != nil {
		return "", nil, fmt.Errorf("the embedded server did not start: %w", err)
	}
	a.Serve()
	return a.URL(), func() { a.Close(context.Background()) }, nil
}
