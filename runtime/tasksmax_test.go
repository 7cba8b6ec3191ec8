package runtime

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// starts records the configuration of every task Start, by task id.
type starts struct {
	mu  sync.Mutex
	cfg map[string][]map[string]string
}

func (s *starts) add(cfg map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg == nil {
		s.cfg = map[string][]map[string]string{}
	}
	s.cfg[cfg["task.id"]] = append(s.cfg[cfg["task.id"]], cfg)
}

// tasksMax returns the tasks.max of each Start of task id.
func (s *starts) tasksMax(id int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.cfg[strconv.Itoa(id)] {
		out = append(out, c["tasks.max"])
	}
	return out
}

type startSink struct {
	recordingTask
	s *starts
}

func (t *startSink) Start(ctx context.Context, cfg map[string]string) error {
	t.s.add(cfg)
	return t.recordingTask.Start(ctx, cfg)
}

type startSource struct {
	connect.SourceTaskBase
	s *starts
}

func (t *startSource) Start(_ context.Context, cfg map[string]string) error { t.s.add(cfg); return nil }
func (t *startSource) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (t *startSource) Stop() error { return nil }

// Tasks are started with the connector's task count now, not the
// configuration's tasks.max: the control plane's count, and each Reshare's
// after it. A sink's kept tasks go on; a source's restart with the new one.
func TestTasksMaxIsTheEffectiveCount(t *testing.T) {
	addr := newCluster(t, 4, "tm")
	t.Run("sink", func(t *testing.T) {
		s := &starts{}
		rec := newRecorder()
		reg := sinkRegistry(t, func() connect.SinkTask { return &startSink{recordingTask: recordingTask{rec: rec}, s: s} })
		spec := testSpec("tmsink", addr, 3, 1, map[string]string{"topics": "tm"})
		spec.Config["tasks.max"] = "1" // autoscaled: the configuration's count is not the one that runs
		w := startWorker(t, spec, 0, reg)
		eventually(t, 20*time.Second, "RUNNING", func() bool { return w.status.last().State == jobs.WorkerRunning })
		for id := range 3 {
			if got := s.tasksMax(id); len(got) != 1 || got[0] != "3" {
				t.Errorf("task %d started with tasks.max %v, want [3]", id, got)
			}
		}
		w.w.Reshare(1, 5)
		eventually(t, 20*time.Second, "5 tasks RUNNING", func() bool {
			st := w.status.last()
			return st.State == jobs.WorkerRunning && len(st.Tasks) == 5
		})
		for id, want := range map[int]string{0: "[3]", 2: "[3]", 3: "[5]", 4: "[5]"} {
			if got := s.tasksMax(id); fmtList(got) != want {
				t.Errorf("task %d started with tasks.max %v, want %s (kept sink tasks go on)", id, got, want)
			}
		}
		w.stop(t)
	})
	t.Run("source", func(t *testing.T) {
		s := &starts{}
		reg := connect.NewRegistry()
		if err := reg.Register(connect.Plugin{Class: "test.StartSource", Kind: connect.Source, NewSourceTask: func() connect.SourceTask {
			return &startSource{s: s}
		}}); err != nil {
			t.Fatal(err)
		}
		spec := &jobs.WorkerSpec{Connector: "tmsrc", Class: "test.StartSource", BootstrapServers: addr,
			Config: map[string]string{"connector.class": "test.StartSource", "tasks.max": "1"},
			Mcu:    1, Workers: 1, TasksMax: 2, MetricsInterval: "200ms"}
		w := startWorker(t, spec, 0, reg)
		eventually(t, 20*time.Second, "RUNNING", func() bool { return w.status.last().State == jobs.WorkerRunning })
		w.w.Reshare(1, 3)
		eventually(t, 20*time.Second, "3 tasks RUNNING", func() bool {
			st := w.status.last()
			return st.State == jobs.WorkerRunning && len(st.Tasks) == 3
		})
		for id, want := range map[int]string{0: "[2 3]", 1: "[2 3]", 2: "[3]"} {
			if got := s.tasksMax(id); fmtList(got) != want {
				t.Errorf("task %d started with tasks.max %v, want %s", id, got, want)
			}
		}
		w.stop(t)
	})
}

func fmtList(l []string) string {
	out := "["
	for i, s := range l {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out + "]"
}

// datagen makes its order ids unique across tasks with tasks.max: with the
// configuration saying 1 and the connector running 2 tasks, no id repeats.
func TestDatagenIDsUniqueWithEffectiveTasksMax(t *testing.T) {
	addr := newCluster(t, 2, "orders")
	reg, _ := datagenRegistry(t, -1)
	spec := datagenSpec("gen2", addr, 2, map[string]string{"tasks.max": "1"})
	w := startWorker(t, spec, 0, reg)
	eventually(t, 20*time.Second, "200 records", func() bool { return w.w.Metrics(0).RecordsOut >= 200 })
	w.stop(t)
	checkContiguous(t, orderIDs(t, readAll(t, addr, "orders")), 2)
}
