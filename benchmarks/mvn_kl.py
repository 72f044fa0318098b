"""Benchmark of the full-covariance Gaussian KL: ``kldiv`` against ``torch.distributions``.

Run from the repository root, with the project's environment::

    python benchmarks/mvn_kl.py                 # batch 1024, d = 64, float64 and float32
    python benchmarks/mvn_kl.py --quick         # smoke run, batch 128, d = 32
    python benchmarks/mvn_kl.py --batch 4096 --dim 32 --repeats 15
    python benchmarks/mvn_kl.py --threads 1     # steadier on a machine shared with other work

For each dtype, one Markdown table: the divergence between two batches of
``MultivariateNormal`` distributions with full covariances, timed

- including the construction of both distributions, from covariance
  matrices (torch with its default ``validate_args`` and with
  ``validate_args=False``; kldiv validated and with ``validate=False``) and
  from Cholesky factors (``scale_tril``, precomputed outside the timing);
- and for the KL alone, between distributions built beforehand from
  covariance matrices.

Each method is warmed up once, then all are timed round-robin (so that drift
on a shared machine hits all alike); the table gives the median and minimum
time, the speed-up against the torch method built the same way and against
torch's validated covariance constructor (baseline median / method median,
above 1 is faster), and the largest relative error against a reference
computed in extended precision (NumPy ``longdouble``: Cholesky factors,
triangular solves and logarithms by hand) from the same inputs (for float32,
from the float32-rounded inputs, so that only the computation's error is
measured). Only ratios measured within one run are meaningful.

The targets checked at the end: every kldiv method at least as fast as its
torch counterpart, with an error no larger than twice torch's (or 16 machine
epsilons, whichever is larger).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import kldiv
from _common import machine_facts  # benchmarks/ is sys.path[0]
from kldiv import distributions as D  # noqa: N812

SEED = 20240607

METHODS: dict[str, str] = {
    "torch_cov": "torch `MultivariateNormal(covariance_matrix=…)` ×2 + `kl_divergence`",
    "torch_cov_novalidate": "torch, as above, `validate_args=False`",
    "torch_tril": "torch `MultivariateNormal(scale_tril=…)` ×2 + `kl_divergence`",
    "torch_tril_novalidate": "torch, as above, `validate_args=False`",
    "torch_kl_only": "torch `kl_divergence` only (built from covariances beforehand)",
    "kldiv_cov": "kldiv `MultivariateNormal(covariance_matrix=…)` ×2 + `kl_divergence`",
    "kldiv_cov_novalidate": "kldiv, as above, `validate=False`",
    "kldiv_tril": "kldiv `MultivariateNormal(scale_tril=…)` ×2 + `kl_divergence`",
    "kldiv_tril_novalidate": "kldiv, as above, `validate=False`",
    "kldiv_kl_only": "kldiv `kl_divergence` only (built from covariances beforehand)",
}
"""Methods, key to label."""

COUNTERPART = {
    "kldiv_cov": "torch_cov",
    "kldiv_cov_novalidate": "torch_cov_novalidate",
    "kldiv_tril": "torch_tril",
    "kldiv_tril_novalidate": "torch_tril_novalidate",
    "kldiv_kl_only": "torch_kl_only",
}
"""Each kldiv method and the torch method built the same way."""


@dataclass
class Timing:
    """Times of one method and the divergences it returned."""

    key: str
    times: list[float] = field(default_factory=list)
    value: np.ndarray | None = None

    @property
    def median(self) -> float:
        """Median time in seconds."""
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        """Minimum time in seconds."""
        return min(self.times)


# --------------------------------------------------------------------------- inputs


def make_inputs(batch: int, dim: int, seed: int = SEED) -> tuple[np.ndarray, ...]:
    """Means and well-conditioned covariances of P and Q, float64, shapes [B, d] and [B, d, d]."""
    rng = np.random.default_rng(seed)
    out = []
    for shift in (0.5, 0.8):
        a = rng.standard_normal((batch, dim, dim))
        cov = a @ np.swapaxes(a, -1, -2) / dim + shift * np.eye(dim)
        out += [rng.standard_normal((batch, dim)), (cov + np.swapaxes(cov, -1, -2)) / 2]
    return tuple(out)


# --------------------------------------------------------------------------- reference


def _cholesky_extended(a: np.ndarray) -> np.ndarray:
    """Batched lower Cholesky factor in NumPy's ``longdouble``, column by column."""
    n = a.shape[-1]
    lower = np.zeros_like(a)
    for j in range(n):
        row = lower[:, j, :j]
        pivot = np.sqrt(a[:, j, j] - np.sum(row * row, axis=-1))
        lower[:, j, j] = pivot
        below = a[:, j + 1 :, j] - np.einsum("bik,bk->bi", lower[:, j + 1 :, :j], row)
        lower[:, j + 1 :, j] = below / pivot[:, None]
    return lower


def _solve_lower_extended(lower: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched forward substitution ``lower @ x = b`` in ``longdouble``."""
    x = np.zeros_like(b)
    for i in range(lower.shape[-1]):
        partial = np.einsum("bk,bkj->bj", lower[:, i, :i], x[:, :i, :])
        x[:, i, :] = (b[:, i, :] - partial) / lower[:, i, i][:, None]
    return x


def reference_kl(mu_p, cov_p, mu_q, cov_q) -> np.ndarray:
    """The KL per batch element in extended precision (``longdouble``), returned as float64."""
    ext = np.longdouble
    mu_p, cov_p, mu_q, cov_q = (np.asarray(v, dtype=ext) for v in (mu_p, cov_p, mu_q, cov_q))
    lower_p, lower_q = _cholesky_extended(cov_p), _cholesky_extended(cov_q)
    whitened = _solve_lower_extended(lower_q, lower_p)
    diff = _solve_lower_extended(lower_q, (mu_q - mu_p)[..., None])[..., 0]
    log_det = 2 * (
        np.sum(np.log(np.diagonal(lower_q, axis1=-2, axis2=-1)), -1)
        - np.sum(np.log(np.diagonal(lower_p, axis1=-2, axis2=-1)), -1)
    )
    trace = np.sum(whitened * whitened, axis=(-2, -1))
    value = 0.5 * (trace + np.sum(diff * diff, -1) - mu_p.shape[-1] + log_det)
    return np.asarray(value, dtype=np.float64)


# --------------------------------------------------------------------------- methods


def make_methods(inputs: tuple[np.ndarray, ...], dtype: str) -> dict[str, Callable[[], object]]:
    """The callables of every method on torch tensors of ``dtype``; each returns the KL tensor."""
    import torch
    from torch import distributions as td

    t_dtype = getattr(torch, dtype)
    mu_p, cov_p, mu_q, cov_q = (torch.tensor(v, dtype=t_dtype) for v in inputs)
    tril_p, tril_q = torch.linalg.cholesky(cov_p), torch.linalg.cholesky(cov_q)
    prebuilt_torch = (
        td.MultivariateNormal(mu_p, covariance_matrix=cov_p),
        td.MultivariateNormal(mu_q, covariance_matrix=cov_q),
    )
    prebuilt_kldiv = (
        D.MultivariateNormal(mu_p, covariance_matrix=cov_p),
        D.MultivariateNormal(mu_q, covariance_matrix=cov_q),
    )

    def torch_pair(kind: str, **options) -> Callable[[], object]:
        args_p = {kind: cov_p if kind == "covariance_matrix" else tril_p}
        args_q = {kind: cov_q if kind == "covariance_matrix" else tril_q}
        return lambda: td.kl_divergence(
            td.MultivariateNormal(mu_p, **args_p, **options),
            td.MultivariateNormal(mu_q, **args_q, **options),
        )

    def kldiv_pair(kind: str, **options) -> Callable[[], object]:
        args_p = {kind: cov_p if kind == "covariance_matrix" else tril_p}
        args_q = {kind: cov_q if kind == "covariance_matrix" else tril_q}
        return lambda: kldiv.kl_divergence(
            D.MultivariateNormal(mu_p, **args_p, **options),
            D.MultivariateNormal(mu_q, **args_q, **options),
        )

    return {
        "torch_cov": torch_pair("covariance_matrix"),
        "torch_cov_novalidate": torch_pair("covariance_matrix", validate_args=False),
        "torch_tril": torch_pair("scale_tril"),
        "torch_tril_novalidate": torch_pair("scale_tril", validate_args=False),
        "torch_kl_only": lambda: td.kl_divergence(*prebuilt_torch),
        "kldiv_cov": kldiv_pair("covariance_matrix"),
        "kldiv_cov_novalidate": kldiv_pair("covariance_matrix", validate=False),
        "kldiv_tril": kldiv_pair("scale_tril"),
        "kldiv_tril_novalidate": kldiv_pair("scale_tril", validate=False),
        "kldiv_kl_only": lambda: kldiv.kl_divergence(*prebuilt_kldiv),
    }


# --------------------------------------------------------------------------- timing


def time_round_robin(methods: dict[str, Callable[[], object]], repeats: int) -> dict[str, Timing]:
    """Warms up each method once (keeping its result), then times them in interleaved rounds."""
    timings = {key: Timing(key) for key in methods}
    for key, fn in methods.items():
        timings[key].value = fn().detach().double().numpy()
    for _ in range(repeats):
        for key, fn in methods.items():
            start = time.perf_counter()
            fn()
            timings[key].times.append(time.perf_counter() - start)
    return timings


# --------------------------------------------------------------------------- report


def settings(batch: int, dim: int, repeats: int) -> list[str]:
    """The settings that matter for the numbers, as Markdown list items."""
    import torch

    thp, cpu, affinity = machine_facts()
    validate_default = torch.distributions.Distribution._validate_args
    return [
        f"- Python {platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}, "
        f"kldiv {kldiv.__version__}",
        f"- CPU: {cpu}; os.cpu_count() = {os.cpu_count()}, usable cores = {affinity}, "
        f"torch threads = {torch.get_num_threads()}",
        f"- Transparent huge pages: `{thp}`; torch's default `validate_args`: {validate_default}",
        f"- Two batches of {batch} Gaussians in d = {dim}, covariances A Aᵀ/d + (0.5 or 0.8) I; "
        f"{repeats} timed repeats after one warm-up, interleaved round-robin",
        f"- Reference: NumPy `{np.finfo(np.longdouble).dtype}` "
        f"(eps {float(np.finfo(np.longdouble).eps):.2g}) Cholesky and solves",
    ]


def relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    """The largest relative error over the batch."""
    return float(np.max(np.abs(value - reference) / np.abs(reference)))


def table(timings: dict[str, Timing], errors: dict[str, float]) -> str:
    """A Markdown table of the timings and errors."""
    head = ["Method", "median ms", "min ms", "vs torch same build", "vs torch validated cov"]
    head += ["max rel. error"]
    rule = "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"
    lines = ["| " + " | ".join(head) + " |", rule]
    baseline = timings["torch_cov"]
    for key, timing in timings.items():
        counterpart = timings.get(COUNTERPART.get(key, key))
        cells = [
            METHODS[key],
            f"{timing.median * 1e3:,.1f}",
            f"{timing.best * 1e3:,.1f}",
            "—" if key not in COUNTERPART else f"{counterpart.median / timing.median:.2f}x",
            f"{baseline.median / timing.median:.2f}x",
            f"{errors[key]:.1e}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_targets(timings: dict[str, Timing], errors: dict[str, float], eps: float) -> list[str]:
    """Whether kldiv is at least as fast and as accurate as torch, one Markdown item per method."""
    out = []
    for key, base in COUNTERPART.items():
        speedup = timings[base].median / timings[key].median
        best = timings[base].best / timings[key].best
        allowed = max(2.0 * errors[base], 16 * eps)
        fast = "MET" if speedup >= 1.0 else "NOT MET"
        accurate = "MET" if errors[key] <= allowed else "NOT MET"
        out.append(
            f"- {METHODS[key]}: speed **{fast}** ({speedup:.2f}x torch on medians, {best:.2f}x on "
            f"minima); accuracy **{accurate}** ({errors[key]:.1e} vs torch {errors[base]:.1e})"
        )
    return out


def run(batch: int, dim: int, repeats: int) -> None:
    """Runs the benchmark for float64 and float32 and prints the report."""
    print("## Settings\n")
    print("\n".join(settings(batch, dim, repeats)))
    print(flush=True)
    inputs = make_inputs(batch, dim)
    for dtype in ("float64", "float32"):
        rounded = tuple(np.asarray(v, dtype=dtype).astype(np.float64) for v in inputs)
        reference = reference_kl(*rounded)
        timings = time_round_robin(make_methods(inputs, dtype), repeats)
        errors = {key: relative_error(t.value, reference) for key, t in timings.items()}
        print(f"## {dtype}: batch {batch}, d = {dim}\n")
        print(table(timings, errors))
        print(
            "\nSpeed-ups are baseline median / method median (above 1: faster than the baseline).\n"
        )
        print("### Targets\n")
        print("\n".join(check_targets(timings, errors, float(np.finfo(dtype).eps))))
        print(flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024, help="batch size (default 1024)")
    parser.add_argument("--dim", type=int, default=64, help="dimension d (default 64)")
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats (default 9)")
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 128, d = 32")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    batch, dim = (128, 32) if args.quick else (args.batch, args.dim)
    run(batch, dim, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
