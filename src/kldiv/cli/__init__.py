"""The ``kldiv`` command: ``probs``, ``dist``, ``samples``, ``compare``, ``pairs`` and ``demo``.

``kldiv …`` and ``python -m kldiv …`` run :func:`main`.
"""

from kldiv.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
