"""``kldiv dist P Q``: D(P ‖ Q) of two distributions given as specs, with its method and error bar.

``kldiv dist "Normal(0, 1)" "StudentT(3, 0, 1.5)"`` parses both specs safely
(:func:`kldiv.cli._spec.parse_distribution`) and calls :func:`kldiv.estimate`:
the closed form when one is registered, else enumeration, quadrature or
Monte Carlo, each with its standard error.
"""

from __future__ import annotations

import argparse
import math
import re
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
from kldiv.cli._io import renamed
from kldiv.cli._spec import family_names
from kldiv.errors import KLDivError
from kldiv.estimators._auto import METHODS
from kldiv.estimators._estimate import unit_name

__all__ = ["add_parser", "format_estimate"]

_METHOD_ARGUMENT = re.compile(r"method='(\w+)'")  # the library's keyword, in an error message


def _at_least_two(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2; got {text!r}")
    return value


def _distribution(text: str, name: str) -> Any:
    from kldiv.cli._spec import SpecError, parse_distribution

    try:
        return parse_distribution(text)
    except SpecError as err:
        raise SpecError(f"{name}: {err}") from err
    except KLDivError as err:
        raise KLDivError(f"{name} = {text.strip()}: {err}") from err


def format_estimate(value: float, stderr: float) -> str:
    """``value ± stderr`` for the terminal: 6 significant digits, fewer if the error is larger.

    Args:
        value: the estimate.
        stderr: its standard error (0 for an exact value).

    Returns:
        ``0.443147`` for an exact value, ``0.0580167 ± 5e-08`` when the error
        is below the sixth digit, else the value rounded to the error's
        precision (``0.1513 ± 0.0002``); ``inf`` for an infinite value.

    Examples:
        >>> format_estimate(0.4431471805599453, 0.0)
        '0.443147'
        >>> format_estimate(0.05801672, 4.6e-08)
        '0.0580167 ± 5e-08'
        >>> format_estimate(0.151293, 0.00021)
        '0.1513 ± 0.0002'
        >>> format_estimate(0.4431472, 7e-07), format_estimate(0.04497330, 1.8e-07)
        ('0.443147 ± 7e-07', '0.0449733 ± 2e-07')
        >>> format_estimate(float("inf"), float("nan"))
        'inf'
    """
    from kldiv.estimators._estimate import format_value

    if stderr == 0.0 or not math.isfinite(value):
        return f"{value:.6g}"  # an infinite divergence has no error bar
    if not math.isfinite(stderr):
        return f"{value:.6g} ± {stderr:.1g}"
    if stderr < 1e-6 or stderr < 1e-5 * abs(value):  # tiny: the digits the error supports, <= 6
        if value == 0.0:
            return f"0 ± {stderr:.1g}"
        exponent = math.floor(math.log10(abs(value)))
        digits = min(6, max(1, exponent - math.floor(math.log10(stderr)) + 1))
        return f"{value:.{digits}g} ± {stderr:.1g}"
    return format_value(value, stderr)


def _flat(array: Any) -> np.ndarray:
    return np.asarray(array, dtype=np.float64).reshape(-1)


def _result(args: argparse.Namespace, result: Any) -> dict[str, Any]:
    values, errors = _flat(result.value), _flat(result.stderr)
    low, high = result.ci(0.95)
    single = values.size == 1
    return {
        "p": args.p.strip(),
        "q": args.q.strip(),
        "value": float(values[0]) if single else values,
        "stderr": float(errors[0]) if single else errors,
        "ci95": [float(_flat(low)[0]), float(_flat(high)[0])]
        if single
        else np.stack([_flat(low), _flat(high)], axis=-1),
        "method": result.method,
        "n": result.n,
        "unit": unit_name(args.base),
        "base": args.base,
        "batch_shape": list(np.shape(result.value)),
        "converged": result.converged,
        "details": result.details,
    }


def _run(args: argparse.Namespace) -> int:
    import kldiv

    if args.rtol == 0 and args.atol == 0:
        raise UsageError("--rtol and --atol cannot both be 0: one of them sets when to stop")
    p = _distribution(args.p, "P")
    q = _distribution(args.q, "Q")
    try:
        result = kldiv.estimate(
            p,
            q,
            method=args.method,
            rtol=args.rtol,
            atol=args.atol,
            max_samples=args.max_samples,
            seed=args.seed,
            base=args.base,
        )
    except KLDivError as err:
        message = _METHOD_ARGUMENT.sub(r"--method \1", str(err))  # the command's spelling
        raise renamed(KLDivError(message), {"p": "P", "q": "Q"}) from err
    data = _result(args, result)
    unit = data["unit"]
    tail = f"({result.method})" if result.n == 0 else f"({result.method}, n={result.n})"
    values, errors = _flat(result.value), _flat(result.stderr)

    note = ""
    converged = result.converged
    if converged is None:
        flags = result.details.get("converged")
        converged = None if flags is None else bool(np.all(flags))
    if converged is False:
        reason = result.details.get("reason") or (
            f"the standard error is above max(atol, rtol·|value|) after {result.n} draws"
        )
        hint = " (raise --max-samples or loosen --rtol)" if result.method == "monte_carlo" else ""
        note = f"\nnot converged: {reason}{hint}"

    def render(console: Any) -> None:
        if values.size == 1:
            line = f"{format_estimate(values[0], errors[0])} {unit} {tail}{note}"
            console.print(line, markup=False)
            return
        width = len(str(values.size - 1))
        lines = [
            f"[{i:>{width}}] {format_estimate(v, e)} {unit}"
            for i, (v, e) in enumerate(zip(values, errors, strict=True))
        ]
        lines.append(f"{values.size} pairs, batch shape {tuple(data['batch_shape'])} {tail}{note}")
        console.print("\n".join(lines), markup=False)

    emit(args, data, render)
    return 0


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Adds ``kldiv dist``.

    Args:
        subparsers: the ``kldiv`` command's subparsers.
        common: the parent parser giving ``--json`` and ``--debug``.
    """
    parser = subparsers.add_parser(
        "dist",
        parents=[common],
        help="D(P ‖ Q) of two distributions, e.g. 'Normal(0, 1)' 'StudentT(3, 0, 1.5)'",
        description=(
            "D(P ‖ Q) of two distributions written as specs: a kldiv.distributions name called "
            "with numbers and lists, e.g. 'Normal(0, 1)', 'Categorical([0.2, 0.8])', "
            "'MultivariateNormal([0, 0], covariance_matrix=[[1, 0], [0, 1]])'. Specs are parsed, "
            "never evaluated. The closed form is used where one is registered, else "
            "enumeration, quadrature or Monte Carlo, each with its standard error "
            "(see `kldiv pairs`)."
        ),
        epilog=(
            'Example: kldiv dist "Normal(0, 1)" "Normal(1, 2)"  →  0.443147 nats (exact). '
            f"Distribution names: {', '.join(family_names())}."
        ),
    )
    parser.add_argument("p", metavar="P", help="the true distribution, e.g. 'Normal(0, 1)'")
    parser.add_argument("q", metavar="Q", help="the approximation, e.g. 'StudentT(3, 0, 1.5)'")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="auto",
        help="auto (default): exact, else enumeration/quadrature, else Monte Carlo",
    )
    parser.add_argument(
        "--seed", type=seed, default=0, help="Monte Carlo random seed (default: 0, reproducible)"
    )
    parser.add_argument(
        "--rtol",
        type=nonnegative_float,
        default=1e-3,
        help="relative tolerance of quadrature and Monte Carlo (default: 1e-3)",
    )
    parser.add_argument(
        "--atol",
        type=nonnegative_float,
        default=1e-4,
        help="absolute tolerance in nats (default: 1e-4)",
    )
    parser.add_argument(
        "--max-samples",
        type=_at_least_two,
        default=1_000_000,
        help="Monte Carlo budget in draws (default: 1000000)",
    )
    add_base_option(parser)
    parser.set_defaults(handler=_run)
