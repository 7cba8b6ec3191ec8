package jobs

import (
	"reflect"
	"strings"
	"testing"
)

func validSpec() *ConnectorSpec {
	return &ConnectorSpec{
		ConnectorName:                    "orders-to-s3",
		Capacity:                         Capacity{ProvisionedCapacity: &ProvisionedCapacity{McuCount: 1, WorkerCount: 1}},
		ConnectorConfiguration:           map[string]string{"connector.class": "io.confluent.connect.s3.S3SinkConnector", "tasks.max": "2"},
		KafkaCluster:                     KafkaCluster{ApacheKafkaCluster: ApacheKafkaCluster{BootstrapServers: "127.0.0.1:9092", Vpc: Vpc{Subnets: []string{"s"}}}},
		KafkaClusterClientAuthentication: ClientAuthentication{AuthenticationType: "NONE"},
		KafkaClusterEncryptionInTransit:  EncryptionInTransit{EncryptionType: "PLAINTEXT"},
		KafkaConnectVersion:              "3.7.x",
		Plugins:                          []Plugin{{CustomPlugin: CustomPluginRef{CustomPluginArn: "arn:aws:kafkaconnect:us-east-1:0:custom-plugin/p/1", Revision: 1}}},
		ServiceExecutionRoleArn:          "arn:aws:iam::0:role/r",
	}
}

func autoscaling(min, max, mcu, in, out, tasks int) Capacity {
	return Capacity{AutoScaling: &AutoScaling{MinWorkerCount: min, MaxWorkerCount: max, McuCount: mcu,
		ScaleInPolicy: &ScalePolicy{CpuUtilizationPercentage: in}, ScaleOutPolicy: &ScalePolicy{CpuUtilizationPercentage: out},
		MaxAutoscalingTaskCount: tasks}}
}

func fields(p Problems) []string {
	var out []string
	for _, e := range p {
		out = append(out, e.Field)
	}
	return out
}

func TestValidateSpec(t *testing.T) {
	if p := ValidateSpec(validSpec()); len(p) != 0 {
		t.Fatalf("valid spec has problems: %v", p)
	}
	cases := []struct {
		name   string
		mutate func(*ConnectorSpec)
		want   []string
	}{
		{"name missing", func(s *ConnectorSpec) { s.ConnectorName = "" }, []string{"connectorName"}},
		{"name with a dot", func(s *ConnectorSpec) { s.ConnectorName = "a.b" }, []string{"connectorName"}},
		{"name too long", func(s *ConnectorSpec) { s.ConnectorName = strings.Repeat("a", 129) }, []string{"connectorName"}},
		{"no capacity", func(s *ConnectorSpec) { s.Capacity = Capacity{} }, []string{"capacity"}},
		{"both capacities", func(s *ConnectorSpec) { s.Capacity.AutoScaling = autoscaling(1, 2, 1, 20, 80, 0).AutoScaling }, []string{"capacity"}},
		{"mcu 3", func(s *ConnectorSpec) { s.Capacity.ProvisionedCapacity.McuCount = 3 }, []string{"capacity.provisionedCapacity.mcuCount"}},
		{"no workers", func(s *ConnectorSpec) { s.Capacity.ProvisionedCapacity.WorkerCount = 0 }, []string{"capacity.provisionedCapacity.workerCount"}},
		{"min > max", func(s *ConnectorSpec) { s.Capacity = autoscaling(3, 2, 1, 20, 80, 0) }, []string{"capacity.autoScaling.minWorkerCount"}},
		{"scale in ≥ out", func(s *ConnectorSpec) { s.Capacity = autoscaling(1, 2, 1, 80, 80, 0) }, []string{"capacity.autoScaling.scaleInPolicy.cpuUtilizationPercentage"}},
		{"scale out 101", func(s *ConnectorSpec) { s.Capacity = autoscaling(1, 2, 1, 20, 101, 0) }, []string{"capacity.autoScaling.scaleOutPolicy.cpuUtilizationPercentage"}},
		{"scale in 0", func(s *ConnectorSpec) { s.Capacity = autoscaling(1, 2, 1, 0, 80, 0) }, []string{"capacity.autoScaling.scaleInPolicy.cpuUtilizationPercentage"}},
		{"task cap below max workers", func(s *ConnectorSpec) { s.Capacity = autoscaling(1, 4, 1, 20, 80, 3) }, []string{"capacity.autoScaling.maxAutoscalingTaskCount"}},
		{"no policies", func(s *ConnectorSpec) {
			s.Capacity = Capacity{AutoScaling: &AutoScaling{MinWorkerCount: 1, MaxWorkerCount: 1, McuCount: 1}}
		}, []string{"capacity.autoScaling.scaleInPolicy", "capacity.autoScaling.scaleOutPolicy"}},
		{"no class", func(s *ConnectorSpec) { delete(s.ConnectorConfiguration, "connector.class") }, []string{"connectorConfiguration.connector.class"}},
		{"tasks.max 0", func(s *ConnectorSpec) { s.ConnectorConfiguration["tasks.max"] = "0" }, []string{"connectorConfiguration.tasks.max"}},
		{"two plugins", func(s *ConnectorSpec) { s.Plugins = append(s.Plugins, s.Plugins[0]) }, []string{"plugins"}},
		{"no plugin", func(s *ConnectorSpec) { s.Plugins = nil }, []string{"plugins"}},
		{"bad auth", func(s *ConnectorSpec) { s.KafkaClusterClientAuthentication.AuthenticationType = "SCRAM" }, []string{"kafkaClusterClientAuthentication.authenticationType"}},
		{"several at once", func(s *ConnectorSpec) {
			s.ConnectorName = ""
			s.Capacity.ProvisionedCapacity.McuCount = 16
			s.KafkaConnectVersion = ""
			s.ServiceExecutionRoleArn = ""
		}, []string{"connectorName", "capacity.provisionedCapacity.mcuCount", "kafkaConnectVersion", "serviceExecutionRoleArn"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validSpec()
			c.mutate(s)
			got := fields(ValidateSpec(s))
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("problems at %v, want %v", got, c.want)
			}
		})
	}
}

func TestTasksMaxAndShare(t *testing.T) {
	prov := Capacity{ProvisionedCapacity: &ProvisionedCapacity{McuCount: 2, WorkerCount: 3}}
	if n := TasksMax(prov, map[string]string{"tasks.max": "7"}, 3); n != 7 {
		t.Fatalf("provisioned tasks.max = %d, want the user's 7", n)
	}
	if n := TasksMax(prov, nil, 3); n != 1 {
		t.Fatalf("provisioned default tasks.max = %d, want 1", n)
	}
	if n := TasksMax(autoscaling(1, 4, 2, 20, 80, 0), map[string]string{"tasks.max": "99"}, 3); n != 12 {
		t.Fatalf("autoscaled tasks.max = %d, want 3 workers × 2 MCU × 2 = 12", n)
	}
	if n := TasksMax(autoscaling(1, 4, 2, 20, 80, 5), nil, 3); n != 5 {
		t.Fatalf("capped tasks.max = %d, want 5", n)
	}
	// Every task lands on exactly one worker and shares differ by at most one.
	seen := map[int]int{}
	for w := 0; w < 3; w++ {
		share := TaskShare(8, 3, w)
		if len(share) < 2 || len(share) > 3 {
			t.Fatalf("worker %d share %v", w, share)
		}
		for _, id := range share {
			seen[id]++
		}
	}
	for id := 0; id < 8; id++ {
		if seen[id] != 1 {
			t.Fatalf("task %d assigned %d times", id, seen[id])
		}
	}
	if got := autoscaling(2, 4, 1, 20, 80, 0).ClampWorkers(9); got != 4 {
		t.Fatalf("clamp = %d", got)
	}
}

func TestARN(t *testing.T) {
	in := "arn:aws:kafkaconnect:eu-west-1:123456789012:connector/orders/4b9d6e3c-1f7a-4f1e-9a55-0c7e4f0d2b11"
	a, err := ParseARN(in)
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind != KindConnector || a.Name != "orders" || a.Region != "eu-west-1" || a.String() != in {
		t.Fatalf("parsed %+v", a)
	}
	op := ARN{Region: "r", Account: "1", Kind: KindConnectorOperation, Name: "c", ID: "u", Sub: "op"}
	if b, err := ParseARN(op.String()); err != nil || b != op {
		t.Fatalf("operation ARN round trip: %+v, %v", b, err)
	}
	for _, bad := range []string{"", "arn:aws:s3:::bucket", "arn:aws:kafkaconnect:r:a:connector/x", "arn:aws:kafkaconnect:r:a:cluster/x/y"} {
		if _, err := ParseARN(bad); err == nil {
			t.Errorf("ParseARN(%q) accepted", bad)
		}
	}
}

func TestSecretKeys(t *testing.T) {
	secret := []string{"aws.secret.access.key", "aws.access.key.id", "ssl.key.password", "database.password", "sasl.jaas.config.token", "s3.sse.customer.key", "api.key"}
	plain := []string{"key.converter", "value.converter", "store.kafka.keys", "topics", "s3.bucket.name", "flush.size", "partition.field.name"}
	for _, k := range secret {
		if !IsSecretKey(k) {
			t.Errorf("%q should be secret", k)
		}
	}
	for _, k := range plain {
		if IsSecretKey(k) {
			t.Errorf("%q should not be secret", k)
		}
	}
	got := RedactConfig(map[string]string{"database.password": "hunter2", "db.password": "${file:/s:pw}", "topics": "t"})
	want := map[string]string{"database.password": Redacted, "db.password": "${file:/s:pw}", "topics": "t"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("redacted %v", got)
	}
}

func TestProperties(t *testing.T) {
	text := "# comment\n! also\nkey.converter=org.apache.kafka.connect.storage.StringConverter\n" +
		"a : b\n  c d\nlong=one \\\n    two\nempty=\nesc\\=key=x\\ty\\u0041\n\r\n"
	got, err := ParseProperties(text)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"key.converter": "org.apache.kafka.connect.storage.StringConverter",
		"a":             "b", "c": "d", "long": "one two", "empty": "", "esc=key": "x\tyA",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %#v\nwant %#v", got, want)
	}
	back, err := ParseProperties(FormatProperties(want))
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("round trip %#v, %v", back, err)
	}
	if _, err := ParseProperties("k=\\u12"); err == nil {
		t.Fatal("malformed \\u escape accepted")
	}
}
