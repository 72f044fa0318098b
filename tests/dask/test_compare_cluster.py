"""kldiv.reports.compare_logits on a real LocalCluster: equal to NumPy, and larger than a worker."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kldiv.reports import compare_logits
from tests.dask.conftest import WORKER_MEMORY_LIMIT

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

FIELDS = [
    "kl_mean",
    "kl_stderr",
    "kl_median",
    "kl_max",
    "kl_min",
    "same_top",
    "delta_p_mean",
    "delta_p_rms",
    "ppl_base",
    "ppl_test",
    "log_ppl_ratio",
    "log_ppl_ratio_stderr",
    "nll_correlation",
]


def _worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def test_cluster_report_equals_numpy(client):
    """Two worker processes compute the report of a chunked Dask pair; it equals NumPy's."""
    rng = np.random.default_rng(11)
    base = 3.0 * rng.standard_normal((600, 257))
    test = base + 0.3 * rng.standard_normal(base.shape)
    tokens = rng.integers(0, 257, 600)
    tokens[::9] = -100
    expected = compare_logits(base, test, tokens=tokens)
    for chunks in ((100, 257), (128, 64)):
        report = compare_logits(
            da.from_array(base, chunks=chunks),
            da.from_array(test, chunks=chunks),
            tokens=da.from_array(tokens, chunks=150),
        )
        np.testing.assert_array_equal(report.token_kl, expected.token_kl)
        for name in FIELDS:
            assert getattr(report, name) == pytest.approx(getattr(expected, name), rel=1e-12), name
        assert report.n_masked == expected.n_masked == 67


def _lazy_pair(rows: int, vocab: int, block_rows: int):
    """Logits generated inside the workers, deterministic per block (seeded), not on the client."""
    shape, chunks = (rows, vocab), (block_rows, vocab)
    base = 8.0 * da.random.default_rng(1).random(shape, chunks=chunks, dtype=np.float32)
    noise = da.random.default_rng(2).random(shape, chunks=chunks, dtype=np.float32)
    return base, base + np.float32(0.25) * noise


def test_data_several_times_a_workers_memory_completes(client):
    """1.5 GiB of float32 logits (3× a worker's 512 MiB limit) stream through; no worker dies."""
    rows, vocab, block_rows = 12288, 16384, 128
    base, test = _lazy_pair(rows, vocab, block_rows)
    total = base.nbytes + test.nbytes
    assert total >= 3 * WORKER_MEMORY_LIMIT
    pids = _worker_pids(client)
    assert len(pids) == 2
    report = compare_logits(base, test)
    assert _worker_pids(client) == pids  # the same two processes: none was killed and restarted
    assert report.n_tokens == rows
    assert report.vocab_size == vocab
    assert np.isfinite(report.token_kl).all()
    assert 0 < report.kl_mean < 0.01
    head_base, head_test = (x[:block_rows].compute() for x in (base, test))
    head = compare_logits(head_base, head_test)  # the first block, recomputed here in NumPy
    np.testing.assert_array_equal(report.token_kl[:block_rows], head.token_kl)
