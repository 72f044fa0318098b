"""kl_from_sample_log_probs: the Monte Carlo mean over given log-densities, on every backend.

References: the exact KL between normal laws, and the mean and standard error
computed by hand in NumPy from the same log-densities. The Dask path is tested
in tests/dask/.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

import kldiv
from kldiv._array_api import is_jax_namespace, to_numpy
from kldiv.estimators import Estimate, kl_from_sample_log_probs
from tests._helpers import asarray

Q_MEANS = np.array([0.0, 0.3, 1.0])  # P = N(0, 1), Q = N(mu, 1): D(P‖Q) = mu²/2


def _log_densities(n: int = 40_000, seed: int = 0):
    x = np.random.default_rng(seed).normal(0.0, 1.0, size=(n, 3))
    return norm.logpdf(x), norm.logpdf(x, Q_MEANS, 1.0)


def _by_hand(log_p: np.ndarray, log_q: np.ndarray, estimator: str):
    w = log_p - log_q
    terms = w if estimator == "k1" else np.expm1(-w) + w
    return terms.mean(axis=0), terms.std(axis=0, ddof=1) / math.sqrt(terms.shape[0])


def _value_and_stderr(xp, log_p, log_q, **options):
    """(value, stderr) as NumPy, jitted on JAX (an Estimate is not a JAX type: unpack it)."""

    def run(a, b):
        est = kl_from_sample_log_probs(a, b, **options)
        return est.value, est.stderr

    if is_jax_namespace(xp):
        import jax

        run = jax.jit(run)
    value, stderr = run(asarray(xp, log_p), asarray(xp, log_q))
    return to_numpy(value), to_numpy(stderr)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_mean_and_stderr_by_hand(xp, estimator):
    """The value and standard error are the terms' mean and s/√n, per batch element."""
    log_p, log_q = _log_densities()
    value, stderr = _value_and_stderr(xp, log_p, log_q, estimator=estimator)
    expected_value, expected_stderr = _by_hand(log_p, log_q, estimator)
    np.testing.assert_allclose(value, expected_value, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(stderr, expected_stderr, rtol=1e-8)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_covers_the_exact_divergence(estimator):
    """Within 4 standard errors of mu²/2; k3 is exact (0 ± 0) at Q = P and tighter nearby."""
    log_p, log_q = _log_densities(seed=1)
    est = kl_from_sample_log_probs(log_p, log_q, estimator=estimator)
    assert isinstance(est, Estimate)
    assert est.method == "monte_carlo"
    assert est.n == 40_000
    assert np.all(np.abs(est.value - Q_MEANS**2 / 2) <= 4 * est.stderr + 1e-15)
    if estimator == "k3":
        k1 = kl_from_sample_log_probs(log_p, log_q, estimator="k1")
        assert est.value[0] == 0.0
        assert est.stderr[0] == 0.0
        assert np.all(est.stderr[1:] < k1.stderr[1:])


def test_single_estimate_is_a_float_and_base_two_gives_bits():
    """A 1-D input gives float value and stderr; base=2 divides both by log 2."""
    log_p, log_q = _log_densities(n=5000, seed=2)
    nats = kl_from_sample_log_probs(log_p[:, 2], log_q[:, 2])
    bits = kl_from_sample_log_probs(log_p[:, 2], log_q[:, 2], base=2)
    assert isinstance(nats.value, float)
    assert isinstance(nats.stderr, float)
    assert bits.unit == "bits"
    assert bits.value == pytest.approx(nats.value / math.log(2), rel=1e-14)
    assert bits.stderr == pytest.approx(nats.stderr / math.log(2), rel=1e-14)


def test_sample_axis_and_broadcasting():
    """Draws along axis 1; a log_q shared by every batch row broadcasts."""
    log_p, log_q = _log_densities(n=3000, seed=3)
    by_rows = kl_from_sample_log_probs(log_p.T, log_q.T, axis=1)
    by_columns = kl_from_sample_log_probs(log_p, log_q, axis=0)
    np.testing.assert_allclose(by_rows.value, by_columns.value, rtol=1e-13)
    shared = kl_from_sample_log_probs(log_p.T, log_q.T[:1], axis=-1)
    expected, _ = _by_hand(log_p, np.repeat(log_q[:, :1], 3, axis=1), "k1")
    np.testing.assert_allclose(shared.value, expected, rtol=1e-12)


def test_torch_value_is_differentiable_and_stderr_is_not():
    """d/dmu of the k1 estimate is -mean(x - mu), by hand; the stderr carries no graph."""
    torch = pytest.importorskip("torch")
    x = torch.tensor(np.random.default_rng(4).normal(size=2000))
    mu = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    log_p = -0.5 * x**2 - 0.5 * math.log(2 * math.pi)
    log_q = -0.5 * (x - mu) ** 2 - 0.5 * math.log(2 * math.pi)
    est = kl_from_sample_log_probs(log_p, log_q)
    assert not est.stderr.requires_grad
    est.value.backward()
    assert mu.grad.item() == pytest.approx(-float((x - 0.7).mean()), rel=1e-12)


def test_zero_q_density_at_a_draw_is_infinite():
    """A log q of -inf at a draw of P: D(P‖Q) = +inf, with an unknown (NaN) standard error."""
    log_p = np.zeros(10)
    log_q = np.full(10, -1.0)
    log_q[3] = -np.inf
    est = kl_from_sample_log_probs(log_p, log_q)
    assert est.value == math.inf
    assert math.isnan(est.stderr)


@pytest.mark.parametrize(
    ("log_p", "log_q", "options", "message"),
    [
        (
            [0.0, np.nan],
            [0.0, 0.0],
            {},
            r"`log_p` must hold log-densities .* got nan at index \(1,\)",
        ),
        ([0.0, 0.0], [np.inf, 0.0], {}, r"`log_q` must hold log-densities .* got inf"),
        ([0.0, -np.inf], [0.0, 0.0], {}, r"`log_p` must be > -inf: the samples are draws of P"),
        ([0.0, 0.0], [0.0, 0.0], {"estimator": "k2"}, r"`estimator` must be one of \['k1', 'k3'\]"),
        ([0.0], [0.0], {}, "at least 2 draws"),
        ([0.0, 0.0], [0.0, 0.0], {"axis": 1}, r"`axis` must be in \[-1, 0\]"),
        ([0.0, 0.0], [0.0, 0.0, 0.0], {}, "do not broadcast"),
        ([0.0, 0.0], [0.0, 0.0], {"base": 1}, "`base` must be"),
    ],
)
def test_bad_input_raises(log_p, log_q, options, message):
    """Each mistake is a KLDivError naming the argument."""
    with pytest.raises(kldiv.KLDivError, match=message):
        kl_from_sample_log_probs(np.asarray(log_p), np.asarray(log_q), **options)


def test_validate_false_skips_the_checks():
    """validate=False: a NaN propagates into the value instead of raising."""
    est = kl_from_sample_log_probs(np.array([0.0, np.nan, 0.0]), np.zeros(3), validate=False)
    assert math.isnan(est.value)
