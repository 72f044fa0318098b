r"""Closed forms among the bounded-support and the discrete families.

Same-family pairs have their own formulas, exactly 0 at equal parameters.
The binary-probability families reduce to the Bernoulli divergence computed
from log-masses (so that :math:`p \in \{0, 1\}` gives exact values and finite
gradients, unlike pytorch#15288):

.. math::

    D(\mathrm{Bern}(p) \| \mathrm{Bern}(q)) = p \log\frac{p}{q} + (1 - p) \log\frac{1 - p}{1 - q},

with Binomial (equal counts) :math:`n D`, Geometric :math:`D / p` and
NegativeBinomial (equal counts) :math:`r D / (1 - p)`. Categorical-type pairs
reuse :func:`kldiv.kl_from_probs` / :func:`kldiv.kl_from_log_probs`.
Cross-family pairs are ``H(P, Q) - H(P)`` from Q's cross-entropy and P's
expectation hooks, or, for a P on :math:`\{0, 1\}`, the two-term sum. A pair
whose supports do not nest is +inf, except where P degenerates to a point
mass that Q charges.
"""

from __future__ import annotations

import math
from typing import Any

from kldiv._special import i0e
from kldiv.discrete import kl_from_log_probs, kl_from_probs
from kldiv.discrete._terms import kl_terms_from_log_probs
from kldiv.distributions._bounded import (
    Beta,
    ContinuousBernoulli,
    Kumaraswamy,
    LogitNormal,
    Uniform,
    VonMises,
    kumaraswamy_expected_log1m_relative,
)
from kldiv.distributions._discrete import (
    Bernoulli,
    Binomial,
    Categorical,
    Geometric,
    Multinomial,
    NegativeBinomial,
    OneHotCategorical,
    Poisson,
    any_concrete,
    xlog_mass,
)
from kldiv.distributions._kl_helpers import infinite_kl, kl_by_cross_entropy, where_finite
from kldiv.distributions._registry import register_kl
from kldiv.distributions._stable import dirichlet_kl
from kldiv.errors import NoClosedFormError

Array = Any


# --- Binary-probability families -----------------------------------------------------------------


def _bernoulli_kl(p: Any, q: Any) -> Array:
    r""":math:`p\log(p/q) + (1-p)\log((1-p)/(1-q))` from the log-masses of two binary families."""
    xp = p.xp
    p_one, p_zero = p._log_masses()
    q_one, q_zero = q._log_masses()
    # +inf where Q has no mass on an outcome P charges: computed on safe log-masses and
    # then selected, so that the +inf entries have an exact zero gradient.
    infinite = ((q_one == -math.inf) & (p_one > -math.inf)) | (
        (q_zero == -math.inf) & (p_zero > -math.inf)
    )
    half = xp.full_like(q_one, -math.log(2.0))
    q_one = xp.where(infinite, half, q_one)
    q_zero = xp.where(infinite, half, q_zero)
    value = kl_terms_from_log_probs(p_one, q_one, xp=xp) + kl_terms_from_log_probs(
        p_zero, q_zero, xp=xp
    )
    return where_finite(infinite, xp.where(infinite, xp.zeros_like(value), value), xp)


def _scaled(scale: Array, kl: Array, *, xp: Any) -> Array:
    """``scale * kl`` with ``0 * inf = 0`` (``scale >= 0``) and finite gradients."""
    infinite = xp.isinf(kl)
    value = scale * xp.where(infinite, xp.zeros_like(kl), kl)
    return xp.where(infinite & (scale != 0), math.inf, value)


def _unknown_where(mask: Array, value: Array, *, xp: Any) -> Array:
    """NaN where ``mask`` (no closed form; only reachable when the check could not run)."""
    return xp.where(mask, math.nan, value)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p: Bernoulli, q: Bernoulli) -> Array:
    r"""Bernoulli–Bernoulli (torch ``_kl_bernoulli_bernoulli``, without its NaN gradients).

    :math:`p\log\frac pq + (1 - p)\log\frac{1 - p}{1 - q}`, each term 0 where its
    mass is 0 and +inf where only Q's is.
    """
    return _bernoulli_kl(p, q)


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p: Binomial, q: Binomial) -> Array:
    r"""Binomial–Binomial (torch ``_kl_binomial_binomial``; math.stackexchange 2214993).

    Equal counts: :math:`n\,D(\mathrm{Bern}(p) \| \mathrm{Bern}(q))`. P with more
    trials than Q: +inf (unless :math:`p = 0`: P is the point mass at 0 and the
    divergence is :math:`-n_q \log(1 - q)`). P with fewer trials has no closed
    form: ``NoClosedFormError`` (NaN where the counts cannot be read, under jit).
    """
    xp = p.xp
    n_p, n_q = p.total_count, q.total_count
    at_zero = p.probs == 0
    fewer = (n_p < n_q) & ~at_zero
    if any_concrete(fewer, xp=xp):
        raise NoClosedFormError(
            "KL(Binomial ‖ Binomial) has no closed form where p.total_count < q.total_count "
            "(torch raises NotImplementedError too); use kldiv.estimate(p, q)"
        )
    _, q_zero = q._log_masses()
    point_mass = -xlog_mass(n_q, q_zero, xp=xp)
    same = _scaled(n_p, _bernoulli_kl(p, q), xp=xp)
    value = where_finite(n_p > n_q, same, xp)
    return _unknown_where(fewer, xp.where(at_zero, point_mass, value), xp=xp)


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p: Geometric, q: Geometric) -> Array:
    r"""Geometric–Geometric (torch ``_kl_geometric_geometric``, rewritten exact at equality).

    :math:`D(\mathrm{Bern}(p) \| \mathrm{Bern}(q)) / p`: the failures' log-ratio
    :math:`\log\frac{1-p}{1-q}` is collected :math:`(1-p)/p` times on average.
    """
    return _bernoulli_kl(p, q) / p.probs


@register_kl(NegativeBinomial, NegativeBinomial)
def _kl_negative_binomial_negative_binomial(p: NegativeBinomial, q: NegativeBinomial) -> Array:
    r"""NegativeBinomial–NegativeBinomial with equal ``total_count`` :math:`r`.

    :math:`r\log\frac{1-p}{1-q} + \frac{rp}{1-p}\log\frac pq
    = \frac{r}{1 - p} D(\mathrm{Bern}(p) \| \mathrm{Bern}(q))` (the
    :math:`\Gamma` terms cancel). Different counts: ``NoClosedFormError`` (NaN
    where the counts cannot be read).
    """
    xp = p.xp
    different = p.total_count != q.total_count
    if any_concrete(different, xp=xp):
        raise NoClosedFormError(
            "KL(NegativeBinomial ‖ NegativeBinomial) has a closed form only for equal "
            "total_count; use kldiv.estimate(p, q)"
        )
    _, p_zero = p._log_masses()
    value = _scaled(p.total_count * xp.exp(-p_zero), _bernoulli_kl(p, q), xp=xp)
    return _unknown_where(different, value, xp=xp)


# --- Poisson -------------------------------------------------------------------------------------


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p: Poisson, q: Poisson) -> Array:
    r"""Poisson–Poisson (torch ``_kl_poisson_poisson``), as :math:`\lambda_p(e^l - 1 - l)`.

    :math:`\lambda_p\log\frac{\lambda_p}{\lambda_q} - \lambda_p + \lambda_q`, with
    :math:`l = \log(\lambda_q/\lambda_p)`; :math:`\lambda_q` when
    :math:`\lambda_p = 0` and +inf when only :math:`\lambda_q = 0`.
    """
    xp = p.xp
    rate_p, rate_q = p.rate, q.rate
    p_zero, q_zero = rate_p == 0, rate_q == 0
    safe_p = xp.where(p_zero, xp.ones_like(rate_p), rate_p)
    safe_q = xp.where(q_zero, xp.ones_like(rate_q), rate_q)
    log_ratio = xp.log(safe_q) - xp.log(safe_p)
    value = safe_p * (xp.expm1(log_ratio) - log_ratio)
    value = where_finite(q_zero & ~p_zero, value, xp)
    return xp.where(p_zero, rate_q, value)


# --- A P on {0, 1} against any discrete Q --------------------------------------------------------


def _kl_on_zero_one(p: Any, q: Any) -> Array:
    r""":math:`\sum_{k \in \{0, 1\}} P(k) \log(P(k)/Q(k))` from both ``log_prob``\ s.

    Exact for a P whose mass lies on :math:`\{0, 1\}` (Bernoulli, or Binomial
    with :math:`n \le 1`) against any discrete Q.
    """
    xp = p.xp
    zero, one = 0.0, 1.0
    return kl_terms_from_log_probs(p.log_prob(zero), q.log_prob(zero), xp=xp) + (
        kl_terms_from_log_probs(p.log_prob(one), q.log_prob(one), xp=xp)
    )


@register_kl(Bernoulli, Binomial)
def _kl_bernoulli_binomial(p: Bernoulli, q: Binomial) -> Array:
    r"""Bernoulli–Binomial: the sum over {0, 1}.

    :math:`Q(0) = (1-q)^n`, :math:`Q(1) = nq(1-q)^{n-1}`.
    """
    return _kl_on_zero_one(p, q)


@register_kl(Bernoulli, Geometric)
def _kl_bernoulli_geometric(p: Bernoulli, q: Geometric) -> Array:
    r"""Bernoulli–Geometric: the two-term sum with :math:`Q(0) = q`, :math:`Q(1) = (1 - q) q`."""
    return _kl_on_zero_one(p, q)


@register_kl(Bernoulli, NegativeBinomial)
def _kl_bernoulli_negative_binomial(p: Bernoulli, q: NegativeBinomial) -> Array:
    r"""Bernoulli–NegativeBinomial: the sum over {0, 1}.

    :math:`Q(0) = (1-q)^r`, :math:`Q(1) = rq(1-q)^r`.
    """
    return _kl_on_zero_one(p, q)


@register_kl(Binomial, Bernoulli)
def _kl_binomial_bernoulli(p: Binomial, q: Bernoulli) -> Array:
    r"""Binomial–Bernoulli: the sum over {0, 1} where :math:`n \le 1` or p = 0, else +inf."""
    xp = p.xp
    beyond_one = (p.total_count > 1) & (p.probs > 0)
    value = _kl_on_zero_one(p, q)
    return where_finite(beyond_one, xp.where(beyond_one, xp.zeros_like(value), value), xp)


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p: Bernoulli, q: Poisson) -> Array:
    r"""Bernoulli–Poisson (torch ``_kl_bernoulli_poisson``).

    :math:`-H(P) + \lambda - p\log\lambda`.
    """
    return kl_by_cross_entropy(p, q)


@register_kl(Binomial, Geometric)
def _kl_binomial_geometric(p: Binomial, q: Geometric) -> Array:
    r"""Binomial–Geometric: :math:`-H(P) - n p \log(1 - q) - \log q`.

    :math:`\log Q(k)` is linear in :math:`k`; the binomial entropy is a sum over
    its support, so ``p.total_count`` must be readable (not traced).
    """
    return kl_by_cross_entropy(p, q)


def _kl_point_mass_or_infinite(p: Any, q: Any) -> Array:
    r"""A P on all of :math:`\{0, 1, \dots\}` against a Q of finite support: +inf.

    Except where P is the point mass at 0 (Poisson rate 0, Geometric probs 1,
    NegativeBinomial probs 0): there it is :math:`-\log Q(0)`.
    """
    xp = p.xp
    at_zero = p._is_point_mass_at_zero()
    point_mass = -q.log_prob(0.0)
    safe = xp.where(at_zero, point_mass, xp.zeros_like(point_mass))
    return where_finite(~at_zero, safe, xp)


for _p, _q in [
    (Poisson, Bernoulli),
    (Poisson, Binomial),
    (Geometric, Bernoulli),
    (Geometric, Binomial),
    (NegativeBinomial, Bernoulli),
    (NegativeBinomial, Binomial),
]:
    register_kl(_p, _q)(_kl_point_mass_or_infinite)


# --- Categorical, OneHotCategorical, Multinomial -------------------------------------------------


def _categorical_kl(p: Categorical, q: Categorical) -> Array:
    r""":math:`\sum_k p_k \log(p_k / q_k)` by :func:`kldiv.kl_from_probs` or ``kl_from_log_probs``.

    From probabilities when both were given as ``probs``, else from the
    normalised log-probabilities (``-inf`` entries are zero mass).
    """
    if not p._from_logits and not q._from_logits:
        return kl_from_probs(p.probs, q.probs, validate=False)
    return kl_from_log_probs(p.logits, q.logits, validate=False)


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p: Categorical, q: Categorical) -> Array:
    r"""Categorical–Categorical: :math:`\sum_k p_k \log(p_k/q_k)`.

    A category with :math:`p_k = 0` contributes 0; one with :math:`q_k = 0 < p_k` gives +inf.
    """
    return _categorical_kl(p, q)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_one_hot_one_hot(p: OneHotCategorical, q: OneHotCategorical) -> Array:
    r"""OneHotCategorical–OneHotCategorical: the divergence of the categoricals."""
    return _categorical_kl(p._categorical, q._categorical)


@register_kl(Multinomial, Multinomial)
def _kl_multinomial_multinomial(p: Multinomial, q: Multinomial) -> Array:
    r"""Multinomial–Multinomial: :math:`n \sum_k p_k \log(p_k/q_k)` for equal counts, else +inf.

    Count vectors of different totals never coincide, so the supports are
    disjoint when :math:`n_p \ne n_q`; :math:`n = 0` gives 0.
    """
    xp = p.xp
    value = _scaled(p.total_count, _categorical_kl(p._categorical, q._categorical), xp=xp)
    different = p.total_count != q.total_count
    return where_finite(different, xp.where(different, xp.zeros_like(value), value), xp)


# --- Bounded continuous families: same family ---------------------------------------------------


@register_kl(Beta, Beta)
def _kl_beta_beta(p: Beta, q: Beta) -> Array:
    r"""Beta–Beta (torch ``_kl_beta_beta``), as the Dirichlet divergence of two components.

    :math:`\log\frac{B(\alpha_q, \beta_q)}{B(\alpha_p, \beta_p)}
    + (\alpha_p - \alpha_q)\psi(\alpha_p) + (\beta_p - \beta_q)\psi(\beta_p)
    + (s_q - s_p)\psi(s_p)`, :math:`s = \alpha + \beta`, which is
    :math:`B_{\log\Gamma}(\alpha_q, \alpha_p) + B_{\log\Gamma}(\beta_q, \beta_p)
    - B_{\log\Gamma}(s_q, s_p)` with :math:`B_{\log\Gamma}` the Bregman divergence of
    :math:`\log\Gamma`; computed without cancellation by
    :func:`kldiv.distributions._stable.dirichlet_kl`.
    """
    xp = p.xp
    alpha = xp.stack([p.concentration1, p.concentration0], axis=-1)
    beta = xp.stack([q.concentration1, q.concentration0], axis=-1)
    alpha, beta = xp.broadcast_arrays(alpha, beta)
    return dirichlet_kl(alpha, beta, xp)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_continuous_bernoulli_continuous_bernoulli(
    p: ContinuousBernoulli, q: ContinuousBernoulli
) -> Array:
    r"""ContinuousBernoulli–ContinuousBernoulli (torch), in natural parameters.

    :math:`(z_p - z_q) E_p X - A(z_p) + A(z_q)`: the Bregman divergence of the
    log-partition :math:`A(z) = \log((e^z - 1)/z)`.
    """
    return (p.logits - q.logits) * p.mean - p._log_normalizer() + q._log_normalizer()


@register_kl(Kumaraswamy, Kumaraswamy)
def _kl_kumaraswamy_kumaraswamy(p: Kumaraswamy, q: Kumaraswamy) -> Array:
    r"""Kumaraswamy–Kumaraswamy, with one expectation by quadrature.

    .. math::

        \log\frac{a_p b_p}{a_q b_q} - (a_p - a_q)\frac{H_{b_p}}{a_p} - \frac{b_p - 1}{b_p}
        - (b_q - 1) E_P\log(1 - X^{a_q})

    :math:`E_P \log(1 - X^{a_q})` is :math:`E\log(1 - Y)` for
    :math:`Y \sim \mathrm{Kumaraswamy}(a_p/a_q, b_p)`: :math:`-1/b_p` plus a
    tanh-sinh quadrature (see :mod:`kldiv.distributions._bounded`) that
    vanishes exactly at :math:`a_q = a_p`, so that equal parameters give exactly 0.
    """
    xp = p.xp
    a_p, b_p, a_q, b_q = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    inverse_b = 1.0 / b_p
    expected_log1m_power = kumaraswamy_expected_log1m_relative(a_p / a_q, b_p, xp=xp)
    return (
        (xp.log(a_p) - xp.log(a_q))
        + (xp.log(b_p) - xp.log(b_q))
        + (a_q - a_p) * (p._harmonic_b() / a_p)
        - (b_p - 1.0) * inverse_b
        - (b_q - 1.0) * expected_log1m_power
    )


@register_kl(LogitNormal, LogitNormal)
def _kl_logit_normal_logit_normal(p: LogitNormal, q: LogitNormal) -> Array:
    r"""LogitNormal–LogitNormal (TFP): the Normal–Normal divergence of the logits.

    :math:`\tfrac12[\operatorname{expm1}(2r) - 2r + ((\mu_p - \mu_q)/\sigma_q)^2]`,
    :math:`r = \log(\sigma_p/\sigma_q)` (KL is invariant under the bijection).
    """
    xp = p.xp
    two_r = 2.0 * (xp.log(p.scale) - xp.log(q.scale))
    z = (p.loc - q.loc) / q.scale
    return 0.5 * (xp.expm1(two_r) - two_r + z * z)


@register_kl(VonMises, VonMises)
def _kl_von_mises_von_mises(p: VonMises, q: VonMises) -> Array:
    r"""VonMises–VonMises (TFP ``_kl_von_mises_von_mises``), with :math:`1 - \cos d = 2\sin^2(d/2)`.

    .. math::

        \log\frac{I_0(\kappa_q)}{I_0(\kappa_p)}
        + A(\kappa_p)\big(\kappa_p - \kappa_q\cos(\mu_p - \mu_q)\big), \qquad A = I_1 / I_0
    """
    xp = p.xp
    k_p, k_q = p.concentration, q.concentration
    log_i0_ratio = (k_q - k_p) + (xp.log(i0e(k_q, xp=xp)) - xp.log(i0e(k_p, xp=xp)))
    half_sin = xp.sin(0.5 * (p.loc - q.loc))
    mismatch = (k_p - k_q) + 2.0 * k_q * half_sin * half_sin
    return log_i0_ratio + p._bessel_ratio() * mismatch


# --- Bounded continuous families: across families -----------------------------------------------


@register_kl(Uniform, VonMises)
def _kl_uniform_von_mises(p: Uniform, q: VonMises) -> Array:
    r"""Uniform–VonMises: finite when :math:`[a, b] \subset [-\pi, \pi]`.

    .. math::

        -\log(b - a) + \log(2\pi I_0(\kappa)) - \kappa\,\frac{\sin(b - \mu) - \sin(a - \mu)}{b - a}
    """
    xp = p.xp
    k = q.concentration
    width = p.high - p.low
    mean_cos = (xp.sin(p.high - q.loc) - xp.sin(p.low - q.loc)) / width
    cross = math.log(2.0 * math.pi) + xp.log(i0e(k, xp=xp)) + k * (1.0 - mean_cos)
    value = cross - xp.log(width)
    off = (p.low < -math.pi) | (p.high > math.pi)
    return where_finite(off, xp.where(off, xp.zeros_like(value), value), xp)


# Through H(P, Q) - H(P): Q's _cross_entropy_from(P) with P's expectation hooks.
for _p, _q in [
    (Beta, ContinuousBernoulli),  # torch _kl_beta_continuous_bernoulli
    (Beta, LogitNormal),  # E logit X = psi(a) - psi(b), Var logit X = psi1(a) + psi1(b)
    (Beta, Uniform),  # torch _kl_beta_uniform
    (ContinuousBernoulli, Uniform),  # torch _kl_continuous_bernoulli_uniform
    (Kumaraswamy, Beta),  # numpyro's pair; E log(1 - X) by quadrature instead of a cut series
    (Kumaraswamy, ContinuousBernoulli),
    (Kumaraswamy, Uniform),
    (Uniform, Beta),  # torch _kl_uniform_beta
    (Uniform, ContinuousBernoulli),  # torch _kl_uniform_continuous_bernoulli
    (VonMises, Uniform),
]:
    register_kl(_p, _q)(kl_by_cross_entropy)


# The circle's [-pi, pi) is never inside [0, 1].
for _p, _q in [
    (VonMises, Beta),
    (VonMises, ContinuousBernoulli),
    (VonMises, Kumaraswamy),
    (VonMises, LogitNormal),
]:
    register_kl(_p, _q)(infinite_kl)
