package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime"
	"github.com/rs/zerolog"

	// Every built-in connector registers itself in the default registry.
	_ "github.com/ferryhq/ferry/connectors/all"
)

// runWorker runs one worker of a connector: the spec comes from the file
// named by $FERRY_WORKER_SPEC, the index and id from the environment (set by
// the local executor, or by the Nomad job from the allocation).
func runWorker(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: the worker is configured through $%s", args, jobs.EnvSpecFile)
	}
	lvl, err := zerolog.ParseLevel(envOr("FERRY_LOG_LEVEL", "info"))
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
