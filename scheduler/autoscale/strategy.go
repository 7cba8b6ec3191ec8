package autoscale

import (
	"fmt"
	"math"
	"time"
)

// Load is a connector's CPU over the window, as the Window measured it.
type Load struct {
	// CPU is the mean cpu_percent over the live workers (each worker's mean
	// over the window first, so a worker that reports more often does not
	// weigh more).
	CPU float64
	// Reporting is how many live workers have samples in the window; 0
	// means no data.
	Reporting int
}

// Direction is which way a decision scales.
type Direction int

// Directions.
const (
	Hold Direction = iota
	Out
	In
)

func (d Direction) String() string {
	switch d {
	case Out:
		return "scale-out"
	case In:
		return "scale-in"
	}
	return "hold"
}

// Input is everything the strategy looks at.
type Input struct {
	Workers  int // current worker count
	Min, Max int // minWorkerCount, maxWorkerCount
	// ScaleInPercent and ScaleOutPercent are the band edges.
	ScaleInPercent, ScaleOutPercent float64
	Load                            Load
	// LastScaleOut and LastScaleIn are when the last scale of each kind
	// finished (zero: never).
	LastScaleOut, LastScaleIn time.Time
	Now                       time.Time
	// MaxStep, ScaleOutCooldown and ScaleInCooldown come from Settings.
	MaxStep                           int
	ScaleOutCooldown, ScaleInCooldown time.Duration
}

// Decision is the strategy's answer.
type Decision struct {
	Target    int
	Direction Direction
	Reason    string
}

// Decide is the scaling strategy, a pure function. It is the Nomad
// Autoscaler's target-value strategy applied to a band: when the mean CPU
// crosses a band edge, the target is the count that brings it back to that
// edge, target = ceil(workers × cpu / edge), moving at least one and at most
// MaxStep workers and never leaving Min..Max. A scale-out takes the
// ceiling (enough workers to get below the scale-out edge); a scale-in the
// floor of workers × cpu / scale-in edge (few enough to get back above the
// scale-in edge), so both land inside the band and a scale-in does not
// become a staircase of scale-ins. Calm comes from:
//
//   - cooldowns, measured from the last scale of either kind;
//   - no data, no decision; and no scale-in unless every worker reports (a
//     worker that stopped reporting is not idle, it is unknown);
//   - a scale-in never removes so much that the predicted CPU
//     (cpu × workers / target) would reach the middle of the band, so it
//     cannot cause the next scale-out.
func Decide(in Input) Decision {
	hold := func(format string, a ...any) Decision {
		return Decision{Target: in.Workers, Direction: Hold, Reason: fmt.Sprintf(format, a...)}
	}
	if in.Max < in.Min {
		return hold("invalid bounds %d..%d", in.Min, in.Max)
	}
	if in.Workers < in.Min {
		return Decision{Target: in.Min, Direction: Out, Reason: fmt.Sprintf("%d workers is below the minimum %d", in.Workers, in.Min)}
	}
	if in.Workers > in.Max {
		return Decision{Target: in.Max, Direction: In, Reason: fmt.Sprintf("%d workers is above the maximum %d", in.Workers, in.Max)}
	}
	if in.Load.Reporting <= 0 || math.IsNaN(in.Load.CPU) {
		return hold("no metrics in the window")
	}
	cpu := in.Load.CPU
	step := in.MaxStep
	if step < 1 {
		step = 1
	}
	last := in.LastScaleOut
	if in.LastScaleIn.After(last) {
		last = in.LastScaleIn
	}
	switch {
	case cpu > in.ScaleOutPercent:
		if in.Workers >= in.Max {
			return hold("cpu %.1f%% is above the scale-out %.0f%% but %d workers is the maximum", cpu, in.ScaleOutPercent, in.Max)
		}
		if until := last.Add(in.ScaleOutCooldown); !last.IsZero() && in.Now.Before(until) {
			return hold("cpu %.1f%% is above the scale-out %.0f%%; cooling down for %s", cpu, in.ScaleOutPercent, until.Sub(in.Now).Round(time.Second))
		}
		want := int(math.Ceil(float64(in.Workers) * cpu / in.ScaleOutPercent))
		target := min(max(want, in.Workers+1), in.Workers+step, in.Max)
		return Decision{Target: target, Direction: Out, Reason: fmt.Sprintf(
			"cpu %.1f%% over %d workers is above the scale-out %.0f%%: ceil(%d × %.1f / %.0f) = %d workers%s",
			cpu, in.Load.Reporting, in.ScaleOutPercent, in.Workers, cpu, in.ScaleOutPercent, want, capped(want, target))}
	case cpu < in.ScaleInPercent:
		if in.Workers <= in.Min {
			return hold("cpu %.1f%% is below the scale-in %.0f%% but %d workers is the minimum", cpu, in.ScaleInPercent, in.Min)
		}
		if in.Load.Reporting < in.Workers {
			return hold("cpu %.1f%% is below the scale-in %.0f%% but only %d of %d workers report; no scale-in on partial data",
				cpu, in.ScaleInPercent, in.Load.Reporting, in.Workers)
		}
		if until := last.Add(in.ScaleInCooldown); !last.IsZero() && in.Now.Before(until) {
			return hold("cpu %.1f%% is below the scale-in %.0f%%; cooling down for %s", cpu, in.ScaleInPercent, until.Sub(in.Now).Round(time.Second))
		}
		// The fewest workers that bring the CPU back up to the edge (floor,
		// where a scale-out takes the ceiling), but never so few that it
		// would pass the band's middle.
		load := float64(in.Workers) * cpu
		want := max(int(math.Floor(load/in.ScaleInPercent)), 1)
		mid := (in.ScaleInPercent + in.ScaleOutPercent) / 2
		if load/float64(want) >= mid {
			want = int(math.Floor(load/mid)) + 1
		}
		if want >= in.Workers {
			return hold("cpu %.1f%% is below the scale-in %.0f%% but %d workers would run at %.1f%%, past the band's middle %.0f%%",
				cpu, in.ScaleInPercent, in.Workers-1, load/float64(in.Workers-1), mid)
		}
		target := max(want, in.Workers-step, in.Min)
		return Decision{Target: target, Direction: In, Reason: fmt.Sprintf(
			"cpu %.1f%% over %d workers is below the scale-in %.0f%%: %d workers would run at %.1f%%%s",
			cpu, in.Load.Reporting, in.ScaleInPercent, target, cpu*float64(in.Workers)/float64(target), capped(want, target))}
	}
	return hold("cpu %.1f%% is within %.0f%%..%.0f%%", cpu, in.ScaleInPercent, in.ScaleOutPercent)
}

func capped(want, target int) string {
	if want == target {
		return ""
	}
	return fmt.Sprintf(" (capped to %d by the step limit and bounds)", target)
}
