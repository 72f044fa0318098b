#!/usr/bin/env bash
# Sets up .venv with kldiv (if needed) and runs the main job: the worked example.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/python examples/worked_example.py
