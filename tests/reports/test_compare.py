"""kldiv.reports.compare_logits against an independent NumPy/SciPy computation of each statistic."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax, rel_entr

import kldiv
from kldiv.reports import ComparisonReport, compare_logits
from kldiv.reports._stats import Moments, Summary, merge_all, merge_summaries

SCALARS = [
    "kl_mean",
    "kl_stderr",
    "kl_median",
    "kl_min",
    "kl_max",
    "same_top",
    "same_top_stderr",
    "delta_p_mean",
    "delta_p_stderr",
    "delta_p_median",
    "delta_p_min",
    "delta_p_max",
    "delta_p_rms",
    "delta_p_rms_stderr",
]
PERPLEXITY = [
    "nll_base",
    "nll_base_stderr",
    "nll_test",
    "nll_test_stderr",
    "ppl_base",
    "ppl_base_stderr",
    "ppl_test",
    "ppl_test_stderr",
    "log_ppl_ratio",
    "log_ppl_ratio_stderr",
    "ppl_ratio",
    "ppl_ratio_stderr",
    "ppl_difference",
    "ppl_difference_stderr",
    "nll_correlation",
]
KL_Q = (99.9, 99.0, 95.0, 90.0, 10.0, 5.0, 1.0, 0.1)
DP_Q = (99.9, 99.0, 95.0, 90.0, 75.0, 25.0, 10.0, 5.0, 1.0, 0.1)


def reference(base, test, tokens=None, include=None):
    """Every statistic computed directly, llama.cpp's formulas, SciPy's log_softmax and rel_entr."""
    base = np.asarray(base, dtype=np.float64).reshape(-1, np.shape(base)[-1])
    test = np.asarray(test, dtype=np.float64).reshape(base.shape)
    rows = np.arange(base.shape[0])
    log_p, log_q = log_softmax(base, axis=1), log_softmax(test, axis=1)
    kl = rel_entr(np.exp(log_p), np.exp(log_q)).sum(axis=1)
    ref = base.argmax(axis=1) if tokens is None else np.where(tokens < 0, 0, tokens)
    same = base.argmax(axis=1) == test.argmax(axis=1)
    p_ref, q_ref = np.exp(log_p[rows, ref]), np.exp(log_q[rows, ref])
    keep = np.ones(len(rows), bool) if include is None else include
    if tokens is not None:
        keep = keep & (tokens != -100)
    kl, same, dp = kl[keep], same[keep], (q_ref - p_ref)[keep]
    n = kl.size

    def mean_se(x):  # llama.cpp: sqrt((mean(x^2) - mean^2) / (n - 1))
        f = x.mean()
        return f, math.sqrt(max((x**2).mean() - f * f, 0.0) / (n - 1))

    out = {}
    out["kl_mean"], out["kl_stderr"] = mean_se(kl)
    out["kl_median"], out["kl_min"], out["kl_max"] = np.median(kl), kl.min(), kl.max()
    out["same_top"] = same.mean()
    out["same_top_stderr"] = math.sqrt(same.mean() * (1 - same.mean()) / (n - 1))
    out["delta_p_mean"], out["delta_p_stderr"] = mean_se(dp)
    out["delta_p_median"], out["delta_p_min"], out["delta_p_max"] = (
        np.median(dp),
        dp.min(),
        dp.max(),
    )
    mse, mse_se = mean_se(dp**2)
    out["delta_p_rms"] = math.sqrt(mse)
    out["delta_p_rms_stderr"] = 0.5 / math.sqrt(mse) * mse_se if mse > 0 else 0.0
    out["kl_percentiles"] = {f"{q:g}": np.percentile(kl, q) for q in KL_Q}
    out["delta_p_percentiles"] = {f"{q:g}": np.percentile(dp, q) for q in DP_Q}
    if tokens is not None:
        a, b = -np.log(q_ref[keep]), -np.log(p_ref[keep])  # a: test, b: base
        (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
        cov = ((a * b).mean() - a.mean() * b.mean()) / (n - 1)
        out.update(nll_test=ma, nll_test_stderr=sa, nll_base=mb, nll_base_stderr=sb)
        out.update(ppl_test=math.exp(ma), ppl_test_stderr=math.exp(ma) * sa)
        out.update(ppl_base=math.exp(mb), ppl_base_stderr=math.exp(mb) * sb)
        out["nll_correlation"] = cov / (sa * sb)
        out["log_ppl_ratio"] = ma - mb
        out["log_ppl_ratio_stderr"] = math.sqrt(sa * sa + sb * sb - 2 * cov)
        out["ppl_ratio"] = math.exp(ma - mb)
        out["ppl_ratio_stderr"] = math.exp(ma - mb) * out["log_ppl_ratio_stderr"]
        out["ppl_difference"] = math.exp(ma) - math.exp(mb)
        ppl_cov = math.exp(ma) * math.exp(mb) * cov
        out["ppl_difference_stderr"] = math.sqrt(
            out["ppl_test_stderr"] ** 2 + out["ppl_base_stderr"] ** 2 - 2 * ppl_cov
        )
    return out, kl, dp


def assert_matches(report: ComparisonReport, expected: dict, rtol=1e-9, atol=1e-12):
    names = SCALARS + (PERPLEXITY if "nll_base" in expected else [])
    for name in names:
        np.testing.assert_allclose(
            getattr(report, name), expected[name], rtol=rtol, atol=atol, err_msg=name
        )
    for name in ("kl_percentiles", "delta_p_percentiles"):
        got = getattr(report, name)
        assert got.keys() == expected[name].keys()
        for key in got:
            np.testing.assert_allclose(
                got[key], expected[name][key], rtol=rtol, atol=atol, err_msg=f"{name}[{key}]"
            )


def logits_pair(n=400, vocab=300, noise=0.2, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    base = 2.5 * rng.standard_normal((n, vocab))
    test = base + noise * rng.standard_normal((n, vocab))
    tokens = rng.integers(0, vocab, n)
    return base.astype(dtype), test.astype(dtype), tokens


@pytest.fixture(scope="module")
def pair():
    return logits_pair()


@pytest.fixture(scope="module")
def in_memory(pair):
    base, test, tokens = pair
    return compare_logits(base, test, tokens=tokens)


# --- values ---------------------------------------------------------------------------------------


def test_matches_independent_reference_with_tokens(pair, in_memory):
    """Every statistic, with next tokens, equals a direct SciPy/NumPy computation."""
    base, test, tokens = pair
    expected, kl, dp = reference(base, test, tokens)
    assert_matches(in_memory, expected)
    np.testing.assert_allclose(in_memory.token_kl, kl, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(in_memory.token_delta_p, dp, rtol=1e-10, atol=1e-15)
    assert in_memory.reference == "tokens"
    assert (in_memory.n_tokens, in_memory.n_masked, in_memory.vocab_size) == (400, 0, 300)
    assert in_memory.dtype == "float64"
    assert in_memory.unit == "nats"


def test_matches_independent_reference_without_tokens(pair):
    """Without tokens Δp refers to the base argmax; no perplexity statistics."""
    base, test, _ = pair
    report = compare_logits(base, test)
    expected, _, _ = reference(base, test)
    assert_matches(report, expected)
    assert report.reference == "base argmax"
    assert report.nll_base is None
    assert report.ppl_ratio is None
    assert report.delta_p_max <= 1e-12 or report.delta_p_min < 0  # argmax of base


def test_identical_models_are_exactly_equal():
    """KL(P‖P) is exactly 0 at every position; top-1 100%; Δp and RMS Δp exactly 0."""
    base, _, tokens = logits_pair(n=50, vocab=64)
    base[3, :10] = -np.inf
    for logits in (base, base.astype(np.float32)):
        report = compare_logits(logits, logits.copy(), tokens=tokens)
        assert np.all(report.token_kl == 0.0)
        assert report.kl_mean == 0.0
        assert report.kl_max == 0.0
        assert report.same_top == 1.0
        assert report.same_top_stderr == 0.0
        assert np.all(report.token_delta_p == 0.0)
        assert report.delta_p_rms == 0.0
        assert report.log_ppl_ratio == 0.0
        assert report.ppl_ratio == 1.0


def test_two_by_three_by_hand():
    """A 2×3 case worked by hand: KL = (ln2/4 + ln(3.5)/2) / 2, Δp, NLLs, top-1 = 0."""
    p = np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])
    q = np.array([[0.25, 0.5, 0.25], [0.1, 0.7, 0.2]])
    report = compare_logits(np.log(p), np.log(q))
    np.testing.assert_allclose(report.token_kl, [math.log(2) / 4, math.log(3.5) / 2], rtol=1e-14)
    assert report.kl_mean == pytest.approx((math.log(2) / 4 + math.log(3.5) / 2) / 2, rel=1e-14)
    assert report.same_top == 0.0
    np.testing.assert_allclose(report.token_delta_p, [-0.25, -0.5], rtol=1e-14)
    with_tokens = compare_logits(np.log(p), np.log(q), tokens=[1, 0])
    np.testing.assert_allclose(with_tokens.token_delta_p, [0.25, 0.0], atol=1e-15)
    assert with_tokens.nll_base == pytest.approx((math.log(4) + math.log(10)) / 2, rel=1e-14)
    assert with_tokens.nll_test == pytest.approx((math.log(2) + math.log(10)) / 2, rel=1e-14)
    assert with_tokens.log_ppl_ratio == pytest.approx(-math.log(2) / 2, rel=1e-13)
    assert with_tokens.ppl_base == pytest.approx(math.sqrt(40), rel=1e-13)


def test_bits_scale_kl_and_nll_only(pair, in_memory):
    """base=2: KL, NLL and log PPL ratio in bits; PPL, Δp and top-1 unchanged."""
    base, test, tokens = pair
    bits = compare_logits(base, test, tokens=tokens, base=2)
    assert bits.unit == "bits"
    for name in ("kl_mean", "kl_stderr", "kl_median", "kl_max", "nll_base", "log_ppl_ratio"):
        assert getattr(bits, name) == pytest.approx(getattr(in_memory, name) / math.log(2))
    for name in ("ppl_base", "ppl_ratio", "delta_p_mean", "delta_p_rms", "same_top"):
        assert getattr(bits, name) == pytest.approx(getattr(in_memory, name), rel=1e-12)
    assert bits.kl_percentiles["99"] == pytest.approx(in_memory.kl_percentiles["99"] / math.log(2))


def test_float32_and_float16_are_accurate(pair):
    """float32 logits are computed in float32: per-token KL within 1e-6 of the float64 result."""
    base, test, tokens = pair
    _, kl, _ = reference(base, test, tokens)
    report = compare_logits(base.astype(np.float32), test.astype(np.float32), tokens=tokens)
    assert report.dtype == "float32"
    np.testing.assert_allclose(report.token_kl, kl, atol=1e-6)
    half = compare_logits(base.astype(np.float16), test.astype(np.float16), tokens=tokens)
    _, kl16, _ = reference(base.astype(np.float16), test.astype(np.float16), tokens)
    assert half.dtype == "float16"
    np.testing.assert_allclose(half.token_kl, kl16, atol=1e-5)


def test_leading_dimensions_are_flattened(pair, in_memory):
    """(B, T, V) logits and (B, T) tokens give the report of the (B*T, V) rows."""
    base, test, tokens = pair
    report = compare_logits(
        base.reshape(8, 50, -1), test.reshape(8, 50, -1), tokens=tokens.reshape(8, 50)
    )
    np.testing.assert_array_equal(report.token_kl, in_memory.token_kl)
    assert report.ppl_ratio == in_memory.ppl_ratio


# --- chunking and merging -----------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 64, 399, 400, 1000])
def test_chunked_equals_in_memory(pair, in_memory, chunk_size):
    """Any chunking (one row, a ragged last chunk, one chunk) gives the same report to 1e-12."""
    base, test, tokens = pair
    report = compare_logits(base, test, tokens=tokens, chunk_size=chunk_size)
    np.testing.assert_array_equal(report.token_kl, in_memory.token_kl)
    for name in SCALARS + PERPLEXITY:
        assert getattr(report, name) == pytest.approx(
            getattr(in_memory, name), rel=1e-12, abs=1e-15
        ), name
    assert report.kl_percentiles == in_memory.kl_percentiles


def test_streaming_without_per_token_values(pair, in_memory):
    """per_token=False: the same moments, extremes and top-1, without percentiles or vectors."""
    base, test, tokens = pair
    report = compare_logits(base, test, tokens=tokens, per_token=False, chunk_size=37)
    assert report.token_kl is None
    assert report.kl_percentiles is None
    assert report.kl_median is None
    for name in (
        "kl_mean",
        "kl_stderr",
        "kl_max",
        "kl_min",
        "same_top",
        "delta_p_rms",
        "delta_p_min",
        "log_ppl_ratio_stderr",
        "nll_correlation",
    ):
        assert getattr(report, name) == pytest.approx(getattr(in_memory, name), rel=1e-12)
    assert "n/a" in str(report)


finite_values = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=0, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(values=finite_values, cuts=st.lists(st.integers(0, 60), max_size=6))
def test_merged_moments_equal_moments_of_concatenation(values, cuts):
    """Chan's merge of any split equals the moments of the whole (mean, variance, extremes)."""
    x = np.array(values, dtype=np.float64)
    edges = sorted({0, len(x), *[c for c in cuts if c <= len(x)]})
    parts = [Moments.of(x[a:b]) for a, b in itertools.pairwise(edges)]
    merged, whole = merge_all(parts), Moments.of(x)
    assert merged.count == whole.count == x.size
    scale = max(1.0, float(np.abs(x).max())) if x.size else 1.0
    assert merged.mean == pytest.approx(whole.mean, abs=1e-12 * scale)
    assert merged.m2 == pytest.approx(
        whole.m2, rel=1e-9, abs=1e-12 * scale * scale * max(1, x.size)
    )
    if x.size:
        assert (merged.minimum, merged.maximum) == (x.min(), x.max())
    if x.size >= 2:
        assert merged.variance == pytest.approx(np.var(x, ddof=1), rel=1e-9, abs=1e-9 * scale**2)


def test_moments_count_infinities_apart():
    """+inf values make the mean +inf without turning the finite moments into NaN."""
    m = Moments.of(np.array([1.0, np.inf, 3.0])).merge(Moments.of(np.array([5.0])))
    assert (m.count, m.finite, m.positive_infinite) == (4, 3, 1)
    assert m.mean == 3.0
    assert m.average == math.inf
    assert m.stderr == math.inf
    assert merge_summaries([]) == Summary()


# --- inputs ---------------------------------------------------------------------------------------


def test_memmap_input_streams(tmp_path, pair, in_memory):
    """np.load(mmap_mode="r") inputs give the in-memory report (pages handed back per chunk)."""
    base, test, tokens = pair
    np.save(tmp_path / "base.npy", base)
    np.save(tmp_path / "test.npy", test)
    mapped_base = np.load(tmp_path / "base.npy", mmap_mode="r")
    mapped_test = np.load(tmp_path / "test.npy", mmap_mode="r")
    assert isinstance(mapped_base, np.memmap)
    for chunk_size in (None, 16):
        report = compare_logits(mapped_base, mapped_test, tokens=tokens, chunk_size=chunk_size)
        np.testing.assert_array_equal(report.token_kl, in_memory.token_kl)
        assert report.kl_mean == pytest.approx(in_memory.kl_mean, rel=1e-12)
    assert np.array_equal(mapped_base[-1], base[-1])  # the map is still readable afterwards


def test_torch_input_equals_numpy(pair, in_memory):
    """Torch tensors (float64 and float32) are computed in torch and equal the NumPy report."""
    torch = pytest.importorskip("torch")
    base, test, tokens = pair
    report = compare_logits(
        torch.from_numpy(base),
        torch.from_numpy(test),
        tokens=torch.from_numpy(tokens),
        chunk_size=128,
    )
    np.testing.assert_allclose(report.token_kl, in_memory.token_kl, rtol=1e-10, atol=1e-14)
    for name in SCALARS + PERPLEXITY:
        assert getattr(report, name) == pytest.approx(
            getattr(in_memory, name), rel=1e-9, abs=1e-14
        ), name
    half = compare_logits(torch.from_numpy(base).bfloat16(), torch.from_numpy(test).bfloat16())
    assert half.dtype == "bfloat16"
    assert math.isfinite(half.kl_mean)


def test_jax_input_equals_numpy(pair, in_memory):
    """JAX arrays are computed in JAX and equal the NumPy report."""
    jnp = pytest.importorskip("jax.numpy")
    import jax

    jax.config.update("jax_enable_x64", True)
    base, test, tokens = pair
    report = compare_logits(jnp.asarray(base), jnp.asarray(test), tokens=jnp.asarray(tokens))
    assert report.dtype == "float64"
    np.testing.assert_allclose(report.token_kl, in_memory.token_kl, rtol=1e-10, atol=1e-14)
    assert report.ppl_ratio == pytest.approx(in_memory.ppl_ratio, rel=1e-12)


# --- masks and -inf -------------------------------------------------------------------------------


def test_ignored_tokens_and_mask_leave_positions_out(pair):
    """Tokens == -100 and mask == False drop positions: the report of the kept rows."""
    base, test, tokens = pair
    tokens = tokens.copy()
    tokens[::7] = -100
    mask = np.ones(len(tokens), bool)
    mask[1::5] = False
    report = compare_logits(base, test, tokens=tokens, mask=mask, chunk_size=50)
    keep = (tokens != -100) & mask
    expected, _kl, _ = reference(base, test, tokens, include=mask)
    assert_matches(report, expected)
    assert report.n_tokens == keep.sum()
    assert report.n_masked == (~keep).sum()
    direct = compare_logits(base[keep], test[keep], tokens=tokens[keep])
    np.testing.assert_array_equal(report.token_kl, direct.token_kl)
    custom = compare_logits(
        base, test, tokens=np.where(tokens == -100, 9999, tokens), ignore_index=9999, mask=mask
    )
    assert custom.kl_mean == report.kl_mean


def test_minus_inf_logits_are_masked_tokens():
    """Tokens masked (-inf) in both models carry no mass: the KL of the remaining vocabulary."""
    base, test, tokens = logits_pair(n=60, vocab=40, seed=3)
    tokens = np.minimum(tokens, 29)
    masked_b, masked_t = base.copy(), test.copy()
    masked_b[:, 30:] = -np.inf
    masked_t[:, 30:] = -np.inf
    report = compare_logits(masked_b, masked_t, tokens=tokens)
    expected, _kl, _ = reference(base[:, :30], test[:, :30], tokens)
    assert_matches(report, expected)
    assert report.kl_infinite == 0


def test_test_model_masking_a_base_token_gives_infinite_kl():
    """The test model gives no mass where the base does: that position's KL is +inf, counted."""
    base, test, _ = logits_pair(n=20, vocab=10, seed=4)
    test = test.copy()
    test[5, 2] = -np.inf
    base_masked = base.copy()
    base_masked[7, 3] = -np.inf  # the reverse is finite
    report = compare_logits(base_masked, test)
    assert report.token_kl[5] == np.inf
    assert np.isfinite(report.token_kl[7])
    assert report.kl_infinite == 1
    assert report.kl_mean == math.inf
    assert report.kl_max == math.inf
    assert "Infinite KLD" in str(report)


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda b, t, k: (b, t[:-1], k), r"`base_logits` and `test_logits` must have one shape"),
        (lambda b, t, k: (b, t[:, :-1], k), r"different vocabulary sizes"),
        (
            lambda b, t, k: (b, t, np.where(k == k[0], 300, k)),
            r"`tokens` must hold token ids in \[0, 300\).* got 300 at position 0",
        ),
        (lambda b, t, k: (b, t, k[:-1]), r"`tokens` must have the logits' leading shape"),
        (lambda b, t, k: (b, t, k.astype(float)), r"`tokens` must hold integers"),
        (lambda b, t, k: (b.astype(int), t, k), r"`base_logits` must hold floating-point logits"),
        (lambda b, t, k: (b[:0], t[:0], k[:0]), r"at least one position"),
    ],
)
def test_bad_inputs_name_the_argument(pair, change, pattern):
    """Shape, vocabulary, token and dtype errors are KLDivErrors naming the argument."""
    base, test, tokens = change(*pair)
    with pytest.raises(kldiv.KLDivError, match=pattern):
        compare_logits(base, test, tokens=tokens)


@pytest.mark.parametrize(
    ("value", "what"), [(np.nan, "a NaN logit"), (np.inf, r"a \+inf logit"), (None, "only -inf")]
)
@pytest.mark.parametrize("which", ["base_logits", "test_logits"])
def test_bad_logits_raise_with_the_position(pair, value, what, which):
    """NaN / +inf / all -inf rows raise, naming the argument and the row, whatever the chunk."""
    base, test, _ = pair
    base, test = base.copy(), test.copy()
    target = base if which == "base_logits" else test
    if value is None:
        target[123] = -np.inf
    else:
        target[123, 17] = value
    for chunk_size in (None, 50):
        with pytest.raises(kldiv.KLDivError, match=rf"`{which}`.*{what}.* 123\b"):
            compare_logits(base, test, chunk_size=chunk_size)


def test_bad_options(pair):
    """chunk_size, base, mask, per_token and an everything-masked input are checked."""
    base, test, _tokens = pair
    with pytest.raises(kldiv.KLDivError, match="`chunk_size` must be a positive integer"):
        compare_logits(base, test, chunk_size=0)
    with pytest.raises(kldiv.KLDivError, match="`base`"):
        compare_logits(base, test, base=1)
    with pytest.raises(kldiv.KLDivError, match="`mask` must hold booleans"):
        compare_logits(base, test, mask=np.ones(len(base)))
    with pytest.raises(kldiv.KLDivError, match="`per_token`"):
        compare_logits(base, test, per_token="yes")
    with pytest.raises(kldiv.KLDivError, match="no position left to compare"):
        compare_logits(base, test, mask=np.zeros(len(base), bool))
    torch = pytest.importorskip("torch")
    with pytest.raises(kldiv.KLDivError, match="must come from one array library"):
        compare_logits(base, torch.from_numpy(test))


# --- output ---------------------------------------------------------------------------------------


def test_text_dict_and_html(tmp_path, in_memory):
    """str() has llama.cpp's rows, to_dict() is plain data, to_html() embeds two PNGs."""
    pytest.importorskip("matplotlib")
    text = str(in_memory)
    for row in ("Mean    KLD", "99.9%   KLD", "Same top p", "RMS Δp", "Mean PPL(test)/PPL(base)"):
        assert row in text
    assert f"{in_memory.kl_mean:.6f}" in text
    data = in_memory.to_dict()
    assert data["kl_mean"] == in_memory.kl_mean
    assert "token_kl" not in data
    assert len(in_memory.to_dict(per_token=True)["token_kl"]) == 400
    page = in_memory.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count('<img alt="') == 2
    assert "data:image/png;base64," in page
    assert "Same top p" in page


def test_reports_is_a_public_subpackage():
    """kldiv.reports is importable from kldiv and documents its API."""
    from kldiv import reports

    assert reports.compare_logits is compare_logits
    for obj in (compare_logits, ComparisonReport):
        assert "Examples:" in obj.__doc__


def test_torch_bad_logits_raise(pair):
    """The generic (torch) path validates too, naming the argument and the row."""
    torch = pytest.importorskip("torch")
    base, test, _ = pair
    test = test.copy()
    test[321, 0] = np.nan
    with pytest.raises(kldiv.KLDivError, match=r"`test_logits`.*NaN.* 321\b"):
        compare_logits(torch.from_numpy(base), torch.from_numpy(test), chunk_size=100)


# --- Dask (the local threaded scheduler; the real cluster is in tests/dask) -----------------------


@pytest.mark.parametrize(
    "chunks", [(400, 300), (64, 300), (37, 300), (100, 64), ((150, 250), (100, 200))]
)
def test_dask_equals_numpy(pair, in_memory, chunks):
    """One graph over row blocks (the vocabulary axis rechunked when split) equals NumPy."""
    da = pytest.importorskip("dask.array")
    base, test, tokens = pair
    report = compare_logits(
        da.from_array(base, chunks=chunks), da.from_array(test, chunks=chunks), tokens=tokens
    )
    np.testing.assert_array_equal(report.token_kl, in_memory.token_kl)
    for name in SCALARS + PERPLEXITY:
        assert getattr(report, name) == pytest.approx(
            getattr(in_memory, name), rel=1e-12, abs=1e-15
        ), name


def test_dask_over_memmaps_and_npy_stacks(tmp_path, pair, in_memory):
    """da.from_array(memmap) and da.from_npy_stack stores, with lazy tokens and a mask."""
    da = pytest.importorskip("dask.array")
    base, test, tokens = pair
    np.save(tmp_path / "base.npy", base)
    mapped = np.load(tmp_path / "base.npy", mmap_mode="r")
    da.to_npy_stack(tmp_path / "test", da.from_array(test, chunks=(90, 300)))
    lazy_base = da.from_array(mapped, chunks=(128, 300))
    lazy_test = da.from_npy_stack(tmp_path / "test", mmap_mode="r")
    lazy_tokens = da.from_array(tokens, chunks=55)
    report = compare_logits(lazy_base, lazy_test, tokens=lazy_tokens, chunk_size=80)
    np.testing.assert_array_equal(report.token_kl, in_memory.token_kl)
    assert report.log_ppl_ratio == pytest.approx(in_memory.log_ppl_ratio, rel=1e-12)
    streamed = compare_logits(lazy_base, lazy_test, tokens=lazy_tokens, per_token=False)
    assert streamed.kl_stderr == pytest.approx(in_memory.kl_stderr, rel=1e-12)
    assert streamed.kl_percentiles is None


def test_dask_validates_in_the_graph(pair):
    """NaN logits and out-of-range lazy tokens raise KLDivError from the task, with the row."""
    da = pytest.importorskip("dask.array")
    base, test, tokens = pair
    base = base.copy()
    base[250, 3] = np.nan
    with pytest.raises(kldiv.KLDivError, match=r"`base_logits`.*NaN.* 250\b"):
        compare_logits(da.from_array(base, chunks=(64, 300)), da.from_array(test, chunks=64))
    bad_tokens = tokens.copy()
    bad_tokens[333] = -5
    with pytest.raises(kldiv.KLDivError, match=r"`tokens`.*got -5 at position 333"):
        compare_logits(
            da.from_array(test, chunks=(64, 300)),
            da.from_array(test, chunks=(64, 300)),
            tokens=da.from_array(bad_tokens, chunks=100),
        )


# --- regressions found by the user-level review ---------------------------------------------------


def test_logits_spanning_more_than_the_float_range_raise_no_warning():
    """Logits of ±1.7e308 (their difference overflows) give exact KL with no RuntimeWarning."""
    base = np.array([[1.7e308, -1.7e308, 0.0], [1.7e308, -1.7e308, 0.0]])
    test = np.array([[1.7e308, -1.7e308, 1.0], [0.0, -1.7e308, 1.7e308]])
    report = compare_logits(base, test)  # RuntimeWarnings from kldiv are errors under pytest
    # row 0: both put all mass on token 0 (KL 0); row 1: log q(0) = -1.7e308 (KL 1.7e308)
    np.testing.assert_array_equal(report.token_kl, [0.0, 1.7e308])
    assert report.same_top == 0.5
    assert report.kl_mean == 0.85e308
    assert report.kl_stderr == math.inf  # the squared deviations overflow: an honest +inf


def test_numpy_integer_chunk_size_is_accepted(pair, in_memory):
    """chunk_size=np.int64(64) is a positive integer, as 64 is."""
    base, test, tokens = pair
    report = compare_logits(base, test, tokens=tokens, chunk_size=np.int64(64))
    np.testing.assert_array_equal(report.token_kl, in_memory.token_kl)


def test_ragged_list_names_the_argument():
    """A ragged nested list is a KLDivError naming the argument, not NumPy's bare ValueError."""
    with pytest.raises(kldiv.KLDivError, match=r"`test_logits` must be an array or a rectangular"):
        compare_logits([[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [1.0]])
    with pytest.raises(kldiv.KLDivError, match=r"`tokens` must be an array or a rectangular"):
        compare_logits(np.zeros((2, 2)), np.zeros((2, 2)), tokens=[[0], [0, 1]])


def test_dask_tokens_of_unknown_length_name_the_argument():
    """Lazy tokens after boolean indexing (length NaN) are refused clearly, not by int(NaN)."""
    da = pytest.importorskip("dask.array")
    tokens = da.from_array(np.array([0, 1, 2, 0]), chunks=2)
    with pytest.raises(kldiv.KLDivError, match=r"`tokens` must have a known shape.*compute_chunk"):
        compare_logits(np.zeros((4, 3)), np.zeros((4, 3)), tokens=tokens[tokens >= 0])


def test_different_dtypes_are_both_named():
    """float32 base against float16 test: the report names both dtypes, not the base's alone."""
    report = compare_logits(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float16))
    assert report.dtype == "float32 / float16"
    assert "float32 / float16" in report.header()
    assert compare_logits(np.zeros((2, 3)), np.zeros((2, 3))).dtype == "float64"


@pytest.mark.parametrize("library", ["numpy", "torch", "dask"])
def test_ties_in_argmax_take_the_first_index_as_llama_cpp(library):
    """Tied top logits: argmax is the first index (llama.cpp's strict '>'), on every library."""
    # [1, 1, 0] vs [1, 1.5, 0] disagree (0 vs 1); [2, 2, 0] vs [2, 2, 1] agree (0 and 0)
    base = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]])
    test = np.array([[1.0, 1.5, 0.0], [2.0, 2.0, 1.0]])
    if library == "torch":
        torch = pytest.importorskip("torch")
        report = compare_logits(torch.from_numpy(base), torch.from_numpy(test))
    elif library == "dask":
        da = pytest.importorskip("dask.array")
        report = compare_logits(da.from_array(base, chunks=1), da.from_array(test, chunks=1))
    else:
        report = compare_logits(base, test)
    assert report.same_top == 0.5
    p0 = np.exp(log_softmax(base, axis=-1))[:, 0]
    q0 = np.exp(log_softmax(test, axis=-1))[:, 0]
    np.testing.assert_allclose(report.token_delta_p, q0 - p0, rtol=1e-12)


def test_perplexity_beyond_the_float_range_is_inf_not_an_overflow_error():
    """A broken test model (logits × 500: mean NLL ≈ 900 nats) reports PPL +inf, not a crash."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 20))
    test = 500.0 * base
    tokens = rng.integers(0, 20, 50)
    report = compare_logits(base, test, tokens=tokens)
    log_q = log_softmax(test, axis=-1)[np.arange(50), tokens]
    assert report.nll_test == pytest.approx(-log_q.mean(), rel=1e-12)
    assert report.nll_test > 709.8  # exp overflows float64
    assert report.ppl_test == math.inf
    assert report.ppl_ratio == math.inf
    assert report.ppl_base == pytest.approx(
        math.exp(-log_softmax(base, axis=-1)[np.arange(50), tokens].mean()), rel=1e-12
    )


def test_float32_logits_near_the_float_max_raise_no_warning():
    """float32 logits of ±3e38 (shifted values overflow float32): no RuntimeWarning, Δp exact."""
    base = np.array([[3e38, -3e38, 0.0], [3e38, -3e38, 0.0]], np.float32)
    test = np.array([[3e38, -3e38, 1.0], [0.0, 3e38, -3e38]], np.float32)
    report = compare_logits(base, test, tokens=[1, 0])
    np.testing.assert_array_equal(report.token_delta_p, [0.0, -1.0])
    assert report.token_kl[0] == 0.0


def test_every_backend_of_the_matrix_equals_numpy(xp):
    """Regression: every xp backend gives NumPy's report (array_api_strict was refused).

    With tokens, a mask, a -inf logit and ragged chunks.
    """
    rng = np.random.default_rng(11)
    base = rng.normal(size=(50, 7)) * 2
    test = base + 0.2 * rng.normal(size=base.shape)
    base[3, 2] = test[3, 2] = -np.inf
    tokens = rng.integers(0, 7, 50)
    mask = rng.random(50) < 0.9
    expected = compare_logits(base, test, tokens=tokens, mask=mask)
    got = compare_logits(
        xp.asarray(base),
        xp.asarray(test),
        tokens=xp.asarray(tokens),
        mask=xp.asarray(mask),
        chunk_size=7,
    )
    for field in ("kl_mean", "kl_stderr", "kl_max", "same_top", "delta_p_rms", "log_ppl_ratio"):
        assert math.isclose(getattr(got, field), getattr(expected, field), rel_tol=1e-10), field
    for level, value in expected.kl_percentiles.items():
        assert math.isclose(got.kl_percentiles[level], value, rel_tol=1e-10, abs_tol=1e-15)
    assert got.n_tokens == expected.n_tokens == int(mask.sum())


def test_integer_logits_of_any_backend_are_refused(xp):
    """Integer logits are a KLDivError naming the argument on every backend."""
    ints = xp.asarray(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(kldiv.KLDivError, match="`base_logits` must hold floating-point logits"):
        compare_logits(ints, ints)
