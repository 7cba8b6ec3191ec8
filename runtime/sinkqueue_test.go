package runtime

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/runtime/connect"
)

// The poll loop's queue hands records out in the order polled, a batch at a
// time, and a partition let go leaves it (and nothing else does).
func TestSinkQueue(t *testing.T) {
	r := &sinkRun{hw: map[connect.TopicPartition]int64{}}
	part := func(p int32, offs ...int64) kgo.FetchPartition {
		fp := kgo.FetchPartition{Partition: p, HighWatermark: 100 + int64(p)}
		for _, o := range offs {
			fp.Records = append(fp.Records, &kgo.Record{Topic: "t", Partition: p, Offset: o})
		}
		return fp
	}
	r.enqueue(kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: []kgo.FetchPartition{
		part(0, 1, 2, 3), part(1, 10, 11), part(2, 20, 21, 22),
	}}}}})
	if r.hw[connect.TopicPartition{Topic: "t", Partition: 2}] != 102 {
		t.Errorf("high watermarks not noted: %v", r.hw)
	}
	got := func(recs []*kgo.Record) (out []int64) {
		for _, kr := range recs {
			out = append(out, kr.Offset)
		}
		return out
	}
	first := r.dequeue(2)
	if g := got(first); len(g) != 2 || g[0] != 1 || g[1] != 2 {
		t.Fatalf("first batch %v, want [1 2]", g)
	}
	r.dropQueued([]connect.TopicPartition{{Topic: "t", Partition: 1}, {Topic: "u", Partition: 0}})
	if g := got(first); len(g) != 2 || g[0] != 1 || g[1] != 2 {
		t.Errorf("the batch taken changed when a partition was let go: %v", g)
	}
	rest := got(r.dequeue(100))
	want := []int64{3, 20, 21, 22}
	if len(rest) != len(want) {
		t.Fatalf("rest %v, want %v", rest, want)
	}
	for i := range want {
		if rest[i] != want[i] {
			t.Fatalf("rest %v, want %v", rest, want)
		}
	}
	if n := len(r.dequeue(100)); n != 0 || r.qhead != len(r.queue) {
		t.Errorf("queue not empty: %d more", n)
	}
	r.enqueue(kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: []kgo.FetchPartition{part(0, 4)}}}}})
	if g := got(r.dequeue(10)); len(g) != 1 || g[0] != 4 {
		t.Errorf("after refill: %v, want [4]", g)
	}
}
