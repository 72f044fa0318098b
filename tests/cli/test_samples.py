"""``kldiv samples``: k-NN and histogram estimates from files, against closed forms and NumPy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kldiv.cli import main
from tests._cli import error_line, run_kldiv

EXACT_1D = math.log(2.0) + (1.0 + 1.0) / 8.0 - 0.5  # KL(N(0, 1) ‖ N(1, 2)) by hand


def _json(capsys, *argv: str) -> dict:
    assert main(["samples", "--json", *argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _error(capsys, *argv: str, code: int = 1) -> str:
    return error_line(capsys, ["samples", *argv], code)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Seeded samples of N(0, 1) and N(1, 2) in 1-D and (independent coordinates) 2-D."""
    folder = tmp_path_factory.mktemp("samples")
    rng = np.random.default_rng(20)
    np.save(folder / "x.npy", rng.normal(0.0, 1.0, 3000))
    np.save(folder / "y.npy", rng.normal(1.0, 2.0, 4000))
    np.save(folder / "x2.npy", rng.normal(0.0, 1.0, (3000, 2)))
    np.save(folder / "y2.npy", rng.normal(1.0, 2.0, (4000, 2)))
    np.savetxt(folder / "x.csv", np.load(folder / "x.npy"), delimiter=",", header="x")
    np.save(folder / "y3.npy", rng.normal(size=(100, 3)))
    np.save(folder / "nan.npy", np.array([0.0, np.nan, 1.0]))
    np.save(folder / "cube.npy", np.zeros((2, 2, 2)))
    return folder


def test_knn_against_the_closed_form(capsys, files):
    """With k = 1 and k = 3, in 1-D and 2-D: within 4 standard errors of the exact value."""
    for x, y, exact in (("x.npy", "y.npy", EXACT_1D), ("x2.npy", "y2.npy", 2 * EXACT_1D)):
        for k in ("1", "3"):
            data = _json(capsys, str(files / x), str(files / y), "--k", k)
            assert data["method"] == "knn"
            assert data["stderr"] > 0
            assert abs(data["value"] - exact) < 4 * data["stderr"], (x, k, data)
            assert (data["n"], data["m"]) == (3000, 4000)
            assert data["details"]["k"] == int(k)


def test_knn_human_output_and_seed(capsys, files):
    """One line with value ± stderr, method and sizes; the seed changes only the error bar."""
    argv = [str(files / "x2.npy"), str(files / "y2.npy")]
    assert main(["samples", *argv]) == 0
    line = capsys.readouterr().out
    assert line.endswith(" nats (knn, n=3000, m=4000, d=2)\n")
    assert " ± " in line
    first, other = _json(capsys, *argv), _json(capsys, *argv, "--seed", "5")
    assert first["value"] == other["value"]
    assert first["stderr"] != other["stderr"]


def test_histogram_against_numpy(capsys, files):
    """--method histogram --bins 20: the smoothed plug-in computed by hand with NumPy."""
    x, y = np.load(files / "x.npy"), np.load(files / "y.npy")
    edges = np.histogram_bin_edges(np.concatenate([x, y]), bins=20)
    counts_x, _ = np.histogram(x, edges)
    counts_y, _ = np.histogram(y, edges)
    p = (counts_x + 0.5) / (x.size + 20 * 0.5)
    q = (counts_y + 0.5) / (y.size + 20 * 0.5)
    expected = np.sum(p * np.log(p / q))
    argv = ["--method", "histogram", "--bins", "20", "--base", "2"]
    data = _json(capsys, str(files / "x.npy"), str(files / "y.npy"), *argv)
    assert data["method"] == "histogram"
    assert data["value"] == pytest.approx(expected / math.log(2.0), rel=1e-12)
    assert data["unit"] == "bits"
    assert data["stderr"] > 0


def test_csv_equals_npy(capsys, files):
    """A one-column .csv file (with a header) gives the .npy file's estimate."""
    from_npy = _json(capsys, str(files / "x.npy"), str(files / "y.npy"))
    from_csv = _json(capsys, str(files / "x.csv"), str(files / "y.npy"))
    assert from_csv["value"] == pytest.approx(from_npy["value"], rel=1e-12)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["x2.npy", "y2.npy", "--method", "histogram"], "x: the histogram estimator needs 1-D"),
        (["x2.npy", "y3.npy"], "x and y must have the same dimension d"),
        (["nan.npy", "y.npy"], "x must hold finite values; got nan"),
        (["cube.npy", "y.npy"], "x: expected samples of shape (n,) or (n, d)"),
        (["x.npy", "missing.npy"], "y: no such file: 'missing.npy'"),
        (["x.npy", "y.txt"], "y: expected numbers separated by commas"),
    ],
)
def test_bad_input_exit_1(capsys, monkeypatch, files, argv, message):
    """Bad samples: exit 1, one line naming x or y."""
    monkeypatch.chdir(files)
    assert message in _error(capsys, *argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "histogram", "--k", "2"], "--k applies to --method knn only"),
        (["--bins", "10"], "--bins applies to --method histogram only"),
        (["--method", "kde"], "invalid choice: 'kde'"),
        (["--method", "histogram", "--bins", "many"], "expected a number of bins >= 1 or a rule"),
        (["--k", "0"], "argument --k: expected a positive integer"),
        (["--base", "-2"], "argument --base"),
    ],
)
def test_usage_errors_exit_2(capsys, monkeypatch, files, argv, message):
    """Usage mistakes: exit 2, one line."""
    monkeypatch.chdir(files)
    assert message in _error(capsys, "x.npy", "y.npy", *argv, code=2)


def test_as_typed_in_a_shell(files):
    """`python -m kldiv samples x.npy y.npy` prints the estimate; a bad file is one line."""
    done = run_kldiv("samples", "x.npy", "y.npy", cwd=files)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(" nats (knn, n=3000, m=4000, d=1)\n")
    done = run_kldiv("samples", "x.npy", "nan.npy", "--method", "histogram", cwd=files)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("kldiv: error: ")


def test_library_errors_use_the_command_names(capsys, files):
    """The library's `x` and `y` read as the command's x and y, without code quotes."""
    line = _error(capsys, str(files / "x2.npy"), str(files / "y3.npy"))
    assert "got d = 2 for x and d = 3 for y" in line
    assert "`" not in line


def test_ties_and_constant_samples_are_flagged(capsys, tmp_path):
    """Repeated rows and a constant x: the text output says so under the value, not silently."""
    x = np.random.default_rng(4).normal(size=100)
    np.save(tmp_path / "twice.npy", np.r_[x, x])
    np.save(tmp_path / "constant.npy", np.zeros(50))
    np.save(tmp_path / "y.npy", np.random.default_rng(5).normal(size=300))
    assert main(["samples", str(tmp_path / "twice.npy"), str(tmp_path / "y.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("note: 200 points of x coincide with another sample (ties)")
    assert main(["samples", str(tmp_path / "constant.npy"), str(tmp_path / "y.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("inf nats (knn")
    assert lines[1] == "note: x is constant (P looks like a point mass that Q is not): +inf"


def test_too_few_points_say_so_instead_of_nan(capsys, tmp_path):
    """Three points: the value with an unbounded error bar and the reason, never ``± nan``."""
    np.save(tmp_path / "x.npy", np.array([[0.1], [0.5], [0.9]]))
    np.save(tmp_path / "y.npy", np.array([[0.2], [0.4], [1.5], [2.0]]))
    args = ["samples", str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "± inf nats (knn, n=3, m=4, d=1)" in lines[0]
    assert "nan" not in lines[0]
    assert lines[1].startswith("not converged: too few points for a standard error")
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["converged"] is False
    assert data["stderr"] == "inf"  # strict JSON: non-finite numbers as strings
