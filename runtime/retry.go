package runtime

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// retryDelayMin is the first wait between two attempts, as Kafka Connect's
// RetryWithToleranceOperator.RETRIES_DELAY_MIN_MS; it doubles each retry.
const retryDelayMin = 300 * time.Millisecond

// retryPolicy is errors.retry.timeout and errors.retry.delay.max.ms: how
// long an operation failing with a connect.RetriableError is tried again,
// and the longest wait between two tries.
type retryPolicy struct {
	timeout  time.Duration // 0: never retry; negative: retry forever
	maxDelay time.Duration
}

// parseRetryPolicy reads the retry keys of the connector configuration
// (Kafka Connect reads them from the connector only, never the worker).
func parseRetryPolicy(spec *jobs.WorkerSpec) (retryPolicy, error) {
	p := retryPolicy{
		timeout:  connect.DefaultRetryTimeoutMs * time.Millisecond,
		maxDelay: connect.DefaultRetryMaxDelayMs * time.Millisecond,
	}
	var problems []string
	if v := strings.TrimSpace(spec.Config[connect.KeyErrorsRetryTimeout]); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil || n < -1:
			problems = append(problems, fmt.Sprintf("%s: must be -1 (retry forever), 0 (no retries) or a positive number of milliseconds, got %q", connect.KeyErrorsRetryTimeout, v))
		case n == -1:
			p.timeout = -1
		default:
			p.timeout = time.Duration(n) * time.Millisecond
		}
	}
	if v := strings.TrimSpace(spec.Config[connect.KeyErrorsRetryMaxDelay]); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			problems = append(problems, fmt.Sprintf("%s: must be a positive number of milliseconds, got %q", connect.KeyErrorsRetryMaxDelay, v))
		} else {
			p.maxDelay = time.Duration(n) * time.Millisecond
		}
	}
	if len(problems) > 0 {
		return p, fmt.Errorf("connector %q: %s", spec.Connector, strings.Join(problems, "; "))
	}
	return p, nil
}

// delay is the wait after the attempt-th failure, as Kafka Connect's
// backoff: 300 ms doubled on every retry; once that passes maxDelay, a
// random wait below maxDelay (so many tasks retrying do not move in step).
func (p retryPolicy) delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 32 {
		if d := retryDelayMin << (attempt - 1); d <= p.maxDelay {
			return d
		}
	}
	return rand.N(p.maxDelay)
}

// run calls op until it succeeds, fails with an error that is not
// retriable, or the retry timeout has passed since the first attempt. It
// returns op's last error (annotated with the attempts once it gave up
// retrying) and how many attempts were made. If ctx ends during a wait, the
// error is ctx's.
func (p retryPolicy) run(ctx context.Context, op func() error) (int, error) {
	start := time.Now()
	err := op()
	if err == nil || !connect.IsRetriable(err) {
		return 1, err
	}
	return p.retry(ctx, start, err, op)
}

// retry goes on where run's first attempt, started at start, failed with
// the retriable err: it waits and calls op again until the same ends.
func (p retryPolicy) retry(ctx context.Context, start time.Time, err error, op func() error) (int, error) {
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			err = op()
			if err == nil || !connect.IsRetriable(err) {
				return attempt, err
			}
		}
		elapsed := time.Since(start)
		if p.timeout >= 0 && elapsed >= p.timeout {
			if attempt == 1 {
				return attempt, err // retries are off: the error as it is
			}
			return attempt, fmt.Errorf("retriable error persisted over %d attempts in %v (%s=%d): %w",
				attempt, elapsed.Round(time.Millisecond), connect.KeyErrorsRetryTimeout, p.timeout.Milliseconds(), err)
		}
		d := p.delay(attempt)
		if p.timeout >= 0 {
			d = min(d, p.timeout-elapsed)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, ctx.Err()
		case <-t.C:
		}
	}
}

// convertAndTransform converts a consumed record into dst and runs it
// through the transforms, retrying both under the retry policy while they
// fail with a retriable error (Kafka Connect retries each stage of the same
// record in place; the stages are pure, so running both again from the raw
// record is the same). It reports false when a transform dropped the
// record. The first attempt runs outside the policy: it is every record's
// way, and the policy's clock starts only once it failed (the stages take
// microseconds, so the retry timeout is the same).
func (r *sinkRun) convertAndTransform(ctx context.Context, kr *kgo.Record, dst *connect.Record) (bool, error) {
	keep, err := r.convertOnce(kr, dst)
	if err == nil || !connect.IsRetriable(err) {
		return keep, err
	}
	_, err = r.w.retry.retry(ctx, time.Now(), err, func() error {
		var err error
		keep, err = r.convertOnce(kr, dst)
		return err
	})
	return keep, err
}

// convertOnce is one attempt of convertAndTransform.
func (r *sinkRun) convertOnce(kr *kgo.Record, dst *connect.Record) (bool, error) {
	if err := r.convert(kr, dst); err != nil {
		return false, err
	}
	out, err := r.transform(dst)
	if err != nil || out == nil {
		return false, err
	}
	if out != dst {
		*dst = *out
	}
	return true, nil
}

// pendingPut is a batch a sink task refused with a retriable error: it is
// handed to the task again, as it is, after a backoff, before anything
// newer is polled (Kafka Connect's WorkerSinkTask pauses its partitions and
// redelivers the same batch).
type pendingPut struct {
	batch     []connect.Record
	delivered []*kgo.Record // consumed records the batch stands for (incl. skipped ones)
	rest      []*kgo.Record // polled with the batch, after it: put once it is accepted
	attempt   int
	next      time.Time
	cause     error
}

// deferPut keeps batch for redelivery after Put refused it with a
// retriable error. Called with mu held.
func (r *sinkRun) deferPut(batch []connect.Record, delivered []*kgo.Record, cause error) {
	p := r.pending
	if p == nil {
		p = &pendingPut{batch: batch, delivered: delivered}
		r.pending = p
	}
	p.attempt++
	p.cause = cause
	d := r.w.retry.delay(p.attempt)
	p.next = time.Now().Add(d)
	r.w.errorsTotal.Add(1)
	r.log.Warn().Str("error", r.w.redact.Redact(cause.Error())).Int("records", len(p.batch)).
		Int("attempt", p.attempt).Dur("backoff", d).Msg("put refused with a retriable error; redelivering the batch")
}

// dropPending forgets the pending and held records of partitions the task
// no longer owns: their next owner reads them again from the last commit.
// Called with mu held.
func (r *sinkRun) dropPending(tps []connect.TopicPartition) {
	if (r.pending == nil && len(r.held) == 0) || len(tps) == 0 {
		return
	}
	gone := make(map[connect.TopicPartition]bool, len(tps))
	for _, tp := range tps {
		gone[tp] = true
	}
	keep := func(recs []*kgo.Record) []*kgo.Record {
		out := recs[:0:0]
		for _, kr := range recs {
			if !gone[connect.TopicPartition{Topic: kr.Topic, Partition: kr.Partition}] {
				out = append(out, kr)
			}
		}
		return out
	}
	r.held = keep(r.held)
	if r.pending == nil {
		return
	}
	batch := r.pending.batch[:0:0]
	for _, rec := range r.pending.batch {
		if !gone[rec.OriginalTopicPartition()] {
			batch = append(batch, rec)
		}
	}
	r.pending.batch, r.pending.delivered, r.pending.rest = batch, keep(r.pending.delivered), keep(r.pending.rest)
}

// redeliver waits for the pending batch's backoff (rebalances are allowed
// meanwhile), then hands it to the task again. It returns an error only
// when the task fails the run; a new retriable refusal schedules another
// attempt. Nothing newer is polled while a batch is pending.
func (r *sinkRun) redeliver(ctx context.Context) error {
	r.mu.Lock()
	wait := time.Until(r.pending.next)
	r.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending
	if p == nil { // everything it held was revoked meanwhile
		return nil
	}
	err := r.putTask(ctx, p.batch, p.delivered)
	switch {
	case r.reportFailed != nil:
		r.failed = fmt.Errorf("put %d records (redelivery %d): %w", len(p.batch), p.attempt, r.reportFailed)
		return r.failed
	case err == nil:
		r.pending = nil
		r.log.Info().Int("records", len(p.batch)).Int("attempts", p.attempt+1).Msg("redelivered batch accepted")
		r.afterPut(p.batch, p.delivered)
		if err := r.putRecords(ctx, p.rest); err != nil {
			r.failed = err
			return err
		}
		return nil
	case ctx.Err() != nil:
		return nil
	case connect.IsRetriable(err):
		r.deferPut(nil, nil, err)
		return nil
	}
	r.failed = failedAt(fmt.Errorf("put %d records (redelivery %d): %w", len(p.batch), p.attempt, err), batchPoint(p.delivered))
	return r.failed
}

// hasPending reports whether a refused batch waits for redelivery.
func (r *sinkRun) hasPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending != nil
}

// redeliverStep is one turn of the poll loop while a batch is pending:
// redeliver it after its backoff, and end the turn as the loop does after
// a poll (endTurn).
func (r *sinkRun) redeliverStep(actx context.Context, next *time.Time) error {
	err := r.redeliver(actx)
	r.mu.Lock()
	return r.endTurn(actx, err, next)
}
