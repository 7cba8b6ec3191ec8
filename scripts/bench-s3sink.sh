#!/usr/bin/env bash
# bench-s3sink.sh: measures the S3 sink against its bare limits on one
# in-process kfake broker and one versitygw (see TestBenchS3Sink in
# runtime/e2e/s3sink_bench_test.go): consume-only and PutObject MB/s (the
# latter sequential and 4 at once, as a task uploads), the sink's MB/s for
# JSON and ByteArray with 1 and 2 tasks and for Avro and Parquet, and peak
# RSS at 8, 64 and 512 partitions for JSON, Avro and Parquet.
# Knobs: FERRY_BENCH_RECORDS (1200000), FERRY_BENCH_FLUSH (flush.size, 5000),
# FERRY_BENCH_ONLY (throughput or rss: one half), FERRY_BENCH_RUNS (e.g.
# json-1,avro-1: only these throughput runs), FERRY_E2E_CPUPROFILE (a path:
# each worker process writes a CPU profile of its first
# FERRY_E2E_CPUPROFILE_SECONDS to <path>.<pid>).
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY_BENCH=1 go test ./runtime/e2e -run '^TestBenchS3Sink$' -count=1 -v -timeout 60m 2>&1 |
	grep -E '^bench|^(--- |FAIL|ok|panic)|Error|error' || true
