package s3sink

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/runtime/connect"
)

// fakeSTS answers AssumeRole (STS's query protocol) with the given
// credentials and records the roles asked for. Its credentials carry no
// session token (real STS's do): versitygw, the tests' S3 server, refuses
// requests that present one.
type fakeSTS struct {
	mu             sync.Mutex
	roles, session []string
	access, secret string
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
		http.Error(w, "only AssumeRole", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.roles = append(f.roles, r.Form.Get("RoleArn"))
	f.session = append(f.session, r.Form.Get("RoleSessionName"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<AssumedRoleUser><Arn>%s/ferry</Arn><AssumedRoleId>AROA:ferry</AssumedRoleId></AssumedRoleUser>
<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken></SessionToken>
<Expiration>%s</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
		r.Form.Get("RoleArn"), f.access, f.secret, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

func (f *fakeSTS) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.roles...)
}

// A connector without credentials of its own acts as the service execution
// role the runtime hands it (ferry server --assume-execution-role): the
// sink assumes it through STS with the worker's credentials and writes with
// the role's; credentials in the configuration win over it.
func TestServiceExecutionRole(t *testing.T) {
	srv := s3test.Start(t)
	sts := &fakeSTS{access: srv.AccessKey, secret: srv.SecretKey}
	stsSrv := httptest.NewServer(sts)
	t.Cleanup(stsSrv.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", stsSrv.URL)
	// The worker's own credentials (the default chain's source); S3
	// refuses them, so objects in the bucket prove the role's were used.
	t.Setenv("AWS_ACCESS_KEY_ID", "worker-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "worker-secret")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	const role = "arn:aws:iam::123456789012:role/ferry-connector"

	run := func(t *testing.T, cfg map[string]string, dir string) []string {
		t.Helper()
		cfg["topics.dir"] = dir
		ctx := connect.WithServiceExecutionRole(context.Background(), role)
		task := &sinkTask{}
		if err := task.Start(ctx, cfg); err != nil {
			t.Fatalf("start: %v", err)
		}
		defer func() { _ = task.Stop() }()
		tp := connect.TopicPartition{Topic: "t", Partition: 0}
		_ = task.Open(ctx, []connect.TopicPartition{tp})
		if err := putWait(ctx, task, recs("t", 0, 0, 10)); err != nil {
			t.Fatal(err)
		}
		return s3test.Keys(srv.Objects(t, dir+"/"))
	}

	t.Run("assumed without credentials of its own", func(t *testing.T) {
		cfg := validConfig()
		for k, v := range srv.Config() {
			cfg[k] = v
		}
		delete(cfg, KeyAccessKeyID)
		delete(cfg, KeySecretAccessKey)
		keys := run(t, cfg, "role")
		if len(keys) != 2 {
			t.Errorf("objects %v, want 2 written with the role's credentials", keys)
		}
		if got := sts.asked(); len(got) == 0 || got[0] != role {
			t.Errorf("STS was asked for %v, want %s", got, role)
		}
	})
	t.Run("static keys win", func(t *testing.T) {
		before := len(sts.asked())
		cfg := validConfig()
		for k, v := range srv.Config() {
			cfg[k] = v
		}
		keys := run(t, cfg, "static")
		if len(keys) != 2 {
			t.Errorf("objects %v, want 2", keys)
		}
		if got := sts.asked(); len(got) != before {
			t.Errorf("STS asked for %v with static keys configured", got[before:])
		}
	})
	t.Run("the worker's credentials alone are refused", func(t *testing.T) {
		// The control: without the role the worker's own credentials
		// reach S3, which refuses them — so the first case used the role.
		cfg := validConfig()
		for k, v := range srv.Config() {
			cfg[k] = v
		}
		delete(cfg, KeyAccessKeyID)
		delete(cfg, KeySecretAccessKey)
		cfg["topics.dir"] = "none"
		task := &sinkTask{}
		err := task.Start(context.Background(), cfg)
		if err == nil {
			_ = task.Stop()
			t.Fatal("start with the worker's credentials succeeded; want S3 to refuse them")
		}
		if !strings.Contains(err.Error(), srv.Bucket) {
			t.Errorf("error %q does not name the bucket", err)
		}
	})
}
