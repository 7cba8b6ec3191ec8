package api_test

import (
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/ferryhq/ferry/jobs"
)

// Only a change to what workers run (configuration, worker size) asks for
// new workers; a new count keeps the workers' revision, so the running
// ones are not replaced.
func TestUpdateMovesWorkersRevisionOnlyWhenWorkersChange(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	arn := e.create(t, "rev-sink")
	e.setState(t, "rev-sink", jobs.StateRunning, 2)

	update := func(in *kafkaconnect.UpdateConnectorInput) jobs.Connector {
		t.Helper()
		cur, err := e.st.Connectors.Get(c, "rev-sink")
		if err != nil {
			t.Fatal(err)
		}
		v := strconv.FormatUint(cur.Revision, 10)
		in.ConnectorArn, in.CurrentVersion = &arn, &v
		if _, err := e.client.UpdateConnector(c, in); err != nil {
			t.Fatalf("update: %v", err)
		}
		e.setState(t, "rev-sink", jobs.StateRunning, 2)
		after, err := e.st.Connectors.Get(c, "rev-sink")
		if err != nil {
			t.Fatal(err)
		}
		return after.Value
	}

	got := update(&kafkaconnect.UpdateConnectorInput{Capacity: &types.CapacityUpdate{
		ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 1, WorkerCount: 3}}})
	if got.Revision != 2 || got.RunRevision() != 1 {
		t.Fatalf("count change: revision %d, workers revision %d; want 2 and 1", got.Revision, got.RunRevision())
	}
	got = update(&kafkaconnect.UpdateConnectorInput{Capacity: &types.CapacityUpdate{
		ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 2, WorkerCount: 3}}})
	if got.Revision != 3 || got.RunRevision() != 3 {
		t.Fatalf("worker size change: revision %d, workers revision %d; want 3 and 3", got.Revision, got.RunRevision())
	}
	got = update(&kafkaconnect.UpdateConnectorInput{ConnectorConfiguration: map[string]string{
		"connector.class": "s3sink", "topics": "orders", "s3.bucket.name": "bucket-b"}})
	if got.Revision != 4 || got.RunRevision() != 4 {
		t.Fatalf("config change: revision %d, workers revision %d; want 4 and 4", got.Revision, got.RunRevision())
	}
	ops, err := e.st.Operations.List(c, "rev-sink.")
	if err != nil || len(ops) != 3 {
		t.Fatalf("operations %d, %v", len(ops), err)
	}
	targets := map[int64]bool{}
	for _, op := range ops {
		targets[op.Value.TargetRevision] = true
	}
	if !targets[1] || !targets[3] || !targets[4] {
		t.Fatalf("operation target revisions %v, want the workers' revisions 1, 3, 4", targets)
	}
}

// Ferry's own autoscaler overrides are checked at create time, whatever the
// plugin, naming the key.
func TestCreateRefusesBadAutoscalerOverrides(t *testing.T) {
	e := newEnv(t)
	in := e.connectorInput("scaled")
	in.ConnectorConfiguration["ferry.autoscaler.max.step"] = "0"
	in.ConnectorConfiguration["ferry.autoscaler.cooldown"] = "1"
	_, err := e.client.CreateConnector(ctx(t), in)
	wantBadRequest(t, err, "connectorConfiguration.ferry.autoscaler.max.step", "connectorConfiguration.ferry.autoscaler.cooldown: unknown autoscaler setting")
	if n := e.connectorCount(t); n != 0 {
		t.Fatalf("%d connectors written", n)
	}
	in.ConnectorConfiguration["ferry.autoscaler.max.step"] = "2"
	delete(in.ConnectorConfiguration, "ferry.autoscaler.cooldown")
	if _, err := e.client.CreateConnector(ctx(t), in); err != nil {
		t.Fatalf("valid override refused: %v", err)
	}
}
