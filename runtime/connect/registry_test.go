package connect

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type nopSink struct{}

var _ SinkTask = nopSink{}

func (nopSink) Start(context.Context, map[string]string) error { return nil }
func (nopSink) Open(context.Context, []TopicPartition) error   { return nil }
func (nopSink) Put(context.Context, []Record) error            { return nil }
func (nopSink) PreCommit(_ context.Context, c map[TopicPartition]int64) (map[TopicPartition]int64, error) {
	return c, nil
}
func (nopSink) Close(context.Context, []TopicPartition) error { return nil }
func (nopSink) Stop() error                                   { return nil }

func testPlugin() Plugin {
	return Plugin{
		Class: "x.Sink", Aliases: []string{"XSink"}, Kind: Sink,
		NewSinkTask: func() SinkTask { return nopSink{} },
		Config: []ConfigField{
			{Name: "size", Type: TypeInt, Required: true, Validate: AtLeast(1)},
			{Name: "mode", Type: TypeString, Default: "a", Validate: OneOf("a", "b")},
			{Name: "on", Type: TypeBoolean},
			{Name: "secret", Type: TypePassword, Secret: true},
		},
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	if err := r.Register(testPlugin()); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(Plugin{Class: "y", Aliases: []string{"XSink"}, Kind: Sink, NewSinkTask: func() SinkTask { return nopSink{} }}); err == nil {
		t.Error("a taken alias was registered again")
	}
	if err := r.Register(Plugin{Class: "z", Kind: Sink}); err == nil {
		t.Error("a sink without a constructor was registered")
	}
	for _, n := range []string{"x.Sink", "XSink", " XSink "} {
		if p, ok := r.Lookup(n); !ok || p.Class != "x.Sink" {
			t.Errorf("lookup %q = %q, %v", n, p.Class, ok)
		}
	}
	if _, ok := r.Lookup("nope"); ok {
		t.Error("unknown class found")
	}
	if got := r.Classes(); len(got) != 1 || got[0] != "x.Sink" {
		t.Errorf("classes %v", got)
	}
}

func TestValidateConfig(t *testing.T) {
	r := NewRegistry()
	_ = r.Register(testPlugin())
	ok := map[string]string{"topics": "a,b", "size": "3"}
	if err := r.ValidateConfig("XSink", ok); err != nil {
		t.Errorf("valid config: %v", err)
	}
	bad := map[string]string{
		"topics": "a", "topics.regex": "a.*", "mode": "c", "on": "yes", "tasks.max": "0",
		"value.converter": "io.confluent.connect.avro.AvroConverter", "errors.tolerance": "some",
		"errors.deadletterqueue.topic.name": "a",
	}
	err := r.ValidateConfig("x.Sink", bad)
	var ces ConfigErrors
	if !errors.As(err, &ces) {
		t.Fatalf("got %v, want ConfigErrors", err)
	}
	got := map[string]bool{}
	for _, e := range ces {
		got[e.Key] = true
	}
	for _, k := range []string{"size", "mode", "on", "tasks.max", "value.converter", "errors.tolerance", "topics.regex", "errors.deadletterqueue.topic.name"} {
		if !got[k] {
			t.Errorf("no problem for %s in:\n%v", k, err)
		}
	}
	var one *ConfigError
	if !errors.As(err, &one) {
		t.Error("errors.As cannot reach a single ConfigError")
	}
	if err := r.ValidateConfig("x.Sink", map[string]string{"size": "1"}); err == nil || !strings.Contains(err.Error(), "topics") {
		t.Errorf("missing topics: %v", err)
	}
	err = r.ValidateConfig("nope", ok)
	if err == nil || !strings.Contains(err.Error(), "connector.class") || !strings.Contains(err.Error(), "x.Sink") {
		t.Errorf("unknown class: %v, want it named with the known classes", err)
	}
}

func TestWithDefaults(t *testing.T) {
	got := WithDefaults(testPlugin().Config, map[string]string{"size": "2"})
	if got["mode"] != "a" || got["size"] != "2" {
		t.Errorf("got %v", got)
	}
	if _, ok := got["on"]; ok {
		t.Error("a field without default was filled")
	}
}

// The plugin's cross-key check runs after the per-key checks, sees the
// defaults, and does not repeat a key already refused or one holding a
// config provider reference.
func TestValidateConfigCrossKeyHook(t *testing.T) {
	p := testPlugin()
	var seen map[string]string
	p.Validate = func(cfg map[string]string) ConfigErrors {
		seen = cfg
		var es ConfigErrors
		if cfg["mode"] == "b" && !strings.HasPrefix(cfg["secret"], "s-") {
			es.add("secret", "must start with s- with mode=b")
		}
		if cfg["on"] == "true" {
			es.add("size", "must be even with on=true")
			es.add("on", "needs mode=b")
		}
		return es
	}
	r := NewRegistry()
	if err := r.Register(p); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"topics": "t", "size": "2"}
	if err := r.ValidateConfig("x.Sink", base); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if seen["mode"] != "a" {
		t.Errorf("hook saw mode %q, want the default a", seen["mode"])
	}
	cfg := map[string]string{"topics": "t", "size": "0", "mode": "b", "on": "true"}
	var ces ConfigErrors
	if err := r.ValidateConfig("x.Sink", cfg); !errors.As(err, &ces) {
		t.Fatalf("got %v, want ConfigErrors", err)
	}
	got := map[string][]string{}
	for _, e := range ces {
		got[e.Key] = append(got[e.Key], e.Message)
	}
	if len(got["size"]) != 1 || !strings.Contains(got["size"][0], "≥ 1") {
		t.Errorf("size: %q, want only the per-key problem", got["size"])
	}
	if len(got["secret"]) != 1 || len(got["on"]) != 1 {
		t.Errorf("cross-key problems missing: %v", got)
	}
	cfg["secret"] = "${env:SECRET}"
	cfg["on"] = "${env:ON}"
	cfg["size"] = "4"
	if err := r.ValidateConfig("x.Sink", cfg); err != nil {
		t.Errorf("references are the worker's to check: %v", err)
	}
}

// topics.regex matches whole topic names, as Kafka's: a dead letter queue
// the regex matches is refused (the sink would read its own DLQ), one it
// only matches inside the name is not.
func TestTopicsRegexAndDLQ(t *testing.T) {
	r := NewRegistry()
	_ = r.Register(testPlugin())
	for _, tc := range []struct {
		regex, dlq string
		refused    bool
	}{
		{"orders", "orders-dlq", false}, // matched anywhere it would be refused
		{"orders.*", "orders-dlq", true},
		{"ev-.*", "ev-a-dlq", true},
		{"ev-a|ev-b", "xev-a", false},
		{"ev-a|ev-b", "ev-b", true},
	} {
		err := r.ValidateConfig("x.Sink", map[string]string{"topics.regex": tc.regex, "size": "1", "errors.deadletterqueue.topic.name": tc.dlq})
		refused := err != nil && strings.Contains(err.Error(), "errors.deadletterqueue.topic.name")
		if refused != tc.refused {
			t.Errorf("regex %q, dlq %q: refused=%v (%v), want %v", tc.regex, tc.dlq, refused, err, tc.refused)
		}
	}
	re, err := TopicsRegex("ev-a|ev-b")
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]bool{"ev-a": true, "ev-b": true, "xev-a": false, "ev-a-dlq": false, "ev-bb": false} {
		if got := re.MatchString(topic); got != want {
			t.Errorf("%q matches %v, want %v", topic, got, want)
		}
	}
}

// JsonConverter's decimal.format is checked at create time, in any case.
func TestDecimalFormatValidated(t *testing.T) {
	r := NewRegistry()
	_ = r.Register(testPlugin())
	for v, ok := range map[string]bool{"NUMERIC": true, "base64": true, "HEX": false} {
		err := r.ValidateConfig("x.Sink", map[string]string{"topics": "a", "size": "1", "value.converter.decimal.format": v})
		if (err == nil) != ok || (!ok && !strings.Contains(err.Error(), "value.converter.decimal.format: must be BASE64 or NUMERIC")) {
			t.Errorf("decimal.format=%s: %v", v, err)
		}
	}
}
