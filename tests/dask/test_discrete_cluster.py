"""The discrete measures on a real LocalCluster (2 worker processes, 512 MiB each).

Results equal the in-memory NumPy results; deferred value checks raise the
KLDivError at the client with the eager message; and logits three times larger
than a worker's memory limit stream through ``kl_from_logits`` without a
worker being killed or restarted.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax, rel_entr

import kldiv
from tests._helpers import random_probs
from tests.dask.conftest import WORKER_MEMORY_LIMIT

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

VOCAB = 32768
ROWS_PER_CHUNK = 64  # 8 MiB float32 chunks
CHUNKS = 100  # per array: 2 × 100 × 8 MiB = 1.56 GiB = 3.1 × WORKER_MEMORY_LIMIT
PATTERNS = 16


def _patterns(seed: int) -> np.ndarray:
    return np.random.default_rng([2024, seed]).standard_normal((PATTERNS, VOCAB), dtype=np.float32)


def _logits_block(block_id: tuple[int, int], *, seed: int) -> np.ndarray:
    """Chunk i of a deterministic logits array, made on the worker that needs it.

    Row r is pattern ``r % PATTERNS`` plus ``r % 7`` (a shift the softmax
    ignores), and chunk i rolls its vocabulary by i (the same roll in P and
    Q), so that row r's divergence is that of its pattern pair.
    """
    chunk = block_id[0]
    rows = np.arange(chunk * ROWS_PER_CHUNK, (chunk + 1) * ROWS_PER_CHUNK)
    logits = _patterns(seed)[rows % PATTERNS] + (rows % 7).astype(np.float32)[:, None]
    return np.roll(logits, chunk, axis=1)


def _lazy_logits(seed: int) -> da.Array:
    return da.map_blocks(
        _logits_block,
        seed=seed,
        chunks=((ROWS_PER_CHUNK,) * CHUNKS, (VOCAB,)),
        dtype=np.float32,
        meta=np.empty((0, 0), np.float32),
    )


def _pattern_divergences() -> np.ndarray:
    """D(P‖Q) of each pattern pair, in float64 by SciPy (independent of kldiv)."""
    log_p = log_softmax(_patterns(1).astype(np.float64), axis=1)
    log_q = log_softmax(_patterns(2).astype(np.float64), axis=1)
    return rel_entr(np.exp(log_p), np.exp(log_q)).sum(axis=1)


def _reset_peak_rss() -> bool:
    """Resets this process's peak resident memory (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _peak_rss() -> int:
    """This process's peak resident memory since the last reset, in bytes (Linux VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


@pytest.mark.parametrize(
    ("f", "form"),
    [
        (kldiv.kl_from_probs, "probs"),
        (kldiv.kl_from_logits, "log"),
        (kldiv.js_from_log_probs, "log"),
        (kldiv.cross_entropy, "probs"),
    ],
)
def test_cluster_results_equal_numpy(client, f, form):
    """Computed by the cluster's workers, the values equal the in-memory NumPy ones."""
    rng = np.random.default_rng(0)
    p, q = random_probs(rng, (300, 50), zero_fraction=0.1), random_probs(rng, (300, 50))
    if form == "log":
        with np.errstate(divide="ignore"):
            p, q = np.log(p), np.log(q)
    for chunks in ((64, 50), (64, 20)):
        lazy = f(da.from_array(p, chunks=chunks), da.from_array(q, chunks=chunks))
        np.testing.assert_allclose(client.compute(lazy).result(), f(p, q), rtol=1e-12)


@pytest.mark.parametrize("chunks", [(64, 50), (64, 20)])
def test_deferred_validation_raises_through_the_cluster(client, chunks):
    """A worker's check fails: the client receives the KLDivError with the eager message."""
    rng = np.random.default_rng(1)
    p, q = random_probs(rng, (300, 50)), random_probs(rng, (300, 50))
    p[217] *= 1.001
    with pytest.raises(kldiv.KLDivError) as eager:
        kldiv.kl_from_probs(p, q)
    lazy = kldiv.kl_from_probs(da.from_array(p, chunks=chunks), da.from_array(q, chunks=chunks))
    with pytest.raises(kldiv.KLDivError) as deferred:
        lazy.sum().compute()
    assert str(deferred.value) == str(eager.value)
    assert "batch index (217,)" in str(deferred.value)
    logits = np.log(q)
    logits[5, 7] = np.nan
    lazy = kldiv.kl_from_logits(da.from_array(logits, chunks=chunks), np.log(p[:1]))
    with pytest.raises(
        kldiv.KLDivError, match=r"`p_logits` must hold logits .* got nan at index \(5, 7\)"
    ):
        lazy.mean().compute()


def test_logits_larger_than_worker_memory(client):
    """1.56 GiB of logits (3.1× a worker's limit) stream through; no worker dies or restarts."""
    p_logits, q_logits = _lazy_logits(1), _lazy_logits(2)
    assert p_logits.nbytes + q_logits.nbytes >= 3 * WORKER_MEMORY_LIMIT
    workers_before = set(client.scheduler_info()["workers"])
    events_before = len(client.get_events("all"))
    peaks_measured = all(client.run(_reset_peak_rss).values())

    per_row = kldiv.kl_from_logits(p_logits, q_logits)
    rows, total = dask.compute(per_row, per_row.sum())

    expected_rows = _pattern_divergences()[np.arange(CHUNKS * ROWS_PER_CHUNK) % PATTERNS]
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, expected_rows, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(total, expected_rows.sum(), rtol=1e-4)

    assert set(client.scheduler_info()["workers"]) == workers_before
    new_events = client.get_events("all")[events_before:]
    removed = [event for _, event in new_events if event.get("action") == "remove-worker"]
    assert removed == []
    if peaks_measured:  # each worker stayed below its limit during this computation
        assert max(client.run(_peak_rss).values()) < WORKER_MEMORY_LIMIT
