"""Honest at the edges: closed forms at extreme and near-equal parameters, +inf gradients, errors.

- Every same-family closed form against the textbook formula evaluated in
  mpmath at 50 digits (``_mpmath_pairs.py``), over parameters from 1e-6 to 1e6
  and over nearly equal P and Q (relative gaps down to 1e-12): relative error
  at most ``RTOL`` and KL >= 0 (exactly 0 at equal parameters).
- Every registered pair whose divergence is +inf has an exact zero gradient.
- Every family rejects None, NaN, negative and non-numeric parameters with a
  :class:`kldiv.KLDivError` that names the argument.
- torch distributions kldiv cannot convert raise :class:`kldiv.NoClosedFormError`
  (a ``NotImplementedError``); ``TransformedDistribution`` pairs with equal
  transforms and ``LogisticNormal`` match torch's own values.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kldiv
from kldiv import distributions as D
from tests.distributions._cases import all_cases
from tests.distributions._families import all_families
from tests.distributions._mpmath_pairs import PAIRS

# Relative accuracy promised for the same-family closed forms in float64, at any
# parameter in [1e-6, 1e6] and any relative gap between P and Q down to 1e-12.
RTOL = 1e-9
# Beta and Dirichlet whose components differ by many orders of magnitude (one of
# them ~1e-6 beside one >= 1) keep a cancellation among the shifted log-gamma
# terms: there the error is also allowed an absolute 1e-13 (KL values ~1e-5).
ATOL = {"Beta": 1e-13, "Dirichlet": 1e-13}

_SIGN = st.sampled_from([-1.0, 1.0])
_POSITIVE = st.floats(-6.0, 6.0).map(lambda e: 10.0**e)
_GAP = st.tuples(_SIGN, st.floats(-12.0, -1.0)).map(lambda t: t[0] * 10.0 ** t[1])


@st.composite
def _pair(draw, family=None):
    name = family or draw(st.sampled_from(sorted(PAIRS)))
    kinds, _, _ = PAIRS[name]
    p = [draw(_POSITIVE) * (draw(_SIGN) if k == "loc" else 1.0) for k in kinds]
    if draw(st.booleans()):  # nearly equal: each parameter moved by a small relative gap
        spread = max(abs(v) for v in p)
        q = [
            v * (1.0 + draw(_GAP)) if k == "pos" else v + draw(_GAP) * spread
            for v, k in zip(p, kinds, strict=True)
        ]
    elif draw(st.booleans()):  # equal
        q = list(p)
    else:
        q = [draw(_POSITIVE) * (draw(_SIGN) if k == "loc" else 1.0) for k in kinds]
    return name, tuple(p), tuple(q)


def _check_pair(name: str, p: tuple, q: tuple) -> None:
    _, build, reference = PAIRS[name]
    exact = reference(p, q)
    value = float(kldiv.kl_divergence(build(*p), build(*q)))
    assert not math.isnan(value), (name, p, q)
    assert value >= 0.0, (name, p, q, value)
    if p == q:
        assert value == 0.0, (name, p, value)
    if exact == mp.inf or exact > 1e300:  # beyond float64: +inf or huge is right
        assert value > 1e290, (name, p, q, value)
        return
    error = abs(mp.mpf(value) - exact)
    assert error <= RTOL * abs(exact) + ATOL.get(name, 1e-300), (name, p, q, value, float(exact))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pair())
def test_same_family_closed_forms_match_mpmath(case):
    """Every same-family closed form to RTOL of 50-digit mpmath, KL >= 0, 0 at equality."""
    _check_pair(*case)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(PAIRS))
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_family_closed_forms_match_mpmath_sweep(family, data):
    """The large sweep of the mpmath check, family by family (KLDIV_SLOW=1)."""
    _check_pair(*data.draw(_pair(family)))


# --- Audit regressions -------------------------------------------------------------------------


def test_laplace_tiny_scale_far_location():
    """Laplace(0, 1e-15) ‖ Laplace(1000, 1) is 1033.5388 (was 1024: cancellation)."""
    torch = pytest.importorskip("torch")
    exact = float(PAIRS["Laplace"][2]((0.0, 1e-15), (1000.0, 1.0)))
    ours = float(kldiv.kl_divergence(D.Laplace(0.0, 1e-15), D.Laplace(1000.0, 1.0)))
    p = torch.distributions.Laplace(torch.tensor(0.0, dtype=torch.float64), 1e-15)
    q = torch.distributions.Laplace(torch.tensor(1000.0, dtype=torch.float64), 1.0)
    assert ours == pytest.approx(exact, rel=1e-12)
    assert float(kldiv.kl_divergence(p, q)) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("k", [1e3, 1e6, 1e9])
def test_gamma_and_beta_large_concentration_nearly_equal(k):
    """Gamma/Beta with k up to 1e9 and a 1e-7 gap: full accuracy (was negative or 8 digits off)."""
    p, q = (k, 1.0), (k * (1 + 1e-7), 1.0)
    for name in ("Gamma", "Beta"):
        _, build, reference = PAIRS[name]
        value = float(kldiv.kl_divergence(build(*p), build(*q)))
        assert value == pytest.approx(float(reference(p, q)), rel=1e-9)


# --- +inf results have an exact zero gradient --------------------------------------------------


_INFINITE = [c for c in all_cases() if c.reference == "inf" and c.build is None]


@pytest.mark.parametrize("case", _INFINITE, ids=[c.id for c in _INFINITE])
def test_infinite_results_have_zero_gradient(case):
    """Every +inf pair: the value is +inf and the gradient of every parameter is exactly 0."""
    torch = pytest.importorskip("torch")

    def leaves(params):
        return {
            k: torch.tensor(np.asarray(v, dtype=float), requires_grad=True)
            for k, v in params.items()
        }

    p_params, q_params = leaves(case.p_params), leaves(case.q_params)
    p, q = case.make(p_params, q_params)
    kl = kldiv.kl_divergence(p, q)
    infinite = torch.isinf(kl)
    assert bool(infinite.any()), case.id
    # one +inf entry at a time: its gradient must be 0 for every parameter
    index = tuple(int(i) for i in torch.nonzero(infinite)[0])
    kl[index].backward()
    for name, leaf in {**p_params, **q_params}.items():
        if leaf.grad is not None:
            assert bool(torch.all(leaf.grad == 0)), (case.id, name, leaf.grad)


# --- Bad parameters: KLDivError naming the argument ---------------------------------------------


_SIMPLE = [f for f in all_families() if f.build is None]
_SEEN: set[str] = set()
_ONE_PER_FAMILY = [
    f for f in _SIMPLE if f.cls.__name__ not in _SEEN and not _SEEN.add(f.cls.__name__)
]


def _bad_values(family, name):
    constraint = family.cls.arg_constraints.get(name)
    value = np.asarray(family.params[name], dtype=float)
    out = {"None": None, "NaN": np.full_like(value, np.nan), "text": "abc"}
    if constraint is not None and (
        "> 0" in constraint.description or ">= 0" in constraint.description
    ):
        out["negative"] = -np.abs(value) - 1.0
    return out


@pytest.mark.parametrize("family", _ONE_PER_FAMILY, ids=[f.id for f in _ONE_PER_FAMILY])
def test_bad_parameters_raise_kldiv_error_naming_them(family):
    """None, NaN, negative (where > 0 is required) and text: KLDivError with the name and value."""
    for name in family.params:
        for label, bad in _bad_values(family, name).items():
            params = {**family.params, name: bad}
            with pytest.raises(kldiv.KLDivError) as info:
                family.cls(**params)
            message = str(info.value)
            assert f"`{name}`" in message, (family.id, name, label, message)


# --- torch front door ----------------------------------------------------------------------------


def test_unconvertible_torch_distribution_is_not_implemented():
    """A torch distribution kldiv cannot convert: NoClosedFormError, a NotImplementedError."""
    torch = pytest.importorskip("torch")
    p = torch.distributions.RelaxedBernoulli(torch.tensor(0.5), probs=torch.tensor(0.3))
    q = torch.distributions.Normal(0.0, 1.0)
    with pytest.raises(NotImplementedError):
        kldiv.kl_divergence(p, q)
    with pytest.raises(kldiv.NoClosedFormError):
        kldiv.kl_divergence(p, q)


def test_transformed_pairs_match_torch():
    """Equal transforms on both sides: D(base_P ‖ base_Q), as torch (test_kl_transformed)."""
    torch = pytest.importorskip("torch")
    tdist = torch.distributions
    normal_p = tdist.Independent(tdist.Normal(torch.zeros(2, 3), torch.ones(2, 3)), 1)
    normal_q = tdist.Independent(tdist.Normal(torch.ones(2, 3), 2 * torch.ones(2, 3)), 1)
    affine = tdist.AffineTransform(loc=0.0, scale=2.0, event_dim=1)
    p = tdist.TransformedDistribution(normal_p, affine)
    q = tdist.TransformedDistribution(normal_q, affine)
    ours, theirs = kldiv.kl_divergence(p, q), tdist.kl_divergence(p, q)
    assert ours.shape == (2,)
    torch.testing.assert_close(ours, theirs)
    assert kldiv.kl_divergence(p, p).shape == (2,)
    other = tdist.TransformedDistribution(normal_q, tdist.AffineTransform(1.0, 2.0, event_dim=1))
    with pytest.raises(NotImplementedError):
        kldiv.kl_divergence(p, other)


def test_logistic_normal_matches_torch_with_gradients():
    """LogisticNormal pairs: torch's value and gradients."""
    torch = pytest.importorskip("torch")
    tdist = torch.distributions
    loc = torch.tensor([[0.3, -1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([[0.5, 1.5, 1.0]], dtype=torch.float64, requires_grad=True)
    p = tdist.LogisticNormal(loc, scale)
    q = tdist.LogisticNormal(
        torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    )
    ours, theirs = kldiv.kl_divergence(p, q), tdist.kl_divergence(p, q)
    torch.testing.assert_close(ours, theirs)
    ours_grad = torch.autograd.grad(ours.sum(), (loc, scale))
    theirs_grad = torch.autograd.grad(theirs.sum(), (loc, scale))
    for a, b in zip(ours_grad, theirs_grad, strict=True):
        torch.testing.assert_close(a, b)
    x = p.sample((4,))
    converted = D.from_torch(p)
    torch.testing.assert_close(converted.log_prob(x), p.log_prob(x))
