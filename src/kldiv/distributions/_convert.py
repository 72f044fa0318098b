"""Front doors: kldiv distributions as they are, torch.distributions and SciPy objects converted."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

from kldiv._array_api import device, is_numpy_namespace
from kldiv.distributions._base import Distribution
from kldiv.errors import KLDivError

__all__ = ["as_distribution", "common_namespace"]


def as_distribution(value: Any, name: str) -> Distribution:
    """``value`` as a kldiv distribution, converting torch.distributions and SciPy objects."""
    if isinstance(value, Distribution):
        return value
    raise KLDivError(
        f"`{name}` must be a kldiv distribution, a torch.distributions object or a SciPy "
        f"frozen distribution; got {type(value).__module__}.{type(value).__qualname__}"
    )


def _moved(d: Distribution, xp: ModuleType, like: Any) -> Distribution:
    """A shallow copy of ``d`` with every NumPy array (and nested distribution) moved to ``xp``."""
    import numpy as np

    moved = copy.copy(d)
    for key, value in vars(d).items():
        if isinstance(value, Distribution):
            setattr(moved, key, _moved(value, xp, like))
        elif isinstance(value, np.ndarray):
            target_dtype = like.dtype if np.issubdtype(value.dtype, np.floating) else None
            array = xp.asarray(value, device=device(like))
            setattr(moved, key, array if target_dtype is None else xp.astype(array, target_dtype))
    moved.xp = xp
    moved.dtype = like.dtype
    return moved


def common_namespace(p: Distribution, q: Distribution) -> tuple[Distribution, Distribution]:
    """P and Q on one array library.

    A distribution held in NumPy (for instance built from Python numbers, like
    the prior ``Normal(0.0, 1.0)``) is moved to the other's library, dtype and
    device, so that ``kl_divergence(Normal(mu_tensor, sigma_tensor), Normal(0.0, 1.0))``
    works; any other mix of libraries is an error.
    """
    if p.xp is q.xp:
        return p, q
    if is_numpy_namespace(p.xp):
        return _moved(p, q.xp, q._like()), q
    if is_numpy_namespace(q.xp):
        return p, _moved(q, p.xp, p._like())
    raise KLDivError(
        f"`p` and `q` must hold parameters of the same array library; got "
        f"{p.xp.__name__} and {q.xp.__name__}"
    )
