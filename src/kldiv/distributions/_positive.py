"""Distributions on the positive half-line: Exponential and Gamma (and their relatives)."""

from __future__ import annotations

import math
from typing import Any

from kldiv._special import digamma, gammainc, gammaln
from kldiv.distributions._base import Distribution, broadcast_parameters, float_parameters
from kldiv.distributions._constraints import positive
from kldiv.distributions._kl_helpers import outside_support, where_finite
from kldiv.distributions._random import standard_gamma, standard_uniform

__all__ = ["Exponential", "Gamma"]

Array = Any

_EULER_GAMMA = 0.5772156649015329


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
        log_term = xp.where(k == 1.0, xp.zeros_like(k), (k - 1.0) * p._expected_log())
        value = -k * xp.log(rate) + gammaln(k, xp=xp) - log_term + rate * p.mean
        return where_finite(off, xp.where(off, xp.zeros_like(value), value), xp)


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

    def _expected_power(self, r: Array | float) -> Array:
        return self._as_gamma()._expected_power(r)

    def _mgf(self, t: Array) -> Array:
        return self._as_gamma()._mgf(t)

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m| = 1/\lambda - m + 2(m - (1 - e^{-\lambda m})/\lambda)` for m > 0."""
        xp = self.xp
        m_pos = xp.maximum(m, xp.zeros_like(m))
        return 1.0 / self.rate - m + 2.0 * (m_pos + xp.expm1(-self.rate * m_pos) / self.rate)

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r""":math:`-E_P \log q = -\log\lambda + \lambda E_P X`."""
        xp = self.xp
        off = outside_support(p, 0.0, math.inf)
        value = -xp.log(self.rate) + self.rate * p.mean
        return where_finite(off, xp.where(off, xp.zeros_like(value), value), xp)
