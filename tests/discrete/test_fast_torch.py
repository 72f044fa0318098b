"""The torch-native kernels equal the array-API reference, in value and gradient.

Every public discrete measure, in every input form, is computed twice on the
same tensors: through :mod:`kldiv.discrete._fast_torch` (the default for torch
tensors) and through the generic path (``_native.reference_only()``). Inputs
cover the zero-mass conventions (zeros, ``-inf``, support mismatch), half
precision, several batch dimensions, several blocks, and both block variants
(fast-then-exact on the CPU, exact only as on other devices).
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import kldiv  # noqa: E402
from kldiv.discrete import _fast_torch, _native  # noqa: E402

FUNCTIONS = {
    ("kl", "probs"): kldiv.kl_from_probs,
    ("kl", "log_probs"): kldiv.kl_from_log_probs,
    ("kl", "logits"): kldiv.kl_from_logits,
    ("js", "probs"): kldiv.js_from_probs,
    ("js", "log_probs"): kldiv.js_from_log_probs,
    ("js", "logits"): kldiv.js_from_logits,
    ("entropy", "probs"): kldiv.entropy,
    ("entropy", "log_probs"): kldiv.entropy_from_log_probs,
    ("entropy", "logits"): kldiv.entropy_from_logits,
    ("cross_entropy", "probs"): kldiv.cross_entropy,
    ("cross_entropy", "log_probs"): kldiv.cross_entropy_from_log_probs,
    ("cross_entropy", "logits"): kldiv.cross_entropy_from_logits,
    ("generalized_kl", "probs"): kldiv.generalized_kl,
}
CASES = sorted(FUNCTIONS)


def _arity(measure: str) -> int:
    return 1 if measure == "entropy" else 2


def _inputs(form: str, measure: str, shape, *, dtype, seed: int, holes: bool) -> list:
    """Random valid inputs of ``form``; with ``holes``, zero-mass entries in some rows."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(_arity(measure)):
        logits = torch.randn(shape, generator=gen, dtype=torch.float64) * 3
        if holes:
            mask = torch.rand(shape, generator=gen) < 0.3
            mask[..., i] = False  # every row keeps some mass
            if i == 1:
                mask[..., 0] = True  # q without mass where p has some: infinite KL rows
            logits = logits.masked_fill(mask, -math.inf)
        if form == "logits":
            x = logits
        elif form == "log_probs":
            x = torch.log_softmax(logits, -1)
        elif measure == "generalized_kl":
            x = torch.exp(logits) * 2.5
        else:
            x = torch.softmax(logits, -1)
        out.append(x.to(dtype))
    return out


def _options(measure: str, form: str) -> dict:
    options = {}
    if measure == "js":
        options["beta"] = 0.3
    if form == "logits":
        options["temperature"] = 1.7
    return options


def _values_and_grads(f, inputs, options, *, reference: bool):
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    if reference:
        with _native.reference_only():
            values = f(*leaves, **options)
    else:
        values = f(*leaves, **options)
    weights = torch.linspace(0.5, 1.5, values.numel(), dtype=values.dtype).reshape(values.shape)
    finite = torch.isfinite(values)
    (torch.where(finite, values, 0.0) * weights).sum().backward()
    return values.detach(), [leaf.grad for leaf in leaves]


def _assert_close(actual, expected, dtype):
    rtol, atol = (1e-10, 1e-12) if dtype == torch.float64 else (2e-5, 2e-6)
    if dtype in (torch.float16, torch.bfloat16):
        rtol, atol = 2e-2, 2e-3
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


@pytest.fixture(params=["small_autograd", "fast_then_exact", "exact_only"])
def block_variant(request, monkeypatch):
    """Runs a test with each route through the kernels.

    ``small_autograd``: autograd over the fast formulas (small log-space inputs);
    ``fast_then_exact``: the ``autograd.Function`` with the CPU's fast blocks
    first; ``exact_only``: the Function with exact blocks only, as on a GPU.
    """
    if request.param != "small_autograd":
        monkeypatch.setattr(_fast_torch, "AUTOGRAD_ELEMENTS", 0)
    if request.param == "exact_only":
        original = _fast_torch._spec

        def exact_spec(*args, **kwargs):
            spec = original(*args, **kwargs)
            return None if spec is None else _fast_torch.Spec(**{**vars(spec), "exact_only": True})

        monkeypatch.setattr(_fast_torch, "_spec", exact_spec)
    return request.param


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
@pytest.mark.parametrize("holes", [False, True], ids=["dense", "holes"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_values_and_gradients_equal_reference(case, holes, dtype, block_variant):
    """Values and gradients of the native path equal the generic path's."""
    measure, form = case
    f = FUNCTIONS[case]
    inputs = _inputs(form, measure, (3, 5, 11), dtype=dtype, seed=hash(case) % 1000, holes=holes)
    options = _options(measure, form)
    fast_values, fast_grads = _values_and_grads(f, inputs, options, reference=False)
    ref_values, ref_grads = _values_and_grads(f, inputs, options, reference=True)
    assert fast_values.shape == ref_values.shape == (3, 5)
    assert fast_values.dtype == ref_values.dtype
    _assert_close(fast_values, ref_values, dtype)
    for fast, ref in zip(fast_grads, ref_grads, strict=True):
        assert torch.isfinite(fast).all()
        _assert_close(fast, ref, dtype)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_many_blocks_equal_one_block(case, monkeypatch):
    """Rows split over many blocks give the values and gradients of a single block."""
    monkeypatch.setattr(_fast_torch, "AUTOGRAD_ELEMENTS", 0)
    measure, form = case
    f = FUNCTIONS[case]
    inputs = _inputs(form, measure, (37, 64), dtype=torch.float64, seed=7, holes=True)
    options = _options(measure, form)
    one_values, one_grads = _values_and_grads(f, inputs, options, reference=False)
    monkeypatch.setattr(_fast_torch, "CHUNK_ELEMENTS", 5 * 64)
    many_values, many_grads = _values_and_grads(f, inputs, options, reference=False)
    torch.testing.assert_close(many_values, one_values, rtol=0, atol=0, equal_nan=True)
    for many, one in zip(many_grads, one_grads, strict=True):
        torch.testing.assert_close(many, one, rtol=0, atol=0)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32(case, dtype):
    """Half-precision inputs: float32 values equal to the reference, gradients in their dtype."""
    measure, form = case
    f = FUNCTIONS[case]
    inputs = _inputs(form, measure, (4, 9), dtype=dtype, seed=3, holes=False)
    options = _options(measure, form)
    fast_values, fast_grads = _values_and_grads(f, inputs, options, reference=False)
    ref_values, ref_grads = _values_and_grads(f, inputs, options, reference=True)
    assert fast_values.dtype == torch.float32
    _assert_close(fast_values, ref_values, torch.float32)
    for fast, ref in zip(fast_grads, ref_grads, strict=True):
        assert fast.dtype == dtype
        _assert_close(fast.float(), ref.float(), dtype)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
@pytest.mark.parametrize("route", ["small_autograd", "function"])
def test_gradcheck_and_gradgradcheck(case, route, monkeypatch):
    """Analytic first derivatives and the reference's second derivatives, in float64."""
    if route == "function":
        monkeypatch.setattr(_fast_torch, "AUTOGRAD_ELEMENTS", 0)
    measure, form = case
    f = FUNCTIONS[case]
    inputs = _inputs(form, measure, (2, 4), dtype=torch.float64, seed=11, holes=False)
    if form == "probs":  # stay inside the simplex's interior under perturbation
        inputs = [x * 0.9 + 0.1 / x.shape[-1] for x in inputs]
    options = {**_options(measure, form), "validate": False}
    leaves = tuple(x.detach().clone().requires_grad_() for x in inputs)

    def g(*xs):
        return f(*xs, **options)

    assert torch.autograd.gradcheck(g, leaves)
    assert torch.autograd.gradgradcheck(g, leaves)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_bad_input_raises_the_reference_error(case):
    """A NaN in the input: the same KLDivError as the generic path, word for word."""
    measure, form = case
    f = FUNCTIONS[case]
    inputs = _inputs(form, measure, (3, 6), dtype=torch.float32, seed=5, holes=False)
    inputs[-1][1, 2] = math.nan
    with pytest.raises(kldiv.KLDivError) as fast:
        f(*inputs)
    with _native.reference_only(), pytest.raises(kldiv.KLDivError) as reference:
        f(*inputs)
    assert str(fast.value) == str(reference.value)


@pytest.mark.parametrize(
    ("f", "bad", "name"),
    [
        (kldiv.kl_from_probs, [[0.5, 0.6], [0.5, 0.5]], "p"),
        (kldiv.kl_from_probs, [[1.5, -0.5], [0.5, 0.5]], "p"),
        (kldiv.cross_entropy, [[1.5, -0.5], [0.5, 0.5]], "p"),
        (kldiv.kl_from_log_probs, [[0.0, 0.0], [-0.7, -0.7]], "log_p"),
        (kldiv.kl_from_log_probs, [[math.inf, 0.0], [-0.7, -0.7]], "log_p"),
        (kldiv.kl_from_logits, [[math.inf, 0.0], [1.0, 2.0]], "p_logits"),
        (kldiv.kl_from_logits, [[-math.inf, -math.inf], [1.0, 2.0]], "p_logits"),
        (kldiv.generalized_kl, [[1.0, -2.0], [1.0, 2.0]], "p"),
    ],
)
def test_each_check_names_the_argument(f, bad, name):
    """Rows off the simplex, negative entries, +inf and empty rows are refused by name."""
    good = {
        "p": [[0.5, 0.5], [0.25, 0.75]],
        "log_p": [[-0.6931, -0.6931], [-1.3863, -0.2877]],
        "p_logits": [[0.0, 1.0], [2.0, 3.0]],
    }[name]
    for order in ((bad, good), (good, bad)):
        tensors = [torch.tensor(x, dtype=torch.float64) for x in order]
        with pytest.raises(kldiv.KLDivError) as fast:
            f(*tensors)
        with _native.reference_only(), pytest.raises(kldiv.KLDivError) as reference:
            f(*tensors)
        assert str(fast.value) == str(reference.value)


def test_q_negative_where_p_is_zero_is_refused():
    """A negative q entry hidden behind p = 0 is still an error (the fast block would hide it)."""
    p = torch.tensor([1.0, 0.0], dtype=torch.float64)
    q = torch.tensor([1.5, -0.5], dtype=torch.float64)
    with pytest.raises(kldiv.KLDivError, match="`q`"):
        kldiv.kl_from_probs(p, q)


def test_validate_false_skips_the_checks_and_propagates_nan():
    """Unvalidated bad input gives NaN, never a plausible number."""
    p = torch.tensor([[0.5, math.nan], [0.5, 0.5]])
    q = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    values = kldiv.kl_from_probs(p, q, validate=False)
    assert math.isnan(values[0])
    assert values[1] == 0


def test_units_and_worked_example():
    """The first example anyone tries, in nats and bits, through the native path."""
    p, q = torch.tensor([0.4, 0.6]), torch.tensor([0.5, 0.5])
    assert float(kldiv.kl_from_probs(p, q)) == pytest.approx(0.0201355, abs=1e-7)
    assert float(kldiv.kl_from_probs(p, q, base=2)) == pytest.approx(0.0290494, abs=1e-7)
    assert float(kldiv.kl_from_logits(p.log(), q.log(), base=2)) == pytest.approx(
        0.0290494, abs=1e-7
    )


def test_paths_not_taken_fall_back_to_the_reference():
    """Broadcasting, another axis, mixed dtypes: the generic path answers (same values)."""
    p = torch.softmax(torch.randn(4, 6, dtype=torch.float64), -1)
    q = torch.softmax(torch.randn(1, 6, dtype=torch.float64), -1)
    assert _fast_torch.compute("kl", "probs", (p, q), axis=-1, base=None, validate=None) is None
    assert _fast_torch.compute("kl", "probs", (p, p), axis=0, base=None, validate=None) is None
    assert (
        _fast_torch.compute("kl", "probs", (p, p.float()), axis=-1, base=None, validate=None)
        is None
    )
    with _native.reference_only():
        expected = kldiv.kl_from_probs(p, q)
    torch.testing.assert_close(kldiv.kl_from_probs(p, q), expected)


def test_inside_torch_func_takes_the_reference_path():
    """torch.func transforms cannot see a custom Function's saved gradients: generic path."""
    logits = torch.randn(3, 5, dtype=torch.float64)
    teacher = torch.randn(3, 5, dtype=torch.float64)
    grad = torch.func.grad(lambda z: kldiv.kl_from_logits(teacher, z).sum())(logits)
    expected = torch.softmax(logits, -1) - torch.softmax(teacher, -1)
    torch.testing.assert_close(grad, expected)


def test_second_backward_with_retain_graph(monkeypatch):
    """The stored gradient is scaled out of place: backward can run twice."""
    monkeypatch.setattr(_fast_torch, "AUTOGRAD_ELEMENTS", 0)
    z = torch.randn(4, 7, requires_grad=True)
    t = torch.randn(4, 7)
    loss = kldiv.kl_from_logits(t, z).mean()
    (first,) = torch.autograd.grad(loss, z, retain_graph=True)
    (second,) = torch.autograd.grad(loss, z)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_large_forward_needs_block_sized_memory_only():
    """No input-sized temporaries: the values are computed block by block."""
    p = torch.softmax(torch.randn(2048, 1024), -1)
    q = torch.softmax(torch.randn(2048, 1024), -1)
    seen: list[int] = []
    original = _fast_torch._probs_block

    def spy(spec, chunk, needs, out):
        seen.append(chunk[0].numel())
        return original(spec, chunk, needs, out)

    _fast_torch._BLOCKS[("kl", "probs")] = spy
    try:
        values = kldiv.kl_from_probs(p, q)
    finally:
        _fast_torch._BLOCKS[("kl", "probs")] = original
    assert max(seen) <= max(_fast_torch.CHUNK_ELEMENTS, 1024)
    assert len(seen) == 2048 * 1024 // max(seen)
    with _native.reference_only():
        torch.testing.assert_close(values, kldiv.kl_from_probs(p, q))


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_the_native_path_is_taken(case):
    """Valid tensors of one shape are computed by the native kernels (not handed back)."""
    measure, form = case
    inputs = _inputs(form, measure, (3, 8), dtype=torch.float32, seed=1, holes=False)
    options = _options(measure, form)
    result = _fast_torch.compute(
        measure, form, inputs, axis=-1, base=None, validate=True, **options
    )
    assert result is not None
    with _native.reference_only():
        torch.testing.assert_close(result, FUNCTIONS[case](*inputs, **options))


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_results_are_not_views_of_the_reused_temporaries(case):
    """A second call (same shapes, other values) leaves the first call's results intact."""
    measure, form = case
    options = _options(measure, form)
    first = _inputs(form, measure, (40, 64), dtype=torch.float32, seed=3, holes=False)
    second = _inputs(form, measure, (40, 64), dtype=torch.float32, seed=4, holes=False)
    values, grads = _values_and_grads(FUNCTIONS[case], first, options, reference=False)
    kept = values.clone(), [None if g is None else g.clone() for g in grads]
    _values_and_grads(FUNCTIONS[case], second, options, reference=False)
    FUNCTIONS[case](*second, **options)  # the no-gradient route as well
    torch.testing.assert_close(values, kept[0], rtol=0, atol=0)
    for g, g_kept in zip(grads, kept[1], strict=True):
        if g is not None:
            torch.testing.assert_close(g, g_kept, rtol=0, atol=0)


def test_threads_compute_independently():
    """Each thread has its own temporaries: concurrent calls equal the reference."""
    from concurrent.futures import ThreadPoolExecutor

    pairs = [
        _inputs("logits", "kl", (64, 512), dtype=torch.float32, seed=seed, holes=False)
        for seed in range(8)
    ]
    with _native.reference_only():
        expected = [kldiv.kl_from_logits(zp, zq, temperature=1.7) for zp, zq in pairs]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda pair: kldiv.kl_from_logits(*pair, temperature=1.7), pairs * 4))
    for i, values in enumerate(found):
        torch.testing.assert_close(values, expected[i % len(pairs)])


def _kl_float64(zp, zq, temperature):
    """KL of the tempered softmaxes, in float64 from the same float32 logits (not kldiv)."""
    a = torch.log_softmax(zp.double() / temperature, -1)
    b = torch.log_softmax(zq.double() / temperature, -1)
    return (a.exp() * (a - b)).sum(-1)


@pytest.mark.parametrize(
    ("offset_p", "offset_q", "temperature"),
    [(0.0, 0.0, 1.0), (30.0, -20.0, 1.0), (1e4, -3e3, 1.0), (1e4, -3e3, 2.0), (0.0, 0.0, 0.05)],
)
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_logits_kl_keeps_its_digits(offset_p, offset_q, temperature, direction):
    """Large logit offsets and low temperatures: float32 values within 1e-6 of float64.

    The kernel subtracts each row's maximum before scaling; a shift after scaling
    would lose digits to cancellation (1e-5 here at T = 0.05).
    """
    gen = torch.Generator().manual_seed(5)
    base = torch.randn(64, 1000, generator=gen) * 2
    zp = base + offset_p
    zq = base + offset_q + torch.randn(64, 1000, generator=gen) * 0.05
    if direction == "reverse":
        zp, zq = zq, zp
    student = zq.clone().requires_grad_()
    values = kldiv.kl_from_logits(zp, student, temperature=temperature)
    exact = _kl_float64(zp, zq, temperature)
    torch.testing.assert_close(values.double(), exact, rtol=1e-5, atol=1e-6)
    values.sum().backward()
    exact_student = zq.double().requires_grad_()
    _kl_float64(zp, exact_student, temperature).sum().backward()
    # ∂/∂z = (q - p) / T: float32 softmax rounding, amplified by 1/T
    torch.testing.assert_close(
        student.grad.double(), exact_student.grad, rtol=1e-4, atol=5e-7 / temperature
    )


def test_temporaries_are_bounded():
    """Rows wider than the reusable temporaries allocate their own; the pool stays bounded."""
    wide = _fast_torch.SCRATCH_ELEMENTS + 1
    assert _fast_torch._scratch(1, wide, torch.float32, torch.device("cpu")) == ()
    found = _fast_torch._scratch(4, 100, torch.float32, torch.device("cpu"))
    assert len(found) == _fast_torch._SCRATCH_COUNT
    assert all(t.shape == (4, 100) for t in found)
    pool = _fast_torch._scratch_pool.buffers[torch.float32]
    assert all(b.numel() <= _fast_torch.SCRATCH_ELEMENTS for b in pool)
    zp, zq = (torch.randn(2, wide // 2 + 1) for _ in range(2))
    with _native.reference_only():
        expected = kldiv.kl_from_logits(zp, zq)
    torch.testing.assert_close(kldiv.kl_from_logits(zp, zq), expected)
