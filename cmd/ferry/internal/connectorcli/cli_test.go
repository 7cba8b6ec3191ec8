package connectorcli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/api"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
	"github.com/rs/zerolog"
)

// env is Ferry's real API server over a real (in-process) NATS store;
// there is no reconciler, so tests play its part by writing statuses.
type env struct {
	st       *store.Store
	endpoint string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	st, _ := storetest.Open(t)
	srv, err := api.New(api.Config{Store: st, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &env{st: st, endpoint: hs.URL}
}

// run runs `ferry connector args... --endpoint <test server>`.
func (e *env) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := Run(ctx, append(args, "--endpoint", e.endpoint), &out, &errOut)
	return code, out.String(), errOut.String()
}

func (e *env) setStatus(t *testing.T, name string, fn func(*jobs.ConnectorStatus)) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.st.Status.Modify(ctx, name, true, func(s *jobs.ConnectorStatus) error {
		fn(s)
		return nil
	}); err != nil {
		t.Errorf("set status of %s: %v", name, err)
	}
}

func writeFile(t *testing.T, name, text string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

func TestConnectorLifecycleAgainstFerryAPI(t *testing.T) {
	e := newEnv(t)
	props := writeFile(t, "s3.properties", s3Props)

	// create --wait: the "reconciler" makes it RUNNING a moment later.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(700 * time.Millisecond)
		e.setStatus(t, "s3", func(s *jobs.ConnectorStatus) { s.State, s.Workers, s.Revision = jobs.StateRunning, 2, 1 })
	}()
	code, out, errOut := e.run(t, "create", "--file", props, "--name", "s3", "--workers", "2", "--wait", "--timeout", "10s")
	wg.Wait()
	if code != 0 {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	mustContain(t, "create output", out, "created connector s3", "CREATING", "RUNNING  (2 workers)")

	code, out, errOut = e.run(t, "list")
	if code != 0 {
		t.Fatalf("list: exit %d %s", code, errOut)
	}
	mustContain(t, "list", out, "NAME", "s3 ", "RUNNING", "2 workers x 1 MCU")

	code, out, _ = e.run(t, "describe", "s3")
	if code != 0 {
		t.Fatalf("describe: exit %d", code)
	}
	mustContain(t, "describe", out, "State:", "RUNNING", "Workers:", "topics", "my-example-topic", "ferry-builtin")

	code, out, _ = e.run(t, "describe", "s3", "--output", "json")
	var raw map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &raw) != nil || raw["connectorName"] != "s3" {
		t.Fatalf("describe --output json: exit %d, %q", code, out)
	}

	// update the configuration, then list the operation it made.
	cfg := writeFile(t, "new.properties", strings.Replace(s3Props, "tasks.max=2", "tasks.max=4", 1))
	code, out, errOut = e.run(t, "update", "s3", "--config-file", cfg)
	if code != 0 {
		t.Fatalf("update: exit %d\n%s%s", code, out, errOut)
	}
	mustContain(t, "update", out, "updating connector s3", "operation arn:")
	code, out, _ = e.run(t, "operations", "s3")
	if code != 0 {
		t.Fatalf("operations: exit %d", code)
	}
	mustContain(t, "operations", out, "TYPE", "UPDATE_CONNECTOR_CONFIGURATION")
	opArn := out[strings.Index(out, "arn:"):]
	opArn = strings.TrimSpace(strings.SplitN(opArn, "\n", 2)[0])
	code, out, _ = e.run(t, "operations", "--operation", opArn)
	if code != 0 {
		t.Fatalf("operations --operation: exit %d", code)
	}
	mustContain(t, "operation", out, "UPDATE_CONNECTOR_CONFIGURATION", "~ tasks.max: 2 → 4")

	code, out, errOut = e.run(t, "restart", "s3")
	if code != 0 {
		t.Fatalf("restart: exit %d %s", code, errOut)
	}
	mustContain(t, "restart", out, "restarting connector arn:")

	// delete --wait: the "reconciler" removes the records a moment later.
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(700 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.st.Connectors.Delete(ctx, "s3", 0); err != nil {
			t.Errorf("remove connector record: %v", err)
		}
	}()
	code, out, errOut = e.run(t, "delete", "s3", "--wait", "--timeout", "10s")
	wg.Wait()
	if code != 0 {
		t.Fatalf("delete: exit %d %s", code, errOut)
	}
	mustContain(t, "delete", out, "DELETING", "deleted")
}

func TestCreateWaitReportsFailure(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(300 * time.Millisecond)
		e.setStatus(t, "broken", func(s *jobs.ConnectorStatus) {
			s.State = jobs.StateFailed
			s.StateDescription = &jobs.StateDescription{Code: "WorkerFailed", Message: "bucket does-not-exist is missing"}
		})
	}()
	code, out, _ := e.run(t, "create", "--file", writeFile(t, "c.properties", "connector.class=datagen\n"), "--name", "broken", "--wait", "--timeout", "10s")
	wg.Wait()
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	mustContain(t, "output", out, "FAILED", "WorkerFailed: bucket does-not-exist is missing")
}

func TestErrorsAreTheServersMessage(t *testing.T) {
	e := newEnv(t)
	code, _, errOut := e.run(t, "create", "--file", writeFile(t, "c.properties", "connector.class=datagen\n"), "--name", "x", "--mcu", "3")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	mustContain(t, "stderr", errOut, "mcuCount", "(BadRequestException)")
	if strings.Contains(errOut, "operation error") || strings.Contains(errOut, "StatusCode") {
		t.Errorf("stderr has the SDK's wrapping: %s", errOut)
	}

	code, _, errOut = e.run(t, "describe", "nope")
	if code != 1 || !strings.Contains(errOut, `connector "nope" not found`) {
		t.Errorf("describe nope: exit %d %s", code, errOut)
	}
	code, _, errOut = e.run(t, "describe", "arn:aws:kafkaconnect:us-east-1:000000000000:connector/nope/1")
	if code != 1 || !strings.Contains(errOut, "NotFoundException") {
		t.Errorf("describe unknown ARN: exit %d %s", code, errOut)
	}
	code, _, errOut = e.run(t, "update", "nope")
	if code != 2 || !strings.Contains(errOut, "nothing to update") {
		t.Errorf("update without changes: exit %d %s", code, errOut)
	}
	code, _, errOut = e.run(t, "create", "--file", writeFile(t, "c.json", `{"connectorName": "j"}`), "--workers", "2")
	if code != 2 || !strings.Contains(errOut, "--workers only apply to a properties file") {
		t.Errorf("JSON with properties flags: exit %d %s", code, errOut)
	}

	var out, stderr bytes.Buffer
	code = Run(context.Background(), []string{"list", "--endpoint", "http://127.0.0.1:1"}, &out, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "connection refused") || !strings.Contains(stderr.String(), "ferry dev") {
		t.Errorf("unreachable endpoint: exit %d %s", code, stderr.String())
	}
}

func TestCreateFromJSONRequest(t *testing.T) {
	e := newEnv(t)
	req := `{
	  "connectorName": "from-json",
	  "capacity": {"autoScaling": {"maxWorkerCount": 3, "mcuCount": 1, "minWorkerCount": 1,
	    "scaleInPolicy": {"cpuUtilizationPercentage": 20}, "scaleOutPolicy": {"cpuUtilizationPercentage": 80}}},
	  "connectorConfiguration": {"connector.class": "datagen"},
	  "kafkaCluster": {"apacheKafkaCluster": {"bootstrapServers": "127.0.0.1:9092", "vpc": {"subnets": []}}},
	  "kafkaClusterClientAuthentication": {"authenticationType": "NONE"},
	  "kafkaClusterEncryptionInTransit": {"encryptionType": "PLAINTEXT"},
	  "kafkaConnectVersion": "2.7.1",
	  "plugins": [{"customPlugin": {"customPluginArn": "` + pluginArn + `", "revision": 1}}],
	  "serviceExecutionRoleArn": "arn:aws:iam::000000000000:role/x"
	}`
	code, out, errOut := e.run(t, "create", "--file", writeFile(t, "c.json", req), "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil || raw["connectorName"] != "from-json" {
		t.Fatalf("create --output json printed %q (%v)", out, err)
	}
	code, out, _ = e.run(t, "list", "--prefix", "from")
	if code != 0 {
		t.Fatal(code)
	}
	mustContain(t, "list", out, "from-json", "autoscaled 1-3 workers x 1 MCU (cpu 20-80%)")
}
