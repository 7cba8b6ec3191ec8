#!/usr/bin/env bash
# bench-s3sink.sh: measures the S3 sink against its bare limits on one
# in-process kfake broker and one versitygw (see TestBenchS3Sink in
# runtime/e2e/s3sink_bench_test.go): consume-only and PutObject MB/s (the
# latter sequential and 4 at once, as a task uploads), the sink's MB/s for
# JSON and ByteArray with 1 and 2 tasks and for Avro and Parquet, and peak
# RSS at 8, 64 and 512 partitions for JSON, Avro and Parquet.
#
# CPU layout (runtime/e2e/benchcpu_test.go): on a machine of two or more
# CPUs, the worker process (1 MCU: one vCPU, GOMAXPROCS 1) and the clients
# measuring the bare limits run on CPU 0; the broker and the S3 server run
# on the others, as they would on other machines. FERRY_BENCH_WORKER_CPUS=
# (empty) turns this off and lets every process share every CPU.
#
# Knobs: FERRY_BENCH_RECORDS (1200000), FERRY_BENCH_FLUSH (flush.size, 5000),
# FERRY_BENCH_ROUNDS (3: limits and sink runs measured again each round,
# each ratio to its round's limit, the summary the medians),
# FERRY_BENCH_ONLY (throughput or rss: one half), FERRY_BENCH_RUNS (e.g.
# json-1,avro-1: only these throughput runs), FERRY_E2E_CPUPROFILE (a path:
# each worker process writes a CPU profile of its first
# FERRY_E2E_CPUPROFILE_SECONDS to <path>.<pid>).
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/e2e.test" ./runtime/e2e

ncpu=$(getconf _NPROCESSORS_ONLN)
pin=()
if [[ -z ${FERRY_BENCH_WORKER_CPUS+set} ]] && ((ncpu >= 2)) && command -v taskset >/dev/null; then
	export FERRY_BENCH_WORKER_CPUS=0
	pin=(taskset -c "1-$((ncpu - 1))")
	echo "bench cpu layout: worker and limit clients on CPU 0 (GOMAXPROCS 1); broker and S3 server on CPUs 1-$((ncpu - 1))"
else
	echo "bench cpu layout: not pinned; broker, S3 server and worker share all $ncpu CPUs"
fi

# The test binary runs from its package directory, as go test would.
cd runtime/e2e
FERRY_BENCH=1 "${pin[@]}" "$tmp/e2e.test" -test.run '^TestBenchS3Sink$' -test.count=1 -test.v -test.timeout 60m 2>&1 |
	grep -E '^bench|^(--- |FAIL|ok|panic)|Error|error' || true
