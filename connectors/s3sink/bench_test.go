package s3sink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/runtime/convert"
)

// BenchmarkPutJSON measures the sink's own cost per record (JSON format,
// uploads to memory).
func BenchmarkPutJSON(b *testing.B) {
	cfg := validConfig()
	cfg["flush.size"] = "5000"
	task := &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
	ctx := context.Background()
	if err := task.Start(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
	pad := strings.Repeat("x", 200)
	rs := make([]connect.Record, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	off := int64(0)
	for i := 0; i < b.N; i++ {
		for j := range rs {
			rs[j] = connect.Record{Topic: "t", Offset: off, Value: map[string]any{"id": json.Number(fmt.Sprint(off)), "p": json.Number("0"), "pad": pad}}
			off++
		}
		if err := task.Put(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvertPutJSON measures a record's way through JsonConverter
// (schemas.enable=false) and the sink (JSON format, uploads to memory): the
// worker's CPU per record on the JSON path, for profiles (-cpuprofile).
func BenchmarkConvertPutJSON(b *testing.B) {
	cfg := validConfig()
	cfg["flush.size"] = "5000"
	task := &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
	ctx := context.Background()
	if err := task.Start(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = task.Stop() })
	_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
	conv, err := convert.New(connect.JSONConverterClass, map[string]string{"schemas.enable": "false"}, false)
	if err != nil {
		b.Fatal(err)
	}
	pad := strings.Repeat("x", 200)
	rs := make([]connect.Record, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	off := int64(0)
	for i := 0; i < b.N; i++ {
		for j := range rs {
			raw := []byte(fmt.Sprintf(`{"id":%d,"p":0,"pad":"%s"}`, off, pad))
			v, err := conv.ToValue("t", raw)
			if err != nil {
				b.Fatal(err)
			}
			rs[j] = connect.Record{Topic: "t", Offset: off, Value: v, RawValue: raw}
			off++
		}
		if err := task.Put(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
}
