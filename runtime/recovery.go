package runtime

import (
	"errors"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Recovery. A task that fails is restarted with backoff; the restarted
// incarnation must not report RUNNING the moment it starts (a sink's first
// assignment, a source's Start), or a task that fails on the same poison
// record every time flips FAILED → RUNNING → FAILED and the connector's
// status, and the trace that explains it, flicker. So a task that failed
// stays FAILED, with its last trace, until its new incarnation proves
// itself: a sink commits past every offset its last incarnation failed at
// (the record that failed, or the first of a batch Put refused), or any
// task stays up Options.RecoveredAfter (30 s). Then it reports RUNNING.

// failPoint is where an incarnation failed: per partition, the offset of
// the record it failed on (or the first of the batch Put refused); empty
// when the failure was not a record's (Start, Open, a commit).
type failPoint map[connect.TopicPartition]int64

// recordFailure is a run's error with the records it failed at.
type recordFailure struct {
	err   error
	point failPoint
}

func (e *recordFailure) Error() string { return e.err.Error() }
func (e *recordFailure) Unwrap() error { return e.err }

// failedAt wraps err with the point a run failed at.
func failedAt(err error, point failPoint) error {
	if err == nil {
		return nil
	}
	var rf *recordFailure
	if errors.As(err, &rf) {
		return err // the first point found is where it failed
	}
	return &recordFailure{err: err, point: point}
}

// taskFailed notes that task id failed with err: its next incarnation
// recovers from there.
func (w *Worker) taskFailed(id int, err error) {
	point := failPoint{}
	var rf *recordFailure
	if errors.As(err, &rf) {
		point = rf.point
	}
	w.mu.Lock()
	w.recovering[id] = point
	w.mu.Unlock()
}

// incarnation returns the number of task id's running incarnation.
func (w *Worker) incarnation(id int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen[id]
}

// taskStarted is called when incarnation gen of task id is up (a sink
// joined its group, a source started). A task that has not failed is
// RUNNING now; one that did is RUNNING once it recovers, at the latest
// after RecoveredAfter.
func (w *Worker) taskStarted(id, gen int) {
	w.mu.Lock()
	_, failed := w.recovering[id]
	w.mu.Unlock()
	if !failed {
		w.setTaskState(id, TaskRunning, "")
		return
	}
	time.AfterFunc(w.opts.RecoveredAfter, func() { w.recovered(id, gen, "stayed up") })
}

// committedPast is called by incarnation gen of sink task id after each
// commit, with what it has committed of a partition (-1: nothing): once
// its partitions are committed past every offset the last incarnation
// failed at, the task has recovered.
func (w *Worker) committedPast(id, gen int, committed func(connect.TopicPartition) int64) {
	w.mu.Lock()
	point, failed := w.recovering[id]
	w.mu.Unlock()
	if !failed || len(point) == 0 {
		return
	}
	for tp, off := range point {
		if committed(tp) <= off {
			return
		}
	}
	w.recovered(id, gen, "committed past its failure")
}

// recovered clears task id's failure if gen is still its incarnation.
func (w *Worker) recovered(id, gen int, why string) {
	w.mu.Lock()
	_, failed := w.recovering[id]
	current := w.gen[id] == gen && !w.stopping
	if failed && current {
		delete(w.recovering, id)
	}
	w.mu.Unlock()
	if failed && current {
		w.log.Info().Int("task", id).Str("how", why).Msg("task recovered")
		w.setTaskState(id, TaskRunning, "")
	}
}
