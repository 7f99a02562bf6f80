#!/usr/bin/env bash
# Run the Autobahn TestSuite against fastws, strict: every case must be OK.
#
# usage: compliance/run.sh SERVER|CLIENT [CASES] [EXCLUDE]
#   SERVER   wstest's fuzzing client tests a fastws echo server
#   CLIENT   wstest's fuzzing server tests a fastws client runner
#   CASES    case patterns, comma-separated (default: *), e.g. '1.*,9.1.*'
#   EXCLUDE  case patterns to skip (default: none), e.g. '9.*,12.*,13.*'
# env: STACK=asyncio (default: `python -m fastws echo --max-size 16777216` and
#        compliance/asyncio_client.py) or STACK=sansio (compliance/echo_server.py and
#        compliance/client.py: the sans-IO core over plain sockets) or STACK=sync
#        (compliance/sync_server.py and compliance/sync_client.py: fastws.sync) or
#        STACK=uvicorn (server role only: the Starlette echo endpoint of
#        compliance/uvicorn_echo.py served by uvicorn with --ws fastws.uvicorn:FastWSProtocol;
#        HTTP=h11 or HTTP=httptools picks uvicorn's HTTP implementation, default httptools),
#      UVLOOP=1 to run the asyncio stack (or uvicorn) on uvloop,
#      CALLBACK=1 for the asyncio stack echoing with on_message() and send_nowait(),
#      FASTWS_NO_EXTENSIONS=1 for the pure-Python kernels,
#      FASTWS_DEFLATE_BACKEND=isal for ISA-L compressing instead of zlib,
#      PYTHON (default: .venv/bin/python if present, else python3),
#      OUTDIR (report folder, default: a new temporary folder), PORT (default: a free port),
#      AUTOBAHN_DOCKER=IMAGE: wstest from a container image (CI), not a local install.
# Exit status: 0 when every case is OK (or INFORMATIONAL), non-zero otherwise.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
role="${1:-}"
case "$role" in SERVER | server | CLIENT | client) ;; *)
  sed -n '2,23p' "$0" >&2; exit 2 ;;
esac
cases="${2:-*}"
exclude="${3:-}"
stack="${STACK:-asyncio}"
case "$stack" in asyncio | sansio | sync | uvicorn) ;; *) echo "unknown STACK=$stack" >&2; exit 2 ;; esac
case "$stack/$role" in uvicorn/CLIENT | uvicorn/client) echo "STACK=uvicorn is a server" >&2; exit 2 ;; esac
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x "$root/.venv/bin/python" ]; then py="$root/.venv/bin/python"; else py=python3; fi
fi
if [ "$stack" = uvicorn ] && ! "$py" -c 'import uvicorn, starlette' 2>/dev/null; then
  if "$py" -c 'import sys; sys.exit(sys.version_info >= (3, 11))'; then
    echo "STACK=uvicorn skipped: uvicorn needs Python 3.11 or later" >&2; exit 0
  fi
  echo "STACK=uvicorn needs uvicorn and starlette (the test extra)" >&2; exit 2
fi
uv=()
[ "$stack" = asyncio ] && [ "${UVLOOP:-0}" = 1 ] && uv=(--uvloop)
[ "$stack" = asyncio ] && [ "${CALLBACK:-0}" = 1 ] && uv+=(--callback)
if [ -z "${AUTOBAHN_DOCKER:-}" ]; then   # else wstest comes from that container image
  bash "$here/autobahn/install.sh" > /dev/null || { echo "autobahn install failed" >&2; exit 2; }
fi
port="${PORT:-$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
outdir="${OUTDIR:-$(mktemp -d -t "fastws-$stack-autobahn.XXXXXX")}"
mkdir -p "$outdir" && outdir="$(cd "$outdir" && pwd)"
impl="$(cd "$root" && "$py" -c 'import fastws; print(fastws.implementation)')"
echo "fastws $stack ($impl${uv:+, ${uv[*]}}) $role cases='$cases' exclude='$exclude' -> $outdir"

case "$role" in
  SERVER | server)
    if [ "$stack" = asyncio ]; then
      server=(-m fastws echo --port "$port" --max-size 16777216 "${uv[@]}")
    elif [ "$stack" = sync ]; then
      server=("$here/sync_server.py" --port "$port")
    elif [ "$stack" = uvicorn ]; then
      loop=asyncio
      [ "${UVLOOP:-0}" = 1 ] && loop=uvloop
      server=(-m uvicorn uvicorn_echo:app --app-dir "$here" --ws fastws.uvicorn:FastWSProtocol
              --http "${HTTP:-httptools}" --loop "$loop" --host 127.0.0.1 --port "$port"
              --ws-max-size 16777216 --log-level warning)
    else
      server=("$here/echo_server.py" --port "$port")
    fi
    (cd "$root" && exec "$py" "${server[@]}") > "$outdir/server.log" 2>&1 &
    pid=$!
    # Stop the server on exit: SIGINT, then SIGKILL if it is still there
    # after 5 s (a server that ignores SIGINT must not hang the run).
    stop_server() {
      kill -INT "$pid" 2>/dev/null || return 0
      for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null && echo "the server did not stop on SIGINT: killed" >&2
      wait "$pid" 2>/dev/null || true
    }
    trap stop_server EXIT
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || { cat "$outdir/server.log" >&2; exit 2; }
      sleep 0.1
    done
    bash "$here/autobahn/run-fuzzingclient.sh" -s -o "$outdir" "ws://127.0.0.1:$port" "$cases" "$exclude"
    ;;
  CLIENT | client)
    client="$here/client.py"
    [ "$stack" = asyncio ] && client="$here/asyncio_client.py"
    [ "$stack" = sync ] && client="$here/sync_client.py"
    args=(-s -p "$port" -o "$outdir" -c "$cases")
    [ -n "$exclude" ] && args+=(-x "$exclude")
    bash "$here/autobahn/run-fuzzingserver.sh" "${args[@]}" -- \
      env PYTHONPATH="$root" "$py" "$client" "${uv[@]}"
    ;;
esac
