"""The worked example and kldiv's conventions, on every array library that is installed.

Run it with ``python examples/worked_example.py`` (or ``bash scripts/demo.sh``).
"""

from __future__ import annotations

import importlib
import math
import time

import numpy as np

import kldiv


def show_worked_example() -> None:
    """D(P ‖ Q) for P = [0.4, 0.6], Q = [0.5, 0.5], in nats and bits."""
    p, q = [0.4, 0.6], [0.5, 0.5]
    nats = float(kldiv.kl_from_probs(p, q))
    bits = float(kldiv.kl_from_probs(p, q, base=2))
    print("P = [0.4, 0.6], Q = [0.5, 0.5]")
    print(f"  D(P ‖ Q) = {nats:.7f} nats = {bits:.7f} bits")
    print(f"  D(Q ‖ P) = {float(kldiv.kl_from_probs(q, p)):.7f} nats (KL is not symmetric)")
    print(f"  JS(P, Q)  = {float(kldiv.js_from_probs(p, q)):.7f} nats (bounded by log 2)")
    print(f"  H(P)      = {float(kldiv.entropy(p, base=2)):.7f} bits")


def show_conventions() -> None:
    """Exact zeros, +inf on a support mismatch, masked logits, clear errors."""
    print("\nConventions")
    one_hot = float(kldiv.kl_from_probs([1.0, 0.0], [0.5, 0.5]))
    print(f"  D([1, 0] ‖ [.5, .5]) = log 2 = {one_hot:.7f} (0·log 0 = 0)")
    print(f"  q = 0 < p gives +inf: {float(kldiv.kl_from_probs([0.5, 0.5], [1.0, 0.0]))}")
    masked = kldiv.kl_from_logits([2.0, 1.0, -math.inf], [0.0, 0.0, 0.0], temperature=2.0)
    print(f"  -inf logits are masked (T = 2): {float(masked):.7f}")
    try:
        kldiv.kl_from_probs([0.5, 0.5], [0.3, 0.3])
    except kldiv.KLDivError as err:
        print(f"  bad input raises KLDivError: {err}")


def show_backends() -> None:
    """The same call on every installed array library, in its own array type."""
    print("\nBackends")
    for name in ("numpy", "torch", "jax.numpy", "dask.array", "cupy"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            print(f"  {name:11s} not installed")
            continue
        value = kldiv.kl_from_probs(module.asarray([0.4, 0.6]), module.asarray([0.5, 0.5]))
        print(f"  {name:11s} {type(value).__module__}.{type(value).__name__}: {float(value):.7f}")


def show_speed() -> None:
    """Throughput of the chunked NumPy kernel on a (4096, 8192) float32 pair."""
    rng = np.random.default_rng(0)
    p = rng.random((4096, 8192), dtype=np.float32) + 1e-3
    q = rng.random((4096, 8192), dtype=np.float32) + 1e-3
    p /= p.sum(-1, keepdims=True)
    q /= q.sum(-1, keepdims=True)
    kldiv.kl_from_probs(p, q)
    start = time.perf_counter()
    per_row = kldiv.kl_from_probs(p, q)
    seconds = time.perf_counter() - start
    gigabytes = (p.nbytes + q.nbytes) / 1e9
    print(
        f"\nSpeed: {per_row.shape[0]} rows × 8192 in {seconds * 1e3:.0f} ms, "
        f"{gigabytes / seconds:.1f} GB/s of input (see docs/benchmarks.md)"
    )


if __name__ == "__main__":
    show_worked_example()
    show_conventions()
    show_backends()
    show_speed()
