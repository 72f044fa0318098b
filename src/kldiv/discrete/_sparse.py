"""A distribution known only on its top k entries, compared through k + 1 buckets.

Inference servers (vLLM, SGLang) return a teacher's top-k token log-probs, not
the whole vocabulary. Truncating both distributions to those k tokens is not a
KL divergence (it goes negative, and the tail goes unpenalised; verl#7856).
Here both distributions are *coarsened* to the k given tokens plus one tail
bucket holding the rest of the mass; the divergence between the coarsened
distributions is a true divergence: non-negative, zero when they agree, and by
the data-processing inequality never above the full-vocabulary value.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from kldiv._array_api import is_traced, size, to_numpy
from kldiv._special import logsumexp_or_minus_inf, with_minus_inf_at
from kldiv.errors import KLDivError

__all__ = ["check_top_k", "top_k_buckets"]

Array = Any


def log1mexp(a: Array, *, xp: ModuleType) -> Array:
    r""":math:`\log(1 - e^{a})` for :math:`a \le 0`, accurate near 0 and for very negative a.

    ``-inf`` (no mass left) where :math:`a \ge 0`, with a zero gradient there.
    """
    full = a >= 0
    safe = xp.where(full, -1.0, a)
    near_zero = safe > -math.log(2.0)
    value = xp.where(
        near_zero,
        xp.log(-xp.expm1(xp.where(near_zero, safe, -1.0))),
        xp.log1p(-xp.exp(xp.where(near_zero, -1.0, safe))),
    )
    return xp.where(full, -xp.inf, value)


def check_top_k(
    indices: Array, log_probs: Array, vocabulary: int, tolerance: float, *, xp: ModuleType
) -> None:
    """Shapes, integer indices in range, and top-k log-probs with total mass <= 1."""
    if tuple(indices.shape) != tuple(log_probs.shape):
        raise KLDivError(
            f"`indices` {tuple(indices.shape)} and `log_probs` {tuple(log_probs.shape)} of the "
            "top-k teacher must have the same shape"
        )
    if not xp.isdtype(indices.dtype, "integral"):
        raise KLDivError(f"`indices` of the top-k teacher must be integers; got {indices.dtype}")
    if indices.shape[-1] > vocabulary:
        raise KLDivError(
            f"the top-k teacher has k = {indices.shape[-1]} entries for a vocabulary of "
            f"{vocabulary}"
        )
    if is_traced(indices) or is_traced(log_probs) or not size(indices):
        return
    low, high = int(xp.min(indices)), int(xp.max(indices))
    if low < 0 or high >= vocabulary:
        raise KLDivError(
            f"`indices` of the top-k teacher must be in [0, {vocabulary}); got values in "
            f"[{low}, {high}]"
        )
    if not bool(xp.max(log_probs) <= tolerance):
        raise KLDivError(
            "`log_probs` of the top-k teacher must be log-probabilities (<= 0, not NaN); "
            f"got a maximum of {float(to_numpy(xp.max(log_probs)))}"
        )
    mass = to_numpy(xp.max(xp.sum(xp.exp(log_probs), axis=-1)))
    if float(mass) > 1.0 + tolerance:
        raise KLDivError(
            f"`log_probs` of the top-k teacher must hold at most mass 1 per token; "
            f"a token's top-k probabilities sum to {float(mass):.9g}"
        )


def top_k_buckets(
    log_q: Array, indices: Array, top_log_p: Array, *, xp: ModuleType
) -> tuple[Array, Array]:
    r"""Coarsens P (known on ``indices``) and Q (known everywhere) to k + 1 buckets.

    .. math::

        \tilde p = (p_{i_1}, \dots, p_{i_k}, 1 - \textstyle\sum_j p_{i_j}), \qquad
        \tilde q = (q_{i_1}, \dots, q_{i_k}, \textstyle\sum_{v \notin I} q_v)

    Q's tail is a log-sum-exp over the entries outside the top k (not
    ``1 - Σ q_top``, which cancels catastrophically in float32 when the tail is
    small). Duplicate indices are not detected and would count a token twice.

    Args:
        log_q: normalised log-probabilities of Q, ``[..., V]``.
        indices: the top-k token ids of P, ``[..., k]``, integers in ``[0, V)``.
        top_log_p: P's log-probabilities of those tokens, ``[..., k]``.
        xp: the array namespace.

    Returns:
        ``(log_p_buckets, log_q_buckets)``, each ``[..., k + 1]``, the tail last.
    """
    top_log_q = xp.take_along_axis(log_q, indices, axis=-1)
    if indices.shape[-1] == log_q.shape[-1]:
        tail_q = xp.full(top_log_q.shape[:-1], -xp.inf, dtype=log_q.dtype)
    else:
        tail_q = logsumexp_or_minus_inf(with_minus_inf_at(log_q, indices, -1, xp=xp), -1, xp=xp)
    tail_p = log1mexp(logsumexp_or_minus_inf(top_log_p, -1, xp=xp), xp=xp)
    log_p_buckets = xp.concat([top_log_p, tail_p[..., None]], axis=-1)
    log_q_buckets = xp.concat([top_log_q, tail_q[..., None]], axis=-1)
    return log_p_buckets, log_q_buckets
