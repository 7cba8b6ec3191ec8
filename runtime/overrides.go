package runtime

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// Client settings a connector overrides (consumer.override.*,
// producer.override.*) or the worker sets (consumer.*, producer.*), within
// MSK Connect's allow-list (connect.ConsumerOverridable,
// connect.ProducerOverridable) and the worker's
// connector.client.config.override.policy. Every allow-listed setting is
// either applied to the Kafka client or named in a warning when the worker
// starts: none is dropped silently.

// consumerReadElsewhere are the consumer settings parseSinkSettings
// (settings.go) and the fetch sizing (memory.go) read through consumerProp.
var consumerReadElsewhere = map[string]bool{
	"allow.auto.create.topics": true, "auto.offset.reset": true, "fetch.max.wait.ms": true,
	"heartbeat.interval.ms": true, "max.poll.interval.ms": true, "max.poll.records": true,
	"session.timeout.ms": true,
	"fetch.max.bytes":    true, "max.partition.fetch.bytes": true, "fetch.min.bytes": true,
}

// clientOverrides is what the worker applies of the client settings.
type clientOverrides struct {
	opts     []kgo.Opt
	warnings []string // settings accepted but without effect, and why
}

// producerProp reads a producer property: the connector's
// producer.override.<name> wins over the worker's producer.<name>.
func producerProp(spec *jobs.WorkerSpec, name string) (string, bool) {
	if v, ok := spec.Config[connect.ProducerOverridePrefix+name]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), true
	}
	if v, ok := spec.WorkerProperties["producer."+name]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), true
	}
	return "", false
}

// parseClientOverrides checks the connector's client overrides against the
// worker's policy and MSK Connect's allow-list, and turns the settings the
// engine does not read elsewhere into Kafka client options.
func parseClientOverrides(spec *jobs.WorkerSpec, kind connect.Kind) (*clientOverrides, error) {
	policy, err := connect.ParseClientOverridePolicy(spec.WorkerProperties[connect.KeyClientOverridePolicy])
	if err != nil {
		return nil, fmt.Errorf("worker property %s: %w", connect.KeyClientOverridePolicy, err)
	}
	if es := connect.CheckClientOverrides(policy, kind, spec.Config); len(es) > 0 {
		return nil, fmt.Errorf("client overrides: %w", es)
	}
	out := &clientOverrides{}
	var problems []string
	// Producer settings first: on a sink they shape only its dead letter
	// queue producer, and the consumer's win where both name one setting.
	for _, name := range slices.Sorted(maps.Keys(connect.ProducerOverridable)) {
		v, ok := producerProp(spec, name)
		if !ok {
			continue
		}
		if kind == connect.Sink && strings.TrimSpace(spec.Config[connect.KeyDLQTopic]) == "" {
			if _, own := spec.Config[connect.ProducerOverridePrefix+name]; own {
				out.warnings = append(out.warnings, fmt.Sprintf("%s%s has no effect: a sink produces only to its dead letter queue, and %s is not set", connect.ProducerOverridePrefix, name, connect.KeyDLQTopic))
			}
			continue
		}
		opts, warn, err := producerOpt(name, v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("producer.%s: %v", name, err))
		}
		out.opts = append(out.opts, opts...)
		if warn != "" {
			out.warnings = append(out.warnings, fmt.Sprintf("producer.%s=%s: %s", name, v, warn))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(connect.ConsumerOverridable)) {
		v, ok := consumerProp(spec, name)
		if !ok {
			continue
		}
		if kind == connect.Source {
			if _, own := spec.Config[connect.ConsumerOverridePrefix+name]; own {
				// Security keys are not in this list: securityOpts reads them.
				out.warnings = append(out.warnings, fmt.Sprintf("%s%s has no effect: a source connector has no consumer", connect.ConsumerOverridePrefix, name))
			}
			continue
		}
		if consumerReadElsewhere[name] {
			continue
		}
		opts, warn, err := consumerOpt(name, v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("consumer.%s: %v", name, err))
		}
		out.opts = append(out.opts, opts...)
		if warn != "" {
			out.warnings = append(out.warnings, fmt.Sprintf("consumer.%s=%s: %s", name, v, warn))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("client settings: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

func settingMs(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("must be a number of milliseconds, got %q", v)
	}
	return time.Duration(n) * time.Millisecond, nil
}

func settingInt32(v string, min int64) (int32, error) {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < min {
		return 0, fmt.Errorf("must be an integer ≥ %d, got %q", min, v)
	}
	return int32(n), nil
}

// sharedOpt applies a setting consumer and producer have in common.
func sharedOpt(name, v string) ([]kgo.Opt, string, error, bool) {
	switch name {
	case "metadata.max.age.ms":
		d, err := settingMs(v)
		return []kgo.Opt{kgo.MetadataMaxAge(d)}, "", err, true
	case "request.timeout.ms":
		// franz-go waits for a response this long beyond the request's
		// own timeout (a fetch's wait, a produce's ack timeout).
		d, err := settingMs(v)
		return []kgo.Opt{kgo.RequestTimeoutOverhead(d)}, "", err, true
	case "retry.backoff.ms":
		d, err := settingMs(v)
		return []kgo.Opt{kgo.RetryBackoffFn(func(int) time.Duration { return d })}, "", err, true
	case "reconnect.backoff.ms", "reconnect.backoff.max.ms":
		return nil, "no effect: franz-go waits between reconnects as between retries (retry.backoff.ms)", nil, true
	case "key.deserializer", "value.deserializer", "key.serializer", "value.serializer":
		return nil, "", nil, true // ByteArray (de)serializers only, which is what the engine does
	}
	return nil, "", nil, false
}

// consumerOpt applies one consumer setting not read elsewhere.
func consumerOpt(name, v string) ([]kgo.Opt, string, error) {
	if opts, warn, err, ok := sharedOpt(name, v); ok {
		return opts, warn, err
	}
	switch name {
	case "check.crcs":
		if strings.EqualFold(v, "false") {
			return nil, "no effect: franz-go always checks record batch CRCs", nil
		}
		return nil, "", nil
	case "partition.assignment.strategy":
		var bs []kgo.GroupBalancer
		for _, c := range connect.SplitList(v) {
			switch connect.AssignorClasses[c] {
			case "cooperative-sticky":
				bs = append(bs, kgo.CooperativeStickyBalancer())
			case "sticky":
				bs = append(bs, kgo.StickyBalancer())
			case "range":
				bs = append(bs, kgo.RangeBalancer())
			case "roundrobin":
				bs = append(bs, kgo.RoundRobinBalancer())
			default:
				return nil, "", fmt.Errorf("assignor %q is not available", c)
			}
		}
		return []kgo.Opt{kgo.Balancers(bs...)}, "", nil
	}
	return nil, "", fmt.Errorf("not applied by this worker (a bug: every allow-listed setting must be)")
}

// producerOpt applies one producer setting.
func producerOpt(name, v string) ([]kgo.Opt, string, error) {
	if opts, warn, err, ok := sharedOpt(name, v); ok {
		return opts, warn, err
	}
	switch name {
	case "acks":
		switch strings.ToLower(v) {
		case "all", "-1":
			return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, "", nil
		}
		acks := kgo.LeaderAck()
		if v == "0" {
			acks = kgo.NoAck()
		}
		// As Kafka's producer: acks other than all turn idempotence off
		// unless it was asked for (then the connector was refused).
		return []kgo.Opt{kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite()}, "", nil
	case "enable.idempotence":
		if strings.EqualFold(v, "false") {
			return []kgo.Opt{kgo.DisableIdempotentWrite()}, "", nil
		}
		return nil, "", nil
	case "compression.type":
		codec := map[string]kgo.CompressionCodec{
			"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
			"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
		}[strings.ToLower(v)]
		return []kgo.Opt{kgo.ProducerBatchCompression(codec)}, "", nil
	case "linger.ms":
		d, err := settingMs(v)
		return []kgo.Opt{kgo.ProducerLinger(d)}, "", err
	case "max.request.size":
		n, err := settingInt32(v, 1)
		return []kgo.Opt{kgo.ProducerBatchMaxBytes(n)}, "", err
	case "buffer.memory":
		n, err := settingInt32(v, 1)
		return []kgo.Opt{kgo.MaxBufferedBytes(int(n))}, "", err
	case "batch.size":
		return nil, "no effect: franz-go fills a partition's batch up to max.request.size while it lingers linger.ms", nil
	case "metadata.max.idle.ms":
		return nil, "no effect: franz-go refreshes the metadata of every topic it produces to every metadata.max.age.ms", nil
	case "partitioner.class":
		return nil, "", nil // Kafka's default partitioner, which is the engine's
	}
	return nil, "", fmt.Errorf("not applied by this worker (a bug: every allow-listed setting must be)")
}
