"""Elementwise terms of the discrete measures, with exact zeros in value and gradient.

Every function here takes validated arrays and ``*, xp`` and returns the
summands, before the sum over the event axis. Logarithms are taken of *safe*
values only (1 where the mass is zero), and the result is then selected with
``xp.where`` (the "double where"), so gradients stay finite wherever the value
is finite, on every backend, jitted or not. Invalid values (NaN, negative
probabilities, +inf log-probabilities) propagate as NaN rather than as a
plausible number when the eager checks are off or cannot run (``jax.jit``).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from kldiv._special import stop_gradient

Array = Any


def kl_terms_from_probs(p: Array, q: Array, *, xp: ModuleType) -> Array:
    r""":math:`p \log(p/q)` with :math:`0 \log(0/q) = 0` and :math:`p \log(p/0) = +\infty`.

    Where ``p = 0`` the product ``0 * (log 1 - log q)`` is already an exact 0, so
    only the support mismatch needs a ``where``. Two logarithms rather than one
    of ``p / q``: the ratio overflows when ``q`` is subnormal.
    """
    p_zero = p == 0
    q_zero = q == 0
    log_ratio = xp.log(xp.where(p_zero, 1.0, p)) - xp.log(xp.where(q_zero, 1.0, q))
    return xp.where(q_zero & ~p_zero, xp.inf, p * log_ratio)


def kl_terms_from_log_probs(log_p: Array, log_q: Array, *, xp: ModuleType) -> Array:
    r""":math:`e^{\log p} (\log p - \log q)`, where ``-inf`` is zero mass.

    ``exp(-inf) = 0`` multiplies a difference of safe (finite) values, so the
    value is an exact 0 there and the gradient of ``exp`` is 0, not NaN.
    """
    p_none = log_p == -xp.inf
    q_none = log_q == -xp.inf
    difference = xp.where(p_none, 0.0, log_p) - xp.where(q_none, 0.0, log_q)
    return xp.where(q_none & ~p_none, xp.inf, xp.exp(log_p) * difference)


def entropy_terms_from_probs(p: Array, *, xp: ModuleType) -> Array:
    r""":math:`-p \log p` with :math:`0 \log 0 = 0`."""
    return -p * xp.log(xp.where(p == 0, 1.0, p))


def entropy_terms_from_log_probs(log_p: Array, *, xp: ModuleType) -> Array:
    r""":math:`-e^{\log p} \log p`, where ``-inf`` is zero mass."""
    return -xp.exp(log_p) * xp.where(log_p == -xp.inf, 0.0, log_p)


def cross_entropy_terms_from_probs(p: Array, q: Array, *, xp: ModuleType) -> Array:
    r""":math:`-p \log q` with :math:`0 \log q = 0` and :math:`-p \log 0 = +\infty`."""
    q_zero = q == 0
    terms = -p * xp.log(xp.where(q_zero, 1.0, q))
    return xp.where(q_zero & (p != 0), xp.inf, terms)


def cross_entropy_terms_from_log_probs(log_p: Array, log_q: Array, *, xp: ModuleType) -> Array:
    r""":math:`-e^{\log p} \log q`, where ``-inf`` is zero mass."""
    q_none = log_q == -xp.inf
    terms = -xp.exp(log_p) * xp.where(q_none, 0.0, log_q)
    return xp.where(q_none & (log_p != -xp.inf), xp.inf, terms)


def generalized_kl_terms(p: Array, q: Array, *, xp: ModuleType) -> Array:
    r""":math:`p \log(p/q) - p + q` (``scipy.special.kl_div``): ``q`` where ``p = 0``.

    The same terms as :func:`kl_bregman_terms_from_probs`: each is >= 0, and
    accurate to a few ulp even where ``p`` and ``q`` nearly agree.
    """
    return _bregman_terms_from_probs(p, q, xp=xp)


def log_of_probs(p: Array, *, xp: ModuleType) -> Array:
    """``log p`` with an exact ``-inf`` (and a zero gradient) where ``p = 0``."""
    p_zero = p == 0
    return xp.where(p_zero, -xp.inf, xp.log(xp.where(p_zero, 1.0, p)))


# --- Divergence terms that are each >= 0 and accurate where p and q nearly agree ---------------
#
# With d = log(p/q), the Bregman form of KL's terms is p g(d) with
# g(d) = d - 1 + e^{-d} >= 0: summed over a normalised row it is D_KL, and each
# term is >= 0 (the row sum too), 0 exactly where p = q. Its value is of order
# p d^2 / 2 where d is small, so it is computed there from a series in d, and
# d itself without the rounding of a ratio: exact differences of log-probs,
# -log1p((q - p) / p) for probabilities (q - p is exact within a factor 2).

SERIES_LIMIT = 0.1
"""``|d|`` below which ``g(d)`` is summed from its Taylor series (elsewhere
``p d + q - p``, whose terms then do not cancel beyond a factor ~200)."""

_SERIES = tuple((-1.0) ** k / math.factorial(k + 2) for k in range(11))
r"""Coefficients of :math:`g(d) / d^2 = \sum_k (-d)^k / (k + 2)!`; the first omitted
term is below ``2**-53`` of the sum for :math:`|d| < 0.1`."""


def bregman_log(d: Array, *, xp: ModuleType) -> Array:
    r""":math:`g(d) = d - 1 + e^{-d} = \sum_{k \ge 2} (-d)^k / k!` for ``|d| < SERIES_LIMIT``.

    Relative error a few ulp on that interval (Horner on :math:`d^2 \sum_k
    (-d)^k/(k+2)!`), where the direct formula loses all digits as ``d → 0``.
    Exactly 0 at ``d = 0``. Call it with values inside the interval only
    (select the others away with a double ``where``).

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(bregman_log(np.array(1e-10), xp=xp))  # d^2 / 2 - d^3 / 6
        5e-21
    """
    total = _SERIES[-1]
    for coefficient in _SERIES[-2::-1]:
        total = total * d + coefficient
    return d * d * total


def log_ratio_of_probs(p: Array, q: Array, *, xp: ModuleType) -> Array:
    r""":math:`\log(p/q)` for ``p, q > 0``, accurate to a few ulp also where ``p ≈ q``.

    Within a factor 1.5 it is :math:`-\operatorname{log1p}((q - p)/p)`: the
    difference is exact there, so no ratio is rounded before the logarithm
    (``log(p / q)`` loses ``eps / |log(p/q)|`` of relative accuracy, the
    difference of two logarithms ``eps |log p| / |log(p/q)|``). Elsewhere
    :math:`\log p - \log q`, which cannot overflow.
    """
    near = xp.abs(q - p) <= 0.5 * p
    u = xp.where(near, (q - p) / xp.where(near, p, 1.0), 0.0)
    return xp.where(near, -xp.log1p(u), xp.log(p) - xp.log(q))


def _bregman_terms(p: Array, q: Array, d: Array, *, xp: ModuleType) -> Array:
    r""":math:`p\,g(d) = p d - p + q` for finite ``d = log(p/q)``, each >= 0 (NaN propagates).

    The series where :math:`|d| <` ``SERIES_LIMIT``, else :math:`p d + (q - p)`
    (clamped at 0 against rounding). Where ``p = 0`` the callers select
    ``p d + q - p`` (``= q``, with the textbook gradient ``-log q`` in ``p``, ``d``
    being ``-log q`` there).
    """
    small = xp.abs(d) < SERIES_LIMIT
    series = p * bregman_log(xp.where(small, d, 0.0), xp=xp)
    direct = p * d + (q - p)
    return xp.where(small, series, xp.where(direct < 0, 0.0, direct))


def _with_gradient_of_log_ratio(terms: Array, p: Array, q: Array, *, xp: ModuleType) -> Array:
    r"""``terms`` in value, with the gradient of :math:`p \log(p/q)` (``terms - (q - p)``).

    :math:`(q - p) - \operatorname{sg}(q - p)` is an exact 0 in value, so the
    non-negative terms keep every digit, while the gradient stays that of the
    textbook terms: :math:`-p/q` in ``q``, :math:`p` in ``log q`` (the two
    differ only normal to the simplex; through a softmax they are equal).
    """
    linear = q - p
    return terms - (linear - stop_gradient(linear, xp=xp))


def kl_bregman_terms_from_probs(p: Array, q: Array, *, xp: ModuleType) -> Array:
    r""":math:`p \log(p/q) - p + q`: ``q`` where ``p = 0``, ``+inf`` where ``q = 0 < p``.

    Summed over a row of probabilities it is :math:`D_{KL}(P \| Q)` (the
    :math:`-p + q` cancel), but each term is >= 0, exactly 0 where ``p = q``,
    and relatively accurate where ``p ≈ q`` (see :func:`log_ratio_of_probs`,
    :func:`bregman_log`), so the row sum is too: nothing cancels. Unlike
    :func:`kl_terms_from_probs`, a term is not :math:`p \log(p/q)`: do not sum
    these over part of a row.
    """
    terms = _bregman_terms_from_probs(p, q, xp=xp)
    return _with_gradient_of_log_ratio(terms, p, q, xp=xp)


def _bregman_terms_from_probs(p: Array, q: Array, *, xp: ModuleType) -> Array:
    r""":math:`p \log(p/q) - p + q` with its own gradient (:math:`\log(p/q)`, :math:`1 - p/q`)."""
    p_zero = p == 0
    q_zero = q == 0
    d = log_ratio_of_probs(xp.where(p_zero, 1.0, p), xp.where(q_zero, 1.0, q), xp=xp)
    terms = xp.where(p_zero, p * d + (q - p), _bregman_terms(p, q, d, xp=xp))
    return xp.where(q_zero & ~p_zero, xp.inf, terms)


def kl_bregman_terms_from_log_probs(log_p: Array, log_q: Array, *, xp: ModuleType) -> Array:
    r""":math:`p (\log p - \log q) - p + q` from log-probabilities, where ``-inf`` is zero mass.

    As :func:`kl_bregman_terms_from_probs`, with ``d = log p - log q`` (exact
    where the two are within a factor 2 of each other).
    """
    p_none = log_p == -xp.inf
    q_none = log_q == -xp.inf
    p, q = xp.exp(log_p), xp.exp(log_q)
    d = xp.where(p_none, 0.0, log_p) - xp.where(q_none, 0.0, log_q)
    terms = xp.where(p_none, p * d + (q - p), _bregman_terms(p, q, d, xp=xp))
    return xp.where(q_none & ~p_none, xp.inf, _with_gradient_of_log_ratio(terms, p, q, xp=xp))


def _mixture_log_ratios(delta: Array, beta: float, *, xp: ModuleType) -> tuple[Array, Array]:
    r""":math:`\log(p/m)` and :math:`\log(q/m)` from a finite :math:`\delta = \log(p/q)`.

    With :math:`m = \beta p + (1-\beta) q`, relative to the larger of ``p``
    and ``q``: :math:`\log(m/\max(p, q)) =
    \operatorname{log1p}(w\,\operatorname{expm1}(-|\delta|))` with ``w`` the
    weight of the smaller where :math:`|\delta| < 1` (both exactly 0 at
    :math:`\delta = 0`), else :math:`\log(1 - w + w e^{-|\delta|})` (no
    cancellation, also for a tiny weight of the larger). Nothing overflows.
    """
    p_high = delta >= 0
    spread = -xp.abs(delta)
    near = spread > -1.0
    below = xp.expm1(xp.where(near, spread, 0.0))
    close = xp.log1p(xp.where(p_high, (1.0 - beta) * below, beta * below))
    ratio = xp.exp(spread)
    far = xp.log(xp.where(p_high, beta + (1.0 - beta) * ratio, (1.0 - beta) + beta * ratio))
    high = -xp.where(near, close, far)
    low = high + spread
    return xp.where(p_high, high, low), xp.where(p_high, low, high)


def _js_terms(
    p: Array, q: Array, delta: Array, p_zero: Array, q_zero: Array, *, beta: float, xp: ModuleType
) -> Array:
    r"""Jensen–Shannon terms from the masses, :math:`\delta = \log(p/q)` and where each is 0.

    :math:`\beta p \log(p/m) + (1-\beta) q \log(q/m)` is the gap of Jensen's
    inequality for :math:`x \log x`, so >= 0: where :math:`|\delta|` is small
    it is summed as :math:`\beta p\,g(\log(p/m)) + (1-\beta) q\,g(\log(q/m))`
    (equal, since the :math:`-p + m` parts cancel; each >= 0 and exactly 0 at
    ``p = q``), elsewhere directly, clamped at 0. Where only ``p = 0`` the term
    is :math:`-(1-\beta) q \log(1-\beta)`, where only ``q = 0``
    :math:`-\beta p \log \beta`.
    """
    either = p_zero | q_zero
    delta = xp.where(either, 0.0, delta)
    log_p_m, log_q_m = _mixture_log_ratios(delta, beta, xp=xp)
    small = xp.abs(delta) < SERIES_LIMIT
    safe_p_m, safe_q_m = xp.where(small, log_p_m, 0.0), xp.where(small, log_q_m, 0.0)
    series = beta * p * bregman_log(safe_p_m, xp=xp) + (1.0 - beta) * q * bregman_log(
        safe_q_m, xp=xp
    )
    direct = beta * p * log_p_m + (1.0 - beta) * q * log_q_m
    terms = xp.where(small, series, xp.where(direct < 0, 0.0, direct))
    only_q = -(1.0 - beta) * math.log1p(-beta) * q
    only_p = -beta * math.log(beta) * p
    terms = xp.where(p_zero, only_q, xp.where(q_zero, only_p, terms))
    return xp.where(p_zero & q_zero, 0.0, terms)  # no gradient where neither has mass


def js_terms_from_probs(p: Array, q: Array, *, beta: float, xp: ModuleType) -> Array:
    r""":math:`\beta\, p \log(p/m) + (1-\beta)\, q \log(q/m)`, :math:`m = \beta p + (1-\beta) q`.

    Each term is >= 0 and exactly 0 where ``p = q``. The mixture is never
    formed: :math:`\log(p/m)` and :math:`\log(q/m)` come from
    :math:`\log(p/q)` (:func:`log_ratio_of_probs`), so a tiny ``beta * p``
    cannot underflow into an infinite divergence.
    """
    if beta in (0.0, 1.0):
        return 0.0 * (p + q)
    p_zero, q_zero = p == 0, q == 0
    delta = log_ratio_of_probs(xp.where(p_zero, 1.0, p), xp.where(q_zero, 1.0, q), xp=xp)
    return _js_terms(p, q, delta, p_zero, q_zero, beta=beta, xp=xp)


def js_terms_from_log_probs(log_p: Array, log_q: Array, *, beta: float, xp: ModuleType) -> Array:
    r"""The generalized Jensen–Shannon terms from log-probabilities (``-inf``: zero mass).

    As :func:`js_terms_from_probs`, with :math:`\delta = \log p - \log q`.
    """
    if beta in (0.0, 1.0):
        return 0.0 * (xp.exp(log_p) + xp.exp(log_q))
    p_none, q_none = log_p == -xp.inf, log_q == -xp.inf
    delta = xp.where(p_none, 0.0, log_p) - xp.where(q_none, 0.0, log_q)
    return _js_terms(xp.exp(log_p), xp.exp(log_q), delta, p_none, q_none, beta=beta, xp=xp)
