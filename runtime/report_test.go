package runtime

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ferryhq/ferry/jobs"
)

func startNATS(t *testing.T) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Status and metrics reach NATS on their subjects; losing NATS does not stop
// the data path.
func TestReportsOverNATS(t *testing.T) {
	ns := startNATS(t)
	pub, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	sub, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	var mu sync.Mutex
	var statuses []jobs.WorkerStatus
	var metrics []jobs.Metrics
	if _, err := sub.Subscribe(jobs.StatusSubject("rep", "w0"), func(m *nats.Msg) {
		var st jobs.WorkerStatus
		if err := json.Unmarshal(m.Data, &st); err == nil {
			mu.Lock()
			statuses = append(statuses, st)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(jobs.MetricsSubject("rep", "w0"), func(m *nats.Msg) {
		var mt jobs.Metrics
		if err := json.Unmarshal(m.Data, &mt); err == nil {
			mu.Lock()
			metrics = append(metrics, mt)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	_ = sub.Flush()

	addr := newCluster(t, 2, "m")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "m", 0, values("x", 10)...)
	rec := newRecorder()
	spec := testSpec("rep", addr, 2, 1, map[string]string{"topics": "m", "offset.flush.interval.ms": "100"})
	spec.Mcu = 2
	w, err := NewWorker(spec, Options{WorkerID: "w0", Registry: testRegistry(t, rec), Nats: pub})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{w: w, status: &statusLog{}, done: make(chan struct{})}
	ctx, cancel := contextWithCancel()
	r.cancel = cancel
	go func() { r.err = w.Run(ctx); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })

	eventually(t, 20*time.Second, "RUNNING status and metrics with 10 records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		running := false
		for _, st := range statuses {
			running = running || (st.State == jobs.WorkerRunning && len(st.Tasks) == 2)
		}
		// Lag is 0 once what was delivered is committed.
		return running && len(metrics) > 0 && metrics[len(metrics)-1].RecordsOut == 10 && metrics[len(metrics)-1].Lag == 0
	})
	mu.Lock()
	m := metrics[len(metrics)-1]
	mu.Unlock()
	if m.Connector != "rep" || m.Worker != "w0" || m.Mcu != 2 || m.Tasks != 2 || m.TasksRunning != 2 || m.RecordsIn != 10 || m.BytesIn == 0 || m.CPUPercent < 0 || m.Lag != 0 {
		t.Errorf("metrics %+v", m)
	}

	// NATS goes away; records keep flowing.
	ns.Shutdown()
	produce(t, cl, "m", 1, values("y", 10)...)
	eventually(t, 20*time.Second, "records delivered without NATS", func() bool { return len(rec.deliveries()) == 20 })
	r.stop(t)
}

func TestNewWorkerRefusesBadSpecs(t *testing.T) {
	rec := newRecorder()
	reg := testRegistry(t, rec)
	for name, mutate := range map[string]func(*jobs.WorkerSpec){
		"unknown class":      func(s *jobs.WorkerSpec) { s.Class = "nope" },
		"no topics":          func(s *jobs.WorkerSpec) { delete(s.Config, "topics") },
		"bad converter":      func(s *jobs.WorkerSpec) { s.Config["value.converter"] = "x.Avro" },
		"bad flush interval": func(s *jobs.WorkerSpec) { s.Config["offset.flush.interval.ms"] = "soon" },
		"bad metrics":        func(s *jobs.WorkerSpec) { s.MetricsInterval = "often" },
		"bad worker property": func(s *jobs.WorkerSpec) {
			s.WorkerProperties = map[string]string{"consumer.auto.offset.reset": "middle"}
		},
	} {
		spec := testSpec("bad", "127.0.0.1:1", 1, 1, map[string]string{"topics": "t"})
		mutate(spec)
		if _, err := NewWorker(spec, Options{Registry: reg}); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Log(name, ":", err)
		}
	}
	spec := testSpec("share", "127.0.0.1:1", 5, 2, map[string]string{"topics": "t"})
	w, err := NewWorker(spec, Options{Index: 1, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(w.TaskIDs()); got != "[1 3]" {
		t.Errorf("worker 1 of 2 with tasks.max 5 runs %s, want [1 3]", got)
	}
}

// A worker starting while NATS is down still gets a connection that
// publishes later, and publishing meanwhile does not block.
func TestDialNATSWhileDown(t *testing.T) {
	ns := startNATS(t)
	url := ns.ClientURL()
	ns.Shutdown()
	ns.WaitForShutdown()
	nc, err := DialNATS(url, "ferry-worker-test")
	if err != nil {
		t.Fatalf("dial while down: %v", err)
	}
	defer nc.Close()
	start := time.Now()
	for i := 0; i < 100; i++ {
		_ = nc.Publish("ferry.status.x.y", []byte("{}"))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("publishing while NATS is down took %v", d)
	}
}
