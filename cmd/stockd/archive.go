package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/archive"
	"github.com/stockd/stockd/pebble"
)

// The archive command checks cold storage. It works offline, on the data
// directory of a stopped service.

func init() {
	register(command{name: "archive", summary: "check cold storage (verify)", run: runArchive})
}

func runArchive(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "verify":
		return runArchiveVerify(ctx, args, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "Usage: stockd archive verify [--data DIR] [--archive URL]\n\n"+
			"Checks every segment of cold storage against its checksums, and the log's continuity:\n"+
			"in each partition, segments hold positions 1 up to where the store starts, with no gap\n"+
			"and no overlap. Run it while stockd is stopped: it opens the data directory.\n\n"+
			"Run 'stockd archive verify --help' for its flags.")
		return exitOK
	case "":
		fmt.Fprintln(stderr, "stockd archive: name a subcommand: stockd archive verify\nRun 'stockd archive --help' for usage.")
		return exitUsage
	}
	fmt.Fprintf(stderr, "stockd archive: unknown subcommand %q: use verify\nRun 'stockd archive --help' for usage.\n", sub)
	return exitUsage
}

func runArchiveVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("archive verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "directory of the embedded store (stop the service first)")
	bucketURL := fs.String("archive", "", "blob store URL of cold storage; unset: the folder archive in --data")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: stockd archive verify [flags]\n\nChecks every segment of cold storage and the log's continuity; exits 1 if anything is wrong.\n--data and --archive can also be set by STOCKD_DATA and STOCKD_ARCHIVE, as for serve.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, "stockd archive verify:", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "stockd archive verify: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	u := *bucketURL
	if u == "" {
		var err error
		if u, err = app.DefaultArchiveURL(*data); err != nil {
			fmt.Fprintln(stderr, "stockd archive verify:", err)
			return exitFailure
		}
	}
	store, err := pebble.Open(*data, pebble.Options{})
	if err != nil {
		fmt.Fprintln(stderr, "stockd archive verify:", err)
		return exitFailure
	}
	defer store.Close()
	bucket, err := archive.OpenBucket(ctx, u)
	if err != nil {
		fmt.Fprintln(stderr, "stockd archive verify:", err)
		return exitFailure
	}
	defer bucket.Close()
	r, err := archive.Verify(ctx, bucket, store)
	if err != nil {
		fmt.Fprintln(stderr, "stockd archive verify:", err)
		return exitFailure
	}
	for _, p := range r.Pending {
		fmt.Fprintf(stdout, "pending: %s (left by an interrupted pass; the next pass overwrites it)\n", p)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(stdout, "PROBLEM: %s\n", p)
	}
	fmt.Fprintf(stdout, "%d segments, %d events, %s in %s\n", r.Segments, r.Events, pebble.Bytes(r.Bytes), u)
	if !r.OK() {
		fmt.Fprintf(stdout, "%d problems found\n", len(r.Problems))
		return exitFailure
	}
	fmt.Fprintln(stdout, "ok")
	return exitOK
}
