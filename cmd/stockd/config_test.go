package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stockd.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFileSetsFlagsAndTheEnvironmentAndCommandLineWin(t *testing.T) {
	path := writeConfig(t, `# shared settings
addr = 0.0.0.0:9000
max_ttl = 20m
data = "/srv/stockd data"
read-timeout = 3s
max-lines = 7
`)
	t.Setenv("STOCKD_MAX_TTL", "25m")
	fs, c := serveFlags(io.Discard)
	if err := parseFlags(fs, []string{"--config", path, "--max-lines", "9"}); err != nil {
		t.Fatal(err)
	}
	if c.addr != "0.0.0.0:9000" || c.data != "/srv/stockd data" || c.readTimeout != 3*time.Second {
		t.Errorf("file settings not applied: addr %q data %q read-timeout %v", c.addr, c.data, c.readTimeout)
	}
	if c.maxTTL != 25*time.Minute {
		t.Errorf("max-ttl = %v; STOCKD_MAX_TTL (25m) must win over the file (20m)", c.maxTTL)
	}
	if c.maxLines != 9 {
		t.Errorf("max-lines = %d; the command line (9) must win over the file (7)", c.maxLines)
	}
}

func TestConfigFileNamedByTheEnvironment(t *testing.T) {
	t.Setenv("STOCKD_CONFIG", writeConfig(t, "max-lines = 3\n"))
	fs, c := serveFlags(io.Discard)
	if err := parseFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	if c.maxLines != 3 {
		t.Errorf("max-lines = %d; want 3 from the file STOCKD_CONFIG names", c.maxLines)
	}
}

func TestConfigFileMistakesAreRefusedWithTheirLine(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"addr = 127.0.0.1:1\nmax-tll = 5m\n", `:2: unknown setting "max-tll"`},
		{"max-lines = many\n", `:1: max-lines = "many"`},
		{"just words\n", ":1: want name = value"},
		{`data = "unterminated` + "\n", ":1: data: bad quoted value"},
		{"config = other.conf\n", ":1: a configuration file cannot name another"},
	} {
		fs, _ := serveFlags(io.Discard)
		err := parseFlags(fs, []string{"--config=" + writeConfig(t, tc.text)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: got error %v, want one containing %q", tc.text, err, tc.want)
		}
	}
	fs, _ := serveFlags(io.Discard)
	if err := parseFlags(fs, []string{"--config", filepath.Join(t.TempDir(), "missing.conf")}); err == nil {
		t.Error("a missing configuration file was accepted")
	}
}
