package s3sink

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/runtime/connect"
)

// gatedUploader holds the uploads of keys containing a gated string until
// the gate is opened, then fails or stores them.
type gatedUploader struct {
	mu      sync.Mutex
	objects map[string][]byte
	gates   map[string]chan error // by key substring
	started chan string
}

func (g *gatedUploader) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	g.started <- *in.Key
	for sub, gate := range g.gates {
		if strings.Contains(*in.Key, sub) {
			select {
			case err := <-gate:
				if err != nil {
					return nil, err
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.objects[*in.Key] = b
	return &s3.PutObjectOutput{}, nil
}

func (g *gatedUploader) has(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.objects[key]
	return ok
}

func gatedTask(t *testing.T, gates ...string) (*sinkTask, *gatedUploader) {
	t.Helper()
	up := &gatedUploader{objects: map[string][]byte{}, gates: map[string]chan error{}, started: make(chan string, 100)}
	for _, g := range gates {
		up.gates[g] = make(chan error, 1)
	}
	task := &sinkTask{client: up}
	if err := task.Start(context.Background(), validConfig()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Stop() })
	return task, up
}

// Put goes on while an object uploads; the partition becomes durable only
// up to the end of its first batch still in flight, in commit order, even
// when a later batch is in S3 first.
func TestUploadsOverlapPutAndSettleInOrder(t *testing.T) {
	ctx := context.Background()
	task, up := gatedTask(t, "t+0+0000000000")
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	done := make(chan error, 1)
	go func() { done <- task.Put(ctx, recs("t", 0, 0, 12)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Put waited for an upload in flight")
	}
	// The second batch is uploaded while the first is held.
	deadline := time.Now().Add(10 * time.Second)
	for !up.has("topics/t/partition=0/t+0+0000000005.json") {
		if time.Now().After(deadline) {
			t.Fatal("second object never uploaded while the first was held")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if up.has("topics/t/partition=0/t+0+0000000000.json") {
		t.Fatal("held object uploaded")
	}
	// PreCommit waits for the batches in flight, then reports both.
	got := make(chan map[connect.TopicPartition]int64, 1)
	go func() {
		d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 12})
		got <- d
	}()
	select {
	case d := <-got:
		t.Fatalf("PreCommit returned %v with the first batch in flight", d)
	case <-time.After(100 * time.Millisecond):
	}
	up.gates["t+0+0000000000"] <- nil
	if d := <-got; d[tp] != 10 {
		t.Errorf("durable %v, want 10 (records 10, 11 buffered)", d)
	}
}

// A failed batch holds the partition's durable offset before it, even
// though a later batch of the partition is in S3, and fails the next Put.
func TestFailedUploadStopsDurableAndFailsPut(t *testing.T) {
	ctx := context.Background()
	task, up := gatedTask(t, "t+0+0000000000")
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	if err := task.Put(ctx, recs("t", 0, 0, 10)); err != nil {
		t.Fatal(err)
	}
	up.gates["t+0+0000000000"] <- errors.New("boom")
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 10}); len(d) != 0 {
		t.Errorf("durable %v after the first batch failed, want nothing", d)
	}
	_ = task.awaitUploads()
	if !up.has("topics/t/partition=0/t+0+0000000005.json") {
		t.Error("second batch not uploaded")
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 10}); len(d) != 0 {
		t.Errorf("durable %v with the second batch in S3 after a failed first, want nothing", d)
	}
	if err := task.Put(ctx, nil); err == nil || !strings.Contains(err.Error(), "t+0+0000000000.json") {
		t.Errorf("put after a failed upload: %v, want the upload error naming the key", err)
	}
}

// At most maxUploads batches are in flight: the next commit waits in Put.
func TestUploadsInFlightAreBounded(t *testing.T) {
	ctx := context.Background()
	task, up := gatedTask(t, "partition=0/")
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	done := make(chan error, 1)
	go func() { done <- task.Put(ctx, recs("t", 0, 0, 5*(maxUploads+1))) }()
	for i := 0; i < maxUploads; i++ {
		<-up.started
	}
	select {
	case err := <-done:
		t.Fatalf("Put returned (%v) with %d batches and %d upload slots", err, maxUploads+1, maxUploads)
	case <-time.After(100 * time.Millisecond):
	}
	up.gates["partition=0/"] <- nil // one upload ends: the last batch starts
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxUploads; i++ {
		up.gates["partition=0/"] <- nil
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: int64(5 * (maxUploads + 1))}); d[tp] != int64(5*(maxUploads+1)) {
		t.Errorf("durable %v", d)
	}
}

// With scheduled rotation (conditional writes), a partition whose batch is
// uploading holds its next records back; Put returns, and other partitions
// go on. The held records count in BufferedBytes and are written, in
// order, once the partition's batch has settled.
func TestConditionalWritesHoldOnlyTheirPartition(t *testing.T) {
	up := &gatedUploader{objects: map[string][]byte{}, gates: map[string]chan error{"t+0+0000000000": make(chan error, 1)}, started: make(chan string, 100)}
	cfg := validConfig()
	cfg["flush.size"] = "2"
	cfg["rotate.schedule.interval.ms"] = "3600000"
	cfg["timezone"] = "UTC"
	task := &sinkTask{client: up}
	ctx := context.Background()
	if err := task.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Stop() })
	p0, p1 := connect.TopicPartition{Topic: "t", Partition: 0}, connect.TopicPartition{Topic: "t", Partition: 1}
	_ = task.Open(ctx, []connect.TopicPartition{p0, p1})
	put := func(rs []connect.Record) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- task.Put(ctx, rs) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Put blocked on another batch's upload")
		}
	}
	put(recs("t", 0, 0, 2)) // commits p0's first batch; its upload waits at the gate
	<-up.started
	put(append(recs("t", 0, 2, 2), recs("t", 1, 0, 2)...))
	if err := waitFor(func() bool { return up.has("topics/t/partition=1/t+1+0000000000.json") }); err != nil {
		t.Fatal("partition 1 did not go on while partition 0 uploads")
	}
	if task.BufferedBytes() < task.mem.inUse()+2*200 {
		t.Errorf("buffered %d: the two held records are not counted", task.BufferedBytes())
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{p1: 2}); d[p1] != 2 {
		t.Errorf("durable %v", d)
	}
	up.gates["t+0+0000000000"] <- nil
	if err := waitFor(func() bool { return up.has("topics/t/partition=0/t+0+0000000000.json") }); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(func() bool {
		put(nil) // releases the held records once the batch settled
		return up.has("topics/t/partition=0/t+0+0000000002.json")
	}); err != nil {
		t.Fatal("held records not written after the batch settled")
	}
	if err := task.awaitUploads(); err != nil {
		t.Fatal(err)
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{p0: 4, p1: 2}); d[p0] != 4 || d[p1] != 2 {
		t.Errorf("durable %v, want 4 and 2", d)
	}
	if got := string(up.objects["topics/t/partition=0/t+0+0000000002.json"]); got != "{\"n\":2,\"s\":\"<&>\"}\n{\"n\":3,\"s\":\"<&>\"}\n" {
		t.Errorf("held records written as %q", got)
	}
	if task.heldBytes != 0 {
		t.Errorf("held bytes %d after release", task.heldBytes)
	}
}

func waitFor(cond func() bool) error {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return errors.New("timed out")
}
