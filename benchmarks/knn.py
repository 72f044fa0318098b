"""Benchmark of the k-NN KL estimator ``kldiv.knn_kl``: time and accuracy against closed forms.

Run from the repository root, with the project's environment::

    python benchmarks/knn.py                  # full run, ~20 minutes on 2 cores
    python benchmarks/knn.py --quick          # smoke run (n <= 10^4)
    python benchmarks/knn.py --timing         # only the timing table
    python benchmarks/knn.py --accuracy       # only the accuracy table
    python benchmarks/knn.py --with-d10-1e6   # also n = 10^6 at d = 10 (~45 minutes more)

P = N(0, I_d) and Q = N(0.5·1, 1.2² I_d), whose divergence is known exactly:
d · (log 1.2 + (1 + 0.25) / (2 · 1.44) − 1/2) = 0.11635 d nats. Three Markdown
tables are printed to stdout:

1. **Timing at scale**, n = m = 10^4, 10^5, 10^6 for d = 2, 5, 10: the
   estimate alone (``stderr_groups=0``: two KD-tree builds and two queries on
   all cores), the full call with its subsample standard error (about twice
   the work), and the same estimate on one core (``workers=1``, the naive
   cKDTree baseline), with the relative error of the estimate. n = 10^6 at
   d = 10 is skipped unless asked for (KD-trees degrade with dimension: it
   took several minutes here).
2. **Per-point loop baseline** at n = m = 10^4: a Python loop that queries the
   trees one point at a time (as the ``universal-divergence`` package does),
   against ``knn_kl`` on the same data.
3. **Accuracy**, one table each for k = 1, k = 3 and k = 1 with
   ``bias_correction``: over R seeded data sets, the mean estimate, its
   relative error (the bias) with the standard error of that mean, the
   root-mean-square reported standard error, the spread (sd) of the R
   estimates, and their ratio (1 is calibrated; shown for R >= 20).

Times are wall-clock medians of one to three calls on a machine shared with
other work: compare ratios within one run only.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import scipy
from scipy.spatial import cKDTree

import kldiv
from _common import machine_facts  # benchmarks/ is sys.path[0]
from kldiv.estimators import knn_kl

SHIFT, SCALE = 0.5, 1.2
SEED = 20240607


def exact_kl(d: int) -> float:
    """D(N(0, I) ‖ N(0.5, 1.2² I)) in d dimensions."""
    return d * (math.log(SCALE) + (1.0 + SHIFT**2) / (2.0 * SCALE**2) - 0.5)


def samples(d: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, size=(n, d)), rng.normal(SHIFT, SCALE, size=(n, d))


def timed(call: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall-clock seconds of ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def per_point_loop(x: np.ndarray, y: np.ndarray) -> float:
    """The k = 1 estimate by a Python loop over points (the universal-divergence style)."""
    n, d = x.shape
    m = y.shape[0]
    x_tree, y_tree = cKDTree(x), cKDTree(y)
    total = 0.0
    for point in x:
        rho = x_tree.query(point, k=2)[0][1]
        nu = y_tree.query(point, k=1)[0]
        total += math.log(nu / rho)
    return d * total / n + math.log(m / (n - 1))


def timing_table(dims: list[int], sizes: list[int], with_d10_1e6: bool) -> None:
    print(
        "| d | n = m | estimate only (all cores) | with stderr (20 subsamples) | one core "
        "(workers=1) | speed-up vs one core | estimate ± stderr (nats) | exact | rel. error |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for d in dims:
        for n in sizes:
            if d == 10 and n >= 10**6 and not with_d10_1e6:
                print(f"| {d} | 10^{round(math.log10(n))} | skipped (see the note) | | | | | | |")
                continue
            x, y = samples(d, n, SEED)
            repeats = 3 if n <= 10**4 else 1
            fast, value_only = timed(partial(knn_kl, x, y, stderr_groups=0), repeats)
            full, estimate = timed(partial(knn_kl, x, y), repeats)
            single, _ = timed(partial(knn_kl, x, y, stderr_groups=0, workers=1), repeats)
            exact = exact_kl(d)
            error = (value_only.value - exact) / exact
            print(
                f"| {d} | 10^{round(math.log10(n))} | {fast:.2f} s | {full:.2f} s | {single:.2f} s "
                f"| {single / fast:.2f}x | {estimate.value:.4f} ± {estimate.stderr:.4f} "
                f"| {exact:.4f} | {100 * error:+.1f}% |",
                flush=True,
            )


def loop_table(dims: list[int], n: int) -> None:
    print("| d | n = m | per-point Python loop | knn_kl (estimate only) | speed-up | same value |")
    print("|---|---|---|---|---|---|")
    for d in dims:
        x, y = samples(d, n, SEED + 1)
        loop_time, loop_value = timed(partial(per_point_loop, x, y), 1)
        fast, estimate = timed(partial(knn_kl, x, y, stderr_groups=0), 3)
        same = math.isclose(loop_value, estimate.value, rel_tol=1e-9, abs_tol=1e-12)
        print(
            f"| {d} | 10^{round(math.log10(n))} | {loop_time:.2f} s | {fast:.3f} s "
            f"| {loop_time / fast:.0f}x | {'yes' if same else 'NO'} |",
            flush=True,
        )


VARIANTS = {
    "k = 1": {"k": 1},
    "k = 3": {"k": 3},
    "k = 1, bias_correction": {"bias_correction": True},
}


def accuracy_table(name: str, options: dict, plan: list[tuple[int, int, int]]) -> None:
    print(f"### {name}\n")
    print(
        "| d | n = m | R | exact | mean estimate | rel. bias ± its se | mean reported stderr "
        "| sd of the R estimates | stderr / sd |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for d, n, repeats in plan:
        exact = exact_kl(d)
        values, stderrs = [], []
        for r in range(repeats):
            x, y = samples(d, n, SEED + 100 + r)
            est = knn_kl(x, y, seed=r, **options)
            values.append(est.value)
            stderrs.append(est.stderr)
        values, stderrs = np.array(values), np.array(stderrs)
        spread = values.std(ddof=1)
        bias = (values.mean() - exact) / exact
        bias_se = spread / math.sqrt(repeats) / exact
        reported = math.sqrt(np.mean(stderrs**2))
        ratio = f"{reported / spread:.2f}" if repeats >= 20 else "(R < 20)"
        print(
            f"| {d} | 10^{round(math.log10(n))} | {repeats} | {exact:.4f} | {values.mean():.4f} "
            f"| {100 * bias:+.1f}% ± {100 * bias_se:.1f}% | {reported:.4f} | {spread:.4f} "
            f"| {ratio} |",
            flush=True,
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n <= 10^4 only")
    parser.add_argument("--timing", action="store_true", help="only the timing tables")
    parser.add_argument("--accuracy", action="store_true", help="only the accuracy table")
    parser.add_argument("--with-d10-1e6", action="store_true", help="also n = 10^6 at d = 10")
    args = parser.parse_args()
    both = not (args.timing or args.accuracy)
    thp, cpu, usable = machine_facts()
    print(
        f"kldiv {kldiv.__version__}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
        f"Python {platform.python_version()}; CPU {cpu}, {usable} usable cores; THP {thp}\n"
    )
    sizes = [10**3, 10**4] if args.quick else [10**4, 10**5, 10**6]
    if args.timing or both:
        print("## Timing at scale\n")
        timing_table([2, 5, 10], sizes, args.with_d10_1e6)
        print("\n## Per-point loop baseline\n")
        loop_table([2, 5, 10], 10**3 if args.quick else 10**4)
    if args.accuracy or both:
        print("\n## Accuracy against the closed form\n")
        if args.quick:
            plan = [(1, 10**3, 20), (2, 10**3, 20), (5, 10**3, 20)]
        else:
            plan = [(d, 10**3, 40) for d in (1, 2, 5, 10)]
            plan += [(d, 10**4, 30) for d in (1, 2, 5, 10)]
            plan += [(d, 10**5, 8) for d in (1, 2, 5)]
        for name, options in VARIANTS.items():
            accuracy_table(name, options, plan)


if __name__ == "__main__":
    main()
