package s3sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/runtime/connect"
)

// startVersity starts a task on a real S3 server with cfg over validConfig.
func startVersity(t *testing.T, over map[string]string) (*sinkTask, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t)
	cfg := validConfig()
	for k, v := range srv.Config() {
		cfg[k] = v
	}
	cfg["s3.bucket.name"] = srv.Bucket
	for k, v := range over {
		cfg[k] = v
	}
	task := &sinkTask{}
	if err := task.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Stop() })
	return task, srv
}

func TestValidateConfigSurface(t *testing.T) {
	reg := connect.NewRegistry()
	if err := reg.Register(Plugin()); err != nil {
		t.Fatal(err)
	}
	good := validConfig()
	for k, v := range map[string]string{
		"partitioner.class": HourlyPartitioner, "timezone": "Europe/Paris", "locale": "fr-FR",
		"timestamp.extractor": "RecordField", "timestamp.field": "ts", "path.format": "'y'=YYYY/'m'=MM",
		"format.class": ByteArrayFormat, "format.bytearray.separator": `\r\n`, "s3.object.tagging": "true",
		"s3.ssea.name": "aws:kms", "s3.acl.canned": "bucket-owner-full-control", "s3.part.size": "5242880",
		"s3.part.retries": "5", "s3.retry.backoff.ms": "100", "store.kafka.keys": "true", "store.kafka.headers": "true",
		"s3.credentials.provider.class": AssumeRoleProvider, "sts.role.arn": "arn:aws:iam::1:role/r",
	} {
		good[k] = v
	}
	if err := reg.ValidateConfig(Class, good); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	bad := validConfig()
	for k, v := range map[string]string{
		"timezone": "Mars/Olympus", "path.format": "'year'=YYYY/MMM", "timestamp.extractor": "Kafka",
		"s3.ssea.name": "rot13", "s3.acl.canned": "everyone", "s3.part.size": "1024", "s3.part.retries": "-1",
		"s3.retry.backoff.ms": "x", "s3.sse.customer.key": "short", "store.kafka.keys": "yes",
		"partition.duration.ms": "soon", "s3.credentials.provider.class": "com.example.Creds",
	} {
		bad[k] = v
	}
	var ces connect.ConfigErrors
	if err := reg.ValidateConfig(Class, bad); !errors.As(err, &ces) {
		t.Fatalf("got %v, want ConfigErrors", err)
	}
	got := map[string]bool{}
	for _, e := range ces {
		got[e.Key] = true
	}
	for _, k := range []string{"timezone", "path.format", "timestamp.extractor", "s3.ssea.name", "s3.acl.canned", "s3.part.size",
		"s3.part.retries", "s3.retry.backoff.ms", "s3.sse.customer.key", "store.kafka.keys", "partition.duration.ms", "s3.credentials.provider.class"} {
		if !got[k] {
			t.Errorf("no problem reported for %s: %v", k, ces)
		}
	}
}

func TestJodaAndTimePartitions(t *testing.T) {
	layout, err := parseJoda("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH/'it''s'-mm.ss")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 3, 9, 7, 5, 4, 0, time.UTC)
	if got, want := formatJoda(layout, ts), "year=2024/month=03/day=09/hour=07/it's-05.04"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	cfg := map[string]string{"partitioner.class": DailyPartitioner, "timezone": "America/New_York", "locale": "en-US"}
	var probs problems
	p := newPartitioner(cfg, "/", &probs)
	if probs.es != nil {
		t.Fatal(probs.es)
	}
	// 03:00 UTC on the 10th is still the 9th in New York.
	got, _ := p.encode(nil, time.Date(2024, 3, 10, 3, 0, 0, 0, time.UTC))
	if got != "year=2024/month=03/day=09" {
		t.Errorf("daily in New York: %q", got)
	}
	cfg = map[string]string{"partitioner.class": TimeBasedPartitioner, "timezone": "UTC", "locale": "en",
		"partition.duration.ms": "900000", "path.format": "'dt'=YYYYMMdd/'t'=HHmm"}
	p = newPartitioner(cfg, "/", &probs)
	if probs.es != nil {
		t.Fatal(probs.es)
	}
	if got, _ := p.encode(nil, time.Date(2024, 3, 10, 3, 29, 59, 0, time.UTC)); got != "dt=20240310/t=0315" {
		t.Errorf("15-minute partitions: %q", got)
	}
}

// Every partitioner writes Confluent's keys, readable, on a real S3 server.
func TestPartitionersAgainstVersityGW(t *testing.T) {
	base := time.Date(2024, 5, 1, 22, 30, 0, 0, time.UTC)
	mk := func(n int) []connect.Record {
		out := make([]connect.Record, n)
		for i := range out {
			ts := base.Add(time.Duration(i) * 20 * time.Minute)
			out[i] = connect.Record{Topic: "t", Partition: 1, Offset: int64(i), Timestamp: ts,
				Value: map[string]any{"n": json.Number(fmt.Sprint(i)), "geo": map[string]any{"region": []string{"eu", "us"}[i%2]},
					"ts": json.Number(fmt.Sprint(ts.UnixMilli()))}}
		}
		return out
	}
	cases := []struct {
		name string
		over map[string]string
		want map[string]int // key → records
	}{
		{"default", map[string]string{"flush.size": "3"}, map[string]int{
			"topics/t/partition=1/t+1+0000000000.json": 3, "topics/t/partition=1/t+1+0000000003.json": 3}},
		{"field", map[string]string{"flush.size": "3", "partitioner.class": FieldPartitioner, "partition.field.name": "geo.region"}, map[string]int{
			"topics/t/geo.region=eu/t+1+0000000000.json": 2, "topics/t/geo.region=us/t+1+0000000001.json": 1,
			"topics/t/geo.region=eu/t+1+0000000004.json": 1, "topics/t/geo.region=us/t+1+0000000003.json": 2}},
		{"hourly record time", map[string]string{"flush.size": "100", "partitioner.class": HourlyPartitioner, "timezone": "UTC", "locale": "en-US",
			"timestamp.extractor": "Record", "rotate.interval.ms": "3600000"}, map[string]int{
			"topics/t/year=2024/month=05/day=01/hour=22/t+1+0000000000.json": 2,
			"topics/t/year=2024/month=05/day=01/hour=23/t+1+0000000002.json": 3}},
		{"daily record field", map[string]string{"flush.size": "100", "partitioner.class": DailyPartitioner, "timezone": "Asia/Tokyo", "locale": "ja-JP",
			"timestamp.extractor": "RecordField", "timestamp.field": "ts", "rotate.interval.ms": "86400000", "topics.dir": "d", "file.delim": "-", "filename.offset.zero.pad.width": "4"}, map[string]int{
			"d/t/year=2024/month=05/day=02/t-1-0000.json": 6}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task, srv := startVersity(t, c.over)
			ctx := context.Background()
			tp := connect.TopicPartition{Topic: "t", Partition: 1}
			_ = task.Open(ctx, []connect.TopicPartition{tp})
			if err := putWait(ctx, task, mk(6)); err != nil {
				t.Fatal(err)
			}
			// Close the last batch: a record an hour/day later, or enough to fill flush.size.
			objs := srv.Objects(t, "")
			if len(c.want) == 1 { // daily: one batch still open; nothing written yet
				if len(objs) != 0 {
					t.Fatalf("objects before rotation: %v", s3test.Keys(objs))
				}
				next := mk(7)[6:]
				next[0].Timestamp = base.Add(48 * time.Hour)
				next[0].Value.(map[string]any)["ts"] = json.Number(fmt.Sprint(next[0].Timestamp.UnixMilli()))
				if err := putWait(ctx, task, next); err != nil {
					t.Fatal(err)
				}
				objs = srv.Objects(t, "")
			} else if c.name == "hourly record time" {
				next := mk(6)[5:]
				next[0].Offset = 6
				next[0].Timestamp = base.Add(3 * time.Hour)
				if err := putWait(ctx, task, next); err != nil {
					t.Fatal(err)
				}
				objs = srv.Objects(t, "")
				c.want["topics/t/year=2024/month=05/day=02/hour=00/t+1+0000000005.json"] = 1
			}
			if len(objs) != len(c.want) {
				t.Fatalf("keys %v, want %v", s3test.Keys(objs), c.want)
			}
			for k, n := range c.want {
				b, ok := objs[k]
				if !ok {
					t.Fatalf("missing %s in %v", k, s3test.Keys(objs))
				}
				lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
				if len(lines) != n {
					t.Errorf("%s holds %d records, want %d", k, len(lines), n)
				}
				for _, l := range lines {
					var v map[string]any
					if err := json.Unmarshal([]byte(l), &v); err != nil {
						t.Errorf("%s: unreadable line %q", k, l)
					}
				}
			}
		})
	}
}

func TestByteArrayKeysHeadersTagging(t *testing.T) {
	task, srv := startVersity(t, map[string]string{"format.class": ByteArrayFormat, "format.bytearray.separator": `\r\n`,
		"s3.compression.type": "gzip", "store.kafka.keys": "true", "store.kafka.headers": "true", "s3.object.tagging": "true", "flush.size": "2",
		"keys.format.class": ByteArrayFormat, "headers.format.class": JSONFormat})
	ctx := context.Background()
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	rs := []connect.Record{
		{Topic: "t", Offset: 7, Key: "k7", Value: []byte("seven"), Headers: []connect.Header{{Key: "h", Value: []byte("v"), Data: "v"}}},
		{Topic: "t", Offset: 8, Key: nil, Value: []byte{0, 1, 2}},
	}
	if err := putWait(ctx, task, rs); err != nil {
		t.Fatal(err)
	}
	objs := srv.Objects(t, "")
	gunzip := func(k string) string {
		zr, err := gzip.NewReader(bytes.NewReader(objs[k]))
		if err != nil {
			t.Fatalf("%s: %v (keys %v)", k, err, s3test.Keys(objs))
		}
		b, _ := io.ReadAll(zr)
		return string(b)
	}
	pre := "topics/t/partition=0/t+0+0000000007"
	if got := gunzip(pre + ".bin.gz"); got != "seven\r\n\x00\x01\x02\r\n" {
		t.Errorf("values %q", got)
	}
	if got := gunzip(pre + ".keys.bin.gz"); got != "k7\r\n\r\n" {
		t.Errorf("keys %q", got)
	}
	if got := gunzip(pre + ".headers.json.gz"); got != "[{\"key\":\"h\",\"value\":\"v\"}]\n[]\n" {
		t.Errorf("headers %q", got)
	}
	tags, err := srv.Client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(srv.Bucket), Key: aws.String(pre + ".bin.gz")})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tg := range tags.TagSet {
		m[*tg.Key] = *tg.Value
	}
	if m["startOffset"] != "7" || m["endOffset"] != "8" || m["recordCount"] != "2" {
		t.Errorf("tags %v", m)
	}
	// A JSON value is refused by ByteArrayFormat with a message saying why.
	err = putWait(ctx, task, []connect.Record{{Topic: "t", Offset: 9, Value: map[string]any{"a": "b"}}})
	if err == nil || !strings.Contains(err.Error(), "ByteArrayConverter") {
		t.Errorf("map value under ByteArrayFormat: %v", err)
	}
}

// With scheduled rotation a replay that cuts elsewhere never overwrites: it
// skips what an earlier attempt wrote and continues after it.
func TestScheduledRotationScansForward(t *testing.T) {
	srv := s3test.Start(t)
	cfg := validConfig()
	for k, v := range srv.Config() {
		cfg[k] = v
	}
	cfg["s3.bucket.name"] = srv.Bucket
	cfg["flush.size"] = "1000"
	cfg["rotate.schedule.interval.ms"] = "60000"
	cfg["timezone"] = "UTC"
	ctx := context.Background()
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	now := time.Unix(1700000000, 0)
	run := func(batches ...int) *sinkTask {
		task := &sinkTask{now: func() time.Time { return now }}
		if err := task.Start(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		_ = task.Open(ctx, []connect.TopicPartition{tp})
		from := 0
		for _, n := range batches {
			if err := putWait(ctx, task, recs("t", 0, from, n)); err != nil {
				t.Fatal(err)
			}
			from += n
			now = now.Add(time.Minute)
			if err := putWait(ctx, task, nil); err != nil {
				t.Fatal(err)
			}
		}
		return task
	}
	run(3, 4) // objects at 0 (0-2) and 3 (3-6); say the commit was lost
	task := run(5, 4)
	objs := srv.Objects(t, "")
	want := map[string]int{"topics/t/partition=0/t+0+0000000000.json": 3, "topics/t/partition=0/t+0+0000000003.json": 4,
		"topics/t/partition=0/t+0+0000000007.json": 2}
	if len(objs) != len(want) {
		t.Fatalf("keys %v", s3test.Keys(objs))
	}
	seen := map[string]int{}
	for k, n := range want {
		lines := strings.Split(strings.TrimSuffix(string(objs[k]), "\n"), "\n")
		if len(lines) != n {
			t.Errorf("%s: %d records, want %d", k, len(lines), n)
		}
		for _, l := range lines {
			seen[l]++
		}
	}
	if len(seen) != 9 {
		t.Errorf("distinct records %d, want 9", len(seen))
	}
	for l, n := range seen {
		if n != 1 {
			t.Errorf("%s written %d times", l, n)
		}
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 9}); d[tp] != 9 {
		t.Errorf("durable %v, want 9", d)
	}
}

// A missing bucket, denied access or a wrong region fail the task when it
// starts (HeadBucket), with a message naming the bucket and the key to fix.
func TestMissingBucketAndBadCredentials(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		over map[string]string
		want []string
	}{
		"missing bucket": {map[string]string{"s3.bucket.name": "no-such-bucket"}, []string{`bucket "no-such-bucket" (s3.bucket.name) does not exist`}},
		"bad secret":     {map[string]string{"aws.secret.access.key": "wrong"}, []string{`access to s3 bucket "` + srv.Bucket + `" denied`, "aws.access.key.id"}},
	} {
		cfg := validConfig()
		for k, v := range srv.Config() {
			cfg[k] = v
		}
		cfg["s3.part.retries"] = "1"
		cfg["s3.retry.backoff.ms"] = "1"
		for k, v := range tc.over {
			cfg[k] = v
		}
		task := &sinkTask{}
		err := task.Start(ctx, cfg)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Start: %v, want it to say %q", name, err, w)
			}
		}
	}
	// A bucket in another region answers 301 with its region.
	head := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amz-Bucket-Region", "eu-central-1")
		w.WriteHeader(http.StatusMovedPermanently)
	}))
	t.Cleanup(head.Close)
	cfg := validConfig()
	for k, v := range map[string]string{"store.url": head.URL, "aws.access.key.id": "k", "aws.secret.access.key": "s", "s3.part.retries": "0"} {
		cfg[k] = v
	}
	err := (&sinkTask{}).Start(ctx, cfg)
	if want := `s3 bucket "b" is in region eu-central-1, not s3.region=us-west-2: set s3.region=eu-central-1`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("wrong region: %v, want it to say %q", err, want)
	}
}

// S3 errors (503) are retried with backoff; nothing is durable until the
// upload succeeded, and the task fails once retries are spent.
func TestRetriesWithBackoff(t *testing.T) {
	d := doublingBackoff(100 * time.Millisecond)
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 30: 20 * time.Second} {
		if got, _ := d.BackoffDelay(attempt, nil); got != want {
			t.Errorf("attempt %d: %v, want %v", attempt, got, want)
		}
	}
	var mu sync.Mutex
	fails, calls := 2, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodHead {
			return // Start's HeadBucket
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= fails {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `<Error><Code>SlowDown</Code><Message>slow down</Message></Error>`)
			return
		}
		w.Header().Set("ETag", `"x"`)
	}))
	t.Cleanup(srv.Close)
	cfg := validConfig()
	for k, v := range map[string]string{"store.url": srv.URL, "aws.access.key.id": "k", "aws.secret.access.key": "s",
		"flush.size": "1", "s3.part.retries": "2", "s3.retry.backoff.ms": "20"} {
		cfg[k] = v
	}
	ctx := context.Background()
	task := &sinkTask{}
	if err := task.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	begin := time.Now()
	if err := putWait(ctx, task, recs("t", 0, 0, 1)); err != nil {
		t.Fatalf("two 503s then success: %v", err)
	}
	if calls != 3 || time.Since(begin) < 60*time.Millisecond {
		t.Errorf("calls %d in %v, want 3 after 20+40 ms of backoff", calls, time.Since(begin))
	}
	mu.Lock()
	fails, calls = 100, 0
	mu.Unlock()
	err := putWait(ctx, task, recs("t", 0, 1, 1))
	if err == nil || !strings.Contains(err.Error(), "SlowDown") || calls != 3 {
		t.Errorf("after 3 failures: %v (%d calls)", err, calls)
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 2}); d[tp] != 1 {
		t.Errorf("durable %v, want 1", d)
	}
}

func TestUnknownKeysWarned(t *testing.T) {
	var logs bytes.Buffer
	ctx := zerolog.New(&logs).WithContext(context.Background())
	cfg := validConfig()
	cfg["s3.bucket.nmae"] = "typo"
	cfg["transforms"] = "x"
	cfg["consumer.override.max.poll.records"] = "5"
	cfg["s3.elastic.buffer.enable"] = "true"
	cfg["sts.role.arn"] = "" // a legacy name: known
	task := &sinkTask{client: &fakeUploader{objects: map[string][]byte{}}}
	if err := task.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log %q: want two warnings", logs.String())
	}
	if l := lines[0]; !strings.Contains(l, "s3.bucket.nmae") || !strings.Contains(l, `"level":"warn"`) || strings.Contains(l, "transforms") ||
		strings.Contains(l, "consumer.override") || strings.Contains(l, "elastic") || strings.Contains(l, "sts.role") {
		t.Errorf("unknown keys warning %q: want only s3.bucket.nmae", l)
	}
	if l := lines[1]; !strings.Contains(l, "s3.elastic.buffer.enable (buffers come from the worker's memory budget") || !strings.Contains(l, "does not act on") {
		t.Errorf("ignored keys warning %q", l)
	}
}

func TestNextBoundary(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	for _, c := range []struct {
		now  time.Time
		iv   time.Duration
		loc  *time.Location
		want time.Time
	}{
		{time.Date(2024, 1, 1, 10, 17, 3, 0, time.UTC), time.Hour, time.UTC, time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC)},
		{time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC), 10 * time.Minute, time.UTC, time.Date(2024, 1, 1, 10, 10, 0, 0, time.UTC)},
		{time.Date(2024, 1, 1, 23, 30, 0, 0, time.UTC), 7 * time.Hour, time.UTC, time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2024, 1, 1, 15, 30, 0, 0, time.UTC), 24 * time.Hour, ny, time.Date(2024, 1, 2, 0, 0, 0, 0, ny)},
	} {
		if got := nextBoundary(c.now, c.iv, c.loc); !got.Equal(c.want) {
			t.Errorf("nextBoundary(%v, %v, %v) = %v, want %v", c.now, c.iv, c.loc, got, c.want)
		}
	}
}

// With conditional writes, a keys object an earlier attempt left without
// its records' object (it ended between the two uploads) is replaced by
// this attempt's, so the two match; a keys object whose records' object is
// in place is kept, and the records after both are written once.
func TestScheduledRotationOrphanedCompanion(t *testing.T) {
	srv := s3test.Start(t)
	cfg := validConfig()
	for k, v := range srv.Config() {
		cfg[k] = v
	}
	for k, v := range map[string]string{"flush.size": "1000", "rotate.schedule.interval.ms": "60000", "timezone": "UTC",
		"store.kafka.keys": "true", "keys.format.class": JSONFormat} {
		cfg[k] = v
	}
	ctx := context.Background()
	put := func(key, body string, end int) {
		t.Helper()
		_, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key), Body: strings.NewReader(body),
			Metadata: map[string]string{metaEndOffset: fmt.Sprint(end)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// An orphan at 0 (keys of 0-1, no values), and a complete pair at 5 (5-6).
	put("topics/t/partition=0/t+0+0000000000.keys.json", "\"stale\"\n\"stale\"\n", 1)
	put("topics/t/partition=0/t+0+0000000005.keys.json", "\"k5\"\n\"k6\"\n", 6)
	put("topics/t/partition=0/t+0+0000000005.json", "{\"n\":5,\"s\":\"<&>\"}\n{\"n\":6,\"s\":\"<&>\"}\n", 6)
	tp := connect.TopicPartition{Topic: "t", Partition: 0}
	now := time.Unix(1700000000, 0)
	task := &sinkTask{now: func() time.Time { return now }}
	if err := task.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	_ = task.Open(ctx, []connect.TopicPartition{tp})
	batch := func(from, n int) {
		rs := recs("t", 0, from, n)
		for i := range rs {
			rs[i].Key = fmt.Sprintf("k%d", rs[i].Offset)
		}
		if err := putWait(ctx, task, rs); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		if err := putWait(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
	}
	batch(0, 5) // 0-4: the orphan at 0 is replaced
	batch(5, 4) // 5-8: 5-6 are in place, 7-8 go to 7
	objs := srv.Objects(t, "")
	want := map[string]string{
		"topics/t/partition=0/t+0+0000000000.keys.json": "\"k0\"\n\"k1\"\n\"k2\"\n\"k3\"\n\"k4\"\n",
		"topics/t/partition=0/t+0+0000000005.keys.json": "\"k5\"\n\"k6\"\n",
		"topics/t/partition=0/t+0+0000000007.keys.json": "\"k7\"\n\"k8\"\n",
	}
	for k, w := range want {
		if string(objs[k]) != w {
			t.Errorf("%s: %q, want %q", k, objs[k], w)
		}
	}
	for _, start := range []string{"0000000000", "0000000005", "0000000007"} {
		if objs["topics/t/partition=0/t+0+"+start+".json"] == nil {
			t.Errorf("no values object at %s: %v", start, s3test.Keys(objs))
		}
	}
	if len(objs) != 6 {
		t.Errorf("objects %v", s3test.Keys(objs))
	}
	if d, _ := task.PreCommit(ctx, map[connect.TopicPartition]int64{tp: 9}); d[tp] != 9 {
		t.Errorf("durable %v, want 9", d)
	}
}
