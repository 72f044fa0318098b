r"""Closed forms among the real-line and positive-half-line families.

Same-family pairs have their own formulas (from ``torch.distributions.kl``,
TensorFlow Probability or derived here, as cited), written to be exactly 0 at
equal parameters and accurate when the two are close: differences of logs,
``expm1(u) - u`` for :math:`e^u - 1 - u`, ``log1p`` of small ratios.

Cross-family pairs are

.. math::

    D_{KL}(P \| Q) = H(P, Q) - H(P),

with Q's cross-entropy ``Q._cross_entropy_from(P)`` built from P's
expectation hooks (mean, variance, :math:`E\log X`, :math:`E X^r`,
:math:`E e^{tX}`, :math:`E|X - m|`, ...): +inf where P's support is not inside
Q's or where the statistic Q needs is infinite under P (e.g. a Pareto P with
:math:`\alpha \le 2` against a Normal Q). Every pair is verified against
numerical integration in ``tests/distributions/cases_real_positive.py``.
"""

from __future__ import annotations

import math
from typing import Any

from kldiv.distributions._bounded import Uniform
from kldiv.distributions._kl_helpers import infinite_kl, kl_by_cross_entropy, where_finite
from kldiv.distributions._positive import (
    Chi,
    Chi2,
    Exponential,
    Gamma,
    HalfCauchy,
    HalfNormal,
    InverseGamma,
    LogNormal,
    Pareto,
    Weibull,
)
from kldiv.distributions._real import (
    Cauchy,
    Gumbel,
    Laplace,
    Logistic,
    Moyal,
    Normal,
    StudentT,
)
from kldiv.distributions._registry import register_kl
from kldiv.distributions._stable import (
    exp_excess,
    gamma_kl,
    gammaln_at,
    gammaln_bregman,
    gammaln_shifted,
    log_ratio,
)

Array = Any

_EULER_GAMMA = 0.5772156649015329
_LOG_2 = math.log(2.0)
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


# --- Building blocks -------------------------------------------------------------------------


def _exp_excess(u: Array, xp: Any) -> Array:
    r""":math:`e^u - 1 - u \ge 0`, accurate for every :math:`u` (a series near 0)."""
    return exp_excess(u, xp)


def _gammaln_from(x: Array, at: float, xp: Any) -> Array:
    r""":math:`\log\Gamma(x) - \log\Gamma(a)`: exactly 0 at ``x == at`` on every backend."""
    return gammaln_at(x, at, xp)


def _gamma_gamma(kp: Array, rp: Array, kq: Array, rq: Array, xp: Any) -> Array:
    r"""Gamma(:math:`k_p, \lambda_p`) against Gamma(:math:`k_q, \lambda_q`), without cancellation.

    The torch.distributions formula
    :math:`k_q\log\frac{\lambda_p}{\lambda_q} + \log\frac{\Gamma(k_q)}{\Gamma(k_p)}
    + (k_p - k_q)\psi(k_p) + (\frac{\lambda_q}{\lambda_p} - 1)k_p`, regrouped into
    non-negative terms by :func:`kldiv.distributions._stable.gamma_kl`.
    """
    return gamma_kl(kp, rp, kq, rq, xp)


def _same_rate_gamma(half_p: Array, half_q: Array, xp: Any) -> Array:
    r""":math:`(a - b)\psi(a) + \log\Gamma(b) - \log\Gamma(a)`: Chi2–Chi2 and Chi–Chi (a = ν/2).

    The Bregman divergence :math:`B(b, a)` of :math:`\log\Gamma`, computed without
    subtracting two log-gammas (:func:`kldiv.distributions._stable.gammaln_bregman`).
    """
    return gammaln_bregman(half_q, half_p, xp)


def _log_scale_extreme(shape_ratio: Array, ratio_gap: Array, shift: Array, xp: Any) -> Array:
    r"""The Gumbel / Weibull closed form, exact at equal parameters.

    With :math:`r` the ratio of the log-scales' spreads (``shape_ratio``, and
    ``ratio_gap`` :math:`= r - 1` computed without rounding ``r``), :math:`\ell = \log r`,
    :math:`L = \log\Gamma(1 + r)` and ``shift`` :math:`u`, the divergence
    :math:`-\ell + \gamma_E(r - 1) + e^{u + L} - 1 - u` is computed as
    :math:`B(r, 1) + [e^{u + L} - 1 - (u + L)]`, where
    :math:`B(r, 1) = \log\Gamma(r) + \gamma_E(r - 1) = -\ell + \gamma_E(r - 1) + L \ge 0`
    is the Bregman divergence of :math:`\log\Gamma` (no cancellation at :math:`r \approx 1`).
    """
    lgamma = gammaln_shifted(2.0, 1.0 - _EULER_GAMMA, ratio_gap, xp)  # log Γ(1 + r)
    spread = gammaln_bregman(shape_ratio, xp.ones_like(shape_ratio), xp, diff=ratio_gap)
    return spread + _exp_excess(shift + lgamma, xp)


# --- Same-family pairs -----------------------------------------------------------------------


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p: Laplace, q: Laplace) -> Array:
    r"""Laplace–Laplace (torch.distributions), exact at equality.

    :math:`\log\frac{b_q}{b_p} + \frac{|\Delta|}{b_q} + \frac{b_p}{b_q}e^{-|\Delta|/b_p} - 1`,
    :math:`\Delta = \mu_p - \mu_q`, as two non-negative terms
    :math:`(a - 1 - \log a) + a(e^{-x} - 1 + x)`, :math:`a = b_p/b_q`, :math:`x = |\Delta|/b_p`;
    the second is taken as :math:`|\Delta|/b_q + a\operatorname{expm1}(-x)` for :math:`x > 1`
    (no cancellation there, and no overflow of :math:`x` when :math:`b_p \to 0`).
    """
    xp = p.xp
    distance = xp.abs(p.loc - q.loc)
    scale_ratio = p.scale / q.scale
    ratio_term = _exp_excess(log_ratio(p.scale, q.scale, xp), xp)
    x = distance / p.scale  # |Δ|/b_p, may overflow to +inf: only used where <= 1
    near = x <= 1.0
    x_near = xp.where(near, x, xp.zeros_like(x))
    x_far = xp.where(near, xp.ones_like(x), x)
    near_value = scale_ratio * _exp_excess(-x_near, xp)
    far_value = distance / q.scale + scale_ratio * xp.expm1(-x_far)
    return ratio_term + xp.where(near, near_value, far_value)


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p: Cauchy, q: Cauchy) -> Array:
    r"""Cauchy–Cauchy (Chyzak & Nielsen, arXiv:1905.10965; torch.distributions).

    :math:`\log\frac{(\gamma_p + \gamma_q)^2 + (\mu_p - \mu_q)^2}{4\gamma_p\gamma_q}
    = \log\Big(1 + \frac{(\gamma_p - \gamma_q)^2 + (\mu_p - \mu_q)^2}{4\gamma_p\gamma_q}\Big)`.
    """
    xp = p.xp
    scale_gap = p.scale - q.scale
    loc_gap = p.loc - q.loc
    return xp.log1p((scale_gap * scale_gap + loc_gap * loc_gap) / (4.0 * p.scale * q.scale))


@register_kl(HalfCauchy, HalfCauchy)
def _kl_halfcauchy_halfcauchy(p: HalfCauchy, q: HalfCauchy) -> Array:
    r"""HalfCauchy–HalfCauchy: the Cauchy–Cauchy value at zero locations (folding is 2-to-1).

    :math:`\log\Big(1 + \frac{(\sigma_p - \sigma_q)^2}{4\sigma_p\sigma_q}\Big)`.
    """
    gap = p.scale - q.scale
    return p.xp.log1p(gap * gap / (4.0 * p.scale * q.scale))


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p: Gumbel, q: Gumbel) -> Array:
    r"""Gumbel–Gumbel (torch.distributions), exact at equality.

    With :math:`r = \beta_p/\beta_q` and :math:`d = (\mu_p - \mu_q)/\beta_q`:
    :math:`-\log r + \gamma_E(r - 1) + d + e^{-d}\Gamma(1 + r) - 1`.
    """
    ratio = p.scale / q.scale
    gap = (p.scale - q.scale) / q.scale
    shift = (q.loc - p.loc) / q.scale
    return _log_scale_extreme(ratio, gap, shift, p.xp)


@register_kl(Weibull, Weibull)
def _kl_weibull_weibull(p: Weibull, q: Weibull) -> Array:
    r"""Weibull–Weibull (TFP ``_kl_weibull_weibull``), exact at equality.

    With :math:`s = k_q/k_p` and :math:`u = k_q\log(\lambda_p/\lambda_q)`:
    :math:`\log\frac{k_p}{k_q} + \gamma_E(s - 1) - u + e^u\Gamma(1 + s) - 1`
    (the Gumbel–Gumbel value of :math:`-\log X`).
    """
    xp = p.xp
    ratio = q.concentration / p.concentration
    gap = (q.concentration - p.concentration) / p.concentration
    shift = q.concentration * log_ratio(p.scale, q.scale, xp)
    return _log_scale_extreme(ratio, gap, shift, xp)


@register_kl(Moyal, Moyal)
def _kl_moyal_moyal(p: Moyal, q: Moyal) -> Array:
    r"""Moyal–Moyal (TFP ``_kl_moyal_moyal``), exact at equality.

    With :math:`r = \sigma_p/\sigma_q`, :math:`d = (\mu_p - \mu_q)/\sigma_q` and
    :math:`L = (r - 1)\log 2 + \log\Gamma(\tfrac12 + r) - \log\Gamma(\tfrac32)`:
    :math:`\tfrac12[e^{L - d} - 1 + d + (r - 1)(\gamma_E + \log 2) - 2\log r]`, with
    the spread :math:`L + (r - 1)(\gamma_E + \log 2) - 2\log r` taken as the non-negative
    :math:`B(\tfrac12 + r, \tfrac32) + 2(r - 1 - \log r)` (:math:`\psi(\tfrac32) = 2 - \gamma_E
    - 2\log 2`, :math:`B` the Bregman divergence of :math:`\log\Gamma`).
    """
    xp = p.xp
    ratio = p.scale / q.scale
    gap = (p.scale - q.scale) / q.scale
    shift = (p.loc - q.loc) / q.scale
    lgamma = gap * _LOG_2 + gammaln_shifted(1.5, 2.0 - _EULER_GAMMA - 2.0 * _LOG_2, gap, xp)
    spread = gammaln_bregman(0.5 + ratio, xp.full_like(ratio, 1.5), xp, diff=gap) + 2.0 * (
        _exp_excess(log_ratio(p.scale, q.scale, xp), xp)
    )
    return 0.5 * (_exp_excess(lgamma - shift, xp) + spread)


def _normal_like(scale_p: Array, scale_q: Array, loc_gap: Array, xp: Any) -> Array:
    r"""The Normal–Normal value :math:`\tfrac12[e^{2r} - 1 - 2r + (\Delta/\sigma_q)^2]`.

    :math:`r = \log(\sigma_p/\sigma_q)` (via ``log1p`` when close), :math:`\Delta = \mu_p - \mu_q`.
    """
    two_r = 2.0 * log_ratio(scale_p, scale_q, xp)
    z = loc_gap / scale_q
    return 0.5 * (_exp_excess(two_r, xp) + z * z)


@register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(p: LogNormal, q: LogNormal) -> Array:
    r"""LogNormal–LogNormal: the Normal–Normal value of :math:`\log X` (TFP)."""
    return _normal_like(p.scale, q.scale, p.loc - q.loc, p.xp)


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p: HalfNormal, q: HalfNormal) -> Array:
    r"""HalfNormal–HalfNormal (torch.distributions): :math:`\tfrac12(e^{2r} - 1 - 2r)`.

    :math:`r = \log(\sigma_p/\sigma_q)`.
    """
    return _normal_like(p.scale, q.scale, p.xp.zeros_like(p.scale), p.xp)


@register_kl(Chi2, Chi2)
def _kl_chi2_chi2(p: Chi2, q: Chi2) -> Array:
    r"""Chi2–Chi2 (TFP): Gamma–Gamma at equal rates.

    :math:`(a - b)\psi(a) + \log\Gamma(b) - \log\Gamma(a)` with :math:`a, b = \nu_p/2, \nu_q/2`.
    """
    return _same_rate_gamma(0.5 * p.df, 0.5 * q.df, p.xp)


@register_kl(Chi, Chi)
def _kl_chi_chi(p: Chi, q: Chi) -> Array:
    r"""Chi–Chi (TFP): :math:`(a - b)\psi(a) + \log\Gamma(b) - \log\Gamma(a)`, :math:`a = \nu_p/2`.

    The same value as Chi2–Chi2: :math:`X \mapsto X^2` is a bijection on :math:`(0, \infty)`.
    """
    return _same_rate_gamma(0.5 * p.df, 0.5 * q.df, p.xp)


@register_kl(InverseGamma, InverseGamma)
def _kl_inversegamma_inversegamma(p: InverseGamma, q: InverseGamma) -> Array:
    r"""InverseGamma–InverseGamma: the Gamma–Gamma value of :math:`1/X` (torch.distributions)."""
    return _gamma_gamma(p.concentration, p.rate, q.concentration, q.rate, p.xp)


@register_kl(Pareto, Pareto)
def _kl_pareto_pareto(p: Pareto, q: Pareto) -> Array:
    r"""Pareto–Pareto (torch.distributions); +inf where :math:`s_p < s_q`.

    :math:`\alpha_q\log(s_p/s_q) + \alpha_q/\alpha_p - 1 - \log(\alpha_q/\alpha_p)`.
    """
    xp = p.xp
    outside = p.scale < q.scale
    safe_scale = xp.where(outside, q.scale, p.scale)
    value = q.alpha * log_ratio(safe_scale, q.scale, xp) + _exp_excess(
        log_ratio(q.alpha, p.alpha, xp), xp
    )
    return where_finite(outside, xp.where(outside, xp.zeros_like(value), value), xp)


# --- Gamma and Chi2: Chi2 is a Gamma, the TFP pairs are registered explicitly -----------------


@register_kl(Chi2, Gamma)
def _kl_chi2_gamma(p: Chi2, q: Gamma) -> Array:
    """Chi2–Gamma (TFP): Gamma–Gamma with P = Gamma(df/2, 1/2)."""
    return _gamma_gamma(p.concentration, p.rate, q.concentration, q.rate, p.xp)


@register_kl(Gamma, Chi2)
def _kl_gamma_chi2(p: Gamma, q: Chi2) -> Array:
    """Gamma–Chi2 (TFP): Gamma–Gamma with Q = Gamma(df/2, 1/2)."""
    return _gamma_gamma(p.concentration, p.rate, q.concentration, q.rate, p.xp)


# --- StudentT: Normal Q needs the variance, finite for df > 2 --------------------------------


@register_kl(StudentT, Normal)
def _kl_studentt_normal(p: StudentT, q: Normal) -> Array:
    r"""StudentT–Normal: :math:`H(P, Q) - H(P)`, +inf for :math:`\nu \le 2` (infinite variance).

    :math:`H(P, Q) = \log\sigma_q\sqrt{2\pi} + [\sigma_p^2\nu/(\nu - 2) + (\mu_p - \mu_q)^2]
    / 2\sigma_q^2`.
    """
    xp = p.xp
    finite = p.df > 2.0
    safe_df = xp.where(finite, p.df, xp.full_like(p.df, 3.0))
    variance = p.scale * p.scale * safe_df / (safe_df - 2.0)
    loc_gap = p.loc - q.loc
    cross = (
        xp.log(q.scale)
        + _HALF_LOG_TWO_PI
        + 0.5 * (variance + loc_gap * loc_gap) / (q.scale * q.scale)
    )
    value = cross - p.entropy()
    return where_finite(~finite, xp.where(finite, value, xp.zeros_like(value)), xp)


# --- Cross-family pairs through H(P, Q) - H(P) -----------------------------------------------

# torch.distributions' finite cross-family pairs in this area.
_TORCH_CROSS = [
    (Exponential, Gumbel),
    (Gamma, Gumbel),
    (Gumbel, Normal),
    (Laplace, Normal),
    (Normal, Gumbel),
    (Normal, Laplace),
    (Pareto, Exponential),  # +inf for alpha <= 1 (infinite mean)
    (Pareto, Gamma),  # +inf for alpha <= 1
    (Pareto, Normal),  # +inf for alpha <= 2 (infinite variance)
    (Uniform, Gumbel),
    (Uniform, Pareto),  # +inf unless low >= scale
]

# TFP / numpyro.
_TFP_CROSS = [(Weibull, Gamma)]

# Laplace Q: E_P|X - mu| (torch.distributions leaves these as TODOs).
_LAPLACE_CROSS = [
    (Exponential, Laplace),
    (Gamma, Laplace),
    (Uniform, Laplace),
    (Pareto, Laplace),  # +inf for alpha <= 1
    (Logistic, Laplace),
    (HalfNormal, Laplace),
    (LogNormal, Laplace),
    (Weibull, Laplace),
    (Chi, Laplace),
    (InverseGamma, Laplace),  # +inf for alpha <= 1
]

# Gumbel and Moyal Q: E_P X and the moment generating function E_P e^{-X/scale}.
_EXTREME_CROSS = [
    (Laplace, Gumbel),  # +inf for b_p >= beta_q
    (Logistic, Gumbel),  # +inf for s_p >= beta_q
    (Moyal, Gumbel),
    (HalfNormal, Gumbel),
    (Normal, Moyal),
    (Laplace, Moyal),  # +inf for b_p >= sigma_q
    (Logistic, Moyal),  # +inf for s_p >= sigma_q
    (Gumbel, Moyal),
    (Exponential, Moyal),
    (Gamma, Moyal),
    (Uniform, Moyal),
    (HalfNormal, Moyal),
]

# Normal Q: mean and variance.
_NORMAL_CROSS = [
    (Moyal, Normal),
    (Logistic, Normal),
    (LogNormal, Normal),
    (HalfNormal, Normal),
    (Weibull, Normal),
    (Chi, Normal),
    (InverseGamma, Normal),  # +inf for alpha <= 2
]

# Positive Q against positive P: E log X, E X^r, Var log X, ...
_POSITIVE_CROSS = [
    (LogNormal, Exponential),
    (LogNormal, Gamma),
    (LogNormal, Weibull),
    (LogNormal, InverseGamma),
    (LogNormal, HalfNormal),
    (LogNormal, Chi),
    (Gamma, LogNormal),
    (Gamma, Weibull),
    (Gamma, InverseGamma),  # +inf for k <= 1 (E 1/X infinite)
    (Gamma, HalfNormal),
    (Gamma, Chi),
    (Exponential, LogNormal),
    (Exponential, Weibull),
    (Exponential, HalfNormal),
    (Exponential, Chi),
    (Exponential, InverseGamma),  # always +inf: E 1/X is infinite
    (Weibull, Exponential),
    (Weibull, LogNormal),
    (Weibull, HalfNormal),
    (Weibull, InverseGamma),  # +inf for k <= 1
    (Weibull, Chi),
    (HalfNormal, Exponential),
    (HalfNormal, Gamma),
    (HalfNormal, LogNormal),
    (HalfNormal, Weibull),
    (HalfNormal, Chi),
    (InverseGamma, Exponential),  # +inf for alpha <= 1
    (InverseGamma, Gamma),  # +inf for alpha <= 1
    (InverseGamma, LogNormal),
    (InverseGamma, Weibull),  # +inf for k_q >= alpha_p
    (Chi, Exponential),
    (Chi, Gamma),
    (Chi, HalfNormal),
    (Chi, LogNormal),
    (Chi, Weibull),
    (Chi, InverseGamma),  # +inf for df <= 1
    (Pareto, LogNormal),
    (Pareto, Weibull),  # +inf for k_q >= alpha_p
    (Pareto, InverseGamma),
    (Pareto, HalfNormal),  # +inf for alpha <= 2
    (Pareto, Chi),  # +inf for alpha <= 2
    (HalfCauchy, LogNormal),
    (HalfCauchy, Weibull),  # +inf for k_q >= 1
    (Uniform, HalfNormal),  # +inf unless low >= 0 (also below)
    (Uniform, Chi),
    (Uniform, Weibull),
]

for _p, _q in (
    _TORCH_CROSS + _TFP_CROSS + _LAPLACE_CROSS + _EXTREME_CROSS + _NORMAL_CROSS + _POSITIVE_CROSS
):
    register_kl(_p, _q)(kl_by_cross_entropy)


# --- Support mismatch: P charges a set Q gives no density, or Q's tails are too light --------

for _p, _q in [
    # torch.distributions' +inf pairs in this area.
    (Gumbel, Exponential),
    (Gumbel, Gamma),
    (Gumbel, Pareto),
    (Gumbel, Uniform),
    (Laplace, Exponential),
    (Laplace, Gamma),
    (Laplace, Pareto),
    (Laplace, Uniform),
    (Normal, Pareto),
    (Pareto, Uniform),
    (Exponential, Pareto),
    (Gamma, Pareto),
    # The real line against a half-line.
    (Normal, HalfNormal),
    (Normal, LogNormal),
    # Cauchy tails: E X^2, E|X|, E e^{tX} (t != 0) are all infinite.
    (Cauchy, Normal),
    (Cauchy, Laplace),
    (Cauchy, Gumbel),
    (Cauchy, Moyal),
]:
    register_kl(_p, _q)(infinite_kl)
