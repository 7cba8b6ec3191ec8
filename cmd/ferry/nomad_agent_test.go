package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/nomad"
)

// agentMHz is the CPU one MCU reserves in these tests (--nomad-mhz-per-vcpu),
// so two workers fit a small dev agent.
const agentMHz = 500

// nomadAgent skips unless NOMAD_ADDR names a Nomad agent, which must then
// answer. It creates a namespace of the test's own (deleted when it ends),
// since a Ferry removes the ferry- jobs of its namespace that it does not
// know, and returns the address, a client in that namespace, and the
// environment that puts ferry dev in it.
func nomadAgent(tb testing.TB) (string, *nomadapi.Client, []string) {
	tb.Helper()
	addr := os.Getenv("NOMAD_ADDR")
	if addr == "" {
		tb.Skip("NOMAD_ADDR is not set: start `nomad agent -dev` with raw_exec enabled (docs/nomad.md) and set NOMAD_ADDR=http://127.0.0.1:4646 to run ferry dev --nomad against it")
	}
	client, err := nomadapi.NewClient(nomadapi.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := client.Agent().Self(); err != nil {
		tb.Fatalf("NOMAD_ADDR=%s is set but the agent does not answer: %v", addr, err)
	}
	ns := randomName("ferry-e2e-")
	if _, err := client.Namespaces().Register(&nomadapi.Namespace{Name: ns, Description: "a test of ferry dev --nomad"}, nil); err != nil {
		tb.Fatalf("create namespace %s: %v", ns, err)
	}
	tb.Cleanup(func() {
		if _, err := client.Namespaces().Delete(ns, nil); err != nil {
			tb.Logf("delete namespace %s: %v", ns, err)
		}
	})
	cfg := nomadapi.DefaultConfig()
	cfg.Namespace = ns
	nc, err := nomadapi.NewClient(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return addr, nc, []string{"NOMAD_NAMESPACE=" + ns}
}

// purgeOnCleanup deregisters the connector's job and deletes its variable
// when the test ends, whatever happened.
func purgeOnCleanup(tb testing.TB, client *nomadapi.Client, name string) {
	tb.Cleanup(func() {
		_, _, _ = client.Jobs().DeregisterOpts(nomad.JobID(name), &nomadapi.DeregisterOptions{Purge: true}, nil)
		_, _ = client.Variables().Delete(nomad.VariablePath(name), nil)
	})
}

func randomName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// TestAgentConnectorOnNomad is the real-agent test of the issue: `ferry dev
// --nomad $NOMAD_ADDR` as a process (the control plane's real wiring), a
// connector created through the MSK Connect API, run by the real ferry
// worker under raw_exec. It checks the job's count and resources, that the
// secrets are in the variable and not in the job, that the allocation runs
// the worker and the connector turns RUNNING, that records reach S3; then
// an update from 1 to 2 workers (count and allocations follow, no record
// lost) and a delete (job purged, variable gone). It logs create→RUNNING.
func TestAgentConnectorOnNomad(t *testing.T) {
	addr, nc, env := nomadAgent(t)
	srv := s3test.Start(t)
	dev := startDev(t, freeAddr(t), []string{
		"--nomad", addr, "--nomad-mhz-per-vcpu", strconv.Itoa(agentMHz),
		"--nats-listen", freeAddr(t), "--kafka-listen", freeAddr(t),
		"--s3-endpoint", srv.Endpoint, "--metrics-interval", "500ms",
	}, env)
	name := randomName("nomad-e2e-")
	purgeOnCleanup(t, nc, name)
	jobID := nomad.JobID(name)

	kcl, err := kgo.NewClient(kgo.SeedBrokers(dev.kafka), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kcl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 10*time.Second) }
	{
		c, cc := call()
		res, err := kadm.NewClient(kcl).CreateTopic(c, e2eParts, 1, nil, e2eTopic)
		cc()
		if err != nil || res.Err != nil {
			t.Fatalf("create topic: %v %v", err, res.Err)
		}
	}

	client := dev.client()
	c, cc := call()
	created, err := client.CreateConnector(c, nomadConnectorInput(name, dev, srv))
	cc()
	if err != nil {
		t.Fatalf("create connector: %v", err)
	}
	createdAt := time.Now()
	describe := func() (*kafkaconnect.DescribeConnectorOutput, error) {
		c, cc := call()
		defer cc()
		return client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: created.ConnectorArn})
	}
	waitRunning := func(what string) *kafkaconnect.DescribeConnectorOutput {
		t.Helper()
		var out *kafkaconnect.DescribeConnectorOutput
		eventually(t, 3*time.Minute, what, func() (bool, string) {
			d, err := describe()
			if err != nil {
				return false, err.Error()
			}
			if d.ConnectorState == types.ConnectorStateFailed {
				t.Fatalf("connector FAILED: %s", aws.ToString(d.StateDescription.Message))
			}
			out = d
			return d.ConnectorState == types.ConnectorStateRunning, string(d.ConnectorState)
		})
		return out
	}
	waitRunning("connector RUNNING")
	t.Logf("create→RUNNING through the API on the agent: %v", time.Since(createdAt).Round(time.Millisecond))

	// The job as the issue describes it.
	job, _, err := nc.Jobs().Info(jobID, nil)
	if err != nil {
		t.Fatalf("job %s: %v", jobID, err)
	}
	g := job.TaskGroups[0]
	task := g.Tasks[0]
	if *g.Count != 1 || *task.Resources.CPU != agentMHz || *task.Resources.MemoryMB != 4096 || task.Driver != "raw_exec" {
		t.Errorf("job: count %d cpu %d memory %d driver %s", *g.Count, *task.Resources.CPU, *task.Resources.MemoryMB, task.Driver)
	}
	if cmd, _ := task.Config["command"].(string); cmd != ferryBin {
		t.Errorf("the worker runs %q, want the ferry binary %s", cmd, ferryBin)
	}
	raw, _ := json.Marshal(job)
	if strings.Contains(string(raw), srv.SecretKey) {
		t.Error("the job holds the S3 secret key; it belongs in the variable")
	}
	if v, _, err := nc.Variables().Peek(nomad.VariablePath(name), nil); err != nil || v == nil || v.Items["config_aws_secret_access_key"] != srv.SecretKey {
		t.Errorf("variable: %v, %v", v, err)
	}
	if n := runningAllocs(t, nc, jobID); n != 1 {
		t.Errorf("%d running allocations, want 1", n)
	}

	layout := e2eLayout{}
	s3Holds := func(what string) {
		t.Helper()
		eventually(t, time.Minute, what, func() (bool, string) {
			problem := checkS3(srv.Objects(t, "topics/"), layout)
			return problem == "", problem
		})
	}
	produceIDs(t, kcl, layout, 0, 30)
	s3Holds("30 records in S3")

	// Update: 1 → 2 workers.
	d, err := describe()
	if err != nil {
		t.Fatal(err)
	}
	c, cc = call()
	_, err = client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{
		ConnectorArn: created.ConnectorArn, CurrentVersion: d.CurrentVersion,
		Capacity: &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 1, WorkerCount: 2}},
	})
	cc()
	if err != nil {
		t.Fatalf("update connector: %v", err)
	}
	eventually(t, 2*time.Minute, "count 2 and 2 running allocations", func() (bool, string) {
		job, _, err := nc.Jobs().Info(jobID, nil)
		if err != nil {
			return false, err.Error()
		}
		n := runningAllocs(t, nc, jobID)
		return *job.TaskGroups[0].Count == 2 && n == 2, fmt.Sprintf("count %d, %d running", *job.TaskGroups[0].Count, n)
	})
	if d := waitRunning("RUNNING with 2 workers"); d.Capacity.ProvisionedCapacity.WorkerCount != 2 {
		t.Errorf("described workers = %d", d.Capacity.ProvisionedCapacity.WorkerCount)
	}
	produceIDs(t, kcl, layout, 30, 60)
	s3Holds("60 records in S3 after the update")

	// Delete: the job is purged and the variable gone.
	c, cc = call()
	_, err = client.DeleteConnector(c, &kafkaconnect.DeleteConnectorInput{ConnectorArn: created.ConnectorArn})
	cc()
	if err != nil {
		t.Fatalf("delete connector: %v", err)
	}
	eventually(t, time.Minute, "connector gone", func() (bool, string) {
		_, err := describe()
		var nf *types.NotFoundException
		return errors.As(err, &nf), fmt.Sprint(err)
	})
	if _, _, err := nc.Jobs().Info(jobID, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("job after delete: %v, want it purged (404)", err)
	}
	if v, _, err := nc.Variables().Peek(nomad.VariablePath(name), nil); err != nil || v != nil {
		t.Errorf("variable after delete: %v, %v", v, err)
	}
	for _, bad := range []string{"DATA RACE", "panic:"} {
		if dev.stderr.Contains(bad) {
			t.Errorf("ferry dev's output holds %q", bad)
		}
	}
}

// runningAllocs counts the job's allocations that run.
func runningAllocs(tb testing.TB, nc *nomadapi.Client, jobID string) int {
	tb.Helper()
	allocs, _, err := nc.Jobs().Allocations(jobID, false, nil)
	if err != nil {
		return -1
	}
	n := 0
	for _, a := range allocs {
		if a.ClientStatus == nomadapi.AllocClientStatusRunning && a.DesiredStatus == nomadapi.AllocDesiredStatusRun {
			n++
		}
	}
	return n
}

// BenchmarkAgentCreateToRunning reports, on the agent at NOMAD_ADDR, the
// time from CreateConnector (through the API of `ferry dev --nomad`) to the
// connector RUNNING: its job registered, its allocation started, the real
// worker joined the group and reported RUNNING. One `ferry dev` serves
// every iteration; each creates a 1-worker S3 sink and deletes it after.
// It skips without NOMAD_ADDR.
//
//	NOMAD_ADDR=http://127.0.0.1:4646 go test ./cmd/ferry -run '^$' -bench AgentCreateToRunning -benchtime 3x
func BenchmarkAgentCreateToRunning(b *testing.B) {
	addr, nc, env := nomadAgent(b)
	dev := startDev(b, freeAddr(b), []string{
		"--nomad", addr, "--nomad-mhz-per-vcpu", strconv.Itoa(agentMHz),
		"--nats-listen", freeAddr(b), "--kafka-listen", freeAddr(b), "--s3-listen", freeAddr(b),
		"--metrics-interval", "500ms",
	}, env)
	client := dev.client()
	ctx := b.Context()
	var total time.Duration
	n := 0
	for b.Loop() {
		name := randomName("bench-")
		purgeOnCleanup(b, nc, name)
		in := nomadConnectorInput(name, dev, &s3test.Server{Bucket: "ferry-dev", Region: "us-east-1", AccessKey: "ferry", SecretKey: "ferry"})
		start := time.Now()
		created, err := client.CreateConnector(ctx, in)
		if err != nil {
			b.Fatalf("create: %v", err)
		}
		eventually(b, 3*time.Minute, "RUNNING", func() (bool, string) {
			d, err := client.DescribeConnector(ctx, &kafkaconnect.DescribeConnectorInput{ConnectorArn: created.ConnectorArn})
			if err != nil {
				return false, err.Error()
			}
			if d.ConnectorState == types.ConnectorStateFailed {
				b.Fatalf("FAILED: %s", aws.ToString(d.StateDescription.Message))
			}
			return d.ConnectorState == types.ConnectorStateRunning, string(d.ConnectorState)
		})
		total += time.Since(start)
		n++
		b.StopTimer()
		if _, err := client.DeleteConnector(ctx, &kafkaconnect.DeleteConnectorInput{ConnectorArn: created.ConnectorArn}); err != nil {
			b.Fatalf("delete: %v", err)
		}
		eventually(b, time.Minute, "deleted", func() (bool, string) {
			_, err := client.DescribeConnector(ctx, &kafkaconnect.DescribeConnectorInput{ConnectorArn: created.ConnectorArn})
			var nf *types.NotFoundException
			return errors.As(err, &nf), fmt.Sprint(err)
		})
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms-create-to-RUNNING")
}
