"""Gradients: finite wherever the value is finite, exact against analytic forms, gradcheck."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

import kldiv

torch = pytest.importorskip("torch")

PROB_PAIRS = [kldiv.kl_from_probs, kldiv.js_from_probs, kldiv.cross_entropy, kldiv.generalized_kl]
LOG_PAIRS = [kldiv.kl_from_log_probs, kldiv.js_from_log_probs, kldiv.cross_entropy_from_log_probs]
LOGIT_PAIRS = [kldiv.kl_from_logits, kldiv.js_from_logits, kldiv.cross_entropy_from_logits]
SINGLES = [
    (kldiv.entropy, "probs"),
    (kldiv.entropy_from_log_probs, "log_probs"),
    (kldiv.entropy_from_logits, "logits"),
]

P_WITH_ZEROS = [[0.0, 0.3, 0.7, 0.0], [0.5, 0.0, 0.5, 0.0]]
Q_WITH_ZEROS = [[0.2, 0.1, 0.7, 0.0], [0.25, 0.25, 0.25, 0.25]]


def _leaf(values, transform=None):
    array = np.asarray(values, dtype=np.float64)
    if transform is not None:
        with np.errstate(divide="ignore"):
            array = transform(array)
    return torch.tensor(array, requires_grad=True)


def _assert_finite_grads(value, *leaves):
    value[torch.isfinite(value)].sum().backward()
    for leaf in leaves:
        assert leaf.grad is not None
        assert torch.isfinite(leaf.grad).all(), leaf.grad


@pytest.mark.parametrize("f", PROB_PAIRS)
def test_finite_gradients_at_zero_probability(f):
    """Zeros in p, and in p and q at once, give finite gradients (no NaN)."""
    p, q = _leaf(P_WITH_ZEROS), _leaf(Q_WITH_ZEROS)
    value = f(p, q)
    assert torch.isfinite(value).all()
    _assert_finite_grads(value, p, q)


@pytest.mark.parametrize("f", LOG_PAIRS)
def test_finite_gradients_at_minus_inf_log_probs(f):
    """-inf log-probabilities give finite gradients, optax#1786's NaN case included."""
    log_p, log_q = _leaf(P_WITH_ZEROS, np.log), _leaf(Q_WITH_ZEROS, np.log)
    value = f(log_p, log_q)
    assert torch.isfinite(value).all()
    _assert_finite_grads(value, log_p, log_q)


@pytest.mark.parametrize("f", LOGIT_PAIRS)
def test_finite_gradients_at_minus_inf_logits(f):
    """-inf logits (masked tokens) give finite gradients, zero at the masked entries of p."""
    z_p = _leaf([[1.0, -math.inf, 0.5, -math.inf]])
    z_q = _leaf([[0.3, 2.0, -1.0, -math.inf]])
    value = f(z_p, z_q, temperature=2.0)
    assert torch.isfinite(value).all()
    _assert_finite_grads(value, z_p, z_q)
    assert z_p.grad[0, 1] == 0
    assert z_p.grad[0, 3] == 0


def test_gradient_where_value_is_infinite_is_not_nan():
    """Where q = 0 < p the value is +inf; the gradient of the other rows stays clean."""
    p = _leaf([[1.0, 0.0], [0.5, 0.5]])
    q = _leaf([[0.0, 1.0], [0.5, 0.5]])
    value = kldiv.kl_from_probs(p, q)
    assert value[0] == math.inf
    value[1].backward()
    assert torch.isfinite(p.grad).all()
    assert torch.isfinite(q.grad).all()


@pytest.mark.parametrize("f", SINGLES)
def test_entropy_gradients_finite_at_zero(f):
    """Entropy in every form has finite gradients at zero mass."""
    values, form = [[0.0, 0.25, 0.75]], f[1]
    leaf = _leaf(values, np.log if form != "probs" else None)
    value = f[0](leaf)
    _assert_finite_grads(value, leaf)


def test_kl_gradient_in_q_is_minus_p_over_q():
    """∂KL(p‖q)/∂q_i = -p_i / q_i, 0 where p_i = 0."""
    p, q = _leaf(P_WITH_ZEROS), _leaf([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    kldiv.kl_from_probs(p, q).sum().backward()
    torch.testing.assert_close(q.grad, -p.detach() / q.detach())


def test_kl_gradient_in_q_logits_is_softmax_difference():
    """∂KL(p‖softmax(z/T))/∂z = (softmax(z/T) - p) / T, including masked entries of p."""
    z_p = _leaf([[1.0, -math.inf, 0.5, 2.0]])
    z_q = _leaf([[0.3, 2.0, -1.0, 0.0]])
    t = 1.5
    kldiv.kl_from_logits(z_p, z_q, temperature=t).sum().backward()
    p = torch.softmax(z_p.detach() / t, -1)
    q = torch.softmax(z_q.detach() / t, -1)
    torch.testing.assert_close(z_q.grad, (q - p) / t)


def _interior(seed, shape=(3, 5)):
    rng = np.random.default_rng(seed)
    return (
        torch.tensor(rng.dirichlet(np.ones(shape[-1]), size=shape[0]), requires_grad=True)
        for _ in range(2)
    )


@pytest.mark.parametrize("f", PROB_PAIRS)
def test_gradcheck_prob_forms(f):
    """torch.autograd.gradcheck in float64 (checks off: the perturbations leave the simplex)."""
    p, q = _interior(0)
    assert torch.autograd.gradcheck(lambda a, b: f(a, b, validate=False), (p, q))


@pytest.mark.parametrize("f", LOG_PAIRS)
def test_gradcheck_log_forms(f):
    """Gradcheck of the log-probability forms."""
    p, q = _interior(1)
    log_p = torch.log(p.detach()).requires_grad_()
    log_q = torch.log(q.detach()).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: f(a, b, validate=False), (log_p, log_q))


@pytest.mark.parametrize("f", LOGIT_PAIRS)
def test_gradcheck_logit_forms(f):
    """Gradcheck of the logits forms, with a temperature and a masked logit."""
    rng = np.random.default_rng(2)
    z_p = torch.tensor(rng.normal(size=(3, 5)), requires_grad=True)
    z_q = torch.tensor(rng.normal(size=(3, 5)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: f(a, b, temperature=0.7), (z_p, z_q))


@pytest.mark.parametrize("f", [s[0] for s in SINGLES])
def test_gradcheck_entropy_forms(f):
    """Gradcheck of the entropy forms."""
    z = torch.tensor(np.random.default_rng(3).normal(size=(2, 4)), requires_grad=True)
    if f is kldiv.entropy:
        assert torch.autograd.gradcheck(lambda a: f(torch.softmax(a, -1)), (z,))
    elif f is kldiv.entropy_from_log_probs:
        assert torch.autograd.gradcheck(lambda a: f(torch.log_softmax(a, -1)), (z,))
    else:
        assert torch.autograd.gradcheck(f, (z,))


def test_jax_gradients_under_jit_match_torch():
    """jax.grad of the jitted function is finite at zeros and equals torch's gradient."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    for f, values, transform in [
        (kldiv.kl_from_probs, (P_WITH_ZEROS, Q_WITH_ZEROS), None),
        (kldiv.js_from_probs, (P_WITH_ZEROS, Q_WITH_ZEROS), None),
        (kldiv.kl_from_log_probs, (P_WITH_ZEROS, Q_WITH_ZEROS), np.log),
        (kldiv.js_from_log_probs, (P_WITH_ZEROS, Q_WITH_ZEROS), np.log),
        (kldiv.kl_from_logits, ([[1.0, -np.inf, 0.5]], [[0.0, 1.0, -np.inf]]), None),
    ]:
        leaves = [_leaf(v, transform) for v in values]
        value = f(*leaves)
        finite = torch.isfinite(value)
        value[finite].sum().backward()
        arrays = [jnp.asarray(leaf.detach().numpy()) for leaf in leaves]
        finite_mask = jnp.asarray(finite.numpy())

        def total(a, b, f=f, mask=finite_mask):
            return jnp.sum(jnp.where(mask, f(a, b), 0.0))

        grads = jax.jit(jax.grad(total, argnums=(0, 1)))(*arrays)
        for g, leaf in zip(grads, leaves, strict=True):
            assert np.all(np.isfinite(np.asarray(g))), (f.__name__, g)
            np.testing.assert_allclose(np.asarray(g), leaf.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_scipy_gradient_reference_by_finite_differences():
    """The torch gradient of kl_from_logits matches central finite differences of SciPy's value."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=6), rng.normal(size=6)

    def value(x):
        return special.rel_entr(special.softmax(a), special.softmax(x)).sum()

    h = 1e-6
    numeric = np.array([(value(b + h * e) - value(b - h * e)) / (2 * h) for e in np.eye(6)])
    z_q = torch.tensor(b, requires_grad=True)
    kldiv.kl_from_logits(torch.tensor(a), z_q).backward()
    np.testing.assert_allclose(z_q.grad.numpy(), numeric, rtol=1e-6, atol=1e-9)
