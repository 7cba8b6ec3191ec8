package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryhq/ferry/runtime/connect"
)

const slowClass = "test.SlowSink"

// slowSink accepts every Put at once into a queue that a writer drains at a
// slow pace; a record is durable once written. Its queue is the memory a
// sink holds after Put returns.
type slowSink struct {
	mu      sync.Mutex
	queue   []connect.Record
	queued  int64 // bytes in queue
	peak    int64
	written map[connect.TopicPartition][]int64 // offsets in the order written
	durable map[connect.TopicPartition]int64
	stop    chan struct{}
	done    chan struct{}
}

func newSlowSink() *slowSink {
	return &slowSink{written: map[connect.TopicPartition][]int64{}, durable: map[connect.TopicPartition]int64{}}
}

func recBytes(r *connect.Record) int64 { return int64(len(r.RawKey) + len(r.RawValue)) }

func (s *slowSink) Start(context.Context, map[string]string) error {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			// Write about 8 KiB every 2 ms: ~4 MB/s, far slower than kfake.
			s.mu.Lock()
			var n int64
			for len(s.queue) > 0 && n < 8<<10 {
				r := s.queue[0]
				s.queue = s.queue[1:]
				n += recBytes(&r)
				s.queued -= recBytes(&r)
				tp := r.TopicPartition()
				s.written[tp] = append(s.written[tp], r.Offset)
				s.durable[tp] = r.Offset + 1
			}
			s.mu.Unlock()
		}
	}()
	return nil
}

func (s *slowSink) Open(context.Context, []connect.TopicPartition) error { return nil }

func (s *slowSink) Put(_ context.Context, recs []connect.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range recs {
		s.queue = append(s.queue, recs[i])
		s.queued += recBytes(&recs[i])
	}
	s.peak = max(s.peak, s.queued)
	return nil
}

func (s *slowSink) PreCommit(_ context.Context, cur map[connect.TopicPartition]int64) (map[connect.TopicPartition]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return durableOf(cur, s.durable), nil
}

func (s *slowSink) Close(context.Context, []connect.TopicPartition) error { return nil }

func (s *slowSink) Stop() error {
	close(s.stop)
	<-s.done
	return nil
}

// A sink that takes records faster than it writes them holds at most its
// share of the worker's sink buffers (plus one poll) while the topic holds
// thirty times that: fetching pauses and resumes, and every record is
// written once, in order.
func TestSlowSinkPausesFetching(t *testing.T) {
	const (
		parts    = 4
		per      = 1000
		valSize  = 1 << 10
		share    = 128 << 10
		maxPoll  = 50
		overPoll = maxPoll * (valSize + 64)
	)
	addr := newCluster(t, parts, "bp")
	pcl := newClient(t, addr, manualPartitioner())
	pad := strings.Repeat("v", valSize-16)
	var total int64
	for p := int32(0); p < parts; p++ {
		vals := make([]string, per)
		for i := range vals {
			vals[i] = fmt.Sprintf("%06d %s", i, pad)
			total += int64(len(vals[i]))
		}
		produce(t, pcl, "bp", p, vals...)
	}
	if total < 30*share {
		t.Fatalf("topic holds %d bytes, want far more than the %d share", total, share)
	}

	sink := newSlowSink()
	reg := connect.NewRegistry()
	if err := reg.Register(connect.Plugin{Class: slowClass, Kind: connect.Sink, NewSinkTask: func() connect.SinkTask { return sink }}); err != nil {
		t.Fatal(err)
	}
	spec := testSpec("bp", addr, 1, 1, map[string]string{
		"connector.class": slowClass, "topics": "bp",
		"consumer.override.max.poll.records": fmt.Sprint(maxPoll),
		"offset.flush.interval.ms":           "500",
	})
	spec.Class = slowClass
	w, err := NewWorker(spec, Options{Registry: reg, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(testLogLevel),
		Memory: MemoryPlan{Fetch: 256 << 10, SinkBuffers: share}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	eventually(t, 60*time.Second, "every record written", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		n := 0
		for _, offs := range sink.written {
			n += len(offs)
		}
		return n >= parts*per
	})
	cl := newClient(t, addr)
	eventually(t, 10*time.Second, "offsets committed to the end", func() bool {
		c := committed(t, cl, "connect-bp")
		for p := int32(0); p < parts; p++ {
			if c[connect.TopicPartition{Topic: "bp", Partition: p}] != per {
				return false
			}
		}
		return true
	})

	sink.mu.Lock()
	defer sink.mu.Unlock()
	for p := int32(0); p < parts; p++ {
		offs := sink.written[connect.TopicPartition{Topic: "bp", Partition: p}]
		if len(offs) != per {
			t.Errorf("partition %d: %d records written, want %d", p, len(offs), per)
		}
		for i, o := range offs {
			if o != int64(i) {
				t.Errorf("partition %d: record %d is offset %d: lost, repeated or reordered", p, i, o)
				break
			}
		}
	}
	m := w.memory()
	if m.pauses.Load() == 0 {
		t.Error("fetching never paused: the test did not exercise back-pressure")
	}
	if peak := m.peakHeld.Load(); peak > share+overPoll || peak == 0 {
		t.Errorf("the runtime counted up to %d bytes held, want (0, %d] (share %d + one poll)", peak, share+overPoll, share)
	}
	if sink.peak > share+overPoll {
		t.Errorf("the sink queued up to %d bytes, want at most %d", sink.peak, share+overPoll)
	}
	t.Logf("topic %d bytes; share %d; runtime counted peak %d; sink queue peak %d; pauses %d",
		total, share, m.peakHeld.Load(), sink.peak, m.pauses.Load())
}
