// Package scheduler turns the desired state the API stores into running
// workers and reports back what it observes: the Reconciler renders each
// connector's WorkerSpec, hands it to a Deployer, follows the WorkerStatus
// messages workers publish, and drives the connector's state and its update
// operations.
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Config configures a Reconciler.
type Config struct {
	Store    *store.Store // required
	Conn     *nats.Conn   // required: worker statuses arrive on it
	Deployer Deployer     // required
	Logger   zerolog.Logger
	// NatsURL is handed to workers in their WorkerSpec.
	NatsURL string
	// PluginURL is the base URL (e.g. http://ferry.service.consul:8083) at
	// which deployers download custom plugin files from the Ferry API; the
	// path is plugins.FilePath. Empty: connectors of custom plugins fail,
	// saying the server has none.
	PluginURL string
	// WorkerDefaults are filled in under every connector's configuration
	// (e.g. dev's S3 endpoint and credentials). They may hold secrets.
	WorkerDefaults map[string]string
	// AssumeExecutionRole hands workers each connector's
	// serviceExecutionRoleArn, which connectors calling AWS without
	// credentials of their own assume through STS, as MSK Connect does.
	AssumeExecutionRole bool
	// MetricsInterval is how often workers publish metrics and status
	// (default 5 s); a status older than three intervals is forgotten.
	MetricsInterval time.Duration
	// StartTimeout is how long a creating or updating connector may take to
	// have every worker RUNNING before it fails (default 2 min).
	StartTimeout time.Duration
	// Interval is the periodic reconcile tick (default 2 s).
	Interval time.Duration
	// MaxBackoff caps the retry delay after errors (default 30 s).
	MaxBackoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Changes, if set, carries the names of connectors whose deployment
	// changed (e.g. the Nomad watcher's notices); each one triggers a pass
	// instead of waiting for the next tick.
	Changes <-chan string
}

// Validate reports every problem with the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("store is required"))
	}
	if c.Conn == nil {
		errs = append(errs, errors.New("nats connection is required"))
	}
	if c.Deployer == nil {
		errs = append(errs, errors.New("deployer is required"))
	}
	for name, d := range map[string]time.Duration{
		"metrics interval": c.MetricsInterval, "start timeout": c.StartTimeout,
		"interval": c.Interval, "max backoff": c.MaxBackoff,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.MetricsInterval == 0 {
		c.MetricsInterval = 5 * time.Second
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 2 * time.Minute
	}
	if c.Interval == 0 {
		c.Interval = 2 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Reconciler makes every connector's workers match its record, level-based:
// on every change of the connector and status buckets, on every worker
// status that says something new, and on a periodic tick it looks at
// everything again. It is safe to start at any time, from scratch.
type Reconciler struct {
	cfg     Config
	log     zerolog.Logger
	workers *workerTracker
	kick    chan struct{}

	// Owned by the Run goroutine.
	pending map[string]pendingSince // connector → when it became pending
	retry   map[string]retryState   // connector ("" for the whole pass) → backoff
}

type pendingSince struct {
	state    string
	revision int64
	since    time.Time
}

type retryState struct {
	failures int
	next     time.Time
}

// New checks cfg and returns a Reconciler.
func New(cfg Config) (*Reconciler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scheduler config: %w", err)
	}
	cfg.setDefaults()
	return &Reconciler{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "reconciler").Logger(),
		workers: newWorkerTracker(3 * cfg.MetricsInterval),
		kick:    make(chan struct{}, 1),
		pending: map[string]pendingSince{},
		retry:   map[string]retryState{},
	}, nil
}

// Run reconciles until ctx ends. It returns an error only if it cannot
// start (subscribe or watch); errors while reconciling are logged and
// retried with backoff.
func (r *Reconciler) Run(ctx context.Context) error {
	sub, err := r.cfg.Conn.Subscribe(jobs.StatusSubjectPrefix+">", r.onStatus)
	if err != nil {
		return fmt.Errorf("subscribe to worker status: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	connCh, err := r.cfg.Store.Connectors.Watch(wctx)
	if err != nil {
		return fmt.Errorf("watch connectors: %w", err)
	}
	statusCh, err := r.cfg.Store.Status.Watch(wctx)
	if err != nil {
		return fmt.Errorf("watch connector status: %w", err)
	}
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	r.log.Info().Msg("reconciler started")
	for {
		r.reconcileAll(ctx)
		select {
		case <-ctx.Done():
			r.log.Info().Msg("reconciler stopped")
			return nil
		case <-tick.C:
		case <-connCh:
		case <-statusCh:
		case <-r.kick:
		case <-r.cfg.Changes:
		}
	}
}

// onStatus records a worker status from NATS; a status that says something
// new triggers a pass.
func (r *Reconciler) onStatus(m *nats.Msg) {
	var s jobs.WorkerStatus
	if err := json.Unmarshal(m.Data, &s); err != nil || s.Connector == "" || s.Worker == "" {
		r.log.Debug().Str("subject", m.Subject).Msg("ignoring malformed worker status")
		return
	}
	if r.workers.record(s, r.cfg.Now()) {
		r.wake()
	}
}

func (r *Reconciler) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// reconcileAll is one pass over every connector and every deployment.
func (r *Reconciler) reconcileAll(ctx context.Context) {
	now := r.cfg.Now()
	r.workers.prune(now)
	if !r.due("", now) {
		return
	}
	conns, err := r.cfg.Store.Connectors.List(ctx, "")
	if err != nil {
		r.failed(ctx, "", now, fmt.Errorf("list connectors: %w", err))
		return
	}
	known := map[string]bool{}
	for _, e := range conns {
		known[e.Key] = true
		if !r.due(e.Key, now) {
			continue
		}
		var err error
		if e.Value.Deleting {
			err = r.deleteConnector(ctx, e)
		} else {
			err = r.reconcileConnector(ctx, e, now)
		}
		if err != nil {
			if unavailable(err) {
				// The platform is down or hangs: every other connector
				// would wait out the same timeout. Stop the pass and back
				// off as a whole; connectors keep their state meanwhile.
				r.failed(ctx, "", now, err)
				return
			}
			r.failed(ctx, e.Key, now, err)
			continue
		}
		delete(r.retry, e.Key)
	}
	for name := range r.pending {
		if !known[name] {
			delete(r.pending, name)
		}
	}
	for name := range r.retry {
		if name != "" && !known[name] {
			delete(r.retry, name)
		}
	}
	if err := r.removeOrphans(ctx, known); err != nil {
		r.failed(ctx, "", now, err)
		return
	}
	delete(r.retry, "")
}

// due reports whether key is out of its backoff.
func (r *Reconciler) due(key string, now time.Time) bool {
	rs, ok := r.retry[key]
	return !ok || !now.Before(rs.next)
}

// failed logs err and backs key off exponentially.
func (r *Reconciler) failed(ctx context.Context, key string, now time.Time, err error) {
	if ctx.Err() != nil {
		return
	}
	rs := r.retry[key]
	rs.failures++
	delay := 250 * time.Millisecond << min(rs.failures-1, 16)
	if delay > r.cfg.MaxBackoff {
		delay = r.cfg.MaxBackoff
	}
	rs.next = now.Add(delay)
	r.retry[key] = rs
	ev := r.log.Warn().Err(err).Int("failures", rs.failures).Dur("retry_in", delay)
	if key != "" {
		ev = ev.Str("connector", key)
	}
	ev.Msg("reconcile failed")
}

// removeOrphans removes deployments no connector record asks for.
func (r *Reconciler) removeOrphans(ctx context.Context, known map[string]bool) error {
	deployed, err := r.cfg.Deployer.List(ctx)
	if err != nil {
		return fmt.Errorf("list deployments: %w", err)
	}
	var errs []error
	for _, name := range deployed {
		if known[name] {
			continue
		}
		r.log.Info().Str("connector", name).Msg("removing workers of unknown connector")
		if err := r.cfg.Deployer.Remove(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("remove orphan %q: %w", name, err))
		}
		r.workers.forget(name)
	}
	return errors.Join(errs...)
}

// reconcileConnector deploys one connector and moves its state on.
func (r *Reconciler) reconcileConnector(ctx context.Context, e store.Entry[jobs.Connector], now time.Time) error {
	c := e.Value
	name := e.Key
	se, err := r.cfg.Store.Status.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		// The API writes the status with the record; if it did not get
		// that far, start the connector as created.
		st := jobs.ConnectorStatus{State: jobs.StateCreating, Workers: c.Spec.Capacity.InitialWorkers(), Updated: now}
		if _, err := r.cfg.Store.Status.Create(ctx, name, st); err != nil {
			return fmt.Errorf("create missing status: %w", err)
		}
		r.wake()
		return nil
	}
	if err != nil {
		return fmt.Errorf("get status: %w", err)
	}
	status := se.Value
	if status.Operation != "" {
		// The list this pass works from may predate the update that
		// started this operation (the API writes the record, then the
		// operation, then the status): judge the operation against a
		// record at least as new as the status, or an update could be
		// found complete by the workers of the revision before it.
		fresh, err := r.cfg.Store.Connectors.Get(ctx, name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("get connector: %w", err)
		case fresh.Value.Deleting:
			r.wake()
			return nil
		}
		e, c = fresh, fresh.Value
	}
	workers := status.Workers
	if workers < 1 {
		workers = c.Spec.Capacity.InitialWorkers()
	}
	workers = c.Spec.Capacity.ClampWorkers(workers)

	f := facts{connector: c, status: status, workers: workers, now: now, timeout: r.cfg.StartTimeout}
	// applyErr, when the deployer failed, is returned once the status says
	// what it means, so the connector is retried with backoff.
	var applyErr error
	spec, err := r.renderSpec(ctx, c, workers)
	var plugin *PluginArtifact
	if err == nil {
		plugin, err = r.pluginArtifact(ctx, c)
	}
	switch {
	case errors.Is(err, errInvalid):
		f.invalid = err
	case err != nil:
		return fmt.Errorf("render worker spec: %w", err)
	default:
		d := Deployment{
			Name: name, Arn: c.Arn, Revision: c.RunRevision(), Restarts: c.Restarts,
			Workers: workers, Mcu: c.Spec.Capacity.Mcu(), Autoscaling: c.Spec.Capacity.AutoScaling, Spec: spec,
			Reason: r.operationReason(ctx, name, status.Operation), Plugin: plugin,
		}
		applyErr = r.cfg.Deployer.Apply(ctx, d)
		switch {
		case applyErr == nil:
			obs, err := r.cfg.Deployer.Observe(ctx, name)
			if err != nil {
				return fmt.Errorf("observe deployment: %w", err)
			}
			f.obs = obs
		case permanent(applyErr):
			// Refused: retrying will not help until a person acts, so
			// say so now (FAILED with the refusal) rather than retry in
			// silence; the retries go on, with backoff, and the
			// connector recovers once its workers run.
			f.rejected = errors.New(oneLine(applyErr.Error()))
		case now.Sub(r.pendingSince(name, status, c.Revision, now)) <= r.cfg.StartTimeout:
			// Nomad is down or lost a race: keep the state as it is,
			// unless the connector waited for its workers too long (a
			// state that is not pending has waited for nothing).
			return fmt.Errorf("apply deployment: %w", applyErr)
		default:
			f.deployErr = errors.New(oneLine(applyErr.Error()))
		}
		// Without an observation (IDs nil) every fresh status counts,
		// whichever incarnation sent it.
		f.view = r.workers.view(name, c.RunRevision(), workers, f.obs.IDs, now)
	}
	f.since = r.pendingSince(name, status, c.Revision, now)

	d := decide(f)
	if d.opDone && d.opInfo == nil && f.obs.Deployed && f.obs.Alive > workers {
		// A scale-in (the autoscaler's or a user's) is done when the
		// workers beyond the count have stopped, not when the rest run.
		d.opDone = false
		d.status.Operation = status.Operation
	}
	if d.opDone && status.Operation != "" {
		if err := r.finishOperation(ctx, name, status.Operation, d.opInfo, r.cfg.Now()); err != nil {
			return err
		}
	} else if status.Operation != "" {
		if err := r.progressOperation(ctx, name, status.Operation); err != nil {
			return err
		}
	}
	if !sameStatus(d.status, status) {
		d.status.Updated = now
		if _, err := r.cfg.Store.Status.Update(ctx, name, d.status, se.Revision); err != nil {
			if !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("write status: %w", err)
			}
			// The API or the autoscaler changed the status since this
			// pass read it: not a failure, look again at once.
			r.wake()
		} else {
			ev := r.log.Info().Str("connector", name).Str("state", d.status.State).Int64("revision", c.Revision).Int("workers", workers)
			if sd := d.status.StateDescription; sd != nil {
				ev = ev.Str("code", sd.Code).Str("reason", sd.Message)
			}
			ev.Msg("connector state")
		}
	}
	if applyErr != nil {
		return fmt.Errorf("apply deployment: %w", applyErr)
	}
	return nil
}

// oneLine folds a multi-line error (Nomad's lists its problems one per
// line) into one line for a state description.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// pendingSince returns when the connector entered its current pending
// state at this revision, as this reconciler saw it (a restarted
// reconciler gives workers the whole timeout again).
func (r *Reconciler) pendingSince(name string, st jobs.ConnectorStatus, revision int64, now time.Time) time.Time {
	if st.State != jobs.StateCreating && st.State != jobs.StateUpdating {
		delete(r.pending, name)
		return now
	}
	p, ok := r.pending[name]
	if !ok || p.state != st.State || p.revision != revision {
		p = pendingSince{state: st.State, revision: revision, since: now}
		r.pending[name] = p
	}
	return p.since
}

// operationKey finds the KV key of an operation from its ARN.
func operationKey(name, opArn string) (string, error) {
	a, err := jobs.ParseARN(opArn)
	if err != nil {
		return "", fmt.Errorf("operation of %q: %w", name, err)
	}
	return store.OperationKey(name, a.Sub), nil
}

// progressOperation marks an update operation in progress: the checks are
// done and the workers are being replaced.
func (r *Reconciler) progressOperation(ctx context.Context, name, opArn string) error {
	key, err := operationKey(name, opArn)
	if err != nil {
		r.log.Warn().Err(err).Str("connector", name).Msg("ignoring unreadable operation arn")
		return nil
	}
	_, err = r.cfg.Store.Operations.Modify(ctx, key, false, func(op *store.Operation) error {
		before, _ := json.Marshal(op)
		if op.State == store.OpPending {
			op.State = store.OpInProgress
		}
		if op.State != store.OpInProgress {
			return errUnchanged
		}
		for i := range op.Steps {
			s := &op.Steps[i]
			switch s.Type {
			case store.StepInitializeUpdate, store.StepValidateUpdate:
				if s.State == store.StepPending || s.State == store.StepInProgress {
					s.State = store.StepCompleted
				}
			case store.StepUpdateWorkerSetting, store.StepUpdateConnectorConfiguration:
				if s.State == store.StepPending {
					s.State = store.StepInProgress
				}
			}
		}
		after, _ := json.Marshal(op)
		if string(before) == string(after) {
			return errUnchanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("update operation %s: %w", key, err)
	}
	return nil
}

// finishOperation ends an update operation: UPDATE_COMPLETE when info is
// nil, UPDATE_FAILED with info otherwise.
func (r *Reconciler) finishOperation(ctx context.Context, name, opArn string, info *jobs.StateDescription, now time.Time) error {
	key, err := operationKey(name, opArn)
	if err != nil {
		r.log.Warn().Err(err).Str("connector", name).Msg("ignoring unreadable operation arn")
		return nil
	}
	state := store.OpComplete
	if info != nil {
		state = store.OpFailed
	}
	_, err = r.cfg.Store.Operations.Modify(ctx, key, false, func(op *store.Operation) error {
		if op.State == store.OpComplete || op.State == store.OpFailed {
			return errUnchanged
		}
		op.Finish(state, now, info)
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
	case errors.Is(err, store.ErrNotFound):
		r.log.Warn().Str("connector", name).Str("operation", opArn).Msg("operation record is missing")
	case err != nil:
		return fmt.Errorf("finish operation %s: %w", key, err)
	default:
		r.log.Info().Str("connector", name).Str("operation", opArn).Str("state", state).Msg("operation finished")
	}
	return nil
}

var errUnchanged = errors.New("unchanged")

// deleteConnector stops the workers and then removes every record of the
// connector, the connector record last so a failure is retried.
func (r *Reconciler) deleteConnector(ctx context.Context, e store.Entry[jobs.Connector]) error {
	name := e.Key
	if err := r.cfg.Deployer.Remove(ctx, name); err != nil {
		return fmt.Errorf("remove workers: %w", err)
	}
	r.workers.forget(name)
	if err := r.cfg.Store.Status.Delete(ctx, name, 0); err != nil {
		return fmt.Errorf("delete status: %w", err)
	}
	ops, err := r.cfg.Store.Operations.List(ctx, name+".")
	if err != nil {
		return fmt.Errorf("list operations: %w", err)
	}
	for _, op := range ops {
		if err := r.cfg.Store.Operations.Delete(ctx, op.Key, 0); err != nil {
			return fmt.Errorf("delete operation: %w", err)
		}
	}
	if a, err := jobs.ParseARN(e.Value.Arn); err == nil {
		if err := r.cfg.Store.Tags.Delete(ctx, a.ID, 0); err != nil {
			return fmt.Errorf("delete tags: %w", err)
		}
	}
	if err := r.cfg.Store.Connectors.Delete(ctx, name, e.Revision); err != nil {
		return fmt.Errorf("delete connector record: %w", err)
	}
	delete(r.pending, name)
	r.log.Info().Str("connector", name).Msg("connector deleted")
	return nil
}

// operationReason is the reason recorded on the operation in progress, if
// any ("" when there is none or it cannot be read: it only labels a scale).
func (r *Reconciler) operationReason(ctx context.Context, name, opArn string) string {
	if opArn == "" {
		return ""
	}
	key, err := operationKey(name, opArn)
	if err != nil {
		return ""
	}
	op, err := r.cfg.Store.Operations.Get(ctx, key)
	if err != nil {
		return ""
	}
	return op.Value.Reason
}
