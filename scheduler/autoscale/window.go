package autoscale

import (
	"sync"
	"time"

	"github.com/ferryhq/ferry/jobs"
)

// Window keeps recent CPU samples per connector and worker incarnation,
// stamped with their arrival time on the local clock (never the worker's,
// so clock skew cannot make a sample look fresh). It is safe for concurrent
// use: NATS delivers while the scaler evaluates.
type Window struct {
	mu   sync.Mutex
	conn map[string]map[string][]sample // connector → worker id → samples, oldest first
}

type sample struct {
	at  time.Time
	cpu float64
}

// NewWindow returns an empty Window.
func NewWindow() *Window { return &Window{conn: map[string]map[string][]sample{}} }

// Add records one metrics message that arrived at at.
func (w *Window) Add(m jobs.Metrics, at time.Time) {
	if m.Connector == "" || m.Worker == "" || m.CPUPercent < 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	byWorker := w.conn[m.Connector]
	if byWorker == nil {
		byWorker = map[string][]sample{}
		w.conn[m.Connector] = byWorker
	}
	byWorker[m.Worker] = append(byWorker[m.Worker], sample{at: at, cpu: m.CPUPercent})
}

// Load measures a connector at now over the samples that arrived after
// since: each live worker's mean, then the mean of those. A worker is live
// when its last sample is no older than staleAfter; one that stopped
// reporting (stopped, crashed, partitioned away) is left out, not counted
// as idle.
func (w *Window) Load(connector string, since, now time.Time, staleAfter time.Duration) Load {
	w.mu.Lock()
	defer w.mu.Unlock()
	var l Load
	var sum float64
	for _, ss := range w.conn[connector] {
		if len(ss) == 0 || now.Sub(ss[len(ss)-1].at) > staleAfter {
			continue
		}
		var n int
		var s float64
		for _, x := range ss {
			if x.at.After(since) && !x.at.After(now) {
				s += x.cpu
				n++
			}
		}
		if n == 0 {
			continue
		}
		sum += s / float64(n)
		l.Reporting++
	}
	if l.Reporting > 0 {
		l.CPU = sum / float64(l.Reporting)
	}
	return l
}

// Trim drops a connector's samples that arrived before cutoff, and the
// workers left without any.
func (w *Window) Trim(connector string, cutoff time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, ss := range w.conn[connector] {
		i := 0
		for i < len(ss) && ss[i].at.Before(cutoff) {
			i++
		}
		if i == len(ss) {
			delete(w.conn[connector], id)
			continue
		}
		w.conn[connector][id] = append(ss[:0:0], ss[i:]...)
	}
	if len(w.conn[connector]) == 0 {
		delete(w.conn, connector)
	}
}

// Retain forgets every connector keep does not report true for.
func (w *Window) Retain(keep func(connector string) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.conn {
		if !keep(c) {
			delete(w.conn, c)
		}
	}
}
