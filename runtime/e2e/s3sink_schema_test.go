package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2/ocf"
	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
)

// orderSchema is a Connect schema as JsonConverter (schemas.enable=true)
// carries it: an int32, a Decimal, a Timestamp and an optional string.
const orderSchema = `{"type":"struct","name":"com.example.Order","version":1,"optional":false,"fields":[` +
	`{"field":"id","type":"int32","optional":false},` +
	`{"field":"price","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"},"optional":false},` +
	`{"field":"at","type":"int64","name":"org.apache.kafka.connect.data.Timestamp","version":1,"optional":false},` +
	`{"field":"note","type":"string","optional":true}]}`

// Kafka → JsonConverter with schemas → S3 sink: Avro and Parquet objects
// carry the records' Connect schema as Confluent writes it (record name,
// int32 as int, decimal, timestamp-millis, an optional field as a union);
// a tombstone and, in Parquet, a record that is not a struct go to the dead
// letter queue through the errant record reporter (errors.tolerance=all),
// and the offsets commit past them. In Avro, as in Confluent's, the string
// is written, alone: its schema differs from its neighbours'.
func TestS3SinkConnectSchemasAndErrantRecords(t *testing.T) {
	srv := s3test.Start(t)
	const tp = "typed"
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		var v []byte
		switch i {
		case 3: // a string: neither Avro's record nor Parquet's struct
			v = []byte(`{"schema":{"type":"string","optional":false},"payload":"oops"}`)
		case 6: // a tombstone, under behavior.on.null.values=fail
		default:
			note := "null"
			if i%2 == 0 {
				note = fmt.Sprintf(`"n%d"`, i)
			}
			v = []byte(fmt.Sprintf(`{"schema":%s,"payload":{"id":%d,"price":"MDk=","at":%d,"note":%s}}`, orderSchema, i, 1704067200000+int64(i), note))
		}
		recs = append(recs, &kgo.Record{Topic: tp, Partition: 0, Key: []byte(fmt.Sprint(i)), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cancel()

	for _, tc := range []struct {
		format  string
		objects map[string]string // start offset → "id:note" of its records
		commit  int64
		dlq     string
	}{
		{"avro", map[string]string{"0000000000": "0:n0 1:- 2:n2", "0000000003": "oops", "0000000004": "4:n4 5:- 7:- 8:n8"}, 9, "6"},
		{"parquet", map[string]string{"0000000000": "0:n0 1:- 2:n2 4:n4", "0000000005": "5:- 7:- 8:n8 9:-"}, 10, "3 6"},
	} {
		format := tc.format
		t.Run(format, func(t *testing.T) {
			name := "typed-" + format
			cfg := map[string]string{
				"connector.class": s3sink(), "tasks.max": "1", "topics": tp, "flush.size": "4", "topics.dir": name,
				"format.class":    map[string]string{"avro": "io.confluent.connect.s3.format.avro.AvroFormat", "parquet": "io.confluent.connect.s3.format.parquet.ParquetFormat"}[format],
				"value.converter": connect.JSONConverterClass, "value.converter.schemas.enable": "true",
				"key.converter": connect.StringConverterClass, "offset.flush.interval.ms": "100",
				"errors.tolerance": "all", "errors.deadletterqueue.topic.name": name + "-dlq",
			}
			for k, v := range srv.Config() {
				cfg[k] = v
			}
			w := startInProcess(t, &jobs.WorkerSpec{Connector: name, Class: s3sink(), Config: cfg, BootstrapServers: addr,
				Mcu: 1, Workers: 1, TasksMax: 1, MetricsInterval: "1s"})
			eventually(t, 30*time.Second, fmt.Sprintf("%d objects and the commit at %d", len(tc.objects), tc.commit), func() bool {
				if len(srv.Objects(t, name+"/")) != len(tc.objects) {
					return false
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				off, err := groupCommitted(ctx, cl, jobs.ConsumerGroup(name))
				return err == nil && off[0] == tc.commit
			})
			w.stop(t)
			objs := srv.Objects(t, name+"/")
			ext := map[string]string{"avro": ".avro", "parquet": ".snappy.parquet"}[format]
			for start, want := range tc.objects {
				key := fmt.Sprintf("%s/%s/partition=0/%s+0+%s%s", name, tp, tp, start, ext)
				b, ok := objs[key]
				if !ok {
					t.Fatalf("no %s in %v", key, s3test.Keys(objs))
				}
				if got := strings.Join(readTyped(t, format, b), " "); got != want {
					t.Errorf("%s holds %s, want %s", key, got, want)
				}
			}
			dlq := consumeAll(t, addr, name+"-dlq", len(strings.Fields(tc.dlq)))
			var got []string
			for _, r := range dlq {
				got = append(got, string(r.Key))
			}
			sort.Strings(got)
			if strings.Join(got, " ") != tc.dlq {
				t.Errorf("dead letter queue holds keys %v, want %s", got, tc.dlq)
			}
		})
	}
}

// readTyped reads an object of orders as "id:note" strings, checking the
// schema Confluent's AvroData (and parquet-avro) would write.
func readTyped(t *testing.T, format string, b []byte) []string {
	t.Helper()
	var out []string
	note := func(n any) string {
		if n == nil {
			return "-"
		}
		return fmt.Sprint(n)
	}
	if format == "avro" {
		dec, err := ocf.NewDecoder(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		schema := string(dec.Metadata()["avro.schema"])
		if schema == `"string"` {
			for dec.HasNext() {
				var s string
				if err := dec.Decode(&s); err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
			return out
		}
		for _, w := range []string{`"name":"Order","namespace":"com.example"`, `{"name":"id","type":"int"}`, `"logicalType":"decimal"`, `"logicalType":"timestamp-millis"`,
			`{"name":"note","type":["null","string"],"default":null}`, `"connect.name":"com.example.Order"`} {
			if !strings.Contains(schema, w) {
				t.Errorf("schema lacks %s: %s", w, schema)
			}
		}
		for dec.HasNext() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			if p, _ := m["price"].(*big.Rat); p == nil || p.FloatString(2) != "123.45" {
				t.Errorf("price %v", m["price"])
			}
			if at, _ := m["at"].(time.Time); at.UnixMilli() != 1704067200000+int64(m["id"].(int)) {
				t.Errorf("at %v", m["at"])
			}
			out = append(out, fmt.Sprintf("%d:%s", m["id"], note(m["note"])))
		}
		return out
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprint(f.Schema())
	for _, w := range []string{"message Order {", "required int32 id", "required binary price (DECIMAL(64,2))", "required int64 at (TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS))", "optional binary note (STRING)"} {
		if !strings.Contains(s, w) {
			t.Errorf("schema lacks %q:\n%s", w, s)
		}
	}
	rows := make([]parquet.Row, 10)
	rr := f.RowGroups()[0].Rows()
	defer rr.Close()
	n, _ := rr.ReadRows(rows)
	for _, row := range rows[:n] {
		id, nt := row[0].Int32(), any(nil)
		if !row[3].IsNull() {
			nt = string(row[3].ByteArray())
		}
		if price := new(big.Int).SetBytes(row[1].ByteArray()); price.Int64() != 12345 {
			t.Errorf("price %v", price)
		}
		out = append(out, fmt.Sprintf("%d:%s", id, note(nt)))
	}
	return out
}

// consumeAll reads n records of a topic from its start.
func consumeAll(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}
