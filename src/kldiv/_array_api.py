"""The backend boundary: the only module that talks to array-api-compat.

The rest of kldiv receives an array namespace ``xp`` from here and uses only
``xp.*`` functions, so one implementation serves NumPy, PyTorch, JAX, CuPy and
Dask arrays alike.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import (
    array_namespace,
    device,
    is_array_api_obj,
    is_array_api_strict_namespace,
    is_dask_array,
    is_dask_namespace,
    is_jax_array,
    is_jax_namespace,
    is_lazy_array,
    is_numpy_namespace,
    is_torch_array,
    is_torch_namespace,
    size,
)

from kldiv.errors import KLDivError

__all__ = [
    "array_namespace",
    "as_float_arrays",
    "device",
    "is_array_api_strict_namespace",
    "is_dask_array",
    "is_dask_namespace",
    "is_jax_namespace",
    "is_numpy_namespace",
    "is_torch_namespace",
    "is_traced",
    "size",
    "to_numpy",
]

Array = Any


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _namespace_of(values: Sequence[object], names: Sequence[str]) -> ModuleType:
    arrays = [v for v in values if is_array_api_obj(v) and not isinstance(v, np.generic)]
    if not arrays:
        return array_namespace(np.empty(0))
    try:
        return array_namespace(*arrays)
    except TypeError:
        if _dask_with_numpy(arrays):
            return array_namespace(*(a for a in arrays if is_dask_array(a)))
        kinds = ", ".join(f"`{n}` is {_type_name(v)}" for n, v in zip(names, values, strict=True))
        raise KLDivError(
            f"all array arguments must come from the same array library; {kinds}"
        ) from None


def _dask_with_numpy(arrays: Sequence[Array]) -> bool:
    """Dask arrays mixed with NumPy ones: the NumPy arrays join the graph (``da.asarray``)."""
    return any(is_dask_array(a) for a in arrays) and all(
        is_dask_array(a) or isinstance(a, np.ndarray) for a in arrays
    )


def _convert(value: object, name: str, xp: ModuleType, like: Array | None) -> Array:
    if isinstance(value, np.ndarray) and is_dask_namespace(xp):
        return xp.asarray(value)
    if is_array_api_obj(value) and not isinstance(value, np.generic):
        return value
    try:
        if like is None:
            return xp.asarray(np.asarray(value))
        return xp.asarray(value, device=device(like))
    except (TypeError, ValueError) as err:
        raise KLDivError(
            f"`{name}` must be an array or a nested sequence of numbers; "
            f"got {_type_name(value)} ({err})"
        ) from None


def _floating_dtype(arrays: Sequence[Array], names: Sequence[str], xp: ModuleType) -> Any:
    for array, name in zip(arrays, names, strict=True):
        if xp.isdtype(array.dtype, "complex floating"):
            raise KLDivError(f"`{name}` must be real-valued; got dtype {array.dtype}")
        if not xp.isdtype(array.dtype, ("real floating", "integral", "bool")):
            raise KLDivError(f"`{name}` must hold numbers; got dtype {array.dtype}")
    floats = [a.dtype for a in arrays if xp.isdtype(a.dtype, "real floating")]
    if not floats:
        return xp.__array_namespace_info__().default_dtypes(device=device(arrays[0]))[
            "real floating"
        ]
    return floats[0] if len(floats) == 1 else xp.result_type(*floats)


def as_float_arrays(
    *values: object, names: Sequence[str]
) -> tuple[ModuleType, list[Array], Any, Any]:
    """Brings the inputs into one namespace and one floating dtype.

    Python sequences become arrays of the namespace of the array arguments
    (NumPy when there are none), and NumPy arrays beside Dask arrays become
    Dask arrays (``dask.array.asarray``: one chunk when small); integer and
    boolean arrays become the backend's default floating dtype; half precision
    (float16, bfloat16) is upcast to float32 for the computation.

    Args:
        *values: the inputs, arrays of one library or nested sequences.
        names: the argument names, used in error messages.

    Returns:
        ``(xp, arrays, compute_dtype, input_dtype)``: the namespace, the inputs
        cast to ``compute_dtype`` and the common floating dtype they arrived in.

    Raises:
        KLDivError: mixed array libraries, non-numeric or complex input.
    """
    xp = _namespace_of(values, names)
    like = next(
        (
            v
            for v in values
            if is_array_api_obj(v)
            and not isinstance(v, np.generic)
            and (is_dask_array(v) or not is_dask_namespace(xp))
        ),
        None,
    )
    arrays = [_convert(v, n, xp, like) for v, n in zip(values, names, strict=True)]
    input_dtype = _floating_dtype(arrays, names, xp)
    compute_dtype = xp.float32 if xp.finfo(input_dtype).bits < 32 else input_dtype
    arrays = [a if a.dtype == compute_dtype else xp.astype(a, compute_dtype) for a in arrays]
    return xp, arrays, compute_dtype, input_dtype


def _torch_is_symbolic(x: Array) -> bool:
    torch = sys.modules["torch"]
    if torch.compiler.is_compiling():
        return True
    functorch = getattr(torch._C, "_functorch", None)
    if functorch is not None and functorch.is_batchedtensor(x):
        return True
    fake = getattr(getattr(torch, "_subclasses", None), "FakeTensor", None)
    return fake is not None and isinstance(x, fake)


def is_traced(x: Array) -> bool:
    """Whether reading the values of ``x`` is impossible or would force work.

    True inside ``jax.jit`` (tracers), ``torch.compile`` and ``torch.func.vmap``,
    and for Dask arrays; False for concrete NumPy, PyTorch, JAX and other eager
    arrays, whose values kldiv then checks. Dask arrays are lazy rather than
    traced: :mod:`kldiv._validation` defers their value checks into the graph
    (``is_dask_array``) instead of skipping them.
    """
    if is_jax_array(x):
        return isinstance(x, sys.modules["jax"].core.Tracer)
    if is_torch_array(x):
        return _torch_is_symbolic(x)
    if is_dask_array(x):
        return True
    return bool(is_lazy_array(x))


def to_numpy(x: Array) -> np.ndarray:
    """A NumPy copy of an eager array of any backend (for error messages and tests)."""
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(x)
