"""Jensen–Shannon, entropy, cross-entropy and generalized KL against SciPy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import special, stats
from scipy.spatial import distance

import kldiv
from kldiv._array_api import to_numpy
from tests._helpers import asarray, assert_close, random_probs


def _pair(seed, shape=(5, 7), zero_fraction=0.3):
    rng = np.random.default_rng(seed)
    return random_probs(rng, shape, zero_fraction), random_probs(rng, shape, zero_fraction)


def _binary_entropy(beta):
    return -sum(w * math.log(w) for w in (beta, 1 - beta) if w > 0)


def _js_reference(p, q, beta):
    m = beta * p + (1 - beta) * q
    parts = [(w, special.rel_entr(x, m).sum(-1)) for w, x in ((beta, p), (1 - beta, q))]
    return sum(w * kl for w, kl in parts if w > 0)


def test_js_matches_scipy_jensenshannon_squared(xp, apply):
    """With beta = 0.5, JS is the square of scipy.spatial.distance.jensenshannon."""
    p, q = _pair(0)
    expected = distance.jensenshannon(p, q, axis=-1) ** 2
    assert_close(apply(kldiv.js_from_probs, asarray(xp, p), asarray(xp, q)), expected, xp=xp)
    expected_bits = distance.jensenshannon(p, q, axis=-1, base=2) ** 2
    got = apply(kldiv.js_from_probs, asarray(xp, p), asarray(xp, q), base=2)
    assert_close(got, expected_bits, xp=xp)


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_js_three_forms_agree(xp, apply, beta):
    """js_from_probs = js_from_log_probs = js_from_logits, for any beta."""
    rng = np.random.default_rng(1)
    z_p, z_q = rng.normal(size=(4, 6)) * 2, rng.normal(size=(4, 6)) * 2
    z_p[0, 1] = -np.inf
    log_p, log_q = special.log_softmax(z_p, axis=-1), special.log_softmax(z_q, axis=-1)
    expected = _js_reference(np.exp(log_p), np.exp(log_q), beta)
    forms = [
        apply(
            kldiv.js_from_probs, asarray(xp, np.exp(log_p)), asarray(xp, np.exp(log_q)), beta=beta
        ),
        apply(kldiv.js_from_log_probs, asarray(xp, log_p), asarray(xp, log_q), beta=beta),
        apply(kldiv.js_from_logits, asarray(xp, z_p), asarray(xp, z_q), beta=beta),
    ]
    for got in forms:
        assert_close(got, expected, xp=xp, rtol=1e-9, atol=1e-14)


def test_js_disjoint_support_reaches_the_bound(xp, apply):
    """Disjoint P and Q give exactly h(beta): log 2 at beta = 0.5, and never inf."""
    p, q = asarray(xp, [1.0, 0.0]), asarray(xp, [0.0, 1.0])
    for beta in (0.5, 0.2):
        got = apply(kldiv.js_from_probs, p, q, beta=beta)
        assert_close(got, _binary_entropy(beta), xp=xp)
    log_p, log_q = asarray(xp, [0.0, -np.inf]), asarray(xp, [-np.inf, 0.0])
    assert_close(apply(kldiv.js_from_log_probs, log_p, log_q), math.log(2), xp=xp)


def test_js_beta_swaps_arguments(xp, apply):
    """JS_beta(P‖Q) = JS_(1-beta)(Q‖P); symmetric at beta = 0.5."""
    p, q = (asarray(xp, a) for a in _pair(2))
    assert_close(
        apply(kldiv.js_from_probs, p, q, beta=0.3),
        to_numpy(apply(kldiv.js_from_probs, q, p, beta=0.7)),
        xp=xp,
    )
    assert_close(
        apply(kldiv.js_from_probs, p, q), to_numpy(apply(kldiv.js_from_probs, q, p)), xp=xp
    )


def test_entropy_matches_scipy(xp, apply):
    """The entropy equals scipy.stats.entropy on normalised rows, in nats and bits."""
    p, _ = _pair(3)
    assert_close(apply(kldiv.entropy, asarray(xp, p)), stats.entropy(p, axis=-1), xp=xp)
    got = apply(kldiv.entropy, asarray(xp, p), base=2)
    assert_close(got, stats.entropy(p, axis=-1, base=2), xp=xp)


def test_entropy_three_forms_agree(xp, apply):
    """entropy(p) = entropy_from_log_probs(log p) = entropy_from_logits(z)."""
    z = np.random.default_rng(4).normal(size=(3, 9)) * 3
    z[1, :4] = -np.inf
    log_p = special.log_softmax(z / 2.0, axis=-1)
    expected = stats.entropy(np.exp(log_p), axis=-1)
    forms = [
        apply(kldiv.entropy, asarray(xp, np.exp(log_p))),
        apply(kldiv.entropy_from_log_probs, asarray(xp, log_p)),
        apply(kldiv.entropy_from_logits, asarray(xp, z), temperature=2.0),
    ]
    for got in forms:
        assert_close(got, expected, xp=xp, rtol=1e-9)


def test_entropy_of_uniform_and_point_mass(xp, apply):
    """H(uniform on n) = log n; H(point mass) = 0 exactly."""
    got = apply(kldiv.entropy, asarray(xp, [[0.25] * 4, [0.0, 1.0, 0.0, 0.0]]))
    assert_close(got, [math.log(4), 0.0], xp=xp, atol=0)


def test_cross_entropy_is_entropy_plus_kl(xp, apply):
    """H(P, Q) = H(P) + KL(P‖Q), in all three forms, with +inf where q = 0 < p."""
    p, q = _pair(5, zero_fraction=0.0)
    expected = stats.entropy(p, axis=-1) + special.rel_entr(p, q).sum(-1)
    assert_close(apply(kldiv.cross_entropy, asarray(xp, p), asarray(xp, q)), expected, xp=xp)
    got = apply(kldiv.cross_entropy_from_log_probs, asarray(xp, np.log(p)), asarray(xp, np.log(q)))
    assert_close(got, expected, xp=xp)
    got = apply(kldiv.cross_entropy_from_logits, asarray(xp, np.log(p) + 3), asarray(xp, np.log(q)))
    assert_close(got, expected, xp=xp)
    inf = apply(kldiv.cross_entropy, asarray(xp, [0.5, 0.5]), asarray(xp, [1.0, 0.0]))
    assert float(to_numpy(inf)) == math.inf
    zero_p = apply(kldiv.cross_entropy, asarray(xp, [1.0, 0.0]), asarray(xp, [1.0, 0.0]))
    assert float(to_numpy(zero_p)) == 0.0


def test_generalized_kl_matches_scipy_kl_div(xp, apply):
    """generalized_kl sums scipy.special.kl_div, zeros and unnormalised rows included."""
    rng = np.random.default_rng(6)
    p, q = rng.gamma(1.0, size=(4, 6)) * 3, rng.gamma(1.0, size=(4, 6))
    p[0, :3] = 0.0
    q[1, 2] = 0.0
    p[1, 2] = 0.0
    expected = special.kl_div(p, q).sum(-1)
    assert_close(apply(kldiv.generalized_kl, asarray(xp, p), asarray(xp, q)), expected, xp=xp)
    q[2, 0] = 0.0
    got = apply(kldiv.generalized_kl, asarray(xp, p), asarray(xp, q))
    assert to_numpy(got)[2] == math.inf


def test_generalized_kl_equals_kl_on_the_simplex(xp, apply):
    """For normalised p and q the -p + q terms cancel."""
    p, q = (asarray(xp, a) for a in _pair(7))
    assert_close(
        apply(kldiv.generalized_kl, p, q), to_numpy(apply(kldiv.kl_from_probs, p, q)), xp=xp
    )


def test_js_tiny_beta_stays_finite(xp, apply):
    """A tiny beta makes beta·p underflow; the log-space mixture keeps JS finite and ≈ 0."""
    p, q = asarray(xp, [1.0 - 1e-100, 1e-100]), asarray(xp, [1.0, 0.0])
    got = float(to_numpy(apply(kldiv.js_from_probs, p, q, beta=5e-324)))
    assert 0.0 <= got <= 1e-300


def test_logits_spanning_the_float_range_give_exact_values_without_warnings():
    """Logits ±1.7e308 apart: the far entries have zero mass, no overflow warning, exact values."""
    p_logits = np.array([1.7e308, -1.7e308, 0.0])
    q_logits = np.array([1.7e308, -1.7e308, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(kldiv.kl_from_logits(p_logits, q_logits)) == 0.0
        assert float(kldiv.js_from_logits(p_logits, q_logits)) == 0.0
        assert float(kldiv.entropy_from_logits(p_logits)) == 0.0
        assert float(kldiv.cross_entropy_from_logits(p_logits, q_logits)) == 0.0
