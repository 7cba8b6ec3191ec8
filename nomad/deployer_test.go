package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/hashicorp/nomad/api"
	"github.com/rs/zerolog"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func newTestDeployer(t *testing.T, addr string) *Deployer {
	t.Helper()
	client, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDeployer(Config{
		Client:  client,
		Render:  RenderConfig{WorkerCommand: "/usr/local/bin/ferry"},
		Logger:  zerolog.New(zerolog.NewTestWriter(t)),
		Timeout: 5 * time.Second,
		Now:     func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func withWorkers(d Deployment, n int) Deployment {
	d.Workers, d.Spec.Workers = n, n
	d.Spec.TasksMax = 2 * n
	return d
}

func TestNewDeployerReportsEveryProblem(t *testing.T) {
	_, err := NewDeployer(Config{Render: RenderConfig{Driver: "lxc"}, Timeout: -1})
	for _, want := range []string{`unknown driver "lxc"`, "must not be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

// TestApplyLifecycle walks one connector through create, a no-op pass, a
// scale, a new revision, a restart and a job stopped behind Ferry's back,
// checking what each sends to Nomad.
func TestApplyLifecycle(t *testing.T) {
	f := newFakeNomad(t)
	srv := f.start(t)
	dep := newTestDeployer(t, srv.URL)
	ctx := ctxT(t)
	d := testDeployment()
	id := JobID(d.Name)

	// Create: EnforceIndex with index 0, the count asked for, secrets in the variable.
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("create: %v", err)
	}
	jobsNow, regs, raw, scales, _ := f.snapshot()
	if len(regs) != 1 || !regs[0].EnforceIndex || regs[0].JobModifyIndex != 0 || regs[0].PreserveCounts {
		t.Fatalf("create register = %+v", regs)
	}
	if raw[0]["EnforceIndex"] != true {
		t.Errorf("create body has no EnforceIndex: %v", raw[0]["EnforceIndex"])
	}
	if c, _ := groupCount(jobsNow[id]); c != 2 || len(scales) != 0 {
		t.Errorf("after create: count %d, scales %d", c, len(scales))
	}
	v := f.vars[VariablePath(d.Name)]
	if v == nil || v.Items["config_aws_secret_access_key"] != d.Spec.Config["aws.secret.access.key"] || v.Items["workers"] != "2" {
		t.Fatalf("variable = %+v", v)
	}
	writes := f.varWrites

	// The same deployment again writes nothing.
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("no-op apply: %v", err)
	}
	_, regs, _, scales, _ = f.snapshot()
	if len(regs) != 1 || len(scales) != 0 || f.varWrites != writes {
		t.Errorf("no-op apply wrote: %d registers, %d scales, %d variable writes", len(regs), len(scales), f.varWrites-writes)
	}

	// Scale: the variable's counts and the group count change, the job does not.
	if err := dep.Apply(ctx, withWorkers(d, 3)); err != nil {
		t.Fatalf("scale: %v", err)
	}
	jobsNow, regs, _, scales, _ = f.snapshot()
	if len(regs) != 1 {
		t.Errorf("scale registered the job again")
	}
	if len(scales) != 1 || *scales[0].Count != 3 || scales[0].Target["Group"] != GroupName || scales[0].Target["Job"] != id || scales[0].Message == "" {
		t.Fatalf("scale requests = %+v", scales)
	}
	if c, _ := groupCount(jobsNow[id]); c != 3 {
		t.Errorf("count after scale = %d", c)
	}
	if v := f.vars[VariablePath(d.Name)]; v.Items["workers"] != "3" || v.Items["tasks_max"] != "6" {
		t.Errorf("variable after scale = %v", v.Items)
	}

	// A new revision: registered again on the index read, counts preserved.
	d4 := withWorkers(d, 3)
	d4.Revision, d4.Spec.Revision = 4, 4
	d4.Spec.Config = map[string]string{"connector.class": d.Spec.Class, "topics": "orders,returns", "aws.secret.access.key": "new"}
	before := *jobsNow[id].JobModifyIndex
	if err := dep.Apply(ctx, d4); err != nil {
		t.Fatalf("update: %v", err)
	}
	jobsNow, regs, raw, scales, _ = f.snapshot()
	if len(regs) != 2 {
		t.Fatalf("update did not register: %d registers", len(regs))
	}
	if r := regs[1]; !r.EnforceIndex || r.JobModifyIndex != before || !r.PreserveCounts {
		t.Errorf("update register = EnforceIndex %v index %d (want %d) PreserveCounts %v", r.EnforceIndex, r.JobModifyIndex, before, r.PreserveCounts)
	}
	if raw[1]["PreserveCounts"] != true || raw[1]["EnforceIndex"] != true {
		t.Errorf("update body = PreserveCounts %v EnforceIndex %v", raw[1]["PreserveCounts"], raw[1]["EnforceIndex"])
	}
	if jobsNow[id].Meta[MetaRevision] != "4" || len(scales) != 1 {
		t.Errorf("after update: revision %s, %d scales", jobsNow[id].Meta[MetaRevision], len(scales))
	}
	if c, _ := groupCount(jobsNow[id]); c != 3 {
		t.Errorf("count after update = %d, want 3", c)
	}
	if v := f.vars[VariablePath(d.Name)]; v.Items["config_aws_secret_access_key"] != "new" {
		t.Errorf("variable not updated: %v", v.Items)
	}

	// A new revision that also changes the count registers the new count
	// in the same write (a Scale after it would meet an active deployment).
	d5 := withWorkers(d4, 4)
	d5.Revision, d5.Spec.Revision = 5, 5
	if err := dep.Apply(ctx, d5); err != nil {
		t.Fatalf("update with a new count: %v", err)
	}
	jobsNow, regs, _, scales, _ = f.snapshot()
	if len(regs) != 3 || regs[2].PreserveCounts || !regs[2].EnforceIndex || len(scales) != 1 {
		t.Errorf("registers %+v, scales %d", regs, len(scales))
	}
	if c, _ := groupCount(jobsNow[id]); c != 4 {
		t.Errorf("count = %d, want 4", c)
	}

	// A restart re-registers (new meta → Nomad replaces every allocation).
	d6 := d5
	d6.Restarts = 2
	if err := dep.Apply(ctx, d6); err != nil {
		t.Fatal(err)
	}
	if jobsNow, regs, _, _, _ = f.snapshot(); len(regs) != 4 || !regs[3].PreserveCounts || jobsNow[id].Meta[MetaRestarts] != "2" {
		t.Errorf("restart: %d registers, restarts meta %q", len(regs), jobsNow[id].Meta[MetaRestarts])
	}

	// A scale decision while a rollout runs: Nomad refuses the Scale, so
	// the count goes in through a register.
	f.mu.Lock()
	f.deploying[id] = true
	f.mu.Unlock()
	d7 := withWorkers(d6, 2)
	if err := dep.Apply(ctx, d7); err != nil {
		t.Fatalf("scale during a deployment: %v", err)
	}
	jobsNow, regs, _, scales, _ = f.snapshot()
	if len(regs) != 5 || regs[4].PreserveCounts || len(scales) != 2 {
		t.Errorf("scale during a deployment: %d registers, %d scale attempts", len(regs), len(scales))
	}
	if c, _ := groupCount(jobsNow[id]); c != 2 {
		t.Errorf("count = %d, want 2", c)
	}
	f.mu.Lock()
	f.deploying[id] = false
	f.mu.Unlock()

	// Stopped behind Ferry's back: registered again, running.
	f.mu.Lock()
	f.jobs[id].Stop = new(true)
	f.mu.Unlock()
	if obs, err := dep.Observe(ctx, d.Name); err != nil || obs.Deployed {
		t.Errorf("observe stopped job = %+v, %v", obs, err)
	}
	if err := dep.Apply(ctx, d7); err != nil {
		t.Fatal(err)
	}
	if jobsNow, regs, _, _, _ = f.snapshot(); len(regs) != 6 || *jobsNow[id].Stop {
		t.Errorf("stopped job: %d registers, stop %v", len(regs), *jobsNow[id].Stop)
	}
}

// TestApplyNewScalingBounds registers without PreserveCounts when the
// current count is outside the new bounds, which Nomad would refuse.
func TestApplyNewScalingBounds(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	ctx := ctxT(t)
	d := autoscaledDeployment() // 1..4, 2 workers
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	d.Revision, d.Spec.Revision = 4, 4
	d.Autoscaling = &jobs.AutoScaling{MinWorkerCount: 3, MaxWorkerCount: 6, McuCount: 4}
	d = withWorkers(d, 3)
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("apply new bounds: %v", err)
	}
	jobsNow, regs, _, scales, _ := f.snapshot()
	if len(regs) != 2 || regs[1].PreserveCounts || len(scales) != 0 {
		t.Errorf("registers %+v, scales %d", regs, len(scales))
	}
	if c, _ := groupCount(jobsNow[JobID(d.Name)]); c != 3 {
		t.Errorf("count = %d, want 3", c)
	}
	// Nomad itself refuses a count outside the bounds.
	d.Reason = "autoscaler: scale out from 3 to 9 workers: cpu 97%"
	if _, err := dep.scale(ctx, JobID(d.Name), withWorkers(d, 9)); err == nil {
		t.Error("scale outside the bounds succeeded")
	}
	if _, _, _, scales, _ = f.snapshot(); len(scales) == 0 || scales[len(scales)-1].Message != "ferry: "+d.Reason {
		t.Errorf("scale requests %+v, want the last one to carry the reason", scales)
	}
}

// TestScaleReadsBackIndex: a scale answer without the job's new
// JobModifyIndex makes Apply read the job back for it, and record it.
func TestScaleReadsBackIndex(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	ctx := ctxT(t)
	d := testDeployment()
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.scaleNoIndex = true
	f.mu.Unlock()
	if err := dep.Apply(ctx, withWorkers(d, 3)); err != nil {
		t.Fatalf("scale: %v", err)
	}
	jobsNow, _, _, scales, _ := f.snapshot()
	f.mu.Lock()
	recorded := f.vars[VariablePath(d.Name)].Items[itemJobIndex]
	f.mu.Unlock()
	if want := strconv.FormatUint(*jobsNow[JobID(d.Name)].JobModifyIndex, 10); len(scales) != 1 || recorded != want {
		t.Errorf("%d scales, recorded job index %q, want %s", len(scales), recorded, want)
	}
}

// TestForeignJob: a job under a connector's job ID that Ferry did not
// create is neither overwritten nor removed.
func TestForeignJob(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	ctx := ctxT(t)
	f.jobs["ferry-orders-s3"] = &api.Job{ID: new("ferry-orders-s3"), Type: new("service"), Stop: new(false), JobModifyIndex: new(uint64(5)), Version: new(uint64(0))}
	if err := dep.Apply(ctx, testDeployment()); err == nil || !strings.Contains(err.Error(), "not this connector's") {
		t.Errorf("apply over a foreign job: %v", err)
	}
	if err := dep.Remove(ctx, "orders-s3"); err == nil {
		t.Error("remove of a foreign job succeeded")
	}
	if f.vars[VariablePath("orders-s3")] != nil {
		t.Error("the secrets were written where a foreign job can read them")
	}
	if _, _, _, _, deregs := f.snapshot(); len(deregs) != 0 {
		t.Errorf("deregistered: %v", deregs)
	}
	if names, err := dep.List(ctx); err != nil || len(names) != 0 {
		t.Errorf("list = %v, %v", names, err)
	}
}

func TestRemoveAndList(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	ctx := ctxT(t)
	for _, name := range []string{"b-conn", "a-conn"} {
		d := testDeployment()
		d.Name, d.Spec.Connector = name, name
		if err := dep.Apply(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	f.jobs["other"] = &api.Job{ID: new("other"), Type: new("service"), Stop: new(false), JobModifyIndex: new(uint64(1)), Meta: map[string]string{MetaConnector: "other"}}
	names, err := dep.List(ctx)
	if err != nil || !reflect.DeepEqual(names, []string{"a-conn", "b-conn"}) {
		t.Fatalf("list = %v, %v", names, err)
	}
	if err := dep.Remove(ctx, "a-conn"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	_, _, _, _, deregs := f.snapshot()
	if !reflect.DeepEqual(deregs, []string{"ferry-a-conn purge=true"}) {
		t.Errorf("deregisters = %v", deregs)
	}
	if f.vars[VariablePath("a-conn")] != nil {
		t.Error("variable of a removed connector is left")
	}
	if names, _ := dep.List(ctx); !reflect.DeepEqual(names, []string{"b-conn"}) {
		t.Errorf("list after remove = %v", names)
	}
	// Removing what is not there succeeds.
	if err := dep.Remove(ctx, "a-conn"); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if obs, err := dep.Observe(ctx, "a-conn"); err != nil || obs.Deployed {
		t.Errorf("observe removed = %+v, %v", obs, err)
	}
}

func alloc(id, job string, idx int, version uint64, client, desired string, create uint64) *api.AllocationListStub {
	return &api.AllocationListStub{
		ID: id, JobID: job, Name: job + ".workers[" + itoa(idx) + "]", TaskGroup: GroupName,
		JobVersion: version, ClientStatus: client, DesiredStatus: desired, CreateIndex: create,
		TaskStates: map[string]*api.TaskState{TaskName: {State: map[string]string{"running": "running", "pending": "pending", "failed": "dead", "complete": "dead"}[client]}},
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestObserve(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	ctx := ctxT(t)
	d := autoscaledDeployment() // 2 workers × 4 MCU
	id := JobID(d.Name)
	if obs, err := dep.Observe(ctx, d.Name); err != nil || obs.Deployed {
		t.Fatalf("observe before apply = %+v, %v", obs, err)
	}
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}

	t.Run("running", func(t *testing.T) {
		f.setAllocs(id,
			alloc("old-0", id, 0, 0, "complete", "stop", 10),
			alloc("new-0", id, 0, 0, "running", "run", 20),
			alloc("new-1", id, 1, 0, "pending", "run", 21),
		)
		obs, err := dep.Observe(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		want := Observation{Deployed: true, Workers: 2, Alive: 1, IDs: map[int]string{0: "new-0"}}
		if !reflect.DeepEqual(obs, want) {
			t.Errorf("observe = %+v, want %+v", obs, want)
		}
	})

	t.Run("crash loop", func(t *testing.T) {
		crashing := alloc("crash-1", id, 1, 0, "pending", "run", 22)
		crashing.TaskStates[TaskName] = &api.TaskState{
			State: "pending", Restarts: 4, LastRestart: testNow.Add(-10 * time.Second),
			Events: []*api.TaskEvent{
				{Type: api.TaskStarted},
				{Type: api.TaskTerminated, ExitCode: 1, Message: "s3: access denied"},
				{Type: api.TaskRestarting, DisplayMessage: "Task restarting in 5s"},
				{Type: api.TaskTerminated, DisplayMessage: "Exit Code: 1, Exit Message: \"config: aws.region is required\""},
				{Type: api.TaskRestarting, DisplayMessage: "Exceeded allowed attempts 3 in interval 1m0s and mode is \"delay\""},
			},
		}
		f.setAllocs(id, alloc("new-0", id, 0, 0, "running", "run", 20), crashing)
		obs, err := dep.Observe(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		want := `worker 1 keeps exiting soon after it starts: Exit Code: 1, Exit Message: "s3: access denied"; Exit Code: 1, Exit Message: "config: aws.region is required"`
		if !obs.CrashLoop || obs.Reason != want || obs.PlacementFailed {
			t.Errorf("observe = %+v\nwant reason %s", obs, want)
		}
		// A worker that restarted as often but has run for long since is fine.
		crashing.ClientStatus, crashing.TaskStates[TaskName].State = "running", "running"
		crashing.TaskStates[TaskName].LastRestart = testNow.Add(-time.Hour)
		f.setAllocs(id, alloc("new-0", id, 0, 0, "running", "run", 20), crashing)
		if obs, _ := dep.Observe(ctx, d.Name); obs.CrashLoop || obs.Alive != 2 {
			t.Errorf("stable worker reported as %+v", obs)
		}
	})

	t.Run("failed allocations", func(t *testing.T) {
		a := alloc("f1", id, 0, 0, "failed", "run", 30)
		a.TaskStates[TaskName].Events = []*api.TaskEvent{{Type: api.TaskDriverFailure, DriverError: "failed to launch command with executor: exec: \"/usr/local/bin/ferry\": no such file"}}
		b := alloc("f2", id, 0, 0, "failed", "run", 31)
		b.TaskStates[TaskName].Events = a.TaskStates[TaskName].Events
		old := alloc("f0", id, 1, 7, "failed", "run", 5) // another job version: ignored
		f.setAllocs(id, a, b, old)
		obs, _ := dep.Observe(ctx, d.Name)
		if !obs.CrashLoop || !strings.Contains(obs.Reason, "worker 0 keeps exiting") || !strings.Contains(obs.Reason, "no such file") {
			t.Errorf("observe = %+v", obs)
		}
	})

	t.Run("rollout failure", func(t *testing.T) {
		waiting := alloc("w-1", id, 1, 0, "pending", "run", 40)
		waiting.TaskStates[TaskName].Events = []*api.TaskEvent{
			{Type: "Template", DisplayMessage: "Missing: nomad.var.block(nomad/jobs/ferry-clicks@default.global)"},
		}
		f.setAllocs(id, alloc("new-0", id, 0, 0, "running", "run", 20), waiting)
		f.mu.Lock()
		f.latest[id] = &api.Deployment{ID: "dep-1", JobID: id, JobVersion: 0, Status: api.DeploymentStatusFailed, StatusDescription: "Failed due to unhealthy allocations"}
		f.mu.Unlock()
		obs, err := dep.Observe(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		want := "rollout of revision 3 failed: Failed due to unhealthy allocations; worker 1: Missing: nomad.var.block(nomad/jobs/ferry-clicks@default.global)"
		if !obs.RolloutFailed || !obs.Failing() || obs.CrashLoop || obs.Reason != want {
			t.Errorf("observe = %+v\nwant reason %s", obs, want)
		}
		// A failed deployment of an older version says nothing about this one.
		f.mu.Lock()
		f.latest[id].JobVersion = 7
		f.mu.Unlock()
		if obs, _ := dep.Observe(ctx, d.Name); obs.Failing() {
			t.Errorf("old failed deployment reported: %+v", obs)
		}
		f.mu.Lock()
		delete(f.latest, id)
		f.mu.Unlock()
	})

	t.Run("placement failure", func(t *testing.T) {
		f.setAllocs(id)
		f.setPlacementFailure(id, 2,
			&api.Evaluation{ID: "e1", CreateIndex: 5, FailedTGAllocs: map[string]*api.AllocationMetric{GroupName: {NodesEvaluated: 1, NodesExhausted: 1, DimensionExhausted: map[string]int{"memory": 1}}}},
			&api.Evaluation{ID: "e2", CreateIndex: 9, FailedTGAllocs: map[string]*api.AllocationMetric{GroupName: {
				NodesEvaluated: 3, NodesExhausted: 3, CoalescedFailures: 1,
				DimensionExhausted: map[string]int{"cpu": 3},
				ConstraintFiltered: map[string]int{"missing drivers": 2},
			}}},
			&api.Evaluation{ID: "e3", CreateIndex: 10, Status: "blocked"},
		)
		obs, err := dep.Observe(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		want := "placement failed: 2 workers × 4 MCU need 8 vCPU (16000 MHz) / 32768 MB; nodes exhausted: cpu (3 of 3 nodes); nodes filtered out: missing drivers (2)"
		if !obs.PlacementFailed || obs.CrashLoop || obs.Reason != want || obs.Alive != 0 {
			t.Errorf("observe = %+v\nwant reason %s", obs, want)
		}
		// Once nothing is queued, an old failed evaluation means nothing.
		f.setPlacementFailure(id, 0, &api.Evaluation{ID: "e2", CreateIndex: 9, FailedTGAllocs: map[string]*api.AllocationMetric{GroupName: {NodesEvaluated: 3}}})
		if obs, _ := dep.Observe(ctx, d.Name); obs.PlacementFailed {
			t.Errorf("placement failure reported with nothing queued: %+v", obs)
		}
	})
}

func TestPlacementReasonNoNodes(t *testing.T) {
	got := placementReason(1, ask{mcu: 2}, &api.AllocationMetric{NodePool: "connect", NodesInPool: 0, QuotaExhausted: []string{"cpu exhausted (4000 needed > 2000 limit)"}}, nil)
	want := `placement failed: 1 worker × 2 MCU need 2 vCPU / 8192 MB; no ready node in the job's datacenters (node pool "connect", 0 nodes in pool); quota exhausted: cpu exhausted (4000 needed > 2000 limit)`
	if got != want {
		t.Errorf("reason = %s\nwant     %s", got, want)
	}
}

// TestNomadDown: with Nomad gone every method returns an error (no panic,
// no hang); when it is back on the same address the next Apply carries on
// from Nomad's state without registering the job twice.
func TestNomadDown(t *testing.T) {
	f := newFakeNomad(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	srv := httptest.NewUnstartedServer(f)
	srv.Listener = l
	srv.Start()
	dep := newTestDeployer(t, "http://"+addr)
	ctx := ctxT(t)
	d := testDeployment()
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	err = dep.Apply(ctx, withWorkers(d, 3))
	var e *Error
	if err == nil || !errors.As(err, &e) || !e.Unavailable() || e.Permanent() {
		t.Errorf("apply with nomad down: %v, want an error that says nomad is unavailable", err)
	}
	if _, err := dep.Observe(ctx, d.Name); err == nil {
		t.Error("observe with nomad down succeeded")
	}
	if _, err := dep.List(ctx); err == nil {
		t.Error("list with nomad down succeeded")
	}
	if err := dep.Remove(ctx, d.Name); err == nil {
		t.Error("remove with nomad down succeeded")
	}

	var l2 net.Listener
	for i := 0; ; i++ {
		if l2, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if i == 50 {
			t.Fatalf("listen again on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv2 := httptest.NewUnstartedServer(f)
	srv2.Listener = l2
	srv2.Start()
	t.Cleanup(srv2.Close)
	if err := dep.Apply(ctx, withWorkers(d, 3)); err != nil {
		t.Fatalf("apply after nomad is back: %v", err)
	}
	_, regs, _, scales, _ := f.snapshot()
	if len(regs) != 1 || len(scales) != 1 {
		t.Errorf("after recovery: %d registers (want 1), %d scales (want 1)", len(regs), len(scales))
	}
	if obs, err := dep.Observe(ctx, d.Name); err != nil || !obs.Deployed || obs.Workers != 3 {
		t.Errorf("observe after recovery = %+v, %v", obs, err)
	}
}

// TestNomadHangs: a Nomad that accepts but never answers costs one Timeout.
func TestNomadHangs(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	dep := newTestDeployer(t, srv.URL)
	dep.cfg.Timeout = 200 * time.Millisecond
	start := time.Now()
	_, err := dep.Observe(ctxT(t), "orders-s3")
	var e *Error
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) || !e.Unavailable() {
		t.Errorf("observe against a hung nomad: %v, want an unavailable deadline error", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("observe took %s", el)
	}
}

// TestClientConfig: a Deployer configured with plain values (as cmd/ferry
// does) reaches the address given and sends the token and namespace.
func TestClientConfig(t *testing.T) {
	t.Setenv("NOMAD_TOKEN", "from-env")
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("X-Query", r.URL.RawQuery)
		select {
		case got <- h:
		default:
		}
		_, _ = w.Write([]byte("[]"))
	}))
	t.Cleanup(srv.Close)
	dep, err := NewDeployer(Config{
		Nomad:  ClientConfig{Address: srv.URL, Token: "s3cret-token"},
		Render: RenderConfig{WorkerCommand: "/bin/ferry", Namespace: "data"},
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if names, err := dep.List(ctxT(t)); err != nil || len(names) != 0 {
		t.Fatalf("list = %v, %v", names, err)
	}
	h := <-got
	if h.Get("X-Nomad-Token") != "s3cret-token" {
		t.Errorf("token header = %q", h.Get("X-Nomad-Token"))
	}
	if q := h.Get("X-Query"); !strings.Contains(q, "namespace=data") || !strings.Contains(q, "prefix=ferry-") {
		t.Errorf("query = %q", q)
	}
}

// TestApplyCustomPlugin registers a custom plugin's connector: what Nomad
// receives fetches the plugin's ZIP from the Ferry API with its MD5 checked
// and runs the plugin's binary as the worker. A plugin that moves (a new
// revision, another URL) registers the job again.
func TestApplyCustomPlugin(t *testing.T) {
	f := newFakeNomad(t)
	srv := f.start(t)
	dep := newTestDeployer(t, srv.URL)
	ctx := ctxT(t)
	d := pluginDeployment()
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("apply: %v", err)
	}
	_, regs, raw, _, _ := f.snapshot()
	if len(regs) != 1 {
		t.Fatalf("registers = %d, want 1", len(regs))
	}
	// As Nomad decodes the request body.
	task := regs[0].Job.TaskGroups[0].Tasks[0]
	if len(task.Artifacts) != 1 {
		t.Fatalf("artifacts = %+v", task.Artifacts)
	}
	a := task.Artifacts[0]
	if *a.GetterSource != d.Plugin.Source || *a.RelativeDest != "local/plugins/" || a.GetterOptions["checksum"] != "md5:9e107d9d372bb6826bd81d3542a419d6" {
		t.Errorf("artifact = source %q dest %q options %v", *a.GetterSource, *a.RelativeDest, a.GetterOptions)
	}
	if task.Config["command"] != "${NOMAD_TASK_DIR}/plugins/bin/acme-worker" || task.Env[EnvPluginDir] != "${NOMAD_TASK_DIR}/plugins" {
		t.Errorf("command %v, env %s=%q", task.Config["command"], EnvPluginDir, task.Env[EnvPluginDir])
	}
	body, _ := json.Marshal(raw[0])
	for _, want := range []string{`"GetterSource":"http://ferry.service.consul:8083/ferry/plugin-files/acme-sink/`, `"checksum":"md5:9e107d9d372bb6826bd81d3542a419d6"`, `"args":["worker"]`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("register body lacks %s", want)
		}
	}

	// The same plugin again writes nothing; another file registers again.
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, regs, _, _, _ = f.snapshot(); len(regs) != 1 {
		t.Errorf("no-op apply registered again")
	}
	d.Plugin.Source = strings.Replace(d.Plugin.Source, "/1.zip", "/2.zip", 1)
	d.Plugin.Checksum = "md5:e4d909c290d0fb1ca068ffaddf22cbd0"
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, regs, _, _, _ = f.snapshot(); len(regs) != 2 || regs[1].Job.TaskGroups[0].Tasks[0].Artifacts[0].GetterOptions["checksum"] != d.Plugin.Checksum {
		t.Errorf("a new plugin file was not registered: %d registers", len(regs))
	}
}

// TestLongNameLifecycle: a connector with a 128-character name (the most
// the API accepts) is applied, listed, observed through the watch and
// removed, its job ID cut and hashed and its variable path within Nomad's
// 128 bytes.
func TestLongNameLifecycle(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	dep.cfg.WatchWait = time.Second
	ctx := ctxT(t)
	d := testDeployment()
	d.Name = strings.Repeat("long-name-", 12) + "12345678"
	d.Spec.Connector = d.Name
	if len(d.Name) != 128 {
		t.Fatalf("name has %d characters", len(d.Name))
	}
	id := JobID(d.Name)
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if f.jobs[id] == nil || f.vars[VariablePath(d.Name)] == nil || len(VariablePath(d.Name)) > 128 {
		t.Fatalf("job %s or its variable missing", id)
	}
	for _, watched := range []bool{false, true} {
		if watched {
			startWatch(t, dep)
		}
		if names, err := dep.List(ctx); err != nil || !reflect.DeepEqual(names, []string{d.Name}) {
			t.Errorf("list (watch %v) = %v, %v", watched, names, err)
		}
	}
	drain(dep)
	f.setAllocs(id, alloc("l0", id, 0, 0, api.AllocClientStatusRunning, api.AllocDesiredStatusRun, 300))
	waitChange(t, dep, d.Name) // the watch maps the cut job ID back through the meta
	if obs, err := dep.Observe(ctx, d.Name); err != nil || obs.Alive != 1 {
		t.Errorf("observe = %+v, %v", obs, err)
	}
	if err := dep.Remove(ctx, d.Name); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if f.jobs[id] != nil || f.vars[VariablePath(d.Name)] != nil {
		t.Error("job or variable left after remove")
	}
}

// TestWatchAsksOnlyForFerrysJobs: the watch's allocation and deployment
// queries carry a filter for ferry- jobs (allocations without task
// states), and variables are listed under Ferry's prefix only.
func TestWatchAsksOnlyForFerrysJobs(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	dep.cfg.WatchWait = 200 * time.Millisecond
	f.setAllocs("other", &api.AllocationListStub{ID: "x", JobID: "other", TaskGroup: "web"})
	startWatch(t, dep)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range []string{"/v1/allocations", "/v1/deployments"} {
		if len(f.filters[p]) == 0 || f.filters[p][0] != `JobID matches "^ferry-"` {
			t.Errorf("%s filters = %q", p, f.filters[p])
		}
	}
	if len(f.allocTaskStates) == 0 || f.allocTaskStates[0] != "false" {
		t.Errorf("allocation lists ask for task states: %q", f.allocTaskStates)
	}
	if f.requests["GET /v1/vars"] == 0 {
		t.Error("variables are not watched")
	}
}
