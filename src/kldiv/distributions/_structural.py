r"""Structural distributions: Independent, Deterministic (Delta), MixtureSameFamily.

They are built from other distributions or from a point, with the semantics
of ``torch.distributions`` (``Independent``, ``MixtureSameFamily``) and of
TFP / Pyro (``Deterministic``, ``Delta``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from kldiv._array_api import device
from kldiv._special import log_softmax, logsumexp_or_minus_inf
from kldiv.distributions._base import Distribution, float_parameters
from kldiv.distributions._constraints import real
from kldiv.distributions._random import split_rng, standard_uniform
from kldiv.errors import KLDivError

__all__ = ["Delta", "Deterministic", "Independent", "MixtureSameFamily", "TransformedDistribution"]

Array = Any


def _sum_rightmost(x: Array, count: int, *, xp: Any) -> Array:
    """``x`` summed over its last ``count`` axes."""
    return x if count == 0 else xp.sum(x, axis=tuple(range(-count, 0)))


def _whole_number(value: object, name: str, owner: str, upper: int) -> int:
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or not 0 <= int(value) <= upper
    ):
        raise KLDivError(
            f"`{name}` of {owner} must be a whole number in [0, {upper}]; got {value!r}"
        )
    return int(value)


def _check_distribution(value: object, name: str, owner: str) -> None:
    if not isinstance(value, Distribution):
        raise KLDivError(
            f"`{name}` of {owner} must be a kldiv distribution; got "
            f"{type(value).__module__}.{type(value).__qualname__}"
        )


class _OverBase(Distribution):
    """A distribution defined over another one (``base_distribution``): shared plumbing."""

    base_distribution: Distribution

    def _init_over(
        self,
        base: Distribution,
        *,
        batch_shape: tuple[int, ...],
        event_shape: tuple[int, ...],
        validate: bool | None,
    ) -> None:
        """Sets ``base_distribution`` and the shapes; dtype, discreteness, rsample: the base's."""
        self.base_distribution = base
        Distribution.__init__(
            self,
            xp=base.xp,
            batch_shape=batch_shape,
            event_shape=event_shape,
            dtype=base.dtype,
            validate=base.validate if validate is None else validate,
        )
        self.is_discrete = base.is_discrete
        self.has_rsample = base.has_rsample

    @property
    def parameters(self) -> dict[str, Array]:
        """The base distribution's parameters."""
        return self.base_distribution.parameters


class Independent(_OverBase):
    r"""Reinterprets the rightmost batch dimensions of a distribution as event dimensions.

    .. math::

        \log p(x) = \sum_{i} \log p_{\text{base}}(x_i)

    summed over the ``reinterpreted_batch_ndims`` rightmost batch axes of the
    base distribution, which join its event shape (``torch.distributions``
    semantics): ``Independent(Normal(loc, scale), 1)`` with ``loc`` of shape
    ``[B, d]`` is a batch of ``B`` diagonal Gaussians in ``d`` dimensions.
    ``entropy`` is summed the same way; ``mean``, ``variance`` and ``sample``
    are the base distribution's.

    Args:
        base_distribution: the distribution whose batch axes are reinterpreted.
        reinterpreted_batch_ndims: how many rightmost batch axes become event
            axes, between 0 and ``len(base_distribution.batch_shape)``.
        validate: unused (the base distribution checked its parameters); kept
            for a uniform signature.

    Examples:
        >>> import numpy as np
        >>> from kldiv import distributions as D
        >>> d = D.Independent(D.Normal(np.zeros((4, 3)), 1.0), 1)
        >>> d.batch_shape, d.event_shape
        ((4,), (3,))
        >>> round(float(d.log_prob(np.zeros(3))[0]), 6)  # 3 * log N(0; 0, 1)
        -2.756816
    """

    def __init__(
        self,
        base_distribution: Distribution,
        reinterpreted_batch_ndims: int,
        *,
        validate: bool | None = None,
    ) -> None:
        owner = "Independent"
        _check_distribution(base_distribution, "base_distribution", owner)
        base_batch = base_distribution.batch_shape
        count = _whole_number(
            reinterpreted_batch_ndims, "reinterpreted_batch_ndims", owner, len(base_batch)
        )
        split = len(base_batch) - count
        self.reinterpreted_batch_ndims = count
        self._init_over(
            base_distribution,
            batch_shape=base_batch[:split],
            event_shape=base_batch[split:] + base_distribution.event_shape,
            validate=validate,
        )

    def __repr__(self) -> str:
        return (
            f"Independent({self.base_distribution!r}, "
            f"reinterpreted_batch_ndims={self.reinterpreted_batch_ndims})"
        )

    def _like(self) -> Array:
        return self.base_distribution._like()

    def log_prob(self, value: Array) -> Array:
        """The base log density summed over the reinterpreted axes."""
        return _sum_rightmost(
            self.base_distribution.log_prob(value), self.reinterpreted_batch_ndims, xp=self.xp
        )

    def entropy(self) -> Array:
        """The base entropy summed over the reinterpreted axes."""
        return _sum_rightmost(
            self.base_distribution.entropy(), self.reinterpreted_batch_ndims, xp=self.xp
        )

    @property
    def mean(self) -> Array:
        """The base distribution's mean."""
        return self.base_distribution.mean

    @property
    def variance(self) -> Array:
        """The base distribution's variance."""
        return self.base_distribution.variance

    def support_bounds(self) -> tuple[Array, Array]:
        """The base bounds, widened over the reinterpreted axes."""
        xp, count = self.xp, self.reinterpreted_batch_ndims
        lower, upper = self.base_distribution.support_bounds()
        if count == 0:
            return lower, upper
        axes = tuple(range(-count, 0))
        return xp.min(lower, axis=axes), xp.max(upper, axis=axes)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        return self.base_distribution._sample(shape, rng)


class Deterministic(Distribution):
    r"""A point mass :math:`\delta_a`: all probability at ``loc``.

    .. math::

        P(X = a) = 1, \qquad \log p(x) = 0 \text{ if } x = a \text{ else } -\infty

    ``event_ndims`` trailing axes of ``loc`` form one point (``event_ndims=1``
    for a point in :math:`\mathbb R^d`). It is discrete (``log_prob`` is a log
    mass), its entropy and variance are 0, and its samples are ``loc``
    (differentiable in ``loc``). ``Delta`` is the same class (Pyro's name).

    Args:
        loc: the point :math:`a`, any shape.
        event_ndims: how many trailing axes of ``loc`` form one point.
        validate: check that ``loc`` is finite (None: the global default).

    Examples:
        >>> import numpy as np
        >>> from kldiv import distributions as D
        >>> d = D.Deterministic(np.array([0.0, 1.0]))
        >>> d.log_prob(np.array([0.0, 2.0]))
        array([  0., -inf])
        >>> D.Delta(np.zeros((2, 3)), event_ndims=1).event_shape
        (3,)
    """

    arg_constraints = {"loc": real}
    is_discrete = True
    has_rsample = True

    def __init__(self, loc: Array, event_ndims: int = 0, *, validate: bool | None = None) -> None:
        owner = "Deterministic"
        xp, arrays = float_parameters({"loc": loc}, owner)
        self.loc = arrays["loc"]
        self.event_ndims = _whole_number(event_ndims, "event_ndims", owner, self.loc.ndim)
        shape = tuple(self.loc.shape)
        split = len(shape) - self.event_ndims
        super().__init__(
            xp=xp,
            batch_shape=shape[:split],
            event_shape=shape[split:],
            dtype=self.loc.dtype,
            validate=validate,
        )
        self._check_parameters()

    def _at_loc(self, value: Array) -> Array:
        """Where ``value`` equals ``loc`` (every entry of the event)."""
        xp = self.xp
        equal = value == self.loc
        return xp.all(equal, axis=tuple(range(-self.event_ndims, 0))) if self.event_ndims else equal

    def log_prob(self, value: Array) -> Array:
        """0 where ``value`` equals ``loc``, ``-inf`` elsewhere."""
        xp = self.xp
        at_loc = self._at_loc(self._value(value))
        zeros = xp.zeros(at_loc.shape, dtype=self.dtype, device=device(self.loc))
        return xp.where(at_loc, zeros, -math.inf)

    def entropy(self) -> Array:
        """0."""
        return self.xp.zeros(self.batch_shape, dtype=self.dtype, device=device(self.loc))

    @property
    def mean(self) -> Array:
        """``loc``."""
        return self.loc

    @property
    def variance(self) -> Array:
        """0."""
        return self.xp.zeros_like(self.loc)

    def support_bounds(self) -> tuple[Array, Array]:
        """``(loc, loc)`` (the smallest and largest entry of each point for event_ndims > 0)."""
        xp = self.xp
        if not self.event_ndims:
            return self.loc, self.loc
        axes = tuple(range(-self.event_ndims, 0))
        return xp.min(self.loc, axis=axes), xp.max(self.loc, axis=axes)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        return self.loc + xp.zeros(
            self._extended_shape(shape), dtype=self.dtype, device=device(self.loc)
        )


Delta = Deterministic


class MixtureSameFamily(Distribution):
    r"""A finite mixture of distributions of one family.

    .. math::

        p(x) = \sum_{k=1}^{K} w_k \, p_k(x)

    with weights :math:`w` from ``mixture_distribution`` (a ``Categorical``
    over :math:`K` components) and components from ``component_distribution``,
    whose rightmost batch axis indexes the :math:`K` components
    (``torch.distributions`` semantics). ``log_prob`` is a log-sum-exp,
    ``sample`` draws a component per point and takes its draw, and ``mean``
    and ``variance`` follow from the law of total variance. There is no closed
    form for its entropy or its KL divergence: :func:`kldiv.kl_divergence`
    raises :class:`kldiv.NoClosedFormError` (use :func:`kldiv.estimate`).

    Args:
        mixture_distribution: a ``Categorical`` with batch shape compatible with
            the components' batch shape without its last axis.
        component_distribution: a distribution with batch shape ``[..., K]``.
        validate: unused (the parts checked their parameters).

    Examples:
        >>> import numpy as np
        >>> from kldiv import distributions as D
        >>> mix = D.MixtureSameFamily(
        ...     D.Categorical(probs=np.array([0.25, 0.75])),
        ...     D.Normal(np.array([-1.0, 1.0]), np.array([1.0, 1.0])),
        ... )
        >>> float(mix.mean)
        0.5
        >>> float(mix.variance)  # 1 + (0.25 * 1 + 0.75 * 1) - 0.5 ** 2
        1.75
    """

    has_rsample = False

    def __init__(
        self,
        mixture_distribution: Distribution,
        component_distribution: Distribution,
        *,
        validate: bool | None = None,
    ) -> None:
        owner = "MixtureSameFamily"
        _check_distribution(mixture_distribution, "mixture_distribution", owner)
        _check_distribution(component_distribution, "component_distribution", owner)
        if not hasattr(mixture_distribution, "logits") or mixture_distribution.event_shape:
            raise KLDivError(
                f"`mixture_distribution` of {owner} must be a Categorical; got "
                f"{type(mixture_distribution).__name__}"
            )
        if mixture_distribution.xp is not component_distribution.xp:
            raise KLDivError(
                f"the parts of {owner} must hold parameters of the same array library; got "
                f"{mixture_distribution.xp.__name__} and {component_distribution.xp.__name__}"
            )
        component_batch = component_distribution.batch_shape
        if not component_batch:
            raise KLDivError(
                f"`component_distribution` of {owner} must have at least one batch axis (the "
                "components, last); got batch shape ()"
            )
        count = int(mixture_distribution.logits.shape[-1])
        if component_batch[-1] != count:
            raise KLDivError(
                f"{owner}: `mixture_distribution` has {count} categories but "
                f"`component_distribution` has {component_batch[-1]} components (its last batch "
                f"axis, batch shape {component_batch})"
            )
        try:
            batch = tuple(
                np.broadcast_shapes(mixture_distribution.batch_shape, component_batch[:-1])
            )
        except ValueError:
            raise KLDivError(
                f"the batch shape {mixture_distribution.batch_shape} of `mixture_distribution` "
                f"of {owner} does not broadcast with {component_batch[:-1]}, the batch shape of "
                "`component_distribution` without its last axis"
            ) from None
        self.mixture_distribution = mixture_distribution
        self.component_distribution = component_distribution
        super().__init__(
            xp=component_distribution.xp,
            batch_shape=batch,
            event_shape=component_distribution.event_shape,
            dtype=component_distribution.dtype,
            validate=component_distribution.validate if validate is None else validate,
        )
        self.is_discrete = component_distribution.is_discrete

    @property
    def parameters(self) -> dict[str, Array]:
        """The components' parameters and the mixture's logits."""
        return {
            **self.component_distribution.parameters,
            "mixture_logits": self.mixture_distribution.logits,
        }

    def __repr__(self) -> str:
        return f"MixtureSameFamily({self.mixture_distribution!r}, {self.component_distribution!r})"

    def _like(self) -> Array:
        return self.component_distribution._like()

    @property
    def _component_axis(self) -> int:
        """The components' axis in arrays of shape ``batch + (K,) + event``."""
        return -1 - len(self.event_shape)

    def _log_weights(self) -> Array:
        logits = self.mixture_distribution.logits
        if logits.dtype != self.dtype:
            logits = self.xp.astype(logits, self.dtype)
        return log_softmax(logits, -1, xp=self.xp)

    def _weights_over_events(self) -> Array:
        """The weights, shape ``batch + (K,) + (1,) * event_ndims``."""
        weights = self.xp.exp(self._log_weights())
        return weights[(..., *([None] * len(self.event_shape)))]

    def log_prob(self, value: Array) -> Array:
        r""":math:`\log \sum_k w_k p_k(x)`, by log-sum-exp."""
        xp = self.xp
        x = self._value(value)
        padded = xp.expand_dims(x, axis=x.ndim - len(self.event_shape))
        log_components = self.component_distribution.log_prob(padded)
        return logsumexp_or_minus_inf(log_components + self._log_weights(), -1, xp=xp)

    @property
    def mean(self) -> Array:
        r""":math:`\sum_k w_k \mu_k`."""
        means = self.component_distribution.mean
        return self.xp.sum(self._weights_over_events() * means, axis=self._component_axis)

    @property
    def variance(self) -> Array:
        r"""By the law of total variance.

        :math:`\sum_k w_k \sigma_k^2 + \sum_k w_k (\mu_k - \bar\mu)^2`.
        """
        xp, axis = self.xp, self._component_axis
        weights = self._weights_over_events()
        means = self.component_distribution.mean
        overall = xp.sum(weights * means, axis=axis)
        spread = means - xp.expand_dims(overall, axis=axis)
        within = xp.sum(weights * self.component_distribution.variance, axis=axis)
        return within + xp.sum(weights * spread * spread, axis=axis)

    def support_bounds(self) -> tuple[Array, Array]:
        """The widest of the components' bounds."""
        xp = self.xp
        lower, upper = self.component_distribution.support_bounds()
        return xp.min(lower, axis=-1), xp.max(upper, axis=-1)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        rng_components, rng_choice = split_rng(rng, 2, xp=xp)
        draws = self.component_distribution._sample(shape, rng_components)
        weights = xp.exp(self._log_weights())
        count = weights.shape[-1]
        upper_edges = xp.cumulative_sum(weights, axis=-1)[..., :-1]
        u = standard_uniform(rng_choice, (*shape, *self.batch_shape, 1), xp=xp, like=weights)
        chosen = xp.sum(xp.astype(u >= upper_edges, xp.int32), axis=-1)
        positions = xp.arange(count, dtype=xp.int32, device=device(weights))
        one_hot = chosen[..., None] == positions
        one_hot = one_hot[(..., *([None] * len(self.event_shape)))]
        picked = xp.where(one_hot, draws, xp.zeros_like(draws))
        return xp.sum(picked, axis=self._component_axis)


class TransformedDistribution(_OverBase):
    r"""A base distribution pushed through a chain of invertible transforms :math:`Y = f(X)`.

    .. math::

        \log p_Y(y) = \log p_X(f^{-1}(y)) - \log\left|\det J_f(f^{-1}(y))\right|

    The transforms are objects with the interface of ``torch.distributions``
    transforms (``inv``, ``log_abs_det_jacobian(x, y)``, ``domain.event_dim``,
    ``codomain.event_dim``, called on the base's arrays); ``from_torch`` builds
    one from ``torch.distributions.TransformedDistribution`` and its subclasses
    kldiv has no own family for (``LogisticNormal``, ...). KL is invariant under
    a bijection applied to both sides, so the registered pair returns
    D(base_P ‖ base_Q) when the two transform chains are equal.

    Args:
        base_distribution: the kldiv distribution of :math:`X`.
        transforms: one transform or a sequence of them, applied in order.
        event_shape: the event shape of :math:`Y` (a transform may change it,
            e.g. stick-breaking adds one coordinate).
        batch_shape: the batch shape of :math:`Y` (default: the base's).

    Examples:
        >>> import torch
        >>> import kldiv
        >>> from torch.distributions import LogisticNormal
        >>> p = LogisticNormal(torch.zeros(2), torch.ones(2))
        >>> q = LogisticNormal(torch.ones(2), torch.ones(2))
        >>> float(kldiv.kl_divergence(p, q))
        1.0
    """

    def __init__(
        self,
        base_distribution: Distribution,
        transforms: Any,
        *,
        event_shape: Any = None,
        batch_shape: Any = None,
        validate: bool | None = None,
    ) -> None:
        owner = "TransformedDistribution"
        _check_distribution(base_distribution, "base_distribution", owner)
        if not isinstance(transforms, (list, tuple)):
            transforms = [transforms]
        self.transforms = list(transforms)
        self._init_over(
            base_distribution,
            batch_shape=base_distribution.batch_shape if batch_shape is None else batch_shape,
            event_shape=base_distribution.event_shape if event_shape is None else event_shape,
            validate=validate,
        )

    def __repr__(self) -> str:
        return f"TransformedDistribution({self.base_distribution!r}, {self.transforms!r})"

    def _like(self) -> Array:
        return self.base_distribution._like()

    def log_prob(self, value: Array) -> Array:
        """The change-of-variables log density (as ``torch.distributions``)."""
        xp = self.xp
        y = self._value(value)
        event_dim = len(self.event_shape)
        total = 0.0
        for transform in reversed(self.transforms):
            x = transform.inv(y)
            event_dim += transform.domain.event_dim - transform.codomain.event_dim
            jacobian = transform.log_abs_det_jacobian(x, y)
            total = total - _sum_rightmost(jacobian, event_dim - transform.domain.event_dim, xp=xp)
            y = x
        base = self.base_distribution.log_prob(y)
        return total + _sum_rightmost(
            base, event_dim - len(self.base_distribution.event_shape), xp=xp
        )

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        x = self.base_distribution._sample(shape, rng)
        for transform in self.transforms:
            x = transform(x)
        return x


def _kl_transformed_transformed(p: TransformedDistribution, q: TransformedDistribution) -> Array:
    r"""D(f(X_P) ‖ f(X_Q)) = D(X_P ‖ X_Q) for one bijection :math:`f` (torch's rule).

    Raises :class:`kldiv.NoClosedFormError` unless both chains are equal
    (``==`` transform by transform) and the event shapes agree.
    """
    from kldiv.distributions._registry import kl_divergence
    from kldiv.errors import NoClosedFormError

    if p.transforms != q.transforms or p.event_shape != q.event_shape:
        raise NoClosedFormError(
            "no closed form for KL between TransformedDistributions with different transforms "
            "or event shapes; use kldiv.estimate(p, q)"
        )
    return kl_divergence(p.base_distribution, q.base_distribution)


def _register() -> None:
    from kldiv.distributions._registry import register_kl

    register_kl(TransformedDistribution, TransformedDistribution)(_kl_transformed_transformed)


_register()
