package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/configprovider"
	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/runtime/convert"
	_ "github.com/ferryhq/ferry/runtime/transforms" // registers the built-in transforms and predicates
)

// Options are what the binary hands a worker besides its spec.
type Options struct {
	Index    int    // index of this worker in its group (FERRY_WORKER_INDEX)
	WorkerID string // unique id of this worker incarnation (FERRY_WORKER_ID)
	Logger   zerolog.Logger
	// Registry resolves the connector class; nil means connect.Default().
	Registry *connect.Registry
	// Nats, if set, receives status and metrics; nil or disconnected never
	// stops the data path.
	Nats    *nats.Conn
	DataDir string // scratch directory the worker may use
	// OnStatus, if set, is called with every status the worker reports
	// (tests and in-process wiring); it must not block.
	OnStatus func(jobs.WorkerStatus)
	// RestartBackoff is the first delay before a failed task restarts,
	// doubled on every failure up to MaxRestartBackoff. Defaults 1s and 60s.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// MetricsAddr is where Prometheus /metrics is served (host:port); empty
	// reads FERRY_METRICS_ADDR, and no endpoint when that is empty too.
	MetricsAddr string
	// Memory replaces the memory plan derived from the spec's MCUs
	// (PlanMemory); the zero value means derive it.
	Memory MemoryPlan
	// RecoveredAfter is how long a task restarted after a failure must run
	// before its status leaves FAILED, unless it commits past the records
	// it failed on sooner. Default 30s.
	RecoveredAfter time.Duration
}

// defaultRecoveredAfter is Options.RecoveredAfter's default.
const defaultRecoveredAfter = 30 * time.Second

// Task states a task reports.
const (
	TaskStarting = "STARTING"
	TaskRunning  = "RUNNING"
	TaskFailed   = "FAILED"
)

// Worker runs one worker's share of a connector's tasks.
type Worker struct {
	spec     *jobs.WorkerSpec
	opts     Options
	log      zerolog.Logger
	plugin   connect.Plugin
	taskCfg  map[string]string
	sink     *sinkSettings
	source   *sourceSettings          // set for source connectors instead of sink
	redact   *configprovider.Redactor // hides values config providers resolved
	retry    retryPolicy              // errors.retry.timeout, errors.retry.delay.max.ms
	taskIDs  []int
	interval time.Duration

	mu       sync.Mutex
	tasks    map[int]*jobs.TaskStatus
	tasksMax int // the connector's task count now: spec.TasksMax, then each Reshare's
	// A task that failed stays FAILED while it runs again, until it proves
	// itself (recovery.go): gen numbers each task's incarnations,
	// recovering holds where the last one failed.
	gen        map[int]int
	recovering map[int]failPoint
	stopping   bool
	changed    chan struct{}
	// reshare carries a new group size and tasks.max (the autoscaler
	// changed the count): the worker runs its new share without a restart.
	reshare chan [2]int

	recordsIn, recordsOut atomic.Int64
	bytesIn, bytesOut     atomic.Int64
	errorsTotal           atomic.Int64
	lastCPU               atomic.Uint64 // float64 bits of the last cpu_percent
	metricsAddr           atomic.Value  // string: where /metrics listens
	lag                   sync.Map      // task id → *atomic.Int64
	mem                   workerMemory  // the memory plan and the sink tasks' budget (memory.go)
	joins                 *joinGate     // the first share's sink tasks start consuming together
}

// NewWorker checks the spec and resolves the connector; it starts nothing.
func NewWorker(spec *jobs.WorkerSpec, opts Options) (*Worker, error) {
	if spec == nil {
		return nil, errors.New("new worker: nil spec")
	}
	if opts.Registry == nil {
		opts.Registry = connect.Default()
	}
	if opts.RestartBackoff <= 0 {
		opts.RestartBackoff = time.Second
	}
	if opts.MaxRestartBackoff < opts.RestartBackoff {
		opts.MaxRestartBackoff = max(60*time.Second, opts.RestartBackoff)
	}
	if opts.RecoveredAfter <= 0 {
		opts.RecoveredAfter = defaultRecoveredAfter
	}
	class := spec.Class
	if class == "" {
		class = spec.Config[connect.KeyConnectorClass]
	}
	plugin, ok := opts.Registry.Lookup(class)
	if !ok {
		return nil, fmt.Errorf("new worker for %q: unknown connector class %q (known: %s)",
			spec.Connector, class, strings.Join(opts.Registry.Classes(), ", "))
	}
	if plugin.Kind != connect.Sink && plugin.Kind != connect.Source {
		return nil, fmt.Errorf("new worker for %q: %s connectors (%s) are not supported by this worker", spec.Connector, plugin.Kind, plugin.Class)
	}
	// Config provider references (${env:X}, ${file:/p:k}, ${dir:/d:f}) are
	// resolved here, in the worker, never in the control plane; the
	// resolved values never appear in a log line or a status.
	spec, redact, err := resolveConfig(spec)
	if err != nil {
		return nil, fmt.Errorf("new worker for %q: %w", spec.Connector, err)
	}
	if err := opts.Registry.ValidateConfig(plugin.Class, spec.Config); err != nil {
		return nil, fmt.Errorf("new worker for %q: invalid configuration:\n%s", spec.Connector, redact.Redact(err.Error()))
	}
	if _, err := convert.HeaderFromConfig(spec.Config, spec.WorkerProperties); err != nil {
		return nil, fmt.Errorf("new worker for %q: header converter: %s", spec.Connector, redact.Redact(err.Error()))
	}
	var sink *sinkSettings
	var source *sourceSettings
	if plugin.Kind == connect.Source {
		source, err = parseSourceSettings(spec)
	} else {
		sink, err = parseSinkSettings(spec)
	}
	if err != nil {
		return nil, fmt.Errorf("new worker: %w", err)
	}
	retry, err := parseRetryPolicy(spec)
	if err != nil {
		return nil, fmt.Errorf("new worker: %w", err)
	}
	overrides, err := parseClientOverrides(spec, plugin.Kind)
	if err != nil {
		return nil, fmt.Errorf("new worker for %q: %s", spec.Connector, redact.Redact(err.Error()))
	}
	if sink != nil {
		sink.kafkaOpts = append(sink.kafkaOpts, overrides.opts...)
	} else {
		source.kafkaOpts = append(source.kafkaOpts, overrides.opts...)
	}
	// Build the converters once to report bad converter settings now.
	if _, err := convert.FromConfig(spec.Config, spec.WorkerProperties, true); err != nil {
		return nil, fmt.Errorf("new worker for %q: key converter: %w", spec.Connector, err)
	}
	if _, err := convert.FromConfig(spec.Config, spec.WorkerProperties, false); err != nil {
		return nil, fmt.Errorf("new worker for %q: value converter: %w", spec.Connector, err)
	}
	interval := defaultMetricsInterval
	if spec.MetricsInterval != "" {
		d, err := time.ParseDuration(spec.MetricsInterval)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("new worker for %q: metricsInterval %q is not a positive duration", spec.Connector, spec.MetricsInterval)
		}
		interval = d
	}
	if opts.WorkerID == "" {
		opts.WorkerID = fmt.Sprintf("%s-%d", spec.Connector, opts.Index)
	}
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = strings.TrimSpace(os.Getenv(EnvMetricsAddr))
	}
	w := &Worker{
		spec:       spec,
		opts:       opts,
		plugin:     plugin,
		taskCfg:    connect.WithDefaults(plugin.Config, spec.Config),
		sink:       sink,
		source:     source,
		redact:     redact,
		retry:      retry,
		taskIDs:    jobs.TaskShare(spec.TasksMax, spec.Workers, opts.Index),
		tasksMax:   effectiveTasksMax(spec),
		interval:   interval,
		tasks:      map[int]*jobs.TaskStatus{},
		gen:        map[int]int{},
		recovering: map[int]failPoint{},
		changed:    make(chan struct{}, 1),
		reshare:    make(chan [2]int, 1),
	}
	w.log = opts.Logger.With().Str("connector", spec.Connector).Str("worker", opts.WorkerID).Int("index", opts.Index).Logger()
	for _, msg := range overrides.warnings {
		w.log.Warn().Msg(redact.Redact(msg))
	}
	for _, id := range w.taskIDs {
		w.tasks[id] = &jobs.TaskStatus{ID: id, State: TaskStarting}
		w.lag.Store(id, new(atomic.Int64))
	}
	return w, nil
}

// effectiveTasksMax is how many tasks the connector runs: the spec's count
// (the control plane's; workers × MCUs × 2 when autoscaled), else the
// configuration's tasks.max, as a provisioned connector's.
func effectiveTasksMax(spec *jobs.WorkerSpec) int {
	if spec.TasksMax > 0 {
		return spec.TasksMax
	}
	return jobs.TasksMax(jobs.Capacity{}, spec.Config, spec.Workers)
}

// TaskIDs returns the task ids this worker runs.
func (w *Worker) TaskIDs() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.taskIDs...)
}

// Reshare tells a running worker that its group now has workers workers
// and tasksMax tasks (the autoscaler changed the count and the deployer
// rewrote the spec in place). The worker stops the tasks no longer its own
// (committing what is durable, as on shutdown) and starts the new ones,
// whose configuration's tasks.max is the new count. A sink's tasks it keeps
// go on untouched, so a scale costs one rebalance; a source's are
// restarted too when the count changed, so every source task works with the
// same tasks.max (datagen, for one, makes its ids unique with it). The
// newest call wins; calls after shutdown began are ignored.
func (w *Worker) Reshare(workers, tasksMax int) {
	if workers < 1 || tasksMax < 1 {
		return
	}
	for {
		select {
		case w.reshare <- [2]int{workers, tasksMax}:
			return
		default:
		}
		select { // drop an older, unread request
		case <-w.reshare:
		default:
		}
	}
}

// Run runs the worker's tasks until ctx is done, then shuts them down
// gracefully (commit what is durable, close, leave the group) and returns.
func (w *Worker) Run(ctx context.Context) error {
	defer w.applyMemoryLimit()()
	w.log.Info().Ints("tasks", w.taskIDs).Str("class", w.plugin.Class).
		Str("key_converter", convert.ClassFromConfig(w.spec.Config, w.spec.WorkerProperties, true)).
		Str("value_converter", convert.ClassFromConfig(w.spec.Config, w.spec.WorkerProperties, false)).
		Msg("worker starting")
	var wg sync.WaitGroup
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	tasks := map[int]running{}
	start := func(id int) {
		tctx, cancel := context.WithCancel(ctx)
		r := running{cancel: cancel, done: make(chan struct{})}
		tasks[id] = r
		wg.Go(func() {
			defer close(r.done)
			w.superviseTask(tctx, id)
		})
	}
	ids := w.TaskIDs()
	w.joins = newJoinGate(nil)
	if w.sink != nil {
		w.joins = newJoinGate(ids)
	}
	for _, id := range ids {
		start(id)
	}
	if w.opts.MetricsAddr != "" {
		// Served until the worker returns, so the last figures stay
		// readable while tasks shut down.
		mctx, stopMetrics := context.WithCancel(context.Background())
		var mwg sync.WaitGroup
		mwg.Go(func() { w.serveMetrics(mctx, w.opts.MetricsAddr) })
		defer mwg.Wait()
		defer stopMetrics()
	}
	done := make(chan struct{})

	cpu := newCPUMeter()
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	w.publishStatus()
	ctxDone := ctx.Done()
	// Tasks return only once ctx is done, so done is watched from then on:
	// a worker with no task of its own (more workers than tasks.max) stays
	// up, reporting RUNNING, instead of exiting into a restart loop.
	var stopped <-chan struct{}
	for {
		select {
		case <-w.changed:
			w.publishStatus()
		case <-ticker.C:
			w.publishStatus()
			w.publishMetrics(cpu.percent(w.spec.Mcu))
		case sh := <-w.reshare:
			if ctx.Err() != nil {
				continue
			}
			want := jobs.TaskShare(sh[1], sh[0], w.opts.Index)
			keep := map[int]bool{}
			for _, id := range want {
				keep[id] = true
			}
			w.mu.Lock()
			countChanged := w.tasksMax != sh[1]
			w.tasksMax = sh[1]
			w.mu.Unlock()
			var gone, added, restarted []int
			for id, r := range tasks {
				switch {
				case !keep[id]:
					gone = append(gone, id)
					r.cancel()
				case countChanged && w.source != nil:
					restarted = append(restarted, id)
					r.cancel()
				}
			}
			for _, id := range append(append([]int(nil), gone...), restarted...) {
				<-tasks[id].done // stopped as on shutdown: durable offsets committed
				delete(tasks, id)
			}
			w.mu.Lock()
			for _, id := range gone {
				delete(w.tasks, id)
				delete(w.recovering, id)
				w.lag.Delete(id)
			}
			for _, id := range restarted {
				w.tasks[id] = &jobs.TaskStatus{ID: id, State: TaskStarting}
			}
			for _, id := range want {
				if _, ok := w.tasks[id]; !ok {
					w.tasks[id] = &jobs.TaskStatus{ID: id, State: TaskStarting}
					w.lag.Store(id, new(atomic.Int64))
					added = append(added, id)
				}
			}
			w.taskIDs = want
			w.mu.Unlock()
			for _, id := range append(added, restarted...) {
				start(id)
			}
			if len(gone)+len(added)+len(restarted) > 0 {
				w.log.Info().Ints("tasks", want).Ints("stopped", gone).Ints("started", added).Ints("restarted", restarted).
					Int("workers", sh[0]).Int("tasks_max", sh[1]).Msg("task share changed")
			}
			w.publishStatus()
		case <-ctxDone:
			ctxDone = nil
			w.mu.Lock()
			w.stopping = true
			w.mu.Unlock()
			w.log.Info().Msg("worker stopping")
			w.publishStatus()
			// No task starts from here on, so waiting for them is safe.
			go func() { wg.Wait(); close(done) }()
			stopped = done
		case <-stopped:
			w.publishStatus()
			w.publishMetrics(cpu.percent(w.spec.Mcu))
			if w.opts.Nats != nil {
				fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = w.opts.Nats.FlushWithContext(fctx)
				cancel()
			}
			w.log.Info().Msg("worker stopped")
			return nil
		}
	}
}

// startTask starts a sink or source task with the connector's task
// configuration, its task.id and the connector's task count now as
// tasks.max (not the configuration's: the control plane decides the count,
// and the autoscaler changes it), bounded by opTimeout; a task whose Start
// fails is stopped.
func (w *Worker) startTask(ctx context.Context, log zerolog.Logger, id int, t interface {
	Start(context.Context, map[string]string) error
	Stop() error
}) error {
	cfg := make(map[string]string, len(w.taskCfg)+2)
	maps.Copy(cfg, w.taskCfg)
	cfg["task.id"] = strconv.Itoa(id)
	w.mu.Lock()
	cfg[connect.KeyTasksMax] = strconv.Itoa(w.tasksMax)
	w.mu.Unlock()
	if role := w.spec.ServiceExecutionRoleArn; role != "" {
		ctx = connect.WithServiceExecutionRole(ctx, role)
	}
	sctx, cancel := context.WithTimeout(ctx, opTimeout)
	err := t.Start(sctx, cfg)
	cancel()
	if err != nil {
		if stopErr := t.Stop(); stopErr != nil {
			log.Warn().Str("error", w.redact.Redact(stopErr.Error())).Msg("stop task after failed start")
		}
		return fmt.Errorf("start task: %w", err)
	}
	return nil
}

// superviseTask runs task id, restarting it with backoff when it fails,
// until ctx is done.
func (w *Worker) superviseTask(ctx context.Context, id int) {
	backoff := w.opts.RestartBackoff
	for {
		start := time.Now()
		err := w.runTask(ctx, id)
		// Whatever the incarnation scheduled for itself (recovery.go) is
		// void from here on.
		w.mu.Lock()
		w.gen[id]++
		w.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("task stopped unexpectedly")
		}
		w.errorsTotal.Add(1)
		trace := w.redact.Redact(err.Error())
		w.taskFailed(id, err)
		w.setTaskState(id, TaskFailed, trace)
		if time.Since(start) > 5*time.Minute {
			backoff = w.opts.RestartBackoff // it ran well for a while: start over
		}
		w.log.Error().Str("error", trace).Int("task", id).Dur("restart_in", backoff).Msg("task failed")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, w.opts.MaxRestartBackoff)
	}
}

// setTaskState records a task's state and wakes the status publisher. A
// FAILED task keeps its trace until it recovers (recovery.go).
func (w *Worker) setTaskState(id int, state, trace string) {
	w.mu.Lock()
	t := w.tasks[id]
	if t == nil { // no longer this worker's (Reshare)
		w.mu.Unlock()
		return
	}
	changed := t.State != state || t.Trace != trace
	t.State, t.Trace = state, trace
	w.mu.Unlock()
	if changed {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

// Status returns the worker's current status.
func (w *Worker) Status() jobs.WorkerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := jobs.WorkerStatus{
		Connector: w.spec.Connector,
		Worker:    w.opts.WorkerID,
		Index:     w.opts.Index,
		Revision:  w.spec.Revision,
		Time:      time.Now().UTC(),
		Tasks:     make([]jobs.TaskStatus, 0, len(w.taskIDs)),
	}
	running, failed := 0, 0
	var msgs []string
	for _, id := range w.taskIDs {
		t := *w.tasks[id]
		st.Tasks = append(st.Tasks, t)
		switch t.State {
		case TaskRunning:
			running++
		case TaskFailed:
			failed++
			msgs = append(msgs, fmt.Sprintf("task %d: %s", id, t.Trace))
		}
	}
	switch {
	case w.stopping:
		st.State = jobs.WorkerStopping
	case failed > 0:
		st.State = jobs.WorkerFailed
		st.Message = strings.Join(msgs, "; ")
	case running == len(w.taskIDs):
		st.State = jobs.WorkerRunning
	default:
		st.State = jobs.WorkerStarting
	}
	return st
}

func (w *Worker) publishStatus() {
	st := w.Status()
	if w.opts.OnStatus != nil {
		w.opts.OnStatus(st)
	}
	w.publish(jobs.StatusSubject(w.spec.Connector, w.opts.WorkerID), st)
}

// Metrics returns the worker's counters now, with the given CPU percentage.
func (w *Worker) Metrics(cpuPercent float64) jobs.Metrics {
	var lag int64
	w.lag.Range(func(_, v any) bool { lag += v.(*atomic.Int64).Load(); return true })
	w.mu.Lock()
	tasks, running := len(w.taskIDs), 0
	for _, id := range w.taskIDs {
		if t := w.tasks[id]; t != nil && t.State == TaskRunning {
			running++
		}
	}
	w.mu.Unlock()
	return jobs.Metrics{
		Connector:    w.spec.Connector,
		Worker:       w.opts.WorkerID,
		Time:         time.Now().UTC(),
		CPUPercent:   cpuPercent,
		Mcu:          w.spec.Mcu,
		Tasks:        tasks,
		TasksRunning: running,
		RecordsIn:    w.recordsIn.Load(),
		RecordsOut:   w.recordsOut.Load(),
		BytesIn:      w.bytesIn.Load(),
		BytesOut:     w.bytesOut.Load(),
		Lag:          lag,
		Errors:       w.errorsTotal.Load(),
	}
}

func (w *Worker) publishMetrics(cpuPercent float64) {
	w.lastCPU.Store(math.Float64bits(cpuPercent))
	w.publish(jobs.MetricsSubject(w.spec.Connector, w.opts.WorkerID), w.Metrics(cpuPercent))
}

// publish sends v as JSON if there is a NATS connection; failures are logged
// and otherwise ignored: NATS never stops the data path.
func (w *Worker) publish(subject string, v any) {
	nc := w.opts.Nats
	if nc == nil {
		return
	}
	b, err := convert.Marshal(v)
	if err != nil {
		w.log.Warn().Err(err).Str("subject", subject).Msg("encode report")
		return
	}
	if err := nc.Publish(subject, b); err != nil {
		w.log.Debug().Err(err).Str("subject", subject).Msg("publish report")
	}
}
