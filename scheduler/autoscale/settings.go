// Package autoscale grows and shrinks autoscaled connectors' worker counts
// with their CPU load. Workers publish jobs.Metrics on ferry.metrics.>; the
// Scaler keeps a window of samples per connector and worker, and at every
// evaluation interval asks the pure strategy (Decide) for a target count
// within minWorkerCount..maxWorkerCount. A decision becomes the connector
// status' worker count plus an UPDATE_WORKER_SETTING operation; the
// reconciler deploys the count and finishes the operation when the workers
// run. Only the leader runs a Scaler (it runs next to the reconciler).
package autoscale

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/jobs"
)

// Per-connector override keys, read from the connector configuration. They
// are Ferry's own (MSK Connect has no such settings); connectors ignore
// keys they do not know, so these reach workers harmlessly.
const (
	KeyPrefix           = "ferry.autoscaler."
	KeyWindow           = KeyPrefix + "window.ms"
	KeyScaleOutCooldown = KeyPrefix + "scale.out.cooldown.ms"
	KeyScaleInCooldown  = KeyPrefix + "scale.in.cooldown.ms"
	KeyMaxStep          = KeyPrefix + "max.step"
)

// Settings tune the scaler. Zero values take the defaults below; the server
// sets them, and a connector may override Window, the cooldowns and MaxStep
// through its configuration (Key* constants).
type Settings struct {
	// EvaluationInterval is how often every autoscaled connector is
	// evaluated (default 30 s: six 5-second metric samples per worker, so a
	// sustained crossing is acted on within a minute). Server-wide only.
	EvaluationInterval time.Duration
	// Window is how far back samples count towards the mean CPU (default
	// 30 s, one evaluation interval: a window no longer than the interval
	// guarantees that a sustained crossing is seen whole by the second
	// evaluation after it; calm comes from cooldowns and the band instead).
	Window time.Duration
	// ScaleOutCooldown is how long after a scale finished (its workers
	// running) no scale-out happens (default 2 min: long enough for new
	// workers to start, rebalance and fill a window with post-scale load).
	ScaleOutCooldown time.Duration
	// ScaleInCooldown is how long after a scale finished no scale-in
	// happens (default 5 min: removing capacity can wait, and undoing a
	// wrong scale-in costs a rebalance and lag).
	ScaleInCooldown time.Duration
	// MaxStep caps how many workers one decision adds or removes (default
	// 4: proportional steps reach a large target in few rebalances, yet one
	// bad sample cannot multiply a connector).
	MaxStep int
	// StaleAfter is how long after its last sample a worker no longer counts
	// as live (default 15 s, three 5-second metrics intervals). A worker
	// that stopped reporting is left out of the mean, never taken as idle.
	StaleAfter time.Duration
	// ScaleTimeout is how long a scale may take for its workers to run
	// before its operation fails and the count goes back (default 5 min).
	ScaleTimeout time.Duration
}

// Defaults.
const (
	DefaultEvaluationInterval = 30 * time.Second
	DefaultWindow             = 30 * time.Second
	DefaultScaleOutCooldown   = 2 * time.Minute
	DefaultScaleInCooldown    = 5 * time.Minute
	DefaultMaxStep            = 4
	DefaultStaleAfter         = 15 * time.Second
	DefaultScaleTimeout       = 5 * time.Minute
)

// DefaultSettings returns the defaults.
func DefaultSettings() Settings {
	var s Settings
	s.setDefaults()
	return s
}

func (s *Settings) setDefaults() {
	if s.EvaluationInterval == 0 {
		s.EvaluationInterval = DefaultEvaluationInterval
	}
	if s.Window == 0 {
		s.Window = DefaultWindow
	}
	if s.ScaleOutCooldown == 0 {
		s.ScaleOutCooldown = DefaultScaleOutCooldown
	}
	if s.ScaleInCooldown == 0 {
		s.ScaleInCooldown = DefaultScaleInCooldown
	}
	if s.MaxStep == 0 {
		s.MaxStep = DefaultMaxStep
	}
	if s.StaleAfter == 0 {
		s.StaleAfter = DefaultStaleAfter
	}
	if s.ScaleTimeout == 0 {
		s.ScaleTimeout = DefaultScaleTimeout
	}
}

// Validate reports every problem with the settings (zero means default).
func (s Settings) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{
		"evaluation interval": s.EvaluationInterval, "window": s.Window,
		"scale-out cooldown": s.ScaleOutCooldown, "scale-in cooldown": s.ScaleInCooldown,
		"stale after": s.StaleAfter, "scale timeout": s.ScaleTimeout,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("autoscaler %s must not be negative", name))
		}
	}
	if s.MaxStep < 0 {
		errs = append(errs, errors.New("autoscaler max step must not be negative"))
	}
	return errors.Join(errs...)
}

// WithOverrides returns s with the connector configuration's ferry.autoscaler.*
// keys applied. Invalid values are skipped (the server setting stays) and
// reported together in the error; unknown ferry.autoscaler.* keys are
// reported too, so a typo does not go unnoticed.
func (s Settings) WithOverrides(cfg map[string]string) (Settings, error) {
	var errs []error
	ms := func(key string, dst *time.Duration) {
		v, ok := cfg[key]
		if !ok {
			return
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 || n > int64(24*time.Hour/time.Millisecond) {
			errs = append(errs, fmt.Errorf("%s: must be milliseconds between 0 and 86400000, got %q", key, v))
			return
		}
		*dst = time.Duration(n) * time.Millisecond
	}
	ms(KeyWindow, &s.Window)
	ms(KeyScaleOutCooldown, &s.ScaleOutCooldown)
	ms(KeyScaleInCooldown, &s.ScaleInCooldown)
	if v, ok := cfg[KeyMaxStep]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s: must be a whole number ≥ 1, got %q", KeyMaxStep, v))
		} else {
			s.MaxStep = n
		}
	}
	if s.Window == 0 {
		errs = append(errs, fmt.Errorf("%s: must be greater than 0", KeyWindow))
		s.Window = DefaultWindow
	}
	var unknown []string
	for k := range cfg {
		if strings.HasPrefix(k, KeyPrefix) && k != KeyWindow && k != KeyScaleOutCooldown && k != KeyScaleInCooldown && k != KeyMaxStep {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("%s: unknown autoscaler setting (known: %s, %s, %s, %s)", k, KeyWindow, KeyScaleOutCooldown, KeyScaleInCooldown, KeyMaxStep))
	}
	return s, errors.Join(errs...)
}

// ValidateConfig reports the problems of a connector configuration's
// ferry.autoscaler.* keys, for an API that wants to reject them up front.
func ValidateConfig(cfg map[string]string) error {
	_, err := DefaultSettings().WithOverrides(cfg)
	return err
}

// ConfigProblems is ValidateConfig as field errors (Field is the key), for
// the API to refuse bad overrides at create and update time.
func ConfigProblems(cfg map[string]string) []jobs.FieldError {
	err := ValidateConfig(cfg)
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]jobs.FieldError, 0, len(errs))
	for _, e := range errs {
		key, rule, ok := strings.Cut(e.Error(), ": ")
		if !ok {
			key, rule = KeyPrefix, e.Error()
		}
		out = append(out, jobs.FieldError{Field: key, Rule: rule})
	}
	return out
}
