package api_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
)

func TestConnectorLifecycle(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	e.create(t, "first") // so orders-sink's version is not the bucket's first

	in := e.connectorInput("orders-sink")
	in.Tags = map[string]string{"team": "data"}
	out, err := e.client.CreateConnector(c, in)
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ConnectorArn)
	a, err := jobs.ParseARN(arn)
	if err != nil || a.Kind != jobs.KindConnector || a.Name != "orders-sink" || a.Region != region || a.Account != account {
		t.Fatalf("connector ARN %q: %+v %v", arn, a, err)
	}
	if out.ConnectorState != types.ConnectorStateCreating || aws.ToString(out.ConnectorName) != "orders-sink" {
		t.Fatalf("create output %+v", out)
	}

	// What the reconciler is handed: the spec at revision 1, CREATING with 2 workers.
	ce, err := e.st.Connectors.Get(c, "orders-sink")
	if err != nil || ce.Value.Revision != 1 || ce.Value.Arn != arn || ce.Value.Spec.ConnectorConfiguration["aws.secret.access.key"] != "hunter2" {
		t.Fatalf("stored connector %+v %v", ce, err)
	}
	se, err := e.st.Status.Get(c, "orders-sink")
	if err != nil || se.Value.State != jobs.StateCreating || se.Value.Workers != 2 {
		t.Fatalf("stored status %+v %v", se, err)
	}
	tags, err := e.client.ListTagsForResource(c, &kafkaconnect.ListTagsForResourceInput{ResourceArn: &arn})
	if err != nil || tags.Tags["team"] != "data" {
		t.Fatalf("tags %+v %v", tags, err)
	}

	d, err := e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if d.ConnectorState != types.ConnectorStateCreating || aws.ToString(d.CurrentVersion) != strconv.FormatUint(ce.Revision, 10) {
		t.Fatalf("describe state %s version %s (kv revision %d)", d.ConnectorState, aws.ToString(d.CurrentVersion), ce.Revision)
	}
	if got := d.ConnectorConfiguration["aws.secret.access.key"]; got != jobs.Redacted {
		t.Fatalf("secret shown as %q, want redacted", got)
	}
	if d.ConnectorConfiguration["s3.bucket.name"] != "bucket-a" {
		t.Fatalf("config %v", d.ConnectorConfiguration)
	}
	if pc := d.Capacity.ProvisionedCapacity; pc == nil || pc.WorkerCount != 2 || pc.McuCount != 1 {
		t.Fatalf("capacity %+v", d.Capacity)
	}
	if !d.CreationTime.Equal(ce.Value.CreationTime) || d.CreationTime.Nanosecond() != 123456000 {
		t.Fatalf("creationTime %v, stored %v", d.CreationTime, ce.Value.CreationTime)
	}
	if aws.ToString(d.KafkaCluster.ApacheKafkaCluster.BootstrapServers) != "127.0.0.1:9092" ||
		aws.ToString(d.Plugins[0].CustomPlugin.CustomPluginArn) != e.srv.BuiltinPluginArn() ||
		d.KafkaClusterClientAuthentication.AuthenticationType != types.KafkaClusterClientAuthenticationTypeNone {
		t.Fatalf("describe %+v", d)
	}
	version := aws.ToString(d.CurrentVersion)

	// Not RUNNING yet: no update.
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version,
		Capacity: &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 1, WorkerCount: 3}}})
	wantAPIError(t, err, "ConflictException", 409, "CREATING")

	e.setState(t, "orders-sink", jobs.StateRunning, 2)
	d, _ = e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: &arn})
	if d.ConnectorState != types.ConnectorStateRunning {
		t.Fatalf("state %s after reconciler set RUNNING", d.ConnectorState)
	}

	// Stale version: 409 naming the current version, nothing written.
	stale := strconv.FormatUint(ce.Revision-1, 10)
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &stale,
		Capacity: &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 1, WorkerCount: 3}}})
	wantAPIError(t, err, "ConflictException", 409, "changed since version "+stale, "current version is "+version)
	if after, _ := e.st.Connectors.Get(c, "orders-sink"); after.Revision != ce.Revision || after.Value.Revision != 1 {
		t.Fatalf("stale update wrote: %+v", after)
	}
	if ops, _ := e.st.Operations.List(c, ""); len(ops) != 0 {
		t.Fatalf("stale update recorded operations %+v", ops)
	}

	// No-op, neither, both, invalid capacity, missing version.
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version,
		Capacity: &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 1, WorkerCount: 2}}})
	wantBadRequest(t, err, "nothing would change")
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version})
	wantBadRequest(t, err, "exactly one of capacity or connectorConfiguration")
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version,
		Capacity:               &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 1, WorkerCount: 3}},
		ConnectorConfiguration: map[string]string{"connector.class": "s3sink"}})
	wantBadRequest(t, err, "exactly one of capacity or connectorConfiguration")
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version,
		Capacity: &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 3, WorkerCount: 0}}})
	wantBadRequest(t, err, "capacity.provisionedCapacity.mcuCount", "capacity.provisionedCapacity.workerCount")
	empty := ""
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &empty,
		Capacity: &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 1, WorkerCount: 3}}})
	if err == nil {
		t.Fatal("update without currentVersion succeeded")
	}

	// Capacity update switching to autoscaled.
	up, err := e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version,
		Capacity: &types.CapacityUpdate{AutoScaling: &types.AutoScalingUpdate{
			McuCount: 2, MinWorkerCount: 1, MaxWorkerCount: 4,
			ScaleInPolicy:  &types.ScaleInPolicyUpdate{CpuUtilizationPercentage: 20},
			ScaleOutPolicy: &types.ScaleOutPolicyUpdate{CpuUtilizationPercentage: 80},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	opArn := aws.ToString(up.ConnectorOperationArn)
	if up.ConnectorState != types.ConnectorStateUpdating || aws.ToString(up.ConnectorArn) != arn {
		t.Fatalf("update output %+v", up)
	}
	oa, err := jobs.ParseARN(opArn)
	if err != nil || oa.Kind != jobs.KindConnectorOperation || oa.Name != "orders-sink" || oa.ID != a.ID || oa.Sub == "" {
		t.Fatalf("operation ARN %q: %+v %v", opArn, oa, err)
	}
	ce2, _ := e.st.Connectors.Get(c, "orders-sink")
	if ce2.Value.Revision != 2 || ce2.Value.Spec.Capacity.AutoScaling == nil || ce2.Value.Spec.Capacity.ProvisionedCapacity != nil {
		t.Fatalf("connector after capacity update %+v", ce2.Value)
	}
	se, _ = e.st.Status.Get(c, "orders-sink")
	if se.Value.State != jobs.StateUpdating || se.Value.Operation != opArn {
		t.Fatalf("status after update %+v", se.Value)
	}
	oe, err := e.st.Operations.Get(c, store.OperationKey("orders-sink", oa.Sub))
	if err != nil || oe.Value.Type != store.OpUpdateWorkerSetting || oe.Value.State != store.OpInProgress || oe.Value.TargetRevision != 2 || oe.Value.TargetWorkers != 2 {
		t.Fatalf("operation record %+v %v", oe.Value, err)
	}

	op, err := e.client.DescribeConnectorOperation(c, &kafkaconnect.DescribeConnectorOperationInput{ConnectorOperationArn: &opArn})
	if err != nil {
		t.Fatal(err)
	}
	if op.ConnectorOperationType != types.ConnectorOperationTypeUpdateWorkerSetting || op.ConnectorOperationState != types.ConnectorOperationStateUpdateInProgress ||
		aws.ToString(op.ConnectorArn) != arn || op.CreationTime == nil {
		t.Fatalf("operation %+v", op)
	}
	wantSteps := []string{"INITIALIZE_UPDATE:COMPLETED", "VALIDATE_UPDATE:COMPLETED", "UPDATE_WORKER_SETTING:IN_PROGRESS", "FINALIZE_UPDATE:PENDING"}
	for i, s := range op.OperationSteps {
		if got := string(s.StepType) + ":" + string(s.StepState); i >= len(wantSteps) || got != wantSteps[i] {
			t.Fatalf("steps %+v, want %v", op.OperationSteps, wantSteps)
		}
	}
	if op.OriginWorkerSetting.Capacity.ProvisionedCapacity.WorkerCount != 2 || op.TargetWorkerSetting.Capacity.AutoScaling.MaxWorkerCount != 4 ||
		op.TargetWorkerSetting.Capacity.AutoScaling.ScaleOutPolicy.CpuUtilizationPercentage != 80 {
		t.Fatalf("worker settings %+v -> %+v", op.OriginWorkerSetting.Capacity, op.TargetWorkerSetting.Capacity)
	}

	// While UPDATING no second update.
	d, _ = e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: &arn})
	version = aws.ToString(d.CurrentVersion)
	if d.ConnectorState != types.ConnectorStateUpdating || d.Capacity.AutoScaling == nil || d.Capacity.AutoScaling.MinWorkerCount != 1 {
		t.Fatalf("describe during update: %s %+v", d.ConnectorState, d.Capacity)
	}
	cfg := map[string]string{"connector.class": "s3sink", "topics": "orders", "s3.bucket.name": "bucket-b", "aws.secret.access.key": jobs.Redacted}
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version, ConnectorConfiguration: cfg})
	wantAPIError(t, err, "ConflictException", 409, "UPDATING")

	// The reconciler finished; a config update keeps the redacted secret.
	e.setState(t, "orders-sink", jobs.StateFailed, 2)
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version,
		ConnectorConfiguration: map[string]string{"connector.class": "s3sink", "topics": "orders", "s3.bucket.name": "bucket-a", "aws.secret.access.key": jobs.Redacted}})
	wantBadRequest(t, err, "nothing would change")
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version,
		ConnectorConfiguration: map[string]string{"connector.class": "nope", "tasks.max": "zero", "new.password": jobs.Redacted}})
	wantBadRequest(t, err, "connectorConfiguration.connector.class", "connectorConfiguration.tasks.max", "connectorConfiguration.new.password")
	up2, err := e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: &version, ConnectorConfiguration: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ce3, _ := e.st.Connectors.Get(c, "orders-sink")
	if ce3.Value.Revision != 3 || ce3.Value.Spec.ConnectorConfiguration["aws.secret.access.key"] != "hunter2" || ce3.Value.Spec.ConnectorConfiguration["s3.bucket.name"] != "bucket-b" {
		t.Fatalf("config after update %+v", ce3.Value.Spec.ConnectorConfiguration)
	}
	op2, err := e.client.DescribeConnectorOperation(c, &kafkaconnect.DescribeConnectorOperationInput{ConnectorOperationArn: up2.ConnectorOperationArn})
	if err != nil {
		t.Fatal(err)
	}
	if op2.ConnectorOperationType != types.ConnectorOperationTypeUpdateConnectorConfiguration ||
		op2.OriginConnectorConfiguration["s3.bucket.name"] != "bucket-a" || op2.TargetConnectorConfiguration["s3.bucket.name"] != "bucket-b" ||
		op2.TargetConnectorConfiguration["aws.secret.access.key"] != jobs.Redacted || op2.OriginConnectorConfiguration["aws.secret.access.key"] != jobs.Redacted ||
		op2.OriginWorkerSetting != nil || string(op2.OperationSteps[2].StepType) != "UPDATE_CONNECTOR_CONFIGURATION" {
		t.Fatalf("config operation %+v", op2)
	}

	// Operations newest first, paged one at a time.
	var seen []string
	var token *string
	for i := 0; i < 4; i++ {
		lo, err := e.client.ListConnectorOperations(c, &kafkaconnect.ListConnectorOperationsInput{ConnectorArn: &arn, MaxResults: aws.Int32(1), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range lo.ConnectorOperations {
			seen = append(seen, aws.ToString(o.ConnectorOperationArn))
		}
		if token = lo.NextToken; token == nil {
			break
		}
	}
	if len(seen) != 2 || seen[0] != aws.ToString(up2.ConnectorOperationArn) || seen[1] != opArn {
		t.Fatalf("operations listed %v, want [%s %s]", seen, aws.ToString(up2.ConnectorOperationArn), opArn)
	}

	// Restart bumps the counter.
	e.setState(t, "orders-sink", jobs.StateRunning, 3)
	rs, err := e.restart(t, arn)
	if err != nil {
		t.Fatal(err)
	}
	if rs["connectorState"] != "RUNNING" || rs["connectorArn"] != arn {
		t.Fatalf("restart response %v", rs)
	}
	if ce4, _ := e.st.Connectors.Get(c, "orders-sink"); ce4.Value.Restarts != 1 || ce4.Value.Revision != 3 {
		t.Fatalf("after restart %+v", ce4.Value)
	}

	// Delete: stale version 409 and nothing written; then DELETING, twice.
	_, err = e.client.DeleteConnector(c, &kafkaconnect.DeleteConnectorInput{ConnectorArn: &arn, CurrentVersion: aws.String("2")})
	wantAPIError(t, err, "ConflictException", 409, "changed since version 2")
	if ce5, _ := e.st.Connectors.Get(c, "orders-sink"); ce5.Value.Deleting {
		t.Fatal("stale delete marked the connector deleting")
	}
	d, _ = e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: &arn})
	del, err := e.client.DeleteConnector(c, &kafkaconnect.DeleteConnectorInput{ConnectorArn: &arn, CurrentVersion: d.CurrentVersion})
	if err != nil || del.ConnectorState != types.ConnectorStateDeleting || aws.ToString(del.ConnectorArn) != arn {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if ce6, _ := e.st.Connectors.Get(c, "orders-sink"); !ce6.Value.Deleting {
		t.Fatal("connector not marked deleting")
	}
	if se, _ := e.st.Status.Get(c, "orders-sink"); se.Value.State != jobs.StateDeleting {
		t.Fatalf("status %+v", se.Value)
	}
	del, err = e.client.DeleteConnector(c, &kafkaconnect.DeleteConnectorInput{ConnectorArn: &arn})
	if err != nil || del.ConnectorState != types.ConnectorStateDeleting {
		t.Fatalf("second delete: %+v %v", del, err)
	}
	d, _ = e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: &arn})
	if d.ConnectorState != types.ConnectorStateDeleting {
		t.Fatalf("describe after delete: %s", d.ConnectorState)
	}
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: d.CurrentVersion,
		Capacity: &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 1, WorkerCount: 1}}})
	wantAPIError(t, err, "ConflictException", 409, "DELETING")
	if _, err := e.restart(t, arn); err == nil {
		t.Fatal("restart of a deleting connector succeeded")
	}

	// The reconciler removes it; a new incarnation under the same name gets
	// a new ARN, and the old ARN is gone.
	if err := e.st.Connectors.Delete(c, "orders-sink", 0); err != nil {
		t.Fatal(err)
	}
	arn2 := e.create(t, "orders-sink")
	if arn2 == arn {
		t.Fatal("new incarnation reused the ARN")
	}
	_, err = e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: &arn})
	wantNotFound(t, err, arn)
	_, err = e.client.ListConnectorOperations(c, &kafkaconnect.ListConnectorOperationsInput{ConnectorArn: &arn})
	wantNotFound(t, err)
	lo, err := e.client.ListConnectorOperations(c, &kafkaconnect.ListConnectorOperationsInput{ConnectorArn: &arn2})
	if err != nil || len(lo.ConnectorOperations) != 0 {
		t.Fatalf("new incarnation sees old operations: %+v %v", lo, err)
	}
	_, err = e.client.DeleteConnector(c, &kafkaconnect.DeleteConnectorInput{ConnectorArn: &arn})
	wantNotFound(t, err)
	_, err = e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: &arn, CurrentVersion: aws.String("1"),
		Capacity: &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 1, WorkerCount: 1}}})
	wantNotFound(t, err)
	_, err = e.client.DescribeConnectorOperation(c, &kafkaconnect.DescribeConnectorOperationInput{ConnectorOperationArn: aws.String(arn2[:len(arn2)-36] + "x")})
	if err == nil {
		t.Fatal("describe of a bad operation ARN succeeded")
	}
	_, err = e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: aws.String("not-an-arn")})
	wantBadRequest(t, err, "not a kafkaconnect ARN")
}

func TestAutoscaledDescribeShowsCurrentWorkers(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	in := e.connectorInput("auto")
	in.Capacity = &types.Capacity{AutoScaling: &types.AutoScaling{McuCount: 4, MinWorkerCount: 2, MaxWorkerCount: 6, MaxAutoscalingTaskCount: 10,
		ScaleInPolicy: &types.ScaleInPolicy{CpuUtilizationPercentage: 10}, ScaleOutPolicy: &types.ScaleOutPolicy{CpuUtilizationPercentage: 90}}}
	out, err := e.client.CreateConnector(c, in)
	if err != nil {
		t.Fatal(err)
	}
	if se, _ := e.st.Status.Get(c, "auto"); se.Value.Workers != 2 {
		t.Fatalf("initial workers %d, want minWorkerCount 2", se.Value.Workers)
	}
	e.setState(t, "auto", jobs.StateRunning, 5)
	resp := e.rawJSON(t, "GET", "/v1/connectors/"+escape(aws.ToString(out.ConnectorArn)), "")
	as := resp["capacity"].(map[string]any)["autoScaling"].(map[string]any)
	if as["currentWorkerCount"] != float64(5) || as["minWorkerCount"] != float64(2) || as["maxAutoscalingTaskCount"] != float64(10) {
		t.Fatalf("autoscaling description %v", as)
	}
	d, err := e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: out.ConnectorArn})
	if err != nil || d.Capacity.AutoScaling.MaxWorkerCount != 6 || d.Capacity.AutoScaling.ScaleInPolicy.CpuUtilizationPercentage != 10 {
		t.Fatalf("describe %+v %v", d, err)
	}
	// A status the reconciler marked FAILED shows its description.
	if _, err := e.st.Status.Modify(c, "auto", false, func(s *jobs.ConnectorStatus) error {
		s.State, s.StateDescription = jobs.StateFailed, &jobs.StateDescription{Code: "WORKER_FAILED", Message: "task 0 failed"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	d, _ = e.client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: out.ConnectorArn})
	if d.ConnectorState != types.ConnectorStateFailed || aws.ToString(d.StateDescription.Message) != "task 0 failed" {
		t.Fatalf("failed describe %s %+v", d.ConnectorState, d.StateDescription)
	}
}

func TestListConnectorsPagination(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	var names []string
	for i := 1; i <= 5; i++ {
		names = append(names, fmt.Sprintf("a-%d", i))
	}
	names = append(names, "b-1", "b-2")
	for _, n := range names {
		e.create(t, n)
	}
	e.setState(t, "a-2", jobs.StateRunning, 2)

	var got []string
	var token *string
	pages := 0
	for {
		out, err := e.client.ListConnectors(c, &kafkaconnect.ListConnectorsInput{ConnectorNamePrefix: aws.String("a-"), MaxResults: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.Connectors) > 2 {
			t.Fatalf("page of %d", len(out.Connectors))
		}
		for _, s := range out.Connectors {
			got = append(got, aws.ToString(s.ConnectorName))
			if aws.ToString(s.ConnectorName) == "a-2" && s.ConnectorState != types.ConnectorStateRunning {
				t.Fatalf("a-2 state %s", s.ConnectorState)
			}
			if s.CurrentVersion == nil || s.Capacity.ProvisionedCapacity.WorkerCount != 2 || s.CreationTime == nil {
				t.Fatalf("summary %+v", s)
			}
		}
		if token = out.NextToken; token == nil {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if fmt.Sprint(got) != "[a-1 a-2 a-3 a-4 a-5]" || pages != 3 {
		t.Fatalf("listed %v in %d pages", got, pages)
	}

	// The SDK paginator walks every page too.
	p := kafkaconnect.NewListConnectorsPaginator(e.client, &kafkaconnect.ListConnectorsInput{MaxResults: aws.Int32(3)})
	total := 0
	for p.HasMorePages() {
		out, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		total += len(out.Connectors)
	}
	if total != 7 {
		t.Fatalf("paginator saw %d connectors, want 7", total)
	}

	for _, bad := range []int32{0, 101} {
		_, err := e.client.ListConnectors(c, &kafkaconnect.ListConnectorsInput{MaxResults: aws.Int32(bad)})
		wantBadRequest(t, err, "maxResults")
	}
	_, err := e.client.ListConnectors(c, &kafkaconnect.ListConnectorsInput{NextToken: aws.String("!!not base64!!")})
	wantBadRequest(t, err, "nextToken")
}

func TestCreateDuplicateName(t *testing.T) {
	e := newEnv(t)
	e.create(t, "dup")
	_, err := e.client.CreateConnector(ctx(t), e.connectorInput("dup"))
	wantAPIError(t, err, "ConflictException", 409, `"dup" already exists`)
	var typed *types.ConflictException
	if !errors.As(err, &typed) {
		t.Fatalf("SDK did not map %v to *types.ConflictException", err)
	}
}
