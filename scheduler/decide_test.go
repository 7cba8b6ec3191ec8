package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	conn := jobs.Connector{Revision: 2}
	failed := &jobs.WorkerStatus{Index: 1, State: jobs.WorkerFailed, Message: "bucket missing"}
	tests := []struct {
		name       string
		f          facts
		state      string
		code       string
		msg        string
		opDone     bool
		opFailed   bool
		revisionTo int64
	}{
		{name: "creating, not all running yet",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateCreating}, workers: 2, view: workerView{Running: 1}},
			state: jobs.StateCreating},
		{name: "updating a failed connector clears its description",
			f: facts{status: jobs.ConnectorStatus{State: jobs.StateUpdating, Operation: "op", Revision: 1,
				StateDescription: &jobs.StateDescription{Code: CodeWorkerFailed, Message: "old"}}, workers: 1},
			state: jobs.StateUpdating, revisionTo: 1},
		{name: "creating, all running",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateCreating}, workers: 2, view: workerView{Running: 2}},
			state: jobs.StateRunning, revisionTo: 2},
		{name: "creating, a worker failed",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateCreating}, workers: 2, view: workerView{Running: 1, Failed: failed}},
			state: jobs.StateFailed, code: CodeWorkerFailed, msg: "worker 1: bucket missing"},
		{name: "creating, crash loop",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateCreating}, workers: 1, obs: Observation{CrashLoop: true, Reason: "boom"}},
			state: jobs.StateFailed, code: CodeWorkerCrashLoop, msg: "boom"},
		{name: "creating, placement failed has its own code",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateCreating}, workers: 2, obs: Observation{PlacementFailed: true, Reason: "placement failed: 2 workers × 4 MCU need 8 vCPU"}},
			state: jobs.StateFailed, code: CodePlacementFailed, msg: "placement failed: 2 workers × 4 MCU need 8 vCPU"},
		{name: "running, deployment rejected",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateRunning, Revision: 2}, workers: 1, view: workerView{Running: 1}, rejected: errors.New("nomad: Permission denied")},
			state: jobs.StateFailed, code: CodeDeploymentRejected, msg: "nomad: Permission denied", revisionTo: 2},
		{name: "creating, timed out with a deployment error",
			f: facts{status: jobs.ConnectorStatus{State: jobs.StateCreating}, workers: 1, deployErr: errors.New("connection refused"),
				since: t0, now: t0.Add(3 * time.Minute)},
			state: jobs.StateFailed, code: CodeStartTimeout, msg: "0 of 1 workers became RUNNING within 2m0s; last deployment error: connection refused"},
		{name: "creating, timed out",
			f: facts{status: jobs.ConnectorStatus{State: jobs.StateCreating}, workers: 2, view: workerView{Running: 1, Last: "joining group"},
				since: t0, now: t0.Add(3 * time.Minute)},
			state: jobs.StateFailed, code: CodeStartTimeout, msg: "1 of 2 workers became RUNNING within 2m0s; last worker message: joining group"},
		{name: "creating, invalid configuration",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateCreating}, workers: 1, invalid: errors.New("no revision 3")},
			state: jobs.StateFailed, code: CodeInvalidConfiguration, msg: "no revision 3"},
		{name: "updating, all running completes the operation",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateUpdating, Operation: "op", Revision: 1}, workers: 1, view: workerView{Running: 1}},
			state: jobs.StateRunning, opDone: true, revisionTo: 2},
		{name: "updating, failure fails the operation",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateUpdating, Operation: "op", Revision: 1}, workers: 2, view: workerView{Failed: failed}},
			state: jobs.StateFailed, code: CodeWorkerFailed, opDone: true, opFailed: true, revisionTo: 1},
		{name: "running, a worker restarting stays running",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateRunning, Revision: 2}, workers: 2, view: workerView{Running: 1}, since: t0, now: t0.Add(time.Hour)},
			state: jobs.StateRunning, revisionTo: 2},
		{name: "running, a worker failed",
			f:     facts{status: jobs.ConnectorStatus{State: jobs.StateRunning, Revision: 2}, workers: 2, view: workerView{Running: 1, Failed: failed}},
			state: jobs.StateFailed, code: CodeWorkerFailed, revisionTo: 2},
		{name: "failed, recovered",
			f: facts{status: jobs.ConnectorStatus{State: jobs.StateFailed, Revision: 2, StateDescription: &jobs.StateDescription{Code: "x"}},
				workers: 2, view: workerView{Running: 2}},
			state: jobs.StateRunning, revisionTo: 2},
		{name: "failed, still failing is not timed out again",
			f: facts{status: jobs.ConnectorStatus{State: jobs.StateFailed, StateDescription: &jobs.StateDescription{Code: CodeStartTimeout, Message: "m"}},
				workers: 2, since: t0, now: t0.Add(time.Hour)},
			state: jobs.StateFailed, code: CodeStartTimeout, msg: "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.connector = conn
			f.timeout = 2 * time.Minute
			if f.now.IsZero() {
				f.now, f.since = t0, t0
			}
			d := decide(f)
			if d.status.State != tt.state {
				t.Fatalf("state = %s, want %s", d.status.State, tt.state)
			}
			if d.status.Workers != f.workers {
				t.Errorf("workers = %d, want %d", d.status.Workers, f.workers)
			}
			if tt.code != "" {
				sd := d.status.StateDescription
				if sd == nil || sd.Code != tt.code || !strings.Contains(sd.Message, tt.msg) {
					t.Fatalf("description = %+v, want %s %q", sd, tt.code, tt.msg)
				}
			} else if d.status.StateDescription != nil {
				t.Errorf("description = %+v, want none", d.status.StateDescription)
			}
			if d.opDone != tt.opDone || (d.opInfo != nil) != tt.opFailed {
				t.Errorf("operation done=%v info=%+v, want done=%v failed=%v", d.opDone, d.opInfo, tt.opDone, tt.opFailed)
			}
			if tt.opDone && d.status.Operation != "" {
				t.Errorf("operation still set: %q", d.status.Operation)
			}
			if tt.opFailed && *d.opInfo != *d.status.StateDescription {
				t.Errorf("operation error %+v differs from state description %+v", d.opInfo, d.status.StateDescription)
			}
			if d.status.Revision != tt.revisionTo {
				t.Errorf("revision = %d, want %d", d.status.Revision, tt.revisionTo)
			}
		})
	}
}

func TestWorkerTracker(t *testing.T) {
	t0 := time.Now()
	tr := newWorkerTracker(time.Second)
	st := func(id string, idx int, rev int64, state string) jobs.WorkerStatus {
		return jobs.WorkerStatus{Connector: "c", Worker: id, Index: idx, Revision: rev, State: state}
	}
	if !tr.record(st("a", 0, 1, jobs.WorkerStarting), t0) {
		t.Fatal("first status not new")
	}
	if !tr.record(st("a", 0, 1, jobs.WorkerRunning), t0) {
		t.Fatal("state change not new")
	}
	if tr.record(st("a", 0, 1, jobs.WorkerRunning), t0.Add(100*time.Millisecond)) {
		t.Fatal("repeated status counted as new")
	}
	tr.record(st("b", 1, 1, jobs.WorkerRunning), t0)
	tr.record(st("old", 1, 0, jobs.WorkerFailed), t0)                   // other revision
	tr.record(st("x", 5, 1, jobs.WorkerRunning), t0)                    // index beyond the count
	tr.record(st("z", 1, 1, jobs.WorkerFailed), t0.Add(-2*time.Second)) // stale

	if v := tr.view("c", 1, 2, nil, t0); v.Running != 2 || v.Failed != nil {
		t.Fatalf("view = %+v, want 2 running", v)
	}
	// Only the incarnations the deployer runs count.
	if v := tr.view("c", 1, 2, map[int]string{0: "a", 1: "other"}, t0); v.Running != 1 {
		t.Fatalf("view with ids = %+v, want 1 running", v)
	}
	// Statuses expire.
	if v := tr.view("c", 1, 2, nil, t0.Add(2*time.Second)); v.Running != 0 {
		t.Fatalf("view later = %+v, want nothing", v)
	}
	tr.prune(t0.Add(2 * time.Second))
	if len(tr.seen) != 0 {
		t.Fatalf("prune left %v", tr.seen)
	}
}
