"""``kldiv pairs``; and for every command: no framework imported, docs/cli.md's examples true."""

from __future__ import annotations

import contextlib
import doctest
import io
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import kldiv
from kldiv import distributions as D
from kldiv.cli import main
from kldiv.cli._spec import family_names

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _json(capsys, *argv: str) -> dict:
    assert main(["pairs", "--json", *argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_json_is_the_registry(capsys):
    """Every registered pair, by class name, in the registry's order, and the count."""
    data = _json(capsys)
    expected = [{"p": p.__name__, "q": q.__name__} for p, q in kldiv.registered_pairs()]
    assert data["pairs"] == expected
    assert data["count"] == len(expected) > 200
    assert data["family"] is None


def test_family_filter_either_side(capsys):
    """--family Poisson: pairs with Poisson as P or Q, and the rule for any Q."""
    data = _json(capsys, "--family", "Poisson")
    pairs = {(pair["p"], pair["q"]) for pair in data["pairs"]}
    assert {("Poisson", "Poisson"), ("Poisson", "Binomial"), ("Bernoulli", "Poisson")} <= pairs
    assert ("Deterministic", "Distribution") in pairs  # applies to every Q
    for p, q in pairs:
        assert "Poisson" in (p, q) or q == "Distribution"
    for pair in kldiv.registered_pairs():
        if D.Poisson in pair:
            assert (pair[0].__name__, pair[1].__name__) in pairs
    # every listed pair has a closed form (no NoClosedFormError) for a Poisson on its side
    example = D.Poisson(2.0)
    assert float(kldiv.kl_divergence(D.Deterministic(1.0), example)) > 0


def test_table(capsys):
    """The table has a P and a Q column, one row per pair and the count on the last line."""
    assert main(["pairs", "--family", "Normal"]) == 0
    out = capsys.readouterr().out
    count = sum(1 for p, q in kldiv.registered_pairs() if D.Normal in (p, q)) + 1
    lines = out.strip().splitlines()
    assert lines[-1] == f"{count} pairs"
    header = next(line for line in lines if line.startswith("┃"))
    assert header.split() == ["┃", "P", "┃", "Q", "┃"]
    assert "any distribution" in out
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == count


def test_unknown_family(capsys):
    """A misspelt family: exit 1, one line with the closest name and the valid names."""
    assert main(["pairs", "--family", "Gausian"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("kldiv: error: --family: unknown distribution 'Gausian'")
    assert "Valid names: " in err
    assert main(["pairs", "--family", "Normall"]) == 1
    assert "(did you mean 'Normal'?)" in capsys.readouterr().err


def test_commands_import_no_framework(tmp_path):
    """probs, dist, samples and pairs run without importing torch or JAX (fast startup)."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from kldiv.cli import main

        np.save("x.npy", np.random.default_rng(0).normal(size=(200, 2)))
        codes = [
            main(["probs", "--logits", "-1,2", "0,0"]),
            main(["dist", "Normal(0, 1)", "StudentT(3, 0, 1.5)"]),
            main(["dist", "--method", "monte_carlo", "--max-samples", "1000",
                  "Normal(0, 1)", "Normal(1, 2)"]),
            main(["samples", "x.npy", "x.npy"]),
            main(["pairs", "--json"]),
        ]
        loaded = sorted(m for m in ("torch", "jax", "jaxlib", "dask") if m in sys.modules)
        print(codes, loaded, file=sys.stderr)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[0, 0, 0, 0, 0] []"


def test_as_typed_in_a_shell(tmp_path):
    """`python -m kldiv pairs` prints the table and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "kldiv", "pairs"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"{len(kldiv.registered_pairs())} pairs"
    assert "MultivariateNormal" in done.stdout


def test_family_needs_a_value(capsys):
    """`--family` without a name: usage error, exit 2."""
    assert main(["pairs", "--family"]) == 2
    assert "expected one argument" in capsys.readouterr().err


def _console_examples(markdown: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` for each ``$ kldiv …`` line of the console blocks."""
    blocks = re.findall(r"^```console\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)
    examples = []
    for block in blocks:
        for chunk in re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]:
            command, _, output = chunk.partition("\n")
            examples.append((command, output))
    return examples


def test_cli_page_examples_print_what_the_page_shows(monkeypatch, tmp_path):
    """Every `$ kldiv …` example of docs/cli.md prints its shown output (... elides)."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(0, 1, 5000))
    np.save(tmp_path / "y.npy", rng.normal(1, 2, 5000))
    monkeypatch.chdir(tmp_path)
    examples = _console_examples(PAGE.read_text(encoding="utf-8"))
    assert len(examples) >= 15
    checker = doctest.OutputChecker()
    for command, expected in examples:
        argv = shlex.split(command)
        assert argv[0] == "kldiv", command
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv[1:])
        assert code == (1 if "kldiv: error:" in expected else 0), command
        got = out.getvalue() + err.getvalue()
        assert checker.check_output(expected, got, doctest.ELLIPSIS), (command, got)


def test_cli_page_lists_every_family():
    """The spec grammar section names exactly the families a spec accepts."""
    page = PAGE.read_text(encoding="utf-8")
    section = page.split("kldiv dist --help`):")[1].split("**Specs are parsed")[0]
    listed = [name.strip(" .\n") for name in section.replace("\n", " ").split(",")]
    assert listed == family_names()
