package nomad

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestAgentCustomPlugin runs a custom plugin's worker on a real Nomad agent
// (see TestAgent for how to start one): the job's artifact block downloads
// the plugin's ZIP over HTTP with its MD5 pinned, Nomad unpacks it and runs
// the binary the manifest names with `worker`; a ZIP whose MD5 differs is
// refused by Nomad and the connector's observation says why.
func TestAgentCustomPlugin(t *testing.T) {
	client, out := agentClient(t)
	// The plugin's "binary" notes how it was started, then waits.
	script := fmt.Sprintf(`#!/bin/sh
echo "$0 $*" > %[1]q/ran-"$FERRY_WORKER_INDEX"
cat "$FERRY_PLUGIN_DIR/lib/readme.txt" > %[1]q/lib-"$FERRY_WORKER_INDEX"
trap 'exit 0' TERM
while :; do sleep 1; done
`, out)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode os.FileMode
		body string
	}{
		{"ferry-plugin.json", 0o644, `{"binary":"bin/acme-worker","connectors":[{"class":"com.acme.Sink","type":"sink"}]}`},
		{"bin/acme-worker", 0o755, script},
		{"lib/readme.txt", 0o644, "unpacked next to the binary"},
	} {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zipped := buf.Bytes()
	sum := md5.Sum(zipped)
	var downloads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downloads.Add(1)
		_, _ = w.Write(zipped)
	}))
	t.Cleanup(srv.Close)

	dep, err := NewDeployer(Config{
		Client: client,
		Render: RenderConfig{WorkerCommand: "/nonexistent/ferry", MHzPerVCPU: 100, KillTimeout: 5 * time.Second},
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "it-plugin-" + hex.EncodeToString(b[:])
	bad := name + "-bad"
	t.Cleanup(func() {
		for _, n := range []string{name, bad} {
			if err := dep.Remove(ctxT(t), n); err != nil {
				t.Errorf("cleanup %s: %v", n, err)
			}
		}
	})

	d := withWorkers(testDeployment(), 1)
	d.Name, d.Spec.Connector = name, name
	d.Plugin = &PluginArtifact{Source: srv.URL + "/plugin.zip", Checksum: "md5:" + hex.EncodeToString(sum[:]), Binary: "bin/acme-worker"}
	if err := dep.Apply(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	waitAlive(t, dep, name, 1)
	ran := waitFile(t, filepath.Join(out, "ran-0"))
	if !strings.HasSuffix(ran, "/local/plugins/bin/acme-worker worker\n") {
		t.Errorf("the plugin's binary ran as %q, want …/local/plugins/bin/acme-worker worker", ran)
	}
	if lib := waitFile(t, filepath.Join(out, "lib-0")); lib != "unpacked next to the binary" {
		t.Errorf("the rest of the ZIP: %q", lib)
	}
	if downloads.Load() < 1 {
		t.Error("the agent never downloaded the plugin")
	}

	// Another MD5: Nomad refuses the download, the observation says so.
	d.Name, d.Spec.Connector = bad, bad
	d.Plugin.Checksum = "md5:" + strings.Repeat("0", 32)
	if err := dep.Apply(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		obs, err := dep.Observe(ctxT(t), bad)
		if err == nil && obs.Alive > 0 {
			t.Fatalf("a plugin whose MD5 differs runs: %+v", obs)
		}
		if err == nil && strings.Contains(strings.ToLower(obs.Reason), "checksum") {
			t.Logf("refused: %s", obs.Reason)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reason naming the checksum after 90 s: %+v %v", obs, err)
		}
		time.Sleep(time.Second)
	}
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written", path)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
