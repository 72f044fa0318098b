"""Benchmark of kldiv's discrete measures on eager JAX arrays against the same call jitted.

Run from the repository root, with the project's environment::

    python benchmarks/jax_eager.py               # (2048, 32000) and (64, 10) float32, a few minutes
    python benchmarks/jax_eager.py --quick       # smoke run on (256, 4000) and (64, 10)
    python benchmarks/jax_eager.py --rows 1024 --cols 50000 --repeats 7 --no-generic

For each case (a measure in one input form, at one size) four ways of calling
it are timed, each returning a ``jax.Array`` that is waited for with
``block_until_ready()``:

- **eager**: ``kldiv.kl_from_logits(a, b)`` on concrete arrays (validated, the
  default): the JAX-native path, one cached jitted XLA computation;
- **eager, validate=False**: the same without the value checks;
- **jit**: ``jax.jit(lambda a, b: kldiv.kl_from_logits(a, b))(a, b)``, compiled
  once (the value checks are skipped on traced arrays);
- **generic eager** (unless ``--no-generic``): the array-API specification run
  op by op, as before the native path (``kldiv.discrete._fast_jax.compute``
  patched to return None), validated.

Each method is warmed up once (compilation excluded), then the methods of a
case are timed round-robin, so that drift on a shared machine hits them alike.
The table gives medians and the ratios the performance issue sets targets for:
eager / jit <= 2 and validated / unvalidated <= 1.15 at the large size. Only
ratios measured within one run are meaningful.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

import kldiv
from _common import machine_facts  # benchmarks/ is sys.path[0]
from kldiv.discrete import _fast_jax

SEED = 20240607
EAGER_VS_JIT = 2.0
VALIDATION_COST = 1.15

METHODS = ("eager", "novalidate", "jit", "generic")
"""Method keys, in table order."""


@dataclass(frozen=True)
class Case:
    """One public function in one input form, and the inputs it takes."""

    label: str
    function: Callable[..., Any]
    inputs: str
    """``"logits"``, ``"log_probs"``, ``"probs"`` (two arrays each) or ``"logits1"`` (one)."""


KL_CASES = (
    Case("`kl_from_probs`", kldiv.kl_from_probs, "probs"),
    Case("`kl_from_log_probs`", kldiv.kl_from_log_probs, "log_probs"),
    Case("`kl_from_logits`", kldiv.kl_from_logits, "logits"),
)
OTHER_CASES = (
    Case("`js_from_logits`", kldiv.js_from_logits, "logits"),
    Case("`entropy_from_logits`", kldiv.entropy_from_logits, "logits1"),
    Case("`cross_entropy_from_logits`", kldiv.cross_entropy_from_logits, "logits"),
    Case("`generalized_kl`", kldiv.generalized_kl, "probs"),
)


@dataclass
class Timing:
    """Times of one method of one case."""

    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median time in seconds."""
        return statistics.median(self.times)


# --------------------------------------------------------------------------- inputs


def make_inputs(rows: int, cols: int, seed: int = SEED) -> dict[str, tuple[jax.Array, ...]]:
    """Float32 logits of two distributions and their log-probabilities and probabilities."""
    key_p, key_q = jax.random.split(jax.random.key(seed))
    logits = [3.0 * jax.random.normal(k, (rows, cols), dtype=jnp.float32) for k in (key_p, key_q)]
    log_probs = [jax.nn.log_softmax(z, axis=-1) for z in logits]
    probs = [jnp.exp(lp) for lp in log_probs]
    return {
        "logits": tuple(logits),
        "logits1": (logits[0],),
        "log_probs": tuple(log_probs),
        "probs": tuple(probs),
    }


# --------------------------------------------------------------------------- methods


def _generic(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run on the generic array-API path (the JAX kernels switched off)."""

    def run(*arrays: jax.Array) -> Any:
        native = _fast_jax.compute
        _fast_jax.compute = lambda *args, **kwargs: None
        try:
            return function(*arrays)
        finally:
            _fast_jax.compute = native

    return run


def methods(case: Case, arrays: tuple[jax.Array, ...], with_generic: bool) -> dict[str, Callable]:
    """The callables of one case, key to a function that returns the waited-for result."""
    f = case.function
    jitted = jax.jit(lambda *a: f(*a))
    generic = _generic(f)
    out = {
        "eager": lambda: f(*arrays).block_until_ready(),
        "novalidate": lambda: f(*arrays, validate=False).block_until_ready(),
        "jit": lambda: jitted(*arrays).block_until_ready(),
        "generic": lambda: generic(*arrays).block_until_ready(),
    }
    return out if with_generic else {k: v for k, v in out.items() if k != "generic"}


# --------------------------------------------------------------------------- timing


def time_round_robin(
    fns: dict[str, Callable[[], Any]], repeats: int, limited: dict[str, int]
) -> dict[str, Timing]:
    """Warms up each callable once, then times them in interleaved rounds.

    Args:
        fns: key to callable.
        repeats: timed calls per callable.
        limited: keys timed fewer times (slow baselines), key to their count.

    Returns:
        Key to its timings.
    """
    timings = {key: Timing() for key in fns}
    for fn in fns.values():
        fn()
    for round_ in range(repeats):
        for key, fn in fns.items():
            if round_ >= limited.get(key, repeats):
                continue
            start = time.perf_counter()
            fn()
            timings[key].times.append(time.perf_counter() - start)
    return timings


# --------------------------------------------------------------------------- report


def _duration(seconds: float, small: bool) -> str:
    return f"{seconds * 1e6:,.0f} µs" if small else f"{seconds * 1e3:,.1f} ms"


def _ratio(numerator: Timing | None, denominator: Timing | None) -> str:
    if numerator is None or denominator is None:
        return "—"
    return f"{numerator.median / denominator.median:.2f}x"


def table_rows(
    case: Case, shape: tuple[int, int], timings: dict[str, Timing], small: bool
) -> list[str]:
    """The Markdown row of one case."""
    cells = [case.label, f"{shape}"]
    cells += [_duration(timings[key].median, small) if key in timings else "—" for key in METHODS]
    cells += [
        _ratio(timings["eager"], timings["jit"]),
        _ratio(timings["eager"], timings["novalidate"]),
        _ratio(timings.get("generic"), timings["eager"]),
    ]
    return ["| " + " | ".join(cells) + " |"]


HEADER = [
    "| Case | shape | eager | eager, validate=False | jit | generic eager (before) "
    "| eager / jit | validated / unvalidated | generic / eager |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
]


def settings(shapes: list[tuple[int, int]], repeats: int, small_repeats: int) -> list[str]:
    """The settings that matter for the numbers, as Markdown list items."""
    thp, cpu, usable = machine_facts()
    return [
        f"- Python {platform.python_version()}, JAX {jax.__version__}, kldiv {kldiv.__version__}",
        f"- Device: {jax.devices()[0].device_kind} ({jax.default_backend()}); CPU: {cpu}, "
        f"usable cores = {usable}; transparent huge pages: `{thp}`",
        f"- Inputs: float32, shapes {', '.join(str(s) for s in shapes)}; {repeats} timed "
        f"repeats at the large size ({small_repeats} at the small one) after one warm-up, "
        "interleaved round-robin; generic eager: fewer at the large size",
    ]


def check_targets(results: list[tuple[Case, dict[str, Timing]]]) -> list[str]:
    """Whether the issue's targets are met at the large size, one Markdown item per case."""
    out = []
    for case, timings in results:
        eager_jit = timings["eager"].median / timings["jit"].median
        cost = timings["eager"].median / timings["novalidate"].median
        verdict = "MET" if eager_jit <= EAGER_VS_JIT and cost <= VALIDATION_COST else "NOT MET"
        out.append(
            f"- {case.label}: eager <= {EAGER_VS_JIT:g}x jit ({eager_jit:.2f}x), validation <= "
            f"{VALIDATION_COST:g}x ({cost:.2f}x): **{verdict}**"
        )
    return out


def run_size(
    shape: tuple[int, int], cases: tuple[Case, ...], repeats: int, with_generic: bool
) -> list[tuple[Case, dict[str, Timing]]]:
    """Times every case at one shape."""
    inputs = make_inputs(*shape)
    small = shape[0] * shape[1] < 1 << 16
    results = []
    for case in cases:
        fns = methods(case, inputs[case.inputs], with_generic)
        limited = {} if small else {"generic": min(repeats, 2)}
        results.append((case, time_round_robin(fns, repeats, limited)))
    return results


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048, help="rows, large size (default 2048)")
    parser.add_argument("--cols", type=int, default=32000, help="columns (default 32000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--small-repeats", type=int, default=300, help="at (64, 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run on (256, 4000)")
    parser.add_argument("--no-generic", action="store_true", help="skip the generic path")
    args = parser.parse_args(argv)
    large = (256, 4000) if args.quick else (args.rows, args.cols)
    small = (64, 10)
    with_generic = not args.no_generic

    print("## Settings\n")
    print("\n".join(settings([large, small], args.repeats, args.small_repeats)))
    print(flush=True)

    large_results = run_size(large, KL_CASES + OTHER_CASES, args.repeats, with_generic)
    small_results = run_size(small, KL_CASES + OTHER_CASES, args.small_repeats, with_generic)

    print("## Eager JAX against jax.jit (medians)\n")
    print("\n".join(HEADER))
    for results, size in ((large_results, large), (small_results, small)):
        for case, timings in results:
            print("\n".join(table_rows(case, size, timings, small=size == small)))
    print(
        "\nRatios are of medians: eager / jit and validated / unvalidated (below 1: faster), "
        "generic / eager (the speed-up of the native path over the generic one)."
    )
    print(f"\n### Targets at {large}\n")
    print("\n".join(check_targets(large_results)))


if __name__ == "__main__":
    main()
