package scheduler_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/local"
	"github.com/ferryhq/ferry/scheduler/local/testworker"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	testworker.MaybeRun()
	os.Exit(m.Run())
}

const account = "arn:aws:kafkaconnect:us-east-1:000000000000:"

// env is a store, NATS and a way to start reconcilers and executors on them.
type env struct {
	t       *testing.T
	st      *store.Store
	nc      *nats.Conn
	dataDir string
	log     zerolog.Logger
}

func newEnv(t *testing.T) *env {
	st, nc := storetest.Open(t)
	return &env{t: t, st: st, nc: nc, dataDir: t.TempDir(), log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)}
}

func (e *env) executor() *local.Executor {
	x, err := local.New(local.Config{
		Command:     []string{os.Args[0], "-test.run=^$"},
		Env:         []string{testworker.EnvFlag + "=1"},
		DataDir:     e.dataDir,
		Logger:      e.log,
		KillTimeout: 3 * time.Second,
		MinBackoff:  50 * time.Millisecond,
		MaxBackoff:  300 * time.Millisecond,
		StableAfter: 2 * time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = x.Close() })
	return x
}

// run starts a reconciler over d and returns a function that stops it and
// waits for Run to return.
func (e *env) run(d scheduler.Deployer, mod func(*scheduler.Config)) (stop func()) {
	cfg := scheduler.Config{
		Store: e.st, Conn: e.nc, Deployer: d, Logger: e.log,
		NatsURL:         e.nc.ConnectedUrl(),
		WorkerDefaults:  map[string]string{"store.url": "http://127.0.0.1:9000", "connector.class": "overridden"},
		MetricsInterval: 200 * time.Millisecond,
		Interval:        200 * time.Millisecond,
		StartTimeout:    15 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := scheduler.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("reconciler: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func spec(name string, workers int, cfg map[string]string) jobs.ConnectorSpec {
	c := map[string]string{"connector.class": "test", "tasks.max": "4"}
	for k, v := range cfg {
		c[k] = v
	}
	return jobs.ConnectorSpec{
		ConnectorName:          name,
		Capacity:               jobs.Capacity{ProvisionedCapacity: &jobs.ProvisionedCapacity{McuCount: 1, WorkerCount: workers}},
		ConnectorConfiguration: c,
		KafkaCluster:           jobs.KafkaCluster{ApacheKafkaCluster: jobs.ApacheKafkaCluster{BootstrapServers: "127.0.0.1:9092"}},
		KafkaConnectVersion:    "3.7.x",
	}
}

// create stores a connector as the API's CreateConnector does.
func (e *env) create(s jobs.ConnectorSpec) string {
	e.t.Helper()
	ctx := context.Background()
	id := "0000-" + s.ConnectorName
	arn := account + "connector/" + s.ConnectorName + "/" + id
	if _, err := e.st.Connectors.Create(ctx, s.ConnectorName, jobs.Connector{Spec: s, Arn: arn, CreationTime: time.Now(), Revision: 1}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.Status.Create(ctx, s.ConnectorName, jobs.ConnectorStatus{State: jobs.StateCreating, Workers: s.Capacity.InitialWorkers(), Updated: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.Tags.Put(ctx, id, map[string]string{"team": "a"}); err != nil {
		e.t.Fatal(err)
	}
	return arn
}

// update stores a new spec revision and its operation as UpdateConnector does,
// and returns the operation key.
func (e *env) update(name string, cfg map[string]string) string {
	e.t.Helper()
	ctx := context.Background()
	ce, err := e.st.Connectors.Get(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	c := ce.Value
	old := c.Spec.ConnectorConfiguration
	c.Spec.ConnectorConfiguration = cfg
	c.Revision++
	if _, err := e.st.Connectors.Update(ctx, name, c, ce.Revision); err != nil {
		e.t.Fatal(err)
	}
	opID := "op-" + time.Now().Format("150405.000000000")
	opID = strings.ReplaceAll(opID, ".", "")
	arn, _ := jobs.ParseARN(c.Arn)
	opArn := jobs.ARN{Region: arn.Region, Account: arn.Account, Kind: jobs.KindConnectorOperation, Name: name, ID: arn.ID, Sub: opID}.String()
	op := store.Operation{
		Arn: opArn, ID: opID, ConnectorArn: c.Arn, ConnectorName: name, Type: store.OpUpdateConnectorConfiguration,
		State: store.OpInProgress, TargetRevision: c.Revision, OriginConfig: old, TargetConfig: cfg, CreationTime: time.Now(),
		Steps: []store.Step{
			{Type: store.StepInitializeUpdate, State: store.StepCompleted},
			{Type: store.StepValidateUpdate, State: store.StepPending},
			{Type: store.StepUpdateConnectorConfiguration, State: store.StepPending},
			{Type: store.StepFinalizeUpdate, State: store.StepPending},
		},
	}
	key := store.OperationKey(name, opID)
	if _, err := e.st.Operations.Create(ctx, key, op); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.Status.Modify(ctx, name, false, func(s *jobs.ConnectorStatus) error {
		s.State, s.Operation, s.StateDescription = jobs.StateUpdating, opArn, nil
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return key
}

func (e *env) waitStatus(name string, timeout time.Duration, cond func(jobs.ConnectorStatus) bool) jobs.ConnectorStatus {
	e.t.Helper()
	var last jobs.ConnectorStatus
	deadline := time.Now().Add(timeout)
	for {
		se, err := e.st.Status.Get(context.Background(), name)
		if err == nil {
			last = se.Value
			if cond(last) {
				return last
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("connector %s: timed out; last status %+v (desc %+v)", name, last, last.StateDescription)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func state(s string) func(jobs.ConnectorStatus) bool {
	return func(st jobs.ConnectorStatus) bool { return st.State == s }
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func pidsOf(x *local.Executor, name string) map[int]int {
	m := map[int]int{}
	for _, p := range x.Processes(name) {
		m[p.Index] = p.PID
	}
	return m
}

// TestReconcilerEndToEnd drives connectors through the real local executor
// and test workers publishing status over NATS.
func TestReconcilerEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	x := e.executor()
	stop := e.run(x, nil)

	// Create: CREATING → RUNNING once both workers report.
	arn := e.create(spec("c1", 2, nil))
	e.create(spec("bad", 1, map[string]string{"test.mode": "fail", "test.message": "cannot reach bucket logs"}))
	e.create(spec("crashy", 1, map[string]string{"test.mode": "crash"}))
	st := e.waitStatus("c1", 20*time.Second, state(jobs.StateRunning))
	if st.Revision != 1 || st.Workers != 2 || st.StateDescription != nil {
		t.Fatalf("running status = %+v", st)
	}
	if ps := x.Processes("c1"); len(ps) != 2 || ps[0].Revision != 1 {
		t.Fatalf("processes = %+v", ps)
	}
	ws, err := jobs.LoadWorkerSpec(e.dataDir + "/workers/c1/rev-1/spec.json")
	if err != nil {
		t.Fatal(err)
	}
	if ws.ConnectorArn != arn || ws.Class != "test" || ws.Config["store.url"] != "http://127.0.0.1:9000" ||
		ws.TasksMax != 4 || ws.Workers != 2 || ws.NatsURL == "" || ws.MetricsInterval != "200ms" {
		t.Fatalf("worker spec = %+v", ws)
	}

	// A worker reporting FAILED fails its connector with its message; a
	// crash-looping one with its stderr.
	st = e.waitStatus("bad", 20*time.Second, state(jobs.StateFailed))
	if st.StateDescription == nil || st.StateDescription.Code != scheduler.CodeWorkerFailed ||
		!strings.Contains(st.StateDescription.Message, "cannot reach bucket logs") {
		t.Fatalf("bad: %+v", st.StateDescription)
	}
	st = e.waitStatus("crashy", 20*time.Second, state(jobs.StateFailed))
	if st.StateDescription == nil || st.StateDescription.Code != scheduler.CodeWorkerCrashLoop ||
		!strings.Contains(st.StateDescription.Message, "boom: bad config") {
		t.Fatalf("crashy: %+v", st.StateDescription)
	}

	// Update: workers replaced, RUNNING at revision 2, UPDATE_COMPLETE.
	before := pidsOf(x, "c1")
	opKey := e.update("c1", map[string]string{"connector.class": "test", "tasks.max": "2", "flavour": "new"})
	st = e.waitStatus("c1", 20*time.Second, func(s jobs.ConnectorStatus) bool { return s.State == jobs.StateRunning && s.Revision == 2 })
	if st.Operation != "" {
		t.Errorf("operation still set after update: %q", st.Operation)
	}
	op, err := e.st.Operations.Get(ctx, opKey)
	if err != nil {
		t.Fatal(err)
	}
	if op.Value.State != store.OpComplete || op.Value.EndTime == nil || op.Value.ErrorInfo != nil {
		t.Fatalf("operation = %+v", op.Value)
	}
	for _, s := range op.Value.Steps {
		if s.State != store.StepCompleted {
			t.Errorf("step %s = %s", s.Type, s.State)
		}
	}
	after := pidsOf(x, "c1")
	if len(after) != 2 {
		t.Fatalf("after update: %v", after)
	}
	for idx, pid := range before {
		if after[idx] == pid || alive(pid) {
			t.Errorf("worker %d (pid %d) not replaced by the update", idx, pid)
		}
	}

	// An update whose workers fail: UPDATE_FAILED with errorInfo, connector
	// FAILED with the same message, no rollback.
	opKey = e.update("c1", map[string]string{"connector.class": "test", "test.mode": "fail", "test.message": "topic orders does not exist"})
	st = e.waitStatus("c1", 20*time.Second, state(jobs.StateFailed))
	op, err = e.st.Operations.Get(ctx, opKey)
	if err != nil {
		t.Fatal(err)
	}
	if op.Value.State != store.OpFailed || op.Value.ErrorInfo == nil || op.Value.EndTime == nil ||
		!strings.Contains(op.Value.ErrorInfo.Message, "topic orders does not exist") {
		t.Fatalf("failed operation = %+v (%+v)", op.Value, op.Value.ErrorInfo)
	}
	// The operation keeps the failure it ended with; the connector's
	// description may since name another failing worker with the same cause.
	if op.Value.ErrorInfo.Code != st.StateDescription.Code ||
		!strings.Contains(st.StateDescription.Message, "topic orders does not exist") {
		t.Errorf("errorInfo %+v does not match stateDescription %+v", op.Value.ErrorInfo, st.StateDescription)
	}
	if ps := x.Processes("c1"); len(ps) != 2 || ps[0].Revision != 3 {
		t.Fatalf("after failed update processes = %+v (want revision 3, no rollback)", ps)
	}

	// Fix it: a good revision 4 brings it back to RUNNING.
	e.update("c1", map[string]string{"connector.class": "test"})
	e.waitStatus("c1", 20*time.Second, func(s jobs.ConnectorStatus) bool { return s.State == jobs.StateRunning && s.Revision == 4 })

	// A new reconciler on the same executor does not duplicate workers.
	running := pidsOf(x, "c1")
	stop()
	stop = e.run(x, nil)
	time.Sleep(time.Second)
	if got := pidsOf(x, "c1"); len(got) != 2 || got[0] != running[0] || got[1] != running[1] {
		t.Fatalf("new reconciler changed workers: %v → %v", running, got)
	}

	// `ferry dev` restarts: executor and reconciler are new; the running
	// connector gets its workers back, once each.
	stop()
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	for idx, pid := range running {
		if alive(pid) {
			t.Fatalf("worker %d alive after executor close", idx)
		}
	}
	x = e.executor()
	stop = e.run(x, nil)
	waitFor(t, "workers back after restart", 20*time.Second, func() bool {
		ps := x.Processes("c1")
		return len(ps) == 2 && ps[0].Index == 0 && ps[1].Index == 1 && ps[0].Revision == 4
	})
	e.waitStatus("c1", 20*time.Second, state(jobs.StateRunning))
	if n := len(x.Processes("c1")); n != 2 {
		t.Fatalf("%d workers after restart, want 2", n)
	}

	// Delete: workers stop, then every record goes.
	back := pidsOf(x, "c1")
	if _, err := e.st.Connectors.Modify(ctx, "c1", false, func(c *jobs.Connector) error { c.Deleting = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Status.Modify(ctx, "c1", false, func(s *jobs.ConnectorStatus) error { s.State = jobs.StateDeleting; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "connector record gone", 20*time.Second, func() bool {
		_, err := e.st.Connectors.Get(ctx, "c1")
		return errors.Is(err, store.ErrNotFound)
	})
	if _, err := e.st.Status.Get(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("status left: %v", err)
	}
	if ops, _ := e.st.Operations.List(ctx, "c1."); len(ops) != 0 {
		t.Errorf("operations left: %d", len(ops))
	}
	if _, err := e.st.Tags.Get(ctx, "0000-c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("tags left: %v", err)
	}
	if ps := x.Processes("c1"); len(ps) != 0 {
		t.Errorf("processes left: %+v", ps)
	}
	for idx, pid := range back {
		if alive(pid) {
			t.Errorf("worker %d (pid %d) alive after delete", idx, pid)
		}
	}
	if _, err := os.Stat(e.dataDir + "/workers/c1"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spec files left: %v", err)
	}
}
