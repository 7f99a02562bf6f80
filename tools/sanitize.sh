#!/usr/bin/env bash
# Sanitizer run: the C kernel tests and the Python tests of the extension against an
# AddressSanitizer + UndefinedBehaviorSanitizer build of the extension.
#
#   tools/sanitize.sh [pytest args...]   (default: the tests listed below)
#
# The extension is built in a temporary copy of the source tree, so the
# in-place build of the working tree is left alone. Needs gcc or clang with
# the sanitizer runtimes. Exits non-zero on any failure or sanitizer report.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
PYTHON="$(command -v "$PYTHON" || echo "$PYTHON")"
case "$PYTHON" in /*) ;; *) PYTHON="$ROOT/$PYTHON" ;; esac
CC="${CC:-cc}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastws-sanitize.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "== copying the tree to $WORK"
tar -C "$ROOT" \
    --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
    --exclude='*.so' --exclude='*.o' --exclude='*.bin' --exclude=./fastws/_speedups.c --exclude=./fastws/_reader_c.c \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis \
    --exclude=.mypy_cache --exclude=.ruff_cache --exclude=./compliance/reports \
    -cf - . | tar -C "$WORK" -xf -

echo "== C kernel tests (sanitized)"
make -s -C "$WORK/csrc" CC="$CC" test-sanitize

echo "== building the extension with FASTWS_SANITIZE=1"
(cd "$WORK" && FASTWS_SANITIZE=1 "$PYTHON" setup.py -q build_ext --inplace)

runtime() { "$CC" -print-file-name="$1"; }
ASAN_LIB="$(runtime libasan.so)"
UBSAN_LIB="$(runtime libubsan.so)"
PRELOAD=""
for lib in "$ASAN_LIB" "$UBSAN_LIB"; do
    if [ -e "$lib" ]; then PRELOAD="${PRELOAD:+$PRELOAD:}$lib"; fi
done
if [ ! -e "$ASAN_LIB" ]; then
    echo "error: no AddressSanitizer runtime found for $CC (libasan.so)" >&2
    exit 2
fi

# By default, the tests that drive the extension in this process with the
# widest range of input: the kernels, the frame reader, the protocol, the
# handshake, permessage-deflate, and the asyncio and sync front-ends. Left
# out: tests that mostly start other processes (the CLI, the docs' examples,
# workers, uvicorn, browsers), type-check (mypy) or exercise other libraries
# (fastws.patch, proxies, Redis), which the sanitizer only slows down (every
# Python allocation goes through it) without reaching more of the C code.
if [ "$#" -eq 0 ]; then
    set -- -m "not slow and not browser" \
        tests/test_deflate.py tests/test_frame_message.py tests/test_frames.py \
        tests/test_handshake.py tests/test_header.py tests/test_impl.py \
        tests/test_mask.py tests/test_payload_builder.py tests/test_protocol.py \
        tests/test_protocol_hypothesis.py tests/test_reader.py tests/test_recycle.py \
        tests/test_utf8.py \
        tests/asyncio/test_aio_basic.py tests/asyncio/test_aio_bounds.py \
        tests/asyncio/test_aio_callback.py tests/asyncio/test_aio_robustness.py \
        tests/asyncio/test_aio_interop.py tests/asyncio/test_aio_pubsub.py \
        tests/sync/test_sync.py
fi

echo "== pytest $* (sanitized extension)"
cd "$WORK"
export LD_PRELOAD="$PRELOAD"
# CPython's own allocations are not freed at exit: leak checking is off.
# PYTHONMALLOC=malloc makes every object a heap block ASan can watch.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
export PYTHONMALLOC=malloc
export FASTWS_REQUIRE_EXTENSION=1
export PYTHONDONTWRITEBYTECODE=1
unset FASTWS_NO_EXTENSIONS || true
"$PYTHON" -c '
import sys, fastws, fastws._speedups as s
where = s.__file__
assert where.startswith(sys.argv[1]), f"wrong extension imported: {where}"
print("using", where, fastws.implementation, "utf8:", s.utf8_simd_level())
' "$WORK"
"$PYTHON" -m pytest -q -p no:cacheprovider "$@"
echo "== sanitizer run passed"
