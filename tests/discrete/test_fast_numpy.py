"""The chunked NumPy kernels (``_fast_numpy.compute``) equal the generic array-API path.

Every measure and form the kernels serve is compared with the reference on the
same inputs (zeros and ``-inf`` entries, ``+inf`` results, huge logits, small
temperatures, both float dtypes, ``base=2``, several batch axes, rows wider than
a block); invalid inputs raise the reference's error; anything the kernels do
not serve returns None.
"""

from __future__ import annotations

import contextlib
import math
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kldiv
from kldiv.discrete import _fast_numpy

# (public function, measure, form, number of inputs)
CASES: list[tuple[Callable, str, str, int]] = [
    (kldiv.kl_from_probs, "kl", "probs", 2),
    (kldiv.kl_from_log_probs, "kl", "log_probs", 2),
    (kldiv.kl_from_logits, "kl", "logits", 2),
    (kldiv.js_from_probs, "js", "probs", 2),
    (kldiv.js_from_log_probs, "js", "log_probs", 2),
    (kldiv.js_from_logits, "js", "logits", 2),
    (kldiv.entropy, "entropy", "probs", 1),
    (kldiv.entropy_from_log_probs, "entropy", "log_probs", 1),
    (kldiv.entropy_from_logits, "entropy", "logits", 1),
    (kldiv.cross_entropy, "cross_entropy", "probs", 2),
    (kldiv.cross_entropy_from_log_probs, "cross_entropy", "log_probs", 2),
    (kldiv.cross_entropy_from_logits, "cross_entropy", "logits", 2),
    (kldiv.generalized_kl, "generalized_kl", "probs", 2),
]
CASE_IDS = [fn.__name__ for fn, *_ in CASES]
SHAPE = (2, 3, 150, 300)
"""Three batch axes, 270,000 elements: just above the kernels' threshold."""


@contextlib.contextmanager
def reference_path() -> Iterator[None]:
    """Within this block the public functions run the generic path (the kernels decline)."""
    saved = _fast_numpy.compute
    _fast_numpy.compute = lambda *args, **kwargs: None
    try:
        yield
    finally:
        _fast_numpy.compute = saved


def reference(fn: Callable, *args, **options):
    with reference_path():
        return fn(*args, **options)


def options_of(measure: str, form: str, **extra) -> dict:
    """The public keyword arguments ``extra`` that apply to this measure and form."""
    keep = {"base", "validate"}
    keep |= {"temperature"} if form == "logits" else set()
    keep |= {"beta"} if measure == "js" else set()
    return {k: v for k, v in extra.items() if k in keep}


def fast(measure: str, form: str, arrays, **options):
    """The kernels' own result, asserting that they served the call."""
    full = {"axis": -1, "base": None, "validate": None, "temperature": 1.0, "beta": 0.5}
    full.update(options)
    result = _fast_numpy.compute(measure, form, arrays, **full)
    assert result is not None, f"the kernels declined {measure} from {form}"
    return result


def log_softmax64(z: np.ndarray) -> np.ndarray:
    m = np.max(z, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return (z - m) - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def make_inputs(
    form: str, count: int, shape: tuple, dtype, rng: np.random.Generator, zeros: str = "none"
) -> list[np.ndarray]:
    """Random inputs of a form, with zero-mass entries (``0``, ``-inf``) if asked.

    ``zeros``: "none", "shared" (the same zero-mass entries in every input) or
    "independent" (zero mass where another input has mass: +inf KL and cross-entropy).
    """
    logits = [rng.standard_normal(shape) * 3.0 for _ in range(count)]
    if zeros != "none":
        shared = rng.random(shape) < 0.2
        for i, z in enumerate(logits):
            mask = shared if zeros == "shared" or i == 0 else rng.random(shape) < 0.02
            z[mask] = -np.inf
            z[..., 0] = rng.standard_normal(shape[:-1]) * 3.0  # some mass in every row
    if form == "logits":
        return [z.astype(dtype) for z in logits]
    logs = [log_softmax64(z) for z in logits]
    if form == "log_probs":
        return [lp.astype(dtype) for lp in logs]
    return [np.exp(lp).astype(dtype) for lp in logs]


def tolerance(dtype, arrays=(), form: str = "", temperature: float = 1.0) -> dict:
    """How close the kernels' values are to the reference's.

    The reference's log-softmax ``z/T - (max + log Σ)`` rounds at ``eps * |z/T|``
    for every entry (the kernels subtract the maximum first), which float32 shows.
    """
    if dtype == np.float64:
        return {"rtol": 1e-12, "atol": 1e-12}
    atol = 2e-6
    if form == "logits":
        largest = max(float(np.max(np.abs(a[np.isfinite(a)]))) for a in arrays)
        atol = max(atol, 4 * float(np.finfo(dtype).eps) * largest / temperature)
    return {"rtol": 2e-5, "atol": atol}


def assert_equal_to_reference(fn, measure, form, arrays, **options):
    got = fast(measure, form, arrays, **options)
    public = fn(*arrays, **options)
    want = reference(fn, *arrays, **options)
    dtype = arrays[0].dtype
    assert got.dtype == want.dtype == dtype
    assert np.shape(got) == np.shape(want) == arrays[0].shape[:-1]
    np.testing.assert_array_equal(public, got)
    temperature = options.get("temperature", 1.0)
    np.testing.assert_allclose(got, want, **tolerance(dtype, arrays, form, temperature))
    return got


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("fn", "measure", "form", "count"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("zeros", ["none", "shared", "independent"])
def test_equals_reference(fn, measure, form, count, dtype, zeros):
    """Random inputs, with zero-mass entries (``0``, ``-inf``) and ``+inf`` results."""
    rng = np.random.default_rng(abs(hash((measure, form, zeros))) % 2**32)
    arrays = make_inputs(form, count, SHAPE, dtype, rng, zeros)
    if measure == "generalized_kl":
        arrays[0] = arrays[0] * dtype(3.0)  # unnormalised measures
    got = assert_equal_to_reference(fn, measure, form, arrays)
    if zeros == "independent" and measure in ("kl", "cross_entropy", "generalized_kl"):
        assert np.isinf(got).any()
    else:
        assert np.isfinite(got).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("fn", "measure", "form", "count"),
    [c for c in CASES if c[2] != "probs" or c[1] == "kl"],
    ids=[n for n, c in zip(CASE_IDS, CASES, strict=True) if c[2] != "probs" or c[1] == "kl"],
)
def test_options_equal_reference(fn, measure, form, count, dtype):
    """``base=2``, a temperature, a Jensen–Shannon weight, and ``validate=False``."""
    rng = np.random.default_rng(7)
    arrays = make_inputs(form, count, (4, 200, 400), dtype, rng, "shared")
    for options in (
        {"base": 2, "temperature": 0.25, "beta": 0.3},
        {"base": 10.0, "temperature": 3.0, "beta": 0.9, "validate": False},
    ):
        assert_equal_to_reference(fn, measure, form, arrays, **options_of(measure, form, **options))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", ["probs", "log_probs", "logits"])
def test_rows_wider_than_a_block(form, dtype):
    """Rows cut into column pieces (and, for logits, a first pass for the row constants)."""
    rng = np.random.default_rng(8)
    shape = (3, _fast_numpy.BLOCK_ELEMENTS + 4097)
    arrays = make_inputs(form, 2, shape, dtype, rng, "shared")
    temperature = {"temperature": 0.5} if form == "logits" else {}
    fn = {"probs": kldiv.kl_from_probs, "log_probs": kldiv.kl_from_log_probs}.get(
        form, kldiv.kl_from_logits
    )
    assert_equal_to_reference(fn, "kl", form, arrays, **temperature)
    js = {"probs": kldiv.js_from_probs, "log_probs": kldiv.js_from_log_probs}.get(
        form, kldiv.js_from_logits
    )
    assert_equal_to_reference(js, "js", form, arrays, **temperature)
    # A wide row off the simplex (or without mass) is seen once its pieces are added up.
    bad = [a.copy() for a in arrays]
    bad[1][2] = {"probs": bad[1][2] * 1.01, "log_probs": bad[1][2] + 0.01}.get(form, -np.inf)
    assert fast_or_none("kl", form, bad, **temperature) is None
    assert raised(fn, *bad, **temperature) == raised(reference, fn, *bad, **temperature)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_keep_their_digits(dtype):
    """Logits of 1e30: the maximum is subtracted before the log-normaliser."""
    rng = np.random.default_rng(9)
    zp, zq = make_inputs("logits", 2, (1024, 512), dtype, rng)
    zp[::2, 5] = 1e30  # P concentrated on one entry
    zq[1::4, 7] = -1e30  # no mass there
    zq[3::4, 9] = 1e30  # Q concentrated where P is not: KL ~ 1e30, finite
    got = assert_equal_to_reference(kldiv.kl_from_logits, "kl", "logits", [zp, zq])
    assert np.isfinite(got).all()
    assert got[3] > 1e29
    # Two tied huge logits: log p = log(1/2) each (x - (max + log Σ) in one step would give 0).
    tied = np.zeros((1024, 512), dtype=dtype)
    tied[:, :2] = 1e30
    entropy = fast("entropy", "logits", [tied])
    np.testing.assert_allclose(entropy, math.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(fast("cross_entropy", "logits", [tied, tied]), entropy, rtol=1e-6)
    np.testing.assert_allclose(fast("kl", "logits", [tied, tied]), 0.0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [1e-3, 1e-6])
def test_small_temperatures(temperature, dtype):
    """``z / T`` far beyond ``exp``'s range: finite, and as exact as float64 allows.

    Nearly tied logits make the divergence ill-conditioned at small ``T``, so the
    values are compared with the reference on the inputs cast to float64.
    """
    rng = np.random.default_rng(10)
    zp, zq = make_inputs("logits", 2, (512, 600), dtype, rng, "shared")
    wide = [z.astype(np.float64) for z in (zp, zq)]
    for fn, measure in ((kldiv.kl_from_logits, "kl"), (kldiv.js_from_logits, "js")):
        got = fast(measure, "logits", [zp, zq], temperature=temperature)
        want = reference(fn, *wide, temperature=temperature)
        assert np.isfinite(got).all()
        rtol = tolerance(dtype)["rtol"]
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.max(want)))


def test_one_row_gives_a_scalar_like_the_reference():
    rng = np.random.default_rng(11)
    lp, lq = make_inputs("log_probs", 2, (_fast_numpy.MIN_ELEMENTS + 3,), np.float32, rng)
    got = assert_equal_to_reference(kldiv.kl_from_log_probs, "kl", "log_probs", [lp, lq])
    assert type(got) is type(reference(kldiv.kl_from_log_probs, lp, lq)) is np.float32


# --------------------------------------------------------------------------- validation


def bad_inputs(form: str, dtype) -> list[tuple[str, int, list[np.ndarray]]]:
    """Invalid pairs of a form: what is wrong, which input, the pair (one bad entry or row)."""
    rng = np.random.default_rng(12)
    good = make_inputs(form, 2, (1024, 300), dtype, rng)

    def altered(index: int, where: tuple, change: Callable[[np.ndarray], np.ndarray]):
        arrays = [a.copy() for a in good]
        arrays[index][where] = change(arrays[index][where])
        return index, arrays

    cases = {
        "nan": altered(1, (700, 3), lambda _: np.nan),
        "plus inf": altered(0, (5, 0), lambda _: np.inf),
    }
    if form == "probs":
        cases["negative"] = altered(1, (1000, 299), lambda _: -1e-3)
        cases["row sum"] = altered(0, (512,), lambda row: row * 1.01)
    if form == "log_probs":
        cases["row sum"] = altered(1, (3,), lambda row: row + np.log(0.98))
    if form == "logits":
        cases["no mass"] = altered(1, (900,), lambda _: -np.inf)
    return [(what, index, arrays) for what, (index, arrays) in cases.items()]


def raised(fn: Callable, *args, **options) -> str:
    with pytest.raises(kldiv.KLDivError) as error:
        fn(*args, **options)
    return str(error.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("fn", "measure", "form", "count"), CASES, ids=CASE_IDS)
def test_invalid_inputs_raise_the_reference_error(fn, measure, form, count, dtype):
    for what, index, arrays in bad_inputs(form, dtype):
        arrays = arrays if count == 2 else [arrays[index]]
        if measure == "generalized_kl" and what == "row sum":
            continue  # measures need not sum to 1
        full = {"axis": -1, "base": None, "validate": True, "temperature": 1.0, "beta": 0.5}
        assert _fast_numpy.compute(measure, form, arrays, **full) is None, what
        assert raised(fn, *arrays) == raised(reference, fn, *arrays), what


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", ["probs", "log_probs"])
def test_row_sums_at_the_tolerance_decide_like_the_reference(form, dtype):
    """Rows just inside and just outside the tolerance: the fast verdict is the reference's."""
    tol = kldiv._validation.sum_tolerance(np.dtype(dtype), np)
    rng = np.random.default_rng(13)
    p, q = make_inputs("probs", 2, (1024, 400), np.float64, rng)
    fn = kldiv.kl_from_probs if form == "probs" else kldiv.kl_from_log_probs
    for factor in (0.9, 0.99, 0.999, 1.001, 1.01, 1.1):
        scaled = p.copy()
        scaled[100] *= 1.0 + factor * tol
        arrays = [scaled.astype(dtype), q.astype(dtype)]
        if form == "log_probs":
            arrays = [np.log(a) for a in arrays]
        try:
            want = reference(fn, *arrays)
        except kldiv.KLDivError as error:
            message = str(error)
        else:
            np.testing.assert_allclose(fn(*arrays), want, **tolerance(dtype))
            continue
        assert raised(fn, *arrays) == message, factor


@pytest.mark.parametrize(("fn", "measure", "form", "count"), CASES, ids=CASE_IDS)
def test_without_validation_nan_stays_nan(fn, measure, form, count):
    """validate=False: invalid rows give the reference's (non-finite) value, others are exact."""
    rng = np.random.default_rng(14)
    arrays = make_inputs(form, count, (1024, 300), np.float64, rng)
    arrays[0] = arrays[0] * 2.0  # unnormalised: fine without validation
    arrays[-1][10, 4] = np.nan
    if form == "probs":
        arrays[0][20, 5] = -0.25
    if form == "logits":  # the generic path handles rows without a finite maximum
        assert fast_or_none(measure, form, arrays, validate=False) is None
    with np.errstate(all="ignore"):  # the reference warns of the NaN it computes
        got = fn(*arrays, validate=False)
        want = reference(fn, *arrays, validate=False)
    assert not np.isfinite(got[10])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    previous = kldiv.set_default_validate(False)
    try:
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(fn(*arrays), got)
    finally:
        kldiv.set_default_validate(previous)


def fast_or_none(measure, form, arrays, **options):
    full = {"axis": -1, "base": None, "validate": None, "temperature": 1.0, "beta": 0.5}
    return _fast_numpy.compute(measure, form, arrays, **{**full, **options})


# --------------------------------------------------------------------------- what is declined


def test_declines_what_it_does_not_serve():
    rng = np.random.default_rng(15)
    p, q = make_inputs("log_probs", 2, (1024, 512), np.float64, rng)
    small = [a[:16] for a in (p, q)]
    declined = {
        "non-contiguous": ("kl", "log_probs", [p[:, ::2], q[:, ::2]], {}),
        "Fortran order": ("kl", "log_probs", [np.asfortranarray(p), np.asfortranarray(q)], {}),
        "broadcasting": ("kl", "log_probs", [p, q[:1]], {}),
        "small": ("kl", "log_probs", small, {}),
        "short rows": ("kl", "log_probs", [p.reshape(-1, 64), q.reshape(-1, 64)], {}),
        "other axis": ("kl", "log_probs", [p, q], {"axis": 0}),
        "mixed dtypes": ("kl", "log_probs", [p, q.astype(np.float32)], {}),
        "float16": ("kl", "log_probs", [p.astype(np.float16), q.astype(np.float16)], {}),
        "lists": ("kl", "log_probs", [p.tolist(), q], {}),
        "bad base": ("kl", "log_probs", [p, q], {"base": 1}),
        "bad validate": ("kl", "log_probs", [p, q], {"validate": "yes"}),
        "bad temperature": ("kl", "logits", [p, q], {"temperature": 0.0}),
        "subnormal temperature": ("kl", "logits", [p, q], {"temperature": 1e-320}),
        "bad beta": ("js", "log_probs", [p, q], {"beta": 1.5}),
        "beta 0": ("js", "log_probs", [p, q], {"beta": 0.0}),
        "no such measure": ("tv", "log_probs", [p, q], {}),
        "one input for two": ("kl", "log_probs", [p], {}),
        "generalized KL of log-probs": ("generalized_kl", "log_probs", [p, q], {}),
        "a subclass": ("kl", "log_probs", [np.ma.masked_array(p), q], {}),
    }
    for what, (measure, form, arrays, options) in declined.items():
        assert fast_or_none(measure, form, arrays, **options) is None, what
    # Both spellings of the last axis are served.
    assert fast_or_none("kl", "log_probs", [p, q], axis=1) is not None
    assert fast_or_none("kl", "log_probs", [p, q], axis=np.int64(-1)) is not None


def test_extra_memory_is_bounded_by_blocks():
    """Extra memory is O(block) per thread, not O(input): 64 MiB of input, < 12 MiB extra."""
    rng = np.random.default_rng(16)
    zp = rng.standard_normal((2048, 4096), dtype=np.float32)
    zq = rng.standard_normal((2048, 4096), dtype=np.float32)
    lp, lq = (z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True)) for z in (zp, zq))
    for fn, arrays in ((kldiv.kl_from_logits, (zp, zq)), (kldiv.kl_from_log_probs, (lp, lq))):
        fn(*arrays)  # warm up the pool and its scratch buffers
        tracemalloc.start()
        try:
            fn(*arrays)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 12 * 2**20, f"{fn.__name__}: peak {peak / 2**20:.1f} MiB"


def test_concurrent_calls_share_the_pool():
    """Calls from several threads at once (each thread helped by the pool) give their values."""
    rng = np.random.default_rng(17)
    pairs = [make_inputs("logits", 2, (512, 1024), np.float32, rng) for _ in range(4)]
    alone = [kldiv.kl_from_logits(*pair) for pair in pairs]
    with ThreadPoolExecutor(4) as callers:
        together = list(callers.map(lambda pair: kldiv.kl_from_logits(*pair), pairs))
    for got, want in zip(together, alone, strict=True):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- properties


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of 96 elements, so that small inputs exercise blocking, pieces and threads."""
    monkeypatch.setattr(_fast_numpy, "BLOCK_ELEMENTS", 96)
    monkeypatch.setattr(_fast_numpy, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(_fast_numpy, "MIN_COLUMNS", 1)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from(CASES),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 200)),
    dtype=st.sampled_from([np.float32, np.float64]),
    zeros=st.sampled_from(["none", "shared", "independent"]),
    temperature=st.sampled_from([1.0, 0.1, 7.0]),
    base=st.sampled_from([None, 2]),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_equals_reference(tiny_blocks, case, shape, dtype, zeros, temperature, base, seed):
    fn, measure, form, count = case
    rng = np.random.default_rng(seed)
    arrays = make_inputs(form, count, shape, dtype, rng, zeros)
    if measure == "generalized_kl":
        arrays[0] = arrays[0] * dtype(0.5)
    options = options_of(measure, form, temperature=temperature, base=base, beta=0.3)
    got = fast(measure, form, arrays, **options)
    want = reference(fn, *arrays, **options)
    tol = tolerance(dtype)
    atol = tol["atol"] / temperature if form == "logits" else tol["atol"]
    np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=atol)
