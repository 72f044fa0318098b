"""What every ``kldiv`` subcommand shares: the parser class, argument types and output.

A command module exposes ``add_parser(subparsers, common)``: it adds its
parser with ``parents=[common]`` (which gives it ``--json`` and ``--debug``)
and sets ``handler``, a function of the parsed arguments that returns an exit
code. Handlers print through :func:`emit`, so that ``--json`` gives one JSON
document on stdout for scripts and the default gives a rich, human-readable
rendering. Bad input raises :class:`UsageError` (exit code 2) or
:class:`~kldiv.KLDivError` (exit code 1); :func:`kldiv.cli.main` prints either
as one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = [
    "Parser",
    "UsageError",
    "add_base_option",
    "common_options",
    "console",
    "emit",
    "jsonable",
    "nonnegative_float",
    "positive_float",
    "positive_int",
    "seed",
]


class UsageError(Exception):
    """A command-line mistake, reported in one line with exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with its multi-line usage errors turned into one-line ones."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def common_options() -> argparse.ArgumentParser:
    """The parent parser of every subcommand: ``--json`` and ``--debug``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout instead of the human-readable output",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,  # the top-level `kldiv --debug CMD` keeps its value
        help="show the full traceback of an error",
    )
    return common


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite positive number; got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0; got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0; got {text!r}")
    return value


def seed(text: str) -> int:
    """An argparse type: a random seed in [0, 2**63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0; got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**63); got {text!r}")
    return value


def _base(text: str) -> float:
    if text.strip().lower() == "e":
        return math.e
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number other than 1 (2 for bits, e for nats); got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0 and value != 1):
        raise argparse.ArgumentTypeError(
            f"expected a positive number other than 1 (2 for bits, e for nats); got {text!r}"
        )
    return value


def add_base_option(parser: argparse.ArgumentParser) -> None:
    """Adds ``--base`` (default: nats): ``--base 2`` gives bits."""
    parser.add_argument(
        "--base",
        type=_base,
        default=None,
        help="logarithm base of the result: 2 for bits, 10 for hartleys (default: e, nats)",
    )


def jsonable(value: Any) -> Any:
    """Plain JSON data: arrays to lists, NumPy scalars to numbers, inf/nan to strings.

    Strict JSON has no infinities: ``+inf`` (a KL that diverges) is written as
    the string ``"inf"`` (``"-inf"``, ``"nan"`` likewise), which every parser reads.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return jsonable(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if hasattr(value, "__float__"):
        return jsonable(float(value))
    return str(value)


def console(stderr: bool = False) -> Any:
    """A rich Console on stdout (or stderr); plain text when not a terminal."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def emit(args: argparse.Namespace, data: dict[str, Any], render: Callable[[Any], None]) -> None:
    """Prints a command's result: ``data`` as JSON with ``--json``, else ``render(console)``.

    Args:
        args: the parsed arguments (``args.json`` selects the form).
        data: the result as plain data (see :func:`jsonable`).
        render: draws the human-readable form on a rich Console.
    """
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")
        return
    render(console())
