package s3sink

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/runtime/connect"
)

// fakeReporter is the runtime's errant record reporter: with fail, as under
// errors.tolerance=none, it returns an error; else the record is skipped.
type fakeReporter struct {
	mu   sync.Mutex
	offs []int64
	errs []string
	fail bool
}

func (f *fakeReporter) Report(_ context.Context, r *connect.Record, err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offs = append(f.offs, r.Offset)
	f.errs = append(f.errs, err.Error())
	if f.fail {
		return fmt.Errorf("tolerance exceeded: %w", err)
	}
	return nil
}

// Records the sink cannot write go to the errant record reporter at Put
// (none waits for the upload to fail); the others are written, the skipped
// ones count as handled, and a replay skips the same records and writes the
// same objects.
func TestErrantRecords(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		over map[string]string
		bad  func(r *connect.Record) // makes the record at offset 2 unwritable
		want string
	}{
		{"ByteArray value not bytes", map[string]string{"format.class": ByteArrayFormat}, func(r *connect.Record) { r.Value = map[string]any{"a": "b"} }, "ByteArrayFormat needs byte values"},
		{"Parquet value not a struct", map[string]string{"format.class": ParquetFormat}, func(r *connect.Record) { r.Value = "text" }, "ParquetFormat needs struct values"},
		{"missing partition field", map[string]string{"partitioner.class": FieldPartitioner, "partition.field.name": "region"},
			func(r *connect.Record) { delete(r.Value.(map[string]any), "region") }, `partition field "region" not found`},
		{"missing timestamp field", map[string]string{"partitioner.class": HourlyPartitioner, "timezone": "UTC", "locale": "en", "timestamp.extractor": "RecordField", "timestamp.field": "ts"},
			func(r *connect.Record) { delete(r.Value.(map[string]any), "ts") }, `timestamp field "ts" not found`},
		{"null value under fail", nil, func(r *connect.Record) { r.Value = nil }, "null value (tombstone)"},
		{"value against its schema", map[string]string{"format.class": AvroFormat}, func(r *connect.Record) {
			r.ValueSchema = &connect.Schema{Type: connect.SchemaStruct, Fields: []connect.Field{{Name: "n", Schema: &connect.Schema{Type: connect.SchemaInt32}}}}
			r.Value = map[string]any{"n": "not a number"}
		}, `field "n": string does not fit int`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			records := func() []connect.Record {
				rs := make([]connect.Record, 7)
				for i := range rs {
					v := map[string]any{"n": json.Number(fmt.Sprint(i)), "region": "eu", "ts": json.Number(fmt.Sprint(ts.UnixMilli()))}
					rs[i] = connect.Record{Topic: "t", Offset: int64(i), Value: v, Timestamp: ts}
					if tc.over["format.class"] == ByteArrayFormat {
						rs[i].Value = []byte(fmt.Sprint(i))
					}
				}
				tc.bad(&rs[2])
				return rs
			}
			cfg := validConfig()
			cfg["flush.size"] = "3"
			for k, v := range tc.over {
				cfg[k] = v
			}
			tp := connect.TopicPartition{Topic: "t"}
			run := func(rep *fakeReporter) (*fakeUploader, error) {
				up := &fakeUploader{objects: map[string][]byte{}}
				task := &sinkTask{client: up}
				ctx := context.Background()
				if rep != nil {
					ctx = connect.WithErrantRecordReporter(ctx, rep)
				}
				if err := task.Start(ctx, cfg); err != nil {
					t.Fatal(err)
				}
				_ = task.Open(ctx, []connect.TopicPartition{tp})
				err := putWait(ctx, task, records())
				if err == nil {
					if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 7}); d[tp] != 7 {
						t.Errorf("durable %v, want 7 (the skipped record counts as handled)", d)
					}
				}
				return up, err
			}
			rep := &fakeReporter{}
			up, err := run(rep)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.offs) != 1 || rep.offs[0] != 2 || !strings.Contains(rep.errs[0], tc.want) || !strings.Contains(rep.errs[0], "offset 2") {
				t.Fatalf("reported %v %q, want offset 2 with %q", rep.offs, rep.errs, tc.want)
			}
			// Six records in two objects (0, 1, 3 and 4, 5, 6), the same on a replay.
			if len(up.objects) != 2 {
				t.Fatalf("objects %v", keysOf(up.objects))
			}
			again, err := run(&fakeReporter{})
			if err != nil {
				t.Fatal(err)
			}
			for k, b := range up.objects {
				if string(again.objects[k]) != string(b) {
					t.Errorf("replay wrote %s differently", k)
				}
			}
			// errors.tolerance=none: Put fails with the reporter's error.
			if _, err := run(&fakeReporter{fail: true}); err == nil || !strings.Contains(err.Error(), "tolerance exceeded") {
				t.Errorf("tolerance none: %v", err)
			}
			// Outside the runtime (no reporter), Put fails.
			if _, err := run(nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("no reporter: %v, want %q", err, tc.want)
			}
		})
	}
}

// behavior.on.null.values=write: tombstones go to the tombstone encoded
// partition as their keys (and headers); no values object is written for
// them, as in Confluent's connector.
func TestTombstonesWritten(t *testing.T) {
	task, srv := startVersity(t, map[string]string{"behavior.on.null.values": "write", "store.kafka.keys": "true", "keys.format.class": JSONFormat,
		"store.kafka.headers": "true", "headers.format.class": JSONFormat, "flush.size": "4"})
	ctx := context.Background()
	tp := connect.TopicPartition{Topic: "t"}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	var rs []connect.Record
	for i := 0; i < 4; i++ {
		r := connect.Record{Topic: "t", Offset: int64(i), Key: fmt.Sprintf("k%d", i), Value: map[string]any{"n": json.Number(fmt.Sprint(i))},
			Headers: []connect.Header{{Key: "h", Value: []byte("v"), Data: "v"}}}
		if i%2 == 1 {
			r.Value = nil
		}
		rs = append(rs, r)
	}
	if err := putWait(ctx, task, rs); err != nil {
		t.Fatal(err)
	}
	objs := srv.Objects(t, "")
	want := map[string]string{
		"topics/t/partition=0/t+0+0000000000.json":         "{\"n\":0}\n{\"n\":2}\n",
		"topics/t/partition=0/t+0+0000000000.keys.json":    "\"k0\"\n\"k2\"\n",
		"topics/t/partition=0/t+0+0000000000.headers.json": "[{\"key\":\"h\",\"value\":\"v\"}]\n[{\"key\":\"h\",\"value\":\"v\"}]\n",
		"topics/t/tombstone/t+0+0000000001.keys.json":      "\"k1\"\n\"k3\"\n",
		"topics/t/tombstone/t+0+0000000001.headers.json":   "[{\"key\":\"h\",\"value\":\"v\"}]\n[{\"key\":\"h\",\"value\":\"v\"}]\n",
	}
	if len(objs) != len(want) {
		t.Fatalf("objects %v", s3test.Keys(objs))
	}
	for k, w := range want {
		if string(objs[k]) != w {
			t.Errorf("%s: %q, want %q", k, objs[k], w)
		}
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 4}); d[tp] != 4 {
		t.Errorf("durable %v, want 4", d)
	}
}

// Records with a Connect schema are written under it, Avro and Parquet
// with their logical types; a record of another schema version cuts the
// object (schema.compatibility=NONE), as in Confluent's connector.
func TestConnectSchemaAgainstVersityGW(t *testing.T) {
	for _, format := range []string{AvroFormat, ParquetFormat, JSONFormat} {
		t.Run(format[strings.LastIndexByte(format, '.')+1:], func(t *testing.T) {
			task, srv := startVersity(t, map[string]string{"format.class": format, "flush.size": "10"})
			ctx := context.Background()
			_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
			s1, s2 := orderSchema(), orderSchema()
			s2.Version = 3
			var rs []connect.Record
			for i := 0; i < 5; i++ {
				s := s1
				if i >= 3 {
					s = s2
				}
				v := orderValue()
				v["id"] = int64(i)
				rs = append(rs, connect.Record{Topic: "t", Offset: int64(i), Value: v, ValueSchema: s})
			}
			if err := putWait(ctx, task, rs); err != nil {
				t.Fatal(err)
			}
			task.mu.Lock()
			err := task.commit(ctx, task.parts[connect.TopicPartition{Topic: "t"}])
			task.mu.Unlock()
			if err != nil || task.awaitUploads() != nil {
				t.Fatal(err)
			}
			objs := srv.Objects(t, "")
			if len(objs) != 2 {
				t.Fatalf("objects %v, want a cut at offset 3", s3test.Keys(objs))
			}
			keys := s3test.Keys(objs)
			sort.Strings(keys)
			if !strings.HasSuffix(keys[0], "t+0+0000000000"+task.s.ext(format)) || !strings.HasSuffix(keys[1], "t+0+0000000003"+task.s.ext(format)) {
				t.Fatalf("keys %v", keys)
			}
			b := objs[keys[0]]
			switch format {
			case AvroFormat:
				schema, got := readAvro(t, b)
				if !strings.HasPrefix(schema, `{"type":"record","name":"Order","namespace":"com.example"`) || len(got) != 3 {
					t.Fatalf("schema %s, %d records", schema, len(got))
				}
				r := got[2].(map[string]any)
				if r["id"] != int64(2) || r["price"].(*big.Rat).FloatString(2) != "123.45" || !r["at"].(time.Time).Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
					t.Errorf("record %#v", r)
				}
			case ParquetFormat:
				schema, rows := readParquet(t, b)
				s := fmt.Sprint(schema)
				for _, w := range []string{"message Order {", "required int32 qty", "required binary price (DECIMAL(64,2));", "required int32 day (DATE);",
					"required int64 at (TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS));", "optional int32 t (TIME(isAdjustedToUTC=true,unit=MILLIS));",
					"optional group attrs (MAP) {", "repeated group key_value {", "required group counts (LIST) {", "required float ratio;"} {
					if !strings.Contains(s, w) {
						t.Errorf("schema lacks %q:\n%s", w, s)
					}
				}
				// Avro int and long are plain int32 and int64, as
				// parquet-avro writes them.
				if lt := pqLogicalTypes(t, b); lt["qty"] != "" || lt["id"] != "" || lt["day"] != "DATE" || lt["note"] != "STRING" {
					t.Errorf("logical types %v", lt)
				}
				if len(rows) != 3 || rows[2].strs("id")[0] != "2" || rows[2].strs("day")[0] != "19723" || rows[2].strs("counts.array.key")[0] != "1" || rows[2].strs("note")[0] != "none" {
					t.Errorf("rows %v", rows)
				}
			case JSONFormat:
				want, _ := appendSchemaJSON(nil, s1, rs[0].Value, false)
				if line := strings.SplitN(string(b), "\n", 2)[0]; line != string(want) {
					t.Errorf("line %s, want %s", line, want)
				}
			}
		})
	}
}

// A task's Avro and Parquet rows, keys and headers are buffers drawn from
// its budget: BufferedBytes reports them, the share is never exceeded
// (they spill past it), and closing gives everything back.
func TestRowFormatsWithinBudget(t *testing.T) {
	for _, format := range []string{AvroFormat, ParquetFormat} {
		t.Run(format[strings.LastIndexByte(format, '.')+1:], func(t *testing.T) {
			worker := connect.NewMemoryBudget(1 << 20)
			share := worker.Share(64 << 10)
			cfg := validConfig()
			cfg["format.class"] = format
			cfg["flush.size"] = "100000"
			cfg["store.kafka.keys"] = "true"
			cfg["store.kafka.headers"] = "true"
			task := &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
			if err := task.Start(connect.WithMemoryBudget(context.Background(), share), cfg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = task.Stop() })
			task.dir = t.TempDir()
			ctx := context.Background()
			var tps []connect.TopicPartition
			for p := int32(0); p < 8; p++ {
				tps = append(tps, connect.TopicPartition{Topic: "t", Partition: p})
			}
			_ = task.Open(ctx, tps)
			put := func(from, n int) {
				var rs []connect.Record
				for i := from; i < from+n; i++ {
					rs = append(rs, connect.Record{Topic: "t", Partition: int32(i % 8), Offset: int64(i / 8), Key: fmt.Sprint(i),
						Headers: []connect.Header{{Key: "h", Data: "v"}}, Value: map[string]any{"pad": strings.Repeat("p", 200), "i": json.Number(fmt.Sprint(i))}})
				}
				if err := task.Put(ctx, rs); err != nil {
					t.Fatal(err)
				}
			}
			put(0, 40)
			if got := task.BufferedBytes(); got == 0 || got != share.InUse() || worker.InUse() != got {
				t.Fatalf("buffered %d, share in use %d, worker in use %d: want the same, above 0", got, share.InUse(), worker.InUse())
			}
			put(40, 2000) // ~450 KB of rows, over the 64 KiB share
			if got := share.InUse(); got > share.Limit() {
				t.Errorf("share in use %d over its limit %d", got, share.Limit())
			}
			if ents, _ := os.ReadDir(task.dir); len(ents) == 0 {
				t.Error("nothing spilled past the share")
			}
			_ = task.Close(ctx, tps)
			if worker.InUse() != 0 || task.BufferedBytes() != 0 {
				t.Errorf("after close: worker %d, task %d in use", worker.InUse(), task.BufferedBytes())
			}
			if ents, _ := os.ReadDir(task.dir); len(ents) != 0 {
				t.Errorf("spill files left: %d", len(ents))
			}
		})
	}
}

// flushAll commits every open object and waits for the uploads.
func flushAll(t *testing.T, task *sinkTask) {
	t.Helper()
	task.mu.Lock()
	for _, st := range task.parts {
		if st.count > 0 {
			if err := task.commit(context.Background(), st); err != nil {
				t.Fatal(err)
			}
		}
	}
	task.mu.Unlock()
	if err := task.awaitUploads(); err != nil {
		t.Fatal(err)
	}
}

// schema.compatibility as Confluent's: NONE cuts at every change; BACKWARD
// (and FULL) cut at a newer version and write an older one's records
// projected onto the object's schema; FORWARD the reverse; versions are
// required.
func TestSchemaCompatibility(t *testing.T) {
	schema := func(version int, withB bool) *connect.Schema {
		s := &connect.Schema{Type: connect.SchemaStruct, Name: "r", Version: version, Fields: []connect.Field{{Name: "a", Schema: &connect.Schema{Type: connect.SchemaInt32}}}}
		if withB {
			s.Fields = append(s.Fields, connect.Field{Name: "b", Schema: &connect.Schema{Type: connect.SchemaString, Optional: true, Default: "dflt"}})
		}
		return s
	}
	v1, v2 := schema(1, false), schema(2, true)
	seq := []*connect.Schema{v1, v2, v1, v2}
	for _, tc := range []struct {
		compat string
		want   map[string]string
		seq    []*connect.Schema
	}{
		{"NONE", map[string]string{"0": `{"a":0}`, "1": `{"a":1,"b":"x"}`, "2": `{"a":2}`, "3": `{"a":3,"b":"x"}`}, nil},
		{"BACKWARD", map[string]string{"0": `{"a":0}`, "1": `{"a":1,"b":"x"}` + "\n" + `{"a":2,"b":"dflt"}` + "\n" + `{"a":3,"b":"x"}`}, nil},
		{"FULL", map[string]string{"0": `{"a":0}`, "1": `{"a":1,"b":"x"}` + "\n" + `{"a":2,"b":"dflt"}` + "\n" + `{"a":3,"b":"x"}`}, nil},
		// The object's schema is v1: newer records are projected onto it.
		{"FORWARD", map[string]string{"0": `{"a":0}` + "\n" + `{"a":1}` + "\n" + `{"a":2}` + "\n" + `{"a":3}`}, nil},
		// An older record cuts a FORWARD object.
		{"FORWARD", map[string]string{"0": `{"a":0,"b":"x"}`, "1": `{"a":1}`}, []*connect.Schema{v2, v1}},
	} {
		t.Run(tc.compat, func(t *testing.T) {
			seq := seq
			if tc.seq != nil {
				seq = tc.seq
			}
			cfg := validConfig()
			cfg["flush.size"] = "100"
			cfg["schema.compatibility"] = tc.compat
			up := &fakeUploader{objects: map[string][]byte{}}
			task := &sinkTask{client: up}
			ctx := context.Background()
			if err := task.Start(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
			var rs []connect.Record
			for i, s := range seq {
				v := map[string]any{"a": int32(i)}
				if s == v2 {
					v["b"] = "x"
				}
				rs = append(rs, connect.Record{Topic: "t", Offset: int64(i), Value: v, ValueSchema: s})
			}
			if err := putWait(ctx, task, rs); err != nil {
				t.Fatal(err)
			}
			flushAll(t, task)
			got := map[string]string{}
			for k, b := range up.objects {
				start := strings.TrimPrefix(strings.TrimSuffix(k, ".json"), "topics/t/partition=0/t+0+000000000")
				got[start] = strings.TrimSuffix(string(b), "\n")
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("objects %v, want %v", got, tc.want)
			}
		})
	}
	// Without versions, BACKWARD cannot order schemas: the record is errant.
	cfg := validConfig()
	cfg["schema.compatibility"] = "BACKWARD"
	task := &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
	rep := &fakeReporter{}
	ctx := connect.WithErrantRecordReporter(context.Background(), rep)
	if err := task.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
	rs := []connect.Record{{Topic: "t", Offset: 0, Value: map[string]any{"a": int32(0)}, ValueSchema: schema(0, false)},
		{Topic: "t", Offset: 1, Value: map[string]any{"a": int32(1), "b": "x"}, ValueSchema: schema(0, true)}}
	if err := putWait(ctx, task, rs); err != nil {
		t.Fatal(err)
	}
	if len(rep.offs) != 1 || rep.offs[0] != 1 || !strings.Contains(rep.errs[0], "schema.compatibility=BACKWARD needs a version") {
		t.Errorf("reported %v %v", rep.offs, rep.errs)
	}
}
