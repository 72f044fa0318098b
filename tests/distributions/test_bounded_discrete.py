"""Regression and edge-case tests of the bounded-support and discrete families and their pairs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

import kldiv
from kldiv import distributions as D
from kldiv._array_api import to_numpy
from tests._helpers import asarray


def _torch():
    return pytest.importorskip("torch")


def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def _grads_torch(make, p_values, q_values):
    torch = _torch()
    p = torch.tensor(p_values, dtype=torch.float64, requires_grad=True)
    q = torch.tensor(q_values, dtype=torch.float64, requires_grad=True)
    value = kldiv.kl_divergence(*make(p, q))
    value.sum().backward()
    return value.detach().numpy(), p.grad.numpy(), q.grad.numpy()


def _grads_jax(make, p_values, q_values):
    jax = _jax()
    jnp = jax.numpy

    def total(p, q):
        return jnp.sum(kldiv.kl_divergence(*make(p, q)))

    p = jnp.asarray(np.asarray(p_values, dtype=np.float64))
    q = jnp.asarray(np.asarray(q_values, dtype=np.float64))
    return jax.jit(jax.grad(total, argnums=(0, 1)))(p, q)


# --- Zero probabilities: exact values and finite gradients -------------------------------------


@pytest.mark.parametrize(
    ("p_values", "q_values"),
    [([0.0, 1.0, 0.0, 1.0], [0.4, 0.6, 0.0, 1.0]), ([0.0, 0.3], [1e-300, 0.5])],
)
def test_bernoulli_gradient_finite_at_probs_zero_and_one(p_values, q_values):
    """pytorch#15288: KL(Bernoulli ‖ Bernoulli) has finite gradients at probs 0 and 1."""

    def make(p, q):
        return D.Bernoulli(probs=p), D.Bernoulli(probs=q)

    value, grad_p, grad_q = _grads_torch(make, p_values, q_values)
    expected = stats.entropy([1 - np.array(p_values), p_values], [1 - np.array(q_values), q_values])
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(grad_p)), grad_p
    assert np.all(np.isfinite(grad_q)), grad_q
    jax_p, jax_q = _grads_jax(make, p_values, q_values)
    np.testing.assert_allclose(np.asarray(jax_p), grad_p, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax_q), grad_q, rtol=1e-12)


def test_categorical_gradient_finite_with_zero_probabilities():
    """Zero entries of P contribute 0; where Q is 0 too the value and the gradients stay finite."""
    p_values = [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]
    q_values = [[0.2, 0.3, 0.5], [0.0, 0.5, 0.5]]

    def make(p, q):
        return D.Categorical(probs=p, validate=False), D.Categorical(probs=q, validate=False)

    value, grad_p, grad_q = _grads_torch(make, p_values, q_values)
    np.testing.assert_allclose(value, stats.entropy(p_values, q_values, axis=-1), rtol=1e-12)
    assert np.all(np.isfinite(grad_p))
    assert np.all(np.isfinite(grad_q))
    jax_p, jax_q = _grads_jax(make, p_values, q_values)
    np.testing.assert_allclose(np.asarray(jax_p), grad_p, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax_q), grad_q, rtol=1e-12)


def test_categorical_minus_inf_logits_are_masked():
    """-inf logits are categories of zero mass: exact value, finite gradients, no NaN."""
    p_values = [[0.3, -math.inf, 1.0], [-math.inf, 0.0, 2.0]]
    q_values = [[0.0, 0.5, -1.0], [1.0, -1.0, 0.5]]

    def make(p, q):
        return D.Categorical(logits=p), D.Categorical(logits=q)

    value, grad_p, grad_q = _grads_torch(make, p_values, q_values)
    p = np.exp(p_values) / np.exp(p_values).sum(-1, keepdims=True)
    q = np.exp(q_values) / np.exp(q_values).sum(-1, keepdims=True)
    np.testing.assert_allclose(value, stats.entropy(p, q, axis=-1), rtol=1e-12)
    assert np.all(np.isfinite(grad_p))
    assert np.all(np.isfinite(grad_q))
    assert grad_p[0, 1] == 0.0
    assert grad_p[1, 0] == 0.0


def test_categorical_q_zero_where_p_positive_is_inf():
    """P charges a category Q gives zero mass: +inf, for probabilities and for logits."""
    p = D.Categorical(probs=[0.5, 0.5])
    q = D.Categorical(probs=[1.0, 0.0])
    assert float(kldiv.kl_divergence(p, q)) == math.inf
    q_logits = D.Categorical(logits=[0.0, -math.inf])
    assert float(kldiv.kl_divergence(p, q_logits)) == math.inf


# --- Count mismatches ----------------------------------------------------------------------------


def test_binomial_fewer_trials_in_p_has_no_closed_form():
    """p.total_count < q.total_count raises NoClosedFormError (torch: NotImplementedError)."""
    p = D.Binomial(3.0, probs=0.4)
    q = D.Binomial(5.0, probs=0.4)
    with pytest.raises(kldiv.NoClosedFormError, match="total_count"):
        kldiv.kl_divergence(p, q)
    with pytest.raises(NotImplementedError):
        kldiv.kl_divergence(p, q)


def test_binomial_fewer_trials_is_nan_under_jit():
    """Under jax.jit the counts cannot be read: the pairs without a closed form are NaN."""
    jax = _jax()
    jnp = jax.numpy

    def kl(n_p, n_q):
        return kldiv.kl_divergence(D.Binomial(n_p, probs=0.4), D.Binomial(n_q, probs=0.3))

    value = jax.jit(kl)(jnp.asarray([3.0, 5.0, 6.0]), jnp.asarray([5.0, 5.0, 5.0]))
    value = np.asarray(value)
    assert math.isnan(value[0])
    assert math.isfinite(value[1])
    assert value[2] == math.inf


def test_binomial_point_mass_p_is_finite_whatever_the_counts():
    """A Binomial P with probs 0 is the point mass at 0: -n_q log(1 - q), whatever the counts."""
    p = D.Binomial([2.0, 9.0], probs=[0.0, 0.0])
    q = D.Binomial(5.0, probs=0.3)
    np.testing.assert_allclose(kldiv.kl_divergence(p, q), -5.0 * math.log(0.7), rtol=1e-14)


def test_negative_binomial_different_counts_have_no_closed_form():
    """Different total_count: NoClosedFormError."""
    with pytest.raises(kldiv.NoClosedFormError):
        kldiv.kl_divergence(D.NegativeBinomial(2.0, probs=0.3), D.NegativeBinomial(3.0, probs=0.3))


def test_multinomial_different_counts_are_disjoint():
    """Count vectors of different totals never coincide: +inf both ways (torch raises for one)."""
    probs = [0.2, 0.8]
    less, more = D.Multinomial(2, probs=probs), D.Multinomial(3, probs=probs)
    assert float(kldiv.kl_divergence(less, more)) == math.inf
    assert float(kldiv.kl_divergence(more, less)) == math.inf
    zero = D.Multinomial(0, probs=[1.0, 0.0])
    assert float(kldiv.kl_divergence(zero, D.Multinomial(0, probs=[0.0, 1.0]))) == 0.0


def test_binomial_entropy_needs_concrete_counts_under_jit():
    """Binomial.entropy sums over 0..n: a traced total_count is an error, a static one works."""
    jax = _jax()
    jnp = jax.numpy
    with pytest.raises(kldiv.NoClosedFormError, match="total_count"):
        jax.jit(lambda n: D.Binomial(n, probs=0.3).entropy())(jnp.asarray(4.0))
    value = jax.jit(lambda p: D.Binomial(4.0, probs=p).entropy())(jnp.asarray(0.3))
    np.testing.assert_allclose(float(value), stats.binom(4, 0.3).entropy(), rtol=1e-12)


# --- Parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family",
    [D.Bernoulli, D.Geometric, D.ContinuousBernoulli, D.Categorical, D.OneHotCategorical],
)
def test_exactly_one_of_probs_and_logits(family):
    """Both or neither of probs/logits: KLDivError naming them."""
    with pytest.raises(kldiv.KLDivError, match="exactly one of `probs` and `logits`; got both"):
        family(probs=[0.3, 0.7], logits=[0.0, 1.0])
    with pytest.raises(kldiv.KLDivError, match="got neither"):
        family()


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: D.Bernoulli(probs=1.5), "probs"),
        (lambda: D.Bernoulli(logits=math.inf), "logits"),
        (lambda: D.Geometric(probs=0.0), "probs"),
        (lambda: D.Binomial(2.5, probs=0.5), "total_count"),
        (lambda: D.Binomial(-1.0, probs=0.5), "total_count"),
        (lambda: D.NegativeBinomial(2.0, probs=1.0), "probs"),
        (lambda: D.Poisson(-0.1), "rate"),
        (lambda: D.Categorical(probs=[0.5, 0.6]), "probs"),
        (lambda: D.Categorical(logits=[math.nan, 0.0]), "logits"),
        (lambda: D.Multinomial(1.5, probs=[0.5, 0.5]), "total_count"),
        (lambda: D.Beta(0.0, 1.0), "concentration1"),
        (lambda: D.ContinuousBernoulli(probs=0.0), "probs"),
        (lambda: D.Kumaraswamy(1.0, -2.0), "concentration0"),
        (lambda: D.LogitNormal(0.0, 0.0), "scale"),
        (lambda: D.VonMises(0.0, -1.0), "concentration"),
    ],
)
def test_invalid_parameters_name_the_parameter(build, name):
    """A bad parameter is a KLDivError naming it and what was expected."""
    with pytest.raises(kldiv.KLDivError, match=f"`{name}`"):
        build()


# --- Exactness -----------------------------------------------------------------------------------

SAME_FAMILY = [
    (D.Bernoulli, {"probs": [0.0, 0.3, 1.0]}),
    (D.Bernoulli, {"logits": [-2.0, 0.0, 5.0]}),
    (D.Binomial, {"total_count": [3.0, 7.0], "probs": [0.2, 0.9]}),
    (D.Geometric, {"probs": [0.2, 1.0]}),
    (D.Poisson, {"rate": [0.0, 0.5, 20.0]}),
    (D.NegativeBinomial, {"total_count": [2.0, 0.5], "probs": [0.0, 0.6]}),
    (D.Categorical, {"probs": [[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]]}),
    (D.OneHotCategorical, {"logits": [[0.2, -math.inf, 1.0]]}),
    (D.Multinomial, {"total_count": [4.0], "probs": [[0.2, 0.8]]}),
    (D.Beta, {"concentration1": [0.3, 5.0], "concentration0": [2.0, 40.0]}),
    (D.ContinuousBernoulli, {"probs": [0.01, 0.5, 0.49999, 0.9]}),
    (D.Kumaraswamy, {"concentration1": [0.3, 5.0], "concentration0": [2.0, 40.0]}),
    (D.LogitNormal, {"loc": [0.0, 3.0], "scale": [0.1, 2.0]}),
    (D.VonMises, {"loc": [0.0, 3.0], "concentration": [0.1, 50.0]}),
]


@pytest.mark.parametrize(
    ("family", "params"), SAME_FAMILY, ids=lambda v: getattr(v, "__name__", "")
)
def test_same_family_is_exactly_zero_at_equal_parameters(family, params, xp):
    """KL(P ‖ P) is exactly 0.0 on every backend."""
    arrays = {k: asarray(xp, v) for k, v in params.items()}
    value = to_numpy(kldiv.kl_divergence(family(**arrays), family(**arrays)))
    assert np.all(value == 0.0), value


def test_close_parameters_are_accurate():
    """Nearby parameters: the same-family forms keep relative accuracy (vs. mpmath-free series)."""
    eps = 1e-7
    # Poisson: lambda (r - 1 - log r) ~ lambda (d^2/2) for r = 1 + d.
    value = float(kldiv.kl_divergence(D.Poisson(2.0), D.Poisson(2.0 * (1 + eps))))
    np.testing.assert_allclose(value, 2.0 * (eps**2 / 2 - eps**3 / 3), rtol=1e-6)
    # Logit-normal: the Normal form, 0.5 (expm1(2r) - 2r) ~ r^2.
    value = float(kldiv.kl_divergence(D.LogitNormal(0.0, 1.0), D.LogitNormal(0.0, 1.0 + eps)))
    np.testing.assert_allclose(value, eps**2, rtol=1e-5)


# --- Special forms ------------------------------------------------------------------------------


def _kumaraswamy_expected_log1m_by_quad(a, b):
    """-E log(1 - X) = int_0^inf (1 - (1 - e^-y)^a)^b dy (parts, then v = 1 - x = e^-y)."""

    def integrand(y):
        if y == 0.0:
            return 1.0
        log_one_minus = math.log(-math.expm1(-y)) if y < 0.7 else math.log1p(-math.exp(-y))
        return (-math.expm1(a * log_one_minus)) ** b

    edges = [0.0] + [10.0**k for k in range(-40, 5)] + [math.inf]
    return -sum(
        integrate.quad(integrand, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]
        for lo, hi in itertools.pairwise(edges)
    )


@pytest.mark.parametrize("a", [0.1, 0.5, 1.0, 2.0, 30.0])
@pytest.mark.parametrize("b", [0.05, 0.7, 3.0, 200.0])
def test_kumaraswamy_expected_log1m_matches_quadrature(a, b):
    """E log(1 - X) by the fixed tanh-sinh rule equals adaptive quadrature (and -1/b at a = 1)."""
    value = float(D.Kumaraswamy(a, b)._expected_log1m())
    np.testing.assert_allclose(value, _kumaraswamy_expected_log1m_by_quad(a, b), rtol=1e-12)
    if a == 1.0:
        np.testing.assert_allclose(value, -1.0 / b, rtol=1e-14)


def test_continuous_bernoulli_moments_are_exact_near_one_half():
    """Mean and variance are derivatives of A(z) = log(expm1(z)/z), also where torch cancels."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for probs in (1e-4, 0.3, 0.499, 0.4999, 0.5000001, 0.9):
        lam = mpmath.mpf(probs)
        z = mpmath.log(lam) - mpmath.log1p(-lam)

        def log_normalizer(t):
            return mpmath.log(mpmath.expm1(t) / t)

        d = D.ContinuousBernoulli(probs=probs)
        mean = float(mpmath.diff(log_normalizer, z))
        variance = float(mpmath.diff(log_normalizer, z, 2))
        np.testing.assert_allclose(float(d.mean), mean, rtol=1e-14)
        np.testing.assert_allclose(float(d.variance), variance, rtol=1e-14)


@pytest.mark.parametrize("probs", [1e-4, 0.2, 0.499, 0.4999, 0.5, 0.50001, 0.8, 0.9999])
def test_continuous_bernoulli_matches_torch(probs):
    """log_prob, mean, variance, entropy and KL agree with torch's ContinuousBernoulli."""
    torch = _torch()
    ours = D.ContinuousBernoulli(probs=probs)
    theirs = torch.distributions.ContinuousBernoulli(probs=torch.tensor(probs, dtype=torch.float64))
    x = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    np.testing.assert_allclose(ours.log_prob(x.numpy()), theirs.log_prob(x).numpy(), rtol=1e-9)
    for name in ("mean", "variance"):  # torch's closed forms cancel near 1/2 (to ~1e-8)
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name).item(), rtol=1e-7)
    np.testing.assert_allclose(ours.entropy(), theirs.entropy().item(), rtol=1e-9, atol=1e-13)
    other = torch.distributions.ContinuousBernoulli(probs=torch.tensor(0.3, dtype=torch.float64))
    expected = torch.distributions.kl_divergence(theirs, other).item()
    actual = float(kldiv.kl_divergence(ours, D.ContinuousBernoulli(probs=0.3)))
    np.testing.assert_allclose(actual, expected, rtol=1e-8, atol=1e-13)


def test_uniform_on_the_unit_interval_against_continuous_bernoulli_is_finite():
    """Uniform(0, 1) ‖ ContinuousBernoulli is finite (torch returns +inf there)."""
    value = float(kldiv.kl_divergence(D.Uniform(0.0, 1.0), D.ContinuousBernoulli(probs=0.3)))
    z = math.log(0.3 / 0.7)
    expected = math.log(math.expm1(z) / z) - 0.5 * z  # A(z) - z E X, E X = 1/2
    np.testing.assert_allclose(value, expected, rtol=1e-13)


TORCH_PAIRS = [
    ("Bernoulli", {"probs": [0.2, 0.7]}, "Bernoulli", {"probs": [0.5, 0.1]}),
    (
        "Binomial",
        {"total_count": 6, "probs": [0.2, 0.7]},
        "Binomial",
        {"total_count": 6, "probs": [0.5, 0.1]},
    ),
    (
        "Categorical",
        {"probs": [[0.2, 0.8], [0.6, 0.4]]},
        "Categorical",
        {"probs": [[0.5, 0.5], [0.1, 0.9]]},
    ),
    (
        "OneHotCategorical",
        {"logits": [[0.2, 0.8, 0.0]]},
        "OneHotCategorical",
        {"logits": [[0.5, -0.5, 1.0]]},
    ),
    ("Geometric", {"probs": [0.2, 0.7]}, "Geometric", {"probs": [0.5, 0.1]}),
    ("Poisson", {"rate": [0.2, 7.0]}, "Poisson", {"rate": [0.5, 3.0]}),
    (
        "Beta",
        {"concentration1": [0.5, 3.0], "concentration0": [2.0, 1.5]},
        "Beta",
        {"concentration1": [1.5, 2.0], "concentration0": [0.7, 4.0]},
    ),
    ("Bernoulli", {"probs": [0.2, 0.7]}, "Poisson", {"rate": [0.5, 3.0]}),
    (
        "Beta",
        {"concentration1": [0.5, 3.0], "concentration0": [2.0, 1.5]},
        "ContinuousBernoulli",
        {"probs": [0.3, 0.9]},
    ),
    (
        "Beta",
        {"concentration1": [0.5, 3.0], "concentration0": [2.0, 1.5]},
        "Uniform",
        {"low": [-1.0, -0.5], "high": [1.5, 1.0]},
    ),
    (
        "Uniform",
        {"low": [0.1, 0.4], "high": [0.5, 0.9]},
        "Beta",
        {"concentration1": [1.5, 2.0], "concentration0": [0.7, 4.0]},
    ),
    (
        "Uniform",
        {"low": [0.1, 0.4], "high": [0.5, 0.9]},
        "ContinuousBernoulli",
        {"probs": [0.3, 0.9]},
    ),
    (
        "ContinuousBernoulli",
        {"probs": [0.3, 0.9]},
        "Uniform",
        {"low": [-1.0, -0.5], "high": [1.5, 1.2]},
    ),
]


@pytest.mark.parametrize(("p_name", "p_params", "q_name", "q_params"), TORCH_PAIRS)
def test_pairs_agree_with_torch_distributions(p_name, p_params, q_name, q_params):
    """Where torch.distributions has the pair (and is right), the values agree."""
    torch = _torch()

    def tensors(params):
        return {
            k: torch.tensor(v, dtype=torch.float64) if k != "total_count" else v
            for k, v in params.items()
        }

    expected = torch.distributions.kl_divergence(
        getattr(torch.distributions, p_name)(**tensors(p_params)),
        getattr(torch.distributions, q_name)(**tensors(q_params)),
    ).numpy()
    actual = kldiv.kl_divergence(getattr(D, p_name)(**p_params), getattr(D, q_name)(**q_params))
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-13)


# --- Samples -------------------------------------------------------------------------------------


def _rng(xp):
    import array_api_compat

    if array_api_compat.is_jax_namespace(xp):
        return _jax().random.key(3)
    if array_api_compat.is_torch_namespace(xp):
        return _torch().Generator().manual_seed(3)
    return np.random.default_rng(3)


def test_categorical_samples_follow_the_probabilities(xp):
    """Gumbel-max draws are integer indices whose frequencies match probs (chi-square)."""
    probs = [[0.1, 0.2, 0.3, 0.4], [0.7, 0.0, 0.3, 0.0]]
    d = D.Categorical(probs=asarray(xp, probs))
    n = 4000
    x = to_numpy(d.sample((n,), rng=_rng(xp)))
    assert x.shape == (n, 2)
    assert np.issubdtype(x.dtype, np.integer)
    for row, p in enumerate(np.asarray(probs)):
        counts = np.bincount(x[:, row], minlength=4)
        assert np.all(counts[p == 0] == 0)
        keep = p > 0
        assert stats.chisquare(counts[keep], n * p[keep]).pvalue > 1e-4
    np.testing.assert_array_equal(to_numpy(d.log_prob(asarray(xp, [1.0, 1.0])))[1], -np.inf)


def test_von_mises_samples_wrap_and_follow_the_law(xp):
    """Samples lie in [-pi, pi); (x - loc) wrapped passes a KS test against vonmises(kappa)."""
    loc, kappa = [2.5, -1.0, 0.0], [0.3, 4.0, 60.0]
    d = D.VonMises(asarray(xp, loc), asarray(xp, kappa))
    x = to_numpy(d.sample((4000,), rng=_rng(xp)))
    assert np.all(x >= -math.pi)
    assert np.all(x < math.pi)
    centred = np.remainder(x - np.asarray(loc) + math.pi, 2 * math.pi) - math.pi
    for i, k in enumerate(kappa):
        assert stats.kstest(centred[:, i], stats.vonmises(k).cdf).pvalue > 1e-4


def test_von_mises_moments_and_support():
    """The mean is loc, the variance 1 - E cos(X - loc); log_prob is -inf outside [-pi, pi]."""
    d = D.VonMises(1.0, 2.0)
    pdf = lambda t: math.exp(float(d.log_prob(t)))  # noqa: E731
    mean_cos = integrate.quad(lambda t: pdf(t) * math.cos(t - 1.0), -math.pi, math.pi)[0]
    np.testing.assert_allclose(float(d.variance), 1.0 - mean_cos, rtol=1e-10)
    assert float(d.mean) == 1.0
    assert np.all(d.log_prob(np.array([-3.2, 3.2])) == -np.inf)


def test_categorical_log_prob_takes_integer_indices():
    """Integer index arrays work like whole floats; other values get -inf."""
    d = D.Categorical(probs=[0.2, 0.3, 0.5])
    np.testing.assert_allclose(d.log_prob(np.array([0, 2])), np.log([0.2, 0.5]))
    assert np.all(d.log_prob(np.array([0.5, 3.0, -1.0])) == -np.inf)
