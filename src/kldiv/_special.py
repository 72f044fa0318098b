"""Special functions outside the array API standard, routed per backend.

Each function takes ``*, xp`` and uses the backend's native implementation
where one exists (fused and differentiable), else a generic one written with
``xp.*`` only.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from kldiv._array_api import is_jax_namespace, is_torch_namespace

__all__ = ["log_softmax", "logsumexp"]

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
