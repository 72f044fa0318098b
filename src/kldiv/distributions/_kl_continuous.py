"""Closed forms between continuous univariate families: same-family and cross-family pairs.

Same-family pairs have their own formulas, written to be exactly 0 for equal
parameters and accurate when the two are close. Cross-family pairs are
``H(P, Q) - H(P)`` (:func:`kldiv.distributions._kl_helpers.kl_by_cross_entropy`),
with +inf where P's support is not inside Q's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kldiv.distributions._bounded import Uniform
from kldiv.distributions._kl_helpers import infinite_kl, kl_by_cross_entropy, where_finite
from kldiv.distributions._positive import Exponential, Gamma
from kldiv.distributions._real import Normal
from kldiv.distributions._registry import register_kl
from kldiv.distributions._stable import exp_excess, gamma_kl, log_ratio

Array = Any


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal) -> Array:
    r"""Normal–Normal, written to be exact at equal parameters.

    :math:`\tfrac12[(e^{2r} - 1 - 2r) + ((\mu_p - \mu_q)/\sigma_q)^2]`,
    :math:`r = \log(\sigma_p/\sigma_q)` (``log1p`` of the relative gap when close, and
    :math:`e^{u} - 1 - u` by its series near 0: no cancellation for nearby scales).
    """
    xp = p.xp
    with np.errstate(over="ignore", divide="ignore"):  # σ_p ≫ σ_q or σ_q → 0: +inf is exact
        two_r = 2.0 * log_ratio(p.scale, q.scale, xp)
        z = (p.loc - q.loc) / q.scale
        return 0.5 * (exp_excess(two_r, xp) + z * z)


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p: Gamma, q: Gamma) -> Array:
    r"""Gamma–Gamma, regrouped into non-negative terms (no cancellation).

    :math:`k_q\log\frac{\lambda_p}{\lambda_q} + \log\frac{\Gamma(k_q)}{\Gamma(k_p)}
    + (k_p - k_q)\psi(k_p) + (\lambda_q - \lambda_p)\frac{k_p}{\lambda_p}`, computed by
    :func:`kldiv.distributions._stable.gamma_kl` (the Bregman divergence of
    :math:`\log\Gamma` from Stirling's series; for large shapes
    :math:`k_q(e^m - 1 - m) + \tfrac12(e^L - 1 - L) + R`, :math:`m` the log-ratio of the means).
    """
    return gamma_kl(p.concentration, p.rate, q.concentration, q.rate, p.xp)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p: Exponential, q: Exponential) -> Array:
    r""":math:`\rho - 1 - \log\rho`, :math:`\rho = \lambda_q/\lambda_p`, as :math:`e^l - 1 - l`."""
    xp = p.xp
    return exp_excess(log_ratio(q.rate, p.rate, xp), xp)


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
