package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
)

// The bench's CPU layout. A worker of 1 MCU is given one vCPU by its
// deployer, and in production the broker and the S3 server run on other
// machines. On one machine, scripts/bench-s3sink.sh gives the same shape:
// it runs the test process (the kfake broker) and versitygw on every CPU
// but the first, and sets FERRY_BENCH_WORKER_CPUS to the first, where the
// worker process runs with GOMAXPROCS 1 (pinned with taskset). The bare
// limits are measured the same way: the consume-only and PutObject clients
// run in a child process on the worker's CPU, against the same broker and
// S3 server on theirs. Without the variable nothing is pinned and every
// process shares every CPU (then the broker, the S3 server and the worker
// compete for the same cores, which the limits, each measured alone, do
// not).
const workerCPUsEnv = "FERRY_BENCH_WORKER_CPUS"

// limitChildEnv makes the test binary measure one bare limit and exit
// (TestMain): "consume" or "put", with its parameters in limitParamsEnv.
const (
	limitChildEnv  = "FERRY_E2E_CHILD_LIMIT"
	limitParamsEnv = "FERRY_E2E_LIMIT_PARAMS"
)

// pinWorkerSide makes cmd run on the worker's CPUs with GOMAXPROCS set to
// their count, when the bench was given them.
func pinWorkerSide(cmd *exec.Cmd) {
	cpus := os.Getenv(workerCPUsEnv)
	if cpus == "" {
		return
	}
	args := append([]string{"-c", cpus, cmd.Path}, cmd.Args[1:]...)
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		panic(fmt.Sprintf("%s=%s needs taskset: %v", workerCPUsEnv, cpus, err))
	}
	cmd.Path, cmd.Args = taskset, append([]string{"taskset"}, args...)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(cpuCount(cpus)))
}

// cpuCount counts the CPUs of a taskset list ("0", "0-3", "0,2").
func cpuCount(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, found := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if found {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a {
			panic(fmt.Sprintf("%s: bad CPU list %q", workerCPUsEnv, list))
		}
		n += b - a + 1
	}
	return n
}

// limitParams are what a limit child measures, handed to it as JSON in
// limitParamsEnv.
type limitParams struct {
	// consume
	Addr, Topic string
	Records     int
	// put
	Endpoint, Region, Access, Secret, Bucket, Prefix string
	Size                                             int64
	Conc, N                                          int
}

// runLimit measures one bare limit in a child process on the worker's CPUs
// and returns how long it took.
func runLimit(t *testing.T, mode string, p limitParams) time.Duration {
	t.Helper()
	params, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), limitChildEnv+"="+mode, limitParamsEnv+"="+string(params))
	pinWorkerSide(cmd)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s limit: %v\n%s", mode, err, stderr.String())
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("%s limit: %q: %v\n%s", mode, out, err, stderr.String())
	}
	return d
}

// limitChild is the child side of runLimit: it prints the duration of the
// measurement on stdout.
func limitChild(mode string) int {
	var p limitParams
	if err := json.Unmarshal([]byte(os.Getenv(limitParamsEnv)), &p); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", limitParamsEnv, err)
		return 2
	}
	var d time.Duration
	var err error
	switch mode {
	case "consume":
		d, err = consumeOnly(p)
	case "put":
		d, err = putObjects(p)
	default:
		err = fmt.Errorf("unknown limit %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(d)
	return 0
}

// consumeOnly reads p.Records records of p.Topic from the start with a
// plain franz-go consumer.
func consumeOnly(p limitParams) (time.Duration, error) {
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr), kgo.ConsumeTopics(p.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for got := 0; got < p.Records; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		got += fs.NumRecords()
	}
	return time.Since(start), nil
}

// putObjects uploads p.N objects of p.Size bytes, p.Conc at once.
func putObjects(p limitParams) (time.Duration, error) {
	client := s3.New(s3.Options{
		Region: p.Region, BaseEndpoint: aws.String(p.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(p.Access, p.Secret, ""),
		// As the sink's client talks to an S3-compatible endpoint
		// (connectors/s3sink newClient).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	body := bytes.Repeat([]byte("y"), int(p.Size))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, p.Conc)
	start := time.Now()
	for w := 0; w < p.Conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(p.N); i = next.Add(1) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(fmt.Sprintf("%s/%d", p.Prefix, i)),
					Body: bytes.NewReader(body), ContentLength: aws.Int64(p.Size)})
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// putLimit measures PutObject MB/s for objects of size bytes with conc
// uploads at once, from the worker's CPUs.
func putLimit(t *testing.T, srv *s3test.Server, size int64, conc int, prefix string) float64 {
	t.Helper()
	n := max(4*conc, int(128<<20/size))
	d := runLimit(t, "put", limitParams{Endpoint: srv.Endpoint, Region: srv.Region, Access: srv.AccessKey, Secret: srv.SecretKey,
		Bucket: srv.Bucket, Prefix: prefix, Size: size, Conc: conc, N: n})
	return float64(size) * float64(n) / 1e6 / d.Seconds()
}

func TestCPUCount(t *testing.T) {
	for list, want := range map[string]int{"0": 1, "0-3": 4, "0,2": 2, "1-2,5": 3} {
		if got := cpuCount(list); got != want {
			t.Errorf("cpuCount(%q) = %d, want %d", list, got, want)
		}
	}
}
