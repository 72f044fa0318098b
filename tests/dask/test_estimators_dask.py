"""The estimators on Dask arrays (threaded scheduler, in this process).

- ``policy_kl`` is elementwise: a lazy result equal to NumPy's, checks deferred.
- ``histogram_kl`` counts the chunks where they are: with the same edges the
  counts, value and standard error equal NumPy's exactly; the bin rules give
  NumPy's edges (exactly, or within the stated quartile error for fd/auto).
- ``kl_from_sample_log_probs`` averages in one pass: NumPy's values.
- ``knn_kl`` refuses Dask samples (a KD-tree needs every point in memory).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import kldiv
from kldiv.estimators import histogram_kl, kl_from_sample_log_probs, policy_kl

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


def _eager_message(f, *args, **options) -> str:
    with pytest.raises(kldiv.KLDivError) as caught:
        f(*args, **options)
    return str(caught.value)


# ---------------------------------------------------------------------------
# policy_kl


def _token_log_probs(seed: int = 0):
    rng = np.random.default_rng(seed)
    log_p = np.log(rng.uniform(0.01, 1.0, (60, 12)))
    log_ref = np.log(rng.uniform(0.01, 1.0, (60, 12)))
    log_behavior = np.log(rng.uniform(0.01, 1.0, (1, 12)))
    log_p[3, 4] = log_ref[7, 1] = -np.inf  # zero-probability conventions, both sides
    return log_p, log_ref, log_behavior


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
@pytest.mark.parametrize("off_policy", [False, True])
def test_policy_kl_is_lazy_and_equals_numpy(estimator, off_policy):
    """Per-token k1/k2/k3 (and importance-weighted) on Dask: lazy, NumPy's values."""
    log_p, log_ref, log_behavior = _token_log_probs()
    options = {"estimator": estimator}
    lazy_options = dict(options)
    if off_policy:
        options["log_behavior"] = log_behavior
        lazy_options["log_behavior"] = da.from_array(log_behavior, chunks=(1, 5))
    lazy = policy_kl(
        da.from_array(log_p, chunks=(16, 5)), da.from_array(log_ref, chunks=(16, 5)), **lazy_options
    )
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), policy_kl(log_p, log_ref, **options))


def test_policy_kl_checks_are_deferred():
    """NaN log-probabilities raise at compute with the eager message; validate=False skips."""
    log_p, log_ref, _ = _token_log_probs(1)
    log_ref[41, 9] = np.nan
    lazy = policy_kl(da.from_array(log_p, chunks=(16, 5)), da.from_array(log_ref, chunks=(16, 5)))
    with pytest.raises(kldiv.KLDivError) as caught:
        lazy.compute()
    assert str(caught.value) == _eager_message(policy_kl, log_p, log_ref)
    unchecked = policy_kl(da.from_array(log_p, chunks=16), log_ref, validate=False).compute()
    assert np.isnan(unchecked[41, 9])


def test_policy_kl_impossible_behaviour_token_is_deferred():
    """A token the behaviour policy could not draw raises at compute, naming an offending index."""
    log_p, log_ref, log_behavior = _token_log_probs(2)
    log_behavior[0, 6] = -np.inf
    lazy = policy_kl(
        da.from_array(log_p, chunks=(16, 5)),
        da.from_array(log_ref, chunks=(16, 5)),
        log_behavior=da.from_array(log_behavior, chunks=(1, 5)),
    )
    with pytest.raises(
        kldiv.KLDivError, match=r"`log_behavior` must be > -inf .* index \(\d+, 6\)"
    ):
        lazy.compute()


def test_policy_kl_differently_chunked_inputs_align():
    """log_p, log_ref and log_behavior each chunked their own way: NumPy's values and errors."""
    log_p, log_ref, _ = _token_log_probs(3)
    log_behavior = np.log(np.random.default_rng(3).uniform(0.01, 1.0, (60, 12)))
    lazy = policy_kl(
        da.from_array(log_p, chunks=(16, 5)),
        da.from_array(log_ref, chunks=(25, 12)),
        log_behavior=da.from_array(log_behavior, chunks=(9, 7)),
    )
    np.testing.assert_array_equal(
        lazy.compute(), policy_kl(log_p, log_ref, log_behavior=log_behavior)
    )
    log_behavior[44, 10] = -np.inf
    lazy = policy_kl(
        da.from_array(log_p, chunks=(16, 5)),
        da.from_array(log_ref, chunks=(25, 12)),
        log_behavior=da.from_array(log_behavior, chunks=(9, 7)),
    )
    with pytest.raises(kldiv.KLDivError, match=r"`log_behavior` must be > -inf .* \(44, 10\)"):
        lazy.compute()


# ---------------------------------------------------------------------------
# histogram_kl


def _drift_samples(seed: int = 0, n: int = 120_000, m: int = 90_000):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, n), rng.normal(0.3, 1.4, m)


def _lazy(x: np.ndarray, chunk: int) -> da.Array:
    return da.from_array(x, chunks=chunk)


@pytest.mark.parametrize("bins", ["edges", 40])
def test_histogram_same_edges_give_numpy_exactly(bins):
    """Given edges (1 pass) or a bin count (2 passes): counts, value and stderr are NumPy's."""
    x, y = _drift_samples()
    if bins == "edges":
        bins = np.linspace(-3.0, 3.0, 25)  # points outside go to the open-ended bins
    eager = histogram_kl(x, y, bins=bins)
    lazy = histogram_kl(_lazy(x, 17_000), _lazy(y, 25_000), bins=bins)
    np.testing.assert_array_equal(lazy.details["edges"], eager.details["edges"])
    np.testing.assert_array_equal(lazy.details["counts_x"], eager.details["counts_x"])
    np.testing.assert_array_equal(lazy.details["counts_y"], eager.details["counts_y"])
    assert lazy.value == eager.value
    assert lazy.stderr == eager.stderr
    assert (lazy.n, lazy.details["m"]) == (eager.n, eager.details["m"])
    assert lazy.details["passes"] == (1 if isinstance(bins, np.ndarray) else 2)


@pytest.mark.parametrize("rule", ["sturges", "sqrt", "rice", "scott", "doane"])
def test_histogram_moment_rules_give_numpy_edges(rule):
    """Rules from the size, range and moments: NumPy's edges, in two passes."""
    x, y = _drift_samples(1)
    eager = histogram_kl(x, y, bins=rule)
    lazy = histogram_kl(_lazy(x, 17_000), _lazy(y, 25_000), bins=rule)
    assert lazy.details["passes"] == 2
    np.testing.assert_allclose(lazy.details["edges"], eager.details["edges"], rtol=1e-13)
    assert lazy.value == pytest.approx(eager.value, rel=1e-12)


@pytest.mark.parametrize("rule", ["fd", "auto"])
def test_histogram_quartile_rules_within_the_stated_error(rule):
    """fd/auto: the IQR within its bound of NumPy's; the bin count NumPy's, or one off."""
    x, y = _drift_samples(2)
    pooled = np.concatenate([x, y])
    q75, q25 = np.percentile(pooled, [75, 25])
    eager = histogram_kl(x, y, bins=rule)
    lazy = histogram_kl(_lazy(x, 17_000), _lazy(y, 25_000), bins=rule)
    bound = lazy.details["iqr_error_bound"]
    assert abs(lazy.details["iqr"] - (q75 - q25)) <= bound
    assert bound <= 2.0**-10 * (q75 - q25)
    assert abs(len(lazy.details["edges"]) - len(eager.details["edges"])) <= 1
    assert 3 <= lazy.details["passes"] <= 6
    assert lazy.value == pytest.approx(eager.value, rel=0.02)


def test_histogram_heavy_tails_zoom_in_on_the_quartiles():
    """Cauchy data (range ≫ IQR) need a zoom pass; the IQR still meets its bound."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_cauchy(50_000), rng.standard_cauchy(50_000)
    q75, q25 = np.percentile(np.concatenate([x, y]), [75, 25])
    lazy = histogram_kl(_lazy(x, 9_000), _lazy(y, 9_000), bins="auto")
    assert lazy.details["passes"] >= 4  # summaries, >= 2 quartile passes, counts
    assert abs(lazy.details["iqr"] - (q75 - q25)) <= lazy.details["iqr_error_bound"]
    assert lazy.details["iqr_error_bound"] <= 2.0**-10 * (q75 - q25)


@pytest.mark.parametrize(("y_counts", "iqr"), [((80, 300, 120), 0.0), ((150, 200, 150), 0.5)])
def test_histogram_tied_data_have_an_exact_iqr(y_counts, iqr):
    """Tied data: the bins' minima and maxima give NumPy's IQR exactly (0 for tied quartiles)."""
    x = np.repeat([0.0, 1.0, 2.0], [100, 300, 100])
    y = np.repeat([0.0, 1.0, 2.0], y_counts)
    q75, q25 = np.percentile(np.concatenate([x, y]), [75, 25])
    assert q75 - q25 == iqr
    for rule in ("fd", "auto"):
        eager = histogram_kl(x, y, bins=rule)
        lazy = histogram_kl(_lazy(x, 77), _lazy(y, 64), bins=rule)
        assert lazy.details["iqr"] == iqr
        assert lazy.details["iqr_error_bound"] == 0.0
        np.testing.assert_array_equal(lazy.details["edges"], eager.details["edges"])
        assert lazy.value == eager.value


def test_histogram_single_value_and_column_input():
    """All points equal (NumPy's ±0.5 range) and (n, 1) columns work as in NumPy."""
    x, y = np.full((1000, 1), 2.5), np.full(700, 2.5)
    for bins in (5, "auto"):
        eager = histogram_kl(x, y, bins=bins)
        lazy = histogram_kl(da.from_array(x, chunks=(300, 1)), _lazy(y, 300), bins=bins)
        np.testing.assert_array_equal(lazy.details["edges"], eager.details["edges"])
        assert lazy.value == eager.value


def test_histogram_reads_chunks_lazily_and_checks_them():
    """A non-finite value raises when its chunk is read, with the eager message."""
    x, y = _drift_samples(4, n=20_000, m=20_000)
    x[13_579] = np.inf
    expected = _eager_message(histogram_kl, x, y)
    with pytest.raises(kldiv.KLDivError) as caught:
        histogram_kl(_lazy(x, 3_000), _lazy(y, 3_000))
    assert str(caught.value) == expected


def test_histogram_refuses_stone_on_dask():
    """'stone' needs one histogram per candidate count: refused with the reason."""
    x, y = _drift_samples(5, n=1000, m=1000)
    with pytest.raises(kldiv.KLDivError, match="'stone' needs a histogram"):
        histogram_kl(_lazy(x, 300), _lazy(y, 300), bins="stone")


def test_histogram_counts_one_pass_per_stage():
    """Given edges: every chunk is read once, by the counting pass."""
    x, y = _drift_samples(6, n=30_000, m=30_000)
    lock, calls = threading.Lock(), [0]

    def counted(block):
        with lock:
            calls[0] += 1
        return block

    lazy_x = _lazy(x, 5_000).map_blocks(counted, dtype=x.dtype, meta=np.empty(0))
    histogram_kl(lazy_x, _lazy(y, 5_000), bins=np.linspace(-2, 2, 9))
    assert calls[0] == 6
    calls[0] = 0
    histogram_kl(lazy_x, _lazy(y, 5_000), bins="auto")
    assert calls[0] == 6 * 3  # summaries, one quartile pass (range ≈ 8 IQR), counts


# ---------------------------------------------------------------------------
# kl_from_sample_log_probs


def _normal_log_densities(n: int = 200_000, seed: int = 7):
    from scipy.stats import norm

    x = np.random.default_rng(seed).normal(0.0, 1.0, size=(n, 2))
    means = np.array([0.2, 1.0])
    return norm.logpdf(x), norm.logpdf(x, means, 1.0), means**2 / 2.0


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_sample_log_probs_on_dask_equal_numpy(estimator):
    """Dask (one pass) gives NumPy's mean and standard error, within the exact KL's reach."""
    log_p, log_q, exact = _normal_log_densities()
    eager = kl_from_sample_log_probs(log_p, log_q, estimator=estimator, base=2)
    lazy = kl_from_sample_log_probs(
        da.from_array(log_p, chunks=(30_000, 2)),
        da.from_array(log_q, chunks=(30_000, 2)),
        estimator=estimator,
        base=2,
    )
    np.testing.assert_allclose(lazy.value, eager.value, rtol=1e-12)
    np.testing.assert_allclose(lazy.stderr, eager.stderr, rtol=1e-9)
    assert lazy.n == eager.n == 200_000
    assert np.all(np.abs(lazy.value - exact / math.log(2)) < 4 * lazy.stderr)


def test_sample_log_probs_checks_are_deferred_into_the_pass():
    """A log_p of -inf (not a draw of P) raises from the chunk's task, eager message."""
    log_p, log_q, _ = _normal_log_densities(n=20_000)
    log_p[12_345, 1] = -np.inf
    expected = _eager_message(kl_from_sample_log_probs, log_p, log_q)
    with pytest.raises(kldiv.KLDivError) as caught:
        kl_from_sample_log_probs(da.from_array(log_p, chunks=(3_000, 2)), log_q)
    assert str(caught.value) == expected


# ---------------------------------------------------------------------------
# knn_kl


def test_knn_refuses_dask_samples():
    """The k-NN estimator needs every point in memory (a KD-tree): a Dask sample is refused."""
    x = da.from_array(np.random.default_rng(8).normal(size=(100, 2)), chunks=50)
    with pytest.raises(kldiv.KLDivError, match=r"`x` is a Dask array"):
        kldiv.knn_kl(x, x.compute())


def test_estimate_of_dask_arrays_prints_without_computing():
    """An Estimate may hold lazy Dask arrays; its repr says so and computes nothing."""
    calls = [0]

    def counted(block):
        calls[0] += 1
        return block

    value = da.from_array(np.ones(4), chunks=2).map_blocks(counted, meta=np.empty(0))
    est = kldiv.Estimate(value, value * 0.1, "monte_carlo", 100)
    assert repr(est) == (
        "Estimate(value=<lazy Dask array, shape (4,)>, stderr=<lazy Dask array, shape (4,)>, "
        "nats (monte_carlo, n=100))"
    )
    assert calls[0] == 0
