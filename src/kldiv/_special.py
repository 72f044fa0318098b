"""Special functions outside the array API standard, routed per backend.

Each function takes ``*, xp`` and uses the backend's native implementation
where one exists (fused and differentiable), else a generic one written with
``xp.*`` only.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from kldiv._array_api import is_jax_namespace, is_numpy_namespace, is_torch_namespace

__all__ = ["log_softmax", "logsumexp", "logsumexp_or_minus_inf", "with_minus_inf_at"]

Array = Any


def _generic_logsumexp(x: Array, axis: int, *, xp: ModuleType) -> Array:
    shift = xp.max(x, axis=axis, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))
    total = xp.sum(xp.exp(x - shift), axis=axis, keepdims=True)
    return xp.log(total) + shift


def logsumexp(x: Array, axis: int, *, xp: ModuleType) -> Array:
    r"""Keeps-dims :math:`\log \sum_i e^{x_i}` along ``axis``, stable for large and -inf entries.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(logsumexp(np.log(np.array([0.25, 0.75])), -1, xp=xp)[0])
        0.0
    """
    if is_torch_namespace(xp):
        return sys.modules["torch"].logsumexp(x, dim=axis, keepdim=True)
    if is_jax_namespace(xp):
        return sys.modules["jax"].nn.logsumexp(x, axis=axis, keepdims=True)
    return _generic_logsumexp(x, axis, xp=xp)


def log_softmax(x: Array, axis: int, *, xp: ModuleType) -> Array:
    r"""Normalised log-probabilities :math:`x_i - \log \sum_j e^{x_j}` along ``axis``.

    Entries of ``-inf`` stay ``-inf`` (zero mass) and their gradient is zero.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> np.exp(log_softmax(np.array([0.0, np.log(3.0), -np.inf]), -1, xp=xp)).round(4)
        array([0.25, 0.75, 0.  ])
    """
    if is_torch_namespace(xp):
        return sys.modules["torch"].log_softmax(x, dim=axis)
    if is_jax_namespace(xp):
        return sys.modules["jax"].nn.log_softmax(x, axis=axis)
    return x - _generic_logsumexp(x, axis, xp=xp)


def logsumexp_or_minus_inf(x: Array, axis: int, *, xp: ModuleType) -> Array:
    r""":math:`\log \sum_i e^{x_i}` along ``axis`` (dropped), ``-inf`` for an all ``-inf`` row.

    Unlike the native ``logsumexp`` of torch and JAX, a row with no mass has a
    zero gradient instead of NaN (``exp(-inf - (-inf))``): the sum is computed
    on shifted values and selected with a double ``where``.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> logsumexp_or_minus_inf(np.array([[0.0, 0.0], [-np.inf, -np.inf]]), -1, xp=xp)
        array([0.69314718,       -inf])
    """
    shift = xp.max(x, axis=axis, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))
    total = xp.sum(xp.exp(x - shift), axis=axis)
    empty = total == 0
    safe = xp.log(xp.where(empty, 1.0, total)) + xp.squeeze(shift, axis=axis)
    return xp.where(empty, -xp.inf, safe)


def with_minus_inf_at(x: Array, indices: Array, axis: int, *, xp: ModuleType) -> Array:
    """A copy of ``x`` with ``-inf`` at ``indices`` along ``axis`` (take_along_axis layout).

    Uses the backend's scatter (torch ``scatter``, JAX and NumPy
    ``put_along_axis``); other namespaces compare every index against every
    position, which costs ``k`` times the input's memory.
    """
    if is_torch_namespace(xp):
        return x.scatter(axis, indices, float("-inf"))
    if is_jax_namespace(xp):
        jnp = sys.modules["jax"].numpy
        return jnp.put_along_axis(x, indices, -jnp.inf, axis=axis, inplace=False)
    if is_numpy_namespace(xp):
        out = x.copy()
        sys.modules["numpy"].put_along_axis(out, indices, -xp.inf, axis=axis)
        return out
    positions = xp.arange(x.shape[axis], dtype=indices.dtype)
    moved_indices = xp.moveaxis(indices, axis, -1)
    hit = xp.any(moved_indices[..., :, None] == positions, axis=-2)
    return xp.where(xp.moveaxis(hit, -1, axis), -xp.inf, x)
