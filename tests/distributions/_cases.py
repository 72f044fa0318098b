"""The pair table: every registered KL pair with parameters and an independent reference.

A :class:`PairCase` names the two families, their parameters (plain numbers or
nested lists, turned into arrays of the backend under test) and how the
reference value is obtained, independently of the closed form:

- ``"quad"``: 1-D numerical integration of ``p log(p / q)`` over P's support
  (``scipy.integrate.quad``), per batch element, from P's and Q's ``log_prob``
  (which ``test_families_*`` check against SciPy).
- ``"sum"``: exact enumeration of a discrete univariate P's support (truncated
  where the remaining mass is below 1e-15).
- ``"mc"``: seeded Monte Carlo from P, within 5 standard errors.
- ``"inf"``: the divergence is +inf (support mismatch).
- ``"exact"``: ``expected`` was computed in the case file by independent code
  (SciPy, dense NumPy linear algebra, a hand calculation).

Each area keeps its cases in its own ``cases_*.py`` module exporting ``CASES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PairCase:
    p: type
    q: type
    p_params: dict[str, Any]
    q_params: dict[str, Any]
    reference: str = "quad"
    expected: Any = None
    rtol: float = 1e-6
    atol: float = 1e-9
    build: Callable[[dict, dict], tuple[Any, Any]] | None = None
    label: str = ""
    no_grad: tuple[str, ...] = ()
    gradcheck: bool = True
    mc_samples: int = 400_000
    tags: tuple[str, ...] = field(default=())

    @property
    def pair(self) -> tuple[type, type]:
        return (self.p, self.q)

    @property
    def id(self) -> str:
        suffix = f"-{self.label}" if self.label else ""
        return f"{self.p.__name__}-{self.q.__name__}{suffix}"

    def make(self, p_arrays: dict, q_arrays: dict) -> tuple[Any, Any]:
        if self.build is not None:
            return self.build(p_arrays, q_arrays)
        return self.p(**p_arrays), self.q(**q_arrays)


def all_cases() -> list[PairCase]:
    """Every case of every area module present."""
    import importlib
    import pkgutil

    import tests.distributions as package

    cases: list[PairCase] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("cases_"):
            module = importlib.import_module(f"tests.distributions.{info.name}")
            cases.extend(module.CASES)
    return cases
