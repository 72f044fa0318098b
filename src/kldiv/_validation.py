"""Argument checks shared by every public function.

Shape, dtype and parameter checks always run. Value checks (negative or NaN
probabilities, rows that do not sum to one) run eagerly, are skipped for traced
and lazy arrays (``jax.jit``, ``torch.compile``, Dask) and can be switched off
per call (``validate=False``) or globally (:func:`set_default_validate`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import is_traced, size, to_numpy
from kldiv.errors import KLDivError

__all__ = [
    "check_below_plus_inf",
    "check_beta",
    "check_event_axis",
    "check_log_probabilities",
    "check_logits",
    "check_nonnegative",
    "check_nonnegative_number",
    "check_probabilities",
    "check_temperature",
    "log_of_base",
    "resolve_validate",
    "set_default_validate",
    "sum_tolerance",
]

Array = Any

_default_validate = True


def set_default_validate(enabled: bool) -> bool:
    """Switches the eager value checks on or off for calls that pass ``validate=None``.

    Args:
        enabled: the new default.

    Returns:
        The previous default, so that it can be restored.

    Examples:
        >>> import kldiv
        >>> previous = kldiv.set_default_validate(False)
        >>> _ = kldiv.set_default_validate(previous)
    """
    global _default_validate
    if not isinstance(enabled, bool):
        raise KLDivError(f"`enabled` must be True or False; got {enabled!r}")
    previous, _default_validate = _default_validate, enabled
    return previous


def resolve_validate(validate: bool | None) -> bool:
    """The per-call ``validate`` flag, falling back to the global default."""
    if validate is None:
        return _default_validate
    if not isinstance(validate, bool):
        raise KLDivError(f"`validate` must be True, False or None; got {validate!r}")
    return validate


def _is_real_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def log_of_base(base: object) -> float | None:
    """``log(base)`` for unit conversion; None means nats (no conversion)."""
    if base is None:
        return None
    if not _is_real_number(base) or not math.isfinite(base) or base <= 0 or base == 1:
        raise KLDivError(
            f"`base` must be None (nats) or a positive finite number other than 1 "
            f"(2 for bits, 10 for hartleys); got {base!r}"
        )
    return math.log(base)


def check_nonnegative_number(value: object, name: str) -> float:
    """A finite real number >= 0 (a loss weight, a floor, a target)."""
    if not _is_real_number(value) or not math.isfinite(value) or value < 0:
        raise KLDivError(f"`{name}` must be a finite number >= 0; got {value!r}")
    return float(value)


def check_temperature(temperature: object) -> float:
    """A softmax temperature: a positive finite number."""
    if not _is_real_number(temperature) or not math.isfinite(temperature) or temperature <= 0:
        raise KLDivError(f"`temperature` must be a positive finite number; got {temperature!r}")
    return float(temperature)


def check_beta(beta: object) -> float:
    """A mixture weight of the generalized Jensen–Shannon divergence, in [0, 1]."""
    if not _is_real_number(beta) or not 0.0 <= beta <= 1.0:
        raise KLDivError(f"`beta` must be a number in [0, 1]; got {beta!r}")
    return float(beta)


def check_event_axis(arrays: Sequence[Array], names: Sequence[str], axis: object) -> int:
    """Checks shapes and returns ``axis`` as a negative index valid for every operand.

    The operands must broadcast against each other, and all must have the same
    length along the event axis: the distributions themselves never broadcast.

    Returns:
        The event axis as a negative integer (it then names the same dimension in
        every operand and in their broadcast).
    """
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise KLDivError(f"`axis` must be an integer; got {axis!r}")
    shapes = [tuple(a.shape) for a in arrays]
    try:
        out_shape = np.broadcast_shapes(*shapes)
    except ValueError:
        described = ", ".join(f"`{n}` {s}" for n, s in zip(names, shapes, strict=True))
        raise KLDivError(f"the inputs' shapes do not broadcast: {described}") from None
    ndim = len(out_shape)
    if ndim == 0:
        raise KLDivError(
            "the inputs must have at least one dimension (the event axis); got scalars"
        )
    if not -ndim <= axis < ndim:
        raise KLDivError(
            f"`axis` must be in [{-ndim}, {ndim - 1}] for inputs of shape {out_shape}; got {axis}"
        )
    negative = int(axis) - ndim if axis >= 0 else int(axis)
    events = out_shape[negative]
    if events == 0:
        raise KLDivError(
            f"the event axis {axis} must have at least one entry; got shape {out_shape}"
        )
    for name, shape in zip(names, shapes, strict=True):
        if len(shape) < -negative or shape[negative] != events:
            got = "no such axis" if len(shape) < -negative else f"{shape[negative]} entries"
            raise KLDivError(
                f"`{name}` of shape {shape} must have {events} entries along the event axis "
                f"{axis} like the other inputs (distributions are not broadcast); got {got}"
            )
    return negative


def sum_tolerance(dtype: Any, xp: ModuleType) -> float:
    """How far a row sum may be from 1: ``max(sqrt(eps), 1e-6)`` of the input dtype.

    float64: 1e-6 (room for probabilities computed in float32 and cast up),
    float32: 3.5e-4, float16: 3.1e-2, bfloat16: 8.8e-2.
    """
    return max(math.sqrt(float(xp.finfo(dtype).eps)), 1e-6)


def _first_index(mask: Array) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(to_numpy(mask))[0])


def _should_check(array: Array, validate: bool) -> bool:
    return validate and not is_traced(array)


def _check_row_sums(
    totals: Array, name: str, axis: int, tolerance: float, what: str, xp: ModuleType
) -> None:
    off = ~(xp.abs(totals - 1.0) <= tolerance)
    if bool(xp.any(off)):
        index = _first_index(off)
        value = float(to_numpy(totals)[index])
        raise KLDivError(
            f"`{name}` must be {what} summing to 1 along axis {axis} (within {tolerance:.1e}); "
            f"the distribution at batch index {index} sums to {value:.9g}"
        )


def check_probabilities(
    p: Array, name: str, axis: int, tolerance: float, *, validate: bool, xp: ModuleType
) -> None:
    """Probabilities: finite, non-negative, each row summing to 1 within ``tolerance``.

    The common case costs two reductions: the minimum (NaN propagates through
    it) and the row sums (+inf shows there); masks are built only to describe
    an error.
    """
    if not _should_check(p, validate):
        return
    if not size(p):
        return
    totals = xp.sum(p, axis=axis)
    if not (bool(xp.min(p) >= 0) and bool(xp.all(xp.isfinite(totals)))):
        check_nonnegative(p, name, validate=validate, xp=xp, what="probabilities")
    _check_row_sums(totals, name, axis, tolerance, "probabilities", xp)


def check_nonnegative(
    p: Array, name: str, *, validate: bool, xp: ModuleType, what: str = "non-negative values"
) -> None:
    """Finite, non-negative entries."""
    if not _should_check(p, validate):
        return
    bad = ~(xp.isfinite(p) & (p >= 0))
    if bool(xp.any(bad)):
        index = _first_index(bad)
        raise KLDivError(
            f"`{name}` must hold {what} (finite and >= 0); "
            f"got {float(to_numpy(p)[index])} at index {index}"
        )


def check_below_plus_inf(values: Array, name: str, what: str, xp: ModuleType) -> None:
    """No NaN or +inf: one reduction, NaN propagating through the maximum."""
    if size(values) and bool(xp.max(values) < xp.inf):
        return
    bad = xp.isnan(values) | (values == xp.inf)
    if bool(xp.any(bad)):
        index = _first_index(bad)
        raise KLDivError(
            f"`{name}` must hold {what} (< +inf, not NaN; -inf means zero mass); "
            f"got {float(to_numpy(values)[index])} at index {index}"
        )


def check_log_probabilities(
    log_p: Array, name: str, axis: int, tolerance: float, *, validate: bool, xp: ModuleType
) -> None:
    """Log-probabilities: no NaN or +inf (-inf is zero mass), exp summing to 1."""
    if not _should_check(log_p, validate):
        return
    check_below_plus_inf(log_p, name, "log-probabilities", xp)
    totals = xp.sum(xp.exp(log_p), axis=axis)
    _check_row_sums(totals, name, axis, tolerance, "log-probabilities whose exponentials are", xp)


def check_logits(logits: Array, name: str, axis: int, *, validate: bool, xp: ModuleType) -> None:
    """Logits: no NaN or +inf, and at least one finite entry in each row."""
    if not _should_check(logits, validate):
        return
    if not size(logits):
        return
    row_max = xp.max(logits, axis=axis)
    if bool(xp.all(xp.isfinite(row_max))):
        return
    check_below_plus_inf(logits, name, "logits", xp)
    empty = row_max == -xp.inf
    if bool(xp.any(empty)):
        raise KLDivError(
            f"`{name}` must give each distribution some mass; every logit along axis {axis} "
            f"is -inf at batch index {_first_index(empty)}"
        )
