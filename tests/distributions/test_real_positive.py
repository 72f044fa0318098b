"""Real-line and positive families: exact zeros, stability, infinities, hooks, samples, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import kldiv
from kldiv import distributions as D
from kldiv._array_api import to_numpy

# One (family, parameters of P, a direction to move them in) per same-family pair.
SAME_FAMILY = [
    (D.Laplace, {"loc": [0.0, 1.5], "scale": [1.0, 0.5]}, {"loc": 1.0, "scale": 0.3}),
    (D.Cauchy, {"loc": [0.0, 1.5], "scale": [1.0, 0.5]}, {"loc": 1.0, "scale": 0.3}),
    (D.Gumbel, {"loc": [0.0, 1.5], "scale": [1.0, 0.5]}, {"loc": 1.0, "scale": 0.3}),
    (D.Moyal, {"loc": [0.0, 1.5], "scale": [1.0, 0.5]}, {"loc": 1.0, "scale": 0.3}),
    (D.HalfNormal, {"scale": [1.0, 0.5]}, {"scale": 0.3}),
    (D.HalfCauchy, {"scale": [1.0, 0.5]}, {"scale": 0.3}),
    (D.LogNormal, {"loc": [0.0, 1.5], "scale": [1.0, 0.5]}, {"loc": 1.0, "scale": 0.3}),
    (D.Chi2, {"df": [1.5, 4.0]}, {"df": 0.5}),
    (D.Chi, {"df": [1.5, 4.0]}, {"df": 0.5}),
    (
        D.Weibull,
        {"scale": [1.0, 2.0], "concentration": [1.5, 0.7]},
        {"scale": 0.3, "concentration": 0.2},
    ),
    (
        D.InverseGamma,
        {"concentration": [3.0, 0.7], "rate": [1.0, 2.0]},
        {"concentration": 0.3, "rate": -0.2},
    ),
    # Pareto: first order in the scale (the support's edge moves); the tail index only.
    (D.Pareto, {"scale": [1.0, 2.0], "alpha": [3.0, 0.8]}, {"scale": 0.0, "alpha": 0.5}),
]
SAME_IDS = [family.__name__ for family, _, _ in SAME_FAMILY]


def _build(family, params, xp):
    return family(**{k: xp.asarray(np.asarray(v, dtype=np.float64)) for k, v in params.items()})


def _moved(params, direction, step):
    return {k: np.asarray(v) + step * direction[k] for k, v in params.items()}


@pytest.mark.parametrize(("family", "params", "direction"), SAME_FAMILY, ids=SAME_IDS)
def test_same_family_is_exactly_zero_at_equal_parameters(family, params, direction, xp):
    """KL(P ‖ P) is exactly 0.0 on every backend (no rounding residue)."""
    p = _build(family, params, xp)
    value = to_numpy(kldiv.kl_divergence(p, _build(family, params, xp)))
    assert np.all(value == 0.0), value


@pytest.mark.parametrize(("family", "params", "direction"), SAME_FAMILY, ids=SAME_IDS)
def test_same_family_is_quadratic_near_equal_parameters(family, params, direction):
    """For Q one small step from P the divergence is >= 0 and scales as the step squared."""
    import array_api_compat.numpy as xp

    p = _build(family, params, xp)
    values = []
    for step in (1e-4, 2e-4):
        q = _build(family, _moved(params, direction, step), xp)
        values.append(np.asarray(kldiv.kl_divergence(p, q)))
    assert np.all(values[0] > 0)
    np.testing.assert_allclose(values[1] / values[0], 4.0, rtol=2e-3)


# Pairs that are +inf for some parameters only: a mixed batch, the finite entries checked
# against the same pair built from those entries alone, and torch gradients finite there.
MIXED = [
    (D.Pareto, {"scale": [1.0, 1.0], "alpha": [3.0, 1.5]}, D.Normal, {"loc": 0.0, "scale": 1.0}),
    (D.Pareto, {"scale": [1.0, 1.0], "alpha": [3.0, 0.5]}, D.Exponential, {"rate": 1.0}),
    (
        D.Pareto,
        {"scale": [1.0, 1.0], "alpha": [3.0, 0.5]},
        D.Laplace,
        {"loc": 1.0, "scale": 1.0},
    ),
    (D.Pareto, {"scale": [1.0, 0.5], "alpha": [3.0, 3.0]}, D.Pareto, {"scale": 0.8, "alpha": 2.0}),
    (
        D.StudentT,
        {"df": [3.0, 2.0], "loc": 0.0, "scale": 1.0},
        D.Normal,
        {"loc": 0.0, "scale": 1.0},
    ),
    (D.Laplace, {"loc": [0.0, 0.0], "scale": [1.0, 3.0]}, D.Gumbel, {"loc": 0.0, "scale": 2.0}),
    (D.Laplace, {"loc": [0.0, 0.0], "scale": [1.0, 3.0]}, D.Moyal, {"loc": 0.0, "scale": 2.0}),
    (
        D.Gamma,
        {"concentration": [2.0, 0.5], "rate": 1.0},
        D.InverseGamma,
        {"concentration": 2.0, "rate": 1.0},
    ),
    (
        D.InverseGamma,
        {"concentration": [3.0, 1.5], "rate": 1.0},
        D.Normal,
        {"loc": 0.0, "scale": 1.0},
    ),
    (
        D.InverseGamma,
        {"concentration": [3.0, 0.5], "rate": 1.0},
        D.Laplace,
        {"loc": 1.0, "scale": 1.0},
    ),
    (D.HalfCauchy, {"scale": [1.0, 1.0]}, D.Weibull, {"scale": 1.0, "concentration": [0.5, 1.5]}),
    (D.Uniform, {"low": [0.5, 0.1], "high": 2.0}, D.Pareto, {"scale": 0.3, "alpha": 2.0}),
    (D.Uniform, {"low": [0.5, -0.1], "high": 2.0}, D.HalfNormal, {"scale": 1.0}),
]


def _mixed_id(case):
    return f"{case[0].__name__}-{case[2].__name__}"


@pytest.mark.parametrize("case", MIXED, ids=[_mixed_id(c) for c in MIXED])
def test_partly_infinite_batch(case):
    """+inf in the second entry only; the first equals its own value, with finite gradients."""
    torch = pytest.importorskip("torch")
    p_family, p_params, q_family, q_params = case

    def tensors(params):
        return {
            k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
            for k, v in params.items()
        }

    p_tensors, q_tensors = tensors(p_params), tensors(q_params)
    if p_family is D.InverseGamma and q_family is D.Laplace:
        # torch's gammaincc has no derivative in its first argument.
        p_tensors["concentration"].requires_grad_(False)
    value = kldiv.kl_divergence(p_family(**p_tensors), q_family(**q_tensors))
    numbers = value.detach().numpy()
    assert math.isfinite(numbers[0])
    assert numbers[1] == math.inf

    def first(params):
        return {k: (np.asarray(v)[0] if np.ndim(v) else v) for k, v in params.items()}

    alone = kldiv.kl_divergence(p_family(**first(p_params)), q_family(**first(q_params)))
    assert numbers[0] == pytest.approx(float(alone), rel=1e-12)
    value[0].backward()
    for t in [*p_tensors.values(), *q_tensors.values()]:
        if t.requires_grad:
            assert torch.all(torch.isfinite(t.grad)), t.grad


# Each expectation hook against numerical integration of SciPy's density (for the lead's
# cross-area pairs). ("mgf", t): E e^{tX}; ("power", r): E X^r; ("abs", m): E|X - m|;
# ("log", None): E log X.
_HALF_NORMAL = (D.HalfNormal(1.5), stats.halfnorm(scale=1.5))
_LOG_NORMAL = (D.LogNormal(0.3, 0.6), stats.lognorm(0.6, scale=math.exp(0.3)))
_CHI = (D.Chi(2.5), stats.chi(2.5))
_WEIBULL = (D.Weibull(1.5, 0.8), stats.weibull_min(0.8, scale=1.5))
_INVERSE_GAMMA = (D.InverseGamma(2.5, 1.5), stats.invgamma(2.5, scale=1.5))
_PARETO = (D.Pareto(1.5, 2.5), stats.pareto(2.5, scale=1.5))
_HALF_CAUCHY = (D.HalfCauchy(1.5), stats.halfcauchy(scale=1.5))
HOOKS = [
    (D.Laplace(0.5, 1.5), stats.laplace(0.5, 1.5), "abs", 2.0),
    (D.Laplace(0.5, 1.5), stats.laplace(0.5, 1.5), "mgf", -0.4),
    (D.Gumbel(0.5, 1.5), stats.gumbel_r(0.5, 1.5), "mgf", -0.7),
    (D.Gumbel(0.5, 1.5), stats.gumbel_r(0.5, 1.5), "mgf", 0.3),
    (D.Moyal(0.5, 1.5), stats.moyal(0.5, 1.5), "mgf", -0.7),
    (D.Moyal(0.5, 1.5), stats.moyal(0.5, 1.5), "mgf", 0.2),
    (D.Logistic(0.5, 1.5), stats.logistic(0.5, 1.5), "mgf", 0.4),
    (D.Logistic(0.5, 1.5), stats.logistic(0.5, 1.5), "abs", -1.0),
    (*_HALF_NORMAL, "log", None),
    (*_HALF_NORMAL, "power", 0.5),
    (*_HALF_NORMAL, "mgf", -0.8),
    (*_HALF_NORMAL, "mgf", 0.8),
    (*_HALF_NORMAL, "abs", 0.7),
    (*_LOG_NORMAL, "power", -1.5),
    (*_LOG_NORMAL, "abs", 1.1),
    (*_CHI, "log", None),
    (*_CHI, "power", -0.5),
    (*_CHI, "abs", 1.2),
    (*_WEIBULL, "log", None),
    (*_WEIBULL, "power", 1.7),
    (*_WEIBULL, "abs", 0.9),
    (*_INVERSE_GAMMA, "log", None),
    (*_INVERSE_GAMMA, "power", -1.0),
    (*_INVERSE_GAMMA, "abs", 0.8),
    (*_PARETO, "log", None),
    (*_PARETO, "power", 1.5),
    (*_PARETO, "abs", 2.5),
    (*_HALF_CAUCHY, "log", None),
    (*_HALF_CAUCHY, "power", 0.5),
    (D.Chi2(3.5), stats.chi2(3.5), "abs", 2.0),
]
_HOOK_METHODS = {
    "mgf": "_mgf",
    "power": "_expected_power",
    "abs": "_expected_abs_dev",
    "log": "_expected_log",
}


def _hook_id(case):
    return f"{type(case[0]).__name__}-{case[2]}({case[3]})"


def _integrate(frozen, log_weight=None, function=None):
    """E f(X) by quadrature of SciPy's density, in log space for exponential weights."""

    def integrand(x):
        with np.errstate(over="ignore", under="ignore"):
            log_density = float(frozen.logpdf(x))
        if log_density == -math.inf:
            return 0.0
        if log_weight is not None:
            return math.exp(log_density + log_weight(x))
        return math.exp(log_density) * function(x)

    lower, upper = frozen.support()
    total, _ = integrate.quad(integrand, lower, upper, epsabs=1e-12, epsrel=1e-10, limit=500)
    return total


def _scipy_hook(frozen, kind, argument):
    if kind == "mgf":
        return _integrate(frozen, log_weight=lambda x: argument * x)
    if kind == "power":
        return _integrate(frozen, log_weight=lambda x: argument * math.log(x))
    if kind == "abs":
        return _integrate(frozen, function=lambda x: abs(x - argument))
    return _integrate(frozen, function=math.log)


@pytest.mark.parametrize("case", HOOKS, ids=[_hook_id(c) for c in HOOKS])
def test_expectation_hook_matches_scipy(case):
    """Each hook equals the numerical expectation of the same function of X."""
    d, frozen, kind, argument = case
    method = getattr(d, _HOOK_METHODS[kind])
    value = method() if argument is None else method(np.asarray(argument))
    np.testing.assert_allclose(float(value), _scipy_hook(frozen, kind, argument), rtol=1e-7)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (D.Pareto(1.0, 1.0), "inf"),
        (D.InverseGamma(1.0, 1.0), "inf"),
        (D.HalfCauchy(1.0), "inf"),
    ],
    ids=["Pareto", "InverseGamma", "HalfCauchy"],
)
def test_infinite_mean_gives_infinite_abs_dev(d, expected):
    """E|X - m| is +inf where the mean is."""
    assert float(d._expected_abs_dev(np.asarray(1.0))) == math.inf


def test_variance_of_log_hooks_match_scipy():
    """Var log X of every positive family that offers it, against SciPy's expectation."""
    cases = [
        (D.Gamma(2.5, 1.5), stats.gamma(2.5, scale=1 / 1.5)),
        (D.Exponential(1.5), stats.expon(scale=1 / 1.5)),
        (D.HalfNormal(1.5), stats.halfnorm(scale=1.5)),
        (D.LogNormal(0.3, 0.6), stats.lognorm(0.6, scale=math.exp(0.3))),
        (D.Chi(2.5), stats.chi(2.5)),
        (D.Weibull(1.5, 0.8), stats.weibull_min(0.8, scale=1.5)),
        (D.InverseGamma(2.5, 1.5), stats.invgamma(2.5, scale=1.5)),
        (D.Pareto(1.5, 2.5), stats.pareto(2.5, scale=1.5)),
        (D.HalfCauchy(1.5), stats.halfcauchy(scale=1.5)),
    ]
    for d, frozen in cases:
        mean_log = _integrate(frozen, function=math.log)
        expected = _integrate(frozen, function=lambda x, m=mean_log: (math.log(x) - m) ** 2)
        np.testing.assert_allclose(float(d._variance_of_log()), expected, rtol=1e-7)


def test_undefined_moments():
    """StudentT and Cauchy follow torch / SciPy: NaN mean where undefined, +inf variance."""
    t = D.StudentT([0.5, 1.0, 1.5, 3.0], 2.0, 1.0)
    mean, variance = np.asarray(t.mean), np.asarray(t.variance)
    assert np.isnan(mean[:2]).all()
    assert np.all(mean[2:] == 2.0)
    assert np.isnan(variance[:2]).all()
    assert variance[2] == math.inf
    assert variance[3] == 3.0
    c = D.Cauchy(0.0, 1.0)
    assert math.isnan(float(c.mean))
    assert math.isnan(float(c.variance))
    assert float(D.HalfCauchy(1.0).mean) == math.inf
    assert float(D.Pareto(1.0, [0.5, 1.5]).variance[1]) == math.inf


def test_chi2_is_a_gamma():
    """Chi2(df) is Gamma(df/2, 1/2); the Chi2 pairs agree with Gamma–Gamma and dispatch is clean."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p, q in [
            (D.Chi2(3.0), D.Chi2(5.5)),
            (D.Chi2(3.0), D.Gamma(2.0, 0.7)),
            (D.Gamma(2.0, 0.7), D.Chi2(3.0)),
        ]:
            as_gamma = [D.Gamma(d.concentration, d.rate) for d in (p, q)]
            value = float(kldiv.kl_divergence(p, q))
            assert value == pytest.approx(float(kldiv.kl_divergence(*as_gamma)), rel=1e-13)
        # Pairs registered for Gamma apply to Chi2.
        assert math.isfinite(float(kldiv.kl_divergence(D.Chi2(3.0), D.Exponential(1.0))))
    assert isinstance(D.Chi2(3.0), D.Gamma)


RSAMPLE = [
    (D.Laplace, {"loc": 0.5, "scale": 1.5}),
    (D.Cauchy, {"loc": 0.5, "scale": 1.5}),
    (D.Gumbel, {"loc": 0.5, "scale": 1.5}),
    (D.Moyal, {"loc": 0.5, "scale": 1.5}),
    (D.Logistic, {"loc": 0.5, "scale": 1.5}),
    (D.StudentT, {"df": 3.5, "loc": 0.5, "scale": 1.5}),
    (D.HalfNormal, {"scale": 1.5}),
    (D.LogNormal, {"loc": 0.5, "scale": 0.5}),
    (D.Chi2, {"df": 3.5}),
    (D.Chi, {"df": 3.5}),
    (D.Weibull, {"scale": 1.5, "concentration": 2.0}),
    (D.InverseGamma, {"concentration": 3.5, "rate": 1.5}),
    (D.Pareto, {"scale": 1.5, "alpha": 3.0}),
    (D.HalfCauchy, {"scale": 1.5}),
]


@pytest.mark.parametrize(("family", "params"), RSAMPLE, ids=[f.__name__ for f, _ in RSAMPLE])
def test_samples_are_reparameterised(family, params):
    """has_rsample: torch gradients reach every parameter, finite and not all zero."""
    torch = pytest.importorskip("torch")
    assert family.has_rsample
    tensors = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()
    }
    x = family(**tensors).sample((256,), rng=0)
    assert torch.all(torch.isfinite(x))
    torch.tanh(x).sum().backward()
    for name, t in tensors.items():
        assert t.grad is not None, name
        assert math.isfinite(float(t.grad)), name
        assert float(t.grad) != 0.0, name


def test_jax_student_t_draws_use_split_keys():
    """StudentT on JAX: one key in, two independent draws inside (normal and gamma)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    d = D.StudentT(jax.numpy.asarray([4.0]), 0.0, 1.0)
    x = np.asarray(d.sample((20000,), rng=jax.random.key(3)))[:, 0]
    assert stats.kstest(x, stats.t(4.0).cdf).pvalue > 1e-4


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: D.Laplace(0.0, -1.0), "scale"),
        (lambda: D.Gumbel(math.nan, 1.0), "loc"),
        (lambda: D.StudentT(0.0), "df"),
        (lambda: D.HalfNormal([1.0, 0.0]), "scale"),
        (lambda: D.LogNormal(0.0, -2.0), "scale"),
        (lambda: D.Chi2(-1.0), "df"),
        (lambda: D.Chi(0.0), "df"),
        (lambda: D.Weibull(1.0, -0.5), "concentration"),
        (lambda: D.InverseGamma(-1.0, 1.0), "concentration"),
        (lambda: D.Pareto(0.0, 2.0), "scale"),
        (lambda: D.Pareto(1.0, math.inf), "alpha"),
        (lambda: D.HalfCauchy(-1.0), "scale"),
        (lambda: D.Moyal(0.0, 0.0), "scale"),
        (lambda: D.Logistic(0.0, -3.0), "scale"),
        (lambda: D.Cauchy(0.0, -3.0), "scale"),
    ],
)
def test_invalid_parameters_raise(build, name):
    """A bad parameter raises KLDivError naming it, the rule and the value."""
    with pytest.raises(kldiv.KLDivError, match=f"`{name}` of"):
        build()


def test_far_tails_are_finite_or_minus_inf():
    """log_prob has no NaN far out in either tail (Gumbel and Moyal's double exponential)."""
    x = np.asarray([-1e6, -800.0, 0.0, 800.0, 1e6])
    for d in [D.Gumbel(0.0, 1.0), D.Moyal(0.0, 1.0), D.Logistic(0.0, 1.0), D.StudentT(3.0)]:
        lp = np.asarray(d.log_prob(x))
        assert not np.isnan(lp).any(), (type(d).__name__, lp)


SHIFTABLE = [
    (D.Normal, D.Gumbel),
    (D.Normal, D.Moyal),
    (D.Laplace, D.Gumbel),
    (D.Logistic, D.Moyal),
    (D.Gumbel, D.Moyal),
    (D.Moyal, D.Gumbel),
    (D.Gumbel, D.Gumbel),
    (D.Moyal, D.Moyal),
    (D.Laplace, D.Laplace),
    (D.Cauchy, D.Cauchy),
]


@pytest.mark.parametrize(("p_family", "q_family"), SHIFTABLE, ids=lambda f: f.__name__)
def test_location_families_are_shift_invariant(p_family, q_family):
    """Moving P and Q by the same large offset leaves the divergence as it was (no overflow)."""
    near = kldiv.kl_divergence(p_family(0.3, 1.0), q_family(-0.2, 1.5))
    far = kldiv.kl_divergence(p_family(-2000.0 + 0.3, 1.0), q_family(-2000.0 - 0.2, 1.5))
    assert float(far) == pytest.approx(float(near), rel=1e-9, abs=1e-10)


@pytest.mark.parametrize("p_family", [D.Laplace, D.Logistic])
@pytest.mark.parametrize("q_family", [D.Gumbel, D.Moyal])
def test_equal_scale_against_a_double_exponential_tail_is_infinite(p_family, q_family):
    """E e^{-X/s} = inf when P's scale equals Q's: +inf for every s (was ~4.5e15 for s = 49)."""
    scale = np.array([2.0, 3.0, 49.0, 3.889788003023442, 0.1])
    value = kldiv.kl_divergence(p_family(0.0, scale), q_family(-0.3, scale))
    assert np.all(np.asarray(value) == math.inf)
    just_inside = kldiv.kl_divergence(p_family(0.0, scale * (1 - 1e-9)), q_family(-0.3, scale))
    assert np.all(np.isfinite(np.asarray(just_inside)))
