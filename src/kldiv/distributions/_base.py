"""The base class of kldiv's distributions: parameters of any backend, shapes, checks.

A distribution is a container of parameters held as arrays of one array
library (NumPy, PyTorch, JAX, array-api-strict, ...), with the class and
parameter names of ``torch.distributions``. It knows its ``batch_shape`` and
``event_shape``, evaluates ``log_prob``, draws ``sample``s with the backend's
own random state and, where it has one, its ``entropy``. The maths of the
divergences between distributions lives in the registry
(:mod:`kldiv.distributions._registry`), not here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from kldiv._array_api import as_float_arrays, device
from kldiv._validation import resolve_validate
from kldiv.distributions._constraints import Constraint, check_parameter
from kldiv.distributions._random import as_rng
from kldiv.errors import KLDivError

__all__ = ["Distribution", "broadcast_parameters", "float_parameters"]

Array = Any


def float_parameters(named: dict[str, object], owner: str) -> tuple[ModuleType, dict[str, Array]]:
    """The parameters in one namespace and one floating dtype.

    Every parameter named must be given: a None (a required parameter left
    out) is a :class:`KLDivError` naming it, not a ``KeyError`` later on.

    Python numbers and sequences become arrays of the namespace of the array
    parameters (NumPy if there are none); integers become the default float;
    half precision is computed in float32.
    """
    missing = [n for n, v in named.items() if v is None]
    if missing:
        raise KLDivError(
            f"`{missing[0]}` of {owner} must be a number or an array of numbers; got None"
        )
    names = list(named)
    try:
        xp, arrays, _, _ = as_float_arrays(*(named[n] for n in names), names=names)
    except KLDivError as err:
        raise KLDivError(f"{owner}: {err}") from None
    return xp, dict(zip(names, arrays, strict=True))


def broadcast_parameters(
    arrays: dict[str, Array],
    owner: str,
    *,
    xp: ModuleType,
    event_ndims: dict[str, int] | None = None,
) -> tuple[dict[str, Array], tuple[int, ...]]:
    """Broadcasts the parameters' batch shapes; returns them and the batch shape.

    ``event_ndims`` gives, per parameter, how many trailing axes belong to one
    distribution (1 for a mean vector, 2 for a covariance matrix); those axes
    are kept as they are and only the leading (batch) axes broadcast.
    """
    event_ndims = event_ndims or {}
    batch_shapes = {n: tuple(a.shape[: a.ndim - event_ndims.get(n, 0)]) for n, a in arrays.items()}
    for name, array in arrays.items():
        if array.ndim < event_ndims.get(name, 0):
            raise KLDivError(
                f"`{name}` of {owner} must have at least {event_ndims[name]} dimension(s); "
                f"got shape {tuple(array.shape)}"
            )
    try:
        batch = tuple(np.broadcast_shapes(*batch_shapes.values()))
    except ValueError:
        described = ", ".join(f"`{n}` {s}" for n, s in batch_shapes.items())
        raise KLDivError(f"the parameters of {owner} do not broadcast: {described}") from None
    out = {}
    for name, array in arrays.items():
        event = tuple(array.shape[array.ndim - event_ndims.get(name, 0) :])
        shape = batch + event
        out[name] = array if tuple(array.shape) == shape else xp.broadcast_to(array, shape)
    return out, batch


class Distribution:
    """Base class: a batch of distributions whose parameters are arrays of one backend.

    Subclasses declare ``arg_constraints`` (checked when built unless
    ``validate=False``), ``is_discrete`` and ``has_rsample``, and implement
    ``log_prob``, ``_sample`` and, where known, ``entropy``, ``mean`` and
    ``variance``.

    Attributes:
        batch_shape: the shape of the batch of independent distributions.
        event_shape: the shape of one draw (``()`` for scalars).
        xp: the array namespace of the parameters.
        dtype: the floating dtype the parameters are held in.
    """

    arg_constraints: ClassVar[dict[str, Constraint]] = {}
    is_discrete: ClassVar[bool] = False
    has_rsample: ClassVar[bool] = False
    support_lower: ClassVar[float] = -math.inf
    support_upper: ClassVar[float] = math.inf

    def __init__(
        self,
        *,
        xp: ModuleType,
        batch_shape: Sequence[int],
        event_shape: Sequence[int] = (),
        dtype: Any,
        validate: bool | None = None,
    ) -> None:
        self.xp = xp
        self.batch_shape = tuple(batch_shape)
        self.event_shape = tuple(event_shape)
        self.dtype = dtype
        self.validate = resolve_validate(validate)

    def _check_parameters(self) -> None:
        """Checks every parameter named in ``arg_constraints`` (when validating)."""
        for name, constraint in self.arg_constraints.items():
            value = getattr(self, name, None)
            if value is not None:
                check_parameter(
                    value, name, constraint, type(self).__name__, validate=self.validate, xp=self.xp
                )

    @property
    def parameters(self) -> dict[str, Array]:
        """The parameters by name, as stored (broadcast to the batch shape)."""
        return {name: getattr(self, name) for name in self.arg_constraints}

    def __repr__(self) -> str:
        shown = []
        for name, value in self.parameters.items():
            if value is None:
                continue
            if not getattr(value, "shape", ()):
                shown.append(f"{name}: {float(value)!r}" if hasattr(value, "dtype") else name)
            else:
                shown.append(f"{name}: shape {tuple(value.shape)}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def log_prob(self, value: Array) -> Array:
        """The log density (or log mass) at ``value``, of shape ``sample + batch``."""
        raise NotImplementedError(f"{type(self).__name__} does not define log_prob")

    def entropy(self) -> Array:
        """The differential (or Shannon) entropy in nats, of shape ``batch_shape``."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form entropy")

    @property
    def mean(self) -> Array:
        """The mean, of shape ``batch_shape + event_shape``."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form mean")

    @property
    def variance(self) -> Array:
        """The variance, of shape ``batch_shape + event_shape``."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form variance")

    @property
    def stddev(self) -> Array:
        """The standard deviation."""
        return self.xp.sqrt(self.variance)

    def sample(self, shape: Sequence[int] = (), rng: object = None) -> Array:
        """Draws of shape ``shape + batch_shape + event_shape``.

        Args:
            shape: the sample shape, prepended to the batch and event shapes.
            rng: the backend's random state: a ``numpy.random.Generator``, a
                ``torch.Generator`` (None: torch's global one), a JAX key, or an
                int seed for any backend.

        Returns:
            An array of the parameters' backend. Reparameterised (differentiable
            in the parameters) when ``has_rsample`` is True.
        """
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(int(s) for s in shape)
        like = self._like()
        return self._sample(shape, as_rng(rng, xp=self.xp, like=like))

    def support_bounds(self) -> tuple[Array, Array]:
        """The interval ``(lower, upper)`` holding the support, per batch element.

        Class-wide bounds by default; parameter-dependent for Uniform, Pareto, ...
        """
        xp = self.xp
        zeros = xp.zeros(self.batch_shape, dtype=self.dtype, device=device(self._like()))
        return zeros + self.support_lower, zeros + self.support_upper

    def _like(self) -> Array:
        return next(v for v in self.parameters.values() if v is not None)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        raise NotImplementedError(f"{type(self).__name__} does not define sample")

    def _extended_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape) + self.batch_shape + self.event_shape

    def _value(self, value: object) -> Array:
        """``value`` as an array of this distribution's namespace and dtype."""
        xp = self.xp
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            return xp.asarray(value, dtype=self.dtype, device=device(self._like()))
        return value if value.dtype == self.dtype else xp.astype(value, self.dtype)
