package autoscale

import (
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
)

func TestWindowLoad(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	w := NewWindow()
	add := func(worker string, cpu float64, at time.Duration) {
		w.Add(jobs.Metrics{Connector: "c", Worker: worker, CPUPercent: cpu}, t0.Add(at))
	}
	// a reports often, b rarely: each worker weighs the same.
	for i := 0; i < 6; i++ {
		add("a", 90, time.Duration(i)*5*time.Second)
	}
	add("b", 10, 25*time.Second)
	// c stopped reporting 20 s ago: left out, not taken as idle.
	add("c", 0, 5*time.Second)
	// Another connector's samples do not count.
	w.Add(jobs.Metrics{Connector: "d", Worker: "a", CPUPercent: 0}, t0.Add(25*time.Second))
	// Malformed samples are dropped.
	w.Add(jobs.Metrics{Connector: "c", CPUPercent: 0}, t0.Add(25*time.Second))
	w.Add(jobs.Metrics{Connector: "c", Worker: "e", CPUPercent: -1}, t0.Add(25*time.Second))

	now := t0.Add(26 * time.Second)
	l := w.Load("c", now.Add(-30*time.Second), now, 15*time.Second)
	if l.Reporting != 2 || l.CPU != 50 {
		t.Fatalf("load %+v, want 2 workers at 50%%", l)
	}
	// Only samples after since count.
	l = w.Load("c", t0.Add(22*time.Second), now, 15*time.Second)
	if l.Reporting != 2 || l.CPU != 50 {
		t.Fatalf("load since 22 s %+v, want 2 workers at 50%%", l)
	}
	l = w.Load("c", t0.Add(26*time.Second), now, 15*time.Second)
	if l.Reporting != 0 {
		t.Fatalf("load with nothing after since %+v, want no data", l)
	}
	// Trim drops old samples and silent workers.
	w.Trim("c", t0.Add(20*time.Second))
	l = w.Load("c", t0, now, time.Hour)
	if l.Reporting != 2 || l.CPU != 50 {
		t.Fatalf("after trim %+v, want a (90) and b (10)", l)
	}
	w.Retain(func(c string) bool { return c == "d" })
	if l := w.Load("c", t0, now, time.Hour); l.Reporting != 0 {
		t.Fatalf("after retain %+v, want nothing", l)
	}
	if l := w.Load("d", t0, now, time.Hour); l.Reporting != 1 {
		t.Fatalf("retained connector lost: %+v", l)
	}
}
