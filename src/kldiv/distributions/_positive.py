"""Distributions on the positive half-line: Gamma, Exponential and their relatives.

HalfNormal, LogNormal, Chi2, Chi, Weibull, InverseGamma, Pareto and HalfCauchy.
"""

from __future__ import annotations

import math
from typing import Any

from kldiv._special import (
    _elementwise,
    digamma,
    erf,
    erfc,
    gammainc,
    gammaln,
    log_ndtr,
    trigamma,
)
from kldiv.distributions._base import Distribution, broadcast_parameters, float_parameters
from kldiv.distributions._constraints import positive, real
from kldiv.distributions._kl_helpers import outside_support, where_finite
from kldiv.distributions._random import standard_gamma, standard_normal, standard_uniform
from kldiv.distributions._real import finite_part

__all__ = [
    "Chi",
    "Chi2",
    "Exponential",
    "Gamma",
    "HalfCauchy",
    "HalfNormal",
    "InverseGamma",
    "LogNormal",
    "Pareto",
    "Weibull",
]

Array = Any

_EULER_GAMMA = 0.5772156649015329
_LOG_2 = math.log(2.0)
_LOG_PI = math.log(math.pi)
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)
_HALF_LOG_TWO_OVER_PI = 0.5 * math.log(2.0 / math.pi)


# --- Shared pieces of the families ---------------------------------------------------------------


def _single_parameter(name: str, value: Array, owner: str) -> tuple[Any, Array]:
    """One parameter as a float array, and its namespace."""
    xp, arrays = float_parameters({name: value}, owner)
    return xp, arrays[name]


def _two_parameters(
    first: tuple[str, Array], second: tuple[str, Array], owner: str
) -> tuple[Any, Array, Array, tuple[int, ...]]:
    """Two parameters as broadcast float arrays of one namespace, and the batch shape."""
    xp, arrays = float_parameters(dict([first, second]), owner)
    arrays, batch = broadcast_parameters(arrays, owner, xp=xp)
    return xp, arrays[first[0]], arrays[second[0]], batch


def _gammaincc(a: Array, x: Array, *, xp: Any) -> Array:
    r"""The regularised upper incomplete gamma function :math:`Q(a, x) = 1 - P(a, x)`."""
    return _elementwise("gammaincc", a, x, xp=xp)


def _ndtr(x: Array, *, xp: Any) -> Array:
    r"""The standard normal CDF :math:`\Phi(x) = \tfrac12\operatorname{erfc}(-x/\sqrt2)`."""
    return 0.5 * erfc(-x / math.sqrt(2.0), xp=xp)


def _off_half_line(p: Distribution) -> Array:
    """Where P's support is not inside [0, inf) (a positive Q's cross-entropy is +inf there)."""
    return outside_support(p, 0.0, math.inf)


def _cross_entropy_or_inf(infinite: Array, value: Array, xp: Any) -> Array:
    """+inf where ``infinite`` (P's support not inside Q's, or a statistic of P infinite).

    ``value`` must have been computed from the safe (finite) statistics, so that
    the gradients of the finite entries stay finite.
    """
    return where_finite(infinite, xp.where(infinite, xp.zeros_like(value), value), xp)


def _log_term(coefficient: Array, expected_log: Array, xp: Any) -> Array:
    """``coefficient * E log X`` from the finite part of E log X (see :func:`finite_part`).

    A plain product: the caller marks the entries with an infinite E log X
    (and a non-zero coefficient) as +inf, so the finite entries keep their
    gradient in the coefficient, also at coefficient 0 (a Gamma with k = 1).
    """
    del xp
    return coefficient * expected_log


def _second_moment(p: Distribution, xp: Any) -> tuple[Array, Array]:
    r""":math:`E_P X^2 = \operatorname{Var}_P X + (E_P X)^2` made safe, and where it is infinite."""
    mean, mean_infinite = finite_part(p.mean, xp)
    variance, variance_infinite = finite_part(p.variance, xp)
    return variance + mean * mean, mean_infinite | variance_infinite


def variance_of_log(p: Distribution) -> Array:
    r"""The variance of log X under P, from its ``_variance_of_log`` or ``_expected_log_square``.

    The second form, :math:`E(\log X)^2 - (E\log X)^2`, serves families that
    only offer :math:`E(\log X)^2`.
    """
    own = getattr(p, "_variance_of_log", None)
    if own is not None:
        return own()
    expected_log = p._expected_log()
    return p._expected_log_square() - expected_log * expected_log


class Gamma(Distribution):
    r"""The gamma distribution with shape :math:`k` and rate :math:`\lambda`.

    .. math::

        p(x) = \frac{\lambda^k}{\Gamma(k)} x^{k - 1} e^{-\lambda x}, \qquad x > 0

    Args:
        concentration: the shape :math:`k > 0`.
        rate: the rate :math:`\lambda > 0` (1 / scale).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> float(D.Gamma(2.0, 4.0).mean)
        0.5
    """

    arg_constraints = {"concentration": positive, "rate": positive}
    has_rsample = True
    support_lower = 0.0

    def __init__(self, concentration: Array, rate: Array, *, validate: bool | None = None) -> None:
        xp, arrays = float_parameters({"concentration": concentration, "rate": rate}, "Gamma")
        arrays, batch = broadcast_parameters(arrays, "Gamma", xp=xp)
        self.concentration, self.rate = arrays["concentration"], arrays["rate"]
        super().__init__(xp=xp, batch_shape=batch, dtype=self.rate.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value`` (-inf at and below 0, except x = 0 with k = 1)."""
        xp = self.xp
        x = self._value(value)
        k, rate = self.concentration, self.rate
        inside = x > 0
        safe = xp.where(inside, x, xp.ones_like(x))
        value = k * xp.log(rate) + (k - 1.0) * xp.log(safe) - rate * safe - gammaln(k, xp=xp)
        infinity = xp.full_like(k, math.inf)
        at_zero = xp.where(k == 1.0, xp.log(rate), xp.where(k < 1.0, infinity, -infinity))
        return xp.where(inside, value, xp.where(x == 0, at_zero, -math.inf))

    def entropy(self) -> Array:
        r""":math:`k - \log\lambda + \log\Gamma(k) + (1 - k)\psi(k)`."""
        xp, k = self.xp, self.concentration
        return k - xp.log(self.rate) + gammaln(k, xp=xp) + (1.0 - k) * digamma(k, xp=xp)

    @property
    def mean(self) -> Array:
        r""":math:`k / \lambda`."""
        return self.concentration / self.rate

    @property
    def variance(self) -> Array:
        r""":math:`k / \lambda^2`."""
        return self.concentration / (self.rate * self.rate)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        k = xp.broadcast_to(self.concentration, self._extended_shape(shape))
        return standard_gamma(rng, k, xp=xp) / self.rate

    def _expected_log(self) -> Array:
        return digamma(self.concentration, xp=self.xp) - self.xp.log(self.rate)

    def _variance_of_log(self) -> Array:
        r""":math:`\operatorname{Var}\log X = \psi_1(k)`."""
        return trigamma(self.concentration, xp=self.xp)

    def _expected_power(self, r: Array | float) -> Array:
        r""":math:`E X^r = \Gamma(k + r) / (\Gamma(k) \lambda^r)`, +inf for r <= -k."""
        xp, k = self.xp, self.concentration
        finite = k + r > 0
        safe = xp.where(finite, k + r, xp.ones_like(k))
        value = xp.exp(gammaln(safe, xp=xp) - gammaln(k, xp=xp) - r * xp.log(self.rate))
        return where_finite(~finite, value, xp)

    def _mgf(self, t: Array) -> Array:
        xp = self.xp
        finite = t < self.rate
        safe = xp.where(finite, self.rate - t, self.rate)
        return where_finite(~finite, xp.exp(self.concentration * xp.log(self.rate / safe)), xp)

    def _log_mgf(self, t: Array) -> Array:
        r""":math:`\log E e^{tX} = k\log(\lambda / (\lambda - t))` for :math:`t < \lambda`."""
        xp = self.xp
        finite = t < self.rate
        safe = xp.where(finite, self.rate - t, self.rate)
        return where_finite(~finite, self.concentration * (xp.log(self.rate) - xp.log(safe)), xp)

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m| = E X - m + 2[m P(k, \lambda m) - (k/\lambda) P(k + 1, \lambda m)]`."""
        xp, k, rate = self.xp, self.concentration, self.rate
        m_pos = xp.maximum(m, xp.zeros_like(m))
        below = m_pos * gammainc(k, rate * m_pos, xp=xp) - k / rate * gammainc(
            k + 1.0, rate * m_pos, xp=xp
        )
        return k / rate - m + 2.0 * below

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r""":math:`-E_P\log q = -k\log\lambda + \log\Gamma(k) - (k-1)E_P\log X + \lambda E_P X`."""
        xp, k, rate = self.xp, self.concentration, self.rate
        off = outside_support(p, 0.0, math.inf)
        mean, mean_infinite = finite_part(p.mean, xp)
        expected_log, log_infinite = finite_part(p._expected_log(), xp)
        log_term = _log_term(k - 1.0, expected_log, xp)
        value = -k * xp.log(rate) + gammaln(k, xp=xp) - log_term + rate * mean
        infinite = off | mean_infinite | (log_infinite & (k != 1.0))
        return _cross_entropy_or_inf(infinite, value, xp)


class Exponential(Distribution):
    r"""The exponential distribution: :math:`p(x) = \lambda e^{-\lambda x}`, :math:`x \ge 0`.

    Args:
        rate: the rate :math:`\lambda > 0` (1 / mean).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> float(D.Exponential(2.0).entropy())  # 1 - log 2
        0.3068528194400547
    """

    arg_constraints = {"rate": positive}
    has_rsample = True
    support_lower = 0.0

    def __init__(self, rate: Array, *, validate: bool | None = None) -> None:
        xp, arrays = float_parameters({"rate": rate}, "Exponential")
        self.rate = arrays["rate"]
        super().__init__(
            xp=xp, batch_shape=tuple(self.rate.shape), dtype=self.rate.dtype, validate=validate
        )
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value`` (-inf below 0)."""
        xp = self.xp
        x = self._value(value)
        inside = x >= 0
        safe = xp.where(inside, x, xp.zeros_like(x))
        return xp.where(inside, xp.log(self.rate) - self.rate * safe, -math.inf)

    def entropy(self) -> Array:
        r""":math:`1 - \log\lambda`."""
        return 1.0 - self.xp.log(self.rate)

    @property
    def mean(self) -> Array:
        r""":math:`1 / \lambda`."""
        return 1.0 / self.rate

    @property
    def variance(self) -> Array:
        r""":math:`1 / \lambda^2`."""
        return 1.0 / (self.rate * self.rate)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        u = standard_uniform(rng, self._extended_shape(shape), xp=self.xp, like=self.rate)
        return -self.xp.log(u) / self.rate

    def _as_gamma(self) -> Gamma:
        return Gamma(self.xp.ones_like(self.rate), self.rate, validate=False)

    def _expected_log(self) -> Array:
        return -_EULER_GAMMA - self.xp.log(self.rate)

    def _variance_of_log(self) -> Array:
        r""":math:`\operatorname{Var}\log X = \pi^2/6`."""
        return self.xp.full_like(self.rate, math.pi**2 / 6.0)

    def _expected_power(self, r: Array | float) -> Array:
        return self._as_gamma()._expected_power(r)

    def _mgf(self, t: Array) -> Array:
        return self._as_gamma()._mgf(t)

    def _log_mgf(self, t: Array) -> Array:
        return self._as_gamma()._log_mgf(t)

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m| = 1/\lambda - m + 2(m - (1 - e^{-\lambda m})/\lambda)` for m > 0."""
        xp = self.xp
        m_pos = xp.maximum(m, xp.zeros_like(m))
        return 1.0 / self.rate - m + 2.0 * (m_pos + xp.expm1(-self.rate * m_pos) / self.rate)

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r""":math:`-E_P \log q = -\log\lambda + \lambda E_P X`."""
        xp = self.xp
        off = outside_support(p, 0.0, math.inf)
        mean, mean_infinite = finite_part(p.mean, xp)
        value = -xp.log(self.rate) + self.rate * mean
        return _cross_entropy_or_inf(off | mean_infinite, value, xp)


class HalfNormal(Distribution):
    r"""The half-normal distribution: :math:`|Y|` for :math:`Y \sim \mathcal N(0, \sigma^2)`.

    .. math::

        p(x) = \frac{\sqrt 2}{\sigma\sqrt\pi} \exp\Big(-\frac{x^2}{2\sigma^2}\Big), \qquad x \ge 0

    Args:
        scale: the scale :math:`\sigma > 0` of the folded normal.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.HalfNormal(1.0)
        >>> round(float(d.mean), 6)  # sqrt(2 / pi)
        0.797885
        >>> float(d.log_prob(-1.0))
        -inf
    """

    arg_constraints = {"scale": positive}
    has_rsample = True
    support_lower = 0.0

    def __init__(self, scale: Array, *, validate: bool | None = None) -> None:
        xp, self.scale = _single_parameter("scale", scale, "HalfNormal")
        super().__init__(
            xp=xp, batch_shape=tuple(self.scale.shape), dtype=self.scale.dtype, validate=validate
        )
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value`` (-inf below 0)."""
        xp = self.xp
        x = self._value(value)
        inside = x >= 0
        z = xp.where(inside, x, xp.zeros_like(x)) / self.scale
        value = -0.5 * z * z - xp.log(self.scale) + _HALF_LOG_TWO_OVER_PI
        return xp.where(inside, value, -math.inf)

    def entropy(self) -> Array:
        r""":math:`\tfrac12\log(\pi e\sigma^2 / 2)`."""
        return 0.5 * math.log(0.5 * math.pi * math.e) + self.xp.log(self.scale)

    @property
    def mean(self) -> Array:
        r""":math:`\sigma\sqrt{2/\pi}`."""
        return self.scale * math.sqrt(2.0 / math.pi)

    @property
    def variance(self) -> Array:
        r""":math:`\sigma^2(1 - 2/\pi)`."""
        return self.scale * self.scale * (1.0 - 2.0 / math.pi)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        eps = standard_normal(rng, self._extended_shape(shape), xp=self.xp, like=self.scale)
        return self.scale * self.xp.abs(eps)

    def _expected_log(self) -> Array:
        r""":math:`E\log X = \log\sigma - (\gamma_E + \log 2)/2`."""
        return self.xp.log(self.scale) - 0.5 * (_EULER_GAMMA + _LOG_2)

    def _variance_of_log(self) -> Array:
        r""":math:`\operatorname{Var}\log X = \pi^2/8`."""
        return self.xp.full_like(self.scale, math.pi**2 / 8.0)

    def _expected_power(self, r: Array | float) -> Array:
        r""":math:`E X^r = \sigma^r 2^{r/2}\Gamma(\tfrac{r + 1}{2})/\sqrt\pi`, +inf for r <= -1."""
        xp = self.xp
        finite = (xp.zeros_like(self.scale) + r) > -1.0
        safe = xp.where(finite, xp.zeros_like(self.scale) + r, xp.zeros_like(self.scale))
        log_value = safe * (xp.log(self.scale) + 0.5 * _LOG_2) + gammaln(0.5 * (safe + 1.0), xp=xp)
        return where_finite(~finite, xp.exp(log_value - 0.5 * _LOG_PI), xp)

    def _log_mgf(self, t: Array) -> Array:
        r""":math:`\log E e^{tX} = \sigma^2t^2/2 + \log 2 + \log\Phi(\sigma t)`."""
        st = self.scale * t
        return 0.5 * st * st + _LOG_2 + log_ndtr(st, xp=self.xp)

    def _mgf(self, t: Array) -> Array:
        return self.xp.exp(self._log_mgf(t))

    def _expected_abs_dev(self, m: Array) -> Array:
        r"""The mean absolute deviation from ``m``.

        :math:`E|X - m| = E X - m + 2[m\operatorname{erf}(\frac{m}{\sigma\sqrt2})
        - \sigma\sqrt{2/\pi}(1 - e^{-m^2/2\sigma^2})]` for :math:`m > 0`.
        """
        xp = self.xp
        m_pos = xp.maximum(m, xp.zeros_like(m))
        z = m_pos / self.scale
        below = m_pos * erf(z / math.sqrt(2.0), xp=xp) + self.mean * xp.expm1(-0.5 * z * z)
        return self.mean - m + 2.0 * below

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r""":math:`-E_P\log q = \log\sigma - \tfrac12\log(2/\pi) + E_P X^2 / 2\sigma^2`."""
        xp = self.xp
        second, second_infinite = _second_moment(p, xp)
        value = xp.log(self.scale) - _HALF_LOG_TWO_OVER_PI + 0.5 * second / (self.scale**2)
        return _cross_entropy_or_inf(_off_half_line(p) | second_infinite, value, xp)


class LogNormal(Distribution):
    r"""The log-normal distribution: :math:`e^Y` for :math:`Y \sim \mathcal N(\mu, \sigma^2)`.

    .. math::

        p(x) = \frac{1}{x\sigma\sqrt{2\pi}} \exp\Big(-\frac{(\log x - \mu)^2}{2\sigma^2}\Big),
        \qquad x > 0

    Args:
        loc: the mean :math:`\mu` of :math:`\log X`.
        scale: the standard deviation :math:`\sigma > 0` of :math:`\log X`.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> import math
        >>> from kldiv import distributions as D
        >>> d = D.LogNormal(0.0, 1.0)
        >>> math.isclose(float(d.mean), math.exp(0.5))
        True
        >>> round(float(d.log_prob(1.0)), 6)  # -log sqrt(2 pi)
        -0.918939
    """

    arg_constraints = {"loc": real, "scale": positive}
    has_rsample = True
    support_lower = 0.0

    def __init__(self, loc: Array, scale: Array, *, validate: bool | None = None) -> None:
        xp, self.loc, self.scale, batch = _two_parameters(
            ("loc", loc), ("scale", scale), "LogNormal"
        )
        super().__init__(xp=xp, batch_shape=batch, dtype=self.loc.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value`` (-inf at and below 0)."""
        xp = self.xp
        x = self._value(value)
        inside = x > 0
        log_x = xp.log(xp.where(inside, x, xp.ones_like(x)))
        z = (log_x - self.loc) / self.scale
        value = -0.5 * z * z - log_x - xp.log(self.scale) - _HALF_LOG_TWO_PI
        return xp.where(inside, value, -math.inf)

    def entropy(self) -> Array:
        r""":math:`\mu + \tfrac12\log(2\pi e\sigma^2)`."""
        return self.loc + 0.5 + _HALF_LOG_TWO_PI + self.xp.log(self.scale)

    @property
    def mean(self) -> Array:
        r""":math:`e^{\mu + \sigma^2/2}`."""
        return self.xp.exp(self.loc + 0.5 * self.scale * self.scale)

    @property
    def variance(self) -> Array:
        r""":math:`(e^{\sigma^2} - 1)e^{2\mu + \sigma^2}`."""
        s2 = self.scale * self.scale
        return self.xp.expm1(s2) * self.xp.exp(2.0 * self.loc + s2)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        eps = standard_normal(rng, self._extended_shape(shape), xp=self.xp, like=self.loc)
        return self.xp.exp(self.loc + self.scale * eps)

    def _expected_log(self) -> Array:
        r""":math:`E\log X = \mu`."""
        return self.loc

    def _variance_of_log(self) -> Array:
        r""":math:`\operatorname{Var}\log X = \sigma^2`."""
        return self.scale * self.scale

    def _expected_power(self, r: Array | float) -> Array:
        r""":math:`E X^r = e^{r\mu + r^2\sigma^2/2}` (every real r)."""
        return self.xp.exp(r * self.loc + 0.5 * (r * self.scale) ** 2)

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m| = E X - m + 2[m\Phi(d) - E X\,\Phi(d - \sigma)]` for m > 0.

        Here :math:`d = (\log m - \mu)/\sigma`.
        """
        xp = self.xp
        positive_m = m > 0
        safe_m = xp.where(positive_m, m, xp.ones_like(m))
        d = (xp.log(safe_m) - self.loc) / self.scale
        below = safe_m * _ndtr(d, xp=xp) - self.mean * _ndtr(d - self.scale, xp=xp)
        below = xp.where(positive_m, below, xp.zeros_like(below))
        return self.mean - m + 2.0 * below

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r"""The cross-entropy H(P, Q) of this Q, from P's log-moments.

        :math:`-E_P\log q = E_P\log X + \log\sigma\sqrt{2\pi}
        + [\operatorname{Var}_P\log X + (E_P\log X - \mu)^2] / 2\sigma^2`.
        """
        xp = self.xp
        expected_log, log_infinite = finite_part(p._expected_log(), xp)
        log_variance, variance_infinite = finite_part(variance_of_log(p), xp)
        diff = expected_log - self.loc
        spread = (log_variance + diff * diff) / (2.0 * self.scale * self.scale)
        value = expected_log + xp.log(self.scale) + _HALF_LOG_TWO_PI + spread
        infinite = _off_half_line(p) | log_infinite | variance_infinite
        return _cross_entropy_or_inf(infinite, value, xp)


class Chi2(Gamma):
    r"""The chi-squared distribution with :math:`\nu` degrees of freedom: Gamma(:math:`\nu/2`, 1/2).

    .. math::

        p(x) = \frac{x^{\nu/2 - 1} e^{-x/2}}{2^{\nu/2}\Gamma(\nu/2)}, \qquad x > 0

    A subclass of :class:`Gamma` (as in ``torch.distributions``): every pair
    registered for Gamma applies, unless a more specific Chi2 pair is registered.

    Args:
        df: the degrees of freedom :math:`\nu > 0` (need not be whole).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Chi2(3.0)
        >>> float(d.mean), float(d.variance)
        (3.0, 6.0)
    """

    arg_constraints = {"df": positive}

    def __init__(self, df: Array, *, validate: bool | None = None) -> None:
        xp, self.df = _single_parameter("df", df, "Chi2")
        self.concentration = 0.5 * self.df
        self.rate = xp.full_like(self.df, 0.5)
        Distribution.__init__(
            self, xp=xp, batch_shape=tuple(self.df.shape), dtype=self.df.dtype, validate=validate
        )
        self._check_parameters()


class Chi(Distribution):
    r"""The chi distribution with :math:`\nu` degrees of freedom: the norm of :math:`\nu` normals.

    .. math::

        p(x) = \frac{x^{\nu - 1} e^{-x^2/2}}{2^{\nu/2 - 1}\Gamma(\nu/2)}, \qquad x > 0

    Args:
        df: the degrees of freedom :math:`\nu > 0` (need not be whole).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> import math
        >>> from kldiv import distributions as D
        >>> d = D.Chi(2.0)  # the Rayleigh distribution
        >>> math.isclose(float(d.mean), math.sqrt(math.pi / 2))
        True
    """

    arg_constraints = {"df": positive}
    has_rsample = True
    support_lower = 0.0

    def __init__(self, df: Array, *, validate: bool | None = None) -> None:
        xp, self.df = _single_parameter("df", df, "Chi")
        super().__init__(
            xp=xp, batch_shape=tuple(self.df.shape), dtype=self.df.dtype, validate=validate
        )
        self._check_parameters()

    def _log_normaliser(self) -> Array:
        r""":math:`(\nu/2 - 1)\log 2 + \log\Gamma(\nu/2)`."""
        half = 0.5 * self.df
        return (half - 1.0) * _LOG_2 + gammaln(half, xp=self.xp)

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value`` (-inf below 0; at 0 finite only for df <= 1)."""
        xp, df = self.xp, self.df
        x = self._value(value)
        inside = x > 0
        safe = xp.where(inside, x, xp.ones_like(x))
        value = (df - 1.0) * xp.log(safe) - 0.5 * safe * safe - self._log_normaliser()
        infinity = xp.full_like(df, math.inf)
        at_one = xp.full_like(df, 0.5 * (_LOG_2 - _LOG_PI))
        at_zero = xp.where(df == 1.0, at_one, xp.where(df < 1.0, infinity, -infinity))
        return xp.where(inside, value, xp.where(x == 0, at_zero, -math.inf))

    def entropy(self) -> Array:
        r""":math:`\log\Gamma(\nu/2) + \tfrac12[\nu - \log 2 - (\nu - 1)\psi(\nu/2)]`."""
        xp, df = self.xp, self.df
        half = 0.5 * df
        return gammaln(half, xp=xp) + 0.5 * (df - _LOG_2 - (df - 1.0) * digamma(half, xp=xp))

    @property
    def mean(self) -> Array:
        r""":math:`\sqrt2\,\Gamma(\tfrac{\nu + 1}{2}) / \Gamma(\tfrac{\nu}{2})`."""
        return self._expected_power(1.0)

    @property
    def variance(self) -> Array:
        r""":math:`\nu - (E X)^2`."""
        mean = self.mean
        return self.df - mean * mean

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        half = xp.broadcast_to(0.5 * self.df, self._extended_shape(shape))
        return xp.sqrt(2.0 * standard_gamma(rng, half, xp=xp))

    def _expected_log(self) -> Array:
        r""":math:`E\log X = (\psi(\nu/2) + \log 2)/2`."""
        return 0.5 * (digamma(0.5 * self.df, xp=self.xp) + _LOG_2)

    def _variance_of_log(self) -> Array:
        r""":math:`\operatorname{Var}\log X = \psi_1(\nu/2)/4`."""
        return 0.25 * trigamma(0.5 * self.df, xp=self.xp)

    def _expected_power(self, r: Array | float) -> Array:
        r""":math:`E X^r = 2^{r/2}\Gamma((\nu + r)/2)/\Gamma(\nu/2)`, +inf for r <= -nu."""
        xp, df = self.xp, self.df
        finite = df + r > 0
        safe_r = xp.where(finite, df + r, df + 1.0) - df
        log_value = 0.5 * safe_r * _LOG_2 + gammaln(0.5 * (df + safe_r), xp=xp)
        return where_finite(~finite, xp.exp(log_value - gammaln(0.5 * df, xp=xp)), xp)

    def _expected_abs_dev(self, m: Array) -> Array:
        r"""The mean absolute deviation from ``m``.

        :math:`E|X - m| = E X - m + 2[m P(\tfrac{\nu}{2}, \tfrac{m^2}{2})
        - E X\,P(\tfrac{\nu + 1}{2}, \tfrac{m^2}{2})]` for m > 0 (P: regularised lower gamma).
        """
        xp, half = self.xp, 0.5 * self.df
        m_pos = xp.maximum(m, xp.zeros_like(m))
        y = 0.5 * m_pos * m_pos
        mean = self.mean
        below = m_pos * gammainc(half, y, xp=xp) - mean * gammainc(half + 0.5, y, xp=xp)
        return mean - m + 2.0 * below

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r"""The cross-entropy H(P, Q) of this Q, from P's E log X and E X^2.

        :math:`-E_P\log q = (\nu/2 - 1)\log 2 + \log\Gamma(\nu/2) - (\nu - 1)E_P\log X
        + E_P X^2/2`.
        """
        xp, df = self.xp, self.df
        second, second_infinite = _second_moment(p, xp)
        expected_log, log_infinite = finite_part(p._expected_log(), xp)
        log_term = _log_term(df - 1.0, expected_log, xp)
        value = self._log_normaliser() - log_term + 0.5 * second
        infinite = _off_half_line(p) | second_infinite | (log_infinite & (df != 1.0))
        return _cross_entropy_or_inf(infinite, value, xp)


class Weibull(Distribution):
    r"""The Weibull distribution with scale :math:`\lambda` and shape (concentration) :math:`k`.

    .. math::

        p(x) = \frac{k}{\lambda}\Big(\frac{x}{\lambda}\Big)^{k - 1} e^{-(x/\lambda)^k},
        \qquad x \ge 0

    Args:
        scale: the scale :math:`\lambda > 0`.
        concentration: the shape :math:`k > 0` (``torch.distributions`` order: scale first).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Weibull(2.0, 1.0)  # Exponential with mean 2
        >>> float(d.mean)
        2.0
    """

    arg_constraints = {"scale": positive, "concentration": positive}
    has_rsample = True
    support_lower = 0.0

    def __init__(self, scale: Array, concentration: Array, *, validate: bool | None = None) -> None:
        xp, self.scale, self.concentration, batch = _two_parameters(
            ("scale", scale), ("concentration", concentration), "Weibull"
        )
        super().__init__(xp=xp, batch_shape=batch, dtype=self.scale.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value`` (-inf below 0; at 0 finite only for k <= 1)."""
        xp, k = self.xp, self.concentration
        x = self._value(value)
        inside = x > 0
        log_z = xp.log(xp.where(inside, x, xp.ones_like(x))) - xp.log(self.scale)
        value = xp.log(k) - xp.log(self.scale) + (k - 1.0) * log_z - xp.exp(k * log_z)
        infinity = xp.full_like(k, math.inf)
        at_zero = xp.where(k == 1.0, -xp.log(self.scale), xp.where(k < 1.0, infinity, -infinity))
        return xp.where(inside, value, xp.where(x == 0, at_zero, -math.inf))

    def entropy(self) -> Array:
        r""":math:`\gamma_E(1 - 1/k) + \log(\lambda/k) + 1`."""
        xp, k = self.xp, self.concentration
        return _EULER_GAMMA * (1.0 - 1.0 / k) + xp.log(self.scale) - xp.log(k) + 1.0

    @property
    def mean(self) -> Array:
        r""":math:`\lambda\Gamma(1 + 1/k)`."""
        return self.scale * self.xp.exp(gammaln(1.0 + 1.0 / self.concentration, xp=self.xp))

    @property
    def variance(self) -> Array:
        r""":math:`\lambda^2[\Gamma(1 + 2/k) - \Gamma(1 + 1/k)^2]`."""
        xp, k = self.xp, self.concentration
        first = gammaln(1.0 + 1.0 / k, xp=xp)
        second = gammaln(1.0 + 2.0 / k, xp=xp)
        return self.scale * self.scale * xp.exp(second) * -xp.expm1(2.0 * first - second)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        # u in [tiny, 1): -log u > 0.
        xp = self.xp
        u = standard_uniform(rng, self._extended_shape(shape), xp=xp, like=self.scale)
        return self.scale * xp.exp(xp.log(-xp.log(u)) / self.concentration)

    def _expected_log(self) -> Array:
        r""":math:`E\log X = \log\lambda - \gamma_E/k`."""
        return self.xp.log(self.scale) - _EULER_GAMMA / self.concentration

    def _variance_of_log(self) -> Array:
        r""":math:`\operatorname{Var}\log X = \pi^2/6k^2`."""
        return (math.pi**2 / 6.0) / (self.concentration * self.concentration)

    def _expected_power(self, r: Array | float) -> Array:
        r""":math:`E X^r = \lambda^r\Gamma(1 + r/k)`, +inf for r <= -k."""
        xp, k = self.xp, self.concentration
        finite = k + r > 0
        safe_r = xp.where(finite, k + r, k + 1.0) - k
        log_value = safe_r * xp.log(self.scale) + gammaln(1.0 + safe_r / k, xp=xp)
        return where_finite(~finite, xp.exp(log_value), xp)

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m| = E X - m + 2[m F(m) - E X\,P(1 + 1/k, (m/\lambda)^k)]` for m > 0.

        :math:`F(m) = 1 - e^{-(m/\lambda)^k}`; P is the regularised lower gamma function.
        """
        xp, k = self.xp, self.concentration
        m_pos = xp.maximum(m, xp.zeros_like(m))
        y = (m_pos / self.scale) ** k
        mean = self.mean
        below = -m_pos * xp.expm1(-y) - mean * gammainc(1.0 + 1.0 / k, y, xp=xp)
        return mean - m + 2.0 * below

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r""":math:`-E_P\log q = -\log k + k\log\lambda - (k - 1)E_P\log X + E_P X^k/\lambda^k`."""
        xp, k = self.xp, self.concentration
        log_scale = xp.log(self.scale)
        expected_log, log_infinite = finite_part(p._expected_log(), xp)
        power, power_infinite = finite_part(p._expected_power(k), xp)
        log_term = _log_term(k - 1.0, expected_log, xp)
        value = -xp.log(k) + k * log_scale - log_term + power * xp.exp(-k * log_scale)
        infinite = _off_half_line(p) | power_infinite | (log_infinite & (k != 1.0))
        return _cross_entropy_or_inf(infinite, value, xp)


class InverseGamma(Distribution):
    r"""The inverse gamma distribution: :math:`1/Y` for :math:`Y \sim` Gamma(:math:`\alpha, \beta`).

    .. math::

        p(x) = \frac{\beta^\alpha}{\Gamma(\alpha)} x^{-\alpha - 1} e^{-\beta/x}, \qquad x > 0

    Mean (:math:`\alpha > 1`) and variance (:math:`\alpha > 2`) are +inf where they do not exist.

    Args:
        concentration: the shape :math:`\alpha > 0`.
        rate: the scale :math:`\beta > 0` (the rate of the gamma distribution of 1/X).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> float(D.InverseGamma(3.0, 4.0).mean)
        2.0
        >>> float(D.InverseGamma(1.0, 4.0).mean)
        inf
    """

    arg_constraints = {"concentration": positive, "rate": positive}
    has_rsample = True
    support_lower = 0.0

    def __init__(self, concentration: Array, rate: Array, *, validate: bool | None = None) -> None:
        xp, self.concentration, self.rate, batch = _two_parameters(
            ("concentration", concentration), ("rate", rate), "InverseGamma"
        )
        super().__init__(xp=xp, batch_shape=batch, dtype=self.rate.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value`` (-inf at and below 0)."""
        xp, a, b = self.xp, self.concentration, self.rate
        x = self._value(value)
        inside = x > 0
        safe = xp.where(inside, x, xp.ones_like(x))
        value = a * xp.log(b) - gammaln(a, xp=xp) - (a + 1.0) * xp.log(safe) - b / safe
        return xp.where(inside, value, -math.inf)

    def entropy(self) -> Array:
        r""":math:`\alpha + \log\beta + \log\Gamma(\alpha) - (1 + \alpha)\psi(\alpha)`."""
        xp, a = self.xp, self.concentration
        return a + xp.log(self.rate) + gammaln(a, xp=xp) - (1.0 + a) * digamma(a, xp=xp)

    @property
    def mean(self) -> Array:
        r""":math:`\beta/(\alpha - 1)` for :math:`\alpha > 1`, else +inf."""
        return self._expected_power(1.0)

    @property
    def variance(self) -> Array:
        r""":math:`\beta^2/((\alpha - 1)^2(\alpha - 2))` for :math:`\alpha > 2`, else +inf."""
        xp, a = self.xp, self.concentration
        finite = a > 2.0
        safe = xp.where(finite, a, xp.full_like(a, 3.0))
        value = self.rate * self.rate / ((safe - 1.0) ** 2 * (safe - 2.0))
        return where_finite(~finite, value, xp)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        a = xp.broadcast_to(self.concentration, self._extended_shape(shape))
        tiny = float(xp.finfo(self.dtype).smallest_normal)
        return self.rate / xp.maximum(standard_gamma(rng, a, xp=xp), tiny)

    def _expected_log(self) -> Array:
        r""":math:`E\log X = \log\beta - \psi(\alpha)`."""
        return self.xp.log(self.rate) - digamma(self.concentration, xp=self.xp)

    def _variance_of_log(self) -> Array:
        r""":math:`\operatorname{Var}\log X = \psi_1(\alpha)`."""
        return trigamma(self.concentration, xp=self.xp)

    def _expected_power(self, r: Array | float) -> Array:
        r""":math:`E X^r = \beta^r\Gamma(\alpha - r)/\Gamma(\alpha)`, +inf for r >= alpha."""
        xp, a = self.xp, self.concentration
        finite = a - r > 0
        safe_r = a - xp.where(finite, a - r, a + 1.0)
        log_value = safe_r * xp.log(self.rate) + gammaln(a - safe_r, xp=xp) - gammaln(a, xp=xp)
        return where_finite(~finite, xp.exp(log_value), xp)

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m| = E X - m + 2[m\,Q(\alpha, \beta/m) - E X\,Q(\alpha - 1, \beta/m)]`.

        For :math:`m > 0` and :math:`\alpha > 1` (Q: regularised upper gamma
        function); +inf for :math:`\alpha \le 1`.
        """
        xp, a = self.xp, self.concentration
        finite = a > 1.0
        safe_a = xp.where(finite, a, xp.full_like(a, 2.0))
        mean = self.rate / (safe_a - 1.0)
        positive_m = m > 0
        safe_m = xp.where(positive_m, m, xp.ones_like(m))
        y = self.rate / safe_m
        below = safe_m * _gammaincc(safe_a, y, xp=xp) - mean * _gammaincc(safe_a - 1.0, y, xp=xp)
        below = xp.where(positive_m, below, xp.zeros_like(below))
        return where_finite(~finite, mean - m + 2.0 * below, xp)

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r"""The cross-entropy H(P, Q) of this Q, from P's E log X and E 1/X.

        :math:`-E_P\log q = -\alpha\log\beta + \log\Gamma(\alpha) + (\alpha + 1)E_P\log X
        + \beta E_P[1/X]`.
        """
        xp, a, b = self.xp, self.concentration, self.rate
        expected_log, log_infinite = finite_part(p._expected_log(), xp)
        reciprocal, reciprocal_infinite = finite_part(p._expected_power(-1.0), xp)
        value = -a * xp.log(b) + gammaln(a, xp=xp) + (a + 1.0) * expected_log + b * reciprocal
        infinite = _off_half_line(p) | log_infinite | reciprocal_infinite
        return _cross_entropy_or_inf(infinite, value, xp)


class Pareto(Distribution):
    r"""The Pareto (type I) distribution with scale :math:`s` and tail index :math:`\alpha`.

    .. math::

        p(x) = \frac{\alpha s^\alpha}{x^{\alpha + 1}}, \qquad x \ge s

    Mean (:math:`\alpha > 1`) and variance (:math:`\alpha > 2`) are +inf where they do not exist.

    Args:
        scale: the lower end of the support :math:`s > 0`.
        alpha: the tail index :math:`\alpha > 0`.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Pareto(1.0, 3.0)
        >>> float(d.mean)
        1.5
        >>> float(d.log_prob(0.5))
        -inf
    """

    arg_constraints = {"scale": positive, "alpha": positive}
    has_rsample = True

    def __init__(self, scale: Array, alpha: Array, *, validate: bool | None = None) -> None:
        xp, self.scale, self.alpha, batch = _two_parameters(
            ("scale", scale), ("alpha", alpha), "Pareto"
        )
        super().__init__(xp=xp, batch_shape=batch, dtype=self.scale.dtype, validate=validate)
        self._check_parameters()

    def support_bounds(self) -> tuple[Array, Array]:
        """``(scale, inf)``."""
        return self.scale, self.xp.full_like(self.scale, math.inf)

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value`` (-inf below ``scale``)."""
        xp, a = self.xp, self.alpha
        x = self._value(value)
        inside = x >= self.scale
        safe = xp.where(inside, x, xp.ones_like(x) * self.scale)
        value = xp.log(a) + a * xp.log(self.scale) - (a + 1.0) * xp.log(safe)
        return xp.where(inside, value, -math.inf)

    def entropy(self) -> Array:
        r""":math:`\log(s/\alpha) + 1 + 1/\alpha`."""
        xp, a = self.xp, self.alpha
        return xp.log(self.scale) - xp.log(a) + 1.0 + 1.0 / a

    @property
    def mean(self) -> Array:
        r""":math:`\alpha s/(\alpha - 1)` for :math:`\alpha > 1`, else +inf."""
        return self._expected_power(1.0)

    @property
    def variance(self) -> Array:
        r""":math:`s^2\alpha/((\alpha - 1)^2(\alpha - 2))` for :math:`\alpha > 2`, else +inf."""
        xp, a = self.xp, self.alpha
        finite = a > 2.0
        safe = xp.where(finite, a, xp.full_like(a, 3.0))
        value = self.scale * self.scale * safe / ((safe - 1.0) ** 2 * (safe - 2.0))
        return where_finite(~finite, value, xp)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        # s * exp(E / alpha), E = -log u ~ Exp(1).
        xp = self.xp
        u = standard_uniform(rng, self._extended_shape(shape), xp=xp, like=self.scale)
        return self.scale * xp.exp(-xp.log(u) / self.alpha)

    def _expected_log(self) -> Array:
        r""":math:`E\log X = \log s + 1/\alpha`."""
        return self.xp.log(self.scale) + 1.0 / self.alpha

    def _variance_of_log(self) -> Array:
        r""":math:`\operatorname{Var}\log X = 1/\alpha^2`."""
        return 1.0 / (self.alpha * self.alpha)

    def _expected_power(self, r: Array | float) -> Array:
        r""":math:`E X^r = \alpha s^r/(\alpha - r)`, +inf for r >= alpha."""
        xp, a = self.xp, self.alpha
        finite = a - r > 0
        safe_gap = xp.where(finite, a - r, xp.ones_like(a))
        safe_r = a - safe_gap
        return where_finite(~finite, a * xp.exp(safe_r * xp.log(self.scale)) / safe_gap, xp)

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m| = E X - m + 2[(m - s) - s(1 - (m/s)^{1 - \alpha})/(\alpha - 1)]`.

        For :math:`m > s` and :math:`\alpha > 1`; :math:`E X - m` for :math:`m \le s`;
        +inf for :math:`\alpha \le 1`.
        """
        xp, a, s = self.xp, self.alpha, self.scale
        finite = a > 1.0
        safe_a = xp.where(finite, a, xp.full_like(a, 2.0))
        mean = safe_a * s / (safe_a - 1.0)
        log_ratio = xp.log(xp.maximum(m, s)) - xp.log(s)
        tail = -s * xp.expm1((1.0 - safe_a) * log_ratio) / (safe_a - 1.0)
        below = s * xp.expm1(log_ratio) - tail
        return where_finite(~finite, mean - m + 2.0 * below, xp)

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r""":math:`-E_P\log q = -\log\alpha - \alpha\log s + (\alpha + 1)E_P\log X`.

        +inf where P's support is not inside :math:`[s, \infty)`.
        """
        xp, a = self.xp, self.alpha
        off = outside_support(p, self.scale, math.inf)
        expected_log, log_infinite = finite_part(p._expected_log(), xp)
        value = -xp.log(a) - a * xp.log(self.scale) + (a + 1.0) * expected_log
        return _cross_entropy_or_inf(off | log_infinite, value, xp)


class HalfCauchy(Distribution):
    r"""The half-Cauchy distribution: :math:`|Y|` for :math:`Y \sim` Cauchy(0, :math:`\sigma`).

    .. math::

        p(x) = \frac{2}{\pi\sigma(1 + (x/\sigma)^2)}, \qquad x \ge 0

    Mean and variance are +inf (as in SciPy and ``torch.distributions``).

    Args:
        scale: the scale :math:`\sigma > 0` (also the median).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> import math
        >>> from kldiv import distributions as D
        >>> d = D.HalfCauchy(1.0)
        >>> math.isclose(float(d.entropy()), math.log(2 * math.pi))
        True
    """

    arg_constraints = {"scale": positive}
    has_rsample = True
    support_lower = 0.0

    def __init__(self, scale: Array, *, validate: bool | None = None) -> None:
        xp, self.scale = _single_parameter("scale", scale, "HalfCauchy")
        super().__init__(
            xp=xp, batch_shape=tuple(self.scale.shape), dtype=self.scale.dtype, validate=validate
        )
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value`` (-inf below 0)."""
        xp = self.xp
        x = self._value(value)
        inside = x >= 0
        z = xp.where(inside, x, xp.zeros_like(x)) / self.scale
        value = _LOG_2 - _LOG_PI - xp.log(self.scale) - xp.log1p(z * z)
        return xp.where(inside, value, -math.inf)

    def entropy(self) -> Array:
        r""":math:`\log 2\pi\sigma`."""
        return math.log(2.0 * math.pi) + self.xp.log(self.scale)

    @property
    def mean(self) -> Array:
        """+inf."""
        return self.xp.full_like(self.scale, math.inf)

    @property
    def variance(self) -> Array:
        """+inf."""
        return self.xp.full_like(self.scale, math.inf)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        u = standard_uniform(rng, self._extended_shape(shape), xp=xp, like=self.scale)
        return self.scale * xp.tan(0.5 * math.pi * u)

    def _expected_log(self) -> Array:
        r""":math:`E\log X = \log\sigma` (:math:`X/\sigma` and :math:`\sigma/X` have one law)."""
        return self.xp.log(self.scale)

    def _variance_of_log(self) -> Array:
        r""":math:`\operatorname{Var}\log X = \pi^2/4`."""
        return self.xp.full_like(self.scale, math.pi**2 / 4.0)

    def _expected_power(self, r: Array | float) -> Array:
        r""":math:`E X^r = \sigma^r/\cos(\pi r/2)` for :math:`|r| < 1`, else +inf."""
        xp = self.xp
        r = xp.zeros_like(self.scale) + r
        finite = xp.abs(r) < 1.0
        safe_r = xp.where(finite, r, xp.zeros_like(r))
        value = xp.exp(safe_r * xp.log(self.scale)) / xp.cos(0.5 * math.pi * safe_r)
        return where_finite(~finite, value, xp)

    def _expected_abs_dev(self, m: Array) -> Array:
        """+inf: the mean does not exist."""
        return self.xp.full_like(self.scale + m, math.inf)
