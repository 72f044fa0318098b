"""The generalized KL divergence between unnormalised non-negative measures."""

from __future__ import annotations

from typing import Any

from kldiv._validation import check_nonnegative
from kldiv.discrete import _native
from kldiv.discrete._common import prepare, reduce_terms
from kldiv.discrete._terms import generalized_kl_terms

__all__ = ["generalized_kl"]

Array = Any


def generalized_kl(
    p: Array,
    q: Array,
    *,
    axis: int = -1,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Generalized KL divergence between non-negative measures (not normalised).

    .. math::

        D(p \| q) = \sum_i \left( p_i \log \frac{p_i}{q_i} - p_i + q_i \right)

    the Bregman divergence of :math:`x \log x - x`, elementwise as
    ``scipy.special.kl_div``: a term is :math:`q_i` where :math:`p_i = 0` and
    :math:`+\infty` where :math:`q_i = 0 < p_i`. It is non-negative, zero iff
    p = q, and equals :math:`D_{KL}` when both sum to 1. Used for non-negative
    matrix factorisation, Poisson rates and unnormalised attention maps.

    Args:
        p: non-negative measure, shape ``[..., n]``.
        q: non-negative measure; broadcasts against ``p`` except along ``axis``.
        axis: the event axis, summed over.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: check that entries are finite and >= 0; None uses the global default.

    Returns:
        The divergence of each pair of measures, shape of the broadcast batch.

    Raises:
        KLDivError: negative, NaN or infinite entries (when validating), shapes
            that do not broadcast, a bad ``axis`` or ``base``.

    Examples:
        >>> import kldiv
        >>> float(kldiv.generalized_kl([2.0, 0.0], [1.0, 3.0]))
        3.3862944
    """
    native = _native.native_result(
        "generalized_kl", "probs", (p, q), axis=axis, base=base, validate=validate
    )
    if native is not None:
        return native
    prepared = prepare((p, q), ("p", "q"), axis=axis, base=base, validate=validate)
    checked = [
        check_nonnegative(array, name, validate=prepared.validate, xp=prepared.xp)
        for array, name in zip(prepared.arrays, ("p", "q"), strict=True)
    ]
    return reduce_terms(generalized_kl_terms, prepared, *checked)
