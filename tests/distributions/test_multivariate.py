"""Multivariate and structural distributions: checks, derived parameters, edge cases.

The pair table (``cases_multivariate.py``) and the family table
(``families_multivariate.py``) cover values against independent references;
this file covers what they cannot: validation errors, the agreement of the
three MultivariateNormal parameterisations, exact zeros, agreement with
``torch.distributions``, and the structural families' semantics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import kldiv
from kldiv import distributions as D
from kldiv._array_api import to_numpy
from tests._helpers import asarray, assert_close

RNG = np.random.default_rng(11)
KINDS = ("covariance_matrix", "precision_matrix", "scale_tril")


def _spd(batch, dim, shift=0.5):
    a = RNG.standard_normal((*batch, dim, dim))
    return a @ np.swapaxes(a, -1, -2) / dim + shift * np.eye(dim)


LOC = RNG.standard_normal((3, 4))
COV = _spd((3,), 4)
LOC_Q = RNG.standard_normal((3, 4))
COV_Q = _spd((3,), 4, 1.0)


def _kind_value(cov, kind):
    if kind == "covariance_matrix":
        return cov
    if kind == "precision_matrix":
        inverse = np.linalg.inv(cov)
        return (inverse + np.swapaxes(inverse, -1, -2)) / 2
    return np.linalg.cholesky(cov)


def _mvn(xp, loc, cov, kind, **options):
    return D.MultivariateNormal(
        asarray(xp, loc), **{kind: asarray(xp, _kind_value(cov, kind))}, **options
    )


# --- MultivariateNormal: validation ---------------------------------------------------------------


def test_mvn_takes_exactly_one_matrix():
    """None or two of covariance/precision/scale_tril is an error naming what arrived."""
    with pytest.raises(kldiv.KLDivError, match=r"exactly one of .* got none"):
        D.MultivariateNormal(np.zeros(2))
    with pytest.raises(kldiv.KLDivError, match="got `covariance_matrix`, `scale_tril`"):
        D.MultivariateNormal(np.zeros(2), covariance_matrix=np.eye(2), scale_tril=np.eye(2))


def test_mvn_shape_errors():
    """A non-square or mismatched matrix, a scalar loc, or batch shapes that do not broadcast."""
    with pytest.raises(kldiv.KLDivError, match=r"shape \[\.\.\., 3, 3\] to match `loc`"):
        D.MultivariateNormal(np.zeros(3), covariance_matrix=np.eye(2))
    with pytest.raises(kldiv.KLDivError, match="square matrices"):
        D.MultivariateNormal(np.zeros(2), covariance_matrix=np.ones((2, 3)))
    with pytest.raises(kldiv.KLDivError, match="at least one dimension"):
        D.MultivariateNormal(0.0, covariance_matrix=np.eye(1))
    with pytest.raises(kldiv.KLDivError, match="do not broadcast"):
        D.MultivariateNormal(np.zeros((3, 2)), covariance_matrix=np.stack([np.eye(2)] * 2))


@pytest.mark.parametrize("kind", ["covariance_matrix", "precision_matrix"])
def test_mvn_not_positive_definite_names_the_batch_index(xp, kind):
    """A failed Cholesky factorisation is a KLDivError naming the parameter and batch index."""
    matrices = np.stack([np.eye(2), np.array([[1.0, 2.0], [2.0, 1.0]])])
    with pytest.raises(
        kldiv.KLDivError,
        match=rf"`{kind}` of MultivariateNormal must be positive "
        r"definite.*smallest eigenvalue -1.*batch index \(1,\)",
    ):
        D.MultivariateNormal(asarray(xp, np.zeros(2)), **{kind: asarray(xp, matrices)})


def test_mvn_not_positive_definite_without_validation_numpy_still_raises():
    """NumPy cannot factorise it at all: the error is raised even with validation off."""
    with pytest.raises(kldiv.KLDivError, match="positive definite"):
        D.MultivariateNormal(
            np.zeros(2), covariance_matrix=np.array([[1.0, 2.0], [2.0, 1.0]]), validate=False
        )


def test_mvn_asymmetric_or_non_finite_covariance_is_rejected(xp):
    """A covariance matrix must be symmetric and finite."""
    with pytest.raises(kldiv.KLDivError, match=r"must be a symmetric matrix; got .*\|A - A\^T\|"):
        D.MultivariateNormal(
            asarray(xp, np.zeros(2)), covariance_matrix=asarray(xp, [[2.0, 0.5], [0.0, 2.0]])
        )
    with pytest.raises(kldiv.KLDivError, match="non-finite"):
        D.MultivariateNormal(
            asarray(xp, np.zeros(2)),
            covariance_matrix=asarray(xp, [[2.0, math.nan], [math.nan, 2.0]]),
        )


def test_mvn_scale_tril_must_be_a_cholesky_factor(xp):
    """Entries above the diagonal or a non-positive diagonal are errors naming the index."""
    with pytest.raises(kldiv.KLDivError, match="above the diagonal at index"):
        D.MultivariateNormal(asarray(xp, np.zeros(2)), scale_tril=asarray(xp, [[1.0, 1.0], [0, 1]]))
    with pytest.raises(kldiv.KLDivError, match="on the diagonal at index"):
        D.MultivariateNormal(asarray(xp, np.zeros(2)), scale_tril=asarray(xp, [[1.0, 0], [0, -1]]))


def test_mvn_validation_is_skipped_under_jit():
    """Inside jax.jit nothing is read: a non-positive-definite covariance gives NaN."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def kl(cov):
        p = D.MultivariateNormal(jnp.zeros(2), covariance_matrix=cov)
        return kldiv.kl_divergence(p, D.MultivariateNormal(jnp.zeros(2), scale_tril=jnp.eye(2)))

    value = jax.jit(kl)(jnp.asarray([[1.0, 2.0], [2.0, 1.0]]))
    assert np.isnan(float(value))


# --- MultivariateNormal: parameterisations and values ---------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_mvn_derived_parameters_agree(xp, kind):
    """Each parameterisation yields the same covariance, precision, Cholesky factor and moments."""
    d = _mvn(xp, LOC, COV, kind)
    assert d.batch_shape == (3,)
    assert d.event_shape == (4,)
    assert_close(d.covariance_matrix, COV, xp=xp, rtol=1e-10)
    assert_close(d.precision_matrix, np.linalg.inv(COV), xp=xp, rtol=1e-9)
    assert_close(d.scale_tril, np.linalg.cholesky(COV), xp=xp, rtol=1e-10)
    assert_close(d.variance, np.diagonal(COV, axis1=-2, axis2=-1), xp=xp, rtol=1e-10)
    assert_close(d.mean, LOC, xp=xp)


@pytest.mark.parametrize("kind", KINDS)
def test_mvn_kl_is_exactly_zero_for_equal_parameters(xp, apply, kind):
    """KL(P ‖ P) is 0.0 for every parameterisation (not merely close to 0)."""

    def kl(loc, matrix):
        p = D.MultivariateNormal(loc, **{kind: matrix})
        q = D.MultivariateNormal(loc, **{kind: matrix})
        return kldiv.kl_divergence(p, q)

    value = apply(kl, asarray(xp, LOC), asarray(xp, _kind_value(COV, kind)))
    assert np.all(np.abs(to_numpy(value)) <= 1e-30)


@pytest.mark.parametrize("kind_q", KINDS)
@pytest.mark.parametrize("kind_p", KINDS)
def test_mvn_kl_matches_torch_distributions(kind_p, kind_q):
    """Every pair of parameterisations agrees with torch.distributions.kl_divergence."""
    torch = pytest.importorskip("torch")
    td = torch.distributions
    tp = td.MultivariateNormal(torch.tensor(LOC), covariance_matrix=torch.tensor(COV))
    tq = td.MultivariateNormal(torch.tensor(LOC_Q), covariance_matrix=torch.tensor(COV_Q))
    import array_api_compat.torch as txp

    value = kldiv.kl_divergence(_mvn(txp, LOC, COV, kind_p), _mvn(txp, LOC_Q, COV_Q, kind_q))
    np.testing.assert_allclose(value.numpy(), td.kl_divergence(tp, tq).numpy(), rtol=1e-10)


def test_mvn_kl_broadcasts_an_unbatched_prior(xp):
    """A batch of posteriors against one N(0, I) prior gives one value per posterior."""
    p = _mvn(xp, LOC, COV, "scale_tril")
    q = D.MultivariateNormal(asarray(xp, np.zeros(4)), covariance_matrix=asarray(xp, np.eye(4)))
    value = kldiv.kl_divergence(p, q)
    expected = 0.5 * (
        np.trace(COV, axis1=-2, axis2=-1) + np.sum(LOC**2, -1) - 4 - np.linalg.slogdet(COV)[1]
    )
    assert_close(value, expected, xp=xp, rtol=1e-10)


def test_mvn_float32_stays_float32(xp):
    """float32 parameters give a float32 divergence."""
    p = D.MultivariateNormal(
        asarray(xp, LOC, dtype=xp.float32), covariance_matrix=asarray(xp, COV, dtype=xp.float32)
    )
    q = D.MultivariateNormal(
        asarray(xp, LOC_Q, dtype=xp.float32),
        precision_matrix=asarray(xp, np.linalg.inv(COV_Q), dtype=xp.float32),
    )
    value = kldiv.kl_divergence(p, q)
    assert value.dtype == xp.float32


def test_mvn_sample_is_reparameterised_in_torch():
    """Gradients flow from samples to loc and to the covariance."""
    torch = pytest.importorskip("torch")
    loc = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    precision = torch.tensor([[2.0, 0.3], [0.3, 1.0]], dtype=torch.float64, requires_grad=True)
    x = D.MultivariateNormal(loc, precision_matrix=precision).sample((5,), rng=0)
    x.sum().backward()
    assert torch.all(torch.isfinite(precision.grad))
    assert bool(torch.any(precision.grad != 0))
    np.testing.assert_allclose(loc.grad.numpy(), [5.0, 5.0])


# --- LowRankMultivariateNormal ------------------------------------------------------------------

FACTOR = RNG.standard_normal((3, 4, 2))
DIAG = RNG.uniform(0.5, 1.5, (3, 4))
LOWRANK_COV = FACTOR @ np.swapaxes(FACTOR, -1, -2) + DIAG[..., None] * np.eye(4)


def test_lowrank_matches_the_dense_gaussian(xp):
    """log_prob, entropy, covariance, precision (Woodbury) and scale_tril equal the dense MVN's."""
    d = D.LowRankMultivariateNormal(asarray(xp, LOC), asarray(xp, FACTOR), asarray(xp, DIAG))
    dense = _mvn(np, LOC, LOWRANK_COV, "covariance_matrix")
    x = RNG.standard_normal((5, 3, 4))
    assert_close(d.log_prob(asarray(xp, x)), dense.log_prob(x), xp=xp, rtol=1e-10)
    assert_close(d.entropy(), dense.entropy(), xp=xp, rtol=1e-12)
    assert_close(d.covariance_matrix, LOWRANK_COV, xp=xp, rtol=1e-12)
    assert_close(d.precision_matrix, np.linalg.inv(LOWRANK_COV), xp=xp, rtol=1e-9)
    assert_close(d.scale_tril, np.linalg.cholesky(LOWRANK_COV), xp=xp, rtol=1e-10)
    assert_close(d.variance, np.diagonal(LOWRANK_COV, axis1=-2, axis2=-1), xp=xp, rtol=1e-12)


def test_lowrank_kl_is_exactly_zero_for_equal_parameters(xp, apply):
    """KL(P ‖ P) is 0.0 for low-rank Gaussians."""

    def kl(loc, factor, diagonal):
        p = D.LowRankMultivariateNormal(loc, factor, diagonal)
        return kldiv.kl_divergence(p, D.LowRankMultivariateNormal(loc, factor, diagonal))

    value = apply(kl, asarray(xp, LOC), asarray(xp, FACTOR), asarray(xp, DIAG))
    assert np.all(to_numpy(value) == 0.0)


def test_lowrank_shape_errors():
    """cov_factor and cov_diag must match loc's event size."""
    with pytest.raises(kldiv.KLDivError, match=r"`cov_factor` .* shape \[\.\.\., 3, rank\]"):
        D.LowRankMultivariateNormal(np.zeros(3), np.ones((2, 1)), np.ones(3))
    with pytest.raises(kldiv.KLDivError, match="`cov_diag`"):
        D.LowRankMultivariateNormal(np.zeros(3), np.ones((3, 1)), np.ones(2))
    with pytest.raises(kldiv.KLDivError, match="`cov_diag` of LowRankMultivariateNormal must hold"):
        D.LowRankMultivariateNormal(np.zeros(3), np.ones((3, 1)), np.array([1.0, 0.0, 1.0]))


# --- Independent --------------------------------------------------------------------------------


def test_independent_moves_batch_axes_into_the_event(xp):
    """Batch and event shapes, summed log_prob and entropy, as torch.distributions.Independent."""
    base = D.Normal(asarray(xp, RNG.standard_normal((2, 3, 4))), asarray(xp, np.ones((2, 3, 4))))
    d = D.Independent(base, 2)
    assert d.batch_shape == (2,)
    assert d.event_shape == (3, 4)
    x = asarray(xp, RNG.standard_normal((5, 2, 3, 4)))
    assert_close(d.log_prob(x), to_numpy(base.log_prob(x)).sum((-2, -1)), xp=xp)
    assert_close(d.entropy(), to_numpy(base.entropy()).sum((-2, -1)), xp=xp)
    assert tuple(d.sample((7,), rng=0).shape) == (7, 2, 3, 4)


def test_independent_rejects_bad_ndims():
    """reinterpreted_batch_ndims must lie between 0 and the base's batch rank."""
    with pytest.raises(kldiv.KLDivError, match=r"whole number in \[0, 1\]; got 2"):
        D.Independent(D.Normal(np.zeros(3), 1.0), 2)
    with pytest.raises(kldiv.KLDivError, match="must be a kldiv distribution"):
        D.Independent("normal", 1)


def test_independent_kl_needs_equal_reinterpreted_ndims():
    """Different reinterpreted_batch_ndims have no closed form (NoClosedFormError, as torch)."""
    p = D.Independent(D.Independent(D.Normal(np.zeros((2, 3)), 1.0), 1), 1)
    q = D.Independent(D.Normal(np.zeros((2, 3)), 2.0), 2)
    assert p.event_shape == q.event_shape == (2, 3)
    with pytest.raises(kldiv.NoClosedFormError, match="got 1 for `p` and 2 for `q`"):
        kldiv.kl_divergence(p, q)


@pytest.mark.parametrize("other", ["mvn", "lowrank"])
def test_independent_of_a_non_normal_against_a_gaussian_has_no_closed_form(other):
    """Independent(Gamma) against a multivariate Gaussian raises NoClosedFormError naming it."""
    ind = D.Independent(D.Gamma(np.ones(3), np.ones(3)), 1)
    if other == "mvn":
        gaussian = D.MultivariateNormal(np.zeros(3), covariance_matrix=np.eye(3))
    else:
        gaussian = D.LowRankMultivariateNormal(np.zeros(3), np.ones((3, 1)), np.ones(3))
    for p, q, role in ((ind, gaussian, "p"), (gaussian, ind, "q")):
        with pytest.raises(kldiv.NoClosedFormError, match=rf"`{role}` is Independent\(Gamma"):
            kldiv.kl_divergence(p, q)


def test_independent_normal_against_mvn_equals_diagonal_mvn(xp, apply):
    """Independent(Normal, 1) gives the same KL as the MVN with the diagonal covariance, jitted."""
    scale = RNG.uniform(0.5, 2.0, (3, 4))
    diag_cov = (scale**2)[..., None] * np.eye(4)

    def kl_both(loc, scale, loc_q, cov_q):
        ind = D.Independent(D.Normal(loc, scale), 1)
        mvn = D.MultivariateNormal(loc_q, covariance_matrix=cov_q)
        return kldiv.kl_divergence(ind, mvn), kldiv.kl_divergence(mvn, ind)

    forward, backward = apply(
        kl_both, asarray(xp, LOC), asarray(xp, scale), asarray(xp, LOC_Q), asarray(xp, COV_Q)
    )
    dense_p = _mvn(np, LOC, diag_cov, "covariance_matrix")
    dense_q = _mvn(np, LOC_Q, COV_Q, "covariance_matrix")
    assert_close(forward, kldiv.kl_divergence(dense_p, dense_q), xp=xp, rtol=1e-10)
    assert_close(backward, kldiv.kl_divergence(dense_q, dense_p), xp=xp, rtol=1e-10)


# --- Deterministic ------------------------------------------------------------------------------


def test_deterministic_is_a_point_mass(xp):
    """log_prob 0 at loc and -inf elsewhere; zero entropy and variance; samples equal loc."""
    d = D.Deterministic(asarray(xp, [0.5, -1.0]))
    assert d.is_discrete
    assert d.batch_shape == (2,)
    assert d.event_shape == ()
    lp = to_numpy(d.log_prob(asarray(xp, [[0.5, -1.0], [0.5, 0.0]])))
    np.testing.assert_array_equal(lp, [[0.0, 0.0], [0.0, -np.inf]])
    assert_close(d.entropy(), [0.0, 0.0], xp=xp)
    assert_close(d.variance, [0.0, 0.0], xp=xp)
    assert_close(d.sample((3,), rng=0), np.tile([0.5, -1.0], (3, 1)), xp=xp)


def test_delta_is_deterministic_with_event_ndims():
    """Delta is the same class; event_ndims=1 makes a point in R^d."""
    assert D.Delta is D.Deterministic
    d = D.Delta(np.array([[0.0, 1.0], [2.0, 3.0]]), event_ndims=1)
    assert d.batch_shape == (2,)
    assert d.event_shape == (2,)
    np.testing.assert_array_equal(d.log_prob(np.array([0.0, 1.0])), [0.0, -np.inf])
    with pytest.raises(kldiv.KLDivError, match=r"`event_ndims` of Deterministic"):
        D.Delta(np.zeros(2), event_ndims=2)


def test_deterministic_against_continuous_is_infinite_not_minus_log_density():
    """KL(δ_a ‖ N) is +inf (Q gives the point no mass), not Pyro/TFP's -log q(a)."""
    value = kldiv.kl_divergence(D.Deterministic(0.0), D.Normal(0.0, 1.0))
    assert float(value) == math.inf
    assert float(-D.Normal(0.0, 1.0).log_prob(0.0)) == pytest.approx(0.5 * math.log(2 * math.pi))


def test_deterministic_kl_gradient_is_zero_where_equal():
    """KL(δ_a ‖ δ_a) = 0 with a zero (not NaN) gradient."""
    torch = pytest.importorskip("torch")
    loc = torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True)
    kldiv.kl_divergence(D.Deterministic(loc), D.Deterministic(loc.detach())).sum().backward()
    np.testing.assert_array_equal(loc.grad.numpy(), [0.0, 0.0])


# --- MixtureSameFamily --------------------------------------------------------------------------

needs_categorical = pytest.mark.skipif(
    not hasattr(D, "Categorical"), reason="Categorical is not available yet"
)
MIX_PROBS = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
MIX_LOC = np.array([[-2.0, 0.0, 1.5], [-1.0, 1.0, 3.0]])
MIX_SCALE = np.array([[0.5, 1.0, 0.7], [1.2, 0.4, 0.9]])


def _mixture(xp):
    return D.MixtureSameFamily(
        D.Categorical(probs=asarray(xp, MIX_PROBS)),
        D.Normal(asarray(xp, MIX_LOC), asarray(xp, MIX_SCALE)),
    )


@needs_categorical
def test_mixture_has_no_closed_form():
    """kl_divergence raises NoClosedFormError for a mixture, on either side."""
    mix = _mixture(np)
    for p, q in ((mix, mix), (mix, D.Normal(0.0, 1.0)), (D.Normal(0.0, 1.0), mix)):
        with pytest.raises(kldiv.NoClosedFormError, match="MixtureSameFamily"):
            kldiv.kl_divergence(p, q)


@needs_categorical
def test_mixture_log_prob_mean_variance(xp):
    """log_prob by log-sum-exp, mean and variance by total variance, against NumPy."""
    from scipy import stats

    mix = _mixture(xp)
    assert mix.batch_shape == (2,)
    assert mix.event_shape == ()
    x = np.array([[-1.0, 0.5], [2.0, 3.5]])
    expected = np.log(np.sum(MIX_PROBS * stats.norm.pdf(x[..., None], MIX_LOC, MIX_SCALE), -1))
    assert_close(mix.log_prob(asarray(xp, x)), expected, xp=xp, rtol=1e-12)
    mean = np.sum(MIX_PROBS * MIX_LOC, -1)
    var = np.sum(MIX_PROBS * (MIX_SCALE**2 + (MIX_LOC - mean[:, None]) ** 2), -1)
    assert_close(mix.mean, mean, xp=xp, rtol=1e-12)
    assert_close(mix.variance, var, xp=xp, rtol=1e-12)


@needs_categorical
def test_mixture_of_vectors_samples_and_log_prob():
    """Components with an event shape: samples have it, log_prob sums over it, moments agree."""
    weights = np.array([0.3, 0.7])
    component = D.Independent(D.Normal(np.array([[0.0, 0.0], [3.0, -1.0]]), 0.5), 1)
    mix = D.MixtureSameFamily(D.Categorical(probs=weights), component)
    assert mix.batch_shape == ()
    assert mix.event_shape == (2,)
    x = mix.sample((20000,), rng=np.random.default_rng(0))
    assert x.shape == (20000, 2)
    np.testing.assert_allclose(x.mean(0), mix.mean, atol=0.05)
    np.testing.assert_allclose(x.var(0), mix.variance, rtol=0.05)
    point = np.array([0.1, -0.2])
    expected = np.log(np.sum(weights * np.exp(component.log_prob(point[None, :]))))
    np.testing.assert_allclose(mix.log_prob(point), expected, rtol=1e-12)


@needs_categorical
def test_mixture_rejects_mismatched_components():
    """The number of categories must equal the components' last batch axis."""
    with pytest.raises(kldiv.KLDivError, match=r"3 categories but .* 2 components"):
        D.MixtureSameFamily(D.Categorical(probs=np.ones(3) / 3), D.Normal(np.zeros(2), 1.0))
    with pytest.raises(kldiv.KLDivError, match="must be a Categorical"):
        D.MixtureSameFamily(D.Normal(0.0, 1.0), D.Normal(np.zeros(2), 1.0))


# --- Dirichlet and Wishart ----------------------------------------------------------------------


def test_dirichlet_log_prob_on_the_boundary(xp):
    """Zero entries: finite where alpha = 1, +inf where alpha < 1; off the simplex: -inf."""
    d = D.Dirichlet(asarray(xp, [[1.0, 2.0, 3.0], [0.5, 2.0, 3.0]]))
    lp = to_numpy(d.log_prob(asarray(xp, [0.0, 0.4, 0.6])))
    assert np.isfinite(lp[0])
    assert lp[1] == np.inf
    lp = to_numpy(d.log_prob(asarray(xp, [0.5, 0.6, -0.1])))
    np.testing.assert_array_equal(lp, [-np.inf, -np.inf])


def test_dirichlet_kl_is_exactly_zero_for_equal_parameters(xp, apply):
    """KL(P ‖ P) is 0.0."""
    alpha = asarray(xp, [[0.5, 2.0, 3.0], [1.5, 1.0, 7.0]])
    value = apply(lambda a: kldiv.kl_divergence(D.Dirichlet(a), D.Dirichlet(a)), alpha)
    assert np.all(to_numpy(value) == 0.0)


def test_wishart_1x1_is_the_gamma_law(xp):
    """For p = 1, Wishart(df, s) has Gamma(df/2, rate 1/(2s))'s log_prob, entropy and KL."""
    df_p, s_p, df_q, s_q = np.array([3.0, 6.5]), np.array([0.7, 1.5]), np.array([4.5, 3.0]), 2.0
    wp = D.Wishart(asarray(xp, df_p), covariance_matrix=asarray(xp, s_p[:, None, None]))
    wq = D.Wishart(asarray(xp, df_q), scale_tril=asarray(xp, np.full((1, 1), math.sqrt(s_q))))
    gp = D.Gamma(df_p / 2, 1 / (2 * s_p))
    gq = D.Gamma(df_q / 2, 1 / (2 * s_q))
    x = np.array([0.3, 2.5])
    assert_close(wp.log_prob(asarray(xp, x[:, None, None])), gp.log_prob(x), xp=xp, rtol=1e-12)
    assert_close(wp.entropy(), gp.entropy(), xp=xp, rtol=1e-12)
    assert_close(kldiv.kl_divergence(wp, wq), kldiv.kl_divergence(gp, gq), xp=xp, rtol=1e-10)


def test_wishart_checks_df_and_matrices():
    """The degrees of freedom must exceed p - 1; matrices follow the MultivariateNormal checks."""
    with pytest.raises(kldiv.KLDivError, match="`df` of Wishart must hold finite numbers > 2"):
        D.Wishart(2.0, covariance_matrix=np.eye(3))
    with pytest.raises(kldiv.KLDivError, match="`precision_matrix` of Wishart must be positive"):
        D.Wishart(5.0, precision_matrix=-np.eye(3))
    with pytest.raises(kldiv.KLDivError, match="exactly one"):
        D.Wishart(5.0)


@pytest.mark.parametrize("kind", KINDS)
def test_wishart_kl_is_exactly_zero_for_equal_parameters(xp, apply, kind):
    """KL(P ‖ P) is 0.0 for every parameterisation."""

    def kl(df, matrix):
        return kldiv.kl_divergence(D.Wishart(df, **{kind: matrix}), D.Wishart(df, **{kind: matrix}))

    value = apply(kl, asarray(xp, [4.0, 9.0, 5.5]), asarray(xp, _kind_value(COV, kind)))
    assert np.all(np.abs(to_numpy(value)) <= 1e-30)


def test_wishart_kl_matches_torch_distributions():
    """Wishart log_prob, entropy, variance agree with torch.distributions.Wishart."""
    torch = pytest.importorskip("torch")
    df = np.array([5.0, 6.0, 9.0])
    tw = torch.distributions.Wishart(torch.tensor(df), covariance_matrix=torch.tensor(COV))
    w = D.Wishart(df, precision_matrix=np.linalg.inv(COV))
    x = _spd((3,), 4, 0.3)
    np.testing.assert_allclose(w.log_prob(x), tw.log_prob(torch.tensor(x)).numpy(), rtol=1e-10)
    np.testing.assert_allclose(w.entropy(), tw.entropy().numpy(), rtol=1e-10)
    np.testing.assert_allclose(w.variance, tw.variance.numpy(), rtol=1e-8)
