"""Every registered pair: against an independent reference, on every backend, with gradients."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from array_api_compat import is_jax_namespace

import kldiv
from kldiv import distributions as D
from kldiv._array_api import to_numpy
from tests.distributions._cases import all_cases
from tests.distributions._reference import mc_kl, quad_kl, sum_kl

CASES = all_cases()
IDS = [c.id for c in CASES]


def _arrays(params, xp):
    return {
        name: (xp.asarray(np.asarray(v, dtype=np.float64)) if not callable(v) else v)
        for name, v in params.items()
    }


def _numpy_kl(case):
    import array_api_compat.numpy as np_xp

    p, q = case.make(_arrays(case.p_params, np_xp), _arrays(case.q_params, np_xp))
    return p, q, np.asarray(kldiv.kl_divergence(p, q))


def test_every_registered_pair_has_a_case():
    """Each pair in kldiv.registered_pairs() is verified by at least one case here."""
    covered = {c.pair for c in CASES}
    own = [
        (p, q)
        for p, q in kldiv.registered_pairs()
        if getattr(D, p.__name__, None) is p and getattr(D, q.__name__, None) is q
    ]
    missing = [f"{p.__name__}-{q.__name__}" for p, q in own if (p, q) not in covered]
    assert not missing, f"pairs without a test case: {missing}"


def test_at_least_110_pairs_registered():
    """The registry's coverage goal, counting kldiv's own families only."""
    own = [
        pair
        for pair in kldiv.registered_pairs()
        if all(getattr(D, t.__name__, None) is t for t in pair)
    ]
    assert len(own) >= 110, len(own)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pair_matches_reference(case):
    """The closed form equals quadrature / enumeration / Monte Carlo / an independent formula."""
    p, q, value = _numpy_kl(case)
    if case.reference == "inf":
        assert np.all(value == np.inf), value
        return
    if case.reference == "quad":
        expected = quad_kl(p, q)
    elif case.reference == "sum":
        expected = sum_kl(p, q)
    elif case.reference == "exact":
        expected = np.asarray(case.expected, dtype=float)
    elif case.reference == "mc":
        expected, stderr = mc_kl(p, q, n=case.mc_samples)
        assert np.all(np.abs(value - expected) <= 5 * stderr + case.atol), (value, expected, stderr)
        return
    else:
        raise AssertionError(f"unknown reference {case.reference!r}")
    np.testing.assert_allclose(value, expected, rtol=case.rtol, atol=case.atol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pair_on_every_backend(case, xp):
    """The same value on numpy, array_api_strict, torch and jax (jitted), in the backend's type."""
    _, _, expected = _numpy_kl(case)
    p_arrays, q_arrays = _arrays(case.p_params, xp), _arrays(case.q_params, xp)

    def kl(pa, qa):
        return kldiv.kl_divergence(*case.make(pa, qa))

    if is_jax_namespace(xp):
        import jax

        value = jax.jit(kl)(p_arrays, q_arrays)
    else:
        value = kl(p_arrays, q_arrays)
    assert type(value).__module__.split(".")[0] == type(
        next(iter(p_arrays.values()))
    ).__module__.split(".")[0] or is_jax_namespace(xp)
    np.testing.assert_allclose(to_numpy(value), expected, rtol=1e-8, atol=1e-11)


def _finite_grad_cases():
    return [c for c in CASES if c.reference != "inf" and c.gradcheck]


@pytest.mark.parametrize("case", _finite_grad_cases(), ids=[c.id for c in _finite_grad_cases()])
def test_pair_gradcheck_torch(case):
    """torch.autograd.gradcheck in float64 w.r.t. every continuous parameter of P and Q."""
    torch = pytest.importorskip("torch")
    names_p = [n for n in case.p_params if n not in case.no_grad and not callable(case.p_params[n])]
    names_q = [n for n in case.q_params if n not in case.no_grad and not callable(case.q_params[n])]
    base_p = {
        n: torch.tensor(np.asarray(v, dtype=np.float64))
        for n, v in case.p_params.items()
        if not callable(v)
    }
    base_q = {
        n: torch.tensor(np.asarray(v, dtype=np.float64))
        for n, v in case.q_params.items()
        if not callable(v)
    }
    inputs = [base_p[n].clone().requires_grad_(True) for n in names_p] + [
        base_q[n].clone().requires_grad_(True) for n in names_q
    ]

    def kl(*tensors):
        pa = dict(base_p, **dict(zip(names_p, tensors[: len(names_p)], strict=True)))
        qa = dict(base_q, **dict(zip(names_q, tensors[len(names_p) :], strict=True)))
        return kldiv.kl_divergence(*case.make(pa, qa))

    value = kl(*inputs)
    if not bool(torch.all(torch.isfinite(value))):
        pytest.skip("infinite for these parameters")
    assert torch.autograd.gradcheck(kl, tuple(inputs), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("case", _finite_grad_cases(), ids=[c.id for c in _finite_grad_cases()])
def test_pair_jax_gradient_is_finite(case):
    """jax.grad of the jitted KL is finite where the value is finite and equals torch's."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    torch = pytest.importorskip("torch")
    names_p = [n for n in case.p_params if n not in case.no_grad]
    names_q = [n for n in case.q_params if n not in case.no_grad]
    pa = {n: jnp.asarray(np.asarray(v, dtype=np.float64)) for n, v in case.p_params.items()}
    qa = {n: jnp.asarray(np.asarray(v, dtype=np.float64)) for n, v in case.q_params.items()}

    def total(pa, qa):
        return jnp.sum(kldiv.kl_divergence(*case.make(pa, qa)))

    value = jax.jit(total)(pa, qa)
    if not math.isfinite(float(value)):
        pytest.skip("infinite for these parameters")
    grad_p, grad_q = jax.jit(jax.grad(total, argnums=(0, 1)))(pa, qa)
    tp = {
        n: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=n in names_p)
        for n, v in case.p_params.items()
    }
    tq = {
        n: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=n in names_q)
        for n, v in case.q_params.items()
    }
    kldiv.kl_divergence(*case.make(tp, tq)).sum().backward()
    for names, grads, tensors in ((names_p, grad_p, tp), (names_q, grad_q, tq)):
        for n in names:
            g = np.asarray(grads[n])
            assert np.all(np.isfinite(g)), (n, g)
            torch_grad = tensors[n].grad
            expected = np.zeros_like(g) if torch_grad is None else torch_grad.numpy()
            np.testing.assert_allclose(g, expected, rtol=1e-7, atol=1e-9)


def test_normal_against_a_vanishing_scale_is_inf_without_a_warning():
    """Regression: KL(N(0, 1) ‖ N(0, 1e-300)) is +inf with no overflow RuntimeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = kldiv.kl_divergence(D.Normal(0.0, 1.0), D.Normal(0.0, 1e-300))
    assert float(value) == math.inf
