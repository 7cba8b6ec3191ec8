package connecttest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// memStore is storage shared by every incarnation of memSink.
type memStore struct {
	mu     sync.Mutex
	chunks map[string][]Written // by "topic/partition/start offset", as object stores key them
}

// memSink buffers flushSize records per partition and writes them as one
// chunk keyed by its start offset, like the S3 sink.
type memSink struct {
	store     *memStore
	flushSize int
	buf       map[connect.TopicPartition][]connect.Record
	durable   map[connect.TopicPartition]int64
}

var _ connect.SinkTask = (*memSink)(nil)

func (m *memSink) Start(context.Context, map[string]string) error {
	m.buf = map[connect.TopicPartition][]connect.Record{}
	m.durable = map[connect.TopicPartition]int64{}
	return nil
}

func (m *memSink) Open(_ context.Context, tps []connect.TopicPartition) error {
	for _, tp := range tps {
		delete(m.buf, tp)
		delete(m.durable, tp)
	}
	return nil
}

func (m *memSink) Put(_ context.Context, recs []connect.Record) error {
	for _, r := range recs {
		tp := r.TopicPartition()
		if b := m.buf[tp]; len(b) > 0 && r.Offset < b[len(b)-1].Offset {
			m.buf[tp] = nil
		}
		m.buf[tp] = append(m.buf[tp], r)
		if len(m.buf[tp]) == m.flushSize {
			var ws []Written
			for _, br := range m.buf[tp] {
				raw, _ := json.Marshal(br.Value)
				w, err := DecodeValue(raw)
				if err != nil {
					return err
				}
				ws = append(ws, w)
			}
			m.store.mu.Lock()
			m.store.chunks[fmt.Sprintf("%s/%d", tp, m.buf[tp][0].Offset)] = ws
			m.store.mu.Unlock()
			m.durable[tp] = r.Offset + 1
			m.buf[tp] = nil
		}
	}
	return nil
}

func (m *memSink) PreCommit(_ context.Context, cur map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	out := map[connect.TopicPartition]int64{}
	for tp := range cur {
		if d, ok := m.durable[tp]; ok {
			out[tp] = d
		}
	}
	return out, nil
}

func (m *memSink) Close(_ context.Context, tps []connect.TopicPartition) error {
	for _, tp := range tps {
		delete(m.buf, tp)
	}
	return nil
}

func (m *memSink) Stop() error { return nil }

// verify reads back what a memStore holds of topic.
func (store *memStore) verify(_ testing.TB, topic string) []Written {
	store.mu.Lock()
	defer store.mu.Unlock()
	var out []Written
	for k, ws := range store.chunks {
		if strings.HasPrefix(k, topic+"-") {
			out = append(out, ws...)
		}
	}
	return out
}

func TestSuiteOnAnExactlyOnceMemorySink(t *testing.T) {
	store := &memStore{chunks: map[string][]Written{}}
	RunSinkSuite(t, SinkSuite{
		NewTask: func() connect.SinkTask { return &memSink{store: store, flushSize: 5} },
		Verify:  store.verify,
	})
}

// A sink that keeps a partition's last records until more arrive (its
// batch is not full and it has no time-based flush) never lets them be
// committed: the suite says so, naming the partition and the offsets.
func TestSuiteRequiresEveryDeliveredRecordCommitted(t *testing.T) {
	store := &memStore{chunks: map[string][]Written{}}
	s := SinkSuite{
		NewTask:      func() connect.SinkTask { return &memSink{store: store, flushSize: 7} },
		Verify:       store.verify,
		Partitions:   1,
		Batch:        7,
		CommitWithin: 300 * time.Millisecond,
	}
	committed := map[connect.TopicPartition]int64{}
	h := s.start(t, "tail", committed)
	h.open(0)
	h.put(0, 0, 40) // 5 chunks of 7; the last 5 records stay buffered
	err := h.waitCommitted()
	if err == nil || !strings.Contains(err.Error(), "tail-0 delivered up to 40, committed 35") {
		t.Errorf("got %v, want the uncommitted tail named", err)
	}
	h.stop()
}

func TestDecodeLines(t *testing.T) {
	a, _ := json.Marshal(Value("t", 1, 7))
	b, _ := json.Marshal(Value("t", 0, 9))
	ws, err := DecodeLines(append(append(a, '\n'), b...))
	if err != nil || len(ws) != 2 || ws[0] != (Written{1, 7}) || ws[1] != (Written{0, 9}) {
		t.Fatalf("%v %v", ws, err)
	}
	if _, err := DecodeLines([]byte(`{"x":1}`)); err == nil {
		t.Error("a foreign value decoded")
	}
}
