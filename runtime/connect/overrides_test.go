package connect

import (
	"strings"
	"testing"
)

func TestParseClientOverridePolicy(t *testing.T) {
	for in, want := range map[string]ClientOverridePolicy{
		"": PolicyAll, "All": PolicyAll, "none": PolicyNone, " Principal ": PolicyPrincipal,
		"org.apache.kafka.connect.connector.policy.NoneConnectorClientConfigOverridePolicy": PolicyNone,
		"org.apache.kafka.connect.connector.policy.AllConnectorClientConfigOverridePolicy":  PolicyAll,
	} {
		if got, err := ParseClientOverridePolicy(in); err != nil || got != want {
			t.Errorf("ParseClientOverridePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseClientOverridePolicy("Allowlist"); err == nil {
		t.Error("Allowlist accepted")
	}
}

func TestCheckClientOverrides(t *testing.T) {
	cases := []struct {
		name   string
		policy ClientOverridePolicy
		kind   Kind
		cfg    map[string]string
		// want maps each refused key to words its message must hold; keys
		// absent from want must not be refused.
		want map[string][]string
	}{
		{"allow-listed consumer settings", PolicyAll, Sink, map[string]string{
			"consumer.override.max.poll.records": "50", "consumer.override.auto.offset.reset": "latest",
			"consumer.override.partition.assignment.strategy": "org.apache.kafka.clients.consumer.RangeAssignor",
			"consumer.override.sasl.mechanism":                "SCRAM-SHA-512", "topics": "t",
		}, nil},
		{"service-owned consumer settings", PolicyAll, Sink, map[string]string{
			"consumer.override.group.id": "other", "consumer.override.bootstrap.servers": "evil:9092", "consumer.override.client.id": "x",
		}, map[string][]string{
			"consumer.override.group.id":          {"connector.client.config.override.policy=All", "group.id is not one of the consumer settings", "max.poll.records"},
			"consumer.override.bootstrap.servers": {"connector.client.config.override.policy=All"},
			"consumer.override.client.id":         {"connector.client.config.override.policy=All"},
		}},
		{"bad values", PolicyAll, Sink, map[string]string{
			"consumer.override.max.poll.records": "lots", "consumer.override.value.deserializer": "org.apache.kafka.common.serialization.StringDeserializer",
			"consumer.override.partition.assignment.strategy": "com.example.MyAssignor",
		}, map[string][]string{
			"consumer.override.max.poll.records":              {"integer"},
			"consumer.override.value.deserializer":            {"ByteArrayDeserializer"},
			"consumer.override.partition.assignment.strategy": {"com.example.MyAssignor", "RangeAssignor"},
		}},
		{"None refuses everything", PolicyNone, Sink, map[string]string{
			"consumer.override.max.poll.records": "50", "producer.override.acks": "1",
		}, map[string][]string{
			"consumer.override.max.poll.records": {"connector.client.config.override.policy=None"},
			"producer.override.acks":             {"connector.client.config.override.policy=None"},
		}},
		{"Principal allows only the principal", PolicyPrincipal, Sink, map[string]string{
			"consumer.override.sasl.jaas.config": `x required username="u" password="p";`, "consumer.override.max.poll.records": "50",
		}, map[string][]string{
			"consumer.override.max.poll.records": {"connector.client.config.override.policy=Principal", "sasl.jaas.config"},
		}},
		{"source producer settings", PolicyAll, Source, map[string]string{
			"producer.override.acks": "1", "producer.override.compression.type": "zstd", "producer.override.linger.ms": "20",
			"consumer.override.max.poll.records": "50", // no consumer: the worker warns, not refused
		}, nil},
		{"idempotence needs acks=all", PolicyAll, Source, map[string]string{
			"producer.override.acks": "1", "producer.override.enable.idempotence": "true",
		}, map[string][]string{"producer.override.acks": {"enable.idempotence"}}},
		{"security only as consumer overrides, only what Ferry applies", PolicyAll, Source, map[string]string{
			"producer.override.security.protocol": "SSL", "consumer.override.ssl.keystore.location": "/k", "admin.override.request.timeout.ms": "5",
			"producer.override.transactional.id": "x",
		}, map[string][]string{
			"producer.override.security.protocol":     {"consumer.override.security.protocol"},
			"consumer.override.ssl.keystore.location": {"ssl.truststore.location"},
			"admin.override.request.timeout.ms":       {"admin"},
			"producer.override.transactional.id":      {"producer settings MSK Connect lets a connector override"},
		}},
		{"config references are checked by the worker", PolicyAll, Sink, map[string]string{
			"consumer.override.max.poll.records": "${env:POLL}",
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, e := range CheckClientOverrides(tc.policy, tc.kind, tc.cfg) {
				got[e.Key] = e.Message
			}
			for k, words := range tc.want {
				msg, ok := got[k]
				if !ok {
					t.Errorf("%s not refused", k)
					continue
				}
				for _, w := range words {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: message %q lacks %q", k, msg, w)
					}
				}
			}
			for k, msg := range got {
				if _, ok := tc.want[k]; !ok {
					t.Errorf("%s refused: %s", k, msg)
				}
			}
		})
	}
}

// The registry's create-time check reports bad retry settings and refused
// overrides with every other problem, each naming its key.
func TestValidateConfigRetryAndOverrides(t *testing.T) {
	reg := NewRegistry()
	if err := reg.Register(Plugin{Class: "x.Sink", Kind: Sink, NewSinkTask: func() SinkTask { return nil }}); err != nil {
		t.Fatal(err)
	}
	err := reg.ValidateConfig("x.Sink", map[string]string{
		"topics": "t", "errors.retry.timeout": "-2", "errors.retry.delay.max.ms": "0",
		"consumer.override.group.id": "g",
	})
	var es ConfigErrors
	if err == nil {
		t.Fatal("accepted")
	}
	es = err.(ConfigErrors)
	keys := map[string]string{}
	for _, e := range es {
		keys[e.Key] = e.Message
	}
	for _, k := range []string{"errors.retry.timeout", "errors.retry.delay.max.ms", "consumer.override.group.id"} {
		if keys[k] == "" {
			t.Errorf("%s not reported; got %v", k, es)
		}
	}
	if !strings.Contains(keys["errors.retry.timeout"], "-1 (retry forever)") {
		t.Errorf("errors.retry.timeout: %q does not say what is accepted", keys["errors.retry.timeout"])
	}
	if err := reg.ValidateConfig("x.Sink", map[string]string{"topics": "t", "errors.retry.timeout": "-1", "errors.retry.delay.max.ms": "1000"}); err != nil {
		t.Errorf("valid retry settings refused: %v", err)
	}
}
