"""torch.distributions and SciPy objects as inputs to kl_divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import kldiv
from kldiv import distributions as D
from tests.distributions._cases import all_cases

torch = pytest.importorskip("torch")
td = torch.distributions


def _torch_pair(case):
    """The case's P and Q as torch.distributions objects (None when torch lacks one)."""
    if case.build is not None:
        return None
    p_cls = getattr(td, case.p.__name__, None)
    q_cls = getattr(td, case.q.__name__, None)
    if p_cls is None or q_cls is None:
        return None

    def make(cls, params):
        tensors = {}
        for name, value in params.items():
            tensor = torch.tensor(np.asarray(value, dtype=np.float64), requires_grad=True)
            tensors[name] = tensor
        return cls(**tensors, validate_args=False), tensors

    try:
        return make(p_cls, case.p_params), make(q_cls, case.q_params)
    except (TypeError, ValueError, NotImplementedError):
        return None


def _torch_cases():
    cases = []
    for case in all_cases():
        built = _torch_pair(case)
        if built is None:
            continue
        (tp, _), (tq, _) = built
        try:
            td.kl_divergence(tp, tq)
        except NotImplementedError:
            continue
        cases.append(case)
    return cases


TORCH_CASES = _torch_cases()


def test_torch_shared_pairs_are_many():
    """The comparison below covers a substantial share of torch's registry."""
    assert len({c.pair for c in TORCH_CASES}) >= 10


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c.id for c in TORCH_CASES])
def test_agrees_with_torch_distributions(case):
    """kldiv.kl_divergence(torch P, torch Q) equals torch.distributions.kl_divergence."""
    (tp, p_tensors), (tq, q_tensors) = _torch_pair(case)
    expected = td.kl_divergence(tp, tq)
    actual = kldiv.kl_divergence(tp, tq)
    assert isinstance(actual, torch.Tensor)
    np.testing.assert_allclose(
        actual.detach().numpy(), expected.detach().numpy(), rtol=1e-8, atol=1e-10
    )
    finite = torch.isfinite(expected)
    if not bool(finite.all()) or not expected.requires_grad:
        return
    tensors = [*p_tensors.values(), *q_tensors.values()]
    mine = torch.autograd.grad(actual.sum(), tensors, allow_unused=True, retain_graph=True)
    theirs = torch.autograd.grad(expected.sum(), tensors, allow_unused=True, retain_graph=True)
    for name, a, b in zip([*p_tensors, *q_tensors], mine, theirs, strict=True):
        if b is None or not bool(torch.isfinite(b).all()):
            continue  # torch's own gradient is NaN there (e.g. pytorch#15288)
        a = torch.zeros_like(b) if a is None else a
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-9, err_msg=name)


def test_torch_gradient_flows_to_the_user_parameters():
    """Gradients reach the tensors the user built the torch objects with."""
    loc = torch.tensor([0.3, -0.2], requires_grad=True)
    log_scale = torch.tensor([0.1, 0.0], requires_grad=True)
    p = td.Normal(loc, log_scale.exp())
    value = kldiv.kl_divergence(p, td.Normal(torch.zeros(2), torch.ones(2)))
    value.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), loc.detach().numpy(), rtol=1e-6)
    assert log_scale.grad is not None


def test_mixed_torch_and_kldiv_objects():
    """A torch P against a kldiv Q with torch parameters works."""
    p = td.Normal(torch.tensor(0.0), torch.tensor(1.0))
    q = D.Normal(torch.tensor(1.0), torch.tensor(2.0))
    assert float(kldiv.kl_divergence(p, q)) == pytest.approx(0.4431471805599453)


def test_unsupported_torch_class_is_a_clear_error():
    """A torch class kldiv does not mirror names itself: NoClosedFormError (NotImplementedError).

    (A TransformedDistribution over a convertible base is supported: equal
    transforms on both sides give the base's KL, as in torch.)
    """
    relaxed = td.RelaxedBernoulli(torch.tensor(0.5), probs=torch.tensor(0.3))
    with pytest.raises(
        kldiv.NoClosedFormError, match=r"no counterpart of torch\.distributions\.RelaxedBernoulli"
    ):
        kldiv.kl_divergence(relaxed, relaxed)
    transformed = td.TransformedDistribution(td.Normal(0.0, 1.0), [td.transforms.TanhTransform()])
    assert float(kldiv.kl_divergence(transformed, transformed)) == 0.0


SCIPY_LAWS = [
    (stats.norm(0.5, 2.0), [-1.0, 0.5, 3.0]),
    (stats.expon(scale=2.0), [0.1, 1.0, 5.0]),
    (stats.gamma(2.5, scale=0.5), [0.1, 1.0, 5.0]),
    (stats.uniform(-1.0, 3.0), [-0.5, 0.0, 1.9]),
]


@pytest.mark.parametrize(
    ("frozen", "points"), SCIPY_LAWS, ids=lambda v: getattr(v, "dist", None) and v.dist.name
)
def test_scipy_objects_convert_to_the_same_law(frozen, points):
    """from_scipy(frozen).log_prob equals frozen.logpdf."""
    d = D.from_scipy(frozen)
    np.testing.assert_allclose(d.log_prob(np.asarray(points)), frozen.logpdf(points), rtol=1e-12)


def test_scipy_pair_matches_kldiv_pair():
    """KL(gamma ‖ expon) from SciPy objects equals the kldiv objects' value."""
    value = kldiv.kl_divergence(stats.gamma(2.0, scale=0.5), stats.expon(scale=2.0))
    expected = kldiv.kl_divergence(D.Gamma(2.0, 2.0), D.Exponential(0.5))
    assert float(value) == pytest.approx(float(expected), rel=1e-14)
    assert math.isfinite(float(value))


@pytest.mark.parametrize(
    ("frozen", "match"),
    [
        (stats.expon(loc=1.0), "loc=1.0 has no kldiv counterpart"),
        (stats.beta(2.0, 3.0, scale=2.0), "scale=2.0 has no kldiv counterpart"),
        (stats.rayleigh(), "no counterpart of the SciPy distribution 'rayleigh'"),
    ],
)
def test_unrepresentable_scipy_objects_are_errors(frozen, match):
    """A shift or scale the kldiv family lacks, or an unknown family, is an error."""
    with pytest.raises(kldiv.KLDivError, match=match):
        D.from_scipy(frozen)
