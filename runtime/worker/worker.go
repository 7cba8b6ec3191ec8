// Package worker is the program of one Ferry worker: what `ferry worker`
// runs, and what a custom plugin's binary runs with its own connectors
// compiled in. A plugin author writes
//
//	package main
//
//	import (
//		_ "github.com/ferryhq/ferry/connectors/all" // Ferry's own connectors, if wanted
//		_ "acme.com/mysink"                         // registers com.acme.MySink
//
//		"github.com/ferryhq/ferry/runtime/worker"
//	)
//
//	func main() { worker.Main() }
//
// and ships the binary in a ZIP with a ferry-plugin.json manifest
// (docs/plugins.md). The worker reads its WorkerSpec from the file named by
// $FERRY_WORKER_SPEC and its index and id from the environment, which the
// local executor or the Nomad job sets; every connector registered in
// connect.Default() can run.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime"
	"github.com/rs/zerolog"
)

// Usage is the worker's help text.
const Usage = "Usage: %s worker\n\nRun one worker of a connector. Nomad or ferry dev start it; it reads the worker spec\n" +
	"named by $FERRY_WORKER_SPEC and its index from $FERRY_WORKER_INDEX.\n"

// EnvLogLevel sets the worker's log level (trace, debug, info, warn, error;
// default info).
const EnvLogLevel = "FERRY_LOG_LEVEL"

// Main runs the worker with the process' arguments (an optional leading
// "worker", as deployers pass it to the ferry binary and to plugins alike)
// until SIGINT or SIGTERM, and exits: 0 when it stopped cleanly, 1 on an
// error, 2 on bad arguments.
func Main() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Once ctx is done the handler goes, so a second signal kills.
	context.AfterFunc(ctx, stop)
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "worker" {
		args = args[1:]
	}
	code := Command(ctx, os.Args[0], args, os.Stderr)
	stop()
	os.Exit(code)
}

// Command runs the worker as a command line program would and returns its
// exit code: help on -h, the error printed to stderr.
func Command(ctx context.Context, name string, args []string, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprintf(stderr, Usage, name)
			return 0
		}
	}
	err := Run(ctx, args)
	if err == nil || errors.Is(err, context.Canceled) {
		return 0
	}
	fmt.Fprintf(stderr, "%s worker: %v\n", name, err)
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

// Run runs one worker of a connector until ctx ends: the spec comes from
// the file named by $FERRY_WORKER_SPEC, the index and id from the
// environment (set by the local executor, or by the Nomad job from the
// allocation). args must be empty.
func Run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q: the worker is configured through $%s", errUsage, args, jobs.EnvSpecFile)
	}
	lvl, err := zerolog.ParseLevel(envOr(EnvLogLevel, "info"))
	if err != nil || lvl == zerolog.NoLevel {
		lvl = zerolog.InfoLevel
	}
	log := zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger()

	path := os.Getenv(jobs.EnvSpecFile)
	if path == "" {
		return fmt.Errorf("$%s is not set: a worker is started by ferry dev or Nomad, which hand it its spec", jobs.EnvSpecFile)
	}
	spec, err := jobs.LoadWorkerSpec(path)
	if err != nil {
		return err
	}
	index := 0
	if v := os.Getenv(jobs.EnvWorkerIndex); v != "" {
		if index, err = strconv.Atoi(v); err != nil || index < 0 {
			return fmt.Errorf("$%s=%q: want a whole number ≥ 0", jobs.EnvWorkerIndex, v)
		}
	}
	id := os.Getenv(jobs.EnvWorkerID)
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d-%d", host, index, os.Getpid())
	}

	opts := runtime.Options{Index: index, WorkerID: id, Logger: log, DataDir: os.Getenv(jobs.EnvDataDir)}
	if url := envOr(jobs.EnvNatsURL, spec.NatsURL); url != "" {
		nc, err := runtime.DialNATS(url, "ferry-worker-"+spec.Connector+"-"+id)
		if err != nil {
			// Metrics and status are lost, the data keeps flowing.
			log.Warn().Err(err).Msg("nats unavailable; running without status and metrics")
		} else {
			defer nc.Close()
			opts.Nats = nc
		}
	}
	w, err := runtime.NewWorker(spec, opts)
	if err != nil {
		return err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchSpec(wctx, path, spec, w, log)
	}()
	defer func() { stopWatch(); <-watched }()
	if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// specPollInterval is how often a worker looks at its spec file for a new
// group size.
const specPollInterval = 2 * time.Second

// watchSpec follows the worker's spec file: when the deployer rewrites it
// for a new worker count (same revision, so the worker is not replaced), the
// worker takes on its new task share. A new revision is the deployer's to
// roll out by replacing the worker, so it is left alone here.
func watchSpec(ctx context.Context, path string, cur *jobs.WorkerSpec, w *runtime.Worker, log zerolog.Logger) {
	var last time.Time
	if fi, err := os.Stat(path); err == nil {
		last = fi.ModTime()
	}
	t := time.NewTicker(specPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(path)
		if err != nil || fi.ModTime().Equal(last) {
			continue
		}
		last = fi.ModTime()
		next, err := jobs.LoadWorkerSpec(path)
		if err != nil {
			log.Warn().Err(err).Msg("spec file changed but cannot be read; keeping the current task share")
			continue
		}
		if next.Revision != cur.Revision {
			continue
		}
		if next.Workers != cur.Workers || next.TasksMax != cur.TasksMax {
			log.Info().Int("workers", next.Workers).Int("tasks_max", next.TasksMax).Msg("group size changed")
			w.Reshare(next.Workers, next.TasksMax)
			cur = next
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
