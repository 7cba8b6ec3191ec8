package s3sink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/runtime/connect"
)

// keyedRecs are records with string, null and then struct keys, and
// headers of several types, none or a null one.
func keyedRecs(from, to int) []connect.Record {
	keys := []any{"k0", nil, "k2", "k3", map[string]any{"id": json.Number("4")}, map[string]any{"id": json.Number("5")}, nil}
	hdrs := [][]connect.Header{
		{{Key: "h", Value: []byte("v"), Data: "v"}},
		nil,
		{{Key: "n", Value: []byte("7"), Data: int64(7)}, {Key: "null"}},
		{{Key: "b", Data: true}},
		{{Key: "m", Data: map[string]any{"a": "b"}}},
		{{Key: "h", Data: "v5"}},
		{{Key: "h", Data: "v6"}},
	}
	var out []connect.Record
	for i := from; i < to; i++ {
		out = append(out, connect.Record{Topic: "t", Offset: int64(i), Key: keys[i], Headers: hdrs[i],
			Value: map[string]any{"id": json.Number(string(rune('0' + i)))}})
	}
	return out
}

type hdr struct {
	Key   *string `avro:"key" parquet:"key,optional"`
	Value *string `avro:"value" parquet:"value,optional"`
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func renderHeaders(hs []*hdr) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, str(h.Key)+"="+str(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// The stored keys and headers objects follow keys.format.class and
// headers.format.class: Confluent's names (<file>.keys.<ext>), readable
// back from a real S3 server, cut where the values' objects are.
func TestKeysAndHeadersFormatsAgainstVersityGW(t *testing.T) {
	wantHeaders := []string{"[h=v]", "[]", "[n=7 null=<nil>]", "[b=true]", `[m={"a":"b"}]`, "[h=v5]", "[h=v6]"}
	for _, tc := range []struct {
		name                   string
		format, keys, headers  string
		valExt, keyExt, hdrExt string
	}{
		{"avro defaults", JSONFormat, "", "", ".json", ".keys.avro", ".headers.avro"},
		{"parquet", ParquetFormat, ParquetFormat, ParquetFormat, ".snappy.parquet", ".keys.snappy.parquet", ".headers.snappy.parquet"},
		{"json", AvroFormat, JSONFormat, JSONFormat, ".avro", ".keys.json", ".headers.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			over := map[string]string{"format.class": tc.format, "flush.size": "3", "store.kafka.keys": "true", "store.kafka.headers": "true"}
			if tc.keys != "" {
				over["keys.format.class"], over["headers.format.class"] = tc.keys, tc.headers
			}
			task, srv := startVersity(t, over)
			ctx := context.Background()
			tp := connect.TopicPartition{Topic: "t"}
			_ = task.Open(ctx, []connect.TopicPartition{tp})
			if err := putWait(ctx, task, keyedRecs(0, 7)); err != nil {
				t.Fatal(err)
			}
			objs := srv.Objects(t, "")
			// By size: 0-2, 3-5, and 6 still open. With keys in Avro or
			// Parquet, the key's schema changes at 4: 0-2, 3 alone, 4-6 (a
			// null key fits any schema).
			cuts, durable := [][2]int{{0, 3}, {3, 6}}, int64(6)
			if tc.keyExt != ".keys.json" {
				cuts, durable = [][2]int{{0, 3}, {3, 4}, {4, 7}}, 7
			}
			if len(objs) != 3*len(cuts) {
				t.Fatalf("objects %v, want %d", s3test.Keys(objs), 3*len(cuts))
			}
			for _, c := range cuts {
				pre := "topics/t/partition=0/t+0+000000000" + string(rune('0'+c[0]))
				for _, ext := range []string{tc.valExt, tc.keyExt, tc.hdrExt} {
					if objs[pre+ext] == nil {
						t.Fatalf("no %s in %v", pre+ext, s3test.Keys(objs))
					}
				}
				keys, headers := readKeys(t, tc.keys, objs[pre+tc.keyExt]), readHeaders(t, tc.headers, objs[pre+tc.hdrExt])
				if len(keys) != c[1]-c[0] || len(headers) != c[1]-c[0] {
					t.Fatalf("%s: %d keys, %d headers, want %d", pre, len(keys), len(headers), c[1]-c[0])
				}
				for i, off := 0, c[0]; off < c[1]; i, off = i+1, off+1 {
					want := map[int]string{0: `k0`, 1: `<nil>`, 2: `k2`, 3: `k3`, 4: `{"id":4}`, 5: `{"id":5}`, 6: `<nil>`}[off]
					if keys[i] != want {
						t.Errorf("key of offset %d: %s, want %s", off, keys[i], want)
					}
					if headers[i] != wantHeaders[off] {
						t.Errorf("headers of offset %d: %s, want %s", off, headers[i], wantHeaders[off])
					}
				}
			}
			if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 7}); d[tp] != durable {
				t.Errorf("durable %v, want %d", d, durable)
			}
		})
	}
}

// readKeys decodes a keys object to one text per key: the string, compact
// JSON of a struct, or <nil>.
func readKeys(t *testing.T, format string, b []byte) []string {
	t.Helper()
	var out []string
	render := func(k any) string {
		switch x := k.(type) {
		case nil:
			return "<nil>"
		case string:
			return x
		case map[string]any:
			if inner, ok := x["io.confluent.connect.avro.ConnectDefault"]; ok {
				x = inner.(map[string]any) // a record in a union
			}
			j, _ := json.Marshal(x)
			return string(j)
		}
		return fmt.Sprint(k)
	}
	switch format {
	case "", AvroFormat:
		_, keys := readAvro(t, b)
		for _, k := range keys {
			out = append(out, render(k))
		}
	case ParquetFormat:
		schema, rows := readParquet(t, b)
		if !strings.HasPrefix(fmt.Sprint(schema), "message RecordKey {") {
			t.Errorf("keys schema %s", schema)
		}
		for _, r := range rows {
			switch {
			case r["key"] != nil:
				out = append(out, r.strs("key")[0])
			case r["key.id"][0].IsNull() && r["key.id"][0].DefinitionLevel() == 0:
				out = append(out, "<nil>")
			default:
				out = append(out, `{"id":`+r.strs("key.id")[0]+`}`)
			}
		}
	case JSONFormat:
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var k any
			if err := json.Unmarshal([]byte(line), &k); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			switch x := k.(type) {
			case nil:
				out = append(out, "<nil>")
			case string:
				out = append(out, x)
			default:
				out = append(out, line)
			}
		}
	}
	return out
}

// readHeaders decodes a headers object to one text per record.
func readHeaders(t *testing.T, format string, b []byte) []string {
	t.Helper()
	var out []string
	str := func(v any) string {
		if m, ok := v.(map[string]any); ok {
			v = m["string"]
		}
		if v == nil {
			return "<nil>"
		}
		return v.(string)
	}
	switch format {
	case "", AvroFormat:
		_, recs := readAvro(t, b)
		for _, r := range recs {
			var parts []string
			for _, h := range r.([]any) {
				m := h.(map[string]any)
				parts = append(parts, str(m["key"])+"="+str(m["value"]))
			}
			out = append(out, "["+strings.Join(parts, " ")+"]")
		}
	case ParquetFormat:
		schema, rows := readParquet(t, b)
		if !strings.HasPrefix(fmt.Sprint(schema), "message RecordHeaders {") {
			t.Errorf("headers schema %s", schema)
		}
		for _, r := range rows {
			ks, vs := r.strs("headers.array.key"), r.strs("headers.array.value")
			var parts []string
			for i := range ks {
				if ks[i] != "<nil>" {
					parts = append(parts, ks[i]+"="+vs[i])
				}
			}
			out = append(out, "["+strings.Join(parts, " ")+"]")
		}
	case JSONFormat:
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var hs []*hdr
			if err := json.Unmarshal([]byte(line), &hs); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			out = append(out, renderHeaders(hs))
		}
	}
	return out
}
