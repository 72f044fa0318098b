"""What the worked examples share: their dependencies, one torch thread, the report folder.

Each demo (:mod:`kldiv.demos._vi`, :mod:`kldiv.demos._vae`) imports torch,
scikit-learn's bundled data sets and matplotlib through :func:`require`, trains
with :func:`one_torch_thread`, checks its output folder up front with
:func:`prepare_out`, and writes ``index.html`` (built by :func:`html_page`) and
``summary.json`` with :func:`write_report`.
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["html_page", "one_torch_thread", "prepare_out", "require", "save_figure", "write_report"]

_STYLE = """\
body {{ font-family: system-ui, sans-serif; max-width: {width}px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; }} code {{ background: #f3f3f3; }}
{extra}"""


def require(demo: str) -> tuple[Any, Any, Any]:
    """Imports torch, scikit-learn's datasets and matplotlib's Figure, or one clear ImportError.

    Args:
        demo: the demo's name as the user types it after ``kldiv demo`` (for the message).

    Returns:
        The modules ``torch``, ``sklearn.datasets`` and ``matplotlib.figure``.

    Raises:
        ImportError: naming every missing package and ``pip install 'kldiv[demo]'``.
    """
    missing = []
    modules = {}
    for name, module in (
        ("torch", "torch"),
        ("scikit-learn", "sklearn.datasets"),
        ("matplotlib", "matplotlib.figure"),
    ):
        try:
            modules[name] = __import__(module, fromlist=["_"])
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"`kldiv demo {demo}` needs {', '.join(missing)}: pip install 'kldiv[demo]' "
            f"(matplotlib, scikit-learn and torch)"
        )
    return modules["torch"], modules["scikit-learn"], modules["matplotlib"]


@contextmanager
def one_torch_thread(torch: Any) -> Iterator[None]:
    """Runs the block with one torch thread, then restores the caller's setting.

    The demos' tensors are small: one thread is fastest, and several threads
    contending for busy cores were measured 100× slower per step. One thread
    also makes every run bit-for-bit reproducible across processes.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def prepare_out(out: str | Path) -> Path:
    """Creates the report folder (and its parents) and checks that it can be written to.

    Called before any training, so that a bad ``--out`` fails in a second,
    not after the run.

    Raises:
        OSError: the path is a file, lies under one, or is not writable (the
            error carries the path as its ``filename``).
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(
            errno.ENOTDIR, "the report folder is an existing file", str(out)
        ) from None
    except NotADirectoryError:  # a parent is a file: `--out notes.txt/report`
        raise NotADirectoryError(
            errno.ENOTDIR, "the report folder lies under an existing file", str(out)
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "the report folder is not writable", str(out))
    return out


def save_figure(fig: Any, path: Path, dpi: int) -> None:
    """Writes a matplotlib Figure as a PNG without the matplotlib version in its metadata.

    The same numbers then give the same bytes whichever matplotlib drew them.
    """
    fig.savefig(path, dpi=dpi, metadata={"Software": None})


def html_page(title: str, body: str, *, width: int = 1100, style: str = "") -> str:
    """A self-contained HTML page with the demos' shared style.

    Args:
        title: the page title (already HTML-escaped).
        body: the HTML between ``<body>`` and ``</body>``.
        width: the maximum width of the text column in CSS pixels.
        style: extra CSS rules appended to the shared ones.

    Returns:
        The whole page, ending with a newline.
    """
    css = _STYLE.format(width=width, extra=style)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>\n{css}</style></head><body>\n{body}</body></html>\n"
    )


def _strict_json(value: Any) -> Any:
    """``value`` with every non-finite float as the string ``"inf"``, ``"-inf"`` or ``"nan"``.

    Strict JSON has no infinities; the ``kldiv`` command's ``--json`` writes them
    the same way.
    """
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_report(out: Path, page: str, summary: dict[str, Any]) -> None:
    """Writes ``index.html`` and ``summary.json`` (indented, strict JSON) into ``out``."""
    (out / "index.html").write_text(page, encoding="utf-8")
    text = json.dumps(_strict_json(summary), indent=2, allow_nan=False)
    (out / "summary.json").write_text(text + "\n", encoding="utf-8")
