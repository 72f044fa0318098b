"""Chunked, multi-threaded NumPy kernels of the discrete measures on large inputs.

:func:`compute` is this backend's entry in :mod:`kldiv.discrete._native`. It
takes large C-contiguous float32/float64 arrays of one shape reduced over the
last axis, and returns None for anything else (the generic array-API path,
which is the specification, then runs and raises its errors).

The generic path makes several full-size temporaries (masks, safe copies, the
terms) and is bound by their memory traffic. Here the rows are cut into blocks
of about 256K elements; each block is processed with in-place ufuncs in
per-thread scratch buffers, and the blocks are shared out between threads
(NumPy releases the GIL inside ufuncs). Extra memory is a few scratch buffers
per thread (at most 6 blocks), whatever the input size.

Per block, in nats (``P = exp(log p)``, ``⟨a, b⟩`` the row dot product):

- log-probabilities: ``KL = ⟨P, d + expm1(-d)⟩`` with ``d = log p - log q``
  (the Bregman form ``P d - P + Q`` of each term: >= 0, exactly 0 where
  ``p = q``, relatively accurate where ``p ≈ q``), ``H(P, Q) = -⟨P, log q⟩``,
  ``H(P) = -⟨P, log p⟩``, and with ``M = βP + (1 - β)Q``
  ``JS = ⟨βP, log p - log M⟩ + ⟨(1 - β)Q, log q - log M⟩``, ``log M`` clamped
  between ``log p`` and ``log q`` (so an exact 0 where they are equal);
- logits: ``log p = (z - max) / T - log Σ exp((z - max) / T)`` per row (the
  maximum subtracted first, then the log-normaliser, so that huge logits keep
  their digits; the temperature scales ``z - max``, which cannot overflow), then
  the log-probability formulas on the block in cache, with ``P`` as
  ``exp((z - max) / T)`` and the division by its sum applied to each row's
  value. Rows wider than a block take a first pass for their maxima and sums;
- probabilities: ``KL = ⟨p, log max(p / q, s)⟩ + Σ(q - p)`` (SciPy's
  ``kl_div`` summed; the generalized KL alike), ``H(P) = -⟨p, log max(p, s)⟩``,
  ``H(P, Q) = -⟨p, log max(q, s)⟩``, and
  ``JS = β⟨p, log max(p / m, s)⟩ + (1 - β)⟨q, log max(q / m, s)⟩``
  with ``m = βp + (1 - β)q`` clamped between ``p`` and ``q``. KL, JS and the
  generalized KL of a row are clamped at 0 (rounding of near-equal rows).
  ``s`` is the smallest subnormal number: it turns
  ``0 / q`` and ``0 / 0`` into a finite logarithm times an exact 0, and leaves
  every positive value unchanged.

In float32 ``exp`` is computed as ``exp2(x log2 e)`` and ``log`` as ``log2``
(NumPy's are faster); see :func:`_exp` for what that costs in precision.

Rows whose fast value is not finite are recomputed, block by block: rows with
``-inf`` entries (``-inf - (-inf)``, ``0 * (-inf)``) with the logarithm set to
0 where its weight has no mass, when the inputs hold no NaN or +inf; every
other one (``q = 0 < p``, a ratio beyond the float range, NaN) and, without
validation, a row with a negative or NaN probability, with the reference terms
of :mod:`kldiv.discrete._terms`. So values equal the generic path's to
rounding, and extra memory stays O(block).

When validating, each block also yields the quantities the reference checks:
the row sums of ``P`` (free: ``P`` is there) and of ``exp(log q)`` (one more
``exp``: the one cost of validation that is not free), the row minima and sums
of probabilities, the row maxima of logits (needed for the softmax anyway). A
NaN or +inf entry makes a row sum non-finite. When one of them is off (with a
guard band inside the tolerance, so that the order of summation never
decides), :func:`compute` returns None and the generic path runs the
reference's checks and raises its error.

Measured on 2 shared cores (``benchmarks/discrete_kl.py``), float32
(4096, 8192): ``kl_from_log_probs`` 3-5x naive NumPy
``np.sum(np.exp(lp) * (lp - lq))`` (validation costs ~+60-100%: the ``exp`` of
``log q``), ``kl_from_logits`` ~15x a naive NumPy log-softmax of both plus the
same (validation free), with ~8-12 MiB of extra memory where the naive lines
need 256-512 MiB.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from kldiv._array_api import array_namespace
from kldiv._validation import (
    check_beta,
    check_temperature,
    log_of_base,
    resolve_validate,
    sum_tolerance,
)
from kldiv.discrete import _terms
from kldiv.errors import KLDivError

BLOCK_ELEMENTS = 1 << 18
"""Elements per block: large enough that the GIL is handed over rarely."""

MIN_ELEMENTS = 1 << 18
"""Below this many elements the generic path is as fast and the pool is not worth it."""

MIN_COLUMNS = 128
"""Shorter rows make per-row reductions dominate; the generic path serves them."""

GUARD = 0.2
"""Fraction of the row-sum tolerance left to the reference check: a fast row sum
within ``GUARD * tolerance`` of the limit sends the inputs to the generic path,
whose own summation (and ``exp``) decides. Rows that far off are rare: sums of
real data are within a few ``eps`` of 1, or clearly wrong."""

MIN_BETA = 1e-6
"""Jensen–Shannon weights closer than this to 0 or 1 go to the generic path
(``beta * P`` would lose digits to underflow)."""

_MEASURES_BY_FORM = {
    "probs": ("kl", "js", "entropy", "cross_entropy", "generalized_kl"),
    "log_probs": ("kl", "js", "entropy", "cross_entropy"),
    "logits": ("kl", "js", "entropy", "cross_entropy"),
}

_local = threading.local()
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


# --------------------------------------------------------------------------- threads and buffers


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


def _scratch(count: int, rows: int, cols: int, dtype: np.dtype) -> list[np.ndarray]:
    """``count`` of this thread's work buffers, each ``(rows, cols)`` (reused between calls)."""
    cache = _local.__dict__.setdefault("buffers", {})
    buffers = cache.setdefault(np.dtype(dtype), [])
    size = rows * cols
    if buffers and buffers[0].size < size:
        buffers.clear()
    while len(buffers) < count:
        buffers.append(np.empty(max(size, BLOCK_ELEMENTS), dtype=dtype))
    return [b[:size].reshape(rows, cols) for b in buffers[:count]]


_constants: dict[tuple[str, np.dtype], np.ndarray] = {}


def _constant(name: str, size: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of ``size`` ones or smallest subnormals, shared by the threads.

    ``fmax`` against an array runs at SIMD speed, against a scalar several times slower.
    """
    key = (name, np.dtype(dtype))
    vector = _constants.get(key)
    if vector is None or vector.size < size:
        fill = 1.0 if name == "ones" else np.finfo(dtype).smallest_subnormal
        vector = np.full(max(size, BLOCK_ELEMENTS), fill, dtype=dtype)
        vector.flags.writeable = False
        _constants[key] = vector
    return vector[:size]


def _ones(cols: int, dtype: np.dtype) -> np.ndarray:
    return _constant("ones", cols, dtype)


def _floor(shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    return _constant("floor", shape[0] * shape[1], dtype).reshape(shape)


_row_dot = getattr(np, "vecdot", None) or (lambda a, b: np.einsum("ij,ij->i", a, b))
"""``⟨a, b⟩`` of each row of two (rows, cols) arrays."""


def _row_sum(a: np.ndarray) -> np.ndarray:
    """Each row's sum, in float64 (a matrix-vector product: several times ``np.sum``'s speed)."""
    return (a @ _ones(a.shape[1], a.dtype)).astype(np.float64)


_LOG2_E = 1.0 / math.log(2.0)


def _exp(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``exp(x)`` into ``out``: ``exp2(x log2 e)`` in float32, ``exp`` in float64.

    NumPy's float32 ``exp2`` runs at twice the speed of its ``exp``. Rounding
    ``x log2 e`` to float32 costs a relative error below ``1e-7 |x| + 3e-7``
    (measured below 4e-6 over [-104, 5], below 1e-6 over [-20, 0] where the
    mass is), against float32 rounding of 6e-8. It is of the order of what the
    reference's own ``log p - log q`` loses to rounding, and a sixth of the
    guard band of the float32 row-sum checks (``GUARD`` times 3.5e-4).
    """
    if x.dtype != np.float32:
        return np.exp(x, out=out)
    np.multiply(x, np.float32(_LOG2_E), out=out)
    return np.exp2(out, out=out)


def _blocks(rows: int, cols: int) -> list[tuple[slice, slice]]:
    """Whole rows per block, or column pieces of one row when a row exceeds a block."""
    if cols >= BLOCK_ELEMENTS:
        return [
            (slice(r, r + 1), slice(c, min(c + BLOCK_ELEMENTS, cols)))
            for r in range(rows)
            for c in range(0, cols, BLOCK_ELEMENTS)
        ]
    step = BLOCK_ELEMENTS // cols
    return [(slice(r, min(r + step, rows)), slice(0, cols)) for r in range(0, rows, step)]


def _map_blocks(task: Callable[[tuple[slice, slice]], Any], blocks: list) -> list:
    """``task`` of each block, in block order, run by this thread and the pool's.

    Each thread takes the next block when it is done with one, so a thread that
    the machine's other work holds back takes fewer blocks instead of leaving
    the others waiting for its share.
    """
    threads = min(_thread_count(), len(blocks))
    results: list = [None] * len(blocks)
    following = itertools.count()  # next() is atomic: one thread per block

    def work() -> None:
        for i in iter(following.__next__, None):
            if i >= len(blocks):
                return
            results[i] = task(blocks[i])

    helpers = [_executor().submit(work) for _ in range(threads - 1)]
    work()
    for helper in helpers:
        if not helper.cancel():  # a helper still queued (behind other calls) is not waited for
            helper.result()
    return results


# --------------------------------------------------------------------------- the call's plan


class _Plan(NamedTuple):
    """What one call computes, with its options checked."""

    measure: str
    form: str
    validate: bool
    log_base: float | None
    scale: float
    """``1 / temperature`` of the logits form (1.0 otherwise)."""
    beta: float
    tolerance: float
    """The row-sum tolerance, narrowed by the guard band."""


def _integer_axis(axis: object, ndim: int) -> bool:
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        return False
    return int(axis) in (-1, ndim - 1)


def _eligible(arrays: Sequence[object], axis: object) -> bool:
    """Large C-contiguous float32/float64 ndarrays of one shape and dtype, event axis last."""
    first = arrays[0]
    if not all(type(a) is np.ndarray for a in arrays):
        return False
    return (
        first.dtype in (np.float32, np.float64)
        and first.ndim >= 1
        and _integer_axis(axis, first.ndim)
        and first.size >= MIN_ELEMENTS
        and first.shape[-1] >= MIN_COLUMNS
        and all(a.shape == first.shape and a.dtype == first.dtype for a in arrays)
        and all(a.flags.c_contiguous for a in arrays)
    )


def _scale(form: str, temperature: object, dtype: np.dtype) -> float | None:
    """``1 / temperature``, or None when it is invalid or not a normal number of ``dtype``."""
    if form != "logits":
        return 1.0
    scale = 1.0 / check_temperature(temperature)
    info = np.finfo(dtype)
    return scale if info.tiny <= scale <= info.max else None


def _plan(
    measure: str,
    form: str,
    arrays: Sequence[object],
    axis: object,
    base: object,
    validate: object,
    temperature: object,
    beta: object,
) -> _Plan | None:
    """The plan of a call these kernels serve, or None."""
    if measure not in _MEASURES_BY_FORM.get(form, ()):
        return None
    if len(arrays) != (1 if measure == "entropy" else 2) or not _eligible(arrays, axis):
        return None
    dtype = arrays[0].dtype
    try:
        log_base = log_of_base(base)
        do_validate = resolve_validate(validate)  # type: ignore[arg-type]
        scale = _scale(form, temperature, dtype)
        weight = check_beta(beta) if measure == "js" else 0.5
    except KLDivError:
        return None
    if scale is None or not MIN_BETA <= weight <= 1.0 - MIN_BETA:
        return None
    tolerance = sum_tolerance(dtype, np) * (1.0 - GUARD)
    return _Plan(measure, form, do_validate, log_base, scale, weight, tolerance)


# --------------------------------------------------------------------------- block results


class _Partial(NamedTuple):
    """One block's contribution: per-row values and the quantities checked."""

    values: np.ndarray
    """The measure of each row of the block (of its columns, for a piece of a wide row), in
    nats, float64."""
    sums: tuple[np.ndarray, ...] = ()
    """Row sums of each checked input (of ``exp`` of log-probabilities), float64."""
    nonnegative: bool = True
    """Whether every checked entry is >= 0 (False for NaN)."""
    odd: bool = False
    """An input only the generic path may handle (logits: a row maximum that is not finite)."""


Terms = Callable[..., np.ndarray]
"""Reference terms ``terms(*arrays, xp=xp)`` of one measure and form, before the row sum."""


def _reference_terms(measure: str, form: str, beta: float) -> Terms:
    """The elementwise terms of :mod:`kldiv.discrete._terms` this plan must equal."""
    if form == "probs":
        if measure == "js":
            return partial(_terms.js_terms_from_probs, beta=beta)
        return {
            "kl": _terms.kl_bregman_terms_from_probs,
            "entropy": _terms.entropy_terms_from_probs,
            "cross_entropy": _terms.cross_entropy_terms_from_probs,
            "generalized_kl": _terms.generalized_kl_terms,
        }[measure]
    if measure == "js":
        return partial(_terms.js_terms_from_log_probs, beta=beta)
    return {
        "kl": _terms.kl_bregman_terms_from_log_probs,
        "entropy": _terms.entropy_terms_from_log_probs,
        "cross_entropy": _terms.cross_entropy_terms_from_log_probs,
    }[measure]


def _with_exact_rows(
    values: np.ndarray, suspect: np.ndarray, terms: Terms, arrays: Sequence[np.ndarray]
) -> np.ndarray:
    """``values`` (float64) with the ``suspect`` rows recomputed by the reference ``terms``.

    Only those rows are copied, so the extra memory stays within the block.
    """
    values = values.astype(np.float64)
    rows = np.flatnonzero(suspect)
    if rows.size:
        picked = [a[rows] for a in arrays]
        exact = terms(*picked, xp=array_namespace(picked[0]))
        values[rows] = np.sum(exact, axis=-1, dtype=picked[0].dtype)
    return values


# --------------------------------------------------------------------------- log-space kernels


def _log_space_values(
    measure: str,
    lp: np.ndarray,
    lq: np.ndarray | None,
    p: np.ndarray,
    q: np.ndarray | None,
    work: Sequence[np.ndarray],
    beta: float,
) -> np.ndarray:
    """The measure of each row from log-probabilities and ``p = exp(lp)`` (``q = exp(lq)``).

    ``KL = ⟨p, d + expm1(-d)⟩`` with ``d = lp - lq`` (:func:`_kl_log_terms`),
    ``H(P, Q) = -⟨p, lq⟩``, ``H(P) = -⟨p, lp⟩``, and
    ``JS = ⟨βp, lp - log m⟩ + ⟨(1 - β)q, lq - log m⟩`` with ``m = βp + (1 - β)q``
    and ``log m`` clamped between ``lp`` and ``lq`` (where it lies: exactly ``lp``
    where ``lp = lq``, so that identical rows give an exact 0). ``q`` is only
    needed there. ``lp`` and ``lq`` are left unchanged; ``p``, ``q`` and the two
    ``work`` buffers may be overwritten.
    """
    if measure == "entropy":
        return -_row_dot(p, lp)
    if measure == "cross_entropy":
        return -_row_dot(p, lq)
    difference = work[0]
    if measure == "kl":
        return _row_dot(p, _kl_log_terms(lp, lq, difference, work[1]))
    log_m = work[1]
    np.multiply(p, beta, out=p)
    np.multiply(q, 1.0 - beta, out=q)
    np.add(p, q, out=log_m)
    np.log(log_m, out=log_m)
    _clamp_between(log_m, lp, lq, difference)
    np.subtract(lp, log_m, out=difference)
    values = _row_dot(p, difference)
    np.subtract(lq, log_m, out=difference)
    return values + _row_dot(q, difference)


def _kl_log_terms(
    lp: np.ndarray, lq: np.ndarray, minus_d: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """``d + expm1(-d)`` with ``d = lp - lq`` into ``out`` (``minus_d`` receives ``-d``).

    ``p (d + expm1(-d)) = p d - p + q``: each KL term in the Bregman form, >= 0
    and exactly 0 where ``lp = lq``, accurate to ``~eps / |d|`` relatively where
    ``p ≈ q`` (the textbook ``⟨p, d⟩`` cancels to ``eps`` absolutely there, and
    can come out negative). NumPy's ``expm1`` is vectorised: in float32 it
    costs about as much as ``exp``. A ``-inf`` in ``lp`` makes the term NaN
    (and one in ``lq`` +inf): :func:`_zero_mass_values` recomputes those rows.
    """
    np.subtract(lq, lp, out=minus_d)
    np.expm1(minus_d, out=out)
    return np.subtract(out, minus_d, out=out)


def _clamp_between(x: np.ndarray, a: np.ndarray, b: np.ndarray, work: np.ndarray) -> np.ndarray:
    """``x`` clamped (in place) to ``[min(a, b), max(a, b)]``; NaN stays NaN."""
    np.minimum(a, b, out=work)
    np.maximum(x, work, out=x)
    np.maximum(a, b, out=work)
    return np.minimum(x, work, out=x)


def _zeroed_where_no_mass(log_term: np.ndarray, log_weight: np.ndarray) -> np.ndarray:
    """``log_term`` with 0 where ``log_weight = -inf`` (in place): its weight is an exact 0."""
    np.copyto(log_term, 0.0, where=log_weight == -np.inf)
    return log_term


def _zero_mass_values(
    measure: str, lp: np.ndarray, lq: np.ndarray | None, weights: Sequence[np.ndarray]
) -> np.ndarray:
    """The measure of rows with ``-inf`` entries, for inputs without NaN or +inf.

    ``-inf - (-inf)`` and ``0 * (-inf)`` make the fast formulas NaN where the
    reference has an exact 0. Where a weight's logarithm is ``-inf`` the weight
    is 0 and so is the reference term, whatever the other logarithms: the
    logarithm it multiplies is set to 0 there, while ``log q = -inf`` under
    ``log p > -inf`` still gives ``+inf``. ``weights`` are ``(p,)``, or for
    Jensen–Shannon ``(βp, (1 - β)q, log m)``. The arguments are copies of the
    rows, and are overwritten. Rows that stay non-finite go to the reference.
    """
    if measure == "entropy":
        return -_row_dot(weights[0], _zeroed_where_no_mass(lp.copy(), lp))
    if measure == "cross_entropy":
        return -_row_dot(weights[0], _zeroed_where_no_mass(lq, lp))
    if measure == "kl":
        return _kl_zero_mass_values(lp, lq, weights[0])
    p, q, log_m = weights
    values = _row_dot(p, _zeroed_where_no_mass(lp - log_m, lp))
    return values + _row_dot(q, _zeroed_where_no_mass(lq - log_m, lq))


def _kl_zero_mass_values(lp: np.ndarray, lq: np.ndarray, p: np.ndarray) -> np.ndarray:
    """KL (Bregman form) of rows with ``-inf`` entries, for ``p`` = ``exp(lp)`` times a row factor.

    Where ``lp = -inf`` the term is ``q``: ``d`` is set to 0 there (term 0) and
    ``Σ q`` over those entries is added. The result is in units of ``p``'s row
    factor, except that added sum; :func:`_fixed_rows` passes the factor in ``p``.
    """
    none = lp == -np.inf
    minus_d = lq - lp
    minus_d[none] = 0.0
    terms = np.expm1(minus_d)
    np.subtract(terms, minus_d, out=terms)
    missing = np.exp(np.where(none, lq, -np.inf))
    return _row_dot(p, terms) + np.sum(missing, axis=-1, dtype=np.float64)


def _fixed_rows(
    values: np.ndarray,
    plan: _Plan,
    logs: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    factor: np.ndarray | None,
    clean: bool,
) -> np.ndarray:
    """``values`` (float64) with the rows that are not finite recomputed.

    First, when the inputs hold no NaN or +inf (``clean``), by
    :func:`_zero_mass_values` (``-inf`` entries: masked tokens, zero
    probabilities); then, for the rows still not finite, by the reference terms.
    ``weights`` as there; ``factor`` (per row, if given) scales the values.
    """
    suspect = ~np.isfinite(values)
    if clean and bool(suspect.any()):
        values = values.astype(np.float64)
        rows = np.flatnonzero(suspect)
        lq = logs[1][rows] if len(logs) > 1 else None
        picked = [w[rows] for w in weights]
        if factor is not None:  # weights[0] is p up to the row factor (not Jensen–Shannon)
            picked[0] = picked[0] * factor[rows, None]
        values[rows] = _zero_mass_values(plan.measure, logs[0][rows], lq, picked)
        suspect = ~np.isfinite(values)
    terms = _reference_terms(plan.measure, plan.form, plan.beta)
    return _with_exact_rows(values, suspect, terms, logs)


def _log_probs_block(arrays: Sequence[np.ndarray], plan: _Plan, whole_rows: bool) -> _Partial:
    """A block of log-probabilities: values, and the row sums of ``exp`` when validating.

    ``exp(log q)`` is only computed for the check of ``log q`` and for the
    Jensen–Shannon mixture. A NaN or +inf entry makes its row sum non-finite.
    """
    logs = list(arrays)
    rows, cols = logs[0].shape
    p, q, *work = _scratch(4, rows, cols, logs[0].dtype)
    _exp(logs[0], out=p)
    if plan.measure == "kl":
        return _kl_log_probs_block(logs, p, work, plan, whole_rows)
    exps = [p]
    if len(logs) > 1 and (plan.validate or plan.measure == "js"):
        _exp(logs[1], out=q)
        exps.append(q)
    sums = tuple(_row_sum(e) for e in exps) if plan.validate else ()
    if whole_rows and not _sums_ok(plan, sums):
        return _Partial(np.zeros(rows), sums)  # the generic path will raise
    lq = logs[1] if len(logs) > 1 else None
    q_exps = exps[1] if len(exps) > 1 else None
    values = _log_space_values(plan.measure, logs[0], lq, p, q_exps, work, plan.beta)
    weights = [p, q, work[1]] if plan.measure == "js" else [p]
    # Validated inputs hold no NaN or +inf: their row sums would not be finite.
    return _Partial(_fixed_rows(values, plan, logs, weights, None, plan.validate), sums)


def _kl_log_probs_block(
    logs: Sequence[np.ndarray],
    p: np.ndarray,
    work: Sequence[np.ndarray],
    plan: _Plan,
    whole_rows: bool,
) -> _Partial:
    """KL of a block of log-probabilities, with ``p = exp(log p)`` in ``p``.

    The textbook ``⟨p, log p - log q⟩`` plus ``Σq - Σp``: the reference's
    Bregman sum ``Σ p log(p/q) - p + q`` (the same number for normalised rows;
    unnormalised ones, allowed without validation, get the reference's value).
    The row sums are also what the check needs. Rows whose divergence comes
    out small (near-equal inputs, where the textbook terms cancel) are
    recomputed by :func:`compute` with the reference's per-term form.
    """
    lp, lq = logs
    difference, q = work
    values = _row_dot(p, np.subtract(lp, lq, out=difference))
    sums = (_row_sum(p), _row_sum(_exp(lq, out=q)))
    if plan.validate and whole_rows and not _sums_ok(plan, sums):
        return _Partial(np.zeros(lp.shape[0]), sums)  # the generic path will raise
    values = values + _row_sum(np.subtract(q, p, out=difference))  # Σ(q - p) term by term
    if not plan.validate:
        sums = ()
    # Validated inputs hold no NaN or +inf: their row sums would not be finite.
    return _Partial(_fixed_rows(values, plan, logs, [p], None, plan.validate), sums)


# --------------------------------------------------------------------------- logits


class _RowStats(NamedTuple):
    """The log-softmax constants of rows: their maxima and log-normalisers."""

    maximum: np.ndarray
    log_total: np.ndarray


def _log_softmax_block(
    z: np.ndarray,
    scale: float,
    log_p: np.ndarray,
    exps: np.ndarray,
    want_exps: bool,
    stats: _RowStats | None,
) -> np.ndarray | None:
    """Writes ``log_softmax(z * scale)`` of rows into ``log_p``, ``p`` unnormalised into ``exps``.

    ``log_p = (z - max) * scale - log Σ exp((z - max) * scale)``: the maximum is
    subtracted first, so the temperature cannot overflow and the log-normaliser
    never absorbs the digits of huge logits. ``exps`` receives
    ``exp((z - max) * scale)`` (always without ``stats``: its row sum is the
    normaliser). With ``stats`` (rows wider than a block) the constants come
    from the whole rows and ``exps`` receives ``exp(log_p)`` if ``want_exps``.

    Returns:
        The factor of each row that turns ``exps`` into ``p``, or None when a row
        maximum is not finite (NaN, +inf, or no mass): the generic path must
        handle those inputs.
    """
    if stats is None:
        maximum = np.maximum.reduce(z, axis=1)
        if not bool(np.all(np.isfinite(maximum))):
            return None
    else:
        maximum = stats.maximum
    np.subtract(z, maximum[:, None], out=log_p)
    if scale != 1.0:
        np.multiply(log_p, scale, out=log_p)
    if stats is not None:
        np.subtract(log_p, stats.log_total[:, None], out=log_p)
        if want_exps:
            _exp(log_p, out=exps)
        return np.ones(z.shape[0], dtype=z.dtype)
    _exp(log_p, out=exps)
    total = exps @ _ones(z.shape[1], z.dtype)
    np.subtract(log_p, np.log(total)[:, None], out=log_p)
    return 1.0 / total


def _logits_block(
    arrays: Sequence[np.ndarray], plan: _Plan, stats: Sequence[_RowStats] | None
) -> _Partial:
    """A block of logits: each input's log-softmax in scratch, then the log-space kernel.

    ``p`` enters as ``exp(z - max) / Σ``: the division is applied to each row's
    value rather than to every entry, except for the Jensen–Shannon mixture.
    """
    rows, cols = arrays[0].shape
    count = len(arrays)
    buffers = _scratch(2 * count + 2, rows, cols, arrays[0].dtype)
    logs, exps, work = buffers[:count], buffers[count : 2 * count], buffers[2 * count :]
    factors = []
    for i, z in enumerate(arrays):
        want_exps = i == 0 or plan.measure == "js"
        row_stats = None if stats is None else stats[i]
        factor = _log_softmax_block(z, plan.scale, logs[i], exps[i], want_exps, row_stats)
        if factor is None:
            return _Partial(np.zeros(rows), odd=True)
        factors.append(factor)
    lq = logs[1] if count > 1 else None
    if plan.measure == "js":
        for e, factor in zip(exps, factors, strict=True):
            np.multiply(e, factor[:, None], out=e)
        values = _log_space_values("js", logs[0], lq, exps[0], exps[1], work, plan.beta)
        weights, row_factor = [exps[0], exps[1], work[1]], None
    else:
        values = _log_space_values(plan.measure, logs[0], lq, exps[0], None, work, plan.beta)
        weights, row_factor = [exps[0]], factors[0]
        values = values * row_factor
    # Finite row maxima: the log-softmax holds no NaN or +inf.
    return _Partial(_fixed_rows(values, plan, logs, weights, row_factor, clean=True))


def _piece_stats(z: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Row maxima ``m`` and ``Σ exp((z - m) * scale)`` of a piece of wide rows, float64."""
    maximum = np.maximum.reduce(z, axis=1)
    shift = np.where(np.isfinite(maximum), maximum, 0).astype(z.dtype)
    (work,) = _scratch(1, *z.shape, z.dtype)
    np.subtract(z, shift[:, None], out=work)
    if scale != 1.0:
        np.multiply(work, scale, out=work)
    _exp(work, out=work)
    return maximum.astype(np.float64), _row_sum(work)


def _wide_row_stats(
    arrays: Sequence[np.ndarray], blocks: list, scale: float
) -> list[_RowStats] | None:
    """The log-softmax constants of rows wider than a block, from a first pass over them.

    ``max = max_j m_j`` and ``Σ = Σ_j s_j exp((m_j - max) * scale)`` over the
    pieces ``j`` of a row. None when a row maximum is not finite.
    """
    rows = arrays[0].shape[0]
    out = []
    for z in arrays:
        pieces = _map_blocks(lambda block, z=z: _piece_stats(z[block], scale), blocks)
        maxima = np.full(rows, -np.inf)
        for (row, _), (m, _) in zip(blocks, pieces, strict=True):
            maxima[row] = np.maximum(maxima[row], m)
        if not bool(np.all(np.isfinite(maxima))):
            return None
        totals = np.zeros(rows)
        for (row, _), (m, s) in zip(blocks, pieces, strict=True):
            totals[row] += s * np.exp((m - maxima[row]) * scale)
        out.append(_RowStats(maxima.astype(z.dtype), np.log(totals).astype(z.dtype)))
    return out


# --------------------------------------------------------------------------- probabilities


def _log_floored(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``log2`` (float32) or ``log`` (float64) of ``max(x, s)`` into ``out``.

    ``s`` is the smallest subnormal number: the logarithm is finite where
    ``x = 0`` and unchanged elsewhere. NumPy's float32 ``log2`` is faster than
    its ``log`` (0.30 against 0.43 ns per entry here) and as exact (2 ulp);
    :func:`_log_unit` converts.
    """
    np.fmax(x, _floor(x.shape, x.dtype), out=out)
    if x.dtype == np.float32:
        return np.log2(out, out=out)
    return np.log(out, out=out)


def _log_unit(dtype: np.dtype) -> float:
    """The natural logarithm of the base :func:`_log_floored` uses."""
    return math.log(2.0) if dtype == np.float32 else 1.0


def _prob_values(
    measure: str, p: np.ndarray, q: np.ndarray | None, work: Sequence[np.ndarray], beta: float
) -> np.ndarray:
    """The fast measure of each row of probabilities (see the module docstring)."""
    log_term = work[0]
    unit = _log_unit(p.dtype)
    if measure == "entropy":
        return -unit * _row_dot(p, _log_floored(p, log_term))
    if measure == "cross_entropy":
        return -unit * _row_dot(p, _log_floored(q, log_term))
    if measure in ("kl", "generalized_kl"):
        linear = _row_sum(np.subtract(q, p, out=log_term))
        np.divide(p, q, out=log_term)
        return unit * _row_dot(p, _log_floored(log_term, log_term)) + linear
    mixture = work[1]
    np.multiply(p, beta, out=mixture)
    np.multiply(q, 1.0 - beta, out=log_term)
    np.add(mixture, log_term, out=mixture)
    _clamp_between(mixture, p, q, log_term)
    np.divide(p, mixture, out=log_term)
    values = beta * _row_dot(p, _log_floored(log_term, log_term))
    np.divide(q, mixture, out=log_term)
    return unit * (values + (1.0 - beta) * _row_dot(q, _log_floored(log_term, log_term)))


def _probs_block(arrays: Sequence[np.ndarray], plan: _Plan, whole_rows: bool) -> _Partial:
    """A block of probabilities: values, row minima, and row sums when validating or needed.

    A row with a negative or NaN entry, or (cross-entropy) a zero in ``q``, is
    recomputed by the reference terms; so is a row whose fast value is not finite.
    """
    rows, cols = arrays[0].shape
    minima = [np.minimum.reduce(a, axis=1) for a in arrays]
    nonnegative = all(bool(np.all(m >= 0)) for m in minima)
    need_sums = plan.validate or plan.measure == "generalized_kl"
    sums = tuple(_row_sum(a) for a in arrays) if need_sums else ()
    if plan.validate and not (nonnegative and (not whole_rows or _sums_ok(plan, sums))):
        return _Partial(np.zeros(rows), sums, nonnegative)  # the generic path will raise
    work = _scratch(2, rows, cols, arrays[0].dtype)
    q = arrays[1] if len(arrays) > 1 else None
    values = _prob_values(plan.measure, arrays[0], q, work, plan.beta)
    suspect = ~np.isfinite(values)
    for m in minima:
        suspect |= ~(m >= 0)
    if plan.measure == "cross_entropy":
        suspect |= minima[1] == 0
    terms = _reference_terms(plan.measure, plan.form, plan.beta)
    return _Partial(_with_exact_rows(values, suspect, terms, arrays), sums, nonnegative)


# --------------------------------------------------------------------------- checks and result


def _sums_ok(plan: _Plan, sums: Sequence[np.ndarray]) -> bool:
    """Whether row sums pass: finite (generalized KL), else within the guarded tolerance of 1."""
    if not plan.validate:
        return True
    if plan.measure == "generalized_kl":
        return all(bool(np.all(np.isfinite(s))) for s in sums)
    return all(bool(np.all(np.abs(s - 1.0) <= plan.tolerance)) for s in sums)


def _row_totals(rows: int, blocks: list, parts: Sequence[np.ndarray]) -> np.ndarray:
    """Adds per-row pieces over blocks, in float64 (column pieces of wide rows)."""
    totals = np.zeros(rows, dtype=np.float64)
    for (row_slice, _), part in zip(blocks, parts, strict=True):
        totals[row_slice] += part
    return totals


def _passes_checks(plan: _Plan, rows: int, blocks: list, partials: list[_Partial]) -> bool:
    """The verdict of the fast checks on whole rows (True: the reference checks would pass)."""
    if any(part.odd for part in partials):
        return False
    if not plan.validate or plan.form == "logits":
        return True
    if not all(part.nonnegative for part in partials):
        return False
    count = len(partials[0].sums)
    totals = [_row_totals(rows, blocks, [part.sums[i] for part in partials]) for i in range(count)]
    return _sums_ok(plan, totals)


def _block_task(
    views: Sequence[np.ndarray], plan: _Plan, stats: Sequence[_RowStats] | None
) -> Callable[[tuple[slice, slice]], _Partial]:
    """The kernel of one block ``(row slice, column slice)`` of the 2-D ``views``."""
    cols = views[0].shape[1]

    def task(block: tuple[slice, slice]) -> _Partial:
        arrays = [v[block] for v in views]
        whole_rows = arrays[0].shape[1] == cols
        with np.errstate(all="ignore"):
            if plan.form == "probs":
                return _probs_block(arrays, plan, whole_rows)
            if plan.form == "log_probs":
                return _log_probs_block(arrays, plan, whole_rows)
            rows = block[0]
            block_stats = None
            if stats is not None:
                block_stats = [_RowStats(s.maximum[rows], s.log_total[rows]) for s in stats]
            return _logits_block(arrays, plan, block_stats)

    return task


def near_equal_below(dtype: np.dtype, form: str) -> float:
    r"""KL rows below this are recomputed with the reference's per-term (Bregman) form.

    As :func:`kldiv.discrete._fast_torch.near_equal_below`: the fast sums round
    to an absolute :math:`\sim\epsilon`, a relative :math:`\epsilon / D`, so they
    stand above :math:`10^{-6}` in float64 and :math:`10^{-3}` in float32
    (:math:`10^{-4}` for logits).
    """
    if np.dtype(dtype) == np.float64:
        return 1e-6
    return 1e-4 if form == "logits" else 1e-3


def _near_equal_rows_refined(
    nats: np.ndarray, views: Sequence[np.ndarray], form: str
) -> np.ndarray:
    """``nats`` with the rows below :func:`near_equal_below` (negative ones too) recomputed.

    The reference's Bregman terms ``p g(log p - log q)`` are each >= 0 and
    exact near equality: identical rows give exactly 0.
    """
    small = nats < near_equal_below(views[0].dtype, form)
    if not bool(small.any()):
        return nats
    terms = _reference_terms("kl", form, 0.5)
    return _with_exact_rows(nats, small, terms, views)


def compute(
    measure: str,
    form: str,
    arrays: Sequence[object],
    *,
    axis: object,
    base: object,
    validate: bool | None,
    temperature: object = 1.0,
    beta: object = 0.5,
) -> Any:
    """The measure by the chunked kernels, or None where the generic path must run.

    Args:
        measure: ``"kl"``, ``"js"``, ``"entropy"``, ``"cross_entropy"`` or ``"generalized_kl"``.
        form: ``"probs"``, ``"log_probs"`` or ``"logits"``.
        arrays: the inputs as the user passed them, in the public argument order.
        axis: the public ``axis`` (only the last axis is served).
        base: the public ``base``.
        validate: the public ``validate`` (None: the global default).
        temperature: the public ``temperature`` of the logits form.
        beta: the public ``beta`` of the Jensen–Shannon divergence.

    Returns:
        The value of each row, shape ``arrays[0].shape[:-1]`` and the inputs'
        dtype (a NumPy scalar for one row), in the unit of ``base``; None for
        inputs these kernels do not serve, for invalid options, and (when
        validating) for inputs the reference checks might reject, so that the
        generic path decides and raises its own error.
    """
    plan = _plan(measure, form, arrays, axis, base, validate, temperature, beta)
    if plan is None:
        return None
    shape, dtype = arrays[0].shape, arrays[0].dtype  # type: ignore[attr-defined]
    cols = shape[-1]
    rows = math.prod(shape) // cols
    views = [a.reshape(rows, cols) for a in arrays]  # type: ignore[attr-defined]
    blocks = _blocks(rows, cols)
    stats = None
    if form == "logits" and cols > BLOCK_ELEMENTS:
        with np.errstate(all="ignore"):
            stats = _wide_row_stats(views, blocks, plan.scale)
        if stats is None:
            return None
    partials = _map_blocks(_block_task(views, plan, stats), blocks)
    if not _passes_checks(plan, rows, blocks, partials):
        return None
    nats = _row_totals(rows, blocks, [part.values for part in partials])
    if measure == "kl" and form != "logits":
        nats = _near_equal_rows_refined(nats, views, form)
    if measure in ("kl", "js", "generalized_kl"):  # >= 0: rounding of near-equal rows (NaN stays)
        nats = np.maximum(nats, 0.0)
    nats = nats.astype(dtype)
    result = nats.reshape(shape[:-1])
    if plan.log_base is not None:
        result = result / plan.log_base
    return result[()]
