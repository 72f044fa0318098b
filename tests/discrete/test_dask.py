"""Dask arrays: every discrete measure builds a lazy graph whose result equals NumPy's.

Value checks cannot run on lazy arrays without computing them; they are skipped
(documented in docs/discrete.md), so these tests pass valid input only.
"""

from __future__ import annotations

import numpy as np
import pytest

import kldiv
from tests._helpers import random_probs

da = pytest.importorskip("dask.array")

PAIRS = [
    (kldiv.kl_from_probs, "probs"),
    (kldiv.kl_from_log_probs, "log"),
    (kldiv.kl_from_logits, "log"),
    (kldiv.js_from_probs, "probs"),
    (kldiv.js_from_log_probs, "log"),
    (kldiv.js_from_logits, "log"),
    (kldiv.cross_entropy, "probs"),
    (kldiv.cross_entropy_from_log_probs, "log"),
    (kldiv.cross_entropy_from_logits, "log"),
    (kldiv.generalized_kl, "probs"),
]


@pytest.mark.parametrize(("f", "form"), PAIRS)
def test_lazy_result_equals_numpy(f, form):
    """The result is a dask array (nothing computed yet) equal to the NumPy result."""
    rng = np.random.default_rng(0)
    p, q = random_probs(rng, (40, 9), zero_fraction=0.2), random_probs(rng, (40, 9))
    if form == "log":
        with np.errstate(divide="ignore"):
            p, q = np.log(p), np.log(q)
    lazy = f(da.from_array(p, chunks=(7, 9)), da.from_array(q, chunks=(7, 9)), base=2)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), f(p, q, base=2), rtol=1e-12)


def test_entropy_forms_and_other_axis():
    """Single-argument measures and a non-default axis work lazily too."""
    p = random_probs(np.random.default_rng(1), (6, 11))
    lazy = da.from_array(p.T, chunks=(4, 3))
    np.testing.assert_allclose(kldiv.entropy(lazy, axis=0).compute(), kldiv.entropy(p), rtol=1e-12)
    logits = da.from_array(np.log(p), chunks=3)
    np.testing.assert_allclose(
        kldiv.entropy_from_logits(logits, temperature=2.0).compute(),
        kldiv.entropy_from_logits(np.log(p), temperature=2.0),
        rtol=1e-12,
    )
