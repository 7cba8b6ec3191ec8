package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/connectors/datagen"
	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// readAll reads every record of topic, start to end.
func readAll(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := newClient(t, addr)
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("list end offsets: %v %v", err, ends.Error())
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	var out []*kgo.Record
	if len(want) == 0 {
		return out
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts})
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %v (missing %v)", topic, ctx.Err(), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// flakyDatagen fails its first Poll that reaches iteration failAt.
type flakyDatagen struct {
	*datagen.Task
	failAt int64
	once   *sync.Once
	failed *bool
}

func (f *flakyDatagen) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	recs, err := f.Task.Poll(ctx)
	for _, r := range recs {
		if n, _ := asInt64(r.SourceOffset[datagen.OffsetField]); n >= f.failAt {
			fail := false
			f.once.Do(func() { fail = true; *f.failed = true })
			if fail {
				return nil, fmt.Errorf("injected failure at iteration %d", n)
			}
		}
	}
	return recs, err
}

func asInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

func datagenRegistry(t *testing.T, failAt int64) (*connect.Registry, *bool) {
	t.Helper()
	reg := connect.NewRegistry()
	p := datagen.Plugin()
	failed := new(bool)
	if failAt >= 0 {
		once := new(sync.Once)
		p.NewSourceTask = func() connect.SourceTask {
			return &flakyDatagen{Task: &datagen.Task{}, failAt: failAt, once: once, failed: failed}
		}
	}
	if err := reg.Register(p); err != nil {
		t.Fatal(err)
	}
	return reg, failed
}

func datagenSpec(name, addr string, tasks int, extra map[string]string) *jobs.WorkerSpec {
	cfg := map[string]string{
		"connector.class":                datagen.Class,
		"tasks.max":                      strconv.Itoa(tasks),
		"kafka.topic":                    "orders",
		"quickstart":                     "orders",
		"records.per.second":             "2000",
		"random.seed":                    "7",
		"offset.flush.interval.ms":       "100",
		"key.converter":                  connect.StringConverterClass,
		"value.converter":                connect.JSONConverterClass,
		"value.converter.schemas.enable": "false",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return &jobs.WorkerSpec{
		Connector: name, Class: datagen.Class, Config: cfg, BootstrapServers: addr,
		Mcu: 1, Workers: 1, TasksMax: tasks, MetricsInterval: "200ms",
	}
}

// orderIDs decodes the orders' keys, checks each record's value matches its
// key and that every record came from an idempotent producer.
func orderIDs(t *testing.T, recs []*kgo.Record) map[int64]int {
	t.Helper()
	seen := map[int64]int{}
	for _, r := range recs {
		id, err := strconv.ParseInt(string(r.Key), 10, 64)
		if err != nil {
			t.Fatalf("key %q: %v", r.Key, err)
		}
		var v struct {
			OrderID int64  `json:"orderid"`
			ItemID  string `json:"itemid"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil || v.OrderID != id || v.ItemID == "" {
			t.Fatalf("value %s for key %d: %v", r.Value, id, err)
		}
		if r.ProducerID < 0 {
			t.Fatalf("record %d written without a producer id: not idempotent", id)
		}
		seen[id]++
	}
	return seen
}

// checkContiguous checks ids hold every iteration of every task from 0 up
// to some end, each exactly once, and returns the next iteration per task.
func checkContiguous(t *testing.T, seen map[int64]int, tasks int64) map[int64]int64 {
	t.Helper()
	next := map[int64]int64{}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("order %d produced %d times", id, n)
		}
		task, it := id%tasks, id/tasks
		next[task] = max(next[task], it+1)
	}
	for task, n := range next {
		for it := int64(0); it < n; it++ {
			if seen[it*tasks+task] == 0 {
				t.Errorf("task %d iteration %d missing", task, it)
			}
		}
	}
	return next
}

func TestSourceOffsetsSurviveRestart(t *testing.T) {
	addr := newCluster(t, 3, "orders")
	reg, _ := datagenRegistry(t, -1)
	spec := datagenSpec("gen", addr, 2, nil)

	count := func() int { return len(readAll(t, addr, "orders")) }
	w := startWorker(t, spec, 0, reg)
	eventually(t, 20*time.Second, "300 records", func() bool { return count() >= 300 })
	if st := w.status.last(); st.State != jobs.WorkerRunning {
		t.Errorf("status %s, want RUNNING", st.State)
	}
	w.stop(t)

	first := checkContiguous(t, orderIDs(t, readAll(t, addr, "orders")), 2)

	// The offsets topic is compacted and keyed as Kafka Connect keys it.
	cl := newClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfgs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, OffsetsTopic("gen"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cfgs.On(OffsetsTopic("gen"), nil); err != nil {
		t.Fatal(err)
	} else if c, ok := configValue(v.Configs, "cleanup.policy"); !ok || c != "compact" {
		t.Errorf("offsets topic cleanup.policy = %q, want compact", c)
	}
	stored := map[string]string{}
	for _, r := range readAll(t, addr, OffsetsTopic("gen")) {
		stored[string(r.Key)] = string(r.Value)
	}
	for task := int64(0); task < 2; task++ {
		key := fmt.Sprintf(`["gen",{"task.id":%d}]`, task)
		want := fmt.Sprintf(`{"current.iteration":%d}`, first[task]-1)
		if stored[key] != want {
			t.Errorf("offset of %s = %q, want %q (all: %v)", key, stored[key], want, stored)
		}
	}

	// Restart: iterations continue where they stopped, nothing repeated.
	before := count()
	w = startWorker(t, spec, 0, reg)
	eventually(t, 20*time.Second, "300 more records", func() bool { return count() >= before+300 })
	w.stop(t)
	second := checkContiguous(t, orderIDs(t, readAll(t, addr, "orders")), 2)
	for task := int64(0); task < 2; task++ {
		if second[task] <= first[task] {
			t.Errorf("task %d did not go on: %d then %d", task, first[task], second[task])
		}
	}
	m := w.w.Metrics(0)
	if m.RecordsOut < 300 || m.BytesOut == 0 || m.RecordsIn < m.RecordsOut {
		t.Errorf("metrics %+v", m)
	}
}

func configValue(cs []kadm.Config, name string) (string, bool) {
	for _, c := range cs {
		if c.Key == name && c.Value != nil {
			return *c.Value, true
		}
	}
	return "", false
}

// A task that fails mid-stream is restarted from its stored offsets: every
// record it had produced before failing is kept once, and it goes on.
func TestSourceTaskFailureRestartsWithoutLossOrDuplicates(t *testing.T) {
	addr := newCluster(t, 2, "orders")
	reg, failed := datagenRegistry(t, 150)
	spec := datagenSpec("flaky", addr, 1, map[string]string{"offset.storage.topic": "my-offsets"})
	w := startWorker(t, spec, 0, reg)
	eventually(t, 20*time.Second, "400 records", func() bool { return len(readAll(t, addr, "orders")) >= 400 })
	w.stop(t)
	if !*failed {
		t.Fatal("the injected failure never happened")
	}
	if _, ok := w.status.seen(jobs.WorkerFailed); !ok {
		t.Error("the failure was never reported")
	}
	next := checkContiguous(t, orderIDs(t, readAll(t, addr, "orders")), 1)
	if next[0] < 400 {
		t.Errorf("next iteration %d", next[0])
	}
	if len(readAll(t, addr, "my-offsets")) == 0 {
		t.Error("offset.storage.topic not used")
	}
}

// The source producer is idempotent: it gets a producer id from the broker.
func TestSourceProducerIsIdempotent(t *testing.T) {
	addr := newCluster(t, 1, "orders")
	reg, _ := datagenRegistry(t, -1)
	w, err := NewWorker(datagenSpec("idem", addr, 1, nil), Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	r := &sourceRun{w: w, s: w.source}
	cl, err := kgo.NewClient(r.clientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, _, err := cl.ProducerID(ctx)
	if err != nil || id < 0 {
		t.Fatalf("producer id %d, %v: not idempotent", id, err)
	}
}

// Records that fail to convert fail the task under errors.tolerance=none,
// naming their source position, and are skipped (offsets stored, errors
// counted) under all.
func TestSourceErrorTolerance(t *testing.T) {
	addr := newCluster(t, 1, "orders")
	reg, _ := datagenRegistry(t, -1)
	// ByteArrayConverter refuses the orders' integer keys.
	bad := map[string]string{"key.converter": connect.ByteArrayConverterClass, "iterations": "50"}

	w := startWorker(t, datagenSpec("strict", addr, 1, bad), 0, reg)
	var failed jobs.WorkerStatus
	eventually(t, 10*time.Second, "a failure", func() bool {
		st, ok := w.status.seen(jobs.WorkerFailed)
		failed = st
		return ok
	})
	for _, want := range []string{"errors.tolerance=none", `source partition {"task.id":0} offset {"current.iteration":0}`} {
		if !strings.Contains(failed.Message, want) {
			t.Errorf("failure %q does not say %q", failed.Message, want)
		}
	}
	w.stop(t)

	tolerant := map[string]string{"errors.tolerance": "all", "errors.log.enable": "true"}
	for k, v := range bad {
		tolerant[k] = v
	}
	w = startWorker(t, datagenSpec("lenient", addr, 1, tolerant), 0, reg)
	eventually(t, 10*time.Second, "50 errors", func() bool { return w.w.Metrics(0).Errors >= 50 })
	if _, ok := w.status.seen(jobs.WorkerFailed); ok {
		t.Error("task failed under errors.tolerance=all")
	}
	w.stop(t)
	stored := map[string]string{}
	for _, r := range readAll(t, addr, OffsetsTopic("lenient")) {
		stored[string(r.Key)] = string(r.Value)
	}
	if got := stored[`["lenient",{"task.id":0}]`]; got != `{"current.iteration":49}` {
		t.Errorf("offset of skipped records %q, want iteration 49", got)
	}
	if m := w.w.Metrics(0); m.RecordsOut != 0 || m.Errors != 50 {
		t.Errorf("metrics %+v", m)
	}
}

// Task configs are split across workers by jobs.TaskShare; each worker
// runs only its own tasks, and together they run all.
func TestSourceTasksSplitAcrossWorkers(t *testing.T) {
	addr := newCluster(t, 2, "orders")
	reg, _ := datagenRegistry(t, -1)
	spec := datagenSpec("split", addr, 3, map[string]string{"iterations": "40"})
	spec.Workers = 2
	w0 := startWorker(t, spec, 0, reg)
	w1 := startWorker(t, spec, 1, reg)
	if got := fmt.Sprint(w0.w.TaskIDs(), w1.w.TaskIDs()); got != "[0 2] [1]" {
		t.Fatalf("task shares %s", got)
	}
	eventually(t, 15*time.Second, "120 records", func() bool { return len(readAll(t, addr, "orders")) >= 120 })
	w0.stop(t)
	w1.stop(t)
	next := checkContiguous(t, orderIDs(t, readAll(t, addr, "orders")), 3)
	for task := int64(0); task < 3; task++ {
		if next[task] != 40 {
			t.Errorf("task %d produced %d iterations, want 40", task, next[task])
		}
	}
	if w0.w.Metrics(0).RecordsOut != 80 || w1.w.Metrics(0).RecordsOut != 40 {
		t.Errorf("records out %d and %d, want 80 and 40", w0.w.Metrics(0).RecordsOut, w1.w.Metrics(0).RecordsOut)
	}
}
