"""The chunked multi-threaded NumPy kernel equals the generic array-API path."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import special

import kldiv
from kldiv.discrete import _fast_numpy
from tests._helpers import random_probs


def _generic(p, q, **options):
    """The generic path: a Fortran-ordered copy is not eligible for the fast kernel."""
    return kldiv.kl_from_probs(np.asfortranarray(p), np.asfortranarray(q), **options)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(512, 1000), (3, 300_001), (2, 3, 4099, 129)])
def test_fast_path_equals_generic_path(dtype, shape):
    """Narrow rows, rows wider than a block, and leading batch dims give the generic values."""
    rng = np.random.default_rng(0)
    p = random_probs(rng, shape, zero_fraction=0.2).astype(dtype)
    q = random_probs(rng, shape).astype(dtype)
    assert _fast_numpy.applies(p, q, -1)
    fast = kldiv.kl_from_probs(p, q)
    assert fast.dtype == dtype
    assert fast.shape == shape[:-1]
    reference = special.rel_entr(p.astype(np.float64), q.astype(np.float64)).sum(-1)
    np.testing.assert_allclose(fast, reference, rtol=1e-6 if dtype == np.float32 else 1e-12)
    # The generic path on a Fortran-ordered float32 copy sums sequentially (NumPy
    # sums pairwise only along a contiguous axis): a looser tolerance for it.
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast, _generic(p, q), rtol=rtol)


def test_fast_path_zero_conventions():
    """0·log(0/q) = 0 (also q = 0) and q = 0 < p gives +inf, row by row."""
    p = random_probs(np.random.default_rng(1), (600, 512))
    q = random_probs(np.random.default_rng(2), (600, 512))
    p[0] = 0.0
    p[0, :2] = 0.5
    q[0, 2:4] = 0.0  # zero q under zero p: still finite
    q[0] /= q[0].sum()
    q[1, 7] = 0.0  # zero q under positive p: +inf
    q[1] /= q[1].sum()
    fast = kldiv.kl_from_probs(p, q)
    assert np.isfinite(fast[0])
    assert fast[1] == np.inf
    np.testing.assert_allclose(fast, _generic(p, q), rtol=1e-12)


def test_fast_path_ratio_beyond_float_range():
    """A subnormal q under a large p overflows p/q; the row is recomputed exactly."""
    p = np.full((1024, 256), 1 / 256, dtype=np.float32)
    q = p.copy()
    q[5, 0] = 1e-42  # subnormal float32
    q[5, 1] += 1 / 256 - 1e-42
    fast = kldiv.kl_from_probs(p, q)
    assert np.isfinite(fast[5])
    np.testing.assert_allclose(fast, _generic(p, q), rtol=1e-5)


def test_fast_path_validates_like_generic_path():
    """Negative entries and rows off the simplex raise the same error as the generic path."""
    p = random_probs(np.random.default_rng(3), (1024, 300))
    bad = p.copy()
    bad[700, 3] = -0.1
    with pytest.raises(kldiv.KLDivError, match=r"`q` must hold probabilities.*\(700, 3\)"):
        kldiv.kl_from_probs(p, bad)
    scaled = p * 1.01
    with pytest.raises(kldiv.KLDivError, match="`p` must be probabilities summing to 1"):
        kldiv.kl_from_probs(scaled, p)
    nan = p.copy()
    nan[10, 10] = np.nan
    with pytest.raises(kldiv.KLDivError, match=r"`p` must hold probabilities.*nan"):
        kldiv.kl_from_probs(nan, p)


def test_fast_path_without_validation_runs_on_unnormalised_rows():
    """validate=False skips the checks; the value is still Σ p log(p/q)."""
    p = random_probs(np.random.default_rng(4), (1024, 300)) * 2
    q = random_probs(np.random.default_rng(5), (1024, 300))
    got = kldiv.kl_from_probs(p, q, validate=False)
    np.testing.assert_allclose(got, special.rel_entr(p, q).sum(-1), rtol=1e-10)


def test_fast_path_extra_memory_is_bounded_by_blocks():
    """Extra memory is O(block) per thread, not O(input): 64 MiB of input, < 8 MiB extra."""
    rng = np.random.default_rng(6)
    p = random_probs(rng, (2048, 4096)).astype(np.float32)
    q = random_probs(rng, (2048, 4096)).astype(np.float32)
    kldiv.kl_from_probs(p, q)  # warm up the pool and its scratch buffers
    tracemalloc.start()
    try:
        kldiv.kl_from_probs(p, q)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert p.nbytes + q.nbytes == 64 * 2**20
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
