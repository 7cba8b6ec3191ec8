// Command ferry is Ferry's one binary: `ferry dev` runs everything on one
// machine, `ferry server` the control plane, `ferry worker` one worker of a
// connector, `ferry connector` is a client of the MSK Connect API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ferryhq/ferry/cmd/ferry/internal/connectorcli"
	"github.com/rs/zerolog"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func subcommands() []subcommand {
	return []subcommand{
		{"dev", "run Ferry on this machine with embedded NATS, Kafka and S3", cmdDev},
		{"server", "run the control plane (MSK Connect API, reconciler, autoscaler) against NATS and Nomad", cmdServer},
		{"worker", "run one worker of a connector (started by Nomad or by ferry dev)", cmdWorker},
		{"connector", "create, list, describe, update, delete and restart connectors", cmdConnector},
		{"version", "print the version", cmdVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Ferry: MSK Connect you run yourself.\n\nUsage: ferry <command> [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range subcommands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'ferry <command> -h' for a command's flags. Start with 'ferry dev'.\n")
}

func main() {
	// The first SIGINT/SIGTERM cancels ctx so everything shuts down in
	// order; once ctx is done the handler is removed, so a second one kills.
	zerolog.TimeFieldFormat = time.RFC3339Nano
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 && args[1] != "-h" {
			return run(ctx, []string{args[1], "-h"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	case "-v", "--version", "-version":
		args = []string{"version"}
	}
	for _, c := range subcommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "ferry: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// parseFlags parses args with fs and reports the exit code to return when
// the command must not go on (help: 0, bad flags: 2).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return 2, false
	}
	return 0, true
}

func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ferry "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ferry %s [flags]\n\n%s.\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// finish turns a command's error into an exit code, printing it.
func finish(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, context.Canceled) {
		return 0
	}
	fmt.Fprintf(stderr, "ferry %s: %v\n", name, err)
	return 1
}

func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg devConfig
	fs := newFlagSet("dev", "Run Ferry on this machine: the MSK Connect API, the reconciler and autoscaler, workers as\n"+
		"child processes, and embedded NATS (JetStream), Kafka and S3 unless you point at real ones.\n"+
		"All state lives under --data-dir", stderr)
	cfg.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "ferry dev: invalid flags:\n%v\n", err)
		return 2
	}
	return finish("dev", runDev(ctx, cfg), stderr)
}

func cmdServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg serverConfig
	fs := newFlagSet("server", "Run the control plane: the MSK Connect API, and (on the elected leader) the reconciler\n"+
		"and autoscaler, with state in NATS JetStream and workers as Nomad jobs", stderr)
	cfg.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "ferry server: invalid flags:\n%v\n", err)
		return 2
	}
	return finish("server", runServer(ctx, cfg), stderr)
}

func cmdWorker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprintf(stderr, "Usage: ferry worker\n\nRun one worker of a connector. Nomad or ferry dev start it; it reads the worker spec\n"+
				"named by $FERRY_WORKER_SPEC and its index from $FERRY_WORKER_INDEX.\n")
			return 0
		}
	}
	return finish("worker", runWorker(ctx, args), stderr)
}

func cmdConnector(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return connectorcli.Run(ctx, args, stdout, stderr)
}

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "Print Ferry's version and the Go version it was built with", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintf(stdout, "ferry %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
