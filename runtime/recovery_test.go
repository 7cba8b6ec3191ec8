package runtime

import (
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// A task that fails on the same record on every restart stays FAILED with
// its trace: its restarted incarnations never report RUNNING before they
// get past the record.
func TestCrashLoopStaysFailed(t *testing.T) {
	addr := newCluster(t, 1, "json")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "json", 0, `{"a":1}`, `{"a":2}`, `not json`, `{"a":4}`)
	rec := newRecorder()
	spec := testSpec("loop", addr, 1, 1, map[string]string{
		"topics": "json", "value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "false",
		"offset.flush.interval.ms": "50",
	})
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "worker FAILED", func() bool { _, ok := w.status.seen(jobs.WorkerFailed); return ok })
	// Restarts every 200 ms..1 s: several incarnations join, fail, restart.
	// The published statuses can miss a short RUNNING; watch the task's
	// state itself too.
	var flips int
	opened := func() int {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.opened[0])
	}
	for deadline := time.Now().Add(20 * time.Second); opened() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for 3 incarnations to open the partition")
		}
		if st := w.w.Status(); st.Tasks[0].State != TaskFailed {
			flips++
		}
	}
	if flips > 0 {
		t.Errorf("the failed task was seen %d times in another state while it crash-looped", flips)
	}
	if m := w.w.Metrics(0); m.Tasks != 1 || m.TasksRunning != 0 {
		t.Errorf("tasks %d, running %d; want 1 assigned, none running", m.Tasks, m.TasksRunning)
	}
	w.status.mu.Lock()
	all := append([]jobs.WorkerStatus(nil), w.status.all...)
	w.status.mu.Unlock()
	failed := false
	for _, st := range all {
		if st.State == jobs.WorkerFailed {
			failed = true
		}
		if !failed || st.State == jobs.WorkerStopping {
			continue
		}
		if st.State != jobs.WorkerFailed || st.Tasks[0].State != TaskFailed || st.Tasks[0].Trace == "" {
			t.Errorf("after the first failure the status went to %s (task %+v)", st.State, st.Tasks[0])
		}
	}
	w.stop(t)
}

// A restarted task that gets past the record it failed on (commits past
// it) reports RUNNING again without waiting.
func TestRecoversOnceCommittedPastTheFailure(t *testing.T) {
	addr := newCluster(t, 1, "r")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "r", 0, values("a", 10)...)
	rec := newRecorder()
	rec.failAt, rec.failOnce = 4, false
	spec := testSpec("recov", addr, 1, 1, map[string]string{"topics": "r", "offset.flush.interval.ms": "50"})
	w := startWorker(t, spec, 0, testRegistry(t, rec)) // RecoveredAfter: the default 30 s
	eventually(t, 20*time.Second, "failure reported", func() bool { _, ok := w.status.seen(jobs.WorkerFailed); return ok })
	start := time.Now()
	eventually(t, 20*time.Second, "RUNNING again after committing past offset 4", func() bool {
		return w.w.Status().State == jobs.WorkerRunning
	})
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v: recovered by waiting, not by committing", d)
	}
	if c := committedAt(t, cl, jobs.ConsumerGroup("recov"), connect.TopicPartition{Topic: "r", Partition: 0}); c <= 4 {
		t.Errorf("RUNNING with the commit at %d, not past the failed offset 4", c)
	}
	w.stop(t)
}

// A task whose failure was not a record's (Open failed) reports RUNNING
// again once its new incarnation has stayed up RecoveredAfter, not before.
func TestRecoversAfterStayingUp(t *testing.T) {
	addr := newCluster(t, 1, "u")
	rec := newRecorder()
	rec.failOpens = 1
	spec := testSpec("uptime", addr, 1, 1, map[string]string{"topics": "u"})
	w := startWorkerWith(t, spec, 0, testRegistry(t, rec), func(o *Options) { o.RecoveredAfter = 2 * time.Second })
	eventually(t, 20*time.Second, "failure reported", func() bool { _, ok := w.status.seen(jobs.WorkerFailed); return ok })
	eventually(t, 20*time.Second, "the new incarnation opened the partition", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.opened[0]) == 1
	})
	opened := time.Now()
	eventually(t, 20*time.Second, "RUNNING again", func() bool { return w.w.Status().State == jobs.WorkerRunning })
	if d := time.Since(opened); d < 1500*time.Millisecond {
		t.Errorf("RUNNING %v after the restarted task joined, want ≥ ~2s", d)
	}
	if st := w.w.Status(); st.Tasks[0].Trace != "" {
		t.Errorf("trace %q kept after recovery", st.Tasks[0].Trace)
	}
	w.stop(t)
}
