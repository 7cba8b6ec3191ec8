package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// captureTask keeps every record Put hands it and reports durable only the
// offset after the last record it was given, as a sink that writes what it
// receives does: it never knows about records the runtime filtered. It keys
// offsets by where records were read (routers rename topics).
type captureTask struct {
	mu   *sync.Mutex
	got  *[]connect.Record
	cfg  *map[string]string
	last map[connect.TopicPartition]int64
}

var _ connect.SinkTask = (*captureTask)(nil)

func (t *captureTask) Start(_ context.Context, cfg map[string]string) error {
	t.mu.Lock()
	*t.cfg = cfg
	t.mu.Unlock()
	t.last = map[connect.TopicPartition]int64{}
	return nil
}
func (t *captureTask) Open(context.Context, []connect.TopicPartition) error { return nil }
func (t *captureTask) Put(_ context.Context, recs []connect.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		*t.got = append(*t.got, r)
		t.last[r.OriginalTopicPartition()] = r.Offset + 1
	}
	return nil
}
func (t *captureTask) PreCommit(_ context.Context, cur map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	return durableOf(cur, t.last), nil
}
func (t *captureTask) Close(context.Context, []connect.TopicPartition) error { return nil }
func (t *captureTask) Stop() error                                           { return nil }

type capture struct {
	mu  sync.Mutex
	got []connect.Record
	cfg map[string]string
}

func (c *capture) records() []connect.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]connect.Record(nil), c.got...)
}

func captureRegistry(t *testing.T, c *capture) *connect.Registry {
	t.Helper()
	return sinkRegistry(t, func() connect.SinkTask { return &captureTask{mu: &c.mu, got: &c.got, cfg: &c.cfg} })
}

func produceRecs(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// Transforms run between the converter and Put, in order and under their
// predicates; records a Filter drops are never delivered, yet the commit
// moves past them, also when they are the last records of the partition.
func TestTransformsFilterAndCommitPastDropped(t *testing.T) {
	addr := newCluster(t, 1, "events")
	cl := newClient(t, addr, manualPartitioner())
	var recs []*kgo.Record
	for i := range 10 {
		r := &kgo.Record{Topic: "events", Partition: 0, Value: []byte(`{"id":` + string(rune('0'+i)) + `,"tenant":"acme"}`)}
		if i == 2 || i >= 7 { // offset 2 in the middle, 7..9 at the end
			r.Headers = []kgo.RecordHeader{{Key: "skip", Value: []byte("true")}}
		}
		recs = append(recs, r)
	}
	produceRecs(t, cl, recs...)

	c := &capture{}
	spec := testSpec("xform", addr, 1, 1, map[string]string{
		"topics": "events", "offset.flush.interval.ms": "100",
		"value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "false",
		"transforms":                      "drop,addTopic,tenant,route",
		"transforms.drop.type":            "org.apache.kafka.connect.transforms.Filter",
		"transforms.drop.predicate":       "skipped",
		"transforms.addTopic.type":        "org.apache.kafka.connect.transforms.InsertField$Value",
		"transforms.addTopic.topic.field": "source",
		"transforms.tenant.type":          "org.apache.kafka.connect.transforms.HeaderFrom$Value",
		"transforms.tenant.fields":        "tenant",
		"transforms.tenant.headers":       "tenant",
		"transforms.tenant.operation":     "move",
		"transforms.route.type":           "org.apache.kafka.connect.transforms.RegexRouter",
		"transforms.route.regex":          "ev(.*)",
		"transforms.route.replacement":    "routed-ev$1",
		"predicates":                      "skipped",
		"predicates.skipped.type":         "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
		"predicates.skipped.name":         "skip",
	})
	w := startWorker(t, spec, 0, captureRegistry(t, c))
	eventually(t, 20*time.Second, "6 records delivered", func() bool { return len(c.records()) >= 6 })
	tp := connect.TopicPartition{Topic: "events", Partition: 0}
	eventually(t, 10*time.Second, "commit past the trailing filtered records", func() bool {
		return committed(t, cl, jobs.ConsumerGroup("xform"))[tp] == 10
	})
	got := c.records()
	if len(got) != 6 {
		t.Fatalf("delivered %d records, want 6", len(got))
	}
	for i, want := range []int64{0, 1, 3, 4, 5, 6} {
		r := got[i]
		if r.Offset != want {
			t.Errorf("record %d has offset %d, want %d", i, r.Offset, want)
		}
		v, ok := r.Value.(map[string]any)
		if !ok || v["source"] != "events" || v["tenant"] != nil {
			t.Errorf("offset %d value %#v, want source=events and tenant moved out", r.Offset, r.Value)
		}
		if r.Topic != "routed-events" || r.OriginalTopicPartition() != tp {
			t.Errorf("offset %d topic %q read from %v, want routed-events read from %v", r.Offset, r.Topic, r.OriginalTopicPartition(), tp)
		}
		var hdr *connect.Header
		for i := range r.Headers {
			if r.Headers[i].Key == "tenant" {
				hdr = &r.Headers[i]
			}
		}
		if hdr == nil || hdr.Data != "acme" || string(hdr.Value) != "acme" {
			t.Errorf("offset %d headers %+v, want tenant=acme encoded by SimpleHeaderConverter", r.Offset, r.Headers)
		}
		if !strings.Contains(string(r.RawValue), `"source":"events"`) {
			t.Errorf("offset %d raw value %q not re-encoded after the transforms", r.Offset, r.RawValue)
		}
	}
	if st := w.w.Status(); st.State != jobs.WorkerRunning {
		t.Errorf("state %s, want RUNNING", st.State)
	}
	w.stop(t)
}

// A transform error under errors.tolerance=none fails the task with the
// record's coordinates; under all it goes to the DLQ with stage
// TRANSFORMATION and the task goes on.
func TestTransformErrors(t *testing.T) {
	addr := newCluster(t, 1, "t")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "t", 0, `{"a":1}`, `{"a":2}`, `"not a map"`, `{"a":4}`)
	base := map[string]string{
		"topics": "t", "offset.flush.interval.ms": "100",
		"value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "false",
		"transforms": "x", "transforms.x.type": "org.apache.kafka.connect.transforms.ExtractField$Value", "transforms.x.field": "a",
	}

	t.Run("none", func(t *testing.T) {
		c := &capture{}
		w := startWorker(t, testSpec("xnone", addr, 1, 1, base), 0, captureRegistry(t, c))
		eventually(t, 20*time.Second, "worker FAILED", func() bool { _, ok := w.status.seen(jobs.WorkerFailed); return ok })
		st, _ := w.status.seen(jobs.WorkerFailed)
		if !strings.Contains(st.Message, `topic "t" partition 0 offset 2`) || !strings.Contains(st.Message, "transform") {
			t.Errorf("failure message %q does not name the record and the transform", st.Message)
		}
		w.stop(t)
	})

	t.Run("all", func(t *testing.T) {
		cfg := map[string]string{"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "t-dlq", "errors.deadletterqueue.context.headers.enable": "true"}
		for k, v := range base {
			cfg[k] = v
		}
		c := &capture{}
		w := startWorker(t, testSpec("xall", addr, 1, 1, cfg), 0, captureRegistry(t, c))
		eventually(t, 20*time.Second, "3 records", func() bool { return len(c.records()) == 3 })
		for _, r := range c.records() {
			if _, ok := r.Value.(interface{ Int64() (int64, error) }); !ok {
				t.Errorf("offset %d value %#v, want the extracted number", r.Offset, r.Value)
			}
		}
		eventually(t, 10*time.Second, "commit past the failed record", func() bool {
			return committed(t, cl, jobs.ConsumerGroup("xall"))[connect.TopicPartition{Topic: "t", Partition: 0}] == 4
		})
		w.stop(t)
		h := deadLetterHeaders(t, addr, "t-dlq")
		if h["__connect.errors.stage"] != "TRANSFORMATION" || h["__connect.errors.offset"] != "2" ||
			h["__connect.errors.class.name"] != "org.apache.kafka.connect.transforms.ExtractField$Value" {
			t.Errorf("dead letter headers %v, want stage TRANSFORMATION at offset 2", h)
		}
	})
}

// Config providers are resolved in the worker; the task sees the secret,
// the status never does.
func TestConfigProvidersResolvedAndRedacted(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "creds.properties"), []byte("# creds\ntopic.name = secret-topic\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("s3cr3t-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_TEST_FIELD", "where")
	addr := newCluster(t, 1, "secret-topic")
	cl := newClient(t, addr, manualPartitioner())
	produce(t, cl, "secret-topic", 0, `{"a":1}`)
	c := &capture{}
	spec := testSpec("prov", addr, 1, 1, map[string]string{
		"topics":          "${file:" + filepath.Join(dir, "creds.properties") + ":topic.name}",
		"api.token":       "${dir:" + dir + ":token}",
		"value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "false",
		"transforms": "x", "transforms.x.type": "org.apache.kafka.connect.transforms.InsertField$Value",
		"transforms.x.static.field": "${env:FERRY_TEST_FIELD}", "transforms.x.static.value": "here",
	})
	spec.WorkerProperties = map[string]string{
		"config.providers":                          "env,file,dir",
		"config.providers.env.class":                "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
		"config.providers.file.class":               "org.apache.kafka.common.config.provider.FileConfigProvider",
		"config.providers.file.param.allowed.paths": dir,
		"config.providers.dir.class":                "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
		"consumer.max.poll.records":                 "${env:FERRY_TEST_POLL}",
	}
	t.Setenv("FERRY_TEST_POLL", "7")
	w := startWorker(t, spec, 0, captureRegistry(t, c))
	eventually(t, 20*time.Second, "1 record from the resolved topic", func() bool { return len(c.records()) == 1 })
	if v, _ := c.records()[0].Value.(map[string]any); v["where"] != "here" {
		t.Errorf("value %#v, want the env-resolved field name", c.records()[0].Value)
	}
	c.mu.Lock()
	token := c.cfg["api.token"]
	c.mu.Unlock()
	if token != "s3cr3t-token" {
		t.Errorf("task got api.token %q, want the resolved secret", token)
	}
	if w.w.sink.maxPollRecords != 7 {
		t.Errorf("max.poll.records %d, want 7 resolved from the worker properties", w.w.sink.maxPollRecords)
	}
	if spec.Config["api.token"] != "${dir:"+dir+":token}" {
		t.Errorf("the caller's spec was changed: %q", spec.Config["api.token"])
	}
	w.stop(t)

	// A failure message that would carry the secret is redacted.
	red := w.w.redact.Redact("bad token s3cr3t-token for secret-topic")
	if strings.Contains(red, "s3cr3t-token") || strings.Contains(red, "secret-topic") {
		t.Errorf("redacted %q still holds a resolved value", red)
	}

	// An unresolvable reference fails at worker creation, naming the key.
	bad := testSpec("prov2", addr, 1, 1, map[string]string{"topics": "x", "api.token": "${vault:secret/x:y}"})
	_, err := NewWorker(bad, Options{Registry: captureRegistry(t, &capture{})})
	if err == nil || !strings.Contains(err.Error(), `api.token: ${vault:secret/x:y}: config provider "vault" is not defined`) {
		t.Errorf("NewWorker = %v", err)
	}
}

// failingStart is a task whose Start quotes its configuration in the error,
// as careless connectors do.
type failingStart struct{ captureTask }

func (f *failingStart) Start(_ context.Context, cfg map[string]string) error {
	return errors.New("login refused for token " + cfg["api.token"])
}

// A resolved secret quoted in a task failure never reaches the status the
// control plane receives.
func TestResolvedSecretNotInStatus(t *testing.T) {
	t.Setenv("FERRY_TEST_TOKEN", "tok-12345")
	addr := newCluster(t, 1, "s")
	reg := sinkRegistry(t, func() connect.SinkTask { return &failingStart{} })
	spec := testSpec("secret", addr, 1, 1, map[string]string{"topics": "s", "api.token": "${env:FERRY_TEST_TOKEN}"})
	spec.WorkerProperties = map[string]string{"config.providers": "env", "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider"}
	w := startWorker(t, spec, 0, reg)
	eventually(t, 10*time.Second, "worker FAILED", func() bool { _, ok := w.status.seen(jobs.WorkerFailed); return ok })
	st, _ := w.status.seen(jobs.WorkerFailed)
	if strings.Contains(st.Message, "tok-12345") || strings.Contains(st.Tasks[0].Trace, "tok-12345") {
		t.Errorf("status carries the secret: %q / %q", st.Message, st.Tasks[0].Trace)
	}
	if !strings.Contains(st.Message, "login refused for token [hidden]") {
		t.Errorf("status message %q, want the redacted failure", st.Message)
	}
	w.stop(t)
}
