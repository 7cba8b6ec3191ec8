package s3sink

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ferryhq/ferry/runtime/connect"
)

// `ferry dev` embeds gofakes3; the sink's client settings for custom
// endpoints (path style, checksums only when required) must work with it.
func TestAgainstGofakes3(t *testing.T) {
	mem := s3mem.New()
	if err := mem.CreateBucket("dev"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(srv.Close)
	cfg := validConfig()
	cfg["s3.bucket.name"] = "dev"
	cfg["store.url"] = srv.URL
	cfg["aws.access.key.id"] = "k"
	cfg["aws.secret.access.key"] = "s"
	ctx := context.Background()
	task := &sinkTask{}
	if err := task.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	tp := connect.TopicPartition{Topic: "t", Partition: 1}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	if err := putWait(ctx, task, recs("t", 1, 0, 5)); err != nil {
		t.Fatal(err)
	}
	obj, err := mem.GetObject("dev", "topics/t/partition=1/t+1+0000000000.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Contents.Close()
	buf, err := io.ReadAll(obj.Contents)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(buf), "\n"); lines != 5 {
		t.Errorf("object has %d lines, want 5:\n%s", lines, buf)
	}
}
