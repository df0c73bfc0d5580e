package main

import (
	"encoding/json"
	"regexp"
	"testing"
)

// TestVersionAndHelp: stockd version and --version print the build's
// version; stockd alone and stockd help print the usage, which lists them,
// and exit 0.
func TestVersionAndHelp(t *testing.T) {
	line := `^stockd \S+ (\(commit [0-9a-f]{12}(, [0-9TZ:-]+)?(, modified)?\) )?go1\.\d+\S* \w+/\w+\n$`
	runCases(t, nil, []cliCase{
		{"version", []string{"version"}, 0, line, "", false},
		{"--version", []string{"--version"}, 0, line, "", false},
		{"version json", []string{"version", "--json"}, 0, `"go": "go1\.`, "", true},
		{"version help", []string{"help", "version"}, 0, `Usage: stockd version`, "", false},
		{"version extra", []string{"version", "now"}, 2, "", `unexpected argument`, false},
		{"alone", nil, 0, `(?s)Usage: stockd <command>.*\n  version +print the version.*\n  help +print this.*STOCKD_KEY.*Exit status`, "", false},
		{"help", []string{"help"}, 0, `Usage: stockd <command>`, "", false},
	})
	var v buildVersion
	_, out, _ := run(t, nil, "version", "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version == "" || v.Platform == "" {
		t.Errorf("version --json = %q: %+v %v", out, v, err)
	}
	if s := (buildVersion{Version: "v1.2.0", Commit: "0123456789abcdef", CommitTime: "2026-12-02T15:42:16Z", Modified: true, Go: "go1.26.0", Platform: "linux/amd64"}).String(); !regexp.MustCompile(line).MatchString(s + "\n") {
		t.Errorf("a full version line %q does not match %q", s, line)
	}
}
