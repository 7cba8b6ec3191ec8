package nomad

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/hashicorp/nomad/api"
	"github.com/rs/zerolog"
)

// TestAgentExecWorkerArtifact runs a worker with the exec driver, the
// default of `ferry server`, on a real agent: the task runs as nobody in a
// chroot, its ferry binary comes from --worker-artifact (a tar.gz served
// over HTTP, sha256 pinned) and it must be able to read the spec Nomad
// renders (as root) into its secrets directory. The "binary" is a shell
// script that copies what it saw into the allocation directory, which the
// test reads through Nomad's API. Skips when the agent has no healthy exec
// driver (it needs cgroups and root).
func TestAgentExecWorkerArtifact(t *testing.T) {
	client, _ := agentClient(t)
	self, _, err := client.Nodes().List(nil)
	if err != nil || len(self) == 0 {
		t.Fatalf("list nodes: %v", err)
	}
	node, _, err := client.Nodes().Info(self[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if di := node.Drivers[DriverExec]; di == nil || !di.Healthy {
		t.Skipf("the agent's exec driver is not healthy (%+v): exec needs root and cgroups", di)
	}

	script := `#!/bin/sh
[ "$1" = worker ] || { echo "want argument worker, got $*" >&2; exit 2; }
id -u > "$NOMAD_ALLOC_DIR/uid"
echo "$FERRY_METRICS_ADDR" > "$NOMAD_ALLOC_DIR/metrics"
cat "$FERRY_WORKER_SPEC" > "$NOMAD_ALLOC_DIR/spec.json" || exit 3
trap 'exit 0' TERM
while :; do sleep 1; done
`
	archive := tarGz(t, map[string]string{"ferry": script})
	sum := sha256.Sum256(archive)
	var downloads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downloads.Add(1)
		_, _ = w.Write(archive)
	}))
	t.Cleanup(srv.Close)

	dep, err := NewDeployer(Config{
		Client: client,
		Render: RenderConfig{Driver: DriverExec, MHzPerVCPU: 100, KillTimeout: 5 * time.Second, WorkerArtifact: &WorkerArtifact{
			Source: srv.URL + "/ferry_linux_amd64.tar.gz", Checksum: "sha256:" + hex.EncodeToString(sum[:]),
		}},
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "it-exec-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if err := dep.Remove(ctxT(t), name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	d := withWorkers(testDeployment(), 1)
	d.Name, d.Spec.Connector = name, name
	if err := dep.Apply(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	ids := waitAlive(t, dep, name, 1)
	alloc, _, err := client.Allocations().Info(ids[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			rc, err := client.AllocFS().Cat(alloc, path, nil)
			if err == nil {
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(rc)
				_ = rc.Close()
				if buf.Len() > 0 {
					return buf.String()
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not written by the worker: %v", path, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if uid := strings.TrimSpace(read("alloc/uid")); uid == "0" {
		t.Errorf("the exec worker runs as root; the test means to check a worker that is not")
	} else {
		t.Logf("exec worker runs as uid %s", uid)
	}
	var spec jobs.WorkerSpec
	if err := json.Unmarshal([]byte(read("alloc/spec.json")), &spec); err != nil {
		t.Fatalf("spec the worker read: %v", err)
	}
	if spec.Config["aws.secret.access.key"] != d.Spec.Config["aws.secret.access.key"] || spec.NatsURL != d.Spec.NatsURL {
		t.Errorf("spec read by the worker = %+v", spec)
	}
	if m := strings.TrimSpace(read("alloc/metrics")); !strings.Contains(m, ":") || strings.HasSuffix(m, ":0") {
		t.Errorf("FERRY_METRICS_ADDR = %q, want the allocation's metrics port", m)
	}
	if downloads.Load() < 1 {
		t.Error("the agent never downloaded the worker artifact")
	}
}

// tarGz packs files (executable) into a gzipped tar.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// countingTransport counts the requests that are not blocking queries.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    int
	seen []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Query().Get("index") == "" {
		c.mu.Lock()
		c.n++
		c.seen = append(c.seen, r.Method+" "+r.URL.Path)
		c.mu.Unlock()
	}
	return c.base.RoundTrip(r)
}

func (c *countingTransport) count() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, append([]string(nil), c.seen...)
}

// TestAgentIdlePass: against a real agent, with the watch in sync (its
// filtered allocation and deployment queries, the variable list), an idle
// reconcile pass (Apply, Observe, List) sends no request but the watch's.
func TestAgentIdlePass(t *testing.T) {
	cfg := agentConfig(t)
	ct := &countingTransport{base: http.DefaultTransport}
	cfg.HttpClient = &http.Client{Transport: ct}
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := NewDeployer(Config{
		Client: client, WatchWait: 10 * time.Second,
		Render: RenderConfig{WorkerCommand: "/bin/sleep", MHzPerVCPU: 100},
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	var ds []Deployment
	for _, n := range []string{"a", "b"} {
		d := withWorkers(testDeployment(), 1)
		d.Name = "idle-" + n + "-" + hex.EncodeToString(b[:])
		d.Spec.Connector = d.Name
		ds = append(ds, d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = dep.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, d := range ds {
			if err := dep.Remove(ctxT(t), d.Name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		before, _ := ct.count()
		pass(t, ctxT(t), dep, ds)
		if _, err := dep.List(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		after, seen := ct.count()
		if after == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a pass still sends %d requests after 60 s: %v", after-before, seen[before:])
		}
		time.Sleep(time.Second)
	}
	before, _ := ct.count()
	for range 10 {
		pass(t, ctxT(t), dep, ds)
		if _, err := dep.List(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	after, seen := ct.count()
	t.Logf("10 idle passes over 2 connectors: %d requests %v", after-before, seen[before:])
	if after != before {
		t.Errorf("idle passes sent requests: %v", seen[before:])
	}
}

// TestAgentPlacementFailure: a connector asking more than the agent has
// fails placement, and the reason says what is asked and what is free.
func TestAgentPlacementFailure(t *testing.T) {
	client, _ := agentClient(t)
	dep, err := NewDeployer(Config{
		Client: client,
		Render: RenderConfig{WorkerCommand: "/bin/sleep"},
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	d := withWorkers(testDeployment(), 2)
	d.Name = "toobig-" + hex.EncodeToString(b[:])
	d.Spec.Connector, d.Mcu, d.Spec.Mcu = d.Name, 64, 64 // 64 vCPU, 256 GiB each
	t.Cleanup(func() {
		if err := dep.Remove(ctxT(t), d.Name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := dep.Apply(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		obs, err := dep.Observe(ctxT(t), d.Name)
		if err == nil && obs.PlacementFailed {
			t.Logf("reason: %s", obs.Reason)
			if !strings.HasPrefix(obs.Reason, "placement failed: 2 workers × 64 MCU need 128 vCPU (256000 MHz) / 524288 MB; cluster has ") || !strings.Contains(obs.Reason, "free on 1 node") {
				t.Errorf("reason = %s", obs.Reason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no placement failure after 60 s: %+v %v", obs, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
