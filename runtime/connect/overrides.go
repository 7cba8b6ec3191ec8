package connect

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// KeyClientOverridePolicy is the worker property that decides which Kafka
// client settings a connector configuration may override with
// consumer.override.*, producer.override.* and admin.override.* (Kafka
// Connect's ConnectorClientConfigOverridePolicy, KIP-458).
const KeyClientOverridePolicy = "connector.client.config.override.policy"

// Prefixes of a connector's client overrides.
const (
	ConsumerOverridePrefix = "consumer.override."
	ProducerOverridePrefix = "producer.override."
	AdminOverridePrefix    = "admin.override."
)

// ClientOverridePolicy is one of Kafka Connect's override policies.
type ClientOverridePolicy string

// The policies Kafka Connect ships. Whatever the policy, Ferry lets a
// connector override only the client settings MSK Connect lets a worker
// configuration set (ConsumerOverridable, ProducerOverridable) and the
// client security Ferry's runtime reads (SecurityOverridable): the rest
// (cluster address, group, client id, internal topics) is the service's.
// MSK Connect refuses a worker configuration that sets
// connector.client.config.override.policy at all, so through the API the
// policy is the default.
const (
	// PolicyNone allows no override.
	PolicyNone ClientOverridePolicy = "None"
	// PolicyPrincipal allows only the client's principal: security.protocol,
	// sasl.jaas.config and sasl.mechanism.
	PolicyPrincipal ClientOverridePolicy = "Principal"
	// PolicyAll allows every setting of MSK Connect's allow-list and the
	// client security. It is the default, as in Kafka Connect since 3.0.
	PolicyAll ClientOverridePolicy = "All"
)

// DefaultClientOverridePolicy is the policy when the worker sets none.
const DefaultClientOverridePolicy = PolicyAll

// ParseClientOverridePolicy reads a policy by its alias (None, Principal,
// All, any case) or its Kafka Connect class name; "" is the default.
func ParseClientOverridePolicy(v string) (ClientOverridePolicy, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return DefaultClientOverridePolicy, nil
	}
	name := strings.TrimSuffix(strings.TrimPrefix(v, "org.apache.kafka.connect.connector.policy."), "ConnectorClientConfigOverridePolicy")
	for _, p := range []ClientOverridePolicy{PolicyNone, PolicyPrincipal, PolicyAll} {
		if strings.EqualFold(name, string(p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("must be None, Principal or All (or the Kafka Connect class name of one), got %q", v)
}

// principalKeys are what Kafka Connect's Principal policy allows.
var principalKeys = map[string]bool{"security.protocol": true, "sasl.jaas.config": true, "sasl.mechanism": true}

// overrideRule checks the value of one overridable client setting.
type overrideRule func(v string) error

func anyInt(min int64) overrideRule {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < min {
			return fmt.Errorf("must be an integer ≥ %d, got %q", min, v)
		}
		return nil
	}
}

func anyBool(v string) error { return checkType(TypeBoolean, v) }

func oneOfFold(values ...string) overrideRule {
	return func(v string) error {
		for _, ok := range values {
			if strings.EqualFold(strings.TrimSpace(v), ok) {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s, got %q", strings.Join(values, ", "), v)
	}
}

// Java classes Ferry stands in for. Records are raw bytes between Kafka and
// the converters, as in Kafka Connect; other (de)serializers or
// partitioners are Java code Ferry cannot run.
const (
	byteArrayDeserializer = "org.apache.kafka.common.serialization.ByteArrayDeserializer"
	byteArraySerializer   = "org.apache.kafka.common.serialization.ByteArraySerializer"
	defaultPartitioner    = "org.apache.kafka.clients.producer.internals.DefaultPartitioner"
)

// AssignorClasses maps the consumer partition assignors Ferry's Kafka
// client implements to their franz-go balancer names.
var AssignorClasses = map[string]string{
	"org.apache.kafka.clients.consumer.CooperativeStickyAssignor": "cooperative-sticky",
	"org.apache.kafka.clients.consumer.StickyAssignor":            "sticky",
	"org.apache.kafka.clients.consumer.RangeAssignor":             "range",
	"org.apache.kafka.clients.consumer.RoundRobinAssignor":        "roundrobin",
}

func assignors(v string) error {
	list := SplitList(v)
	if len(list) == 0 {
		return fmt.Errorf("must name at least one assignor")
	}
	for _, c := range list {
		if _, ok := AssignorClasses[c]; !ok {
			known := make([]string, 0, len(AssignorClasses))
			for k := range AssignorClasses {
				known = append(known, k)
			}
			sort.Strings(known)
			return fmt.Errorf("assignor %q is not available; available: %s", c, strings.Join(known, ", "))
		}
	}
	return nil
}

// ConsumerOverridable is MSK Connect's allow-list of consumer settings (the
// consumer.* worker properties it supports), each with the values Ferry
// accepts. A sink connector may override these with consumer.override.*.
var ConsumerOverridable = map[string]overrideRule{
	"allow.auto.create.topics":      anyBool,
	"auto.offset.reset":             OneOf("earliest", "latest"),
	"check.crcs":                    anyBool,
	"fetch.max.bytes":               anyInt(1),
	"fetch.max.wait.ms":             anyInt(1),
	"fetch.min.bytes":               anyInt(0),
	"heartbeat.interval.ms":         anyInt(1),
	"key.deserializer":              OneOf(byteArrayDeserializer),
	"max.partition.fetch.bytes":     anyInt(1),
	"max.poll.interval.ms":          anyInt(1),
	"max.poll.records":              anyInt(1),
	"metadata.max.age.ms":           anyInt(1),
	"partition.assignment.strategy": assignors,
	"reconnect.backoff.max.ms":      anyInt(0),
	"reconnect.backoff.ms":          anyInt(0),
	"request.timeout.ms":            anyInt(1),
	"retry.backoff.ms":              anyInt(0),
	"session.timeout.ms":            anyInt(1),
	"value.deserializer":            OneOf(byteArrayDeserializer),
}

// ProducerOverridable is MSK Connect's allow-list of producer settings.
// A source connector may override these with producer.override.*; so may a
// sink, for the producer of its dead letter queue, as in Kafka Connect.
var ProducerOverridable = map[string]overrideRule{
	"acks":                     oneOfFold("all", "-1", "1", "0"),
	"batch.size":               anyInt(0),
	"buffer.memory":            anyInt(1),
	"compression.type":         oneOfFold("none", "gzip", "snappy", "lz4", "zstd"),
	"enable.idempotence":       anyBool,
	"key.serializer":           OneOf(byteArraySerializer),
	"linger.ms":                anyInt(0),
	"max.request.size":         anyInt(1),
	"metadata.max.age.ms":      anyInt(1),
	"metadata.max.idle.ms":     anyInt(1),
	"partitioner.class":        OneOf(defaultPartitioner),
	"reconnect.backoff.max.ms": anyInt(0),
	"reconnect.backoff.ms":     anyInt(0),
	"request.timeout.ms":       anyInt(1),
	"retry.backoff.ms":         anyInt(0),
	"value.serializer":         OneOf(byteArraySerializer),
}

// SecurityOverridable is the client security a connector may set with
// consumer.override.* (for sources too: Ferry's runtime reads a
// connector's Kafka security from there, whatever its kind; MSK Connect
// itself takes it from kafkaClusterClientAuthentication).
var SecurityOverridable = map[string]overrideRule{
	"security.protocol":           oneOfFold("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
	"sasl.mechanism":              OneOf("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"),
	"sasl.jaas.config":            func(string) error { return nil },
	"ssl.truststore.location":     func(string) error { return nil },
	"ssl.truststore.type":         oneOfFold("PEM"),
	"ssl.truststore.certificates": func(string) error { return nil },
}

// CheckClientOverrides reports every client override of cfg the policy or
// MSK Connect's allow-list refuses, or whose value Ferry cannot honour;
// each problem names the key and the policy. Overrides a connector of this
// kind never uses (consumer.override.* on a source) are not problems; the
// worker warns about them.
func CheckClientOverrides(policy ClientOverridePolicy, kind Kind, cfg map[string]string) ConfigErrors {
	var es ConfigErrors
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var name, client string
		var allowed map[string]overrideRule
		switch {
		case strings.HasPrefix(k, ConsumerOverridePrefix):
			name, client, allowed = strings.TrimPrefix(k, ConsumerOverridePrefix), "consumer", ConsumerOverridable
			if isSecurityKey(name) {
				allowed = SecurityOverridable
			} else if kind == Source {
				continue // no consumer: the worker warns
			}
		case strings.HasPrefix(k, ProducerOverridePrefix):
			name, client, allowed = strings.TrimPrefix(k, ProducerOverridePrefix), "producer", ProducerOverridable
		case strings.HasPrefix(k, AdminOverridePrefix):
			name, client = strings.TrimPrefix(k, AdminOverridePrefix), "admin"
		default:
			continue
		}
		where := fmt.Sprintf("%s=%s", KeyClientOverridePolicy, policy)
		switch {
		case policy == PolicyNone:
			es.add(k, "is not allowed: %s allows no client overrides", where)
		case policy == PolicyPrincipal && !principalKeys[name]:
			es.add(k, "is not allowed: %s allows only security.protocol, sasl.jaas.config and sasl.mechanism", where)
		case isSecurityKey(name) && client != "consumer":
			es.add(k, "is not allowed (%s): set the client's security with %s%s, which Ferry applies to sources and sinks alike", where, ConsumerOverridePrefix, name)
		case isSecurityKey(name) && allowed[name] == nil:
			es.add(k, "is not supported: the client security Ferry applies is %s", strings.Join(slices.Sorted(maps.Keys(SecurityOverridable)), ", "))
		case allowed == nil:
			es.add(k, "is not allowed (%s): MSK Connect lets a connector override no admin client setting", where)
		case allowed[name] == nil:
			es.add(k, "is not allowed (%s): %s is not one of the %s settings MSK Connect lets a connector override (%s)",
				where, name, client, strings.Join(slices.Sorted(maps.Keys(allowed)), ", "))
		default:
			if HasConfigReference(cfg[k]) {
				continue // checked by the worker once resolved
			}
			if err := allowed[name](cfg[k]); err != nil {
				es.add(k, "%s", err.Error())
			}
		}
	}
	if v := strings.TrimSpace(cfg[ProducerOverridePrefix+"enable.idempotence"]); strings.EqualFold(v, "true") {
		if acks := strings.TrimSpace(cfg[ProducerOverridePrefix+"acks"]); acks != "" && acks != "all" && acks != "-1" {
			es.add(ProducerOverridePrefix+"acks", "must be all (or -1) when enable.idempotence is true, got %q", acks)
		}
	}
	return es
}

func isSecurityKey(name string) bool {
	return name == "security.protocol" || strings.HasPrefix(name, "ssl.") || strings.HasPrefix(name, "sasl.")
}
