#!/usr/bin/env bash
# bench-s3sink.sh: measures the S3 sink against its bare limits on one
# in-process kfake broker and one versitygw (see TestBenchS3Sink in
# runtime/e2e/s3sink_bench_test.go). Knobs: FERRY_BENCH_RECORDS (1200000),
# FERRY_BENCH_FLUSH (flush.size, 5000).
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY_BENCH=1 go test ./runtime/e2e -run '^TestBenchS3Sink$' -count=1 -v -timeout 30m 2>&1 |
	grep -E '^bench|^(--- |FAIL|ok|panic)|Error|error' || true
