"""The estimators on a real LocalCluster (2 worker processes): NumPy's results, errors arrive.

The data are generated on the workers block by block (deterministic per
block), and the same blocks are generated here to compute the NumPy reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

import kldiv
from kldiv.estimators import histogram_kl, kl_from_sample_log_probs, policy_kl

da = pytest.importorskip("dask.array")

DRAWS_PER_CHUNK = 125_000
DRAW_CHUNKS = 8  # a million draws
Q_MEAN = 0.4  # P = N(0, 1), Q = N(0.4, 1): D(P‖Q) = 0.08


def _draws(block_id: tuple[int, ...], *, law: str) -> np.ndarray:
    """Chunk i of the draws of P = N(0, 1) (or of a Q = N(0.3, 1.4) sample): seeded by i."""
    rng = np.random.default_rng([7, block_id[0], law == "q"])
    if law == "q":
        return rng.normal(0.3, 1.4, DRAWS_PER_CHUNK)
    return rng.normal(0.0, 1.0, DRAWS_PER_CHUNK)


def _lazy_draws(law: str) -> da.Array:
    return da.map_blocks(
        _draws,
        law=law,
        chunks=((DRAWS_PER_CHUNK,) * DRAW_CHUNKS,),
        dtype=np.float64,
        meta=np.empty(0),
    )


def _local_draws(law: str) -> np.ndarray:
    return np.concatenate([_draws((i,), law=law) for i in range(DRAW_CHUNKS)])


def test_histogram_on_the_cluster_equals_numpy(client):
    """1M + 1M points counted on the workers: NumPy's counts and value with the same edges."""
    x, y = _local_draws("p"), _local_draws("q")
    for bins in (np.linspace(-4.0, 4.0, 65), "sturges"):
        eager = histogram_kl(x, y, bins=bins)
        lazy = histogram_kl(_lazy_draws("p"), _lazy_draws("q"), bins=bins)
        np.testing.assert_array_equal(lazy.details["edges"], eager.details["edges"])
        np.testing.assert_array_equal(lazy.details["counts_x"], eager.details["counts_x"])
        np.testing.assert_array_equal(lazy.details["counts_y"], eager.details["counts_y"])
        assert (lazy.value, lazy.stderr) == (eager.value, eager.stderr)
    auto = histogram_kl(_lazy_draws("p"), _lazy_draws("q"), bins="auto")
    q75, q25 = np.percentile(np.concatenate([x, y]), [75, 25])
    assert abs(auto.details["iqr"] - (q75 - q25)) <= auto.details["iqr_error_bound"]
    assert auto.value == pytest.approx(histogram_kl(x, y, bins="auto").value, rel=0.01)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_sample_log_probs_on_the_cluster(client, estimator):
    """Log-densities evaluated on the workers: NumPy's mean and stderr, near the exact 0.08."""
    draws = _lazy_draws("p")
    log_p = draws.map_blocks(norm.logpdf, dtype=np.float64)
    log_q = draws.map_blocks(norm.logpdf, Q_MEAN, 1.0, dtype=np.float64)
    lazy = kl_from_sample_log_probs(log_p, log_q, estimator=estimator)
    x = _local_draws("p")
    eager = kl_from_sample_log_probs(norm.logpdf(x), norm.logpdf(x, Q_MEAN), estimator=estimator)
    assert lazy.value == pytest.approx(eager.value, rel=1e-12)
    assert lazy.stderr == pytest.approx(eager.stderr, rel=1e-9)
    assert abs(lazy.value - Q_MEAN**2 / 2) < 4 * lazy.stderr


def test_policy_kl_on_the_cluster(client):
    """Per-token k3 with importance weights computed by the workers equals NumPy's."""
    rng = np.random.default_rng(3)
    log_p, log_ref = (
        np.log(rng.uniform(0.01, 1, (4000, 64))),
        np.log(rng.uniform(0.01, 1, (4000, 64))),
    )
    log_behavior = np.log(rng.uniform(0.01, 1, (4000, 64)))
    lazy = policy_kl(
        da.from_array(log_p, chunks=(500, 64)),
        da.from_array(log_ref, chunks=(500, 64)),
        log_behavior=da.from_array(log_behavior, chunks=(500, 64)),
    )
    np.testing.assert_allclose(
        client.compute(lazy.mean(axis=1)).result(),
        policy_kl(log_p, log_ref, log_behavior=log_behavior).mean(axis=1),
        rtol=1e-12,
    )


def test_deferred_estimator_checks_reach_the_client(client):
    """A worker's failed check arrives at the client as the KLDivError, with its message."""
    rng = np.random.default_rng(4)
    log_p, log_ref = (
        np.log(rng.uniform(0.01, 1, (2000, 8))),
        np.log(rng.uniform(0.01, 1, (2000, 8))),
    )
    log_ref[1717, 3] = np.inf
    lazy = policy_kl(da.from_array(log_p, chunks=(300, 8)), da.from_array(log_ref, chunks=(300, 8)))
    with pytest.raises(
        kldiv.KLDivError, match=r"`log_ref` must hold .* got inf at index \(1717, 3\)"
    ):
        lazy.sum().compute()
    x = np.concatenate([np.zeros(5000), [np.nan], np.ones(5000)])
    with pytest.raises(
        kldiv.KLDivError, match="`y` must hold finite values; got nan at index 5000"
    ):
        histogram_kl(da.from_array(np.ones(100), chunks=30), da.from_array(x, chunks=999))
