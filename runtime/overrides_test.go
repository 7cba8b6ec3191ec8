package runtime

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// A value for every allow-listed setting, valid under its rule.
var sampleSettings = map[string]string{
	"allow.auto.create.topics": "true", "auto.offset.reset": "earliest", "check.crcs": "false",
	"fetch.max.bytes": "1048576", "fetch.max.wait.ms": "100", "fetch.min.bytes": "1",
	"heartbeat.interval.ms": "1000", "key.deserializer": "org.apache.kafka.common.serialization.ByteArrayDeserializer",
	"max.partition.fetch.bytes": "1048576", "max.poll.interval.ms": "60000", "max.poll.records": "100",
	"metadata.max.age.ms": "60000", "partition.assignment.strategy": "org.apache.kafka.clients.consumer.StickyAssignor",
	"reconnect.backoff.max.ms": "1000", "reconnect.backoff.ms": "50", "request.timeout.ms": "30000",
	"retry.backoff.ms": "100", "session.timeout.ms": "10000",
	"value.deserializer": "org.apache.kafka.common.serialization.ByteArrayDeserializer",
	"acks":               "all", "batch.size": "16384", "buffer.memory": "33554432", "compression.type": "lz4",
	"enable.idempotence": "true", "key.serializer": "org.apache.kafka.common.serialization.ByteArraySerializer",
	"linger.ms": "5", "max.request.size": "1048576", "metadata.max.idle.ms": "300000",
	"partitioner.class": "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
	"value.serializer":  "org.apache.kafka.common.serialization.ByteArraySerializer",
}

// Every setting of MSK Connect's allow-list is applied to the client, read
// by the engine elsewhere, or named in a warning: none is dropped silently.
func TestEveryAllowListedSettingIsHandled(t *testing.T) {
	cfg := map[string]string{"topics": "t", connect.KeyDLQTopic: "dlq"}
	for name := range connect.ConsumerOverridable {
		v, ok := sampleSettings[name]
		if !ok {
			t.Fatalf("no sample value for consumer setting %s", name)
		}
		cfg[connect.ConsumerOverridePrefix+name] = v
	}
	for name := range connect.ProducerOverridable {
		v, ok := sampleSettings[name]
		if !ok {
			t.Fatalf("no sample value for producer setting %s", name)
		}
		cfg[connect.ProducerOverridePrefix+name] = v
	}
	ov, err := parseClientOverrides(&jobs.WorkerSpec{Connector: "c", Config: cfg}, connect.Sink)
	if err != nil {
		t.Fatalf("allow-listed settings refused: %v", err)
	}
	warned := strings.Join(ov.warnings, "\n")
	for _, name := range []string{"consumer.check.crcs", "consumer.reconnect.backoff.ms", "producer.batch.size", "producer.metadata.max.idle.ms"} {
		if !strings.Contains(warned, name) {
			t.Errorf("no warning names %s; warnings:\n%s", name, warned)
		}
	}
	if _, err := kgo.NewClient(ov.opts...); err != nil {
		t.Errorf("the options make no client: %v", err)
	}
}

func TestOverridesWarnWhenWithoutEffect(t *testing.T) {
	ov, err := parseClientOverrides(&jobs.WorkerSpec{Connector: "c", Config: map[string]string{
		"topics": "t", "producer.override.linger.ms": "10", // a sink without a dead letter queue
	}}, connect.Sink)
	if err != nil || len(ov.warnings) != 1 || !strings.Contains(ov.warnings[0], "producer.override.linger.ms has no effect") {
		t.Errorf("warnings %q, err %v; want one about the sink's producer", ov.warnings, err)
	}
	ov, err = parseClientOverrides(&jobs.WorkerSpec{Connector: "c", Config: map[string]string{
		"consumer.override.max.poll.records": "10",
	}}, connect.Source)
	if err != nil || len(ov.warnings) != 1 || !strings.Contains(ov.warnings[0], "source connector has no consumer") {
		t.Errorf("warnings %q, err %v; want one about the source's consumer", ov.warnings, err)
	}
}

// The worker's policy is enforced when it starts, naming key and policy.
func TestWorkerPolicyNoneRefusesOverrides(t *testing.T) {
	spec := testSpec("pol", "127.0.0.1:1", 1, 1, map[string]string{"topics": "t", "consumer.override.max.poll.records": "10"})
	spec.WorkerProperties = map[string]string{connect.KeyClientOverridePolicy: "None"}
	_, err := NewWorker(spec, Options{Registry: testRegistry(t, newRecorder())})
	if err == nil || !strings.Contains(err.Error(), "consumer.override.max.poll.records") || !strings.Contains(err.Error(), "override.policy=None") {
		t.Errorf("want an error naming the key and the policy, got %v", err)
	}
	spec.WorkerProperties = map[string]string{connect.KeyClientOverridePolicy: "Sometimes"}
	if _, err := NewWorker(spec, Options{Registry: testRegistry(t, newRecorder())}); err == nil || !strings.Contains(err.Error(), connect.KeyClientOverridePolicy) {
		t.Errorf("want an error naming the policy key, got %v", err)
	}
}

// A consumer override reaches the sink's group member: the group runs the
// assignor it names.
func TestConsumerOverrideReachesTheGroup(t *testing.T) {
	addr := newCluster(t, 2, "t")
	rec := newRecorder()
	spec := testSpec("assignor", addr, 1, 1, map[string]string{
		"topics": "t", "consumer.override.partition.assignment.strategy": "org.apache.kafka.clients.consumer.RangeAssignor",
	})
	w := startWorker(t, spec, 0, testRegistry(t, rec))
	eventually(t, 20*time.Second, "RUNNING", func() bool { return w.w.Status().State == jobs.WorkerRunning })
	cl := newClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := kadm.NewClient(cl).DescribeGroups(ctx, jobs.ConsumerGroup("assignor"))
	if err != nil {
		t.Fatal(err)
	}
	g := groups[jobs.ConsumerGroup("assignor")]
	if g.Protocol != "range" {
		t.Errorf("group protocol %q, want range (the override)", g.Protocol)
	}
	w.stop(t)
}

// Producer overrides reach a source's producer: its records are compressed
// as asked, and acks=1 turns idempotence off, as Kafka's producer does.
func TestProducerOverridesReachTheSource(t *testing.T) {
	addr := newCluster(t, 1, "orders")
	reg, _ := datagenRegistry(t, -1)
	spec := datagenSpec("prod-ov", addr, 1, map[string]string{
		"producer.override.compression.type": "gzip", "producer.override.acks": "1", "records.per.second": "200",
	})
	w := startWorker(t, spec, 0, reg)
	eventually(t, 20*time.Second, "records produced", func() bool { return w.w.Metrics(0).RecordsOut >= 20 })
	w.stop(t)
	recs := readAll(t, addr, "orders")
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	for _, r := range recs {
		if c := r.Attrs.CompressionType(); c != 1 {
			t.Fatalf("record at offset %d compressed with codec %d, want gzip (1)", r.Offset, c)
		}
		if r.ProducerID >= 0 {
			t.Fatalf("record at offset %d from idempotent producer %d, want none with acks=1", r.Offset, r.ProducerID)
		}
	}
}
