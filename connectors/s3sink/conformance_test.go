package s3sink_test

import (
	"strings"
	"testing"

	"github.com/ferryhq/ferry/connectors/s3sink"
	"github.com/ferryhq/ferry/connectors/s3sink/s3test"
	"github.com/ferryhq/ferry/runtime/connecttest"
)

// The S3 sink passes the runtime's sink conformance suite against a real S3
// server: everything committed is in S3, nothing is lost across a revoke
// or a crash, and re-delivered records overwrite their object (Confluent's
// deterministic object names) instead of being stored twice.
func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config()
	cfg["connector.class"] = s3sink.Class
	cfg["format.class"] = s3sink.JSONFormat
	cfg["flush.size"] = "5"
	cfg["topics.dir"] = "conf"
	connecttest.RunSinkSuite(t, connecttest.SinkSuite{
		NewTask: s3sink.Plugin().NewSinkTask,
		Config:  cfg,
		Verify: func(t testing.TB, topic string) []connecttest.Written {
			var out []connecttest.Written
			for key, body := range srv.Objects(t, "conf/"+topic+"/") {
				if !strings.HasSuffix(key, ".json") {
					t.Fatalf("unexpected object %s", key)
				}
				ws, err := connecttest.DecodeLines(body)
				if err != nil {
					t.Fatalf("object %s: %v", key, err)
				}
				out = append(out, ws...)
			}
			return out
		},
	})
}
