package s3sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2/ocf"
	"github.com/parquet-go/parquet-go"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/runtime/connect"
)

// schemaRecs are schemaless values as JsonConverter with
// schemas.enable=false hands them over: an object as a map, numbers as
// json.Number.
func schemaRecs(from, n int) []connect.Record {
	out := make([]connect.Record, n)
	for i := range out {
		off := from + i
		out[i] = connect.Record{Topic: "t", Partition: 0, Offset: int64(off), Value: map[string]any{
			"id": json.Number(fmt.Sprint(off)), "name": fmt.Sprintf("n%d", off), "price": json.Number("1.5"),
			"ok": off%2 == 0, "raw": []byte{byte(off)}, "tags": []any{"a", "b"}, "addr": map[string]any{"city": "Paris", "zip-code": "75001"},
		}}
	}
	return out
}

// readAvro decodes a container file generically, with its schema.
func readAvro(t *testing.T, b []byte) (string, []any) {
	t.Helper()
	dec, err := ocf.NewDecoder(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	for dec.HasNext() {
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode: %v (schema %s)", err, dec.Metadata()["avro.schema"])
		}
		out = append(out, v)
	}
	if err := dec.Error(); err != nil {
		t.Fatal(err)
	}
	return string(dec.Metadata()["avro.schema"]), out
}

// Schemaless values: the object's schema is derived from its records, each
// field required until a record lacks it or holds null; a record of
// another shape widens the object's schema rather than cutting it.
func TestAvroAgainstVersityGW(t *testing.T) {
	for _, codec := range []string{"null", "snappy", "deflate", "zstandard"} {
		t.Run(codec, func(t *testing.T) {
			task, srv := startVersity(t, map[string]string{"format.class": AvroFormat, "avro.codec": codec, "flush.size": "3"})
			ctx := context.Background()
			_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
			rs := schemaRecs(0, 4)
			rs = append(rs, connect.Record{Topic: "t", Offset: 4, Value: map[string]any{"other": "schema"}}, connect.Record{Topic: "t", Offset: 5, Value: map[string]any{"other": "x"}})
			if err := putWait(ctx, task, rs); err != nil {
				t.Fatal(err)
			}
			// 0-2 and 3-5 by size: 4 and 5 widen 3's schema.
			objs := srv.Objects(t, "")
			k0, k3 := "topics/t/partition=0/t+0+0000000000.avro", "topics/t/partition=0/t+0+0000000003.avro"
			if len(objs) != 2 || objs[k0] == nil || objs[k3] == nil {
				t.Fatalf("keys %v", s3test.Keys(objs))
			}
			schema, got := readAvro(t, objs[k0])
			want := `{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[` +
				`{"name":"addr","type":{"type":"record","name":"ConnectDefault2","namespace":"io.confluent.connect.avro","fields":[{"name":"city","type":"string"},{"name":"zip_code","type":"string"}]}},` +
				`{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"ok","type":"boolean"},{"name":"price","type":"double"},{"name":"raw","type":"bytes"},` +
				`{"name":"tags","type":{"type":"array","items":"string"}}]}`
			if schema != want {
				t.Errorf("schema\n%s\nwant\n%s", schema, want)
			}
			if len(got) != 3 {
				t.Fatalf("%d records", len(got))
			}
			r := got[2].(map[string]any)
			if r["id"] != int64(2) || r["name"] != "n2" || r["price"] != 1.5 || r["ok"] != true || !bytes.Equal(r["raw"].([]byte), []byte{2}) {
				t.Errorf("record %#v", r)
			}
			if got[1].(map[string]any)["ok"] != false || got[0].(map[string]any)["id"] != int64(0) {
				t.Errorf("zero values lost: %#v", got[:2])
			}
			if addr, _ := r["addr"].(map[string]any); addr["zip_code"] != "75001" {
				t.Errorf("addr %#v", r["addr"])
			}
			if tags, _ := r["tags"].([]any); len(tags) != 2 || tags[1] != "b" {
				t.Errorf("tags %#v", r["tags"])
			}
			schema, got = readAvro(t, objs[k3])
			if !strings.Contains(schema, `{"name":"id","type":["null","long"],"default":null}`) || !strings.Contains(schema, `{"name":"other","type":["null","string"],"default":null}`) {
				t.Errorf("widened schema %s", schema)
			}
			if len(got) != 3 || got[0].(map[string]any)["id"] != int64(3) || got[0].(map[string]any)["other"] != nil ||
				got[2].(map[string]any)["other"] != "x" || got[2].(map[string]any)["id"] != nil {
				t.Errorf("widened records %#v", got)
			}
			if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{{Topic: "t"}: 6}); d[connect.TopicPartition{Topic: "t"}] != 6 {
				t.Errorf("durable %v, want 6", d)
			}
		})
	}
}

func TestParquetAgainstVersityGW(t *testing.T) {
	for codec, ext := range map[string]string{"snappy": ".snappy.parquet", "gzip": ".gz.parquet", "none": ".parquet", "zstd": ".zstd.parquet", "lz4_raw": ".lz4raw.parquet"} {
		t.Run(codec, func(t *testing.T) {
			task, srv := startVersity(t, map[string]string{"format.class": ParquetFormat, "parquet.codec": codec, "flush.size": "5"})
			ctx := context.Background()
			_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
			if err := putWait(ctx, task, schemaRecs(0, 5)); err != nil {
				t.Fatal(err)
			}
			objs := srv.Objects(t, "")
			k := "topics/t/partition=0/t+0+0000000000" + ext
			b, ok := objs[k]
			if !ok || len(objs) != 1 {
				t.Fatalf("keys %v", s3test.Keys(objs))
			}
			schema, rows := readParquet(t, b)
			// parquet-avro's schema: fields in order, required, lists in
			// the two-level structure.
			want := "message ConnectDefault {\n" +
				"\trequired group addr {\n\t\trequired binary city (STRING);\n\t\trequired binary zip_code (STRING);\n\t}\n" +
				"\trequired int64 id (INT(64,true));\n" +
				"\trequired binary name (STRING);\n\trequired boolean ok;\n\trequired double price;\n\trequired binary raw;\n" +
				"\trequired group tags (LIST) {\n\t\trepeated binary array (STRING);\n\t}\n}"
			if got := fmt.Sprint(schema); got != want {
				t.Errorf("schema\n%s\nwant\n%s", got, want)
			}
			// parquet-avro's footer: the Avro schema and the writer model.
			f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := f.Lookup("parquet.avro.schema"); !strings.HasPrefix(v, `{"type":"record","name":"ConnectDefault"`) {
				t.Errorf("parquet.avro.schema %q", v)
			}
			if v, _ := f.Lookup("writer.model.name"); v != "avro" {
				t.Errorf("writer.model.name %q", v)
			}
			if len(rows) != 5 {
				t.Fatalf("%d rows", len(rows))
			}
			r := rows[3]
			for col, want := range map[string]string{"id": "3", "name": "n3", "price": "1.5", "ok": "false", "raw": "\x03", "addr.zip_code": "75001", "tags.array": "a b"} {
				if got := strings.Join(r.strs(col), " "); got != want {
					t.Errorf("row 3 %s: %q, want %q", col, got, want)
				}
			}
			if got := rows[0].strs("ok"); len(got) != 1 || got[0] != "true" {
				t.Errorf("row 0 ok: %v", got)
			}
		})
	}
}

// A field that is null in some records is optional in its object: the
// records stay in one object rather than one per change (the audit's
// probe: 100 records alternating null and "y", flush.size 100).
func TestNullFlipWidensAgainstVersityGW(t *testing.T) {
	for _, format := range []string{AvroFormat, ParquetFormat} {
		t.Run(format[strings.LastIndexByte(format, '.')+1:], func(t *testing.T) {
			task, srv := startVersity(t, map[string]string{"format.class": format, "flush.size": "100"})
			ctx := context.Background()
			_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
			rs := make([]connect.Record, 100)
			for i := range rs {
				var a any
				if i%2 == 1 {
					a = "y"
				}
				rs[i] = connect.Record{Topic: "t", Offset: int64(i), Value: map[string]any{"a": a, "n": json.Number(fmt.Sprint(i))}}
			}
			// int widens to double too.
			rs[99].Value.(map[string]any)["n"] = json.Number("99.5")
			if err := putWait(ctx, task, rs); err != nil {
				t.Fatal(err)
			}
			objs := srv.Objects(t, "")
			if len(objs) != 1 {
				t.Fatalf("%d objects, want 1: %v", len(objs), s3test.Keys(objs))
			}
			for _, b := range objs {
				if format == AvroFormat {
					schema, got := readAvro(t, b)
					if !strings.Contains(schema, `{"name":"a","type":["null","string"],"default":null}`) || !strings.Contains(schema, `{"name":"n","type":"double"}`) {
						t.Errorf("schema %s", schema)
					}
					if len(got) != 100 || got[0].(map[string]any)["a"] != nil || got[1].(map[string]any)["a"] != "y" ||
						got[98].(map[string]any)["n"] != 98.0 || got[99].(map[string]any)["n"] != 99.5 {
						t.Errorf("records %v ... %v", got[:2], got[98:])
					}
					continue
				}
				schema, rows := readParquet(t, b)
				if s := fmt.Sprint(schema); !strings.Contains(s, "optional binary a (STRING)") || !strings.Contains(s, "required double n") {
					t.Errorf("schema %s", s)
				}
				if len(rows) != 100 || rows[0].strs("a")[0] != "<nil>" || rows[1].strs("a")[0] != "y" || rows[99].strs("n")[0] != "99.5" || rows[98].strs("n")[0] != "98" {
					t.Errorf("rows %v %v %v", rows[0], rows[1], rows[99])
				}
			}
		})
	}
}

// Scanning forward cuts an Avro object after what an earlier attempt
// wrote; the rest, whose schema widened partway, is rewritten under one
// schema and written once.
func TestScheduledRotationScansForwardAvro(t *testing.T) {
	srv := s3test.Start(t)
	cfg := validConfig()
	for k, v := range srv.Config() {
		cfg[k] = v
	}
	cfg["format.class"] = AvroFormat
	cfg["flush.size"] = "1000"
	cfg["rotate.schedule.interval.ms"] = "60000"
	cfg["timezone"] = "UTC"
	ctx := context.Background()
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	now := time.Unix(1700000000, 0)
	rec := func(i int) connect.Record {
		v := map[string]any{"n": json.Number(fmt.Sprint(i))}
		if i >= 4 {
			v["x"] = "y" // widens the schema
		}
		return connect.Record{Topic: "t", Offset: int64(i), Value: v}
	}
	run := func(n int) *sinkTask {
		task := &sinkTask{now: func() time.Time { return now }}
		if err := task.Start(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		_ = task.Open(ctx, []connect.TopicPartition{tp})
		var rs []connect.Record
		for i := 0; i < n; i++ {
			rs = append(rs, rec(i))
		}
		if err := putWait(ctx, task, rs); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		if err := putWait(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
		return task
	}
	run(3) // the object at 0 (0-2); say the commit was lost
	task := run(6)
	objs := srv.Objects(t, "")
	k0, k3 := "topics/t/partition=0/t+0+0000000000.avro", "topics/t/partition=0/t+0+0000000003.avro"
	if len(objs) != 2 || objs[k0] == nil || objs[k3] == nil {
		t.Fatalf("keys %v", s3test.Keys(objs))
	}
	_, first := readAvro(t, objs[k0])
	schema, rest := readAvro(t, objs[k3])
	if len(first) != 3 || len(rest) != 3 || !strings.Contains(schema, `{"name":"x","type":["null","string"],"default":null}`) {
		t.Fatalf("objects hold %d and %d records (schema %s)", len(first), len(rest), schema)
	}
	for i, r := range rest {
		m := r.(map[string]any)
		wantX := any(nil)
		if i > 0 {
			wantX = "y"
		}
		if m["n"] != int64(3+i) || m["x"] != wantX {
			t.Errorf("record %d: %v", 3+i, m)
		}
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 6}); d[tp] != 6 {
		t.Errorf("durable %v, want 6", d)
	}
}
