package autoscale

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/api"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// fakeDeployer runs nothing: it remembers each connector's deployment, and
// a goroutine of the test publishes RUNNING statuses for its workers as
// real workers would. aliveAtLeast keeps workers "alive" beyond the count,
// as a scale-in's stopping workers are for a while.
type fakeDeployer struct {
	mu           sync.Mutex
	deployed     map[string]scheduler.Deployment
	aliveAtLeast map[string]int
}

var _ scheduler.Deployer = (*fakeDeployer)(nil)

func (d *fakeDeployer) Apply(_ context.Context, dep scheduler.Deployment) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deployed[dep.Name] = dep
	return nil
}

func (d *fakeDeployer) Remove(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.deployed, name)
	return nil
}

func (d *fakeDeployer) List(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for n := range d.deployed {
		out = append(out, n)
	}
	return out, nil
}

func (d *fakeDeployer) Observe(_ context.Context, name string) (scheduler.Observation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dep, ok := d.deployed[name]
	return scheduler.Observation{Deployed: ok, Workers: dep.Workers, Alive: max(dep.Workers, d.aliveAtLeast[name])}, nil
}

func (d *fakeDeployer) get(name string) (scheduler.Deployment, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dep, ok := d.deployed[name]
	return dep, ok
}

func (d *fakeDeployer) holdAlive(name string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aliveAtLeast[name] = n
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type catalog struct{}

func (catalog) Provides(class string) bool                                 { return class == "datagen" }
func (catalog) ValidateConfig(string, map[string]string) []jobs.FieldError { return nil }

// TestScalerEndToEnd drives the real API, store, reconciler and scaler over
// in-process NATS: synthetic metrics scale an autoscaled connector out and
// back in; the status, the deployment and the operations follow, and the
// kafkaconnect client sees the operations.
func TestScalerEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, nc := storetest.Open(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)

	srv, err := api.New(api.Config{Store: st, Region: "eu-west-1", Account: "123456789012", Catalog: catalog{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	client := kafkaconnect.New(kafkaconnect.Options{
		BaseEndpoint: aws.String(hs.URL), Region: "eu-west-1", Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFERRYTEST", "secret", ""),
	})

	dep := &fakeDeployer{deployed: map[string]scheduler.Deployment{}, aliveAtLeast: map[string]int{}}
	clock := &fakeClock{t: time.Now().UTC()}
	rec, err := scheduler.New(scheduler.Config{
		Store: st, Conn: nc, Deployer: dep, Logger: log, Now: clock.Now,
		MetricsInterval: time.Second, Interval: 100 * time.Millisecond, StartTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := New(Config{Store: st, Conn: nc, Logger: log, Now: clock.Now,
		Settings: Settings{EvaluationInterval: time.Hour}}) // the test calls Evaluate
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	wg.Add(3)
	go func() { defer wg.Done(); _ = rec.Run(runCtx) }()
	go func() { defer wg.Done(); _ = sc.Run(runCtx) }()
	go func() { defer wg.Done(); publishStatuses(runCtx, nc, dep, "hot") }()

	out, err := client.CreateConnector(ctx, &kafkaconnect.CreateConnectorInput{
		ConnectorName: aws.String("hot"),
		Capacity: &types.Capacity{AutoScaling: &types.AutoScaling{
			MinWorkerCount: 1, MaxWorkerCount: 3, McuCount: 1,
			ScaleInPolicy:  &types.ScaleInPolicy{CpuUtilizationPercentage: 20},
			ScaleOutPolicy: &types.ScaleOutPolicy{CpuUtilizationPercentage: 80},
		}},
		ConnectorConfiguration: map[string]string{
			"connector.class": "datagen",
			// Ferry's own overrides pass the API's validation.
			KeyScaleInCooldown: "60000",
		},
		KafkaCluster: &types.KafkaCluster{ApacheKafkaCluster: &types.ApacheKafkaCluster{
			BootstrapServers: aws.String("127.0.0.1:9092"), Vpc: &types.Vpc{Subnets: []string{"subnet-1"}},
		}},
		KafkaClusterClientAuthentication: &types.KafkaClusterClientAuthentication{AuthenticationType: types.KafkaClusterClientAuthenticationTypeNone},
		KafkaClusterEncryptionInTransit:  &types.KafkaClusterEncryptionInTransit{EncryptionType: types.KafkaClusterEncryptionInTransitTypePlaintext},
		KafkaConnectVersion:              aws.String("3.7.x"),
		Plugins: []types.Plugin{{CustomPlugin: &types.CustomPlugin{
			CustomPluginArn: aws.String(srv.BuiltinPluginArn()), Revision: 1,
		}}},
		ServiceExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/ferry"),
	})
	if err != nil {
		t.Fatalf("create connector: %v", err)
	}
	connArn := aws.ToString(out.ConnectorArn)
	waitStatus(t, ctx, st, "hot", "RUNNING with 1 worker", func(s jobs.ConnectorStatus) bool {
		return s.State == jobs.StateRunning && s.Workers == 1 && s.Operation == ""
	})

	// Nothing reported yet: no decision.
	clock.Add(10 * time.Second)
	sc.Evaluate(ctx)
	if s := status(t, ctx, st, "hot"); s.Workers != 1 || s.Operation != "" {
		t.Fatalf("scaled without metrics: %+v", s)
	}

	// One hot worker: scale out to ceil(1 × 95 / 80) = 2.
	publishMetrics(t, sc, nc, clock, "hot", 95, "hot-0")
	clock.Add(10 * time.Second)
	sc.Evaluate(ctx)
	s := status(t, ctx, st, "hot")
	if s.Workers != 2 || s.Operation == "" {
		t.Fatalf("after a hot window: status %+v, want 2 workers and an operation", s)
	}
	outOp := s.Operation
	op := operation(t, ctx, st, "hot", outOp)
	if op.Type != store.OpUpdateWorkerSetting || op.OriginWorkers != 1 || op.TargetWorkers != 2 ||
		!strings.HasPrefix(op.Reason, ReasonPrefix) || !strings.Contains(op.Reason, "cpu 95.0%") {
		t.Fatalf("scale-out operation %+v", op)
	}
	if sc.PolicyPhase("hot") != Scaling {
		t.Fatalf("phase %s, want scaling", sc.PolicyPhase("hot"))
	}
	// The reconciler deploys two workers (tasks.max follows: 2 × 1 MCU × 2)
	// and completes the operation once both run.
	waitStatus(t, ctx, st, "hot", "the scale-out to finish", func(s jobs.ConnectorStatus) bool { return s.Operation == "" && s.Workers == 2 })
	if d, _ := dep.get("hot"); d.Workers != 2 || d.Spec.TasksMax != 4 || d.Spec.Workers != 2 {
		t.Fatalf("deployment after the scale-out: workers %d, spec workers %d tasks.max %d", d.Workers, d.Spec.Workers, d.Spec.TasksMax)
	}
	if op := operation(t, ctx, st, "hot", outOp); op.State != store.OpComplete || op.EndTime == nil {
		t.Fatalf("scale-out operation not complete: %+v", op)
	}
	clock.Add(5 * time.Second)
	sc.Evaluate(ctx)
	if p := sc.PolicyPhase("hot"); p != Cooldown {
		t.Fatalf("phase %s after the scale, want cooldown", p)
	}

	// Idle, but one of the two workers went silent: no scale-in.
	clock.Add(2 * time.Minute)
	publishMetrics(t, sc, nc, clock, "hot", 2, "hot-0")
	clock.Add(10 * time.Second)
	sc.Evaluate(ctx)
	if s := status(t, ctx, st, "hot"); s.Workers != 2 || s.Operation != "" {
		t.Fatalf("scaled in on partial data: %+v", s)
	}

	// Both idle, after the (overridden, 1 min) scale-in cooldown: scale in
	// to 1; the operation waits for the second worker to stop.
	dep.holdAlive("hot", 2)
	publishMetrics(t, sc, nc, clock, "hot", 2, "hot-0", "hot-1")
	clock.Add(10 * time.Second)
	sc.Evaluate(ctx)
	s = status(t, ctx, st, "hot")
	if s.Workers != 1 || s.Operation == "" {
		t.Fatalf("after an idle window: status %+v, want 1 worker and an operation", s)
	}
	inOp := s.Operation
	time.Sleep(500 * time.Millisecond) // several reconcile passes
	if op := operation(t, ctx, st, "hot", inOp); op.State != store.OpInProgress {
		t.Fatalf("scale-in finished while 2 workers were alive: %+v", op)
	}
	dep.holdAlive("hot", 0)
	waitStatus(t, ctx, st, "hot", "the scale-in to finish", func(s jobs.ConnectorStatus) bool { return s.Operation == "" && s.Workers == 1 })
	if op := operation(t, ctx, st, "hot", inOp); op.State != store.OpComplete || op.OriginWorkers != 2 || op.TargetWorkers != 1 {
		t.Fatalf("scale-in operation %+v", op)
	}

	// The MSK Connect API shows both, newest first, and the worker count.
	ops, err := client.ListConnectorOperations(ctx, &kafkaconnect.ListConnectorOperationsInput{ConnectorArn: aws.String(connArn)})
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, o := range ops.ConnectorOperations {
		if o.ConnectorOperationType == types.ConnectorOperationTypeUpdateWorkerSetting && o.ConnectorOperationState == types.ConnectorOperationStateUpdateComplete {
			arns = append(arns, aws.ToString(o.ConnectorOperationArn))
		}
	}
	if len(arns) != 2 || arns[0] != inOp || arns[1] != outOp {
		t.Fatalf("operations %v, want [%s %s]", arns, inOp, outOp)
	}
	desc, err := client.DescribeConnectorOperation(ctx, &kafkaconnect.DescribeConnectorOperationInput{ConnectorOperationArn: aws.String(outOp)})
	if err != nil {
		t.Fatal(err)
	}
	if desc.OriginWorkerSetting == nil || desc.TargetWorkerSetting == nil ||
		desc.OriginWorkerSetting.Capacity.AutoScaling == nil || desc.TargetWorkerSetting.Capacity.AutoScaling == nil {
		t.Fatalf("describe operation: no worker settings: %+v", desc)
	}
	t.Logf("describe scale-out: origin %+v target %+v", desc.OriginWorkerSetting.Capacity.AutoScaling, desc.TargetWorkerSetting.Capacity.AutoScaling)

	// A scaler that starts afresh (a new leader) keeps the cooldown: the
	// load is hot again right after the scale-in, but it holds.
	sc2, err := New(Config{Store: st, Conn: nc, Logger: log, Now: clock.Now, Settings: Settings{EvaluationInterval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	sc2.window.Add(jobs.Metrics{Connector: "hot", Worker: "hot-0", CPUPercent: 99}, clock.Now())
	sc2.Evaluate(ctx)
	if s := status(t, ctx, st, "hot"); s.Workers != 1 || s.Operation != "" {
		t.Fatalf("a new scaler ignored the cooldown: %+v", s)
	}
	if p := sc2.PolicyPhase("hot"); p != Cooldown {
		t.Fatalf("new scaler's phase %s, want cooldown", p)
	}
}

// publishMetrics publishes one sample per worker over NATS and waits for
// the scaler to have them.
func publishMetrics(t *testing.T, sc *Scaler, nc *nats.Conn, clock *fakeClock, connector string, cpu float64, workers ...string) {
	t.Helper()
	for _, w := range workers {
		b, _ := json.Marshal(jobs.Metrics{Connector: connector, Worker: w, Time: time.Now(), CPUPercent: cpu, Mcu: 1})
		if err := nc.Publish(jobs.MetricsSubject(connector, w), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	deadline := time.Now().Add(5 * time.Second)
	for sc.window.Load(connector, now.Add(-time.Millisecond), now, time.Second).Reporting < len(workers) {
		if time.Now().After(deadline) {
			t.Fatal("metrics did not reach the scaler")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publishStatuses plays the workers: every 100 ms each deployed worker
// reports RUNNING at the deployed revision.
func publishStatuses(ctx context.Context, nc *nats.Conn, dep *fakeDeployer, name string) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		d, ok := dep.get(name)
		if !ok {
			continue
		}
		for i := 0; i < d.Workers; i++ {
			id := fmt.Sprintf("%s-%d", name, i)
			b, _ := json.Marshal(jobs.WorkerStatus{Connector: name, Worker: id, Index: i, Revision: d.Revision, State: jobs.WorkerRunning, Time: time.Now()})
			_ = nc.Publish(jobs.StatusSubject(name, id), b)
		}
	}
}

func status(t *testing.T, ctx context.Context, st *store.Store, name string) jobs.ConnectorStatus {
	t.Helper()
	e, err := st.Status.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return e.Value
}

func waitStatus(t *testing.T, ctx context.Context, st *store.Store, name, what string, ok func(jobs.ConnectorStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := st.Status.Get(ctx, name)
		if err == nil && ok(e.Value) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: status %+v (err %v)", what, e.Value, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func operation(t *testing.T, ctx context.Context, st *store.Store, name, arn string) store.Operation {
	t.Helper()
	a, err := jobs.ParseARN(arn)
	if err != nil {
		t.Fatal(err)
	}
	e, err := st.Operations.Get(ctx, store.OperationKey(name, a.Sub))
	if err != nil {
		t.Fatal(err)
	}
	return e.Value
}

// TestScalerFollowsItsOperation covers the ways a scale ends without the
// reconciler: a user's update takes the status over, or the workers never
// come and the scale times out and is undone. No reconciler runs here.
func TestScalerFollowsItsOperation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, nc := storetest.Open(t)
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	sc, err := New(Config{Store: st, Conn: nc, Now: clock.Now, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	arn := jobs.ARN{Region: "eu-west-1", Account: "123456789012", Kind: jobs.KindConnector, Name: "c", ID: "00000000-0000-4000-8000-000000000001"}.String()
	conn := jobs.Connector{Arn: arn, Revision: 1, Spec: jobs.ConnectorSpec{
		ConnectorName:          "c",
		ConnectorConfiguration: map[string]string{"connector.class": "datagen", KeyMaxStep: "1"},
		Capacity: jobs.Capacity{AutoScaling: &jobs.AutoScaling{MinWorkerCount: 1, MaxWorkerCount: 5, McuCount: 1,
			ScaleInPolicy: &jobs.ScalePolicy{CpuUtilizationPercentage: 20}, ScaleOutPolicy: &jobs.ScalePolicy{CpuUtilizationPercentage: 80}}},
	}}
	if _, err := st.Connectors.Create(ctx, "c", conn); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Status.Create(ctx, "c", jobs.ConnectorStatus{State: jobs.StateRunning, Workers: 2, Revision: 1}); err != nil {
		t.Fatal(err)
	}
	hot := func() {
		for _, w := range []string{"c-0", "c-1", "c-2"} {
			sc.window.Add(jobs.Metrics{Connector: "c", Worker: w, CPUPercent: 100}, clock.Now())
		}
		clock.Add(5 * time.Second)
	}

	// Scale out 2 → 3 (max step 1 from the override), then a user's update
	// takes over with another count: the scale failed, superseded.
	hot()
	sc.Evaluate(ctx)
	s := status(t, ctx, st, "c")
	if s.Workers != 3 || s.Operation == "" {
		t.Fatalf("status %+v, want a scale to 3", s)
	}
	first := s.Operation
	if _, err := st.Status.Modify(ctx, "c", false, func(s *jobs.ConnectorStatus) error {
		s.State, s.Operation, s.Workers = jobs.StateUpdating, "arn:user-update", 4
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clock.Add(30 * time.Second)
	sc.Evaluate(ctx)
	op := operation(t, ctx, st, "c", first)
	if op.State != store.OpFailed || op.ErrorInfo == nil || op.ErrorInfo.Code != CodeSuperseded {
		t.Fatalf("superseded scale: %+v", op)
	}
	if sc.PolicyPhase("c") != Cooldown {
		t.Fatalf("phase %s, want cooldown", sc.PolicyPhase("c"))
	}
	// The user's update is in progress: no evaluation touches it.
	hot()
	sc.Evaluate(ctx)
	if s := status(t, ctx, st, "c"); s.Operation != "arn:user-update" || s.Workers != 4 {
		t.Fatalf("scaled during a user's update: %+v", s)
	}

	// The update ends; after the cooldown a scale-out to 5 whose workers
	// never run times out and goes back to 4.
	if _, err := st.Status.Modify(ctx, "c", false, func(s *jobs.ConnectorStatus) error {
		s.State, s.Operation = jobs.StateRunning, ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clock.Add(DefaultScaleOutCooldown)
	for _, w := range []string{"c-3"} {
		sc.window.Add(jobs.Metrics{Connector: "c", Worker: w, CPUPercent: 100}, clock.Now())
	}
	hot()
	sc.Evaluate(ctx)
	s = status(t, ctx, st, "c")
	if s.Workers != 5 || s.Operation == "" {
		t.Fatalf("status %+v, want a scale to 5", s)
	}
	second := s.Operation
	clock.Add(DefaultScaleTimeout - time.Second)
	sc.Evaluate(ctx)
	if op := operation(t, ctx, st, "c", second); op.State != store.OpInProgress {
		t.Fatalf("scale ended before its timeout: %+v", op)
	}
	clock.Add(2 * time.Second)
	sc.Evaluate(ctx)
	op = operation(t, ctx, st, "c", second)
	if op.State != store.OpFailed || op.ErrorInfo == nil || op.ErrorInfo.Code != CodeScaleTimeout || op.EndTime == nil {
		t.Fatalf("timed-out scale: %+v", op)
	}
	if s := status(t, ctx, st, "c"); s.Workers != 4 || s.Operation != "" {
		t.Fatalf("status after the timeout %+v, want 4 workers and no operation", s)
	}
}

// TestScalerRun runs the scaler on its own ticker with the real clock:
// metrics over NATS scale a hot connector out within two intervals.
func TestScalerRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, nc := storetest.Open(t)
	arn := jobs.ARN{Region: "eu-west-1", Account: "123456789012", Kind: jobs.KindConnector, Name: "r", ID: "00000000-0000-4000-8000-000000000002"}.String()
	conn := jobs.Connector{Arn: arn, Revision: 1, Spec: jobs.ConnectorSpec{
		ConnectorName: "r", ConnectorConfiguration: map[string]string{"connector.class": "datagen"},
		Capacity: jobs.Capacity{AutoScaling: &jobs.AutoScaling{MinWorkerCount: 1, MaxWorkerCount: 2, McuCount: 1}},
	}}
	if _, err := st.Connectors.Create(ctx, "r", conn); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Status.Create(ctx, "r", jobs.ConnectorStatus{State: jobs.StateRunning, Workers: 1, Revision: 1}); err != nil {
		t.Fatal(err)
	}
	const interval = 300 * time.Millisecond
	sc, err := New(Config{Store: st, Conn: nc, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		Settings: Settings{EvaluationInterval: interval, Window: interval, StaleAfter: interval}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sc.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	start := time.Now()
	for {
		// No default policies: MSK Connect's 20 % / 80 % apply.
		b, _ := json.Marshal(jobs.Metrics{Connector: "r", Worker: "r-0", CPUPercent: 97})
		if err := nc.Publish(jobs.MetricsSubject("r", "r-0"), b); err != nil {
			t.Fatal(err)
		}
		if s := status(t, ctx, st, "r"); s.Workers == 2 && s.Operation != "" {
			break
		}
		if time.Since(start) > 20*interval {
			t.Fatalf("no scale-out within %s", 20*interval)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Subscribed from the start, the scaler reacts within two intervals
	// (plus slack for a loaded test machine; the simulation checks the
	// bound exactly).
	if took := time.Since(start); took > 5*interval {
		t.Fatalf("scale-out took %s, want about two intervals of %s", took, interval)
	}
}

// TestScalerSwitchToProvisioned: a user switches a connector to provisioned
// capacity while a scale is in flight; the scale's operation still ends.
func TestScalerSwitchToProvisioned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, nc := storetest.Open(t)
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	sc, err := New(Config{Store: st, Conn: nc, Now: clock.Now, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	arn := jobs.ARN{Region: "eu-west-1", Account: "123456789012", Kind: jobs.KindConnector, Name: "p", ID: "00000000-0000-4000-8000-000000000003"}.String()
	conn := jobs.Connector{Arn: arn, Revision: 1, Spec: jobs.ConnectorSpec{
		ConnectorName: "p", ConnectorConfiguration: map[string]string{"connector.class": "datagen"},
		Capacity: jobs.Capacity{AutoScaling: &jobs.AutoScaling{MinWorkerCount: 1, MaxWorkerCount: 4, McuCount: 1}},
	}}
	if _, err := st.Connectors.Create(ctx, "p", conn); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Status.Create(ctx, "p", jobs.ConnectorStatus{State: jobs.StateRunning, Workers: 1, Revision: 1}); err != nil {
		t.Fatal(err)
	}
	sc.window.Add(jobs.Metrics{Connector: "p", Worker: "p-0", CPUPercent: 100}, clock.Now())
	clock.Add(time.Second)
	sc.Evaluate(ctx)
	s := status(t, ctx, st, "p")
	if s.Workers != 2 || s.Operation == "" {
		t.Fatalf("status %+v, want a scale to 2", s)
	}
	scaleOp := s.Operation
	// What UpdateConnector does: a new spec revision and its own operation.
	if _, err := st.Connectors.Modify(ctx, "p", false, func(c *jobs.Connector) error {
		c.Revision = 2
		c.Spec.Capacity = jobs.Capacity{ProvisionedCapacity: &jobs.ProvisionedCapacity{McuCount: 1, WorkerCount: 3}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Status.Modify(ctx, "p", false, func(s *jobs.ConnectorStatus) error {
		s.State, s.Operation = jobs.StateUpdating, "arn:user-update"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Second)
	sc.Evaluate(ctx)
	// The status still says 2 workers until the reconciler applies the new
	// capacity, so the scale counts as done.
	if op := operation(t, ctx, st, "p", scaleOp); op.State != store.OpComplete || op.EndTime == nil {
		t.Fatalf("scale of a connector switched to provisioned: %+v", op)
	}
	if p := sc.PolicyPhase("p"); p != Idle {
		t.Fatalf("phase %s for a provisioned connector, want idle (forgotten)", p)
	}
}
