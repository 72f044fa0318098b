"""The family table: each distribution checked against an independent SciPy (or hand) reference.

A :class:`FamilyCase` gives parameters and a ``scipy.stats`` frozen
distribution with the same law (``reference(params) -> frozen``). The tests
check ``log_prob`` at ``points`` (inside and outside the support), ``entropy``,
``mean``, ``variance`` and the law of ``sample`` (Kolmogorov–Smirnov for
continuous univariate laws, moments otherwise), on every backend.

Each area keeps its families in a ``families_*.py`` module exporting ``FAMILIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FamilyCase:
    cls: type
    params: dict[str, Any]
    reference: Callable[[dict], Any] | None
    points: Any
    label: str = ""
    has_entropy: bool = True
    has_moments: bool = True
    discrete: bool = False
    build: Callable[[dict], Any] | None = None
    sample_check: str = "ks"  # "ks" | "moments" | "none"

    @property
    def id(self) -> str:
        return f"{self.cls.__name__}-{self.label}" if self.label else self.cls.__name__

    def make(self, arrays: dict) -> Any:
        return self.build(arrays) if self.build is not None else self.cls(**arrays)


def all_families() -> list[FamilyCase]:
    import importlib
    import pkgutil

    import tests.distributions as package

    cases: list[FamilyCase] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("families_"):
            module = importlib.import_module(f"tests.distributions.{info.name}")
            cases.extend(module.FAMILIES)
    return cases
