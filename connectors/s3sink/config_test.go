package s3sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// The rules across keys refuse a configuration at create time
// (Registry.ValidateConfig) as when a task starts, naming each key and its
// rule, every problem at once.
func TestCrossKeyRules(t *testing.T) {
	reg := connect.NewRegistry()
	if err := reg.Register(Plugin()); err != nil {
		t.Fatal(err)
	}
	const ref = "${env:S3_SECRET}"
	for _, tc := range []struct {
		name string
		over map[string]string
		want map[string]string // key → fragment of its message; nil: valid
	}{
		{"field partitioner without fields", map[string]string{"partitioner.class": FieldPartitioner},
			map[string]string{"partition.field.name": "is required with partitioner.class=" + FieldPartitioner}},
		{"daily without timezone", map[string]string{"partitioner.class": DailyPartitioner, "locale": "en-US"},
			map[string]string{"timezone": "is required with partitioner.class=" + DailyPartitioner}},
		{"hourly without locale", map[string]string{"partitioner.class": HourlyPartitioner, "timezone": "UTC"},
			map[string]string{"locale": "is required"}},
		{"time-based without duration, path, timezone and locale", map[string]string{"partitioner.class": TimeBasedPartitioner},
			map[string]string{"partition.duration.ms": "is required", "path.format": "is required", "timezone": "is required", "locale": "is required"}},
		{"time-based with a zero duration", map[string]string{"partitioner.class": TimeBasedPartitioner, "partition.duration.ms": "0",
			"path.format": "'year'=YYYY", "timezone": "UTC", "locale": "en-US"},
			map[string]string{"partition.duration.ms": `must be > 0 with partitioner.class=` + TimeBasedPartitioner + `, got "0"`}},
		{"RecordField without its field", map[string]string{"timestamp.extractor": "RecordField", "timestamp.field": ""},
			map[string]string{"timestamp.field": "is required with timestamp.extractor=RecordField"}},
		{"scheduled rotation without timezone", map[string]string{"rotate.schedule.interval.ms": "3600000"},
			map[string]string{"timezone": "is required with rotate.schedule.interval.ms"}},
		{"scheduled rotation with timezone", map[string]string{"rotate.schedule.interval.ms": "3600000", "timezone": "Europe/Paris"}, nil},
		{"gzip with Avro", map[string]string{"format.class": AvroFormat, "s3.compression.type": "gzip"},
			map[string]string{"s3.compression.type": "set avro.codec instead"}},
		{"gzip with Parquet", map[string]string{"format.class": ParquetFormat, "s3.compression.type": "gzip"},
			map[string]string{"s3.compression.type": "set parquet.codec instead"}},
		{"gzip with stored keys and headers in the default Avro", map[string]string{"s3.compression.type": "gzip", "store.kafka.keys": "true", "store.kafka.headers": "true"},
			map[string]string{"keys.format.class": "with s3.compression.type=gzip and store.kafka.keys=true", "headers.format.class": "with s3.compression.type=gzip and store.kafka.headers=true"}},
		{"gzip with stored keys and headers in JSON", map[string]string{"s3.compression.type": "gzip", "store.kafka.keys": "true", "store.kafka.headers": "true",
			"keys.format.class": ByteArrayFormat, "headers.format.class": JSONFormat}, nil},
		{"gzip with keys not stored", map[string]string{"s3.compression.type": "gzip", "keys.format.class": ParquetFormat}, nil},
		{"ByteArray headers", map[string]string{"store.kafka.headers": "true", "headers.format.class": ByteArrayFormat},
			map[string]string{"headers.format.class": "not supported"}},
		{"KMS key without aws:kms", map[string]string{"s3.sse.kms.key.id": "k", "s3.ssea.name": "AES256"},
			map[string]string{"s3.sse.kms.key.id": "needs s3.ssea.name=aws:kms"}},
		{"SSE-C is AES256 with a customer key, as Confluent's", map[string]string{"s3.sse.customer.key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "s3.ssea.name": "AES256"}, nil},
		{"customer key without AES256", map[string]string{"s3.sse.customer.key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
			map[string]string{"s3.sse.customer.key": "needs s3.ssea.name=AES256"}},
		{"customer key with aws:kms", map[string]string{"s3.sse.customer.key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "s3.ssea.name": "aws:kms"},
			map[string]string{"s3.sse.customer.key": "needs s3.ssea.name=AES256"}},
		{"a reference is the worker's to check", map[string]string{"s3.sse.customer.key": ref, "s3.ssea.name": "AES256"}, nil},
		{"AssumeRole without a role", map[string]string{"s3.credentials.provider.class": AssumeRoleProvider},
			map[string]string{"s3.credentials.provider.sts.role.arn": "is required with s3.credentials.provider.class=" + AssumeRoleProvider}},
		{"AssumeRole as Confluent's provider is configured", map[string]string{"s3.credentials.provider.class": AssumeRoleProvider,
			"s3.credentials.provider.sts.role.arn": "arn:aws:iam::1:role/r", "s3.credentials.provider.sts.role.session.name": "s",
			"s3.credentials.provider.sts.role.external.id": "x", "s3.credentials.provider.sts.region": "eu-west-1"}, nil},
		{"AssumeRole with the keys earlier Ferry read", map[string]string{"s3.credentials.provider.class": AssumeRoleProvider,
			"sts.role.arn": "arn:aws:iam::1:role/r"}, nil},
		{"write tombstones without keys", map[string]string{"behavior.on.null.values": "write"},
			map[string]string{"behavior.on.null.values": "write needs store.kafka.keys=true"}},
		{"write tombstones with keys", map[string]string{"behavior.on.null.values": "write", "store.kafka.keys": "true"}, nil},
		{"bzip2", map[string]string{"format.class": AvroFormat, "avro.codec": "bzip2"},
			map[string]string{"avro.codec": "no library Ferry may use can write it"}},
		{"lzo", map[string]string{"format.class": ParquetFormat, "parquet.codec": "lzo"},
			map[string]string{"parquet.codec": "lzo is not supported"}},
		{"gzip level", map[string]string{"s3.compression.type": "gzip", "s3.compression.level": "10"},
			map[string]string{"s3.compression.level": "from -1 to 9"}},
		{"decimal format", map[string]string{"json.decimal.format": "numeric"}, nil},
		{"bad decimal format", map[string]string{"json.decimal.format": "text"},
			map[string]string{"json.decimal.format": "BASE64"}},
		{"proxy", map[string]string{"s3.proxy.url": "http://proxy:3128", "s3.proxy.user": "u", "s3.proxy.password": "p"}, nil},
		{"bad proxy", map[string]string{"s3.proxy.url": "proxy"},
			map[string]string{"s3.proxy.url": "must be a URL"}},
		{"acceleration with path style", map[string]string{"s3.wan.mode": "true", "s3.path.style.access.enabled": "true"},
			map[string]string{"s3.wan.mode": "excludes s3.path.style.access.enabled=true"}},
		{"extra tags", map[string]string{"s3.object.tagging": "true", "s3.object.tagging.key.value.pairs": "team:data,env:prod"}, nil},
		{"bad extra tags", map[string]string{"s3.object.tagging.key.value.pairs": "team"},
			map[string]string{"s3.object.tagging.key.value.pairs": "key:value pairs"}},
		{"part size over an int", map[string]string{"s3.part.size": "3000000000"},
			map[string]string{"s3.part.size": "integer"}},
		{"every problem at once", map[string]string{"partitioner.class": FieldPartitioner, "format.class": ParquetFormat, "s3.compression.type": "gzip",
			"rotate.schedule.interval.ms": "60000", "s3.credentials.provider.class": AssumeRoleProvider, "flush.size": "0"},
			map[string]string{"partition.field.name": "is required", "s3.compression.type": "parquet.codec", "timezone": "rotate.schedule.interval.ms",
				"s3.credentials.provider.sts.role.arn": "is required", "flush.size": "≥ 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			for k, v := range tc.over {
				cfg[k] = v
			}
			err := reg.ValidateConfig(Class, cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tc.over["s3.sse.customer.key"] == ref {
					return // resolved by the worker before the task starts
				}
				task := &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
				if err := task.Start(context.Background(), cfg); err != nil {
					t.Fatalf("task refused: %v", err)
				}
				_ = task.Stop()
				return
			}
			var ces connect.ConfigErrors
			if !errors.As(err, &ces) {
				t.Fatalf("got %v, want ConfigErrors", err)
			}
			got := map[string]string{}
			for _, e := range ces {
				if _, dup := got[e.Key]; dup {
					t.Errorf("%s reported twice: %v", e.Key, err)
				}
				got[e.Key] = e.Message
			}
			for k, frag := range tc.want {
				if !strings.Contains(got[k], frag) {
					t.Errorf("%s: %q, want it to say %q (all: %v)", k, got[k], frag, err)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("problems %v, want only %v", got, tc.want)
			}
			// The task applies the same rules.
			task := &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
			serr := task.Start(context.Background(), cfg)
			for k := range tc.want {
				if serr == nil || !strings.Contains(serr.Error(), k+": ") {
					t.Errorf("task start: %v, want a problem with %s", serr, k)
				}
			}
		})
	}
}

// The Confluent keys Ferry implements act as Confluent's do.
func TestConfluentKeysAct(t *testing.T) {
	ctx := context.Background()
	start := func(t *testing.T, over map[string]string, rep connect.ErrantRecordReporter) (*sinkTask, *fakeUploader) {
		t.Helper()
		cfg := validConfig()
		for k, v := range over {
			cfg[k] = v
		}
		up := &fakeUploader{objects: map[string][]byte{}}
		task := &sinkTask{client: up}
		sctx := ctx
		if rep != nil {
			sctx = connect.WithErrantRecordReporter(ctx, rep)
		}
		if err := task.Start(sctx, cfg); err != nil {
			t.Fatal(err)
		}
		_ = task.Open(ctx, []connect.TopicPartition{{Topic: "t"}})
		return task, up
	}
	t.Run("STS keys under Confluent's names, the bare ones still read", func(t *testing.T) {
		in := connect.WithDefaults(ConfigSpec, map[string]string{"sts.role.arn": "arn:old", "sts.role.session.name": "old"})
		got := withLegacyKeys(in)
		if got[KeySTSRoleARN] != "arn:old" || got[KeySTSSessionName] != "old" {
			t.Errorf("legacy keys not read: %v", got)
		}
		if _, ok := in[KeySTSRoleARN]; ok {
			t.Errorf("withLegacyKeys wrote into its argument: %v", in)
		}
		got = withLegacyKeys(map[string]string{"sts.role.arn": "arn:old", KeySTSRoleARN: "arn:new"})
		if got[KeySTSRoleARN] != "arn:new" {
			t.Errorf("the current key lost to the legacy one: %v", got[KeySTSRoleARN])
		}
	})
	t.Run("s3.compression.level", func(t *testing.T) {
		sizes := map[string]int{}
		for _, level := range []string{"0", "9"} {
			task, up := start(t, map[string]string{"s3.compression.type": "gzip", "s3.compression.level": level, "flush.size": "200"}, nil)
			if err := putWait(ctx, task, recs("t", 0, 0, 200)); err != nil {
				t.Fatal(err)
			}
			b := up.objects["topics/t/partition=0/t+0+0000000000.json.gz"]
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if raw, _ := io.ReadAll(zr); strings.Count(string(raw), "\n") != 200 {
				t.Errorf("level %s: %d lines", level, strings.Count(string(raw), "\n"))
			}
			sizes[level] = len(b)
		}
		if sizes["9"]*4 >= sizes["0"] {
			t.Errorf("gzip sizes %v: level 9 not much smaller than level 0 (stored)", sizes)
		}
	})
	t.Run("s3.object.tagging.key.value.pairs", func(t *testing.T) {
		task, _ := start(t, map[string]string{"s3.object.tagging": "true", "s3.object.tagging.key.value.pairs": "team:data, env:prod"}, nil)
		a := task.attrs(&openFile{first: 3, last: 7, n: 5}, false)
		if got := *a.tagging; got != "endOffset=7&env=prod&recordCount=5&startOffset=3&team=data" {
			t.Errorf("tagging %s", got)
		}
	})
	t.Run("partitioner.max.open.files", func(t *testing.T) {
		task, up := start(t, map[string]string{"partitioner.class": FieldPartitioner, "partition.field.name": "r", "partitioner.max.open.files": "2", "flush.size": "100"}, nil)
		var rs []connect.Record
		for i, r := range []string{"a", "b", "a", "c"} {
			rs = append(rs, connect.Record{Topic: "t", Offset: int64(i), Value: map[string]any{"r": r}})
		}
		if err := putWait(ctx, task, rs); err != nil {
			t.Fatal(err)
		}
		// c would be a third open object: a and b are committed first.
		if len(up.objects) != 2 || up.objects["topics/t/r=a/t+0+0000000000.json"] == nil || up.objects["topics/t/r=b/t+0+0000000001.json"] == nil {
			t.Errorf("objects %v", keysOf(up.objects))
		}
	})
	t.Run("rotate.file.on.partition.change=false", func(t *testing.T) {
		for _, change := range []string{"true", "false"} {
			task, up := start(t, map[string]string{"partitioner.class": FieldPartitioner, "partition.field.name": "r", "flush.size": "100",
				"rotate.interval.ms": "600000", "timestamp.extractor": "Record", "rotate.file.on.partition.change": change}, nil)
			var rs []connect.Record
			for i, r := range []string{"a", "b", "a", "b"} {
				rs = append(rs, connect.Record{Topic: "t", Offset: int64(i), Timestamp: time.Unix(1700000000, 0), Value: map[string]any{"r": r}})
			}
			if err := putWait(ctx, task, rs); err != nil {
				t.Fatal(err)
			}
			// true: each change of encoded partition commits (a at 0, b at
			// 1, a at 2; b at 3 open); false: nothing is due yet.
			want := map[string][]string{"true": {"topics/t/r=a/t+0+0000000000.json", "topics/t/r=a/t+0+0000000002.json", "topics/t/r=b/t+0+0000000001.json"}, "false": nil}[change]
			got := keysOf(up.objects)
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("rotate.file.on.partition.change=%s: objects %v, want %v", change, got, want)
			}
		}
	})
	t.Run("report.null.values.to.dlq", func(t *testing.T) {
		for _, report := range []string{"true", "false"} {
			rep := &fakeReporter{}
			task, _ := start(t, map[string]string{"behavior.on.null.values": "ignore", "report.null.values.to.dlq": report,
				"errors.deadletterqueue.topic.name": "dlq", "errors.tolerance": "all"}, rep)
			if err := putWait(ctx, task, []connect.Record{{Topic: "t", Offset: 0}}); err != nil {
				t.Fatal(err)
			}
			if n := len(rep.offs); (report == "true") != (n == 1) {
				t.Errorf("report.null.values.to.dlq=%s: %d reported", report, n)
			}
			if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{{Topic: "t"}: 1}); d[connect.TopicPartition{Topic: "t"}] != 1 {
				t.Errorf("durable %v", d)
			}
		}
	})
}
