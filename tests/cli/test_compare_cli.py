"""``kldiv compare`` as a user types it: text, --json, --html, and one-line errors for bad files."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kldiv.reports import compare_logits
from tests._cli import run_kldiv, single_error_line


def kldiv_command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m kldiv compare ARGS`` as a user types it, on a 120-column terminal."""
    return run_kldiv("compare", *args, cwd=cwd, env={"COLUMNS": "120"})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A base/test pair of float32 logits (300 × 50), next tokens with two ignored, as .npy."""
    tmp = tmp_path_factory.mktemp("compare")
    rng = np.random.default_rng(5)
    base = (2.0 * rng.standard_normal((300, 50))).astype(np.float32)
    test = (base + 0.2 * rng.standard_normal(base.shape)).astype(np.float32)
    tokens = rng.integers(0, 50, 300)
    tokens[[4, 200]] = -100
    for name, array in (("base", base), ("test", test), ("tokens", tokens)):
        np.save(tmp / f"{name}.npy", array)
    return tmp, base, test, tokens


def _json_equal(got, want) -> bool:
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(_json_equal(got[k], want[k]) for k in want)
    if isinstance(want, float) and not math.isfinite(want):
        return got == ("nan" if math.isnan(want) else "inf" if want > 0 else "-inf")
    return got == want


def test_text_report(files):
    """The default output is llama.cpp's table, with the mean KL of the library call."""
    tmp, base, test, tokens = files
    done = kldiv_command("base.npy", "test.npy", "--tokens", "tokens.npy", cwd=tmp)
    assert done.returncode == 0, done.stderr
    report = compare_logits(base, test, tokens=tokens)
    assert f"{report.kl_mean:.6f} ± {report.kl_stderr:.6f}" in done.stdout
    for row in ("Mean PPL(test)", "Same top p", "RMS Δp", "298 positions (2 masked)"):
        assert row in done.stdout
    assert done.stderr == ""


def test_json_equals_the_library_report(files):
    """--json is one document holding exactly the library's to_dict(), in bits with --base 2."""
    tmp, base, test, tokens = files
    done = kldiv_command(
        "base.npy",
        "test.npy",
        "--tokens",
        "tokens.npy",
        "--json",
        "--base",
        "2",
        "--chunk-size",
        "7",
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    want = compare_logits(base, test, tokens=tokens, base=2).to_dict()
    assert data.pop("base") == "base.npy"
    assert data.pop("test") == "test.npy"
    assert data["unit"] == "bits"
    assert data.keys() == want.keys()
    for key, value in want.items():
        if (isinstance(value, float) and math.isfinite(value)) or isinstance(value, dict):
            assert data[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
        else:
            assert _json_equal(data[key], value), key


def test_html_page(files):
    """--html writes a self-contained page with the histogram images."""
    pytest.importorskip("matplotlib")
    tmp, *_ = files
    done = kldiv_command("base.npy", "test.npy", "--html", "out.html", cwd=tmp)
    assert done.returncode == 0, done.stderr
    page = (tmp / "out.html").read_text(encoding="utf-8")
    assert "<img" in page
    assert "data:image/png;base64," in page
    assert "out.html" in done.stdout


@pytest.mark.parametrize(
    ("make", "args", "code", "message"),
    [
        (None, ("base.npy", "missing.npy"), 1, "TEST: no such file"),
        (
            lambda d: (d / "notnpy.npy").write_text("hello"),
            ("base.npy", "notnpy.npy"),
            1,
            "TEST: 'notnpy.npy' is not a NumPy .npy file",
        ),
        (
            lambda d: np.save(d / "obj.npy", np.array([{"a": 1}], dtype=object)),
            ("obj.npy", "test.npy"),
            1,
            "BASE: 'obj.npy' holds Python objects",
        ),
        (
            lambda d: np.save(d / "flat.npy", np.zeros(50, np.float32)),
            ("flat.npy", "test.npy"),
            1,
            "expected logits of shape (N, V)",
        ),
        (
            lambda d: np.save(d / "short.npy", np.zeros((299, 50), np.float32)),
            ("base.npy", "short.npy"),
            1,
            "must have one shape",
        ),
        (
            lambda d: np.save(d / "badtok.npy", np.full(300, 50)),
            ("base.npy", "test.npy", "--tokens", "badtok.npy"),
            1,
            "--tokens must hold token ids",
        ),
        (
            lambda d: np.save(d / "nan.npy", np.full((300, 50), np.nan, np.float32)),
            ("base.npy", "nan.npy"),
            1,
            "TEST must hold finite logits or -inf (a masked token), with at least one finite "
            "logit per position; got a NaN logit at position (row) 0",
        ),
        (
            lambda d: np.save(d / "floattok.npy", np.zeros(300)),
            ("base.npy", "test.npy", "--tokens", "floattok.npy"),
            1,
            "--tokens must hold integers (token ids); got dtype float64",
        ),
        (None, ("base.npy",), 2, "required: TEST"),
        (None, ("base.npy", "test.npy", "--chunk-size", "0"), 2, "--chunk-size"),
    ],
)
def test_bad_input_is_one_line(files, make, args, code, message):
    """Bad files and options: one line on stderr, exit code 1 (input) or 2 (usage), no traceback."""
    tmp, *_ = files
    if make is not None:
        make(tmp)
    done = kldiv_command(*args, cwd=tmp)
    assert done.returncode == code, done.stderr
    assert message in single_error_line(done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
