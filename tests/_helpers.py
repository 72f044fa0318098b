"""Shared helpers: comparing results of any backend against NumPy references."""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace

from kldiv._array_api import to_numpy


def asarray(xp, data, dtype=None):
    """An array of backend ``xp``, float64 unless ``dtype`` says otherwise."""
    return xp.asarray(np.asarray(data, dtype=np.float64), dtype=dtype or xp.float64)


def assert_close(actual, expected, *, xp, dtype=None, rtol=1e-10, atol=1e-12):
    """``actual`` is an array of namespace ``xp`` (and ``dtype``) close to ``expected``."""
    assert array_namespace(actual) is xp, f"result of {type(actual)} is not of {xp.__name__}"
    if dtype is not None:
        assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"
    np.testing.assert_allclose(
        to_numpy(actual), np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol
    )


def random_probs(rng, shape, zero_fraction=0.0):
    """Random rows on the simplex along the last axis, with exact zeros if asked."""
    x = rng.gamma(0.7, size=shape)
    if zero_fraction:
        x[rng.random(shape) < zero_fraction] = 0.0
        x[..., 0] += 1e-3  # keep every row with some mass
    return x / x.sum(axis=-1, keepdims=True)
