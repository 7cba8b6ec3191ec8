package runtime

import (
	"context"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Back-pressure. A sink task may hold records in memory after Put returned
// (until they are durable). What it holds is measured after every Put:
// the task's own figure when it is a connect.BufferReporter, else the bytes
// of the records handed to Put that PreCommit has not reported durable yet.
// Above the task's share of the worker's sink buffers (MemoryPlan), the
// runtime asks PreCommit what is durable now; still above, it pauses
// fetching of every partition the task owns, and keeps asking (every
// pausedPollWait) until the task holds half its share or less, then
// resumes. The Kafka client drops what it had buffered for paused
// partitions and fetches them again from the next record to deliver, so a
// pause neither loses nor reorders records. A Put that blocks needs none
// of this: the poll loop waits for it, and the client holds at most its
// fetch share meanwhile.

// pausedPollWait is how long a poll waits while the task's partitions are
// paused: how often the runtime asks PreCommit whether it may resume.
const pausedPollWait = 100 * time.Millisecond

// stalledAfter is how long a pause lasts without the task releasing
// anything before the runtime says so in the log.
const stalledAfter = 30 * time.Second

// putSpan is the records of one Put for one partition: the offset after
// the last of them and their bytes.
type putSpan struct{ end, bytes int64 }

// backPressure is a sink run's account of what its task holds.
type backPressure struct {
	share    int64                                // bytes the task may hold
	budget   *connect.MemoryBudget                // the task's, handed to Start
	reporter connect.BufferReporter               // the task, if it reports its memory
	spans    map[connect.TopicPartition][]putSpan // handed to Put, not yet durable
	pending  int64                                // bytes in spans
	paused   bool                                 // fetching of owned partitions paused
	since    time.Time                            // when paused, or when last seen releasing
	lastHeld int64                                // held at since
	warned   bool                                 // the stall was logged
}

// initBackPressure sizes the run's share and its budget; called before Start.
func (r *sinkRun) initBackPressure() {
	m := r.w.memory()
	share := r.w.taskShare(m.plan.SinkBuffers)
	r.bp = &backPressure{share: share, budget: m.root.Share(share), spans: map[connect.TopicPartition][]putSpan{}}
	if rep, ok := r.task.(connect.BufferReporter); ok {
		r.bp.reporter = rep
	}
}

// held is what the task holds now.
func (b *backPressure) held() int64 {
	if b.reporter != nil {
		return b.reporter.BufferedBytes()
	}
	return b.pending
}

// bpPut counts the records the task accepted in Put. Called with mu held.
func (r *sinkRun) bpPut(batch []connect.Record) {
	if r.bp == nil {
		return
	}
	var last connect.TopicPartition
	var span *putSpan
	for i := range batch {
		rec := &batch[i]
		tp := rec.OriginalTopicPartition()
		n := int64(len(rec.RawKey) + len(rec.RawValue))
		for _, h := range rec.Headers {
			n += int64(len(h.Key) + len(h.Value))
		}
		if span == nil || tp != last {
			spans := r.bp.spans[tp]
			if k := len(spans); k > 0 && spans[k-1].end > rec.Offset {
				// Redelivered from earlier: what followed is not held twice.
				r.bpDrop(tp)
				spans = nil
			}
			r.bp.spans[tp] = append(spans, putSpan{})
			span, last = &r.bp.spans[tp][len(r.bp.spans[tp])-1], tp
		}
		span.end = rec.Offset + 1
		span.bytes += n
		r.bp.pending += n
	}
}

// bpSettle forgets what the task reported durable on tp, up to off.
// Called with mu held.
func (r *sinkRun) bpSettle(tp connect.TopicPartition, off int64) {
	if r.bp == nil {
		return
	}
	spans := r.bp.spans[tp]
	i := 0
	for ; i < len(spans) && spans[i].end <= off; i++ {
		r.bp.pending -= spans[i].bytes
	}
	if i == len(spans) {
		delete(r.bp.spans, tp)
	} else if i > 0 {
		r.bp.spans[tp] = append(spans[:0:0], spans[i:]...)
	}
}

// bpDrop forgets a partition's records (closed, or redelivered).
func (r *sinkRun) bpDrop(tps ...connect.TopicPartition) {
	if r.bp == nil {
		return
	}
	for _, tp := range tps {
		for _, s := range r.bp.spans[tp] {
			r.bp.pending -= s.bytes
		}
		delete(r.bp.spans, tp)
	}
}

// bpCheck pauses or resumes fetching after a Put. Called from the poll
// loop with mu held and rebalances blocked.
func (r *sinkRun) bpCheck(ctx context.Context) {
	b := r.bp
	if b == nil || r.failed != nil {
		return
	}
	held := b.held()
	if !b.paused && held <= b.share {
		r.notePeak(held)
		return
	}
	if held > b.share || b.paused {
		// Learn what became durable since the last commit.
		if err := r.commitDurable(ctx, nil); err != nil {
			r.log.Warn().Str("error", r.w.redact.Redact(err.Error())).Msg("commit under memory pressure")
		}
		held = b.held()
	}
	r.notePeak(held)
	switch {
	case !b.paused && held > b.share:
		b.paused, b.since, b.lastHeld, b.warned = true, time.Now(), held, false
		r.cl.PauseFetchPartitions(r.ownedMap())
		r.w.memory().pauses.Add(1)
		r.log.Debug().Int64("held_bytes", held).Int64("share_bytes", b.share).Msg("sink holds more than its share: fetching paused")
	case b.paused && held <= b.share/2:
		b.paused = false
		r.cl.ResumeFetchPartitions(r.cl.PauseFetchPartitions(nil))
		r.log.Debug().Int64("held_bytes", held).Int64("share_bytes", b.share).Dur("paused", time.Since(b.since)).Msg("fetching resumed")
	case b.paused:
		if held < b.lastHeld {
			b.since, b.lastHeld = time.Now(), held
		} else if !b.warned && time.Since(b.since) > stalledAfter {
			b.warned = true
			r.log.Warn().Int64("held_bytes", held).Int64("share_bytes", b.share).Dur("for", time.Since(b.since)).
				Msg("sink task holds more than its memory share and has made nothing durable: fetching stays paused (a sink must make records durable at PreCommit, or account for its memory with connect.BufferReporter and spill)")
		}
	}
}

// bpPaused reports whether fetching is paused, for the poll wait.
func (r *sinkRun) bpPaused() bool { return r.bp != nil && r.bp.paused }

// bpAssigned pauses newly assigned partitions while the task is over its
// share. Called with mu held.
func (r *sinkRun) bpAssigned(tps []connect.TopicPartition) {
	if !r.bpPaused() || len(tps) == 0 {
		return
	}
	m := map[string][]int32{}
	for _, tp := range tps {
		m[tp.Topic] = append(m[tp.Topic], tp.Partition)
	}
	r.cl.PauseFetchPartitions(m)
}

func (r *sinkRun) notePeak(held int64) {
	peak := &r.w.memory().peakHeld
	for {
		p := peak.Load()
		if held <= p || peak.CompareAndSwap(p, held) {
			return
		}
	}
}

// ownedMap returns the owned partitions as kgo wants them.
func (r *sinkRun) ownedMap() map[string][]int32 {
	m := map[string][]int32{}
	for tp := range r.owned {
		m[tp.Topic] = append(m[tp.Topic], tp.Partition)
	}
	return m
}
