r"""Cancellation-free building blocks of the closed forms.

A divergence between nearby (or extreme) parameters is a small difference of
large quantities when written the textbook way. The pieces below are the
non-negative remainders those formulas hide, each computed without the
subtraction:

- :func:`exp_excess`: :math:`e^u - 1 - u \ge 0` (a Taylor series near 0);
- :func:`log_ratio`: :math:`\log(x/a)` through ``log1p`` when :math:`x \approx a`;
- :func:`gammaln_bregman`: :math:`\log\Gamma(x) - \log\Gamma(a) - (x - a)\psi(a) \ge 0`
  from Stirling's series (with the recurrence :math:`\Gamma(x + 1) = x\Gamma(x)`
  for small arguments), so that no two large log-gammas are subtracted;
- :func:`gamma_kl` and :func:`dirichlet_kl`: the Gamma–Gamma and Dirichlet–Dirichlet
  divergences regrouped into non-negative terms.

Every branch is evaluated on safe inputs and then selected (the "double
where"), so gradients stay finite on every backend.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kldiv._special import gammaln

__all__ = [
    "dirichlet_kl",
    "exp_excess",
    "gamma_kl",
    "gammaln_bregman",
    "log_ratio",
]

Array = Any

# e^u - 1 - u = u^2 * sum_k u^k / (k + 2)!, used for |u| < _SERIES_BOUND (16 terms: < 1e-17).
_SERIES_BOUND = 0.1
_EXP_EXCESS_COEFFS = [1.0 / math.factorial(k + 2) for k in range(16)]

# Stirling's series log Γ(x) = (x - 1/2) log x - x + log(2π)/2 + Σ c_n x^(1 - 2n); with x ≥ 8
# the terms left out are below 1e-19.
_STIRLING_FROM = 8.0
_STIRLING_COEFFS = [
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
]


def _polynomial(x: Array, coeffs: list[float]) -> Array:
    r""":math:`\sum_k c_k x^k` by Horner's rule."""
    total = x * 0.0 + coeffs[-1]
    for c in reversed(coeffs[:-1]):
        total = total * x + c
    return total


def exp_excess(u: Array, xp: Any) -> Array:
    r""":math:`e^u - 1 - u \ge 0`, to full relative accuracy for every :math:`u`.

    ``expm1(u) - u`` loses all digits as :math:`u \to 0` (the result is
    :math:`u^2/2`); there the Taylor series :math:`u^2\sum_k u^k/(k + 2)!` is used.

    Args:
        u: any real array.
        xp: its namespace.

    Returns:
        An array like ``u``; +inf where :math:`e^u` overflows.
    """
    small = xp.abs(u) < _SERIES_BOUND
    u_small = xp.where(small, u, xp.zeros_like(u))
    u_large = xp.where(small, xp.ones_like(u), u)
    series = u_small * u_small * _polynomial(u_small, _EXP_EXCESS_COEFFS)
    with np.errstate(over="ignore"):  # e^u beyond the dtype: +inf is the right answer
        direct = xp.expm1(u_large) - u_large
    return xp.where(small, series, direct)


def log_ratio(x: Array, a: Array, xp: Any, *, diff: Array | None = None) -> Array:
    r""":math:`\log(x / a)` for positive ``x``, ``a``: ``log1p((x - a)/a)`` when they are close.

    ``log(x) - log(a)`` has an absolute error of :math:`\epsilon|\log a|`, which is
    all of the result when :math:`x \approx a` and :math:`a` is large or small.
    ``diff`` is :math:`x - a` when the caller knows it more accurately than the
    rounded subtraction of ``x`` and ``a`` (e.g. both shifted by a constant).
    """
    gap = ((x - a) if diff is None else diff) / a
    close = xp.abs(gap) < 0.5
    near = xp.log1p(xp.where(close, gap, xp.zeros_like(gap)))
    far = xp.log(xp.where(close, xp.ones_like(x), x)) - xp.log(xp.where(close, xp.ones_like(a), a))
    return xp.where(close, near, far)


def _stirling_tail(x: Array, a: Array, h: Array, ell: Array, xp: Any) -> Array:
    r""":math:`s(x) - s(a) - (x - a)s'(a)` for Stirling's correction :math:`s`, :math:`x, a \ge 8`.

    Term by term, :math:`c_n[x^{-m} - a^{-m} + m(x - a)a^{-m-1}]` with :math:`m = 2n - 1`,
    written as :math:`c_n a^{-m}[e^{-m\ell} - 1 + m\ell + m(e^\ell - 1 - \ell)]`
    (:math:`\ell = \log(x/a)`, :math:`h = x - a`) when :math:`|\ell| < 1/2`.
    """
    close = xp.abs(ell) < 0.5
    ell_close = xp.where(close, ell, xp.zeros_like(ell))
    inv_a, inv_x = 1.0 / a, 1.0 / x
    total = xp.zeros_like(x)
    for n, c in enumerate(_STIRLING_COEFFS, start=1):
        m = 2 * n - 1
        inv_a_m = inv_a**m
        near = inv_a_m * (exp_excess(-m * ell_close, xp) + m * exp_excess(ell_close, xp))
        far = inv_x**m - inv_a_m + m * h * inv_a_m * inv_a
        total = total + c * xp.where(close, near, far)
    return total


def _shifted(x: Array, a: Array, h: Array, xp: Any) -> tuple[Array, Array, Array, Array]:
    r"""Arguments moved to :math:`\ge 8` by :math:`\Gamma(y + 1) = y\Gamma(y)`.

    Returns ``(small, x', a', lost)``: where ``min(x, a) < 8`` the arguments are
    shifted by 8 and ``lost`` is :math:`\sum_{j<8} [e^{\ell_j} - 1 - \ell_j]`,
    :math:`\ell_j = \log\frac{x + j}{a + j}` (what the shift takes out of the
    Bregman divergence); elsewhere they are returned as they are and ``lost`` is 0.
    """
    small = (x < _STIRLING_FROM) | (a < _STIRLING_FROM)
    lost = xp.zeros_like(x + a)
    for j in range(int(_STIRLING_FROM)):
        lost = lost + exp_excess(log_ratio(x + j, a + j, xp, diff=h), xp)
    lost = xp.where(small, lost, xp.zeros_like(lost))
    shift = xp.where(small, xp.full_like(lost, _STIRLING_FROM), xp.zeros_like(lost))
    return small, x + shift, a + shift, lost


def _stirling_bregman(x: Array, a: Array, h: Array, xp: Any) -> Array:
    r""":math:`B(x, a)` for :math:`x, a \ge 8` from Stirling's series.

    :math:`x(e^{-\ell} - 1 + \ell) + \tfrac12(e^\ell - 1 - \ell) + R`.

    From Stirling's series with :math:`\ell = \log(x/a)`; every term is
    non-negative (the Stirling tail :math:`R` too, :math:`s` being convex).
    """
    ell = log_ratio(x, a, xp, diff=h)
    return x * exp_excess(-ell, xp) + 0.5 * exp_excess(ell, xp) + _stirling_tail(x, a, h, ell, xp)


def gammaln_bregman(x: Array, a: Array, xp: Any, *, diff: Array | None = None) -> Array:
    r"""The Bregman divergence of :math:`\log\Gamma`.

    :math:`B(x, a) = \log\Gamma(x) - \log\Gamma(a) - (x - a)\psi(a)`.

    Non-negative (:math:`\log\Gamma` is convex) and of the size of
    :math:`(x - a)^2\psi'(a)/2` when :math:`x \approx a`, where the textbook
    formula subtracts two log-gammas of size :math:`a\log a`. Computed as
    :math:`\sum_{j<8} (e^{\ell_j} - 1 - \ell_j) + B(x + 8, a + 8)` for small
    arguments and from Stirling's series (:func:`_stirling_bregman`) above 8.

    Args:
        x: positive array.
        a: positive array broadcasting against ``x``.
        xp: their namespace.
        diff: :math:`x - a` where the caller has it more accurately than the
            rounded subtraction (e.g. a ratio of scales minus 1).

    Returns:
        The divergence, of the broadcast shape.
    """
    h = x - a if diff is None else diff
    _, x_big, a_big, lost = _shifted(x, a, h, xp)
    return lost + _stirling_bregman(x_big, a_big, h, xp)


def gamma_kl(kp: Array, rp: Array, kq: Array, rq: Array, xp: Any) -> Array:
    r"""D(Gamma(:math:`k_p, \lambda_p`) ‖ Gamma(:math:`k_q, \lambda_q`)) without cancellation.

    The textbook :math:`k_q\log\frac{\lambda_p}{\lambda_q} + \log\frac{\Gamma(k_q)}{\Gamma(k_p)}
    + (k_p - k_q)\psi(k_p) + (\frac{\lambda_q}{\lambda_p} - 1)k_p` equals, with
    :math:`l = \log(\lambda_q/\lambda_p)`, :math:`h = k_q - k_p` and :math:`B` the
    Bregman divergence of :math:`\log\Gamma`,
    :math:`B(k_q, k_p) + k_p(e^l - 1 - l) - h\,l`. For :math:`k_p, k_q \ge 8`
    Stirling's series regroups it into non-negative terms,
    :math:`k_q(e^{m} - 1 - m) + \tfrac12(e^{L} - 1 - L) + R` with
    :math:`L = \log(k_q/k_p)`, :math:`m = l - L` (the log-ratio of the means),
    exact even when the two Gammas share their mean and :math:`k \sim 10^9`.
    """
    ell = log_ratio(rq, rp, xp)
    h = kq - kp
    generic = gammaln_bregman(kq, kp, xp) + kp * exp_excess(ell, xp) - h * ell
    big = (kp >= _STIRLING_FROM) & (kq >= _STIRLING_FROM)
    safe_kp = xp.where(big, kp, xp.full_like(kp, _STIRLING_FROM))
    safe_kq = xp.where(big, kq, xp.full_like(kq, _STIRLING_FROM))
    safe_h = xp.where(big, h, xp.zeros_like(h))
    big_ell = log_ratio(safe_kq, safe_kp, xp, diff=safe_h)
    regrouped = (
        safe_kq * exp_excess(ell - big_ell, xp)
        + 0.5 * exp_excess(big_ell, xp)
        + _stirling_tail(safe_kq, safe_kp, safe_h, big_ell, xp)
    )
    return xp.where(
        big,
        regrouped,
        xp.where(kp >= _STIRLING_FROM, _gamma_kl_wide_p(kp, rp, kq, rq, xp), generic),
    )


def _stirling_correction(x: Array, xp: Any) -> tuple[Array, Array]:
    r"""Stirling's correction :math:`s(x) = \sum_n c_n x^{1-2n}` and :math:`s'(x)` (x >= 8)."""
    inv = 1.0 / x
    value, slope = xp.zeros_like(x), xp.zeros_like(x)
    for n, c in enumerate(_STIRLING_COEFFS, start=1):
        value = value + c * inv ** (2 * n - 1)
        slope = slope + c * (1 - 2 * n) * inv ** (2 * n)
    return value, slope


def _gamma_kl_wide_p(kp: Array, rp: Array, kq: Array, rq: Array, xp: Any) -> Array:
    r"""Gamma–Gamma for :math:`k_p \ge 8`, with Stirling's series for :math:`k_p`'s terms.

    :math:`\log\Gamma(k_q) - k_q\log(\lambda_q\mu_p) + \lambda_q\mu_p
    + \tfrac12\log\frac{k_p}{2\pi} - s(k_p) - (k_q - k_p)(s'(k_p) - \tfrac1{2k_p})`,
    :math:`\mu_p = k_p/\lambda_p`: the terms of size :math:`k_p\log k_p` cancel
    analytically, which matters when :math:`k_q \ll k_p`.
    """
    safe_kp = xp.where(kp >= _STIRLING_FROM, kp, xp.full_like(kp, _STIRLING_FROM))
    value, slope = _stirling_correction(safe_kp, xp)
    scaled_mean = rq * (safe_kp / rp)
    return (
        gammaln(kq, xp=xp)
        - kq * xp.log(scaled_mean)
        + scaled_mean
        + 0.5 * xp.log(safe_kp / (2.0 * math.pi))
        - value
        - (kq - safe_kp) * (slope - 0.5 / safe_kp)
    )


def dirichlet_kl(alpha: Array, beta: Array, xp: Any) -> Array:
    r"""D(Dirichlet(:math:`\alpha`) ‖ Dirichlet(:math:`\beta`)) along the last axis.

    :math:`\log\frac{\Gamma(\alpha_0)}{\Gamma(\beta_0)} + \sum_i\log\frac{\Gamma(\beta_i)}
    {\Gamma(\alpha_i)} + \sum_i(\alpha_i - \beta_i)(\psi(\alpha_i) - \psi(\alpha_0))
    = \sum_i B(\beta_i, \alpha_i) - B(\beta_0, \alpha_0)`, :math:`B` the Bregman
    divergence of :math:`\log\Gamma`. The components below 8 are shifted up by 8
    (and the totals by the sum of the shifts, :math:`\Gamma(y + 1) = y\Gamma(y)`);
    then Stirling's series regroups the rest as
    :math:`\sum_i \beta_i(e^{m_i} - 1 - m_i) + \tfrac12[\sum_i(e^{L_i} - 1 - L_i)
    - (e^{L_0} - 1 - L_0)] + \sum_i R_i - R_0`, :math:`L_i = \log(\beta_i/\alpha_i)`,
    :math:`m_i = L_0 - L_i` (the log-ratio of the means), which stays accurate when
    both are scaled up together. With more than 16 components the Bregman terms
    are summed as they are (no shift of the totals).
    """
    count = alpha.shape[-1]
    if count > 16:
        alpha0, beta0 = xp.sum(alpha, axis=-1), xp.sum(beta, axis=-1)
        return xp.sum(gammaln_bregman(beta, alpha, xp), axis=-1) - gammaln_bregman(
            beta0, alpha0, xp
        )
    h = beta - alpha
    small, beta_big, alpha_big, lost = _shifted(beta, alpha, h, xp)
    shifts = xp.sum(xp.where(small, xp.ones_like(h), xp.zeros_like(h)), axis=-1)
    alpha0, beta0 = xp.sum(alpha, axis=-1), xp.sum(beta, axis=-1)
    h0 = xp.sum(h, axis=-1)
    lost0 = xp.zeros_like(h0)
    for j in range(int(_STIRLING_FROM) * count):
        term = exp_excess(log_ratio(beta0 + j, alpha0 + j, xp, diff=h0), xp)
        lost0 = lost0 + xp.where(j < _STIRLING_FROM * shifts, term, xp.zeros_like(term))
    a0 = alpha0 + _STIRLING_FROM * shifts
    b0 = beta0 + _STIRLING_FROM * shifts
    ell = log_ratio(beta_big, alpha_big, xp, diff=h)
    ell0 = log_ratio(b0, a0, xp, diff=h0)
    means = xp.sum(beta_big * exp_excess(ell0[..., None] - ell, xp), axis=-1)
    halves = 0.5 * (xp.sum(exp_excess(ell, xp), axis=-1) - exp_excess(ell0, xp))
    tails = xp.sum(_stirling_tail(beta_big, alpha_big, h, ell, xp), axis=-1) - _stirling_tail(
        b0, a0, h0, ell0, xp
    )
    return (xp.sum(lost, axis=-1) - lost0) + means + halves + tails


def gammaln_shifted(at: float, digamma_at: float, gap: Array, xp: Any) -> Array:
    r""":math:`\log\Gamma(a + g) - \log\Gamma(a)`, accurate for a small ``gap`` :math:`g`.

    Computed as :math:`B(a + g, a) + g\,\psi(a)` (``digamma_at`` is :math:`\psi(a)`).

    ``gammaln(a + g)`` rounds :math:`a + g` first, an absolute error of
    :math:`\epsilon a\psi(a)` that is all of the result when :math:`g \approx 0`.
    """
    x = gap + at
    return gammaln_bregman(x, xp.full_like(x, at), xp, diff=gap) + gap * digamma_at


def gammaln_at(x: Array, at: float, xp: Any) -> Array:
    r""":math:`\log\Gamma(x) - \log\Gamma(a)`: exactly 0 at ``x == at`` on every backend."""
    return gammaln(x, xp=xp) - gammaln(xp.full_like(x, at), xp=xp)
