"""kldiv.estimate: the exact → enumeration → quadrature → Monte Carlo chain, with error bars."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import kldiv
from kldiv import distributions as D


def _normal_kl(m1, s1, m2, s2):
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def test_closed_form_first():
    """A registered pair is exact: value of kl_divergence, stderr 0."""
    est = kldiv.estimate(D.Normal(0.0, 1.0), D.Normal(1.0, 2.0))
    assert est.method == "exact"
    assert float(est) == pytest.approx(_normal_kl(0, 1, 1, 2), rel=1e-14)
    assert float(est.stderr) == 0.0
    assert est.ci() == (est.value, est.value) or np.allclose(est.ci(), float(est))


def test_normal_against_student_t_by_quadrature():
    """Normal ‖ StudentT has no closed form: quadrature, against SciPy's expect."""
    p, q = stats.norm(0.5, 1.2), stats.t(3.0, 0.0, 1.5)
    reference = p.expect(lambda x: p.logpdf(x) - q.logpdf(x), epsabs=1e-12, epsrel=1e-12)
    est = kldiv.estimate(D.Normal(0.5, 1.2), D.StudentT(3.0, 0.0, 1.5))
    assert est.method == "quadrature"
    assert float(est) == pytest.approx(reference, rel=1e-7)
    assert float(est.stderr) < 1e-6


def test_normal_against_student_t_by_monte_carlo_agrees_with_quadrature():
    """Forced Monte Carlo lies within 4 standard errors of the quadrature value."""
    p, q = D.Normal(0.0, 1.0), D.StudentT(2.5, 0.0, 1.0)
    quad = kldiv.estimate(p, q, method="quadrature")
    mc = kldiv.estimate(p, q, method="monte_carlo", seed=1, rtol=1e-2)
    assert mc.method == "monte_carlo"
    assert abs(float(mc) - float(quad)) < 4 * float(mc.stderr)
    assert float(mc.stderr) <= max(1e-4, 1e-2 * abs(float(mc))) * 1.0001


def test_sequential_rule_stops_at_the_tolerance():
    """The sequential Monte Carlo draws until stderr <= max(atol, rtol |value|), then stops."""
    p, q = D.StudentT(4.0, 0.0, 1.0), D.Laplace(1.0, 1.0)
    est = kldiv.estimate(p, q, method="monte_carlo", rtol=5e-3, atol=0.0, seed=0)
    assert est.details["converged"]
    assert float(est.stderr) <= 5e-3 * abs(float(est)) * 1.0001
    assert est.n < 1_000_000


def test_budget_exhausted_is_reported():
    """A tolerance the budget cannot meet ends with converged=False and the budget used."""
    est = kldiv.estimate(
        D.StudentT(4.0, 0.0, 1.0),
        D.Laplace(0.0, 1.0),
        method="monte_carlo",
        rtol=1e-9,
        atol=0.0,
        max_samples=5000,
        seed=0,
    )
    assert not est.details["converged"]
    assert est.n == 5000


def test_discrete_pair_without_closed_form_is_enumerated():
    """Binomial with different counts (no closed form): exact sum against SciPy."""
    k = np.arange(0, 13)
    p, q = stats.binom(10, 0.3), stats.binom(12, 0.4)
    pmf = p.pmf(k)
    with np.errstate(invalid="ignore"):  # 0 * -inf where P has no mass
        reference = np.sum(np.where(pmf > 0, pmf * (p.logpmf(k) - q.logpmf(k)), 0.0))
    est = kldiv.estimate(D.Binomial(10.0, probs=0.3), D.Binomial(12.0, probs=0.4))
    assert est.method == "enumeration"
    assert float(est) == pytest.approx(reference, rel=1e-12)


def test_infinite_support_is_truncated_with_the_dropped_mass_reported():
    """Poisson ‖ Geometric-free pair: Poisson against NegativeBinomial by truncated enumeration."""
    k = np.arange(0, 400)
    p, q = stats.poisson(7.0), stats.nbinom(3.0, 0.4)
    reference = np.sum(p.pmf(k) * (p.logpmf(k) - q.logpmf(k)))
    est = kldiv.estimate(D.Poisson(7.0), D.NegativeBinomial(3.0, probs=0.6))
    assert est.method == "enumeration"
    assert float(est) == pytest.approx(reference, rel=1e-10)
    assert float(np.max(est.details["dropped_mass"])) < 1e-12


def _gmm_1d(weights, locs, scales):
    return D.MixtureSameFamily(
        D.Categorical(probs=np.asarray(weights)), D.Normal(np.asarray(locs), np.asarray(scales))
    )


def test_one_dimensional_gmm_pair_by_quadrature():
    """GMM ‖ GMM in 1-D: quadrature equals an independent scipy quad of the mixture densities."""
    p = _gmm_1d([0.3, 0.7], [-1.0, 1.5], [0.5, 1.0])
    q = _gmm_1d([0.5, 0.5], [0.0, 2.0], [1.0, 0.7])

    def density(weights, locs, scales, x):
        return sum(
            w * stats.norm(m, s).pdf(x) for w, m, s in zip(weights, locs, scales, strict=True)
        )

    def integrand(x):
        fp = density([0.3, 0.7], [-1.0, 1.5], [0.5, 1.0], x)
        fq = density([0.5, 0.5], [0.0, 2.0], [1.0, 0.7], x)
        return fp * math.log(fp / fq) if fp > 0 else 0.0

    reference = integrate.quad(integrand, -30, 30, limit=400, epsabs=1e-13)[0]
    est = kldiv.estimate(p, q)
    assert est.method == "quadrature"
    assert float(est) == pytest.approx(reference, rel=1e-7)


def _gmm_2d(weights, means, scales):
    covariances = np.asarray([s**2 * np.eye(2) for s in scales])
    return D.MixtureSameFamily(
        D.Categorical(probs=np.asarray(weights)),
        D.MultivariateNormal(np.asarray(means, dtype=float), covariance_matrix=covariances),
    )


def test_two_dimensional_gmm_pair_by_monte_carlo_with_bounds():
    """GMM ‖ GMM in 2-D: Monte Carlo with stderr, inside the bounds, near the approximation."""
    p = _gmm_2d([0.4, 0.6], [[0.0, 0.0], [2.0, 1.0]], [1.0, 0.6])
    q = _gmm_2d([0.5, 0.3, 0.2], [[0.5, 0.0], [1.5, 1.5], [-1.0, 0.5]], [1.2, 0.8, 1.0])
    est = kldiv.estimate(p, q, seed=0, rtol=2e-3)
    assert est.method == "monte_carlo"
    value, stderr = float(est), float(est.stderr)
    details = est.details
    assert details["lower_bound"] - 4 * stderr <= value <= details["upper_bound"] + 4 * stderr
    assert abs(details["variational_approximation"] - value) < 0.25 * value
    reference = kldiv.estimate(p, q, method="monte_carlo", n_samples=400_000, seed=123)
    assert abs(value - float(reference)) < 4 * math.hypot(stderr, float(reference.stderr))


def test_mixture_bounds_are_exact_for_single_gaussians():
    """For one-component mixtures the variational approximation is the exact KL."""
    p = _gmm_1d([1.0], [0.3], [1.1])
    q = _gmm_1d([1.0], [-0.4], [0.8])
    est = kldiv.estimate(p, q, method="monte_carlo", n_samples=2000, seed=0)
    exact = _normal_kl(0.3, 1.1, -0.4, 0.8)
    assert est.details["variational_approximation"] == pytest.approx(exact, rel=1e-12)
    assert est.details["lower_bound"] <= exact + 1e-12
    assert est.details["upper_bound"] >= exact - 1e-12


CALIBRATION = [
    # Q narrower than P: q/p is bounded and the control variate is used.
    ((0.0, 1.0), (0.5, 0.7), None, True),
    # Q wider than P: q/p has a Pareto tail (index ~2); the control variate is refused.
    ((0.0, 1.0), (0.8, 1.4), None, False),
    ((0.0, 1.0), (0.8, 1.4), False, False),
]


def _mc(p, q, seed, control_variate):
    from kldiv.estimators._monte_carlo import monte_carlo_kl

    return monte_carlo_kl(
        p,
        q,
        rtol=0.0,
        atol=0.0,
        max_samples=1000,
        n_samples=1000,
        seed=seed,
        control_variate=control_variate,
    )


@pytest.mark.parametrize(("p_params", "q_params", "control_variate", "expect_cv"), CALIBRATION)
def test_monte_carlo_intervals_are_calibrated(p_params, q_params, control_variate, expect_cv):
    """Over 300 seeds the 95% interval covers the true KL between 91% and 98.5% of the time."""
    p, q = D.Normal(*p_params), D.Normal(*q_params)
    truth = _normal_kl(*p_params, *q_params)
    hits, reduced = 0, 0
    for seed in range(300):
        result = _mc(p, q, seed, control_variate)
        half = 1.959964 * float(result.stderr)
        hits += abs(float(result.value) - truth) <= half
        reduced += float(result.stderr) < float(_mc(p, q, seed, False).stderr)
    assert 0.91 <= hits / 300 <= 0.985, hits
    assert (reduced > 250) == expect_cv, reduced


def test_control_variate_reduces_the_variance_where_valid():
    """Q's support inside P's: the control variate is used and shrinks the standard error."""
    p, q = D.StudentT(5.0, 0.2, 1.0), D.Laplace(0.0, 1.0)
    with_cv = kldiv.estimate(p, q, method="monte_carlo", n_samples=20_000, seed=3)
    assert with_cv.details["control_variate"]
    from kldiv.estimators._monte_carlo import monte_carlo_kl

    plain = monte_carlo_kl(
        p, q, rtol=0, atol=0, max_samples=20_000, n_samples=20_000, seed=3, control_variate=False
    )
    assert float(with_cv.stderr) < 0.5 * float(plain.stderr)


def test_control_variate_not_used_when_q_reaches_outside_p():
    """P = Uniform(0, 1) against Q = Normal: E_P[q/p] < 1, so no control variate."""
    est = kldiv.estimate(
        D.Uniform(0.0, 1.0), D.Laplace(0.0, 1.0), method="monte_carlo", n_samples=20_000, seed=0
    )
    assert not est.details["control_variate"]
    quad = kldiv.estimate(D.Uniform(0.0, 1.0), D.Laplace(0.0, 1.0), method="quadrature")
    assert abs(float(est) - float(quad)) < 4 * float(est.stderr)


def test_monte_carlo_is_differentiable_in_torch():
    """Reparameterised draws: the gradient of the estimate matches the exact gradient."""
    torch = pytest.importorskip("torch")
    loc = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    p = D.Normal(loc, scale)
    q = D.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    est = kldiv.estimate(p, q, method="monte_carlo", n_samples=200_000, seed=0)
    est.value.backward()
    # d/dloc = loc / s_q^2; d/dscale = scale / s_q^2 - 1 / scale
    assert float(loc.grad) == pytest.approx(0.4, abs=0.02)
    assert float(scale.grad) == pytest.approx(1.3 - 1 / 1.3, abs=0.02)


def test_auto_prefers_monte_carlo_when_a_gradient_is_needed():
    """Normal(requires_grad) ‖ StudentT: quadrature is skipped, the value carries a graph."""
    torch = pytest.importorskip("torch")
    loc = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    p = D.Normal(loc, torch.tensor(1.0, dtype=torch.float64))
    est = kldiv.estimate(p, D.StudentT(4.0, 0.0, 1.0), seed=0, rtol=2e-2)
    assert est.method == "monte_carlo"
    assert est.value.requires_grad


def test_jax_jit_uses_a_fixed_sample():
    """Under jax.jit the estimate runs with a fixed number of draws and a key."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    @jax.jit
    def kl(loc, key):
        est = kldiv.estimate(
            D.Normal(loc, 1.0), D.StudentT(4.0, 0.0, 1.0), seed=key, n_samples=50_000
        )
        return est.value, est.stderr

    value, stderr = kl(jnp.asarray(0.3), jax.random.key(0))
    quad = kldiv.estimate(D.Normal(0.3, 1.0), D.StudentT(4.0, 0.0, 1.0))
    assert abs(float(value) - float(quad)) < 5 * float(stderr)


def test_batched_estimate():
    """A batch of pairs: per-element values and standard errors."""
    q = D.StudentT(np.array([3.0, 10.0]), 0.0, 1.0)
    p = D.Normal(0.0, np.array([1.0, 2.0]))
    est = kldiv.estimate(p, q)
    assert est.value.shape == (2,)
    for i, (df, s) in enumerate([(3.0, 1.0), (10.0, 2.0)]):
        single = kldiv.estimate(D.Normal(0.0, s), D.StudentT(df, 0.0, 1.0))
        assert float(est.value[i]) == pytest.approx(float(single), rel=1e-9)


def test_bits():
    """base=2 converts value and stderr."""
    nats = kldiv.estimate(D.Normal(0.0, 1.5), D.StudentT(3.0, 0.0, 1.0))
    bits = kldiv.estimate(D.Normal(0.0, 1.5), D.StudentT(3.0, 0.0, 1.0), base=2)
    assert float(bits) == pytest.approx(float(nats) / math.log(2), rel=1e-12)
    assert bits.unit == "bits"


def test_torch_and_scipy_objects_are_accepted():
    """torch.distributions and SciPy frozen objects go through the same chain."""
    torch = pytest.importorskip("torch")
    est = kldiv.estimate(torch.distributions.Normal(0.0, 1.5), torch.distributions.StudentT(3.0))
    assert est.method == "quadrature"
    assert isinstance(est.value, torch.Tensor)
    est2 = kldiv.estimate(stats.norm(0.0, 1.5), stats.t(3.0))
    assert est2.method == "quadrature"
    assert float(est2) == pytest.approx(float(est), rel=1e-5)  # torch built float32 tensors
    exact = kldiv.estimate(stats.t(3.0), stats.norm(0.0, 1.5))  # closed form: H(P, Q) - H(P)
    assert exact.method == "exact"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "magic"}, "`method` must be one of"),
        ({"rtol": -1.0}, "`rtol` must be a number >= 0"),
        ({"max_samples": 1}, "`max_samples` must be an integer >= 2"),
        ({"n_samples": 2.5}, "`n_samples` must be an integer >= 2"),
        ({"base": 0}, "`base`"),
    ],
)
def test_bad_arguments(kwargs, match):
    """Each bad argument is named."""
    with pytest.raises(kldiv.KLDivError, match=match):
        kldiv.estimate(D.Normal(0.0, 1.0), D.StudentT(3.0, 0.0, 1.0), **kwargs)


def test_method_that_does_not_apply():
    """Quadrature of a multivariate pair and exact without a closed form are errors."""
    mvn = D.MultivariateNormal(np.zeros(2), covariance_matrix=np.eye(2))
    with pytest.raises(kldiv.KLDivError, match="needs continuous univariate"):
        kldiv.estimate(mvn, mvn, method="quadrature")
    with pytest.raises(kldiv.NoClosedFormError, match="no closed form"):
        kldiv.estimate(D.Normal(0.0, 1.0), D.StudentT(3.0, 0.0, 1.0), method="exact")


@pytest.mark.parametrize("method", ["auto", "monte_carlo"])
def test_discrete_against_continuous_is_infinite(method):
    """Atoms against a density, either way round, are +inf (was a finite Monte Carlo number)."""
    for p, q in [
        (D.Bernoulli(probs=0.5), D.Normal(0.0, 1.0)),
        (D.Normal(0.0, 1.0), D.Poisson(np.array([1.0, 2.0]))),
    ]:
        est = kldiv.estimate(p, q, method=method, seed=0)
        assert est.method == "exact"
        assert np.all(np.asarray(est.value) == math.inf)
        assert np.all(np.asarray(est.stderr) == 0.0)
        assert np.shape(est.value) == np.broadcast_shapes(p.batch_shape, q.batch_shape)


def test_enumeration_with_an_infinite_term_warns_nothing():
    """A Q that misses part of P's support gives +inf without a RuntimeWarning (inf * False)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = kldiv.estimate(D.Poisson(3.0), D.Categorical(probs=np.full(5, 0.2)))
    assert est.method == "enumeration"
    assert float(est) == math.inf
    assert float(est.stderr) == 0.0


def test_quadrature_of_a_density_spanning_many_decades_keeps_its_error_bar():
    """Gamma(0.3) from its 0.1% quantile (1e-12) to its median: within its error (was 4e-3 off)."""
    p, q = D.Gamma(0.3, 1.0), D.Gamma(2.0, 1.0)
    est = kldiv.estimate(p, q, method="quadrature")
    exact = float(kldiv.kl_divergence(p, q))
    assert abs(float(est) - exact) <= 10 * float(est.stderr) + 1e-12


def test_quadrature_does_not_step_over_a_kink():
    """Laplace's kink at loc is a cut point: Laplace(0, 1) ‖ Gumbel(0, 2) = 1/3 within the error."""
    est = kldiv.estimate(D.Laplace(0.0, 1.0), D.Gumbel(0.0, 2.0), method="quadrature")
    assert abs(float(est) - 1.0 / 3.0) <= 10 * float(est.stderr) + 1e-12


def test_quadrature_where_the_density_underflows_is_not_infinite():
    """0 · log q = 0 where p underflows and Gumbel's log q overflows (was +inf ± 0)."""
    p, q = D.Normal(0.0, 1.0), D.Gumbel(0.0, 0.3)
    est = kldiv.estimate(p, q, method="quadrature")
    assert float(est) == pytest.approx(float(kldiv.kl_divergence(p, q)), rel=1e-9)


@pytest.mark.parametrize(
    ("p", "q"),
    [
        (D.HalfCauchy(1.0), D.HalfNormal(1.0)),  # E X² = inf (was 70.2 ± 6e-7)
        (D.StudentT(0.8, 0.0, 1.0), D.Laplace(0.0, 1.0)),  # E|X| = inf (was -4.55)
        (D.Gamma(0.97, 1.0), D.InverseGamma(2.5, 1.5)),  # E 1/X = inf
    ],
)
def test_quadrature_of_a_divergent_integral_is_infinite(p, q):
    """A heavier-tailed P than Q has infinite divergence; quad's divergence diagnosis says so."""
    est = kldiv.estimate(p, q, method="quadrature")
    assert float(est) == math.inf
    assert math.isnan(float(est.stderr))


def test_monte_carlo_gradient_of_a_p_without_reparameterisation_is_unbiased():
    """Discrete P (and VonMises, mixtures): the score term carries the gradient (was ~0)."""
    torch = pytest.importorskip("torch")
    rate_p = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    rate_q = torch.tensor(4.0, dtype=torch.float64, requires_grad=True)
    est = kldiv.estimate(
        D.Poisson(rate_p), D.Poisson(rate_q), method="monte_carlo", n_samples=200_000, seed=0
    )
    est.value.backward()
    # d/dλp = log(λp/λq), d/dλq = 1 - λp/λq
    assert float(rate_p.grad) == pytest.approx(math.log(3.0 / 4.0), abs=0.01)
    assert float(rate_q.grad) == pytest.approx(1.0 - 3.0 / 4.0, abs=0.01)
    value, stderr = float(est.value.detach()), float(est.stderr.detach())
    assert value == pytest.approx(3 * math.log(3 / 4) + 1, abs=5 * stderr)


def test_pareto_tail_check_of_tied_ratios_warns_nothing():
    """A discrete P gives tied ratios q/p, zero excesses in the tail fit: no RuntimeWarning."""
    import warnings

    from kldiv.estimators._monte_carlo import pareto_shape

    p, q = D.Geometric(probs=0.5), D.Geometric(probs=0.3)
    x = p.sample((1000,), rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shape = pareto_shape(p.log_prob(x) - q.log_prob(x))
        est = kldiv.estimate(p, q, method="monte_carlo", seed=0, n_samples=1000)
    assert shape < 0.25  # bounded ratios: a light tail
    assert abs(float(est) - float(kldiv.kl_divergence(p, q))) <= 5 * float(est.stderr)


def test_fixed_sample_stderr_carries_no_graph():
    """With n_samples on torch the value is differentiable and the error bar is a plain number."""
    torch = pytest.importorskip("torch")
    loc = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    p = D.Normal(loc, torch.tensor(1.0, dtype=torch.float64))
    est = kldiv.estimate(p, D.StudentT(4.0, 0.0, 1.0), method="monte_carlo", n_samples=2000, seed=0)
    assert est.value.requires_grad
    assert not est.stderr.requires_grad
    assert float(est.stderr) > 0


def test_estimate_on_every_backend(xp):
    """Every step of the chain gives NumPy's value in the backend's own array type."""

    def arr(v):
        return xp.asarray(v, dtype=xp.float64)

    pairs = [
        ("exact", D.Normal(arr(0.0), arr(1.0)), D.Normal(arr(1.0), arr(2.0))),
        ("quadrature", D.Normal(arr(0.5), arr(1.2)), D.StudentT(arr(3.0), arr(0.0), arr(1.5))),
        ("enumeration", D.Poisson(arr([7.0])), D.NegativeBinomial(arr([3.0]), probs=arr([0.6]))),
    ]
    for method, p, q in pairs:
        est = kldiv.estimate(p, q)
        reference = kldiv.estimate(
            kldiv.distributions._convert.as_numpy_distribution(p),
            kldiv.distributions._convert.as_numpy_distribution(q),
        )
        assert est.method == method
        assert _of_backend(est.value, xp)
        np.testing.assert_allclose(
            np.asarray(kldiv._array_api.to_numpy(est.value)),
            np.asarray(reference.value),
            rtol=1e-9,
        )
    p, q = pairs[1][1], pairs[1][2]
    mc = kldiv.estimate(p, q, method="monte_carlo", n_samples=20_000, seed=0)
    assert _of_backend(mc.value, xp)
    assert abs(float(mc) - float(reference_quad(p, q))) < 5 * float(mc.stderr)


def reference_quad(p, q):
    return kldiv.estimate(
        kldiv.distributions._convert.as_numpy_distribution(p),
        kldiv.distributions._convert.as_numpy_distribution(q),
        method="quadrature",
    )


def _of_backend(value, xp):
    """An array of ``xp`` (a single NumPy result is stored by Estimate as a Python float)."""
    from array_api_compat import array_namespace, is_numpy_namespace

    if is_numpy_namespace(xp):
        return isinstance(value, (np.ndarray, float))
    return array_namespace(value) is xp


def _normal_vs_cauchy_by_quad(loc: float) -> float:
    def integrand(x):
        return stats.norm.pdf(x) * (stats.norm.logpdf(x) - stats.cauchy.logpdf(x, loc))

    return integrate.quad(integrand, -np.inf, np.inf)[0]


def test_one_p_against_a_batch_of_q_by_quadrature():
    """Regression: an unbatched P against a batch of Qs broadcast (was a bare NumPy ValueError)."""
    est = kldiv.estimate(D.Normal(0.0, 1.0), D.Cauchy([0.0, 1.0], 1.0))
    assert est.method == "quadrature"
    expected = [_normal_vs_cauchy_by_quad(0.0), _normal_vs_cauchy_by_quad(1.0)]
    np.testing.assert_allclose(est.value, expected, rtol=1e-7)


def test_one_p_against_a_batch_of_q_by_monte_carlo():
    """Regression: Monte Carlo draws of an unbatched P are aligned with Q's batch axes."""
    est = kldiv.estimate(
        D.Normal(0.0, 1.0), D.Cauchy([[0.0], [1.0]], [1.0, 2.0]), method="monte_carlo", seed=0
    )
    assert est.value.shape == (2, 2)
    exact_free = kldiv.estimate(D.Normal(0.0, 1.0), D.Cauchy(1.0, 1.0))
    assert abs(est.value[1, 0] - float(exact_free)) < 5 * est.stderr[1, 0]
    mvn = kldiv.estimate(
        D.MultivariateNormal(np.zeros(2), np.eye(2)),
        D.MultivariateNormal(
            np.zeros((3, 2)), np.eye(2) * np.array([1.0, 2.0, 3.0])[:, None, None]
        ),
        method="monte_carlo",
        seed=0,
    )
    exact = kldiv.kl_divergence(
        D.MultivariateNormal(np.zeros(2), np.eye(2)),
        D.MultivariateNormal(
            np.zeros((3, 2)), np.eye(2) * np.array([1.0, 2.0, 3.0])[:, None, None]
        ),
    )
    assert np.all(np.abs(mvn.value - exact) <= 5 * mvn.stderr + 1e-12)


def test_rtol_and_atol_both_zero_raise():
    """Regression: rtol = atol = 0 is a KLDivError naming both (was SciPy's ValueError)."""
    with pytest.raises(kldiv.KLDivError, match="`rtol` and `atol` cannot both be 0"):
        kldiv.estimate(D.Normal(0.0, 1.0), D.StudentT(3.0, 0.0, 1.0), rtol=0, atol=0)
