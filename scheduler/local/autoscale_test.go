package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/autoscale"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
	"github.com/rs/zerolog"
)

// TestAutoscaleWorkerProcesses is the autoscaler end to end over real
// worker processes: test workers burn CPU while a file exists and report
// their measured CPU; the scaler scales the connector out to its maximum,
// the reconciler starts the second process through this executor (and
// hands it tasks.max for two workers), and once the load stops the
// connector scales back in to its minimum. Operations record both.
func TestAutoscaleWorkerProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	st, nc := storetest.Open(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	e := newExecutor(t, nil)
	burnFile := filepath.Join(t.TempDir(), "burn")

	const name = "busy"
	arn := jobs.ARN{Region: "us-east-1", Account: "000000000000", Kind: jobs.KindConnector, Name: name, ID: "00000000-0000-4000-8000-00000000000a"}.String()
	conn := jobs.Connector{Arn: arn, Revision: 1, CreationTime: time.Now(), Spec: jobs.ConnectorSpec{
		ConnectorName: name,
		ConnectorConfiguration: map[string]string{
			"connector.class": "test", "test.burn.file": burnFile,
			autoscale.KeyScaleOutCooldown: "1000", autoscale.KeyScaleInCooldown: "2000",
		},
		KafkaCluster: jobs.KafkaCluster{ApacheKafkaCluster: jobs.ApacheKafkaCluster{BootstrapServers: "127.0.0.1:9092"}},
		Capacity: jobs.Capacity{AutoScaling: &jobs.AutoScaling{MinWorkerCount: 1, MaxWorkerCount: 2, McuCount: 1,
			// A busy worker measures ~100 % of its core, less on a loaded
			// machine: a low scale-out edge keeps the test about scaling.
			ScaleInPolicy: &jobs.ScalePolicy{CpuUtilizationPercentage: 10}, ScaleOutPolicy: &jobs.ScalePolicy{CpuUtilizationPercentage: 40}}},
	}}
	if _, err := st.Connectors.Create(ctx, name, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Status.Create(ctx, name, jobs.ConnectorStatus{State: jobs.StateCreating, Workers: 1}); err != nil {
		t.Fatal(err)
	}

	rec, err := scheduler.New(scheduler.Config{
		Store: st, Conn: nc, Deployer: e, Logger: log, NatsURL: nc.ConnectedUrl(),
		MetricsInterval: 250 * time.Millisecond, Interval: 200 * time.Millisecond, StartTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := autoscale.New(autoscale.Config{Store: st, Conn: nc, Logger: log, Settings: autoscale.Settings{
		EvaluationInterval: 500 * time.Millisecond, Window: time.Second, StaleAfter: time.Second, ScaleTimeout: 20 * time.Second,
	}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(2)
	go func() { defer wg.Done(); _ = rec.Run(runCtx) }()
	go func() { defer wg.Done(); _ = sc.Run(runCtx) }()

	statusNow := func() jobs.ConnectorStatus {
		s, err := st.Status.Get(ctx, name)
		if err != nil {
			return jobs.ConnectorStatus{}
		}
		return s.Value
	}
	waitFor(t, "RUNNING with 1 worker", 20*time.Second, func() bool {
		s := statusNow()
		return s.State == jobs.StateRunning && s.Workers == 1
	})

	// Load: scale out to the maximum.
	if err := os.WriteFile(burnFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a scale-out to 2 workers, finished", 20*time.Second, func() bool {
		s := statusNow()
		return s.Workers == 2 && s.Operation == "" && len(pids(e, name)) == 2
	})
	specPath := filepath.Join(e.cfg.DataDir, "workers", name, "rev-1", "spec.json")
	spec, err := jobs.LoadWorkerSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Workers != 2 || spec.TasksMax != 4 {
		t.Fatalf("spec after the scale-out: workers %d, tasks.max %d; want 2 and 4", spec.Workers, spec.TasksMax)
	}
	first := pids(e, name)[0]

	// No load: back to the minimum, stopping the second process only.
	if err := os.Remove(burnFile); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a scale-in to 1 worker, finished", 20*time.Second, func() bool {
		s := statusNow()
		return s.Workers == 1 && s.Operation == "" && len(pids(e, name)) == 1
	})
	if p := pids(e, name)[0]; p != first {
		t.Fatalf("worker 0 was restarted by the scales (pid %d, then %d)", first, p)
	}

	ops, err := st.Operations.List(ctx, name+".")
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for _, o := range ops {
		op := o.Value
		if op.Type != store.OpUpdateWorkerSetting || op.State != store.OpComplete || !strings.HasPrefix(op.Reason, autoscale.ReasonPrefix) {
			t.Fatalf("unexpected operation %+v", op)
		}
		t.Logf("%s %d → %d: %s", op.CreationTime.Format(time.StampMilli), op.OriginWorkers, op.TargetWorkers, op.Reason)
		path = append(path, op.CreationTime.Format(time.RFC3339Nano)+" "+itoa(op.OriginWorkers)+"→"+itoa(op.TargetWorkers))
	}
	if len(ops) != 2 {
		t.Fatalf("operations %v, want one scale-out and one scale-in", path)
	}
	out, in := ops[0].Value, ops[1].Value
	if out.CreationTime.After(in.CreationTime) {
		out, in = in, out
	}
	if out.OriginWorkers != 1 || out.TargetWorkers != 2 || in.OriginWorkers != 2 || in.TargetWorkers != 1 {
		t.Fatalf("operations %v, want 1→2 then 2→1", path)
	}
}
