"""Prints the table of registered closed-form pairs for docs/distributions.md.

Run ``python docs/pairs_table.py`` and paste the output between the markers
``<!-- pairs:start -->`` and ``<!-- pairs:end -->``; a test checks that the
page is current.
"""

from __future__ import annotations

import kldiv
from kldiv import distributions
from kldiv.distributions._kl_helpers import infinite_kl, kl_by_cross_entropy
from kldiv.distributions._registry import _REGISTRY


def _kind(fn: object) -> str:
    if fn is infinite_kl:
        return "+inf (support)"
    if fn is kl_by_cross_entropy:
        return "H(P, Q) − H(P)"
    return "dedicated"


def table() -> str:
    """The markdown table: one row per P family, the Q families and how each pair is computed."""
    own = [
        (p, q)
        for p, q in kldiv.registered_pairs()
        if getattr(distributions, p.__name__, None) is p
        and getattr(distributions, q.__name__, None) is q
    ]
    rows = {}
    for p, q in own:
        kind = _kind(_REGISTRY[p, q])
        mark = {"dedicated": "", "H(P, Q) − H(P)": "¹", "+inf (support)": "∞"}[kind]
        rows.setdefault(p.__name__, []).append(f"{q.__name__}{mark}")
    lines = [
        f"{len(own)} registered pairs. ¹ cross-family closed form H(P, Q) − H(P); "
        "∞ always +inf (support mismatch); unmarked: a dedicated formula.",
        "",
        "| P | Q |",
        "|---|---|",
    ]
    lines += [f"| {p} | {', '.join(qs)} |" for p, qs in sorted(rows.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
