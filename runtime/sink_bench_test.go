package runtime

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/runtime/connect"
)

// discardTask takes every record and makes nothing durable.
type discardTask struct{}

func (discardTask) Start(context.Context, map[string]string) error        { return nil }
func (discardTask) Open(context.Context, []connect.TopicPartition) error  { return nil }
func (discardTask) Put(context.Context, []connect.Record) error           { return nil }
func (discardTask) Close(context.Context, []connect.TopicPartition) error { return nil }
func (discardTask) Stop() error                                           { return nil }
func (discardTask) PreCommit(context.Context, map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	return nil, nil
}

// BenchmarkSinkProcess measures the runtime's own work on a poll's records
// (ownership, ByteArrayConverter, batching into Put, the positions after
// it): 8 partitions of 500 records each per poll, a record per op.
func BenchmarkSinkProcess(b *testing.B) {
	const parts, per = 8, 500
	reg := sinkRegistry(b, func() connect.SinkTask { return discardTask{} })
	spec := testSpec("bench", "127.0.0.1:1", 1, 1, map[string]string{"topics": "t",
		"key.converter": connect.ByteArrayConverterClass, "value.converter": connect.ByteArrayConverterClass})
	w, err := NewWorker(spec, Options{Registry: reg, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	r, err := w.newSinkRun(0)
	if err != nil {
		b.Fatal(err)
	}
	r.bp = nil // nothing is ever durable here: what the task holds would only grow
	var fps []kgo.FetchPartition
	for p := int32(0); p < parts; p++ {
		r.owned[connect.TopicPartition{Topic: "t", Partition: p}] = newPartState()
		fp := kgo.FetchPartition{Partition: p, HighWatermark: per}
		for i := 0; i < per; i++ {
			fp.Records = append(fp.Records, &kgo.Record{Topic: "t", Partition: p, Offset: int64(i),
				Key: []byte(fmt.Sprint(i)), Value: []byte(`{"id":1,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)})
		}
		fps = append(fps, fp)
	}
	fetches := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: fps}}}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += parts * per {
		if err := r.process(ctx, fetches); err != nil {
			b.Fatal(err)
		}
	}
}
