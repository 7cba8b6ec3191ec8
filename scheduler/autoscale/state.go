package autoscale

import "time"

// Phase is where a connector's Policy is.
type Phase int

// Phases.
const (
	Idle Phase = iota
	Scaling
	Cooldown
)

func (p Phase) String() string {
	switch p {
	case Scaling:
		return "scaling"
	case Cooldown:
		return "cooldown"
	}
	return "idle"
}

// Policy is one autoscaled connector's scaling state:
//
//	          Decide: target ≠ workers (Begin)
//	┌──────┐ ─────────────────────────────────▶ ┌─────────┐
//	│ Idle │                                    │ Scaling │ nothing is evaluated
//	└──────┘ ◀─┐                                └─────────┘
//	           │ both cooldowns                    │    ▲
//	           │ elapsed              operation    │    │ Decide: target ≠ workers (Begin),
//	           │                      ended (End)  ▼    │ once that direction's cooldown elapsed
//	           │                                ┌──────────┐
//	           └─────────────────────────────── │ Cooldown │
//	                                            └──────────┘
//
// An operation ends complete, failed, superseded by a user's update, or
// timed out; every way leads to Cooldown.
// While Scaling nothing is evaluated: the operation in flight decides the
// next state. The cooldowns count from when a scale ended, since only then
// do samples describe the new worker count. The clock is always passed in,
// so a test drives it.
type Policy struct {
	phase Phase
	// The scale in flight (Scaling).
	op        string // operation ARN
	opKey     string // operation KV key
	direction Direction
	origin    int
	target    int
	since     time.Time
	// When the last scale of each kind ended.
	lastOut, lastIn time.Time
	// Settings is the connector's effective settings at the last evaluation.
	settings Settings
}

// Phase returns the phase at now: Cooldown turns Idle once both cooldowns
// have elapsed.
func (p *Policy) Phase(now time.Time) Phase {
	if p.phase == Cooldown {
		last := p.lastEnd()
		if !now.Before(last.Add(max(p.settings.ScaleOutCooldown, p.settings.ScaleInCooldown))) {
			p.phase = Idle
		}
	}
	return p.phase
}

// Begin enters Scaling for the operation op taking origin workers to target.
func (p *Policy) Begin(op, opKey string, d Direction, origin, target int, now time.Time) {
	p.phase, p.op, p.opKey, p.direction, p.origin, p.target, p.since = Scaling, op, opKey, d, origin, target, now
}

// End leaves Scaling for Cooldown; the scale counts as ended at end.
func (p *Policy) End(end time.Time) {
	switch p.direction {
	case Out:
		p.lastOut = end
	case In:
		p.lastIn = end
	}
	p.phase, p.op, p.opKey, p.direction = Cooldown, "", "", Hold
}

// lastEnd is when the last scale of either kind ended.
func (p *Policy) lastEnd() time.Time {
	if p.lastIn.After(p.lastOut) {
		return p.lastIn
	}
	return p.lastOut
}

// Evaluate asks Decide at now, with the connector's bounds and band, unless
// a scale is in flight. Samples from before the last scale ended never
// count: they describe another worker count.
func (p *Policy) Evaluate(now time.Time, workers, minW, maxW int, scaleIn, scaleOut float64, w *Window, connector string) (Decision, Load) {
	if p.Phase(now) == Scaling {
		return Decision{Target: workers, Direction: Hold, Reason: "a scale is in flight"}, Load{}
	}
	since := now.Add(-p.settings.Window)
	if last := p.lastEnd(); last.After(since) {
		since = last
	}
	load := w.Load(connector, since, now, p.settings.StaleAfter)
	return Decide(Input{
		Workers: workers, Min: minW, Max: maxW,
		ScaleInPercent: scaleIn, ScaleOutPercent: scaleOut,
		Load: load, LastScaleOut: p.lastOut, LastScaleIn: p.lastIn, Now: now,
		MaxStep: p.settings.MaxStep, ScaleOutCooldown: p.settings.ScaleOutCooldown, ScaleInCooldown: p.settings.ScaleInCooldown,
	}), load
}
