"""Distributions on bounded intervals: Uniform (and, by the helpers' work, Beta and relatives)."""

from __future__ import annotations

import math
from typing import Any

from kldiv._special import xlogy
from kldiv.distributions._base import Distribution, broadcast_parameters, float_parameters
from kldiv.distributions._constraints import real
from kldiv.distributions._kl_helpers import outside_support, where_finite
from kldiv.distributions._random import standard_uniform
from kldiv.errors import KLDivError

__all__ = ["Uniform"]

Array = Any


class Uniform(Distribution):
    r"""The continuous uniform distribution on :math:`[a, b]`: :math:`p(x) = 1/(b - a)`.

    Args:
        low: the lower end :math:`a`.
        high: the upper end :math:`b > a`.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> float(D.Uniform(0.0, 4.0).entropy())  # log 4
        1.3862943611198906
    """

    arg_constraints = {"low": real, "high": real}
    has_rsample = True

    def __init__(self, low: Array, high: Array, *, validate: bool | None = None) -> None:
        xp, arrays = float_parameters({"low": low, "high": high}, "Uniform")
        arrays, batch = broadcast_parameters(arrays, "Uniform", xp=xp)
        self.low, self.high = arrays["low"], arrays["high"]
        super().__init__(xp=xp, batch_shape=batch, dtype=self.low.dtype, validate=validate)
        self._check_parameters()
        self._check_order()

    def _check_order(self) -> None:
        from kldiv._array_api import is_traced, to_numpy

        xp = self.xp
        if not self.validate or is_traced(self.low) or is_traced(self.high):
            return
        bad = ~(self.high > self.low)
        if bool(xp.any(bad)):
            import numpy as np

            index = tuple(int(i) for i in np.argwhere(to_numpy(bad))[0]) if bad.ndim else ()
            low, high = float(to_numpy(self.low)[index]), float(to_numpy(self.high)[index])
            where = f" at batch index {index}" if index else ""
            raise KLDivError(
                f"`high` of Uniform must be greater than `low`; got low={low}, high={high}{where}"
            )

    def support_bounds(self) -> tuple[Array, Array]:
        """``(low, high)``."""
        return self.low, self.high

    def log_prob(self, value: Array) -> Array:
        """``-log(high - low)`` inside ``[low, high]``, -inf outside."""
        xp = self.xp
        x = self._value(value)
        inside = (x >= self.low) & (x <= self.high)
        return xp.where(inside, -xp.log(self.high - self.low), -math.inf)

    def entropy(self) -> Array:
        r""":math:`\log(b - a)`."""
        return self.xp.log(self.high - self.low)

    @property
    def mean(self) -> Array:
        """:math:`(a + b) / 2`."""
        return 0.5 * (self.low + self.high)

    @property
    def variance(self) -> Array:
        """:math:`(b - a)^2 / 12`."""
        width = self.high - self.low
        return width * width / 12.0

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        u = standard_uniform(rng, self._extended_shape(shape), xp=self.xp, like=self.low)
        return self.low + (self.high - self.low) * u

    # Expectation hooks. Those of log X and X^r need low >= 0 (they are only
    # asked for when the other family's support is inside [0, inf)).

    def _expected_log(self) -> Array:
        r""":math:`E\log X = [b\log b - b - a\log a + a] / (b - a)` for :math:`a \ge 0`."""
        xp = self.xp
        low, high = xp.maximum(self.low, 0.0), xp.maximum(self.high, 0.0)
        antiderivative_high = xlogy(high, high, xp=xp) - high
        antiderivative_low = xlogy(low, low, xp=xp) - low
        return (antiderivative_high - antiderivative_low) / (self.high - self.low)

    def _expected_log1m(self) -> Array:
        r""":math:`E\log(1 - X)` for :math:`b \le 1` (the same antiderivative on 1 - X)."""
        xp = self.xp
        one_minus_low = xp.maximum(1.0 - self.low, 0.0)
        one_minus_high = xp.maximum(1.0 - self.high, 0.0)
        upper = xlogy(one_minus_low, one_minus_low, xp=xp) - one_minus_low
        lower = xlogy(one_minus_high, one_minus_high, xp=xp) - one_minus_high
        return (upper - lower) / (self.high - self.low)

    def _expected_power(self, r: Array | float) -> Array:
        r""":math:`E X^r = (b^{r+1} - a^{r+1}) / ((r + 1)(b - a))` for :math:`a \ge 0, r > -1`."""
        xp = self.xp
        low, high = xp.maximum(self.low, 0.0), xp.maximum(self.high, 0.0)
        return (high ** (r + 1.0) - low ** (r + 1.0)) / ((r + 1.0) * (self.high - self.low))

    def _mgf(self, t: Array) -> Array:
        r""":math:`E e^{tX} = e^{ta}\operatorname{expm1}(t(b - a)) / (t(b - a))`, 1 at t = 0."""
        xp = self.xp
        width = self.high - self.low
        tw = t * width
        small = xp.abs(tw) < 1e-8
        safe = xp.where(small, xp.ones_like(tw), tw)
        ratio = xp.where(small, 1.0 + 0.5 * tw, xp.expm1(safe) / safe)
        return xp.exp(t * self.low) * ratio

    def _expected_abs_dev(self, m: Array) -> Array:
        r""":math:`E|X - m|`: :math:`((m - a)^2 + (b - m)^2) / 2(b - a)` inside, else |E X - m|."""
        xp = self.xp
        inside = (m > self.low) & (m < self.high)
        width = self.high - self.low
        m_in = xp.clip(m, self.low, self.high)
        within = ((m_in - self.low) ** 2 + (self.high - m_in) ** 2) / (2.0 * width)
        return xp.where(inside, within, xp.abs(self.mean - m))

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r""":math:`\log(b - a)` when P's support is inside :math:`[a, b]`, else +inf."""
        xp = self.xp
        off = outside_support(p, self.low, self.high)
        return where_finite(
            off, xp.log(self.high - self.low) + xp.zeros_like(p.support_bounds()[0]), xp
        )
