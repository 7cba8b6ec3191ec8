package nomad

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/hashicorp/nomad/api"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const testArn = "arn:aws:kafkaconnect:us-east-1:000000000000:connector/orders-s3/11111111-2222-3333-4444-555555555555-1"

// testDeployment is a fixed deployment: a provisioned S3 sink with two
// secrets in its configuration and one in its worker properties.
func testDeployment() Deployment {
	return Deployment{
		Name: "orders-s3", Arn: testArn, Revision: 3, Restarts: 1, Workers: 2, Mcu: 1,
		Spec: jobs.WorkerSpec{
			Connector: "orders-s3", ConnectorArn: testArn, Revision: 3,
			Class: "io.confluent.connect.s3.S3SinkConnector",
			Config: map[string]string{
				"connector.class":       "io.confluent.connect.s3.S3SinkConnector",
				"topics":                "orders",
				"s3.bucket.name":        "lake",
				"aws.access.key.id":     "AKIAEXAMPLE",
				"aws.secret.access.key": `s3cr"et\{{ .x }}<&>`,
				"key.converter":         "org.apache.kafka.connect.storage.StringConverter",
				"topics.dir":            "raw/{{year}}",
			},
			WorkerProperties: map[string]string{"sasl.jaas.config.password": "hunter2", "offset.flush.interval.ms": "10000"},
			BootstrapServers: "kafka-1:9092,kafka-2:9092",
			Mcu:              1, Workers: 2, TasksMax: 4,
			NatsURL:         "nats://nats.service.consul:4222",
			MetricsInterval: "5s",
		},
	}
}

func autoscaledDeployment() Deployment {
	d := testDeployment()
	d.Name, d.Spec.Connector = "clicks", "clicks"
	d.Arn = strings.ReplaceAll(d.Arn, "orders-s3", "clicks")
	d.Spec.ConnectorArn = d.Arn
	d.Workers, d.Mcu, d.Spec.Mcu, d.Spec.Workers, d.Spec.TasksMax = 2, 4, 4, 2, 16
	d.Autoscaling = &jobs.AutoScaling{MinWorkerCount: 1, MaxWorkerCount: 4, McuCount: 4}
	return d
}

var renderCases = []struct {
	name string
	dep  func() Deployment
	cfg  RenderConfig
}{
	{"provisioned", testDeployment, RenderConfig{WorkerCommand: "/usr/local/bin/ferry"}},
	{"autoscaled", autoscaledDeployment, RenderConfig{
		Namespace: "data", Region: "eu", Datacenters: []string{"eu-west-1a", "eu-west-1b"}, NodePool: "connect",
		Driver: DriverExec, WorkerCommand: "/usr/local/bin/ferry", ReserveCores: true, KillTimeout: 45 * time.Second,
	}},
	{"docker", testDeployment, RenderConfig{Driver: DriverDocker, Image: "ghcr.io/ferryhq/ferry:1.0.0", MHzPerVCPU: 2500}},
	{"custom-plugin", pluginDeployment, RenderConfig{WorkerCommand: "/usr/local/bin/ferry"}},
	{"custom-plugin-docker", pluginDeployment, RenderConfig{Driver: DriverDocker, Image: "ghcr.io/ferryhq/ferry:1.0.0"}},
	{"worker-artifact", testDeployment, RenderConfig{Driver: DriverExec, WorkerArtifact: &WorkerArtifact{
		Source:   "https://github.com/ferryhq/ferry/releases/download/v1.0.0/ferry_linux_amd64.tar.gz",
		Checksum: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}}},
}

// pluginDeployment runs a custom plugin's connector: its checked file is
// served by the Ferry API, pinned by its MD5.
func pluginDeployment() Deployment {
	d := testDeployment()
	d.Spec.Class = "com.acme.kafka.connect.AcmeSink"
	d.Spec.Config["connector.class"] = d.Spec.Class
	d.Plugin = &PluginArtifact{
		Source:   "http://ferry.service.consul:8083/ferry/plugin-files/acme-sink/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d/1.zip",
		Checksum: "md5:9e107d9d372bb6826bd81d3542a419d6",
		Binary:   "bin/acme-worker",
	}
	return d
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.dep()
			job, err := Render(d, tc.cfg)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			v, err := RenderVariable(d, tc.cfg)
			if err != nil {
				t.Fatalf("render variable: %v", err)
			}
			golden(t, filepath.Join("testdata", tc.name+".job.json"), prune(t, job))
			golden(t, filepath.Join("testdata", tc.name+".variable.json"), prune(t, v))
			checkJob(t, d, tc.cfg, job, v)
			validateWithAgent(t, job)
		})
	}
}

// TestRenderIsPure renders the same deployment twice and expects the same
// bytes, hash included.
func TestRenderIsPure(t *testing.T) {
	cfg := RenderConfig{WorkerCommand: "/bin/ferry"}
	a, err := Render(testDeployment(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Render(testDeployment(), cfg)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatal("two renders of the same deployment differ")
	}
}

// TestJobHash checks what does and does not change the job's hash: the
// count (and with it the spec's workers and tasksMax) does not, so a scale
// decision never makes Apply register again; anything else does.
func TestJobHash(t *testing.T) {
	cfg := RenderConfig{WorkerCommand: "/bin/ferry"}
	hash := func(d Deployment, c RenderConfig) string {
		t.Helper()
		j, err := Render(d, c)
		if err != nil {
			t.Fatal(err)
		}
		return j.Meta[MetaJobHash]
	}
	base := hash(testDeployment(), cfg)
	scaled := testDeployment()
	scaled.Workers, scaled.Spec.Workers, scaled.Spec.TasksMax = 5, 5, 10
	if h := hash(scaled, cfg); h != base {
		t.Errorf("scaling changed the job hash: %s → %s", base, h)
	}
	rotated := testDeployment()
	rotated.Spec.Config["aws.secret.access.key"] = "other"
	if h := hash(rotated, cfg); h != base {
		t.Errorf("a secret value changed the job hash (the job must not depend on secrets)")
	}
	// What differs from one server replica to the next (the NATS URL it
	// discovered) must not change the job, or a leader failover would
	// replace every worker: it goes to the variable.
	otherReplica := testDeployment()
	otherReplica.Spec.NatsURL = "nats://10.0.0.7:4222,nats://10.0.0.8:4222"
	if h := hash(otherReplica, cfg); h != base {
		t.Errorf("another replica's NATS URL changed the job hash: %s → %s", base, h)
	}
	if v, err := RenderVariable(otherReplica, cfg); err != nil || v.Items[itemNatsURL] != otherReplica.Spec.NatsURL {
		t.Errorf("the NATS URL is not in the variable: %v, %v", v, err)
	}
	changedCfg := testDeployment()
	changedCfg.Spec.Config["topics"] = "orders,returns"
	if h := hash(changedCfg, cfg); h == base {
		t.Error("a configuration change left the job hash unchanged")
	}
	if h := hash(testDeployment(), RenderConfig{WorkerCommand: "/opt/ferry"}); h == base {
		t.Error("a new worker command left the job hash unchanged")
	}
}

func TestRenderRejects(t *testing.T) {
	ok := RenderConfig{WorkerCommand: "/bin/ferry"}
	for name, tc := range map[string]struct {
		mut  func(*Deployment)
		cfg  RenderConfig
		want []string
	}{
		"bad name":       {func(d *Deployment) { d.Name = "a.b" }, ok, []string{`invalid connector name "a.b"`}},
		"no mcu":         {func(d *Deployment) { d.Mcu = 0 }, ok, []string{"mcu count 0"}},
		"outside bounds": {func(d *Deployment) { d.Autoscaling = &jobs.AutoScaling{MinWorkerCount: 3, MaxWorkerCount: 4} }, ok, []string{"outside autoscaling bounds 3..4"}},
		"nul in config":  {func(d *Deployment) { d.Spec.Config["x"] = "a\x00ferry-var:b" }, ok, []string{"NUL"}},
		"all config problems at once": {func(d *Deployment) {}, RenderConfig{Driver: "podman", MHzPerVCPU: -1},
			[]string{`unknown driver "podman"`, "MHz per vCPU must not be negative"}},
		"docker without image": {func(d *Deployment) {}, RenderConfig{Driver: DriverDocker}, []string{"needs an image"}},
		"artifact not an archive": {func(d *Deployment) {}, RenderConfig{Driver: DriverExec, WorkerArtifact: &WorkerArtifact{Source: "https://example.com/ferry", Binary: "../ferry"}},
			[]string{`worker artifact "https://example.com/ferry" must be an archive`, "execute bit", `binary "../ferry"`}},
		"artifact and command": {func(d *Deployment) {}, RenderConfig{WorkerCommand: "/bin/ferry", WorkerArtifact: &WorkerArtifact{Source: "https://example.com/ferry.zip"}},
			[]string{"exclude each other"}},
		"artifact with docker": {func(d *Deployment) {}, RenderConfig{Driver: DriverDocker, Image: "x", WorkerArtifact: &WorkerArtifact{Source: "https://example.com/ferry.zip"}},
			[]string{"exec and raw_exec"}},
	} {
		t.Run(name, func(t *testing.T) {
			d := testDeployment()
			tc.mut(&d)
			_, err := Render(d, tc.cfg)
			if err == nil {
				t.Fatal("render succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// checkJob checks a rendered job's structure, that it survives
// Canonicalize, that it holds no secret, and that its template, executed
// as Nomad's template runner would with the variable, gives back the spec.
func checkJob(t *testing.T, d Deployment, cfg RenderConfig, job *api.Job, v *api.Variable) {
	t.Helper()
	raw, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range v.Items {
		if k == itemWorkers || k == itemTasksMax {
			continue
		}
		if strings.Contains(string(raw), val) || strings.Contains(string(raw), strings.Trim(mustJSON(t, val), `"`)) {
			t.Errorf("job contains the secret value of %s", k)
		}
	}
	if v.Path != "nomad/jobs/ferry-"+d.Name {
		t.Errorf("variable path = %q", v.Path)
	}

	// Canonicalize a copy: it fills every default and must not panic.
	var c api.Job
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	c.Canonicalize()
	if *c.ID != "ferry-"+d.Name || *c.Type != api.JobTypeService {
		t.Errorf("job id/type = %s/%s", *c.ID, *c.Type)
	}
	for k, want := range map[string]string{MetaConnector: d.Name, MetaArn: d.Arn, MetaRevision: "3", MetaRestarts: "1"} {
		if c.Meta[k] != want {
			t.Errorf("meta %s = %q, want %q", k, c.Meta[k], want)
		}
	}
	if len(c.TaskGroups) != 1 || *c.TaskGroups[0].Name != GroupName {
		t.Fatalf("want one group %q", GroupName)
	}
	g := c.TaskGroups[0]
	if *g.Count != d.Workers {
		t.Errorf("count = %d, want %d", *g.Count, d.Workers)
	}
	if d.Autoscaling != nil {
		if g.Scaling == nil || *g.Scaling.Min != int64(d.Autoscaling.MinWorkerCount) || *g.Scaling.Max != int64(d.Autoscaling.MaxWorkerCount) || *g.Scaling.Enabled {
			t.Errorf("scaling = %+v", g.Scaling)
		}
	} else if g.Scaling != nil {
		t.Errorf("provisioned connector has a scaling block")
	}
	if *g.Update.MaxParallel != 1 || *g.Update.AutoRevert || *g.Update.ProgressDeadline <= *g.Update.HealthyDeadline {
		t.Errorf("update = %+v", g.Update)
	}
	if !*g.ReschedulePolicy.Unlimited || *g.RestartPolicy.Mode != "delay" {
		t.Errorf("restart/reschedule = %+v / %+v", g.RestartPolicy, g.ReschedulePolicy)
	}
	if len(g.Tasks) != 1 || g.Tasks[0].Name != TaskName {
		t.Fatalf("want one task %q", TaskName)
	}
	task := g.Tasks[0]
	if *task.Resources.MemoryMB != d.Mcu*4096 {
		t.Errorf("memory = %d", *task.Resources.MemoryMB)
	}
	if cfg.ReserveCores {
		if task.Resources.Cores == nil || *task.Resources.Cores != d.Mcu {
			t.Errorf("cores = %v, want %d", task.Resources.Cores, d.Mcu)
		}
	} else if want := d.Mcu * cfg.mhzPerVCPU(); *task.Resources.CPU != want {
		t.Errorf("cpu = %d, want %d", *task.Resources.CPU, want)
	}
	if *task.KillTimeout < 30*time.Second || task.KillSignal != "SIGTERM" {
		t.Errorf("kill = %s %s", *task.KillTimeout, task.KillSignal)
	}
	for k, want := range map[string]string{
		jobs.EnvSpecFile: "${NOMAD_SECRETS_DIR}/spec.json", jobs.EnvWorkerIndex: "${NOMAD_ALLOC_INDEX}",
		jobs.EnvWorkerID: "${NOMAD_ALLOC_ID}", jobs.EnvDataDir: "${NOMAD_ALLOC_DIR}/data",
	} {
		if task.Env[k] != want {
			t.Errorf("env %s = %q, want %q", k, task.Env[k], want)
		}
	}
	// task is a decoded copy: lists are []any.
	strs := func(v any) []string {
		var out []string
		if l, ok := v.([]any); ok {
			for _, x := range l {
				s, _ := x.(string)
				out = append(out, s)
			}
		}
		return out
	}
	wantArtifacts := 0
	if d.Plugin != nil {
		wantArtifacts++
	}
	wantBin := cfg.WorkerCommand
	if a := cfg.WorkerArtifact; a != nil {
		wantArtifacts++
		wantBin = "${NOMAD_TASK_DIR}/ferry/" + a.binary()
		w := task.Artifacts[0]
		if *w.GetterSource != a.Source || *w.RelativeDest != "local/ferry/" || w.GetterOptions["checksum"] != a.Checksum {
			t.Errorf("worker artifact = %+v", w)
		}
	}
	if len(task.Artifacts) != wantArtifacts {
		t.Errorf("artifacts = %d, want %d", len(task.Artifacts), wantArtifacts)
	}
	binKey := "command"
	if cfg.driver() == DriverDocker {
		wantBin, binKey = "", "entrypoint"
	}
	if p := d.Plugin; p != nil {
		a := task.Artifacts[len(task.Artifacts)-1]
		if *a.GetterSource != p.Source || *a.RelativeDest != "local/plugins/" || a.GetterOptions["checksum"] != p.Checksum {
			t.Errorf("artifact = %+v", a)
		}
		if p.Binary != "" {
			wantBin = "${NOMAD_TASK_DIR}/plugins/" + p.Binary
		}
	}
	if binKey == "command" {
		if got, _ := task.Config[binKey].(string); got != wantBin {
			t.Errorf("command = %q, want %q", got, wantBin)
		}
	} else if got := strs(task.Config[binKey]); wantBin != "" && (len(got) != 1 || got[0] != wantBin) || wantBin == "" && got != nil {
		t.Errorf("entrypoint = %q, want %q", got, wantBin)
	}
	if args := strs(task.Config["args"]); len(args) != 1 || args[0] != "worker" {
		t.Errorf("args = %q, want [worker] for the ferry binary and plugins alike", args)
	}
	if len(task.Templates) != 1 || *task.Templates[0].DestPath != "secrets/spec.json" || *task.Templates[0].ChangeMode != "noop" {
		t.Fatalf("want one template rendering secrets/spec.json without restarting the task")
	}
	// Nomad renders the file as root; the worker may run as nobody (exec)
	// or an image's user (docker): it must be able to read it.
	if p := *task.Templates[0].Perms; p != "0644" {
		t.Errorf("spec file perms %s: a worker that is not root cannot read it", p)
	}
	// Metrics: a dynamic port, the address in the env, a Nomad service.
	if len(g.Networks) != 1 || len(g.Networks[0].DynamicPorts) != 1 || g.Networks[0].DynamicPorts[0].Label != MetricsPort {
		t.Errorf("networks = %+v, want one dynamic port %q", g.Networks, MetricsPort)
	}
	wantAddr := "${NOMAD_ADDR_metrics}"
	if cfg.driver() == DriverDocker {
		wantAddr = ":${NOMAD_PORT_metrics}"
		if ports := strs(task.Config["ports"]); len(ports) != 1 || ports[0] != MetricsPort {
			t.Errorf("docker ports = %q", ports)
		}
	}
	if task.Env[jobs.EnvMetricsAddr] != wantAddr {
		t.Errorf("env %s = %q, want %q", jobs.EnvMetricsAddr, task.Env[jobs.EnvMetricsAddr], wantAddr)
	}
	if len(g.Services) != 1 || g.Services[0].Name != MetricsService || g.Services[0].Provider != "nomad" || g.Services[0].PortLabel != MetricsPort {
		t.Errorf("services = %+v", g.Services)
	}
	if g.Disconnect == nil || g.Disconnect.StopOnClientAfter == nil || *g.Disconnect.StopOnClientAfter <= 0 {
		t.Errorf("disconnect = %+v: a lost node's workers must stop before they are replaced", g.Disconnect)
	}

	// Execute the template with Nomad's nomadVar and toJSON semantics.
	got := executeTemplate(t, *task.Templates[0].EmbeddedTmpl, v)
	var spec jobs.WorkerSpec
	if err := json.Unmarshal([]byte(got), &spec); err != nil {
		t.Fatalf("rendered spec is not JSON: %v\n%s", err, got)
	}
	if !reflect.DeepEqual(spec, d.Spec) {
		t.Errorf("rendered spec differs from the deployment's:\n got %+v\nwant %+v", spec, d.Spec)
	}
}

// varItem is what consul-template's nomadVar gives a template for each item
// (dependency.NomadVarItem): the value is in .Value.
type varItem struct{ Key, Value string }

func executeTemplate(t *testing.T, text string, v *api.Variable) string {
	t.Helper()
	funcs := template.FuncMap{
		"nomadVar": func(path string) map[string]varItem {
			if path != v.Path {
				t.Errorf("template reads variable %q, want %q", path, v.Path)
				return nil
			}
			out := map[string]varItem{}
			for k, val := range v.Items {
				out[k] = varItem{k, val}
			}
			return out
		},
		"toJSON": func(i any) (string, error) {
			b, err := json.Marshal(i)
			return string(bytes.TrimSpace(b)), err
		},
	}
	tmpl, err := template.New("spec").Funcs(funcs).Parse(text)
	if err != nil {
		t.Fatalf("parse template: %v\n%s", err, text)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, nil); err != nil {
		t.Fatalf("execute template: %v", err)
	}
	return b.String()
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// prune encodes v as indented JSON without null, "", [] and {} members, so
// golden files show what the job sets and nothing else.
func prune(t *testing.T, v any) []byte {
	t.Helper()
	var m any
	if err := json.Unmarshal([]byte(mustJSON(t, v)), &m); err != nil {
		t.Fatal(err)
	}
	var walk func(any) (any, bool)
	walk = func(x any) (any, bool) {
		switch x := x.(type) {
		case nil:
			return nil, false
		case string:
			return x, x != ""
		case map[string]any:
			for k, v := range x {
				if nv, keep := walk(v); keep {
					x[k] = nv
				} else {
					delete(x, k)
				}
			}
			return x, len(x) > 0
		case []any:
			out := x[:0]
			for _, v := range x {
				if nv, keep := walk(v); keep {
					out = append(out, nv)
				}
			}
			return out, len(out) > 0
		}
		return x, true
	}
	m, _ = walk(m)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (regenerate with go test ./nomad -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (regenerate with go test ./nomad -update if intended):\n%s", path, got)
	}
}

// validateWithAgent asks a real Nomad agent to validate the job when
// NOMAD_ADDR is set.
func validateWithAgent(t *testing.T, job *api.Job) {
	t.Helper()
	if os.Getenv("NOMAD_ADDR") == "" {
		return
	}
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The agent may not have the test's namespace, region or node pool
	// (Nomad checks that they exist, not only that they are well formed).
	j := *job
	j.Namespace, j.Region, j.NodePool = nil, nil, nil
	resp, _, err := client.Jobs().Validate(&j, nil)
	if err != nil {
		t.Fatalf("nomad validate: %v", err)
	}
	if resp.Error != "" || len(resp.ValidationErrors) > 0 {
		t.Errorf("nomad rejects the job: %s %v", resp.Error, resp.ValidationErrors)
	}
}

// TestLongNames: every name the API accepts (up to 128 characters) renders
// and deploys; names too long for the variable path get a cut job ID that
// ends in a hash, is unique per name, and is reversed through the meta.
func TestLongNames(t *testing.T) {
	cfg := RenderConfig{WorkerCommand: "/bin/ferry"}
	seen := map[string]string{}
	for _, n := range []int{1, 111, 112, 127, 128} {
		for _, last := range []string{"a", "b"} {
			name := strings.Repeat("x", n-1) + last
			d := testDeployment()
			d.Name, d.Spec.Connector = name, name
			job, err := Render(d, cfg)
			if err != nil {
				t.Fatalf("%d characters: %v", n, err)
			}
			v, err := RenderVariable(d, cfg)
			if err != nil {
				t.Fatalf("%d characters: %v", n, err)
			}
			id := *job.ID
			if len(v.Path) > maxVariablePath || v.Path != "nomad/jobs/"+id {
				t.Errorf("%d characters: variable path %q (%d bytes), job %s", n, v.Path, len(v.Path), id)
			}
			if n <= 111 && id != "ferry-"+name {
				t.Errorf("%d characters: job ID %q, want ferry-<name>", n, id)
			}
			if n > 111 && (!strings.Contains(id, "_") || !strings.HasPrefix(id, "ferry-xxx")) {
				t.Errorf("%d characters: job ID %q, want a cut name and '_' hash", n, id)
			}
			if job.Meta[MetaConnector] != name {
				t.Errorf("%d characters: meta names %q", n, job.Meta[MetaConnector])
			}
			if other, dup := seen[id]; dup {
				t.Errorf("%s and %s share job ID %s", other, name, id)
			}
			seen[id] = name
			validateWithAgent(t, job)
		}
	}
}
