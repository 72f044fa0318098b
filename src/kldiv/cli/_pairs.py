"""``kldiv pairs``: the (P, Q) family pairs with a registered closed form.

The pairs are :func:`kldiv.registered_pairs`. For them ``kldiv dist`` is
exact; any other pair is estimated numerically. ``--family Normal`` keeps the
pairs that apply with Normal on either side, including rules registered for
any distribution (``Deterministic`` against ``Distribution``).
"""

from __future__ import annotations

import argparse
from typing import Any

from kldiv.cli._common import emit
from kldiv.errors import KLDivError

__all__ = ["add_parser", "pair_names"]


def _family(name: str) -> type:
    from kldiv import distributions

    cls = getattr(distributions, name, None) if not name.startswith("_") else None
    if isinstance(cls, type) and issubclass(cls, distributions.Distribution):
        return cls
    names = sorted(
        n
        for n in distributions.__all__
        if isinstance(getattr(distributions, n), type)
        and issubclass(getattr(distributions, n), distributions.Distribution)
    )
    from kldiv.cli._spec import closest_hint

    valid = ", ".join(names)
    raise KLDivError(
        f"--family: unknown distribution {name!r}{closest_hint(name)}. Valid names: {valid}"
    )


def pair_names(family: str | None = None) -> list[tuple[str, str]]:
    """The registered closed-form pairs as ``(P name, Q name)``, optionally of one family.

    A pair registered for a base class (``Distribution``: any distribution)
    applies to its subclasses, so it is listed for them too.

    Args:
        family: keep the pairs that apply with this class on either side
            (None: all).

    Returns:
        The pairs, sorted by P's then Q's name.

    Raises:
        KLDivError: ``family`` is not a distribution name (the message
            suggests the closest name and lists the valid ones).

    Examples:
        >>> ("Normal", "Normal") in pair_names()
        True
        >>> all("Poisson" in pair or "Distribution" in pair for pair in pair_names("Poisson"))
        True
    """
    import kldiv

    pairs = kldiv.registered_pairs()
    if family is not None:
        cls = _family(family)
        pairs = [(p, q) for p, q in pairs if issubclass(cls, p) or issubclass(cls, q)]
    return [(p.__name__, q.__name__) for p, q in pairs]


def _shown(name: str) -> str:
    return "any distribution" if name == "Distribution" else name


def _run(args: argparse.Namespace) -> int:
    pairs = pair_names(args.family)
    data = {
        "family": args.family,
        "count": len(pairs),
        "pairs": [{"p": p, "q": q} for p, q in pairs],
    }

    def render(console: Any) -> None:
        from rich.table import Table

        title = "closed-form KL pairs" + (f" with {args.family}" if args.family else "")
        table = Table("P", "Q", title=title, title_justify="left")
        for p, q in pairs:
            table.add_row(_shown(p), _shown(q))
        console.print(table)
        console.print(f"{len(pairs)} pairs", markup=False)

    emit(args, data, render)
    return 0


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Adds ``kldiv pairs``.

    Args:
        subparsers: the ``kldiv`` command's subparsers.
        common: the parent parser giving ``--json`` and ``--debug``.
    """
    parser = subparsers.add_parser(
        "pairs",
        parents=[common],
        help="list the distribution pairs with a closed-form KL",
        description=(
            "The (P, Q) pairs of kldiv.distributions families whose D(P ‖ Q) has a registered "
            "closed form: `kldiv dist` is exact for them and numerical for any other pair."
        ),
        epilog="Example: kldiv pairs --family Normal",
    )
    parser.add_argument(
        "--family", default=None, help="only pairs with this family on either side, e.g. Normal"
    )
    parser.set_defaults(handler=_run)
