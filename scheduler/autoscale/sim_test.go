package autoscale

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
)

// simConnector is a connector whose total demand (in percent of one
// worker) is spread over its running workers; each publishes a CPU sample
// every metrics interval. New workers start after startDelay.
type simConnector struct {
	workers    int // asked for
	running    int // publishing
	gen        int // worker incarnation generation, for ids
	startAt    time.Time
	startDelay time.Duration
}

type scaleEvent struct {
	at       time.Time
	from, to int
	reason   string
}

// runSim drives a Policy and a Window with a simulated clock over demand,
// evaluating every interval, and returns the scale decisions.
func runSim(t *testing.T, settings Settings, start, minW, maxW int, scaleIn, scaleOut float64, total time.Duration, demand func(time.Duration) float64, onEval func(at time.Duration, workers int, l Load)) []scaleEvent {
	t.Helper()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const metricsEvery = 5 * time.Second
	w := NewWindow()
	p := &Policy{settings: settings}
	c := &simConnector{workers: start, running: start, startDelay: 12 * time.Second}
	var events []scaleEvent
	for el := time.Duration(0); el <= total; el += time.Second {
		now := t0.Add(el)
		// Workers come up (or go) once the deployer has done its part.
		if c.running != c.workers && !now.Before(c.startAt) {
			c.running = c.workers
			c.gen++
		}
		if p.Phase(now) == Scaling && c.running == p.target {
			p.End(now)
		}
		if el%metricsEvery == 0 {
			per := math.Min(100, demand(el)/float64(c.running))
			for i := 0; i < c.running; i++ {
				w.Add(jobs.Metrics{Connector: "c", Worker: fmt.Sprintf("w%d-%d", i, c.gen), CPUPercent: per}, now)
			}
		}
		if el > 0 && el%settings.EvaluationInterval == 0 {
			w.Trim("c", now.Add(-time.Hour))
			d, l := p.Evaluate(now, c.workers, minW, maxW, scaleIn, scaleOut, w, "c")
			if onEval != nil {
				onEval(el, c.workers, l)
			}
			if d.Direction != Hold && d.Target != c.workers {
				events = append(events, scaleEvent{at: now, from: c.workers, to: d.Target, reason: d.Reason})
				p.Begin("op", "key", d.Direction, c.workers, d.Target, now)
				c.workers = d.Target
				if d.Target < c.running {
					c.running, c.gen = d.Target, c.gen+1 // stopping is quick
				} else {
					c.startAt = now.Add(c.startDelay)
				}
			}
		}
	}
	return events
}

func TestSimulatedLoadProfile(t *testing.T) {
	s := DefaultSettings()
	const (
		minW, maxW         = 1, 8
		scaleIn, scaleOut  = 20.0, 80.0
		stepAt             = 3*time.Minute + 5*time.Second // a sustained crossing, between evaluations
		rampUpAt, rampUpTo = 6 * time.Minute, 16 * time.Minute
		spikeAt            = 30 * time.Minute
		rampDownAt         = 40 * time.Minute
		rampDownTo         = 50 * time.Minute
		oscillateAt        = 62 * time.Minute
		end                = 90 * time.Minute
	)
	demand := func(el time.Duration) float64 {
		lerp := func(a, b float64, from, to time.Duration) float64 {
			return a + (b-a)*float64(el-from)/float64(to-from)
		}
		switch {
		case el < stepAt:
			return 60 // one worker at 60 %
		case el < rampUpAt:
			return 95 // crosses 80 % and stays there
		case el < rampUpTo:
			return lerp(95, 450, rampUpAt, rampUpTo)
		case el >= spikeAt && el < spikeAt+10*time.Second:
			return 900 // a 10-second spike
		case el < rampDownAt:
			return 450 // plateau
		case el < rampDownTo:
			return lerp(450, 30, rampDownAt, rampDownTo)
		case el < oscillateAt:
			return 30
		default:
			// One worker oscillating around the scale-out edge: 80 % ± 6.
			return 80 + 6*math.Sin(2*math.Pi*float64(el-oscillateAt)/float64(70*time.Second))
		}
	}
	countAt := map[time.Duration]int{}
	events := runSim(t, s, minW, minW, maxW, scaleIn, scaleOut, end, demand, func(at time.Duration, workers int, _ Load) {
		countAt[at] = workers
	})
	for _, e := range events {
		t.Logf("%s: %d → %d: %s", e.at.Format("15:04:05"), e.from, e.to, e.reason)
	}
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(e scaleEvent) time.Duration { return e.at.Sub(t0) }
	if len(events) == 0 {
		t.Fatal("never scaled")
	}

	// Reaction: the first scale-out within two evaluation intervals of the
	// sustained crossing.
	if first := events[0]; first.to <= first.from || at(first) < stepAt || at(first) > stepAt+2*s.EvaluationInterval {
		t.Fatalf("first scale %d → %d at %s; want a scale-out within %s of %s", first.from, first.to, at(first), 2*s.EvaluationInterval, stepAt)
	}
	var prev scaleEvent
	for i, e := range events {
		if e.to < minW || e.to > maxW {
			t.Fatalf("scaled to %d outside %d..%d", e.to, minW, maxW)
		}
		if d := e.to - e.from; d > s.MaxStep || -d > s.MaxStep {
			t.Fatalf("step %d → %d exceeds %d", e.from, e.to, s.MaxStep)
		}
		// Up while the load rises or holds, down only once it falls.
		if at(e) < rampDownAt && e.to < e.from {
			t.Fatalf("scale-in %d → %d at %s before the load fell", e.from, e.to, at(e))
		}
		if at(e) >= rampDownAt && at(e) < oscillateAt && e.to > e.from {
			t.Fatalf("scale-out %d → %d at %s while the load fell", e.from, e.to, at(e))
		}
		if at(e) >= spikeAt && at(e) < rampDownAt {
			t.Fatalf("scaled %d → %d at %s on a 10-second spike", e.from, e.to, at(e))
		}
		// No flapping: a reversal waits out the cooldowns.
		if i > 0 && (e.to-e.from)*(prev.to-prev.from) < 0 && e.at.Sub(prev.at) < s.ScaleOutCooldown {
			t.Fatalf("flapped: %d → %d at %s then %d → %d at %s", prev.from, prev.to, at(prev), e.from, e.to, at(e))
		}
		prev = e
	}
	// The plateau settles with every worker inside the band.
	plateau := countAt[spikeAt-s.EvaluationInterval]
	if per := 450 / float64(plateau); per > scaleOut || per < scaleIn {
		t.Fatalf("plateau at %d workers runs at %.1f%%", plateau, per)
	}
	// Back to the minimum after the ramp down (within the scale-in cooldowns).
	if n := countAt[oscillateAt-s.EvaluationInterval]; n != minW {
		t.Fatalf("%d workers after the ramp down, want %d", n, minW)
	}
	// Oscillating around the scale-out edge: at most one scale-out, never back.
	var osc []scaleEvent
	for _, e := range events {
		if at(e) >= oscillateAt {
			osc = append(osc, e)
		}
	}
	if len(osc) > 1 || len(osc) == 1 && osc[0].to < osc[0].from {
		t.Fatalf("oscillation caused %d scales: %+v", len(osc), osc)
	}
}

// TestSimulatedReactionWithinTwoIntervals steps the load across each edge
// at every offset between evaluations and checks the reaction time.
func TestSimulatedReactionWithinTwoIntervals(t *testing.T) {
	s := DefaultSettings()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for off := time.Duration(0); off < s.EvaluationInterval; off += 5 * time.Second {
		crossAt := 2*time.Minute + off
		deadline := crossAt + 2*s.EvaluationInterval
		step := func(before, after float64) func(time.Duration) float64 {
			return func(el time.Duration) float64 {
				if el < crossAt {
					return before
				}
				return after
			}
		}
		// Scale-out: one worker from 50 % to 81 %, barely above the edge.
		out := runSim(t, s, 1, 1, 4, 20, 80, crossAt+4*s.EvaluationInterval, step(50, 81), nil)
		if len(out) != 1 || out[0].to != 2 || out[0].at.Sub(t0) > deadline {
			t.Fatalf("offset %s: scale-outs %+v; want one to 2 workers by %s", off, out, deadline)
		}
		// Scale-in: two workers from 30 % to 19 % each, barely below the edge.
		in := runSim(t, s, 2, 1, 4, 20, 80, crossAt+4*s.EvaluationInterval, step(60, 38), nil)
		if len(in) != 1 || in[0].to != 1 || in[0].at.Sub(t0) > deadline {
			t.Fatalf("offset %s: scale-ins %+v; want one to 1 worker by %s", off, in, deadline)
		}
	}
}
