#!/usr/bin/env bash
# Benchmark of the worker runtime's sink data path, all in process on kfake:
# Kafka → JsonConverter → SMT chain (InsertField, ReplaceField, MaskField)
# → a no-op sink, for 1 and 2 tasks, plus the same without transforms, and
# the source path (generator task → converter → SMTs → idempotent producer).
# Prints records/s and bytes/s (key + value bytes consumed) from the first
# record on, the rate including start and group join, and the peak RSS
# (VmHWM) of each run's process, which includes kfake holding the
# preloaded records. Bounded: each run gives up after 50 s.
#
#   scripts/bench-runtime.sh [records]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/bench" ./runtime/internal/bench
for tasks in 1 2; do
	"$bin/bench" -tasks "$tasks" -records "$records" -transforms=true
done
for tasks in 1 2; do
	"$bin/bench" -tasks "$tasks" -records "$records" -transforms=false
done
# The source path: generator task → JsonConverter → SMTs → idempotent
# producer, counting records Kafka acknowledged.
for tasks in 1 2; do
	"$bin/bench" -source -tasks "$tasks" -records "$records" -transforms=true
done
