#!/usr/bin/env bash
# Sets up .venv with the development dependencies (if needed), then runs the
# linters and the whole test suite, doctests included, on every backend.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k fast -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -r requirements-dev.txt -e ".[dev]"
.venv/bin/ruff check src tests benchmarks examples docs
.venv/bin/ruff format --check src tests benchmarks examples docs
.venv/bin/python -m pytest "$@"
