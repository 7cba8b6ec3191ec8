// Package testworker is a tiny stand-in for `ferry worker` in tests: a test
// binary calls MaybeRun first thing in TestMain and starts itself as the
// worker command with EnvFlag=1 in the environment. The worker reads its
// environment and WorkerSpec, records them in InfoFile in its data dir, and
// publishes jobs.WorkerStatus to NATS every metrics interval.
//
// Config keys of the connector steer it:
//
//	test.mode          run (default) | fail (reports FAILED) | crash (exits 1 at once)
//	test.message       the FAILED message (mode fail)
//	test.fail.revision fail only when running this spec revision
//	test.ignore.term   "true": ignore SIGTERM (to test the SIGKILL fallback)
//	test.burn.file     a path: while that file exists the worker keeps one
//	                   core per MCU busy (for autoscaler tests)
//
// Every metrics interval it also publishes jobs.Metrics with its measured
// cpu_percent (process CPU time over interval × MCUs), as real workers do.
package testworker

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/nats-io/nats.go"
)

// EnvFlag set to "1" makes MaybeRun run the test worker.
const EnvFlag = "FERRY_TEST_WORKER"

// InfoFile is written to the worker's data dir when it starts.
const InfoFile = "info.json"

// Info is what the test worker saw when it started.
type Info struct {
	PID      int    `json:"pid"`
	Index    string `json:"index"`
	ID       string `json:"id"`
	SpecFile string `json:"specFile"`
	DataDir  string `json:"dataDir"`
	Revision int64  `json:"revision"`
	Workers  int    `json:"workers"`
	// MetricsAddr is the FERRY_METRICS_ADDR the executor handed it.
	MetricsAddr string `json:"metricsAddr"`
}

// MaybeRun runs the test worker and exits if EnvFlag is set; otherwise it
// returns at once.
func MaybeRun() {
	if os.Getenv(EnvFlag) != "1" {
		return
	}
	os.Exit(run())
}

func run() int {
	spec, err := jobs.LoadWorkerSpec(os.Getenv(jobs.EnvSpecFile))
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		return 2
	}
	index, _ := strconv.Atoi(os.Getenv(jobs.EnvWorkerIndex))
	id := os.Getenv(jobs.EnvWorkerID)
	dataDir := os.Getenv(jobs.EnvDataDir)
	mode := spec.Config["test.mode"]
	if r := spec.Config["test.fail.revision"]; r != "" && r != strconv.FormatInt(spec.Revision, 10) {
		mode = "run"
	}
	if mode == "crash" {
		fmt.Fprintln(os.Stderr, "starting worker", index)
		fmt.Fprintln(os.Stderr, "boom: bad config")
		return 1
	}
	term := make(chan os.Signal, 1)
	if spec.Config["test.ignore.term"] == "true" {
		// Notify on SIGTERM would undo Ignore: listen for SIGINT only.
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(term, syscall.SIGINT)
	} else {
		signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	}

	info := Info{PID: os.Getpid(), Index: os.Getenv(jobs.EnvWorkerIndex), ID: id, SpecFile: os.Getenv(jobs.EnvSpecFile),
		DataDir: dataDir, Revision: spec.Revision, Workers: spec.Workers, MetricsAddr: os.Getenv(jobs.EnvMetricsAddr)}
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dataDir, InfoFile), b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		return 2
	}
	url := spec.NatsURL
	if u := os.Getenv(jobs.EnvNatsURL); u != "" {
		url = u
	}
	nc, err := nats.Connect(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworker: nats:", err)
		return 2
	}
	defer nc.Close()
	interval, err := time.ParseDuration(spec.MetricsInterval)
	if err != nil || interval <= 0 {
		interval = time.Second
	}
	publish := func(state, msg string) {
		s := jobs.WorkerStatus{Connector: spec.Connector, Worker: id, Index: index, Revision: spec.Revision,
			State: state, Message: msg, Time: time.Now()}
		b, _ := json.Marshal(s)
		_ = nc.Publish(jobs.StatusSubject(spec.Connector, id), b)
		_ = nc.Flush()
	}
	fmt.Println("worker", index, "up")
	publish(jobs.WorkerStarting, "")
	state, msg := jobs.WorkerRunning, ""
	if mode == "fail" {
		state, msg = jobs.WorkerFailed, spec.Config["test.message"]
		fmt.Fprintln(os.Stderr, "task 0 failed:", msg)
	}
	if f := spec.Config["test.burn.file"]; f != "" {
		stopBurn := make(chan struct{})
		defer close(stopBurn)
		for i := 0; i < max(spec.Mcu, 1); i++ {
			go burn(f, stopBurn)
		}
	}
	lastCPU, lastAt := cpuTime(), time.Now()
	publishMetrics := func() {
		cpu, at := cpuTime(), time.Now()
		pct := 0.0
		if el := at.Sub(lastAt); el > 0 {
			pct = 100 * (cpu - lastCPU).Seconds() / (el.Seconds() * float64(max(spec.Mcu, 1)))
		}
		lastCPU, lastAt = cpu, at
		m := jobs.Metrics{Connector: spec.Connector, Worker: id, Time: at, CPUPercent: max(pct, 0), Mcu: spec.Mcu}
		b, _ := json.Marshal(m)
		_ = nc.Publish(jobs.MetricsSubject(spec.Connector, id), b)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		publish(state, msg)
		publishMetrics()
		select {
		case <-term:
			publish(jobs.WorkerStopping, "")
			return 0
		case <-tick.C:
		}
	}
}

// burn keeps one core busy while path exists, checking every 50 ms.
func burn(path string, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := os.Stat(path); err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		}
	}
}
