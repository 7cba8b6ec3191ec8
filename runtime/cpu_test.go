package runtime

import (
	"testing"
	"time"
)

func TestCPUMeter(t *testing.T) {
	m := newCPUMeter()
	start, _ := processCPU()
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for {
		c, _ := processCPU()
		if c-start >= 150*time.Millisecond || time.Now().After(deadline) {
			break
		}
		for i := 0; i < 100000; i++ {
			x += i
		}
	}
	_ = x
	p1 := m.percent(1)
	if p1 <= 5 || p1 > 250 {
		t.Errorf("cpu_percent %.1f after a busy loop, want a plausible share of one vCPU", p1)
	}
	time.Sleep(200 * time.Millisecond)
	if p := m.percent(4); p > p1 {
		t.Errorf("cpu_percent %.1f while idle on 4 MCUs, want below the busy %.1f", p, p1)
	}
}
