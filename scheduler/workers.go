package scheduler

import (
	"sync"
	"time"

	"github.com/ferryhq/ferry/jobs"
)

// workerTracker keeps the latest WorkerStatus of every worker incarnation,
// by connector and worker id, and forgets those not heard from within ttl.
type workerTracker struct {
	ttl time.Duration

	mu   sync.Mutex
	seen map[string]map[string]seenStatus // connector → worker id → status
}

type seenStatus struct {
	status jobs.WorkerStatus
	at     time.Time // when it arrived (the local clock, not the worker's)
}

func newWorkerTracker(ttl time.Duration) *workerTracker {
	return &workerTracker{ttl: ttl, seen: map[string]map[string]seenStatus{}}
}

// record stores s and reports whether it says something new (a worker not
// seen before, or a changed state, revision, index or message).
func (t *workerTracker) record(s jobs.WorkerStatus, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	byID := t.seen[s.Connector]
	if byID == nil {
		byID = map[string]seenStatus{}
		t.seen[s.Connector] = byID
	}
	prev, ok := byID[s.Worker]
	byID[s.Worker] = seenStatus{status: s, at: now}
	return !ok || now.Sub(prev.at) > t.ttl || prev.status.State != s.State || prev.status.Revision != s.Revision ||
		prev.status.Index != s.Index || prev.status.Message != s.Message
}

// forget drops everything known about a connector.
func (t *workerTracker) forget(connector string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, connector)
}

// prune drops statuses older than ttl.
func (t *workerTracker) prune(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c, byID := range t.seen {
		for id, s := range byID {
			if now.Sub(s.at) > t.ttl {
				delete(byID, id)
			}
		}
		if len(byID) == 0 {
			delete(t.seen, c)
		}
	}
}

// workerView sums up a connector's fresh worker statuses at one revision.
type workerView struct {
	Running int                // indexes 0..workers-1 with a fresh RUNNING status
	Failed  *jobs.WorkerStatus // a fresh FAILED status, if any
	Last    string             // the latest non-empty message, for timeouts
}

// view looks at the fresh statuses of connector's workers 0..workers-1 at
// revision. With ids set (index → incarnation id) only those incarnations
// count.
func (t *workerTracker) view(connector string, revision int64, workers int, ids map[int]string, now time.Time) workerView {
	t.mu.Lock()
	defer t.mu.Unlock()
	var v workerView
	best := map[int]seenStatus{} // index → newest fresh status
	for id, s := range t.seen[connector] {
		st := s.status
		if now.Sub(s.at) > t.ttl || st.Revision != revision || st.Index < 0 || st.Index >= workers {
			continue
		}
		if ids != nil && ids[st.Index] != id {
			continue
		}
		if b, ok := best[st.Index]; !ok || s.at.After(b.at) {
			best[st.Index] = s
		}
	}
	var lastAt time.Time
	for _, s := range best {
		switch s.status.State {
		case jobs.WorkerRunning:
			v.Running++
		case jobs.WorkerFailed:
			if v.Failed == nil || s.status.Index < v.Failed.Index {
				st := s.status
				v.Failed = &st
			}
		}
		if s.status.Message != "" && s.at.After(lastAt) {
			v.Last, lastAt = s.status.Message, s.at
		}
	}
	return v
}
