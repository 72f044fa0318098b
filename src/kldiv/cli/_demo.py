"""``kldiv demo``: worked examples that write a report folder (PNGs and one HTML page).

``kldiv demo [OPTIONS]`` and ``kldiv demo vae [OPTIONS]`` train the VAE on
scikit-learn's digits (:func:`kldiv.demos.run_vae`); ``kldiv demo vi`` fits
the variational posteriors of a Bayesian logistic regression
(:func:`kldiv.demos.run_vi`).

The VAE's options are accepted both before and after ``vae`` (``kldiv demo
--epochs 5`` is ``kldiv demo vae --epochs 5``), so both parsers give them
``default=SUPPRESS``: an option the user did not type never overwrites one
they did, and :data:`_VAE_DEFAULTS` fills the rest in the handler.
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any

from kldiv.cli._common import (
    Parser,
    UsageError,
    common_options,
    console,
    emit,
    nonnegative_float,
    positive_int,
    seed,
)
from kldiv.demos._vae import SCHEDULES, run_vae  # imports neither torch nor matplotlib

__all__ = ["add_parser"]

# run_vae's own defaults (out, seed, epochs, beta, free_bits, schedule, latent_dim), and --quiet.
_VAE_DEFAULTS = {
    **{
        name: parameter.default
        for name, parameter in inspect.signature(run_vae).parameters.items()
        if name != "progress"
    },
    "quiet": False,
}
_VI_DEFAULTS = {"out": "kldiv-vi-report", "seed": 0}
_VAE_ONLY = ("epochs", "beta", "free_bits", "schedule", "latent_dim", "quiet")


def _latent_dim(text: str) -> int:
    """An argparse type: an integer >= 2 (the latent scatter shows two dimensions)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2; got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2; got {text!r}")
    return value


def _add_vae_options(parser: argparse.ArgumentParser) -> None:
    """The VAE demo's options, every one with ``default=SUPPRESS`` (see the module docstring)."""
    d = _VAE_DEFAULTS
    add = parser.add_argument
    add(
        "--epochs",
        type=positive_int,
        default=argparse.SUPPRESS,
        help=f"passes over the 1437 training images, 23 steps each (default: {d['epochs']})",
    )
    add(
        "--beta",
        type=nonnegative_float,
        default=argparse.SUPPRESS,
        help=f"the KL weight the schedule ends at; 1 is the ELBO (default: {d['beta']:g})",
    )
    add(
        "--free-bits",
        type=nonnegative_float,
        default=argparse.SUPPRESS,
        metavar="NATS",
        help=f"free-bits floor λ per latent dimension, 0 for none (default: {d['free_bits']:g})",
    )
    add(
        "--schedule",
        choices=SCHEDULES,
        default=argparse.SUPPRESS,
        help=f"the KL weight schedule (default: {d['schedule']})",
    )
    add(
        "--latent-dim",
        type=_latent_dim,
        default=argparse.SUPPRESS,
        metavar="D",
        help=f"latent dimensions, at least 2 (default: {d['latent_dim']})",
    )
    add(
        "--out",
        default=argparse.SUPPRESS,
        help=f"the report folder (default: {d['out']}/; kldiv-vi-report/ for `vi`)",
    )
    add(
        "--seed",
        type=seed,
        default=argparse.SUPPRESS,
        help="seeds the weights, the batches and every draw (default: 0)",
    )
    add(
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bar (the summary is still printed)",
    )


def _vae_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, default) for name, default in _VAE_DEFAULTS.items()}


class _ProgressBar:
    """A rich progress bar on stderr, one step per epoch, with the held-out ELBO and KL.

    It appears at the first report (epoch 0, once the data, the model and the
    output folder are ready), so that a bad ``--out`` is still one line on
    stderr. On a terminal it is redrawn in place; elsewhere (a log file, a
    pipe) rich prints its final state once. stdout keeps only the result.
    """

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def _start(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("epoch"),
            MofNCompleteColumn(),
            BarColumn(bar_width=20),
            TimeElapsedColumn(),
            TextColumn("<"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console(stderr=True),
        )
        self.task = self.progress.add_task("vae", total=self.epochs, status="")
        self.progress.start()

    def __call__(self, epoch: int, held_out: dict[str, float]) -> None:
        if self.progress is None:
            self._start()
        status = f"held-out ELBO {held_out['elbo']:.1f} KL {held_out['kl']:.1f}"
        self.progress.update(self.task, completed=epoch, status=status)


def _run_demo_vae(args: argparse.Namespace) -> int:
    from kldiv.demos._vae import format_summary

    options = _vae_arguments(args)
    out = options["out"]
    if options.pop("quiet"):
        summary = run_vae(**options)
    else:
        with _ProgressBar(options["epochs"]) as bar:
            summary = run_vae(**options, progress=bar)
    emit(args, summary, lambda con: con.print(format_summary(summary, out), markup=False))
    return 0


def _run_demo_vi(args: argparse.Namespace) -> int:
    from kldiv.demos._vi import format_summary, run_vi

    misplaced = [name for name in _VAE_ONLY if hasattr(args, name)]  # typed before `vi`
    if misplaced:
        flags = ", ".join("--" + name.replace("_", "-") for name in misplaced)
        verb = "is an option" if len(misplaced) == 1 else "are options"
        raise UsageError(
            f"{flags} {verb} of the VAE demo (`kldiv demo [vae]`), not of `kldiv demo vi` "
            f"(see `kldiv demo vi --help`)"
        )
    out = getattr(args, "out", _VI_DEFAULTS["out"])
    summary = run_vi(out, seed=getattr(args, "seed", 0), steps=args.steps, quick=args.quick)
    print(format_summary(summary, out))
    return 0


def _common_keeping_json() -> argparse.ArgumentParser:
    """The common options (a fresh copy), with ``--json`` defaulting to SUPPRESS.

    So that ``kldiv demo --json vae`` keeps its ``--json``: the subparser's
    default would otherwise reset it. A copy, because parents share their
    action objects with every parser built from them.
    """
    common = common_options()
    for action in common._actions:
        if action.dest == "json":
            action.default = argparse.SUPPRESS
    return common


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Adds ``kldiv demo`` (the VAE), ``kldiv demo vae`` (the same) and ``kldiv demo vi``."""
    vae_description = (
        "Trains a variational autoencoder on scikit-learn's bundled digits (1797 8×8 images, "
        "no download) with kldiv.torch.GaussianKLLoss, free bits and a KL weight schedule, and "
        "writes a report folder: loss curves, the KL of each latent dimension, reconstructions, "
        "samples, a latent scatter (PNGs), index.html and summary.json. About 15–30 s with the "
        "defaults on two CPU cores; deterministic for a given --seed. Needs the demo extra: "
        "pip install 'kldiv[demo]'."
    )
    demo = subparsers.add_parser(
        "demo",
        parents=[common],
        help="train a VAE on the digits (or run `demo vi`) and write a report with pictures",
        description=(
            f"Worked examples; each writes plots and an index.html page. Without a NAME, or "
            f"with `vae`: {vae_description}"
        ),
        usage="%(prog)s [vae] [OPTIONS]\n       %(prog)s vi [OPTIONS]",
    )
    _add_vae_options(demo)
    demos = demo.add_subparsers(
        dest="demo",
        metavar="NAME",
        parser_class=Parser,
        title="demos (default: vae)",
        prog=demo.prog,
    )
    vae = demos.add_parser(
        "vae",
        parents=[_common_keeping_json()],
        help="the VAE on scikit-learn's digits (the default)",
        description=vae_description,
    )
    _add_vae_options(vae)
    vae.set_defaults(handler=_run_demo_vae)
    vi = demos.add_parser(
        "vi",
        parents=[common],
        help="variational inference: Bayesian logistic regression, exact vs Monte Carlo KL",
        description=(
            "Fits mean-field and full-covariance Gaussian posteriors of a Bayesian logistic "
            "regression (scikit-learn's breast-cancer data) by maximising the ELBO with "
            "kldiv.torch.elbo, checks them against HMC and the Laplace approximation, and "
            "measures the gradient variance with the exact against the Monte Carlo KL. "
            "Needs the demo extra: pip install 'kldiv[demo]'."
        ),
    )
    # SUPPRESS: `kldiv demo --seed 3 vi` keeps the seed typed before `vi`.
    vi.add_argument(
        "--out",
        default=argparse.SUPPRESS,
        help=f"output folder (default: {_VI_DEFAULTS['out']}/)",
    )
    vi.add_argument(
        "--seed",
        type=seed,
        default=argparse.SUPPRESS,
        help=f"random seed (default: {_VI_DEFAULTS['seed']})",
    )
    vi.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="Adam steps per posterior (default: 2000; 100 with --quick)",
    )
    vi.add_argument("--quick", action="store_true", help="a run of a few seconds with short chains")
    vi.set_defaults(handler=_run_demo_vi)
    demo.set_defaults(handler=_run_demo_vae)
