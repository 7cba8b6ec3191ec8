package scheduler_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler"
)

// kindError is an error that says what retrying can do, as the nomad
// package's errors do (the scheduler reads only the methods).
type kindError struct {
	msg                    string
	permanent, unavailable bool
}

func (e *kindError) Error() string     { return e.msg }
func (e *kindError) Permanent() bool   { return e.permanent }
func (e *kindError) Unavailable() bool { return e.unavailable }

// scriptedDeployer fails Apply as told per connector (or for all with
// "*"), optionally after a delay (a hanging platform), and records the
// order of Apply calls.
type scriptedDeployer struct {
	*recordingDeployer
	mu    sync.Mutex
	errs  map[string]error
	delay time.Duration
	calls []string
}

func (d *scriptedDeployer) setErr(name string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		delete(d.errs, name)
		return
	}
	d.errs[name] = err
}

func (d *scriptedDeployer) Apply(ctx context.Context, dep scheduler.Deployment) error {
	d.mu.Lock()
	d.calls = append(d.calls, dep.Name)
	err, ok := d.errs[dep.Name]
	if !ok {
		err = d.errs["*"]
	}
	delay := d.delay
	d.mu.Unlock()
	if err != nil {
		time.Sleep(delay)
		return err
	}
	return d.recordingDeployer.Apply(ctx, dep)
}

func (d *scriptedDeployer) applied() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// TestRejectedDeploymentFails: a deployment the platform refuses for good
// (ACL, invalid job, a foreign job) turns the connector FAILED at once with
// the refusal on one line, instead of leaving it CREATING; once the
// platform accepts it and its workers run, it recovers.
func TestRejectedDeploymentFails(t *testing.T) {
	e := newEnv(t)
	e.create(spec("denied", 1, nil))
	d := &scriptedDeployer{recordingDeployer: newRecordingDeployer(), errs: map[string]error{
		"denied": &kindError{msg: "apply \"denied\": register job ferry-denied: Unexpected response code: 403 (Permission denied)\n\tfix the policy", permanent: true},
	}}
	e.run(d, func(c *scheduler.Config) { c.StartTimeout = time.Hour })
	st := e.waitStatus("denied", 5*time.Second, state(jobs.StateFailed))
	want := `apply "denied": register job ferry-denied: Unexpected response code: 403 (Permission denied) fix the policy`
	if st.StateDescription == nil || st.StateDescription.Code != scheduler.CodeDeploymentRejected || st.StateDescription.Message != want {
		t.Fatalf("state description = %+v, want %s: %s", st.StateDescription, scheduler.CodeDeploymentRejected, want)
	}

	d.setErr("denied", nil)
	stopStatuses := publishRunning(e, "denied", 1, 1)
	defer stopStatuses()
	st = e.waitStatus("denied", 10*time.Second, state(jobs.StateRunning))
	if st.StateDescription != nil {
		t.Errorf("recovered with %+v", st.StateDescription)
	}
}

// TestTransientApplyErrorTimesOut: a pending connector whose deployment
// keeps failing for a reason that is not permanent (Nomad down) fails once
// its start timeout passes, saying the last deployment error; a RUNNING
// one keeps its state.
func TestTransientApplyErrorTimesOut(t *testing.T) {
	e := newEnv(t)
	e.create(spec("stuck", 2, nil))
	d := &scriptedDeployer{recordingDeployer: newRecordingDeployer(), errs: map[string]error{
		"stuck": errors.New("register job ferry-stuck: connection reset by peer"),
	}}
	e.run(d, func(c *scheduler.Config) {
		c.StartTimeout = 700 * time.Millisecond
		c.MaxBackoff = 200 * time.Millisecond
	})
	time.Sleep(300 * time.Millisecond)
	if st := e.waitStatus("stuck", time.Second, func(jobs.ConnectorStatus) bool { return true }); st.State != jobs.StateCreating {
		t.Fatalf("before the timeout: %s", st.State)
	}
	st := e.waitStatus("stuck", 10*time.Second, state(jobs.StateFailed))
	if st.StateDescription.Code != scheduler.CodeStartTimeout || !strings.Contains(st.StateDescription.Message, "last deployment error: register job ferry-stuck: connection reset by peer") {
		t.Errorf("state description = %+v", st.StateDescription)
	}
}

// TestUnavailablePlatformStopsThePass: while the platform is unavailable
// (here it hangs 200 ms, then says so) a pass stops at the first connector
// instead of waiting out the same failure for every one, and the whole
// pass backs off; when the platform is back every connector is deployed.
func TestUnavailablePlatformStopsThePass(t *testing.T) {
	e := newEnv(t)
	names := []string{"c1", "c2", "c3", "c4", "c5"}
	for _, n := range names {
		e.create(spec(n, 1, nil))
	}
	d := &scriptedDeployer{recordingDeployer: newRecordingDeployer(), delay: 200 * time.Millisecond, errs: map[string]error{
		"*": &kindError{msg: "read job: dial tcp 127.0.0.1:4646: connect: connection refused", unavailable: true},
	}}
	e.run(d, func(c *scheduler.Config) { c.MaxBackoff = 400 * time.Millisecond })
	time.Sleep(2 * time.Second)
	calls := d.applied()
	tried := map[string]bool{}
	for _, c := range calls {
		tried[c] = true
	}
	// Without the breaker every pass would try all five (1 s per pass).
	if len(tried) != 1 || len(calls) == 0 || len(calls) > 8 {
		t.Errorf("apply calls while unavailable: %v; want the first connector only, a few times", calls)
	}
	for _, n := range names {
		if st := e.waitStatus(n, time.Second, func(jobs.ConnectorStatus) bool { return true }); st.State != jobs.StateCreating {
			t.Errorf("%s is %s while the platform was unavailable", n, st.State)
		}
	}
	d.setErr("*", nil)
	waitFor(t, "every connector deployed", 10*time.Second, func() bool {
		for _, n := range names {
			if _, ok := d.get(n); !ok {
				return false
			}
		}
		return true
	})
}

// publishRunning publishes RUNNING statuses of workers 0..n-1 of name at
// revision until the returned function is called.
func publishRunning(e *env, name string, n int, revision int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for i := range n {
				w := "w" + string(rune('0'+i))
				b, _ := json.Marshal(jobs.WorkerStatus{Connector: name, Worker: w, Index: i, Revision: revision, State: jobs.WorkerRunning, Time: time.Now()})
				_ = e.nc.Publish(jobs.StatusSubject(name, w), b)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}
