"""``kldiv samples X Y``: D(P ‖ Q) estimated from samples x ~ P and y ~ Q, with its standard error.

X and Y are ``.npy`` or ``.csv`` files (or typed numbers) of shape (n,) or
(n, d), one sample per row. ``--method knn`` (the default, any dimension)
calls :func:`kldiv.knn_kl`; ``--method histogram`` (1-D only) calls
:func:`kldiv.histogram_kl`.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from kldiv.cli._common import (
    UsageError,
    add_base_option,
    emit,
    nonnegative_float,
    positive_int,
    seed,
)
from kldiv.cli._io import load_rows, renamed
from kldiv.errors import KLDivError
from kldiv.estimators._estimate import unit_name

__all__ = ["add_parser"]

METHODS = ("knn", "histogram")
_BIN_RULES = ("auto", "fd", "doane", "scott", "stone", "rice", "sturges", "sqrt")


def _bins(text: str) -> int | str:
    if text in _BIN_RULES:
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        rules = ", ".join(_BIN_RULES)
        raise argparse.ArgumentTypeError(
            f"expected a number of bins >= 1 or a rule ({rules}); got {text!r}"
        ) from None


def _points(text: str, name: str) -> np.ndarray:
    """Samples as (n, d): a 1-D input is n points in one dimension."""
    array = load_rows(text, name)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise KLDivError(
            f"{name}: expected samples of shape (n,) or (n, d), one per row; "
            f"got shape {array.shape}"
        )
    return array


def _check_options(args: argparse.Namespace) -> None:
    knn_only = {"--k": args.k, "--bias-correction": args.bias_correction or None}
    histogram_only = {"--bins": args.bins, "--smoothing": args.smoothing}
    unused = knn_only if args.method == "histogram" else histogram_only
    given = [flag for flag, value in unused.items() if value is not None]
    if given:
        other = "knn" if args.method == "histogram" else "histogram"
        raise UsageError(f"{', '.join(given)} applies to --method {other} only")


def _estimate(args: argparse.Namespace, x: np.ndarray, y: np.ndarray) -> Any:
    import kldiv

    if args.method == "histogram":
        for name, points in (("x", x), ("y", y)):
            if points.shape[1] != 1:
                raise KLDivError(
                    f"{name}: the histogram estimator needs 1-D samples; got d = "
                    f"{points.shape[1]} columns (use --method knn)"
                )
        return kldiv.histogram_kl(
            x[:, 0],
            y[:, 0],
            bins="auto" if args.bins is None else args.bins,
            smoothing=0.5 if args.smoothing is None else args.smoothing,
            base=args.base,
        )
    return kldiv.knn_kl(
        x,
        y,
        k=1 if args.k is None else args.k,
        bias_correction=args.bias_correction,
        seed=args.seed,
        base=args.base,
    )


def _notes(details: dict[str, Any], converged: bool | None) -> list[str]:
    """What the estimator flagged (no error bar, a constant sample, repeated points)."""
    notes = []
    if converged is False:
        notes.append(f"not converged: {details.get('reason', 'no error bar')}")
    if details.get("degenerate"):
        notes.append(f"note: {details['degenerate']}".replace("`", ""))
    tied = int(details.get("tied_points") or 0)
    if tied:
        notes.append(
            f"note: {tied} points of x coincide with another sample (ties); knn assumes "
            "continuous data, and ties bias it: deduplicate repeated rows, or use --method "
            "histogram for discrete data"
        )
    return notes


def _run(args: argparse.Namespace) -> int:
    from kldiv.cli._dist import format_estimate

    _check_options(args)
    x = _points(args.x, "x")
    y = _points(args.y, "y")
    try:
        result = _estimate(args, x, y)
    except KLDivError as err:
        raise renamed(err, {"x": "x", "y": "y"}) from err
    value, stderr = float(result.value), float(result.stderr)
    low, high = result.ci(0.95)
    data = {
        "value": value,
        "stderr": stderr,
        "ci95": [low, high],
        "method": result.method,
        "n": int(x.shape[0]),
        "m": int(y.shape[0]),
        "d": int(x.shape[1]),
        "unit": unit_name(args.base),
        "base": args.base,
        "converged": result.converged,
        "details": result.details,
    }
    shape = f"n={x.shape[0]}, m={y.shape[0]}, d={x.shape[1]}"

    notes = _notes(result.details, result.converged)

    def render(console: Any) -> None:
        line = f"{format_estimate(value, stderr)} {data['unit']} ({result.method}, {shape})"
        console.print("\n".join([line, *notes]), markup=False)

    emit(args, data, render)
    return 0


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Adds ``kldiv samples``.

    Args:
        subparsers: the ``kldiv`` command's subparsers.
        common: the parent parser giving ``--json`` and ``--debug``.
    """
    parser = subparsers.add_parser(
        "samples",
        parents=[common],
        help="D(P ‖ Q) estimated from samples x ~ P and y ~ Q (.npy/.csv), with its stderr",
        description=(
            "Estimates D(P ‖ Q) from samples x ~ P and y ~ Q: .npy or .csv files of shape (n,) "
            "or (n, d), one sample per row. knn (default, any d): the k-nearest-neighbour "
            "estimator of Wang, Kulkarni & Verdú (2009). histogram (1-D only): common bins, "
            "smoothed counts; it estimates the binned divergence, at most the continuous one."
        ),
        epilog="Example: kldiv samples x.npy y.npy --method knn --k 3",
    )
    parser.add_argument("x", help="samples of P: a .npy or .csv file, rows are samples")
    parser.add_argument("y", help="samples of Q: a .npy or .csv file, rows are samples")
    parser.add_argument(
        "--method", choices=METHODS, default="knn", help="knn (default) or histogram (1-D)"
    )
    parser.add_argument(
        "--k", type=positive_int, default=None, help="knn: the neighbour order (default: 1)"
    )
    parser.add_argument(
        "--bias-correction",
        action="store_true",
        help="knn: Wang et al.'s adaptive neighbour orders",
    )
    parser.add_argument(
        "--bins",
        type=_bins,
        default=None,
        help="histogram: a number of equal-width bins or a NumPy rule (default: auto)",
    )
    parser.add_argument(
        "--smoothing",
        type=nonnegative_float,
        default=None,
        help="histogram: pseudo-count added to every bin (default: 0.5; 0 for the plug-in)",
    )
    parser.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="knn: seed of the split behind the standard error (default: 0)",
    )
    add_base_option(parser)
    parser.set_defaults(handler=_run)
