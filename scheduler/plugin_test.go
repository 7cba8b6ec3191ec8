package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/store"
)

// A connector of a checked custom plugin is deployed with the plugin's file
// (URL on the Ferry API, MD5, binary); one of a plugin that is not ACTIVE,
// or without a plugin URL to hand out, fails naming the plugin; the
// built-in plugin deploys none.
func TestReconcilerDeploysCustomPlugin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	put := func(name, id, state string) string {
		arn := account + "custom-plugin/" + name + "/" + id
		if _, err := e.st.Plugins.Create(ctx, name, store.Plugin{
			Name: name, Arn: arn, State: state, ContentType: "ZIP", Revision: 1, CreationTime: time.Now(),
			Location: store.Location{BucketArn: "arn:aws:s3:::plugins", FileKey: name + ".zip"},
			FileMd5:  "9e107d9d372bb6826bd81d3542a419d6", FileSize: 4321, Binary: "bin/acme-worker",
			Connectors: []store.PluginConnector{{Class: "com.acme.Sink", Type: "sink"}},
		}); err != nil {
			t.Fatal(err)
		}
		return arn
	}
	withPlugin := func(name, arn string) jobs.ConnectorSpec {
		s := spec(name, 1, map[string]string{"connector.class": "com.acme.Sink"})
		s.Plugins = []jobs.Plugin{{CustomPlugin: jobs.CustomPluginRef{CustomPluginArn: arn, Revision: 1}}}
		return s
	}
	acme := put("acme", "1111-aaaa", "ACTIVE")
	broken := put("broken", "2222-bbbb", "CREATE_FAILED")
	e.create(withPlugin("uses-acme", acme))
	e.create(withPlugin("uses-broken", broken))
	e.create(spec("builtin", 1, nil))

	d := newRecordingDeployer()
	stop := e.run(d, func(c *scheduler.Config) { c.PluginURL = "http://ferry.example:8083/" })
	var dep scheduler.Deployment
	waitFor(t, "deployment of uses-acme", 10*time.Second, func() bool {
		var ok bool
		dep, ok = d.get("uses-acme")
		return ok
	})
	want := scheduler.PluginArtifact{
		Name: "acme", Arn: acme, Revision: 1,
		URL: "http://ferry.example:8083/ferry/plugin-files/acme/1111-aaaa/1.zip",
		Md5: "9e107d9d372bb6826bd81d3542a419d6", Size: 4321, Binary: "bin/acme-worker",
	}
	if dep.Plugin == nil || *dep.Plugin != want {
		t.Errorf("plugin artifact = %+v, want %+v", dep.Plugin, want)
	}
	waitFor(t, "deployment of builtin", 10*time.Second, func() bool { _, ok := d.get("builtin"); return ok })
	if b, _ := d.get("builtin"); b.Plugin != nil {
		t.Errorf("built-in plugin deployed with an artifact %+v", b.Plugin)
	}
	st := e.waitStatus("uses-broken", 10*time.Second, state(jobs.StateFailed))
	if st.StateDescription.Code != scheduler.CodeInvalidConfiguration || !strings.Contains(st.StateDescription.Message, "custom plugin broken is CREATE_FAILED, not ACTIVE") {
		t.Errorf("uses-broken: %+v", st.StateDescription)
	}
	if _, ok := d.get("uses-broken"); ok {
		t.Error("uses-broken deployed")
	}
	stop()

	// A server without a plugin URL cannot hand the file out.
	e.create(withPlugin("no-url", acme))
	d2 := newRecordingDeployer()
	e.run(d2, nil)
	st = e.waitStatus("no-url", 10*time.Second, state(jobs.StateFailed))
	if !strings.Contains(st.StateDescription.Message, "no plugin URL") {
		t.Errorf("no-url: %+v", st.StateDescription)
	}
}
