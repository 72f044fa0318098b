"""Every distribution family: log_prob, entropy, moments and samples against SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from kldiv._array_api import to_numpy
from tests.distributions._families import all_families

FAMILIES = all_families()
IDS = [c.id for c in FAMILIES]


def _arrays(params, xp):
    return {name: xp.asarray(np.asarray(v, dtype=np.float64)) for name, v in params.items()}


def _frozen_numbers(frozen, method, points=None):
    if method == "log_prob":
        fn = frozen.logpmf if hasattr(frozen, "logpmf") else frozen.logpdf
        return fn(points)
    return getattr(frozen, method)()


@pytest.mark.parametrize("case", FAMILIES, ids=IDS)
def test_log_prob_matches_reference(case, xp):
    """log_prob equals SciPy's logpdf / logpmf, -inf outside the support, on every backend."""
    if case.reference is None:
        pytest.skip("no SciPy reference")
    d = case.make(_arrays(case.params, xp))
    points = np.asarray(case.points, dtype=np.float64)
    actual = to_numpy(d.log_prob(xp.asarray(points)))
    expected = _frozen_numbers(case.reference(case.params), "log_prob", points)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "case", [c for c in FAMILIES if c.has_entropy], ids=[c.id for c in FAMILIES if c.has_entropy]
)
def test_entropy_matches_reference(case, xp):
    """entropy() equals SciPy's entropy (nats) on every backend."""
    if case.reference is None:
        pytest.skip("no SciPy reference")
    d = case.make(_arrays(case.params, xp))
    expected = np.asarray(case.reference(case.params).entropy(), dtype=float)
    np.testing.assert_allclose(to_numpy(d.entropy()), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "case", [c for c in FAMILIES if c.has_moments], ids=[c.id for c in FAMILIES if c.has_moments]
)
def test_mean_and_variance_match_reference(case, xp):
    """Mean and variance equal SciPy's on every backend (inf where they do not exist)."""
    if case.reference is None:
        pytest.skip("no SciPy reference")
    d = case.make(_arrays(case.params, xp))
    frozen = case.reference(case.params)
    np.testing.assert_allclose(to_numpy(d.mean), np.asarray(frozen.mean()), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        to_numpy(d.variance), np.asarray(frozen.var()), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize(
    "case",
    [c for c in FAMILIES if c.sample_check != "none"],
    ids=[c.id for c in FAMILIES if c.sample_check != "none"],
)
def test_samples_follow_the_law(case, xp):
    """sample(shape, rng) has the right shape and backend, and its law passes a KS / moment test."""
    import array_api_compat

    d = case.make(_arrays(case.params, xp))
    n = 4000
    if array_api_compat.is_jax_namespace(xp):
        import jax

        rng = jax.random.key(0)
    elif array_api_compat.is_torch_namespace(xp):
        import torch

        rng = torch.Generator().manual_seed(0)
    else:
        rng = np.random.default_rng(0)
    x = d.sample((n,), rng=rng)
    assert tuple(x.shape) == (n, *d.batch_shape, *d.event_shape)
    values = to_numpy(x)
    if case.sample_check == "ks" and case.reference is not None:
        frozen = case.reference(case.params)
        flat = values.reshape(n, -1)
        for index in range(flat.shape[1]):
            cdf = _element_cdf(frozen, index, flat.shape[1])
            assert stats.kstest(flat[:, index], cdf).pvalue > 1e-4, index
    else:
        mean, var = to_numpy(d.mean), to_numpy(d.variance)
        stderr = np.sqrt(var / n)
        assert np.all(np.abs(values.mean(axis=0) - mean) <= 6 * stderr + 1e-12)


def _element_cdf(frozen, index, count):
    def cdf(x):
        full = np.asarray(frozen.cdf(np.broadcast_to(np.asarray(x)[:, None], (len(x), count))))
        return full.reshape(len(x), count)[:, index]

    return cdf
