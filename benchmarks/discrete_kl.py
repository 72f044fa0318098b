"""Benchmark of discrete KL divergence: ``kldiv`` against SciPy, PyTorch and naive NumPy.

Run from the repository root, with the project's environment::

    python benchmarks/discrete_kl.py              # full run, (16384, 8192) float32, a few minutes
    python benchmarks/discrete_kl.py --quick      # smoke run: probabilities on (2048, 8192)
    python benchmarks/discrete_kl.py --rows 8192 --cols 4096 --repeats 7 --no-memory
    python benchmarks/discrete_kl.py --tables log --repeats 7   # only the log-space table

Two Markdown tables are printed to stdout:

1. Probabilities: ``kldiv.kl_from_probs`` (validated, unvalidated, and on torch
   tensors) against ``scipy.special.rel_entr(p, q).sum()``,
   ``torch.nn.functional.kl_div``, ``torch.xlogy`` and naive NumPy, on one pair
   of row-stochastic float32 arrays. Each method is warmed up once, then the
   methods are timed round-robin (so that drift on a noisy machine hits all of
   them alike); the table gives the median and minimum time, the input
   throughput (``2 * p.nbytes / median``), the speed-up against ``F.kl_div`` and
   against ``rel_entr`` (baseline median / method median, above 1 is faster),
   and the extra peak memory of one call. The memory is measured in a fresh
   child process per method (``--child METHOD``): the child builds the inputs,
   resets its high-water mark (``echo 5 > /proc/self/clear_refs``), runs the
   method once and reports ``VmHWM - VmRSS`` before the call, in MiB.
2. Log-probabilities and logits: ``kldiv.kl_from_log_probs`` and
   ``kldiv.kl_from_logits`` on NumPy (validated and not) and on torch, against
   the naive NumPy lines they replace (``np.sum(np.exp(lp) * (lp - lq))``, and
   for logits a NumPy log-softmax ``z - (max + log Σ exp(z - max))`` of both
   first) and against ``F.kl_div(log_q, log_p, log_target=True, reduction="sum")``,
   on ``--log-rows`` rows (default 4096: (4096, 8192) float32, a quarter of the
   full run's rows), with the extra peak memory of each method measured the same
   way.

Only ratios measured within one run are meaningful; absolute times on a shared
machine vary from run to run. The targets checked at the end are those of the
performance issue: ``kl_from_probs`` at least 2x ``F.kl_div`` and 10x
``rel_entr(...).sum()``, ``kl_from_log_probs`` and ``kl_from_logits`` (validated)
at least 2x their naive NumPy lines, validation at most 15% over
``validate=False``, with extra memory of the order of the kernel's chunk, not
of the input.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import kldiv
from _common import (  # benchmarks/ is sys.path[0]
    machine_facts,
    proc_status_kib,
    reset_high_water_mark,
)

MIB = 1 << 20
SEED = 20240607
SPEEDUP_VS_TORCH = 2.0
SPEEDUP_VS_REL_ENTR = 10.0
SPEEDUP_VS_NAIVE_LOG = 2.0
VALIDATION_OVERHEAD = 0.15
MEMORY_LIMIT_MIB = 64.0
"""Extra peak memory counted as O(chunk); the kernel's scratch is a few MiB."""
LOG_ROWS = 4096

PROB_METHODS: dict[str, str] = {
    "rel_entr": "`scipy.special.rel_entr(p, q).sum()`",
    "torch_kl_div": "torch `F.kl_div(q.log(), p, reduction='sum')`",
    "torch_xlogy": "torch `xlogy(p, p / q).sum()`",
    "numpy_naive": "NumPy `np.sum(p * np.log(p / q))`",
    "kldiv": "`kldiv.kl_from_probs(p, q)` (validated)",
    "kldiv_novalidate": "`kldiv.kl_from_probs(p, q, validate=False)`",
    "kldiv_torch": "`kldiv.kl_from_probs` on torch tensors (generic path)",
}
"""Methods of the probability table, key to label."""

LOG_METHODS: dict[str, str] = {
    "torch_kl_div_log": "torch `F.kl_div(log_q, log_p, log_target=True, reduction='sum')`",
    "numpy_naive_log": "NumPy `np.sum(np.exp(log_p) * (log_p - log_q))`",
    "kldiv_log_probs": "`kldiv.kl_from_log_probs` (NumPy, validated)",
    "kldiv_log_probs_novalidate": "`kldiv.kl_from_log_probs(..., validate=False)` (NumPy)",
    "kldiv_log_probs_torch": "`kldiv.kl_from_log_probs` (torch)",
    "torch_kl_div_logits": "torch `F.kl_div` of `F.log_softmax` of both logits",
    "numpy_naive_logits": "NumPy `z - (max + log Σ exp(z - max))` of both, then the same",
    "kldiv_logits": "`kldiv.kl_from_logits` (NumPy, validated)",
    "kldiv_logits_novalidate": "`kldiv.kl_from_logits(..., validate=False)` (NumPy)",
    "kldiv_logits_torch": "`kldiv.kl_from_logits` (torch)",
}
"""Methods of the log-space table, key to label."""

NAIVE_OF: dict[str, str] = {
    key: "numpy_naive_logits" if "logits" in key else "numpy_naive_log" for key in LOG_METHODS
}
"""The naive NumPy line each log-space method is compared with."""


@dataclass
class Timing:
    """Times of one method and the value it returned."""

    key: str
    times: list[float] = field(default_factory=list)
    value: float = float("nan")

    @property
    def median(self) -> float:
        """Median time in seconds."""
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        """Minimum time in seconds."""
        return min(self.times)


# --------------------------------------------------------------------------- inputs


def make_probs(rows: int, cols: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 arrays whose rows are strictly positive and sum to 1.

    Generated in place, without full-size temporaries, so that a child process's
    memory baseline is the inputs alone.
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for _ in range(2):
        a = np.empty((rows, cols), dtype=np.float32)
        rng.random(out=a, dtype=np.float32)
        np.subtract(1.0, a, out=a)  # (0, 1]: no exact zeros, so every row is finite
        a /= a.sum(axis=1, keepdims=True)
        arrays.append(a)
    return arrays[0], arrays[1]


def make_logits(
    rows: int, cols: int, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Float32 logits ``z_p, z_q`` and their log-softmax ``log_p, log_q``.

    The log-softmax is computed in chunks of rows (in float64), so that a child
    process's memory baseline is the inputs alone.
    """
    rng = np.random.default_rng(seed + 1)
    out = []
    for _ in range(2):
        z = rng.standard_normal((rows, cols), dtype=np.float32)
        z *= np.float32(3.0)
        log_p = np.empty_like(z)
        for start in range(0, rows, 256):
            chunk = z[start : start + 256].astype(np.float64)
            chunk -= chunk.max(axis=1, keepdims=True)
            chunk -= np.log(np.exp(chunk).sum(axis=1, keepdims=True))
            log_p[start : start + 256] = chunk
        out.append((z, log_p))
    (z_p, log_p), (z_q, log_q) = out
    return z_p, z_q, log_p, log_q


def naive_log_softmax(z: np.ndarray) -> np.ndarray:
    """The textbook NumPy log-softmax of the rows: ``z - (max + log Σ exp(z - max))``."""
    m = z.max(axis=-1, keepdims=True)
    return z - (m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True)))


# --------------------------------------------------------------------------- methods


def prob_method(key: str, p: np.ndarray, q: np.ndarray) -> Callable[[], float]:
    """The callable of one probability-table method; it returns the total KL."""
    if key == "rel_entr":
        from scipy.special import rel_entr

        return lambda: float(rel_entr(p, q).sum())
    if key == "numpy_naive":

        def naive() -> float:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return float(np.sum(p * np.log(p / q)))

        return naive
    if key == "kldiv":
        return lambda: float(kldiv.kl_from_probs(p, q).sum())
    if key == "kldiv_novalidate":
        return lambda: float(kldiv.kl_from_probs(p, q, validate=False).sum())

    import torch
    import torch.nn.functional as F  # noqa: N812

    p_t, q_t = torch.from_numpy(p), torch.from_numpy(q)
    if key == "torch_kl_div":
        return lambda: F.kl_div(q_t.log(), p_t, reduction="sum").item()
    if key == "torch_xlogy":
        return lambda: torch.xlogy(p_t, p_t / q_t).sum().item()
    if key == "kldiv_torch":
        return lambda: kldiv.kl_from_probs(p_t, q_t).sum().item()
    raise ValueError(f"unknown method {key!r}")


def log_method(
    key: str, z_p: np.ndarray, z_q: np.ndarray, log_p: np.ndarray, log_q: np.ndarray
) -> Callable[[], float]:
    """The callable of one log-space-table method; it returns the total KL."""
    if key == "numpy_naive_log":

        def naive() -> float:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return float(np.sum(np.exp(log_p) * (log_p - log_q)))

        return naive
    if key == "kldiv_log_probs":
        return lambda: float(kldiv.kl_from_log_probs(log_p, log_q).sum())
    if key == "kldiv_log_probs_novalidate":
        return lambda: float(kldiv.kl_from_log_probs(log_p, log_q, validate=False).sum())
    if key == "numpy_naive_logits":

        def naive_logits() -> float:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                a, b = naive_log_softmax(z_p), naive_log_softmax(z_q)
                return float(np.sum(np.exp(a) * (a - b)))

        return naive_logits
    if key == "kldiv_logits":
        return lambda: float(kldiv.kl_from_logits(z_p, z_q).sum())
    if key == "kldiv_logits_novalidate":
        return lambda: float(kldiv.kl_from_logits(z_p, z_q, validate=False).sum())

    import torch
    import torch.nn.functional as F  # noqa: N812

    zp_t, zq_t = torch.from_numpy(z_p), torch.from_numpy(z_q)
    lp_t, lq_t = torch.from_numpy(log_p), torch.from_numpy(log_q)
    if key == "torch_kl_div_log":
        return lambda: F.kl_div(lq_t, lp_t, log_target=True, reduction="sum").item()
    if key == "torch_kl_div_logits":
        return lambda: F.kl_div(
            F.log_softmax(zq_t, dim=-1),
            F.log_softmax(zp_t, dim=-1),
            log_target=True,
            reduction="sum",
        ).item()
    if key == "kldiv_log_probs_torch":
        return lambda: kldiv.kl_from_log_probs(lp_t, lq_t).sum().item()
    if key == "kldiv_logits_torch":
        return lambda: kldiv.kl_from_logits(zp_t, zq_t).sum().item()
    raise ValueError(f"unknown method {key!r}")


# --------------------------------------------------------------------------- timing


def time_round_robin(
    methods: dict[str, Callable[[], float]], repeats: int, limited: dict[str, int]
) -> dict[str, Timing]:
    """Warms up each method once, then times them in interleaved rounds.

    Args:
        methods: key to callable.
        repeats: timed calls per method.
        limited: keys timed fewer times (slow baselines), key to their count.

    Returns:
        Key to its timings.
    """
    timings = {key: Timing(key) for key in methods}
    for key, fn in methods.items():
        timings[key].value = fn()
    for round_ in range(repeats):
        for key, fn in methods.items():
            if round_ >= limited.get(key, repeats):
                continue
            start = time.perf_counter()
            fn()
            timings[key].times.append(time.perf_counter() - start)
    return timings


# --------------------------------------------------------------------------- memory


def child_memory(method: str, rows: int, cols: int) -> dict[str, float | bool | str]:
    """Extra peak memory of one call of ``method``, in this (fresh) process.

    Warms up the imports on a tiny input (below the fast kernel's size, so that
    its scratch buffers are allocated, and counted, in the measured call).
    """
    tiny = make_probs(8, 128, seed=1)
    if method in PROB_METHODS:
        prob_method(method, *tiny)()
        fn = prob_method(method, *make_probs(rows, cols))
    else:
        log_method(method, *make_logits(8, 128, seed=1))()
        fn = log_method(method, *make_logits(rows, cols))
    rss_before = proc_status_kib("VmRSS")
    reset = reset_high_water_mark()
    hwm_before = proc_status_kib("VmHWM")
    fn()
    hwm_after = proc_status_kib("VmHWM")
    return {
        "method": method,
        "rss_before_mib": rss_before / 1024,
        "hwm_before_mib": hwm_before / 1024,
        "hwm_after_mib": hwm_after / 1024,
        "extra_mib": (hwm_after - rss_before) / 1024,
        "hwm_reset": reset,
    }


def measure_memory(method: str, rows: int, cols: int) -> dict[str, float | bool | str]:
    """Runs :func:`child_memory` in a subprocess and returns its report."""
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            method,
            "--rows",
            str(rows),
            "--cols",
            str(cols),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"memory child for {method} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def settings(rows: int, cols: int, repeats: int, log_rows: int, tables: str) -> list[str]:
    """The settings that matter for the numbers, as Markdown list items."""
    import scipy
    import torch

    thp, cpu, affinity = machine_facts()
    return [
        f"- Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
        f"torch {torch.__version__}, kldiv {kldiv.__version__}",
        f"- CPU: {cpu}; os.cpu_count() = {os.cpu_count()}, usable cores = {affinity}, "
        f"torch threads = {torch.get_num_threads()}",
        f"- Transparent huge pages: `{thp}`",
        f"- Probability inputs: two ({rows}, {cols}) float32 arrays, "
        f"{2 * rows * cols * 4 / 1e9:.2f} GB in total"
        + ("" if tables != "log" else " (table not run)"),
        f"- Log-space inputs: two ({log_rows}, {cols}) float32 arrays of each form"
        + ("" if tables != "probs" else " (table not run)"),
        f"- {repeats} timed repeats after one warm-up (rel_entr: fewer), interleaved round-robin; "
        f"load average before the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
    ]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def _ratio(baseline: Timing | None, timing: Timing) -> str:
    return "—" if baseline is None else f"{baseline.median / timing.median:.2f}x"


Baseline = str | dict[str, str]
"""The key of a column's baseline method, or a map from each method to its own."""


def _baseline_of(baseline: Baseline, key: str) -> str:
    return baseline if isinstance(baseline, str) else baseline.get(key, "")


def table(
    labels: dict[str, str],
    timings: dict[str, Timing],
    input_bytes: int,
    baselines: list[tuple[str, Baseline]],
    memory: dict[str, float] | None,
) -> str:
    """A Markdown table of the timings (and memory, when measured)."""
    head = ["Method", "median ms", "min ms", "GB/s", *(name for name, _ in baselines)]
    head += ["extra peak MiB"] if memory is not None else []
    head += ["total KL"]
    rule = "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"
    lines = ["| " + " | ".join(head) + " |", rule]
    for key, timing in timings.items():
        cells = [
            labels[key],
            _ms(timing.median),
            _ms(timing.best),
            f"{input_bytes / timing.median / 1e9:.2f}",
            *(_ratio(timings.get(_baseline_of(base, key)), timing) for _, base in baselines),
        ]
        if memory is not None:
            cells.append(f"{memory[key]:,.1f}" if key in memory else "—")
        cells.append(f"{timing.value:.6g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_targets(timings: dict[str, Timing], memory: dict[str, float] | None) -> list[str]:
    """Whether the issue's targets are met, one Markdown list item per check."""
    out = []
    torch_t, scipy_t = timings["torch_kl_div"], timings["rel_entr"]
    for key in ("kldiv", "kldiv_novalidate"):
        t = timings[key]
        for name, base, target in (
            ("F.kl_div", torch_t, SPEEDUP_VS_TORCH),
            ("rel_entr().sum()", scipy_t, SPEEDUP_VS_REL_ENTR),
        ):
            speedup, best = base.median / t.median, base.best / t.best
            verdict = "MET" if speedup >= target else "NOT MET"
            out.append(
                f"- {PROB_METHODS[key]} >= {target:g}x {name}: **{verdict}** "
                f"({speedup:.2f}x on medians, {best:.2f}x on minima)"
            )
        if memory is not None and key in memory:
            extra = memory[key]
            verdict = "MET" if extra <= MEMORY_LIMIT_MIB else "NOT MET"
            out.append(
                f"- {PROB_METHODS[key]} extra memory O(chunk), <= {MEMORY_LIMIT_MIB:g} MiB: "
                f"**{verdict}** ({extra:.1f} MiB)"
            )
    return out


def check_log_targets(timings: dict[str, Timing], memory: dict[str, float] | None) -> list[str]:
    """Whether the log-space targets are met, one Markdown list item per check."""
    out = []
    for key in ("kldiv_log_probs", "kldiv_logits"):
        t, naive = timings[key], timings[NAIVE_OF[key]]
        speedup, best = naive.median / t.median, naive.best / t.best
        verdict = "MET" if speedup >= SPEEDUP_VS_NAIVE_LOG else "NOT MET"
        out.append(
            f"- {LOG_METHODS[key]} >= {SPEEDUP_VS_NAIVE_LOG:g}x {LOG_METHODS[NAIVE_OF[key]]}: "
            f"**{verdict}** ({speedup:.2f}x on medians, {best:.2f}x on minima)"
        )
        unvalidated = timings[key + "_novalidate"]
        overhead = t.median / unvalidated.median - 1.0
        best_overhead = t.best / unvalidated.best - 1.0
        verdict = "MET" if overhead <= VALIDATION_OVERHEAD else "NOT MET"
        out.append(
            f"- {LOG_METHODS[key]}: validation <= {VALIDATION_OVERHEAD:.0%} over validate=False: "
            f"**{verdict}** ({overhead:+.0%} on medians, {best_overhead:+.0%} on minima)"
        )
        for variant in (key, key + "_novalidate"):
            if memory is not None and variant in memory:
                extra = memory[variant]
                verdict = "MET" if extra <= MEMORY_LIMIT_MIB else "NOT MET"
                out.append(
                    f"- {LOG_METHODS[variant]} extra memory O(chunk), <= {MEMORY_LIMIT_MIB:g} MiB: "
                    f"**{verdict}** ({extra:.1f} MiB)"
                )
    return out


def measure_all(methods: dict[str, str], rows: int, cols: int) -> dict[str, float]:
    """Extra peak memory of each method, each in its own child process, in MiB."""
    memory = {}
    for key in methods:
        report = measure_memory(key, rows, cols)
        memory[key] = float(report["extra_mib"])
        if not report["hwm_reset"]:
            print(f"(note: VmHWM could not be reset for {key}; extra memory is an upper bound)")
    return memory


def run_log_table(log_rows: int, cols: int, repeats: int, with_memory: bool) -> None:
    """Times the log-space methods, measures their memory and prints the table and targets."""
    import torch

    z_p, z_q, log_p, log_q = make_logits(log_rows, cols)
    methods = {key: log_method(key, z_p, z_q, log_p, log_q) for key in LOG_METHODS}
    log_timings = time_round_robin(methods, repeats, {})
    input_bytes = 2 * log_p.nbytes
    del methods, z_p, z_q, log_p, log_q
    memory = measure_all(LOG_METHODS, log_rows, cols) if with_memory else None
    print(f"## Log-probabilities and logits: ({log_rows}, {cols}) float32\n")
    print(
        table(
            LOG_METHODS,
            log_timings,
            input_bytes,
            [("vs naive NumPy", NAIVE_OF), ("vs F.kl_div(log_target)", "torch_kl_div_log")],
            memory,
        )
    )
    print(
        "\n`vs naive NumPy`: against the naive NumPy line of the same input form "
        "(log-probabilities or logits)."
    )
    threads = torch.get_num_threads()
    print(f"Inputs: {input_bytes / MIB:,.0f} MiB per pair; torch threads: {threads}.\n")
    print("### Targets\n")
    print("\n".join(check_log_targets(log_timings, memory)))
    print(flush=True)


def run_prob_table(rows: int, cols: int, repeats: int, with_memory: bool) -> None:
    """Times the probability methods, measures their memory and prints the table and targets."""
    p, q = make_probs(rows, cols)
    methods = {key: prob_method(key, p, q) for key in PROB_METHODS}
    timings = time_round_robin(methods, repeats, {"rel_entr": min(repeats, 3)})
    input_bytes = 2 * p.nbytes
    del methods, p, q

    memory = measure_all(PROB_METHODS, rows, cols) if with_memory else None

    print(f"## Probabilities: ({rows}, {cols}) float32\n")
    print(
        table(
            PROB_METHODS,
            timings,
            input_bytes,
            [("vs F.kl_div", "torch_kl_div"), ("vs rel_entr", "rel_entr")],
            memory,
        )
    )
    print("\nSpeed-ups are baseline median / method median (above 1: faster than the baseline).")
    print(f"Inputs: {input_bytes / MIB:,.0f} MiB.\n")
    print("### Targets\n")
    print("\n".join(check_targets(timings, memory)))
    print(flush=True)


def run(rows: int, cols: int, repeats: int, with_memory: bool, log_rows: int, tables: str) -> None:
    """Runs the benchmarks asked for and prints the report."""
    print("## Settings\n")
    print("\n".join(settings(rows, cols, repeats, log_rows, tables)))
    print(flush=True)
    if tables in ("all", "probs"):
        run_prob_table(rows, cols, repeats, with_memory)
    if tables in ("all", "log"):
        run_log_table(log_rows, cols, repeats, with_memory)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16384, help="rows (default 16384)")
    parser.add_argument("--cols", type=int, default=8192, help="columns (default 8192)")
    parser.add_argument(
        "--log-rows", type=int, default=LOG_ROWS, help=f"rows of the log-space table ({LOG_ROWS})"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: probabilities on (2048, 8192)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory children")
    parser.add_argument(
        "--tables", choices=("all", "probs", "log"), default="all", help="which tables (all)"
    )
    parser.add_argument("--child", metavar="METHOD", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_memory(args.child, args.rows, args.cols)))
        return
    rows, cols = (2048, 8192) if args.quick else (args.rows, args.cols)
    run(rows, cols, args.repeats, not args.no_memory, args.log_rows, args.tables)


if __name__ == "__main__":
    main()
