"""Distribution specs such as ``Normal(0, 1)``, parsed safely: ``ast`` and a whitelist walk.

The grammar is a subset of Python call syntax::

    spec     := FAMILY "(" [argument {"," argument}] ")"
    argument := value | NAME "=" value
    value    := number | array | spec            (a spec only where a family takes one)
    array    := "[" value {"," value} "]"  |  "(" ... ")"   (numbers, nested for matrices)
    number   := ["+" | "-"] (INT | FLOAT | inf | nan | pi | e)

FAMILY is a class of :mod:`kldiv.distributions` (``Normal``, ``StudentT``,
``MultivariateNormal``, …). The text is parsed with ``ast.parse(mode="eval")``
and walked: any other node (attributes, subscripts, operators, strings,
lambdas, comprehensions, ``*args``, unknown names) is refused with its
column. Nothing is ever evaluated, executed or compiled to code. Lists become
float64 NumPy arrays; parameter values are checked by the distribution's own
validation.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import math
import re
from functools import cache
from typing import Any

import numpy as np

from kldiv.errors import KLDivError

__all__ = [
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MAX_LENGTH",
    "SpecError",
    "closest_hint",
    "family_names",
    "parse_distribution",
]

MAX_LENGTH = 100_000  # characters in one spec (a shell passes at most 128 KiB per argument)
MAX_DEPTH = 12  # nested brackets and calls
MAX_ELEMENTS = 20_000  # numbers in one spec (a 140 x 140 covariance matrix)
CONSTANTS = {"inf": math.inf, "nan": math.nan, "pi": math.pi, "e": math.e}
# Parameters that take a distribution (a nested spec) rather than numbers.
DISTRIBUTION_PARAMETERS = frozenset(
    {"base_distribution", "mixture_distribution", "component_distribution"}
)
# Other names people use for the families (matched in lower case), for "did you mean".
ALIASES = {
    "gaussian": "Normal",
    "gauss": "Normal",
    "mvn": "MultivariateNormal",
    "multivariategaussian": "MultivariateNormal",
    "student": "StudentT",
    "t": "StudentT",
    "dirac": "Deterministic",
    "multinoulli": "Categorical",
    "exp": "Exponential",
    "lognormal": "LogNormal",
}
_OPENING = "([{"
_CLOSING = ")]}"
_SIGN_RUN = re.compile(r"[+-]\s*[+-]")


class SpecError(KLDivError):
    """A distribution spec that is not in the grammar; the message gives the column.

    A :class:`~kldiv.KLDivError` (so the command exits with code 1); bad
    parameter values in a well-formed spec raise the distribution's own
    KLDivError instead.

    Examples:
        >>> issubclass(SpecError, KLDivError)
        True
    """


_NOT_IN_SPECS = frozenset({"TransformedDistribution"})
"""Classes a spec cannot build: transforms have no spec syntax."""


@cache
def _families() -> dict[str, type]:
    from kldiv import distributions

    base = distributions.Distribution
    found = {}
    for name in distributions.__all__:
        cls = getattr(distributions, name)
        if isinstance(cls, type) and issubclass(cls, base) and cls is not base:
            found[name] = cls
    return {name: cls for name, cls in found.items() if name not in _NOT_IN_SPECS}


def family_names() -> list[str]:
    """The distribution names a spec may use, sorted.

    Returns:
        The names of the classes in :mod:`kldiv.distributions`.

    Examples:
        >>> "Normal" in family_names() and "MultivariateNormal" in family_names()
        True
    """
    return sorted(_families())


def _fail(text: str, message: str, node: ast.AST | None = None) -> SpecError:
    where = f" at column {node.col_offset + 1}" if node is not None else ""
    return SpecError(f"bad distribution spec {_shorten(text)}: {message}{where}")


def _shorten(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "attribute access (.)",
        ast.Subscript: "indexing ([...])",
        ast.Lambda: "a lambda",
        ast.BinOp: "arithmetic (write the number itself)",
        ast.BoolOp: "a boolean operator",
        ast.Compare: "a comparison",
        ast.Starred: "unpacking (*)",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Call: "a call",
        ast.JoinedStr: "an f-string",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a generator",
        ast.DictComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment (:=)",
        ast.Await: "await",
        ast.Yield: "yield",
    }
    if isinstance(node, ast.Constant):
        return f"a {type(node.value).__name__} literal ({node.value!r:.20})"
    return names.get(type(node), f"a {type(node).__name__} expression")


def _check_nesting(text: str) -> None:
    """Refuses deep nesting and sign runs before ``ast.parse`` sees them (the parser recurses)."""
    signs = _SIGN_RUN.search(text)
    if signs:
        raise SpecError(
            f"bad distribution spec {_shorten(text)}: a repeated sign at column {signs.start() + 1}"
        )
    depth = 0
    for column, char in enumerate(text, start=1):
        if char in _OPENING:
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(
                    f"bad distribution spec {_shorten(text)}: brackets nested deeper than "
                    f"{MAX_DEPTH} at column {column}"
                )
        elif char in _CLOSING:
            depth -= 1


class _Walker:
    """Turns the parsed tree into a distribution, refusing anything outside the grammar."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.elements = 0

    def count(self, node: ast.AST) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise _fail(self.text, f"more than {MAX_ELEMENTS} numbers", node)

    def number(self, node: ast.AST) -> float | int:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            if isinstance(node.operand, ast.UnaryOp):
                raise _fail(self.text, "a repeated sign", node)
            value = self.number(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            self.count(node)
            if isinstance(node.value, int) and abs(node.value) > 2**53:
                raise _fail(self.text, "an integer beyond 2**53 (write it as a float)", node)
            return node.value
        if isinstance(node, ast.Name) and node.id in CONSTANTS:
            self.count(node)
            return CONSTANTS[node.id]
        if isinstance(node, ast.Name):
            raise _fail(
                self.text, f"unknown name {node.id!r} (numbers may use {sorted(CONSTANTS)})", node
            )
        raise _fail(self.text, f"expected a number; got {_describe(node)}", node)

    def array(self, node: ast.List | ast.Tuple) -> np.ndarray:
        if not node.elts:
            raise _fail(self.text, "an empty list", node)
        items = [self.value_of_array(e) for e in node.elts]
        try:
            return np.asarray(items, dtype=np.float64)
        except ValueError:
            raise _fail(
                self.text, "a ragged list (its rows must have the same length)", node
            ) from None

    def value_of_array(self, node: ast.AST) -> Any:
        if isinstance(node, (ast.List, ast.Tuple)):
            return self.array(node)
        return self.number(node)

    def value(self, node: ast.AST, parameter: str, family: str) -> Any:
        takes_distribution = parameter in DISTRIBUTION_PARAMETERS
        if isinstance(node, ast.Call):
            if not takes_distribution:
                raise _fail(
                    self.text, f"`{parameter}` of {family} takes numbers, not a distribution", node
                )
            return self.call(node)
        if takes_distribution:
            raise _fail(
                self.text,
                f"`{parameter}` of {family} takes a distribution such as Normal(0, 1); "
                f"got {_describe(node)}",
                node,
            )
        if isinstance(node, (ast.List, ast.Tuple)):
            return self.array(node)
        return self.number(node)

    def family(self, node: ast.AST) -> tuple[str, type]:
        if not isinstance(node, ast.Name):
            raise _fail(self.text, f"expected a distribution name; got {_describe(node)}", node)
        families = _families()
        if node.id not in families:
            raise SpecError(
                f"bad distribution spec {_shorten(self.text)}: unknown distribution "
                f"{node.id!r} at column {node.col_offset + 1}{closest_hint(node.id)}. "
                f"Valid names: {', '.join(family_names())}"
            )
        return node.id, families[node.id]

    def call(self, node: ast.AST) -> Any:
        if not isinstance(node, ast.Call):
            raise _fail(
                self.text,
                f"expected a distribution call such as Normal(0, 1); got {_describe(node)}",
                node,
            )
        name, cls = self.family(node.func)
        signature = _parameters(cls)
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise _fail(self.text, "unpacking (*) is not allowed", argument)
        seen: set[str] = set()
        for keyword in node.keywords:
            if keyword.arg is None:
                raise _fail(self.text, "unpacking (**) is not allowed", keyword)
            if keyword.arg in seen:
                raise _fail(self.text, f"{name}: {keyword.arg!r} is given twice", keyword)
            seen.add(keyword.arg)
            if keyword.arg not in signature.parameters or keyword.arg == "validate":
                raise _fail(
                    self.text,
                    f"{name} has no parameter {keyword.arg!r} (it takes {_takes(signature)})",
                    keyword,
                )
        positional = [p for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
        if len(node.args) > len(positional):
            raise _fail(
                self.text,
                f"{name} takes at most {len(positional)} positional arguments "
                f"({_takes(signature)}); got {len(node.args)}",
                node,
            )
        args = [self.value(a, positional[i].name, name) for i, a in enumerate(node.args)]
        kwargs = {k.arg: self.value(k.value, k.arg, name) for k in node.keywords}
        try:
            signature.bind(*args, **kwargs)
        except TypeError as err:
            raise _fail(self.text, f"{name}: {err} (it takes {_takes(signature)})", node) from None
        try:
            return cls(*args, **kwargs)
        except KLDivError:
            raise
        except (TypeError, ValueError, ArithmeticError) as err:
            raise _fail(self.text, f"{name}: {err}", node) from None


def closest_hint(name: str) -> str:
    """`` (did you mean 'Normal'?)`` for a misspelt or aliased family name, else ``""``.

    Args:
        name: the unknown name.

    Returns:
        The hint, with a leading space, or an empty string.

    Examples:
        >>> closest_hint("Normall"), closest_hint("gaussian"), closest_hint("xyz")
        (" (did you mean 'Normal'?)", " (did you mean 'Normal'?)", '')
    """
    by_lower = {n.lower(): n for n in family_names()} | ALIASES
    close = difflib.get_close_matches(name.lower(), by_lower, n=1)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


@cache
def _parameters(cls: type) -> inspect.Signature:
    return inspect.signature(cls)


def _takes(signature: inspect.Signature) -> str:
    names = [
        p.name if p.default is p.empty else f"{p.name}=…"
        for p in signature.parameters.values()
        if p.name != "validate"
    ]
    return ", ".join(names)


def parse_distribution(text: str) -> Any:
    """A kldiv distribution from a spec such as ``"StudentT(3, 0, 1.5)"``, never evaluated.

    The spec is a call of a :mod:`kldiv.distributions` class with numbers
    (``inf``, ``nan``, ``pi``, ``e`` allowed), lists of numbers (nested for
    matrices; they become float64 arrays) and, where the family takes one, a
    nested distribution: ``Independent(Normal([0, 0], [1, 1]), 1)``,
    ``MixtureSameFamily(Categorical([0.3, 0.7]), Normal([-1, 1], [1, 1]))``.
    Keyword arguments use the class's parameter names
    (``MultivariateNormal([0, 0], covariance_matrix=[[1, 0], [0, 1]])``).

    Args:
        text: the spec.

    Returns:
        The distribution, with NumPy parameters.

    Raises:
        KLDivError: text outside the grammar (the message names what and the
            column; an unknown name lists the valid ones and the closest), or
            parameters the distribution refuses (named by its validation).

    Examples:
        >>> parse_distribution("StudentT(3, 0, 1.5)")
        StudentT(df: 3.0, loc: 0.0, scale: 1.5)
        >>> parse_distribution("Categorical([0.2, 0.8])").probs
        array([0.2, 0.8])
        >>> try:
        ...     parse_distribution("Normal.__class__")
        ... except KLDivError as err:
        ...     print(err)
        bad distribution spec 'Normal.__class__': expected a distribution call such as
        Normal(0, 1); got attribute access (.) at column 1
    """
    if not isinstance(text, str):
        raise SpecError(f"a distribution spec must be text; got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise SpecError(
            f"bad distribution spec {_shorten(text)}: longer than {MAX_LENGTH} characters "
            f"({len(text)})"
        )
    stripped = text.strip()
    if not stripped:
        raise SpecError("bad distribution spec '': expected a call such as Normal(0, 1)")
    _check_nesting(stripped)
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as err:
        column = f" at column {err.offset}" if err.offset else ""
        reason = str(err.msg).split(";")[0]
        detail = "" if reason == "invalid syntax" else f" ({reason})"
        raise SpecError(
            f"bad distribution spec {_shorten(stripped)}: invalid syntax{detail}{column}"
        ) from None
    except ValueError as err:
        raise SpecError(f"bad distribution spec {_shorten(stripped)}: {err}") from None
    except (RecursionError, MemoryError):
        raise SpecError(f"bad distribution spec {_shorten(stripped)}: nested too deeply") from None
    return _Walker(stripped).call(tree.body)
