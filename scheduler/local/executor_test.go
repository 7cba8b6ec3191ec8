package local

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/local/testworker"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	testworker.MaybeRun()
	os.Exit(m.Run())
}

func newExecutor(t *testing.T, mod func(*Config)) *Executor {
	t.Helper()
	cfg := Config{
		Command:     []string{os.Args[0], "-test.run=^$"},
		Env:         []string{testworker.EnvFlag + "=1"},
		DataDir:     t.TempDir(),
		Logger:      zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
		KillTimeout: 3 * time.Second,
		MinBackoff:  50 * time.Millisecond,
		MaxBackoff:  400 * time.Millisecond,
		StableAfter: 2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func deployment(name string, rev int64, workers int, natsURL string, extra map[string]string) scheduler.Deployment {
	cfg := map[string]string{"connector.class": "test", "aws.secret.access.key": "s3cr3t"}
	for k, v := range extra {
		cfg[k] = v
	}
	return scheduler.Deployment{
		Name: name, Arn: "arn:aws:kafkaconnect:us-east-1:000000000000:connector/" + name + "/abc",
		Revision: rev, Workers: workers, Mcu: 1,
		Spec: jobs.WorkerSpec{
			Connector: name, Revision: rev, Class: "test", Config: cfg, BootstrapServers: "127.0.0.1:9092",
			Mcu: 1, Workers: workers, TasksMax: workers, NatsURL: natsURL, MetricsInterval: "200ms",
		},
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidAlive reports whether a process with pid exists (and is not a zombie).
func pidAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func itoa(n int) string { return strconv.Itoa(n) }

// pids returns index → pid of the connector's live workers.
func pids(e *Executor, name string) map[int]int {
	m := map[int]int{}
	for _, p := range e.Processes(name) {
		m[p.Index] = p.PID
	}
	return m
}

func readInfo(t *testing.T, e *Executor, name string, rev int64, idx int) (testworker.Info, bool) {
	t.Helper()
	p := filepath.Join(e.cfg.DataDir, "workers", name, "rev-"+itoa(int(rev)), "worker-"+itoa(idx), testworker.InfoFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return testworker.Info{}, false
	}
	var info testworker.Info
	if err := json.Unmarshal(b, &info); err != nil {
		return testworker.Info{}, false
	}
	return info, true
}

// statusLog collects worker statuses from NATS.
type statusLog struct {
	mu   sync.Mutex
	byID map[string]jobs.WorkerStatus
}

func watchStatus(t *testing.T, nc *nats.Conn) *statusLog {
	l := &statusLog{byID: map[string]jobs.WorkerStatus{}}
	sub, err := nc.Subscribe(jobs.StatusSubjectPrefix+">", func(m *nats.Msg) {
		var s jobs.WorkerStatus
		if json.Unmarshal(m.Data, &s) == nil {
			l.mu.Lock()
			l.byID[s.Worker] = s
			l.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return l
}

func (l *statusLog) get(id string) (jobs.WorkerStatus, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.byID[id]
	return s, ok
}

// waitWorkers waits until exactly the indexes 0..n-1 run at revision rev
// and have written their info file, and returns their pids.
func waitWorkers(t *testing.T, e *Executor, name string, rev int64, n int) map[int]int {
	t.Helper()
	var got map[int]int
	waitFor(t, "workers to run", 15*time.Second, func() bool {
		ps := e.Processes(name)
		if len(ps) != n {
			return false
		}
		got = map[int]int{}
		for i, p := range ps {
			if p.Index != i || p.Revision != rev {
				return false
			}
			info, ok := readInfo(t, e, name, rev, i)
			if !ok || info.PID != p.PID || info.ID != p.ID {
				return false
			}
			got[i] = p.PID
		}
		return true
	})
	return got
}

func TestExecutorLifecycle(t *testing.T) {
	_, nc := storetest.NATS(t, "")
	statuses := watchStatus(t, nc)
	e := newExecutor(t, nil)
	ctx := context.Background()
	url := nc.ConnectedUrl()

	// Two workers with the right environment and spec.
	if err := e.Apply(ctx, deployment("c1", 1, 2, url, nil)); err != nil {
		t.Fatal(err)
	}
	first := waitWorkers(t, e, "c1", 1, 2)
	specPath := filepath.Join(e.cfg.DataDir, "workers", "c1", "rev-1", "spec.json")
	fi, err := os.Stat(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("spec file mode = %v, want 0600", fi.Mode().Perm())
	}
	spec, err := jobs.LoadWorkerSpec(specPath)
	if err != nil || spec.Workers != 2 || spec.Config["aws.secret.access.key"] != "s3cr3t" {
		t.Fatalf("spec = %+v, %v", spec, err)
	}
	ids := map[string]bool{}
	metrics := map[string]bool{}
	for _, p := range e.Processes("c1") {
		info, _ := readInfo(t, e, "c1", 1, p.Index)
		if info.Index != itoa(p.Index) || info.SpecFile != specPath || info.Revision != 1 {
			t.Errorf("worker %d saw %+v", p.Index, info)
		}
		// Each worker serves /metrics on a loopback port of its own.
		if host, _, err := net.SplitHostPort(info.MetricsAddr); err != nil || host != "127.0.0.1" || metrics[info.MetricsAddr] || info.MetricsAddr != p.MetricsAddr {
			t.Errorf("worker %d metrics address %q (process says %q), seen %v", p.Index, info.MetricsAddr, p.MetricsAddr, metrics)
		}
		metrics[info.MetricsAddr] = true
		if info.DataDir != filepath.Join(e.cfg.DataDir, "workers", "c1", "rev-1", "worker-"+itoa(p.Index)) {
			t.Errorf("worker %d data dir %q", p.Index, info.DataDir)
		}
		for _, r := range p.ID {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				t.Errorf("worker id %q is not a safe subject token", p.ID)
			}
		}
		ids[p.ID] = true
		environ, err := os.ReadFile(filepath.Join("/proc", itoa(p.PID), "environ"))
		if err != nil {
			t.Fatal(err)
		}
		wants := []string{jobs.EnvSpecFile + "=" + specPath, jobs.EnvWorkerID + "=" + p.ID, jobs.EnvWorkerIndex + "=" + itoa(p.Index)}
		if os.Getenv("GOMAXPROCS") == "" {
			wants = append(wants, "GOMAXPROCS=1") // = the deployment's MCUs
		}
		for _, want := range wants {
			if !strings.Contains(string(environ), want) {
				t.Errorf("worker %d environment lacks %s", p.Index, want)
			}
		}
	}
	if len(ids) != 2 {
		t.Fatalf("worker ids not unique: %v", ids)
	}
	waitFor(t, "RUNNING statuses", 10*time.Second, func() bool {
		for id := range ids {
			if s, ok := statuses.get(id); !ok || s.State != jobs.WorkerRunning {
				return false
			}
		}
		return true
	})
	obs, err := e.Observe(ctx, "c1")
	if err != nil || !obs.Deployed || obs.Alive != 2 || obs.Workers != 2 || obs.CrashLoop || len(obs.IDs) != 2 {
		t.Fatalf("observe = %+v, %v", obs, err)
	}

	// Applying the same deployment again changes nothing.
	if err := e.Apply(ctx, deployment("c1", 1, 2, url, nil)); err != nil {
		t.Fatal(err)
	}
	if got := pids(e, "c1"); got[0] != first[0] || got[1] != first[1] {
		t.Fatalf("idempotent apply replaced workers: %v → %v", first, got)
	}

	// A killed worker is started again.
	if err := syscall.Kill(first[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "killed worker to come back", 10*time.Second, func() bool {
		p := pids(e, "c1")
		return p[1] != 0 && p[1] != first[1] && p[0] == first[0]
	})
	if pidAlive(first[1]) {
		t.Fatal("killed worker still alive")
	}
	cur := waitWorkers(t, e, "c1", 1, 2)

	// Scale out to 3 keeps 0 and 1; scale in to 1 stops 2 and 1.
	if err := e.Apply(ctx, deployment("c1", 1, 3, url, nil)); err != nil {
		t.Fatal(err)
	}
	three := waitWorkers(t, e, "c1", 1, 3)
	if three[0] != cur[0] || three[1] != cur[1] {
		t.Fatalf("scale out replaced workers: %v → %v", cur, three)
	}
	if spec, _ := jobs.LoadWorkerSpec(specPath); spec == nil || spec.Workers != 3 {
		t.Fatalf("spec not rewritten for 3 workers: %+v", spec)
	}
	if err := e.Apply(ctx, deployment("c1", 1, 1, url, nil)); err != nil {
		t.Fatal(err)
	}
	one := pids(e, "c1")
	if len(one) != 1 || one[0] != cur[0] {
		t.Fatalf("after scale in: %v, want only index 0 = %d", one, cur[0])
	}
	for _, idx := range []int{1, 2} {
		if pidAlive(three[idx]) {
			t.Errorf("worker %d (pid %d) still alive after scale in", idx, three[idx])
		}
	}

	// A new revision replaces the worker and removes the old spec file.
	if err := e.Apply(ctx, deployment("c1", 2, 1, url, nil)); err != nil {
		t.Fatal(err)
	}
	rev2 := waitWorkers(t, e, "c1", 2, 1)
	if rev2[0] == one[0] || pidAlive(one[0]) {
		t.Fatalf("revision 2 did not replace worker 0 (pid %d → %d)", one[0], rev2[0])
	}
	if _, err := os.Stat(specPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("revision 1 spec still on disk: %v", err)
	}

	// A restart generation replaces it too.
	d := deployment("c1", 2, 1, url, nil)
	d.Restarts = 1
	if err := e.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	restarted := pids(e, "c1")
	waitFor(t, "restarted worker", 10*time.Second, func() bool {
		restarted = pids(e, "c1")
		return restarted[0] != 0 && restarted[0] != rev2[0]
	})
	if pidAlive(rev2[0]) {
		t.Fatal("worker of the old restart generation still alive")
	}

	// Remove leaves nothing behind.
	if err := e.Remove(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if pidAlive(restarted[0]) {
		t.Fatal("worker alive after Remove")
	}
	if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "workers", "c1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("connector dir still on disk: %v", err)
	}
	if names, _ := e.List(ctx); len(names) != 0 {
		t.Errorf("list after remove = %v", names)
	}
	if obs, _ := e.Observe(ctx, "c1"); obs.Deployed {
		t.Errorf("observe after remove = %+v", obs)
	}
}

func TestExecutorCrashLoop(t *testing.T) {
	e := newExecutor(t, nil)
	ctx := context.Background()
	if err := e.Apply(ctx, deployment("bad", 1, 1, "nats://127.0.0.1:1", map[string]string{"test.mode": "crash"})); err != nil {
		t.Fatal(err)
	}
	var obs scheduler.Observation
	waitFor(t, "crash loop", 10*time.Second, func() bool {
		obs, _ = e.Observe(ctx, "bad")
		return obs.CrashLoop
	})
	if !strings.Contains(obs.Reason, "boom: bad config") || !strings.Contains(obs.Reason, "exit status 1") || !strings.Contains(obs.Reason, "worker 0") {
		t.Fatalf("reason = %q", obs.Reason)
	}
	t.Logf("reason: %s", obs.Reason)
	if err := e.Remove(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
}

func TestExecutorKillsWorkerIgnoringSIGTERM(t *testing.T) {
	_, nc := storetest.NATS(t, "")
	e := newExecutor(t, func(c *Config) { c.KillTimeout = 300 * time.Millisecond })
	ctx := context.Background()
	if err := e.Apply(ctx, deployment("stubborn", 1, 1, nc.ConnectedUrl(), map[string]string{"test.ignore.term": "true"})); err != nil {
		t.Fatal(err)
	}
	p := waitWorkers(t, e, "stubborn", 1, 1)
	start := time.Now()
	if err := e.Remove(ctx, "stubborn"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 5*time.Second {
		t.Errorf("remove took %s, want about the kill timeout", took)
	}
	if pidAlive(p[0]) {
		t.Fatal("worker ignoring SIGTERM still alive")
	}
}

func TestExecutorCloseAndLeftovers(t *testing.T) {
	_, nc := storetest.NATS(t, "")
	dir := t.TempDir()
	e := newExecutor(t, func(c *Config) { c.DataDir = dir })
	ctx := context.Background()
	if err := e.Apply(ctx, deployment("a", 1, 2, nc.ConnectedUrl(), nil)); err != nil {
		t.Fatal(err)
	}
	p := waitWorkers(t, e, "a", 1, 2)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for idx, pid := range p {
		if pidAlive(pid) {
			t.Errorf("worker %d alive after Close", idx)
		}
	}
	if err := e.Apply(ctx, deployment("a", 1, 2, nc.ConnectedUrl(), nil)); err == nil {
		t.Error("apply after close succeeded")
	}

	// A new executor on the same data dir lists what the old one left, so
	// the reconciler can remove it.
	e2 := newExecutor(t, func(c *Config) { c.DataDir = dir })
	names, err := e2.List(ctx)
	if err != nil || len(names) != 1 || names[0] != "a" {
		t.Fatalf("list = %v, %v", names, err)
	}
	if err := e2.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if names, _ := e2.List(ctx); len(names) != 0 {
		t.Fatalf("list after remove = %v", names)
	}
	if err := e2.Apply(ctx, deployment("../x", 1, 1, "", nil)); err == nil {
		t.Error("apply accepted a name with a path in it")
	}
}

func TestExecutorReportsMissingCommand(t *testing.T) {
	e := newExecutor(t, func(c *Config) { c.Command = []string{filepath.Join(t.TempDir(), "no-such-ferry"), "worker"} })
	ctx := context.Background()
	if err := e.Apply(ctx, deployment("c", 1, 1, "", nil)); err != nil {
		t.Fatal(err)
	}
	var obs scheduler.Observation
	waitFor(t, "crash loop", 10*time.Second, func() bool {
		obs, _ = e.Observe(ctx, "c")
		return obs.CrashLoop
	})
	if !strings.Contains(obs.Reason, "no-such-ferry") || obs.Alive != 0 {
		t.Fatalf("observation = %+v", obs)
	}
}
