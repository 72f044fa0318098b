"""Random draws on every backend, with the backend's own random state.

``rng`` is a :class:`numpy.random.Generator` for NumPy (and for backends
without random numbers of their own, such as array-api-strict, whose draws are
made by NumPy and converted), a :class:`torch.Generator` for PyTorch (None: the
global generator) and a ``jax.random`` key for JAX (required: JAX has no global
state). An ``int`` seeds a fresh one of the right kind.

The samplers return reparameterised draws where the backend can
differentiate through them (normal and uniform transforms everywhere, gamma
through ``torch._standard_gamma`` and ``jax.random.gamma``).
"""

from __future__ import annotations

import numbers
import sys
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import device, is_jax_namespace, is_torch_namespace, to_numpy
from kldiv.errors import KLDivError

__all__ = [
    "as_rng",
    "binomial",
    "poisson",
    "split_rng",
    "standard_gamma",
    "standard_normal",
    "standard_uniform",
]

Array = Any


def as_rng(rng: object, *, xp: ModuleType, like: Array) -> Any:
    """The random state for backend ``xp``: ``rng`` checked, or a fresh one from a seed."""
    if is_torch_namespace(xp):
        torch = sys.modules["torch"]
        if rng is None or isinstance(rng, torch.Generator):
            return rng
        if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
            return torch.Generator(device=like.device).manual_seed(int(rng))
        raise KLDivError(
            f"`rng` must be a torch.Generator, an int seed or None for PyTorch parameters; "
            f"got {type(rng).__name__}"
        )
    if is_jax_namespace(xp):
        jax = sys.modules["jax"]
        if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
            return jax.random.key(int(rng))
        if rng is None or not hasattr(rng, "shape"):
            raise KLDivError(
                "`rng` must be a jax.random key (or an int seed) for JAX parameters: JAX has no "
                f"global random state; got {type(rng).__name__}"
            )
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    if isinstance(rng, np.random.Generator):
        return rng
    raise KLDivError(
        f"`rng` must be a numpy.random.Generator, an int seed or None; got {type(rng).__name__}"
    )


def split_rng(rng: Any, n: int, *, xp: ModuleType) -> list[Any]:
    """``n`` independent random states: JAX keys are split, stateful generators shared."""
    if is_jax_namespace(xp):
        return list(sys.modules["jax"].random.split(rng, n))
    return [rng] * n


def _from_numpy(values: np.ndarray, *, xp: ModuleType, like: Array) -> Array:
    return xp.asarray(values.astype(to_numpy_dtype(like), copy=False), device=device(like))


def to_numpy_dtype(like: Array) -> np.dtype:
    """The NumPy dtype matching the floating dtype of ``like``."""
    return np.dtype(str(like.dtype).rsplit(".", 1)[-1])


def standard_normal(rng: Any, shape: tuple[int, ...], *, xp: ModuleType, like: Array) -> Array:
    """Draws of N(0, 1) of ``shape``, in the dtype and on the device of ``like``."""
    if is_torch_namespace(xp):
        torch = sys.modules["torch"]
        return torch.randn(shape, generator=rng, dtype=like.dtype, device=like.device)
    if is_jax_namespace(xp):
        return sys.modules["jax"].random.normal(rng, shape, dtype=like.dtype)
    return _from_numpy(rng.standard_normal(shape), xp=xp, like=like)


def standard_uniform(rng: Any, shape: tuple[int, ...], *, xp: ModuleType, like: Array) -> Array:
    """Draws of U(0, 1) of ``shape``, never exactly 0 (so that logs stay finite)."""
    if is_torch_namespace(xp):
        torch = sys.modules["torch"]
        u = torch.rand(shape, generator=rng, dtype=like.dtype, device=like.device)
    elif is_jax_namespace(xp):
        u = sys.modules["jax"].random.uniform(rng, shape, dtype=like.dtype)
    else:
        u = _from_numpy(rng.random(shape), xp=xp, like=like)
    tiny = float(xp.finfo(like.dtype).smallest_normal)
    return xp.clip(u, tiny, 1.0)


def standard_gamma(rng: Any, concentration: Array, *, xp: ModuleType) -> Array:
    """Draws of Gamma(concentration, 1), one per entry of ``concentration``.

    Reparameterised on PyTorch and JAX: gradients flow to ``concentration``.
    """
    if is_torch_namespace(xp):
        return sys.modules["torch"]._standard_gamma(concentration, generator=rng)
    if is_jax_namespace(xp):
        jax = sys.modules["jax"]
        return jax.random.gamma(rng, concentration, dtype=concentration.dtype)
    draws = rng.standard_gamma(to_numpy(concentration))
    return _from_numpy(np.asarray(draws), xp=xp, like=concentration)


def poisson(rng: Any, rate: Array, *, xp: ModuleType) -> Array:
    """Poisson counts, one per entry of ``rate``, as floats of ``rate``'s dtype."""
    if is_torch_namespace(xp):
        return sys.modules["torch"].poisson(rate.detach(), generator=rng)
    if is_jax_namespace(xp):
        jax = sys.modules["jax"]
        counts = jax.random.poisson(rng, jax.lax.stop_gradient(rate), shape=rate.shape)
        return xp.astype(counts, rate.dtype)
    return _from_numpy(np.asarray(rng.poisson(to_numpy(rate)), dtype=float), xp=xp, like=rate)


def binomial(rng: Any, total_count: Array, probs: Array, *, xp: ModuleType) -> Array:
    """Binomial counts, one per entry of the broadcast of ``total_count`` and ``probs``."""
    total_count, probs = xp.broadcast_arrays(total_count, probs)
    if is_torch_namespace(xp):
        torch = sys.modules["torch"]
        return torch.binomial(total_count.detach(), probs.detach(), generator=rng)
    if is_jax_namespace(xp):
        jax = sys.modules["jax"]
        stop = jax.lax.stop_gradient
        counts = jax.random.binomial(rng, stop(total_count), stop(probs), shape=probs.shape)
        return xp.astype(counts, probs.dtype)
    counts = rng.binomial(to_numpy(total_count).astype(np.int64), to_numpy(probs))
    return _from_numpy(np.asarray(counts, dtype=float), xp=xp, like=probs)
