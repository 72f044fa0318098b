"""``kldiv demo`` (the VAE on scikit-learn's digits): end to end as a user types it, and its parts.

Two one-epoch runs in subprocesses, started together: ``kldiv demo --epochs 1``
(the human-readable form) and ``kldiv demo vae --epochs 1 --json``, with the
same seed, so that the second also checks that the numbers are the same in
another process. The pieces (likelihood, KL per dimension, the bounds, Adam)
are checked in-process against independent references: SciPy's binomial,
``torch.distributions``, ``GaussianKLLoss``, NumPy's closed form, ``torch.optim.Adam``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kldiv.cli import build_parser, main
from kldiv.errors import KLDivError
from tests._cli import error_line

pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

import torch

from kldiv.demos import _vae

PNGS = ("losses.png", "kl_per_dim.png", "reconstructions.png", "samples.png", "latent.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, "-m", "kldiv", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


class _Captured:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``kldiv demo --epochs 1`` in a subprocess and ``kldiv demo vae --epochs 1 --json`` here.

    Both with seed 1 and at the same time; the second runs in this process
    (its stdout and stderr captured), which saves the imports of a second
    subprocess and compares two processes all the same.
    """
    import contextlib
    import io

    tmp = tmp_path_factory.mktemp("vae")
    human_out, json_out = tmp / "report", tmp / "report-json"
    human = _start("demo", "--epochs", "1", "--out", str(human_out), "--seed", "1", cwd=tmp)
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(
                ["demo", "vae", "--epochs", "1", "--out", str(json_out), "--seed", "1", "--json"]
            )
    finally:
        done = _finish(human)
    return {
        "human": (done, human_out),
        "json": (_Captured(code, stdout.getvalue(), stderr.getvalue()), json_out),
    }


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def _without_runtime(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key != "runtime_s"}


def test_demo_writes_its_report(runs):
    """Exit 0; five PNGs, index.html referencing each, summary.json; a summary on stdout."""
    done, out = runs["human"]
    assert done.returncode == 0, done.stderr
    for name in PNGS:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    for name in PNGS:
        assert f'src="{name}"' in page, name
    summary = _summary(out)
    assert summary["files"] == [*PNGS, "index.html", "summary.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["files"])
    assert summary["seed"] == 1
    assert summary["settings"]["epochs"] == 1
    assert "held-out ELBO" in done.stdout
    assert f"wrote {out / 'index.html'}" in done.stdout
    assert f"{summary['held_out']['elbo']:.2f}" in page


def test_kl_curve_is_finite_and_non_negative_and_the_elbo_improves(runs):
    """The KL per epoch (train and held-out) is finite and >= 0; one epoch already helps."""
    summary = _summary(runs["human"][1])
    history = summary["history"]
    assert len(history["train"]["kl"]) == 1
    assert len(history["held_out"]["kl"]) == 2  # before training and after epoch 1
    for kl in (*history["train"]["kl"], *history["held_out"]["kl"]):
        assert math.isfinite(kl)
        assert kl >= 0
    assert history["held_out"]["elbo"][1] > history["held_out"]["elbo"][0]
    assert summary["checks"] == {"kl_finite": True, "kl_nonnegative": True, "elbo_improved": True}


def test_kl_per_dimension_sums_to_the_kl(runs):
    """The held-out KL of each latent dimension adds up to the KL term of the ELBO."""
    summary = _summary(runs["human"][1])
    held = summary["held_out"]
    kl = summary["kl_per_dim"]
    assert len(kl) == summary["settings"]["latent_dim"] == 16
    assert all(v >= 0 for v in kl)
    assert math.isclose(sum(kl), held["kl"], rel_tol=1e-9)
    assert math.isclose(held["elbo"], -(held["reconstruction"] + held["kl"]), rel_tol=1e-9)
    assert held["iwae"] >= held["elbo"]  # log p(x) >= IWAE >= ELBO, up to Monte Carlo error
    assert len(summary["status_per_dim"]) == 16
    assert set(summary["status_per_dim"]) <= set(_vae.STATUSES)


def test_same_seed_in_another_process_gives_the_same_numbers(runs):
    """Two processes (a subprocess and this one), the same seed: identical summaries."""
    (first, first_out), (second, second_out) = runs["human"], runs["json"]
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert _without_runtime(_summary(first_out)) == _without_runtime(_summary(second_out))
    assert _without_runtime(_summary(first_out)) == _without_runtime(json.loads(second.stdout))


def test_json_goes_to_stdout_and_the_progress_bar_to_stderr(runs):
    """`--json`: stdout is exactly one JSON document; the progress bar is on stderr."""
    done, out = runs["json"]
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # nothing else on stdout
    assert summary["demo"] == "vae"
    assert summary["held_out"]["elbo"] == _summary(out)["held_out"]["elbo"]
    assert "epoch 1/1" in done.stderr
    assert "epoch 1/1" not in done.stdout


def test_bad_flag_through_the_command_line(tmp_path):
    """As typed: a bad --schedule is exit 2, one line on stderr listing the choices, no output."""
    done = _finish(_start("demo", "--schedule", "exponential", "--out", "r", cwd=tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("kldiv: error: argument --schedule: invalid choice: 'exponential'")
    assert "linear" in lines[0]
    assert "cyclical" in lines[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--epochs", "0"], "argument --epochs: expected a positive integer; got '0'"),
        (["demo", "vae", "--epochs", "1.5"], "argument --epochs: expected a positive integer"),
        (["demo", "--beta", "-1"], "argument --beta: expected a finite number >= 0; got '-1'"),
        (["demo", "--beta", "inf"], "argument --beta: expected a finite number >= 0"),
        (["demo", "vae", "--free-bits", "-0.1"], "argument --free-bits: expected a finite number"),
        (["demo", "--latent-dim", "1"], "argument --latent-dim: expected an integer >= 2"),
        (["demo", "--seed", "-3"], "argument --seed: expected an integer in [0, 2**63)"),
        (["demo", "vae", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--epochs", "2", "vi"], "--epochs is an option of the VAE demo"),
        (["demo", "--beta", "2", "--quiet", "vi"], "--beta, --quiet are options of the VAE"),
    ],
)
def test_usage_errors(capsys, argv, message):
    """Bad values and misplaced options: exit 2, one line on stderr naming the problem."""
    assert message in error_line(capsys, argv, 2)


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_output_folder_that_cannot_be_made(capsys, tmp_path, where):
    """--out naming a file, or a folder under one: exit 1 before training, one line, the path."""
    taken = tmp_path / "taken"
    taken.write_text("x")
    target = taken if where == "file" else taken / "report"
    assert main(["demo", "--epochs", "1", "--out", str(target)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1  # no progress bar: it starts after the folder is made
    assert str(target) in lines[0]
    assert taken.read_text() == "x"


def test_output_folder_under_a_file_says_so(capsys, tmp_path):
    """--out under a file names it so (`lies under an existing file`), not "Not a directory"."""
    (tmp_path / "notes.txt").write_text("x")
    line = error_line(capsys, ["demo", "--epochs", "1", "--out", str(tmp_path / "notes.txt/r")], 1)
    assert line.startswith("kldiv: error: the report folder lies under an existing file: ")


def test_missing_dependency_is_one_line(capsys, monkeypatch, tmp_path):
    """Without scikit-learn: exit 1, one line naming it and the extra; no folder is made."""
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert main(["demo", "--quiet", "--out", str(tmp_path / "r")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "`kldiv demo vae` needs scikit-learn" in lines[0]
    assert "pip install 'kldiv[demo]'" in lines[0]
    assert not (tmp_path / "r").exists()


def test_options_before_and_after_the_demo_name():
    """`demo --json --epochs 3 vae --seed 2` keeps all three; `demo --seed 4 vi` seeds vi."""
    from kldiv.cli._demo import _run_demo_vae, _run_demo_vi, _vae_arguments

    parser = build_parser()
    args = parser.parse_args(["demo", "--json", "--epochs", "3", "vae", "--seed", "2"])
    assert args.handler is _run_demo_vae
    assert args.json is True
    defaults = _vae_arguments(parser.parse_args(["demo"]))
    assert defaults == {
        "out": "kldiv-vae-report", "seed": 0, "epochs": 200, "beta": 1.0, "free_bits": 0.25,
        "schedule": "linear", "latent_dim": 16, "quiet": False,
    }  # fmt: skip
    assert _vae_arguments(args) == {**defaults, "epochs": 3, "seed": 2}
    again = parser.parse_args(["demo", "--epochs", "3", "vae", "--epochs", "5"])
    assert _vae_arguments(again)["epochs"] == 5
    assert parser.parse_args(["demo"]).json is False
    assert parser.parse_args(["demo", "vae"]).json is False
    assert parser.parse_args(["demo", "vae", "--json"]).json is True
    assert parser.parse_args(["demo", "vi"]).json is False
    assert parser.parse_args(["pairs"]).json is False  # the shared parent is left as it was
    vi = parser.parse_args(["demo", "--seed", "4", "vi"])
    assert vi.handler is _run_demo_vi
    assert vi.seed == 4


def test_help_lists_both_demos(capsys):
    """`kldiv demo --help` names vae and vi and the VAE's flags."""
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("vae", "vi", "--epochs", "--beta", "--free-bits", "--schedule", "--latent-dim"):
        assert text in out
    for name in _vae.SCHEDULES:
        assert name in out


# ---- the pieces, in-process -------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """The model after one epoch (seed 5), and the data."""
    from sklearn import datasets

    settings = _vae._Settings(epochs=1)
    data = _vae._Data(torch, datasets, settings)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        vae = _vae._VAE(torch, settings)
    history = _vae._train(vae, data, settings, 5, None)
    return vae, data, history


def test_binomial_likelihood_matches_scipy(trained):
    """−log p(x | z) is minus the sum over the 64 pixels of SciPy's binomial log pmf."""
    from scipy import stats

    vae, data, _ = trained
    x = data.x_held[:50]
    logits = vae.decoder(torch.randn(50, 16, generator=torch.Generator().manual_seed(0)))
    ours = vae.negative_log_likelihood(logits, x).detach().double().numpy()
    p = torch.sigmoid(logits.double()).detach().numpy()
    reference = -stats.binom.logpmf(x.numpy(), 16, p).sum(-1)
    np.testing.assert_allclose(ours, reference, rtol=2e-5)


def test_kl_per_dimension_matches_gaussian_kl_loss_and_numpy(trained):
    """On the trained encoder's outputs: KL per dim = ½(σ² + μ² − 1 − log σ²), summed = the loss."""
    from kldiv.torch import GaussianKLLoss

    vae, data, _ = trained
    bound = _vae._bound(vae, data.x_held, samples=2, seed=0)
    with torch.no_grad():
        mu, logvar = vae.encode(data.x_held)
    m, v = mu.double().numpy(), logvar.double().numpy()
    closed_form = 0.5 * (np.exp(v) + m * m - 1.0 - v)
    per_dim = bound["per_dim_kl"].numpy()
    np.testing.assert_allclose(per_dim, closed_form, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        bound["kl"].numpy(), GaussianKLLoss(reduction="none")(mu, logvar).numpy(), rtol=1e-5
    )
    assert math.isclose(
        float(bound["kl"].mean()), float(GaussianKLLoss()(mu, logvar)), rel_tol=1e-5
    )
    assert per_dim.mean(0).sum() == pytest.approx(float(bound["kl"].mean()), rel=1e-12)


def test_bounds_match_torch_distributions(trained):
    """The IWAE bound and the ELBO's reconstruction term, recomputed with torch.distributions."""
    from torch.distributions import Binomial, Normal

    vae, data, _ = trained
    x = data.x_held[:40]
    k = 7
    bound = _vae._bound(vae, x, samples=k, seed=11, chunk=3)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        std = (0.5 * logvar).exp()
        noise = torch.cat([torch.randn((n, *mu.shape), generator=gen) for n in (3, 3, 1)])
        z = mu + noise * std
        log_lik = Binomial(16, logits=vae.decoder(z)).log_prob(x).sum(-1).double()
        log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1).double()
        log_q = Normal(mu, std).log_prob(z).sum(-1).double()
    log_w = log_lik + log_prior - log_q
    iwae = torch.logsumexp(log_w, 0) - math.log(k)
    torch.testing.assert_close(bound["iwae"], iwae, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(bound["reconstruction"], -log_lik.mean(0), rtol=1e-5, atol=1e-4)
    assert bool((bound["iwae"] >= log_w.mean(0) - 1e-9).all())  # Jensen, per image


def test_training_history_and_floor_statistics(trained):
    """One epoch: 23 steps; the curves have the right lengths; floored shares lie in [0, 1]."""
    _, _, history = trained
    assert history["steps"] == 23  # ceil(1437 / 64)
    assert len(history["train"]["elbo"]) == 1
    assert len(history["held_out"]["elbo"]) == 2
    assert history["train"]["kl_weight"] == [1.0]  # the linear warm-up is done after 5 steps
    assert all(0.0 <= f <= 1.0 for f in history["floored_fraction"])
    train = history["train"]
    assert train["elbo"][0] == pytest.approx(-(train["reconstruction"][0] + train["kl"][0]))


def test_adam_matches_torch_optim():
    """The demo's Adam (it avoids torch.optim's slow import) equals torch.optim.Adam's update."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(9, 5, generator=gen)
    start = torch.randn(5, 3, generator=gen)
    ours_w = start.clone().requires_grad_(True)
    ours = _vae._Adam(torch, [ours_w])
    refs = []
    for foreach in (False, True):
        w = start.clone().requires_grad_(True)
        refs.append((w, torch.optim.Adam([w], lr=1.0, foreach=foreach)))
    for step in range(40):
        lr = 0.05 * (1 + math.cos(math.pi * step / 40)) / 2 + 1e-3
        ours.zero_grad()
        (x @ ours_w).sin().sum().backward()
        ours.step(lr)
        for w, optimizer in refs:
            optimizer.param_groups[0]["lr"] = lr
            optimizer.zero_grad()
            (x @ w).sin().sum().backward()
            optimizer.step()
    for w, _ in refs:
        torch.testing.assert_close(ours_w, w, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("schedule", _vae.SCHEDULES)
def test_kl_weight_schedules(schedule):
    """Each schedule starts at 0 (constant: at β) and is at β at the end of training."""
    from kldiv.torch import CyclicalSchedule

    settings = _vae._Settings(schedule=schedule, beta=2.5)
    weight = _vae._kl_weight(settings, 400)
    assert weight(399) == pytest.approx(2.5, rel=0.01)
    if schedule == "constant":
        assert weight(0) == 2.5
        return
    assert weight(0) == pytest.approx(0.0, abs=0.02)
    if schedule == "linear":
        assert weight(50) == 1.25
        assert weight(100) == 2.5
    if schedule == "cyclical":
        expected = CyclicalSchedule(400, n_cycles=4, ratio=0.5, end=2.5)
        assert [weight(t) for t in range(400)] == [expected(t) for t in range(400)]


def test_dimension_status():
    """Inactive (q ignores x), held at the free-bits floor, or active."""
    assert _vae._status(activity=0.005, floored_fraction=0.0) == "inactive"
    assert _vae._status(activity=0.005, floored_fraction=0.6) == "inactive"
    assert _vae._status(activity=0.4, floored_fraction=0.5) == "at the floor"
    assert _vae._status(activity=0.4, floored_fraction=0.1) == "at the floor"
    assert _vae._status(activity=1.2, floored_fraction=0.0) == "active"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "`epochs` must be an integer >= 1"),
        ({"epochs": True}, "`epochs` must be an integer >= 1; got True"),
        ({"epochs": 2.5}, "`epochs` must be an integer >= 1; got 2.5"),
        ({"latent_dim": 1}, "`latent_dim` must be an integer >= 2"),
        ({"beta": -1.0}, "`beta` must be a finite number >= 0"),
        ({"free_bits": float("nan")}, "`free_bits` must be a finite number >= 0"),
        ({"schedule": "step"}, "`schedule` must be one of linear, cyclical, sigmoid, constant"),
    ],
)
def test_run_vae_rejects_bad_arguments_before_doing_anything(tmp_path, kwargs, message):
    """The library call checks its arguments first: KLDivError, and no folder is made."""
    with pytest.raises(KLDivError, match=message.replace("(", r"\(")):
        _vae.run_vae(tmp_path / "r", **kwargs)
    assert not (tmp_path / "r").exists()
