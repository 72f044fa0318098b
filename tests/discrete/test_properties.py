"""Property-based tests (hypothesis) of the invariants users rely on, on every backend."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special

import kldiv
from kldiv._array_api import to_numpy
from tests._helpers import asarray

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@st.composite
def distributions(draw, n=None, min_size=1, max_size=8, zeros=True):
    """A probability vector, possibly with exact zeros.

    Entries are zero or at least 1e-100: XLA flushes subnormals to zero on CPU,
    which would turn a subnormal q into a support mismatch on JAX only, and the
    product test multiplies two entries.
    """
    size = n if n is not None else draw(st.integers(min_size, max_size))
    positive = st.floats(1e-100, 1.0) if zeros else st.floats(1e-3, 1.0)
    element = st.one_of(st.just(0.0), positive) if zeros else positive
    weights = np.asarray(draw(st.lists(element, min_size=size, max_size=size)))
    if weights.sum() < 1e-6:
        weights[draw(st.integers(0, size - 1))] = 1.0
    return weights / weights.sum()


@st.composite
def pairs(draw, zeros=True):
    """Two probability vectors on the same support."""
    p = draw(distributions(zeros=zeros))
    return p, draw(distributions(n=p.size, zeros=zeros))


def _value(x):
    return float(to_numpy(x))


@PROPERTY_SETTINGS
@given(pair=pairs())
def test_kl_matches_scipy_in_both_directions(xp, apply, pair):
    """kl_from_probs(p, q) is Σ rel_entr(p, q): value and direction, +inf included."""
    p, q = pair
    for a, b in ((p, q), (q, p)):
        expected = special.rel_entr(a, b).sum()
        got = _value(apply(kldiv.kl_from_probs, asarray(xp, a), asarray(xp, b)))
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12) or got == expected


@PROPERTY_SETTINGS
@given(pair=pairs())
def test_kl_nonnegative_and_zero_on_identity(xp, apply, pair):
    """KL(p‖q) ≥ 0, and KL(p‖p) = 0 exactly."""
    p, q = (asarray(xp, a) for a in pair)
    assert _value(apply(kldiv.kl_from_probs, p, q)) >= -1e-15
    assert _value(apply(kldiv.kl_from_probs, p, p)) == 0.0


@PROPERTY_SETTINGS
@given(pair=pairs())
def test_pinsker_inequality(xp, apply, pair):
    """KL(p‖q) ≥ 2·TV(p, q)², so KL is zero only when p = q."""
    p, q = pair
    tv = 0.5 * np.abs(p - q).sum()
    kl = _value(apply(kldiv.kl_from_probs, asarray(xp, p), asarray(xp, q)))
    assert kl >= 2 * tv**2 - 1e-12


@PROPERTY_SETTINGS
@given(first=pairs(), second=pairs())
def test_additive_over_independent_products(xp, apply, first, second):
    """KL(p1⊗p2 ‖ q1⊗q2) = KL(p1‖q1) + KL(p2‖q2)."""
    (p1, q1), (p2, q2) = first, second
    joint = apply(
        kldiv.kl_from_probs,
        asarray(xp, np.outer(p1, p2).ravel()),
        asarray(xp, np.outer(q1, q2).ravel()),
    )
    parts = [apply(kldiv.kl_from_probs, asarray(xp, a), asarray(xp, b)) for a, b in (first, second)]
    expected = sum(_value(x) for x in parts)
    got = _value(joint)
    assert got == expected or math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)


@PROPERTY_SETTINGS
@given(pair=pairs(zeros=False), base=st.sampled_from([None, 2, 10]))
def test_log_and_logit_forms_equal_prob_form(xp, apply, pair, base):
    """Log-space and logits inputs give the probability-space value, in any unit."""
    p, q = pair
    from_probs = _value(apply(kldiv.kl_from_probs, asarray(xp, p), asarray(xp, q), base=base))
    lp, lq = asarray(xp, np.log(p)), asarray(xp, np.log(q))
    from_log = _value(apply(kldiv.kl_from_log_probs, lp, lq, base=base))
    from_logits = _value(apply(kldiv.kl_from_logits, lp + 1.5, lq - 2.0, base=base))
    assert math.isclose(from_log, from_probs, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(from_logits, from_probs, rel_tol=1e-8, abs_tol=1e-12)


@PROPERTY_SETTINGS
@given(pair=pairs(), beta=st.floats(0.0, 1.0))
def test_js_bounded_nonnegative_and_beta_symmetric(xp, apply, pair, beta):
    """0 ≤ JS_β(p‖q) ≤ h(β) ≤ log 2, and JS_β(p‖q) = JS_(1-β)(q‖p)."""
    p, q = (asarray(xp, a) for a in pair)
    js = _value(apply(kldiv.js_from_probs, p, q, beta=beta))
    bound = -sum(w * math.log(w) for w in (beta, 1 - beta) if w > 0)
    assert -1e-15 <= js <= bound + 1e-12
    swapped = _value(apply(kldiv.js_from_probs, q, p, beta=1 - beta))
    assert math.isclose(js, swapped, rel_tol=1e-9, abs_tol=1e-14)


@PROPERTY_SETTINGS
@given(pair=pairs())
def test_entropy_and_cross_entropy_bounds(xp, apply, pair):
    """0 ≤ H(p) ≤ log n and H(p, q) = H(p) + KL(p‖q) ≥ H(p)."""
    p, q = (asarray(xp, a) for a in pair)
    h = _value(apply(kldiv.entropy, p))
    assert -1e-15 <= h <= math.log(pair[0].size) + 1e-12
    cross = _value(apply(kldiv.cross_entropy, p, q))
    kl = _value(apply(kldiv.kl_from_probs, p, q))
    assert cross >= h - 1e-12
    if math.isfinite(kl):
        assert math.isclose(cross, h + kl, rel_tol=1e-9, abs_tol=1e-12)
    else:
        assert cross == math.inf
