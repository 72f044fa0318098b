"""The ``kldiv`` command: ``kldiv demo vi`` end to end, and one-line errors for bad input."""

from __future__ import annotations

import json
import sys

import pytest

from kldiv.cli import main
from tests._cli import error_line, run_kldiv

REPORT_FILES = ("elbo.png", "posterior.png", "grad_variance.png", "index.html", "summary.json")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """``python -m kldiv demo vi --quick --out DIR`` run once for the tests of this module."""
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    tmp = tmp_path_factory.mktemp("vi")
    out = tmp / "report"
    done = run_kldiv("demo", "vi", "--quick", "--seed", "3", "--out", str(out), cwd=tmp)
    return done, out


def test_demo_vi_writes_its_report(quick_report):
    """Exit 0; the three PNGs, index.html and summary.json are written; a summary is printed."""
    done, out = quick_report
    assert done.returncode == 0, done.stderr
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    for name in REPORT_FILES[:3]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    page = (out / "index.html").read_text(encoding="utf-8")
    for name in REPORT_FILES[:3]:
        assert f'src="{name}"' in page
    assert "mean-field" in done.stdout
    assert "full-covariance" in done.stdout
    assert "grad variance MC/exact" in done.stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["quick"] is True
    assert summary["seed"] == 3
    assert summary["mean_field"]["kl_method"] == "exact"
    assert summary["full_covariance"]["kl_method"] == "exact"
    assert summary["gradient_variance"]["mean_field"]["trained"] > 0


def test_demo_vi_is_deterministic(quick_report):
    """The same seed in another process gives the same numbers (all but the run time)."""
    from kldiv.demos import run_vi

    done, out = quick_report
    assert done.returncode == 0, done.stderr
    first = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    second = run_vi(out.parent / "again", seed=3, quick=True)
    second = json.loads(json.dumps(second))
    first.pop("runtime_s")
    second.pop("runtime_s")
    assert first == second


def test_bad_flag_is_one_line_and_non_zero(tmp_path):
    """An unknown flag: exit 2, one line on stderr, nothing on stdout."""
    done = run_kldiv("demo", "vi", "--bogus", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("kldiv: error: unrecognized arguments: --bogus")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "expected a command (probs, dist, samples, compare, pairs, demo)"),
        (["nope"], "invalid choice: 'nope'"),
        (["demo", "nope"], "invalid choice: 'nope' (choose from 'vae', 'vi')"),
        (["demo", "vi", "--quiet"], "unrecognized arguments: --quiet"),
        (["demo", "--epochs", "5", "vi"], "--epochs is an option of the VAE demo"),
        (["demo", "vi", "--steps", "0"], "argument --steps: expected a positive integer; got '0'"),
        (["demo", "vi", "--steps", "many"], "expected a positive integer; got 'many'"),
        (["demo", "vi", "--seed", "-1"], "argument --seed: expected an integer in [0, 2**63)"),
    ],
)
def test_usage_errors(capsys, argv, message):
    """Usage errors: exit code 2 and one line on stderr naming the problem."""
    assert message in error_line(capsys, argv, 2)


def test_version_and_help(capsys):
    """--version and --help print to stdout and exit 0."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("kldiv ")
    assert main(["demo", "vi", "--help"]) == 0
    assert "--quick" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out


def test_missing_dependency_is_one_line(capsys, monkeypatch, tmp_path):
    """Without matplotlib: exit 1 and one line saying what to install."""
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["demo", "vi", "--quick", "--out", str(tmp_path / "r")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "matplotlib" in lines[0]
    assert "pip install 'kldiv[demo]'" in lines[0]
    assert not (tmp_path / "r").exists()


def test_output_path_that_is_a_file(capsys, tmp_path):
    """--out naming an existing file: exit 1, one line naming the path."""
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["demo", "vi", "--quick", "--out", str(target)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert str(target) in lines[0]


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["pairs", "--base", "2"], "(see `kldiv pairs --help`)"),
        (["probs", "0.4,0.6", "0.5,0.5", "0.5,0.5"], "(see `kldiv probs --help`)"),
        (["demo", "vi", "--epochs", "3"], "(see `kldiv demo vi --help`)"),
        (["--bogus"], "(see `kldiv --help`)"),
    ],
)
def test_unrecognized_arguments_point_to_the_command_help(capsys, argv, hint):
    """An unknown option after a command names that command's --help, not the top level's."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("kldiv: error: unrecognized arguments: ")
    assert line.endswith(hint)


def test_out_of_memory_is_one_line(capsys, monkeypatch):
    """A MemoryError (e.g. an absurd --bins) is `out of memory: ...`, exit 1, not internal."""
    import kldiv

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB")

    monkeypatch.setattr(kldiv, "kl_from_probs", exhausted)
    assert main(["probs", "0.4,0.6", "0.5,0.5"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "kldiv: error: out of memory: Unable to allocate 74.5 GiB\n"
