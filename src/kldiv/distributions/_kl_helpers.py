r"""Building blocks of the closed forms: cross-entropy composition and support checks.

Many cross-family divergences follow from

.. math::

    D_{KL}(P \| Q) = H(P, Q) - H(P), \qquad H(P, Q) = -\mathbb E_P[\log q(X)],

where :math:`\log q` is linear in a few statistics of :math:`X` (:math:`X`,
:math:`X^2`, :math:`\log X`, :math:`|X - m|`, ...). Each family Q implements
``_cross_entropy_from(p)`` using only the expectations P offers through its
hooks (``mean``, ``variance``, ``_expected_log``, ``_expected_log1m``,
``_expected_power``, ``_mgf``, ``_expected_abs_dev``), and each pair is then
registered explicitly and verified against numerical integration.
"""

from __future__ import annotations

from typing import Any

__all__ = ["infinite_kl", "kl_by_cross_entropy", "outside_support", "where_finite"]

Array = Any


def kl_by_cross_entropy(p: Any, q: Any) -> Array:
    """D(P ‖ Q) = H(P, Q) − H(P), with Q's cross-entropy from P's expectations.

    Where the cross-entropy is +inf (support mismatch, an infinite moment) the
    result is +inf with an exact zero gradient: P's entropy is taken only where
    the cross-entropy is finite (``xp.where`` on both sides, the "double where").
    """
    xp = p.xp
    cross = q._cross_entropy_from(p)
    infinite = ~xp.isfinite(cross)
    safe_cross = xp.where(infinite, xp.zeros_like(cross), cross)
    value = safe_cross - p.entropy()
    return where_finite(infinite, xp.where(infinite, xp.zeros_like(value), value), xp)


def outside_support(p: Any, lower: Array | float, upper: Array | float) -> Array:
    """Where P's support is not inside ``[lower, upper]`` (there D(P ‖ Q) is +inf)."""
    p_lower, p_upper = p.support_bounds()
    return (p_lower < lower) | (p_upper > upper)


def where_finite(infinite: Array, value: Array, xp: Any) -> Array:
    """``+inf`` where ``infinite``, else ``value``.

    ``value`` must be computed on safe inputs (finite where ``infinite``) so that
    the gradient of the finite entries is never NaN.
    """
    return xp.where(infinite, xp.full_like(value, float("inf")), value)


def infinite_kl(p: Any, q: Any) -> Array:
    """+inf for every batch element: P's support is never inside Q's.

    Registered for the support-mismatch pairs (the real line against a
    half-line or an interval, a continuous P against a discrete Q, ...). The
    gradient is zero.
    """
    import numpy as np

    from kldiv._array_api import device

    xp = p.xp
    shape = np.broadcast_shapes(p.batch_shape, q.batch_shape)
    infinite = xp.full(shape, float("inf"), dtype=p.dtype, device=device(p._like()))
    # + 0 * parameters: the result stays on the autodiff graph (zero gradient), so
    # that backward() through a loss holding it works as for any other pair.
    return infinite + 0.0 * (xp.sum(p._like()) + xp.sum(q._like()))
