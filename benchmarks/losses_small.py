"""Benchmark of the small torch losses against the one-line torch formulas they replace.

Run from the repository root, with the project's environment::

    python benchmarks/losses_small.py               # every case, 300 timed calls each (~1 min)
    python benchmarks/losses_small.py --quick       # 60 timed calls each, a smoke run
    python benchmarks/losses_small.py --repeats 1000 --only gaussian

Each row times one forward + backward, float32 on the CPU, of
:class:`kldiv.torch.GaussianKLLoss` or :class:`kldiv.torch.KLPenalty` (default
settings: validation on) and of the hand-written torch line it replaces, on the
same tensors:

- ``GaussianKLLoss`` at ``(128, 16)`` and ``(4096, 64)`` (``mu`` and ``logvar``
  require grad): the default ``"mean"`` against
  ``-0.5 * torch.sum(1 + lv - mu**2 - lv.exp(), -1).mean()``; a learned prior of
  the batch shape (all four require grad); ``free_bits=0.1``; a mask of the
  batch shape (75% kept); ``reduction="sum"`` and ``"none"`` (backward of a
  fixed upstream gradient); and, for information, ``validate=False``, which
  shows what the default NaN check costs.
- ``KLPenalty(estimator=k, coef=0.1)`` at ``(8, 512)`` and ``(64, 2048)`` tokens,
  with a completion mask (about 80% kept), only the policy's log-probabilities
  requiring grad: the masked mean ``0.1 * (k * m).sum() / m.sum()`` with k1 =
  ``lp - lq``, k2 = ``0.5 * (lp - lq)**2``, k3 = ``exp(lq - lp) - 1 - (lq - lp)``,
  and, for information, k3 with importance weights ``exp(lp - lb)``.

Timing: every callable is warmed up (50 calls), then the two callables of a row
are called alternately, ``--repeats`` times each, and the table gives their
medians in microseconds and the ratio *torch line / kldiv* (at least 1: kldiv
is as fast or faster). Gradients are set to None before each call. Only ratios
within one run are meaningful on a shared machine; the values of both sides
are compared as a sanity check (``max |diff|`` of the loss).

The clock is the thread's CPU time by default (``--timer cpu``,
``time.thread_time``): with one torch thread the forward and the backward run
in the calling thread, and time spent descheduled by other processes on a
shared machine is not counted. ``--timer wall`` uses ``time.perf_counter``.

Threads: one by default (``--threads``). On a machine whose cores are shared
with other processes, an intra-op parallel region waits for a descheduled
OpenMP worker (milliseconds per ATen call at ``(4096, 64)``), which swamps what
is measured here; both sides are run with the same setting.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

import kldiv
from _common import machine_facts  # benchmarks/ is sys.path[0]
from kldiv.torch import GaussianKLLoss, KLPenalty

SEED = 20240607
WARMUP = 50
TARGET = 1.0
"""The issue's target: kldiv at least as fast as the torch line (ratio >= 1)."""


@dataclass
class Row:
    """One comparison: kldiv's call and the torch line, on the same leaves."""

    group: str
    case: str
    shape: tuple[int, ...]
    ours: Callable[[], torch.Tensor]
    line: Callable[[], torch.Tensor]
    leaves: tuple[torch.Tensor, ...]
    upstream: torch.Tensor | None = None
    informational: bool = False


def _step(fn: Callable[[], torch.Tensor], leaves: tuple, upstream: torch.Tensor | None):
    """One forward + backward of ``fn`` with fresh gradients; returns the detached value."""

    def call() -> torch.Tensor:
        for leaf in leaves:
            leaf.grad = None
        value = fn()
        value.backward(upstream)
        return value.detach()

    return call


# --------------------------------------------------------------------------- cases


def _gaussian_line(mu: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
    """The per-sample VAE KL as usually written."""
    return -0.5 * torch.sum(1 + lv - mu**2 - lv.exp(), -1)


def gaussian_rows(shape: tuple[int, int], gen: torch.Generator) -> list[Row]:
    """The GaussianKLLoss rows at one ``(batch, latent)`` shape."""
    batch, _ = shape
    mu, lv, pmu, plv = (
        (0.5 * torch.randn(shape, generator=gen)).requires_grad_() for _ in range(4)
    )
    mask = torch.rand(batch, generator=gen) < 0.75
    upstream = torch.rand(batch, generator=gen)
    plain = (mu, lv)

    def prior_line() -> torch.Tensor:
        per_dim = plv - lv + (lv.exp() + (mu - pmu) ** 2) / plv.exp() - 1
        return 0.5 * torch.sum(per_dim, -1).mean()

    def masked_line() -> torch.Tensor:
        return (_gaussian_line(mu, lv) * mask).sum() / mask.sum()

    def free_bits_line() -> torch.Tensor:
        per_dim = (-0.5 * (1 + lv - mu**2 - lv.exp())).mean(0)
        return torch.clamp(per_dim, min=0.1).sum()

    loss, no_check = GaussianKLLoss(), GaussianKLLoss(validate=False)
    free_bits, total = GaussianKLLoss(free_bits=0.1), GaussianKLLoss(reduction="sum")
    per_sample = GaussianKLLoss(reduction="none")
    line = (lambda: _gaussian_line(mu, lv).mean(), plain)
    return [
        Row("GaussianKLLoss", "mean (default)", shape, lambda: loss(mu, lv), *line),
        Row(
            "GaussianKLLoss",
            "learned prior",
            shape,
            lambda: loss(mu, lv, pmu, plv),
            prior_line,
            (mu, lv, pmu, plv),
        ),
        Row(
            "GaussianKLLoss",
            "free_bits=0.1",
            shape,
            lambda: free_bits(mu, lv),
            free_bits_line,
            plain,
        ),
        Row("GaussianKLLoss", "mask", shape, lambda: loss(mu, lv, mask=mask), masked_line, plain),
        Row(
            "GaussianKLLoss",
            'reduction="sum"',
            shape,
            lambda: total(mu, lv),
            lambda: _gaussian_line(mu, lv).sum(),
            plain,
        ),
        Row(
            "GaussianKLLoss",
            'reduction="none"',
            shape,
            lambda: per_sample(mu, lv),
            lambda: _gaussian_line(mu, lv),
            plain,
            upstream,
        ),
        Row(
            "GaussianKLLoss",
            "mean, validate=False (info)",
            shape,
            lambda: no_check(mu, lv),
            *line,
            informational=True,
        ),
    ]


def _k(estimator: str, lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """The per-token estimate as usually written."""
    if estimator == "k1":
        return lp - lq
    if estimator == "k2":
        return 0.5 * (lp - lq) ** 2
    log_ratio = lq - lp
    return log_ratio.exp() - 1 - log_ratio


def penalty_rows(shape: tuple[int, int], gen: torch.Generator) -> list[Row]:
    """The KLPenalty rows at one ``(sequences, tokens)`` shape."""
    lp = (-3 * torch.rand(shape, generator=gen)).requires_grad_()
    lq = lp.detach() + 0.3 * torch.randn(shape, generator=gen)
    lb = lp.detach() + 0.1 * torch.randn(shape, generator=gen)
    mask = torch.rand(shape, generator=gen) < 0.8
    rows = []
    for estimator in ("k1", "k2", "k3"):
        penalty = KLPenalty(estimator=estimator, coef=0.1)
        rows.append(
            Row(
                "KLPenalty",
                f"{estimator}, masked mean",
                shape,
                lambda p=penalty: p(lp, lq, mask),
                lambda e=estimator: 0.1 * ((_k(e, lp, lq) * mask).sum() / mask.sum()),
                (lp,),
            )
        )
    penalty = KLPenalty(estimator="k3", coef=0.1)

    def weighted_line() -> torch.Tensor:
        return 0.1 * ((torch.exp(lp - lb) * _k("k3", lp, lq) * mask).sum() / mask.sum())

    rows.append(
        Row(
            "KLPenalty",
            "k3, old_logprobs (info)",
            shape,
            lambda: penalty(lp, lq, mask, old_logprobs=lb),
            weighted_line,
            (lp,),
            informational=True,
        )
    )
    return rows


# --------------------------------------------------------------------------- timing


@dataclass
class Result:
    """The medians of one row and the largest difference of the two values."""

    row: Row
    ours_us: float
    line_us: float
    max_diff: float

    @property
    def ratio(self) -> float:
        """Torch line median / kldiv median: at least 1 when kldiv is as fast."""
        return self.line_us / self.ours_us


def time_row(row: Row, repeats: int, clock: Callable[[], float]) -> Result:
    """Warms up both callables, then times them alternately with ``clock``."""
    ours = _step(row.ours, row.leaves, row.upstream)
    line = _step(row.line, row.leaves, row.upstream)
    for _ in range(WARMUP):
        ours_value, line_value = ours(), line()
    max_diff = float((ours_value - line_value).abs().max())
    times: dict[str, list[float]] = {"ours": [], "line": []}
    for i in range(repeats):
        order = (("ours", ours), ("line", line)) if i % 2 else (("line", line), ("ours", ours))
        for key, fn in order:
            start = clock()
            fn()
            times[key].append(clock() - start)
    return Result(
        row,
        statistics.median(times["ours"]) * 1e6,
        statistics.median(times["line"]) * 1e6,
        max_diff,
    )


# --------------------------------------------------------------------------- report


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def settings(repeats: int, timer: str) -> list[str]:
    """The settings that matter for the numbers, as Markdown list items."""
    thp, cpu, usable = machine_facts()
    return [
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"kldiv {kldiv.__version__}",
        f"- CPU: {cpu}; os.cpu_count() = {os.cpu_count()}, usable cores = {usable}, "
        f"torch threads = {torch.get_num_threads()}",
        f"- Transparent huge pages: `{thp}`",
        f"- float32, forward + backward; {WARMUP} warm-up calls, then {repeats} timed calls "
        f"of each side, alternating; clock: {timer} ({CLOCKS[timer].__name__})",
    ]


def table(results: list[Result]) -> str:
    """A Markdown table, one line per row."""
    head = ["Loss", "case", "shape", "kldiv µs", "torch line µs", "line / kldiv", "max |diff|"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---:|---:|---:|---:|"]
    for r in results:
        cells = [
            f"`{r.row.group}`",
            r.row.case,
            "×".join(str(n) for n in r.row.shape),
            f"{r.ours_us:,.1f}",
            f"{r.line_us:,.1f}",
            f"**{r.ratio:.2f}x**" if not r.row.informational else f"{r.ratio:.2f}x",
            f"{r.max_diff:.1e}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(results: list[Result]) -> list[str]:
    """Whether every non-informational row meets the target, one list item per row."""
    out = []
    for r in results:
        if r.row.informational:
            continue
        verdict = "MET" if r.ratio >= TARGET else "NOT MET"
        shape = "×".join(str(n) for n in r.row.shape)
        out.append(f"- {r.row.group} {r.row.case} {shape}: **{verdict}** ({r.ratio:.2f}x)")
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per side")
    parser.add_argument("--quick", action="store_true", help="60 timed calls per side")
    parser.add_argument("--only", choices=["gaussian", "penalty"], help="one loss only")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (default 1, see above)"
    )
    parser.add_argument("--timer", choices=sorted(CLOCKS), default="cpu", help="clock (see above)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = 60 if args.quick else args.repeats
    gen = torch.Generator().manual_seed(SEED)
    rows: list[Row] = []
    if args.only != "penalty":
        for shape in ((128, 16), (4096, 64)):
            rows += gaussian_rows(shape, gen)
    if args.only != "gaussian":
        for shape in ((8, 512), (64, 2048)):
            rows += penalty_rows(shape, gen)
    print("## Settings\n")
    print("\n".join(settings(repeats, args.timer)))
    results = [time_row(row, repeats, CLOCKS[args.timer]) for row in rows]
    print("\n## Forward + backward, medians\n")
    print(table(results))
    print("\nRatios above 1: kldiv is faster than the torch line. (info) rows are not targets.\n")
    print(f"### Target: at least {TARGET:g}x the torch line\n")
    print("\n".join(verdicts(results)))


if __name__ == "__main__":
    main()
