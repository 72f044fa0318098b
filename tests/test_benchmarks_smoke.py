"""Smoke test of ``benchmarks/speed.py``: the tiniest configuration of each table, in-process.

No timing is asserted: only that every table has its rows, that each kldiv call
agrees with its baseline, and that a disagreement stops the run.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def speed():
    """The benchmark module, imported with ``benchmarks/`` briefly on ``sys.path``."""
    before = set(sys.modules)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("kldiv_bench_speed", BENCHMARKS / "speed.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in ("_common", "discrete_kl"):
            if name not in before:
                sys.modules.pop(name, None)
    return module


def _check_timings(result, speed) -> None:
    assert set(result.timings) == set(speed.VARIANTS)
    for timing in result.timings.values():
        assert timing.wall
        assert all(t >= 0 for t in timing.wall)
    assert math.isfinite(result.ratio())


def test_small_table_rows_and_agreement(speed):
    """Every small row (targets at (64, 10), extra rows at (8, 16)) runs and agrees."""
    results = speed.run_small([(64, 10)], (8, 16), repeats=3, seconds=1.0, warmup=1)
    got = [(r.row.key, r.row.shape) for r in results]
    want = [(k, (64, 10)) for k in speed.SMALL_KEYS] + [(k, (8, 16)) for k in speed.EXTRA_KEYS]
    assert got == want
    for result in results:
        _check_timings(result, speed)
        assert result.value_diff < 1e-4
        assert result.grad_diff < 1e-6
    table = speed.small_table(results, cpu=True).splitlines()
    assert len(table) == 2 + len(results)
    assert "CPU ratio" in table[0]
    targets = speed.small_targets(results, cpu=False)
    assert len(targets) == len(speed.SMALL_TARGET_KEYS)
    assert all("MET" in line for line in targets)


@pytest.mark.parametrize("area", ["torch", "numpy"])
def test_large_table_rows_and_agreement(speed, area):
    """Every large row of one area runs at (8, 256) and agrees with its baseline."""
    results = speed.run_large(area, (8, 256), repeats=2, memory=False)
    assert [r.row.key for r in results] == list(speed.LARGE_ROWS[area])
    for result in results:
        _check_timings(result, speed)
        assert result.value_diff < 1e-4
        assert math.isfinite(result.validation_cost)
    table = speed.large_table(results).splitlines()
    assert len(table) == 2 + len(results)
    assert "MiB" not in table[0]
    assert len(speed.large_targets(results)) == 2 * len(results)


def test_memory_child_in_process(speed):
    """The memory child's measurement, run here on a tiny NumPy row, reports a size."""
    report = speed.child_memory(speed.Row("numpy", "kl_log_probs", (8, 256)), "kldiv")
    assert report["extra_mib"] >= 0
    assert report["row"] == "numpy:kl_log_probs:kldiv"


def test_disagreement_fails_loudly(speed):
    """A kldiv call that differs from its baseline beyond float32 rounding stops the run."""
    assert speed.max_abs_diff(np.float32(1.0), 1.0 + 1e-7, "same") < 1e-6
    with pytest.raises(speed.DisagreementError, match="differ"):
        speed.max_abs_diff([1.0, 2.0], [1.0, 2.01], "values")
    with pytest.raises(speed.DisagreementError, match="gradient"):
        speed.max_abs_diff([1e-5], [2e-5], "gradient", floor=0.0)
    with pytest.raises(speed.DisagreementError, match="shape"):
        speed.max_abs_diff([1.0], [1.0, 1.0], "shape")


def test_main_prints_header_table_and_summary(speed, capsys):
    """The command line, NumPy table only, at (8, 256) without memory children."""
    argv = ["--only", "numpy", "--rows", "8", "--cols", "256", "--no-memory"]
    assert speed.main([*argv, "--large-repeats", "2"]) == 0
    out = capsys.readouterr().out
    for text in ("## Settings", "Transparent huge pages", "## Large forward, NumPy arrays"):
        assert text in out
    assert "# Summary of targets" in out
