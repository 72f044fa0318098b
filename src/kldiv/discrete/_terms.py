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
    r""":math:`p \log(p/q) - p + q` (``scipy.special.kl_div``): ``q`` where ``p = 0``."""
    return kl_terms_from_probs(p, q, xp=xp) - p + q


def log_of_probs(p: Array, *, xp: ModuleType) -> Array:
    """``log p`` with an exact ``-inf`` (and a zero gradient) where ``p = 0``."""
    p_zero = p == 0
    return xp.where(p_zero, -xp.inf, xp.log(xp.where(p_zero, 1.0, p)))


def js_terms_from_probs(p: Array, q: Array, *, beta: float, xp: ModuleType) -> Array:
    r""":math:`\beta\, p \log(p/m) + (1-\beta)\, q \log(q/m)`, :math:`m = \beta p + (1-\beta) q`.

    Computed in log space: the mixture :math:`\beta p` underflows for tiny
    ``beta * p``, which would make a finite divergence look infinite.
    """
    return js_terms_from_log_probs(log_of_probs(p, xp=xp), log_of_probs(q, xp=xp), beta=beta, xp=xp)


def js_terms_from_log_probs(log_p: Array, log_q: Array, *, beta: float, xp: ModuleType) -> Array:
    r"""The generalized Jensen–Shannon terms, with the mixture formed in log space."""
    if beta in (0.0, 1.0):
        return 0.0 * (
            kl_terms_from_log_probs(log_p, log_p, xp=xp)
            + kl_terms_from_log_probs(log_q, log_q, xp=xp)
        )
    neither = (log_p == -xp.inf) & (log_q == -xp.inf)
    log_m = xp.logaddexp(
        xp.where(neither, 0.0, log_p) + math.log(beta),
        xp.where(neither, 0.0, log_q) + math.log1p(-beta),
    )
    return beta * kl_terms_from_log_probs(log_p, log_m, xp=xp) + (
        1.0 - beta
    ) * kl_terms_from_log_probs(log_q, log_m, xp=xp)
