#!/usr/bin/env bash
# check-imports.sh enforces who may import whom inside the module (the
# table in docs/design.md). Non-test imports follow the table:
#
#   jobs               nothing from the repo
#   scheduler/...      jobs (and scheduler/...)
#   nomad/...          jobs (and nomad/...); the only importer of hashicorp/nomad
#   runtime/connect    nothing from the repo (but its own subpackages)
#   runtime/...        jobs, runtime/connect (and runtime/...)
#   connectors/<name>  runtime/connect (and connectors/<name>/...); never franz-go
#   connectors/all     runtime/connect, connectors/...
#   cmd/...            anything
#
# Tests may reach further (an end-to-end test of the runtime runs real
# connectors), but never across the planes: tests of scheduler/nomad do
# not import runtime/connectors, and tests of runtime/connectors do not
# import scheduler/nomad.
#
# It prints each violation and exits 1 if there is any. A package the table
# does not cover is reported as a warning, so the table gets extended.
set -euo pipefail
cd "$(dirname "$0")/.."

module=$(go list -m)
violations=0

violation() {
	echo "import violation: $1" >&2
	violations=$((violations + 1))
}

# allowed PKG IMP: PKG and IMP are paths relative to the module.
allowed() {
	local pkg=$1 imp=$2
	case $pkg in
	cmd | cmd/*) return 0 ;;
	jobs | jobs/*) [[ $imp == jobs/* ]] ;;
	scheduler | scheduler/*) [[ $imp == jobs || $imp == scheduler || $imp == scheduler/* ]] ;;
	nomad | nomad/*) [[ $imp == jobs || $imp == nomad || $imp == nomad/* ]] ;;
	runtime/connect | runtime/connect/*) [[ $imp == runtime/connect/* ]] ;;
	runtime | runtime/*) [[ $imp == jobs || $imp == runtime || $imp == runtime/* ]] ;;
	connectors/all | connectors/all/*) [[ $imp == runtime/connect || $imp == runtime/connect/* || $imp == connectors/* ]] ;;
	connectors/*)
		local own=${pkg#connectors/}
		own=connectors/${own%%/*}
		[[ $imp == runtime/connect || $imp == runtime/connect/* || $imp == "$own" || $imp == "$own"/* ]]
		;;
	*) return 2 ;;
	esac
}

# allowed_test PKG IMP: the plane rule for test imports.
allowed_test() {
	local pkg=$1 imp=$2
	case $pkg in
	scheduler | scheduler/* | nomad | nomad/*) [[ $imp != runtime && $imp != runtime/* && $imp != connectors/* ]] ;;
	runtime | runtime/* | connectors/*) [[ $imp != scheduler && $imp != scheduler/* && $imp != nomad && $imp != nomad/* ]] ;;
	*) return 0 ;;
	esac
}

# One line per (package, repo-internal import, kind).
edges=$(go list -e -f '{{$p := .ImportPath}}{{range .Imports}}{{$p}} {{.}} import
{{end}}{{range .TestImports}}{{$p}} {{.}} test-import
{{end}}{{range .XTestImports}}{{$p}} {{.}} test-import
{{end}}' ./...)

declare -A warned=()
while read -r pkg imp kind; do
	[[ -z $pkg ]] && continue
	[[ $imp == "$module" || $imp == "$module"/* ]] || continue
	p=${pkg#"$module"/}
	i=${imp#"$module"/}
	[[ $p == "$i" ]] && continue
	set +e
	if [[ $kind == test-import ]]; then
		allowed_test "$p" "$i"
	else
		allowed "$p" "$i"
	fi
	rc=$?
	set -e
	case $rc in
	0) ;;
	2)
		if [[ -z ${warned[$p]:-} ]]; then
			echo "warning: $p is not in the import table of scripts/check-imports.sh" >&2
			warned[$p]=1
		fi
		;;
	*) violation "$p may not import $i ($kind)" ;;
	esac
done <<<"$edges"

# Third-party rules, over every package's full dependency set.
while read -r pkg deps; do
	[[ -z $pkg ]] && continue
	p=${pkg#"$module"/}
	for d in $deps; do
		case $d in
		github.com/hashicorp/nomad/api | github.com/hashicorp/nomad/api/*)
			# Only nomad uses the Nomad client; cmd wires nomad in.
			case $p in nomad | nomad/* | cmd | cmd/*) ;; *) violation "$p depends on $d (only nomad may use the Nomad API client)" ;; esac
			;;
		github.com/twmb/franz-go/*)
			# The runtime owns Kafka; connectors never see franz-go (their tests may run kfake).
			case $p in connectors/*) violation "$p depends on $d (connectors must not use franz-go; the runtime owns Kafka)" ;; esac
			;;
		esac
	done
done < <(go list -e -deps=false -f '{{.ImportPath}} {{join .Deps " "}}' ./...)

if ((violations > 0)); then
	echo "$violations import violation(s)" >&2
	exit 1
fi
echo "imports ok"
