r"""Discrete distributions with the class and parameter names of ``torch.distributions``.

Bernoulli, Binomial, Categorical, OneHotCategorical, Geometric, Poisson,
Multinomial and NegativeBinomial. The families with a success probability
take ``probs=`` or ``logits=`` (exactly one); both are then available as
attributes, the one not given derived from the other. Log-masses are computed
from the parameter that was given (``log_sigmoid`` of logits, ``log`` of
probabilities with an exact ``-inf`` at 0), so that zero probabilities give
exact values and finite gradients:

.. math::

    \log p = -\operatorname{softplus}(-z), \qquad \log(1 - p) = -\operatorname{softplus}(z).

Counts (``total_count``) are held as whole numbers in the floating dtype of
the other parameters. Samples are floats of that dtype, except Categorical's,
which are integer indices (as in torch).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import device, is_traced, to_numpy
from kldiv._special import gammaln, log_softmax
from kldiv.discrete._terms import entropy_terms_from_log_probs, log_of_probs
from kldiv.distributions._base import Distribution, broadcast_parameters, float_parameters
from kldiv.distributions._constraints import (
    Constraint,
    check_parameter,
    integer_at_least,
    nonnegative,
    positive,
    real,
    simplex,
    unit_interval,
)
from kldiv.distributions._kl_helpers import where_finite
from kldiv.distributions._random import (
    binomial,
    poisson,
    split_rng,
    standard_gamma,
    standard_uniform,
)
from kldiv.errors import KLDivError, NoClosedFormError

__all__ = [
    "Bernoulli",
    "Binomial",
    "Categorical",
    "Geometric",
    "Multinomial",
    "NegativeBinomial",
    "OneHotCategorical",
    "Poisson",
]

Array = Any

positive_unit_interval = Constraint("numbers in (0, 1]", lambda v, xp: (v > 0) & (v <= 1))
unit_interval_below_one = Constraint("numbers in [0, 1)", lambda v, xp: (v >= 0) & (v < 1))
logit_vector = Constraint(
    "logit vectors (no NaN or +inf, at least one finite entry)",
    lambda v, xp: xp.all(~xp.isnan(v) & (v < math.inf), axis=-1) & xp.any(xp.isfinite(v), axis=-1),
    1,
)


# --- Helpers shared by the families (and by _bounded.py and the closed forms) ------------------


def require_exactly_one(probs: object, logits: object, owner: str) -> None:
    """Raises unless exactly one of ``probs`` and ``logits`` is given."""
    if (probs is None) == (logits is None):
        got = "both" if probs is not None else "neither"
        raise KLDivError(f"{owner} takes exactly one of `probs` and `logits`; got {got}")


def log_of_one_minus(p: Array, *, xp: ModuleType) -> Array:
    r""":math:`\log(1 - p)` by ``log1p``, an exact ``-inf`` (zero gradient) at :math:`p = 1`."""
    one = p == 1
    return xp.where(one, -math.inf, xp.log1p(-xp.where(one, xp.zeros_like(p), p)))


def softplus(z: Array, *, xp: ModuleType) -> Array:
    r""":math:`\log(1 + e^z)` as ``logaddexp(0, z)``: stable, with the gradient 1/2 at 0 on JAX too.

    (``kldiv._special.softplus`` writes ``|z|``, whose JAX derivative at 0 is 1, not 0.)
    """
    return xp.logaddexp(xp.zeros_like(z), z)


def sigmoid(z: Array, *, xp: ModuleType) -> Array:
    r""":math:`1 / (1 + e^{-z})`, without overflow for large :math:`|z|`."""
    return xp.exp(-softplus(-z, xp=xp))


def logit(p: Array, *, xp: ModuleType) -> Array:
    r""":math:`\log p - \log(1 - p)`: ``-inf`` at 0 and ``+inf`` at 1, without warnings."""
    return log_of_probs(p, xp=xp) - log_of_one_minus(p, xp=xp)


def xlog_mass(k: Array, log_mass: Array, *, xp: ModuleType) -> Array:
    r""":math:`k \log m` from :math:`\log m`, with :math:`0 \cdot \log 0 = 0`.

    ``log_mass`` may be ``-inf``; the product is then ``-inf`` (or ``+inf`` for
    negative ``k``) where ``k != 0`` and exactly 0 where ``k = 0``, with finite
    gradients wherever the value is finite.
    """
    none = log_mass == -math.inf
    value = k * xp.where(none, xp.zeros_like(log_mass), log_mass)
    infinite = xp.where(k > 0, -math.inf, xp.full_like(value, math.inf))
    return xp.where(none & (k != 0), infinite, value)


def xlogy_safe(x: Array, y: Array, *, xp: ModuleType) -> Array:
    r""":math:`x \log y` for :math:`y \ge 0`: 0 where :math:`x = 0`, :math:`\mp\infty` at y = 0."""
    return xlog_mass(x, log_of_probs(y, xp=xp), xp=xp)


def is_whole(value: Array, lower: Array | float, upper: Array | float, *, xp: ModuleType) -> Array:
    """Where ``value`` is a whole number in ``[lower, upper]`` (finite, no NaN)."""
    finite = xp.isfinite(value)
    safe = xp.where(finite, value, xp.zeros_like(value))
    return finite & (xp.floor(safe) == safe) & (value >= lower) & (value <= upper)


def static_count_bound(value: object) -> int | None:
    """The largest count in ``value`` as a Python int, or None when it cannot be read (traced)."""
    if value is None:
        return None
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if is_traced(value):
            return None
        values = np.asarray(to_numpy(value), dtype=float)
    else:
        try:
            values = np.asarray(value, dtype=float)
        except (TypeError, ValueError):  # not numbers: the parameter check names it
            return None
    if values.size == 0:
        return 0
    largest = float(np.max(values))
    return math.ceil(largest) if math.isfinite(largest) and largest >= 0 else None


def any_concrete(mask: Array, *, xp: ModuleType) -> bool:
    """``any(mask)`` when its values can be read; False for traced arrays."""
    return not is_traced(mask) and bool(xp.any(mask))


def enumerated_counts(
    bound: int | None, owner: str, what: str, like: Array, *, xp: ModuleType
) -> Array:
    """``0, 1, ..., bound`` as a float column, for sums over a finite support."""
    if bound is None:
        raise NoClosedFormError(
            f"{owner}.{what} sums over the support 0..total_count, which needs `total_count` "
            "known when the distribution is built (it was traced, e.g. under jax.jit); build it "
            "with total_count given as Python numbers or a concrete array"
        )
    return xp.arange(bound + 1, dtype=like.dtype, device=device(like))


class _ProbsOrLogits(Distribution):
    r"""Base of the families with a success probability given as ``probs`` or ``logits``.

    Both attributes exist after construction; only the given one is checked.
    ``_log_masses()`` returns :math:`(\log p, \log(1 - p))` from the given one.
    """

    _from_logits: bool = False

    def _init_probs_or_logits(
        self,
        probs: Array | None,
        logits: Array | None,
        others: dict[str, Array],
        validate: bool | None,
    ) -> dict[str, Array]:
        owner = type(self).__name__
        require_exactly_one(probs, logits, owner)
        self._from_logits = logits is not None
        named = dict(others)
        named["logits" if self._from_logits else "probs"] = logits if self._from_logits else probs
        xp, arrays = float_parameters(named, owner)
        arrays, batch = broadcast_parameters(arrays, owner, xp=xp)
        given = arrays["logits" if self._from_logits else "probs"]
        super().__init__(xp=xp, batch_shape=batch, dtype=given.dtype, validate=validate)
        for name, value in arrays.items():  # before deriving the other form from bad values
            constraint = self.arg_constraints[name]
            check_parameter(value, name, constraint, owner, validate=self.validate, xp=xp)
        if self._from_logits:
            self.logits = given
            self.probs = sigmoid(given, xp=xp)
        else:
            self.probs = given
            self.logits = logit(given, xp=xp)
        return arrays

    def _check_parameters(self) -> None:
        derived = "probs" if self._from_logits else "logits"
        for name, constraint in self.arg_constraints.items():
            value = getattr(self, name, None)
            if name != derived and value is not None:
                check_parameter(
                    value, name, constraint, type(self).__name__, validate=self.validate, xp=self.xp
                )

    def _log_masses(self) -> tuple[Array, Array]:
        r""":math:`(\log p, \log(1 - p))`, accurate and exact at 0 and 1."""
        xp = self.xp
        if self._from_logits:
            return -softplus(-self.logits, xp=xp), -softplus(self.logits, xp=xp)
        return log_of_probs(self.probs, xp=xp), log_of_one_minus(self.probs, xp=xp)


# --- Bernoulli, Binomial ------------------------------------------------------------------------


class Bernoulli(_ProbsOrLogits):
    r"""The Bernoulli distribution on :math:`\{0, 1\}`: :math:`P(1) = p`, :math:`P(0) = 1 - p`.

    .. math::

        \log P(k) = k \log p + (1 - k) \log(1 - p), \qquad p = \sigma(z)

    Args:
        probs: the probability :math:`p \in [0, 1]` of 1.
        logits: the log-odds :math:`z = \log(p / (1 - p))` instead (exactly one of the two).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Bernoulli(probs=0.25)
        >>> round(float(d.log_prob(1.0)), 6), float(d.mean)
        (-1.386294, 0.25)
        >>> float(D.Bernoulli(logits=0.0).probs)
        0.5
    """

    arg_constraints = {"probs": unit_interval, "logits": real}
    is_discrete = True
    support_lower = 0.0
    support_upper = 1.0

    def __init__(
        self,
        probs: Array | None = None,
        logits: Array | None = None,
        *,
        validate: bool | None = None,
    ) -> None:
        self._init_probs_or_logits(probs, logits, {}, validate)

    def log_prob(self, value: Array) -> Array:
        """``log p`` at 1, ``log(1 - p)`` at 0, -inf elsewhere."""
        xp = self.xp
        k = self._value(value)
        log_one, log_zero = self._log_masses()
        return xp.where(k == 1, log_one, xp.where(k == 0, log_zero, -math.inf))

    def entropy(self) -> Array:
        r""":math:`-p \log p - (1 - p) \log(1 - p)`, with :math:`0 \log 0 = 0`."""
        xp = self.xp
        log_one, log_zero = self._log_masses()
        return entropy_terms_from_log_probs(log_one, xp=xp) + entropy_terms_from_log_probs(
            log_zero, xp=xp
        )

    @property
    def mean(self) -> Array:
        """:math:`p`."""
        return self.probs

    @property
    def variance(self) -> Array:
        """:math:`p (1 - p)`."""
        return self.probs * (1.0 - self.probs)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        u = standard_uniform(rng, self._extended_shape(shape), xp=xp, like=self.probs)
        return xp.astype(u < self.probs, self.dtype)

    def _expected_log_factorial(self) -> Array:
        r""":math:`E \log X! = 0` on :math:`\{0, 1\}`."""
        return self.xp.zeros_like(self.probs)


class Binomial(_ProbsOrLogits):
    r"""The binomial distribution: the successes in :math:`n` independent trials.

    .. math::

        P(k) = \binom{n}{k} p^k (1 - p)^{n - k}, \qquad k = 0, 1, \dots, n

    The entropy sums over the support, so it needs ``total_count`` readable
    when the distribution is built (not traced by ``jax.jit``).

    Args:
        total_count: the number of trials :math:`n`, a whole number >= 0 (any
            shape broadcasting against the probabilities).
        probs: the success probability :math:`p \in [0, 1]`.
        logits: the log-odds of success instead (exactly one of the two).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Binomial(4, probs=0.5)
        >>> round(float(d.log_prob(2.0)), 6), float(d.mean), float(d.variance)
        (-0.980829, 2.0, 1.0)
    """

    arg_constraints = {"total_count": integer_at_least(0), "probs": unit_interval, "logits": real}
    is_discrete = True
    support_lower = 0.0

    def __init__(
        self,
        total_count: Array = 1,
        probs: Array | None = None,
        logits: Array | None = None,
        *,
        validate: bool | None = None,
    ) -> None:
        self._count_bound = static_count_bound(total_count)
        arrays = self._init_probs_or_logits(probs, logits, {"total_count": total_count}, validate)
        self.total_count = arrays["total_count"]

    def support_bounds(self) -> tuple[Array, Array]:
        """``(0, total_count)``."""
        return self.xp.zeros_like(self.total_count), self.total_count

    def log_prob(self, value: Array) -> Array:
        """The log mass at ``value``; -inf off the whole numbers 0..total_count."""
        xp = self.xp
        k = self._value(value)
        n = self.total_count
        inside = is_whole(k, 0.0, n, xp=xp)
        k_in = xp.where(inside, k, xp.zeros_like(k))
        log_one, log_zero = self._log_masses()
        log_choose = gammaln(n + 1.0, xp=xp) - gammaln(k_in + 1.0, xp=xp)
        log_choose = log_choose - gammaln(n - k_in + 1.0, xp=xp)
        value = log_choose + xlog_mass(k_in, log_one, xp=xp) + xlog_mass(n - k_in, log_zero, xp=xp)
        return xp.where(inside, value, -math.inf)

    def entropy(self) -> Array:
        r""":math:`-\sum_{k=0}^{n} P(k) \log P(k)`, summed over the support."""
        xp = self.xp
        k = enumerated_counts(self._count_bound, "Binomial", "entropy", self.probs, xp=xp)
        k = xp.reshape(k, (k.shape[0],) + (1,) * len(self.batch_shape))
        terms = entropy_terms_from_log_probs(self.log_prob(k), xp=xp)
        return xp.sum(terms, axis=0)

    @property
    def mean(self) -> Array:
        """:math:`n p`."""
        return self.total_count * self.probs

    @property
    def variance(self) -> Array:
        """:math:`n p (1 - p)`."""
        return self.total_count * self.probs * (1.0 - self.probs)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        full = self._extended_shape(shape)
        n = xp.broadcast_to(self.total_count, full)
        return binomial(rng, n, xp.broadcast_to(self.probs, full), xp=xp)


# --- Geometric, Poisson, NegativeBinomial --------------------------------------------------------


class Geometric(_ProbsOrLogits):
    r"""The geometric distribution: the number of failures before the first success.

    .. math::

        P(k) = (1 - p)^k p, \qquad k = 0, 1, 2, \dots

    Args:
        probs: the success probability :math:`p \in (0, 1]`.
        logits: the log-odds of success instead (exactly one of the two).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Geometric(probs=0.25)
        >>> float(d.mean), float(d.variance)
        (3.0, 12.0)
    """

    arg_constraints = {"probs": positive_unit_interval, "logits": real}
    is_discrete = True
    support_lower = 0.0

    def __init__(
        self,
        probs: Array | None = None,
        logits: Array | None = None,
        *,
        validate: bool | None = None,
    ) -> None:
        self._init_probs_or_logits(probs, logits, {}, validate)

    def log_prob(self, value: Array) -> Array:
        r""":math:`k \log(1 - p) + \log p` on the whole numbers >= 0, -inf elsewhere."""
        xp = self.xp
        k = self._value(value)
        inside = is_whole(k, 0.0, math.inf, xp=xp)
        k_in = xp.where(inside, k, xp.zeros_like(k))
        log_one, log_zero = self._log_masses()
        return xp.where(inside, xlog_mass(k_in, log_zero, xp=xp) + log_one, -math.inf)

    def entropy(self) -> Array:
        r""":math:`[-p \log p - (1 - p) \log(1 - p)] / p`."""
        xp = self.xp
        log_one, log_zero = self._log_masses()
        binary = entropy_terms_from_log_probs(log_one, xp=xp) + entropy_terms_from_log_probs(
            log_zero, xp=xp
        )
        return binary / self.probs

    @property
    def mean(self) -> Array:
        r""":math:`(1 - p) / p`."""
        return (1.0 - self.probs) / self.probs

    @property
    def variance(self) -> Array:
        r""":math:`(1 - p) / p^2`."""
        return (1.0 - self.probs) / (self.probs * self.probs)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        u = standard_uniform(rng, self._extended_shape(shape), xp=xp, like=self.probs)
        _, log_zero = self._log_masses()
        return xp.floor(xp.log(u) / log_zero)

    def _is_point_mass_at_zero(self) -> Array:
        return self.probs == 1

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r""":math:`-E_P \log q = -(E_P[X] \log(1 - p) + \log p)` for P on the whole numbers >= 0."""
        xp = self.xp
        log_one, log_zero = self._log_masses()
        off = (p.support_bounds()[0] < 0) | (not p.is_discrete)
        value = -(xlog_mass(p.mean, log_zero, xp=xp) + log_one)
        return where_finite(off, xp.where(off, xp.zeros_like(value), value), xp)


class Poisson(Distribution):
    r"""The Poisson distribution with rate :math:`\lambda \ge 0`.

    .. math::

        P(k) = \frac{\lambda^k e^{-\lambda}}{k!}, \qquad k = 0, 1, 2, \dots

    Rate 0 is the point mass at 0. The entropy has no closed form.

    Args:
        rate: the rate :math:`\lambda \ge 0`.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> round(float(D.Poisson(2.0).log_prob(3.0)), 6)
        -1.712318
    """

    arg_constraints = {"rate": nonnegative}
    is_discrete = True
    support_lower = 0.0

    def __init__(self, rate: Array, *, validate: bool | None = None) -> None:
        xp, arrays = float_parameters({"rate": rate}, "Poisson")
        self.rate = arrays["rate"]
        super().__init__(
            xp=xp, batch_shape=tuple(self.rate.shape), dtype=self.rate.dtype, validate=validate
        )
        self._check_parameters()

    def log_prob(self, value: Array) -> Array:
        r""":math:`k \log\lambda - \lambda - \log k!` on the whole numbers >= 0, -inf elsewhere."""
        xp = self.xp
        k = self._value(value)
        inside = is_whole(k, 0.0, math.inf, xp=xp)
        k_in = xp.where(inside, k, xp.zeros_like(k))
        log_rate = log_of_probs(self.rate, xp=xp)
        value = xlog_mass(k_in, log_rate, xp=xp) - self.rate - gammaln(k_in + 1.0, xp=xp)
        return xp.where(inside, value, -math.inf)

    @property
    def mean(self) -> Array:
        r""":math:`\lambda`."""
        return self.rate

    @property
    def variance(self) -> Array:
        r""":math:`\lambda`."""
        return self.rate

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        return poisson(rng, xp.broadcast_to(self.rate, self._extended_shape(shape)), xp=xp)

    def _is_point_mass_at_zero(self) -> Array:
        return self.rate == 0

    def _cross_entropy_from(self, p: Distribution) -> Array:
        r""":math:`-E_P \log q = \lambda - E_P[X] \log\lambda + E_P \log X!` (P needs that hook)."""
        xp = self.xp
        off = (p.support_bounds()[0] < 0) | (not p.is_discrete)
        log_rate = log_of_probs(self.rate, xp=xp)
        value = self.rate - xlog_mass(p.mean, log_rate, xp=xp) + p._expected_log_factorial()
        return where_finite(off, xp.where(off, xp.zeros_like(value), value), xp)


class NegativeBinomial(_ProbsOrLogits):
    r"""The negative binomial distribution (torch's parameterisation).

    The number of successes, each of probability :math:`p`, before the
    :math:`r`-th failure:

    .. math::

        P(k) = \frac{\Gamma(k + r)}{k!\,\Gamma(r)} (1 - p)^r p^k, \qquad
        E X = \frac{r p}{1 - p}, \quad \operatorname{Var} X = \frac{r p}{(1 - p)^2}

    The entropy has no closed form.

    Args:
        total_count: :math:`r > 0` (need not be whole).
        probs: :math:`p \in [0, 1)`.
        logits: :math:`\log(p / (1 - p))` instead (exactly one of the two).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.NegativeBinomial(3.0, probs=0.25)
        >>> float(d.mean), round(float(d.variance), 6)
        (1.0, 1.333333)
    """

    arg_constraints = {
        "total_count": positive,
        "probs": unit_interval_below_one,
        "logits": real,
    }
    is_discrete = True
    support_lower = 0.0

    def __init__(
        self,
        total_count: Array,
        probs: Array | None = None,
        logits: Array | None = None,
        *,
        validate: bool | None = None,
    ) -> None:
        arrays = self._init_probs_or_logits(probs, logits, {"total_count": total_count}, validate)
        self.total_count = arrays["total_count"]

    def log_prob(self, value: Array) -> Array:
        """The log mass at ``value``; -inf off the whole numbers >= 0."""
        xp = self.xp
        k = self._value(value)
        r = self.total_count
        inside = is_whole(k, 0.0, math.inf, xp=xp)
        k_in = xp.where(inside, k, xp.zeros_like(k))
        log_one, log_zero = self._log_masses()
        log_choose = gammaln(k_in + r, xp=xp) - gammaln(k_in + 1.0, xp=xp) - gammaln(r, xp=xp)
        value = log_choose + r * log_zero + xlog_mass(k_in, log_one, xp=xp)
        return xp.where(inside, value, -math.inf)

    def _odds(self) -> Array:
        r""":math:`p / (1 - p)`, from the log-masses (finite for logits near +inf too)."""
        log_one, log_zero = self._log_masses()
        return self.xp.exp(log_one - log_zero)

    @property
    def mean(self) -> Array:
        r""":math:`r p / (1 - p)`."""
        return self.total_count * self._odds()

    @property
    def variance(self) -> Array:
        r""":math:`r p / (1 - p)^2`."""
        _, log_zero = self._log_masses()
        return self.mean * self.xp.exp(-log_zero)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        # Gamma-Poisson mixture: rate ~ Gamma(r, (1 - p) / p), k ~ Poisson(rate).
        xp = self.xp
        gamma_rng, poisson_rng = split_rng(rng, 2, xp=xp)
        r = xp.broadcast_to(self.total_count, self._extended_shape(shape))
        return poisson(poisson_rng, standard_gamma(gamma_rng, r, xp=xp) * self._odds(), xp=xp)

    def _is_point_mass_at_zero(self) -> Array:
        return self.probs == 0


# --- Categorical, OneHotCategorical, Multinomial ----------------------------------------------


def _normalised_log_probs(
    probs: Array | None, logits: Array | None, *, xp: ModuleType
) -> tuple[Array, Array]:
    """``(probs, log_probs)`` normalised along the last axis, from either form."""
    if logits is not None:
        log_probs = log_softmax(logits, -1, xp=xp)
        return xp.exp(log_probs), log_probs
    probs = probs / xp.sum(probs, axis=-1, keepdims=True)
    return probs, log_of_probs(probs, xp=xp)


class Categorical(Distribution):
    r"""The categorical distribution over :math:`\{0, \dots, K - 1\}` (the last axis).

    .. math::

        P(k) = p_k, \qquad p = \operatorname{softmax}(z)

    ``probs`` are normalised to sum to one and ``logits`` to normalised
    log-probabilities (``-inf`` entries are categories of zero mass). Samples
    are integer indices (Gumbel-max); ``log_prob`` takes whole-number indices.
    Mean and variance are not defined (the categories are not ordered).

    Args:
        probs: probability vectors along the last axis (shape ``batch + (K,)``).
        logits: unnormalised log-probabilities instead (exactly one of the two).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Categorical(probs=[0.2, 0.3, 0.5])
        >>> round(float(d.log_prob(2)), 6), d.batch_shape, d.event_shape
        (-0.693147, (), ())
    """

    arg_constraints = {"probs": simplex, "logits": logit_vector}
    is_discrete = True
    support_lower = 0.0

    def __init__(
        self,
        probs: Array | None = None,
        logits: Array | None = None,
        *,
        validate: bool | None = None,
    ) -> None:
        require_exactly_one(probs, logits, "Categorical")
        given = "logits" if logits is not None else "probs"
        xp, arrays = float_parameters(
            {given: logits if logits is not None else probs}, "Categorical"
        )
        arrays, batch = broadcast_parameters(arrays, "Categorical", xp=xp, event_ndims={given: 1})
        raw = arrays[given]
        super().__init__(xp=xp, batch_shape=batch, dtype=raw.dtype, validate=validate)
        constraint = self.arg_constraints[given]
        check_parameter(raw, given, constraint, "Categorical", validate=self.validate, xp=xp)
        if raw.shape[-1] == 0:
            raise KLDivError("Categorical needs at least one category; got an empty last axis")
        self.probs, self.logits = _normalised_log_probs(
            raw if given == "probs" else None, raw if given == "logits" else None, xp=xp
        )
        self._from_logits = given == "logits"

    @property
    def num_events(self) -> int:
        """The number of categories :math:`K`."""
        return int(self.probs.shape[-1])

    def support_bounds(self) -> tuple[Array, Array]:
        """``(0, K - 1)``."""
        low, _ = super().support_bounds()
        return low, low + float(self.num_events - 1)

    def log_prob(self, value: Array) -> Array:
        """``log p[value]`` for whole-number indices in ``0..K-1``, -inf elsewhere."""
        xp = self.xp
        k = self._value(value)
        shape = tuple(np.broadcast_shapes(tuple(k.shape), self.batch_shape))
        k = xp.broadcast_to(k, shape)
        inside = is_whole(k, 0.0, float(self.num_events - 1), xp=xp)
        index = xp.astype(xp.where(inside, k, xp.zeros_like(k)), xp.int64)
        table = xp.broadcast_to(self.logits, (*shape, self.num_events))
        picked = xp.take_along_axis(table, index[..., None], axis=-1)[..., 0]
        return xp.where(inside, picked, -math.inf)

    def entropy(self) -> Array:
        r""":math:`-\sum_k p_k \log p_k`, with :math:`0 \log 0 = 0`."""
        xp = self.xp
        return xp.sum(entropy_terms_from_log_probs(self.logits, xp=xp), axis=-1)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        full = (*shape, *self.batch_shape, self.num_events)
        u = standard_uniform(rng, full, xp=xp, like=self.probs)
        gumbel = -xp.log(-xp.log(u))
        return xp.argmax(self.logits + gumbel, axis=-1)


class OneHotCategorical(Distribution):
    r"""The categorical distribution with one-hot vectors as outcomes (event shape ``(K,)``).

    .. math::

        P(e_k) = p_k, \qquad E X = p, \quad \operatorname{Var} X_k = p_k (1 - p_k)

    Args:
        probs: probability vectors along the last axis.
        logits: unnormalised log-probabilities instead (exactly one of the two).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.OneHotCategorical(probs=[0.2, 0.8])
        >>> round(float(d.log_prob([0.0, 1.0])), 6), d.event_shape
        (-0.223144, (2,))
    """

    arg_constraints = {"probs": simplex, "logits": logit_vector}
    is_discrete = True
    support_lower = 0.0
    support_upper = 1.0

    def __init__(
        self,
        probs: Array | None = None,
        logits: Array | None = None,
        *,
        validate: bool | None = None,
    ) -> None:
        categorical = Categorical(probs=probs, logits=logits, validate=validate)
        self._categorical = categorical
        self.probs, self.logits = categorical.probs, categorical.logits
        super().__init__(
            xp=categorical.xp,
            batch_shape=categorical.batch_shape,
            event_shape=(categorical.num_events,),
            dtype=categorical.dtype,
            validate=validate,
        )

    def log_prob(self, value: Array) -> Array:
        """``log p_k`` at the one-hot vector :math:`e_k`, -inf at any other vector."""
        xp = self.xp
        x = self._value(value)
        binary = xp.all((x == 0) | (x == 1), axis=-1)
        one_hot = binary & (xp.sum(x, axis=-1) == 1)
        picked = xp.sum(xp.where(x == 1, self.logits, xp.zeros_like(self.logits)), axis=-1)
        return xp.where(one_hot, picked, -math.inf)

    def entropy(self) -> Array:
        r""":math:`-\sum_k p_k \log p_k`."""
        return self._categorical.entropy()

    @property
    def mean(self) -> Array:
        """:math:`p`."""
        return self.probs

    @property
    def variance(self) -> Array:
        """:math:`p (1 - p)`."""
        return self.probs * (1.0 - self.probs)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        index = self._categorical._sample(shape, rng)
        categories = xp.arange(
            self._categorical.num_events, dtype=index.dtype, device=device(index)
        )
        return xp.astype(index[..., None] == categories, self.dtype)


class Multinomial(Distribution):
    r"""The multinomial distribution: category counts of :math:`n` categorical draws.

    .. math::

        P(x) = \frac{n!}{\prod_k x_k!} \prod_k p_k^{x_k}, \qquad \sum_k x_k = n

    The entropy sums over the binomial marginals' supports (as torch does), so
    it needs ``total_count`` readable when the distribution is built.

    Args:
        total_count: the number of draws :math:`n` (whole, >= 0; may vary over the batch).
        probs: probability vectors along the last axis.
        logits: unnormalised log-probabilities instead (exactly one of the two).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> from kldiv import distributions as D
        >>> d = D.Multinomial(3, probs=[0.5, 0.5])
        >>> round(float(d.log_prob([1.0, 2.0])), 6), d.mean.tolist()
        (-0.980829, [1.5, 1.5])
    """

    arg_constraints = {
        "total_count": integer_at_least(0),
        "probs": simplex,
        "logits": logit_vector,
    }
    is_discrete = True
    support_lower = 0.0

    def __init__(
        self,
        total_count: Array = 1,
        probs: Array | None = None,
        logits: Array | None = None,
        *,
        validate: bool | None = None,
    ) -> None:
        self._count_bound = static_count_bound(total_count)
        categorical = Categorical(probs=probs, logits=logits, validate=validate)
        xp, arrays = float_parameters(
            {"total_count": total_count, "probs": categorical.probs}, "Multinomial"
        )
        count = arrays["total_count"]
        batch = tuple(np.broadcast_shapes(tuple(count.shape), categorical.batch_shape))
        super().__init__(
            xp=xp,
            batch_shape=batch,
            event_shape=(categorical.num_events,),
            dtype=categorical.dtype,
            validate=validate,
        )
        self.total_count = count if tuple(count.shape) == batch else xp.broadcast_to(count, batch)
        self._categorical = categorical
        self.probs, self.logits = categorical.probs, categorical.logits
        check_parameter(
            self.total_count,
            "total_count",
            self.arg_constraints["total_count"],
            "Multinomial",
            validate=self.validate,
            xp=xp,
        )

    def support_bounds(self) -> tuple[Array, Array]:
        """Each count lies in ``[0, total_count]``."""
        return self.xp.zeros_like(self.total_count), self.total_count

    def log_prob(self, value: Array) -> Array:
        """The log mass of the count vector ``value``; -inf unless whole, >= 0 and summing to n."""
        xp = self.xp
        x = self._value(value)
        n = self.total_count
        whole = xp.all(is_whole(x, 0.0, math.inf, xp=xp), axis=-1)
        x_in = xp.where(whole[..., None], x, xp.zeros_like(x))
        valid = whole & (xp.sum(x_in, axis=-1) == n)
        terms = xlog_mass(x_in, self.logits, xp=xp) - gammaln(x_in + 1.0, xp=xp)
        value = gammaln(n + 1.0, xp=xp) + xp.sum(terms, axis=-1)
        return xp.where(valid, value, -math.inf)

    def entropy(self) -> Array:
        r""":math:`n H(p) - \log n! + \sum_k E \log X_k!`, :math:`X_k \sim \mathrm{Bin}(n, p_k)`."""
        xp = self.xp
        n = self.total_count
        marginals = Binomial(n[..., None], probs=self.probs, validate=False)
        marginals._count_bound = self._count_bound
        k = enumerated_counts(self._count_bound, "Multinomial", "entropy", self.probs, xp=xp)
        k = xp.reshape(k, (k.shape[0],) + (1,) * (len(self.batch_shape) + 1))
        weights = xp.exp(marginals.log_prob(k)) * gammaln(k + 1.0, xp=xp)
        expected_log_factorials = xp.sum(xp.sum(weights, axis=0), axis=-1)
        return n * self._categorical.entropy() - gammaln(n + 1.0, xp=xp) + expected_log_factorials

    @property
    def mean(self) -> Array:
        """:math:`n p`."""
        return self.total_count[..., None] * self.probs

    @property
    def variance(self) -> Array:
        """:math:`n p (1 - p)`."""
        return self.total_count[..., None] * self.probs * (1.0 - self.probs)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        # Conditional binomials: X_k ~ Bin(n - sum_{j<k} X_j, p_k / (1 - sum_{j<k} p_j)).
        xp = self.xp
        full = (*shape, *self.batch_shape)
        probs = xp.broadcast_to(self.probs, (*full, self.num_events))
        remaining = xp.broadcast_to(self.total_count, full)
        mass_left = xp.ones_like(remaining)
        counts = []
        rngs = split_rng(rng, max(self.num_events - 1, 1), xp=xp)
        for k in range(self.num_events - 1):
            p_k = probs[..., k]
            has_mass = mass_left > 0
            share = xp.where(has_mass, p_k / xp.where(has_mass, mass_left, 1.0), 0.0)
            drawn = binomial(rngs[k], remaining, xp.clip(share, 0.0, 1.0), xp=xp)
            counts.append(drawn)
            remaining = remaining - drawn
            mass_left = mass_left - p_k
        counts.append(remaining)
        return xp.stack(counts, axis=-1)

    @property
    def num_events(self) -> int:
        """The number of categories :math:`K`."""
        return int(self.probs.shape[-1])
