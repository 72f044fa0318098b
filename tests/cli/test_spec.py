"""Distribution specs: what the grammar accepts, and hostile or malformed text refused fast."""

from __future__ import annotations

import builtins
import math

import numpy as np
import pytest

import kldiv
from kldiv import distributions as D
from kldiv.cli._spec import MAX_DEPTH, MAX_LENGTH, SpecError, family_names, parse_distribution


def test_scalars_become_the_family_parameters():
    """Positional and keyword numbers, signs, scientific notation and named constants."""
    normal = parse_distribution("Normal(-1.5e0, scale=+2)")
    assert isinstance(normal, D.Normal)
    assert (float(normal.loc), float(normal.scale)) == (-1.5, 2.0)
    t = parse_distribution("  StudentT(3, 0, pi)  ")
    assert isinstance(t, D.StudentT)
    assert (float(t.df), float(t.loc), float(t.scale)) == (3.0, 0.0, math.pi)
    uniform = parse_distribution("Uniform(-e, 1e-3)")
    assert (float(uniform.low), float(uniform.high)) == (-math.e, 1e-3)


def test_lists_become_float64_arrays():
    """Lists (and tuples) are float64 NumPy arrays; nested lists are matrices."""
    categorical = parse_distribution("Categorical([0.2, 0.8])")
    assert isinstance(categorical.probs, np.ndarray)
    assert categorical.probs.dtype == np.float64
    np.testing.assert_array_equal(categorical.probs, [0.2, 0.8])
    mvn = parse_distribution("MultivariateNormal((0, 1), covariance_matrix=[[2, 0.5], [0.5, 1]])")
    assert isinstance(mvn, D.MultivariateNormal)
    np.testing.assert_array_equal(mvn.loc, [0.0, 1.0])
    np.testing.assert_array_equal(mvn.covariance_matrix, [[2.0, 0.5], [0.5, 1.0]])
    assert mvn.event_shape == (2,)


def test_nested_distributions():
    """Independent and MixtureSameFamily take specs; the result matches direct construction."""
    independent = parse_distribution("Independent(Normal([0, 0], [1, 2]), 1)")
    assert isinstance(independent, D.Independent)
    assert independent.event_shape == (2,)
    mixture = parse_distribution(
        "MixtureSameFamily(Categorical([.3, .7]), Normal([-1, 1], [1, 1]))"
    )
    direct = D.MixtureSameFamily(
        D.Categorical(np.array([0.3, 0.7])), D.Normal(np.array([-1.0, 1.0]), np.ones(2))
    )
    x = np.linspace(-4, 4, 9)
    np.testing.assert_allclose(mixture.log_prob(x), direct.log_prob(x), rtol=1e-14)


def test_every_family_name_is_accepted_and_none_other():
    """The names are the distribution classes of kldiv.distributions (and nothing else)."""
    names = family_names()
    assert "Normal" in names
    assert "Distribution" not in names
    assert "kl_divergence" not in names
    for name in names:
        assert issubclass(getattr(D, name), D.Distribution)


def test_never_evaluates(monkeypatch):
    """Parsing works with eval and exec gone: the spec is walked, not run."""

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert isinstance(parse_distribution("Normal(0, 1)"), D.Normal)
    with pytest.raises(SpecError):
        parse_distribution("__import__('os').system('echo hi')")


HOSTILE = [
    ('__import__("os").system("touch PWNED")', "got attribute access (.) at column 1"),
    ('__import__("os")', "unknown distribution '__import__' at column 1"),
    ("Normal.__class__", "got attribute access (.) at column 1"),
    ("Normal(0, 1).__class__", "got attribute access (.)"),
    ("(lambda: 1)()", "got a lambda at column 2"),
    ("Normal(*[0, 1])", "unpacking (*) is not allowed at column 8"),
    ("Normal(**{'loc': 0, 'scale': 1})", "unpacking (**) is not allowed"),
    ("Normal(10**10**10, 1)", "got arithmetic (write the number itself) at column 8"),
    ("Normal(0, 2**0.5)", "got arithmetic"),
    ("Normal([0] * 3, 1)", "got arithmetic"),
    ("Normal('0', 1)", "got a str literal ('0') at column 8"),
    ("Normal(f'{0}', 1)", "got an f-string at column 8"),
    ("Normal(0, 1)[0]", "got indexing ([...]) at column 1"),
    ("Normal(0, 1) + Normal(0, 1)", "got arithmetic"),
    ("Normal([x for x in (0, 1)], 1)", "got a comprehension at column 8"),
    ("Normal({0: 1}, 1)", "got a dict at column 8"),
    ("Normal(True, 1)", "got a bool literal (True)"),
    ("Normal(None, 1)", "got a NoneType literal (None)"),
    ("Normal(1j, 1)", "got a complex literal (1j)"),
    ("Normal(0, ---1)", "a repeated sign at column 11"),
    ("Normal(os, 1)", "unknown name 'os' (numbers may use ['e', 'inf', 'nan', 'pi'])"),
    ("Normal(0, 1, validate=False)", "Normal has no parameter 'validate' (it takes loc, scale)"),
    ("Normal(0, 1); import os", "invalid syntax at column 13"),
    ("import os", "invalid syntax"),
    ("Normal(0, 1", "invalid syntax ('(' was never closed) at column 7"),
    ("Normal(0, 1)\x00", "invalid syntax (source code string cannot contain null bytes)"),
    ("Normal(" + "1" * 5000 + ", 1)", "Exceeds the limit"),
    ("Normal(" + "9" * 30 + ", 1)", "an integer beyond 2**53 (write it as a float) at column 8"),
    ("Normal(" + "[" * 40 + "0" + "]" * 40 + ", 1)", f"nested deeper than {MAX_DEPTH}"),
    ("Normal(0, " + "(" * 500 + "1" + ")" * 500 + ")", f"nested deeper than {MAX_DEPTH}"),
    ("-" * 10_000 + "1", "a repeated sign at column 1"),
    ("Normal(0, - +1)", "a repeated sign at column 11"),
    ("a" * 10**7, f"longer than {MAX_LENGTH} characters (10000000)"),
    ("Normal(" + ",".join(["[0]"] * 30_000) + ")", f"longer than {MAX_LENGTH} characters"),
    ("Normal(-[0, 1], 1)", "expected a number; got a list at column 9"),
    ("Normal(0, 1)(2)", "expected a distribution name; got a call at column 1"),
    ("1.0", "expected a distribution call such as Normal(0, 1); got a float literal"),
    ("", "expected a call such as Normal(0, 1)"),
    ("   ", "expected a call such as Normal(0, 1)"),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_and_malformed_specs_are_refused(monkeypatch, tmp_path, text, message):
    """Each is a SpecError (a KLDivError) naming what was wrong and where; nothing runs."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as info:
        parse_distribution(text)
    assert isinstance(info.value, kldiv.KLDivError)
    assert message in str(info.value)
    assert "bad distribution spec" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_element_cap():
    """More numbers than MAX_ELEMENTS: refused at the number that goes over (the scale)."""
    from kldiv.cli import _spec

    text = "Normal([" + ",".join(["0"] * 49) + "], 1)"
    original = _spec.MAX_ELEMENTS
    try:
        _spec.MAX_ELEMENTS = 49
        with pytest.raises(SpecError, match="more than 49 numbers at column 109"):
            parse_distribution(text)
    finally:
        _spec.MAX_ELEMENTS = original
    assert parse_distribution(text).loc.shape == (49,)


def test_unknown_name_suggests_and_lists():
    """An unknown family: the closest name and every valid name."""
    with pytest.raises(SpecError) as info:
        parse_distribution("Normall(0, 1)")
    message = str(info.value)
    assert "unknown distribution 'Normall' at column 1 (did you mean 'Normal'?). " in message
    assert "Valid names: " + ", ".join(family_names()) in message
    with pytest.raises(SpecError, match="did you mean 'StudentT'"):
        parse_distribution("studentt(3)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Normal(0)", "Normal: missing a required argument: 'scale' (it takes loc, scale)"),
        ("Normal(0, 1, 2)", "Normal takes at most 2 positional arguments (loc, scale); got 3"),
        ("Normal(0, loc=1)", "multiple values for argument 'loc'"),
        ("Normal(0, sigma=1)", "Normal has no parameter 'sigma'"),
        ("Normal(Normal(0, 1), 1)", "`loc` of Normal takes numbers, not a distribution"),
        ("Independent([0, 1], 1)", "`base_distribution` of Independent takes a distribution"),
        ("Normal([[0, 1], [2]], 1)", "a ragged list (its rows must have the same length)"),
        ("Normal([], 1)", "an empty list at column 8"),
    ],
)
def test_call_shape_errors(text, message):
    """Arguments that do not fit the family's signature are named against it."""
    with pytest.raises(SpecError, match=None) as info:
        parse_distribution(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "parameter"),
    [
        ("Normal(0, -1)", "`scale` of Normal"),
        ("Normal(-inf, 1)", "`loc` of Normal"),
        ("Normal(nan, 1)", "`loc` of Normal"),
        ("Categorical([0.2, 0.9])", "`probs` of Categorical"),
        ("Independent(Normal([0, 0], [1, 1]), 1.5)", "`reinterpreted_batch_ndims` of Independent"),
    ],
)
def test_parameter_values_are_checked_by_the_family(text, parameter):
    """Bad parameter values: the distribution's own KLDivError names the parameter."""
    with pytest.raises(kldiv.KLDivError) as info:
        parse_distribution(text)
    assert not isinstance(info.value, SpecError)
    assert parameter in str(info.value)


def test_repeated_keyword_is_named():
    """Normal(loc=0, loc=1) says `loc` is given twice (not that `scale` is missing)."""
    with pytest.raises(SpecError, match="'loc' is given twice at column 15"):
        parse_distribution("Normal(loc=0, loc=1)")
