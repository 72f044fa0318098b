"""``kldiv probs``: values against SciPy, the input forms, files, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import special
from scipy.spatial import distance

from kldiv.cli import main
from tests._cli import error_line, run_kldiv


def _json(capsys, *argv: str) -> dict:
    assert main(["probs", "--json", *argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _error(capsys, *argv: str, code: int = 1) -> str:
    """Runs a failing command in-process; returns its single stderr line."""
    return error_line(capsys, ["probs", *argv], code)


@pytest.fixture
def rows(tmp_path):
    """Five random P rows and five Q rows over 7 outcomes, some with exact zeros in P."""
    rng = np.random.default_rng(8)
    p = rng.dirichlet(np.full(7, 0.8), size=5)
    p[1, 3] = 0.0
    p[1] /= p[1].sum()
    q = rng.dirichlet(np.full(7, 1.2), size=5)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    return p, q


def test_worked_example(capsys):
    """0.4,0.6 against 0.5,0.5 prints exactly `0.0201355 nats` (`0.0290494 bits` in base 2)."""
    assert main(["probs", "0.4,0.6", "0.5,0.5"]) == 0
    assert capsys.readouterr().out == "0.0201355 nats\n"
    assert main(["probs", "--base", "2", "0.4,0.6", "0.5,0.5"]) == 0
    assert capsys.readouterr().out == "0.0290494 bits\n"
    assert main(["probs", "--base", "10", "0.4, 0.6", "0.5 0.5"]) == 0
    expected = special.rel_entr([0.4, 0.6], [0.5, 0.5]).sum() / np.log(10)
    assert capsys.readouterr().out == f"{expected:.6g} hartleys\n"


def test_npy_rows_match_scipy(capsys, tmp_path, rows):
    """Each row of a .npy file against SciPy's rel_entr sum; the mean is their mean."""
    p, q = rows
    data = _json(capsys, str(tmp_path / "p.npy"), str(tmp_path / "q.npy"))
    expected = special.rel_entr(p, q).sum(axis=-1)
    np.testing.assert_allclose(data["values"], expected, rtol=1e-12)
    assert data["rows"] == 5
    assert data["mean"] == pytest.approx(expected.mean(), rel=1e-12)
    assert (data["measure"], data["form"], data["unit"], data["base"]) == (
        "kl",
        "probs",
        "nats",
        None,
    )


def test_csv_rows_with_header_and_comments(capsys, tmp_path, rows):
    """A .csv file (header line skipped, # comments) gives the same values as the .npy file."""
    p, q = rows
    header = ",".join(f"x{i}" for i in range(7))
    np.savetxt(tmp_path / "p.csv", p, delimiter=",", header=header, comments="")
    np.savetxt(tmp_path / "q.csv", q, delimiter=",", header="made by numpy")
    data = _json(capsys, str(tmp_path / "p.csv"), str(tmp_path / "q.csv"))
    np.testing.assert_allclose(data["values"], special.rel_entr(p, q).sum(axis=-1), rtol=1e-12)


def test_typed_rows_and_broadcast_q(capsys):
    """Rows typed with ';' and one Q row for all of them: one value per row and their mean."""
    assert main(["probs", "0.4,0.6; 0.1,0.9; 1,0", "0.5,0.5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expected = special.rel_entr([[0.4, 0.6], [0.1, 0.9], [1.0, 0.0]], [0.5, 0.5]).sum(axis=-1)
    assert lines[:3] == [f"row {i}  {v:.6g}" for i, v in enumerate(expected)]
    assert lines[3] == f"mean D(P ‖ Q) over 3 rows: {expected.mean():.6g} nats"


def test_logits_and_temperature_match_scipy(capsys, tmp_path):
    """--logits (with --temperature) is KL of the softmaxes; --log-probs of the exponentials."""
    rng = np.random.default_rng(3)
    p_logits, q_logits = rng.normal(size=(2, 4, 9)) * 3
    np.save(tmp_path / "pl.npy", p_logits)
    np.save(tmp_path / "ql.npy", q_logits)
    for temperature in (1.0, 2.5):
        argv = ["--logits", str(tmp_path / "pl.npy"), str(tmp_path / "ql.npy")]
        data = _json(capsys, *argv, "--temperature", str(temperature))
        p = special.softmax(p_logits / temperature, axis=-1)
        q = special.softmax(q_logits / temperature, axis=-1)
        np.testing.assert_allclose(data["values"], special.rel_entr(p, q).sum(-1), rtol=1e-10)
        assert data["form"] == "logits"
    log_p, log_q = special.log_softmax(p_logits, axis=-1), special.log_softmax(q_logits, axis=-1)
    np.save(tmp_path / "lp.npy", log_p)
    np.save(tmp_path / "lq.npy", log_q)
    data = _json(capsys, "--log-probs", str(tmp_path / "lp.npy"), str(tmp_path / "lq.npy"))
    expected = special.rel_entr(np.exp(log_p), np.exp(log_q)).sum(-1)
    np.testing.assert_allclose(data["values"], expected, rtol=1e-10)


@pytest.mark.parametrize(
    "argv",
    [
        ["--logits", "-1,2", "0,0"],
        ["--logits", "--", "-1,2", "0,0"],
        ["-1,2", "0,0", "--logits"],
        ["--logits", "-1, 2", "-0.5e0,-.5"],
    ],
)
def test_negative_logits_are_values_not_options(capsys, argv):
    """`-1,2` is read as numbers, typed bare or after `--`."""
    data = _json(capsys, *argv)
    q = special.softmax(np.zeros(2)) if "0,0" in argv else special.softmax([-0.5, -0.5])
    expected = special.rel_entr(special.softmax([-1.0, 2.0]), q).sum()
    assert data["values"] == [pytest.approx(expected, rel=1e-12)]


def test_minus_inf_logit_is_zero_mass(capsys):
    """A -inf logit is an outcome of probability 0: KL([0, 1] ‖ [1/2, 1/2]) = log 2."""
    data = _json(capsys, "--logits", "-inf,0", "0,0")
    assert data["values"] == [pytest.approx(np.log(2.0), rel=1e-12)]


def test_other_measures_match_scipy(capsys):
    """--measure js is SciPy's jensenshannon squared; cross-entropy is -Σ p log q."""
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.1, 0.3])
    typed = ("0.2,0.3,0.5", "0.6,0.1,0.3")
    js = _json(capsys, "--measure", "js", "--base", "2", *typed)["values"][0]
    assert js == pytest.approx(distance.jensenshannon(p, q, base=2) ** 2, rel=1e-10)
    ce = _json(capsys, "--measure", "cross-entropy", *typed)["values"][0]
    assert ce == pytest.approx(-(p * np.log(q)).sum(), rel=1e-12)


def test_infinite_kl_is_inf_in_text_and_json(capsys):
    """P > 0 where Q = 0: `inf nats`, and "inf" in the JSON document."""
    assert main(["probs", "1,0", "0,1"]) == 0
    assert capsys.readouterr().out == "inf nats\n"
    data = _json(capsys, "1,0", "0,1")
    assert data["values"] == ["inf"]
    assert data["mean"] == "inf"


class _Touch:
    """Unpickling this object would create a file: proof that nothing is unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.fixture
def bad_files(tmp_path):
    """An object array whose unpickling would write a file, and other unreadable inputs."""
    target = tmp_path / "PWNED"
    np.save(tmp_path / "obj.npy", np.array([_Touch(str(target))], dtype=object))
    (tmp_path / "junk.npy").write_bytes(b"not an npy file")
    np.save(tmp_path / "text.npy", np.array(["0.5", "0.5"]))
    np.save(tmp_path / "complex.npy", np.array([0.5 + 0j, 0.5]))
    (tmp_path / "column.csv").write_text("0.4\n0.6\n")
    (tmp_path / "cells.csv").write_text("0.4,abc\n")
    (tmp_path / "empty.csv").write_text("# nothing\n")
    np.save(tmp_path / "scalar.npy", np.float64(0.5))
    np.save(tmp_path / "none.npy", np.zeros((0, 2)))
    return tmp_path, target


@pytest.mark.parametrize(
    ("p", "q", "message"),
    [
        ("0.4,0.7", "0.5,0.5", "P must be probabilities summing to 1"),
        ("0.4,0.6", "0.5,0.6", "Q must be probabilities summing to 1"),
        ("0.4,0.6;0.3,0.6", "0.5,0.5", "the distribution at row 1 sums to 0.9"),
        ("-0.5,1.5", "0.5,0.5", "P must hold probabilities (finite and >= 0); got -0.5"),
        ("nan,1", "0.5,0.5", "P must hold probabilities (finite and >= 0); got nan"),
        ("0.4,0.6", "0.2,0.3,0.5", "shapes do not broadcast: P (2,), Q (3,)"),
        ("0.4,,0.6", "0.5,0.5", "P: expected numbers separated by commas"),
        ("0.4,0.6;0.5", "0.5,0.5", "P: every row must have the same length; got lengths 2, 1"),
        ("0.4,0.6", "half,half", "Q: expected numbers separated by commas"),
        ("missing.npy", "0.5,0.5", "P: no such file: 'missing.npy'"),
        ("p.txt", "0.5,0.5", "or a .npy or .csv file; got 'p.txt'"),
        ("junk.npy", "0.5,0.5", "P: 'junk.npy' is not a NumPy .npy file"),
        ("0.5,0.5", "obj.npy", "Q: 'obj.npy' holds Python objects"),
        ("text.npy", "0.5,0.5", "must hold real numbers; got an array of dtype <U3"),
        ("complex.npy", "0.5,0.5", "dtype complex128"),
        ("column.csv", "0.5,0.5", "P: each row is a distribution, but this input has 2 rows"),
        ("cells.csv", "0.5,0.5", "P: cannot read 'cells.csv' as numbers"),
        ("empty.csv", "0.5,0.5", "P: 'empty.csv' holds no numbers"),
        ("3", "0.5,0.5", "P of shape (1,) must have 2 entries"),
        ("scalar.npy", "0.5,0.5", "P: expected at least one value; got a single number"),
        ("none.npy", "0.5,0.5", "P: expected at least one value; got an empty array (0, 2)"),
    ],
)
def test_bad_input_is_one_line_naming_p_or_q(capsys, monkeypatch, bad_files, p, q, message):
    """Bad values and files: exit 1, one stderr line saying which of P and Q and why."""
    folder, target = bad_files
    monkeypatch.chdir(folder)
    assert message in _error(capsys, p, q)
    assert not target.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--temperature", "2", "0.4,0.6", "0.5,0.5"], "--temperature applies to --logits only"),
        (["--logits", "--log-probs", "0,0", "0,0"], "cannot be used together"),
        (["--logits", "--temperature", "0", "0,0", "0,0"], "expected a finite positive number"),
        (["--measure", "hellinger", "0.5,0.5", "0.5,0.5"], "invalid choice: 'hellinger'"),
        (["0.5,0.5"], "the following arguments are required: Q"),
        (["--base", "0", "0.5,0.5", "0.5,0.5"], "argument --base"),
        (["--base", "1", "0.5,0.5", "0.5,0.5"], "argument --base"),
        (["--base", "-2", "0.5,0.5", "0.5,0.5"], "argument --base"),
        (["--base", "x", "0.5,0.5", "0.5,0.5"], "argument --base"),
        (["--bogus", "0.5,0.5", "0.5,0.5"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    """Usage mistakes: exit 2, one line."""
    assert message in _error(capsys, *argv, code=2)


def test_as_typed_in_a_shell(tmp_path):
    """The worked example, negative logits and a bad row through `python -m kldiv`."""
    done = run_kldiv("probs", "0.4,0.6", "0.5,0.5", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "0.0201355 nats\n", "")
    done = run_kldiv("probs", "--logits", "-1,2", "0,0", cwd=tmp_path)
    expected = special.rel_entr(special.softmax([-1.0, 2.0]), [0.5, 0.5]).sum()
    assert (done.returncode, done.stdout) == (0, f"{expected:.6g} nats\n")
    done = run_kldiv("probs", "0.4,0.7", "0.5,0.5", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("kldiv: error: P must be probabilities summing to 1")
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback(tmp_path):
    """--debug: the same bad input raises with its full traceback."""
    done = run_kldiv("probs", "--debug", "0.4,0.7", "0.5,0.5", cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr
    assert "KLDivError" in done.stderr


def test_csv_with_byte_order_mark(capsys, tmp_path):
    """A spreadsheet's UTF-8 CSV (with a BOM, and a header) reads like a plain one."""
    path = tmp_path / "p.csv"
    path.write_text("heads,tails\n0.4,0.6\n0.1,0.9\n", encoding="utf-8-sig")
    data = _json(capsys, str(path), "0.5,0.5")
    np.testing.assert_allclose(
        data["values"], special.rel_entr([[0.4, 0.6], [0.1, 0.9]], 0.5).sum(-1), rtol=1e-12
    )


@pytest.mark.parametrize("line", ["0.4 0.6", "0.4;0.6", "0.4\t0.6"])
def test_csv_with_another_separator_says_so(capsys, tmp_path, line):
    """Numbers separated by spaces, ';' or tabs: the error says commas, not "holds no numbers"."""
    path = tmp_path / "p.csv"
    path.write_text(f"{line}\n{line}\n")
    message = _error(capsys, str(path), "0.5,0.5")
    assert "P: " in message
    assert "must hold comma-separated numbers; its first line" in message


def test_half_and_single_precision_files_keep_their_tolerance(capsys, tmp_path):
    """A float16 softmax saved to .npy (sums off by ~1e-3) is checked as float16, not float64."""
    logits = np.random.default_rng(3).normal(size=(4, 1000))
    p = special.softmax(logits, axis=-1).astype(np.float16)
    q = special.softmax(logits[::-1], axis=-1).astype(">f4")  # big-endian float32
    assert np.abs(p.astype(np.float64).sum(-1) - 1).max() > 1e-6  # float64 would refuse it
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    data = _json(capsys, str(tmp_path / "p.npy"), str(tmp_path / "q.npy"))
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    expected = special.rel_entr(p64, q64).sum(-1)
    np.testing.assert_allclose(data["values"], expected, rtol=2e-3, atol=1e-4)


def test_csv_header_after_comments_and_blank_lines(capsys, tmp_path):
    """`# note`, a blank line, then `heads,tails`: the header is skipped; whitespace lines too."""
    path = tmp_path / "p.csv"
    path.write_text("# exported by a tool\n\nheads,tails\n0.4,0.6\n   \n0.1,0.9\n")
    data = _json(capsys, str(path), "0.5,0.5")
    np.testing.assert_allclose(
        data["values"], special.rel_entr([[0.4, 0.6], [0.1, 0.9]], 0.5).sum(-1), rtol=1e-12
    )


def test_binary_csv_is_not_a_text_file(capsys, tmp_path):
    """Bytes that are not UTF-8 in a .csv: `is not a text file`, one line, exit 1."""
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xff\xfe\x00\x01")
    assert "P: " in (line := _error(capsys, str(path), "0.5,0.5"))
    assert "is not a text file" in line
