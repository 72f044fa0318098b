r"""Griffe extension: renders kldiv's reStructuredText roles in docstrings as Markdown.

kldiv's docstrings are Google style with the formulas as reST (``:math:`x```,
``.. math::`` blocks) and cross-references as ``:func:`name```, which read
well in ``help()`` and in an editor. This extension rewrites them, for the
documentation site only, into what mkdocs renders:

- ``:math:`x``` becomes ``\(x\)`` and a ``.. math::`` block becomes ``\[ … \]``
  (pymdownx.arithmatex, typeset by MathJax in the browser);
- ``:func:`x```, ``:class:`x```, ``:meth:`x```, ``:mod:`x``` and the other
  cross-reference roles become code spans ``x``;
- a paragraph ending in ``::`` (a reST literal block) ends in ``:``.

mkdocs.yml loads it with ``extensions: [docs/hooks/griffe_rst.py:RstToMarkdown]``.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_XREF_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj|const|py:\w+):`~?([^`]+)`")
_LITERAL_MARKER = re.compile(r"(?<=\S)::[ \t]*$", re.MULTILINE)


def _math_blocks(text: str) -> str:
    r"""Turns each ``.. math::`` directive and its indented body into a ``\[ … \]`` block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != ".. math::":
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        body: list[str] = []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent_of(lines[i]) > len(indent)):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        formula = textwrap.dedent("\n".join(body)).strip("\n")
        out.append(f"{indent}\\[")
        out.extend(f"{indent}{row}" for row in formula.split("\n"))
        out.append(f"{indent}\\]")
        out.append("")
    return "\n".join(out)


def _indent_of(line: str) -> int:
    """The number of leading whitespace characters of ``line``."""
    return len(line) - len(line.lstrip())


def rst_to_markdown(text: str) -> str:
    """Rewrites the reST constructs kldiv's docstrings use into Markdown.

    Args:
        text: a docstring, already dedented.

    Returns:
        The docstring with math roles and blocks in arithmatex's delimiters, cross-reference
        roles as code spans and literal-block markers ``::`` as ``:``.

    Examples:
        >>> rst_to_markdown("Reduce with :func:`kldiv.torch.reduce_items` as follows::")
        'Reduce with `kldiv.torch.reduce_items` as follows:'
    """
    text = _math_blocks(text)
    text = _MATH_ROLE.sub(lambda m: f"\\({m.group(1)}\\)", text)
    text = _XREF_ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return _LITERAL_MARKER.sub(":", text)


class RstToMarkdown(griffe.Extension):
    """Rewrites every loaded object's docstring with :func:`rst_to_markdown`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrites ``obj``'s docstring in place, before mkdocstrings parses it.

        Args:
            obj: the module, class, function or attribute griffe has just loaded.
            **kwargs: the rest of griffe's event arguments (unused).
        """
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
