"""``kldiv probs P Q``: the divergence of discrete distributions typed inline or read from files.

``kldiv probs 0.4,0.6 0.5,0.5`` prints ``0.0201355 nats``. P and Q are rows of
probabilities (or, with ``--logits`` / ``--log-probs``, of logits or log
probabilities), typed as numbers or read from ``.npy``/``.csv`` files whose
rows (last axis) are distributions; rows broadcast (one Q row against many P
rows). The values come from :func:`kldiv.kl_from_probs` and its siblings.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import numpy as np

from kldiv.cli._common import UsageError, add_base_option, emit, positive_float
from kldiv.cli._io import load_rows, looks_like_numbers, renamed
from kldiv.errors import KLDivError
from kldiv.estimators._estimate import unit_name

__all__ = ["add_parser"]

MEASURES = ("kl", "js", "cross-entropy")
_FUNCTIONS = {
    ("kl", "probs"): "kl_from_probs",
    ("kl", "logits"): "kl_from_logits",
    ("kl", "log-probs"): "kl_from_log_probs",
    ("js", "probs"): "js_from_probs",
    ("js", "logits"): "js_from_logits",
    ("js", "log-probs"): "js_from_log_probs",
    ("cross-entropy", "probs"): "cross_entropy",
    ("cross-entropy", "logits"): "cross_entropy_from_logits",
    ("cross-entropy", "log-probs"): "cross_entropy_from_log_probs",
}
_NO_BATCH_INDEX = re.compile(r" at batch index \(\)")
_BATCH_INDEX = re.compile(r"batch index \((\d+),\)")
_MEASURE_TITLES = {"kl": "D(P ‖ Q)", "js": "JS(P, Q)", "cross-entropy": "H(P, Q)"}
# The core's argument names, as the command line calls them.
_CORE_NAMES = {"p": "P", "q": "Q", "p_logits": "P", "q_logits": "Q", "log_p": "P", "log_q": "Q"}


class _NumberListMatcher:
    """argparse's negative-number test, widened to typed lists: ``-1,2`` and ``-inf,0``.

    argparse takes an argument that starts with ``-`` for an option unless it
    looks like one negative number; logits such as ``-1,2`` are positionals.
    """

    def match(self, text: str) -> bool:
        return text.startswith("-") and looks_like_numbers(text)


def _function(measure: str, form: str) -> Any:
    import kldiv

    return getattr(kldiv, _FUNCTIONS[measure, form])


def _as_rows(array: np.ndarray, name: str) -> np.ndarray:
    """Distributions along the last axis; one column of several rows is refused."""
    if array.ndim == 0:
        raise KLDivError(f"{name}: expected at least one value; got a single number")
    if array.size == 0:
        raise KLDivError(f"{name}: expected at least one value; got an empty array {array.shape}")
    if array.ndim == 2 and array.shape[1] == 1 and array.shape[0] > 1:
        raise KLDivError(
            f"{name}: each row is a distribution, but this input has {array.shape[0]} rows of "
            "one value; write one distribution per line, its values separated by commas"
        )
    return array


def _with_rows(err: KLDivError) -> KLDivError:
    """The core's batch indices as the command's rows: ``batch index (3,)`` is ``row 3``."""
    message = _NO_BATCH_INDEX.sub("", str(err))
    return KLDivError(_BATCH_INDEX.sub(r"row \1", message))


def _compute(args: argparse.Namespace, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    options: dict[str, Any] = {"base": args.base}
    if args.form == "logits":
        options["temperature"] = args.temperature
    try:
        values = _function(args.measure, args.form)(p, q, **options)
    except KLDivError as err:
        raise _with_rows(renamed(err, _CORE_NAMES)) from err
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _form(args: argparse.Namespace) -> str:
    if args.logits and args.log_probs:
        raise UsageError("--logits and --log-probs cannot be used together")
    if args.temperature is not None and not args.logits:
        raise UsageError("--temperature applies to --logits only")
    return "logits" if args.logits else "log-probs" if args.log_probs else "probs"


def _number(value: float) -> str:
    return f"{value:.6g}"


def _run(args: argparse.Namespace) -> int:
    args.form = _form(args)
    if args.temperature is None:
        args.temperature = 1.0
    p = _as_rows(load_rows(args.p, "P", keep_precision=True), "P")
    q = _as_rows(load_rows(args.q, "Q", keep_precision=True), "Q")
    values = _compute(args, p, q)
    unit = unit_name(args.base)
    mean = float(np.mean(values))
    data = {
        "measure": args.measure,
        "form": args.form,
        "unit": unit,
        "base": args.base,
        "rows": int(values.size),
        "values": values,
        "mean": mean,
    }

    def render(console: Any) -> None:
        if values.size == 1:
            console.print(f"{_number(values[0])} {unit}", markup=False)
            return
        width = len(str(values.size - 1))
        lines = [f"row {i:>{width}}  {_number(v)}" for i, v in enumerate(values)]
        title = _MEASURE_TITLES[args.measure]
        lines.append(f"mean {title} over {values.size} rows: {_number(mean)} {unit}")
        console.print("\n".join(lines), markup=False)

    emit(args, data, render)
    return 0


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Adds ``kldiv probs``.

    Args:
        subparsers: the ``kldiv`` command's subparsers.
        common: the parent parser giving ``--json`` and ``--debug``.
    """
    parser = subparsers.add_parser(
        "probs",
        parents=[common],
        help="D(P ‖ Q) of discrete distributions: typed numbers or .npy/.csv rows",
        description=(
            "The KL divergence D(P ‖ Q) = Σ P log(P/Q) of discrete distributions, P the true one "
            "and Q the approximation. P and Q are numbers separated by commas (0.4,0.6; rows "
            "separated by ';') or .npy/.csv files whose rows are distributions. Negative "
            "logits can be typed as they are (--logits -1,2 0,0) or after `--`."
        ),
        epilog="Example: kldiv probs 0.4,0.6 0.5,0.5  →  0.0201355 nats",
    )
    parser._negative_number_matcher = _NumberListMatcher()  # -1,2 is a value, not an option
    parser.add_argument("p", metavar="P", help="the true distribution(s): 0.4,0.6 or a file")
    parser.add_argument("q", metavar="Q", help="the approximation(s): 0.5,0.5 or a file")
    parser.add_argument(
        "--logits", action="store_true", help="P and Q are logits (unnormalised log-probs)"
    )
    parser.add_argument(
        "--log-probs", action="store_true", help="P and Q are log-probabilities (natural log)"
    )
    parser.add_argument(
        "--temperature",
        type=positive_float,
        default=None,
        metavar="T",
        help="with --logits: divide the logits by T before the softmax (default: 1)",
    )
    parser.add_argument(
        "--measure",
        choices=MEASURES,
        default="kl",
        help="kl: D(P ‖ Q) (default); js: Jensen–Shannon; cross-entropy: H(P, Q)",
    )
    add_base_option(parser)
    parser.set_defaults(handler=_run)
