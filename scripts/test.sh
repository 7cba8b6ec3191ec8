#!/usr/bin/env bash
# test.sh is the project's one test command (CI runs it through .ci/run):
# it installs what the tests need, checks formatting, vet and the import
# rules, then runs every test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

GOBIN_DIR=$(go env GOPATH)/bin
export PATH="$GOBIN_DIR:$PATH"
# Tests that need a real S3 server fail (instead of skipping) without one.
export FERRY_REQUIRE_S3=1

# Everything the run writes goes under one temp dir, removed at the end;
# the tests run in their own process group, killed at the end so nothing
# they started (servers, workers) outlives the run.
RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferry-test.XXXXXX")
export TMPDIR=$RUN_TMP
test_pid=""
cleanup() {
	local rc=$?
	if [[ -n $test_pid ]]; then
		kill -TERM -- "-$test_pid" 2>/dev/null || true
		sleep 0.5
		kill -KILL -- "-$test_pid" 2>/dev/null || true
	fi
	rm -rf "$RUN_TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n== %s\n' "$*"; }

step "tools"
if ! command -v versitygw >/dev/null 2>&1; then
	echo "installing versitygw (the S3 server the tests run)"
	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
echo "versitygw: $(command -v versitygw)"

step "gofmt"
unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
	echo "these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "ok"

step "go vet"
go vet ./...
echo "ok"

step "import rules"
scripts/check-imports.sh

step "go test -race"
# Every package runs under the race detector: most of them are concurrent.
# The tests run as a background job in their own process group (set -m) so
# the cleanup can kill all of it.
set -m
go test -race -count=1 -timeout 20m "$@" ./... &
test_pid=$!
set +m
wait "$test_pid"
test_pid=""
echo
echo "all checks passed"
