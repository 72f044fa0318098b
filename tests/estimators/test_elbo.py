"""kldiv.elbo: the ELBO with the exact KL where the pair has one, else Monte Carlo.

Written once over the ``xp`` fixture (numpy, array_api_strict, torch, jax).
The conjugate model is the Gaussian mean with known noise variance:
x_i ~ N(z, σ²), z ~ N(m0, s0²), whose posterior and evidence are known.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import kldiv
from kldiv import distributions as D
from kldiv._array_api import to_numpy
from tests._helpers import asarray, assert_close

JAX_ONLY = pytest.mark.skip_backends("numpy", "array_api_strict", "torch", reason="JAX only")

# The conjugate model, in float64 NumPy (the hand computations).
X = np.array([0.9, 1.7, 0.4, 1.2, 2.1, 1.4])
SIGMA = 0.8  # known noise sd
M0, S0 = 0.0, 1.5  # prior N(m0, s0²)


def _posterior(x=X):
    precision = 1 / S0**2 + x.size / SIGMA**2
    var = 1 / precision
    return var * (M0 / S0**2 + x.sum() / SIGMA**2), math.sqrt(var)


def _log_evidence(x=X):
    """The log evidence log p(x), by the chain rule p(x_1) p(x_2 | x_1) ⋯ (running posterior)."""
    m, s, total = M0, S0, 0.0
    for xi in x:
        v = SIGMA**2 + s**2
        total += -0.5 * math.log(2 * math.pi * v) - (xi - m) ** 2 / (2 * v)
        precision = 1 / s**2 + 1 / SIGMA**2
        m, s = (m / s**2 + xi / SIGMA**2) / precision, math.sqrt(1 / precision)
    return total


def _expected_log_lik(m, s, x=X):
    """E_{z ~ N(m, s²)} Σ_i log N(x_i; z, σ²), exactly."""
    return float(
        np.sum(-0.5 * math.log(2 * math.pi * SIGMA**2) - ((x - m) ** 2 + s**2) / (2 * SIGMA**2))
    )


def _normal_kl(m1, s1, m2, s2):
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def _conjugate_log_lik(xp):
    x = asarray(xp, X)

    def log_lik(z):  # (S,) -> (S,): a global posterior, summed over the data inside
        r = x - z[:, None]
        return xp.sum(-0.5 * math.log(2 * math.pi * SIGMA**2) - r * r / (2 * SIGMA**2), axis=-1)

    return log_lik


def _recording(fn, store):
    def wrapped(z):
        store.append(z)
        return fn(z)

    return wrapped


def test_hand_computation_with_the_exact_kl(xp):
    """A batch of 3 Normals: elbo = mean of log p(x|z) over the draws − the closed-form KL."""
    loc, scale = asarray(xp, [0.3, -1.0, 2.0]), asarray(xp, [0.5, 1.2, 0.1])
    x = asarray(xp, [0.0, 1.0, 2.5])
    draws = []
    res = kldiv.elbo(
        _recording(lambda z: -0.5 * (z - x) ** 2, draws),
        D.Normal(loc, scale),
        D.Normal(0.0, 1.0),
        n_samples=50,
        rng=0,
    )
    z = to_numpy(draws[0])
    assert z.shape == (50, 3)
    ll = -0.5 * (z - [0.0, 1.0, 2.5]) ** 2
    kl = [_normal_kl(m, s, 0.0, 1.0) for m, s in [(0.3, 0.5), (-1.0, 1.2), (2.0, 0.1)]]
    assert res.kl_method == "exact"
    assert res.n_samples == 50
    assert_close(res.kl, kl, xp=xp)
    assert_close(res.expected_log_likelihood, ll.mean(0), xp=xp)
    assert_close(res.elbo, ll.mean(0) - kl, xp=xp)
    assert_close(res.kl_stderr, [0.0, 0.0, 0.0], xp=xp)
    assert_close(res.stderr, ll.std(0, ddof=1) / math.sqrt(50), xp=xp)


def test_monte_carlo_kl_from_the_same_draws(xp):
    """kl='monte_carlo': KL = mean(log q(z) − log p(z)) over the very draws of the likelihood."""
    q, prior = D.Normal(asarray(xp, [0.3, -1.0]), asarray(xp, [0.5, 1.2])), D.Normal(0.5, 2.0)
    draws = []
    res = kldiv.elbo(
        _recording(lambda z: -(z**2), draws), q, prior, n_samples=40, kl="monte_carlo", rng=1
    )
    z = to_numpy(draws[0])
    log_ratio = stats_norm_logpdf(z, [0.3, -1.0], [0.5, 1.2]) - stats_norm_logpdf(z, 0.5, 2.0)
    per_draw = -(z**2) - log_ratio
    assert res.kl_method == "monte_carlo"
    assert_close(res.kl, log_ratio.mean(0), xp=xp)
    assert_close(res.kl_stderr, log_ratio.std(0, ddof=1) / math.sqrt(40), xp=xp)
    assert_close(res.elbo, per_draw.mean(0), xp=xp)
    assert_close(res.stderr, per_draw.std(0, ddof=1) / math.sqrt(40), xp=xp)
    est = res.kl_estimate
    assert isinstance(est, kldiv.Estimate)
    assert (est.method, est.n) == ("monte_carlo", 40)


def stats_norm_logpdf(z, m, s):
    m, s = np.asarray(m, dtype=float), np.asarray(s, dtype=float)
    return -0.5 * ((z - m) / s) ** 2 - np.log(s) - 0.5 * math.log(2 * math.pi)


def test_auto_falls_back_when_nothing_is_registered(xp):
    """Normal q against a StudentT prior: no closed form, so 'auto' estimates; 'exact' raises."""
    q, prior = D.Normal(asarray(xp, 0.2), asarray(xp, 0.7)), D.StudentT(3.0, 0.0, 1.0)
    res = kldiv.elbo(lambda z: -(z**2), q, prior, n_samples=8, rng=0)
    assert res.kl_method == "monte_carlo"
    with pytest.raises(kldiv.NoClosedFormError, match=r"KL\(Normal ‖ StudentT\)"):
        kldiv.elbo(lambda z: -(z**2), q, prior, kl="exact", rng=0)


def test_auto_falls_back_when_the_closed_form_does_not_apply(xp):
    """A registered pair that raises NoClosedFormError (Independent(Laplace), MVN): Monte Carlo."""
    q = D.Independent(D.Laplace(asarray(xp, [0.1, -0.2]), asarray(xp, [1.0, 0.5])), 1)
    prior = D.MultivariateNormal(asarray(xp, [0.0, 0.0]), covariance_matrix=asarray(xp, np.eye(2)))
    res = kldiv.elbo(lambda z: -xp.sum(z * z, axis=-1), q, prior, n_samples=8, rng=0)
    assert res.kl_method == "monte_carlo"
    assert res.elbo.shape == ()
    with pytest.raises(kldiv.NoClosedFormError):
        kldiv.elbo(lambda z: -xp.sum(z * z, axis=-1), q, prior, kl="exact", rng=0)


def test_exact_is_chosen_for_registered_pairs(xp):
    """Full-covariance q against a diagonal prior: the registered closed form, stderr 0."""
    loc = asarray(xp, [0.5, -0.5])
    tril = asarray(xp, [[0.7, 0.0], [0.3, 0.4]])
    q = D.MultivariateNormal(loc, scale_tril=tril)
    prior = D.Independent(D.Normal(asarray(xp, [0.0, 0.0]), 1.0), 1)
    res = kldiv.elbo(lambda z: -xp.sum(z * z, axis=-1), q, prior, n_samples=4, rng=0)
    assert res.kl_method == "exact"
    assert_close(res.kl, to_numpy(kldiv.kl_divergence(q, prior)), xp=xp)


def test_elbo_is_log_evidence_minus_kl_to_the_posterior(xp):
    """ELBO(q) = log p(x) − KL(q ‖ posterior), for a q that is not the posterior.

    Checked twice: exactly, with E_q log p(x|z) in closed form and both KLs from
    kldiv; and by kldiv.elbo's Monte Carlo estimate, within 4 of its standard errors.
    """
    m_post, s_post = _posterior()
    m, s = 0.7, 0.5
    log_z = _log_evidence()
    kl_prior = float(kldiv.kl_divergence(D.Normal(m, s), D.Normal(M0, S0)))
    kl_post = float(kldiv.kl_divergence(D.Normal(m, s), D.Normal(m_post, s_post)))
    assert _expected_log_lik(m, s) - kl_prior == pytest.approx(log_z - kl_post, rel=1e-12)
    res = kldiv.elbo(
        _conjugate_log_lik(xp),
        D.Normal(asarray(xp, m), asarray(xp, s)),
        D.Normal(M0, S0),
        n_samples=20_000,
        rng=3,
    )
    assert res.kl_method == "exact"
    assert float(to_numpy(res.kl)) == pytest.approx(kl_prior, rel=1e-12)
    assert abs(float(to_numpy(res.elbo)) - (log_z - kl_post)) < 4 * float(to_numpy(res.stderr))
    assert float(to_numpy(res.stderr)) < 0.05


def test_at_the_posterior_every_draw_gives_the_log_evidence(xp):
    """At q = posterior with the Monte Carlo KL, each draw gives exactly log p(x).

    log p(x|z) + log p(z) − log q(z) = log p(x) for every z, so the ELBO
    estimate equals the log evidence to rounding, with a standard error of 0,
    whatever the draws; with the exact KL it is unbiased around it.
    """
    m_post, s_post = _posterior()
    q = D.Normal(asarray(xp, m_post), asarray(xp, s_post))
    res = kldiv.elbo(
        _conjugate_log_lik(xp), q, D.Normal(M0, S0), n_samples=16, kl="monte_carlo", rng=5
    )
    assert float(to_numpy(res.elbo)) == pytest.approx(_log_evidence(), abs=1e-10)
    assert float(to_numpy(res.stderr)) < 1e-10
    exact = kldiv.elbo(_conjugate_log_lik(xp), q, D.Normal(M0, S0), n_samples=20_000, rng=5)
    assert abs(float(to_numpy(exact.elbo)) - _log_evidence()) < 4 * float(to_numpy(exact.stderr))


def test_amortised_batch(xp):
    """One diagonal-Gaussian q per data point (a VAE encoder's output): per-point ELBO and KL."""
    rng = np.random.default_rng(0)
    mu, scale = rng.normal(size=(5, 3)), rng.uniform(0.3, 1.5, size=(5, 3))
    data = rng.normal(size=(5, 3))
    q = D.Independent(D.Normal(asarray(xp, mu), asarray(xp, scale)), 1)
    prior = D.Independent(D.Normal(asarray(xp, np.zeros(3)), 1.0), 1)
    x = asarray(xp, data)
    draws = []
    res = kldiv.elbo(
        _recording(lambda z: -0.5 * xp.sum((z - x) ** 2, axis=-1), draws),
        q,
        prior,
        n_samples=7,
        rng=0,
    )
    assert draws[0].shape == (7, 5, 3)
    for name in ("elbo", "expected_log_likelihood", "kl", "kl_stderr", "stderr"):
        assert getattr(res, name).shape == (5,), name
    kl = (np.log(1 / scale) + (scale**2 + mu**2) / 2 - 0.5).sum(-1)
    z = to_numpy(draws[0])
    assert_close(res.kl, kl, xp=xp)
    assert_close(res.elbo, (-0.5 * ((z - data) ** 2).sum(-1)).mean(0) - kl, xp=xp)


def test_conditional_prior_broadcasts(xp):
    """A global q against a batch of priors: the batch is the broadcast one."""
    q = D.Normal(asarray(xp, 0.0), asarray(xp, 1.0))
    prior = D.Normal(asarray(xp, [0.0, 1.0, 2.0]), asarray(xp, 1.0))
    res = kldiv.elbo(lambda z: xp.zeros((z.shape[0], 3), dtype=z.dtype), q, prior, rng=0)
    assert_close(res.kl, [0.0, 0.5, 2.0], xp=xp)
    assert_close(res.elbo, [0.0, -0.5, -2.0], xp=xp)
    mc = kldiv.elbo(
        lambda z: xp.zeros((z.shape[0], 3), dtype=z.dtype), q, prior, kl="monte_carlo", rng=0
    )
    assert mc.kl.shape == (3,)


def test_one_draw_has_an_unknown_standard_error(xp):
    """n_samples=1: stderr NaN; kl_stderr 0 with the exact KL and NaN with Monte Carlo."""
    q = D.Normal(asarray(xp, 0.0), asarray(xp, 1.0))
    res = kldiv.elbo(lambda z: -(z**2), q, D.Normal(0.0, 2.0), rng=0)
    assert res.n_samples == 1
    assert math.isnan(float(to_numpy(res.stderr)))
    assert float(to_numpy(res.kl_stderr)) == 0.0
    mc = kldiv.elbo(lambda z: -(z**2), q, D.Normal(0.0, 2.0), kl="monte_carlo", rng=0)
    assert math.isnan(float(to_numpy(mc.kl_stderr)))


@JAX_ONLY
def test_jit_with_either_method(xp):
    """Under jax.jit the method is chosen from the types: exact and Monte Carlo both trace."""
    import jax

    log_lik = _conjugate_log_lik(xp)

    def run(m, s, key, kl):
        return kldiv.elbo(log_lik, D.Normal(m, s), D.Normal(M0, S0), n_samples=64, kl=kl, rng=key)

    for kl in ("exact", "monte_carlo", "auto"):
        jitted = jax.jit(run, static_argnums=3)(0.7, 0.5, jax.random.key(0), kl)
        eager = run(xp.asarray(0.7), xp.asarray(0.5), jax.random.key(0), kl)
        assert (
            jitted.kl_method
            == eager.kl_method
            == ("monte_carlo" if kl == "monte_carlo" else "exact")
        )
        np.testing.assert_allclose(to_numpy(jitted.elbo), to_numpy(eager.elbo), rtol=1e-12)
        np.testing.assert_allclose(to_numpy(jitted.stderr), to_numpy(eager.stderr), rtol=1e-10)


@JAX_ONLY
@pytest.mark.parametrize("kl", ["exact", "monte_carlo"])
def test_jax_gradient_is_finite_and_unbiased(xp, kl):
    """jax.grad of the ELBO, averaged over many draws, is the analytic gradient.

    d/dm ELBO = Σ(x_i − m)/σ² − (m − m0)/s0²;
    d/ds ELBO = −n s/σ² + 1/s − s/s0².
    """
    import jax

    log_lik = _conjugate_log_lik(xp)
    m, s, n_draws = 0.7, 0.5, 40_000

    def value(m, s):
        q = D.Normal(m, s)
        return kldiv.elbo(log_lik, q, D.Normal(M0, S0), n_samples=n_draws, kl=kl, rng=0).elbo

    grad_m, grad_s = jax.jit(jax.grad(value, argnums=(0, 1)))(m, s)
    grad_m, grad_s = float(grad_m), float(grad_s)
    assert math.isfinite(grad_m)
    assert math.isfinite(grad_s)
    expected_m = np.sum(X - m) / SIGMA**2 - (m - M0) / S0**2
    expected_s = -X.size * s / SIGMA**2 + 1 / s - s / S0**2
    # Bounds on the per-draw gradient sd (z = m + s ε; the Monte Carlo KL adds the
    # prior's terms): a ε for m, a ε + b ε² for s, whose sd is at most |a| + √2 |b|.
    precision = X.size / SIGMA**2 + 1 / S0**2
    sd_m = s * precision
    sd_s = abs(np.sum(X - m)) / SIGMA**2 + abs(m - M0) / S0**2 + math.sqrt(2) * s * precision
    assert grad_m == pytest.approx(expected_m, abs=5 * sd_m / math.sqrt(n_draws))
    assert grad_s == pytest.approx(expected_s, abs=5 * sd_s / math.sqrt(n_draws))


def test_repr_shows_the_method():
    """The repr rounds the ELBO to its standard error and names the KL method."""
    res = kldiv.elbo(
        lambda z: -(z**2), D.Normal(0.0, 1.0), D.Normal(0.0, 1.0), n_samples=100, rng=0
    )
    text = repr(res)
    assert text.startswith("ELBO(elbo=-")
    assert "(exact)" in text
    assert "n_samples=100" in text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 0}, "`n_samples` must be an integer >= 1; got 0"),
        ({"n_samples": 2.5}, "`n_samples` must be an integer >= 1"),
        ({"n_samples": True}, "`n_samples` must be an integer >= 1"),
        ({"kl": "analytic"}, r"`kl` must be one of \['auto', 'exact', 'monte_carlo'\]"),
        ({"rng": "seed"}, "`rng` must be"),
    ],
)
def test_bad_options(kwargs, match):
    """Bad options raise KLDivError naming the argument, what was expected and what arrived."""
    with pytest.raises(kldiv.KLDivError, match=match):
        kldiv.elbo(lambda z: -(z**2), D.Normal(0.0, 1.0), D.Normal(0.0, 1.0), **kwargs)


def test_bad_log_likelihood():
    """Not callable, not an array, or the wrong shape: a KLDivError that says what is expected."""
    q, prior = D.Normal(np.zeros(3), 1.0), D.Normal(0.0, 1.0)
    with pytest.raises(kldiv.KLDivError, match="`log_likelihood` must be a callable"):
        kldiv.elbo(np.zeros(3), q, prior)
    with pytest.raises(kldiv.KLDivError, match="must return an array of shape"):
        kldiv.elbo(lambda z: 1.0, q, prior)
    with pytest.raises(kldiv.KLDivError, match=r"shape \(n_samples, \*batch\) = \(4, 3\).*\(4,\)"):
        kldiv.elbo(lambda z: z.sum(-1), q, prior, n_samples=4)
    with pytest.raises(kldiv.KLDivError, match="sum over the data points inside"):
        kldiv.elbo(lambda z: np.zeros((4, 3, 10)), q, prior, n_samples=4)


def test_log_likelihood_of_another_library():
    """A torch tensor from the likelihood of a NumPy q is an error, not a silent conversion."""
    torch = pytest.importorskip("torch")
    with pytest.raises(kldiv.KLDivError, match="same library"):
        kldiv.elbo(lambda z: torch.zeros(z.shape[0]), D.Normal(0.0, 1.0), D.Normal(0.0, 1.0))


def test_q_must_be_reparameterisable():
    """A discrete q (no reparameterised draws) is refused: its ELBO gradient would be wrong."""
    with pytest.raises(kldiv.KLDivError, match="reparameterised samples"):
        kldiv.elbo(lambda z: -(z**2), D.Poisson(np.array([2.0])), D.Poisson(np.array([3.0])), rng=0)


def test_event_shapes_must_match():
    """A 2-d q against a scalar prior: a KLDivError naming both event shapes."""
    q = D.Independent(D.Normal(np.zeros(2), 1.0), 1)
    with pytest.raises(kldiv.KLDivError, match=r"same event shape; got \(2,\)"):
        kldiv.elbo(lambda z: -(z**2), q, D.Normal(0.0, 1.0))


def test_not_a_distribution():
    """The approximate posterior must be a distribution."""
    with pytest.raises(kldiv.KLDivError, match="`q` must be a kldiv distribution"):
        kldiv.elbo(lambda z: -(z**2), [0.0, 1.0], D.Normal(0.0, 1.0))
