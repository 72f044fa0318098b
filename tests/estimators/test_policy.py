"""The RL policy penalty k1, k2, k3: values, conventions, and their biases checked exactly.

The bias statements of :func:`kldiv.estimators.policy_kl`'s docstring are
verified by enumerating every token of small categorical policies: the
expectation over ``z ~ π`` is the exact sum ``Σ_z π(z) k(z)``, so there is no
Monte Carlo noise and the tolerances are those of float64 arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import kldiv
from kldiv._array_api import to_numpy
from kldiv.estimators import policy_kl
from tests._helpers import asarray, assert_close

ESTIMATORS = ("k1", "k2", "k3")


def _reference(log_p, log_ref, estimator):
    """The hand formulas, in NumPy, for finite inputs."""
    log_r = np.asarray(log_ref) - np.asarray(log_p)
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r**2
    return np.expm1(log_r) - log_r


def _random_log_probs(rng, shape, scale=2.0):
    return -rng.exponential(scale, size=shape)


# ---------------------------------------------------------------------------
# Values on every backend


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_values_match_hand_formulas(xp, apply, estimator):
    """k1 = -log r, k2 = (log r)^2 / 2, k3 = (r - 1) - log r, elementwise."""
    rng = np.random.default_rng(0)
    log_p, log_ref = _random_log_probs(rng, (4, 5)), _random_log_probs(rng, (4, 5))
    got = apply(policy_kl, asarray(xp, log_p), asarray(xp, log_ref), estimator=estimator)
    assert tuple(got.shape) == (4, 5)
    assert_close(got, _reference(log_p, log_ref, estimator), xp=xp, dtype=xp.float64)


def test_default_estimator_is_k3(xp, apply):
    """Without `estimator`, the estimate is k3 (TRL's GRPO default)."""
    log_p, log_ref = asarray(xp, [-0.5, -2.0]), asarray(xp, [-1.5, -0.1])
    assert_close(
        apply(policy_kl, log_p, log_ref), _reference([-0.5, -2.0], [-1.5, -0.1], "k3"), xp=xp
    )


def test_worked_example_by_hand(xp, apply):
    """π(z) = 1/2, π_ref(z) = 1/4: log r = -log 2, k1 = log 2, k2 = log²2 / 2, k3 = log 2 - 1/2."""
    log_p, log_ref = asarray(xp, [math.log(0.5)]), asarray(xp, [math.log(0.25)])
    ln2 = math.log(2.0)
    for estimator, expected in (("k1", ln2), ("k2", ln2**2 / 2), ("k3", ln2 - 0.5)):
        got = apply(policy_kl, log_p, log_ref, estimator=estimator)
        assert_close(got, [expected], xp=xp, rtol=1e-14)


def test_broadcasting(xp, apply):
    """The inputs broadcast elementwise; the result has the broadcast shape."""
    rng = np.random.default_rng(1)
    log_p, log_ref = _random_log_probs(rng, (3, 1)), _random_log_probs(rng, (4,))
    got = apply(policy_kl, asarray(xp, log_p), asarray(xp, log_ref), estimator="k2")
    assert tuple(got.shape) == (3, 4)
    assert_close(got, _reference(log_p, log_ref, "k2"), xp=xp)


def test_k2_and_k3_are_nonnegative(xp, apply):
    """k3 = (r - 1) - log r >= 0 (and k2 >= 0) for every r, over a wide range of log r."""
    rng = np.random.default_rng(2)
    log_p, log_ref = _random_log_probs(rng, 2000, 10.0), _random_log_probs(rng, 2000, 10.0)
    for estimator in ("k2", "k3"):
        got = to_numpy(
            apply(policy_kl, asarray(xp, log_p), asarray(xp, log_ref), estimator=estimator)
        )
        assert np.all(got >= 0)
    k1 = to_numpy(apply(policy_kl, asarray(xp, log_p), asarray(xp, log_ref), estimator="k1"))
    assert np.any(k1 < 0), "k1 takes negative values"


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_zero_when_policies_agree(xp, apply, estimator):
    """log_p = log_ref gives exactly 0 (k1 = k2 = k3 = 0), -inf entries included."""
    log_p = asarray(xp, [-0.3, -1.0, -7.5, -math.inf])
    got = apply(policy_kl, log_p, log_p, estimator=estimator)
    assert np.all(to_numpy(got) == 0.0)


def test_k3_is_accurate_near_r_equal_one(xp, apply):
    """expm1 keeps k3 ≈ (log r)^2 / 2 accurate for |log r| ~ 1e-6 (exp(x) - 1 - x is not)."""
    log_p = np.array([-1.0, -3.0])
    log_ref = log_p + np.array([1e-6, -2e-6])
    d = log_ref - log_p
    expected = d**2 / 2 + d**3 / 6 + d**4 / 24
    got = apply(policy_kl, asarray(xp, log_p), asarray(xp, log_ref), estimator="k3")
    assert_close(got, expected, xp=xp, rtol=1e-8, atol=0)


def test_k3_is_nonnegative_in_float32_near_r_equal_one(xp, apply):
    """In float32, tiny |log r| gives k3 >= 0 (exp(x) - 1 - x would go negative)."""
    rng = np.random.default_rng(4)
    log_p = -rng.uniform(0.1, 3.0, size=1000).astype(np.float32)
    log_ref = log_p + rng.normal(scale=1e-4, size=1000).astype(np.float32)
    got = apply(
        policy_kl,
        asarray(xp, log_p, dtype=xp.float32),
        asarray(xp, log_ref, dtype=xp.float32),
        estimator="k3",
    )
    assert got.dtype == xp.float32
    assert np.all(to_numpy(got) >= 0)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_reference_zero_probability_is_plus_inf(xp, apply, estimator):
    """log_ref = -inf where log_p is finite: the reference never emits the token, +inf, not NaN."""
    log_p, log_ref = asarray(xp, [-0.5, -2.0]), asarray(xp, [-math.inf, -1.0])
    got = to_numpy(apply(policy_kl, log_p, log_ref, estimator=estimator))
    assert got[0] == math.inf
    np.testing.assert_allclose(got[1], _reference(-2.0, -1.0, estimator), rtol=1e-14)


def test_policy_zero_probability_limits(xp, apply):
    """log_p = -inf: k1 = -inf, k2 = k3 = +inf (the limits as log r -> +inf); both -inf: 0."""
    log_p = asarray(xp, [-math.inf, -math.inf])
    log_ref = asarray(xp, [-1.0, -math.inf])
    expected = {"k1": [-math.inf, 0.0], "k2": [math.inf, 0.0], "k3": [math.inf, 0.0]}
    for estimator, values in expected.items():
        got = to_numpy(apply(policy_kl, log_p, log_ref, estimator=estimator))
        np.testing.assert_array_equal(got, values)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_importance_weight_multiplies(xp, apply, estimator):
    """With log_behavior, each estimate is multiplied by exp(log_p - log_behavior)."""
    rng = np.random.default_rng(3)
    log_p, log_ref, log_mu = (_random_log_probs(rng, (2, 3)) for _ in range(3))
    got = apply(
        lambda a, b, c, **kw: policy_kl(a, b, log_behavior=c, **kw),
        asarray(xp, log_p),
        asarray(xp, log_ref),
        asarray(xp, log_mu),
        estimator=estimator,
    )
    expected = np.exp(log_p - log_mu) * _reference(log_p, log_ref, estimator)
    assert_close(got, expected, xp=xp)


def test_importance_weight_zero_where_policy_cannot_emit(xp, apply):
    """log_p = -inf with a behaviour policy: weight 0, estimate 0 (also with log_ref = -inf)."""

    def f(a, b, c):
        return policy_kl(a, b, log_behavior=c, estimator="k3")

    log_p = asarray(xp, [-math.inf, -math.inf, -0.5])
    log_ref = asarray(xp, [-1.0, -math.inf, -math.inf])
    log_mu = asarray(xp, [-0.2, -math.inf, -0.7])
    got = to_numpy(apply(f, log_p, log_ref, log_mu))
    np.testing.assert_array_equal(got, [0.0, 0.0, math.inf])


def test_float32_stays_float32(xp, apply):
    """float32 log-probabilities give float32 estimates."""
    log_p = asarray(xp, [-0.5, -1.0], dtype=xp.float32)
    log_ref = asarray(xp, [-1.5, -0.2], dtype=xp.float32)
    got = apply(policy_kl, log_p, log_ref)
    assert got.dtype == xp.float32
    assert_close(got, _reference([-0.5, -1.0], [-1.5, -0.2], "k3"), xp=xp, rtol=1e-6)


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("position", "name", "bad"),
    [
        (0, "log_p", math.nan),
        (0, "log_p", math.inf),
        (1, "log_ref", math.nan),
        (1, "log_ref", math.inf),
        (2, "log_behavior", math.nan),
    ],
)
def test_invalid_log_probs_raise(xp, position, name, bad):
    """NaN or +inf in a log-probability raises a KLDivError naming the argument."""
    arrays = [[-0.5, -1.0], [-0.7, -0.2], [-0.6, -0.3]]
    arrays[position] = [-0.5, bad]
    log_p, log_ref, log_mu = (asarray(xp, a) for a in arrays)
    with pytest.raises(kldiv.KLDivError, match=f"`{name}`"):
        policy_kl(log_p, log_ref, log_behavior=log_mu)


def test_behaviour_that_cannot_draw_the_token_raises(xp):
    """log_behavior = -inf where log_p is finite is a sample μ could not draw."""
    log_p, log_ref = asarray(xp, [-0.5, -1.0]), asarray(xp, [-0.7, -0.2])
    log_mu = asarray(xp, [-0.5, -math.inf])
    with pytest.raises(kldiv.KLDivError, match="`log_behavior` must be > -inf"):
        policy_kl(log_p, log_ref, log_behavior=log_mu)


def test_validate_false_gives_nan_not_a_number():
    """With the checks off, invalid input propagates as NaN rather than a plausible value."""
    got = policy_kl([-0.5, math.nan], [-0.7, -0.2], validate=False)
    assert np.isnan(got[1])
    assert np.isfinite(got[0])
    got = policy_kl([-0.5], [-0.7], log_behavior=[-math.inf], validate=False)
    assert np.isnan(got[0])


@pytest.mark.parametrize("estimator", ["k4", "K3", None, 3])
def test_bad_estimator_raises(estimator):
    """`estimator` must be one of k1, k2, k3."""
    with pytest.raises(kldiv.KLDivError, match="`estimator` must be one of"):
        policy_kl([-0.5], [-0.7], estimator=estimator)


def test_shapes_that_do_not_broadcast_raise(xp):
    """Shapes that do not broadcast name both arguments."""
    with pytest.raises(kldiv.KLDivError, match="`log_p` \\(2,\\), `log_ref` \\(3,\\)"):
        policy_kl(asarray(xp, [-0.5, -1.0]), asarray(xp, [-0.1, -0.2, -0.3]))


def test_mixed_libraries_raise():
    """Arrays of two libraries are an error, not a silent conversion."""
    torch = pytest.importorskip("torch")
    with pytest.raises(kldiv.KLDivError, match="same array library"):
        policy_kl(np.array([-0.5]), torch.tensor([-0.7]))


# ---------------------------------------------------------------------------
# Gradients (torch, and JAX)


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradients_finite_at_minus_inf(estimator, weighted):
    """Zero probabilities in either policy (value ±inf or 0) give finite gradients, never NaN."""
    torch = _torch()
    log_p = torch.tensor([-0.5, -math.inf, -math.inf, -1.2, -0.3], dtype=torch.float64)
    log_ref = torch.tensor([-math.inf, -1.0, -math.inf, -0.4, -0.3], dtype=torch.float64)
    log_mu = torch.tensor([-0.6, -0.9, -math.inf, -1.0, -0.2], dtype=torch.float64)
    log_p.requires_grad_()
    log_ref.requires_grad_()
    log_mu.requires_grad_()
    value = policy_kl(
        log_p, log_ref, estimator=estimator, log_behavior=log_mu if weighted else None
    )
    weights = torch.tensor([1.0, 1.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    # Through every entry, infinite ones included: their gradient is 0, not NaN.
    (weights * torch.where(torch.isfinite(value), value, 0.0)).sum().backward()
    leaves = (log_p, log_ref, log_mu) if weighted else (log_p, log_ref)
    for leaf in leaves:
        assert torch.isfinite(leaf.grad).all(), (leaf.grad, estimator, weighted)
    # The entries at a zero probability get a zero gradient.
    assert log_p.grad[1] == 0
    assert log_p.grad[2] == 0
    assert log_ref.grad[0] == 0


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_gradient_of_infinite_entries_is_zero(estimator):
    """Backpropagating through a sum that is +inf still gives finite gradients."""
    torch = _torch()
    log_p = torch.tensor([-0.5, -1.0], dtype=torch.float64, requires_grad=True)
    log_ref = torch.tensor([-math.inf, -0.2], dtype=torch.float64, requires_grad=True)
    policy_kl(log_p, log_ref, estimator=estimator).sum().backward()
    assert torch.isfinite(log_p.grad).all()
    assert torch.isfinite(log_ref.grad).all()
    assert log_p.grad[0] == 0
    assert log_ref.grad[0] == 0


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradcheck(estimator, weighted):
    """Autograd matches finite differences in float64, with and without the weight."""
    torch = _torch()
    gen = torch.Generator().manual_seed(0)
    leaves = [
        (-torch.rand(3, 4, generator=gen, dtype=torch.float64) * 3).requires_grad_()
        for _ in range(3 if weighted else 2)
    ]

    def f(*args):
        log_behavior = args[2] if weighted else None
        return policy_kl(args[0], args[1], estimator=estimator, log_behavior=log_behavior)

    assert torch.autograd.gradcheck(f, tuple(leaves))
    assert torch.autograd.gradgradcheck(f, tuple(leaves))


def test_jax_gradients_finite_at_minus_inf():
    """Under jax.jit and jax.grad too, -inf gives finite gradients."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    log_p = jnp.asarray([-0.5, -math.inf, -1.0])
    log_ref = jnp.asarray([-math.inf, -1.0, -0.3])
    for estimator in ESTIMATORS:

        def total(a, b, estimator=estimator):
            k = policy_kl(a, b, estimator=estimator)
            return jnp.sum(jnp.where(jnp.isfinite(k), k, 0.0))

        grads = jax.jit(jax.grad(total, argnums=(0, 1)))(log_p, log_ref)
        for g in grads:
            assert bool(jnp.all(jnp.isfinite(g)))


# ---------------------------------------------------------------------------
# The bias table, exactly: enumerate every token of small categorical policies


def _policies(seed, *, rows=4, tokens=6, scale=1.0):
    """Logits θ (the trained policy, a leaf), of the reference and of a behaviour policy."""
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    theta = (scale * torch.randn(rows, tokens, generator=gen, dtype=torch.float64)).requires_grad_()
    ref = torch.randn(rows, tokens, generator=gen, dtype=torch.float64)
    behavior = torch.randn(rows, tokens, generator=gen, dtype=torch.float64)
    return theta, ref, behavior


def _log_softmax(logits):
    return logits.log_softmax(dim=-1)


def _grad(value, theta):
    (grad,) = _torch().autograd.grad(value.sum(), theta, retain_graph=True)
    return grad


def _reverse_kl(theta, ref):
    """KL(π_θ ‖ π_ref) per row, by kldiv's exact discrete KL."""
    return kldiv.kl_from_logits(theta, ref)


def _forward_kl(theta, ref):
    """KL(π_ref ‖ π_θ) per row."""
    return kldiv.kl_from_logits(ref, theta)


def _expected(weights, per_token):
    """E_{z ~ weights}[k(z)] = Σ_z weights(z) k(z), per row."""
    return (weights * per_token).sum(dim=-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k1_and_k3_values_are_unbiased(seed):
    """E_π[k1] = E_π[k3] = KL(π ‖ π_ref) exactly; E_π[k2] differs from it."""
    torch = _torch()
    theta, ref, _ = _policies(seed)
    log_p, log_ref = _log_softmax(theta), _log_softmax(ref)
    pi = log_p.exp()
    kl = _reverse_kl(theta, ref)
    for estimator in ("k1", "k3"):
        mean = _expected(pi, policy_kl(log_p, log_ref, estimator=estimator))
        torch.testing.assert_close(mean, kl, rtol=1e-12, atol=1e-14)
    mean_k2 = _expected(pi, policy_kl(log_p, log_ref, estimator="k2"))
    assert (mean_k2 - kl).abs().min() > 1e-3, "k2 is biased"


def test_k2_value_is_kl_to_second_order():
    """E_π[k2] - KL(π‖π_ref) shrinks a factor faster than KL as π -> π_ref (O(ε³) vs O(ε²))."""
    torch = _torch()
    gen = torch.Generator().manual_seed(5)
    ref = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    direction = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    relative = []
    for eps in (1e-1, 1e-2):
        theta = ref + eps * direction
        log_p, log_ref = _log_softmax(theta), _log_softmax(ref)
        kl = _reverse_kl(theta, ref)
        mean_k2 = _expected(log_p.exp(), policy_kl(log_p, log_ref, estimator="k2"))
        relative.append(((mean_k2 - kl).abs() / kl).max().item())
    assert relative[1] < 0.05
    assert relative[1] < relative[0] / 5  # the relative error is O(ε)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_gradients_in_the_loss(seed):
    """With the samples held fixed: E[∇k1] = 0, E[∇k2] = ∇KL(π‖π_ref), E[∇k3] = ∇KL(π_ref‖π)."""
    torch = _torch()
    theta, ref, _ = _policies(seed)
    log_p, log_ref = _log_softmax(theta), _log_softmax(ref)
    pi = log_p.exp().detach()  # the sampling weights: the samples are held fixed
    reverse = _grad(_reverse_kl(theta, ref), theta)
    forward = _grad(_forward_kl(theta, ref), theta)

    def expected_grad(estimator):
        return _grad(_expected(pi, policy_kl(log_p, log_ref, estimator=estimator)), theta)

    torch.testing.assert_close(expected_grad("k1"), torch.zeros_like(theta), rtol=0, atol=1e-14)
    torch.testing.assert_close(expected_grad("k2"), reverse, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(expected_grad("k3"), forward, rtol=1e-12, atol=1e-14)
    # ... and the forward KL's gradient is not the reverse KL's: k3 in the loss is biased.
    assert (expected_grad("k3") - reverse).abs().max() > 1e-2
    assert (reverse - forward).abs().max() > 1e-2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k1_in_the_reward_gives_the_reverse_kl_gradient(seed):
    """REINFORCE on k1, E_π[k1 ∇log π] with k1 detached, is exactly ∇KL(π ‖ π_ref)."""
    torch = _torch()
    theta, ref, _ = _policies(seed)
    log_p, log_ref = _log_softmax(theta), _log_softmax(ref)
    pi = log_p.exp().detach()
    reward = policy_kl(log_p, log_ref, estimator="k1").detach()
    score_function = _grad(_expected(pi, reward * log_p), theta)
    torch.testing.assert_close(
        score_function, _grad(_reverse_kl(theta, ref), theta), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_importance_weighted_values_are_unbiased(seed):
    """Tokens from a behaviour μ: E_μ[w k] = E_π[k], so k1 and k3 give KL(π‖π_ref) exactly."""
    torch = _torch()
    theta, ref, behavior = _policies(seed)
    log_p, log_ref, log_mu = _log_softmax(theta), _log_softmax(ref), _log_softmax(behavior)
    mu = log_mu.exp()
    kl = _reverse_kl(theta, ref)
    for estimator in ESTIMATORS:
        weighted = policy_kl(log_p, log_ref, estimator=estimator, log_behavior=log_mu)
        on_policy = _expected(log_p.exp(), policy_kl(log_p, log_ref, estimator=estimator))
        torch.testing.assert_close(_expected(mu, weighted), on_policy, rtol=1e-12, atol=1e-14)
        if estimator != "k2":
            torch.testing.assert_close(_expected(mu, weighted), kl, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_importance_weighted_gradients_are_the_full_gradient(seed):
    """Differentiating the weight too: E_μ[∇(w k)] = ∇E_π[k]; for k1 and k3 that is ∇KL(π‖π_ref)."""
    torch = _torch()
    theta, ref, behavior = _policies(seed)
    log_p, log_ref, log_mu = _log_softmax(theta), _log_softmax(ref), _log_softmax(behavior)
    mu = log_mu.exp()
    reverse = _grad(_reverse_kl(theta, ref), theta)
    for estimator in ESTIMATORS:
        weighted = policy_kl(log_p, log_ref, estimator=estimator, log_behavior=log_mu)
        got = _grad(_expected(mu, weighted), theta)
        full = _grad(_expected(log_p.exp(), policy_kl(log_p, log_ref, estimator=estimator)), theta)
        torch.testing.assert_close(got, full, rtol=1e-12, atol=1e-14)
        if estimator != "k2":
            torch.testing.assert_close(got, reverse, rtol=1e-12, atol=1e-14)
    # On-policy (μ = π, detached), the weight is 1 in value and still fixes k3's gradient.
    on_policy = policy_kl(log_p, log_ref, estimator="k3", log_behavior=log_p.detach())
    torch.testing.assert_close(on_policy, policy_kl(log_p, log_ref, estimator="k3"))
    got = _grad(_expected(log_p.exp().detach(), on_policy), theta)
    torch.testing.assert_close(got, reverse, rtol=1e-12, atol=1e-14)


def test_k3_needs_the_reference_support_inside_the_policys():
    """Where π(z) = 0 < π_ref(z), E_π[k3] = KL(π‖π_ref) - π_ref(z): k3 is biased (k1 is not)."""
    torch = _torch()
    theta = torch.tensor([[0.3, -0.2, 1.0, -math.inf, 0.1, 0.0]], dtype=torch.float64)
    ref = torch.tensor([[0.0, 0.5, -0.4, 0.2, 0.3, -1.0]], dtype=torch.float64)
    log_p, log_ref = _log_softmax(theta), _log_softmax(ref)
    pi = log_p.exp()
    kl = _reverse_kl(theta, ref)
    assert torch.isfinite(kl).all()

    def mean(estimator):  # only the tokens π can emit: the sample space of z ~ π
        k = policy_kl(log_p, log_ref, estimator=estimator)
        return torch.where(pi > 0, pi * k, 0.0).sum(dim=-1)

    torch.testing.assert_close(mean("k1"), kl, rtol=1e-12, atol=1e-14)
    missing = log_ref.exp()[:, 3]
    torch.testing.assert_close(mean("k3"), kl - missing, rtol=1e-12, atol=1e-14)


def test_monte_carlo_mean_of_k3_is_within_four_standard_errors():
    """200k seeded samples z ~ π: the mean of k3 is within 4 standard errors of the exact KL."""
    rng = np.random.default_rng(20240611)
    log_p = np.log(np.array([0.05, 0.1, 0.15, 0.2, 0.2, 0.3]))
    log_ref = np.log(np.array([0.3, 0.25, 0.1, 0.1, 0.15, 0.1]))
    exact = float(kldiv.kl_from_log_probs(log_p, log_ref))
    z = rng.choice(6, size=200_000, p=np.exp(log_p))
    k3 = policy_kl(log_p[z], log_ref[z], estimator="k3")
    mean, stderr = k3.mean(), k3.std(ddof=1) / math.sqrt(k3.size)
    assert abs(mean - exact) < 4 * stderr
    assert stderr < 0.01 * exact  # the test has power: the error bar is tight
