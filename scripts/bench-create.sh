#!/usr/bin/env bash
# bench-create.sh measures create → RUNNING latency on `ferry dev`: it
# builds ferry, starts dev on free loopback ports in a temp data dir,
# creates N S3 sinks (1 worker each) one after another through the MSK
# Connect API, polling DescribeConnector every 20 ms until each is RUNNING,
# prints each latency and min/median/p90/max next to the target (under 3 s),
# then deletes them, stops dev and removes everything it made.
#
#   scripts/bench-create.sh                 # 10 connectors
#   BENCH_N=20 scripts/bench-create.sh
#   BENCH_DEV_ARGS="--metrics-interval 1s" scripts/bench-create.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_N:-10}
POLL=${BENCH_POLL:-20ms}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-create.XXXXXX")
dev_pid=""
bench_pid=""
cleanup() {
	local rc=$?
	if [[ -n $bench_pid ]]; then
		kill -TERM "$bench_pid" 2>/dev/null || true
	fi
	if [[ -n $dev_pid ]] && kill -0 "$dev_pid" 2>/dev/null; then
		kill -TERM "$dev_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$dev_pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$dev_pid" 2>/dev/null || kill -KILL "$dev_pid" 2>/dev/null || true
	fi
	if ((rc != 0)) && [[ -f $TMP/dev.log ]]; then
		echo "--- ferry dev output (tail) ---" >&2
		tail -n 40 "$TMP/dev.log" >&2
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "building ferry and benchcreate"
go build -o "$TMP/ferry" ./cmd/ferry
go build -o "$TMP/benchcreate" ./cmd/ferry/internal/benchcreate

mapfile -t P < <("$TMP/benchcreate" ports 4)
API=127.0.0.1:${P[0]}
DATA=$TMP/data

# Its own process group (set -m), so cleanup can kill its workers too.
set -m
# shellcheck disable=SC2086 # BENCH_DEV_ARGS is a list of flags
"$TMP/ferry" dev --data-dir "$DATA" --listen "$API" \
	--nats-listen "127.0.0.1:${P[1]}" --kafka-listen "127.0.0.1:${P[2]}" --s3-listen "127.0.0.1:${P[3]}" \
	--log-file off ${BENCH_DEV_ARGS:-} >"$TMP/dev.log" 2>&1 &
dev_pid=$!
set +m

echo "waiting for ferry dev on $API"
for _ in $(seq 1 300); do
	[[ -s $DATA/example-connector.json ]] && break
	kill -0 "$dev_pid" 2>/dev/null || { echo "ferry dev exited" >&2; exit 1; }
	sleep 0.1
done
[[ -s $DATA/example-connector.json ]] || { echo "ferry dev not ready within 30s" >&2; exit 1; }

# In the background and waited for, so a signal runs cleanup at once.
"$TMP/benchcreate" run -endpoint "http://$API" -example "$DATA/example-connector.json" -n "$N" -poll "$POLL" &
bench_pid=$!
wait "$bench_pid"
bench_pid=""

echo "stopping ferry dev"
start=$(date +%s%N)
kill -TERM "$dev_pid"
wait "$dev_pid" || true
dev_pid=""
echo "ferry dev stopped in $((($(date +%s%N) - start) / 1000000)) ms"
