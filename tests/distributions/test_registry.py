"""register_kl / kl_divergence: dispatch, ambiguity, duplicates, errors, units, namespaces."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import kldiv
from kldiv import distributions as D
from kldiv.distributions import _registry


@pytest.fixture
def clean_registry():
    """Registrations made by a test are undone after it."""
    saved = dict(_registry._REGISTRY)
    yield
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(saved)
    _registry._MEMO.clear()


class _Child(D.Normal):
    pass


class _GrandChild(_Child):
    pass


def _constant(value):
    def kl(p, q):
        return np.full(np.broadcast_shapes(p.batch_shape, q.batch_shape), float(value))

    return kl


def test_worked_example_through_distributions():
    """Normal(0,1) ‖ Normal(1,2) is log 2 + 2/8 - 1/2 = 0.4431..."""
    value = kldiv.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 2.0))
    assert float(value) == pytest.approx(math.log(2.0) + 2.0 / 8.0 - 0.5, rel=1e-14)


def test_subclass_inherits_the_base_pair():
    """A subclass without its own registration uses its base classes' closed form."""
    value = kldiv.kl_divergence(_Child(0.0, 1.0), D.Normal(1.0, 2.0))
    assert float(value) == pytest.approx(0.4431471805599453)


def test_most_specific_pair_wins(clean_registry):
    """The registration closest to the argument types is used."""
    kldiv.register_kl(_Child, D.Normal)(_constant(7.0))
    assert float(kldiv.kl_divergence(_GrandChild(0.0, 1.0), D.Normal(0.0, 1.0))) == 7.0
    assert float(kldiv.kl_divergence(D.Normal(0.0, 1.0), D.Normal(0.0, 1.0))) == 0.0


def test_registration_clears_the_memo(clean_registry):
    """A lookup memoised before a new registration does not hide it."""
    assert float(kldiv.kl_divergence(_Child(0.0, 1.0), _Child(0.0, 1.0))) == 0.0
    kldiv.register_kl(_Child, _Child)(_constant(3.0))
    assert float(kldiv.kl_divergence(_Child(0.0, 1.0), _Child(0.0, 1.0))) == 3.0


def test_ambiguous_pair_warns_and_names_the_fix(clean_registry):
    """Two equally specific matches warn with the register_kl call that settles it."""
    kldiv.register_kl(_Child, D.Normal)(_constant(1.0))
    kldiv.register_kl(D.Normal, _Child)(_constant(2.0))
    with pytest.warns(RuntimeWarning, match=r"register_kl\(_Child, _Child\)"):
        kldiv.kl_divergence(_Child(0.0, 1.0), _Child(0.0, 1.0))
    kldiv.register_kl(_Child, _Child)(_constant(3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(kldiv.kl_divergence(_Child(0.0, 1.0), _Child(0.0, 1.0))) == 3.0


def test_duplicate_registration_raises_unless_override(clean_registry):
    """Registering a pair twice is an error naming the existing function; override replaces."""
    with pytest.raises(kldiv.KLDivError, match=r"registered already.*override=True"):
        kldiv.register_kl(D.Normal, D.Normal)(_constant(1.0))
    kldiv.register_kl(D.Normal, D.Normal, override=True)(_constant(5.0))
    assert float(kldiv.kl_divergence(D.Normal(0.0, 1.0), D.Normal(0.0, 1.0))) == 5.0


@pytest.mark.parametrize("bad", [int, "Normal", D.Normal(0.0, 1.0), object])
def test_register_rejects_non_distribution_types(bad):
    """Only Distribution subclasses can be registered (torch's precedence bug avoided)."""
    with pytest.raises(kldiv.KLDivError, match="`type_p` must be a subclass"):
        kldiv.register_kl(bad, D.Normal)


def test_unknown_pair_raises_no_closed_form_pointing_to_estimate(clean_registry):
    """No registered pair: NoClosedFormError (NotImplementedError and KLDivError)."""

    class Lonely(D.Normal):
        pass

    _registry._REGISTRY.pop((D.Normal, D.Normal))
    _registry._MEMO.clear()
    with pytest.raises(kldiv.NoClosedFormError, match=r"KL\(Lonely ‖ Normal\).*kldiv.estimate"):
        kldiv.kl_divergence(Lonely(0.0, 1.0), D.Normal(0.0, 1.0))
    assert issubclass(kldiv.NoClosedFormError, NotImplementedError)
    assert issubclass(kldiv.NoClosedFormError, kldiv.KLDivError)


def test_base_two_gives_bits():
    """base=2 divides by log 2."""
    nats = kldiv.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 2.0))
    bits = kldiv.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 2.0), base=2)
    assert float(bits) == pytest.approx(float(nats) / math.log(2.0), rel=1e-15)
    with pytest.raises(kldiv.KLDivError, match="`base`"):
        kldiv.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 2.0), base=-1)


def test_batch_shapes_broadcast():
    """A (3, 1) batch against a (4,) batch gives (3, 4) values."""
    p = D.Normal(np.zeros((3, 1)), 1.0)
    q = D.Normal(np.arange(4.0), 2.0)
    assert kldiv.kl_divergence(p, q).shape == (3, 4)


def test_batch_shapes_that_do_not_broadcast_are_a_kldiv_error():
    """A (3,) batch against a (2,) batch names both shapes (was NumPy's bare ValueError)."""
    p, q = D.Normal(np.zeros(3), 1.0), D.Normal(np.zeros(2), 1.0)
    with pytest.raises(kldiv.KLDivError, match=r"batch shapes of `p` and `q`.*\(3,\).*\(2,\)"):
        kldiv.kl_divergence(p, q)
    with pytest.raises(kldiv.KLDivError, match=r"batch shapes of `p` and `q`.*\(3,\).*\(2,\)"):
        kldiv.estimate(p, D.StudentT(np.full(2, 3.0)))


def test_not_a_distribution_is_a_clear_error():
    """A plain array as P names the argument and what arrived."""
    with pytest.raises(kldiv.KLDivError, match=r"`p` must be a kldiv distribution.*ndarray"):
        kldiv.kl_divergence(np.zeros(3), D.Normal(0.0, 1.0))


def test_numpy_prior_moves_to_the_posterior_library():
    """Normal(mu_tensor, sigma_tensor) ‖ Normal(0.0, 1.0): the prior moves to torch."""
    torch = pytest.importorskip("torch")
    mu = torch.tensor([0.5, -1.0], dtype=torch.float32, requires_grad=True)
    value = kldiv.kl_divergence(D.Normal(mu, torch.ones(2)), D.Normal(0.0, 1.0))
    assert isinstance(value, torch.Tensor)
    assert value.dtype == torch.float32
    value.sum().backward()
    np.testing.assert_allclose(mu.grad.numpy(), [0.5, -1.0], rtol=1e-6)


def test_two_non_numpy_libraries_do_not_mix():
    """Torch P against jax Q is an error naming both libraries."""
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    with pytest.raises(kldiv.KLDivError, match="same array library"):
        kldiv.kl_divergence(D.Normal(torch.tensor(0.0), 1.0), D.Normal(jnp.asarray(0.0), 1.0))


def test_invalid_parameter_names_parameter_and_value():
    """Scale <= 0 is an error naming the parameter, the family and the value."""
    with pytest.raises(
        kldiv.KLDivError,
        match=r"`scale` of Normal must hold finite numbers > 0; got -1.0 at batch index \(1,\)",
    ):
        D.Normal([0.0, 0.0], [1.0, -1.0])
    D.Normal([0.0, 0.0], [1.0, -1.0], validate=False)  # checks can be switched off


def test_parameters_that_do_not_broadcast():
    """Shapes (2,) and (3,) are named in the error."""
    with pytest.raises(kldiv.KLDivError, match=r"do not broadcast: `loc` \(2,\), `scale` \(3,\)"):
        D.Normal(np.zeros(2), np.ones(3))


def test_uniform_high_must_exceed_low():
    """Uniform(1, 1) is not a distribution."""
    with pytest.raises(kldiv.KLDivError, match="`high` of Uniform must be greater than `low`"):
        D.Uniform(1.0, 1.0)


def test_kl_to_self_is_zero_for_same_family_pairs():
    """KL(P ‖ P) = 0 exactly for every same-family pair in the case table."""
    import array_api_compat.numpy as np_xp

    from tests.distributions._cases import all_cases

    seen = set()
    for case in all_cases():
        if case.p is not case.q or case.p in seen or case.reference == "inf":
            continue
        seen.add(case.p)
        p_arrays = {n: np_xp.asarray(np.asarray(v, dtype=float)) for n, v in case.p_params.items()}
        q_arrays = {n: np_xp.asarray(np.asarray(v, dtype=float)) for n, v in case.q_params.items()}
        p, _ = case.make(p_arrays, q_arrays)
        value = np.asarray(kldiv.kl_divergence(p, p))
        np.testing.assert_allclose(value, 0.0, atol=1e-12, err_msg=case.id)


def test_traced_parameters_skip_value_checks():
    """Under jax.jit an invalid scale cannot be read: no error, NaN-free code path runs."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    @jax.jit
    def kl(scale):
        return kldiv.kl_divergence(D.Normal(0.0, scale), D.Normal(0.0, 1.0))

    assert math.isfinite(float(kl(jnp.asarray(2.0))))


def test_support_mismatch_is_inf_with_zero_gradient():
    """Normal ‖ Exponential is +inf; backward() works and gives a zero gradient."""
    torch = pytest.importorskip("torch")
    loc = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    value = kldiv.kl_divergence(D.Normal(loc, 1.0), D.Exponential(2.0))
    assert bool(torch.all(value == math.inf))
    value.sum().backward()
    assert loc.grad.tolist() == [0.0, 0.0]


def test_docs_pair_table_is_current():
    """docs/distributions.md lists exactly the registered pairs (python docs/pairs_table.py)."""
    import pathlib
    import runpy

    root = pathlib.Path(__file__).resolve().parents[2]
    table = runpy.run_path(str(root / "docs" / "pairs_table.py"))["table"]()
    assert table in (root / "docs" / "distributions.md").read_text()
