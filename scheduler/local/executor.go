// Package local runs connector workers as child processes of the ferry
// process: the Deployer `ferry dev` uses where production uses Nomad.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/rs/zerolog"
)

// Config configures an Executor.
type Config struct {
	// Command starts one worker, e.g. {"/path/to/ferry", "worker"}.
	Command []string
	// DataDir holds workers/<connector>/rev-<n>/spec.json and each worker's
	// scratch directory, and plugins/ the custom plugins' unpacked files.
	DataDir string
	Logger  zerolog.Logger
	// Env is added to the ferry process' environment for every worker.
	// Unless it (or the ferry process) sets GOMAXPROCS, a worker gets
	// GOMAXPROCS = its MCUs.
	Env []string
	// KillTimeout is how long a worker has to exit after SIGTERM before it
	// gets SIGKILL (default 10 s).
	KillTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before a worker that exited
	// is started again; it doubles on every quick exit (defaults 500 ms, 30 s).
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a worker must run for its exit not to count as
	// a crash (default 10 s).
	StableAfter time.Duration
	// CrashLoopAfter is how many quick exits in a row make Observe report a
	// crash loop (default 3).
	CrashLoopAfter int
}

// Validate reports every problem with the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Command) == 0 || c.Command[0] == "" {
		errs = append(errs, errors.New("command is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.KillTimeout < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 || c.StableAfter < 0 || c.CrashLoopAfter < 0 {
		errs = append(errs, errors.New("timeouts and counts must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.KillTimeout == 0 {
		c.KillTimeout = 10 * time.Second
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.StableAfter == 0 {
		c.StableAfter = 10 * time.Second
	}
	if c.CrashLoopAfter == 0 {
		c.CrashLoopAfter = 3
	}
}

// tailLines is how many stderr lines a worker slot keeps for Observe.
const tailLines = 20

// reasonLines is how many of them a crash-loop reason quotes.
const reasonLines = 10

// Executor runs each connector's workers as child processes and restarts
// those that exit. It is safe for concurrent use.
type Executor struct {
	cfg  Config
	log  zerolog.Logger
	base context.Context // cancelled by Close; parent of every worker
	stop context.CancelFunc
	wg   sync.WaitGroup // one per worker supervisor goroutine

	applyMu sync.Mutex              // serializes Apply, Remove and Close
	plugins map[string]*pluginState // by plugin revision and MD5; guarded by applyMu

	mu     sync.Mutex // guards groups and closed
	groups map[string]*group
	closed bool
}

var _ scheduler.Deployer = (*Executor)(nil)

// group is one connector's workers.
type group struct {
	revision, restarts int64
	count              int
	slots              map[int]*worker
	// pluginErr says why the connector's custom plugin cannot be installed
	// (Observe reports it as a crash loop).
	pluginErr error
}

// worker is one worker index of one connector at one revision and restart
// generation; its supervisor goroutine restarts the process when it exits.
type worker struct {
	connector string
	index     int
	revision  int64
	restarts  int64
	mcu       int
	command   []string // the ferry binary's, or the custom plugin's
	specPath  string
	dataDir   string
	cancel    context.CancelFunc
	done      chan struct{} // closed when the supervisor has returned
	stderr    *tail

	mu          sync.Mutex
	id          string // current incarnation
	pid         int
	metricsAddr string // where it serves /metrics ("" for nowhere)
	alive       bool
	quickExits  int    // exits in a row within StableAfter of starting
	lastExit    string // how the last incarnation ended
	lastLines   []string
}

// New checks cfg and returns an Executor.
func New(cfg Config) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("local executor config: %w", err)
	}
	cfg.setDefaults()
	// Workers run in directories of their own: every path handed to them
	// (their data directory, a plugin's binary) must not depend on ours.
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("local executor config: data dir: %w", err)
	}
	cfg.DataDir = abs
	base, stop := context.WithCancel(context.Background())
	return &Executor{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "local-executor").Logger(),
		base:    base,
		stop:    stop,
		groups:  map[string]*group{},
		plugins: map[string]*pluginState{},
	}, nil
}

// Run waits for ctx to end and then stops every worker (see Close).
func (e *Executor) Run(ctx context.Context) error {
	<-ctx.Done()
	return e.Close()
}

// Close stops every worker (SIGTERM, then SIGKILL after KillTimeout) and
// waits for them. Apply fails afterwards.
func (e *Executor) Close() error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.Lock()
	e.closed = true
	e.groups = map[string]*group{}
	e.mu.Unlock()
	e.stop()
	e.wg.Wait()
	return nil
}

func (e *Executor) workersDir() string { return filepath.Join(e.cfg.DataDir, "workers") }

func (e *Executor) connectorDir(name string) string { return filepath.Join(e.workersDir(), name) }

func revDir(connectorDir string, revision int64) string {
	return filepath.Join(connectorDir, "rev-"+strconv.FormatInt(revision, 10))
}

// Apply makes the connector's workers match d: it writes the spec file,
// replaces every worker (one index at a time) when the revision or restart
// generation changed, starts missing indexes and stops the highest indexes
// beyond d.Workers.
func (e *Executor) Apply(ctx context.Context, d scheduler.Deployment) error {
	if !jobs.ValidName(d.Name) {
		return fmt.Errorf("apply: invalid connector name %q", d.Name)
	}
	if d.Workers < 0 {
		return fmt.Errorf("apply %q: negative worker count %d", d.Name, d.Workers)
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("apply %q: executor is closed", d.Name)
	}
	g := e.groups[d.Name]
	if g == nil {
		g = &group{slots: map[int]*worker{}}
		e.groups[d.Name] = g
	}
	g.revision, g.restarts, g.count = d.Revision, d.Restarts, d.Workers
	e.mu.Unlock()

	dir := revDir(e.connectorDir(d.Name), d.Revision)
	specPath := filepath.Join(dir, "spec.json")
	if err := writeSpec(specPath, d.Spec); err != nil {
		return fmt.Errorf("apply %q: %w", d.Name, err)
	}
	command := e.cfg.Command
	var pluginErr error
	if d.Plugin != nil {
		// A custom plugin's binary runs instead of the ferry binary. If it
		// cannot be installed, Observe says why and the next Apply tries
		// again; workers already running are left alone.
		command, pluginErr = e.pluginCommand(ctx, d.Plugin)
	}
	e.mu.Lock()
	g.pluginErr = pluginErr
	e.mu.Unlock()
	if pluginErr != nil {
		e.log.Warn().Err(pluginErr).Str("connector", d.Name).Msg("custom plugin not installed")
		return nil
	}

	// Stop the highest indexes first when scaling in.
	for _, idx := range e.indexes(g) {
		if idx >= d.Workers {
			e.stopSlot(g, idx, "scale in")
		}
	}
	for idx := 0; idx < d.Workers; idx++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("apply %q: %w", d.Name, err)
		}
		e.mu.Lock()
		w := g.slots[idx]
		e.mu.Unlock()
		if w != nil && (w.revision != d.Revision || w.restarts != d.Restarts) {
			e.stopSlot(g, idx, "replace")
			w = nil
		}
		if w == nil {
			if err := e.startSlot(g, d, idx, specPath, command); err != nil {
				return fmt.Errorf("apply %q: %w", d.Name, err)
			}
		}
	}
	e.removeOldRevisions(d.Name, g, d.Revision)
	return nil
}

// indexes returns the group's worker indexes, highest first.
func (e *Executor) indexes(g *group) []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	idx := make([]int, 0, len(g.slots))
	for i := range g.slots {
		idx = append(idx, i)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(idx)))
	return idx
}

// writeSpec writes the worker spec (it holds secrets: mode 0600) if it
// changed, atomically.
func writeSpec(path string, spec jobs.WorkerSpec) error {
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode worker spec: %w", err)
	}
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create spec dir: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".spec-*.json")
	if err != nil {
		return fmt.Errorf("write worker spec: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp, 0o600)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write worker spec: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write worker spec: %w", err)
	}
	return nil
}

// removeOldRevisions deletes the spec files and scratch directories of
// revisions no worker runs any more.
func (e *Executor) removeOldRevisions(name string, g *group, current int64) {
	e.mu.Lock()
	inUse := map[string]bool{revDir(e.connectorDir(name), current): true}
	for _, w := range g.slots {
		inUse[filepath.Dir(w.specPath)] = true
	}
	e.mu.Unlock()
	entries, err := os.ReadDir(e.connectorDir(name))
	if err != nil {
		return
	}
	for _, ent := range entries {
		p := filepath.Join(e.connectorDir(name), ent.Name())
		if ent.IsDir() && strings.HasPrefix(ent.Name(), "rev-") && !inUse[p] {
			if err := os.RemoveAll(p); err != nil {
				e.log.Warn().Err(err).Str("connector", name).Str("dir", p).Msg("cannot remove old revision")
			}
		}
	}
}

// startSlot starts the supervisor of worker idx.
func (e *Executor) startSlot(g *group, d scheduler.Deployment, idx int, specPath string, command []string) error {
	dataDir := filepath.Join(filepath.Dir(specPath), "worker-"+strconv.Itoa(idx))
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create worker data dir: %w", err)
	}
	ctx, cancel := context.WithCancel(e.base)
	w := &worker{
		connector: d.Name, index: idx, revision: d.Revision, restarts: d.Restarts, mcu: d.Mcu,
		command: command, specPath: specPath, dataDir: dataDir, cancel: cancel,
		done: make(chan struct{}), stderr: newTail(tailLines),
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		cancel()
		return errors.New("executor is closed")
	}
	g.slots[idx] = w
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		e.supervise(ctx, w)
	}()
	return nil
}

// stopSlot stops worker idx and waits for it.
func (e *Executor) stopSlot(g *group, idx int, why string) {
	e.mu.Lock()
	w := g.slots[idx]
	delete(g.slots, idx)
	e.mu.Unlock()
	if w == nil {
		return
	}
	e.log.Info().Str("connector", w.connector).Int("worker", idx).Int64("revision", w.revision).Str("why", why).Msg("stopping worker")
	w.cancel()
	<-w.done
}

// supervise runs the worker's process and starts it again, with
// exponential backoff, whenever it exits, until ctx ends.
func (e *Executor) supervise(ctx context.Context, w *worker) {
	defer close(w.done)
	log := e.log.With().Str("connector", w.connector).Int("worker", w.index).Int64("revision", w.revision).Logger()
	backoff := e.cfg.MinBackoff
	for {
		started := time.Now()
		err := e.runOnce(ctx, w, log)
		if ctx.Err() != nil {
			return
		}
		ran := time.Since(started)
		exit := "exited cleanly"
		if err != nil {
			exit = err.Error()
		}
		w.mu.Lock()
		w.lastExit = exit
		w.lastLines = w.stderr.snapshot()
		if ran < e.cfg.StableAfter {
			w.quickExits++
		} else {
			w.quickExits = 0
			backoff = e.cfg.MinBackoff
		}
		quick := w.quickExits
		w.mu.Unlock()
		log.Warn().Str("exit", exit).Dur("ran", ran).Int("quick_exits", quick).Dur("restart_in", backoff).Msg("worker exited; restarting")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, e.cfg.MaxBackoff)
	}
}

// runOnce starts one incarnation of the worker and waits for it to exit.
// When ctx ends the process gets SIGTERM and, after KillTimeout, SIGKILL.
func (e *Executor) runOnce(ctx context.Context, w *worker, log zerolog.Logger) error {
	id := newWorkerID(w.revision, w.index)
	cmd := exec.CommandContext(ctx, w.command[0], w.command[1:]...)
	cmd.Env = append(os.Environ(), e.cfg.Env...)
	if w.mcu > 0 && !hasEnv(cmd.Env, "GOMAXPROCS") {
		// A worker gets as many cores as it has MCUs (1 MCU = 1 vCPU), as
		// Nomad would give it, so CPU-based autoscaling behaves alike.
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(w.mcu))
	}
	cmd.Env = append(cmd.Env,
		jobs.EnvSpecFile+"="+w.specPath,
		jobs.EnvWorkerIndex+"="+strconv.Itoa(w.index),
		jobs.EnvWorkerID+"="+id,
		jobs.EnvDataDir+"="+w.dataDir,
	)
	// Each worker serves Prometheus /metrics on a loopback port of its own,
	// as a Nomad allocation does on its dynamic port.
	metricsAddr, perr := freeLoopbackAddr()
	if perr != nil {
		log.Warn().Err(perr).Msg("no free port for the worker's metrics; it serves none")
	} else {
		cmd.Env = append(cmd.Env, jobs.EnvMetricsAddr+"="+metricsAddr)
	}
	cmd.Dir = w.dataDir
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = e.cfg.KillTimeout
	ilog := log.With().Str("worker_id", id).Logger()
	stdout := &lineLogger{log: ilog.With().Str("stream", "stdout").Logger()}
	stderr := &lineLogger{log: ilog.With().Str("stream", "stderr").Logger(), tail: w.stderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	w.stderr.reset()
	if err := cmd.Start(); err != nil {
		w.stderr.add("cannot start worker: " + err.Error())
		return fmt.Errorf("start %s: %w", w.command[0], err)
	}
	w.mu.Lock()
	w.id, w.pid, w.alive, w.metricsAddr = id, cmd.Process.Pid, true, metricsAddr
	w.mu.Unlock()
	ilog.Info().Int("pid", cmd.Process.Pid).Str("metrics", metricsAddr).Msg("worker started")
	err := cmd.Wait()
	stdout.flush()
	stderr.flush()
	w.mu.Lock()
	w.alive = false
	w.mu.Unlock()
	if ctx.Err() != nil {
		ilog.Info().Msg("worker stopped")
	}
	return err
}

// freeLoopbackAddr returns a loopback address whose port was free a moment
// ago. (Another process may take it before the worker listens: the worker
// then logs that it serves no metrics, and its next start gets another.)
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}

func hasEnv(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// newWorkerID returns a worker incarnation id that is safe as a NATS
// subject token: letters, digits and '-'.
func newWorkerID(revision int64, index int) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("r%d-w%d-%s", revision, index, hex.EncodeToString(b[:]))
}

// Remove stops every worker of the connector and deletes its spec files and
// scratch directories.
func (e *Executor) Remove(ctx context.Context, name string) error {
	if !jobs.ValidName(name) {
		return fmt.Errorf("remove: invalid connector name %q", name)
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.Lock()
	g := e.groups[name]
	delete(e.groups, name)
	var ws []*worker
	if g != nil {
		for idx, w := range g.slots {
			ws = append(ws, w)
			delete(g.slots, idx)
		}
	}
	e.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		<-w.done
	}
	if len(ws) > 0 {
		e.log.Info().Str("connector", name).Int("workers", len(ws)).Msg("workers removed")
	}
	if err := os.RemoveAll(e.connectorDir(name)); err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	return nil
}

// List returns the connectors with workers, and those whose spec files are
// still on disk (left by an earlier ferry process), sorted.
func (e *Executor) List(ctx context.Context) ([]string, error) {
	names := map[string]bool{}
	e.mu.Lock()
	for n := range e.groups {
		names[n] = true
	}
	e.mu.Unlock()
	entries, err := os.ReadDir(e.workersDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list %s: %w", e.workersDir(), err)
	}
	for _, ent := range entries {
		if ent.IsDir() && jobs.ValidName(ent.Name()) {
			names[ent.Name()] = true
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Observe reports how many of the connector's workers run, their ids, and
// whether any of them keeps crashing, quoting its last stderr lines.
func (e *Executor) Observe(ctx context.Context, name string) (scheduler.Observation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.groups[name]
	if g == nil {
		return scheduler.Observation{}, nil
	}
	obs := scheduler.Observation{Deployed: true, Workers: g.count, IDs: map[int]string{}}
	if g.pluginErr != nil {
		obs.CrashLoop, obs.Reason = true, pluginReason(g.pluginErr)
	}
	idxs := make([]int, 0, len(g.slots))
	for i := range g.slots {
		idxs = append(idxs, i)
	}
	sort.Ints(idxs)
	for _, idx := range idxs {
		w := g.slots[idx]
		w.mu.Lock()
		if w.alive {
			obs.Alive++
			obs.IDs[idx] = w.id
		}
		if !obs.CrashLoop && w.quickExits >= e.cfg.CrashLoopAfter {
			obs.CrashLoop = true
			obs.Reason = crashReason(idx, e.cfg.StableAfter, w.lastExit, w.lastLines)
		}
		w.mu.Unlock()
	}
	return obs, nil
}

func crashReason(idx int, within time.Duration, exit string, lines []string) string {
	var b strings.Builder
	// No counts or times that change on every crash: the reason becomes the
	// connector's stateDescription, written only when it changes.
	fmt.Fprintf(&b, "worker %d keeps exiting within %s of starting (last exit: %s)", idx, within, exit)
	if len(lines) > reasonLines {
		lines = lines[len(lines)-reasonLines:]
	}
	if len(lines) > 0 {
		b.WriteString("; last output:\n")
		b.WriteString(strings.Join(lines, "\n"))
	} else {
		b.WriteString("; it wrote nothing to stderr")
	}
	return b.String()
}

// WorkerProcess describes one running worker process.
type WorkerProcess struct {
	Index    int
	ID       string
	PID      int
	Revision int64
	Restarts int64
	// MetricsAddr is where it serves Prometheus /metrics.
	MetricsAddr string
}

// Processes returns the connector's live worker processes by index, for
// diagnostics (and tests).
func (e *Executor) Processes(name string) []WorkerProcess {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.groups[name]
	if g == nil {
		return nil
	}
	var out []WorkerProcess
	for idx, w := range g.slots {
		w.mu.Lock()
		if w.alive {
			out = append(out, WorkerProcess{Index: idx, ID: w.id, PID: w.pid, Revision: w.revision, Restarts: w.restarts, MetricsAddr: w.metricsAddr})
		}
		w.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}
