#!/usr/bin/env bash
# Sets up .venv with kldiv and its demo extra (if needed) and runs the main job:
# the worked example, then `kldiv demo vi` (variational inference, report in
# kldiv-vi-report/index.html). torch is pinned to the CPU wheel on this machine's
# disk: an unpinned torch would download a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e ".[demo]"
.venv/bin/python examples/worked_example.py
echo
.venv/bin/kldiv demo vi --out kldiv-vi-report
