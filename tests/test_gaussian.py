"""Closed-form Gaussian KL (diagonal and full covariance) on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import kldiv
from kldiv._array_api import to_numpy
from kldiv._gaussian import (
    _solve_lower_triangular,
    diagonal_gaussian_kl,
    full_covariance_gaussian_kl,
)
from tests._helpers import asarray, assert_close

torch = pytest.importorskip("torch")
from torch.distributions import (  # noqa: E402
    MultivariateNormal,
    Normal,
    kl_divergence,
)


def _diagonal_case(rng, shape, prior_shape=None):
    mu, logvar = rng.normal(size=shape), rng.normal(scale=0.8, size=shape)
    if prior_shape is None:
        return mu, logvar, None, None
    return mu, logvar, rng.normal(size=prior_shape), rng.normal(scale=0.8, size=prior_shape)


def _torch_diagonal_kl(mu, logvar, prior_mu=None, prior_logvar=None):
    """torch.distributions' Normal–Normal KL in float64, as a NumPy array."""
    prior_mu = np.zeros(1) if prior_mu is None else prior_mu
    prior_logvar = np.zeros(1) if prior_logvar is None else prior_logvar
    p = Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar)))
    q = Normal(torch.tensor(prior_mu), torch.tensor(np.exp(0.5 * prior_logvar)))
    return kl_divergence(p, q).numpy()


def _random_scale_tril(rng, shape, k):
    """Lower Cholesky factors of random positive-definite matrices."""
    lower = np.tril(rng.normal(scale=0.5, size=(*shape, k, k)), k=-1)
    diag = np.exp(rng.normal(scale=0.4, size=(*shape, k)))
    return lower + diag[..., None] * np.eye(k)


def _torch_full_kl(mu, scale_tril, prior_mu, prior_scale_tril):
    p = MultivariateNormal(torch.tensor(mu), scale_tril=torch.tensor(scale_tril))
    q = MultivariateNormal(torch.tensor(prior_mu), scale_tril=torch.tensor(prior_scale_tril))
    return kl_divergence(p, q).numpy()


# --- diagonal -----------------------------------------------------------------


def test_diagonal_standard_normal_prior_matches_torch(xp, apply):
    """Against N(0, 1): torch.distributions' Normal–Normal KL, elementwise."""
    mu, logvar, _, _ = _diagonal_case(np.random.default_rng(0), (5, 3))
    got = apply(diagonal_gaussian_kl, asarray(xp, mu), asarray(xp, logvar))
    assert_close(got, _torch_diagonal_kl(mu, logvar), xp=xp, dtype=xp.float64)


def test_diagonal_learned_prior_matches_torch_with_broadcasting(xp, apply):
    """A learned prior of shape (3,) broadcasts against a (4, 3) posterior."""
    mu, logvar, m, w = _diagonal_case(np.random.default_rng(1), (4, 3), (3,))
    arrays = [asarray(xp, a) for a in (mu, logvar, m, w)]
    got = apply(diagonal_gaussian_kl, *arrays)
    assert_close(got, _torch_diagonal_kl(mu, logvar, m, w), xp=xp, dtype=xp.float64)
    assert tuple(got.shape) == (4, 3)


def test_diagonal_prior_mean_only(xp, apply):
    """`prior_logvar` None is unit variance, whatever the prior mean."""
    mu, logvar, m, _ = _diagonal_case(np.random.default_rng(2), (6,), (6,))
    got = apply(
        lambda a, b, c: diagonal_gaussian_kl(a, b, prior_mu=c),
        asarray(xp, mu),
        asarray(xp, logvar),
        asarray(xp, m),
    )
    assert_close(got, _torch_diagonal_kl(mu, logvar, m, np.zeros(6)), xp=xp)


def test_diagonal_hand_value(xp, apply):
    """½(e^v + μ² − 1 − v) at μ = 1, v = log 2: ½(2 + 1 − 1 − log 2)."""
    got = apply(diagonal_gaussian_kl, asarray(xp, [1.0]), asarray(xp, [math.log(2.0)]))
    assert_close(got, [0.5 * (2.0 - math.log(2.0))], xp=xp)


def test_diagonal_matches_numerical_integration():
    """∫ p log(p/q) dx by scipy.integrate.quad for N(0.3, 0.7²) ‖ N(-0.5, 1.6²)."""
    p, q = stats.norm(0.3, 0.7), stats.norm(-0.5, 1.6)
    numeric, _ = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -15, 15)
    exact = diagonal_gaussian_kl(0.3, 2 * math.log(0.7), -0.5, 2 * math.log(1.6))
    assert float(exact) == pytest.approx(numeric, rel=1e-9)


def test_diagonal_identical_is_exactly_zero(xp, apply):
    """KL(p ‖ p) = 0 exactly, not a rounding residue of exp(v) − 1 − v."""
    mu, logvar, _, _ = _diagonal_case(np.random.default_rng(3), (4, 5))
    mu, logvar = asarray(xp, mu), asarray(xp, logvar)
    assert np.all(to_numpy(apply(diagonal_gaussian_kl, mu, logvar, mu, logvar)) == 0.0)


def test_diagonal_accurate_for_close_distributions(xp, apply):
    """Log-variances 1e-6 apart in float32: the expm1 form keeps the ~d²/2 value."""
    logvar = asarray(xp, [0.3], dtype=xp.float32)
    prior = asarray(xp, [0.3 - 1e-3], dtype=xp.float32)
    zero = asarray(xp, [0.0], dtype=xp.float32)
    got = apply(diagonal_gaussian_kl, zero, logvar, zero, prior)
    d = float(to_numpy(logvar)[0]) - float(to_numpy(prior)[0])
    assert_close(got, [0.5 * (math.expm1(d) - d)], xp=xp, dtype=xp.float32, rtol=1e-3)


def test_diagonal_nonnegative(xp, apply):
    """KL ≥ 0 on random pairs."""
    arrays = _diagonal_case(np.random.default_rng(4), (50, 4), (50, 4))
    got = apply(diagonal_gaussian_kl, *[asarray(xp, a) for a in arrays])
    assert np.all(to_numpy(got) >= 0.0)


def test_diagonal_float32_stays_float32(xp, apply):
    """float32 in, float32 out."""
    mu = asarray(xp, [0.5, -1.0], dtype=xp.float32)
    got = apply(diagonal_gaussian_kl, mu, mu)
    assert got.dtype == xp.float32


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_diagonal_half_precision_computed_in_float32(dtype):
    """Half-precision inputs give a float32 result (torch)."""
    half = getattr(torch, dtype)
    mu, logvar = torch.tensor([0.5, -1.0], dtype=half), torch.tensor([0.1, -0.3], dtype=half)
    got = diagonal_gaussian_kl(mu, logvar)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, diagonal_gaussian_kl(mu.float(), logvar.float()))


def test_diagonal_explicit_namespace(xp):
    """`xp=` skips inference and still unifies the dtypes."""
    mu = asarray(xp, [1.0], dtype=xp.float32)
    got = diagonal_gaussian_kl(mu, asarray(xp, [math.log(2.0)]), xp=xp)
    assert got.dtype == xp.float64
    assert_close(got, [0.5 * (2.0 - math.log(2.0))], xp=xp)


def test_diagonal_shape_mismatch_is_an_error(xp):
    """Shapes that do not broadcast name the arguments."""
    with pytest.raises(kldiv.KLDivError, match=r"`mu` \(3,\), `logvar` \(2,\)"):
        diagonal_gaussian_kl(asarray(xp, [0.0, 1.0, 2.0]), asarray(xp, [0.0, 1.0]))


# --- full covariance ----------------------------------------------------------


def test_full_matches_torch_multivariate_normal(xp, apply):
    """Batched random PD covariances against torch's MultivariateNormal KL."""
    rng = np.random.default_rng(5)
    mu, m = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    lower, prior = _random_scale_tril(rng, (6,), 4), _random_scale_tril(rng, (6,), 4)
    got = apply(full_covariance_gaussian_kl, *[asarray(xp, a) for a in (mu, lower, m, prior)])
    assert_close(
        got, _torch_full_kl(mu, lower, m, prior), xp=xp, dtype=xp.float64, rtol=1e-9, atol=1e-12
    )


def test_full_standard_normal_prior_matches_torch(xp, apply):
    """Against N(0, I), with no prior given."""
    rng = np.random.default_rng(6)
    mu, lower = rng.normal(size=(2, 3, 5)), _random_scale_tril(rng, (2, 3), 5)
    got = apply(full_covariance_gaussian_kl, asarray(xp, mu), asarray(xp, lower))
    expected = _torch_full_kl(mu, lower, np.zeros(5), np.eye(5))
    assert_close(got, expected, xp=xp, rtol=1e-9, atol=1e-12)
    assert tuple(got.shape) == (2, 3)


def test_full_broadcasts_batch_dims(xp, apply):
    """A shared (k,) mean and (k, k) factor against a (2, 3) batch of priors."""
    rng = np.random.default_rng(7)
    mu, lower = rng.normal(size=(3,)), _random_scale_tril(rng, (), 3)
    m, prior = rng.normal(size=(2, 1, 3)), _random_scale_tril(rng, (3,), 3)
    got = apply(full_covariance_gaussian_kl, *[asarray(xp, a) for a in (mu, lower, m, prior)])
    expected = _torch_full_kl(
        np.broadcast_to(mu, (2, 3, 3)).copy(),
        np.broadcast_to(lower, (2, 3, 3, 3)).copy(),
        np.broadcast_to(m, (2, 3, 3)).copy(),
        np.broadcast_to(prior, (2, 3, 3, 3)).copy(),
    )
    assert tuple(got.shape) == (2, 3)
    assert_close(got, expected, xp=xp, rtol=1e-9, atol=1e-12)


def test_full_larger_dimension(xp, apply):
    """Dimension k = 24: the forward substitution stays accurate."""
    rng = np.random.default_rng(8)
    mu, m = rng.normal(size=(2, 24)), rng.normal(size=(2, 24))
    lower, prior = _random_scale_tril(rng, (2,), 24), _random_scale_tril(rng, (2,), 24)
    got = apply(full_covariance_gaussian_kl, *[asarray(xp, a) for a in (mu, lower, m, prior)])
    assert_close(got, _torch_full_kl(mu, lower, m, prior), xp=xp, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("with_prior", [False, True])
def test_full_equals_diagonal_for_diagonal_factors(xp, apply, with_prior):
    """Diagonal Cholesky factors: the full form is the diagonal form summed."""
    rng = np.random.default_rng(9)
    mu, logvar, m, w = _diagonal_case(rng, (4, 3), (4, 3))
    lower = np.exp(0.5 * logvar)[..., None] * np.eye(3)
    prior = np.exp(0.5 * w)[..., None] * np.eye(3)
    if with_prior:
        full = apply(full_covariance_gaussian_kl, *[asarray(xp, a) for a in (mu, lower, m, prior)])
        diagonal = apply(diagonal_gaussian_kl, *[asarray(xp, a) for a in (mu, logvar, m, w)])
    else:
        full = apply(full_covariance_gaussian_kl, asarray(xp, mu), asarray(xp, lower))
        diagonal = apply(diagonal_gaussian_kl, asarray(xp, mu), asarray(xp, logvar))
    assert_close(full, to_numpy(diagonal).sum(axis=-1), xp=xp, rtol=1e-12, atol=1e-14)


def test_full_identical_is_zero(xp, apply):
    """KL(p ‖ p) = 0 up to the rounding of the solve's off-diagonal (squared)."""
    rng = np.random.default_rng(10)
    mu, lower = rng.normal(size=(3, 4)), _random_scale_tril(rng, (3,), 4)
    mu, lower = asarray(xp, mu), asarray(xp, lower)
    got = to_numpy(apply(full_covariance_gaussian_kl, mu, lower, mu, lower))
    assert np.all(np.abs(got) < 1e-25)


def test_full_nonnegative(xp, apply):
    """KL ≥ 0 on random pairs."""
    rng = np.random.default_rng(11)
    arrays = (
        rng.normal(size=(20, 3)),
        _random_scale_tril(rng, (20,), 3),
        rng.normal(size=(20, 3)),
        _random_scale_tril(rng, (20,), 3),
    )
    got = apply(full_covariance_gaussian_kl, *[asarray(xp, a) for a in arrays])
    assert np.all(to_numpy(got) >= 0.0)


def test_solve_lower_triangular_broadcasts(xp):
    """The per-backend dispatcher solves L X = B with broadcast batch dims."""
    rng = np.random.default_rng(12)
    lower, b = _random_scale_tril(rng, (3, 1), 4), rng.normal(size=(5, 4, 2))
    got = _solve_lower_triangular(asarray(xp, lower), asarray(xp, b), xp=xp)
    assert tuple(got.shape) == (3, 5, 4, 2)
    assert_close(got, np.linalg.solve(lower, b), xp=xp, rtol=1e-10, atol=1e-12)


def test_full_float32_and_half(xp, apply):
    """float32 stays float32; torch half precision is computed in float32."""
    rng = np.random.default_rng(13)
    mu, lower = rng.normal(size=(2, 3)), _random_scale_tril(rng, (2,), 3)
    got = apply(
        full_covariance_gaussian_kl,
        asarray(xp, mu, dtype=xp.float32),
        asarray(xp, lower, dtype=xp.float32),
    )
    assert got.dtype == xp.float32
    expected = _torch_full_kl(mu, lower, np.zeros(3), np.eye(3))
    assert_close(got, expected, xp=xp, rtol=1e-5, atol=1e-6)
    if xp.__name__.endswith("torch"):
        half = full_covariance_gaussian_kl(
            torch.tensor(mu, dtype=torch.bfloat16), torch.tensor(lower, dtype=torch.bfloat16)
        )
        assert half.dtype == torch.float32


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (
            0.0,
            r"`scale_tril` must be a Cholesky factor.*got 0.0 on the diagonal at index \(1, 1, 1\)",
        ),
        (-2.0, r"got -2.0 on the diagonal"),
        (math.nan, r"got nan on the diagonal"),
        (math.inf, r"got inf on the diagonal"),
    ],
)
def test_non_positive_diagonal_is_an_error(xp, bad, match):
    """A zero, negative, NaN or infinite diagonal entry of L raises, naming `scale_tril`."""
    lower = np.tile(np.eye(3), (2, 1, 1))
    lower[1, 1, 1] = bad
    with pytest.raises(kldiv.KLDivError, match=match):
        full_covariance_gaussian_kl(asarray(xp, np.zeros((2, 3))), asarray(xp, lower))


def test_prior_factor_is_checked_too(xp):
    """The prior's factor is validated under its own name."""
    mu, lower = asarray(xp, np.zeros(2)), asarray(xp, np.eye(2))
    prior = asarray(xp, [[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(kldiv.KLDivError, match="`prior_scale_tril` must be a Cholesky factor"):
        full_covariance_gaussian_kl(mu, lower, mu, prior)


def test_entry_above_diagonal_is_an_error(xp):
    """A non-zero above the diagonal raises; validate=False reads the lower triangle only."""
    mu = asarray(xp, np.zeros(2))
    upper = asarray(xp, [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(kldiv.KLDivError, match=r"got 0.5 above the diagonal at index \(0, 1\)"):
        full_covariance_gaussian_kl(mu, upper)
    got = full_covariance_gaussian_kl(mu, upper, mu, upper, validate=False)
    assert_close(got, [0.0], xp=xp)


def test_validation_skipped_when_traced():
    """Under jax.jit the checks cannot read values: no error, a NaN result instead."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    got = jax.jit(full_covariance_gaussian_kl)(jnp.zeros(2), -jnp.eye(2))
    assert np.isnan(np.asarray(got))


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ((np.zeros(3), np.ones((3, 2))), r"`scale_tril` must have shape \[\.\.\., 3, 3\]"),
        ((np.zeros(3), np.eye(3), np.zeros(2)), r"`prior_mu` must have 3 entries along the last"),
        ((np.zeros((2, 3)), np.tile(np.eye(3), (4, 1, 1))), "batch shapes .* do not broadcast"),
        ((np.zeros(()), np.eye(1)), "`mu` must have at least one dimension"),
    ],
    ids=["square", "prior-mu-length", "batch", "scalar-mu"],
)
def test_full_shape_errors(arrays, match):
    """Shape mismatches name the argument and the expected shape."""
    with pytest.raises(kldiv.KLDivError, match=match):
        full_covariance_gaussian_kl(*arrays)


# --- gradients ----------------------------------------------------------------


def test_diagonal_gradients_match_torch_distributions():
    """Autograd through the core equals autograd through torch.distributions."""
    rng = np.random.default_rng(14)
    arrays = [torch.tensor(a, requires_grad=True) for a in _diagonal_case(rng, (4, 3), (4, 3))]
    diagonal_gaussian_kl(*arrays).sum().backward()
    ours = [a.grad.clone() for a in arrays]
    for a in arrays:
        a.grad = None
    mu, logvar, m, w = arrays
    kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(m, (0.5 * w).exp())).sum().backward()
    for a, grad in zip(arrays, ours, strict=True):
        assert torch.isfinite(grad).all()
        torch.testing.assert_close(grad, a.grad)


def test_full_gradients_match_torch_distributions():
    """Gradients w.r.t. both means and both factors match torch's MultivariateNormal KL."""
    rng = np.random.default_rng(15)
    values = (
        rng.normal(size=(3, 4)),
        _random_scale_tril(rng, (3,), 4),
        rng.normal(size=(3, 4)),
        _random_scale_tril(rng, (3,), 4),
    )
    arrays = [torch.tensor(a, requires_grad=True) for a in values]
    full_covariance_gaussian_kl(*arrays).sum().backward()
    ours = [a.grad.clone() for a in arrays]
    for a in arrays:
        a.grad = None
    mu, lower, m, prior = arrays
    p = MultivariateNormal(mu, scale_tril=lower)
    kl_divergence(p, MultivariateNormal(m, scale_tril=prior)).sum().backward()
    for a, grad in zip(arrays, ours, strict=True):
        assert torch.isfinite(grad).all()
        torch.testing.assert_close(torch.tril(grad), torch.tril(a.grad))


def test_full_gradcheck():
    """Finite differences agree with autograd in float64 (torch)."""
    rng = np.random.default_rng(16)
    values = (
        rng.normal(size=(2, 3)),
        _random_scale_tril(rng, (2,), 3),
        rng.normal(size=(3,)),
        _random_scale_tril(rng, (), 3),
    )
    arrays = tuple(torch.tensor(a, requires_grad=True) for a in values)
    assert torch.autograd.gradcheck(
        lambda *a: full_covariance_gaussian_kl(*a, validate=False), arrays
    )


def test_jax_gradients_are_finite_and_jittable():
    """jax.grad of both forms, jitted, is finite and matches torch's."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    rng = np.random.default_rng(17)
    mu, lower = rng.normal(size=(2, 3)), _random_scale_tril(rng, (2,), 3)
    m, prior = rng.normal(size=(2, 3)), _random_scale_tril(rng, (2,), 3)

    def loss(*a):
        return jnp.sum(full_covariance_gaussian_kl(*a))

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))(
        *[jnp.asarray(a) for a in (mu, lower, m, prior)]
    )
    arrays = [torch.tensor(a, requires_grad=True) for a in (mu, lower, m, prior)]
    full_covariance_gaussian_kl(*arrays).sum().backward()
    for g, a in zip(grads, arrays, strict=True):
        assert np.all(np.isfinite(np.asarray(g)))
        np.testing.assert_allclose(np.tril(np.asarray(g)) if g.ndim == 3 else g, a.grad.numpy())

    dgrads = jax.jit(jax.grad(lambda a, b: jnp.sum(diagonal_gaussian_kl(a, b)), argnums=(0, 1)))(
        jnp.asarray(mu), jnp.asarray(np.log(2.0) * np.ones((2, 3)))
    )
    np.testing.assert_allclose(dgrads[0], mu)
    np.testing.assert_allclose(dgrads[1], 0.5 * (2.0 - 1.0) * np.ones((2, 3)))
