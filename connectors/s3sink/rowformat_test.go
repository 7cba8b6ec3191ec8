package s3sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hamba/avro/v2/ocf"
	"github.com/parquet-go/parquet-go"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/runtime/connect"
)

// schemaRecs are values as JsonConverter with schemas.enable=true hands
// them over: a struct as a map, int64 as json.Number, bytes decoded.
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

func TestAvroAgainstVersityGW(t *testing.T) {
	for codec, ext := range map[string]string{"null": ".avro", "snappy": ".avro", "deflate": ".avro"} {
		t.Run(codec, func(t *testing.T) {
			task, srv := startVersity(t, map[string]string{"format.class": AvroFormat, "avro.codec": codec, "flush.size": "3"})
			ctx := context.Background()
			_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
			rs := schemaRecs(0, 4)
			rs = append(rs, connect.Record{Topic: "t", Offset: 4, Value: map[string]any{"other": "schema"}}, connect.Record{Topic: "t", Offset: 5, Value: map[string]any{"other": "x"}})
			if err := putWait(ctx, task, rs); err != nil {
				t.Fatal(err)
			}
			// 0-2 by size, 3 by the schema change, 4-5 still open.
			objs := srv.Objects(t, "")
			k0, k3 := "topics/t/partition=0/t+0+0000000000"+ext, "topics/t/partition=0/t+0+0000000003"+ext
			if len(objs) != 2 || objs[k0] == nil || objs[k3] == nil {
				t.Fatalf("keys %v", s3test.Keys(objs))
			}
			dec, err := ocf.NewDecoder(bytes.NewReader(objs[k0]))
			if err != nil {
				t.Fatal(err)
			}
			var got []map[string]any
			for dec.HasNext() {
				var m map[string]any
				if err := dec.Decode(&m); err != nil {
					t.Fatal(err)
				}
				got = append(got, m)
			}
			if len(got) != 3 {
				t.Fatalf("%d records", len(got))
			}
			if got[1]["ok"] != false || got[0]["id"] != int64(0) {
				t.Errorf("zero values lost: %#v", got[:2])
			}
			r := got[2]
			if r["id"] != int64(2) || r["name"] != "n2" || r["price"] != 1.5 || r["ok"] != true || !bytes.Equal(r["raw"].([]byte), []byte{2}) {
				t.Errorf("record %#v", r)
			}
			// Optional fields are unions: the generic decoder wraps them.
			addr, _ := r["addr"].(map[string]any)
			addr, _ = addr["ConnectDefault_addr"].(map[string]any)
			if addr == nil || addr["zip_code"] != "75001" {
				t.Errorf("addr %#v", r["addr"])
			}
			tagsU, _ := r["tags"].(map[string]any)
			if tags, _ := tagsU["array"].([]any); len(tags) != 2 || tags[1] != "b" {
				t.Errorf("tags %#v", r["tags"])
			}
			if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{{Topic: "t"}: 6}); d[connect.TopicPartition{Topic: "t"}] != 4 {
				t.Errorf("durable %v, want 4", d)
			}
		})
	}
}

type pqAddr struct {
	City    *string `parquet:"city,optional"`
	ZipCode *string `parquet:"zip-code,optional"`
}

type pqRow struct {
	ID    *int64   `parquet:"id,optional"`
	Name  *string  `parquet:"name,optional"`
	Price *float64 `parquet:"price,optional"`
	OK    *bool    `parquet:"ok,optional"`
	Raw   []byte   `parquet:"raw,optional"`
	Addr  *pqAddr  `parquet:"addr,optional"`
}

func TestParquetAgainstVersityGW(t *testing.T) {
	for codec, ext := range map[string]string{"snappy": ".snappy.parquet", "gzip": ".gz.parquet", "none": ".parquet", "zstd": ".zstd.parquet"} {
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
			rows, err := parquet.Read[pqRow](bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 5 {
				t.Fatalf("%d rows", len(rows))
			}
			if r0 := rows[0]; r0.ID == nil || *r0.ID != 0 || r0.OK == nil || !*r0.OK {
				t.Errorf("zero values lost: %+v", r0)
			}
			r := rows[3]
			if r.ID == nil || r.Name == nil || r.Price == nil || r.OK == nil || r.Addr == nil || r.Addr.ZipCode == nil {
				t.Fatalf("row %+v", r)
			}
			if *r.ID != 3 || *r.Name != "n3" || *r.Price != 1.5 || *r.OK || !bytes.Equal(r.Raw, []byte{3}) || *r.Addr.ZipCode != "75001" {
				t.Errorf("row %+v", r)
			}
		})
	}
}
