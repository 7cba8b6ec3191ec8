package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect"
	"github.com/aws/aws-sdk-go-v2/service/kafkaconnect/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/scheduler/plugins"
	"github.com/ferryhq/ferry/scheduler/store"
)

// buildExamplePlugin builds cmd/ferry/internal/exampleplugin, a worker
// binary with one connector more than ferry's (com.example.ferry.FileSink).
func buildExamplePlugin(t *testing.T) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "example-worker")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/exampleplugin").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/ferry/internal/exampleplugin: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zipFiles builds a ZIP of name → (mode, body).
func zipFiles(t *testing.T, files map[string]zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, f := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type zipEntry struct {
	mode os.FileMode
	body []byte
}

const exampleManifest = `{"name": "example", "version": "1.0.0", "binary": "bin/example-worker",
 "connectors": [{"class": "com.example.ferry.FileSink", "type": "sink"}]}`

// TestDevCustomPlugin takes a custom plugin through ferry dev against a
// real S3 (versitygw): a real plugin binary, zipped with its manifest and
// uploaded, becomes ACTIVE with its MD5 and size through the kafkaconnect
// client; broken files become CREATE_FAILED saying what is wrong; a JAR is
// refused; a connector of the plugin's FileSink runs the plugin's binary
// (downloaded from the Ferry API by the local executor) and writes every
// record Kafka holds; a class the manifest does not list is refused.
func TestDevCustomPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the end-to-end test in -short mode")
	}
	srv := s3test.Start(t)
	binary := buildExamplePlugin(t)
	good := zipFiles(t, map[string]zipEntry{
		"ferry-plugin.json":  {0o644, []byte(exampleManifest)},
		"bin/example-worker": {0o755, binary},
	})
	uploads := map[string][]byte{
		"plugins/example.zip":     good,
		"plugins/not-a-zip.zip":   []byte("PK? no, a text file\n"),
		"plugins/no-manifest.zip": zipFiles(t, map[string]zipEntry{"bin/example-worker": {0o755, []byte("#!/bin/sh\n")}}),
		"plugins/bad-manifest.zip": zipFiles(t, map[string]zipEntry{
			"ferry-plugin.json":  {0o644, []byte(`{"binary": "bin/missing", "connectors": [{"class": "a.B", "type": "sinks"}]}`)},
			"bin/example-worker": {0o755, []byte("#!/bin/sh\n")},
		}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for key, body := range uploads {
		if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("upload %s: %v", key, err)
		}
	}

	dev := startDevWithS3(t, freeAddr(t), srv)
	client := dev.client()
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 10*time.Second) }
	bucketArn := "arn:aws:s3:::" + srv.Bucket
	create := func(name, key string, ct types.CustomPluginContentType) (*kafkaconnect.CreateCustomPluginOutput, error) {
		c, cc := call()
		defer cc()
		return client.CreateCustomPlugin(c, &kafkaconnect.CreateCustomPluginInput{
			Name: aws.String(name), ContentType: ct,
			Location: &types.CustomPluginLocation{S3Location: &types.S3Location{BucketArn: aws.String(bucketArn), FileKey: aws.String(key)}},
		})
	}
	settled := func(arn string) *kafkaconnect.DescribeCustomPluginOutput {
		t.Helper()
		var d *kafkaconnect.DescribeCustomPluginOutput
		eventually(t, 30*time.Second, "plugin "+arn+" checked", func() (bool, string) {
			c, cc := call()
			defer cc()
			var err error
			d, err = client.DescribeCustomPlugin(c, &kafkaconnect.DescribeCustomPluginInput{CustomPluginArn: aws.String(arn)})
			if err != nil {
				return false, err.Error()
			}
			return d.CustomPluginState != types.CustomPluginStateCreating, string(d.CustomPluginState)
		})
		return d
	}

	start := time.Now()
	out, err := create("example", "plugins/example.zip", types.CustomPluginContentTypeZip)
	if err != nil {
		t.Fatalf("create plugin: %v", err)
	}
	if out.CustomPluginState != types.CustomPluginStateCreating {
		t.Errorf("created %s, want CREATING", out.CustomPluginState)
	}
	pluginArn := aws.ToString(out.CustomPluginArn)
	d := settled(pluginArn)
	sum := md5.Sum(good)
	fd := d.LatestRevision.FileDescription
	if d.CustomPluginState != types.CustomPluginStateActive || fd == nil || aws.ToString(fd.FileMd5) != hex.EncodeToString(sum[:]) || fd.FileSize != int64(len(good)) {
		t.Fatalf("plugin %s (%+v), file %+v; want ACTIVE with md5 %x and size %d", d.CustomPluginState, d.StateDescription, fd, sum, len(good))
	}
	t.Logf("plugin of %d bytes ACTIVE %v after create", len(good), time.Since(start).Round(time.Millisecond))

	for _, tc := range []struct{ name, key, want string }{
		{"not-a-zip", "plugins/not-a-zip.zip", "not a ZIP archive"},
		{"no-manifest", "plugins/no-manifest.zip", "no ferry-plugin.json at its root"},
		{"bad-manifest", "plugins/bad-manifest.zip", `binary: "bin/missing" is not a file in the ZIP; connectors[0].type: must be "sink" or "source", got "sinks"`},
		{"no-object", "plugins/missing.zip", "no such object: s3://" + srv.Bucket + "/plugins/missing.zip"},
	} {
		out, err := create(tc.name, tc.key, types.CustomPluginContentTypeZip)
		if err != nil {
			t.Fatalf("create plugin %s: %v", tc.name, err)
		}
		d := settled(aws.ToString(out.CustomPluginArn))
		if d.CustomPluginState != types.CustomPluginStateCreateFailed || d.StateDescription == nil || !strings.Contains(aws.ToString(d.StateDescription.Message), tc.want) {
			t.Errorf("plugin %s: %s %+v, want CREATE_FAILED saying %q", tc.name, d.CustomPluginState, d.StateDescription, tc.want)
		} else {
			t.Logf("plugin %s: %s: %s", tc.name, aws.ToString(d.StateDescription.Code), aws.ToString(d.StateDescription.Message))
		}
	}
	_, err = create("java", "plugins/example.jar", types.CustomPluginContentTypeJar)
	var bad *types.BadRequestException
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "Ferry runs connectors written in Go, not Java") {
		t.Errorf("JAR plugin: %v, want a 400 saying Ferry runs Go plugins", err)
	}

	// The API serves the checked file, as the deployers fetch it.
	a := strings.Split(pluginArn, "/")
	resp, err := http.Get(dev.api + "/ferry/plugin-files/example/" + a[len(a)-1] + "/1.zip")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(served, good) {
		t.Errorf("plugin file: %s, %d bytes (equal %v)", resp.Status, len(served), bytes.Equal(served, good))
	}

	// A connector of the plugin's FileSink.
	const topic = "plugin-orders"
	kcl, err := kgo.NewClient(kgo.SeedBrokers(dev.kafka), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kcl.Close)
	{
		c, cc := call()
		res, err := kadm.NewClient(kcl).CreateTopic(c, 2, 1, nil, topic)
		cc()
		if err != nil || res.Err != nil {
			t.Fatalf("create topic: %v %v", err, res.Err)
		}
	}
	outDir := t.TempDir()
	in := &kafkaconnect.CreateConnectorInput{
		ConnectorName: aws.String("file-sink"),
		Capacity:      &types.Capacity{ProvisionedCapacity: &types.ProvisionedCapacity{McuCount: 1, WorkerCount: 1}},
		ConnectorConfiguration: map[string]string{
			"connector.class":          "com.example.ferry.FileSink",
			"tasks.max":                "1",
			"topics":                   topic,
			"file.dir":                 outDir,
			"offset.flush.interval.ms": "500",
		},
		KafkaCluster: &types.KafkaCluster{ApacheKafkaCluster: &types.ApacheKafkaCluster{
			BootstrapServers: aws.String(dev.kafka), Vpc: &types.Vpc{Subnets: []string{"local"}},
		}},
		KafkaClusterClientAuthentication: &types.KafkaClusterClientAuthentication{AuthenticationType: types.KafkaClusterClientAuthenticationTypeNone},
		KafkaClusterEncryptionInTransit:  &types.KafkaClusterEncryptionInTransit{EncryptionType: types.KafkaClusterEncryptionInTransitTypePlaintext},
		KafkaConnectVersion:              aws.String("3.7.x"),
		Plugins:                          []types.Plugin{{CustomPlugin: &types.CustomPlugin{CustomPluginArn: aws.String(pluginArn), Revision: 1}}},
		ServiceExecutionRoleArn:          aws.String("arn:aws:iam::000000000000:role/ferry-e2e"),
	}
	// A class the manifest does not list is refused, naming the field.
	in.ConnectorConfiguration["connector.class"] = "io.confluent.connect.s3.S3SinkConnector"
	c, cc := call()
	_, err = client.CreateConnector(c, in)
	cc()
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), `connectorConfiguration.connector.class: "io.confluent.connect.s3.S3SinkConnector" is not a connector custom plugin example provides`) {
		t.Errorf("class outside the manifest: %v", err)
	}
	in.ConnectorConfiguration["connector.class"] = "com.example.ferry.FileSink"
	c, cc = call()
	created, err := client.CreateConnector(c, in)
	cc()
	if err != nil {
		t.Fatalf("create connector: %v", err)
	}
	const n = 50
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, `{"id":%d}`, i)})
	}
	if err := kcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	eventually(t, 60*time.Second, "connector RUNNING", func() (bool, string) {
		c, cc := call()
		defer cc()
		d, err := client.DescribeConnector(c, &kafkaconnect.DescribeConnectorInput{ConnectorArn: created.ConnectorArn})
		if err != nil {
			return false, err.Error()
		}
		if d.ConnectorState == types.ConnectorStateFailed {
			t.Fatalf("connector FAILED: %s", aws.ToString(d.StateDescription.Message))
		}
		return d.ConnectorState == types.ConnectorStateRunning, string(d.ConnectorState)
	})
	eventually(t, 30*time.Second, fmt.Sprintf("%d records written by the plugin's FileSink", n), func() (bool, string) {
		seen := map[string]bool{}
		files, _ := filepath.Glob(filepath.Join(outDir, topic+"-*.jsonl"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var r struct{ Key, Value string }
				if json.Unmarshal([]byte(line), &r) == nil && r.Value == `{"id":`+strings.TrimPrefix(r.Key, "k")+`}` {
					seen[r.Key] = true
				}
			}
		}
		return len(seen) == n, fmt.Sprintf("%d distinct records in %d files", len(seen), len(files))
	})
	// The worker is the plugin's binary, unpacked under the executor's data dir.
	var argv []string
	for _, p := range procs() {
		if p.ppid == dev.cmd.Process.Pid && len(p.argv) >= 2 && p.argv[1] == "worker" {
			argv = p.argv
		}
	}
	wantPrefix := filepath.Join(dev.dataDir, "workers", "plugins", "example-r1-"+hex.EncodeToString(sum[:]))
	if len(argv) == 0 || argv[0] != filepath.Join(wantPrefix, "bin", "example-worker") {
		t.Errorf("worker process %q, want the plugin's binary under %s", argv, wantPrefix)
	}
	if len(dev.workers()) != 0 {
		t.Errorf("ferry worker processes run for a plugin's connector: %v", dev.workers())
	}
}

// TestPluginS3Refusals reads plugin files with the server's S3 reader from
// a real S3 (versitygw): credentials S3 refuses and a missing bucket are
// problems the plugin fails with, not errors to retry.
func TestPluginS3Refusals(t *testing.T) {
	srv := s3test.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("p.zip"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	reader := func(secret string) *plugins.S3 {
		r, err := plugins.NewS3(ctx, plugins.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true, AccessKeyID: srv.AccessKey, SecretAccessKey: secret})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	loc := store.Location{BucketArn: "arn:aws:s3:::" + srv.Bucket, FileKey: "p.zip"}
	body, size, err := reader(srv.SecretKey).Open(ctx, loc)
	if err != nil || size != 1 {
		t.Fatalf("open with the right credentials: %v (size %d)", err, size)
	}
	body.Close()
	for _, tc := range []struct {
		name, secret string
		loc          store.Location
		code, want   string
	}{
		{"wrong secret", "not-the-secret", loc, plugins.CodeAccessDenied, "access denied to s3://" + srv.Bucket + "/p.zip"},
		{"no bucket", srv.SecretKey, store.Location{BucketArn: "arn:aws:s3:::no-such-bucket", FileKey: "p.zip"}, plugins.CodeNotFound, "no such bucket: no-such-bucket"},
		{"no version", srv.SecretKey, store.Location{BucketArn: loc.BucketArn, FileKey: "p.zip", ObjectVersion: "v-404"}, "", ""},
	} {
		_, _, err := reader(tc.secret).Open(ctx, tc.loc)
		var pr *plugins.Problem
		if tc.code == "" {
			// versitygw's posix backend has no versioning: whatever it
			// answers must not be a passing error retried for minutes.
			if !errors.As(err, &pr) {
				t.Errorf("%s: %v, want a problem", tc.name, err)
			}
			continue
		}
		if !errors.As(err, &pr) || pr.Code != tc.code || !strings.Contains(pr.Message, tc.want) {
			t.Errorf("%s: %v, want %s saying %q", tc.name, err, tc.code, tc.want)
		}
	}
}
