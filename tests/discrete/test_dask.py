"""Dask arrays: every discrete measure builds a lazy graph whose result equals NumPy's.

Value checks are deferred into the same graph: invalid input gives a lazy
result whose ``compute()`` raises the KLDivError the eager path raises (same
argument, expectation, value and index), whatever the chunking; the checks
read the chunks the result reads, once.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import kldiv
from tests._helpers import random_probs

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

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

WHOLE_ROWS = (7, 9)  # the event axis in one chunk
SPLIT_ROWS = (7, 4)  # each row spread over three chunks


def _pair(form: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p, q = random_probs(rng, (40, 9), zero_fraction=0.2), random_probs(rng, (40, 9))
    if form == "log":
        with np.errstate(divide="ignore"):
            p, q = np.log(p), np.log(q)
    return p, q


def _eager_message(f, *arrays, **options) -> str:
    with pytest.raises(kldiv.KLDivError) as caught:
        f(*arrays, **options)
    return str(caught.value)


class CountingSource:
    """A Dask array whose every chunk read is counted (thread-safe)."""

    def __init__(self, values: np.ndarray, chunks: tuple) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        meta = np.empty((0,) * values.ndim, dtype=values.dtype)  # no call to infer it
        self.array = da.from_array(values, chunks=chunks).map_blocks(
            self._read, dtype=values.dtype, meta=meta
        )
        self.chunks = int(np.prod(self.array.numblocks))

    def _read(self, block: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
        return block


@pytest.mark.parametrize(("f", "form"), PAIRS)
def test_differently_chunked_inputs_give_numpy_and_locate_errors(f, form):
    """P and Q chunked differently (rows and event axis) align: NumPy's values, eager errors."""
    p, q = _pair(form)
    lazy = f(da.from_array(p, chunks=(7, 4)), da.from_array(q, chunks=(5, 6)))
    np.testing.assert_allclose(lazy.compute(), f(p, q), rtol=1e-12)
    bad = q.copy()
    bad[23, 5] = np.nan
    lazy = f(da.from_array(p, chunks=(7, 4)), da.from_array(bad, chunks=(5, 6)))
    with pytest.raises(kldiv.KLDivError) as caught:
        lazy.compute()
    assert str(caught.value) == _eager_message(f, p, bad)


@pytest.mark.parametrize("chunks", [WHOLE_ROWS, SPLIT_ROWS])
@pytest.mark.parametrize(("f", "form"), PAIRS)
def test_lazy_result_equals_numpy(f, form, chunks):
    """The result is a dask array (nothing computed yet) equal to the NumPy result."""
    p, q = _pair(form)
    lazy = f(da.from_array(p, chunks=chunks), da.from_array(q, chunks=chunks), base=2)
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


def _corrupt(kind: str) -> tuple:
    """(function, p, q) with one defect in the first argument, as the eager path sees it."""
    p, q = _pair("probs", seed=3)
    if kind == "negative":
        p[23, 5], p[23, 6] = -0.1, p[23, 6] + 0.1 + p[23, 5]
        return kldiv.kl_from_probs, p, q
    if kind == "nan":
        p[12, 8] = np.nan
        return kldiv.js_from_probs, p, q
    if kind == "row_sum":
        p[31] *= 1.01
        return kldiv.cross_entropy, p, q
    if kind == "entropy_row_sum":
        p[4] *= 0.9
        return lambda a, b, **kw: kldiv.entropy(a, **kw), p, q
    with np.errstate(divide="ignore"):
        log_p, log_q = np.log(p), np.log(q)
    if kind == "log_plus_inf":
        log_p[38, 2] = np.inf
        return kldiv.kl_from_log_probs, log_p, log_q
    if kind == "log_row_sum":
        log_p[17, np.argmax(log_p[17])] += 0.1
        return kldiv.js_from_log_probs, log_p, log_q
    if kind == "logit_nan":
        log_p[9, 0] = np.nan
        return kldiv.kl_from_logits, log_p, log_q
    if kind == "logit_empty_row":
        log_p[17, :] = -np.inf
        return kldiv.cross_entropy_from_logits, log_p, log_q
    assert kind == "generalized_negative"
    p[2, 2] = -3.0
    return kldiv.generalized_kl, p, q


DEFECTS = [
    "negative",
    "nan",
    "row_sum",
    "entropy_row_sum",
    "log_plus_inf",
    "log_row_sum",
    "logit_nan",
    "logit_empty_row",
    "generalized_negative",
]


@pytest.mark.parametrize("chunks", [WHOLE_ROWS, SPLIT_ROWS])
@pytest.mark.parametrize("defect", DEFECTS)
def test_invalid_input_raises_the_eager_error_at_compute(defect, chunks):
    """The call returns a lazy result; compute() raises the eager path's exact message."""
    f, p, q = _corrupt(defect)
    expected = _eager_message(f, p, q)
    source = CountingSource(p, chunks)
    lazy = f(source.array, da.from_array(q, chunks=chunks))
    assert isinstance(lazy, da.Array)
    assert source.calls == 0  # nothing was computed at call time
    with dask.config.set(scheduler="threads"), pytest.raises(kldiv.KLDivError) as caught:
        lazy.compute()
    assert str(caught.value) == expected


@pytest.mark.parametrize("defect", ["negative", "log_row_sum", "logit_empty_row"])
def test_validate_false_removes_the_checks(defect):
    """validate=False computes whatever the input gives (NaN, a wrong number), without raising."""
    f, p, q = _corrupt(defect)
    lazy = f(
        da.from_array(p, chunks=SPLIT_ROWS), da.from_array(q, chunks=SPLIT_ROWS), validate=False
    )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # raised by NumPy inside Dask's tasks
        np.testing.assert_allclose(lazy.compute(), f(p, q, validate=False), rtol=1e-12)


def test_global_default_switches_the_deferred_checks_off():
    """kldiv.set_default_validate(False) also removes the deferred checks."""
    f, p, q = _corrupt("row_sum")
    previous = kldiv.set_default_validate(False)
    try:
        lazy = f(da.from_array(p, chunks=WHOLE_ROWS), da.from_array(q, chunks=WHOLE_ROWS))
    finally:
        kldiv.set_default_validate(previous)
    np.testing.assert_allclose(lazy.compute(), f(p, q, validate=False), rtol=1e-12)


@pytest.mark.parametrize("chunks", [WHOLE_ROWS, SPLIT_ROWS])
@pytest.mark.parametrize(
    "f", [kldiv.kl_from_probs, kldiv.kl_from_logits, kldiv.entropy_from_log_probs]
)
def test_checks_read_each_chunk_once(f, chunks):
    """Computing the checked result reads every input chunk exactly once (no extra pass)."""
    form = "probs" if f is kldiv.kl_from_probs else "log"
    p, q = _pair(form, seed=5)
    sources = [CountingSource(p, chunks), CountingSource(q, chunks)]
    arrays = [s.array for s in sources][: 1 if f is kldiv.entropy_from_log_probs else 2]
    with dask.config.set(scheduler="threads"):
        value = f(*arrays).compute()
    np.testing.assert_allclose(value, f(*[p, q][: len(arrays)]), rtol=1e-12)
    for source in sources[: len(arrays)]:
        assert source.calls == source.chunks


def test_whole_row_checks_fuse_into_the_reading_tasks():
    """With the event axis in one chunk the checks add no task to the optimized graph."""
    p, q = _pair("probs", seed=6)
    pa, qa = da.from_array(p, chunks=WHOLE_ROWS), da.from_array(q, chunks=WHOLE_ROWS)
    tasks = {}
    for validate in (True, False):
        (optimized,) = dask.optimize(kldiv.kl_from_probs(pa, qa, validate=validate))
        tasks[validate] = len(optimized.__dask_graph__())
    assert tasks[True] == tasks[False]


def test_errors_inside_a_broadcast_batch_name_the_argument_index():
    """A Q shared by every row (broadcast) is checked once, at its own index."""
    p, q = _pair("probs", seed=7)
    shared = q[:1].copy()
    shared[0, 4] = np.nan
    lazy = kldiv.kl_from_probs(
        da.from_array(p, chunks=SPLIT_ROWS), da.from_array(shared, chunks=(1, 4))
    )
    with pytest.raises(kldiv.KLDivError) as caught:
        lazy.compute()
    assert str(caught.value) == _eager_message(kldiv.kl_from_probs, p, shared)


def test_numpy_arguments_join_the_dask_graph():
    """A NumPy Q beside a Dask P joins the graph (a small one as one chunk); it stays lazy."""
    p, q = _pair("probs", seed=8)
    lazy = kldiv.kl_from_probs(da.from_array(p, chunks=WHOLE_ROWS), q[0])
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), kldiv.kl_from_probs(p, q[0]), rtol=1e-12)


def test_unknown_chunk_sizes():
    """After boolean indexing (NaN chunk sizes) results still match; errors name the chunk."""
    p, q = _pair("probs", seed=9)
    keep = np.arange(40) % 3 != 0
    mask = da.from_array(keep, chunks=7)
    selected = da.from_array(p, chunks=WHOLE_ROWS)[mask]
    assert np.isnan(selected.shape[0])
    np.testing.assert_allclose(
        kldiv.kl_from_probs(selected, q[0]).compute(),
        kldiv.kl_from_probs(p[keep], q[0]),
        rtol=1e-12,
    )
    bad = p.copy()
    bad[10, 3] = -1.0  # row 10 is the 3rd kept row of the second chunk (rows 7..13)
    lazy = kldiv.kl_from_probs(da.from_array(bad, chunks=WHOLE_ROWS)[mask], q[0])
    message = r"`p` must hold probabilities .* got -1\.0 at index \(2, 3\) of chunk \(1, 0\)"
    with pytest.raises(kldiv.KLDivError, match=message):
        lazy.compute()


def test_unknown_event_axis_length_is_refused():
    """The event axis must have a known length: the error says how to get one."""
    p, _ = _pair("probs", seed=10)
    columns = da.from_array(np.ones(9, dtype=bool), chunks=9)
    unknown = da.from_array(p, chunks=WHOLE_ROWS)[:, columns]
    with pytest.raises(kldiv.KLDivError, match="compute_chunk_sizes"):
        kldiv.kl_from_probs(unknown, unknown)
