package s3sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/runtime/connect"
)

func TestSpillBuf(t *testing.T) {
	dir := t.TempDir()
	b := &budget{limit: 3 * minChunk}
	s := newSpillBuf(b, dir)
	var want bytes.Buffer
	for i := 0; i < 2000; i++ {
		line := []byte(fmt.Sprintf("record %d %s\n", i, strings.Repeat("x", i%50)))
		want.Write(line)
		if _, err := s.Write(line); err != nil {
			t.Fatal(err)
		}
		if b.inUse() > b.limit {
			t.Fatalf("budget overdrawn: %d > %d", b.inUse(), b.limit)
		}
	}
	if !s.Spilled() {
		t.Fatal("did not spill past its budget")
	}
	got, err := io.ReadAll(io.NewSectionReader(s, 0, s.Len()))
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read back %d bytes (err %v), want %d identical", len(got), err, want.Len())
	}
	mid := make([]byte, 100)
	if _, err := s.ReadAt(mid, 5000); err != nil || !bytes.Equal(mid, want.Bytes()[5000:5100]) {
		t.Errorf("ReadAt across the spill boundary: %v", err)
	}
	s.Release()
	if b.inUse() != 0 {
		t.Errorf("budget in use after release: %d", b.inUse())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spill files left: %v", ents)
	}
}

// A large object with a tiny budget spills to disk and goes up as a
// multipart upload; content is intact, budget and disk are returned.
func TestMultipartAndSpillAgainstVersityGW(t *testing.T) {
	task, srv := startVersity(t, map[string]string{"flush.size": "30000", "s3.part.size": "5242880", "s3.object.tagging": "true"})
	task.mem = &budget{limit: 256 << 10}
	task.dir = t.TempDir()
	ctx := context.Background()
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	pad := strings.Repeat("p", 400)
	var want bytes.Buffer
	for from := 0; from < 30000; from += 1000 {
		rs := make([]connect.Record, 1000)
		for i := range rs {
			off := from + i
			rs[i] = connect.Record{Topic: "t", Offset: int64(off), Value: map[string]any{"i": fmt.Sprint(off), "pad": pad}}
			fmt.Fprintf(&want, `{"i":"%d","pad":"%s"}`+"\n", off, pad)
		}
		if err := task.Put(ctx, rs); err != nil {
			t.Fatal(err)
		}
		if from == 20000 {
			if ents, _ := os.ReadDir(task.dir); len(ents) == 0 {
				t.Error("nothing spilled with a 256 KiB budget and 8 MiB buffered")
			}
		}
	}
	if err := task.awaitUploads(); err != nil {
		t.Fatal(err)
	}
	if want.Len() < 12<<20 {
		t.Fatalf("test object only %d bytes", want.Len())
	}
	key := "topics/t/partition=0/t+0+0000000000.json"
	out, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	_ = out.Body.Close()
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("object %d bytes, want %d identical", len(got), want.Len())
	}
	if out.PartsCount == nil && !strings.Contains(aws.ToString(out.ETag), "-") {
		t.Errorf("not a multipart upload: etag %s", aws.ToString(out.ETag))
	}
	if task.mem.inUse() != 0 {
		t.Errorf("budget in use after commit: %d", task.mem.inUse())
	}
	if ents, _ := os.ReadDir(task.dir); len(ents) != 0 {
		t.Errorf("spill files left: %v", ents)
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 30000}); d[tp] != 30000 {
		t.Errorf("durable %v", d)
	}
}

// A task started by the runtime buffers within the budget it was handed
// (its share of the worker's), reports it as BufferedBytes, and spills
// past it.
func TestTaskBudgetFromRuntime(t *testing.T) {
	worker := connect.NewMemoryBudget(1 << 20)
	share := worker.Share(64 << 10)
	cfg := validConfig()
	cfg["flush.size"] = "100000" // nothing is flushed
	task := &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
	if err := task.Start(connect.WithMemoryBudget(context.Background(), share), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Stop() })
	task.dir = t.TempDir()
	ctx := context.Background()
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	put := func(from, n int) {
		rs := make([]connect.Record, n)
		for i := range rs {
			rs[i] = connect.Record{Topic: "t", Offset: int64(from + i), Value: map[string]any{"pad": strings.Repeat("p", 200)}}
		}
		if err := task.Put(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 10)
	if got := task.BufferedBytes(); got == 0 || got != share.InUse() || worker.InUse() != got {
		t.Fatalf("buffered %d, share in use %d, worker in use %d: want the same, above 0", got, share.InUse(), worker.InUse())
	}
	put(10, 1000) // ~210 KB, over the 64 KiB share
	if got := task.BufferedBytes(); got > share.Limit() {
		t.Errorf("buffered %d over the share %d", got, share.Limit())
	}
	if ents, _ := os.ReadDir(task.dir); len(ents) == 0 {
		t.Error("nothing spilled past the share")
	}
	_ = task.Close(ctx, []connect.TopicPartition{tp})
	if worker.InUse() != 0 || task.BufferedBytes() != 0 {
		t.Errorf("after close: worker %d, task %d in use", worker.InUse(), task.BufferedBytes())
	}
}

// Buffers reuse released chunks: a buffer filled after another was
// released (and spilled) reads back its own bytes only, and the budget
// counts what buffers hold, not what the pools keep.
func TestSpillBufReusesChunks(t *testing.T) {
	dir := t.TempDir()
	b := &budget{limit: 1 << 30}
	fill := func(s *spillBuf, c byte, n int) []byte {
		want := bytes.Repeat([]byte{c}, n)
		for off := 0; off < n; off += 1000 {
			if _, err := s.Write(want[off:min(off+1000, n)]); err != nil {
				t.Fatal(err)
			}
		}
		return want
	}
	for round, n := range []int{3 << 20, 100, 70000, 5 << 20, 1} {
		a := newSpillBuf(b, dir)
		fill(a, 'a', 2<<20)
		a.Release()
		s := newSpillBuf(b, dir)
		want := fill(s, byte('0'+round), n)
		got, err := s.Bytes()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round %d: read back %d bytes (err %v), want %d of %q", round, len(got), err, n, want[0])
		}
		if used, chunks := b.inUse(), s.taken; used != chunks {
			t.Errorf("round %d: budget in use %d, the buffer holds %d", round, used, chunks)
		}
		s.Release()
	}
	small := &budget{limit: 2 * minChunk}
	s := newSpillBuf(small, dir)
	want := fill(s, 'z', 100000) // spills: its chunks go back to the pools
	t2 := newSpillBuf(b, dir)
	want2 := fill(t2, 'y', 50000)
	got, _ := s.Bytes()
	got2, _ := t2.Bytes()
	if !s.Spilled() || !bytes.Equal(got, want) || !bytes.Equal(got2, want2) {
		t.Errorf("spilled %v; spilled buffer intact %v; buffer after it intact %v", s.Spilled(), bytes.Equal(got, want), bytes.Equal(got2, want2))
	}
	s.Release()
	t2.Release()
	if b.inUse() != 0 || small.inUse() != 0 {
		t.Errorf("budget in use after release: %d, %d", b.inUse(), small.inUse())
	}
}
