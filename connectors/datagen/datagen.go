// Package datagen is a source connector producing realistic mock records
// (users, orders, pageviews) at a set pace, in the shape of Confluent's
// kafka-connect-datagen quickstarts. It is what demos and benchmarks use.
//
// Each task numbers its records (iterations) from 0; the iteration is the
// source offset ({"task.id": n} → {"current.iteration": i}), so a restarted
// task continues after the last stored iteration. With random.seed set,
// record i of task n is always the same, whatever restarts happened.
package datagen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Class is Confluent's connector class, which Ferry answers to.
const Class = "io.confluent.kafka.connect.datagen.DatagenConnector"

// Configuration keys.
const (
	KeyTopic       = "kafka.topic"
	KeyQuickstart  = "quickstart"
	KeyMaxInterval = "max.interval"
	KeyIterations  = "iterations"
	KeyRate        = "records.per.second"
	KeySeed        = "random.seed"
	KeyBatch       = "max.batch.size"
)

// Source offset and partition fields, as Confluent's datagen names them.
const (
	PartitionField = "task.id"
	OffsetField    = "current.iteration"
)

// Quickstarts lists the built-in record shapes.
func Quickstarts() []string { return []string{"users", "orders", "pageviews"} }

// Plugin returns the datagen connector's registration.
func Plugin() connect.Plugin {
	return connect.Plugin{
		Class:   Class,
		Aliases: []string{"DatagenConnector", "ferry.datagen"},
		Kind:    connect.Source,
		Doc:     "generates mock users, orders or pageviews records",
		Config: []connect.ConfigField{
			{Name: KeyTopic, Type: connect.TypeString, Required: true, Doc: "topic to write to"},
			{Name: KeyQuickstart, Type: connect.TypeString, Default: "users", Validate: connect.OneOf(Quickstarts()...), Doc: "record shape: users, orders or pageviews"},
			{Name: KeyMaxInterval, Type: connect.TypeLong, Default: "500", Validate: connect.AtLeast(0), Doc: "milliseconds between records of one task (0: as fast as possible); ignored when records.per.second is set"},
			{Name: KeyIterations, Type: connect.TypeLong, Default: "-1", Validate: connect.AtLeast(-1), Doc: "records each task produces in all, across restarts (-1: no end)"},
			{Name: KeyRate, Type: connect.TypeDouble, Default: "0", Validate: nonNegative, Doc: "records per second per task (0: use max.interval)"},
			{Name: KeySeed, Type: connect.TypeLong, Doc: "seed making the records deterministic (default: random)"},
			{Name: KeyBatch, Type: connect.TypeInt, Default: "1000", Validate: connect.AtLeast(1), Doc: "most records one poll returns"},
		},
		NewSourceTask: func() connect.SourceTask { return &Task{} },
	}
}

func nonNegative(v string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 {
		return fmt.Errorf("must be a number ≥ 0, got %q", v)
	}
	return nil
}

// Task is one datagen task.
type Task struct {
	connect.SourceTaskBase

	topic      string
	gen        func(r *rand.Rand, i int64) (key any, value map[string]any)
	keySchema  *connect.Schema
	valSchema  *connect.Schema
	interval   time.Duration // between records; 0: no pause
	iterations int64         // -1: no end
	batch      int
	seed       uint64
	taskID     int
	tasks      int64

	next    int64     // iteration of the next record
	started time.Time // pacing starts here, at iteration first
	first   int64
	sleep   func(ctx context.Context, d time.Duration) error
}

var _ connect.SourceTask = (*Task)(nil)

// Start reads the configuration and the last stored iteration.
func (t *Task) Start(_ context.Context, cfg map[string]string) error {
	cfg = connect.WithDefaults(Plugin().Config, cfg)
	t.topic = strings.TrimSpace(cfg[KeyTopic])
	if t.topic == "" {
		return fmt.Errorf("%s is required", KeyTopic)
	}
	parse := func(key string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(cfg[key]), 10, 64)
		return n
	}
	switch q := cfg[KeyQuickstart]; q {
	case "users":
		t.gen = users
	case "orders":
		t.gen = t.orders
	case "pageviews":
		t.gen = pageviews
	default:
		return fmt.Errorf("%s: unknown quickstart %q (known: %s)", KeyQuickstart, q, strings.Join(Quickstarts(), ", "))
	}
	t.keySchema, t.valSchema = Schemas(cfg[KeyQuickstart])
	t.interval = time.Duration(parse(KeyMaxInterval)) * time.Millisecond
	if rate, _ := strconv.ParseFloat(cfg[KeyRate], 64); rate > 0 {
		t.interval = time.Duration(float64(time.Second) / rate)
	}
	t.iterations = parse(KeyIterations)
	t.batch = int(max(parse(KeyBatch), 1))
	t.taskID = int(parse("task.id"))
	t.tasks = max(parse(connect.KeyTasksMax), 1)
	if s, ok := cfg[KeySeed]; ok && strings.TrimSpace(s) != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: must be an integer, got %q", KeySeed, s)
		}
		t.seed = uint64(n)
	} else {
		t.seed = rand.Uint64()
	}
	if tc := t.Context(); tc != nil {
		off := tc.OffsetStorageReader().Offset(map[string]any{PartitionField: t.taskID})
		if last, ok := asInt(off[OffsetField]); ok {
			t.next = last + 1
		}
	}
	t.first, t.started = t.next, time.Now()
	if t.sleep == nil {
		t.sleep = sleepCtx
	}
	return nil
}

// asInt reads a JSON number of a restored offset.
func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	case interface{ Int64() (int64, error) }:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// Poll returns the records due now, waiting until the next one is due.
// Once every iteration is produced it waits for ctx.
func (t *Task) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	if t.iterations >= 0 && t.next >= t.iterations {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	n := t.batch
	if t.interval > 0 {
		// Pace against the start so slow polls catch up: record first+k
		// is due at started + k×interval.
		due := t.started.Add(time.Duration(t.next-t.first) * t.interval)
		if wait := time.Until(due); wait > 0 {
			if err := t.sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
		n = int(min(int64(t.batch), int64(time.Since(t.started)/t.interval)-(t.next-t.first)+1))
		n = max(n, 1)
	}
	if t.iterations >= 0 {
		n = int(min(int64(n), t.iterations-t.next))
	}
	out := make([]connect.SourceRecord, 0, n)
	for range n {
		i := t.next
		r := rand.New(rand.NewPCG(t.seed, uint64(t.taskID)<<40|uint64(i)))
		key, val := t.gen(r, i)
		out = append(out, connect.SourceRecord{
			Topic:           t.topic,
			Key:             key,
			Value:           val,
			KeySchema:       t.keySchema,
			ValueSchema:     t.valSchema,
			SourcePartition: map[string]any{PartitionField: t.taskID},
			SourceOffset:    map[string]any{OffsetField: i},
		})
		t.next++
	}
	return out, nil
}

// Stop does nothing: the task holds no resources.
func (t *Task) Stop() error { return nil }

// base is the epoch times are generated around (2025-01-01 UTC), so a
// seeded run is the same on every day.
const base = int64(1735689600000)

func pick(r *rand.Rand, prefix string, n int) string {
	return prefix + strconv.Itoa(1+r.IntN(n))
}

// Schemas returns the Connect schemas of a quickstart's keys and values, as
// Confluent's datagen derives them from its Avro schemas (structs named
// ksql.<quickstart>, every field required). A converter that writes
// schemas (JsonConverter with schemas.enable=true) puts them in each
// record's envelope; the others ignore them.
func Schemas(quickstart string) (key, value *connect.Schema) {
	str := func() *connect.Schema { return &connect.Schema{Type: connect.SchemaString} }
	i64 := func() *connect.Schema { return &connect.Schema{Type: connect.SchemaInt64} }
	field := func(name string, s *connect.Schema) connect.Field { return connect.Field{Name: name, Schema: s} }
	switch quickstart {
	case "users":
		return str(), &connect.Schema{Type: connect.SchemaStruct, Name: "ksql.users", Fields: []connect.Field{
			field("registertime", i64()), field("userid", str()), field("regionid", str()), field("gender", str()),
		}}
	case "pageviews":
		return i64(), &connect.Schema{Type: connect.SchemaStruct, Name: "ksql.pageviews", Fields: []connect.Field{
			field("viewtime", i64()), field("userid", str()), field("pageid", str()),
		}}
	case "orders":
		// orderid is int64, not Confluent's int32: Ferry's ids are unique
		// across tasks (iteration × tasks.max + task id) and outgrow int32.
		return i64(), &connect.Schema{Type: connect.SchemaStruct, Name: "ksql.orders", Fields: []connect.Field{
			field("ordertime", i64()), field("orderid", i64()), field("itemid", str()),
			field("orderunits", &connect.Schema{Type: connect.SchemaFloat64}),
			field("address", &connect.Schema{Type: connect.SchemaStruct, Name: "ksql.address", Fields: []connect.Field{
				field("city", str()), field("state", str()), field("zipcode", i64()),
			}}),
		}}
	}
	return nil, nil
}

// users is Confluent's users quickstart; the key is userid.
func users(r *rand.Rand, _ int64) (any, map[string]any) {
	uid := pick(r, "User_", 9)
	return uid, map[string]any{
		"registertime": base - r.Int64N(365*24*3600*1000),
		"userid":       uid,
		"regionid":     pick(r, "Region_", 9),
		"gender":       []string{"MALE", "FEMALE", "OTHER"}[r.IntN(3)],
	}
}

// pageviews is Confluent's pageviews quickstart; the key is viewtime, which
// grows with the iteration.
func pageviews(r *rand.Rand, i int64) (any, map[string]any) {
	vt := base + i*10 + r.Int64N(10)
	return vt, map[string]any{
		"viewtime": vt,
		"userid":   pick(r, "User_", 9),
		"pageid":   pick(r, "Page_", 99),
	}
}

// orders is Confluent's orders quickstart; the key is orderid, unique
// across the connector's tasks (iteration × tasks.max + task id). The
// runtime hands every task the connector's task count as tasks.max (not
// the configuration's, which autoscaling overrides) and restarts source
// tasks when it changes; ids stay unique while the count does, and a
// change of the count starts new sequences that may repeat ids issued
// under the old one.
func (t *Task) orders(r *rand.Rand, i int64) (any, map[string]any) {
	id := i*t.tasks + int64(t.taskID)
	units := float64(1+r.IntN(100)) / 10
	return id, map[string]any{
		"ordertime":  base + i*1000 + r.Int64N(1000),
		"orderid":    id,
		"itemid":     pick(r, "Item_", 999),
		"orderunits": units,
		"address": map[string]any{
			"city":    pick(r, "City_", 99),
			"state":   pick(r, "State_", 99),
			"zipcode": 10000 + r.Int64N(90000),
		},
	}
}
