"""A chunked, multi-threaded NumPy kernel for ``kl_from_probs`` on large inputs.

The generic array-API path makes several full-size temporaries (masks, safe
copies, the terms) and is bound by their memory traffic. Here the rows are cut
into blocks of about 256K elements; each block is processed with in-place
ufuncs in a per-thread scratch buffer, and the blocks are shared out between
threads (NumPy releases the GIL inside ufuncs). Extra memory is two scratch
buffers per thread, whatever the input size.

Per block it computes ``rowdot(p, log(fmax(p / q, tiny)))``. ``fmax`` turns the
``0 / q`` and ``0 / 0`` of zero-mass entries into ``tiny``, so that
``0 * log(tiny)`` is an exact 0 instead of NaN, while ``p / 0`` stays ``+inf``.
Rows whose fast result is not finite (``q = 0 < p``, or a ratio beyond the
float range) are recomputed with the exact generic kernel, so results equal the
generic path's. When validating, each block also yields its minimum and its
row sums, which check the input in the same pass over memory.

Measured on 2 cores (``benchmarks/discrete_kl.py``): ~5–9 GB/s of input with
validation, ~13–16 GB/s without, against ~1–4.5 GB/s for naive NumPy with a
full-size temporary.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

BLOCK_ELEMENTS = 1 << 18
"""Elements per block: large enough that the GIL is handed over rarely."""

MIN_ELEMENTS = 1 << 18
"""Below this many elements the generic path is as fast and the pool is not worth it."""

MIN_COLUMNS = 128
"""Shorter rows make per-row reductions dominate; the generic path serves them."""

_local = threading.local()
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _thread_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_thread_count(), thread_name_prefix="kldiv")
        return _pool


def _scratch(rows: int, cols: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """This thread's work buffer and a buffer of ``tiny``, both ``(rows, cols)``."""
    size = rows * cols
    cached = getattr(_local, "buffers", None)
    if cached is None or cached[0] != dtype or cached[1].size < size:
        capacity = max(size, BLOCK_ELEMENTS)
        # fmax against an array runs at SIMD speed, against a scalar several times slower.
        floor = np.full(capacity, np.finfo(dtype).tiny, dtype=dtype)
        cached = _local.buffers = (dtype, np.empty(capacity, dtype=dtype), floor)
    _, work, floor = cached
    return work[:size].reshape(rows, cols), floor[:size].reshape(rows, cols)


_row_dot = getattr(np, "vecdot", None) or (lambda a, b: np.einsum("ij,ij->i", a, b))


class _BlockResult(NamedTuple):
    kl: np.ndarray
    sum_p: np.ndarray | None = None
    sum_q: np.ndarray | None = None
    min_entry: float = 0.0


def _block(p: np.ndarray, q: np.ndarray, validate: bool) -> _BlockResult:
    """Fast KL of each row of a (rows, cols) block, and its checks when validating."""
    work, floor = _scratch(*p.shape, p.dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        np.divide(p, q, out=work)
        np.fmax(work, floor, out=work)
        np.log(work, out=work)
        kl = _row_dot(p, work)
    if not validate:
        return _BlockResult(kl)
    return _BlockResult(
        kl,
        sum_p=np.add.reduce(p, axis=1),
        sum_q=np.add.reduce(q, axis=1),
        min_entry=float(min(p.min(), q.min())),
    )


def _blocks(rows: int, cols: int) -> list[tuple[slice, slice]]:
    if cols >= BLOCK_ELEMENTS:
        return [
            (slice(r, r + 1), slice(c, min(c + BLOCK_ELEMENTS, cols)))
            for r in range(rows)
            for c in range(0, cols, BLOCK_ELEMENTS)
        ]
    step = BLOCK_ELEMENTS // cols
    return [(slice(r, min(r + step, rows)), slice(0, cols)) for r in range(0, rows, step)]


def _run_blocks(
    p: np.ndarray, q: np.ndarray, blocks: list[tuple[slice, slice]], validate: bool
) -> list[_BlockResult]:
    """Runs the blocks, interleaved over one task per thread; results in block order."""
    threads = min(_thread_count(), len(blocks))

    def run(indices: range) -> list[_BlockResult]:
        return [_block(p[blocks[i]], q[blocks[i]], validate) for i in indices]

    if threads == 1:
        return run(range(len(blocks)))
    shares = [range(t, len(blocks), threads) for t in range(threads)]
    done = [f.result() for f in [_executor().submit(run, share) for share in shares]]
    ordered: list[_BlockResult] = [None] * len(blocks)  # type: ignore[list-item]
    for share, results in zip(shares, done, strict=True):
        for i, result in zip(share, results, strict=True):
            ordered[i] = result
    return ordered


def _row_totals(
    rows: int, blocks: list[tuple[slice, slice]], results: list[_BlockResult], field: str
) -> np.ndarray:
    """Adds a per-row field over blocks, in float64 (column blocks of wide rows)."""
    totals = np.zeros(rows, dtype=np.float64)
    for (row_slice, _), result in zip(blocks, results, strict=True):
        totals[row_slice] += getattr(result, field)
    return totals


def _valid(
    rows: int, blocks: list[tuple[slice, slice]], results: list[_BlockResult], tolerance: float
) -> bool:
    minimum = min(r.min_entry for r in results)
    sums = (_row_totals(rows, blocks, results, f) for f in ("sum_p", "sum_q"))
    with np.errstate(invalid="ignore"):
        return minimum >= 0 and all(bool(np.all(np.abs(s - 1.0) <= tolerance)) for s in sums)


def kl_rows(
    p: np.ndarray,
    q: np.ndarray,
    *,
    tolerance: float | None,
    on_invalid: Callable[[], None],
    exact_rows: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """KL along the last axis of two C-contiguous arrays of one shape and float dtype.

    Args:
        p: probabilities, ``[..., n]``.
        q: probabilities, same shape and dtype as ``p``.
        tolerance: the row-sum tolerance when validating, None to skip validation
            (then NaN or negative entries give unspecified, possibly finite, values).
        on_invalid: called when validation finds bad input; it should raise.
        exact_rows: the exact kernel, ``(p_rows, q_rows) -> kl_rows``, applied to
            the rows whose fast result is not finite.

    Returns:
        The KL of each row, shape ``p.shape[:-1]``, in nats and ``p.dtype``.
    """
    cols = p.shape[-1]
    rows = p.size // cols
    p2, q2 = p.reshape(rows, cols), q.reshape(rows, cols)
    blocks = _blocks(rows, cols)
    results = _run_blocks(p2, q2, blocks, validate=tolerance is not None)
    if tolerance is not None and not _valid(rows, blocks, results, tolerance):
        on_invalid()
    kl = _row_totals(rows, blocks, results, "kl").astype(p.dtype)
    suspect = np.flatnonzero(~np.isfinite(kl))
    if suspect.size:
        kl[suspect] = exact_rows(p2[suspect], q2[suspect])
    return kl.reshape(p.shape[:-1])


def applies(p: object, q: object, axis: int) -> bool:
    """Whether :func:`kl_rows` can take these inputs."""
    return (
        isinstance(p, np.ndarray)
        and isinstance(q, np.ndarray)
        and p.shape == q.shape
        and p.dtype == q.dtype
        and p.dtype in (np.float32, np.float64)
        and axis == -1
        and p.size >= MIN_ELEMENTS
        and p.shape[-1] >= MIN_COLUMNS
        and p.flags.c_contiguous
        and q.flags.c_contiguous
    )
