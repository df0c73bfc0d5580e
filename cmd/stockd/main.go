// Command stockd is the stockd service and its command-line client.
//
//	stockd serve                 run the service (embedded storage in ./data)
//	stockd reserve ...           talk to a running service; see stockd help
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes. They mean the same for every subcommand, so that scripts can
// tell a refusal from a failure.
const (
	exitOK       = 0
	exitFailure  = 1 // the command failed: an error from the service or the system
	exitUsage    = 2 // the command line was wrong
	exitRejected = 3 // the service refused the request: insufficient stock, not held, not found, ...
	exitFatal    = 70
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands; each file adds its own in an init function.
var commands []command

func register(c command) { commands = append(commands, c) }

// Run runs the stockd command line with args (without the program name) and
// returns the exit code. Tests call it directly.
//
// stockd alone, stockd help, -h and --help print the usage to stdout and
// exit 0, as asking for help succeeds; an unknown command prints it to
// stderr and exits 2.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		if len(args) > 1 {
			return Run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		return runVersion(ctx, args[1:], stdout, stderr)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "stockd: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "stockd holds stock for carts, commits it at checkout, and keeps every change as an event.")
	fmt.Fprintln(w, "\nUsage: stockd <command> [flags]\n\nCommands:")
	cs := slices.Clone(commands)
	slices.SortFunc(cs, func(a, b command) int { return strings.Compare(a.name, b.name) })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-12s %s\n", "help", "print this, or a command's help: stockd help <command>")
	fmt.Fprintln(w, `
Every client command takes --url (env STOCKD_URL), --key (env STOCKD_KEY; an API key from
'stockd keys new') and --json. Commands that change something print the id they
used and, when no answer comes, send the command again with the same id (--retries).

Exit status: 0 ok, 1 failure (service unreachable or failing), 2 usage error, 3 refused by
the service.

Run 'stockd <command> --help' for a command's flags.`)
}
