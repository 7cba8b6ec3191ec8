package runtime

import (
	"syscall"
	"time"
)

// cpuMeter measures the process' CPU time (user + system) between calls.
type cpuMeter struct {
	last    time.Duration
	lastAt  time.Time
	working bool
}

func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

func newCPUMeter() *cpuMeter {
	c, ok := processCPU()
	return &cpuMeter{last: c, lastAt: time.Now(), working: ok}
}

// percent returns the CPU used since the last call as a percentage of the
// worker's allotment: CPU seconds / (wall seconds × mcu vCPUs) × 100.
func (m *cpuMeter) percent(mcu int) float64 {
	if mcu < 1 {
		mcu = 1
	}
	now := time.Now()
	c, ok := processCPU()
	if !ok || !m.working {
		return 0
	}
	used, wall := c-m.last, now.Sub(m.lastAt)
	m.last, m.lastAt = c, now
	if wall <= 0 {
		return 0
	}
	return float64(used) / (float64(wall) * float64(mcu)) * 100
}
