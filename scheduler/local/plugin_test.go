package local

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/md5"
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

	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
)

// pluginZip is a custom plugin's ZIP whose binary is a shell script: it
// notes how it was started in its data dir, then runs this test binary as
// the test worker (the executor's Env makes it one).
func pluginZip(t *testing.T, extra map[string]string) []byte {
	t.Helper()
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\necho \"$0 $*\" > \"$FERRY_DATA_DIR/plugin-ran\"\nexec %q -test.run='^$'\n", self)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, mode os.FileMode, body string) {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add("ferry-plugin.json", 0o644, `{"binary":"bin/acme-worker","connectors":[{"class":"com.acme.Sink","type":"sink"}]}`)
	add("bin/acme-worker", 0o755, script)
	for name, body := range extra {
		add(name, 0o644, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// servePlugin serves body at /p.zip and counts the downloads.
func servePlugin(t *testing.T, body []byte) (string, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/p.zip", &n
}

// A connector of a custom plugin runs the plugin's binary, downloaded once
// per plugin revision, with the arguments and environment of ferry worker.
func TestCustomPluginWorker(t *testing.T) {
	e := newExecutor(t, nil)
	_, nc := storetest.NATS(t, "")
	zipped := pluginZip(t, map[string]string{"lib/readme.txt": "hello"})
	url, downloads := servePlugin(t, zipped)
	plugin := &scheduler.PluginArtifact{Name: "acme", Revision: 1, URL: url, Md5: md5hex(zipped), Size: int64(len(zipped)), Binary: "bin/acme-worker"}
	ctx := context.Background()
	for _, name := range []string{"one", "two"} {
		d := deployment(name, 1, 1, nc.ConnectedUrl(), nil)
		d.Plugin = plugin
		if err := e.Apply(ctx, d); err != nil {
			t.Fatal(err)
		}
		waitWorkers(t, e, name, 1, 1)
		ran, err := os.ReadFile(filepath.Join(e.cfg.DataDir, "workers", name, "rev-1", "worker-0", "plugin-ran"))
		if err != nil {
			t.Fatalf("%s: the plugin's binary did not run: %v", name, err)
		}
		dir := filepath.Join(e.cfg.DataDir, "plugins", "acme-r1-"+plugin.Md5)
		if want := filepath.Join(dir, "bin", "acme-worker") + " worker\n"; string(ran) != want {
			t.Errorf("%s: plugin started as %q, want %q", name, ran, want)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "lib", "readme.txt")); err != nil || string(b) != "hello" {
			t.Errorf("the rest of the ZIP is not unpacked next to the binary: %q %v", b, err)
		}
	}
	if n := downloads.Load(); n != 1 {
		t.Errorf("%d downloads for two connectors of one plugin revision, want 1", n)
	}
	if obs, _ := e.Observe(ctx, "one"); obs.CrashLoop || obs.Alive != 1 {
		t.Errorf("observation %+v", obs)
	}
	if ps := e.Processes("one"); len(ps) != 1 || !strings.HasPrefix(ps[0].ID, "r1-w0-") {
		t.Errorf("processes %+v", ps)
	}

	// A new executor (a restarted ferry) finds the plugin on disk.
	e2 := newExecutor(t, func(c *Config) { c.DataDir = e.cfg.DataDir })
	if _, err := e2.pluginCommand(ctx, plugin); err != nil || downloads.Load() != 1 {
		t.Errorf("installed plugin not reused after a restart: %v, %d downloads", err, downloads.Load())
	}
}

// A plugin whose download does not match its MD5, or whose ZIP escapes its
// directory, is not run: Observe reports why as a crash loop.
func TestCustomPluginRefused(t *testing.T) {
	e := newExecutor(t, nil)
	zipped := pluginZip(t, nil)
	url, _ := servePlugin(t, zipped)
	evil := pluginZip(t, map[string]string{"../escape.txt": "x"})
	evilURL, _ := servePlugin(t, evil)
	for _, tc := range []struct {
		name   string
		plugin *scheduler.PluginArtifact
		want   string
	}{
		{"changed", &scheduler.PluginArtifact{Name: "acme", Revision: 1, URL: url, Md5: strings.Repeat("0", 32), Binary: "bin/acme-worker"},
			"MD5 " + md5hex(zipped)},
		{"escapes", &scheduler.PluginArtifact{Name: "evil", Revision: 1, URL: evilURL, Md5: md5hex(evil), Binary: "bin/acme-worker"},
			`entry "../escape.txt" leaves the plugin directory`},
		{"no-binary", &scheduler.PluginArtifact{Name: "nobin", Revision: 1, URL: url, Md5: md5hex(zipped), Binary: "bin/other"},
			`binary "bin/other" is not a file in the ZIP`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deployment(tc.name, 1, 1, "", nil)
			d.Plugin = tc.plugin
			if err := e.Apply(context.Background(), d); err != nil {
				t.Fatalf("apply: %v (a plugin problem is for Observe to report)", err)
			}
			obs, err := e.Observe(context.Background(), tc.name)
			if err != nil || !obs.CrashLoop || !strings.Contains(obs.Reason, tc.want) || !strings.Contains(obs.Reason, "custom plugin "+tc.plugin.Name) {
				t.Errorf("observation %+v %v, want a crash loop saying %q", obs, err, tc.want)
			}
			time.Sleep(100 * time.Millisecond)
			if ps := e.Processes(tc.name); len(ps) != 0 {
				t.Errorf("workers run: %+v", ps)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "escape.txt")); err == nil {
		t.Error("a ZIP entry was written outside the plugin directory")
	}
}

// ferry dev's data dir is relative (./.ferry) and workers run in their own
// directories: the plugin's binary must still be found.
func TestCustomPluginRelativeDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	e := newExecutor(t, func(c *Config) { c.DataDir = ".ferry" })
	if !filepath.IsAbs(e.cfg.DataDir) {
		t.Fatalf("data dir %q kept relative", e.cfg.DataDir)
	}
	_, nc := storetest.NATS(t, "")
	zipped := pluginZip(t, nil)
	url, _ := servePlugin(t, zipped)
	d := deployment("rel", 1, 1, nc.ConnectedUrl(), nil)
	d.Plugin = &scheduler.PluginArtifact{Name: "acme", Revision: 1, URL: url, Md5: md5hex(zipped), Size: int64(len(zipped)), Binary: "bin/acme-worker"}
	if err := e.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	waitWorkers(t, e, "rel", 1, 1)
	if _, err := os.Stat(filepath.Join(".ferry", "workers", "rel", "rev-1", "worker-0", "plugin-ran")); err != nil {
		t.Fatalf("the plugin's binary did not run: %v", err)
	}
}
