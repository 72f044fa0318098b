"""histogram_kl: binned plug-in KL against the exact divergence of binned Gaussians.

The exact reference is the KL divergence between the bin probabilities of two
normal laws, computed from their CDFs (SciPy) with the same edges and the two
open-ended bins. Seeded data throughout.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

import kldiv
from kldiv.estimators import Estimate, histogram_kl
from tests._helpers import asarray

EDGES = np.linspace(-2.5, 2.5, 11)


def binned_kl(edges, mean_p, sd_p, mean_q, sd_q) -> float:
    """Exact D(P_binned ‖ Q_binned) for normal laws, open-ended bins included."""
    cuts = np.concatenate([[-np.inf], edges, [np.inf]])
    p = np.diff(norm.cdf(cuts, mean_p, sd_p))
    q = np.diff(norm.cdf(cuts, mean_q, sd_q))
    return float(np.sum(p * np.log(p / q)))


def continuous_kl(mean_p, sd_p, mean_q, sd_q) -> float:
    return math.log(sd_q / sd_p) + (sd_p**2 + (mean_p - mean_q) ** 2) / (2 * sd_q**2) - 0.5


def normal_samples(seed, n, m=None, mean_q=0.3, sd_q=1.5):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, n), rng.normal(mean_q, sd_q, m or n)


# ---------------------------------------------------------------------------
# Accuracy


@pytest.mark.parametrize("smoothing", [0.0, 0.5, 1.0])
def test_matches_the_binned_closed_form(smoothing):
    """Fixed edges, 20000 points each: within 3 standard errors of the exact binned KL."""
    x, y = normal_samples(0, 20000)
    est = histogram_kl(x, y, bins=EDGES, smoothing=smoothing)
    assert isinstance(est, Estimate)
    assert est.method == "histogram"
    assert est.n == 20000
    assert est.details["bins"] == 12  # ten bins and the two open-ended ones
    assert abs(est.value - binned_kl(EDGES, 0.0, 1.0, 0.3, 1.5)) < 3.0 * est.stderr


def test_stderr_is_calibrated():
    """Over 300 seeded data sets: stderr ≈ the spread, and the 95% CI covers the binned KL."""
    exact = binned_kl(EDGES, 0.0, 1.0, 0.5, 1.2)
    values, stderrs = [], []
    for seed in range(300):
        x, y = normal_samples(seed, 5000, mean_q=0.5, sd_q=1.2)
        est = histogram_kl(x, y, bins=EDGES)
        values.append(est.value)
        stderrs.append(est.stderr)
    values, stderrs = np.array(values), np.array(stderrs)
    spread = values.std(ddof=1)
    assert abs(values.mean() - exact) < 0.3 * spread  # bias well below the error bar
    assert 0.85 < np.sqrt(np.mean(stderrs**2)) / spread < 1.2
    assert 0.9 <= np.mean(np.abs(values - exact) <= 1.959964 * stderrs) <= 0.99


def test_stderr_is_conservative_when_the_laws_agree():
    """At P = Q the estimate is χ²-like: a floored, conservative stderr and a known upward bias.

    The bias (J − 1)(1/n + 1/m)/2 is larger than the standard error here, so
    the interval covers the estimator's mean, not 0: what the docs state.
    """
    values, stderrs, biases = [], [], []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        est = histogram_kl(rng.normal(size=3000), rng.normal(size=3000), bins=EDGES)
        values.append(est.value)
        stderrs.append(est.stderr)
        biases.append(est.details["plugin_bias_nats"])
    values, stderrs = np.array(values), np.array(stderrs)
    assert np.all(stderrs > 0)
    assert 1.0 <= np.mean(stderrs) / values.std(ddof=1) < 2.0
    assert np.mean(np.abs(values - values.mean()) <= 1.959964 * stderrs) >= 0.95
    assert values.mean() == pytest.approx(np.mean(biases), rel=0.25)


def test_plugin_bias_is_predicted():
    """Unsmoothed, n = m = 1000: the mean error over 300 data sets ≈ plugin_bias_nats."""
    exact = binned_kl(EDGES, 0.0, 1.0, 0.3, 1.5)
    errors, predicted = [], []
    for seed in range(300):
        x, y = normal_samples(seed, 1000)
        est = histogram_kl(x, y, bins=EDGES, smoothing=0.0)
        errors.append(est.value - exact)
        predicted.append(est.details["plugin_bias_nats"])
    errors = np.array(errors)
    assert np.all(np.isfinite(errors))
    standard_error_of_mean = errors.std(ddof=1) / math.sqrt(len(errors))
    assert abs(errors.mean() - np.mean(predicted)) < 3.0 * standard_error_of_mean
    assert errors.mean() > 3.0 * standard_error_of_mean  # the bias is real and upward


def test_converges_to_the_continuous_divergence():
    """Bins growing like 2 n^(1/3): the error shrinks to the continuous KL's third digit."""
    exact = continuous_kl(0.0, 1.0, 0.3, 1.5)
    errors = {}
    for n in (1000, 10**5, 10**6):
        x, y = normal_samples(1, n)
        est = histogram_kl(x, y, bins=round(2 * n ** (1 / 3)))
        errors[n] = abs(est.value - exact)
    assert errors[10**6] < 0.002 < errors[1000]
    assert errors[10**5] < 0.005


def test_coarse_bins_underestimate():
    """Four bins lose information: the binned KL is below the continuous one (data processing)."""
    edges = np.array([-1.0, 0.0, 1.0])
    exact_binned = binned_kl(edges, 0.0, 1.0, 0.3, 1.5)
    assert exact_binned < continuous_kl(0.0, 1.0, 0.3, 1.5) - 0.02
    x, y = normal_samples(2, 200000)
    est = histogram_kl(x, y, bins=edges)
    assert abs(est.value - exact_binned) < 3.0 * est.stderr


# ---------------------------------------------------------------------------
# Smoothing, bins and edge cases


def test_unsmoothed_empty_reference_bin_is_infinite():
    """smoothing=0 with an x in a bin holding no y: +inf (unknown stderr); smoothed: finite."""
    x, y = np.array([0.1, 0.2, 3.5]), np.array([0.1, 0.15, 0.3, 0.25])
    edges = np.array([0.0, 1.0, 2.0, 4.0])
    plugin = histogram_kl(x, y, bins=edges, smoothing=0.0)
    assert plugin.value == math.inf
    assert math.isnan(plugin.stderr)
    smoothed = histogram_kl(x, y, bins=edges, smoothing=0.5)
    assert math.isfinite(smoothed.value)
    assert smoothed.value > 0


def test_smoothing_by_hand():
    """(counts + α) / (n + Jα) on both sides, then Σ p log(p/q)."""
    x = np.array([0.5, 0.5, 1.5, 2.5])
    y = np.array([0.5, 1.5, 1.5, 1.5, 2.5, 2.5])
    est = histogram_kl(x, y, bins=[0.0, 1.0, 2.0, 3.0], smoothing=1.0)
    p = np.array([3.0, 2.0, 2.0]) / 7.0
    q = np.array([2.0, 4.0, 3.0]) / 9.0
    assert est.value == pytest.approx(float(np.sum(p * np.log(p / q))), rel=1e-14)
    np.testing.assert_allclose(est.details["p"], p, rtol=1e-15)
    np.testing.assert_allclose(est.details["q"], q, rtol=1e-15)


def test_identical_samples_give_zero_with_a_positive_stderr():
    """The same data: exactly 0, and an error bar of the χ² floor, not a false exact 0."""
    x, _ = normal_samples(3, 500)
    est = histogram_kl(x, x[::-1], bins=EDGES)
    assert est.value == 0.0
    assert est.stderr == pytest.approx(math.sqrt(0.5 * 11 * (2 / 500) ** 2), rel=1e-12)


def test_points_outside_the_edges_go_to_open_ended_bins():
    """No mass is dropped: counts below and above the edges become bins of their own."""
    x = np.array([-5.0, 0.5, 0.5, 1.5, 9.0])
    y = np.array([0.5, 1.5, 1.5])
    est = histogram_kl(x, y, bins=[0.0, 1.0, 2.0])
    assert est.details["counts_x"].tolist() == [1, 2, 1, 1]
    assert est.details["counts_y"].tolist() == [0, 1, 2, 0]
    assert est.details["bins"] == 4
    inside = histogram_kl(x[1:4], y, bins=[0.0, 1.0, 2.0])
    assert inside.details["bins"] == 2  # unused open-ended bins are left out


@pytest.mark.parametrize("bins", ["auto", "fd", "sturges", "sqrt", 7])
def test_bin_rules_use_the_pooled_samples(bins):
    """Counts and NumPy rules give edges spanning both samples; no open-ended bins needed."""
    x, y = normal_samples(4, 2000)
    est = histogram_kl(x, y, bins=bins)
    edges = np.histogram_bin_edges(np.concatenate([x, y]), bins=bins)
    np.testing.assert_array_equal(est.details["edges"], edges)
    assert est.details["bins"] == len(edges) - 1
    assert est.details["counts_x"].sum() == 2000
    assert est.details["counts_y"].sum() == 2000


def test_details_are_distributions():
    """The smoothed p and q each sum to 1; the unit-bearing bias is in nats."""
    x, y = normal_samples(4, 2000)
    est = histogram_kl(x, y, base=2)
    assert est.details["p"].sum() == pytest.approx(1.0)
    assert est.details["q"].sum() == pytest.approx(1.0)
    nats = histogram_kl(x, y)
    assert est.details["plugin_bias_nats"] == nats.details["plugin_bias_nats"]


def test_base_two_gives_bits():
    """base=2 divides value and stderr by log 2."""
    x, y = normal_samples(5, 2000)
    nats, bits = histogram_kl(x, y), histogram_kl(x, y, base=2)
    assert bits.value == pytest.approx(nats.value / math.log(2), rel=1e-14)
    assert bits.stderr == pytest.approx(nats.stderr / math.log(2), rel=1e-14)
    assert "bits" in repr(bits)


def test_same_value_on_every_backend(xp):
    """Arrays of any library give the NumPy result (copied to NumPy float64)."""
    x, y = normal_samples(6, 1000)
    expected = histogram_kl(x, y, bins=EDGES)
    got = histogram_kl(asarray(xp, x), asarray(xp, y), bins=asarray(xp, EDGES))
    assert got.value == expected.value
    assert got.stderr == expected.stderr


def test_column_input_is_accepted():
    """Shape (n, 1) is a 1-D sample."""
    x, y = normal_samples(6, 1000)
    assert histogram_kl(x[:, None], y[:, None]).value == histogram_kl(x, y).value


def test_traced_input_raises():
    """Under jax.jit: a clear error."""
    jax = pytest.importorskip("jax")
    x, y = normal_samples(6, 100)
    with pytest.raises(kldiv.KLDivError, match="must be a concrete array"):
        jax.jit(lambda a, b: histogram_kl(a, b).value)(x, y)


@pytest.mark.parametrize(
    ("x", "y", "options", "message"),
    [
        (np.zeros((5, 2)), np.zeros(5), {}, r"`x` must be a non-empty 1-D sample"),
        (np.zeros(5), np.zeros(0), {}, r"`y` must be a non-empty 1-D sample"),
        (
            np.array([0.0, np.nan]),
            np.zeros(3),
            {},
            "`x` must hold finite values; got nan at index 1",
        ),
        (np.zeros(3), np.array([np.inf]), {}, "`y` must hold finite values"),
        (np.zeros(3), np.zeros(3), {"bins": "magic"}, "`bins` must be an int, edges or one of"),
        (np.zeros(3), np.zeros(3), {"bins": 0}, "`bins` as a count must be >= 1"),
        (np.zeros(3), np.zeros(3), {"bins": [1.0]}, "`bins` as edges must be 1-D with >= 2"),
        (np.zeros(3), np.zeros(3), {"bins": [[0.0, 1.0]]}, "`bins` as edges must be 1-D"),
        (np.zeros(3), np.zeros(3), {"bins": [0.0, 0.0, 1.0]}, "strictly increasing"),
        (np.zeros(3), np.zeros(3), {"bins": [0.0, np.nan]}, "finite and strictly increasing"),
        (np.zeros(3), np.zeros(3), {"bins": object()}, "`bins` must be an int, a sequence"),
        (np.zeros(3), np.zeros(3), {"smoothing": -0.5}, "`smoothing` must be a finite number"),
        (np.zeros(3), np.zeros(3), {"base": 0}, "`base` must be None"),
    ],
)
def test_bad_input_raises(x, y, options, message):
    """Each check names the argument, what was expected and what arrived."""
    with pytest.raises(kldiv.KLDivError, match=message):
        histogram_kl(x, y, **options)
