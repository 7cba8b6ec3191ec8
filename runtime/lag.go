package runtime

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Lag. A sink task's lag is, over every partition it owns, the high
// watermark less the committed offset: records delivered but not yet
// durable are lag until they are committed, as a consumer group's lag is
// measured. A partition this run has not committed counts from the
// group's committed offset it started at, else from the first offset it
// read, else (nothing read yet) from where auto.offset.reset starts it
// (the log start, or its end). The high watermark
// comes with every fetch; for a partition the fetches have said nothing of
// (nothing to read, or paused) the run asks the broker, at most every
// lagLookupEvery.

// lagLookupEvery bounds how often a run lists offsets for lag, and
// lagEvery how often it recomputes it (metrics go out every few seconds;
// the poll loop may turn thousands of times a second).
const (
	lagLookupEvery = 5 * time.Second
	lagEvery       = 250 * time.Millisecond
)

// updateLag recomputes the run's lag, at most every lagEvery. Called from
// the poll loop with mu held.
func (r *sinkRun) updateLag(ctx context.Context) {
	if time.Since(r.lagAt) < lagEvery {
		return
	}
	r.lagAt = time.Now()
	// The client's committed offsets are those fetched when the group was
	// joined, then this run's own.
	groupCommitted := r.cl.CommittedOffsets()
	base := func(tp connect.TopicPartition, ps *partState) (int64, bool) {
		if ps.committed >= 0 {
			return ps.committed, true
		}
		if eo, ok := groupCommitted[tp.Topic][tp.Partition]; ok && eo.Offset >= 0 {
			return eo.Offset, true
		}
		return ps.first, ps.first >= 0
	}
	var unknown []connect.TopicPartition
	var lag int64
	for tp, ps := range r.owned {
		b, ok := base(tp, ps)
		if ps.hw < 0 || !ok {
			unknown = append(unknown, tp)
			continue
		}
		if ps.hw > b {
			lag += ps.hw - b
		}
	}
	if len(unknown) > 0 && time.Since(r.lagChecked) >= lagLookupEvery {
		r.lagChecked = time.Now()
		lag += r.lookupLag(ctx, unknown, base)
	}
	r.lag.Store(lag)
}

// lookupLag lists the start and end offsets of partitions the fetches have
// said nothing of, keeps them, and returns their lag.
func (r *sinkRun) lookupLag(ctx context.Context, tps []connect.TopicPartition, base func(connect.TopicPartition, *partState) (int64, bool)) int64 {
	topics := map[string]bool{}
	for _, tp := range tps {
		topics[tp.Topic] = true
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	adm := kadm.NewClient(r.cl)
	ends, err := adm.ListEndOffsets(lctx, names...)
	if err != nil {
		r.log.Debug().Err(err).Msg("list end offsets for lag")
		return 0
	}
	starts, err := adm.ListStartOffsets(lctx, names...)
	if err != nil {
		r.log.Debug().Err(err).Msg("list start offsets for lag")
		return 0
	}
	var lag int64
	for _, tp := range tps {
		end, ok := ends.Lookup(tp.Topic, tp.Partition)
		if !ok || end.Err != nil {
			continue
		}
		ps := r.owned[tp]
		if ps.hw < 0 {
			ps.hw = end.Offset
		}
		b, ok := base(tp, ps)
		if !ok {
			// Nothing committed, nothing read: the run starts where
			// auto.offset.reset puts it, and will read from there.
			start, ok := starts.Lookup(tp.Topic, tp.Partition)
			if !ok || start.Err != nil {
				continue
			}
			b = start.Offset
			if r.s.resetLatest {
				b = end.Offset
			}
			ps.first = b
		}
		if ps.hw > b {
			lag += ps.hw - b
		}
	}
	return lag
}
