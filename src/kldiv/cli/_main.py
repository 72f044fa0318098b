"""The ``kldiv`` command line: argparse subcommands calling the public API.

Each subcommand lives in its own module (``_probs``, ``_dist``, ``_samples``,
``_compare``, ``_pairs``, ``_demo``) exposing ``add_parser(subparsers,
common)``; see :mod:`kldiv.cli._common` for the shared options and output.
Bad input (an unknown flag, a bad value, a :class:`~kldiv.KLDivError`, a
missing optional dependency, an unreadable file) is one line on stderr,
``kldiv: error: …``, and a non-zero exit code: 2 for usage errors, 1 for
failures while running. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kldiv import __version__
from kldiv.cli import _compare, _demo, _dist, _pairs, _probs, _samples
from kldiv.cli._common import Parser, UsageError, common_options
from kldiv.errors import KLDivError

__all__ = ["build_parser", "main"]

USAGE_ERROR = 2
RUN_ERROR = 1
INTERRUPTED = 130

_COMMANDS = (_probs, _dist, _samples, _compare, _pairs, _demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``kldiv`` argument parser with every subcommand."""
    parser = Parser(
        prog="kldiv",
        description="kldiv: the Kullback–Leibler divergence D(P ‖ Q), exact where it can be.",
        epilog="`kldiv COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"kldiv {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    common = common_options()
    for command in _COMMANDS:
        command.add_parser(subparsers, common)
    names = ", ".join(subparsers.choices)
    parser.set_defaults(handler=None, missing=f"a command ({names})", help_hint="kldiv --help")
    return parser


def _fail(message: str, code: int) -> int:
    first = " ".join(str(message).split())  # one line, whatever the message holds
    print(f"kldiv: error: {first}", file=sys.stderr)
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args))
    except UsageError as err:
        return _fail(str(err), USAGE_ERROR)
    except (ImportError, KLDivError) as err:
        return _fail(str(err), RUN_ERROR)
    except MemoryError as err:  # e.g. --bins 10000000000: say so, not "internal error"
        return _fail(f"out of memory: {err}", RUN_ERROR)
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        return _fail(f"{err.strerror or err}{where}", RUN_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    except Exception as err:  # an unexpected failure: still one line, traceback on --debug
        return _fail(
            f"internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)",
            RUN_ERROR,
        )


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
        args, unknown = parser.parse_known_args(argv)
    except UsageError as err:
        return _fail(str(err), USAGE_ERROR)
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    if unknown:  # the command's own help, which lists its options
        names = [args.command, getattr(args, "demo", None)]  # `demo` has subcommands
        command = " ".join(["kldiv", *(name for name in names if name)])
        return _fail(
            f"unrecognized arguments: {' '.join(unknown)} (see `{command} --help`)", USAGE_ERROR
        )
    if args.handler is None:
        return _fail(f"expected {args.missing} (see `{args.help_hint}`)", USAGE_ERROR)
    if getattr(args, "debug", False):
        return int(args.handler(args))  # errors propagate with their traceback
    return _run(args)
