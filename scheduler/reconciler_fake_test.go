package scheduler_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/store"
)

// recordingDeployer is an in-memory Deployer that records what it is asked
// to do; for the reconciler's own logic (rendering, timeouts, orphans,
// retries). The end-to-end test uses the real local executor.
type recordingDeployer struct {
	mu        sync.Mutex
	deployed  map[string]scheduler.Deployment
	removed   []string
	failApply int // fail this many Apply calls first
	applies   int
}

var _ scheduler.Deployer = (*recordingDeployer)(nil)

func newRecordingDeployer() *recordingDeployer {
	return &recordingDeployer{deployed: map[string]scheduler.Deployment{}}
}

func (d *recordingDeployer) Apply(ctx context.Context, dep scheduler.Deployment) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applies++
	if d.failApply > 0 {
		d.failApply--
		return errors.New("injected apply failure")
	}
	d.deployed[dep.Name] = dep
	return nil
}

func (d *recordingDeployer) Remove(ctx context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.deployed, name)
	d.removed = append(d.removed, name)
	return nil
}

func (d *recordingDeployer) List(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for n := range d.deployed {
		out = append(out, n)
	}
	return out, nil
}

func (d *recordingDeployer) Observe(ctx context.Context, name string) (scheduler.Observation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dep, ok := d.deployed[name]
	return scheduler.Observation{Deployed: ok, Workers: dep.Workers, Alive: dep.Workers}, nil
}

func (d *recordingDeployer) get(name string) (scheduler.Deployment, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dep, ok := d.deployed[name]
	return dep, ok
}

func TestReconcilerRendersDeployment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	wcArn := account + "worker-configuration/wc/1111"
	props := "key.converter=org.apache.kafka.connect.storage.StringConverter\nconsumer.max.poll.records=100\n"
	if _, err := e.st.WorkerConfigs.Create(ctx, "wc", store.WorkerConfiguration{Name: "wc", Arn: wcArn, State: "ACTIVE",
		Revisions: []store.WorkerConfigurationRevision{{Revision: 1, PropertiesFileContent: base64.StdEncoding.EncodeToString([]byte(props))}}}); err != nil {
		t.Fatal(err)
	}
	s := spec("auto", 1, map[string]string{"connector.class": "io.confluent.connect.s3.S3SinkConnector"})
	s.Capacity = jobs.Capacity{AutoScaling: &jobs.AutoScaling{MinWorkerCount: 1, MaxWorkerCount: 3, McuCount: 2, MaxAutoscalingTaskCount: 10}}
	s.WorkerConfiguration = &jobs.WorkerConfigurationRef{WorkerConfigurationArn: wcArn, Revision: 1}
	e.create(s)
	// The autoscaler asked for more than the maximum.
	if _, err := e.st.Status.Modify(ctx, "auto", false, func(st *jobs.ConnectorStatus) error { st.Workers = 5; return nil }); err != nil {
		t.Fatal(err)
	}
	// A connector record whose status the API never wrote.
	if _, err := e.st.Connectors.Create(ctx, "nostatus", jobs.Connector{Spec: spec("nostatus", 2, nil), Arn: account + "connector/nostatus/2222", Revision: 1}); err != nil {
		t.Fatal(err)
	}
	// A worker configuration revision that does not exist.
	bad := spec("badwc", 1, nil)
	bad.WorkerConfiguration = &jobs.WorkerConfigurationRef{WorkerConfigurationArn: wcArn, Revision: 9}
	e.create(bad)

	d := newRecordingDeployer()
	d.deployed["ghost"] = scheduler.Deployment{Name: "ghost", Workers: 1}
	d.failApply = 2
	e.run(d, func(c *scheduler.Config) { c.StartTimeout = 700 * time.Millisecond })

	var dep scheduler.Deployment
	waitFor(t, "deployment of auto", 10*time.Second, func() bool {
		var ok bool
		dep, ok = d.get("auto")
		return ok
	})
	if dep.Workers != 3 || dep.Mcu != 2 || dep.Revision != 1 || dep.Spec.Workers != 3 || dep.Spec.TasksMax != 10 || dep.Spec.Mcu != 2 {
		t.Errorf("deployment = %+v", dep)
	}
	if dep.Spec.Class != "io.confluent.connect.s3.S3SinkConnector" || dep.Spec.Config["connector.class"] != dep.Spec.Class {
		t.Errorf("class %q, config class %q: the connector's config must win over defaults", dep.Spec.Class, dep.Spec.Config["connector.class"])
	}
	if dep.Spec.Config["store.url"] != "http://127.0.0.1:9000" {
		t.Errorf("worker defaults not filled in: %v", dep.Spec.Config)
	}
	if dep.Spec.WorkerProperties["consumer.max.poll.records"] != "100" || len(dep.Spec.WorkerProperties) != 2 {
		t.Errorf("worker properties = %v", dep.Spec.WorkerProperties)
	}
	if dep.Spec.BootstrapServers != "127.0.0.1:9092" || dep.Spec.NatsURL == "" {
		t.Errorf("spec = %+v", dep.Spec)
	}
	e.waitStatus("auto", 5*time.Second, func(s jobs.ConnectorStatus) bool { return s.Workers == 3 })
	d.mu.Lock()
	applies := d.applies
	d.mu.Unlock()
	if applies < 3 {
		t.Errorf("applies = %d, want the injected failures retried", applies)
	}

	// Orphans are removed; a missing status is created.
	waitFor(t, "ghost removed", 5*time.Second, func() bool { _, ok := d.get("ghost"); return !ok })
	e.waitStatus("nostatus", 5*time.Second, func(s jobs.ConnectorStatus) bool { return s.State == jobs.StateCreating && s.Workers == 2 })

	// A bad worker configuration fails the connector without deploying it.
	st := e.waitStatus("badwc", 5*time.Second, state(jobs.StateFailed))
	if st.StateDescription.Code != scheduler.CodeInvalidConfiguration || !strings.Contains(st.StateDescription.Message, "no revision 9") {
		t.Errorf("badwc: %+v", st.StateDescription)
	}
	if _, ok := d.get("badwc"); ok {
		t.Error("badwc deployed")
	}

	// No worker ever reports: the start timeout fails the connector ...
	st = e.waitStatus("nostatus", 10*time.Second, state(jobs.StateFailed))
	if st.StateDescription.Code != scheduler.CodeStartTimeout || !strings.Contains(st.StateDescription.Message, "0 of 2 workers") {
		t.Errorf("nostatus: %+v", st.StateDescription)
	}

	// ... and workers that then report RUNNING bring it back.
	stopStatuses := publishRunning(e, "nostatus", 2, 1)
	defer stopStatuses()
	st = e.waitStatus("nostatus", 10*time.Second, state(jobs.StateRunning))
	if st.StateDescription != nil || st.Revision != 1 {
		t.Errorf("recovered: %+v", st)
	}
}

// With AssumeExecutionRole, workers are handed the connector's service
// execution role; without it (ferry dev, and servers by default) they are
// not, and connectors use the workers' own credentials.
func TestReconcilerHandsExecutionRole(t *testing.T) {
	for _, assume := range []bool{true, false} {
		t.Run(fmt.Sprintf("assume=%v", assume), func(t *testing.T) {
			e := newEnv(t)
			s := spec("roled", 1, nil)
			s.ServiceExecutionRoleArn = "arn:aws:iam::123456789012:role/roled"
			e.create(s)
			d := newRecordingDeployer()
			e.run(d, func(c *scheduler.Config) { c.AssumeExecutionRole = assume })
			var dep scheduler.Deployment
			waitFor(t, "deployment", 10*time.Second, func() bool {
				var ok bool
				dep, ok = d.get("roled")
				return ok
			})
			want := ""
			if assume {
				want = s.ServiceExecutionRoleArn
			}
			if dep.Spec.ServiceExecutionRoleArn != want {
				t.Errorf("worker spec role %q, want %q", dep.Spec.ServiceExecutionRoleArn, want)
			}
		})
	}
}
