"""Where a public discrete measure picks a backend-native kernel: one place, at the boundary.

The array-API code in :mod:`kldiv.discrete` is the specification. Each backend
with a faster way keeps its kernels in one module (``_fast_numpy``,
``_fast_torch``, ``_fast_jax``) exposing

    compute(measure, form, arrays, *, axis, base, validate, temperature, beta) -> Array | None

which returns the result, or None when its kernels do not apply to these
inputs (an unusual layout, broadcasting, an argument the generic path must
reject with its error message, a traced array, ...). The public functions call
:func:`native_result` first and run the generic path when it gives None, so a
kernel never has to reproduce an error message: anything it is unsure of goes
to the reference.

``measure`` is one of ``"kl"``, ``"js"``, ``"entropy"``, ``"cross_entropy"``,
``"generalized_kl"``; ``form`` one of ``"probs"``, ``"log_probs"``, ``"logits"``.
``arrays`` holds one array (entropy) or two, in the public argument order.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

Array = Any

_reference_only = False

MEASURES = ("kl", "js", "entropy", "cross_entropy", "generalized_kl")
FORMS = ("probs", "log_probs", "logits")


_KERNELS_BY_TYPE: dict[type, Any] = {}
"""The kernel module (or None) of each array type seen: one dictionary lookup per call."""


def _backend_module(first: object) -> Any | None:
    """The kernel module for the library of ``first``, imported only when that library is in use."""
    kind = type(first)
    known = _KERNELS_BY_TYPE.get(kind, False)
    if known is not False:
        return known
    module = kind.__module__
    backend = None
    if module.startswith("torch") and "torch" in sys.modules:
        from kldiv.discrete import _fast_torch as backend
    elif module.startswith(("jax", "jaxlib")) and "jax" in sys.modules:
        from kldiv.discrete import _fast_jax as backend
    elif module == "numpy":
        from kldiv.discrete import _fast_numpy as backend
    if backend is not None and not hasattr(backend, "compute"):
        backend = None
    _KERNELS_BY_TYPE[kind] = backend
    return backend


@contextlib.contextmanager
def reference_only() -> Iterator[None]:
    """Within this block every public measure runs the generic (reference) path.

    For tests that compare a kernel with the specification, and for debugging.
    """
    global _reference_only
    previous, _reference_only = _reference_only, True
    try:
        yield
    finally:
        _reference_only = previous


def native_result(
    measure: str,
    form: str,
    arrays: Sequence[object],
    *,
    axis: object,
    base: object,
    validate: bool | None,
    temperature: object = 1.0,
    beta: object = 0.5,
) -> Array | None:
    """The result of the backend's native kernel, or None to run the generic path.

    Args:
        measure: which divergence or entropy (see the module docstring).
        form: the input form of ``arrays``.
        arrays: the inputs as the user passed them, in the public argument order.
        axis: the public ``axis``, unchecked.
        base: the public ``base``, unchecked.
        validate: the public ``validate`` (None: the global default).
        temperature: the public ``temperature`` of the logits form, unchecked.
        beta: the public ``beta`` of the Jensen–Shannon measure, unchecked.

    Returns:
        The same value the generic path would return (within rounding), or None.
    """
    if _reference_only:
        return None
    backend = _KERNELS_BY_TYPE.get(type(arrays[0]), False)
    if backend is False:
        backend = _backend_module(arrays[0])
    if backend is None:
        return None
    return backend.compute(
        measure,
        form,
        arrays,
        axis=axis,
        base=base,
        validate=validate,
        temperature=temperature,
        beta=beta,
    )
