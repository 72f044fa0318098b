"""``kldiv dist``: estimates of spec pairs against closed forms, quadrature and sums; errors."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import integrate, stats

from kldiv.cli import main
from tests._cli import error_line, run_kldiv

EXACT_NORMALS = math.log(2.0) + (1.0 + 1.0) / 8.0 - 0.5  # KL(N(0, 1) ‖ N(1, 2)) by hand


def _json(capsys, *argv: str) -> dict:
    assert main(["dist", "--json", *argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _error(capsys, *argv: str, code: int = 1) -> str:
    return error_line(capsys, ["dist", *argv], code)


def test_exact_pair(capsys):
    """Normal(0, 1) ‖ Normal(1, 2): the closed form, error 0, against the hand formula."""
    assert main(["dist", "Normal(0, 1)", "Normal(1, 2)"]) == 0
    assert capsys.readouterr().out == f"{EXACT_NORMALS:.6g} nats (exact)\n"
    data = _json(capsys, "Normal(0, 1)", "Normal(1, 2)")
    assert data["value"] == pytest.approx(EXACT_NORMALS, rel=1e-14)
    assert (data["stderr"], data["method"], data["n"], data["unit"]) == (0.0, "exact", 0, "nats")
    assert data["ci95"] == [data["value"], data["value"]]
    assert (data["p"], data["q"]) == ("Normal(0, 1)", "Normal(1, 2)")


def test_bits(capsys):
    """--base 2 divides the nats by log 2 and says bits."""
    data = _json(capsys, "--base", "2", "Normal(0, 1)", "Normal(1, 2)")
    assert data["value"] == pytest.approx(EXACT_NORMALS / math.log(2.0), rel=1e-14)
    assert (data["unit"], data["base"]) == ("bits", 2.0)


def test_multivariate_normal_against_the_textbook_formula(capsys):
    """A full-covariance pair against ½[tr(Σq⁻¹Σp) + Δᵀ Σq⁻¹ Δ − k + log det Σq / det Σp]."""
    p = "MultivariateNormal([0, 1], covariance_matrix=[[2, 0.5], [0.5, 1]])"
    q = "MultivariateNormal([1, -1], covariance_matrix=[[1, -0.2], [-0.2, 3]])"
    data = _json(capsys, p, q)
    cov_p, cov_q = np.array([[2, 0.5], [0.5, 1]]), np.array([[1, -0.2], [-0.2, 3]])
    delta = np.array([1.0, -1.0]) - np.array([0.0, 1.0])
    inverse = np.linalg.inv(cov_q)
    expected = 0.5 * (
        np.trace(inverse @ cov_p)
        + delta @ inverse @ delta
        - 2
        + np.log(np.linalg.det(cov_q) / np.linalg.det(cov_p))
    )
    assert data["value"] == pytest.approx(expected, rel=1e-12)
    assert data["method"] == "exact"


def test_quadrature_against_scipy(capsys):
    """Normal(0, 1) ‖ StudentT(3, 0, 1.5): no closed form; quadrature agrees with scipy quad."""
    p, q = stats.norm(0, 1), stats.t(3, 0, 1.5)
    expected, _ = integrate.quad(
        lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -np.inf, np.inf, epsabs=1e-13
    )
    data = _json(capsys, "Normal(0, 1)", "StudentT(3, 0, 1.5)")
    assert data["method"] == "quadrature"
    assert data["value"] == pytest.approx(expected, rel=1e-7)
    assert 0 < data["stderr"] < 1e-6
    assert main(["dist", "Normal(0, 1)", "StudentT(3, 0, 1.5)"]) == 0
    line = capsys.readouterr().out
    assert re.fullmatch(r"0\.2373\d\d ± \de-\d\d nats \(quadrature, n=\d+\)\n", line), line


def test_enumeration_against_a_direct_sum(capsys):
    """Poisson(3) ‖ Geometric(0.3) (on 0, 1, ...): enumeration equals the sum over the support."""
    k = np.arange(400)
    p, log_q = stats.poisson(3).pmf(k), stats.geom(0.3, loc=-1).logpmf(k)
    expected = np.sum(p * (stats.poisson(3).logpmf(k) - log_q))
    data = _json(capsys, "Poisson(3)", "Geometric(0.3)")
    assert data["method"] == "enumeration"
    assert data["value"] == pytest.approx(expected, rel=1e-8)  # a tail below 1e-13 is dropped


def test_monte_carlo_is_seeded_and_honest(capsys):
    """--method monte_carlo: the same seed gives the same value, within 5 stderr of exact."""
    argv = ["--method", "monte_carlo", "--max-samples", "20000", "Normal(0, 1)", "Normal(1, 2)"]
    first = _json(capsys, *argv, "--seed", "7")
    again = _json(capsys, *argv, "--seed", "7")
    other = _json(capsys, *argv, "--seed", "8")
    assert first == again
    assert first["value"] != other["value"]
    assert first["method"] == "monte_carlo"
    assert 2 <= first["n"] <= 20000
    assert abs(first["value"] - EXACT_NORMALS) < 5 * first["stderr"]
    low, high = first["ci95"]
    assert low == pytest.approx(first["value"] - 1.959964 * first["stderr"], rel=1e-6)
    assert high == pytest.approx(first["value"] + 1.959964 * first["stderr"], rel=1e-6)
    assert {"converged", "control_variate"} <= set(first["details"])


def test_unconverged_monte_carlo_says_so(capsys):
    """A budget too small for the tolerance: the value is printed with a note, exit 0."""
    p = "MultivariateNormal([0, 0], covariance_matrix=[[1, 0.5], [0.5, 1]])"
    q = "Independent(StudentT(3, [0, 0], [1, 1]), 1)"
    assert main(["dist", p, q, "--max-samples", "2000", "--rtol", "1e-6", "--atol", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\S+ ± \S+ nats \(monte_carlo, n=2000\)", lines[0]), lines
    assert lines[1].startswith("not converged")


def test_batch_of_pairs(capsys):
    """Batched parameters give one line per pair; --json gives lists."""
    assert main(["dist", "Normal([0, 1], 1)", "Normal(1, 2)"]) == 0
    lines = capsys.readouterr().out.splitlines()
    second = math.log(2.0) + 1.0 / 8.0 - 0.5  # KL(N(1, 1) ‖ N(1, 2))
    assert lines == [
        f"[0] {EXACT_NORMALS:.6g} nats",
        f"[1] {second:.6g} nats",
        "2 pairs, batch shape (2,) (exact)",
    ]
    data = _json(capsys, "Normal([0, 1], 1)", "Normal(1, 2)")
    assert data["value"] == [pytest.approx(EXACT_NORMALS), pytest.approx(second)]
    assert data["batch_shape"] == [2]
    assert data["ci95"] == [[data["value"][0]] * 2, [data["value"][1]] * 2]


def test_infinite_divergence_is_inf(capsys):
    """Q missing part of P's support: `inf nats (exact)`; "inf" in JSON."""
    assert main(["dist", "Uniform(0, 1)", "Uniform(0.5, 1)"]) == 0
    assert capsys.readouterr().out == "inf nats (exact)\n"
    assert _json(capsys, "Uniform(0, 1)", "Uniform(0.5, 1)")["value"] == "inf"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["Normal(0, -1)", "Normal(0, 1)"], "P = Normal(0, -1): `scale` of Normal must hold"),
        (["Normal(0, 1)", "Normall(0, 1)"], "Q: bad distribution spec 'Normall(0, 1)'"),
        (["Normal(0, 1)", "Normal.__class__"], "Q: bad distribution spec 'Normal.__class__'"),
        (
            ["Normal(0, 1)", "MultivariateNormal([0, 0], covariance_matrix=[[1, 0], [0, 1]])"],
            "P and Q must have the same event shape",
        ),
        (
            ["--method", "quadrature", "Independent(Normal([0, 0], [1, 1]), 1)", "Normal(0, 1)"],
            "same event shape",
        ),
        (
            ["--method", "exact", "Normal(0, 1)", "StudentT(3, 0, 1.5)"],
            "no closed form is registered for KL(Normal ‖ StudentT); use --method auto",
        ),
        (
            ["--method", "enumeration", "Normal(0, 1)", "Normal(1, 2)"],
            "`--method enumeration` needs discrete univariate P and Q",
        ),
    ],
)
def test_bad_input_exit_1(capsys, argv, message):
    """Bad specs, parameters and methods that do not apply: exit 1, one line."""
    assert message in _error(capsys, *argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "guess", "Normal(0, 1)", "Normal(0, 1)"], "invalid choice: 'guess'"),
        (["--max-samples", "1", "Normal(0, 1)", "Normal(0, 1)"], "expected an integer >= 2"),
        (["--rtol", "-1", "Normal(0, 1)", "Normal(0, 1)"], "expected a finite number >= 0"),
        (["--seed", "x", "Normal(0, 1)", "Normal(0, 1)"], "argument --seed"),
        (["--base", "1", "Normal(0, 1)", "Normal(0, 1)"], "argument --base"),
        (["Normal(0, 1)"], "the following arguments are required: Q"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    """Usage mistakes: exit 2, one line."""
    assert message in _error(capsys, *argv, code=2)


def test_as_typed_in_a_shell(tmp_path):
    """The README example through `python -m kldiv`, and a hostile spec that runs nothing."""
    done = run_kldiv("dist", "Normal(0, 1)", "StudentT(3, 0, 1.5)", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"0\.2373\d\d ± \de-\d\d nats \(quadrature, n=\d+\)\n", done.stdout)
    done = run_kldiv("dist", "Normal(0, 1)", '__import__("os").system("touch PWNED")', cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("kldiv: error: Q: bad distribution spec")
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_rtol_and_atol_both_zero_is_a_usage_error(capsys):
    """--rtol 0 --atol 0 is exit 2 naming both, not an internal error from SciPy's quad."""
    line = _error(capsys, "--rtol", "0", "--atol", "0", "Normal(0, 1)", "Cauchy(0, 1)", code=2)
    assert "--rtol and --atol cannot both be 0" in line
    assert "internal error" not in line


def test_quadrature_value_keeps_six_digits(capsys):
    """A tiny error bar prints 0.443147 ± 4e-11 (the digits the value has), not 4.431472e-01."""
    assert main(["dist", "--method", "quadrature", "Normal(0, 1)", "Normal(1, 2)"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"0\.443147 ± \de-\d\d nats \(quadrature, n=\d+\)\n", out), out


def test_infinite_quadrature_value_has_no_nan_error_bar(capsys):
    """HalfCauchy against HalfNormal diverges: `inf nats`, not `inf ± nan nats`."""
    assert main(["dist", "HalfCauchy(1)", "HalfNormal(1)"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("inf nats ("), out
    assert "nan" not in out


def test_tiny_error_bar_in_fixed_notation(capsys):
    """A mixture pair with a ~2e-7 error bar prints 0.0449733 ± 2e-07, not 4.497330e-02."""
    mixture = "MixtureSameFamily(Categorical([{}]), Normal([-1, 1], [1, 1]))"
    argv = ["dist", mixture.format("0.3, 0.7"), mixture.format("0.5, 0.5")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"0\.04497\d\d ± \de-\d\d nats \(quadrature, n=\d+\)\n", out), out
