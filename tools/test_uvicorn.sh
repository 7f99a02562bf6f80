#!/bin/sh
# uvicorn's own WebSocket test suite (tests/protocols/test_websocket.py of the
# pinned sdist) against fastws.uvicorn.FastWSProtocol, under every HTTP
# implementation uvicorn offers (h11, httptools and, where it is installed, zttp).
# Skipped on Python 3.10 (uvicorn 0.55 needs 3.11).
#
# Downloads the sdist from the package index once into a cache directory,
# puts tools/uvicorn_suite/conftest.py in its tests/protocols/ (it replaces
# the ws_protocol_cls fixture) and runs the module with pytest.
#
#   PYTHON=.venv/bin/python tools/test_uvicorn.sh [pytest arguments]
#   FASTWS_UVICORN_COMPARE=1 ...   # also run uvicorn's own implementations
set -eu

PYTHON=${PYTHON:-python3}
case $PYTHON in */*) PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON") ;; esac
VERSION=0.55.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${FASTWS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fastws}
SRC="$CACHE/uvicorn-$VERSION"

if "$PYTHON" -c 'import sys; sys.exit(sys.version_info >= (3, 11))'; then
    echo "uvicorn's tests skipped: uvicorn $VERSION needs Python 3.11 or later"
    exit 0
fi

if [ ! -f "$SRC/tests/protocols/test_websocket.py" ]; then
    mkdir -p "$CACHE"
    "$PYTHON" -m pip download -q --no-binary :all: --no-deps \
        -d "$CACHE" "uvicorn==$VERSION"
    tar -xzf "$CACHE/uvicorn-$VERSION.tar.gz" -C "$CACHE"
fi

# The installed uvicorn must be the version whose tests run.
"$PYTHON" -c "import uvicorn, sys; sys.exit(uvicorn.__version__ != '$VERSION' and \
'uvicorn ' + uvicorn.__version__ + ' is installed, the tests are for $VERSION')"

cp "$ROOT/tools/uvicorn_suite/conftest.py" "$SRC/tests/protocols/conftest.py"
cd "$SRC"
# uvicorn's own pytest settings (warnings are errors), without "-n 8"
# (pytest-xdist). The sdist's own uvicorn/ is the same version as the one
# installed.
exec "$PYTHON" -m pytest -p no:cacheprovider -p no:randomly -o addopts="-rxXs --strict-config --strict-markers" \
    tests/protocols/test_websocket.py "$@"
