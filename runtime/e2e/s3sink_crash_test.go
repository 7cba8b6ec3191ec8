package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

const (
	crashTopic = "crash"
	crashParts = 16
	crashPer   = 12500 // 200,000 records
	crashFlush = 500
	crashGroup = "s3crash"
)

// child is one worker process.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	out    *lockedBuf
}

func startWorkerProcess(t *testing.T, s *jobs.WorkerSpec, idx int) *child {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spec.json")
	b, _ := json.Marshal(s)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", jobs.EnvSpecFile+"="+path, jobs.EnvWorkerIndex+"="+strconv.Itoa(idx),
		jobs.EnvWorkerID+"=w"+strconv.Itoa(idx)+"-"+strconv.Itoa(rand.IntN(1e6)), jobs.EnvDataDir+"="+t.TempDir())
	c := &child{cmd: cmd, exited: make(chan struct{}), out: &lockedBuf{}}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pinWorkerSide(cmd) // the benchmark's layout (benchcpu_test.go); a no-op in tests
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-c.exited })
	return c
}

// 200,000 records over 16 partitions, two worker processes of two tasks;
// worker processes are SIGKILLed three times at random points (each
// restarted at once, so the group rebalances) and one leaves gracefully
// (a forced rebalance that revokes its partitions). Afterwards every
// offset is in S3 exactly once, in objects of exactly flush.size records.
func TestS3SinkCrashesAndRebalances(t *testing.T) {
	if testing.Short() {
		t.Skip("long crash test")
	}
	srv := s3test.Start(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(crashParts, crashTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	// The records go in five chunks, one per round, so that every kill
	// lands while records are in flight.
	const chunks = 5
	produce := func(k int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		per := crashPer / chunks
		recs := make([]*kgo.Record, 0, crashParts*per)
		for p := int32(0); p < crashParts; p++ {
			for i := k * per; i < (k+1)*per; i++ {
				recs = append(recs, &kgo.Record{Topic: crashTopic, Partition: p, Value: []byte(fmt.Sprintf(`{"id":%d,"p":%d}`, i, p))})
			}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	cfg := map[string]string{
		"connector.class": s3sink(), "tasks.max": "4", "topics": crashTopic, "flush.size": strconv.Itoa(crashFlush),
		"format.class": "io.confluent.connect.s3.format.json.JsonFormat", "value.converter": connect.JSONConverterClass,
		"value.converter.schemas.enable": "false", "offset.flush.interval.ms": "300",
	}
	for k, v := range srv.Config() {
		cfg[k] = v
	}
	s := &jobs.WorkerSpec{
		Connector: crashGroup, Class: s3sink(), Config: cfg, BootstrapServers: addr,
		WorkerProperties: map[string]string{
			"consumer.session.timeout.ms": "6000", "consumer.heartbeat.interval.ms": "500", "consumer.max.poll.interval.ms": "8000",
			"consumer.max.poll.records": "250",
		},
		Mcu: 1, Workers: 2, TasksMax: 4, MetricsInterval: "1s",
	}
	workers := []*child{startWorkerProcess(t, s, 0), startWorkerProcess(t, s, 1)}
	objects := func() int { // a listing only: reading every object is too slow to catch the sink mid-chunk
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n := 0
		pg := s3.NewListObjectsV2Paginator(srv.Client, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket), Prefix: aws.String("topics/")})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatalf("list objects: %v", err)
			}
			n += len(page.Contents)
		}
		return n
	}
	stable := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gs, err := kadm.NewClient(cl).DescribeGroups(ctx, jobs.ConsumerGroup(crashGroup))
		if err != nil {
			return false
		}
		g := gs[jobs.ConsumerGroup(crashGroup)]
		return g.Err == nil && g.State == "Stable" && len(g.Members) == 4
	}
	const total = crashParts * crashPer / crashFlush
	for round := 0; round < 4; round++ {
		// Wait for a stable group (kfake keeps a member that dies mid-join),
		// produce a chunk and wait for random progress through it, then kill
		// (or, last, stop) a worker.
		eventually(t, 60*time.Second, "a stable group of 4 tasks", stable)
		before := objects()
		produce(round)
		target := before + 1 + rand.IntN(total/chunks/2)
		eventually(t, 60*time.Second, fmt.Sprintf("%d objects", target), func() bool {
			for i, w := range workers {
				select {
				case <-w.exited:
					t.Fatalf("worker %d exited:\n%s", i, w.out.String())
				default:
				}
			}
			return objects() >= target
		})
		i := rand.IntN(2)
		if round < 3 {
			t.Logf("round %d: SIGKILL worker %d at %d objects", round, i, objects())
			_ = workers[i].cmd.Process.Signal(syscall.SIGKILL)
		} else {
			t.Logf("round %d: SIGTERM worker %d at %d objects (graceful leave: rebalance)", round, i, objects())
			_ = workers[i].cmd.Process.Signal(syscall.SIGTERM)
		}
		<-workers[i].exited
		workers[i] = startWorkerProcess(t, s, i)
	}
	produce(chunks - 1)
	eventually(t, 90*time.Second, "every record committed", func() bool {
		c := committed(t, cl, crashGroup)
		for p := int32(0); p < crashParts; p++ {
			if c[p] != crashPer {
				return false
			}
		}
		return true
	})
	objs := srv.Objects(t, "topics/")
	if len(objs) != total {
		t.Errorf("%d objects, want %d", len(objs), total)
	}
	seen := make([][]int, crashParts)
	for p := range seen {
		seen[p] = make([]int, crashPer)
	}
	for key, body := range objs {
		var p, start int
		name := key[strings.LastIndex(key, "/")+1:]
		if _, err := fmt.Sscanf(strings.TrimPrefix(name, crashTopic+"+"), "%d+%d.json", &p, &start); err != nil {
			t.Fatalf("key %s: %v", key, err)
		}
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(lines) != crashFlush || start%crashFlush != 0 {
			t.Errorf("%s holds %d records, want %d from a multiple of it", key, len(lines), crashFlush)
		}
		for j, line := range lines {
			var v struct{ ID, P int }
			if err := json.Unmarshal([]byte(line), &v); err != nil || v.P != p || v.ID != start+j {
				t.Fatalf("%s line %d = %s, want id %d p %d", key, j, line, start+j, p)
			}
			seen[p][v.ID]++
		}
	}
	for p := range seen {
		for i, n := range seen[p] {
			if n != 1 {
				t.Errorf("partition %d offset %d is in S3 %d times", p, i, n)
			}
		}
	}
}
