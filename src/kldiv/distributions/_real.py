"""Distributions on the real line: Normal (and, by the helpers' work, its relatives)."""

from __future__ import annotations

import math
from typing import Any

from kldiv._special import erf
from kldiv.distributions._base import Distribution, broadcast_parameters, float_parameters
from kldiv.distributions._constraints import positive, real
from kldiv.distributions._random import standard_normal

__all__ = ["Normal"]

Array = Any

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


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
        diff = p.mean - self.loc
        second = (p.variance + diff * diff) / (self.scale * self.scale)
        return self.xp.log(self.scale) + _HALF_LOG_TWO_PI + 0.5 * second
