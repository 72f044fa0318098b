"""kldiv.Estimate: value ± stderr with its method, units, confidence interval and batches."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from kldiv import KLDivError
from kldiv._array_api import to_numpy
from kldiv.estimators import Estimate
from tests._helpers import asarray, assert_close

Z_95 = 1.959963984540054


# ---------------------------------------------------------------------------
# Single values


def test_repr_matches_the_issue():
    """The readable form of the issue: value ± stderr, unit, method and n."""
    assert repr(Estimate(0.0201355, 0.00031, "monte_carlo", 40000)) == (
        "0.0201 ± 0.0003 nats (monte_carlo, n=40000)"
    )


@pytest.mark.parametrize(
    ("base", "unit"), [(None, "nats"), (2, "bits"), (10, "hartleys"), (math.e, "nats"), (3, "")]
)
def test_repr_names_the_unit(base, unit):
    """The unit follows `base`; other bases are spelled out."""
    text = repr(Estimate(0.5, 0.01, "knn", 10, base=base))
    assert text.endswith(f"{unit or 'units of log base 3'} (knn, n=10)")


@pytest.mark.parametrize(
    ("value", "stderr", "shown"),
    [
        (0.0201355, 0.00031, "0.0201 ± 0.0003"),
        (0.0201355, 0.00012, "0.02014 ± 0.00012"),  # leading 1: two digits
        (123.4, 31.0, "120 ± 30"),
        (-0.013, 0.021, "-0.01 ± 0.02"),
        (0.0201355, 0.0, "0.0201355 ± 0"),  # exact
        (0.5, math.nan, "0.5 ± ?"),  # unknown error
        (math.inf, 0.0, "inf ± 0"),
        (0.0201355, 3e-9, "2.0135500e-02 ± 3e-09"),
    ],
)
def test_value_is_rounded_to_what_the_error_supports(value, stderr, shown):
    """Digits beyond the standard error's first significant one are not printed."""
    assert repr(Estimate(value, stderr, "monte_carlo", 1)).startswith(shown + " ")


def test_float_and_format():
    """float() gives the value; a format spec formats it as a float, none as the repr."""
    est = Estimate(0.0201355, 0.00031, "monte_carlo", 40000)
    assert float(est) == 0.0201355
    assert f"{est:.3f}" == "0.020"
    assert f"{est}" == repr(est)


def test_ci_is_the_normal_interval():
    """ci(level) = value ± z_{(1+level)/2} stderr."""
    lo, hi = Estimate(1.0, 0.1, "monte_carlo", 100).ci()
    assert lo == pytest.approx(1.0 - Z_95 * 0.1, rel=1e-14)
    assert hi == pytest.approx(1.0 + Z_95 * 0.1, rel=1e-14)
    lo99, hi99 = Estimate(1.0, 0.1, "monte_carlo", 100).ci(0.99)
    assert hi99 - lo99 == pytest.approx(2 * 2.5758293035489 * 0.1, rel=1e-12)


def test_ci_of_exact_infinite_and_unknown_errors():
    """Standard error 0: (v, v); inf: (-inf, inf); NaN: NaN bounds; an infinite value stays."""
    assert Estimate(0.3, 0.0, "exact", 1).ci() == (0.3, 0.3)
    assert Estimate(0.3, math.inf, "monte_carlo", 1).ci() == (-math.inf, math.inf)
    assert Estimate(math.inf, 0.0, "exact", 1).ci() == (math.inf, math.inf)
    assert all(math.isnan(b) for b in Estimate(0.3, math.nan, "knn", 1).ci())


def test_to_base_converts_value_and_stderr():
    """Nats to bits divides by log 2; and back again."""
    est = Estimate(0.0201355, 0.00031, "monte_carlo", 40000, details={"bias_nats": 0.1})
    bits = est.to_base(2)
    assert bits.base == 2.0
    assert bits.value == pytest.approx(0.0201355 / math.log(2), rel=1e-15)
    assert bits.stderr == pytest.approx(0.00031 / math.log(2), rel=1e-15)
    assert bits.details == {"bias_nats": 0.1}
    assert bits.to_base(None).value == pytest.approx(0.0201355, rel=1e-15)
    assert repr(bits) == "0.0290 ± 0.0004 bits (monte_carlo, n=40000)"


def test_frozen_and_details_copied():
    """Fields cannot be reassigned; the details dict is the Estimate's own copy."""
    details = {"k": 1}
    est = Estimate(0.1, 0.01, "knn", 10, details=details)
    details["k"] = 2
    assert est.details == {"k": 1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.value = 0.2  # type: ignore[misc]


def test_numpy_scalars_become_floats():
    """NumPy scalars are stored as Python floats."""
    est = Estimate(np.float64(0.25), np.float32(0.5), "knn", np.int64(7))
    assert type(est.value) is float
    assert type(est.stderr) is float
    assert type(est.n) is int
    assert not est.is_batch


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stderr": -0.1}, "`stderr` must be >= 0"),
        ({"stderr": np.array([0.1, -0.1])}, "`stderr` must be >= 0"),
        ({"value": "0.1"}, "`value` must be a real number or an array"),
        ({"method": ""}, "`method` must be a non-empty string"),
        ({"n": -1}, "`n` must be an integer >= 0"),
        ({"n": 1.5}, "`n` must be an integer >= 0"),
        ({"base": 1}, "`base` must be None"),
        ({"details": [1, 2]}, "`details` must be a mapping"),
    ],
)
def test_bad_fields_raise(kwargs, message):
    """Each field is checked, and the message names it."""
    fields = {"value": 0.1, "stderr": 0.01, "method": "knn", "n": 10} | kwargs
    with pytest.raises(KLDivError, match=message):
        Estimate(**fields)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 95, "0.95"])
def test_bad_level_raises(level):
    """The level of a confidence interval is strictly between 0 and 1."""
    with pytest.raises(KLDivError, match="`level` must be a number strictly between 0 and 1"):
        Estimate(0.1, 0.01, "knn", 10).ci(level)


def test_nan_stderr_is_allowed():
    """NaN marks an unknown standard error, not an invalid one."""
    assert math.isnan(Estimate(0.1, math.nan, "knn", 10).stderr)


# ---------------------------------------------------------------------------
# Batches of estimates: arrays of any backend


def test_batch_ci_on_every_backend(xp):
    """Array value and stderr give array bounds of the same namespace."""
    value = asarray(xp, [0.1, 0.2, math.inf])
    stderr = asarray(xp, [0.01, math.inf, 0.0])
    est = Estimate(value, stderr, "monte_carlo", 1000)
    assert est.is_batch
    lo, hi = est.ci()
    assert_close(lo, [0.1 - Z_95 * 0.01, -math.inf, math.inf], xp=xp, dtype=xp.float64)
    assert_close(hi, [0.1 + Z_95 * 0.01, math.inf, math.inf], xp=xp, dtype=xp.float64)


def test_batch_with_scalar_stderr(xp):
    """A float stderr applies to every value of the batch."""
    est = Estimate(asarray(xp, [0.1, 0.2]), 0.01, "monte_carlo", 100)
    lo, _ = est.ci()
    assert_close(lo, [0.1 - Z_95 * 0.01, 0.2 - Z_95 * 0.01], xp=xp, dtype=xp.float64)


def test_batch_to_base(xp):
    """to_base scales arrays too."""
    est = Estimate(asarray(xp, [0.1, 0.2]), asarray(xp, [0.01, 0.02]), "knn", 10).to_base(2)
    assert_close(est.value, np.array([0.1, 0.2]) / math.log(2), xp=xp)
    assert_close(est.stderr, np.array([0.01, 0.02]) / math.log(2), xp=xp)


def test_float_of_size_one_array(xp):
    """float() works for a size-1 batch and refuses a larger one."""
    assert float(Estimate(asarray(xp, [0.25]), asarray(xp, [0.01]), "knn", 10)) == 0.25
    with pytest.raises(TypeError, match=r"float\(\) needs a single estimate"):
        float(Estimate(asarray(xp, [0.25, 0.5]), 0.01, "knn", 10))


def test_batch_repr(xp):
    """A batch prints its arrays, unit, method and n."""
    est = Estimate(asarray(xp, [0.1, 0.2]), asarray(xp, [0.01, 0.02]), "knn", 10, base=2)
    assert repr(est) == "Estimate(value=[0.1, 0.2], stderr=[0.01, 0.02], bits (knn, n=10))"


def test_zero_dimensional_arrays_print_as_one_value(xp):
    """A 0-d array (e.g. a Monte Carlo mean) is one estimate, not a batch."""
    est = Estimate(asarray(xp, 0.0201355), asarray(xp, 0.00031), "monte_carlo", 40000)
    assert not est.is_batch
    assert repr(est) == "0.0201 ± 0.0003 nats (monte_carlo, n=40000)"
    assert float(est) == 0.0201355


def test_batch_negative_stderr_raises(xp):
    """Negative standard errors in an array are refused on every backend."""
    with pytest.raises(KLDivError, match="`stderr` must be >= 0"):
        Estimate(asarray(xp, [0.1, 0.2]), asarray(xp, [0.01, -0.02]), "knn", 10)


def test_mixed_libraries_raise():
    """Value and standard error arrays must come from one library."""
    torch = pytest.importorskip("torch")
    with pytest.raises(KLDivError, match="same array library"):
        Estimate(np.array([0.1]), torch.tensor([0.01]), "knn", 10)


def test_torch_value_keeps_its_graph():
    """A differentiable value (e.g. a Monte Carlo mean) stays a tensor with its gradient."""
    torch = pytest.importorskip("torch")
    theta = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    est = Estimate(theta**2, torch.tensor([0.01], dtype=torch.float64), "monte_carlo", 10)
    est.value.sum().backward()
    assert to_numpy(theta.grad).tolist() == [0.6]
    lo, hi = est.ci()
    assert lo.requires_grad
    assert hi.requires_grad
