#!/usr/bin/env bash
# Benchmark of the worker runtime's sink data path, all in process on kfake:
# Kafka → JsonConverter → SMT chain (InsertField, ReplaceField, MaskField)
# → a no-op sink, for 1 and 2 tasks, plus the same without transforms, and
# the source path (generator task → converter → SMTs → idempotent producer).
# Prints records/s, bytes/s (key + value bytes consumed) and the peak RSS
# (VmHWM) of each run's process, which includes kfake holding the
# preloaded records. Bounded: each run gives up after 50 s.
#
#   scripts/bench-runtime.sh [records]   (default 300000)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-300000}
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
