package nomad

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/hashicorp/nomad/api"
	"github.com/rs/zerolog"
)

// TestAgent runs a connector's job on a real Nomad agent. It needs an
// agent on this machine with the raw_exec driver, e.g.
//
//	nomad agent -dev &                       # dev mode enables raw_exec
//	NOMAD_ADDR=http://127.0.0.1:4646 go test ./nomad -run TestAgent -v
//
// (NOMAD_TOKEN, NOMAD_NAMESPACE and the TLS variables are honoured as by the
// nomad CLI.) The worker is a shell script that copies the spec file Nomad
// rendered into the test's temp dir and waits: the test then checks that
// the template produced the spec, secrets included, from the variable; that
// the job has the right count and resources; and that a new revision and a
// removal do what they should.
func TestAgent(t *testing.T) {
	client, out := agentClient(t)
	script := filepath.Join(out, "ferry-worker.sh")
	body := fmt.Sprintf(`#!/bin/sh
[ "$1" = worker ] || { echo "want argument worker, got $*" >&2; exit 2; }
cp "$FERRY_WORKER_SPEC" %[1]q/spec-"$FERRY_WORKER_INDEX".json
echo "$FERRY_WORKER_ID" > %[1]q/id-"$FERRY_WORKER_INDEX"
trap 'exit 0' TERM
while :; do sleep 1; done
`, out)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}

	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "it-" + hex.EncodeToString(b[:])
	dep, err := NewDeployer(Config{
		Client: client,
		Render: RenderConfig{WorkerCommand: script, MHzPerVCPU: 100, KillTimeout: 5 * time.Second},
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dep.Remove(cctx, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	d := testDeployment()
	d = withWorkers(d, 1)
	d.Name, d.Spec.Connector = name, name
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("apply: %v", err)
	}
	job, _, err := client.Jobs().Info(JobID(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	task := job.TaskGroups[0].Tasks[0]
	if *job.TaskGroups[0].Count != 1 || *task.Resources.CPU != 100 || *task.Resources.MemoryMB != 4096 {
		t.Errorf("registered job: count %d cpu %d memory %d", *job.TaskGroups[0].Count, *task.Resources.CPU, *task.Resources.MemoryMB)
	}

	first := waitAlive(t, dep, name, 1)
	spec := readSpec(t, out, 0)
	if spec.Config["aws.secret.access.key"] != d.Spec.Config["aws.secret.access.key"] || spec.Workers != 1 || spec.TasksMax != 2 {
		t.Errorf("spec rendered by nomad = %+v", spec)
	}
	if id, _ := os.ReadFile(filepath.Join(out, "id-0")); strings.TrimSpace(string(id)) != first[0] {
		t.Errorf("worker id %q, observed alloc %q", id, first[0])
	}

	// A new revision replaces the allocation.
	_ = os.Remove(filepath.Join(out, "spec-0.json"))
	d.Revision, d.Spec.Revision = 4, 4
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("apply revision 4: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		obs, err := dep.Observe(ctx, name)
		if err == nil && obs.Alive == 1 && obs.IDs[0] != first[0] {
			if _, err := os.Stat(filepath.Join(out, "spec-0.json")); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("revision 4 not running after 90 s: %+v %v", obs, err)
		}
		time.Sleep(time.Second)
	}
	if spec := readSpec(t, out, 0); spec.Revision != 4 {
		t.Errorf("new worker runs revision %d", spec.Revision)
	}

	// A scale (the autoscaler's path: same revision, new count) adds a
	// worker through the scale API and replaces none; scaling back stops
	// the highest index.
	kept := waitAlive(t, dep, name, 1)[0]
	d = withWorkers(d, 2)
	d.Reason = "autoscaler: scale out from 1 to 2 workers: cpu 93%"
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("scale to 2: %v", err)
	}
	ids := waitAlive(t, dep, name, 2)
	if ids[0] != kept {
		t.Errorf("scale out replaced worker 0 (%s → %s)", kept, ids[0])
	}
	if spec := readSpec(t, out, 1); spec.Workers != 2 || spec.TasksMax != 4 || spec.Revision != 4 {
		t.Errorf("new worker's spec: workers %d tasks.max %d revision %d", spec.Workers, spec.TasksMax, spec.Revision)
	}
	if job, _, err := client.Jobs().Info(JobID(name), nil); err != nil || *job.TaskGroups[0].Count != 2 {
		t.Errorf("job after scale: %v", err)
	}
	d = withWorkers(d, 1)
	d.Reason = "autoscaler: scale in from 2 to 1 workers: cpu 4%"
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("scale to 1: %v", err)
	}
	if ids := waitAlive(t, dep, name, 1); ids[0] != kept {
		t.Errorf("scale in replaced worker 0 (%s → %s)", kept, ids[0])
	}

	if err := dep.Remove(ctx, name); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if obs, err := dep.Observe(ctx, name); err != nil || obs.Deployed {
		t.Errorf("after remove: %+v, %v", obs, err)
	}
	if v, _, err := client.Variables().Peek(VariablePath(name), nil); err != nil || v != nil {
		t.Errorf("variable after remove: %v, %v", v, err)
	}
}

// agentConfig skips the test unless NOMAD_ADDR names an agent, which must
// then answer; it returns a client configuration for a namespace of the
// test's own, deleted when the test ends: a Ferry running against the same
// agent (ferry dev --nomad, cmd/ferry's test) removes the ferry- jobs of
// its namespace that it does not know.
func agentConfig(tb testing.TB) *api.Config {
	tb.Helper()
	if os.Getenv("NOMAD_ADDR") == "" {
		tb.Skip("NOMAD_ADDR is not set: run `nomad agent -dev` and set NOMAD_ADDR=http://127.0.0.1:4646 to run this test against a real agent")
	}
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := client.Agent().Self(); err != nil {
		tb.Fatalf("NOMAD_ADDR=%s is set but the agent does not answer: %v", os.Getenv("NOMAD_ADDR"), err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := "ferry-test-" + hex.EncodeToString(b[:])
	if _, err := client.Namespaces().Register(&api.Namespace{Name: ns, Description: "a test of github.com/ferryhq/ferry/nomad"}, nil); err != nil {
		tb.Fatalf("create namespace %s: %v", ns, err)
	}
	tb.Cleanup(func() {
		if _, err := client.Namespaces().Delete(ns, nil); err != nil {
			tb.Logf("delete namespace %s: %v", ns, err)
		}
	})
	cfg := api.DefaultConfig()
	cfg.Namespace = ns
	return cfg
}

// agentClient is agentConfig's client, and a directory its workers (run
// as any user) can write to.
func agentClient(t *testing.T) (*api.Client, string) {
	t.Helper()
	client, err := api.NewClient(agentConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	return client, out
}

// waitAlive waits until n workers run and returns their IDs.
func waitAlive(t *testing.T, dep *Deployer, name string, n int) map[int]string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		obs, err := dep.Observe(ctxT(t), name)
		if err == nil && obs.Alive == n {
			return obs.IDs
		}
		if err == nil && (obs.PlacementFailed || obs.CrashLoop) {
			t.Fatalf("workers do not run: %s", obs.Reason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers not running after 90 s: %+v %v", n, obs, err)
		}
		time.Sleep(time.Second)
	}
}

func readSpec(t *testing.T, dir string, idx int) *jobs.WorkerSpec {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("spec-%d.json", idx))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %d wrote no spec copy", idx)
		}
		time.Sleep(200 * time.Millisecond)
	}
	spec, err := jobs.LoadWorkerSpec(path)
	if err != nil {
		t.Fatalf("spec nomad rendered: %v", err)
	}
	return spec
}

// TestAgentCreateToAllocsRunning measures, on a real agent, how long a new
// connector's job takes from Apply to every allocation running as Observe
// sees it, with Watch following Nomad (so Observe answers from its cache
// and Changes says when to look). Run as TestAgent; it logs the latency.
// (cmd/ferry's BenchmarkAgentCreateToRunning measures the whole way, from
// the API's CreateConnector to the connector RUNNING.)
func TestAgentCreateToAllocsRunning(t *testing.T) {
	took := createToRunning(t)
	t.Logf("create→allocations running on the real agent: %s for 2 workers (Apply to both allocations running, as Observe sees it)", took.Round(time.Millisecond))
}

// BenchmarkAgentCreateToAllocsRunning reports Apply→allocations running on
// a real agent (see TestAgentCreateToAllocsRunning) as a benchmark metric;
// it skips without NOMAD_ADDR.
func BenchmarkAgentCreateToAllocsRunning(b *testing.B) {
	var total time.Duration
	n := 0
	for b.Loop() {
		total += createToRunning(b)
		n++
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms-apply-to-allocs-running")
}

// createToRunning applies a 2-worker connector on the agent at NOMAD_ADDR,
// waits until both workers run, removes it, and returns how long it took.
func createToRunning(t testing.TB) time.Duration {
	t.Helper()
	client, err := api.NewClient(agentConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	script := filepath.Join(out, "ferry-worker.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 1; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "lat-" + hex.EncodeToString(b[:])
	dep, err := NewDeployer(Config{
		Client: client,
		Render: RenderConfig{WorkerCommand: script, MHzPerVCPU: 100, KillTimeout: 2 * time.Second},
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		_ = dep.Watch(wctx)
	}()
	// Removed on return, not at the test's end: a benchmark's iterations
	// would otherwise pile 8 GB of workers each onto the agent until
	// placement fails (3 iterations on a 24 GB dev agent).
	defer func() {
		stopWatch()
		<-watched
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dep.Remove(cctx, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}()

	d := withWorkers(testDeployment(), 2)
	d.Mcu, d.Spec.Connector, d.Name = 1, name, name
	start := time.Now()
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatalf("apply: %v", err)
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		obs, err := dep.Observe(ctx, name)
		if err != nil {
			t.Fatalf("observe: %v", err)
		}
		if obs.Failing() {
			t.Fatalf("workers do not run: %s", obs.Reason)
		}
		if obs.Alive == 2 {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("2 workers not running after 2 min: %+v", obs)
		case <-dep.Changes():
		case <-tick.C:
		}
	}
}
