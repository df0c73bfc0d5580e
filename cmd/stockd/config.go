package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A serve configuration file sets flags by name, one per line:
//
//	# stockd.conf
//	addr = 0.0.0.0:8080
//	keys = /etc/stockd/keys
//	nats = "nats://127.0.0.1:4222"
//
// Names are the flags' (a "_" may stand for "-"); values may be quoted as Go
// strings; "#" starts a comment line. Flags given on the command line win
// over STOCKD_* variables, which win over the file, so that one file can be
// shared and a single setting overridden where it runs.

// configFlag names the flag that names the configuration file.
const configFlag = "config"

// configPath returns the configuration file named by --config in args, or
// else by STOCKD_CONFIG; "" when there is none.
func configPath(args []string) string {
	path := os.Getenv("STOCKD_CONFIG")
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != configFlag {
			continue
		}
		if hasValue {
			path = value
		} else if i+1 < len(args) {
			path = args[i+1]
			i++
		}
	}
	return path
}

// applyConfigFile sets fs's flags from the file at path.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want name = value, got %q", path, line, text)
		}
		name = strings.ReplaceAll(strings.TrimSpace(name), "_", "-")
		value = strings.TrimSpace(value)
		if strings.HasPrefix(value, `"`) {
			if value, err = strconv.Unquote(value); err != nil {
				return fmt.Errorf("%s:%d: %s: bad quoted value: %v", path, line, name, err)
			}
		}
		if name == configFlag {
			return fmt.Errorf("%s:%d: a configuration file cannot name another", path, line)
		}
		if fs.Lookup(name) == nil {
			return fmt.Errorf("%s:%d: unknown setting %q (settings are the flags of stockd serve --help)", path, line, name)
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s = %q: %v", path, line, name, value, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	return nil
}
