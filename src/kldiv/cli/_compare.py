"""``kldiv compare BASE TEST``: llama.cpp's ``--kl-divergence`` report for two logit files.

BASE and TEST are ``.npy`` files of logits, shape (N, V) or (..., V), read as
read-only memory maps (never unpickled), so files larger than memory stream
through in chunks. ``--tokens`` gives the true next tokens (a ``.npy`` of
integers of the leading shape; -100 or ``--ignore-index`` leaves a position
out), which adds the perplexity statistics and makes Δp refer to them.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from kldiv.cli._common import add_base_option, emit, positive_int
from kldiv.cli._io import check_output_path, open_regular, read_npy, renamed
from kldiv.errors import KLDivError

__all__ = ["add_parser", "load_npy"]

LIBRARY_NAMES = {
    "base_logits": "BASE",
    "test_logits": "TEST",
    "tokens": "--tokens",
    "ignore_index": "--ignore-index",
}
"""``compare_logits``'s argument names → the command's, for one-line errors."""


def load_npy(path: str, what: str) -> np.ndarray:
    """A ``.npy`` file as a read-only memory map (no pickles), with a one-line error otherwise.

    Args:
        path: the file.
        what: how to name it in errors (``BASE``, ``TEST``, ``--tokens``).

    Returns:
        The array, memory-mapped (an empty or 0-d array is loaded into memory).

    Raises:
        KLDivError: missing, unreadable, a directory, FIFO, device or other
            non-regular file (refused before it is opened: nothing blocks), not
            a ``.npy`` file, a huge or damaged header, a truncated file, or an
            object array.
    """
    with open_regular(path, what) as file:
        return read_npy(file, what, path, mmap=True)


def _check_logits(array: np.ndarray, what: str, path: str) -> None:
    if array.ndim < 2:
        raise KLDivError(
            f"{what}: expected logits of shape (N, V) or (..., V), one row per position; "
            f"got shape {array.shape} in {path}"
        )
    if array.dtype.kind != "f":
        raise KLDivError(
            f"{what}: expected floating-point logits; got dtype {array.dtype} in {path}"
        )


def _run(args: argparse.Namespace) -> int:
    from kldiv.reports import compare_logits

    if args.html:
        check_output_path(args.html, "--html")
    base = load_npy(args.base_file, "BASE")
    test = load_npy(args.test_file, "TEST")
    _check_logits(base, "BASE", args.base_file)
    _check_logits(test, "TEST", args.test_file)
    tokens = load_npy(args.tokens, "--tokens") if args.tokens else None
    try:
        report = compare_logits(
            base,
            test,
            tokens=tokens,
            ignore_index=args.ignore_index,
            chunk_size=args.chunk_size,
            base=args.base,
        )
    except KLDivError as err:  # the library's argument names, as the command line spells them
        raise renamed(err, LIBRARY_NAMES) from None
    html_path = report.to_html(args.html) if args.html else None

    def render(console: Any) -> None:
        console.print(report)
        if html_path is not None:
            console.print(f"HTML report: {html_path}")

    data = {"base": args.base_file, "test": args.test_file, **report.to_dict()}
    if html_path is not None:
        data["html"] = str(html_path)
    emit(args, data, render)
    return 0


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Adds ``kldiv compare``."""
    parser = subparsers.add_parser(
        "compare",
        parents=[common],
        help="compare a test model's logits with a base model's (llama.cpp --kl-divergence)",
        description=(
            "Per-token KL(P_base ‖ P_test) from two .npy logit files of shape (N, V): mean ± "
            "standard error, exact percentiles, top-1 agreement, Δp and RMS Δp, and with "
            "--tokens the perplexity statistics. Files are memory-mapped and streamed in chunks."
        ),
    )
    parser.add_argument("base_file", metavar="BASE", help="the base model's logits (.npy)")
    parser.add_argument("test_file", metavar="TEST", help="the test model's logits (.npy)")
    parser.add_argument(
        "--tokens", metavar="T.npy", help="the true next tokens (.npy of integers, shape (N,))"
    )
    parser.add_argument(
        "--ignore-index",
        type=int,
        default=-100,
        metavar="ID",
        help="token id in --tokens that leaves a position out (default: -100)",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="rows per chunk (default: about 64 MiB of float32 logits per file)",
    )
    parser.add_argument(
        "--html", metavar="OUT.html", help="also write an HTML page with per-token histograms"
    )
    add_base_option(parser)
    parser.set_defaults(handler=_run)
