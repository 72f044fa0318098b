"""knn_kl: the Wang–Kulkarni–Verdú k-NN estimator against closed forms, ties, and its error bar.

Every test draws seeded data, so the values are reproducible; the closed forms
are those of Gaussians (isotropic and correlated) and exponentials. The
calibration test repeats the estimate on 120 independent seeded data sets and
checks that the reported standard error matches the spread of the estimates
and that the 95% interval covers the truth about 95% of the time (at n where
the estimator's bias is far below its standard error: checked in the test).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import kldiv
from kldiv.estimators import Estimate, knn_kl
from tests._helpers import asarray


def gaussian_kl(d: int, shift: float = 0.5, scale: float = 1.2) -> float:
    """D(N(0, I) ‖ N(shift, scale² I)) in d dimensions."""
    return d * (math.log(scale) + (1.0 + shift**2) / (2.0 * scale**2) - 0.5)


def gaussian_samples(seed: int, n: int, d: int, m: int | None = None):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, size=(n, d)), rng.normal(0.5, 1.2, size=(m or n, d))


def mvn_kl(mean_p, cov_p, mean_q, cov_q) -> float:
    """D(N(μp, Σp) ‖ N(μq, Σq)), by dense linear algebra."""
    d = len(mean_p)
    diff = np.asarray(mean_q) - np.asarray(mean_p)
    trace = np.trace(np.linalg.solve(cov_q, cov_p))
    mahalanobis = diff @ np.linalg.solve(cov_q, diff)
    log_det = np.linalg.slogdet(cov_q)[1] - np.linalg.slogdet(cov_p)[1]
    return 0.5 * (trace + mahalanobis - d + log_det)


# ---------------------------------------------------------------------------
# Accuracy against closed forms


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("options", [{}, {"k": 3}, {"bias_correction": True}])
def test_gaussians_match_the_closed_form(d, options):
    """N(0, I) against N(0.5, 1.2² I): within 3 standard errors of the exact divergence."""
    x, y = gaussian_samples(d, 4000, d)
    est = knn_kl(x, y, **options)
    assert isinstance(est, Estimate)
    assert est.method == "knn"
    assert est.n == 4000
    assert abs(est.value - gaussian_kl(d)) < 3.0 * est.stderr
    assert 0.0 < est.stderr < 0.05


def test_correlated_gaussians_match_the_closed_form():
    """A correlated P against a wider, shifted Q: the Euclidean metric needs no whitening."""
    rng = np.random.default_rng(11)
    cov_p = np.array([[1.0, 0.8], [0.8, 1.0]])
    cov_q = 2.0 * np.eye(2)
    mean_q = np.array([-0.3, 0.2])
    x = rng.multivariate_normal([0.0, 0.0], cov_p, size=4000)
    y = rng.multivariate_normal(mean_q, cov_q, size=6000)
    est = knn_kl(x, y)
    assert abs(est.value - mvn_kl([0.0, 0.0], cov_p, mean_q, cov_q)) < 3.0 * est.stderr


@pytest.mark.parametrize(("rate_p", "rate_q"), [(1.0, 2.0), (2.0, 1.0)])
def test_exponentials_match_the_closed_form(rate_p, rate_q):
    """Exp(λp) against Exp(λq): log(λp/λq) + λq/λp − 1, despite the boundary at 0."""
    rng = np.random.default_rng(7)
    x = rng.exponential(1.0 / rate_p, size=4000)
    y = rng.exponential(1.0 / rate_q, size=4000)
    exact = math.log(rate_p / rate_q) + rate_q / rate_p - 1.0
    est = knn_kl(x, y)
    assert abs(est.value - exact) < 3.0 * est.stderr


def test_unequal_sample_sizes():
    """Unequal sample sizes: the log(m / (n − 1)) term keeps the estimate centred."""
    x, y = gaussian_samples(5, 2000, 2, m=8000)
    est = knn_kl(x, y)
    assert est.details["m"] == 8000
    assert abs(est.value - gaussian_kl(2)) < 3.0 * est.stderr


# ---------------------------------------------------------------------------
# Standard error


def test_stderr_is_calibrated():
    """Over 120 seeded data sets: stderr ≈ the estimates' spread; the 95% CI covers the truth.

    d = 1, n = m = 1000, k = 1. The estimator's bias here (|mean − truth|) is
    checked to be below a tenth of the standard error, so coverage of the
    truth and coverage of the estimator's own mean coincide; both are tested.
    The subsample standard error has 19 degrees of freedom, so the normal 95%
    interval is expected to cover about 94% of the time.
    """
    truth = gaussian_kl(1)
    values, stderrs = [], []
    for seed in range(120):
        x, y = gaussian_samples(1000 + seed, 1000, 1)
        est = knn_kl(x, y, seed=seed)
        values.append(est.value)
        stderrs.append(est.stderr)
    values, stderrs = np.array(values), np.array(stderrs)
    spread = values.std(ddof=1)
    assert abs(values.mean() - truth) < 0.1 * spread
    assert 0.8 < np.sqrt(np.mean(stderrs**2)) / spread < 1.25
    covered_truth = np.mean(np.abs(values - truth) <= 1.959964 * stderrs)
    covered_mean = np.mean(np.abs(values - values.mean()) <= 1.959964 * stderrs)
    assert 0.88 <= covered_truth <= 0.99
    assert 0.88 <= covered_mean <= 0.99


def test_stderr_falls_like_one_over_root_n():
    """Four times the data, about half the standard error."""
    small = knn_kl(*gaussian_samples(3, 2000, 2))
    large = knn_kl(*gaussian_samples(3, 8000, 2))
    assert 0.35 < large.stderr / small.stderr < 0.7


def test_value_does_not_depend_on_the_seed():
    """The seed only splits the data for the standard error."""
    x, y = gaussian_samples(4, 1000, 2)
    first, second = knn_kl(x, y, seed=1), knn_kl(x, y, seed=2)
    assert first.value == second.value
    assert first.stderr != second.stderr
    assert knn_kl(x, y, seed=1).stderr == first.stderr


def test_details_describe_the_estimate():
    """k, d, m, the subsample setting and the subsample mean are reported."""
    est = knn_kl(*gaussian_samples(4, 1000, 2), k=2)
    details = est.details
    assert details["k"] == 2
    assert details["d"] == 2
    assert details["m"] == 1000
    assert details["stderr_method"] == "subsample"
    assert details["stderr_groups"] == 20
    assert details["stderr_dof"] == 19
    assert details["tied_points"] == 0
    assert details["bias_correction"] is False
    assert math.isfinite(details["subsample_mean_nats"])


def test_no_stderr_when_asked_or_too_few_points():
    """No error bar asked for: NaN; too few points for one: ``± inf``, not converged.

    Never a silent ``± nan`` where an error bar was asked for.
    """
    x, y = gaussian_samples(4, 1000, 2)
    skipped = knn_kl(x, y, stderr_groups=0)
    assert math.isnan(skipped.stderr)
    assert skipped.converged is None
    assert skipped.details["stderr_groups"] == 0
    assert skipped.value == knn_kl(x, y).value
    small = knn_kl(x[:30], y[:30])
    assert small.stderr == math.inf
    assert small.converged is False
    assert "n >= 40, m >= 20); got n = 30, m = 30" in small.details["reason"]
    assert "not converged" in repr(small)
    assert math.isfinite(small.value)
    fewer = knn_kl(x[:100], y[:100])
    assert fewer.details["stderr_groups"] == 5
    assert math.isfinite(fewer.stderr)


# ---------------------------------------------------------------------------
# Ties, duplicates and degenerate samples


def test_rounded_data_match_the_closed_form():
    """Gaussians rounded to 0.1 (every point tied): finite and close to the continuous value."""
    rng = np.random.default_rng(21)
    x = np.round(rng.normal(0.0, 1.0, 5000), 1)
    y = np.round(rng.normal(0.5, 1.2, 5000), 1)
    for k in (1, 3):
        est = knn_kl(x, y, k=k)
        assert est.details["tied_points"] > 4000
        assert math.isfinite(est.value)
        assert math.isfinite(est.stderr)
        assert abs(est.value - gaussian_kl(1)) < 3.0 * est.stderr


def test_integer_data_estimate_the_discrete_divergence():
    """Poisson(3) against Poisson(4) counts: close to the divergence of the two pmfs."""
    from scipy.stats import poisson

    support = np.arange(80)
    exact = float(
        np.sum(poisson.pmf(support, 3) * (poisson.logpmf(support, 3) - poisson.logpmf(support, 4)))
    )
    rng = np.random.default_rng(5)
    est = knn_kl(rng.poisson(3, 5000), rng.poisson(4, 5000))
    assert abs(est.value - exact) < 3.0 * est.stderr


def test_heavy_duplicates_never_give_nan_or_minus_inf():
    """Three distinct values, in samples that also share values: finite value and stderr."""
    rng = np.random.default_rng(8)
    x = rng.choice([0.0, 1.0, 2.0], size=(600, 1), p=[0.5, 0.3, 0.2])
    y = rng.choice([0.0, 1.0, 2.0, 5.0], size=(500, 1))
    for k in (1, 4):
        for bias_correction in (False, True):
            est = knn_kl(x, y, k=k, bias_correction=bias_correction)
            assert math.isfinite(est.value)
            assert math.isfinite(est.stderr)


def test_duplicated_rows_in_continuous_data():
    """Every row of x twice (k = 1): each point is tied, l = 2 at the nearest other row.

    The per-point log-ratios are those of the undoubled data, so the estimate
    rises by exactly ψ(2) − ψ(1) − log((2n − 1)/(n − 1)) = 1 − log(5999/2999):
    the documented effect of duplicated rows.
    """
    x, y = gaussian_samples(9, 3000, 2)
    original = knn_kl(x, y)
    doubled = knn_kl(np.concatenate([x, x]), y)
    assert doubled.details["tied_points"] == 6000
    assert math.isfinite(doubled.stderr)
    shift = 1.0 - math.log(5999 / 2999)
    assert doubled.value - original.value == pytest.approx(shift, rel=1e-9)
    assert knn_kl(np.concatenate([x, x]), y, k=2).details["tied_points"] == 0


def test_identical_samples_give_zero():
    """The same points as x and y (in any order): exactly 0, not the formula's −1/k."""
    x, _ = gaussian_samples(2, 500, 3)
    shuffled = x[np.random.default_rng(0).permutation(500)]
    for k in (1, 3):
        est = knn_kl(x, shuffled, k=k)
        assert est.value == 0.0
        assert est.stderr == 0.0
        assert "same points" in est.details["degenerate"]


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (np.full(10, 3.0), np.full(7, 3.0), 0.0),  # the same point mass
        (np.full(10, 3.0), np.full(7, 4.0), math.inf),  # disjoint point masses
        (np.full(10, 3.0), np.linspace(0.0, 1.0, 7), math.inf),  # P a point mass
        (np.linspace(0.0, 1.0, 10), np.full(7, 0.5), math.inf),  # Q a point mass
        (np.linspace(0.0, 1.0, 10), np.full(7, 0.0), math.inf),  # Q's atom is one of P's points
    ],
)
def test_constant_samples(x, y, expected):
    """All-identical samples: 0 for the same constant, +inf otherwise; never NaN."""
    est = knn_kl(x, y)
    assert est.value == expected
    assert est.stderr == 0.0
    assert "degenerate" in est.details


def test_fewest_points_with_ties():
    """With m = k and x_i equal to a y, the y-order cannot grow past m: still finite."""
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([0.0, 2.5])
    est = knn_kl(x, y, k=2)
    assert math.isfinite(est.value)


# ---------------------------------------------------------------------------
# Inputs, backends and units


def test_same_value_on_every_backend(xp):
    """Arrays of any library give the NumPy result (they are copied to NumPy)."""
    x, y = gaussian_samples(6, 500, 2)
    expected = knn_kl(x, y)
    got = knn_kl(asarray(xp, x), asarray(xp, y))
    assert got.value == expected.value
    assert got.stderr == expected.stderr
    assert isinstance(got.value, float)


def test_float32_input_is_computed_in_float64():
    """Single precision input: the same estimate as its float64 copy."""
    x, y = gaussian_samples(6, 500, 2)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    expected = knn_kl(x32.astype(np.float64), y32.astype(np.float64)).value
    assert knn_kl(x32, y32).value == expected


def test_traced_input_raises():
    """Under jax.jit the estimator cannot run: a clear error, not a tracer leak."""
    jax = pytest.importorskip("jax")
    x, y = gaussian_samples(6, 100, 1)
    with pytest.raises(kldiv.KLDivError, match="must be a concrete array"):
        jax.jit(lambda a, b: knn_kl(a, b).value)(x, y)


def test_vector_and_column_inputs_agree():
    """Shape (n,) is n points in one dimension, like (n, 1)."""
    x, y = gaussian_samples(6, 500, 1)
    assert knn_kl(x[:, 0], y[:, 0]).value == knn_kl(x, y).value


def test_base_two_gives_bits():
    """base=2 divides value and stderr by log 2."""
    x, y = gaussian_samples(6, 500, 2)
    nats, bits = knn_kl(x, y), knn_kl(x, y, base=2)
    assert bits.base == 2.0
    assert "bits" in repr(bits)
    assert bits.value == pytest.approx(nats.value / math.log(2), rel=1e-14)
    assert bits.stderr == pytest.approx(nats.stderr / math.log(2), rel=1e-14)


def test_value_is_invariant_to_the_order_of_points():
    """Shuffling either sample changes nothing but rounding."""
    x, y = gaussian_samples(6, 800, 2)
    rng = np.random.default_rng(1)
    shuffled = knn_kl(x[rng.permutation(800)], y[rng.permutation(800)])
    assert shuffled.value == pytest.approx(knn_kl(x, y).value, rel=1e-12, abs=1e-14)


def test_single_worker_gives_the_same_value():
    """workers=1 and workers=-1 run the same algorithm."""
    x, y = gaussian_samples(6, 5000, 2)
    assert knn_kl(x, y, workers=1).value == knn_kl(x, y, workers=-1).value


@pytest.mark.parametrize(
    ("x", "y", "options", "message"),
    [
        ([[0.0], [np.nan], [1.0]], [[0.0], [1.0]], {}, r"`x` must hold finite values; got nan"),
        ([0.0, 1.0, 2.0], [0.0, np.inf], {}, r"`y` must hold finite values; got inf at index"),
        (np.zeros((5, 2)), np.zeros((5, 3)), {}, "same dimension d"),
        (np.zeros((2, 2, 2)), np.zeros((5, 2)), {}, r"`x` must have shape \(samples,\)"),
        (np.zeros((5, 0)), np.zeros((5, 0)), {}, "d >= 1"),
        ([0.0, 1.0], [0.0, 1.0, 2.0], {"k": 2}, r"`x` must have at least k \+ 1 = 3 samples"),
        ([0.0, 1.0, 2.0, 3.0], [0.0], {"k": 2}, "`y` must have at least k = 2 samples"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], {"k": 0}, "`k` must be an integer >= 1"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], {"k": 1.0}, "`k` must be an integer >= 1"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], {"k": True}, "`k` must be an integer >= 1"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], {"workers": 0}, "`workers` must be -1"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], {"stderr_groups": -1}, "`stderr_groups` must be"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], {"bias_correction": 1}, "`bias_correction` must be"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], {"base": 1}, "`base` must be None"),
    ],
)
def test_bad_input_raises(x, y, options, message):
    """Each check names the argument, what was expected and what arrived."""
    with pytest.raises(kldiv.KLDivError, match=message):
        knn_kl(np.asarray(x), np.asarray(y), **options)


def test_mixed_libraries_raise():
    """The samples must come from one array library."""
    torch = pytest.importorskip("torch")
    with pytest.raises(kldiv.KLDivError, match="same array library"):
        knn_kl(np.zeros(5), torch.zeros(5))
