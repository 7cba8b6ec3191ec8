// Package connecttest is a conformance suite for sink connectors: it drives
// a connect.SinkTask exactly as the runtime does (Start, Open, Put,
// PreCommit, Close/revoke, Stop, restart from the committed offsets) and
// checks, through the connector's own storage, that everything below a
// committed offset is durable, that nothing is lost across a revoke or a
// crash, that every record delivered is eventually reported durable (and
// so committed), and (unless the connector says it is at-least-once) that
// nothing is written twice.
//
// A connector's test calls RunSinkSuite with a constructor, its
// configuration and a Verifier that reads back what its storage holds:
//
//	connecttest.RunSinkSuite(t, connecttest.SinkSuite{
//		NewTask: func() connect.SinkTask { return s3sink.Plugin().NewSinkTask() },
//		Config:  cfg,
//		Verify:  func(t testing.TB, topic string) []connecttest.Written { ... },
//	})
//
// Every record the suite delivers has a JSON object value
// {"topic":…,"partition":p,"offset":o,"data":…} (as the JsonConverter with
// schemas.enable=false hands it over), so a Verifier can tell which records
// reached storage with DecodeValue.
package connecttest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Written is one record found in the connector's storage.
type Written struct {
	Partition int32
	Offset    int64
}

// Verifier returns every record of topic the connector's storage holds now,
// once per copy stored (a record stored twice appears twice).
type Verifier func(t testing.TB, topic string) []Written

// SinkSuite configures RunSinkSuite.
type SinkSuite struct {
	// NewTask makes a fresh task, as the plugin's NewSinkTask.
	NewTask func() connect.SinkTask
	// Config is the connector configuration; the suite adds "topics" and
	// "task.id".
	Config map[string]string
	// Verify reads back the connector's storage.
	Verify Verifier
	// Partitions per topic (default 2) and records per partition per
	// scenario (default 40).
	Partitions int32
	Records    int
	// Batch is the number of records per Put (default 7, so batches and
	// the connector's own flush sizes do not line up).
	Batch int
	// AtLeastOnce allows records at or above the last commit to be stored
	// more than once after a revoke or a crash.
	AtLeastOnce bool
	// TopicPrefix names the scenarios' topics (default "conformance").
	TopicPrefix string
	// CommitWithin bounds how long, after a scenario's last records, the
	// suite waits for the task to report every record it was handed
	// durable, calling Put with no records and PreCommit meanwhile as the
	// runtime does on a quiet partition (default 10s). A sink that holds
	// a partition's last records until more arrive never lets them be
	// committed; it should flush on time (a rotation interval) or at
	// PreCommit.
	CommitWithin time.Duration
}

// RunSinkSuite runs every scenario as a subtest.
func RunSinkSuite(t *testing.T, s SinkSuite) {
	t.Helper()
	if s.NewTask == nil || s.Verify == nil {
		t.Fatal("connecttest: NewTask and Verify are required")
	}
	if s.Partitions <= 0 {
		s.Partitions = 2
	}
	if s.Records <= 0 {
		s.Records = 40
	}
	if s.Batch <= 0 {
		s.Batch = 7
	}
	if s.TopicPrefix == "" {
		s.TopicPrefix = "conformance"
	}
	if s.CommitWithin <= 0 {
		s.CommitWithin = 10 * time.Second
	}
	t.Run("lifecycle", func(t *testing.T) { s.lifecycle(t, s.TopicPrefix+"-lifecycle") })
	t.Run("revoke-reopen", func(t *testing.T) { s.revokeReopen(t, s.TopicPrefix+"-revoke") })
	t.Run("restart-from-committed", func(t *testing.T) { s.restart(t, s.TopicPrefix+"-restart") })
}

// Value is the value of record offset of partition p of topic, as the suite
// delivers it.
func Value(topic string, p int32, offset int64) map[string]any {
	return map[string]any{
		"topic":     topic,
		"partition": json.Number(strconv.Itoa(int(p))),
		"offset":    json.Number(strconv.FormatInt(offset, 10)),
		"data":      fmt.Sprintf("record %d of %s-%d", offset, topic, p),
	}
}

// DecodeValue reads the partition and offset back from a stored JSON value.
func DecodeValue(b []byte) (Written, error) {
	var v struct {
		Partition int32 `json:"partition"`
		Offset    int64 `json:"offset"`
		Data      string
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Written{}, fmt.Errorf("decode stored value %q: %w", b, err)
	}
	if !strings.HasPrefix(v.Data, "record ") {
		return Written{}, fmt.Errorf("stored value %q is not one the suite delivered", b)
	}
	return Written{Partition: v.Partition, Offset: v.Offset}, nil
}

// DecodeLines decodes newline-separated JSON values (JSON Lines objects).
func DecodeLines(b []byte) ([]Written, error) {
	var out []Written
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		w, err := DecodeValue([]byte(line))
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

func record(topic string, p int32, offset int64) connect.Record {
	v := Value(topic, p, offset)
	raw, _ := json.Marshal(v)
	key := fmt.Sprintf("%s-%d-%d", topic, p, offset)
	return connect.Record{
		Topic: topic, Partition: p, Offset: offset,
		Timestamp: time.UnixMilli(1735689600000 + offset),
		Key:       key, RawKey: []byte(key),
		Value: v, RawValue: raw,
	}
}

// harness plays the runtime for one task incarnation.
type harness struct {
	t         *testing.T
	s         *SinkSuite
	topic     string
	task      connect.SinkTask
	owned     map[connect.TopicPartition]bool
	lastPut   map[connect.TopicPartition]int64 // offset after the last record put since Open
	committed map[connect.TopicPartition]int64 // shared across incarnations
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func (s *SinkSuite) start(t *testing.T, topic string, committed map[connect.TopicPartition]int64) *harness {
	t.Helper()
	cfg := map[string]string{}
	for k, v := range s.Config {
		cfg[k] = v
	}
	cfg[connect.KeyTopics] = topic
	cfg["task.id"] = "0"
	h := &harness{t: t, s: s, topic: topic, task: s.NewTask(), owned: map[connect.TopicPartition]bool{},
		lastPut: map[connect.TopicPartition]int64{}, committed: committed}
	if err := h.task.Start(ctx(t), cfg); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return h
}

func (h *harness) tps(ps ...int32) []connect.TopicPartition {
	out := make([]connect.TopicPartition, len(ps))
	for i, p := range ps {
		out[i] = connect.TopicPartition{Topic: h.topic, Partition: p}
	}
	return out
}

func (h *harness) all() []int32 {
	out := make([]int32, h.s.Partitions)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

func (h *harness) open(ps ...int32) {
	h.t.Helper()
	tps := h.tps(ps...)
	if err := h.task.Open(ctx(h.t), tps); err != nil {
		h.t.Fatalf("Open %v: %v", tps, err)
	}
	for _, tp := range tps {
		h.owned[tp] = true
		delete(h.lastPut, tp)
	}
}

// put delivers records [from, to) of partition p in batches, interleaving
// a PreCommit after every batch.
func (h *harness) put(p int32, from, to int64) {
	h.t.Helper()
	tp := connect.TopicPartition{Topic: h.topic, Partition: p}
	if !h.owned[tp] {
		h.t.Fatalf("suite bug: put to unowned %s", tp)
	}
	for off := from; off < to; {
		n := min(int64(h.s.Batch), to-off)
		batch := make([]connect.Record, 0, n)
		for i := int64(0); i < n; i++ {
			batch = append(batch, record(h.topic, p, off+i))
		}
		if err := h.task.Put(ctx(h.t), batch); err != nil {
			h.t.Fatalf("Put %s offsets %d..%d: %v", tp, off, off+n-1, err)
		}
		off += n
		h.lastPut[tp] = off
		h.preCommit()
	}
	// An empty Put must be accepted (the runtime calls it on quiet
	// partitions so time-based work can run).
	if err := h.task.Put(ctx(h.t), nil); err != nil {
		h.t.Fatalf("empty Put: %v", err)
	}
}

// preCommit asks the task what is durable, checks the answer against the
// contract and against storage, and commits it.
func (h *harness) preCommit() {
	h.t.Helper()
	if len(h.lastPut) == 0 {
		return
	}
	current := map[connect.TopicPartition]int64{}
	for tp, off := range h.lastPut {
		current[tp] = off
	}
	got, err := h.task.PreCommit(ctx(h.t), current)
	if err != nil {
		h.t.Fatalf("PreCommit: %v", err)
	}
	for tp, off := range got {
		cur, ok := current[tp]
		switch {
		case !ok:
			h.t.Fatalf("PreCommit answered for %s, which had no records delivered since Open", tp)
		case off > cur:
			h.t.Fatalf("PreCommit reports %s durable up to %d, past the %d delivered", tp, off, cur)
		case off < h.committed[tp]:
			// The runtime would ignore it; Kafka Connect commits it.
			// It is legal but suspicious only if it goes below the
			// start of what this incarnation was handed.
		}
		if off > h.committed[tp] {
			h.committed[tp] = off
		}
	}
	h.checkDurable()
}

// checkDurable checks every record below a committed offset is stored.
func (h *harness) checkDurable() {
	h.t.Helper()
	stored := map[Written]int{}
	for _, w := range h.s.Verify(h.t, h.topic) {
		stored[w]++
	}
	for tp, c := range h.committed {
		for off := int64(0); off < c; off++ {
			if stored[Written{Partition: tp.Partition, Offset: off}] == 0 {
				h.t.Fatalf("%s offset %d is committed (up to %d) but not in storage", tp, off, c)
			}
		}
	}
}

// settle waits for everything delivered to the owned partitions to be
// reported durable, and fails the scenario if it is not within
// CommitWithin.
func (h *harness) settle() {
	h.t.Helper()
	if err := h.waitCommitted(); err != nil {
		h.t.Fatal(err)
	}
}

// waitCommitted asks the task what is durable, with an empty Put between
// two asks, until every owned partition is committed up to the end of what
// it was handed, or CommitWithin has passed.
func (h *harness) waitCommitted() error {
	h.t.Helper()
	deadline := time.Now().Add(h.s.CommitWithin)
	for {
		h.preCommit()
		var behind []string
		for tp, end := range h.lastPut {
			if c := h.committed[tp]; c < end {
				behind = append(behind, fmt.Sprintf("%s delivered up to %d, committed %d", tp, end, c))
			}
		}
		if len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			sort.Strings(behind)
			return fmt.Errorf("records delivered were not reported durable within %v (%s): a sink must eventually make every record it is handed durable, flushing on time or at PreCommit",
				h.s.CommitWithin, strings.Join(behind, "; "))
		}
		time.Sleep(50 * time.Millisecond)
		if err := h.task.Put(ctx(h.t), nil); err != nil {
			return fmt.Errorf("empty Put: %w", err)
		}
	}
}

func (h *harness) close(ps ...int32) {
	h.t.Helper()
	tps := h.tps(ps...)
	if err := h.task.Close(ctx(h.t), tps); err != nil {
		h.t.Fatalf("Close %v: %v", tps, err)
	}
	for _, tp := range tps {
		delete(h.owned, tp)
		delete(h.lastPut, tp)
	}
}

func (h *harness) stop() {
	h.t.Helper()
	if err := h.task.Stop(); err != nil {
		h.t.Fatalf("Stop: %v", err)
	}
}

// final checks, after the last incarnation: each partition made progress,
// everything committed is stored, and (exactly-once connectors) nothing
// below the commit is stored twice.
func (s *SinkSuite) final(t *testing.T, topic string, committed map[connect.TopicPartition]int64) {
	t.Helper()
	stored := map[Written]int{}
	for _, w := range s.Verify(t, topic) {
		stored[w]++
	}
	tps := make([]connect.TopicPartition, 0, len(committed))
	for tp := range committed {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool { return tps[i].Partition < tps[j].Partition })
	for p := int32(0); p < s.Partitions; p++ {
		if committed[connect.TopicPartition{Topic: topic, Partition: p}] <= 0 {
			t.Errorf("%s-%d: nothing was ever reported durable", topic, p)
		}
	}
	for _, tp := range tps {
		for off := int64(0); off < committed[tp]; off++ {
			n := stored[Written{Partition: tp.Partition, Offset: off}]
			if n == 0 {
				t.Errorf("%s offset %d lost (committed up to %d)", tp, off, committed[tp])
			}
			if n > 1 && !s.AtLeastOnce {
				t.Errorf("%s offset %d stored %d times", tp, off, n)
			}
		}
	}
	for w := range stored {
		if w.Partition < 0 || w.Partition >= s.Partitions {
			t.Errorf("stored a record of partition %d, which the suite never delivered", w.Partition)
		}
	}
}

// lifecycle: Start → Open(all) → Put*/PreCommit* → Close(all) → Stop.
func (s *SinkSuite) lifecycle(t *testing.T, topic string) {
	committed := map[connect.TopicPartition]int64{}
	h := s.start(t, topic, committed)
	h.open(h.all()...)
	n := int64(s.Records)
	for _, p := range h.all() {
		h.put(p, 0, n/2)
	}
	for _, p := range h.all() {
		h.put(p, n/2, n)
	}
	h.settle()
	h.close(h.all()...)
	h.stop()
	s.final(t, topic, committed)
	s.allCommitted(t, topic, committed, n)
}

// allCommitted checks every partition was committed to the end of what the
// suite delivered.
func (s *SinkSuite) allCommitted(t *testing.T, topic string, committed map[connect.TopicPartition]int64, n int64) {
	t.Helper()
	for p := int32(0); p < s.Partitions; p++ {
		if c := committed[connect.TopicPartition{Topic: topic, Partition: p}]; c != n {
			t.Errorf("%s-%d: committed %d of the %d records delivered", topic, p, c, n)
		}
	}
}

// revokeReopen: a partition is revoked mid-stream and later assigned back;
// it is re-delivered from its committed offset, as the runtime does.
func (s *SinkSuite) revokeReopen(t *testing.T, topic string) {
	committed := map[connect.TopicPartition]int64{}
	h := s.start(t, topic, committed)
	h.open(h.all()...)
	n := int64(s.Records)
	for _, p := range h.all() {
		h.put(p, 0, n/2+3)
	}
	// Revoke the last partition: commit what is durable, then close.
	last := s.Partitions - 1
	h.preCommit()
	h.close(last)
	for _, p := range h.all()[:last] {
		h.put(p, n/2+3, n)
	}
	// Assigned back: re-read from the committed offset.
	h.open(last)
	from := committed[connect.TopicPartition{Topic: topic, Partition: last}]
	h.put(last, from, n)
	h.settle()
	h.close(h.all()...)
	h.stop()
	s.final(t, topic, committed)
	s.allCommitted(t, topic, committed, n)
}

// restart: a task crashes after records past the last commit were put; a
// new incarnation starts from the committed offsets and goes on.
func (s *SinkSuite) restart(t *testing.T, topic string) {
	committed := map[connect.TopicPartition]int64{}
	h := s.start(t, topic, committed)
	h.open(h.all()...)
	n := int64(s.Records)
	for _, p := range h.all() {
		h.put(p, 0, n/2+5)
	}
	// The crash: no more commits; the runtime closes and stops the task
	// without committing what it answers.
	snapshot := map[connect.TopicPartition]int64{}
	for tp, off := range committed {
		snapshot[tp] = off
	}
	for _, p := range h.all() {
		h.put(p, n/2+5, n/2+14)
	}
	for tp, off := range snapshot {
		committed[tp] = off // forget commits made after the snapshot
	}
	h.close(h.all()...)
	h.stop()

	h = s.start(t, topic, committed)
	h.open(h.all()...)
	for _, p := range h.all() {
		h.put(p, committed[connect.TopicPartition{Topic: topic, Partition: p}], n)
	}
	h.settle()
	h.close(h.all()...)
	h.stop()
	s.final(t, topic, committed)
	s.allCommitted(t, topic, committed, n)
}
