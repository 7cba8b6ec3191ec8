package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/connectors/all"
	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime"
	"github.com/ferryhq/ferry/runtime/connect"
)

const childEnv = "FERRY_E2E_CHILD_WORKER"

// TestMain doubles as a `ferry worker` process when childEnv is set, so a
// test can SIGKILL a real worker process mid-stream.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childWorker())
	}
	if mode := os.Getenv(limitChildEnv); mode != "" {
		os.Exit(limitChild(mode))
	}
	os.Exit(m.Run())
}

func childWorker() int {
	spec, err := jobs.LoadWorkerSpec(os.Getenv(jobs.EnvSpecFile))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	idx, _ := strconv.Atoi(os.Getenv(jobs.EnvWorkerIndex))
	reg := connect.NewRegistry()
	if err := all.Register(reg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w, err := runtime.NewWorker(spec, runtime.Options{
		Index: idx, WorkerID: os.Getenv(jobs.EnvWorkerID), Registry: reg,
		Logger: zerolog.New(os.Stderr).Level(zerolog.InfoLevel),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	profileChild()
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// profileChild writes a CPU profile of the worker's first
// FERRY_E2E_CPUPROFILE_SECONDS (default 10) to FERRY_E2E_CPUPROFILE.<pid>, when
// set: tests end workers with SIGKILL, so the profile stops on a timer.
func profileChild() {
	path := os.Getenv("FERRY_E2E_CPUPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	secs, err := strconv.Atoi(os.Getenv("FERRY_E2E_CPUPROFILE_SECONDS"))
	if err != nil || secs <= 0 {
		secs = 10
	}
	time.AfterFunc(time.Duration(secs)*time.Second, func() { pprof.StopCPUProfile(); _ = f.Close() })
}

const (
	topic = "orders"
	parts = 3
)

func value(p int32, i int) string { return fmt.Sprintf(`{"id":%d,"p":%d,"note":"<r&d>"}`, i, p) }

// produceRange writes records [from, to) to every partition.
func produceRange(t *testing.T, cl *kgo.Client, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for p := int32(0); p < parts; p++ {
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(strconv.Itoa(i)), Value: []byte(value(p, i))})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func spec(addr string, srv *s3test.Server, flushMs int) *jobs.WorkerSpec {
	cfg := map[string]string{
		"connector.class":                s3sink(),
		"tasks.max":                      "2",
		"topics":                         topic,
		"flush.size":                     "5",
		"format.class":                   "io.confluent.connect.s3.format.json.JsonFormat",
		"value.converter":                connect.JSONConverterClass,
		"value.converter.schemas.enable": "false",
		"offset.flush.interval.ms":       strconv.Itoa(flushMs),
	}
	for k, v := range srv.Config() {
		cfg[k] = v
	}
	return &jobs.WorkerSpec{
		Connector: "s3e2e", Class: s3sink(), Config: cfg, BootstrapServers: addr,
		// A crashed member must leave the group quickly for the test: its
		// session expires after 6s, and a rebalance waits at most 8s for it.
		WorkerProperties: map[string]string{
			"consumer.session.timeout.ms": "6000", "consumer.heartbeat.interval.ms": "500", "consumer.max.poll.interval.ms": "8000",
		},
		Mcu: 1, Workers: 1, TasksMax: 2, MetricsInterval: "1s",
	}
}

func s3sink() string { return "io.confluent.connect.s3.S3SinkConnector" }

type inproc struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func startInProcess(t *testing.T, s *jobs.WorkerSpec) *inproc {
	t.Helper()
	reg := connect.NewRegistry()
	if err := all.Register(reg); err != nil {
		t.Fatal(err)
	}
	w, err := runtime.NewWorker(s, runtime.Options{
		WorkerID: "inproc", Registry: reg, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(logLevel()),
	})
	if err != nil {
		t.Fatalf("new worker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &inproc{cancel: cancel, done: make(chan struct{})}
	go func() { r.err = w.Run(ctx); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *inproc) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("worker: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func wantKeys(upTo int) []string {
	var out []string
	for p := 0; p < parts; p++ {
		for s := 0; s+5 <= upTo; s += 5 {
			out = append(out, fmt.Sprintf("topics/%s/partition=%d/%s+%d+%010d.json", topic, p, topic, p, s))
		}
	}
	sort.Strings(out)
	return out
}

// checkExactlyOnce checks every object holds exactly the records its key
// names, in order, and that records [0, upTo) of every partition are in S3
// exactly once.
func checkExactlyOnce(t *testing.T, objs map[string][]byte, upTo int) {
	t.Helper()
	if got, want := s3test.Keys(objs), wantKeys(upTo); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("keys:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	seen := map[string]int{}
	for key, body := range objs {
		var p, start int
		name := key[strings.LastIndex(key, "/")+1:]
		if _, err := fmt.Sscanf(strings.TrimPrefix(name, topic+"+"), "%d+%d.json", &p, &start); err != nil {
			t.Fatalf("key %s: %v", key, err)
		}
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(lines) != 5 {
			t.Errorf("%s holds %d lines, want 5", key, len(lines))
		}
		for i, line := range lines {
			// JsonFormat writes the converted value as JSON: keys sorted, numbers exact.
			want := fmt.Sprintf(`{"id":%d,"note":"<r&d>","p":%d}`, start+i, p)
			if line != want {
				t.Errorf("%s line %d = %s, want %s", key, i, line, want)
			}
			seen[line]++
		}
	}
	for p := int32(0); p < parts; p++ {
		for i := 0; i < upTo; i++ {
			line := fmt.Sprintf(`{"id":%d,"note":"<r&d>","p":%d}`, i, p)
			if seen[line] != 1 {
				t.Errorf("record p%d/%d is in S3 %d times, want exactly once", p, i, seen[line])
			}
		}
	}
}

// committed reads the committed offsets of connector's consumer group.
func committed(t *testing.T, cl *kgo.Client, connector string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := groupCommitted(ctx, cl, jobs.ConsumerGroup(connector))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// groupCommitted reads a consumer group's committed offsets per partition.
func groupCommitted(ctx context.Context, cl *kgo.Client, group string) (map[int32]int64, error) {
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
	return out, nil
}

// Kafka → worker → S3 sink → versitygw, with a graceful stop, a worker
// process SIGKILLed after uploading without committing, and a successor:
// every record ends up in S3 exactly once, rewritten objects identical.
func TestS3SinkExactlyOnceAcrossCrash(t *testing.T) {
	srv := s3test.Start(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)

	// Phase 1: 22 records per partition; objects for 0-19, 20-21 buffered.
	produceRange(t, cl, 0, 22)
	a := startInProcess(t, spec(addr, srv, 100))
	eventually(t, 30*time.Second, "12 objects", func() bool { return len(srv.Objects(t, "topics/")) == 12 })
	eventually(t, 10*time.Second, "commits at 20", func() bool {
		c := committed(t, cl, "s3e2e")
		return c[0] == 20 && c[1] == 20 && c[2] == 20
	})
	a.stop(t)
	checkExactlyOnce(t, srv.Objects(t, "topics/"), 20)
	if c := committed(t, cl, "s3e2e"); c[0] != 20 || c[1] != 20 || c[2] != 20 {
		t.Fatalf("committed %v after graceful stop, want 20 each (20, 21 were only buffered)", c)
	}

	// Phase 2: a worker process that uploads but never commits (flush
	// interval far away) is killed at a random point.
	produceRange(t, cl, 22, 43)
	child := startWorkerProcess(t, spec(addr, srv, 600000), 0)
	cmd, exited, out := child.cmd, child.exited, child.out
	killAt := 12 + 1 + rand.IntN(12) // 1..12 new objects uploaded
	eventually(t, 30*time.Second, fmt.Sprintf("%d objects before the kill", killAt), func() bool {
		select {
		case <-exited:
			t.Fatalf("child worker exited early:\n%s", out.String())
		default:
		}
		return len(srv.Objects(t, "topics/")) >= killAt
	})
	// Kill it in a stable group: kfake keeps a member that dies with a
	// JoinGroup pending in the group forever (a kfake quirk; Kafka expires
	// it), which would stall the successor.
	eventually(t, 30*time.Second, "a stable group of the child's 2 tasks", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gs, err := kadm.NewClient(cl).DescribeGroups(ctx, jobs.ConsumerGroup("s3e2e"))
		if err != nil {
			return false
		}
		g := gs[jobs.ConsumerGroup("s3e2e")]
		return g.Err == nil && g.State == "Stable" && len(g.Members) == 2
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker process: %v", err)
	}
	<-exited
	atKill := srv.Objects(t, "topics/")
	t.Logf("killed the worker process with %d objects in S3", len(atKill))
	// The child commits only on revoke (its own tasks rebalancing as they
	// join), and only what is in S3.
	afterKill := committed(t, cl, "s3e2e")
	t.Logf("commits after the crash: %v", afterKill)
	for p, off := range afterKill {
		last := fmt.Sprintf("topics/%s/partition=%d/%s+%d+%010d.json", topic, p, topic, p, off-5)
		if _, ok := atKill[last]; off < 20 || off%5 != 0 || !ok {
			t.Errorf("partition %d committed at %d: not the end of an object in S3", p, off)
		}
	}

	// Phase 3: a successor resumes from the commits and rewrites the same keys.
	produceRange(t, cl, 43, 45)
	c := startInProcess(t, spec(addr, srv, 100))
	eventually(t, 60*time.Second, "27 objects and commits at 45", func() bool {
		if len(srv.Objects(t, "topics/")) != 27 {
			return false
		}
		c := committed(t, cl, "s3e2e")
		return c[0] == 45 && c[1] == 45 && c[2] == 45
	})
	c.stop(t)
	final := srv.Objects(t, "topics/")
	checkExactlyOnce(t, final, 45)
	for k, v := range atKill {
		if !bytes.Equal(final[k], v) {
			t.Errorf("%s was rewritten with different content", k)
		}
	}
}

// A worker cancelled (SIGTERM) at a random point mid-stream commits only
// what is in S3; its successor completes the stream exactly once.
func TestS3SinkGracefulStopMidStream(t *testing.T) {
	srv := s3test.Start(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	const n = 200
	produceRange(t, cl, 0, n)
	s := spec(addr, srv, 50)
	s.WorkerProperties["consumer.max.poll.records"] = "7" // small batches: many commit points
	a := startInProcess(t, s)
	eventually(t, 30*time.Second, "first object", func() bool { return len(srv.Objects(t, "topics/")) > 0 })
	time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
	a.stop(t)
	mid := srv.Objects(t, "topics/")
	c := committed(t, cl, "s3e2e")
	t.Logf("stopped with %d objects in S3, commits %v", len(mid), c)
	for p, off := range c {
		if off%5 != 0 {
			t.Errorf("partition %d committed at %d, not an object boundary", p, off)
		}
		last := fmt.Sprintf("topics/%s/partition=%d/%s+%d+%010d.json", topic, p, topic, p, off-5)
		if _, ok := mid[last]; off > 0 && !ok {
			t.Errorf("partition %d committed at %d but %s is not in S3", p, off, last)
		}
	}

	b := startInProcess(t, s)
	// Wait for the end, then check what is there either way: a failure
	// names the objects that are wrong, not only that time ran out.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		c := committed(t, cl, "s3e2e")
		if len(srv.Objects(t, "topics/")) == parts*n/5 && c[0] == n && c[1] == n && c[2] == n {
			break
		}
	}
	b.stop(t)
	final := srv.Objects(t, "topics/")
	if c := committed(t, cl, "s3e2e"); c[0] != n || c[1] != n || c[2] != n {
		t.Errorf("commits at the end %v, want %d on every partition", c, n)
	}
	checkExactlyOnce(t, final, n)
	for k, v := range mid {
		if !bytes.Equal(final[k], v) {
			t.Errorf("%s was rewritten with different content", k)
		}
	}
}

// logLevel is warn unless FERRY_TEST_LOG names another zerolog level.
func logLevel() zerolog.Level {
	if l, err := zerolog.ParseLevel(os.Getenv("FERRY_TEST_LOG")); err == nil && os.Getenv("FERRY_TEST_LOG") != "" {
		return l
	}
	return zerolog.WarnLevel
}
