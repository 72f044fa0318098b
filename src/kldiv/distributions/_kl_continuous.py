"""Closed forms between continuous univariate families: same-family and cross-family pairs.

Same-family pairs have their own formulas, written to be exactly 0 for equal
parameters and accurate when the two are close. Cross-family pairs are
``H(P, Q) - H(P)`` (:func:`kldiv.distributions._kl_helpers.kl_by_cross_entropy`),
with +inf where P's support is not inside Q's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kldiv._special import digamma, gammaln
from kldiv.distributions._bounded import Uniform
from kldiv.distributions._kl_helpers import infinite_kl, kl_by_cross_entropy, where_finite
from kldiv.distributions._positive import Exponential, Gamma
from kldiv.distributions._real import Normal
from kldiv.distributions._registry import register_kl

Array = Any


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal) -> Array:
    r"""Normal–Normal, written to be exact at equal parameters.

    :math:`\tfrac12[\operatorname{expm1}(2r) - 2r + ((\mu_p - \mu_q)/\sigma_q)^2]`,
    :math:`r = \log(\sigma_p/\sigma_q)`.
    """
    xp = p.xp
    with np.errstate(over="ignore", divide="ignore"):  # σ_p ≫ σ_q or σ_q → 0: +inf is exact
        two_r = 2.0 * (xp.log(p.scale) - xp.log(q.scale))
        z = (p.loc - q.loc) / q.scale
        return 0.5 * (xp.expm1(two_r) - two_r + z * z)


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p: Gamma, q: Gamma) -> Array:
    r"""Gamma–Gamma (as in torch.distributions).

    :math:`k_q\log\frac{\lambda_p}{\lambda_q} + \log\frac{\Gamma(k_q)}{\Gamma(k_p)}
    + (k_p - k_q)\psi(k_p) + (\lambda_q - \lambda_p)\frac{k_p}{\lambda_p}`.
    """
    xp = p.xp
    kp, kq = p.concentration, q.concentration
    t1 = kq * (xp.log(p.rate) - xp.log(q.rate))
    t2 = gammaln(kq, xp=xp) - gammaln(kp, xp=xp)
    t3 = (kp - kq) * digamma(kp, xp=xp)
    t4 = (q.rate / p.rate - 1.0) * kp
    return t1 + t2 + t3 + t4


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p: Exponential, q: Exponential) -> Array:
    r""":math:`\rho - 1 - \log\rho`, :math:`\rho = \lambda_q/\lambda_p`, as ``expm1(l) - l``."""
    xp = p.xp
    log_ratio = xp.log(q.rate) - xp.log(p.rate)
    return xp.expm1(log_ratio) - log_ratio


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p: Uniform, q: Uniform) -> Array:
    r"""Uniform–Uniform: :math:`\log\frac{b_q - a_q}{b_p - a_p}`, +inf unless P's is inside Q's."""
    xp = p.xp
    outside = (q.low > p.low) | (q.high < p.high)
    value = xp.log(q.high - q.low) - xp.log(p.high - p.low)
    return where_finite(outside, xp.where(outside, xp.zeros_like(value), value), xp)


# Cross-family pairs through H(P, Q) - H(P).
for _p, _q in [
    (Exponential, Gamma),
    (Exponential, Normal),
    (Gamma, Exponential),
    (Gamma, Normal),
    (Uniform, Exponential),
    (Uniform, Gamma),
    (Uniform, Normal),
]:
    register_kl(_p, _q)(kl_by_cross_entropy)


for _p, _q in [
    (Normal, Exponential),
    (Normal, Gamma),
    (Normal, Uniform),
    (Exponential, Uniform),
    (Gamma, Uniform),
]:
    register_kl(_p, _q)(infinite_kl)
