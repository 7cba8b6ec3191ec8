package devstack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func testConfig(dir string) Config {
	return Config{
		DataDir: dir,
		NATS:    NATSConfig{Addr: "127.0.0.1:0"},
		Kafka:   KafkaConfig{Addr: "127.0.0.1:0"},
		S3:      S3Config{Addr: "127.0.0.1:0"},
		Logger:  zerolog.New(zerolog.NewTestWriter(nil)).Level(zerolog.WarnLevel),
	}
}

func startStack(t *testing.T, ctx context.Context, cfg Config) *Stack {
	t.Helper()
	st, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

func s3Client(st *Stack) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(st.S3Endpoint()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("someone", "anything", ""),
	})
}

func TestStackServesAndPersists(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)

	st := startStack(t, ctx, cfg)
	if !strings.HasPrefix(st.NATSURL(), "nats://127.0.0.1:") || !strings.HasPrefix(st.KafkaAddr(), "127.0.0.1:") ||
		!strings.HasPrefix(st.S3Endpoint(), "http://127.0.0.1:") {
		t.Fatalf("addresses: nats %q kafka %q s3 %q", st.NATSURL(), st.KafkaAddr(), st.S3Endpoint())
	}
	wd := st.WorkerDefaults()
	if wd["store.url"] != st.S3Endpoint() || wd["s3.path.style.access.enabled"] != "true" ||
		wd["aws.access.key.id"] == "" || wd["aws.secret.access.key"] == "" {
		t.Fatalf("worker defaults: %v", wd)
	}

	// Kafka: produce to a topic nobody created, consume it back.
	cl, err := kgo.NewClient(kgo.SeedBrokers(st.KafkaAddr()), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("auto-created"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto-created", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "hello" {
		t.Fatalf("consumed %v", recs)
	}
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, "auto-created")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["auto-created"].Partitions); n != DefaultKafkaPartitions {
		t.Fatalf("auto-created topic has %d partitions, want %d", n, DefaultKafkaPartitions)
	}
	// Kafka: admin topic creation.
	cr, err := adm.CreateTopic(ctx, 5, 1, nil, "made-by-admin")
	if err != nil || cr.Err != nil {
		t.Fatalf("create topic: %v %v", err, cr.Err)
	}
	td, err = adm.ListTopics(ctx, "made-by-admin")
	if err != nil || len(td["made-by-admin"].Partitions) != 5 {
		t.Fatalf("list created topic: %v %v", err, td)
	}

	// S3: the dev bucket exists; a new bucket is created on first use.
	s3c := s3Client(st)
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(DefaultBucket)}); err != nil {
		t.Fatalf("head dev bucket: %v", err)
	}
	body := []byte(`{"a":1}`)
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("users-bucket"), Key: aws.String("topics/t/partition=0/t+0+0000000000.json"),
		Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put object: %v", err)
	}
	checkObject(t, ctx, s3c, body)

	// NATS: JetStream KV.
	kvPut(t, ctx, st.NATSURL())

	// Restart on the same data dir: KV value, S3 object and Kafka topic remain.
	cl.Close()
	st.Close()
	st2 := startStack(t, ctx, cfg)
	checkObject(t, ctx, s3Client(st2), body)
	kvGet(t, ctx, st2.NATSURL())
	cl2, err := kgo.NewClient(kgo.SeedBrokers(st2.KafkaAddr()),
		kgo.ConsumeTopics("auto-created"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	td, err = kadm.NewClient(cl2).ListTopics(ctx, "made-by-admin")
	if err != nil || len(td["made-by-admin"].Partitions) != 5 {
		t.Fatalf("topic after restart: %v %v", err, td)
	}
	fs = cl2.PollFetches(ctx)
	if recs := fs.Records(); fs.Err0() != nil || len(recs) != 1 || string(recs[0].Value) != "hello" {
		t.Fatalf("record after restart: %v %v", fs.Err0(), recs)
	}
}

func checkObject(t *testing.T, ctx context.Context, c *s3.Client, want []byte) {
	t.Helper()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("users-bucket"), Key: aws.String("topics/t/partition=0/t+0+0000000000.json")})
	if err != nil {
		t.Fatalf("get object: %v", err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("object body %q (%v), want %q", got, err, want)
	}
}

func kv(t *testing.T, ctx context.Context, url string) (jetstream.KeyValue, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "devstack-test", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("kv bucket: %v", err)
	}
	return b, nc
}

func kvPut(t *testing.T, ctx context.Context, url string) {
	b, nc := kv(t, ctx, url)
	defer nc.Close()
	if _, err := b.Put(ctx, "greeting", []byte("survives")); err != nil {
		t.Fatalf("kv put: %v", err)
	}
}

func kvGet(t *testing.T, ctx context.Context, url string) {
	b, nc := kv(t, ctx, url)
	defer nc.Close()
	e, err := b.Get(ctx, "greeting")
	if err != nil || string(e.Value()) != "survives" {
		t.Fatalf("kv get after restart: %v", err)
	}
}

func TestAddressInUseNamesFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		flag string
		set  func(*Config)
	}{
		{FlagNATSListen, func(c *Config) { c.NATS.Addr = ln.Addr().String() }},
		{FlagKafkaListen, func(c *Config) { c.Kafka.Addr = ln.Addr().String() }},
		{FlagS3Listen, func(c *Config) { c.S3.Addr = ln.Addr().String() }},
	} {
		cfg := testConfig(t.TempDir())
		tc.set(&cfg)
		st, err := Start(context.Background(), cfg)
		if err == nil {
			st.Close()
			t.Fatalf("%s: start succeeded on a taken address", tc.flag)
		}
		var inUse *AddrInUseError
		if !errors.As(err, &inUse) || inUse.Flag != tc.flag || !strings.Contains(err.Error(), "--"+tc.flag) {
			t.Fatalf("%s: error %v does not name the flag", tc.flag, err)
		}
	}
}

func TestDisabledPartsAndValidate(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.NATS.Disabled, cfg.Kafka.Disabled = true, true
	st := startStack(t, context.Background(), cfg)
	if st.NATSURL() != "" || st.KafkaAddr() != "" || st.S3Endpoint() == "" {
		t.Fatalf("disabled parts started: %q %q %q", st.NATSURL(), st.KafkaAddr(), st.S3Endpoint())
	}

	err := Config{NATS: NATSConfig{Addr: "nohost"}, Kafka: KafkaConfig{Addr: ":9092", Partitions: -1}, S3: S3Config{Addr: "1.2.3.4:x", Bucket: "b"}}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"data dir", "--" + FlagNATSListen, "--" + FlagKafkaListen, "partitions", "--" + FlagS3Listen} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validate error %q does not mention %q", err, want)
		}
	}
}
