#!/usr/bin/env bash
# Sets up .venv with kldiv and its demo extra (if needed) and runs the main job:
# `kldiv demo` (a VAE on scikit-learn's bundled digits, trained with kldiv's
# GaussianKLLoss, a KL schedule and free bits; report in kldiv-vae-report/),
# then the worked example. torch is pinned to the CPU wheel on this machine's
# disk: an unpinned torch would download a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e ".[demo]"
.venv/bin/kldiv demo --out kldiv-vae-report
echo
.venv/bin/python examples/worked_example.py
echo
echo "The VAE report: kldiv-vae-report/index.html (open it in a browser)."
echo "More: kldiv --help; kldiv demo vi (variational inference); docs in docs/ (mkdocs serve)."
