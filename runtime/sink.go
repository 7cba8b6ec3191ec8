package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/runtime/convert"
)

// sinkRun is one incarnation of one sink task: a task instance and its own
// consumer-group member. Task calls happen either in the poll loop between a
// poll and AllowRebalance, or in a rebalance callback; BlockRebalanceOnPoll
// keeps the two apart, and mu makes that explicit.
type sinkRun struct {
	w    *Worker
	id   int
	gen  int // the task's incarnation (recovery.go)
	log  zerolog.Logger
	s    *sinkSettings
	task connect.SinkTask
	cl   *kgo.Client

	keyConv, valConv connect.Converter
	hdrConv          connect.Converter
	// The converters' classes, for __connect.errors.class.name.
	keyClass, valClass, hdrClass string
	chain                        connect.Chain // the connector's transforms, this run's own instances
	fail                         context.CancelCauseFunc
	lag                          *atomic.Int64

	mu      sync.Mutex
	owned   map[connect.TopicPartition]*partState // the partitions open in the task
	failed  error                                 // set once the run failed: commit nothing more
	joined  bool
	pending *pendingPut   // a batch Put refused with a retriable error, to redeliver (retry.go)
	held    []*kgo.Record // polled records waiting for the task to be under its memory share (heldStep)

	// Reused from poll to poll (process): the polled records, the batch
	// handed to Put, and the consumed records it stands for.
	polled    []*kgo.Record
	batch     []connect.Record
	delivered []*kgo.Record

	bp    *backPressure // what the task holds, and whether fetching is paused (backpressure.go)
	fetch *fetchSizing  // the Kafka client's fetch sizes within the memory plan (memory.go)

	// The errant record reporter's state (errant.go): the consumed records
	// of the batch being put, and the failure of a record reported under
	// errors.tolerance=none.
	putting      []*kgo.Record
	reportFailed error

	// Lag (lag.go): when it was last computed, and when the partitions the
	// fetches say nothing of were last looked up.
	lagAt      time.Time
	lagChecked time.Time
}

// partState is what a run keeps of a partition it owns, from Open to
// Close. An offset of -1 means none yet.
type partState struct {
	pos       kgo.EpochOffset // offset after the last record delivered (or skipped), and that record's leader epoch
	lastPut   int64           // offset after the last record handed to Put
	committed int64           // last offset this run committed
	hw        int64           // high watermark from the last fetch (or listed for lag)
	first     int64           // the first offset delivered, or where the run starts reading (lag.go)
	errant    []int64         // offsets the task reported errant and the runtime handled (errant.go)
}

func newPartState() *partState {
	return &partState{pos: kgo.EpochOffset{Epoch: -1, Offset: -1}, lastPut: -1, committed: -1, hw: -1, first: -1}
}

// runSinkTask runs one incarnation of task id until ctx is done (nil) or it
// fails (the error says why, with record coordinates when a record caused it).
func (w *Worker) runSinkTask(ctx context.Context, id int) error {
	// However this incarnation ends, the worker's other tasks stop
	// waiting for it to join.
	defer w.joins.joined(id)
	r, err := w.newSinkRun(id)
	if err != nil {
		return err
	}
	sctx := connect.WithErrantRecordReporter(connect.WithMemoryBudget(ctx, r.bp.budget), errantReporter{r: r})
	if err := w.startTask(sctx, r.log, id, r.task); err != nil {
		return err
	}
	defer func() {
		if err := r.task.Stop(); err != nil {
			r.log.Warn().Str("error", w.redact.Redact(err.Error())).Msg("stop task")
		}
	}()
	return r.run(ctx)
}

// newSinkRun builds incarnation w.incarnation(id) of sink task id: its
// converters, transforms, task instance and memory share.
func (w *Worker) newSinkRun(id int) (*sinkRun, error) {
	keyConv, err := convert.FromConfig(w.spec.Config, w.spec.WorkerProperties, true)
	if err != nil {
		return nil, fmt.Errorf("key converter: %w", err)
	}
	valConv, err := convert.FromConfig(w.spec.Config, w.spec.WorkerProperties, false)
	if err != nil {
		return nil, fmt.Errorf("value converter: %w", err)
	}
	hdrConv, err := convert.HeaderFromConfig(w.spec.Config, w.spec.WorkerProperties)
	if err != nil {
		return nil, fmt.Errorf("header converter: %w", err)
	}
	chain, err := w.opts.Registry.BuildChain(w.spec.Config)
	if err != nil {
		return nil, fmt.Errorf("transforms: %w", err)
	}
	lag, _ := w.lag.Load(id)
	r := &sinkRun{
		w: w, id: id, gen: w.incarnation(id), log: w.log.With().Int("task", id).Logger(), s: w.sink,
		task:    w.plugin.NewSinkTask(),
		keyConv: keyConv, valConv: valConv, hdrConv: hdrConv,
		keyClass: convert.ClassFromConfig(w.spec.Config, w.spec.WorkerProperties, true),
		valClass: convert.ClassFromConfig(w.spec.Config, w.spec.WorkerProperties, false),
		hdrClass: convert.HeaderClassFromConfig(w.spec.Config, w.spec.WorkerProperties),
		chain:    chain,
		lag:      lag.(*atomic.Int64),
		owned:    map[connect.TopicPartition]*partState{},
	}
	r.initBackPressure()
	return r, nil
}

func (r *sinkRun) clientOpts() []kgo.Opt {
	s := r.s
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.seeds...),
		kgo.ClientID(fmt.Sprintf("connector-consumer-%s-%d", r.w.spec.Connector, r.id)),
		kgo.ConsumerGroup(s.group),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.WithLogger(kgoLogger{log: r.log}),
	}
	if s.regex != "" {
		// Anchored: Kafka matches topics.regex against whole topic names,
		// kgo anywhere in a name.
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(connect.AnchoredTopicsRegex(s.regex)))
	} else {
		opts = append(opts, kgo.ConsumeTopics(s.topics...))
	}
	opts = append(opts, r.fetchOpts()...)
	return append(opts, s.kafkaOpts...)
}

func (r *sinkRun) run(ctx context.Context) error {
	actx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	r.fail = fail
	cl, err := kgo.NewClient(r.clientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	r.cl = cl
	if r.s.dlqTopic != "" {
		r.ensureDLQ(actx)
	}

	loopErr := r.loop(actx)
	graceful := loopErr == nil && ctx.Err() != nil
	if !graceful && loopErr == nil {
		loopErr = context.Cause(actx)
	}

	r.mu.Lock()
	if graceful && r.failed == nil {
		// Between polls, rebalances are blocked: commit what is durable.
		octx, cancel := context.WithTimeout(context.Background(), opTimeout)
		if err := r.commitDurable(octx, nil); err != nil {
			r.log.Warn().Str("error", r.w.redact.Redact(err.Error())).Msg("final commit")
		}
		cancel()
	} else if r.failed == nil {
		r.failed = loopErr
	}
	r.mu.Unlock()

	// Leaving the group revokes every partition; onRevoked commits (unless
	// the run failed) and closes them in the task.
	cl.AllowRebalance()
	cl.Close()

	r.mu.Lock()
	if rest := r.ownedLocked(nil); len(rest) > 0 {
		r.closePartitions(rest)
	}
	r.mu.Unlock()
	r.lag.Store(0)
	if graceful {
		return nil
	}
	return loopErr
}

// loop polls, converts, puts and commits until actx is done (nil) or a
// record or the task fails.
func (r *sinkRun) loop(actx context.Context) error {
	r.w.joins.wait(actx, r.id, joinGateWait)
	if actx.Err() != nil {
		return nil
	}
	next := time.Now().Add(r.s.flush)
	for {
		if r.hasPending() {
			// Nothing newer is polled until the refused batch is taken.
			if err := r.redeliverStep(actx, &next); err != nil || actx.Err() != nil {
				return err
			}
			continue
		}
		if r.hasHeld() {
			// Nor until the records held for back-pressure are.
			if err := r.heldStep(actx, &next); err != nil || actx.Err() != nil {
				return err
			}
			continue
		}
		// Wake at least every second so the task's Put (with no records)
		// can do time-based work on quiet partitions.
		wake := time.Now().Add(maxPollWait)
		if next.Before(wake) {
			wake = next
		}
		if r.bpPaused() {
			wake = time.Now().Add(pausedPollWait)
		}
		// Everything the client has buffered is taken at once (-1): the
		// client fetches from a broker again only once that broker's
		// buffered fetch is drained, so taking it whole lets the next fetch
		// travel while the task works on this one. process hands it to the
		// task max.poll.records at a time, all before AllowRebalance, so no
		// record polled before a rebalance reaches the task after it.
		pctx, cancel := context.WithDeadline(actx, wake)
		fetches := r.cl.PollRecords(pctx, -1)
		cancel()
		if actx.Err() != nil {
			return nil // run tells shutdown from failure
		}
		if fetches.IsClientClosed() {
			return errors.New("kafka client closed")
		}
		fetchErrs := 0
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			fetchErrs++
			r.log.Warn().Err(fe.Err).Str("topic", fe.Topic).Int32("partition", fe.Partition).Msg("fetch")
		}
		// Errors only: the client retries by itself; do not spin on them.
		pause := fetchErrs > 0 && fetches.NumRecords() == 0
		r.mu.Lock()
		err := r.process(actx, fetches)
		if err == nil && actx.Err() == nil {
			r.fetch.retune(r.cl)
		}
		if err := r.endTurn(actx, err, &next); err != nil {
			return err
		}
		if pause {
			select {
			case <-actx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// process converts the polled records and puts them into the task.
func (r *sinkRun) process(ctx context.Context, fetches kgo.Fetches) error {
	recs := r.polled[:0]
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if ps := r.owned[connect.TopicPartition{Topic: p.Topic, Partition: p.Partition}]; ps != nil {
			ps.hw = p.HighWatermark
		}
		recs = append(recs, p.Records...)
	})
	err := r.putRecords(ctx, recs)
	clear(recs)
	r.polled = recs[:0]
	return err
}

// putRecords hands recs to the task max.poll.records at a time, as Kafka
// Connect hands it each poll's records. When the task refuses a batch with
// a retriable error, the records after it wait with it (pendingPut.rest)
// and follow it once it is accepted.
//
// Put is called even with no records (time-based work on quiet
// partitions), and after every batch the task's memory is weighed
// (bpCheck): over its share, the rest waits until it is back under it.
func (r *sinkRun) putRecords(ctx context.Context, recs []*kgo.Record) error {
	for first := true; first || len(recs) > 0; first = false {
		n := min(len(recs), r.s.maxPollRecords)
		if err := r.putBatch(ctx, recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
		if r.pending != nil {
			r.pending.rest = append([]*kgo.Record(nil), recs...) // recs is reused by the next poll
			return nil
		}
		if ctx.Err() != nil {
			return nil // shutting down: the rest is simply not delivered
		}
		r.bpCheck(ctx)
		if r.bpPaused() && len(recs) > 0 {
			// The rest waits as the client's buffered records would
			// (heldStep), and leaves with its partition if it is let go.
			r.held = append([]*kgo.Record(nil), recs...)
			return nil
		}
	}
	return nil
}

// heldStep is one turn of the poll loop while records wait for the task to
// be back under its memory share: it hands them over once it is, and
// meanwhile puts empty batches (time-based work goes on) and commits what
// is durable when the flush interval has passed.
func (r *sinkRun) heldStep(actx context.Context, next *time.Time) error {
	r.mu.Lock()
	r.bpCheck(actx)
	var err error
	waiting := r.bpPaused()
	if waiting {
		err = r.putRecords(actx, nil)
	} else {
		held := r.held
		r.held = nil
		err = r.putRecords(actx, held)
	}
	if err := r.endTurn(actx, err, next); err != nil {
		return err
	}
	if waiting {
		select {
		case <-actx.Done():
		case <-time.After(pausedPollWait):
		}
	}
	return nil
}

// endTurn ends a turn of the poll loop that put records (err: how that
// went): it commits what is durable when the flush interval has passed,
// notes a failure, releases mu (held by the caller) and lets a rebalance
// in.
func (r *sinkRun) endTurn(actx context.Context, err error, next *time.Time) error {
	if err == nil && actx.Err() == nil {
		if !time.Now().Before(*next) {
			if cerr := r.commitDurable(actx, nil); cerr != nil {
				r.log.Warn().Str("error", r.w.redact.Redact(cerr.Error())).Msg("commit")
			}
			*next = time.Now().Add(r.s.flush)
		}
		r.updateLag(actx)
	}
	if err != nil {
		r.failed = err
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.cl.AllowRebalance()
	return nil
}

// hasHeld reports whether polled records wait for the task's memory share.
func (r *sinkRun) hasHeld() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.held) > 0
}

// putBatch converts recs (at most max.poll.records) and puts them into the
// task.
func (r *sinkRun) putBatch(ctx context.Context, recs []*kgo.Record) error {
	// The slices are reused from batch to batch (a task keeps records, not
	// the slice it was handed; connect.SinkTask.Put), unless a refused
	// batch keeps them for redelivery (deferPut).
	batch := r.batch[:0]
	delivered := r.delivered[:0]
	var recordsIn, bytesIn int64
	var lastTP connect.TopicPartition // no topic is named ""
	var ps *partState
	for _, kr := range recs {
		// A partition's state is looked up once per run of its records.
		if tp := (connect.TopicPartition{Topic: kr.Topic, Partition: kr.Partition}); tp != lastTP {
			lastTP, ps = tp, r.owned[tp]
			if ps != nil && ps.first < 0 {
				ps.first = kr.Offset
			}
		}
		if ps == nil {
			continue // not ours (any more): its owner reads it from the last commit
		}
		recordsIn++
		bytesIn += int64(len(kr.Key) + len(kr.Value))
		batch = append(batch, connect.Record{})
		keep, err := r.convertAndTransform(ctx, kr, &batch[len(batch)-1])
		if !keep {
			batch = batch[:len(batch)-1]
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutting down while retrying: nothing of the batch is delivered
			}
			f := &failedRecord{kr: kr, stage: stageValueConverter, class: r.valClass, cause: err}
			var se *stageError
			var te *connect.TransformError
			switch {
			case errors.As(err, &te):
				f.stage, f.class = stageTransformation, te.Class
			case errors.As(err, &se):
				f.stage, f.class = se.stage, se.class
			}
			if err := r.failRecord(ctx, f); err != nil {
				return failedAt(err, failPoint{{Topic: kr.Topic, Partition: kr.Partition}: kr.Offset})
			}
		}
		// Dropped by a transform or skipped: consumed, not delivered.
		delivered = append(delivered, kr)
	}
	r.w.recordsIn.Add(recordsIn)
	r.w.bytesIn.Add(bytesIn)
	if err := r.putTask(ctx, batch, delivered); err != nil {
		if ctx.Err() != nil && r.reportFailed == nil {
			return nil // shutting down: the batch is simply not delivered
		}
		if connect.IsRetriable(err) && r.reportFailed == nil {
			r.deferPut(batch, delivered, err)
			r.batch, r.delivered = nil, nil // kept for redelivery
			return nil
		}
		return failedAt(fmt.Errorf("put %d records: %w", len(batch), err), batchPoint(delivered))
	}
	r.afterPut(batch, delivered)
	// Nothing of this batch stays reachable from here (a record's value
	// holds on to its whole fetch).
	clear(batch)
	clear(delivered)
	r.batch, r.delivered = batch[:0], delivered[:0]
	return nil
}

// afterPut records what the task accepted: metrics, and the positions that
// may be committed once the task says they are durable.
func (r *sinkRun) afterPut(batch []connect.Record, delivered []*kgo.Record) {
	var bytesOut int64
	for _, rec := range batch {
		bytesOut += int64(len(rec.RawKey) + len(rec.RawValue))
	}
	r.w.recordsOut.Add(int64(len(batch)))
	r.w.bytesOut.Add(bytesOut)
	r.bpPut(batch)
	// A partition's records come in runs, in offset order: only each run's
	// last record moves the partition's positions.
	for i := range batch {
		tp := batch[i].OriginalTopicPartition()
		if i+1 < len(batch) && batch[i+1].OriginalTopicPartition() == tp {
			continue
		}
		if ps := r.owned[tp]; ps != nil {
			ps.lastPut = batch[i].Offset + 1
		}
	}
	for i, kr := range delivered {
		if i+1 < len(delivered) && delivered[i+1].Partition == kr.Partition && delivered[i+1].Topic == kr.Topic {
			continue
		}
		if ps := r.owned[connect.TopicPartition{Topic: kr.Topic, Partition: kr.Partition}]; ps != nil {
			ps.pos = kgo.EpochOffset{Epoch: kr.LeaderEpoch, Offset: kr.Offset + 1}
		}
	}
}

// convert converts kr into dst, every field of which it sets.
func (r *sinkRun) convert(kr *kgo.Record, dst *connect.Record) error {
	*dst = connect.Record{
		Topic:     kr.Topic,
		Partition: kr.Partition,
		Offset:    kr.Offset,
		Timestamp: kr.Timestamp,
		RawKey:    kr.Key,
		RawValue:  kr.Value,

		OriginalTopic:     kr.Topic,
		OriginalPartition: kr.Partition,
	}
	if len(kr.Headers) > 0 {
		dst.Headers = make([]connect.Header, len(kr.Headers))
		for i, h := range kr.Headers {
			dst.Headers[i] = connect.Header{Key: h.Key, Value: h.Value}
		}
	}
	var err error
	if dst.KeySchema, dst.Key, err = toSchemaAndValue(r.keyConv, kr.Topic, kr.Key); err != nil {
		return &stageError{stage: stageKeyConverter, class: r.keyClass, err: fmt.Errorf("key: %w", err)}
	}
	if dst.ValueSchema, dst.Value, err = toSchemaAndValue(r.valConv, kr.Topic, kr.Value); err != nil {
		return &stageError{stage: stageValueConverter, class: r.valClass, err: fmt.Errorf("value: %w", err)}
	}
	for i, h := range dst.Headers {
		if dst.Headers[i].Data, err = r.hdrConv.ToValue(kr.Topic, h.Value); err != nil {
			return &stageError{stage: stageHeaderConverter, class: r.hdrClass, err: fmt.Errorf("header %q: %w", h.Key, err)}
		}
	}
	return nil
}

// batchPoint is where a batch Put refused failed: the first record of
// each of its partitions.
func batchPoint(delivered []*kgo.Record) failPoint {
	p := failPoint{}
	for _, kr := range delivered {
		tp := connect.TopicPartition{Topic: kr.Topic, Partition: kr.Partition}
		if off, ok := p[tp]; !ok || kr.Offset < off {
			p[tp] = kr.Offset
		}
	}
	return p
}

// toSchemaAndValue converts data with c, with its Connect schema when c
// reads schemas (JsonConverter with schemas.enable=true).
func toSchemaAndValue(c connect.Converter, topic string, data []byte) (*connect.Schema, any, error) {
	if sc, ok := c.(connect.SchemaConverter); ok {
		return sc.ToSchemaAndValue(topic, data)
	}
	v, err := c.ToValue(topic, data)
	return nil, v, err
}

// stageError is a record failure with the Kafka Connect stage it happened
// in (KEY_CONVERTER, VALUE_CONVERTER, HEADER_CONVERTER, TRANSFORMATION) and
// the class that failed (the converter's; a transform's is in its
// connect.TransformError).
type stageError struct {
	stage string
	class string
	err   error
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// transform runs rec through the connector's transforms. A nil record means
// a transform dropped it. What a transform replaced (key, value, headers
// it set) is encoded again with the converters, so the raw bytes a task
// sees match the values.
func (r *sinkRun) transform(rec *connect.Record) (*connect.Record, error) {
	if len(r.chain) == 0 {
		return rec, nil
	}
	out, err := r.chain.Apply(rec)
	if err != nil {
		return nil, &stageError{stage: stageTransformation, err: err}
	}
	if out == nil {
		return nil, nil
	}
	// A value with a schema is encoded with it (the transforms keep the
	// schema in step with the value), as Kafka Connect's converters would.
	if out.RawKey == nil && (out.Key != nil || out.KeySchema != nil) {
		if out.RawKey, err = fromValue(r.keyConv, out.Topic, out.KeySchema, out.Key); err != nil {
			return nil, &stageError{stage: stageTransformation, class: r.keyClass, err: fmt.Errorf("encode transformed key: %w", err)}
		}
	}
	if out.RawValue == nil && (out.Value != nil || out.ValueSchema != nil) {
		if out.RawValue, err = fromValue(r.valConv, out.Topic, out.ValueSchema, out.Value); err != nil {
			return nil, &stageError{stage: stageTransformation, class: r.valClass, err: fmt.Errorf("encode transformed value: %w", err)}
		}
	}
	for i, h := range out.Headers {
		if h.Value == nil && h.Data != nil {
			if out.Headers[i].Value, err = r.hdrConv.FromValue(out.Topic, h.Data); err != nil {
				return nil, &stageError{stage: stageTransformation, class: r.hdrClass, err: fmt.Errorf("encode header %q: %w", h.Key, err)}
			}
		}
	}
	return out, nil
}

// ensureDLQ creates the dead letter queue topic if it does not exist.
func (r *sinkRun) ensureDLQ(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := kadm.NewClient(r.cl).CreateTopic(cctx, 1, int16(r.s.dlqRF), nil, r.s.dlqTopic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		r.log.Warn().Err(err).Str("topic", r.s.dlqTopic).Msg("create dead letter queue topic")
	}
}

// commitDurable asks the task what is durable among the partitions in scope
// (nil: every owned partition) and commits exactly that. Called with mu held
// and rebalances blocked.
func (r *sinkRun) commitDurable(ctx context.Context, scope []connect.TopicPartition) error {
	if r.failed != nil {
		return nil
	}
	current := map[connect.TopicPartition]int64{}
	for _, tp := range r.ownedLocked(scope) {
		if p := r.owned[tp].pos.Offset; p >= 0 {
			current[tp] = p
		}
	}
	if len(current) == 0 {
		return nil
	}
	reported, err := r.task.PreCommit(ctx, current)
	if err != nil {
		return fmt.Errorf("pre-commit: %w", err)
	}
	// Records the runtime consumed without handing them to the task
	// (dropped by a transform, dead-lettered) are committed as soon as
	// everything the task was handed is durable; otherwise a partition
	// whose last records were filtered would never commit past them.
	durable := make(map[connect.TopicPartition]int64, len(current))
	for tp, off := range reported {
		durable[tp] = off
	}
	for tp, p := range current {
		ps := r.owned[tp]
		lp, put := ps.lastPut, ps.lastPut >= 0
		d, ok := durable[tp]
		if ok {
			d = ps.skipErrant(d, p)
			durable[tp] = d
		}
		if (!put && !ok) || (put && ok && d >= lp && d <= p) {
			durable[tp] = p
		}
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	commit := map[connect.TopicPartition]int64{}
	for tp, off := range durable {
		p, ok := current[tp]
		switch {
		case !ok:
			r.log.Warn().Str("topic", tp.Topic).Int32("partition", tp.Partition).Msg("task reported an offset for a partition it was not asked about; ignored")
			continue
		case off > p || off < 0:
			r.log.Warn().Str("topic", tp.Topic).Int32("partition", tp.Partition).Int64("offset", off).Int64("delivered", p).Msg("task reported an offset beyond what it was given; ignored")
			continue
		}
		r.bpSettle(tp, off)
		ps := r.owned[tp]
		if off <= ps.committed {
			continue
		}
		if offsets[tp.Topic] == nil {
			offsets[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		epoch := int32(-1)
		if off == p {
			epoch = ps.pos.Epoch
		}
		offsets[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: epoch, Offset: off}
		commit[tp] = off
	}
	if len(offsets) == 0 {
		return nil
	}
	var cerr error
	failedTP := map[connect.TopicPartition]bool{}
	r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					cerr = fmt.Errorf("%s-%d: %w", t.Topic, p.Partition, err)
					failedTP[connect.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = true
				}
			}
		}
	})
	if cerr != nil && len(failedTP) == 0 {
		return fmt.Errorf("commit offsets: %w", cerr)
	}
	for tp, off := range commit {
		if !failedTP[tp] {
			r.owned[tp].committed = off
			r.log.Debug().Str("topic", tp.Topic).Int32("partition", tp.Partition).Int64("offset", off).Msg("committed")
		}
	}
	r.w.committedPast(r.id, r.gen, r.committedAt)
	if cerr != nil {
		return fmt.Errorf("commit offsets: %w", cerr)
	}
	return nil
}

// committedAt returns the last offset this run committed on tp, -1 if none.
func (r *sinkRun) committedAt(tp connect.TopicPartition) int64 {
	if ps := r.owned[tp]; ps != nil {
		return ps.committed
	}
	return -1
}

// ownedLocked returns the owned partitions among scope (nil: all owned).
func (r *sinkRun) ownedLocked(scope []connect.TopicPartition) []connect.TopicPartition {
	var out []connect.TopicPartition
	if scope == nil {
		for tp := range r.owned {
			out = append(out, tp)
		}
		return out
	}
	for _, tp := range scope {
		if r.owned[tp] != nil {
			out = append(out, tp)
		}
	}
	return out
}

// closePartitions tells the task it no longer owns tps and forgets them.
func (r *sinkRun) closePartitions(tps []connect.TopicPartition) {
	octx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := r.task.Close(octx, tps); err != nil {
		r.log.Warn().Str("error", r.w.redact.Redact(err.Error())).Msg("close partitions")
	}
	r.dropPending(tps)
	r.bpDrop(tps...)
	for _, tp := range tps {
		delete(r.owned, tp)
	}
}

func toTPs(m map[string][]int32) []connect.TopicPartition {
	var out []connect.TopicPartition
	for t, ps := range m {
		for _, p := range ps {
			out = append(out, connect.TopicPartition{Topic: t, Partition: p})
		}
	}
	return out
}

// onAssigned opens newly assigned partitions in the task. Its first call
// means the member joined the group, even with nothing assigned.
func (r *sinkRun) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tps := toTPs(m)
	var fresh []connect.TopicPartition
	for _, tp := range tps {
		if r.owned[tp] == nil {
			fresh = append(fresh, tp)
		}
	}
	if r.failed != nil || len(fresh) == 0 {
		fresh = nil // a failed run opens nothing more; it is shutting down
	} else {
		octx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := r.task.Open(octx, fresh)
		cancel()
		if err != nil {
			r.failed = fmt.Errorf("open partitions: %w", err)
			r.fail(r.failed)
			fresh = nil
		}
	}
	for _, tp := range fresh {
		r.owned[tp] = newPartState()
	}
	r.bpAssigned(fresh)
	r.log.Info().Int("assigned", len(fresh)).Int("owned", len(r.owned)).Msg("partitions assigned")
	if !r.joined && r.failed == nil {
		r.joined = true
		r.w.taskStarted(r.id, r.gen)
	}
	r.w.joins.joined(r.id)
}

// onRevoked commits what is durable for the revoked partitions, then closes
// them in the task.
func (r *sinkRun) onRevoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	tps := toTPs(m)
	if len(tps) == 0 {
		return // kgo calls revoke at the end of every cooperative session, often with nothing
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tps = r.ownedLocked(tps)
	if len(tps) == 0 {
		return
	}
	octx, cancel := context.WithTimeout(context.Background(), opTimeout)
	if err := r.commitDurable(octx, tps); err != nil {
		r.log.Warn().Str("error", r.w.redact.Redact(err.Error())).Msg("commit on revoke")
	}
	cancel()
	r.closePartitions(tps)
	r.log.Info().Int("revoked", len(tps)).Int("owned", len(r.owned)).Msg("partitions revoked")
}

// onLost closes lost partitions without committing: another member may own
// them already.
func (r *sinkRun) onLost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	tps := toTPs(m)
	if len(tps) == 0 {
		return // kgo calls revoke at the end of every cooperative session, often with nothing
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tps = r.ownedLocked(tps)
	if len(tps) == 0 {
		return
	}
	r.closePartitions(tps)
	r.log.Warn().Int("lost", len(tps)).Msg("partitions lost")
}
