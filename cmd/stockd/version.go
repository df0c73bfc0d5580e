package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"
)

// The version command: which build this is.

func init() {
	register(command{name: "version", summary: "print the version, commit and Go version of this build (also --version)", run: runVersion})
}

// version is the release, when the build sets it:
//
//	go build -ldflags "-X main.version=v1.2.0" ./cmd/stockd
//
// Without it, the module version from the build information is used (set by
// go install module@version), or "devel".
var version string

// buildVersion describes this build.
type buildVersion struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	CommitTime string `json:"commit_time,omitempty"`
	Modified   bool   `json:"modified,omitempty"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
}

// readVersion reads the build information the Go toolchain embeds.
func readVersion() buildVersion {
	v := buildVersion{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.CommitTime = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

// versionString is the version in a word, for the User-Agent: the release,
// or "devel" and the short commit.
func versionString() string {
	v := readVersion()
	if v.Version == "devel" && v.Commit != "" {
		return "devel-" + short(v.Commit)
	}
	return v.Version
}

func short(commit string) string { return commit[:min(len(commit), 12)] }

// String is the one line `stockd version` prints, such as
//
//	stockd v1.2.0 (commit 0123456789ab, 2026-12-02T15:42:16Z, modified) go1.26.0 linux/amd64
func (v buildVersion) String() string {
	s := "stockd " + v.Version
	if v.Commit != "" {
		s += " (commit " + short(v.Commit)
		if t, err := time.Parse(time.RFC3339, v.CommitTime); err == nil {
			s += ", " + t.UTC().Format(time.RFC3339)
		}
		if v.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s + " " + v.Go + " " + v.Platform
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the version as JSON")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "Usage: stockd version [--json]\n\nPrints the version of this build: the release (or devel), the commit it was built from,\nwhether the working tree had changes, and the Go version.\n\nExample:\n  stockd version\n\nFlags:\n  --json\n    \tprint the version as JSON")
			return exitOK
		}
		fmt.Fprintln(stderr, "Run 'stockd version --help' for usage.")
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "stockd version: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	v := readVersion()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(v)
		return exitOK
	}
	fmt.Fprintln(stdout, v)
	return exitOK
}
