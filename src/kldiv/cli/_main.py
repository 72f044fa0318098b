"""The ``kldiv`` command line: argparse subcommands calling the public API.

Adding a command: write ``_add_<name>(subparsers)`` that builds its parser and
sets ``handler`` (a function of the parsed arguments returning an exit code),
and call it from :func:`build_parser`. Bad input (an unknown flag, a bad
value, a :class:`~kldiv.KLDivError`, a missing optional dependency) is one
line on stderr, ``kldiv: error: …``, and a non-zero exit code: 2 for usage
errors, 1 for failures while running.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from kldiv import __version__
from kldiv.errors import KLDivError

__all__ = ["build_parser", "main"]

USAGE_ERROR = 2
RUN_ERROR = 1


class _UsageError(Exception):
    """A command-line mistake, reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its multi-line usage errors turned into one-line ones."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0; got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**63); got {text!r}")
    return value


def _run_demo_vi(args: argparse.Namespace) -> int:
    from kldiv.demos._vi import format_summary, run_vi

    summary = run_vi(args.out, seed=args.seed, steps=args.steps, quick=args.quick)
    print(format_summary(summary, args.out))
    return 0


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run a worked example and write its report",
        description="Worked examples: each writes plots and an index.html page.",
    )
    demos = demo.add_subparsers(dest="demo", metavar="NAME", parser_class=_Parser)
    vi = demos.add_parser(
        "vi",
        help="variational inference: Bayesian logistic regression, exact vs Monte Carlo KL",
        description=(
            "Fits mean-field and full-covariance Gaussian posteriors of a Bayesian logistic "
            "regression (scikit-learn's breast-cancer data) by maximising the ELBO with "
            "kldiv.torch.elbo, checks them against HMC and the Laplace approximation, and "
            "measures the gradient variance with the exact against the Monte Carlo KL. "
            "Needs the demo extra: pip install 'kldiv[demo]'."
        ),
    )
    vi.add_argument(
        "--out", default="kldiv-vi-report", help="output folder (default: kldiv-vi-report/)"
    )
    vi.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    vi.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="Adam steps per posterior (default: 2000; 100 with --quick)",
    )
    vi.add_argument("--quick", action="store_true", help="a run of a few seconds with short chains")
    vi.set_defaults(handler=_run_demo_vi)
    demo.set_defaults(handler=None, missing="a demo name (vi)", help_hint="kldiv demo --help")


def build_parser() -> argparse.ArgumentParser:
    """The ``kldiv`` argument parser with every subcommand."""
    parser = _Parser(
        prog="kldiv",
        description="kldiv: the Kullback–Leibler divergence, exact where it can be.",
    )
    parser.add_argument("--version", action="version", version=f"kldiv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_demo(subparsers)
    parser.set_defaults(handler=None, missing="a command (demo)", help_hint="kldiv --help")
    return parser


def _fail(message: str, code: int) -> int:
    first = " ".join(str(message).split())  # one line, whatever the message holds
    print(f"kldiv: error: {first}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``kldiv`` command; returns the exit code.

    Args:
        argv: the arguments without the program name (None: ``sys.argv[1:]``).

    Returns:
        0 on success, 2 for a usage error, 1 for a failure while running.

    Examples:
        >>> from kldiv.cli import main
        >>> main(["--version"])
        kldiv 0.1.0
        0
        >>> main(["demo", "vi", "--steps", "0"])  # one line on stderr
        2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as err:
        return _fail(str(err), USAGE_ERROR)
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    if args.handler is None:
        return _fail(f"expected {args.missing} (see `{args.help_hint}`)", USAGE_ERROR)
    try:
        return int(args.handler(args))
    except ImportError as err:
        return _fail(str(err), RUN_ERROR)
    except KLDivError as err:
        return _fail(str(err), RUN_ERROR)
    except OSError as err:
        return _fail(f"{err.strerror or err}: {err.filename}", RUN_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
