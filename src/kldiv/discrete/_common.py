"""The argument handling every discrete measure shares: one place, one behaviour."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from kldiv._array_api import as_float_arrays
from kldiv._validation import (
    after,
    check_event_axis,
    log_of_base,
    resolve_validate,
    sum_tolerance,
)

Array = Any


@dataclass(frozen=True)
class Prepared:
    """Inputs brought to one namespace and dtype, with the checked options.

    Attributes:
        xp: the array namespace of the inputs.
        arrays: the inputs, in the compute dtype (float32 for half precision).
        axis: the event axis as a negative index, valid for every input.
        tolerance: how far a row sum may be from one, for the input dtype.
        validate: whether the value checks run (eagerly, or deferred on Dask).
        log_base: ``log(base)``, or None for nats.
        guards: deferred row checks of Dask inputs whose event axis spans
            several chunks; :func:`reduce_terms` ties them to the result.
    """

    xp: ModuleType
    arrays: list[Array]
    axis: int
    tolerance: float
    validate: bool
    log_base: float | None
    guards: list[Array] = field(default_factory=list)


def prepare(
    values: Sequence[object],
    names: Sequence[str],
    *,
    axis: object,
    base: object,
    validate: bool | None,
) -> Prepared:
    """Checks the options and shapes and converts the inputs (no value checks yet)."""
    log_base = log_of_base(base)
    do_validate = resolve_validate(validate)
    xp, arrays, _, input_dtype = as_float_arrays(*values, names=names)
    event_axis = check_event_axis(arrays, names, axis)
    return Prepared(
        xp=xp,
        arrays=arrays,
        axis=event_axis,
        tolerance=sum_tolerance(input_dtype, xp),
        validate=do_validate,
        log_base=log_base,
    )


def in_units(nats: Array, log_base: float | None) -> Array:
    """Converts a value in nats to the unit of ``log(base)``."""
    return nats if log_base is None else nats / log_base


def reduce_terms(
    terms_fn: Callable[..., Array], prepared: Prepared, *arrays: Array, **options: Any
) -> Array:
    """Sums the elementwise terms over the event axis and converts the unit.

    The result of Dask inputs waits for the deferred row checks in ``prepared.guards``.
    """
    xp = prepared.xp
    terms = terms_fn(*arrays, xp=xp, **options)
    return after(in_units(xp.sum(terms, axis=prepared.axis), prepared.log_base), prepared.guards)
