"""KL divergence values on every backend, against SciPy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

import kldiv
from kldiv._array_api import to_numpy
from tests._helpers import asarray, assert_close, random_probs

WORKED_NATS = 0.020135513550688863
WORKED_BITS = 0.029049405545331326


def test_worked_example(xp, apply):
    """P = [0.4, 0.6], Q = [0.5, 0.5] gives 0.0201355 nats and 0.0290494 bits."""
    p, q = asarray(xp, [0.4, 0.6]), asarray(xp, [0.5, 0.5])
    assert_close(apply(kldiv.kl_from_probs, p, q), WORKED_NATS, xp=xp, dtype=xp.float64)
    assert_close(apply(kldiv.kl_from_probs, p, q, base=2), WORKED_BITS, xp=xp)
    assert abs(WORKED_NATS - (0.4 * math.log(0.4 / 0.5) + 0.6 * math.log(0.6 / 0.5))) < 1e-15


def test_worked_example_from_plain_lists():
    """Nested sequences become NumPy float64 arrays."""
    assert kldiv.kl_from_probs([0.4, 0.6], [0.5, 0.5]) == pytest.approx(WORKED_NATS, rel=1e-14)


@pytest.mark.parametrize("zero_fraction", [0.0, 0.3])
def test_matches_scipy_rel_entr(xp, apply, zero_fraction):
    """Rows with and without exact zeros agree with scipy.special.rel_entr summed."""
    rng = np.random.default_rng(0)
    p = random_probs(rng, (6, 7), zero_fraction)
    q = random_probs(rng, (6, 7))
    expected = special.rel_entr(p, q).sum(axis=-1)
    assert_close(apply(kldiv.kl_from_probs, asarray(xp, p), asarray(xp, q)), expected, xp=xp)


@pytest.mark.parametrize("base", [2, 10, math.e, 0.5])
def test_base_divides_by_log_base(xp, apply, base):
    """`base=b` is the nats value divided by log(b), for every positive b != 1."""
    rng = np.random.default_rng(1)
    p, q = random_probs(rng, (3, 4)), random_probs(rng, (3, 4))
    expected = special.rel_entr(p, q).sum(axis=-1) / math.log(base)
    got = apply(kldiv.kl_from_probs, asarray(xp, p), asarray(xp, q), base=base)
    assert_close(got, expected, xp=xp)


def test_zero_p_contributes_nothing(xp, apply):
    """0 · log(0 / q) = 0, also where q = 0."""
    p, q = asarray(xp, [0.0, 0.0, 1.0]), asarray(xp, [0.0, 0.5, 0.5])
    assert_close(apply(kldiv.kl_from_probs, p, q), math.log(2.0), xp=xp)


def test_disjoint_support_is_inf(xp, apply):
    """Zero q where p > 0 gives +inf, never NaN."""
    p, q = asarray(xp, [[0.5, 0.5], [1.0, 0.0]]), asarray(xp, [[1.0, 0.0], [1.0, 0.0]])
    got = to_numpy(apply(kldiv.kl_from_probs, p, q))
    assert got[0] == np.inf
    assert got[1] == 0.0


def test_identical_is_exactly_zero(xp, apply):
    """KL(p ‖ p) is 0 exactly, zeros included."""
    p = asarray(xp, random_probs(np.random.default_rng(2), (5, 9), zero_fraction=0.3))
    assert np.all(to_numpy(apply(kldiv.kl_from_probs, p, p)) == 0.0)


def test_asymmetric(xp, apply):
    """KL(P ‖ Q) ≠ KL(Q ‖ P) in general; both match SciPy."""
    p, q = [0.1, 0.9], [0.5, 0.5]
    forward = apply(kldiv.kl_from_probs, asarray(xp, p), asarray(xp, q))
    reverse = apply(kldiv.kl_from_probs, asarray(xp, q), asarray(xp, p))
    assert_close(forward, special.rel_entr(p, q).sum(), xp=xp)
    assert_close(reverse, special.rel_entr(q, p).sum(), xp=xp)
    assert abs(float(to_numpy(forward)) - float(to_numpy(reverse))) > 0.1


@pytest.mark.parametrize("axis", [0, 1, 2, -2])
def test_axis_equals_moveaxis(xp, apply, axis):
    """Reducing over `axis` equals moving that axis last and reducing over -1."""
    rng = np.random.default_rng(3)
    p = np.moveaxis(random_probs(rng, (3, 4, 5)), -1, axis)
    q = np.moveaxis(random_probs(rng, (3, 4, 5)), -1, axis)
    got = apply(kldiv.kl_from_probs, asarray(xp, p), asarray(xp, q), axis=axis)
    moved = kldiv.kl_from_probs(np.moveaxis(p, axis, -1), np.moveaxis(q, axis, -1))
    assert_close(got, moved, xp=xp)


def test_broadcasts_batch_dimensions(xp, apply):
    """A q of shape (n,) broadcasts against p of shape (b, n); (b, 1, n) against (c, n)."""
    rng = np.random.default_rng(4)
    p, q = random_probs(rng, (4, 1, 6)), random_probs(rng, (3, 6))
    got = apply(kldiv.kl_from_probs, asarray(xp, p), asarray(xp, q))
    assert tuple(got.shape) == (4, 3)
    assert_close(got, special.rel_entr(p, q).sum(axis=-1), xp=xp)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_log_probs_and_logits_forms_agree_with_probs(xp, apply, temperature):
    """kl_from_probs(p, q) = kl_from_log_probs(log p, log q) = kl_from_logits(z_p, z_q)."""
    rng = np.random.default_rng(5)
    z_p, z_q = rng.normal(size=(4, 8)) * 3, rng.normal(size=(4, 8)) * 3
    log_p = special.log_softmax(z_p / temperature, axis=-1)
    log_q = special.log_softmax(z_q / temperature, axis=-1)
    from_probs = apply(kldiv.kl_from_probs, asarray(xp, np.exp(log_p)), asarray(xp, np.exp(log_q)))
    from_log = apply(kldiv.kl_from_log_probs, asarray(xp, log_p), asarray(xp, log_q))
    from_logits = apply(
        kldiv.kl_from_logits, asarray(xp, z_p), asarray(xp, z_q), temperature=temperature
    )
    expected = special.rel_entr(np.exp(log_p), np.exp(log_q)).sum(axis=-1)
    for got in (from_probs, from_log, from_logits):
        assert_close(got, expected, xp=xp, rtol=1e-9)


def test_logits_are_shift_invariant(xp, apply):
    """Adding a constant to a row of logits does not change the divergence."""
    z_p, z_q = asarray(xp, [[1.0, 2.0, 3.0]]), asarray(xp, [[0.5, 0.0, -1.0]])
    base = apply(kldiv.kl_from_logits, z_p, z_q)
    shifted = apply(kldiv.kl_from_logits, z_p + 100.0, z_q - 50.0)
    assert_close(shifted, to_numpy(base), xp=xp)


def test_minus_inf_logits_are_zero_mass(xp, apply):
    """-inf logits are masked tokens: as if the entry were not there (p side) or +inf (q side)."""
    z = asarray(xp, [[0.3, -np.inf, 1.2], [0.0, 0.0, 0.0]])
    z_q = asarray(xp, [[1.0, 5.0, -1.0], [0.0, -np.inf, 0.0]])
    got = to_numpy(apply(kldiv.kl_from_logits, z, z_q))
    p0 = special.softmax([0.3, 1.2])
    q0 = special.softmax([1.0, 5.0, -1.0])[[0, 2]]
    np.testing.assert_allclose(got[0], np.sum(p0 * np.log(p0 / q0)), rtol=1e-12)
    assert got[1] == np.inf


def test_minus_inf_log_probs(xp, apply):
    """A log p of -inf contributes 0; a log q of -inf under mass of p gives +inf."""
    lp = asarray(xp, [[-np.inf, 0.0], [math.log(0.5), math.log(0.5)]])
    lq = asarray(xp, [[-np.inf, 0.0], [0.0, -np.inf]])
    got = to_numpy(apply(kldiv.kl_from_log_probs, lp, lq))
    assert got[0] == 0.0
    assert got[1] == np.inf


def test_extreme_logits_do_not_overflow(xp, apply):
    """Logits of ±1e4 give the exact limit, not NaN or inf."""
    z_p, z_q = asarray(xp, [1e4, 0.0]), asarray(xp, [0.0, 0.0])
    assert_close(apply(kldiv.kl_from_logits, z_p, z_q), math.log(2.0), xp=xp)


def test_float32_stays_float32(xp, apply):
    """float32 in, float32 out, accurate to float32 precision."""
    rng = np.random.default_rng(6)
    p, q = random_probs(rng, (4, 50)), random_probs(rng, (4, 50))
    got = apply(kldiv.kl_from_probs, asarray(xp, p, xp.float32), asarray(xp, q, xp.float32))
    assert_close(got, special.rel_entr(p, q).sum(-1), xp=xp, dtype=xp.float32, rtol=1e-5)


@pytest.mark.skip_backends("array_api_strict", reason="array_api_strict has no half precision")
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_half_precision_accumulates_in_float32(xp, apply, dtype_name):
    """float16 / bfloat16 inputs are computed and returned in float32.

    The float32 result is within a few float32 ulps of the log-normalizer
    (about 9.5e-7 at V = 4096) of the float64 value of the same rounded inputs.
    """
    dtype = getattr(xp, dtype_name, None)
    if dtype is None:
        pytest.skip(f"{xp.__name__} has no {dtype_name}")
    z_p = np.random.default_rng(7).normal(size=(8, 4096))
    z_q = z_p + 0.05 * np.random.default_rng(8).normal(size=(8, 4096))
    low_p = xp.astype(asarray(xp, z_p), dtype)
    low_q = xp.astype(asarray(xp, z_q), dtype)
    got = apply(kldiv.kl_from_logits, low_p, low_q)
    reference = kldiv.kl_from_logits(
        to_numpy(xp.astype(low_p, xp.float32)).astype(np.float64),
        to_numpy(xp.astype(low_q, xp.float32)).astype(np.float64),
    )
    assert_close(got, reference, xp=xp, dtype=xp.float32, rtol=1e-3, atol=3e-6)


def test_integer_inputs_become_floating(xp, apply):
    """Integer arrays are promoted to the backend's default floating dtype."""
    p = xp.asarray([1, 0])
    q = asarray(xp, [0.5, 0.5])
    assert_close(apply(kldiv.kl_from_probs, p, q), math.log(2.0), xp=xp)


def test_mixed_precision_promotes(xp, apply):
    """A float32 and a float64 argument give a float64 result.

    float32 [0.4, 0.6] sums to 1 + 3e-8 in float64: the value is the sum of the
    non-negative terms ``p log(p/q) - p + q`` (``kl_div``), not of ``rel_entr``.
    """
    p, q = asarray(xp, [0.4, 0.6], xp.float32), asarray(xp, [0.5, 0.5])
    expected = special.kl_div(np.float32([0.4, 0.6]).astype(np.float64), [0.5, 0.5]).sum()
    assert_close(apply(kldiv.kl_from_probs, p, q), expected, xp=xp, dtype=xp.float64)


def test_empty_batch(xp, apply):
    """A batch of zero distributions gives an empty result."""
    p = xp.zeros((0, 3), dtype=xp.float64)
    assert tuple(apply(kldiv.kl_from_probs, p, p).shape) == (0,)
