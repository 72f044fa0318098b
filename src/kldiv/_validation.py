"""Argument checks shared by every public function.

Shape, dtype and parameter checks always run. Value checks (negative or NaN
probabilities, rows that do not sum to one) run eagerly on concrete arrays; on
Dask arrays they are deferred into the same graph, as tasks that read the same
chunks and raise the same :class:`~kldiv.KLDivError` when the result is
computed; they are skipped for traced arrays (``jax.jit``, ``torch.compile``,
``torch.func.vmap``), and can be switched off per call (``validate=False``) or
globally (:func:`set_default_validate`).

A value check returns the array to compute with: the input itself, or for a
Dask input the array whose blocks are checked as they are computed. Use that
array downstream, so that computing the result always runs the checks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from functools import partial
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import array_namespace, is_dask_array, is_traced, size, to_numpy
from kldiv.errors import KLDivError

__all__ = [
    "Locate",
    "after",
    "as_given",
    "broadcast_shapes",
    "check_below_plus_inf",
    "check_beta",
    "check_event_axis",
    "check_log_probabilities",
    "check_logits",
    "check_nonnegative",
    "check_nonnegative_number",
    "check_probabilities",
    "check_temperature",
    "defer_check",
    "log_of_base",
    "resolve_validate",
    "set_default_validate",
    "sum_tolerance",
]

Locate = Callable[[tuple[int, ...]], str]
"""Describes the index of an offending entry (of a block) as the user's index."""

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


def _unknown(length: object) -> bool:
    """A Dask length that is not known before computing (NaN, or None)."""
    return length is None or (isinstance(length, float) and math.isnan(length))


def broadcast_shapes(shapes: Sequence[tuple]) -> tuple:
    """``np.broadcast_shapes``, where a Dask array's unknown lengths (NaN) stay unknown.

    Raises:
        ValueError: shapes that do not broadcast (also an unknown length against
            a known one other than 1, which Dask cannot broadcast).
    """
    if not any(_unknown(n) for shape in shapes for n in shape):
        return np.broadcast_shapes(*shapes)
    known = [tuple(1 if _unknown(n) else n for n in shape) for shape in shapes]
    out = list(np.broadcast_shapes(*known))
    for shape in shapes:
        for position, length in enumerate(shape, start=len(out) - len(shape)):
            if not _unknown(length):
                continue
            if out[position] != 1 and not _unknown(out[position]):
                raise ValueError("an unknown length does not broadcast against a known one")
            out[position] = math.nan
    return tuple(out)


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
        out_shape = broadcast_shapes(shapes)
    except ValueError:
        described = ", ".join(f"`{n}` {s}" for n, s in zip(names, shapes, strict=True))
        if any(_unknown(n) for shape in shapes for n in shape):
            described += " (unknown Dask lengths: call compute_chunk_sizes() first)"
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
    if _unknown(events):
        raise KLDivError(
            f"the event axis {axis} must have a known length; got shape {out_shape} (a Dask "
            "array with unknown chunk sizes: call its compute_chunk_sizes() first)"
        )
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


# --- Where an error is: an index of the whole array, also from inside a Dask task ---------------


def as_given(index: tuple[int, ...]) -> str:
    """The index of an eager array, as it is (:data:`Locate` of eager checks)."""
    return str(index)


def _first_index(mask: Array) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(to_numpy(mask))[0])


def _block_locator(block_info: dict | None, drop_axis: int | None = None) -> Locate:
    """Maps an index within a Dask block to the index in the whole array.

    ``drop_axis`` removes the event axis (for the batch index of a row). Where
    the chunk sizes are unknown (NaN, e.g. after boolean indexing) the offset of
    the block is unknown too: the index is then given within its chunk.
    """
    if not block_info:
        return as_given
    info = block_info[None]  # the output block: the checked array's, or the broadcast one
    starts = [start for start, _ in info["array-location"]]
    chunk = list(info["chunk-location"])
    if drop_axis is not None:
        del starts[drop_axis], chunk[drop_axis]
    if all(not math.isnan(start) for start in starts):
        offsets = [int(start) for start in starts]
        return lambda index: str(tuple(o + i for o, i in zip(offsets, index, strict=True)))
    return lambda index: f"{index} of chunk {tuple(chunk)} (chunk sizes unknown)"


# --- The checks of concrete values (an eager array, or one block of a Dask array) ---------------


def _check_row_sums(
    totals: Array,
    name: str,
    axis: int,
    tolerance: float,
    what: str,
    xp: ModuleType,
    locate: Locate = as_given,
) -> None:
    off = ~(xp.abs(totals - 1.0) <= tolerance)
    if bool(xp.any(off)):
        index = _first_index(off)
        value = float(to_numpy(totals)[index])
        raise KLDivError(
            f"`{name}` must be {what} summing to 1 along axis {axis} (within {tolerance:.1e}); "
            f"the distribution at batch index {locate(index)} sums to {value:.9g}"
        )


def _check_nonnegative_values(
    p: Array, name: str, what: str, xp: ModuleType, locate: Locate = as_given
) -> None:
    bad = ~(xp.isfinite(p) & (p >= 0))
    if bool(xp.any(bad)):
        index = _first_index(bad)
        raise KLDivError(
            f"`{name}` must hold {what} (finite and >= 0); "
            f"got {float(to_numpy(p)[index])} at index {locate(index)}"
        )


def _check_below_plus_inf_values(
    values: Array, name: str, what: str, xp: ModuleType, locate: Locate = as_given
) -> None:
    if size(values) and bool(xp.max(values) < xp.inf):
        return
    bad = xp.isnan(values) | (values == xp.inf)
    if bool(xp.any(bad)):
        index = _first_index(bad)
        raise KLDivError(
            f"`{name}` must hold {what} (< +inf, not NaN; -inf means zero mass); "
            f"got {float(to_numpy(values)[index])} at index {locate(index)}"
        )


def _check_some_mass(
    row_max: Array, name: str, axis: int, xp: ModuleType, locate: Locate = as_given
) -> None:
    empty = row_max == -xp.inf
    if bool(xp.any(empty)):
        raise KLDivError(
            f"`{name}` must give each distribution some mass; every logit along axis {axis} "
            f"is -inf at batch index {locate(_first_index(empty))}"
        )


def _check_probability_values(
    p: Array,
    name: str,
    axis: int,
    tolerance: float,
    xp: ModuleType,
    locate: Locate = as_given,
    locate_row: Locate = as_given,
) -> None:
    """The common case costs two reductions: the minimum (NaN propagates) and the row sums."""
    if not size(p):
        return
    totals = xp.sum(p, axis=axis)
    if not (bool(xp.min(p) >= 0) and bool(xp.all(xp.isfinite(totals)))):
        _check_nonnegative_values(p, name, "probabilities", xp, locate)
    _check_row_sums(totals, name, axis, tolerance, "probabilities", xp, locate_row)


def _check_log_probability_values(
    log_p: Array,
    name: str,
    axis: int,
    tolerance: float,
    xp: ModuleType,
    locate: Locate = as_given,
    locate_row: Locate = as_given,
) -> None:
    _check_below_plus_inf_values(log_p, name, "log-probabilities", xp, locate)
    totals = xp.sum(xp.exp(log_p), axis=axis)
    _check_row_sums(totals, name, axis, tolerance, _LOG_PROBS_WHAT, xp, locate_row)


_LOG_PROBS_WHAT = "log-probabilities whose exponentials are"


def _check_logit_values(
    logits: Array,
    name: str,
    axis: int,
    xp: ModuleType,
    locate: Locate = as_given,
    locate_row: Locate = as_given,
) -> None:
    """The common case costs one reduction: the row maxima (finite when all is well)."""
    if not size(logits):
        return
    row_max = xp.max(logits, axis=axis)
    if bool(xp.all(xp.isfinite(row_max))):
        return
    _check_below_plus_inf_values(logits, name, "logits", xp, locate)
    _check_some_mass(row_max, name, axis, xp, locate_row)


# --- Dask: the same checks as tasks of the same graph, run when the result is computed ----------


def _run_on_block(
    block: Array,
    *guards: Array,
    check: Callable,
    axis: int | None = None,
    block_info: dict | None = None,
) -> Array:
    """A Dask task: runs ``check`` on a block and passes the block on unchanged.

    ``guards`` are blocks of other arrays this block must wait for (their tasks
    hold checks of their own); ``axis`` is the event axis when the block holds
    whole rows (then ``check`` also gets the batch index of a row).
    """
    if check is not None and size(block):
        xp = array_namespace(block)
        if axis is None:
            check(block, xp=xp, locate=_block_locator(block_info))
        else:
            check(
                block,
                xp=xp,
                locate=_block_locator(block_info),
                locate_row=_block_locator(block_info, drop_axis=block.ndim + axis),
            )
    return block


def _aligned(*arrays: Array) -> list[Array]:
    """Dask arrays (broadcast against each other) rechunked to common blocks.

    ``map_blocks`` aligns differently chunked inputs itself, but its
    ``block_info`` (which places an error in the whole array) is computed from
    the chunks before that alignment and fails on them: align first. Arrays
    already chunked alike are returned unchanged.
    """
    import dask.array as da
    from dask.array.core import unify_chunks

    if len({(a.ndim, a.chunks) for a in arrays}) <= 1 or not all(
        isinstance(a, da.Array) for a in arrays
    ):
        return list(arrays)
    ndim = max(a.ndim for a in arrays)
    pairs: list[Any] = []
    for a in arrays:
        pairs += [a, tuple(range(ndim - a.ndim, ndim))]
    return list(unify_chunks(*pairs)[1])


def _map_checks(
    array: Array, check: Callable | None, *guards: Array, axis: int | None = None
) -> Array:
    """``array`` with ``check`` run on each of its blocks, in the task that reads the block."""
    import dask.array as da

    array, *guards = _aligned(array, *guards)
    return da.map_blocks(
        _run_on_block,
        array,
        *guards,
        check=check,
        axis=axis,
        dtype=array.dtype,
        meta=array._meta,
        token="kldiv-checked",
    )


def _run_on_operands(
    block: Array, *operands: Array, check: Callable, block_info: dict | None = None
) -> Array:
    """A Dask task: runs ``check`` on the blocks of the operands, passes ``block`` on."""
    xp = array_namespace(block)
    check(*operands, xp=xp, locate=_block_locator(block_info))
    return block


def defer_check(result: Array, check: Callable, *operands: Array) -> Array:
    """A Dask ``result`` whose blocks first run ``check`` on the matching operand blocks.

    For checks that involve several inputs at once (broadcast against each
    other and against ``result``): ``check(*operand_blocks, xp=..., locate=...)``
    raises a :class:`~kldiv.KLDivError`, ``locate`` turning an index of the
    broadcast block into the index in ``result``.

    Returns:
        ``result``, with the checks in its graph.
    """
    import dask.array as da

    result, *operands = _aligned(result, *operands)
    return da.map_blocks(
        _run_on_operands,
        result,
        *operands,
        check=check,
        dtype=result.dtype,
        meta=result._meta,
        token="kldiv-checked",
    )


def after(result: Array, guards: Sequence[Array]) -> Array:
    """A Dask ``result`` whose blocks wait for the (broadcastable) ``guards``' checks.

    Eager arrays and an empty ``guards`` pass through unchanged.
    """
    if not guards:
        return result
    return _map_checks(result, None, *guards)


def _is_deferred(array: Array) -> bool:
    return is_dask_array(array)


def _whole_rows(array: Array, axis: int) -> bool:
    """Whether every block of a Dask array holds whole rows (one chunk along ``axis``)."""
    return len(array.chunks[axis]) == 1


def _defer_row_checks(
    array: Array,
    elementwise: Callable,
    rows: Callable,
    reduce_rows: Callable[[Array], Array],
    row_check: Callable,
    axis: int,
    guards: list[Array] | None,
) -> Array:
    """Defers the checks of a Dask array of rows along ``axis``.

    With the event axis in one chunk, ``rows`` runs in the task that reads each
    block (elementwise and row checks at once). Otherwise ``elementwise`` runs
    there, and the per-row reduction ``reduce_rows`` of the *checked* blocks (so
    an elementwise error is always the one reported) is checked by
    ``row_check``: that guard is appended to ``guards`` for the caller to tie to
    its result with :func:`after` (or, when ``guards`` is None, tied to the
    returned array).
    """
    if _whole_rows(array, axis):
        return _map_checks(array, rows, axis=axis)
    checked = _map_checks(array, elementwise)
    guard = _map_checks(reduce_rows(checked), row_check)
    if guards is not None:
        guards.append(guard)
        return checked
    import dask.array as da

    return after(checked, [da.expand_dims(guard, axis)])


# --- The public checks: eager, deferred into the Dask graph, or skipped -------------------------


def _should_check(array: Array, validate: bool) -> bool:
    return validate and not is_traced(array)


def _now_or_in_graph(
    array: Array,
    check: Callable,
    *,
    validate: bool,
    xp: ModuleType,
    defer: Callable[[], Array] | None = None,
) -> Array:
    """Runs ``check(array, xp=xp)`` now, defers it into a Dask graph, or skips it (traced).

    On Dask, ``defer()`` builds the checked graph (default: ``check`` on each
    block). Returns the array to compute with.
    """
    if validate and _is_deferred(array):
        return defer() if defer is not None else _map_checks(array, check)
    if _should_check(array, validate):
        check(array, xp=xp)
    return array


def check_probabilities(
    p: Array,
    name: str,
    axis: int,
    tolerance: float,
    *,
    validate: bool,
    xp: ModuleType,
    guards: list[Array] | None = None,
) -> Array:
    """Probabilities: finite, non-negative, each row summing to 1 within ``tolerance``.

    Eager arrays are checked now; Dask arrays get the checks as tasks of their
    graph (see :func:`_defer_row_checks`); traced arrays are not checked.

    Returns:
        The array to compute with: ``p`` itself, or the Dask array whose blocks
        are checked when computed.
    """
    rows = partial(_check_probability_values, name=name, axis=axis, tolerance=tolerance)
    return _now_or_in_graph(
        p,
        rows,
        validate=validate,
        xp=xp,
        defer=lambda: _defer_row_checks(
            p,
            partial(_check_nonnegative_values, name=name, what="probabilities"),
            rows,
            lambda checked: xp.sum(checked, axis=axis),
            partial(
                _check_row_sums, name=name, axis=axis, tolerance=tolerance, what="probabilities"
            ),
            axis,
            guards,
        ),
    )


def check_nonnegative(
    p: Array, name: str, *, validate: bool, xp: ModuleType, what: str = "non-negative values"
) -> Array:
    """Finite, non-negative entries (deferred on Dask, skipped when traced).

    Returns:
        The array to compute with (see :func:`check_probabilities`).
    """
    check = partial(_check_nonnegative_values, name=name, what=what)
    return _now_or_in_graph(p, check, validate=validate, xp=xp)


def check_below_plus_inf(
    values: Array, name: str, what: str, xp: ModuleType, *, validate: bool = True
) -> Array:
    """No NaN or +inf: one reduction, NaN propagating through the maximum.

    Returns:
        The array to compute with (see :func:`check_probabilities`).
    """
    check = partial(_check_below_plus_inf_values, name=name, what=what)
    return _now_or_in_graph(values, check, validate=validate, xp=xp)


def check_log_probabilities(
    log_p: Array,
    name: str,
    axis: int,
    tolerance: float,
    *,
    validate: bool,
    xp: ModuleType,
    guards: list[Array] | None = None,
) -> Array:
    """Log-probabilities: no NaN or +inf (-inf is zero mass), exp summing to 1.

    Returns:
        The array to compute with (see :func:`check_probabilities`).
    """
    rows = partial(_check_log_probability_values, name=name, axis=axis, tolerance=tolerance)
    return _now_or_in_graph(
        log_p,
        rows,
        validate=validate,
        xp=xp,
        defer=lambda: _defer_row_checks(
            log_p,
            partial(_check_below_plus_inf_values, name=name, what="log-probabilities"),
            rows,
            lambda checked: xp.sum(xp.exp(checked), axis=axis),
            partial(
                _check_row_sums, name=name, axis=axis, tolerance=tolerance, what=_LOG_PROBS_WHAT
            ),
            axis,
            guards,
        ),
    )


def check_logits(
    logits: Array,
    name: str,
    axis: int,
    *,
    validate: bool,
    xp: ModuleType,
    guards: list[Array] | None = None,
) -> Array:
    """Logits: no NaN or +inf, and at least one finite entry in each row.

    Returns:
        The array to compute with (see :func:`check_probabilities`).
    """
    rows = partial(_check_logit_values, name=name, axis=axis)
    return _now_or_in_graph(
        logits,
        rows,
        validate=validate,
        xp=xp,
        defer=lambda: _defer_row_checks(
            logits,
            partial(_check_below_plus_inf_values, name=name, what="logits"),
            rows,
            lambda checked: xp.max(checked, axis=axis),
            partial(_check_some_mass, name=name, axis=axis),
            axis,
            guards,
        ),
    )
