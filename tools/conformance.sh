#!/usr/bin/env bash
# The Autobahn TestSuite sets of `make conformance`, strict (every case OK),
# two at a time: each set is its own wstest process and fastws process on
# their own ports, so two sets share a 2-core machine well. A set's output is
# printed whole when it ends; the summary at the end names the sets that
# failed.
#
#   tools/conformance.sh                 (PYTHON=..., JOBS=2)
#
# Each set: the environment for compliance/run.sh, the role, the cases, the
# cases left out. The permessage-deflate sets 12.x/13.x are slow: the quick
# sets leave them out and a sample of them (the first three cases of each
# group) runs on its own. Two of the samples compress with ISA-L
# (FASTWS_DEFLATE_BACKEND=isal), one per role. Full runs: compliance/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
JOBS="${JOBS:-2}"
DEFLATE=$(printf '12.%d.%d,' $(for g in 1 2 3 4 5; do for c in 1 2 3; do echo "$g $c"; done; done))
DEFLATE+=$(printf '13.%d.%d,' $(for g in 1 2 3 4 5 6 7; do for c in 1 2 3; do echo "$g $c"; done; done))
DEFLATE=${DEFLATE%,}
QUICK_EXCLUDE='12.*,13.*'

SETS=(
    "|server|*|$QUICK_EXCLUDE"
    "|server|$DEFLATE|"
    "|client|*|$QUICK_EXCLUDE"
    "|client|$DEFLATE|"
    "CALLBACK=1|server|*|$QUICK_EXCLUDE"
    "CALLBACK=1 FASTWS_DEFLATE_BACKEND=isal|server|$DEFLATE|"
    "CALLBACK=1|client|*|$QUICK_EXCLUDE"
    "STACK=sansio FASTWS_NO_EXTENSIONS=1|server|*|$QUICK_EXCLUDE"
    "STACK=sansio FASTWS_NO_EXTENSIONS=1|server|$DEFLATE|"
    "STACK=sync|server|*|$QUICK_EXCLUDE"
    "STACK=sync|client|*|$QUICK_EXCLUDE"
    "STACK=sync FASTWS_DEFLATE_BACKEND=isal|client|$DEFLATE|"
    "STACK=sync FASTWS_NO_EXTENSIONS=1|server|$DEFLATE|"
    "STACK=uvicorn|server|*|$QUICK_EXCLUDE"
    "STACK=uvicorn|server|$DEFLATE|"
    "STACK=uvicorn HTTP=h11 UVLOOP=1|server|*|$QUICK_EXCLUDE"
)

# Once, before the sets run side by side.
if [ -z "${AUTOBAHN_DOCKER:-}" ]; then
    bash compliance/autobahn/install.sh > /dev/null || { echo "autobahn install failed" >&2; exit 2; }
fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/fastws-conformance.XXXXXX")
trap 'rm -rf "$logs"' EXIT
declare -A name_of=()
failed=()

describe() {  # "ENV|role|cases|exclude" -> a short name
    local env role cases exclude
    IFS='|' read -r env role cases exclude <<< "$1"
    [ "$cases" = "$DEFLATE" ] && cases="deflate sample"
    [ "$cases" = '*' ] && [ "$exclude" = "$QUICK_EXCLUDE" ] && cases="all but 12.x/13.x"
    echo "${env:-STACK=asyncio} $role: $cases"
}

finish() {  # the pid of a set that ended, and its status
    local pid=$1 status=$2
    echo "== $(describe "${name_of[$pid]}") (exit $status)"
    cat "$logs/$pid.log"
    [ "$status" = 0 ] || failed+=("$(describe "${name_of[$pid]}")")
}

running=()
for set in "${SETS[@]}"; do
    while [ "${#running[@]}" -ge "$JOBS" ]; do
        wait -n -p done_pid "${running[@]}"
        status=$?
        finish "$done_pid" "$status"
        left=()
        for p in "${running[@]}"; do [ "$p" = "$done_pid" ] || left+=("$p"); done
        running=("${left[@]}")
    done
    IFS='|' read -r env role cases exclude <<< "$set"
    # shellcheck disable=SC2086  # env holds VAR=value words
    # The set's output goes to a file named after its pid, by a wrapper
    # that knows its own pid once started.
    bash -c 'exec > "$0/$$.log" 2>&1; exec env "$@"' "$logs" \
        $env PYTHON="$PYTHON" compliance/run.sh "$role" "$cases" "$exclude" &
    pid=$!
    name_of[$pid]=$set
    running+=("$pid")
done
for pid in "${running[@]}"; do
    wait "$pid"
    finish "$pid" $?
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "== conformance failed: ${failed[*]}"
    exit 1
fi
echo "== conformance: all ${#SETS[@]} sets OK"
