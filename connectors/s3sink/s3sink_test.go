package s3sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/runtime/connect"
)

func validConfig() map[string]string {
	return map[string]string{
		"connector.class": Class, "topics": "t", "s3.bucket.name": "b",
		"flush.size": "5", "format.class": JSONFormat,
	}
}

func TestValidateConfig(t *testing.T) {
	reg := connect.NewRegistry()
	if err := reg.Register(Plugin()); err != nil {
		t.Fatal(err)
	}
	for _, alias := range []string{Class, "S3SinkConnector", "ferry.s3sink"} {
		if err := reg.ValidateConfig(alias, validConfig()); err != nil {
			t.Errorf("%s: valid config refused: %v", alias, err)
		}
	}
	bad := validConfig()
	delete(bad, "s3.bucket.name")
	bad["flush.size"] = "0"
	bad["format.class"] = "io.confluent.connect.s3.format.orc.OrcFormat"
	bad["partitioner.class"] = "com.example.MyPartitioner"
	bad["behavior.on.null.values"] = "write"
	err := reg.ValidateConfig(Class, bad)
	var ces connect.ConfigErrors
	if !errors.As(err, &ces) {
		t.Fatalf("got %v, want ConfigErrors", err)
	}
	keys := map[string]string{}
	for _, e := range ces {
		keys[e.Key] = e.Message
	}
	for _, k := range []string{"s3.bucket.name", "flush.size", "format.class", "partitioner.class", "behavior.on.null.values"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("no problem reported for %s; got %v", k, err)
		}
	}
	if !strings.Contains(keys["format.class"], JSONFormat) {
		t.Errorf("format.class message %q does not say what is supported", keys["format.class"])
	}
}

type fakeUploader struct {
	mu      sync.Mutex // uploads run concurrently
	objects map[string][]byte
	fail    bool
}

func (f *fakeUploader) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if f.fail {
		return nil, errors.New("boom")
	}
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[*in.Key] = b
	return &s3.PutObjectOutput{}, nil
}

// putWait is Put, then waits for the uploads it started: the tests look
// at S3 right after.
func putWait(ctx context.Context, task *sinkTask, rs []connect.Record) error {
	if err := task.Put(ctx, rs); err != nil {
		return err
	}
	return task.awaitUploads()
}

func recs(topic string, p int32, from, n int) []connect.Record {
	out := make([]connect.Record, n)
	for i := range out {
		off := int64(from + i)
		out[i] = connect.Record{Topic: topic, Partition: p, Offset: off, Value: map[string]any{"n": json.Number(fmt.Sprint(off)), "s": "<&>"}}
	}
	return out
}

// Rotation is exactly flush.size records from each object's start offset;
// buffered records are not durable; lines are the JSON values.
func TestRotationAndDurability(t *testing.T) {
	up := &fakeUploader{objects: map[string][]byte{}}
	task := &sinkTask{client: up}
	ctx := context.Background()
	if err := task.Start(ctx, validConfig()); err != nil {
		t.Fatal(err)
	}
	tp := connect.TopicPartition{Topic: "t", Partition: 2}
	if err := task.Open(ctx, []connect.TopicPartition{tp}); err != nil {
		t.Fatal(err)
	}
	if err := putWait(ctx, task, recs("t", 2, 0, 12)); err != nil {
		t.Fatal(err)
	}
	want := []string{"topics/t/partition=2/t+2+0000000000.json", "topics/t/partition=2/t+2+0000000005.json"}
	if len(up.objects) != 2 {
		t.Fatalf("objects %v, want %v", keysOf(up.objects), want)
	}
	for _, k := range want {
		if _, ok := up.objects[k]; !ok {
			t.Errorf("missing %s in %v", k, keysOf(up.objects))
		}
	}
	if got, wantLine := strings.SplitN(string(up.objects[want[1]]), "\n", 2)[0], `{"n":5,"s":"<&>"}`; got != wantLine {
		t.Errorf("first line %s, want %s", got, wantLine)
	}
	d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 12})
	if d[tp] != 10 {
		t.Errorf("durable %v, want 10 (records 10, 11 are buffered)", d)
	}
	// Closing drops the buffer; reopening from the commit rewrites the same objects.
	_ = task.Close(ctx, []connect.TopicPartition{tp})
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 12}); len(d) != 0 {
		t.Errorf("durable %v after reopen, want nothing", d)
	}
	before := string(up.objects[want[1]])
	if err := putWait(ctx, task, recs("t", 2, 5, 10)); err != nil {
		t.Fatal(err)
	}
	if string(up.objects[want[1]]) != before {
		t.Errorf("rewritten object differs")
	}
	if _, ok := up.objects["topics/t/partition=2/t+2+0000000010.json"]; !ok {
		t.Errorf("no object at 10: %v", keysOf(up.objects))
	}
}

func TestNullValues(t *testing.T) {
	ctx := context.Background()
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	null := []connect.Record{{Topic: "t", Offset: 0, Value: nil}}

	task := &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
	_ = task.Start(ctx, validConfig())
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	if err := putWait(ctx, task, null); err == nil || !strings.Contains(err.Error(), "offset 0") {
		t.Errorf("null under fail: %v, want an error naming the offset", err)
	}

	cfg := validConfig()
	cfg["behavior.on.null.values"] = "ignore"
	task = &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
	_ = task.Start(ctx, cfg)
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	if err := putWait(ctx, task, null); err != nil {
		t.Fatal(err)
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 1}); d[tp] != 1 {
		t.Errorf("durable %v after an ignored null with nothing buffered, want 1", d)
	}
}

func TestUploadFailureIsNotDurable(t *testing.T) {
	ctx := context.Background()
	up := &fakeUploader{objects: map[string][]byte{}, fail: true}
	task := &sinkTask{client: up}
	_ = task.Start(ctx, validConfig())
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	if err := putWait(ctx, task, recs("t", 0, 0, 5)); err == nil || !strings.Contains(err.Error(), "t+0+0000000000.json") {
		t.Errorf("put: %v, want an upload error naming the key", err)
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 5}); len(d) != 0 {
		t.Errorf("durable %v after a failed upload", d)
	}
}

// Against a real S3 server: objects land where Confluent puts them, path-style by default.
func TestAgainstVersityGW(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	cfg := validConfig()
	for k, v := range srv.Config() {
		cfg[k] = v
	}
	cfg["s3.bucket.name"] = srv.Bucket
	cfg["topics.dir"] = "out"
	task := &sinkTask{}
	if err := task.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	if err := putWait(ctx, task, recs("t", 0, 0, 10)); err != nil {
		t.Fatal(err)
	}
	objs := srv.Objects(t, "out/")
	if got := s3test.Keys(objs); strings.Join(got, ",") != "out/t/partition=0/t+0+0000000000.json,out/t/partition=0/t+0+0000000005.json" {
		t.Fatalf("keys %v", got)
	}
	lines := strings.Split(strings.TrimSuffix(string(objs["out/t/partition=0/t+0+0000000005.json"]), "\n"), "\n")
	if len(lines) != 5 || lines[4] != `{"n":9,"s":"<&>"}` {
		t.Errorf("lines %q", lines)
	}
	_ = task.Stop()
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// rotate.interval.ms with record timestamps: the record that is too late
// opens the next object; the cut is the same on every replay.
func TestRotateIntervalRecordTime(t *testing.T) {
	ctx := context.Background()
	cfg := validConfig()
	cfg["flush.size"] = "100"
	cfg["rotate.interval.ms"] = "1000"
	cfg["timestamp.extractor"] = "Record"
	up := &fakeUploader{objects: map[string][]byte{}}
	task := &sinkTask{client: up}
	if err := task.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	base := time.Unix(1700000000, 0)
	rs := recs("t", 0, 0, 6)
	for i := range rs {
		rs[i].Timestamp = base.Add(time.Duration(i) * 400 * time.Millisecond) // 0, .4, .8, 1.2, 1.6, 2.0 s
	}
	if err := putWait(ctx, task, rs); err != nil {
		t.Fatal(err)
	}
	if _, ok := up.objects["topics/t/partition=0/t+0+0000000000.json"]; !ok || len(up.objects) != 1 {
		t.Fatalf("objects %v, want one at 0 holding offsets 0-2", keysOf(up.objects))
	}
	if n := strings.Count(string(up.objects["topics/t/partition=0/t+0+0000000000.json"]), "\n"); n != 3 {
		t.Errorf("first object holds %d records, want 3", n)
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 6}); d[tp] != 3 {
		t.Errorf("durable %v, want 3", d)
	}
}

// rotate.schedule.interval.ms closes a quiet partition's object on an empty Put.
func TestRotateSchedule(t *testing.T) {
	ctx := context.Background()
	cfg := validConfig()
	cfg["flush.size"] = "100"
	cfg["rotate.schedule.interval.ms"] = "60000"
	cfg["timezone"] = "UTC"
	up := &fakeUploader{objects: map[string][]byte{}}
	now := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC) // on a boundary: the next is a minute away
	task := &sinkTask{client: up, now: func() time.Time { return now }}
	if err := task.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	if err := putWait(ctx, task, recs("t", 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(59 * time.Second)
	_ = putWait(ctx, task, nil)
	if len(up.objects) != 0 {
		t.Fatalf("rotated early: %v", keysOf(up.objects))
	}
	now = now.Add(time.Second)
	_ = putWait(ctx, task, nil)
	if _, ok := up.objects["topics/t/partition=0/t+0+0000000000.json"]; !ok {
		t.Fatalf("no scheduled rotation: %v", keysOf(up.objects))
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 2}); d[tp] != 2 {
		t.Errorf("durable %v, want 2", d)
	}
}

func TestGzip(t *testing.T) {
	ctx := context.Background()
	cfg := validConfig()
	cfg["s3.compression.type"] = "gzip"
	up := &fakeUploader{objects: map[string][]byte{}}
	task := &sinkTask{client: up}
	_ = task.Start(ctx, cfg)
	_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
	if err := putWait(ctx, task, recs("t", 0, 0, 5)); err != nil {
		t.Fatal(err)
	}
	z, ok := up.objects["topics/t/partition=0/t+0+0000000000.json.gz"]
	if !ok {
		t.Fatalf("objects %v", keysOf(up.objects))
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if strings.Count(string(b), "\n") != 5 {
		t.Errorf("decompressed %q", b)
	}
}

// A RegexRouter-style rename: objects are named after the routed topic, and
// PreCommit reports on the partition the records were read from, so offsets
// keep moving.
func TestRoutedTopicNamesObjectsAndCommitsOriginal(t *testing.T) {
	up := &fakeUploader{objects: map[string][]byte{}}
	task := &sinkTask{client: up}
	ctx := context.Background()
	if err := task.Start(ctx, validConfig()); err != nil {
		t.Fatal(err)
	}
	orig := connect.TopicPartition{Topic: "t", Partition: 2}
	if err := task.Open(ctx, []connect.TopicPartition{orig}); err != nil {
		t.Fatal(err)
	}
	rs := recs("t", 2, 0, 5)
	for i := range rs {
		rs[i].OriginalTopic, rs[i].OriginalPartition = "t", 2
		rs[i].Topic = "routed-t"
	}
	if err := putWait(ctx, task, rs); err != nil {
		t.Fatal(err)
	}
	if _, ok := up.objects["topics/routed-t/partition=2/routed-t+2+0000000000.json"]; !ok {
		t.Fatalf("objects %v, want one named after the routed topic", keysOf(up.objects))
	}
	d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{orig: 5})
	if d[orig] != 5 {
		t.Fatalf("durable %v, want 5 for the partition the records were read from", d)
	}
}
