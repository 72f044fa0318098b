"""kldiv.torch.elbo: gradients, torch.distributions objects, seeds, and fitting a posterior.

The conjugate model is the Gaussian mean with known noise variance,
x_i ~ N(z, σ²), z ~ N(m0, s0²): maximising the ELBO over q = N(m, s²) must
recover the exact posterior.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import kldiv
from kldiv import distributions as D

torch = pytest.importorskip("torch")
from torch import distributions as td  # noqa: E402

from kldiv.torch import GaussianKLLoss, elbo  # noqa: E402

X = torch.tensor([0.9, 1.7, 0.4, 1.2, 2.1, 1.4], dtype=torch.float64)
SIGMA = 0.8
M0, S0 = 0.0, 1.5


def _log_lik(z):
    """Σ_i log N(x_i; z, σ²) for a global z: (S,) -> (S,)."""
    return td.Normal(z[:, None], SIGMA).log_prob(X).sum(-1)


def _posterior():
    precision = 1 / S0**2 + X.numel() / SIGMA**2
    return (M0 / S0**2 + float(X.sum()) / SIGMA**2) / precision, math.sqrt(1 / precision)


@pytest.mark.parametrize("kl", ["exact", "monte_carlo"])
def test_gradcheck(kl):
    """torch.autograd.gradcheck in float64, with the draws fixed by the seed."""
    x = torch.tensor([[0.3, -0.4], [1.0, 0.2], [0.0, 0.5]], dtype=torch.float64)

    def value(loc, log_scale, lower, w):
        tril = torch.tril(lower, -1) + torch.diag_embed(log_scale.exp())
        q = D.MultivariateNormal(loc, scale_tril=tril)
        prior = D.MultivariateNormal(
            torch.zeros(2, dtype=torch.float64), scale_tril=2 * torch.eye(2, dtype=torch.float64)
        )

        def log_lik(z):  # a model parameter w in the likelihood too: (S, 2) -> (S,)
            return -0.5 * ((z[:, None, :] * w - x) ** 2).sum((-2, -1))

        return elbo(log_lik, q, prior, n_samples=3, kl=kl, rng=7).elbo

    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True),
        (0.3 * torch.randn(2, generator=gen, dtype=torch.float64)).requires_grad_(True),
        torch.randn(2, 2, generator=gen, dtype=torch.float64, requires_grad=True),
        torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True),
    ]
    assert torch.autograd.gradcheck(value, inputs)


def test_seeds_reproduce():
    """An int seed or a seeded Generator gives the same draws; None uses torch's global one."""
    q, prior = D.Normal(torch.tensor(0.3), torch.tensor(0.8)), D.Normal(0.0, 1.0)
    a = elbo(_log_lik_f32, q, prior, n_samples=5, rng=3)
    b = elbo(_log_lik_f32, q, prior, n_samples=5, rng=torch.Generator().manual_seed(3))
    assert torch.equal(a.elbo, b.elbo)
    torch.manual_seed(11)
    c = elbo(_log_lik_f32, q, prior, n_samples=5)
    torch.manual_seed(11)
    d = elbo(_log_lik_f32, q, prior, n_samples=5)
    assert torch.equal(c.elbo, d.elbo)


def _log_lik_f32(z):
    return td.Normal(z[:, None], SIGMA).log_prob(X.float()).sum(-1)


def test_float32_stays_float32():
    """Parameters in float32 give float32 results."""
    q = D.Normal(torch.tensor(0.3), torch.tensor(0.8))
    res = elbo(_log_lik_f32, q, D.Normal(0.0, 1.0), n_samples=4, rng=0)
    assert res.elbo.dtype == res.kl.dtype == torch.float32


def test_torch_distributions_objects():
    """torch.distributions q and prior: the same numbers as kldiv's, gradients to their tensors."""
    loc = torch.tensor([0.2, -0.3], dtype=torch.float64, requires_grad=True)
    log_scale = torch.tensor([-0.5, 0.1], dtype=torch.float64, requires_grad=True)
    q_torch = td.Independent(td.Normal(loc, log_scale.exp()), 1)
    prior_torch = td.Independent(td.Normal(torch.zeros(2, dtype=torch.float64), 1.0), 1)

    def log_lik(z):
        return -0.5 * (z * z).sum(-1)

    res = elbo(log_lik, q_torch, prior_torch, n_samples=10, rng=1)
    same = elbo(
        log_lik,
        D.Independent(D.Normal(loc, log_scale.exp()), 1),
        D.Independent(D.Normal(np.zeros(2), 1.0), 1),
        n_samples=10,
        rng=1,
    )
    assert res.kl_method == "exact"
    torch.testing.assert_close(res.elbo, same.elbo)
    torch.testing.assert_close(res.kl, td.kl_divergence(q_torch, prior_torch))
    res.elbo.backward()
    assert loc.grad is not None
    assert torch.all(torch.isfinite(log_scale.grad))


def test_torch_distribution_without_a_kldiv_counterpart():
    """A TransformedDistribution q (a flow): drawn by rsample, KL by Monte Carlo from its draws."""
    loc = torch.tensor([0.3, -0.2], requires_grad=True)
    q = td.TransformedDistribution(
        td.Normal(torch.zeros(2), torch.ones(2)), [td.transforms.AffineTransform(loc, 0.5)]
    )
    draws = []

    def log_lik(z):
        draws.append(z)
        return -0.5 * (z - 1.0) ** 2

    res = elbo(log_lik, q, td.Normal(0.0, 1.0), n_samples=2000, rng=0)
    assert res.kl_method == "monte_carlo"
    z = draws[0]
    assert z.shape == (2000, 2)
    torch.testing.assert_close(res.kl, (q.log_prob(z) - td.Normal(0.0, 1.0).log_prob(z)).mean(0))
    exact = td.kl_divergence(td.Normal(loc, 0.5), td.Normal(0.0, 1.0))
    assert torch.all((res.kl - exact).abs() < 4 * res.kl_stderr)
    res.elbo.sum().backward()
    assert torch.all(torch.isfinite(loc.grad))
    # a kldiv prior built from Python numbers is moved to torch; the seed fixes the draws
    again = elbo(log_lik, q, D.Normal(0.0, 1.0), n_samples=2000, rng=0)
    torch.testing.assert_close(again.elbo, res.elbo)
    with pytest.raises(kldiv.NoClosedFormError, match="TransformedDistribution"):
        elbo(log_lik, q, td.Normal(0.0, 1.0), kl="exact")


def test_torch_registry_gives_the_exact_term_for_torch_only_pairs():
    """Two TransformedDistributions with the same transform: torch's closed form is used."""
    transform = [td.transforms.ExpTransform()]
    q = td.TransformedDistribution(td.Normal(torch.tensor(0.2), torch.tensor(0.5)), transform)
    prior = td.TransformedDistribution(td.Normal(torch.tensor(0.0), torch.tensor(1.0)), transform)
    res = elbo(lambda z: -z, q, prior, n_samples=4, rng=0)
    assert res.kl_method == "exact"
    torch.testing.assert_close(res.kl, td.kl_divergence(q, prior))


def test_amortised_vae_batch():
    """An encoder's q(z|x) per data point: KL per point as GaussianKLLoss; grads reach both nets."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(8, 5, generator=gen) < 0.5).float()
    torch.manual_seed(0)
    encoder, decoder = torch.nn.Linear(5, 2 * 3), torch.nn.Linear(3, 5)
    mu, logvar = encoder(x).chunk(2, dim=-1)
    q = td.Independent(td.Normal(mu, (0.5 * logvar).exp()), 1)
    prior = D.Independent(D.Normal(np.zeros(3), 1.0), 1)

    def log_lik(z):  # (S, 8, 3) -> (S, 8)
        return td.Independent(td.Bernoulli(logits=decoder(z)), 1).log_prob(x)

    res = elbo(log_lik, q, prior, n_samples=2, rng=gen)
    assert res.elbo.shape == (8,)
    torch.testing.assert_close(res.kl, GaussianKLLoss(reduction="none")(mu, logvar))
    (-res.elbo.mean()).backward()
    assert encoder.weight.grad is not None
    assert decoder.weight.grad is not None


@pytest.mark.parametrize("kl", ["exact", "monte_carlo"])
def test_fitting_the_conjugate_posterior(kl):
    """Adam on −ELBO recovers the exact posterior N(m_N, s_N²) of the Gaussian mean.

    Tolerance: |m − m_N| < 0.05 s_N and |s / s_N − 1| < 0.05, after 600 steps
    of 32 draws with the learning rate decayed from 0.05 to 0.0005.
    """
    m_post, s_post = _posterior()
    loc = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    log_scale = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([loc, log_scale], lr=0.05)
    steps = 600
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t / steps))
    )
    gen = torch.Generator().manual_seed(0)
    prior = D.Normal(M0, S0)
    for _ in range(steps):
        res = elbo(_log_lik, D.Normal(loc, log_scale.exp()), prior, n_samples=32, kl=kl, rng=gen)
        optimizer.zero_grad()
        (-res.elbo).backward()
        optimizer.step()
        schedule.step()
    assert res.kl_method == kl
    assert abs(loc.item() - m_post) < 0.05 * s_post
    assert abs(math.exp(log_scale.item()) / s_post - 1) < 0.05


def test_bad_arguments():
    """A bad rng, a NumPy q, a q without rsample: one KLDivError each."""
    q = D.Normal(torch.tensor(0.0), torch.tensor(1.0))
    with pytest.raises(kldiv.KLDivError, match=r"`rng` must be a torch\.Generator"):
        elbo(_log_lik_f32, q, D.Normal(0.0, 1.0), rng=np.random.default_rng(0))
    with pytest.raises(kldiv.KLDivError, match="`q` must hold torch tensors"):
        elbo(lambda z: -(z**2), D.Normal(0.0, 1.0), D.Normal(0.0, 1.0))
    with pytest.raises(kldiv.KLDivError, match="reparameterised samples"):
        elbo(lambda z: -z, td.Poisson(torch.tensor(2.0)), td.Poisson(torch.tensor(3.0)))
    relaxed = td.RelaxedBernoulli(torch.tensor(0.5), probs=torch.tensor(0.3))
    with pytest.raises(kldiv.KLDivError, match="same event shape"):
        elbo(lambda z: -z, relaxed, D.Independent(D.Normal(np.zeros(2), 1.0), 1))


@pytest.mark.parametrize("seed", [-1, 2**64, 10**30])
def test_seed_out_of_range_is_refused_by_name(seed):
    """A seed torch cannot take is a KLDivError naming ``rng``, not torch's overflow error."""
    q = D.Normal(torch.tensor(0.3), torch.tensor(0.8))
    with pytest.raises(kldiv.KLDivError, match=r"`rng` as an int seed must be in \[0, 2\*\*64\)"):
        elbo(_log_lik_f32, q, D.Normal(0.0, 1.0), n_samples=2, rng=seed)


def test_largest_seed_is_accepted():
    q = D.Normal(torch.tensor(0.3), torch.tensor(0.8))
    res = elbo(_log_lik_f32, q, D.Normal(0.0, 1.0), n_samples=2, rng=2**64 - 1)
    assert torch.isfinite(res.elbo).all()
