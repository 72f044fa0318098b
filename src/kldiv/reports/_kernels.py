"""Per-token values of one chunk of rows: KL, top-1 agreement, Δp and the reference NLLs.

Two implementations of one contract. :func:`numpy_token_values` serves NumPy
arrays (memory maps included): it works through the chunk in sub-blocks of a
few MiB, in per-thread scratch buffers, with in-place ufuncs shared between
threads (NumPy releases the GIL inside them), so the extra memory is a few
sub-blocks whatever the chunk size. :func:`generic_token_values` serves every
other array library (PyTorch, JAX, CuPy, array-api-strict) in its own fused
``log_softmax``, on its own device; only the per-token vectors come back, as
NumPy float64.

Both check the logits in the pass that reads them: the row maximum (which the
softmax needs anyway) is NaN when the row holds a NaN, ``+inf`` when it holds
``+inf`` and ``-inf`` when every entry is masked; any of these raises a
:class:`~kldiv.KLDivError` naming the argument and the row.
"""

from __future__ import annotations

import math
import threading
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from kldiv._array_api import to_numpy
from kldiv._special import log_softmax
from kldiv.discrete import _fast_numpy
from kldiv.discrete._terms import kl_terms_from_log_probs
from kldiv.errors import KLDivError

Array = Any

SUB_BLOCK_BYTES = 2 << 20
"""Bytes of one input row block processed at a time by a thread (cache-sized)."""

_local = threading.local()


class TokenValues(NamedTuple):
    """The per-token results of a chunk, for the positions it includes, in float64.

    Attributes:
        kl: ``D(P_base ‖ P_test)`` of each position, in nats.
        same_top: whether the two models' most probable tokens agree.
        delta_p: ``p_test(t) - p_base(t)`` for the reference token ``t``.
        nll_base: ``-log p_base(t)`` (None without given tokens).
        nll_test: ``-log p_test(t)`` (None without given tokens).
    """

    kl: np.ndarray
    same_top: np.ndarray
    delta_p: np.ndarray
    nll_base: np.ndarray | None
    nll_test: np.ndarray | None


def raise_for_bad_rows(row_max: np.ndarray, name: str, row_offset: int) -> None:
    """Raises a KLDivError for the first row whose maximum shows NaN, +inf or no mass."""
    bad = ~np.isfinite(row_max)
    if not bad.any():
        return
    row = int(np.flatnonzero(bad)[0])
    value = float(row_max[row])
    where = f"at position (row) {row_offset + row}"
    if math.isnan(value):
        what = "a NaN logit"
    elif value > 0:
        what = "a +inf logit"
    else:
        what = "only -inf logits (no token has any probability)"
    raise KLDivError(
        f"`{name}` must hold finite logits or -inf (a masked token), with at least one "
        f"finite logit per position; got {what} {where}"
    )


def _scratch(rows: int, cols: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """Four ``(rows, cols)`` work buffers of this thread, reused across calls."""
    size = rows * cols
    cached = getattr(_local, "buffers", None)
    if cached is None or cached[0] != dtype or cached[1].size < size:
        cached = _local.buffers = (dtype, *(np.empty(size, dtype=dtype) for _ in range(4)))
    return tuple(buffer[:size].reshape(rows, cols) for buffer in cached[1:])


def _exact_kl_rows(base: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The exact kernel of :mod:`kldiv.discrete` for rows with masked (-inf) or diverging terms."""
    import array_api_compat.numpy as xp

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # logits spanning more than the dtype's range overflow to -inf when shifted: zero mass
        log_p = log_softmax(base, -1, xp=xp)
        log_q = log_softmax(test, -1, xp=xp)
        return np.sum(kl_terms_from_log_probs(log_p, log_q, xp=xp), axis=-1, dtype=np.float64)


def _numpy_block(
    base: np.ndarray, test: np.ndarray, reference: np.ndarray | None
) -> tuple[np.ndarray, ...]:
    """Per-row KL, top-1 agreement, reference log-probabilities of one block (validated)."""
    rows = np.arange(base.shape[0])
    top_base = np.argmax(base, axis=1)
    top_test = np.argmax(test, axis=1)
    max_base = base[rows, top_base]  # NaN where the row holds one: argmax stops at NaN
    max_test = test[rows, top_test]
    shifted_base, prob_base, shifted_test, prob_test = _scratch(*base.shape, base.dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        np.subtract(base, max_base[:, None], out=shifted_base)
        np.exp(shifted_base, out=prob_base)
        sum_base = np.add.reduce(prob_base, axis=1, dtype=np.float64)
        np.subtract(test, max_test[:, None], out=shifted_test)
        np.exp(shifted_test, out=prob_test)
        sum_test = np.add.reduce(prob_test, axis=1, dtype=np.float64)
        log_sum_base = np.log(sum_base)
        log_sum_test = np.log(sum_test)
        # log p_b - log p_t = (b - max_b) - (t - max_t) + (log S_t - log S_b), and sum p_b = 1
        np.subtract(shifted_base, shifted_test, out=shifted_base)
        weighted = _fast_numpy._row_dot(prob_base, shifted_base).astype(np.float64)
        kl = weighted / sum_base + (log_sum_test - log_sum_base)
    valid_rows = np.isfinite(max_base) & np.isfinite(max_test)  # others raise in the caller
    suspect = np.flatnonzero(~np.isfinite(kl) & valid_rows)
    if suspect.size:  # masked tokens (0 * -inf) or a true divergence: the exact kernel decides
        kl[suspect] = _exact_kl_rows(base[suspect], test[suspect])
    np.maximum(kl, 0.0, out=kl)  # KL >= 0: a rounding-level negative is clamped
    ref = top_base if reference is None else reference
    with np.errstate(invalid="ignore", over="ignore"):  # NaN, +inf rows raise in the caller
        log_p_base = (base[rows, ref] - max_base).astype(np.float64) - log_sum_base
        log_p_test = (test[rows, ref] - max_test).astype(np.float64) - log_sum_test
    same_top = top_base == top_test
    return kl, same_top, log_p_base, log_p_test, max_base, max_test


def numpy_token_values(
    base: np.ndarray,
    test: np.ndarray,
    reference: np.ndarray | None,
    include: np.ndarray | None,
    *,
    row_offset: int,
    names: tuple[str, str],
    compute_dtype: np.dtype,
) -> TokenValues:
    """Per-token values of a ``(rows, V)`` chunk of NumPy logits.

    Args:
        base: the base model's logits, ``(rows, V)`` (a memory-map slice is fine).
        test: the test model's logits, same shape.
        reference: the reference token of each row (int64), None for the base argmax.
        include: which rows count (bool), None for all.
        row_offset: the position of the chunk's first row, for error messages.
        names: the argument names of ``base`` and ``test``, for error messages.
        compute_dtype: float32 or float64.

    Returns:
        The :class:`TokenValues` of the included rows.
    """
    n_rows, vocab = base.shape
    step = max(1, SUB_BLOCK_BYTES // max(1, vocab * np.dtype(compute_dtype).itemsize))
    starts = list(range(0, n_rows, step))

    def run(start: int) -> tuple[np.ndarray, ...]:
        stop = min(start + step, n_rows)
        b = np.ascontiguousarray(base[start:stop], dtype=compute_dtype)
        t = np.ascontiguousarray(test[start:stop], dtype=compute_dtype)
        ref = None if reference is None else reference[start:stop]
        return _numpy_block(b, t, ref)

    threads = min(_fast_numpy._thread_count(), len(starts))
    if threads <= 1:
        parts = [run(s) for s in starts]
    else:
        parts = list(_fast_numpy._executor().map(run, starts))
    kl, same_top, log_p_base, log_p_test, max_base, max_test = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    raise_for_bad_rows(max_base, names[0], row_offset)
    raise_for_bad_rows(max_test, names[1], row_offset)
    return _select(kl, same_top, log_p_base, log_p_test, include, with_nll=reference is not None)


def _select(
    kl: np.ndarray,
    same_top: np.ndarray,
    log_p_base: np.ndarray,
    log_p_test: np.ndarray,
    include: np.ndarray | None,
    *,
    with_nll: bool,
) -> TokenValues:
    if include is not None and not bool(include.all()):
        kl, same_top, log_p_base, log_p_test = (
            a[include] for a in (kl, same_top, log_p_base, log_p_test)
        )
    delta_p = np.exp(log_p_test) - np.exp(log_p_base)
    return TokenValues(
        kl=kl,
        same_top=same_top,
        delta_p=delta_p,
        nll_base=-log_p_base if with_nll else None,
        nll_test=-log_p_test if with_nll else None,
    )


def _take_rows(values: Array, indices: Array, xp: ModuleType) -> Array:
    """``values[r, indices[r]]`` for each row ``r``."""
    return xp.take_along_axis(values, indices[:, None], axis=1)[:, 0]


def generic_token_values(
    base: Array,
    test: Array,
    reference: np.ndarray | None,
    include: np.ndarray | None,
    *,
    xp: ModuleType,
    row_offset: int,
    names: tuple[str, str],
    compute_dtype: Any,
) -> TokenValues:
    """Per-token values of a ``(rows, V)`` chunk in any array library (computed there).

    Args and returns as :func:`numpy_token_values`; ``xp`` is the chunk's namespace
    and ``compute_dtype`` a dtype of it.
    """
    if base.dtype != compute_dtype:
        base = xp.astype(base, compute_dtype)
    if test.dtype != compute_dtype:
        test = xp.astype(test, compute_dtype)
    raise_for_bad_rows(to_numpy(xp.max(base, axis=1)), names[0], row_offset)
    raise_for_bad_rows(to_numpy(xp.max(test, axis=1)), names[1], row_offset)
    log_p = log_softmax(base, -1, xp=xp)
    log_q = log_softmax(test, -1, xp=xp)
    kl = xp.sum(kl_terms_from_log_probs(log_p, log_q, xp=xp), axis=-1)
    top_base = xp.argmax(base, axis=-1)
    top_test = xp.argmax(test, axis=-1)
    if reference is None:
        ref = top_base
    else:
        ref = xp.asarray(reference, device=_device_of(base, xp))
        ref = xp.astype(ref, top_base.dtype)
    log_p_base = _take_rows(log_p, ref, xp)
    log_p_test = _take_rows(log_q, ref, xp)
    kl64 = np.maximum(to_numpy(kl).astype(np.float64), 0.0)
    return _select(
        kl64,
        to_numpy(top_base == top_test),
        to_numpy(log_p_base).astype(np.float64),
        to_numpy(log_p_test).astype(np.float64),
        include,
        with_nll=reference is not None,
    )


def _device_of(x: Array, xp: ModuleType) -> Any:
    from kldiv._array_api import device

    return device(x)
