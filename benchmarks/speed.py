"""Side-by-side speed tables: kldiv against the lines it replaces, in time and peak memory.

Run from the repository root, with the project's environment::

    python benchmarks/speed.py                    # the three tables below, ~5 minutes
    python benchmarks/speed.py --quick            # small shapes, few repeats, ~1-2 minutes
    python benchmarks/speed.py --threads 1        # adds CPU-time columns to the small table
    python benchmarks/speed.py --only torch --rows 16384 --no-memory
    python benchmarks/speed.py --only small --repeats 500 --seconds 60
    python benchmarks/speed.py --all              # also every other benchmark script's tables
    python benchmarks/speed.py --all --quick      # the same, each script in its quick mode

Flags: ``--quick``, ``--no-memory`` (no memory children), ``--repeats`` and
``--seconds`` (small table: most timed calls per method, default 300, and the
time budget per group of calls, default 20 s, at least 21 calls),
``--large-repeats`` (large tables, default 7), ``--rows``/``--cols`` (large
tables, default 4096 x 8192; ``--quick``: 512 x 8192), ``--only
small|torch|numpy``, ``--threads`` (``torch.set_num_threads``, default
torch's; also passed to the memory children and to the scripts run by
``--all`` that accept it), ``--all`` (after this script's tables, runs
``discrete_kl.py``, ``distill.py``, ``losses_small.py``, ``jax_eager.py`` and
``mvn_kl.py`` in subprocesses, with ``--quick`` and ``--no-memory`` passed on
where given, and ends with every script's MET / NOT MET lines).

One Markdown table per area, float32 on the CPU; in every table the kldiv call
(validated, the default), the same with ``validate=False``, and the baseline a
user would write instead, on the same inputs:

1. **small** (training-size distillation, forward + backward, T = 2) at
   (B, V) = (64, 10), (256, 1000), (32, 4096), (8, 32000), (96, 32000):
   ``DistillationLoss(temperature=2)`` against the naive line
   ``F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1),
   log_target=True, reduction="batchmean") * T**2``, and
   ``kldiv.kl_from_logits(t, s, temperature=2).mean()`` against the same line
   without ``* T**2``; at (256, 1000) also the reverse direction
   (``kl_from_logits(s, t)``, ``DistillationLoss(direction="reverse")``)
   and the Jensen–Shannon divergence (``js_from_logits``,
   ``DistillationLoss(direction="jsd")``) against naive lines (for JS the
   mixture in log space, ``torch.logaddexp(lp, lq) - log 2``). Each group of
   calls at one shape is warmed up, then called round-robin (the order rotated
   every round) up to ``--repeats`` times each or until ``--seconds`` have
   passed; the table gives medians in microseconds. With ``--threads 1`` it
   also gives medians of ``time.thread_time`` (CPU time of the calling thread,
   steadier than wall time on a shared machine).
2. **torch** (large forward, per-row values) at ``--rows`` x ``--cols``
   (default (4096, 8192)): ``kl_from_probs``, ``kl_from_log_probs``,
   ``kl_from_logits``, ``js_from_log_probs``, ``entropy_from_log_probs``,
   ``cross_entropy_from_log_probs`` against ``F.kl_div(...,
   reduction="none").sum(-1)`` and the naive torch lines.
3. **numpy** (large forward) at the same shape: ``kl_from_probs``,
   ``kl_from_log_probs`` and ``kl_from_logits`` against naive NumPy (the
   log-softmax through ``scipy.special.logsumexp``).

Ratios are baseline / kldiv of medians: above 1, kldiv is faster. The
"validation cost" is validated / unvalidated kldiv time. For the large tables
the extra peak memory of one call is measured in a fresh child process per
(method, configuration) (``--child``): the child builds the inputs, warms the
call up on a tiny input, returns freed heap to the OS, resets its high-water
mark (``echo 5 > /proc/self/clear_refs``), and reports ``VmHWM`` after one call
minus ``VmRSS`` before it, in MiB (``--quick``: not for ``validate=False``).

Targets, printed as MET / NOT MET (on medians of wall time): small table,
``DistillationLoss`` and ``kl_from_logits`` (validated) at least 1.0x the naive
line at (256, 1000), (32, 4096), (8, 32000) and 0.8x at (64, 10) (the other
rows are informational); large tables, every validated call at least 2x its
baseline, validation cost at most 1.15 and extra memory at most 64 MiB (the
issue sets that limit at (16384, 8192); it is checked at whatever shape ran).

Every kldiv call is first checked to return the same numbers as its baseline
(values and, for the small table, the student's gradient): the largest
absolute difference is printed, and a difference beyond float32 rounding stops
the run with an error, so that a table never compares different computations.
Only ratios measured within one run, on one machine, are meaningful.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import gc
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import kldiv
from _common import (  # benchmarks/ is sys.path[0]
    machine_facts,
    proc_status_kib,
    reset_high_water_mark,
)
from discrete_kl import make_logits, make_probs

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
SEED = 20240607
TEMPERATURE = 2.0
VARIANTS = ("kldiv", "novalidate", "baseline")
"""The three calls of every row: kldiv validated, kldiv ``validate=False``, the baseline."""

SMALL_SHAPES = ((64, 10), (256, 1000), (32, 4096), (8, 32000), (96, 32000))
QUICK_SMALL_SHAPES = ((64, 10), (256, 1000), (8, 32000))
EXTRA_SHAPE = (256, 1000)
"""The shape of the reverse and Jensen–Shannon rows."""
SMALL_TARGETS = {(64, 10): 0.8, (256, 1000): 1.0, (32, 4096): 1.0, (8, 32000): 1.0}
"""(B, V) to the minimum ratio naive / kldiv of the default (validated) distillation rows."""
SMALL_TARGET_KEYS = ("distill", "kl_logits")
LARGE_SPEEDUP = 2.0
MEMORY_LIMIT_MIB = 64.0
"""Extra peak memory counted as O(chunk) (the issue's limit at (16384, 8192))."""
VALIDATION_COST = 1.15
VALUE_RTOL = 1e-4
"""Agreement tolerance, relative to the largest magnitude of the baseline's numbers."""
VALUE_ATOL = 1e-6

SCRIPTS = (
    ("discrete_kl.py", {"--no-memory"}),
    ("distill.py", {"--no-memory"}),
    ("losses_small.py", {"--threads"}),
    ("jax_eager.py", set()),
    ("mvn_kl.py", {"--threads"}),
)
"""The other benchmark scripts run by ``--all``, with the optional flags each accepts."""


@dataclass(frozen=True)
class Row:
    """One line of a table: a kldiv call, its ``validate=False`` twin and a baseline.

    Attributes:
        area: ``"small"``, ``"torch"`` or ``"numpy"``.
        key: the call's name within the area (see :data:`SMALL_ROWS`, :data:`LARGE_ROWS`).
        shape: ``(rows, cols)`` of the inputs.
    """

    area: str
    key: str
    shape: tuple[int, int]

    @property
    def labels(self) -> tuple[str, str]:
        """``(kldiv call, baseline)`` as shown in the table."""
        return (SMALL_ROWS if self.area == "small" else LARGE_ROWS[self.area])[self.key]

    @property
    def target(self) -> float | None:
        """The minimum ratio baseline / kldiv of the validated call, None if informational."""
        if self.area == "small":
            return SMALL_TARGETS.get(self.shape) if self.key in SMALL_TARGET_KEYS else None
        return LARGE_SPEEDUP


@dataclass
class Timing:
    """Wall-clock and CPU (calling thread) times of one call, in seconds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median wall time."""
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        """Median CPU time of the calling thread."""
        return statistics.median(self.cpu)


@dataclass
class Result:
    """The measurements of one row."""

    row: Row
    timings: dict[str, Timing]
    value_diff: float
    grad_diff: float | None = None
    memory: dict[str, float] = field(default_factory=dict)

    def ratio(self, variant: str = "kldiv", cpu: bool = False) -> float:
        """Baseline time / ``variant``'s time (medians): above 1, kldiv is faster."""
        if cpu:
            return self.timings["baseline"].cpu_median / self.timings[variant].cpu_median
        return self.timings["baseline"].median / self.timings[variant].median

    @property
    def validation_cost(self) -> float:
        """Validated / unvalidated kldiv time (medians)."""
        return self.timings["kldiv"].median / self.timings["novalidate"].median


class DisagreementError(AssertionError):
    """A kldiv call and its baseline returned different numbers."""


# --------------------------------------------------------------------------- small: calls

SMALL_ROWS: dict[str, tuple[str, str]] = {
    "distill": ("`DistillationLoss(temperature=2)`", "naive forward × T²"),
    "kl_logits": ("`kl_from_logits(t, s, temperature=2).mean()`", "naive forward"),
    "kl_logits_reverse": ("`kl_from_logits(s, t, temperature=2).mean()`", "naive reverse"),
    "js_logits": ("`js_from_logits(t, s, temperature=2).mean()`", "naive JSD"),
    "distill_reverse": (
        "`DistillationLoss(temperature=2, direction='reverse')`",
        "naive reverse × T²",
    ),
    "distill_jsd": ("`DistillationLoss(temperature=2, direction='jsd')`", "naive JSD × T²"),
}
"""Small-table keys to ``(kldiv call, baseline)``; s: student logits, t: teacher logits."""
SMALL_KEYS = ("distill", "kl_logits")
EXTRA_KEYS = ("kl_logits_reverse", "js_logits", "distill_reverse", "distill_jsd")

SMALL_LEGEND = (
    "naive forward: `F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), "
    'log_target=True, reduction="batchmean")`; naive reverse: the same with s and t swapped; '
    "naive JSD: `lp, lq = F.log_softmax(t / T, -1), F.log_softmax(s / T, -1)`, "
    "`lm = torch.logaddexp(lp, lq) - log 2`, "
    '`0.5 * (F.kl_div(lm, lp, log_target=True, reduction="batchmean") + '
    'F.kl_div(lm, lq, log_target=True, reduction="batchmean"))`. T = 2.'
)


def naive_distill(student: Any, teacher: Any, direction: str) -> Any:
    """The naive distillation line (mean over rows, no T²) in ``direction``."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    t = TEMPERATURE
    lp, lq = F.log_softmax(teacher / t, -1), F.log_softmax(student / t, -1)
    if direction == "forward":
        return F.kl_div(lq, lp, log_target=True, reduction="batchmean")
    if direction == "reverse":
        return F.kl_div(lp, lq, log_target=True, reduction="batchmean")
    lm = torch.logaddexp(lp, lq) - math.log(2.0)
    return 0.5 * (
        F.kl_div(lm, lp, log_target=True, reduction="batchmean")
        + F.kl_div(lm, lq, log_target=True, reduction="batchmean")
    )


def _distillation_losses(direction: str, student: Any, teacher: Any) -> tuple[Callable, ...]:
    """``DistillationLoss`` (validated, unvalidated) and the naive line × T²."""
    from kldiv.torch import DistillationLoss

    t = TEMPERATURE
    ours = DistillationLoss(temperature=t, direction=direction)
    unchecked = DistillationLoss(temperature=t, direction=direction, validate=False)
    return (
        lambda: ours(student, teacher),
        lambda: unchecked(student, teacher),
        lambda: naive_distill(student, teacher, direction) * t**2,
    )


def _functional_losses(key: str, student: Any, teacher: Any) -> tuple[Callable, ...]:
    """A functional kldiv call's mean (validated, unvalidated) and its naive line."""
    t = TEMPERATURE
    function, first, second, direction = {
        "kl_logits": (kldiv.kl_from_logits, teacher, student, "forward"),
        "kl_logits_reverse": (kldiv.kl_from_logits, student, teacher, "reverse"),
        "js_logits": (kldiv.js_from_logits, teacher, student, "jsd"),
    }[key]
    return (
        lambda: function(first, second, temperature=t).mean(),
        lambda: function(first, second, temperature=t, validate=False).mean(),
        lambda: naive_distill(student, teacher, direction),
    )


def small_losses(key: str, student: Any, teacher: Any) -> dict[str, Callable[[], Any]]:
    """The three loss closures (forward only) of one small-table row, by variant."""
    if key.startswith("distill"):
        direction = {"distill": "forward", "distill_reverse": "reverse"}.get(key, "jsd")
        losses = _distillation_losses(direction, student, teacher)
    else:
        losses = _functional_losses(key, student, teacher)
    return dict(zip(VARIANTS, losses, strict=True))


def train_step(loss: Callable[[], Any], student: Any) -> Callable[[], Any]:
    """Forward + backward of ``loss`` into the student's (cleared) gradient."""

    def step() -> Any:
        student.grad = None
        value = loss()
        value.backward()
        return value

    return step


def small_inputs(shape: tuple[int, int], seed: int = SEED) -> tuple[Any, Any]:
    """Student logits (requiring grad) and teacher logits, float32, scale 2."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    student = (2 * torch.randn(shape, generator=gen)).requires_grad_()
    teacher = 2 * torch.randn(shape, generator=gen)
    return student, teacher


# --------------------------------------------------------------------------- large: calls

LARGE_ROWS: dict[str, dict[str, tuple[str, str]]] = {
    "torch": {
        "kl_probs": ("`kl_from_probs(p, q)`", '`F.kl_div(q.log(), p, reduction="none").sum(-1)`'),
        "kl_log_probs": (
            "`kl_from_log_probs(lp, lq)`",
            '`F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1)`',
        ),
        "kl_logits": (
            "`kl_from_logits(zp, zq)`",
            "`F.kl_div(F.log_softmax(zq, -1), F.log_softmax(zp, -1), log_target=True, "
            'reduction="none").sum(-1)`',
        ),
        "js_log_probs": (
            "`js_from_log_probs(lp, lq)`",
            "`lm = torch.logaddexp(lp, lq) - log 2`; "
            '`0.5 * (F.kl_div(lm, lp, log_target=True, reduction="none") + '
            'F.kl_div(lm, lq, log_target=True, reduction="none")).sum(-1)`',
        ),
        "entropy_log_probs": ("`entropy_from_log_probs(lp)`", "`-(lp.exp() * lp).sum(-1)`"),
        "cross_entropy_log_probs": (
            "`cross_entropy_from_log_probs(lp, lq)`",
            "`-(lp.exp() * lq).sum(-1)`",
        ),
    },
    "numpy": {
        "kl_probs": ("`kl_from_probs(p, q)`", "`np.sum(p * np.log(p / q), -1)`"),
        "kl_log_probs": (
            "`kl_from_log_probs(lp, lq)`",
            "`np.sum(np.exp(lp) * (lp - lq), -1)`",
        ),
        "kl_logits": (
            "`kl_from_logits(zp, zq)`",
            "`lp, lq = (z - logsumexp(z, -1, keepdims=True) for z in (zp, zq))`, then as above",
        ),
    },
}
"""Area to key to ``(kldiv call, baseline)`` of the large tables."""

KLDIV_FUNCTIONS = {
    "kl_probs": ("kl_from_probs", ("p", "q")),
    "kl_log_probs": ("kl_from_log_probs", ("lp", "lq")),
    "kl_logits": ("kl_from_logits", ("zp", "zq")),
    "js_log_probs": ("js_from_log_probs", ("lp", "lq")),
    "entropy_log_probs": ("entropy_from_log_probs", ("lp",)),
    "cross_entropy_log_probs": ("cross_entropy_from_log_probs", ("lp", "lq")),
}
"""Large-table key to the kldiv function and the inputs it takes."""


@functools.lru_cache(maxsize=1)
def _generated(kind: str, rows: int, cols: int, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded float32 inputs, the last ones kept for the next row of the same kind."""
    return make_probs(rows, cols, seed) if kind == "probs" else make_logits(rows, cols, seed)


def large_inputs(area: str, key: str, shape: tuple[int, int], seed: int = SEED) -> dict[str, Any]:
    """The float32 inputs of one large row: probabilities, or logits and their log-softmax."""
    if key == "kl_probs":
        p, q = _generated("probs", *shape, seed)
        arrays = {"p": p, "q": q}
    else:
        zp, zq, lp, lq = _generated("logits", *shape, seed)
        arrays = {"zp": zp, "zq": zq} if key == "kl_logits" else {"lp": lp, "lq": lq}
    if area == "torch":
        import torch

        return {name: torch.from_numpy(array) for name, array in arrays.items()}
    return arrays


_LOG_NONE = {"log_target": True, "reduction": "none"}


def _torch_baseline(key: str, x: dict[str, Any]) -> Callable[[], Any]:
    """The naive torch line of one large-table key."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    if key == "kl_probs":
        return lambda: F.kl_div(x["q"].log(), x["p"], reduction="none").sum(-1)
    if key == "kl_logits":
        return lambda: F.kl_div(
            F.log_softmax(x["zq"], -1), F.log_softmax(x["zp"], -1), **_LOG_NONE
        ).sum(-1)
    lp, lq = x["lp"], x.get("lq")
    if key == "kl_log_probs":
        return lambda: F.kl_div(lq, lp, **_LOG_NONE).sum(-1)
    if key == "entropy_log_probs":
        return lambda: -(lp.exp() * lp).sum(-1)
    if key == "cross_entropy_log_probs":
        return lambda: -(lp.exp() * lq).sum(-1)

    def js() -> Any:
        lm = torch.logaddexp(lp, lq) - math.log(2.0)
        return 0.5 * (F.kl_div(lm, lp, **_LOG_NONE) + F.kl_div(lm, lq, **_LOG_NONE)).sum(-1)

    return js


def _numpy_baseline(key: str, x: dict[str, np.ndarray]) -> Callable[[], np.ndarray]:
    """The naive NumPy line of one large-table key."""
    from scipy.special import logsumexp

    if key == "kl_probs":
        return lambda: np.sum(x["p"] * np.log(x["p"] / x["q"]), -1)
    if key == "kl_log_probs":
        return lambda: np.sum(np.exp(x["lp"]) * (x["lp"] - x["lq"]), -1)

    def logits() -> np.ndarray:
        lp = x["zp"] - logsumexp(x["zp"], -1, keepdims=True)
        lq = x["zq"] - logsumexp(x["zq"], -1, keepdims=True)
        return np.sum(np.exp(lp) * (lp - lq), -1)

    return logits


def large_calls(area: str, key: str, inputs: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """The three calls of one large-table row, by variant; each returns per-row values."""
    name, arguments = KLDIV_FUNCTIONS[key]
    function = getattr(kldiv, name)
    args = [inputs[a] for a in arguments]
    baseline = (_torch_baseline if area == "torch" else _numpy_baseline)(key, inputs)
    return {
        "kldiv": lambda: function(*args),
        "novalidate": lambda: function(*args, validate=False),
        "baseline": baseline,
    }


# --------------------------------------------------------------------------- timing and checks


def time_interleaved(
    calls: dict[str, Callable[[], Any]],
    *,
    repeats: int,
    warmup: int = 1,
    seconds: float = math.inf,
    min_repeats: int = 1,
) -> dict[str, Timing]:
    """Warms up each call, then times them round-robin, the order rotated every round.

    Args:
        calls: name to a callable without arguments.
        repeats: the most timed calls of each.
        warmup: untimed calls of each first.
        seconds: stop after this long once ``min_repeats`` rounds are done.
        min_repeats: rounds always run (capped by ``repeats``).

    Returns:
        Name to its timings.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    names = list(calls)
    timings = {name: Timing() for name in names}
    gc.collect()
    start = time.perf_counter()
    for round_ in range(repeats):
        if round_ >= min_repeats and time.perf_counter() - start > seconds:
            break
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            calls[name]()
            wall1, cpu1 = time.perf_counter(), time.thread_time()
            timings[name].wall.append(wall1 - wall0)
            timings[name].cpu.append(cpu1 - cpu0)
    return timings


def as_float64(value: Any) -> np.ndarray:
    """A torch tensor or array-like as a float64 NumPy array."""
    if hasattr(value, "detach"):
        value = value.detach().double().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def max_abs_diff(ours: Any, theirs: Any, what: str, *, floor: float = 1.0) -> float:
    """The largest absolute difference; raises if beyond float32 rounding.

    The tolerance is ``VALUE_RTOL`` times the largest magnitude of ``theirs``
    (at least ``floor``), plus ``VALUE_ATOL * floor``: the baselines sum
    thousands of float32 terms, so their own rounding error scales with the
    size of the numbers. Gradients, whose entries are small, take ``floor=0``:
    a purely relative tolerance.

    Raises:
        DisagreementError: when the shapes differ or the difference is beyond the tolerance.
    """
    a, b = as_float64(ours), as_float64(theirs)
    if a.shape != b.shape:
        raise DisagreementError(f"{what}: kldiv shape {a.shape}, baseline shape {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise DisagreementError(f"{what}: a value is not finite")
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = max(floor, float(np.max(np.abs(b))) if b.size else floor)
    tolerance = VALUE_RTOL * scale + VALUE_ATOL * floor
    if diff > tolerance:
        raise DisagreementError(
            f"{what}: kldiv and the baseline differ by {diff:.3g} (tolerance "
            f"{tolerance:.3g}); the table would compare different computations"
        )
    return diff


def check_small(
    row: Row, losses: dict[str, Callable[[], Any]], student: Any
) -> tuple[float, float]:
    """Loss and gradient agreement of both kldiv variants with the baseline."""
    outcome = {}
    for variant, loss in losses.items():
        value = train_step(loss, student)()
        outcome[variant] = (value.detach().clone(), student.grad.clone())
    student.grad = None
    base_value, base_grad = outcome["baseline"]
    what = f"small {row.key} at {row.shape}"
    value_diff = grad_diff = 0.0
    for variant in ("kldiv", "novalidate"):
        value, grad = outcome[variant]
        value_diff = max(value_diff, max_abs_diff(value, base_value, f"{what} ({variant}) value"))
        grad_diff = max(
            grad_diff, max_abs_diff(grad, base_grad, f"{what} ({variant}) gradient", floor=0.0)
        )
    return value_diff, grad_diff


def check_large(row: Row, calls: dict[str, Callable[[], Any]]) -> float:
    """Per-row value agreement of both kldiv variants with the baseline."""
    base = calls["baseline"]()
    what = f"{row.area} {row.key} at {row.shape}"
    return max(max_abs_diff(calls[v](), base, f"{what} ({v})") for v in ("kldiv", "novalidate"))


# --------------------------------------------------------------------------- runs


def small_groups(
    shapes: Sequence[tuple[int, int]], extra_shape: tuple[int, int] | None
) -> list[list[Row]]:
    """The small table's rows, in groups timed together (one shape each)."""
    groups = [[Row("small", key, shape) for key in SMALL_KEYS] for shape in shapes]
    if extra_shape is not None:
        groups.append([Row("small", key, extra_shape) for key in EXTRA_KEYS])
    return groups


def run_small_group(
    rows: list[Row], *, repeats: int, seconds: float, warmup: int = 20
) -> list[Result]:
    """Checks and times one group of small rows (one shape), all calls interleaved."""
    student, teacher = small_inputs(rows[0].shape)
    calls, checks = {}, {}
    for row in rows:
        losses = small_losses(row.key, student, teacher)
        checks[row.key] = check_small(row, losses, student)
        for variant, loss in losses.items():
            calls[(row.key, variant)] = train_step(loss, student)
    timings = time_interleaved(
        calls, repeats=repeats, warmup=warmup, seconds=seconds, min_repeats=min(repeats, 21)
    )
    return [
        Result(row, {v: timings[(row.key, v)] for v in VARIANTS}, *checks[row.key]) for row in rows
    ]


def run_small(
    shapes: Sequence[tuple[int, int]],
    extra_shape: tuple[int, int] | None,
    *,
    repeats: int,
    seconds: float,
    warmup: int = 20,
) -> list[Result]:
    """The small table's results."""
    results = []
    for group in small_groups(shapes, extra_shape):
        results += run_small_group(group, repeats=repeats, seconds=seconds, warmup=warmup)
    return results


def run_large(
    area: str,
    shape: tuple[int, int],
    *,
    repeats: int,
    memory: bool,
    memory_variants: Iterable[str] = VARIANTS,
    threads: int | None = None,
) -> list[Result]:
    """The results of one large table (``"torch"`` or ``"numpy"``)."""
    results = []
    for key in LARGE_ROWS[area]:
        row = Row(area, key, shape)
        calls = large_calls(area, key, large_inputs(area, key, shape))
        value_diff = check_large(row, calls)
        timings = time_interleaved(calls, repeats=repeats)
        del calls
        gc.collect()
        extra = {}
        if memory:
            extra = {v: measure_memory(row, v, threads)["extra_mib"] for v in memory_variants}
        results.append(Result(row, timings, value_diff, memory=extra))
    _generated.cache_clear()
    return results


# --------------------------------------------------------------------------- memory


def _malloc_trim() -> None:
    """Returns freed heap memory to the OS (glibc), so that VmRSS is the live data."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def child_memory(row: Row, variant: str) -> dict[str, Any]:
    """Extra peak memory of one call of ``variant`` of ``row``, measured in this process.

    The call is warmed up on a tiny input first (imports and lazy set-up only:
    below the fast kernels' size, so their scratch buffers are counted).
    """
    calls = large_calls(row.area, row.key, large_inputs(row.area, row.key, (8, 128), seed=1))
    calls[variant]()
    calls = large_calls(row.area, row.key, large_inputs(row.area, row.key, row.shape))
    call = calls[variant]
    gc.collect()
    _malloc_trim()
    reset = reset_high_water_mark()
    rss_before = proc_status_kib("VmRSS")
    value = call()
    hwm_after = proc_status_kib("VmHWM")
    del value
    return {
        "row": f"{row.area}:{row.key}:{variant}",
        "rss_before_mib": rss_before / 1024,
        "hwm_after_mib": hwm_after / 1024,
        "extra_mib": (hwm_after - rss_before) / 1024,
        "hwm_reset": reset,
    }


def measure_memory(row: Row, variant: str, threads: int | None = None) -> dict[str, Any]:
    """Runs :func:`child_memory` in a fresh subprocess and returns its report."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        f"{row.area}:{row.key}:{variant}",
        "--rows",
        str(row.shape[0]),
        "--cols",
        str(row.shape[1]),
    ]
    if threads is not None:
        command += ["--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory child for {command[3]} failed:\n{result.stderr}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if not report["hwm_reset"]:
        print(f"(note: VmHWM could not be reset for {command[3]}; its memory is an upper bound)")
    return report


# --------------------------------------------------------------------------- report


def source_revision() -> str:
    """The git commit of the checkout, with ``+dirty`` if ``src/`` has uncommitted changes."""
    root = HERE.parent
    try:
        commit = _git(root, "rev-parse", "--short", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--", "src")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def _git(root: Path, *args: str) -> str:
    """Output of a read-only git command in ``root``."""
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def settings() -> list[str]:
    """The settings that matter for the numbers, as Markdown list items."""
    import scipy
    import torch

    thp, cpu, usable = machine_facts()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
        f"torch {torch.__version__}, kldiv {kldiv.__version__} "
        f"(source at commit `{source_revision()}`)",
        f"- CPU: {cpu}; os.cpu_count() = {os.cpu_count()}, usable cores = {usable}; "
        f"torch threads = {torch.get_num_threads()}; kldiv's NumPy kernel threads = {usable}",
        f"- Transparent huge pages: `{thp}`; "
        f"THP_MEM_ALLOC_ENABLE = `{os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}`",
        f"- Load average at start (1, 5, 15 min): {load}",
        f"- Started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; float32 throughout",
    ]


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def _markdown(head: list[str], lines: list[list[str]]) -> str:
    """A Markdown table, the first column left-aligned, the others right-aligned."""
    rule = "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"
    return "\n".join(
        ["| " + " | ".join(head) + " |", rule] + ["| " + " | ".join(c) + " |" for c in lines]
    )


def small_table(results: list[Result], cpu: bool) -> str:
    """The small table: medians in µs, ratios naive / kldiv, agreement."""
    head = ["(B, V)", "kldiv call", "baseline", "kldiv µs", "no-val µs", "baseline µs"]
    head += ["ratio", "ratio no-val"]
    if cpu:
        head += ["kldiv CPU µs", "baseline CPU µs", "CPU ratio", "CPU ratio no-val"]
    head += ["calls", "max abs diff (loss / grad)"]
    lines = []
    for r in results:
        t = r.timings
        cells = [f"({r.row.shape[0]}, {r.row.shape[1]})", *r.row.labels]
        cells += [_us(t[v].median) for v in VARIANTS]
        cells += [_ratio(r.ratio(), r.row.target), f"{r.ratio('novalidate'):.2f}x"]
        if cpu:
            cells += [_us(t["kldiv"].cpu_median), _us(t["baseline"].cpu_median)]
            cells += [f"{r.ratio(cpu=True):.2f}x", f"{r.ratio('novalidate', cpu=True):.2f}x"]
        cells += [str(len(t["kldiv"].wall)), f"{r.value_diff:.1e} / {r.grad_diff:.1e}"]
        lines.append(cells)
    return _markdown(head, lines)


def _ratio(ratio: float, target: float | None) -> str:
    """A ratio, in bold where it has a target."""
    return f"{ratio:.2f}x" if target is None else f"**{ratio:.2f}x**"


def large_table(results: list[Result]) -> str:
    """A large table: medians in ms, ratios, validation cost, extra peak memory, agreement."""
    memory = any(r.memory for r in results)
    head = ["kldiv call", "baseline", "kldiv ms", "no-val ms", "baseline ms", "ratio"]
    head += ["ratio no-val", "validation cost"]
    if memory:
        head += ["kldiv MiB", "no-val MiB", "baseline MiB"]
    head += ["max abs diff"]
    lines = []
    for r in results:
        cells = [*r.row.labels, *(_ms(r.timings[v].median) for v in VARIANTS)]
        cells += [_ratio(r.ratio(), r.row.target), f"{r.ratio('novalidate'):.2f}x"]
        cells += [f"{r.validation_cost:.2f}"]
        if memory:
            cells += [f"{r.memory[v]:,.1f}" if v in r.memory else "—" for v in VARIANTS]
        cells += [f"{r.value_diff:.1e}"]
        lines.append(cells)
    return _markdown(head, lines)


def _verdict(ok: bool) -> str:
    return "**MET**" if ok else "**NOT MET**"


def small_targets(results: list[Result], cpu: bool) -> list[str]:
    """MET / NOT MET of the small table's targets, one Markdown list item each."""
    out = []
    for r in results:
        if r.row.target is None:
            continue
        ratio = r.ratio()
        line = (
            f"- {r.row.labels[0]} at {r.row.shape} >= {r.row.target:g}x {r.row.labels[1]}: "
            f"{_verdict(ratio >= r.row.target)} ({ratio:.2f}x on wall medians"
        )
        if cpu:
            line += f", {r.ratio(cpu=True):.2f}x on CPU-time medians"
        out.append(line + ")")
    return out


def large_targets(results: list[Result]) -> list[str]:
    """MET / NOT MET of a large table's targets, one Markdown list item each."""
    out = []
    for r in results:
        name, shape = f"{r.row.area} {r.row.labels[0]}", r.row.shape
        ratio = r.ratio()
        out.append(
            f"- {name} at {shape} >= {LARGE_SPEEDUP:g}x its baseline: "
            f"{_verdict(ratio >= LARGE_SPEEDUP)} ({ratio:.2f}x)"
        )
        cost = r.validation_cost
        out.append(
            f"- {name} validation cost <= {VALIDATION_COST:g}: "
            f"{_verdict(cost <= VALIDATION_COST)} ({cost:.2f})"
        )
        for variant in ("kldiv", "novalidate"):
            if variant in r.memory:
                extra = r.memory[variant]
                out.append(
                    f"- {name}{' validate=False' if variant == 'novalidate' else ''} extra "
                    f"memory <= {MEMORY_LIMIT_MIB:g} MiB: {_verdict(extra <= MEMORY_LIMIT_MIB)} "
                    f"({extra:,.1f} MiB)"
                )
    return out


def print_section(title: str, table: str, notes: list[str], targets: list[str]) -> None:
    """Prints one table with its notes and target verdicts."""
    print(f"## {title}\n\n{table}\n")
    for note in notes:
        print(note)
    if targets:
        print("\n### Targets\n")
        print("\n".join(targets))
    print(flush=True)


# --------------------------------------------------------------------------- areas


def report_small(args: argparse.Namespace) -> list[str]:
    """Runs and prints the small table; returns its target lines."""
    import torch

    shapes = QUICK_SMALL_SHAPES if args.quick else SMALL_SHAPES
    repeats = args.repeats or (60 if args.quick else 300)
    seconds = args.seconds or (3.0 if args.quick else 20.0)
    results = run_small(shapes, EXTRA_SHAPE, repeats=repeats, seconds=seconds)
    cpu = torch.get_num_threads() == 1
    notes = [
        f"Forward + backward, T = {TEMPERATURE:g}; medians of up to {repeats} calls per method "
        f"(or {seconds:g} s per shape) after 20 warm-up calls, interleaved round-robin; "
        f"torch threads = {torch.get_num_threads()}"
        + (
            "; CPU = `time.thread_time` of the calling thread."
            if cpu
            else " (CPU-time columns need --threads 1; on a machine shared with other work, "
            "multi-threaded small calls wait for descheduled workers and vary widely)."
        ),
        "Ratios are baseline / kldiv (above 1: kldiv is faster); bold ratios have a target.",
        SMALL_LEGEND,
    ]
    targets = small_targets(results, cpu)
    print_section(
        "Small calls: distillation forward + backward", small_table(results, cpu), notes, targets
    )
    return targets


def report_large(area: str, args: argparse.Namespace) -> list[str]:
    """Runs and prints one large table; returns its target lines."""
    shape = (512, 8192) if args.quick and args.rows is None else (args.rows or 4096, args.cols)
    repeats = args.large_repeats or (5 if args.quick else 7)
    variants = ("kldiv", "baseline") if args.quick else VARIANTS
    results = run_large(
        area,
        shape,
        repeats=repeats,
        memory=not args.no_memory,
        memory_variants=variants,
        threads=args.threads,
    )
    notes = [
        f"Per-row values of a {shape} float32 input pair ({2 * math.prod(shape) * 4 / MIB:,.0f} "
        f"MiB); medians of {repeats} calls after one warm-up, interleaved round-robin.",
        "Ratios are baseline / kldiv (above 1: kldiv is faster); validation cost is validated / "
        "unvalidated kldiv time; MiB: extra peak memory of one call in a fresh process.",
    ]
    title = {"torch": "Large forward, torch tensors", "numpy": "Large forward, NumPy arrays"}[area]
    targets = large_targets(results)
    print_section(title, large_table(results), notes, targets)
    return targets


def run_script(name: str, accepted: set[str], args: argparse.Namespace) -> tuple[int, list[str]]:
    """Runs another benchmark script, echoing its output; returns its exit code and target lines."""
    command = [sys.executable, str(HERE / name)] + (["--quick"] if args.quick else [])
    if args.no_memory and "--no-memory" in accepted:
        command.append("--no-memory")
    if args.threads is not None and "--threads" in accepted:
        command += ["--threads", str(args.threads)]
    print(f"# `{' '.join(['python', f'benchmarks/{name}', *command[2:]])}`\n", flush=True)
    targets = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            print(line, end="", flush=True)
            if re.search(r"\bMET\b", line) and line.lstrip().startswith("-"):
                targets.append(line.rstrip())
    print()
    return child.returncode, targets


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = parse_args(argv)
    if args.threads is not None and not (args.child or "").startswith("numpy"):
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        area, key, variant = args.child.split(":")
        report = child_memory(Row(area, key, (args.rows, args.cols)), variant)
        print(json.dumps(report))
        return 0
    print("# kldiv speed tables\n\n## Settings\n")
    print("\n".join(settings()), flush=True)
    print()
    areas = [args.only] if args.only else ["small", "torch", "numpy"]
    summary = {}
    for area in areas:
        started = time.perf_counter()
        summary[area] = report_small(args) if area == "small" else report_large(area, args)
        print(f"({area}: {time.perf_counter() - started:.0f} s)\n", flush=True)
    failed = []
    if args.all:
        for name, accepted in SCRIPTS:
            code, summary[name] = run_script(name, accepted, args)
            if code:
                failed.append(f"{name} (exit {code})")
    print_summary(summary, failed)
    return 1 if failed else 0


def print_summary(summary: dict[str, list[str]], failed: list[str]) -> None:
    """Every target verdict of the run, grouped by table or script."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# Summary of targets\n\nLoad average at end: {load}\n")
    for name, lines in summary.items():
        met = sum("NOT MET" not in line for line in lines)
        print(f"### {name}: {met} of {len(lines)} met\n")
        print("\n".join(lines) if lines else "(no targets)")
        print()
    if failed:
        print("Scripts that failed: " + ", ".join(failed))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats (~1 min)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory children")
    parser.add_argument(
        "--repeats", type=int, help="small table: most timed calls per method (default 300)"
    )
    parser.add_argument(
        "--seconds", type=float, help="small table: time budget per shape (default 20 s)"
    )
    parser.add_argument(
        "--large-repeats", type=int, help="large tables: timed calls per method (default 7)"
    )
    parser.add_argument("--rows", type=int, help="large tables: rows (default 4096)")
    parser.add_argument("--cols", type=int, default=8192, help="large tables: columns")
    parser.add_argument("--only", choices=("small", "torch", "numpy"), help="one table only")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--all", action="store_true", help="also run the other benchmark scripts")
    parser.add_argument("--child", metavar="AREA:KEY:VARIANT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
