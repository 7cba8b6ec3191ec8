package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/jobs"
)

const (
	e2eTopic     = "e2e-orders"
	e2eParts     = 3
	e2eFlushSize = 3
	e2eConnector = "e2e-s3-sink"
)

// e2eLayout is what was produced: per partition, the ids in offset order.
type e2eLayout map[int32][]int

// produceIDs writes ids [from, to) as {"id":i} with key i; every run of
// e2eFlushSize consecutive ids goes to one partition, so each partition gets
// a multiple of the flush size and S3 ends up holding every record.
func produceIDs(t *testing.T, cl *kgo.Client, layout e2eLayout, from, to int) {
	t.Helper()
	if from%e2eFlushSize != 0 || to%e2eFlushSize != 0 {
		t.Fatalf("produce [%d, %d): bounds must be multiples of %d", from, to, e2eFlushSize)
	}
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		p := int32((i / e2eFlushSize) % e2eParts)
		recs = append(recs, &kgo.Record{Topic: e2eTopic, Partition: p, Key: []byte(strconv.Itoa(i)), Value: fmt.Appendf(nil, `{"id":%d}`, i)})
		layout[p] = append(layout[p], i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// wantObjects is the S3 content layout implies: key → ids in order.
func (l e2eLayout) wantObjects() map[string][]int {
	out := map[string][]int{}
	for p, ids := range l {
		for s := 0; s+e2eFlushSize <= len(ids); s += e2eFlushSize {
			key := fmt.Sprintf("topics/%s/partition=%d/%s+%d+%010d.json", e2eTopic, p, e2eTopic, p, s)
			out[key] = ids[s : s+e2eFlushSize]
		}
	}
	return out
}

// checkS3 compares the bucket with layout: the exact set of keys, each
// object holding its records in offset order, and every id exactly once.
// It returns "" when all is well, else what differs.
func checkS3(objs map[string][]byte, layout e2eLayout) string {
	want := layout.wantObjects()
	var problems []string
	seen := map[int]int{}
	for key, body := range objs {
		ids, ok := want[key]
		if !ok {
			problems = append(problems, "unexpected object "+key)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		var got []int
		for _, line := range lines {
			var v struct {
				ID *int `json:"id"`
			}
			if err := json.Unmarshal([]byte(line), &v); err != nil || v.ID == nil {
				problems = append(problems, fmt.Sprintf("%s: line %q is not {\"id\":n}", key, line))
				continue
			}
			got = append(got, *v.ID)
			seen[*v.ID]++
		}
		if !slices.Equal(got, ids) {
			problems = append(problems, fmt.Sprintf("%s holds ids %v, want %v", key, got, ids))
		}
	}
	var missing []string
	for key := range want {
		if _, ok := objs[key]; !ok {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		problems = append(problems, fmt.Sprintf("%d of %d objects missing, first %s", len(missing), len(want), missing[0]))
	}
	for _, ids := range layout {
		for _, id := range ids {
			if n := seen[id]; n != 1 && len(missing) == 0 {
				problems = append(problems, fmt.Sprintf("id %d is in S3 %d times", id, n))
			}
		}
	}
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
	}
	return strings.Join(problems, "; ")
}

// TestDevEndToEnd runs `ferry dev` as a process against a real S3
// (versitygw): create an S3 sink through the MSK Connect API, produce, find
// every record in S3 exactly once; SIGKILL the worker process, produce
// more, find every record exactly once again (the executor restarts the
// worker, rewritten objects identical); delete the connector (no worker
// remains); SIGTERM dev (it exits promptly, leaving no child behind).
func TestDevEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the end-to-end test in -short mode")
	}
	srv := s3test.Start(t)
	start := time.Now()
	api := freeAddr(t)
	dev := startDevWithS3(t, api, srv)
	t.Logf("ferry dev ready after %v (api %s, kafka %s)", time.Since(start).Round(time.Millisecond), dev.api, dev.kafka)

	kcl, err := kgo.NewClient(kgo.SeedBrokers(dev.kafka), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kcl.Close)
	adm := kadm.NewClient(kcl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 10*time.Second) }
	{
		c, cc := call()
		res, err := adm.CreateTopic(c, e2eParts, 1, nil, e2eTopic)
		cc()
		if err != nil || res.Err != nil {
			t.Fatalf("create topic: %v %v", err, res.Err)
		}
	}

	client := dev.client()
	c, cc := call()
	created, err := client.CreateConnector(c, s3SinkInput(e2eConnector, dev, srv, map[string]string{
		// The killed worker's group member must expire quickly for its
		// successor to get the partitions.
		"consumer.override.session.timeout.ms":    "6000",
		"consumer.override.heartbeat.interval.ms": "500",
		"consumer.override.max.poll.interval.ms":  "8000",
	}))
	cc()
	if err != nil {
		t.Fatalf("create connector: %v", err)
	}
	arn := created.ConnectorArn
	describe := func() (*kafkaconnect.DescribeConnectorOutput, error) {
		c, cc := call()
		defer cc()
		return client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: arn})
	}
	createdAt := time.Now()
	eventually(t, 30*time.Second, "connector RUNNING", func() (bool, string) {
		d, err := describe()
		if err != nil {
			return false, err.Error()
		}
		if d.ConnectorState == types.ConnectorStateFailed {
			t.Fatalf("connector FAILED: %+v", d.StateDescription)
		}
		return d.ConnectorState == types.ConnectorStateRunning, string(d.ConnectorState)
	})
	t.Logf("RUNNING %v after create", time.Since(createdAt).Round(time.Millisecond))
	if w := dev.workers(); len(w) != 1 {
		t.Fatalf("%d worker processes after RUNNING, want 1: %v", len(w), w)
	}

	const n = 300
	layout := e2eLayout{}
	s3Holds := func(what string, d time.Duration) map[string][]byte {
		t.Helper()
		var objs map[string][]byte
		eventually(t, d, what, func() (bool, string) {
			objs = srv.Objects(t, "topics/")
			problem := checkS3(objs, layout)
			return problem == "", problem
		})
		return objs
	}
	produceIDs(t, kcl, layout, 0, n)
	before := s3Holds(fmt.Sprintf("%d records in S3", n), 30*time.Second)
	t.Logf("%d records in %d objects, %v after create", n, len(before), time.Since(createdAt).Round(time.Millisecond))

	// SIGKILL the worker in a stable group (kfake keeps a member that dies
	// with a JoinGroup pending forever; Kafka would expire it).
	group := jobs.ConsumerGroup(e2eConnector)
	eventually(t, 20*time.Second, "a stable group of 2 tasks", func() (bool, string) {
		c, cc := call()
		defer cc()
		gs, err := adm.DescribeGroups(c, group)
		if err != nil {
			return false, err.Error()
		}
		g := gs[group]
		return g.Err == nil && g.State == "Stable" && len(g.Members) == 2, fmt.Sprintf("%s %d members %v", g.State, len(g.Members), g.Err)
	})
	victims := dev.workers()
	if len(victims) != 1 {
		t.Fatalf("%d worker processes, want 1: %v", len(victims), victims)
	}
	if err := syscall.Kill(victims[0], syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker %d: %v", victims[0], err)
	}
	killedAt := time.Now()
	produceIDs(t, kcl, layout, n, 2*n)
	after := s3Holds(fmt.Sprintf("%d records in S3 after the kill", 2*n), 60*time.Second)
	t.Logf("%d records in %d objects, %v after the kill", 2*n, len(after), time.Since(killedAt).Round(time.Millisecond))
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Errorf("%s changed after the kill:\nbefore %q\nafter  %q", k, v, after[k])
		}
	}
	if w := dev.workers(); len(w) != 1 || w[0] == victims[0] {
		t.Errorf("worker processes after the kill %v, want one new one (killed %d)", w, victims[0])
	}
	if d, err := describe(); err != nil || d.ConnectorState != types.ConnectorStateRunning {
		t.Errorf("after the restart: %v %v", d.ConnectorState, err)
	}

	c, cc = call()
	_, err = client.DeleteConnector(c, &kafkaconnect.DeleteConnectorInput{ConnectorArn: arn})
	cc()
	if err != nil {
		t.Fatalf("delete connector: %v", err)
	}
	eventually(t, 30*time.Second, "connector gone", func() (bool, string) {
		d, err := describe()
		var nf *types.NotFoundException
		if errors.As(err, &nf) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, string(d.ConnectorState)
	})
	eventually(t, 20*time.Second, "no worker process", func() (bool, string) {
		w := ferryProcs(t, "worker")
		return len(w) == 0, fmt.Sprint(w)
	})

	kids := dev.children()
	took, err := dev.stop(t, 20*time.Second)
	if err != nil {
		t.Fatalf("ferry dev after SIGTERM (%v): %v", took, err)
	}
	t.Logf("ferry dev stopped %v after SIGTERM; whole test %v", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for _, pid := range kids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("child %d of ferry dev outlived it", pid)
		}
	}
	if left := ferryProcs(t, ""); len(left) > 0 {
		t.Errorf("ferry processes left after dev exited: %v", left)
	}
	for _, bad := range []string{"DATA RACE", "panic:"} {
		if dev.stderr.Contains(bad) {
			t.Errorf("ferry dev's output (workers' included) holds %q", bad)
		}
	}
}
