package api_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
)

// createPlugin creates a custom plugin and records it ACTIVE with the
// given connector classes (default "com.acme.JdbcSink"), as the plugin
// checker does once it has read the file (its own tests, with a real S3,
// are in cmd/ferry).
func (e *env) createPlugin(t *testing.T, name string, classes ...string) string {
	t.Helper()
	out, err := e.client.CreateCustomPlugin(ctx(t), &kafkaconnect.CreateCustomPluginInput{
		Name: aws.String(name), ContentType: types.CustomPluginContentTypeZip,
		Location: &types.CustomPluginLocation{S3Location: &types.S3Location{BucketArn: aws.String("arn:aws:s3:::plugins"), FileKey: aws.String(name + ".zip")}},
	})
	if err != nil {
		t.Fatalf("create plugin %s: %v", name, err)
	}
	if out.CustomPluginState != types.CustomPluginStateCreating {
		t.Fatalf("create plugin %s: state %s, want CREATING", name, out.CustomPluginState)
	}
	if len(classes) == 0 {
		classes = []string{"com.acme.JdbcSink"}
	}
	e.activatePlugin(t, name, classes...)
	return aws.ToString(out.CustomPluginArn)
}

// activatePlugin records the plugin ACTIVE as the checker would.
func (e *env) activatePlugin(t *testing.T, name string, classes ...string) {
	t.Helper()
	_, err := e.st.Plugins.Modify(ctx(t), name, false, func(p *store.Plugin) error {
		p.State = "ACTIVE"
		p.FileMd5, p.FileSize, p.Binary = "0123456789abcdef0123456789abcdef", 1234, "bin/worker"
		p.Connectors = nil
		for _, c := range classes {
			p.Connectors = append(p.Connectors, store.PluginConnector{Class: c, Type: "sink"})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("activate plugin %s: %v", name, err)
	}
}

func (e *env) createWorkerConfig(t *testing.T, name, props string) string {
	t.Helper()
	out, err := e.client.CreateWorkerConfiguration(ctx(t), &kafkaconnect.CreateWorkerConfigurationInput{
		Name: aws.String(name), PropertiesFileContent: aws.String(base64.StdEncoding.EncodeToString([]byte(props))),
	})
	if err != nil {
		t.Fatalf("create worker configuration %s: %v", name, err)
	}
	return aws.ToString(out.WorkerConfigurationArn)
}

func TestCustomPlugins(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)

	out, err := e.client.CreateCustomPlugin(c, &kafkaconnect.CreateCustomPluginInput{
		Name: aws.String("jdbc"), ContentType: types.CustomPluginContentTypeZip, Description: aws.String("JDBC sink"),
		Location: &types.CustomPluginLocation{S3Location: &types.S3Location{BucketArn: aws.String("arn:aws:s3:::plugins"), FileKey: aws.String("jdbc.zip"), ObjectVersion: aws.String("v1")}},
		Tags:     map[string]string{"owner": "me"},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.CustomPluginArn)
	if out.CustomPluginState != types.CustomPluginStateCreating || out.Revision != 1 || aws.ToString(out.Name) != "jdbc" {
		t.Fatalf("create output %+v", out)
	}
	if a, err := jobs.ParseARN(arn); err != nil || a.Kind != jobs.KindCustomPlugin || a.Name != "jdbc" {
		t.Fatalf("plugin ARN %q %v", arn, err)
	}
	// CREATING: no file description yet, and no connector may use it.
	d, err := e.client.DescribeCustomPlugin(c, &kafkaconnect.DescribeCustomPluginInput{CustomPluginArn: &arn})
	if err != nil || d.CustomPluginState != types.CustomPluginStateCreating || d.LatestRevision.FileDescription != nil {
		t.Fatalf("describe while creating %+v %v", d, err)
	}
	early := e.connectorInput("too-early")
	early.Plugins[0].CustomPlugin.CustomPluginArn = aws.String(arn)
	early.ConnectorConfiguration = map[string]string{"connector.class": "com.acme.JdbcSink"}
	_, err = e.client.CreateConnector(c, early)
	wantBadRequest(t, err, `plugins[0].customPlugin.customPluginArn: custom plugin "jdbc" is CREATING, not ACTIVE`)
	e.activatePlugin(t, "jdbc", "com.acme.JdbcSink")

	_, err = e.client.CreateCustomPlugin(c, &kafkaconnect.CreateCustomPluginInput{
		Name: aws.String("jdbc"), ContentType: types.CustomPluginContentTypeZip,
		Location: &types.CustomPluginLocation{S3Location: &types.S3Location{BucketArn: aws.String("arn:aws:s3:::plugins"), FileKey: aws.String("x.zip")}},
	})
	wantAPIError(t, err, "ConflictException", 409, `"jdbc" already exists`)
	var typed *types.ConflictException
	if !errors.As(err, &typed) {
		t.Fatalf("not a typed ConflictException: %v", err)
	}
	_, err = e.client.CreateCustomPlugin(c, &kafkaconnect.CreateCustomPluginInput{
		Name: aws.String("bad name"), ContentType: "TAR",
		Location: &types.CustomPluginLocation{S3Location: &types.S3Location{BucketArn: aws.String("plugins"), FileKey: aws.String("")}},
	})
	wantBadRequest(t, err, "name: must be", "contentType: must be ZIP (Ferry runs Go plugins, not JAR files)", "location.s3Location.bucketArn", "location.s3Location.fileKey: is required")
	_, err = e.client.CreateCustomPlugin(c, &kafkaconnect.CreateCustomPluginInput{
		Name: aws.String("java"), ContentType: types.CustomPluginContentTypeJar,
		Location: &types.CustomPluginLocation{S3Location: &types.S3Location{BucketArn: aws.String("arn:aws:s3:::plugins/sub"), FileKey: aws.String("a.jar")}},
	})
	wantBadRequest(t, err, "contentType: JAR is a Java plugin, and Ferry runs connectors written in Go, not Java", "ferry-plugin.json", "location.s3Location.bucketArn")

	d, err = e.client.DescribeCustomPlugin(c, &kafkaconnect.DescribeCustomPluginInput{CustomPluginArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	lr := d.LatestRevision
	if d.CustomPluginState != types.CustomPluginStateActive || lr.ContentType != types.CustomPluginContentTypeZip ||
		aws.ToString(lr.Location.S3Location.FileKey) != "jdbc.zip" || aws.ToString(lr.Location.S3Location.ObjectVersion) != "v1" ||
		lr.Revision != 1 || d.CreationTime == nil || aws.ToString(d.Description) != "JDBC sink" || d.StateDescription != nil ||
		lr.FileDescription == nil || aws.ToString(lr.FileDescription.FileMd5) != "0123456789abcdef0123456789abcdef" || lr.FileDescription.FileSize != 1234 {
		t.Fatalf("describe %+v / %+v", d, lr)
	}
	b, err := e.client.DescribeCustomPlugin(c, &kafkaconnect.DescribeCustomPluginInput{CustomPluginArn: aws.String(e.srv.BuiltinPluginArn())})
	if err != nil || b.CustomPluginState != types.CustomPluginStateActive || !strings.Contains(aws.ToString(b.LatestRevision.Location.S3Location.FileKey), "built-in") ||
		!strings.HasSuffix(aws.ToString(b.CustomPluginArn), "custom-plugin/ferry-builtin/"+jobs.BuiltinPluginID) {
		t.Fatalf("built-in plugin %+v %v", b, err)
	}
	// Bootstrap twice is harmless.
	if err := e.srv.Bootstrap(c); err != nil {
		t.Fatal(err)
	}

	e.createPlugin(t, "jdbc-2")
	e.createPlugin(t, "other")
	l, err := e.client.ListCustomPlugins(c, &kafkaconnect.ListCustomPluginsInput{NamePrefix: aws.String("jdbc")})
	if err != nil || len(l.CustomPlugins) != 2 || aws.ToString(l.CustomPlugins[0].Name) != "jdbc" || aws.ToString(l.CustomPlugins[1].Name) != "jdbc-2" {
		t.Fatalf("list by prefix %+v %v", l, err)
	}
	var names []string
	p := kafkaconnect.NewListCustomPluginsPaginator(e.client, &kafkaconnect.ListCustomPluginsInput{MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		pg, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range pg.CustomPlugins {
			names = append(names, aws.ToString(s.Name))
		}
	}
	if strings.Join(names, ",") != "ferry-builtin,jdbc,jdbc-2,other" {
		t.Fatalf("paged plugins %v", names)
	}

	// In use: 409 naming the connector; built-in: 400.
	in := e.connectorInput("uses-jdbc")
	in.Plugins[0].CustomPlugin.CustomPluginArn = aws.String(arn)
	in.ConnectorConfiguration = map[string]string{"connector.class": "com.acme.JdbcSink"}
	if _, err := e.client.CreateConnector(c, in); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DeleteCustomPlugin(c, &kafkaconnect.DeleteCustomPluginInput{CustomPluginArn: &arn})
	wantAPIError(t, err, "ConflictException", 409, "in use by connector uses-jdbc")
	_, err = e.client.DeleteCustomPlugin(c, &kafkaconnect.DeleteCustomPluginInput{CustomPluginArn: aws.String(e.srv.BuiltinPluginArn())})
	wantBadRequest(t, err, "cannot be deleted")

	if err := e.st.Connectors.Delete(c, "uses-jdbc", 0); err != nil { // the reconciler removed it
		t.Fatal(err)
	}
	del, err := e.client.DeleteCustomPlugin(c, &kafkaconnect.DeleteCustomPluginInput{CustomPluginArn: &arn})
	if err != nil || del.CustomPluginState != types.CustomPluginStateDeleting || aws.ToString(del.CustomPluginArn) != arn {
		t.Fatalf("delete %+v %v", del, err)
	}
	_, err = e.client.DescribeCustomPlugin(c, &kafkaconnect.DescribeCustomPluginInput{CustomPluginArn: &arn})
	wantNotFound(t, err)
	_, err = e.client.DeleteCustomPlugin(c, &kafkaconnect.DeleteCustomPluginInput{CustomPluginArn: &arn})
	wantNotFound(t, err)
	if _, err := e.st.Tags.Get(c, arn[len(arn)-36:]); err == nil {
		t.Fatal("tags of the deleted plugin kept")
	}
	// A plugin re-created under the name is another incarnation.
	arn2 := e.createPlugin(t, "jdbc")
	if arn2 == arn {
		t.Fatal("ARN reused")
	}
	_, err = e.client.DescribeCustomPlugin(c, &kafkaconnect.DescribeCustomPluginInput{CustomPluginArn: &arn})
	wantNotFound(t, err)
}

func TestWorkerConfigurations(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	props := "# worker\nkey.converter=org.apache.kafka.connect.json.JsonConverter\nvalue.converter=org.apache.kafka.connect.json.JsonConverter\n" +
		"offset.storage.topic=my-offsets\nproducer.linger.ms=5\nconsumer.max.poll.records=100\nconfig.providers=secrets\n"
	content := base64.StdEncoding.EncodeToString([]byte(props))
	out, err := e.client.CreateWorkerConfiguration(c, &kafkaconnect.CreateWorkerConfigurationInput{
		Name: aws.String("json"), Description: aws.String("json converters"), PropertiesFileContent: aws.String(content),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.WorkerConfigurationArn)
	if out.WorkerConfigurationState != types.WorkerConfigurationStateActive || out.LatestRevision.Revision != 1 ||
		out.CreationTime == nil || aws.ToString(out.Name) != "json" {
		t.Fatalf("create output %+v", out)
	}

	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"not base64", "%%%not base64", []string{"propertiesFileContent: is not valid base64"}},
		{"bad escape", base64.StdEncoding.EncodeToString([]byte("key.converter=\\uZZZZ\n")), []string{"propertiesFileContent: is not a valid properties file", "line 1"}},
		{"denied keys", base64.StdEncoding.EncodeToString([]byte(
			"key.converter=a\nvalue.converter=b\nbootstrap.servers=x:9092\nrest.port=8083\nssl.truststore.location=/x\n" +
				"status.storage.topic=s\nproducer.client.id=p\nconsumer.group.id=g\nplugin.path=/p\ngroup.id=g\nsasl.mechanism=PLAIN\n")),
			[]string{
				"propertiesFileContent.bootstrap.servers", "propertiesFileContent.rest.port", "propertiesFileContent.ssl.truststore.location",
				"propertiesFileContent.status.storage.topic", "propertiesFileContent.producer.client.id", "propertiesFileContent.consumer.group.id",
				"propertiesFileContent.plugin.path", "propertiesFileContent.group.id", "propertiesFileContent.sasl.mechanism", "(9 problems)",
			}},
		{"converters required", base64.StdEncoding.EncodeToString([]byte("offset.storage.topic=o\n")),
			[]string{"propertiesFileContent.key.converter: is required", "propertiesFileContent.value.converter: is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.CreateWorkerConfiguration(c, &kafkaconnect.CreateWorkerConfigurationInput{
				Name: aws.String("rejected"), PropertiesFileContent: aws.String(tc.content)})
			wantBadRequest(t, err, tc.want...)
		})
	}
	_, err = e.client.CreateWorkerConfiguration(c, &kafkaconnect.CreateWorkerConfigurationInput{Name: aws.String("json"), PropertiesFileContent: aws.String(content)})
	wantAPIError(t, err, "ConflictException", 409, `"json" already exists`)

	d, err := e.client.DescribeWorkerConfiguration(c, &kafkaconnect.DescribeWorkerConfigurationInput{WorkerConfigurationArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.LatestRevision.PropertiesFileContent) != content || d.LatestRevision.Revision != 1 ||
		aws.ToString(d.Description) != "json converters" || d.WorkerConfigurationState != types.WorkerConfigurationStateActive {
		t.Fatalf("describe %+v / %+v", d, d.LatestRevision)
	}

	e.createWorkerConfig(t, "json-2", "key.converter=a\nvalue.converter=b\n")
	e.createWorkerConfig(t, "avro", "key.converter=a\nvalue.converter=b\n")
	l, err := e.client.ListWorkerConfigurations(c, &kafkaconnect.ListWorkerConfigurationsInput{NamePrefix: aws.String("json"), MaxResults: aws.Int32(1)})
	if err != nil || len(l.WorkerConfigurations) != 1 || aws.ToString(l.WorkerConfigurations[0].Name) != "json" || l.NextToken == nil {
		t.Fatalf("list page 1 %+v %v", l, err)
	}
	if rev := l.WorkerConfigurations[0].LatestRevision; rev == nil || rev.Revision != 1 {
		t.Fatalf("summary revision %+v", rev)
	}
	l, err = e.client.ListWorkerConfigurations(c, &kafkaconnect.ListWorkerConfigurationsInput{NamePrefix: aws.String("json"), MaxResults: aws.Int32(1), NextToken: l.NextToken})
	if err != nil || len(l.WorkerConfigurations) != 1 || aws.ToString(l.WorkerConfigurations[0].Name) != "json-2" || l.NextToken != nil {
		t.Fatalf("list page 2 %+v %v", l, err)
	}

	in := e.connectorInput("with-wc")
	in.WorkerConfiguration = &types.WorkerConfiguration{WorkerConfigurationArn: aws.String(arn), Revision: 1}
	if _, err := e.client.CreateConnector(c, in); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DeleteWorkerConfiguration(c, &kafkaconnect.DeleteWorkerConfigurationInput{WorkerConfigurationArn: &arn})
	wantAPIError(t, err, "ConflictException", 409, "in use by connector with-wc")
	if err := e.st.Connectors.Delete(c, "with-wc", 0); err != nil {
		t.Fatal(err)
	}
	del, err := e.client.DeleteWorkerConfiguration(c, &kafkaconnect.DeleteWorkerConfigurationInput{WorkerConfigurationArn: &arn})
	if err != nil || del.WorkerConfigurationState != types.WorkerConfigurationStateDeleting {
		t.Fatalf("delete %+v %v", del, err)
	}
	_, err = e.client.DescribeWorkerConfiguration(c, &kafkaconnect.DescribeWorkerConfigurationInput{WorkerConfigurationArn: &arn})
	wantNotFound(t, err)
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	resources := map[string]string{
		"connector":            e.create(t, "tagged"),
		"custom plugin":        e.createPlugin(t, "tagged"),
		"worker configuration": e.createWorkerConfig(t, "tagged", "key.converter=a\nvalue.converter=b\n"),
	}
	for kind, arn := range resources {
		t.Run(kind, func(t *testing.T) {
			if _, err := e.client.TagResource(c, &kafkaconnect.TagResourceInput{ResourceArn: &arn, Tags: map[string]string{"a": "1", "b": "2"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.client.TagResource(c, &kafkaconnect.TagResourceInput{ResourceArn: &arn, Tags: map[string]string{"b": "3", "c": ""}}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.client.UntagResource(c, &kafkaconnect.UntagResourceInput{ResourceArn: &arn, TagKeys: []string{"a", "zz"}}); err != nil {
				t.Fatal(err)
			}
			l, err := e.client.ListTagsForResource(c, &kafkaconnect.ListTagsForResourceInput{ResourceArn: &arn})
			if err != nil || len(l.Tags) != 2 || l.Tags["b"] != "3" || l.Tags["c"] != "" {
				t.Fatalf("tags %v %v", l.Tags, err)
			}
			_, err = e.client.TagResource(c, &kafkaconnect.TagResourceInput{ResourceArn: &arn, Tags: map[string]string{strings.Repeat("k", 129): "v"}})
			wantBadRequest(t, err, "must be 1 to 128 characters")
			_, err = e.client.TagResource(c, &kafkaconnect.TagResourceInput{ResourceArn: &arn, Tags: map[string]string{"long": strings.Repeat("v", 257)}})
			wantBadRequest(t, err, "tags.long: tag value must be at most 256 characters")

			gone := arn[:len(arn)-1] + "9"
			_, err = e.client.ListTagsForResource(c, &kafkaconnect.ListTagsForResourceInput{ResourceArn: &gone})
			wantNotFound(t, err)
			_, err = e.client.TagResource(c, &kafkaconnect.TagResourceInput{ResourceArn: &gone, Tags: map[string]string{"a": "1"}})
			wantNotFound(t, err)
			_, err = e.client.UntagResource(c, &kafkaconnect.UntagResourceInput{ResourceArn: &gone, TagKeys: []string{"a"}})
			wantNotFound(t, err)
		})
	}
	_, err := e.client.ListTagsForResource(c, &kafkaconnect.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:kafkaconnect:eu-west-1:123456789012:connector-operation/tagged/a/b")})
	wantBadRequest(t, err, "have no tags")
	r := e.raw(t, "DELETE", "/v1/tags/"+escape(resources["connector"]), "")
	if r.status != 400 || !strings.Contains(r.body["message"].(string), "tagKeys") {
		t.Fatalf("untag without keys: %d %v", r.status, r.body)
	}
}

func TestWorkerConfigurationRevisionsAndOperationErrors(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	arn := e.createWorkerConfig(t, "revs", "key.converter=a\nvalue.converter=b\n")
	// Revisions are kept in the record; a later one (as a future
	// "new revision" call would add) becomes latestRevision.
	rev2 := base64.StdEncoding.EncodeToString([]byte("key.converter=c\nvalue.converter=d\n"))
	if _, err := e.st.WorkerConfigs.Modify(c, "revs", false, func(w *store.WorkerConfiguration) error {
		w.Revisions = append(w.Revisions, store.WorkerConfigurationRevision{Revision: 2, PropertiesFileContent: rev2, CreationTime: w.CreationTime})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	d, err := e.client.DescribeWorkerConfiguration(c, &kafkaconnect.DescribeWorkerConfigurationInput{WorkerConfigurationArn: &arn})
	if err != nil || d.LatestRevision.Revision != 2 || aws.ToString(d.LatestRevision.PropertiesFileContent) != rev2 {
		t.Fatalf("describe %+v %v", d.LatestRevision, err)
	}
	for _, rev := range []int64{1, 2} {
		in := e.connectorInput(fmt.Sprintf("rev-%d", rev))
		in.WorkerConfiguration = &types.WorkerConfiguration{WorkerConfigurationArn: &arn, Revision: rev}
		if _, err := e.client.CreateConnector(c, in); err != nil {
			t.Fatalf("revision %d: %v", rev, err)
		}
	}

	// An operation the reconciler failed shows errorInfo and endTime.
	e.setState(t, "rev-1", jobs.StateRunning, 2)
	l, err := e.client.ListConnectors(c, &kafkaconnect.ListConnectorsInput{ConnectorNamePrefix: aws.String("rev-1")})
	if err != nil || len(l.Connectors) != 1 {
		t.Fatalf("list %+v %v", l, err)
	}
	conn := l.Connectors[0]
	up, err := e.client.UpdateConnector(c, &kafkaconnect.UpdateConnectorInput{ConnectorArn: conn.ConnectorArn, CurrentVersion: conn.CurrentVersion,
		Capacity: &types.CapacityUpdate{ProvisionedCapacity: &types.ProvisionedCapacityUpdate{McuCount: 2, WorkerCount: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	oa, _ := jobs.ParseARN(aws.ToString(up.ConnectorOperationArn))
	if _, err := e.st.Operations.Modify(c, store.OperationKey("rev-1", oa.Sub), false, func(o *store.Operation) error {
		o.Finish(store.OpFailed, time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC), &jobs.StateDescription{Code: "WORKERS_FAILED", Message: "workers did not start"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	op, err := e.client.DescribeConnectorOperation(c, &kafkaconnect.DescribeConnectorOperationInput{ConnectorOperationArn: up.ConnectorOperationArn})
	if err != nil || op.ConnectorOperationState != types.ConnectorOperationStateUpdateFailed || aws.ToString(op.ErrorInfo.Code) != "WORKERS_FAILED" ||
		op.EndTime == nil || op.EndTime.Hour() != 13 || string(op.OperationSteps[2].StepState) != "FAILED" || string(op.OperationSteps[3].StepState) != "CANCELLED" {
		t.Fatalf("failed operation %+v %v", op, err)
	}
	lo, err := e.client.ListConnectorOperations(c, &kafkaconnect.ListConnectorOperationsInput{ConnectorArn: conn.ConnectorArn})
	if err != nil || len(lo.ConnectorOperations) != 1 || lo.ConnectorOperations[0].EndTime == nil || lo.ConnectorOperations[0].ConnectorOperationState != types.ConnectorOperationStateUpdateFailed {
		t.Fatalf("operations %+v %v", lo, err)
	}
	bad := aws.ToString(up.ConnectorOperationArn)
	bad = bad[:len(bad)-1] + "x"
	_, err = e.client.DescribeConnectorOperation(c, &kafkaconnect.DescribeConnectorOperationInput{ConnectorOperationArn: &bad})
	wantNotFound(t, err)
}
