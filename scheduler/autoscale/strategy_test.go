package autoscale

import (
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	base := Input{
		Workers: 2, Min: 1, Max: 10, ScaleInPercent: 20, ScaleOutPercent: 80,
		Now: t0, MaxStep: 4, ScaleOutCooldown: 2 * time.Minute, ScaleInCooldown: 5 * time.Minute,
	}
	load := func(cpu float64, reporting int) Load { return Load{CPU: cpu, Reporting: reporting} }
	tests := []struct {
		name   string
		mod    func(*Input)
		target int
		dir    Direction
		reason string // a substring of the reason
	}{
		{"within band", func(in *Input) { in.Load = load(50, 2) }, 2, Hold, "within"},
		{"at scale-out edge holds", func(in *Input) { in.Load = load(80, 2) }, 2, Hold, "within"},
		{"just above scale-out adds one", func(in *Input) { in.Load = load(80.1, 2) }, 3, Out, "ceil(2 × 80.1 / 80) = 3"},
		{"proportional scale-out", func(in *Input) { in.Workers, in.Load = 4, load(100, 4) }, 5, Out, "= 5"},
		{"proportional scale-out of a bigger group", func(in *Input) { in.Workers, in.Load = 6, load(95, 6) }, 8, Out, "= 8"},
		{"scale-out capped by max step", func(in *Input) { in.Workers, in.MaxStep, in.Load = 4, 1, load(100, 4) }, 5, Out, ""},
		{"scale-out capped by max step of 4", func(in *Input) { in.Workers, in.Max, in.Load = 20, 40, load(100, 20) }, 24, Out, "capped to 24"},
		{"scale-out capped by max", func(in *Input) { in.Workers, in.Max, in.Load = 9, 10, load(100, 9) }, 10, Out, "capped to 10"},
		{"at max holds", func(in *Input) { in.Workers, in.Load = 10, load(100, 10) }, 10, Hold, "maximum"},
		{"scale-out with a silent worker uses the live ones", func(in *Input) { in.Workers, in.Load = 3, load(90, 2) }, 4, Out, "over 2 workers"},
		{"at scale-in edge holds", func(in *Input) { in.Load = load(20, 2) }, 2, Hold, "within"},
		{"below scale-in: one fewer stays in the lower half", func(in *Input) { in.Load = load(19, 2) }, 1, In, "1 workers would run at 38.0%"},
		{"below scale-in: one fewer would pass the middle", func(in *Input) { in.Workers, in.Min, in.Load = 2, 1, load(19.9, 2); in.ScaleOutPercent = 30 }, 2, Hold, "past the band's middle"},
		{"proportional scale-in lands on the edge", func(in *Input) { in.Workers, in.Load = 4, load(10, 4) }, 2, In, "2 workers would run at 20.0%"},
		{"proportional scale-in back above the edge", func(in *Input) { in.Workers, in.Load = 6, load(19, 6) }, 5, In, "5 workers would run at 22.8%"},
		{"scale-in in a narrow band stops short of the middle", func(in *Input) { in.Workers, in.Load, in.ScaleInPercent, in.ScaleOutPercent = 6, load(30, 6), 40, 50 }, 5, In, "5 workers would run at 36.0%"},
		{"scale-in in a narrow band holds past the middle", func(in *Input) { in.Workers, in.Load, in.ScaleInPercent, in.ScaleOutPercent = 6, load(39, 6), 40, 50 }, 6, Hold, "past the band's middle"},
		{"scale-in capped by max step", func(in *Input) { in.Workers, in.MaxStep, in.Load = 8, 2, load(1, 8) }, 6, In, "capped to 6"},
		{"scale-in capped by min", func(in *Input) { in.Workers, in.Min, in.Load = 4, 3, load(1, 4) }, 3, In, "capped to 3"},
		{"idle at min holds", func(in *Input) { in.Workers, in.Load = 1, load(0, 1) }, 1, Hold, "minimum"},
		{"no data holds", func(in *Input) { in.Load = Load{} }, 2, Hold, "no metrics"},
		{"no data never scales in even at zero", func(in *Input) { in.Workers, in.Load = 5, Load{CPU: 0} }, 5, Hold, "no metrics"},
		{"partial data never scales in", func(in *Input) { in.Workers, in.Load = 4, load(2, 3) }, 4, Hold, "only 3 of 4"},
		{"scale-out cooldown after a scale-out", func(in *Input) { in.Load, in.LastScaleOut = load(95, 2), t0.Add(-time.Minute) }, 2, Hold, "cooling down for 1m0s"},
		{"scale-out cooldown elapsed", func(in *Input) { in.Load, in.LastScaleOut = load(95, 2), t0.Add(-2*time.Minute) }, 3, Out, ""},
		{"scale-out cooldown after a scale-in", func(in *Input) { in.Load, in.LastScaleIn = load(95, 2), t0.Add(-90*time.Second) }, 2, Hold, "cooling down for 30s"},
		{"scale-in cooldown after a scale-out", func(in *Input) { in.Workers, in.Load, in.LastScaleOut = 4, load(5, 4), t0.Add(-4*time.Minute) }, 4, Hold, "cooling down for 1m0s"},
		{"scale-in cooldown elapsed", func(in *Input) { in.Workers, in.Load, in.LastScaleOut = 4, load(5, 4), t0.Add(-5*time.Minute) }, 1, In, ""},
		{"below min is raised whatever the load", func(in *Input) { in.Workers, in.Min, in.Load = 1, 3, Load{} }, 3, Out, "below the minimum"},
		{"above max is lowered whatever the cooldown", func(in *Input) {
			in.Workers, in.Max, in.Load, in.LastScaleOut = 12, 10, load(99, 12), t0
		}, 10, In, "above the maximum"},
		{"zero max step still moves one", func(in *Input) { in.MaxStep, in.Load = 0, load(100, 2) }, 3, Out, ""},
		{"invalid bounds hold", func(in *Input) { in.Min, in.Max, in.Load = 5, 2, load(100, 2) }, 2, Hold, "invalid bounds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.mod(&in)
			d := Decide(in)
			if d.Target != tc.target || d.Direction != tc.dir {
				t.Fatalf("Decide = %d (%s), want %d (%s); reason: %s", d.Target, d.Direction, tc.target, tc.dir, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("reason %q does not say %q", d.Reason, tc.reason)
			}
			if d.Target < in.Min && in.Min <= in.Max || d.Target > in.Max && in.Min <= in.Max {
				t.Fatalf("target %d outside %d..%d", d.Target, in.Min, in.Max)
			}
		})
	}
}

// TestDecideNeverFlaps checks over a grid that the load a decision
// predicts (the same work spread over the new count) never makes the next
// decision go back the other way, cooldowns aside.
func TestDecideNeverFlaps(t *testing.T) {
	for workers := 1; workers <= 12; workers++ {
		for cpu := 0.0; cpu <= 100; cpu += 0.5 {
			for _, band := range [][2]float64{{20, 80}, {10, 30}, {40, 60}, {45, 50}} {
				in := Input{Workers: workers, Min: 1, Max: 12, ScaleInPercent: band[0], ScaleOutPercent: band[1],
					Load: Load{CPU: cpu, Reporting: workers}, Now: time.Unix(0, 0), MaxStep: 4}
				d := Decide(in)
				if d.Target < 1 || d.Target > 12 {
					t.Fatalf("target %d out of bounds", d.Target)
				}
				if d.Direction == Hold {
					continue
				}
				next := in
				next.Workers = d.Target
				next.Load = Load{CPU: cpu * float64(workers) / float64(d.Target), Reporting: d.Target}
				d2 := Decide(next)
				if d2.Direction != Hold && d2.Direction != d.Direction {
					t.Fatalf("%d workers at %.1f%% band %v: %s to %d (%s), then %s to %d (%s)",
						workers, cpu, band, d.Direction, d.Target, d.Reason, d2.Direction, d2.Target, d2.Reason)
				}
			}
		}
	}
}

func TestWithOverrides(t *testing.T) {
	s := DefaultSettings()
	got, err := s.WithOverrides(map[string]string{
		KeyWindow: "60000", KeyScaleOutCooldown: "0", KeyScaleInCooldown: " 600000 ", KeyMaxStep: "2",
		"tasks.max": "3", "ferry.other": "x",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Window != time.Minute || got.ScaleOutCooldown != 0 || got.ScaleInCooldown != 10*time.Minute || got.MaxStep != 2 {
		t.Fatalf("overrides not applied: %+v", got)
	}
	if got.EvaluationInterval != DefaultEvaluationInterval || got.StaleAfter != DefaultStaleAfter {
		t.Fatalf("server-only settings changed: %+v", got)
	}
	got, err = s.WithOverrides(map[string]string{
		KeyWindow: "0", KeyScaleOutCooldown: "-1", KeyScaleInCooldown: "soon", KeyMaxStep: "0",
		KeyPrefix + "scale.in.cooldown": "1",
	})
	if err == nil {
		t.Fatal("no error for invalid overrides")
	}
	for _, want := range []string{KeyWindow, KeyScaleOutCooldown, KeyScaleInCooldown, KeyMaxStep, "unknown autoscaler setting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if got != s {
		t.Fatalf("invalid overrides changed the settings: %+v", got)
	}
	if ValidateConfig(map[string]string{"connector.class": "x"}) != nil {
		t.Fatal("a configuration without overrides is invalid")
	}
	if (Settings{Window: -1, MaxStep: -1}).Validate() == nil {
		t.Fatal("negative settings pass")
	}
}
