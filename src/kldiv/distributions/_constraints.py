"""Parameter constraints: what a parameter must satisfy, as a mask and in words.

A constraint is checked eagerly when a distribution is built (unless
validation is off or the parameter is traced or lazy); the error names the
parameter, the distribution, the rule and the first offending value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import is_traced, size, to_numpy
from kldiv.errors import KLDivError

__all__ = [
    "Constraint",
    "check_parameter",
    "greater_than",
    "integer_at_least",
    "nonnegative",
    "open_unit_interval",
    "positive",
    "real",
    "real_vector",
    "simplex",
    "unit_interval",
]

Array = Any


@dataclass(frozen=True)
class Constraint:
    """A rule for a parameter: ``holds(value, xp)`` is a boolean mask of where it holds.

    ``event_ndim`` says how many trailing axes one checked item spans (a
    simplex is checked row by row); the mask has the other axes.
    """

    description: str
    holds: Callable[[Array, ModuleType], Array]
    event_ndim: int = 0


real = Constraint("finite real numbers", lambda v, xp: xp.isfinite(v))
positive = Constraint("finite numbers > 0", lambda v, xp: xp.isfinite(v) & (v > 0))
nonnegative = Constraint("finite numbers >= 0", lambda v, xp: xp.isfinite(v) & (v >= 0))
unit_interval = Constraint("numbers in [0, 1]", lambda v, xp: (v >= 0) & (v <= 1))
open_unit_interval = Constraint("numbers in (0, 1)", lambda v, xp: (v > 0) & (v < 1))
real_vector = Constraint(
    "vectors of finite real numbers", lambda v, xp: xp.all(xp.isfinite(v), axis=-1), 1
)


def greater_than(bound: float) -> Constraint:
    """Finite numbers strictly above ``bound``."""
    return Constraint(f"finite numbers > {bound:g}", lambda v, xp: xp.isfinite(v) & (v > bound))


def integer_at_least(bound: int) -> Constraint:
    """Whole numbers >= ``bound`` (held in a floating array)."""
    return Constraint(
        f"whole numbers >= {bound}",
        lambda v, xp: xp.isfinite(v) & (v >= bound) & (xp.floor(v) == v),
    )


def _on_simplex(v: Array, xp: ModuleType) -> Array:
    tolerance = max(float(np.sqrt(float(xp.finfo(v.dtype).eps))), 1e-6)
    nonneg = xp.all(xp.isfinite(v) & (v >= 0), axis=-1)
    return nonneg & (xp.abs(xp.sum(v, axis=-1) - 1.0) <= tolerance)


simplex = Constraint("probability vectors (entries >= 0 summing to 1)", _on_simplex, 1)


def check_parameter(
    value: Array,
    name: str,
    constraint: Constraint,
    owner: str,
    *,
    validate: bool,
    xp: ModuleType,
) -> None:
    """Raises :class:`KLDivError` when ``value`` breaks ``constraint``.

    Skipped when ``validate`` is False and for traced or lazy arrays (jit,
    torch.compile, Dask), whose values cannot be read.
    """
    if not validate or is_traced(value) or not size(value):
        return
    ok = constraint.holds(value, xp)
    if bool(xp.all(ok)):
        return
    index = tuple(int(i) for i in np.argwhere(~to_numpy(ok))[0])
    shown = to_numpy(value)[index] if index or value.ndim else to_numpy(value)
    if constraint.event_ndim:
        shown = np.array2string(np.asarray(shown), precision=6, threshold=8)
    else:
        shown = repr(float(shown))
    where = f" at batch index {index}" if index else ""
    raise KLDivError(f"`{name}` of {owner} must hold {constraint.description}; got {shown}{where}")
