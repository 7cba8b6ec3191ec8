package runtime

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

const testClass = "test.RecordingSink"

// newCluster starts an in-process Kafka with topics of the given partitions.
func newCluster(t *testing.T, partitions int32, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes values to explicit partitions and waits for the acks.
func produce(t *testing.T, cl *kgo.Client, topic string, partition int32, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func manualPartitioner() kgo.Opt { return kgo.RecordPartitioner(kgo.ManualPartitioner()) }

// committed reads the group's committed offsets.
func committed(t *testing.T, cl *kgo.Client, group string) map[connect.TopicPartition]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	out := map[connect.TopicPartition]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil {
			out[connect.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = o.At
		}
	})
	return out
}

// delivery is one record a recording task received.
type delivery struct {
	task   int
	tp     connect.TopicPartition
	offset int64
	value  any
}

// recorder is shared by every recordingTask a test's registry makes.
type recorder struct {
	mu        sync.Mutex
	got       []delivery
	opened    map[int][]connect.TopicPartition
	closed    map[int][]connect.TopicPartition
	preCommit int
	// durable decides, per partition, the offset to report durable given
	// the offset after the last record delivered; nil means all of it.
	durable func(tp connect.TopicPartition, current int64) (int64, bool)
	// failAt, if set, makes Put fail once when it sees this offset.
	failAt   int64
	failOnce bool
	// failOpens makes that many Open calls fail.
	failOpens int
}

func newRecorder() *recorder {
	return &recorder{opened: map[int][]connect.TopicPartition{}, closed: map[int][]connect.TopicPartition{}, failAt: -1}
}

func (r *recorder) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// count returns how many times each (tp, offset) was delivered.
func (r *recorder) count() map[connect.TopicPartition]map[int64]int {
	out := map[connect.TopicPartition]map[int64]int{}
	for _, d := range r.deliveries() {
		if out[d.tp] == nil {
			out[d.tp] = map[int64]int{}
		}
		out[d.tp][d.offset]++
	}
	return out
}

type recordingTask struct {
	rec *recorder
	id  int
}

var _ connect.SinkTask = (*recordingTask)(nil)

func (t *recordingTask) Start(_ context.Context, cfg map[string]string) error {
	_, err := fmt.Sscan(cfg["task.id"], &t.id)
	return err
}

func (t *recordingTask) Open(_ context.Context, tps []connect.TopicPartition) error {
	t.rec.mu.Lock()
	defer t.rec.mu.Unlock()
	if t.rec.failOpens > 0 {
		t.rec.failOpens--
		return fmt.Errorf("injected open failure")
	}
	t.rec.opened[t.id] = append(t.rec.opened[t.id], tps...)
	return nil
}

func (t *recordingTask) Put(_ context.Context, recs []connect.Record) error {
	t.rec.mu.Lock()
	defer t.rec.mu.Unlock()
	for _, r := range recs {
		if r.Offset == t.rec.failAt && !t.rec.failOnce {
			t.rec.failOnce = true
			return fmt.Errorf("injected failure at %s", r.Coordinates())
		}
	}
	for _, r := range recs {
		t.rec.got = append(t.rec.got, delivery{task: t.id, tp: r.TopicPartition(), offset: r.Offset, value: r.Value})
	}
	return nil
}

func (t *recordingTask) PreCommit(_ context.Context, cur map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	t.rec.mu.Lock()
	defer t.rec.mu.Unlock()
	t.rec.preCommit++
	out := map[connect.TopicPartition]int64{}
	for tp, off := range cur {
		if t.rec.durable == nil {
			out[tp] = off
		} else if d, ok := t.rec.durable(tp, off); ok {
			out[tp] = d
		}
	}
	return out, nil
}

func (t *recordingTask) Close(_ context.Context, tps []connect.TopicPartition) error {
	t.rec.mu.Lock()
	defer t.rec.mu.Unlock()
	t.rec.closed[t.id] = append(t.rec.closed[t.id], tps...)
	return nil
}

func (t *recordingTask) Stop() error { return nil }

func testRegistry(t *testing.T, rec *recorder) *connect.Registry {
	t.Helper()
	return sinkRegistry(t, func() connect.SinkTask { return &recordingTask{rec: rec} })
}

// durableOf is what a task's PreCommit reports when its partitions are
// durable up to durable: durable's offsets of the partitions in cur.
func durableOf(cur, durable map[connect.TopicPartition]int64) map[connect.TopicPartition]int64 {
	out := map[connect.TopicPartition]int64{}
	for tp := range cur {
		if off, ok := durable[tp]; ok {
			out[tp] = off
		}
	}
	return out
}

// sinkRegistry is a registry holding one sink plugin, testClass, whose
// tasks newTask makes.
func sinkRegistry(t testing.TB, newTask func() connect.SinkTask) *connect.Registry {
	t.Helper()
	reg := connect.NewRegistry()
	if err := reg.Register(connect.Plugin{Class: testClass, Kind: connect.Sink, NewSinkTask: newTask}); err != nil {
		t.Fatal(err)
	}
	return reg
}

func testSpec(name, addr string, tasksMax, workers int, cfg map[string]string) *jobs.WorkerSpec {
	c := map[string]string{"connector.class": testClass, "tasks.max": fmt.Sprint(tasksMax)}
	for k, v := range cfg {
		c[k] = v
	}
	return &jobs.WorkerSpec{
		Connector: name, Class: testClass, Config: c, BootstrapServers: addr,
		Mcu: 1, Workers: workers, TasksMax: tasksMax, MetricsInterval: "200ms",
	}
}

// statusLog collects every status a worker reports.
type statusLog struct {
	mu  sync.Mutex
	all []jobs.WorkerStatus
}

func (s *statusLog) add(st jobs.WorkerStatus) {
	s.mu.Lock()
	s.all = append(s.all, st)
	s.mu.Unlock()
}

func (s *statusLog) last() jobs.WorkerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.all) == 0 {
		return jobs.WorkerStatus{}
	}
	return s.all[len(s.all)-1]
}

func (s *statusLog) seen(state string) (jobs.WorkerStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.all {
		if st.State == state {
			return st, true
		}
	}
	return jobs.WorkerStatus{}, false
}

// running is a started worker; stop cancels it and waits for Run.
type running struct {
	w      *Worker
	status *statusLog
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("worker run: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop within 30s")
	}
}

func startWorker(t *testing.T, spec *jobs.WorkerSpec, index int, reg *connect.Registry) *running {
	t.Helper()
	return startWorkerWith(t, spec, index, reg, nil)
}

// startWorkerWith is startWorker with options changed by opt.
func startWorkerWith(t *testing.T, spec *jobs.WorkerSpec, index int, reg *connect.Registry, opt func(*Options)) *running {
	t.Helper()
	sl := &statusLog{}
	opts := Options{
		Index: index, WorkerID: fmt.Sprintf("w%d", index),
		Logger:   zerolog.New(zerolog.NewTestWriter(t)).Level(testLogLevel),
		Registry: reg, OnStatus: sl.add,
		RestartBackoff: 200 * time.Millisecond, MaxRestartBackoff: time.Second,
	}
	if opt != nil {
		opt(&opts)
	}
	w, err := NewWorker(spec, opts)
	if err != nil {
		t.Fatalf("new worker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, status: sl, cancel: cancel, done: make(chan struct{})}
	go func() { r.err = w.Run(ctx); close(r.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
		}
	})
	return r
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sortedTPs(m map[connect.TopicPartition]int64) []connect.TopicPartition {
	out := make([]connect.TopicPartition, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

var testLogLevel = zerolog.WarnLevel

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// deadLetterHeaders reads the one record the dead letter queue topic must
// hold and returns its headers.
func deadLetterHeaders(t *testing.T, addr, topic string) map[string]string {
	t.Helper()
	return headerMap(deadLetters(t, addr, topic, 1)[0])
}

// deadLetters reads n records of a dead letter queue topic.
func deadLetters(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	dl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		out = append(out, dl.PollFetches(ctx).Records()...)
	}
	if len(out) != n {
		t.Fatalf("dead letter queue %s holds %d records, want %d", topic, len(out), n)
	}
	return out
}

// headerMap returns a record's headers by key.
func headerMap(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, hd := range r.Headers {
		h[hd.Key] = string(hd.Value)
	}
	return h
}

// committedAt reads one partition's committed offset; -1 while the group
// has none (it may not exist yet).
func committedAt(t *testing.T, cl *kgo.Client, group string, tp connect.TopicPartition) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	if o, ok := resp.Lookup(tp.Topic, tp.Partition); ok && o.Err == nil {
		return o.At
	}
	return -1
}
