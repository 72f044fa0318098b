"""The ``kldiv`` command: ``kldiv demo vi`` today; more subcommands will join it.

``kldiv …`` and ``python -m kldiv …`` run :func:`main`.
"""

from kldiv.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
