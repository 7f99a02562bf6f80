#!/usr/bin/env bash
# The test suite, with the C extension, on the other supported Python
# versions that this machine has (asyncio's transports and the libraries
# that fastws.patch speeds up differ between versions).
#
#   tools/test_versions.sh            # 3.10 and 3.13
#   VERSIONS="3.13" tools/test_versions.sh
#
# Each version gets its own virtual environment (.venv-3.X). A version that
# is not installed is reported and skipped, and the summary at the end says
# which versions ran, passed, failed or were missing; a missing version is an
# error under CI (CI=true) or with FASTWS_ALL_VERSIONS=1.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local v=$1 py
    py=$(command -v "python$v" 2>/dev/null || true)
    if [ -n "$py" ] && "$py" -c "" 2>/dev/null; then
        echo "$py"
        return
    fi
    # pyenv: every version has a shim, but only the selected ones run.
    if command -v pyenv >/dev/null 2>&1; then
        for py in "$(pyenv root)"/versions/"$v".*/bin/python"$v"; do
            if [ -x "$py" ]; then
                echo "$py"
                return
            fi
        done
    fi
}

status=0
ran=()
failed=()
missing=()
strict=0
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ] || [ "${FASTWS_ALL_VERSIONS:-0}" = 1 ]; then
    strict=1
fi
for v in ${VERSIONS:-3.10 3.13}; do
    py=$(find_python "$v")
    if [ -z "$py" ]; then
        echo "== Python $v: not installed, skipped"
        missing+=("$v")
        if [ "$strict" = 1 ]; then
            status=1
        fi
        continue
    fi
    venv=.venv-$v
    echo "== Python $v ($("$py" --version 2>&1))"
    ran+=("$v")
    if ! { { test -x "$venv/bin/python" || "$py" -m venv "$venv"; } &&
        "$venv/bin/python" -m pip install -q --upgrade pip &&
        "$venv/bin/python" -m pip install -q "setuptools>=77" "Cython>=3.1" &&
        "$venv/bin/python" -m pip install -q -e ".[test]" &&
        "$venv/bin/python" setup.py -q build_ext --inplace &&
        FASTWS_REQUIRE_EXTENSION=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider; }; then
        failed+=("$v")
        status=1
    fi
done
echo "== Python versions: ran ${ran[*]:-none}; failed ${failed[*]:-none}; missing ${missing[*]:-none}$([ "$strict" = 1 ] && [ ${#missing[@]} -gt 0 ] && echo ' (an error here)')"
exit $status
