package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// ReasonPrefix starts the Reason of every operation the scaler records, so
// a scaler that starts later (a new leader) recognises its predecessor's
// operations and cooldowns.
const ReasonPrefix = "autoscaler: "

// Codes of a scale operation's errorInfo.
const (
	CodeScaleTimeout = "ScaleTimeout"
	CodeSuperseded   = "Superseded"
)

// Config configures a Scaler.
type Config struct {
	Store    *store.Store // required
	Conn     *nats.Conn   // required: metrics arrive on it
	Settings Settings     // zero fields take the defaults
	Logger   zerolog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NewID returns a fresh operation id (default a random UUID).
	NewID func() string
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
	if err := c.Settings.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Scaler evaluates every autoscaled connector at each evaluation interval
// and records its decisions: the connector status' Workers and Operation,
// and an UPDATE_WORKER_SETTING operation. The reconciler then deploys the
// count (local executor or Nomad scale API alike) and finishes the
// operation when the target count of workers runs and no more are alive.
// Run it only where the reconciler runs (the leader).
type Scaler struct {
	cfg    Config
	log    zerolog.Logger
	window *Window

	mu       sync.Mutex // guards policies (Run's goroutine and tests)
	policies map[string]*Policy
	warned   map[string]string // connector → last override problem logged
}

// New checks cfg and returns a Scaler.
func New(cfg Config) (*Scaler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("autoscaler config: %w", err)
	}
	cfg.Settings.setDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = uuid.NewString
	}
	return &Scaler{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("component", "autoscaler").Logger(),
		window:   NewWindow(),
		policies: map[string]*Policy{},
		warned:   map[string]string{},
	}, nil
}

// Settings returns the server-wide settings in effect (defaults filled in).
func (s *Scaler) Settings() Settings { return s.cfg.Settings }

// Run subscribes to the workers' metrics and evaluates every interval until
// ctx ends. It returns an error only if it cannot subscribe.
func (s *Scaler) Run(ctx context.Context) error {
	sub, err := s.cfg.Conn.Subscribe(jobs.MetricsSubjectPrefix+">", s.onMetrics)
	if err != nil {
		return fmt.Errorf("subscribe to worker metrics: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	tick := time.NewTicker(s.cfg.Settings.EvaluationInterval)
	defer tick.Stop()
	s.log.Info().Dur("interval", s.cfg.Settings.EvaluationInterval).Dur("window", s.cfg.Settings.Window).Msg("autoscaler started")
	for {
		select {
		case <-ctx.Done():
			s.log.Info().Msg("autoscaler stopped")
			return nil
		case <-tick.C:
			s.Evaluate(ctx)
		}
	}
}

// onMetrics records one worker's metrics message.
func (s *Scaler) onMetrics(m *nats.Msg) {
	var mt jobs.Metrics
	if err := json.Unmarshal(m.Data, &mt); err != nil || mt.Connector == "" || mt.Worker == "" {
		s.log.Debug().Str("subject", m.Subject).Msg("ignoring malformed metrics")
		return
	}
	s.window.Add(mt, s.cfg.Now())
}

// Evaluate is one pass over every connector; Run calls it every interval.
// Errors are logged; the next pass tries again.
func (s *Scaler) Evaluate(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	conns, err := s.cfg.Store.Connectors.List(ctx, "")
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("list connectors")
		}
		return
	}
	autoscaled := map[string]bool{}
	for _, e := range conns {
		if e.Value.Deleting || e.Value.Spec.Capacity.AutoScaling == nil {
			s.abandon(ctx, e.Key, now)
			continue
		}
		autoscaled[e.Key] = true
		if err := s.evaluate(ctx, e.Key, e.Value, now); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Str("connector", e.Key).Msg("autoscale evaluation failed")
		}
	}
	for name := range s.policies {
		if !autoscaled[name] {
			delete(s.policies, name)
			delete(s.warned, name)
		}
	}
	s.window.Retain(func(c string) bool { return autoscaled[c] })
}

// abandon finishes the scale in flight of a connector that is no longer
// autoscaled (switched to provisioned, or being deleted), so its operation
// does not stay in progress.
func (s *Scaler) abandon(ctx context.Context, name string, now time.Time) {
	p := s.policies[name]
	if p == nil || p.Phase(now) != Scaling {
		return
	}
	var st jobs.ConnectorStatus
	if se, err := s.cfg.Store.Status.Get(ctx, name); err == nil {
		st = se.Value
	} else if !errors.Is(err, store.ErrNotFound) {
		s.log.Warn().Err(err).Str("connector", name).Msg("get status")
		return
	}
	if err := s.follow(ctx, name, p, st, now); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Str("connector", name).Msg("finish the scale of a connector no longer autoscaled")
	}
}

// PolicyPhase reports the phase of a connector's policy (Idle when unknown).
func (s *Scaler) PolicyPhase(connector string) Phase {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.policies[connector]; p != nil {
		return p.Phase(s.cfg.Now())
	}
	return Idle
}

// evaluate looks at one autoscaled connector.
func (s *Scaler) evaluate(ctx context.Context, name string, c jobs.Connector, now time.Time) error {
	as := c.Spec.Capacity.AutoScaling
	se, err := s.cfg.Store.Status.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the reconciler creates it
	}
	if err != nil {
		return fmt.Errorf("get status: %w", err)
	}
	st := se.Value
	p := s.policies[name]
	if p == nil {
		if p, err = s.recoverPolicy(ctx, name, c); err != nil {
			return err
		}
		s.policies[name] = p
	}
	settings, oerr := s.cfg.Settings.WithOverrides(c.Spec.ConnectorConfiguration)
	if oerr != nil && s.warned[name] != oerr.Error() {
		s.warned[name] = oerr.Error()
		s.log.Warn().Err(oerr).Str("connector", name).Msg("ignoring invalid autoscaler overrides")
	}
	p.settings = settings
	s.window.Trim(name, now.Add(-max(settings.Window, settings.StaleAfter)))

	if p.Phase(now) == Scaling {
		if err := s.follow(ctx, name, p, st, now); err != nil {
			return err
		}
		if p.Phase(now) == Scaling {
			return nil
		}
	}
	if st.State != jobs.StateRunning || st.Operation != "" {
		return nil // creating, updating by a user, failed: not ours to touch
	}
	current := st.Workers
	if current < 1 {
		current = c.Spec.Capacity.InitialWorkers()
	}
	scaleIn, scaleOut := policyPercents(as)
	d, load := p.Evaluate(now, current, as.MinWorkerCount, as.MaxWorkerCount, scaleIn, scaleOut, s.window, name)
	if d.Direction == Hold || d.Target == current {
		s.log.Debug().Str("connector", name).Float64("cpu", load.CPU).Int("reporting", load.Reporting).Int("workers", current).Str("reason", d.Reason).Msg("autoscale hold")
		return nil
	}
	return s.scale(ctx, name, c, current, d, load, p, now)
}

// policyPercents returns the band, with MSK Connect's defaults (20 % and
// 80 %) where a policy is missing.
func policyPercents(as *jobs.AutoScaling) (scaleIn, scaleOut float64) {
	scaleIn, scaleOut = 20, 80
	if as.ScaleInPolicy != nil && as.ScaleInPolicy.CpuUtilizationPercentage > 0 {
		scaleIn = float64(as.ScaleInPolicy.CpuUtilizationPercentage)
	}
	if as.ScaleOutPolicy != nil && as.ScaleOutPolicy.CpuUtilizationPercentage > 0 {
		scaleOut = float64(as.ScaleOutPolicy.CpuUtilizationPercentage)
	}
	return scaleIn, scaleOut
}

var errRaced = errors.New("the connector changed since it was evaluated")

// scale records a decision: the operation first, then the status (only if
// the connector is still RUNNING at the count that was evaluated, with no
// update in progress), so the reconciler never points at a missing record.
func (s *Scaler) scale(ctx context.Context, name string, c jobs.Connector, current int, d Decision, load Load, p *Policy, now time.Time) error {
	ca, err := jobs.ParseARN(c.Arn)
	if err != nil {
		return fmt.Errorf("connector arn: %w", err)
	}
	id := s.cfg.NewID()
	opArn := jobs.ARN{Region: ca.Region, Account: ca.Account, Kind: jobs.KindConnectorOperation, Name: ca.Name, ID: ca.ID, Sub: id}.String()
	key := store.OperationKey(name, id)
	capacity := c.Spec.Capacity
	origin, target := capacity, capacity
	op := store.Operation{
		Arn: opArn, ID: id, ConnectorArn: c.Arn, ConnectorName: name,
		Type: store.OpUpdateWorkerSetting, State: store.OpInProgress,
		Steps: []store.Step{
			{Type: store.StepInitializeUpdate, State: store.StepCompleted},
			{Type: store.StepValidateUpdate, State: store.StepCompleted},
			{Type: store.StepUpdateWorkerSetting, State: store.StepInProgress},
			{Type: store.StepFinalizeUpdate, State: store.StepPending},
		},
		TargetRevision: c.RunRevision(),
		OriginCapacity: &origin, TargetCapacity: &target,
		OriginWorkers: current, TargetWorkers: d.Target,
		Reason:       fmt.Sprintf("%s%s from %d to %d workers: %s", ReasonPrefix, d.Direction, current, d.Target, d.Reason),
		CreationTime: now.UTC(),
	}
	if _, err := s.cfg.Store.Operations.Create(ctx, key, op); err != nil {
		return fmt.Errorf("store scale operation: %w", err)
	}
	_, err = s.cfg.Store.Status.Modify(ctx, name, false, func(st *jobs.ConnectorStatus) error {
		if st.State != jobs.StateRunning || st.Operation != "" || (st.Workers != current && st.Workers >= 1) {
			return errRaced
		}
		st.Workers = d.Target
		st.Operation = opArn
		st.Updated = now.UTC()
		return nil
	})
	if err != nil {
		if derr := s.cfg.Store.Operations.Delete(ctx, key, 0); derr != nil {
			s.log.Warn().Err(derr).Str("connector", name).Str("operation", id).Msg("cannot remove an unused scale operation")
		}
		if errors.Is(err, errRaced) {
			s.log.Info().Str("connector", name).Msg("connector changed while evaluating; not scaling")
			return nil
		}
		return fmt.Errorf("store scaled status: %w", err)
	}
	p.Begin(opArn, key, d.Direction, current, d.Target, now)
	s.log.Info().Str("connector", name).Str("operation", id).Str("direction", d.Direction.String()).
		Int("from", current).Int("to", d.Target).Float64("cpu", load.CPU).Int("reporting", load.Reporting).
		Str("reason", d.Reason).Msg("scaling connector")
	return nil
}

// follow checks the scale in flight: finished by the reconciler, replaced
// by a user's update, or out of time.
func (s *Scaler) follow(ctx context.Context, name string, p *Policy, st jobs.ConnectorStatus, now time.Time) error {
	oe, err := s.cfg.Store.Operations.Get(ctx, p.opKey)
	if errors.Is(err, store.ErrNotFound) {
		p.End(now)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get scale operation: %w", err)
	}
	op := oe.Value
	switch {
	case op.State == store.OpComplete || op.State == store.OpFailed:
		end := now
		if op.EndTime != nil && !op.EndTime.After(now) {
			end = *op.EndTime
		}
		p.End(end)
		s.log.Info().Str("connector", name).Str("operation", op.ID).Str("state", op.State).Int("workers", op.TargetWorkers).Msg("scale finished")
		return nil
	case st.Operation != p.op:
		// A user's update took over the status; it deploys whatever count
		// the status holds, so the scale happened if the count stayed.
		var info *jobs.StateDescription
		state := store.OpComplete
		if st.Workers != p.target {
			state = store.OpFailed
			info = &jobs.StateDescription{Code: CodeSuperseded, Message: "superseded by another update of the connector: " + st.Operation}
		}
		if err := s.finishOp(ctx, p.opKey, state, info, now); err != nil {
			return err
		}
		p.End(now)
		return nil
	case now.Sub(p.since) > p.settings.ScaleTimeout:
		msg := fmt.Sprintf("%d workers did not all run within %s; back to %d workers", p.target, p.settings.ScaleTimeout, p.origin)
		if err := s.finishOp(ctx, p.opKey, store.OpFailed, &jobs.StateDescription{Code: CodeScaleTimeout, Message: msg}, now); err != nil {
			return err
		}
		if _, err := s.cfg.Store.Status.Modify(ctx, name, false, func(st *jobs.ConnectorStatus) error {
			if st.Operation != p.op {
				return errRaced
			}
			st.Operation = ""
			st.Workers = p.origin
			st.Updated = now.UTC()
			return nil
		}); err != nil && !errors.Is(err, errRaced) {
			return fmt.Errorf("revert timed-out scale: %w", err)
		}
		s.log.Warn().Str("connector", name).Str("operation", op.ID).Str("reason", msg).Msg("scale timed out")
		p.End(now)
	}
	return nil
}

func (s *Scaler) finishOp(ctx context.Context, key, state string, info *jobs.StateDescription, now time.Time) error {
	_, err := s.cfg.Store.Operations.Modify(ctx, key, false, func(op *store.Operation) error {
		if op.State == store.OpComplete || op.State == store.OpFailed {
			return errRaced
		}
		op.Finish(state, now.UTC(), info)
		return nil
	})
	if err != nil && !errors.Is(err, errRaced) && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("finish scale operation: %w", err)
	}
	return nil
}

// recoverPolicy rebuilds a connector's policy from its operations, so a new
// leader keeps its predecessor's cooldowns and follows its scale in flight.
func (s *Scaler) recoverPolicy(ctx context.Context, name string, c jobs.Connector) (*Policy, error) {
	p := &Policy{settings: s.cfg.Settings}
	ops, err := s.cfg.Store.Operations.List(ctx, name+".")
	if err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	for _, e := range ops {
		op := e.Value
		if op.ConnectorArn != c.Arn || op.Type != store.OpUpdateWorkerSetting || !strings.HasPrefix(op.Reason, ReasonPrefix) {
			continue
		}
		dir := Out
		if op.TargetWorkers < op.OriginWorkers {
			dir = In
		}
		if op.State != store.OpComplete && op.State != store.OpFailed {
			// In flight, or left behind when a user's update took the
			// status over: follow finishes it either way.
			p.Begin(op.Arn, e.Key, dir, op.OriginWorkers, op.TargetWorkers, op.CreationTime)
			continue
		}
		if op.EndTime == nil {
			continue
		}
		if dir == Out && op.EndTime.After(p.lastOut) {
			p.lastOut = *op.EndTime
		}
		if dir == In && op.EndTime.After(p.lastIn) {
			p.lastIn = *op.EndTime
		}
	}
	if p.phase != Scaling && !p.lastEnd().IsZero() {
		p.phase = Cooldown
	}
	return p, nil
}
