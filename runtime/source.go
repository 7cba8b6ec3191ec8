package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/runtime/convert"
)

// sourceSettings is what the source engine reads from the connector
// configuration and the worker properties, parsed once.
type sourceSettings struct {
	seeds        []string
	offsetsTopic string
	flush        time.Duration
	errorSettings
	kafkaOpts []kgo.Opt // security

	bufferMemory    int64 // producer.buffer.memory, 0 unset (memory.go)
	maxRequestBytes int64 // producer.max.request.size
}

// OffsetsTopic is the default compacted topic a source connector's offsets
// are stored in when neither the connector nor the worker names one.
func OffsetsTopic(connector string) string { return "connect-offsets-" + connector }

func parseSourceSettings(spec *jobs.WorkerSpec) (*sourceSettings, error) {
	s := &sourceSettings{
		seeds:        connect.SplitList(spec.BootstrapServers),
		offsetsTopic: OffsetsTopic(spec.Connector),
	}
	var problems []string
	if len(s.seeds) == 0 {
		problems = append(problems, "bootstrapServers: is required")
	}
	// The connector's offsets.storage.topic (Kafka Connect's, KIP-618),
	// else offset.storage.topic from the connector or the worker.
	if v := strings.TrimSpace(spec.Config[connect.KeyOffsetsStorageTopic]); v != "" {
		s.offsetsTopic = v
	} else if v, ok := lookup(spec, connect.KeyOffsetStorageTopic); ok {
		s.offsetsTopic = v
	}
	s.flush, s.errorSettings = parseCommon(spec, func(key, format string, args ...any) {
		problems = append(problems, key+": "+fmt.Sprintf(format, args...))
	})
	// The overrides check and apply these (overrides.go); the memory plan
	// needs their values too.
	s.maxRequestBytes = defaultMaxRequestBytes
	if v, ok := producerProp(spec, "max.request.size"); ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n > 0 {
			s.maxRequestBytes = n
		}
	}
	if v, ok := producerProp(spec, "buffer.memory"); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			s.bufferMemory = n
		}
	}
	sec, err := securityOpts(spec)
	if err != nil {
		problems = append(problems, fmt.Sprintf("security: %v", err))
	}
	s.kafkaOpts = sec
	if len(problems) > 0 {
		return nil, fmt.Errorf("connector %q: %s", spec.Connector, strings.Join(problems, "; "))
	}
	return s, nil
}

// runTask runs one incarnation of task id, sink or source.
func (w *Worker) runTask(ctx context.Context, id int) error {
	if w.plugin.Kind == connect.Source {
		return w.runSourceTask(ctx, id)
	}
	return w.runSinkTask(ctx, id)
}

// offsetKey is the key of a source offset record, as Kafka Connect writes
// it: ["<connector>",{partition}] in JSON (map keys sorted).
func offsetKey(connector string, partition map[string]any) ([]byte, error) {
	if partition == nil {
		partition = map[string]any{}
	}
	return json.Marshal([]any{connector, partition})
}

// partitionID is the canonical JSON of a source partition.
func partitionID(partition map[string]any) string {
	if partition == nil {
		partition = map[string]any{}
	}
	b, err := json.Marshal(partition)
	if err != nil {
		return fmt.Sprintf("%v", partition)
	}
	return string(b)
}

// offsetStore is the connector's source offsets as read from the offsets
// topic at start; it is the task's OffsetStorageReader.
type offsetStore struct {
	mu      sync.Mutex
	offsets map[string]map[string]any // partition JSON → offset
}

var _ connect.OffsetStorageReader = (*offsetStore)(nil)

// Offset returns the stored offset of partition, or nil.
func (o *offsetStore) Offset(partition map[string]any) map[string]any {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.offsets[partitionID(partition)]
}

// Offsets returns the stored offsets of partitions by partition JSON.
func (o *offsetStore) Offsets(partitions []map[string]any) map[string]map[string]any {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]map[string]any{}
	for _, p := range partitions {
		id := partitionID(p)
		if off, ok := o.offsets[id]; ok {
			out[id] = off
		}
	}
	return out
}

type sourceTaskContext struct {
	id     int
	reader connect.OffsetStorageReader
}

var _ connect.SourceTaskContext = (*sourceTaskContext)(nil)

func (c *sourceTaskContext) OffsetStorageReader() connect.OffsetStorageReader { return c.reader }
func (c *sourceTaskContext) TaskID() int                                      { return c.id }

// sourceRun is one incarnation of one source task.
type sourceRun struct {
	w    *Worker
	id   int
	log  zerolog.Logger
	s    *sourceSettings
	task connect.SourceTask
	cl   *kgo.Client

	keyConv, valConv, hdrConv connect.Converter
	chain                     connect.Chain

	// pending holds the latest source offset per source partition of the
	// records produced since the last offset flush. Only the poll loop
	// touches it; it is written out after the producer has flushed, so
	// every record it covers is acknowledged.
	pending map[string]pendingOffset

	// prodCtx is what records are produced with: not ended by a stop, so
	// records already handed over are not aborted, but ended opTimeout
	// after it, so a stop never hangs on an unreachable broker.
	prodCtx context.Context

	errMu   sync.Mutex
	prodErr error // first failed produce
}

type pendingOffset struct {
	partition map[string]any
	offset    map[string]any
}

// runSourceTask runs one incarnation of source task id until ctx is done
// (nil, after flushing records and offsets) or it fails.
func (w *Worker) runSourceTask(ctx context.Context, id int) error {
	log := w.log.With().Int("task", id).Logger()
	r := &sourceRun{w: w, id: id, log: log, s: w.source, pending: map[string]pendingOffset{}}
	var err error
	if r.keyConv, err = convert.FromConfig(w.spec.Config, w.spec.WorkerProperties, true); err != nil {
		return fmt.Errorf("key converter: %w", err)
	}
	if r.valConv, err = convert.FromConfig(w.spec.Config, w.spec.WorkerProperties, false); err != nil {
		return fmt.Errorf("value converter: %w", err)
	}
	if r.hdrConv, err = convert.HeaderFromConfig(w.spec.Config, w.spec.WorkerProperties); err != nil {
		return fmt.Errorf("header converter: %w", err)
	}
	if r.chain, err = w.opts.Registry.BuildChain(w.spec.Config); err != nil {
		return fmt.Errorf("transforms: %w", err)
	}
	r.cl, err = kgo.NewClient(r.clientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer r.cl.Close()
	prodCtx, endProduce := context.WithCancel(context.WithoutCancel(ctx))
	defer endProduce()
	r.prodCtx = prodCtx
	grace := time.AfterFunc(time.Hour, endProduce)
	grace.Stop()
	stopGrace := context.AfterFunc(ctx, func() { grace.Reset(opTimeout) })
	defer func() {
		stopGrace()
		grace.Stop() // a Reset racing with this only cancels prodCtx again
	}()

	octx, cancel := context.WithTimeout(ctx, opTimeout)
	store, err := r.restoreOffsets(octx)
	cancel()
	if err != nil {
		return fmt.Errorf("restore source offsets: %w", err)
	}
	log.Debug().Int("partitions", len(store.offsets)).Str("topic", r.s.offsetsTopic).Msg("source offsets restored")

	r.task = w.plugin.NewSourceTask()
	r.task.Initialize(&sourceTaskContext{id: id, reader: store})
	if err := w.startTask(ctx, log, id, r.task); err != nil {
		return err
	}
	w.taskStarted(id, w.incarnation(id))

	loopErr := r.loop(ctx)
	// Stopping or failed: flush what was produced, then store the offsets
	// of what Kafka acknowledged. After a failure nothing more is stored
	// past the failed record: its offset and later ones stay pending.
	fctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	if err := r.flushOffsets(fctx); err != nil && loopErr == nil && ctx.Err() == nil {
		loopErr = err
	} else if err != nil {
		log.Warn().Str("error", w.redact.Redact(err.Error())).Msg("final offset flush")
	}
	cancel()
	if err := r.task.Stop(); err != nil {
		log.Warn().Str("error", w.redact.Redact(err.Error())).Msg("stop task")
	}
	if loopErr == nil && ctx.Err() == nil {
		loopErr = errors.New("task stopped unexpectedly")
	}
	if ctx.Err() != nil && loopErr != nil && errors.Is(loopErr, context.Canceled) {
		return nil
	}
	return loopErr
}

func (r *sourceRun) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.s.seeds...),
		kgo.ClientID(fmt.Sprintf("connector-producer-%s-%d", r.w.spec.Connector, r.id)),
		// Idempotent (franz-go's default, never disabled here) with all
		// in-sync acks, as Kafka Connect's source producers since 3.0.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(sourcePartitioner{}),
		kgo.WithLogger(kgoLogger{log: r.log}),
	}
	opts = append(opts, r.s.kafkaOpts...)
	// Last, so it wins over buffer.memory's own option: that may only
	// lower the plan's figure.
	return append(opts, kgo.MaxBufferedBytes(int(r.producerBuffer())))
}

// ensureOffsetsTopic creates the offsets topic, compacted, if it is missing.
func ensureOffsetsTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	compact := "compact"
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create offsets topic %q: %w", topic, err)
	}
	return nil
}

// restoreOffsets reads the offsets topic from its start to its end and
// keeps, per source partition of this connector, the last offset written.
func (r *sourceRun) restoreOffsets(ctx context.Context) (*offsetStore, error) {
	adm := kadm.NewClient(r.cl)
	if err := ensureOffsetsTopic(ctx, adm, r.s.offsetsTopic); err != nil {
		return nil, err
	}
	return readOffsets(ctx, r.s.seeds, r.s.kafkaOpts, r.s.offsetsTopic, r.w.spec.Connector)
}

// readOffsets reads a connector's source offsets from topic, from its
// start to the end offset it has when reading begins. The read of a
// partition ends when the fetch position reaches that end: control
// records (a transaction's commit or abort marker) are fetched too, so a
// topic that ends with one is read to its end instead of waiting for a
// data record at end-1 that never comes.
func readOffsets(ctx context.Context, seeds []string, extra []kgo.Opt, topic, connector string) (*offsetStore, error) {
	store := &offsetStore{offsets: map[string]map[string]any{}}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.KeepControlRecords()}, extra...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", topic, err)
	}
	want := map[int32]int64{}
	consume := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			consume[topic][o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return store, nil
	}
	cl.AddConsumePartitions(consume)
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %q: %w", topic, err)
		}
		for _, fe := range fetches.Errors() {
			return nil, fmt.Errorf("read %q partition %d: %w", topic, fe.Partition, fe.Err)
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			if end, ok := want[rec.Partition]; ok && rec.Offset+1 >= end {
				delete(want, rec.Partition)
			}
			if rec.Attrs.IsControl() {
				return // a transaction marker: a position, not an offset
			}
			var key []json.RawMessage
			if json.Unmarshal(rec.Key, &key) != nil || len(key) != 2 {
				return
			}
			var name string
			var part map[string]any
			if json.Unmarshal(key[0], &name) != nil || name != connector || json.Unmarshal(key[1], &part) != nil {
				return
			}
			id := partitionID(part)
			if rec.Value == nil {
				delete(store.offsets, id)
				return
			}
			var off map[string]any
			d := json.NewDecoder(strings.NewReader(string(rec.Value)))
			d.UseNumber()
			if d.Decode(&off) == nil {
				store.offsets[id] = off
			}
		})
	}
	return store, nil
}

// loop polls the task and produces its records until ctx is done or
// something fails, flushing offsets every flush interval.
func (r *sourceRun) loop(ctx context.Context) error {
	next := time.Now().Add(r.s.flush)
	for {
		if err := r.producerErr(); err != nil {
			return err
		}
		if !time.Now().Before(next) {
			if err := r.flushOffsets(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			next = time.Now().Add(r.s.flush)
		}
		pctx, cancel := context.WithDeadline(ctx, next)
		recs, err := r.task.Poll(pctx)
		cancel()
		if ctx.Err() != nil {
			// Records returned with the stop are still produced, as
			// Kafka Connect does with a last batch.
			if err == nil && len(recs) > 0 {
				if perr := r.produce(ctx, recs); perr != nil {
					return perr
				}
			}
			return nil
		}
		if connect.IsRetriable(err) {
			// As Kafka Connect: a retriable poll failure is logged and the
			// task polled again, after a short wait so it does not spin.
			r.log.Warn().Str("error", r.w.redact.Redact(err.Error())).Msg("poll failed with a retriable error; polling again")
			select {
			case <-ctx.Done():
			case <-time.After(retryDelayMin):
			}
			continue
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("poll: %w", err)
		}
		if err := r.produce(ctx, recs); err != nil {
			return err
		}
	}
}

func (r *sourceRun) producerErr() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.prodErr
}

// produce converts and transforms recs and hands them to the producer. A
// record that fails to convert or transform fails the task.
func (r *sourceRun) produce(ctx context.Context, recs []connect.SourceRecord) error {
	if len(recs) == 0 {
		return nil
	}
	r.w.recordsIn.Add(int64(len(recs)))
	for i := range recs {
		sr := &recs[i]
		ts := sr.Timestamp
		var out *connect.SourceRecord
		var kr *kgo.Record
		stage := "transform"
		_, err := r.w.retry.run(ctx, func() error {
			// Transform and convert again from the task's record on every
			// attempt, as Kafka Connect retries each stage in place.
			var err error
			stage, kr = "transform", nil
			if out, err = r.chain.ApplySource(sr, ts); err != nil || out == nil {
				return err
			}
			stage = "convert"
			kr, err = r.toKafka(out)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopping while retrying: the record is not produced, its offset not stored
			}
			if err := r.tolerate(ctx, sr, stage, err); err != nil {
				return err
			}
			continue
		}
		if out == nil { // dropped: acknowledged at once
			r.track(sr)
			if err := r.task.CommitRecord(ctx, sr, nil); err != nil {
				return fmt.Errorf("commit record: %w", err)
			}
			continue
		}
		r.track(sr)
		orig := sr
		// Not ctx: a stop must not abort records already handed over;
		// the final flush waits for them.
		r.cl.Produce(r.prodCtx, kr, func(kr *kgo.Record, err error) {
			if err != nil {
				r.errMu.Lock()
				if r.prodErr == nil {
					r.prodErr = fmt.Errorf("produce to topic %q: %w", kr.Topic, err)
				}
				r.errMu.Unlock()
				return
			}
			r.w.recordsOut.Add(1)
			r.w.bytesOut.Add(int64(len(kr.Key) + len(kr.Value)))
			md := &connect.RecordMetadata{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp}
			if err := r.task.CommitRecord(context.Background(), orig, md); err != nil {
				r.log.Warn().Str("error", r.w.redact.Redact(err.Error())).Msg("commit record")
			}
		})
	}
	return nil
}

// tolerate handles a record that failed to transform or convert: under
// errors.tolerance=none it fails the task, naming the record's source
// position; under all the record is skipped (counted, logged if asked, and
// its offset stored as if produced), as Kafka Connect does.
func (r *sourceRun) tolerate(ctx context.Context, sr *connect.SourceRecord, stage string, cause error) error {
	r.w.errorsTotal.Add(1)
	where := fmt.Sprintf("source partition %s offset %s", partitionID(sr.SourcePartition), partitionID(sr.SourceOffset))
	if r.s.errorsLog {
		// Logged under both tolerances, as Kafka Connect's LogReporter.
		red := r.w.redact.Redact
		ev := r.s.failureEvent(&r.log).Str("error", red(cause.Error())).Str("stage", stage).Str("topic", sr.Topic).
			Str("source_partition", partitionID(sr.SourcePartition)).Str("source_offset", partitionID(sr.SourceOffset))
		if r.s.logMessages {
			ev = ev.Str("key", red(fmt.Sprint(sr.Key))).Str("value", red(fmt.Sprint(sr.Value)))
			hs := zerolog.Dict()
			for _, h := range sr.Headers {
				hv := string(h.Value)
				if h.Value == nil {
					hv = fmt.Sprint(h.Data)
				}
				hs = hs.Str(h.Key, red(hv))
			}
			ev = ev.Dict("headers", hs)
		}
		ev.Msg("source record failed")
	}
	if !r.s.errsAll {
		return fmt.Errorf("%s record for topic %q at %s (errors.tolerance=none): %w", stage, sr.Topic, where, cause)
	}
	r.track(sr)
	if err := r.task.CommitRecord(ctx, sr, nil); err != nil {
		return fmt.Errorf("commit record: %w", err)
	}
	return nil
}

// track notes sr's source offset as the one to store at the next flush.
func (r *sourceRun) track(sr *connect.SourceRecord) {
	if sr.SourcePartition != nil || sr.SourceOffset != nil {
		r.pending[partitionID(sr.SourcePartition)] = pendingOffset{partition: sr.SourcePartition, offset: sr.SourceOffset}
	}
}

// toKafka converts a source record into a Kafka record.
func (r *sourceRun) toKafka(sr *connect.SourceRecord) (*kgo.Record, error) {
	if sr.Topic == "" {
		return nil, errors.New("source record without a topic")
	}
	key, err := fromValue(r.keyConv, sr.Topic, sr.KeySchema, sr.Key)
	if err != nil {
		return nil, fmt.Errorf("convert key for topic %q: %w", sr.Topic, err)
	}
	val, err := fromValue(r.valConv, sr.Topic, sr.ValueSchema, sr.Value)
	if err != nil {
		return nil, fmt.Errorf("convert value for topic %q: %w", sr.Topic, err)
	}
	kr := &kgo.Record{Topic: sr.Topic, Key: key, Value: val, Timestamp: sr.Timestamp}
	if sr.Partition != nil {
		kr.Partition = *sr.Partition
		kr.Context = manualPartition
	}
	for _, h := range sr.Headers {
		hv := h.Value
		if hv == nil && h.Data != nil {
			if hv, err = r.hdrConv.FromValue(sr.Topic, h.Data); err != nil {
				return nil, fmt.Errorf("convert header %q for topic %q: %w", h.Key, sr.Topic, err)
			}
		}
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: hv})
	}
	return kr, nil
}

// fromValue converts v with its schema when it has one and the converter
// writes schemas.
func fromValue(c connect.Converter, topic string, s *connect.Schema, v any) ([]byte, error) {
	if sc, ok := c.(connect.SchemaConverter); ok && s != nil {
		return sc.FromSchemaAndValue(topic, s, v)
	}
	return c.FromValue(topic, v)
}

// manualPartition marks records whose partition the task chose.
var manualPartition = context.WithValue(context.Background(), manualPartitionKey{}, true)

type manualPartitionKey struct{}

// sourcePartitioner honours a partition the task chose, hashes keys as
// Kafka's default partitioner (murmur2), and spreads keyless records round
// robin.
type sourcePartitioner struct{}

func (sourcePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &sourceTopicPartitioner{keyed: kgo.StickyKeyPartitioner(nil).ForTopic(topic)}
}

type sourceTopicPartitioner struct {
	keyed kgo.TopicPartitioner
	next  int
}

func (*sourceTopicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (p *sourceTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Context == manualPartition {
		return int(r.Partition)
	}
	if r.Key != nil {
		return p.keyed.Partition(r, n)
	}
	p.next++
	return p.next % n
}

// flushOffsets waits for every produced record to be acknowledged, then
// writes the pending source offsets to the offsets topic and tells the task.
// Nothing is written if a produce failed.
func (r *sourceRun) flushOffsets(ctx context.Context) error {
	if err := r.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush producer: %w", err)
	}
	if err := r.producerErr(); err != nil {
		return err
	}
	if len(r.pending) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(r.pending))
	for _, p := range r.pending {
		key, err := offsetKey(r.w.spec.Connector, p.partition)
		if err != nil {
			return fmt.Errorf("encode source partition: %w", err)
		}
		var val []byte
		if p.offset != nil {
			if val, err = json.Marshal(p.offset); err != nil {
				return fmt.Errorf("encode source offset: %w", err)
			}
		}
		recs = append(recs, &kgo.Record{Topic: r.s.offsetsTopic, Key: key, Value: val})
	}
	if err := r.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("write source offsets to %q: %w", r.s.offsetsTopic, err)
	}
	clear(r.pending)
	if err := r.task.Commit(ctx); err != nil {
		return fmt.Errorf("commit task: %w", err)
	}
	return nil
}
