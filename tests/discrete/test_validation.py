"""Bad input raises a KLDivError that names the argument, on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

import kldiv
from kldiv._array_api import to_numpy
from tests._helpers import asarray

GOOD = [0.25, 0.75]

PROB_FUNCTIONS = [
    kldiv.kl_from_probs,
    kldiv.js_from_probs,
    kldiv.cross_entropy,
    lambda p, q, **kw: kldiv.entropy(p, **kw),
]
PAIR_FUNCTIONS = [
    (kldiv.kl_from_probs, ("p", "q")),
    (kldiv.kl_from_log_probs, ("log_p", "log_q")),
    (kldiv.kl_from_logits, ("p_logits", "q_logits")),
    (kldiv.js_from_probs, ("p", "q")),
    (kldiv.js_from_log_probs, ("log_p", "log_q")),
    (kldiv.js_from_logits, ("p_logits", "q_logits")),
    (kldiv.cross_entropy, ("p", "q")),
    (kldiv.cross_entropy_from_log_probs, ("log_p", "log_q")),
    (kldiv.cross_entropy_from_logits, ("p_logits", "q_logits")),
    (kldiv.generalized_kl, ("p", "q")),
]


def _inputs(xp, f, names):
    if names[0] == "log_p":
        return asarray(xp, np.log(GOOD)), asarray(xp, np.log(GOOD))
    return asarray(xp, GOOD), asarray(xp, GOOD)


def test_errors_are_value_errors():
    """KLDivError is a ValueError, so generic handlers keep working."""
    assert issubclass(kldiv.KLDivError, ValueError)


@pytest.mark.parametrize("bad", [-0.25, math.nan, math.inf])
@pytest.mark.parametrize("position", [0, 1])
def test_bad_probability_names_argument(xp, bad, position):
    """Negative, NaN or infinite probabilities raise, naming p or q and the index."""
    values = [asarray(xp, GOOD), asarray(xp, GOOD)]
    values[position] = asarray(xp, [bad, 1.0 - bad if math.isfinite(bad) else 0.5])
    name = "pq"[position]
    with pytest.raises(kldiv.KLDivError, match=rf"`{name}` must hold probabilities.*\(0,\)"):
        kldiv.kl_from_probs(*values)


def test_rows_not_summing_to_one(xp):
    """A row off the simplex raises, naming its batch index and its sum."""
    p = asarray(xp, [[0.5, 0.5], [0.5, 0.4]])
    with pytest.raises(
        kldiv.KLDivError, match=r"`q` must be probabilities summing to 1.*\(1,\) sums to 0\.9"
    ):
        kldiv.kl_from_probs(asarray(xp, [[0.5, 0.5], [0.5, 0.5]]), p)


def test_no_silent_renormalisation(xp):
    """Unlike scipy.stats.entropy, [.5, .5] vs [.3, .3] is an error, not 0 (scipy#12553)."""
    with pytest.raises(kldiv.KLDivError, match="summing to 1"):
        kldiv.kl_from_probs(asarray(xp, [0.5, 0.5]), asarray(xp, [0.3, 0.3]))


def test_tolerance_depends_on_dtype(xp):
    """A float32 row off by 1e-4 passes; a float64 row off by 1e-4 does not."""
    near = [0.5, 0.5 + 1e-4]
    kldiv.kl_from_probs(asarray(xp, near, xp.float32), asarray(xp, GOOD, xp.float32))
    with pytest.raises(kldiv.KLDivError, match=r"within 1\.0e-06"):
        kldiv.kl_from_probs(asarray(xp, near), asarray(xp, GOOD))


def test_log_probabilities_checked(xp):
    """NaN or +inf log-probabilities, or rows whose exp does not sum to 1, raise."""
    good = asarray(xp, np.log(GOOD))
    with pytest.raises(kldiv.KLDivError, match="`log_q` must hold log-probabilities"):
        kldiv.kl_from_log_probs(good, asarray(xp, [math.nan, 0.0]))
    with pytest.raises(kldiv.KLDivError, match="`log_p` must hold log-probabilities"):
        kldiv.kl_from_log_probs(asarray(xp, [math.inf, 0.0]), good)
    with pytest.raises(kldiv.KLDivError, match="`log_p` must be log-probabilities"):
        kldiv.kl_from_log_probs(asarray(xp, [0.0, 0.0]), good)


def test_logits_checked(xp):
    """NaN or +inf logits, or a row with every logit -inf, raise."""
    good = asarray(xp, [0.0, 1.0])
    with pytest.raises(kldiv.KLDivError, match="`q_logits` must hold logits"):
        kldiv.kl_from_logits(good, asarray(xp, [math.nan, 0.0]))
    with pytest.raises(kldiv.KLDivError, match="`p_logits` must hold logits"):
        kldiv.kl_from_logits(asarray(xp, [math.inf, 0.0]), good)
    with pytest.raises(kldiv.KLDivError, match="`p_logits` must give each distribution some mass"):
        kldiv.kl_from_logits(asarray(xp, [[-math.inf, -math.inf]]), good)


@pytest.mark.parametrize(("f", "names"), PAIR_FUNCTIONS)
def test_shapes_that_do_not_broadcast(xp, f, names):
    """Batch shapes that do not broadcast raise, naming both shapes."""
    a = asarray(xp, [[0.5, 0.5]] * 3)
    b = asarray(xp, [[0.5, 0.5]] * 2)
    with pytest.raises(kldiv.KLDivError, match=rf"do not broadcast: `{names[0]}` \(3, 2\)"):
        f(a, b)


@pytest.mark.parametrize(("f", "names"), PAIR_FUNCTIONS)
def test_event_axis_never_broadcasts(xp, f, names):
    """A size-1 event axis against a size-n one is an error, not a broadcast."""
    a = asarray(xp, [[0.5, 0.5]])
    b = asarray(xp, [[1.0]])
    with pytest.raises(
        kldiv.KLDivError, match=rf"`{names[1]}` of shape \(1, 1\) must have 2 entries"
    ):
        f(a, b)


@pytest.mark.parametrize("axis", [2, -3, 1.0, "last", None, True])
def test_bad_axis(xp, axis):
    """An axis that is not an integer in range raises."""
    p = asarray(xp, [[0.5, 0.5]])
    with pytest.raises(kldiv.KLDivError, match="`axis` must be"):
        kldiv.kl_from_probs(p, p, axis=axis)


def test_scalars_have_no_event_axis(xp):
    """0-d inputs raise: a distribution needs an event axis."""
    one = asarray(xp, 1.0)
    with pytest.raises(kldiv.KLDivError, match="at least one dimension"):
        kldiv.kl_from_probs(one, one)


@pytest.mark.parametrize("base", [0, 1, -2, math.inf, math.nan, "e", True])
def test_bad_base(base):
    """Base must be None or a positive finite number other than 1."""
    with pytest.raises(kldiv.KLDivError, match="`base` must be None"):
        kldiv.kl_from_probs(GOOD, GOOD, base=base)


@pytest.mark.parametrize("temperature", [0, -1.0, math.inf, math.nan, "2", None])
@pytest.mark.parametrize(
    "f", [kldiv.kl_from_logits, kldiv.js_from_logits, kldiv.cross_entropy_from_logits]
)
def test_bad_temperature(f, temperature):
    """Temperature must be a positive finite number."""
    with pytest.raises(kldiv.KLDivError, match="`temperature` must be a positive"):
        f([0.0, 1.0], [1.0, 0.0], temperature=temperature)


@pytest.mark.parametrize("beta", [-0.1, 1.5, math.nan, "half"])
def test_bad_beta(beta):
    """Beta must be in [0, 1]."""
    with pytest.raises(kldiv.KLDivError, match=r"`beta` must be a number in \[0, 1\]"):
        kldiv.js_from_probs(GOOD, GOOD, beta=beta)


def test_mixed_array_libraries():
    """A NumPy p with a torch q raises, naming both types."""
    torch = pytest.importorskip("torch")
    with pytest.raises(kldiv.KLDivError, match=r"same array library.*numpy.*torch"):
        kldiv.kl_from_probs(np.asarray(GOOD), torch.tensor(GOOD))


def test_non_numeric_input():
    """Strings, complex numbers and ragged lists raise, naming the argument."""
    with pytest.raises(kldiv.KLDivError, match="`p` must hold numbers"):
        kldiv.kl_from_probs(["a", "b"], GOOD)
    with pytest.raises(kldiv.KLDivError, match="`q` must be real-valued"):
        kldiv.kl_from_probs(GOOD, [0.5 + 0j, 0.5])
    with pytest.raises(kldiv.KLDivError, match="`p` must be an array or a nested sequence"):
        kldiv.kl_from_probs([[0.5, 0.5], [1.0]], GOOD)


def test_generalized_kl_rejects_negative_measures(xp):
    """generalized_kl needs finite non-negative entries, not normalised ones."""
    kldiv.generalized_kl(asarray(xp, [2.0, 3.0]), asarray(xp, [1.0, 1.0]))
    with pytest.raises(kldiv.KLDivError, match="`q` must hold non-negative values"):
        kldiv.generalized_kl(asarray(xp, [2.0, 3.0]), asarray(xp, [1.0, -1.0]))


@pytest.mark.parametrize("f", PROB_FUNCTIONS)
def test_validate_false_skips_checks(xp, f):
    """validate=False computes on unnormalised input instead of raising."""
    p, q = asarray(xp, [0.5, 0.6]), asarray(xp, [0.5, 0.5])
    f(p, q, validate=False)


def test_invalid_values_propagate_as_nan_without_checks(xp):
    """With the checks off, NaN and negative input give NaN, never a plausible number."""
    q = asarray(xp, GOOD)
    for bad in ([math.nan, 1.0], [-0.5, 1.5]):
        with np.errstate(invalid="ignore"):  # NumPy warns about log of a negative
            forward = kldiv.kl_from_probs(asarray(xp, bad), q, validate=False)
            reverse = kldiv.kl_from_probs(q, asarray(xp, bad), validate=False)
        assert math.isnan(float(to_numpy(forward)))
        assert math.isnan(float(to_numpy(reverse)))
    got = kldiv.kl_from_log_probs(
        asarray(xp, [math.nan, 0.0]), asarray(xp, np.log(GOOD)), validate=False
    )
    assert math.isnan(float(to_numpy(got)))


def test_global_default_can_be_switched_off(xp):
    """set_default_validate(False) applies to calls passing validate=None."""
    p, q = asarray(xp, [0.5, 0.6]), asarray(xp, GOOD)
    previous = kldiv.set_default_validate(False)
    try:
        kldiv.kl_from_probs(p, q)
        with pytest.raises(kldiv.KLDivError):
            kldiv.kl_from_probs(p, q, validate=True)
    finally:
        kldiv.set_default_validate(previous)
    with pytest.raises(kldiv.KLDivError):
        kldiv.kl_from_probs(p, q)
    with pytest.raises(kldiv.KLDivError, match="`enabled` must be True or False"):
        kldiv.set_default_validate("no")
    with pytest.raises(kldiv.KLDivError, match="`validate` must be True, False or None"):
        kldiv.kl_from_probs(q, q, validate="yes")


def test_traced_jax_skips_value_checks():
    """Under jax.jit the value checks cannot run; invalid input yields NaN, not an error."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    bad = jnp.asarray([-0.5, 1.5])
    with pytest.raises(kldiv.KLDivError):
        kldiv.kl_from_probs(bad, jnp.asarray(GOOD))  # eager JAX arrays are checked
    got = jax.jit(kldiv.kl_from_probs)(bad, jnp.asarray(GOOD))
    assert math.isnan(float(got))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torch_compile_traces_without_checks():
    """torch.compile sees no data-dependent branch from the checks (fullgraph works)."""
    torch = pytest.importorskip("torch")
    compiled = torch.compile(kldiv.kl_from_logits, fullgraph=True, backend="eager")
    p, q = torch.randn(4, 8, dtype=torch.float64), torch.randn(4, 8, dtype=torch.float64)
    torch.testing.assert_close(compiled(p, q), kldiv.kl_from_logits(p, q))


def test_empty_event_axis(xp):
    """A distribution over zero outcomes is an error, not a silent 0."""
    empty = xp.zeros((3, 0), dtype=xp.float64)
    with pytest.raises(kldiv.KLDivError, match="must have at least one entry"):
        kldiv.kl_from_logits(empty, empty)


def test_empty_batch_is_validated_without_error(xp):
    """Zero distributions pass the checks (no reduction over an empty array)."""
    empty = xp.zeros((0, 3), dtype=xp.float64)
    for f in (kldiv.kl_from_probs, kldiv.kl_from_log_probs, kldiv.kl_from_logits):
        assert tuple(f(empty, empty).shape) == (0,)
