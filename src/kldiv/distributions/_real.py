"""Distributions on the real line: Normal, Laplace, Cauchy, Gumbel, Moyal, Logistic, StudentT."""

from __future__ import annotations

import math
from typing import Any

from kldiv._special import betaln, digamma, erf, gammaln, softplus
from kldiv.distributions._base import Distribution, broadcast_parameters, float_parameters
from kldiv.distributions._constraints import positive, real
from kldiv.distributions._kl_helpers import where_finite
from kldiv.distributions._random import (
    split_rng,
    standard_gamma,
    standard_normal,
    standard_uniform,
)

__all__ = ["Cauchy", "Gumbel", "Laplace", "Logistic", "Moyal", "Normal", "StudentT"]

Array = Any

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)
_LOG_2 = math.log(2.0)
_EULER_GAMMA = 0.5772156649015329


def finite_part(value: Array, xp: Any) -> tuple[Array, Array]:
    """``value`` with its non-finite entries replaced by 0, and where they were.

    A cross-entropy computed from the safe values and then set to +inf where a
    statistic of P was infinite (or undefined) has finite gradients for its
    finite entries, also with respect to parameters shared across the batch.
    """
    infinite = ~xp.isfinite(value)
    return xp.where(infinite, xp.zeros_like(value), value), infinite


class Normal(Distribution):
    r"""The normal distribution :math:`\mathcal N(\mu, \sigma^2)`.

    .. math::

        p(x) = \frac{1}{\sigma\sqrt{2\pi}} \exp\Big(-\frac{(x - \mu)^2}{2\sigma^2}\Big)

    Args:
        loc: the mean :math:`\mu`, any shape.
        scale: the standard deviation :math:`\sigma > 0`; broadcasts against ``loc``.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Normal(0.0, 2.0)
        >>> round(float(d.log_prob(0.0)), 6)
        -1.612086
        >>> D.Normal([0.0, 1.0], 1.0).batch_shape
        (2,)
    """

    arg_constraints = {"loc": real, "scale": positive}
    has_rsample = True

    def __init__(self, loc: Array, scale: Array, *, validate: bool | None = None) -> None:
        xp, arrays = float_parameters({"loc": loc, "scale": scale}, "Normal")
        arrays, batch = broadcast_parameters(arrays, "Normal", xp=xp)
        self.loc, self.scale = arrays["loc"], arrays["scale"]
        super().__init__(xp=xp, batch_shape=batch, dtype=self.loc.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value``."""
        z = (self._value(value) - self.loc) / self.scale
        return -0.5 * z * z - self.xp.log(self.scale) - _HALF_LOG_TWO_PI

    def entropy(self) -> Array:
        r""":math:`\tfrac12 \log(2\pi e \sigma^2)`."""
        return 0.5 + _HALF_LOG_TWO_PI + self.xp.log(self.scale)

    @property
    def mean(self) -> Array:
        r"""The mean :math:`\mu`."""
        return self.loc

    @property
    def variance(self) -> Array:
        r"""The variance :math:`\sigma^2`."""
        return self.scale * self.scale

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        eps = standard_normal(rng, self._extended_shape(shape), xp=self.xp, like=self.loc)
        return self.loc + self.scale * eps

    # Expectation hooks (used by other families' cross-entropies).

    def _mgf(self, t: Array) -> Array:
        return self.xp.exp(t * self.loc + 0.5 * t * t * self.scale * self.scale)

    def _log_mgf(self, t: Array) -> Array:
        r""":math:`\log E e^{tX} = \mu t + \sigma^2 t^2 / 2` (no overflow for large loc)."""
        return t * self.loc + 0.5 * t * t * self.scale * self.scale

    def _expected_abs_dev(self, m: Array) -> Array:
        r"""The mean absolute deviation from ``m``.

        :math:`E|X - m| = \sigma\sqrt{2/\pi}\,e^{-\delta^2/2\sigma^2}
        + \delta\operatorname{erf}(\delta/\sigma\sqrt2)`, :math:`\delta = \mu - m`.
        """
        xp = self.xp
        delta = self.loc - m
        z = delta / self.scale
        folded = self.scale * math.sqrt(2.0 / math.pi) * xp.exp(-0.5 * z * z)
        return folded + delta * erf(z / math.sqrt(2.0), xp=xp)

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r"""The cross-entropy H(P, Q) of this Q, from P's mean and variance.

        :math:`-E_P \log q = \log\sigma\sqrt{2\pi} + (\mathrm{Var}_P + (E_P X - \mu)^2)/2\sigma^2`.
        """
        xp = self.xp
        mean, mean_infinite = finite_part(p.mean, xp)
        variance, variance_infinite = finite_part(p.variance, xp)
        diff = mean - self.loc
        second = (variance + diff * diff) / (self.scale * self.scale)
        value = xp.log(self.scale) + _HALF_LOG_TWO_PI + 0.5 * second
        return where_finite(mean_infinite | variance_infinite, value, xp)


# --- Shared pieces of the location–scale families below ----------------------------------------


def _loc_scale(loc: Array, scale: Array, owner: str) -> tuple[Any, Array, Array, tuple[int, ...]]:
    """``loc`` and ``scale`` as broadcast float arrays of one namespace, and the batch shape."""
    xp, arrays = float_parameters({"loc": loc, "scale": scale}, owner)
    arrays, batch = broadcast_parameters(arrays, owner, xp=xp)
    return xp, arrays["loc"], arrays["scale"], batch


def _log_mgf(p: Distribution, t: Array) -> Array:
    r""":math:`\log E_P e^{tX}`: P's own ``_log_mgf`` where it has one, else the log of ``_mgf``."""
    own = getattr(p, "_log_mgf", None)
    return own(t) if own is not None else p.xp.log(p._mgf(t))


def _exp_or_inf(x: Array, xp: Any) -> Array:
    """``exp(x)``, +inf past the dtype's range without an overflow warning (and a 0 gradient)."""
    over = x > math.log(float(xp.finfo(x.dtype).max))
    return xp.where(over, math.inf, xp.exp(xp.where(over, xp.zeros_like(x), x)))


def _finite_where(finite: Array, value_on_safe: Array, xp: Any) -> Array:
    """``value_on_safe`` where ``finite``, +inf elsewhere (``value_on_safe`` used safe inputs)."""
    return where_finite(~finite, value_on_safe, xp)


class Laplace(Distribution):
    r"""The Laplace (double exponential) distribution with location :math:`\mu` and scale :math:`b`.

    .. math::

        p(x) = \frac{1}{2b} \exp\Big(-\frac{|x - \mu|}{b}\Big)

    Args:
        loc: the location (mean and median) :math:`\mu`.
        scale: the scale :math:`b > 0`; broadcasts against ``loc``.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Laplace(0.0, 2.0)
        >>> round(float(d.log_prob(1.0)), 6)  # -log 4 - 1/2
        -1.886294
        >>> float(d.variance)
        8.0
    """

    arg_constraints = {"loc": real, "scale": positive}
    has_rsample = True

    def __init__(self, loc: Array, scale: Array, *, validate: bool | None = None) -> None:
        xp, self.loc, self.scale, batch = _loc_scale(loc, scale, "Laplace")
        super().__init__(xp=xp, batch_shape=batch, dtype=self.loc.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value``."""
        xp = self.xp
        return -xp.abs(self._value(value) - self.loc) / self.scale - xp.log(2.0 * self.scale)

    def entropy(self) -> Array:
        r""":math:`1 + \log 2b`."""
        return 1.0 + _LOG_2 + self.xp.log(self.scale)

    @property
    def mean(self) -> Array:
        r"""The mean :math:`\mu`."""
        return self.loc

    @property
    def variance(self) -> Array:
        r""":math:`2b^2`."""
        return 2.0 * self.scale * self.scale

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        # The inverse CDF; u is in [tiny, 1) so both branches' logs are finite.
        xp = self.xp
        u = standard_uniform(rng, self._extended_shape(shape), xp=xp, like=self.loc)
        standard = xp.where(u < 0.5, xp.log(2.0 * u), -xp.log(2.0 - 2.0 * u))
        return self.loc + self.scale * standard

    def _log_mgf(self, t: Array) -> Array:
        r""":math:`\log E e^{tX} = \mu t - \log(1 - b^2 t^2)` for :math:`|t| < 1/b`, else +inf."""
        xp = self.xp
        t = xp.zeros_like(self.scale) + t
        # |t| < 1/b rather than |bt| < 1: t = -1/s from a Gumbel or Moyal Q of the same
        # scale s = b must land on the edge (+inf), which b * (-1/b) can miss by an ulp.
        finite = xp.abs(t) < 1.0 / self.scale
        safe_t = xp.where(finite, t, xp.zeros_like(t))
        safe_bt = self.scale * safe_t
        return _finite_where(finite, self.loc * safe_t - xp.log1p(-safe_bt * safe_bt), xp)

    def _mgf(self, t: Array) -> Array:
        return self.xp.exp(self._log_mgf(t))

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m| = |\mu - m| + b\,e^{-|\mu - m|/b}`."""
        distance = self.xp.abs(self.loc - m)
        return distance + self.scale * self.xp.exp(-distance / self.scale)

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r"""The cross-entropy H(P, Q) of this Q: :math:`\log 2b + E_P|X - \mu| / b`."""
        xp = self.xp
        deviation, infinite = finite_part(p._expected_abs_dev(self.loc), xp)
        return where_finite(infinite, xp.log(2.0 * self.scale) + deviation / self.scale, xp)


class Cauchy(Distribution):
    r"""The Cauchy distribution with location :math:`\mu` and scale :math:`\gamma`.

    .. math::

        p(x) = \frac{1}{\pi\gamma\,(1 + ((x - \mu)/\gamma)^2)}

    Mean and variance do not exist: both are NaN (as in SciPy).

    Args:
        loc: the location (median) :math:`\mu`.
        scale: the half width at half maximum :math:`\gamma > 0`.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> import math
        >>> from kldiv import distributions as D
        >>> d = D.Cauchy(0.0, 1.0)
        >>> math.isclose(float(d.log_prob(0.0)), -math.log(math.pi))
        True
        >>> math.isnan(float(d.mean))
        True
    """

    arg_constraints = {"loc": real, "scale": positive}
    has_rsample = True

    def __init__(self, loc: Array, scale: Array, *, validate: bool | None = None) -> None:
        xp, self.loc, self.scale, batch = _loc_scale(loc, scale, "Cauchy")
        super().__init__(xp=xp, batch_shape=batch, dtype=self.loc.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value``."""
        xp = self.xp
        z = (self._value(value) - self.loc) / self.scale
        return -xp.log1p(z * z) - xp.log(self.scale) - _LOG_PI

    def entropy(self) -> Array:
        r""":math:`\log 4\pi\gamma`."""
        return math.log(4.0 * math.pi) + self.xp.log(self.scale)

    @property
    def mean(self) -> Array:
        """Undefined: NaN."""
        return self.xp.full_like(self.loc, math.nan)

    @property
    def variance(self) -> Array:
        """Undefined: NaN."""
        return self.xp.full_like(self.loc, math.nan)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        u = standard_uniform(rng, self._extended_shape(shape), xp=xp, like=self.loc)
        return self.loc + self.scale * xp.tan(math.pi * (u - 0.5))

    def _mgf(self, t: Array) -> Array:
        """1 at t = 0, +inf elsewhere (heavy tails)."""
        t = self.xp.zeros_like(self.loc) + t
        return where_finite(t != 0, self.xp.ones_like(t), self.xp)

    def _expected_abs_dev(self, m: Array) -> Array:
        """+inf: the mean absolute deviation does not exist."""
        return self.xp.full_like(self.loc + m, math.inf)


class Gumbel(Distribution):
    r"""The Gumbel (type I extreme value) distribution, location :math:`\mu`, scale :math:`\beta`.

    .. math::

        p(x) = \frac{1}{\beta} \exp(-(z + e^{-z})), \qquad z = \frac{x - \mu}{\beta}

    Args:
        loc: the location (mode) :math:`\mu`.
        scale: the scale :math:`\beta > 0`.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Gumbel(0.0, 1.0)
        >>> round(float(d.mean), 6)  # the Euler–Mascheroni constant
        0.577216
        >>> round(float(d.log_prob(0.0)), 6)
        -1.0
    """

    arg_constraints = {"loc": real, "scale": positive}
    has_rsample = True

    def __init__(self, loc: Array, scale: Array, *, validate: bool | None = None) -> None:
        xp, self.loc, self.scale, batch = _loc_scale(loc, scale, "Gumbel")
        super().__init__(xp=xp, batch_shape=batch, dtype=self.loc.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value``."""
        xp = self.xp
        z = (self._value(value) - self.loc) / self.scale
        return -(z + _exp_or_inf(-z, xp)) - xp.log(self.scale)

    def entropy(self) -> Array:
        r""":math:`\log\beta + \gamma_E + 1`."""
        return self.xp.log(self.scale) + _EULER_GAMMA + 1.0

    @property
    def mean(self) -> Array:
        r""":math:`\mu + \beta\gamma_E`."""
        return self.loc + self.scale * _EULER_GAMMA

    @property
    def variance(self) -> Array:
        r""":math:`\pi^2\beta^2 / 6`."""
        return (math.pi**2 / 6.0) * self.scale * self.scale

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        # u in [tiny, 1): -log u > 0, so the outer log is finite.
        xp = self.xp
        u = standard_uniform(rng, self._extended_shape(shape), xp=xp, like=self.loc)
        return self.loc - self.scale * xp.log(-xp.log(u))

    def _log_mgf(self, t: Array) -> Array:
        r""":math:`\log E e^{tX} = \mu t + \log\Gamma(1 - \beta t)` for :math:`\beta t < 1`."""
        xp = self.xp
        finite = self.scale * t < 1.0
        safe_t = xp.where(finite, t, xp.zeros_like(self.scale * t))
        value = self.loc * safe_t + gammaln(1.0 - self.scale * safe_t, xp=xp)
        return _finite_where(finite, value, xp)

    def _mgf(self, t: Array) -> Array:
        return self.xp.exp(self._log_mgf(t))

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r"""The cross-entropy H(P, Q) of this Q, from P's mean and moment generating function.

        :math:`-E_P\log q = \log\beta + (E_P X - \mu)/\beta + e^{\mu/\beta} M_P(-1/\beta)`.
        """
        xp = self.xp
        mean, mean_infinite = finite_part(p.mean, xp)
        log_mgf, mgf_infinite = finite_part(_log_mgf(p, -1.0 / self.scale), xp)
        tail = xp.exp(self.loc / self.scale + log_mgf)
        value = xp.log(self.scale) + (mean - self.loc) / self.scale + tail
        return where_finite(mean_infinite | mgf_infinite, value, xp)


class Moyal(Distribution):
    r"""The Moyal distribution with location :math:`\mu` and scale :math:`\sigma` (as in TFP).

    .. math::

        p(x) = \frac{1}{\sigma\sqrt{2\pi}} \exp\Big(-\frac{z + e^{-z}}{2}\Big),
        \qquad z = \frac{x - \mu}{\sigma}

    Args:
        loc: the location (mode) :math:`\mu`.
        scale: the scale :math:`\sigma > 0`.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Moyal(0.0, 1.0)
        >>> round(float(d.mean), 6)  # Euler–Mascheroni constant + log 2
        1.270363
        >>> round(float(d.variance), 6)  # pi^2 / 2
        4.934802
    """

    arg_constraints = {"loc": real, "scale": positive}
    has_rsample = True

    def __init__(self, loc: Array, scale: Array, *, validate: bool | None = None) -> None:
        xp, self.loc, self.scale, batch = _loc_scale(loc, scale, "Moyal")
        super().__init__(xp=xp, batch_shape=batch, dtype=self.loc.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value``."""
        xp = self.xp
        z = (self._value(value) - self.loc) / self.scale
        return -0.5 * (z + _exp_or_inf(-z, xp)) - xp.log(self.scale) - _HALF_LOG_TWO_PI

    def entropy(self) -> Array:
        r""":math:`\log\sigma + \tfrac12\log 2\pi + \tfrac12(1 + \gamma_E + \log 2)`."""
        constant = _HALF_LOG_TWO_PI + 0.5 * (1.0 + _EULER_GAMMA + _LOG_2)
        return self.xp.log(self.scale) + constant

    @property
    def mean(self) -> Array:
        r""":math:`\mu + \sigma(\gamma_E + \log 2)`."""
        return self.loc + self.scale * (_EULER_GAMMA + _LOG_2)

    @property
    def variance(self) -> Array:
        r""":math:`\pi^2\sigma^2 / 2`."""
        return (math.pi**2 / 2.0) * self.scale * self.scale

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        # If N ~ N(0, 1), -log N^2 is standard Moyal.
        xp = self.xp
        eps = standard_normal(rng, self._extended_shape(shape), xp=xp, like=self.loc)
        tiny = float(xp.finfo(self.dtype).smallest_normal)
        return self.loc - 2.0 * self.scale * xp.log(xp.maximum(xp.abs(eps), tiny))

    def _log_mgf(self, t: Array) -> Array:
        r"""The log moment generating function, finite for :math:`\sigma t < 1/2`.

        :math:`\log E e^{tX} = \mu t - \sigma t\log 2 + \log\Gamma(\tfrac12 - \sigma t)
        - \tfrac12\log\pi`.
        """
        xp = self.xp
        finite = self.scale * t < 0.5
        safe_st = self.scale * xp.where(finite, t, xp.zeros_like(self.scale * t))
        safe_t = safe_st / self.scale
        value = self.loc * safe_t - safe_st * _LOG_2 + gammaln(0.5 - safe_st, xp=xp)
        return _finite_where(finite, value - 0.5 * _LOG_PI, xp)

    def _mgf(self, t: Array) -> Array:
        return self.xp.exp(self._log_mgf(t))

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r"""The cross-entropy H(P, Q) of this Q, from P's mean and moment generating function.

        :math:`-E_P\log q = \log\sigma\sqrt{2\pi}
        + \tfrac12[(E_P X - \mu)/\sigma + e^{\mu/\sigma} M_P(-1/\sigma)]`.
        """
        xp = self.xp
        mean, mean_infinite = finite_part(p.mean, xp)
        log_mgf, mgf_infinite = finite_part(_log_mgf(p, -1.0 / self.scale), xp)
        inner = (mean - self.loc) / self.scale + xp.exp(self.loc / self.scale + log_mgf)
        value = xp.log(self.scale) + _HALF_LOG_TWO_PI + 0.5 * inner
        return where_finite(mean_infinite | mgf_infinite, value, xp)


class Logistic(Distribution):
    r"""The logistic distribution with location :math:`\mu` and scale :math:`s`.

    .. math::

        p(x) = \frac{e^{-z}}{s\,(1 + e^{-z})^2}, \qquad z = \frac{x - \mu}{s}

    Args:
        loc: the location (mean) :math:`\mu`.
        scale: the scale :math:`s > 0`.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Logistic(0.0, 1.0)
        >>> round(float(d.log_prob(0.0)), 6)  # log 1/4
        -1.386294
        >>> float(d.entropy())
        2.0
    """

    arg_constraints = {"loc": real, "scale": positive}
    has_rsample = True

    def __init__(self, loc: Array, scale: Array, *, validate: bool | None = None) -> None:
        xp, self.loc, self.scale, batch = _loc_scale(loc, scale, "Logistic")
        super().__init__(xp=xp, batch_shape=batch, dtype=self.loc.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value``."""
        xp = self.xp
        z = (self._value(value) - self.loc) / self.scale
        return -z - 2.0 * softplus(-z, xp=xp) - xp.log(self.scale)

    def entropy(self) -> Array:
        r""":math:`\log s + 2`."""
        return self.xp.log(self.scale) + 2.0

    @property
    def mean(self) -> Array:
        r"""The mean :math:`\mu`."""
        return self.loc

    @property
    def variance(self) -> Array:
        r""":math:`\pi^2 s^2 / 3`."""
        return (math.pi**2 / 3.0) * self.scale * self.scale

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        u = standard_uniform(rng, self._extended_shape(shape), xp=xp, like=self.loc)
        return self.loc + self.scale * (xp.log(u) - xp.log1p(-u))

    def _log_mgf(self, t: Array) -> Array:
        r"""The log moment generating function, finite for :math:`|st| < 1`.

        :math:`\log E e^{tX} = \mu t + \log\Gamma(1 - st) + \log\Gamma(1 + st)`.
        """
        xp = self.xp
        t = xp.zeros_like(self.scale) + t
        finite = xp.abs(t) < 1.0 / self.scale  # as Laplace's: exact at t = -1/s, s = scale
        safe_st = self.scale * xp.where(finite, t, xp.zeros_like(t))
        value = self.loc * safe_st / self.scale + gammaln(1.0 - safe_st, xp=xp)
        return _finite_where(finite, value + gammaln(1.0 + safe_st, xp=xp), xp)

    def _mgf(self, t: Array) -> Array:
        return self.xp.exp(self._log_mgf(t))

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m| = \mu - m + 2s\log(1 + e^{(m - \mu)/s})`."""
        xp = self.xp
        return self.loc - m + 2.0 * self.scale * softplus((m - self.loc) / self.scale, xp=xp)


class StudentT(Distribution):
    r"""Student's t distribution with :math:`\nu` degrees of freedom, location and scale.

    .. math::

        p(x) = \frac{\Gamma(\frac{\nu + 1}{2})}{\Gamma(\frac{\nu}{2})\sqrt{\nu\pi}\,\sigma}
        \Big(1 + \frac{z^2}{\nu}\Big)^{-\frac{\nu + 1}{2}}, \qquad z = \frac{x - \mu}{\sigma}

    The mean is :math:`\mu` for :math:`\nu > 1` (NaN otherwise); the variance
    :math:`\sigma^2\nu/(\nu - 2)` for :math:`\nu > 2`, +inf for :math:`1 < \nu \le 2`
    and NaN for :math:`\nu \le 1` (as in ``torch.distributions``).

    Args:
        df: the degrees of freedom :math:`\nu > 0`.
        loc: the location :math:`\mu`.
        scale: the scale :math:`\sigma > 0`.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.StudentT(4.0, 1.0, 2.0)
        >>> float(d.variance)  # 4 * 4 / 2
        8.0
        >>> round(float(d.log_prob(1.0)), 6)
        -1.673976
    """

    arg_constraints = {"df": positive, "loc": real, "scale": positive}
    has_rsample = True

    def __init__(
        self, df: Array, loc: Array = 0.0, scale: Array = 1.0, *, validate: bool | None = None
    ) -> None:
        xp, arrays = float_parameters({"df": df, "loc": loc, "scale": scale}, "StudentT")
        arrays, batch = broadcast_parameters(arrays, "StudentT", xp=xp)
        self.df, self.loc, self.scale = arrays["df"], arrays["loc"], arrays["scale"]
        super().__init__(xp=xp, batch_shape=batch, dtype=self.loc.dtype, validate=validate)
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        """The log density at ``value``."""
        xp, df = self.xp, self.df
        z = (self._value(value) - self.loc) / self.scale
        normaliser = gammaln(0.5 * (df + 1.0), xp=xp) - gammaln(0.5 * df, xp=xp)
        normaliser = normaliser - 0.5 * xp.log(df) - 0.5 * _LOG_PI - xp.log(self.scale)
        return normaliser - 0.5 * (df + 1.0) * xp.log1p(z * z / df)

    def entropy(self) -> Array:
        r"""The differential entropy.

        :math:`\tfrac{\nu + 1}{2}[\psi(\tfrac{\nu + 1}{2}) - \psi(\tfrac{\nu}{2})]
        + \tfrac12\log\nu + \log B(\tfrac{\nu}{2}, \tfrac12) + \log\sigma`.
        """
        xp, half = self.xp, 0.5 * self.df
        digammas = digamma(half + 0.5, xp=xp) - digamma(half, xp=xp)
        log_beta = betaln(half, xp.full_like(half, 0.5), xp=xp)
        return (half + 0.5) * digammas + 0.5 * xp.log(self.df) + log_beta + xp.log(self.scale)

    @property
    def mean(self) -> Array:
        r""":math:`\mu` for :math:`\nu > 1`, NaN otherwise."""
        return self.xp.where(self.df > 1.0, self.loc, math.nan)

    @property
    def variance(self) -> Array:
        r""":math:`\sigma^2\nu/(\nu - 2)` for :math:`\nu > 2`; +inf for 1 < df <= 2; else NaN."""
        xp = self.xp
        finite = self.df > 2.0
        safe_df = xp.where(finite, self.df, xp.full_like(self.df, 3.0))
        value = self.scale * self.scale * safe_df / (safe_df - 2.0)
        undefined = xp.where(self.df > 1.0, math.inf, xp.full_like(value, math.nan))
        return xp.where(finite, value, undefined)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        # X = mu + sigma Z / sqrt(G / nu), G ~ chi2(nu) = 2 Gamma(nu / 2).
        xp = self.xp
        normal_rng, gamma_rng = split_rng(rng, 2, xp=xp)
        full = self._extended_shape(shape)
        eps = standard_normal(normal_rng, full, xp=xp, like=self.loc)
        gamma = standard_gamma(gamma_rng, xp.broadcast_to(0.5 * self.df, full), xp=xp)
        tiny = float(xp.finfo(self.dtype).smallest_normal)
        return self.loc + self.scale * eps * xp.sqrt(0.5 * self.df / xp.maximum(gamma, tiny))

    def _mgf(self, t: Array) -> Array:
        """1 at t = 0, +inf elsewhere (polynomial tails)."""
        t = self.xp.zeros_like(self.loc) + t
        return where_finite(t != 0, self.xp.ones_like(t), self.xp)
