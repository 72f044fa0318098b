"""The JAX-native path (one jitted XLA call on eager arrays) equals the generic array-API path."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import kldiv
from tests._helpers import random_probs

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from kldiv.discrete import _fast_jax  # noqa: E402  (imports jax)

jax.config.update("jax_enable_x64", True)

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
CASES = list(FUNCTIONS)
RTOL = {jnp.float64: 1e-13, jnp.float32: 2e-6, jnp.bfloat16: 2e-6}
"""Rounding of one fused XLA computation against op-by-op dispatch (bfloat16 runs in float32)."""
VARIANTS = [(jnp.float64, True), (jnp.float32, False), (jnp.bfloat16, True)]
"""(input dtype, non-default options): every dtype, and base, temperature, beta in two.

float64 with the default options runs in :func:`test_axis_and_broadcasting`."""


@contextlib.contextmanager
def generic_path():
    """Within the block, JAX inputs take the generic array-API path (the specification)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_fast_jax, "compute", lambda *args, **kwargs: None)
        yield


def _numpy_inputs(measure, form, shape, seed):
    """Random inputs of one form with zeros (-inf), +inf results and finite rows mixed."""
    rng = np.random.default_rng(seed)
    if measure == "generalized_kl":
        p, q = rng.gamma(0.7, size=shape), rng.gamma(0.7, size=shape)
        p[rng.random(shape) < 0.3] = 0.0
        q[rng.random(shape) < 0.1] = 0.0
        return [p, q]
    if form == "logits":
        arrays = [2.0 * rng.normal(size=shape) for _ in range(2)]
        for z in arrays:
            z[rng.random(shape) < 0.25] = -np.inf
            z[..., 0] = 1.0  # every row keeps some mass
    else:
        arrays = [random_probs(rng, shape, zero_fraction=0.25) for _ in range(2)]
        if form == "log_probs":
            with np.errstate(divide="ignore"):
                arrays = [np.log(p) for p in arrays]
    return arrays[:1] if measure == "entropy" else arrays


def _options(measure, form, nondefault):
    if not nondefault:
        return {}
    options = {"base": 2}
    if form == "logits":
        options["temperature"] = 0.7
    if measure == "js":
        options["beta"] = 0.3
    return options


def _assert_same(native, generic, dtype=jnp.float64):
    dtype = jnp.float64 if dtype is None else dtype
    assert isinstance(native, jax.Array)
    assert native.dtype == generic.dtype
    assert native.shape == generic.shape
    np.testing.assert_allclose(
        np.asarray(native, dtype=np.float64),
        np.asarray(generic, dtype=np.float64),
        rtol=RTOL[dtype],
        atol=1e-300,
    )


def _native_and_generic(case, arrays, **options):
    """The public call on the native path (asserting that it is taken) and on the generic one."""
    native = kldiv_compute(case, arrays, **options)
    assert native is not None, "the native path did not apply"
    _assert_same(FUNCTIONS[case](*arrays, **options), native)
    with generic_path():
        generic = FUNCTIONS[case](*arrays, **options)
    return native, generic


def kldiv_compute(case, arrays, **options):
    """``_fast_jax.compute`` with the public defaults filled in."""
    measure, form = case
    return _fast_jax.compute(
        measure,
        form,
        arrays,
        axis=options.get("axis", -1),
        base=options.get("base"),
        validate=options.get("validate"),
        temperature=options.get("temperature", 1.0),
        beta=options.get("beta", 0.5),
    )


@pytest.mark.parametrize(
    ("dtype", "nondefault"),
    VARIANTS,
    ids=[f"{jnp.dtype(d).name}-{'options' if o else 'defaults'}" for d, o in VARIANTS],
)
@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_native_equals_generic(case, dtype, nondefault):
    """Every measure and form, zeros, -inf masks, +inf results, base 2, temperature, beta."""
    arrays = [jnp.asarray(a, dtype=dtype) for a in _numpy_inputs(*case, (3, 4, 9), seed=1)]
    native, generic = _native_and_generic(case, arrays, **_options(*case, nondefault))
    _assert_same(native, generic, dtype)
    assert native.dtype == (jnp.float32 if dtype == jnp.bfloat16 else dtype)


@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_axis_and_broadcasting(case):
    """A middle event axis, and a second input broadcast against the first's batch dims."""
    first, *rest = _numpy_inputs(*case, (5, 6), seed=2)
    arrays = [jnp.asarray(np.stack([first, first[::-1]]).swapaxes(-1, -2))]  # (2, 6, 5)
    arrays += [jnp.asarray(a.T) for a in rest]  # (6, 5)
    native, generic = _native_and_generic(case, arrays, axis=1)
    assert native.shape == (2, 5)
    _assert_same(native, generic)


def test_dtype_conversions_and_empty_batches_follow_the_generic_path():
    """float16, integer and mixed-precision inputs, and an empty batch, as the reference."""
    z = np.array([[3.0, 0.0, -2.0], [1.0, 1.0, 5.0]])
    pairs = [
        [jnp.asarray(z, jnp.float16), jnp.asarray(z[::-1], jnp.float16)],
        [jnp.asarray(z, jnp.int32), jnp.asarray(z[::-1], jnp.int32)],
        [jnp.asarray(z, jnp.float32), jnp.asarray(z[::-1], jnp.float64)],
        [jnp.zeros((0, 3)), jnp.zeros((0, 3))],
    ]
    for arrays in pairs:
        native, generic = _native_and_generic(("kl", "logits"), arrays)
        _assert_same(native, generic, dtype=jnp.float32 if native.dtype == jnp.float32 else None)
    empty = jnp.zeros((2, 0, 4))
    native, generic = _native_and_generic(("kl", "probs"), [empty, empty])
    assert native.shape == (2, 0)


def test_validate_false_gives_the_generic_value_also_for_invalid_input():
    """validate=False (per call or by default) skips the checks: NaN comes out as generic's."""
    p = jnp.asarray([[0.5, 0.5], [-0.5, 1.5], [np.nan, 1.0]])
    q = jnp.asarray([[0.25, 0.75], [0.5, 0.5], [0.5, 0.5]])
    native, generic = _native_and_generic(("kl", "probs"), [p, q], validate=False)
    assert np.isnan(np.asarray(native)[2])
    _assert_same(native, generic)
    previous = kldiv.set_default_validate(False)
    try:
        _assert_same(kldiv.kl_from_probs(p, q), generic)
    finally:
        kldiv.set_default_validate(previous)


def test_edge_values_are_judged_as_in_the_generic_path():
    """-0.0 is a valid probability; a generalized-KL row sum that overflows falls back."""
    p, q = jnp.asarray([[0.5, 0.5, -0.0]]), jnp.asarray([[0.25, 0.75, 0.0]])
    _native_and_generic(("kl", "probs"), [p, q])
    big, ones = jnp.full((1, 2), 3e38, jnp.float32), jnp.ones((1, 2), jnp.float32)
    assert kldiv_compute(("generalized_kl", "probs"), [big, ones]) is None
    with generic_path():
        expected = kldiv.generalized_kl(big, ones)
    _assert_same(kldiv.generalized_kl(big, ones), expected)


def _bad_values():
    """(case, arrays as nested lists, options) of inputs the value checks reject."""
    good = [[0.25, 0.75], [0.5, 0.5]]
    logits = [[1.0, 2.0], [0.0, -1.0]]
    inf, nan = np.inf, np.nan
    return [
        (("kl", "probs"), [good, [[0.25, 0.75], [1.5, -0.5]]], {}),
        (("kl", "probs"), [[[0.25, 0.75], [0.5, nan]], good], {}),
        (("kl", "probs"), [[[0.25, inf], [0.5, 0.5]], good], {}),
        (("kl", "probs"), [good, [[0.25, 0.75], [0.5, 0.6]]], {}),
        (("js", "probs"), [[[0.25, 0.7], [0.5, 0.5]], good], {"beta": 0.2}),
        (("entropy", "probs"), [[[0.25, 0.75], [0.5, -0.1]]], {}),
        (("cross_entropy", "probs"), [good, [[nan, 0.75], [0.5, 0.5]]], {}),
        (("kl", "log_probs"), [np.log(good), [[0.0, inf], [-0.1, -0.2]]], {}),
        (("kl", "log_probs"), [[[nan, 0.0], [-inf, 0.0]], np.log(good)], {}),
        (("kl", "log_probs"), [np.log(good), [[-1.0, -1.0], [-inf, 0.0]]], {}),
        (("entropy", "log_probs"), [[[-inf, inf], [-inf, 0.0]]], {}),
        (("kl", "logits"), [logits, [[1.0, nan], [0.0, 0.0]]], {}),
        (("kl", "logits"), [[[inf, 0.0], [0.0, 0.0]], logits], {}),
        (("kl", "logits"), [logits, [[1.0, 0.0], [-inf, -inf]]], {"temperature": 2.0}),
        (("entropy", "logits"), [[[-inf, -inf], [0.0, 0.0]]], {}),
        (("js", "logits"), [logits, [[nan, 0.0], [0.0, 0.0]]], {}),
        (("generalized_kl", "probs"), [[[1.0, 2.0], [3.0, -1.0]], [[1.0, 2.0], [3.0, 1.0]]], {}),
        (("generalized_kl", "probs"), [[[1.0, 2.0], [3.0, 1.0]], [[1.0, inf], [3.0, 1.0]]], {}),
    ]


def _bad_options():
    """(case, arrays, options) of options, shapes and dtypes the generic path rejects."""
    p = [[0.25, 0.75], [0.5, 0.5]]
    return [
        (("kl", "probs"), [p, p], {"base": 1}),
        (("kl", "probs"), [p, p], {"base": -2.0}),
        (("kl", "probs"), [p, p], {"axis": 2}),
        (("kl", "probs"), [p, p], {"axis": 1.0}),
        (("kl", "probs"), [p, p], {"validate": "yes"}),
        (("kl", "probs"), [p, [[0.5, 0.5, 0.0]]], {}),
        (("kl", "probs"), [p, [[0.5, 0.5]] * 3], {}),
        (("kl", "logits"), [p, p], {"temperature": 0.0}),
        (("kl", "logits"), [p, p], {"temperature": float("nan")}),
        (("js", "logits"), [p, p], {"beta": 1.5}),
        (("entropy", "probs"), [[0.5, 0.5][0]], {}),
    ]


def _message(function, arrays, options):
    with pytest.raises(kldiv.KLDivError) as info:
        function(*arrays, **options)
    return str(info.value)


@pytest.mark.parametrize(("case", "values", "options"), _bad_values() + _bad_options())
def test_invalid_input_raises_the_generic_error(case, values, options):
    """Bad values, options or shapes raise word for word the generic path's KLDivError."""
    arrays = [jnp.asarray(np.asarray(v, dtype=np.float64)) for v in values]
    assert kldiv_compute(case, arrays, **options) is None
    native = _message(FUNCTIONS[case], arrays, options)
    with generic_path():
        assert native == _message(FUNCTIONS[case], arrays, options)


def test_complex_and_mixed_inputs_go_to_the_generic_path():
    """Complex dtypes, JAX beside NumPy and nested lists are left to the generic path."""
    p = jnp.asarray([[0.25, 0.75]])
    assert kldiv_compute(("kl", "probs"), [p, np.asarray([[0.5, 0.5]])]) is None
    assert kldiv_compute(("kl", "probs"), [p, [[0.5, 0.5]]]) is None
    complex_p = p.astype(jnp.complex64)
    assert kldiv_compute(("kl", "probs"), [complex_p, p]) is None
    with pytest.raises(kldiv.KLDivError, match="real-valued"):
        kldiv.kl_from_probs(complex_p, p)


def test_traced_inputs_take_the_generic_path():
    """Under jax.jit, jax.grad and jax.vmap the generic path is traced; values are the same."""
    seen = []
    compute = _fast_jax.compute

    def spy(*args, **kwargs):
        seen.append(compute(*args, **kwargs))
        return seen[-1]

    z_p, z_q = (jnp.asarray(a) for a in _numpy_inputs("kl", "logits", (4, 6), seed=3))
    eager = kldiv.kl_from_logits(z_p, z_q, temperature=2.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_fast_jax, "compute", spy)
        jitted = jax.jit(lambda a, b: kldiv.kl_from_logits(a, b, temperature=2.0))(z_p, z_q)
        mapped = jax.vmap(lambda a, b: kldiv.kl_from_logits(a, b, temperature=2.0))(z_p, z_q)
        grad = jax.grad(lambda a: kldiv.kl_from_logits(a, z_q, temperature=2.0).sum())(z_p)
    assert seen == [None, None, None]
    _assert_same(eager, jitted)
    _assert_same(eager, mapped)
    with generic_path():
        expected = jax.grad(lambda a: kldiv.kl_from_logits(a, z_q, temperature=2.0).sum())(z_p)
    assert np.all(np.isfinite(np.asarray(grad)))
    _assert_same(grad, expected)


def test_disable_jit_takes_the_generic_path():
    """Under jax.disable_jit() the kernel would run op by op and call itself: generic instead."""
    p = jnp.asarray([[0.25, 0.75]])
    with jax.disable_jit():
        assert kldiv_compute(("kl", "probs"), [p, p[:, ::-1]]) is None
        assert float(kldiv.kl_from_probs(p, p)[0]) == 0.0


def test_cache_does_not_grow_per_call():
    """Same shapes reuse one kernel and one executable; a new temperature compiles nothing."""
    z_p, z_q = (jnp.asarray(a) for a in _numpy_inputs("kl", "logits", (3, 5), seed=4))
    kldiv.kl_from_logits(z_p, z_q, temperature=0.5)
    key = _fast_jax._key(
        "kl", "logits", 2, axis=-1, base=None, validate=None, beta=0.5, scaled=True
    )
    kernels = _fast_jax.kernel.cache_info().currsize
    executables = _fast_jax.kernel(key)._cache_size()
    for temperature in (0.5, 0.7, 3.0, 0.5):
        kldiv.kl_from_logits(z_p + temperature, z_q, temperature=temperature)
    assert _fast_jax.kernel.cache_info().currsize == kernels
    assert _fast_jax.kernel(key)._cache_size() == executables
