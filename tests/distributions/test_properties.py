"""Property-based checks (hypothesis) of the closed forms at random parameters.

The pair tables (``cases_*.py``) check every registered pair at fixed
parameters. Here every univariate case of those tables is a *centre*: its
parameters are moved at random (positive ones multiplied by a factor in
[0.5, 2], real ones shifted by up to ±1, probabilities shifted by up to ±1 in
logit space, integer counts by up to ±2, Uniform's ``low`` shifted and its
width scaled) and, on NumPy float64, the closed form must

(a) be ≥ 0 (to -1e-12), or exactly +inf where an independent oracle (support
    containment, and the moments Q's log-density needs from P) says the
    divergence is infinite, and finite where it says finite;
(b) equal quadrature (continuous) or enumeration (discrete) of
    ``p log(p / q)``, both from ``_reference.py``, within ``rtol=1e-6,
    atol=1e-9``: the references are computed to ``epsrel=1e-11`` and the
    closed forms use special functions accurate to ~1e-14, so the margin is
    for quadrature over slowly decaying tails near the edge of finiteness
    (a Pareto or InverseGamma P a little past the moment Q needs), the case
    tables use the same tolerance;
(c) be 0 (to 1e-12) for P against itself, for same-family pairs;
(d) in ``base=2`` equal the value in nats divided by log 2;
(e) agree with ``kldiv.estimate(p, q, method="quadrature")`` within the
    estimate's tolerance and error bar (and be +inf where it is).

Where the divergence is finite but only just (the oracle's margin below 0.15:
a tail only barely integrable), quadrature cannot resolve it and only
finiteness is checked.

The Gaussian pairs are checked at random dimensions and random symmetric
positive definite matrices in every parameterisation against the dense NumPy
formula, and that formula against seeded Monte Carlo.

Examples are derandomised (CI sees the same ones every run) and few per case;
the whole file runs in well under a minute.
"""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import integrate

import kldiv
from kldiv import distributions as D
from tests.distributions._cases import all_cases
from tests.distributions._reference import mc_kl, sum_kl

# KLDIV_PROPERTY_EXAMPLES=N searches N random (not derandomised) examples per case instead.
_DEEP = int(os.environ.get("KLDIV_PROPERTY_EXAMPLES", "0"))
# The reference's tolerances (1e-11) are below what some integrands allow: quad says so.
pytestmark = pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")

SETTINGS = settings(
    max_examples=_DEEP or 3,
    deadline=None,
    derandomize=not _DEEP,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CHEAP_SETTINGS = settings(SETTINGS, max_examples=max(60, _DEEP))

# Multivariate events, point masses and the catch-all Distribution are covered elsewhere.
_NOT_UNIVARIATE = (
    D.Multinomial,
    D.OneHotCategorical,
    D.MultivariateNormal,
    D.LowRankMultivariateNormal,
    D.Dirichlet,
    D.Wishart,
    D.Independent,
    D.Deterministic,
    D.MixtureSameFamily,
    D.TransformedDistribution,
    D.Distribution,
)
_UNIVARIATE = [c for c in all_cases() if not any(t in _NOT_UNIVARIATE for t in c.pair)]
_IDS = [c.id for c in _UNIVARIATE]
_SAME_FAMILY = [c for c in _UNIVARIATE if c.p is c.q]

_COUNT_DEPENDENT = {(D.Binomial, D.Binomial), (D.NegativeBinomial, D.NegativeBinomial)}
_PROBS = ("probs",)
_REAL = ("loc", "logits")


# --- random parameters around a case's ------------------------------------------------------------


def _batch_size(params: dict) -> int:
    return min(int(np.shape(v)[0]) for v in params.values())


def _logit_shift(p: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``p`` moved by ``shift`` in logit space; exact 0 and 1 (point masses) stay."""
    with np.errstate(divide="ignore"):
        moved = 1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p) + shift)))
    return np.where((p == 0.0) | (p == 1.0), p, moved)


def _moved(draw, family: type, params: dict, index: int) -> dict[str, np.ndarray]:
    """The parameters of batch element ``index``, moved at random within their constraints."""
    out = {}
    factor = st.floats(0.5, 2.0)
    shift = st.floats(-1.0, 1.0)
    for name, value in params.items():
        v = np.asarray(value, dtype=np.float64)[index]
        if family is D.Uniform and name == "high":
            continue
        if family is D.Uniform and name == "low":
            width = float(np.asarray(params["high"], dtype=float)[index]) - float(v)
            low = float(v) + draw(st.one_of(st.just(0.0), st.floats(-0.2, 0.2), shift))
            out["low"] = np.asarray(low)
            out["high"] = np.asarray(low + width * draw(factor))
        elif name == "total_count" and family in (D.Binomial, D.Multinomial):
            out[name] = np.asarray(max(0.0, float(v) + draw(st.integers(-2, 2))))
        elif name in _PROBS and v.ndim == 0:
            out[name] = _logit_shift(v, np.asarray(draw(shift)))
        elif name in _PROBS:  # a probability vector: entries scaled, then renormalised
            w = v * np.asarray([draw(factor) for _ in range(v.size)])
            out[name] = w / w.sum()
        elif name in _REAL:
            out[name] = v + np.asarray([draw(shift) for _ in range(v.size)]).reshape(v.shape)
        else:  # positive: scale, rate, concentration, df, alpha, NegativeBinomial's count
            out[name] = v * draw(factor)
    return out


@st.composite
def _pair_around(draw, case):
    index = draw(st.integers(0, _batch_size(case.p_params) - 1))
    q_index = min(index, _batch_size(case.q_params) - 1)
    p_params = _moved(draw, case.p, case.p_params, index)
    q_params = _moved(draw, case.q, case.q_params, q_index)
    counts = [params.get("total_count") for params in (case.p_params, case.q_params)]
    if None not in counts and counts[0][index] == counts[1][q_index] and draw(st.integers(0, 3)):
        q_params["total_count"] = p_params["total_count"]  # mostly keep equal counts equal
    return case.make(p_params, q_params)


# --- an independent oracle for +inf ---------------------------------------------------------------
#
# D(P‖Q) = E_P[log p] + E_P[-log q]. The first is finite for every P here; the second is
# finite iff P lives inside Q's support and has the moments that -log q grows like in Q's
# tails. Each rule below returns a *margin*: > 0 finite, <= 0 infinite.


def _f(x) -> float:
    return float(np.asarray(x))


def _tail_index(p) -> float:
    """sup{r : E|X|^r < ∞} under P."""
    if isinstance(p, D.Pareto):
        return _f(p.alpha)
    if isinstance(p, D.InverseGamma):
        return _f(p.concentration)
    if isinstance(p, D.StudentT):
        return _f(p.df)
    if isinstance(p, (D.Cauchy, D.HalfCauchy)):
        return 1.0
    return math.inf


def _inverse_moment_margin(p) -> float:
    """E[1/X] < ∞ under P on [0, ∞) iff its density is O(x^{margin - 1}) at 0 with margin > 0."""
    if isinstance(p, (D.Beta, D.Kumaraswamy)):
        return _f(p.concentration1) - 1.0  # density ~ x^(a - 1)
    if isinstance(p, D.Chi2):
        return _f(p.df) / 2.0 - 1.0
    if isinstance(p, (D.Gamma, D.Weibull)):
        return _f(p.concentration) - 1.0
    if isinstance(p, D.Chi):
        return _f(p.df) - 1.0
    if isinstance(p, D.Uniform):
        return math.inf if _f(p.low) > 0.0 else -math.inf
    if isinstance(p, (D.LogNormal, D.InverseGamma, D.Pareto, D.LogitNormal)):
        return math.inf  # the density vanishes faster than any power at 0
    return -math.inf  # a positive density at 0: Exponential, HalfNormal, HalfCauchy, ...


def _left_exponential_rate(p) -> float:
    """sup{t : E[e^{-tX}] < ∞} under P."""
    if isinstance(p, (D.Laplace, D.Logistic)):
        return 1.0 / _f(p.scale)
    if isinstance(p, (D.Cauchy, D.StudentT)):
        return 0.0
    return math.inf  # Gaussian or double-exponential left tails, or bounded below


def _finiteness_margin(p, q) -> float:
    """> 0 where D(P‖Q) < ∞ (small: just finite), <= 0 where it is +inf; continuous P, Q."""
    p_low, p_high = (_f(b) for b in p.support_bounds())
    q_low, q_high = (_f(b) for b in q.support_bounds())
    if p_low < q_low or p_high > q_high:
        return -math.inf  # P charges a set where q = 0
    if isinstance(q, (D.Normal, D.HalfNormal, D.Chi)):  # -log q ~ x²
        return _tail_index(p) - 2.0
    if isinstance(q, (D.Laplace, D.Exponential, D.Gamma)):  # Chi2 is a Gamma; -log q ~ |x|
        return _tail_index(p) - 1.0
    if isinstance(q, D.Weibull):  # -log q ~ x^k
        return _tail_index(p) - _f(q.concentration)
    if isinstance(q, D.InverseGamma):  # -log q ~ 1/x at 0
        return _inverse_moment_margin(p)
    if isinstance(q, (D.Gumbel, D.Moyal)):  # -log q ~ z on the right, e^{-z} on the left
        rate = _left_exponential_rate(p) * _f(q.scale) - 1.0
        return min(_tail_index(p) - 1.0, rate)
    # Cauchy, HalfCauchy, LogNormal, Pareto and bounded Q: -log q grows like log|x| or
    # log² x, or is bounded: finite for every P here.
    return math.inf


# Quadrature cannot resolve a divergence dominated by a tail that is only just integrable
# (E X^k with k a hair below a Pareto's alpha): there only finiteness is checked.
_NEAR_EDGE = 0.15


# --- an independent reference: quadrature or enumeration ------------------------------------------


def _integrand(p, q):
    """The integrand p(x) log(p(x)/q(x)), from P's and Q's ``log_prob`` (checked against SciPy).

    Q's double-exponential left tail (Gumbel, Moyal: -log q = c + w(z + e^{-z})) overflows
    to -inf where P's density has not underflowed yet; there the textbook density is
    used, with the e^{-z} term multiplied in log space.
    """
    double = isinstance(q, (D.Gumbel, D.Moyal))
    if double:
        loc, scale = _f(q.loc), _f(q.scale)
        weight = 1.0 if isinstance(q, D.Gumbel) else 0.5
        const = math.log(scale) + (0.0 if weight == 1.0 else 0.5 * math.log(2.0 * math.pi))

    @np.errstate(over="ignore")  # x² and the like, at x ~ 1e300 in the far tail
    def f(x: float) -> float:
        lp = _f(p.log_prob(np.asarray(x)))
        density = math.exp(lp)
        if density == 0.0:
            return 0.0
        if double:
            z = (x - loc) / scale
            return density * (lp + const + weight * z) + weight * math.exp(lp - z)
        return density * (lp - _f(q.log_prob(np.asarray(x))))

    return f


def _quad_kl(p, q) -> float:
    """∫ p log(p/q) over P's support (scalar P, Q), split at P's sample quantiles and kinks.

    On a half-line [lo, ∞) the variable is u = log(x - lo), which turns a density
    singular at lo (a Weibull or Gamma of shape < 1) into a smooth exponential tail.
    """
    f = _integrand(p, q)
    lo, hi = (_f(b) for b in p.support_bounds())
    draws = np.sort(np.asarray(p.sample((999,), rng=np.random.default_rng(0)), dtype=float))
    kinks = [_f(d.loc) for d in (p, q) if isinstance(d, D.Laplace)]  # |x - loc|
    cuts = np.unique([*draws[[9, 499, 989]], *kinks])
    cuts = cuts[(cuts > lo) & (cuts < hi)]
    if math.isfinite(lo) and hi == math.inf:

        def g(u: float) -> float:
            x = lo + math.exp(min(u, 709.0))
            return f(x) * (x - lo) if lo < x < hi else 0.0

        edges = [-math.inf, *np.log(cuts - lo), math.inf]
    else:

        def g(x: float) -> float:
            return f(x) if lo < x < hi else 0.0  # end points are reached by rounding

        edges = [lo, *cuts, hi]
    return sum(
        integrate.quad(g, a, b, limit=500, epsabs=1e-13, epsrel=1e-11)[0]
        for a, b in itertools.pairwise(edges)
        if b > a
    )


def _reference(p, q) -> np.ndarray:
    """The divergence by enumeration or quadrature; NaN where it is finite but out of reach."""
    if p.is_discrete:
        return sum_kl(p, q)
    margin = _finiteness_margin(p, q)
    if margin <= 0:
        return np.asarray(math.inf)
    if margin < _NEAR_EDGE:
        return np.asarray(math.nan)
    return np.asarray(_quad_kl(p, q))


# --- (a) and (b): the closed form against quadrature / enumeration --------------------------------


@pytest.mark.parametrize("case", _UNIVARIATE, ids=_IDS)
@SETTINGS
@given(data=st.data())
def test_closed_form_matches_reference_at_random_parameters(case, data):
    """Non-negative, +inf exactly where the oracle says, else equal to quadrature/enumeration."""
    p, q = data.draw(_pair_around(case), label="p, q")
    expected = _reference(p, q)
    try:
        value = np.asarray(kldiv.kl_divergence(p, q), dtype=np.float64)
    except kldiv.NoClosedFormError:
        # Documented: Binomial with fewer trials than Q, NegativeBinomial with other counts.
        assert case.pair in _COUNT_DEPENDENT, (p, q)
        estimate = kldiv.estimate(p, q)
        assert estimate.method == "enumeration", estimate
        np.testing.assert_allclose(estimate.value, expected, rtol=1e-9, atol=1e-12)
        return
    note = f"{p!r} ‖ {q!r}: kldiv {value}, reference {expected}"
    assert not np.any(np.isnan(value)), note
    assert np.all(value >= -1e-12), note
    known = ~np.isnan(expected)
    assert np.array_equal(np.isinf(value), np.isinf(expected) & known), note
    np.testing.assert_allclose(value[known], expected[known], rtol=1e-6, atol=1e-9, err_msg=note)


# --- (c) and (d): identity and units --------------------------------------------------------------


@CHEAP_SETTINGS
@given(case=st.sampled_from(_SAME_FAMILY), data=st.data())
def test_divergence_from_itself_is_zero(case, data):
    """KL(P‖P) = 0 (to 1e-12) at random parameters, for every same-family pair."""
    p, _ = data.draw(_pair_around(case), label="p, q")
    value = np.asarray(kldiv.kl_divergence(p, p))
    assert np.all(np.abs(value) <= 1e-12), (p, value)


@CHEAP_SETTINGS
@given(case=st.sampled_from(_UNIVARIATE), data=st.data())
def test_bits_are_nats_over_log_two(case, data):
    """base=2 divides the value in nats by log 2 (+inf stays +inf)."""
    p, q = data.draw(_pair_around(case), label="p, q")
    try:
        nats = np.asarray(kldiv.kl_divergence(p, q))
    except kldiv.NoClosedFormError:  # counts that differ (see above)
        assume(False)
    bits = np.asarray(kldiv.kl_divergence(p, q, base=2))
    np.testing.assert_allclose(bits, nats / math.log(2.0), rtol=1e-14, atol=0.0)


# --- (e) kldiv.estimate's quadrature against the closed forms ----------------------------------

_CONTINUOUS = [c for c in _UNIVARIATE if not c.p.is_discrete]


@CHEAP_SETTINGS
@given(case=st.sampled_from(_CONTINUOUS), data=st.data())
def test_quadrature_estimate_matches_closed_form(case, data):
    """estimate(method="quadrature") is within its tolerance and its error bar of the closed form.

    Where the divergence is clearly infinite it is +inf, or at least not a confident
    finite number (its error bar unknown or as large as the value).
    """
    p, q = data.draw(_pair_around(case), label="p, q")
    exact = float(np.asarray(kldiv.kl_divergence(p, q)))
    margin = _finiteness_margin(p, q)
    est = kldiv.estimate(p, q, method="quadrature")
    value, stderr = float(np.asarray(est.value)), float(np.asarray(est.stderr))
    note = f"{p!r} ‖ {q!r}: exact {exact}, quadrature {value} ± {stderr}"
    if margin > _NEAR_EDGE:
        error = abs(value - exact)
        assert error <= 1e-3 * abs(exact) + 1e-4, note  # estimate's default rtol, atol
        assert error <= 10 * stderr + 1e-9 * max(1.0, abs(exact)), note
    elif margin < -_NEAR_EDGE:
        assert value == math.inf or not stderr < 0.1 * abs(value), note


# --- Gaussians in random dimensions and parameterisations -----------------------------------------

_KINDS = ("covariance_matrix", "precision_matrix", "scale_tril")


def _spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.standard_normal((dim, dim))
    return a @ a.T / dim + rng.uniform(0.2, 1.5) * np.eye(dim)


def _as_kind(cov: np.ndarray, kind: str) -> np.ndarray:
    if kind == "covariance_matrix":
        return cov
    if kind == "precision_matrix":
        inverse = np.linalg.inv(cov)
        return (inverse + inverse.T) / 2
    return np.linalg.cholesky(cov)


def _dense_gaussian_kl(mu_p, cov_p, mu_q, cov_q) -> float:
    """½[tr(Σq⁻¹Σp) + (μq − μp)ᵀ Σq⁻¹ (μq − μp) − d + log det Σq − log det Σp]."""
    inverse = np.linalg.inv(cov_q)
    diff = mu_q - mu_p
    _, logdet_q = np.linalg.slogdet(cov_q)
    _, logdet_p = np.linalg.slogdet(cov_p)
    trace = np.trace(inverse @ cov_p)
    return 0.5 * (trace + diff @ inverse @ diff - len(mu_p) + logdet_q - logdet_p)


@st.composite
def _gaussians(draw):
    """Two Gaussians of one random dimension: MVN (any parameterisation), low-rank or diagonal."""
    dim = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = []
    for _ in range(2):
        form = draw(st.sampled_from((*_KINDS, "low_rank", "diagonal")))
        loc = rng.standard_normal(dim)
        if form == "low_rank":
            factor = rng.standard_normal((dim, draw(st.integers(1, dim)))) * 0.8
            diag = rng.uniform(0.3, 1.5, dim)
            out.append(
                (
                    D.LowRankMultivariateNormal(loc, factor, diag),
                    loc,
                    factor @ factor.T + np.diag(diag),
                )
            )
        elif form == "diagonal":
            scale = rng.uniform(0.4, 2.0, dim)
            out.append((D.Independent(D.Normal(loc, scale), 1), loc, np.diag(scale**2)))
        else:
            cov = _spd(rng, dim)
            out.append((D.MultivariateNormal(loc, **{form: _as_kind(cov, form)}), loc, cov))
    return out


@settings(SETTINGS, max_examples=max(60, _DEEP))
@given(gaussians=_gaussians())
def test_gaussian_pairs_match_the_dense_formula(gaussians):
    """Every MVN/low-rank/diagonal pairing equals the dense formula, and KL(P‖P) = 0."""
    (p, mu_p, cov_p), (q, mu_q, cov_q) = gaussians
    expected = _dense_gaussian_kl(mu_p, cov_p, mu_q, cov_q)
    value = float(kldiv.kl_divergence(p, q))
    assert math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-11), (p, q, value, expected)
    assert abs(float(kldiv.kl_divergence(p, p))) <= 1e-12


@settings(SETTINGS, max_examples=max(8, _DEEP // 4))
@given(gaussians=_gaussians())
def test_gaussian_pairs_match_monte_carlo(gaussians):
    """The closed form lies within 5 standard errors of seeded Monte Carlo from P's own sampler."""
    (p, _, _), (q, _, _) = gaussians
    value = float(kldiv.kl_divergence(p, q))
    mean, stderr = mc_kl(p, q, n=50_000, seed=1)
    assert abs(value - float(mean)) <= 5 * float(stderr) + 1e-9, (p, q, value, mean, stderr)
