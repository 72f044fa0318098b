"""Cost of kldiv's deferred value checks on Dask arrays: ``validate=True`` against ``False``.

Run from the repository root::

    python benchmarks/dask_checks.py            # two (2048, 32768) float32 inputs, 256 MiB each
    python benchmarks/dask_checks.py --quick    # (256, 32768)

On Dask the checks (negative / NaN probabilities, rows not summing to one, NaN
logits, …) are tasks of the same graph that read the same chunks as the
divergence; this measures what they add to ``f(P, Q).sum().compute()`` on the
threaded scheduler (2 threads), with the event axis in one chunk and split over
4 chunks (the row sums then span chunks). Best of ``--repeats``, both variants
measured alternately in one run.
"""

from __future__ import annotations

import argparse
import time

import dask
import dask.array as da
import numpy as np
from scipy.special import softmax

import kldiv


def inputs(rows: int, vocab: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Logits, probabilities and log-probabilities of two random float32 models."""
    rng = np.random.default_rng(0)
    z_p = rng.standard_normal((rows, vocab), dtype=np.float32)
    z_q = rng.standard_normal((rows, vocab), dtype=np.float32)
    p, q = softmax(z_p, axis=1).astype(np.float32), softmax(z_q, axis=1).astype(np.float32)
    return {
        "kl_from_logits": (z_p, z_q),
        "kl_from_probs": (p, q),
        "kl_from_log_probs": (np.log(p), np.log(q)),
    }


def best_seconds(f, a, b, validate: bool, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b, validate=validate).sum().compute()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = 256 if args.quick else args.rows
    arrays = inputs(rows, args.vocab)
    print(f"Dask threaded scheduler, 2 threads, ({rows}, {args.vocab}) float32 inputs\n")
    print("| function | chunks | no checks (s) | checks (s) | overhead |")
    print("|---|---|---|---|---|")
    with dask.config.set(scheduler="threads", num_workers=2):
        for chunks in ((128, args.vocab), (128, args.vocab // 4)):
            for name, (a, b) in arrays.items():
                f = getattr(kldiv, name)
                lazy_a, lazy_b = da.from_array(a, chunks=chunks), da.from_array(b, chunks=chunks)
                off = best_seconds(f, lazy_a, lazy_b, False, args.repeats)
                on = best_seconds(f, lazy_a, lazy_b, True, args.repeats)
                overhead = 100 * (on / off - 1)
                print(f"| {name} | {chunks} | {off:.3f} | {on:.3f} | {overhead:+.0f}% |")


if __name__ == "__main__":
    main()
