#!/usr/bin/env bash
# Runs make targets one after the other, stops at the first that fails, and
# ends with how long each took (so that a slow CI run says where its time
# went).
#
#   tools/steps.sh MAKE TARGET...      (make test: tools/steps.sh make lint test-c ...)
set -uo pipefail
make_cmd=$1
shift
names=()
secs=()
status=0
for target in "$@"; do
    start=$(date +%s)
    $make_cmd "$target"
    status=$?
    names+=("$target")
    secs+=($(($(date +%s) - start)))
    if [ "$status" != 0 ]; then
        break
    fi
done
echo "== time per step"
total=0
for i in "${!names[@]}"; do
    printf '   %-16s %5d s\n' "${names[$i]}" "${secs[$i]}"
    total=$((total + secs[i]))
done
printf '   %-16s %5d s\n' total "$total"
if [ "$status" != 0 ]; then
    echo "== failed: make ${names[-1]} (exit $status)"
fi
exit "$status"
