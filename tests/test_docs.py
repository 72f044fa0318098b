"""The documentation site: builds offline with ``mkdocs build --strict``, and its examples run.

The build uses mkdocs.yml as CI does, in a subprocess; with ``strict: true`` and the
``validation`` settings any warning (a broken link or anchor, a page missing from the
nav, a docstring griffe cannot parse) fails it. Skipped only when mkdocs is not
installed (requirements-dev.txt installs it).
"""

from __future__ import annotations

import doctest
import html as html_module
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILD_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built by ``python -m mkdocs build --strict`` into a temporary folder."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install 'kldiv[docs]')")
    site_dir = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    warnings = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert not warnings, "\n".join(warnings)
    return site_dir


def _page(site: Path, name: str) -> str:
    """The HTML of the page built from ``docs/<name>.md``."""
    path = site / ("index.html" if name == "index" else f"{name}/index.html")
    assert path.is_file(), f"{path} was not built"
    return path.read_text(encoding="utf-8")


def _text(html: str) -> str:
    """The visible text of a page: tags removed (code is split into highlighted spans)."""
    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


def test_every_page_is_built(site):
    """Every Markdown page under docs/ becomes a page of the site."""
    pages = sorted(p.relative_to(DOCS).with_suffix("") for p in DOCS.rglob("*.md"))
    assert len(pages) >= 15
    for page in pages:
        _page(site, page.as_posix())


def test_home_page_has_install_and_worked_example(site):
    """Getting started: the install commands, the README's two commands, the worked example."""
    html = _text(_page(site, "index"))
    for text in ("pip install kldiv", "kldiv[torch]", "kldiv[dask]", "kldiv[docs]"):
        assert text in html
    assert "bash scripts/demo.sh" in html
    assert "bash scripts/test.sh" in html
    assert "0.0201355" in html
    assert "0.0290494" in html


def test_api_reference_lists_the_public_api(site):
    """Each API page documents its module's __all__, with signatures and examples."""
    import kldiv
    import kldiv.estimators

    html = _page(site, "api/kldiv")
    public_callables = [
        name
        for name in kldiv.__all__
        if not name.startswith("_") and not inspect.ismodule(getattr(kldiv, name))
    ]
    for name in public_callables:
        assert f'id="kldiv.{name}"' in html, f"kldiv.{name} missing from the API page"
    assert "Kullback–Leibler divergence" in html
    assert "&gt;&gt;&gt;" in html  # the doctest examples are shown

    html = _page(site, "api/estimators")
    for name in kldiv.estimators.__all__:
        assert f'id="kldiv.estimators.{name}"' in html
    for module, names in [
        ("distributions", ["Normal", "MultivariateNormal", "kl_divergence", "from_torch"]),
        ("torch", ["KLDivLoss", "DistillationLoss", "GaussianKLLoss", "count_items"]),
        ("reports", ["compare_logits", "ComparisonReport"]),
        ("cli", ["main"]),
    ]:
        html = _page(site, f"api/{module}")
        for name in names:
            assert f'id="kldiv.{module}.{name}"' in html, f"kldiv.{module}.{name}"


def test_api_reference_renders_rst_math_and_roles(site):
    """The docstrings' :math: roles and .. math:: blocks become formulas, not literal reST."""
    html = _page(site, "api/kldiv")
    assert ":math:" not in html
    assert ".. math::" not in html
    assert '<span class="arithmatex">\\(D_{KL}(P \\| Q)\\)</span>' in html
    assert '<div class="arithmatex">\\[' in html


def test_migration_page_has_its_tables(site):
    """The migration page holds the four tables, one row per replaced call."""
    html = _page(site, "migration")
    assert html.count("<table>") >= 4
    html = _text(html)
    for call in (
        "F.kl_div(log_q, p, reduction=",
        "torch.distributions.kl_divergence(p_dist, q_dist)",
        "optax.losses.kl_divergence(log_q, p)",
        "scipy.stats.entropy(p, q)",
        "scipy.special.kl_div(p, q).sum(-1)",
        "kldiv.generalized_kl(p, q)",
    ):
        assert call in html, call


def test_site_fetches_no_web_fonts(site):
    """theme.font is off: no page loads Google Fonts (the site works offline)."""
    for path in site.rglob("*.html"):
        assert "fonts.googleapis.com" not in path.read_text(encoding="utf-8"), path


# ---------------------------------------------------------- the examples on the pages run


def _fenced_examples(markdown: str) -> str:
    """The ``>>>`` sessions of a page's fenced code blocks, joined for doctest."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)
    return "\n".join(block for block in blocks if block.lstrip().startswith(">>>"))


@pytest.mark.parametrize("page", ["index.md", "conventions.md"])
def test_page_examples_run(page):
    """The ``>>>`` examples on the page give the output it prints."""
    examples = _fenced_examples((DOCS / page).read_text(encoding="utf-8"))
    assert ">>>" in examples
    test = doctest.DocTestParser().get_doctest(examples, {}, page, str(DOCS / page), 0)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    output: list[str] = []
    runner.run(test, out=output.append)
    assert runner.failures == 0, "".join(output)


# --------------------------------------------------- the griffe extension for reST roles


def _griffe_rst():
    """docs/hooks/griffe_rst.py, imported by path (it is build code, not a package)."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install 'kldiv[docs]')")
    spec = importlib.util.spec_from_file_location("griffe_rst", DOCS / "hooks" / "griffe_rst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rst_roles_become_markdown():
    """Math roles become arithmatex delimiters, cross-references code spans, ``::`` a colon."""
    rst_to_markdown = _griffe_rst().rst_to_markdown
    assert rst_to_markdown("KL :math:`D(P \\| Q)` in nats") == "KL \\(D(P \\| Q)\\) in nats"
    assert rst_to_markdown("see :func:`kldiv.estimate` and :class:`~kldiv.Estimate`") == (
        "see `kldiv.estimate` and `kldiv.Estimate`"
    )
    assert rst_to_markdown("a float::\n\n    w = 1.0") == "a float:\n\n    w = 1.0"
    assert rst_to_markdown("Args:\n    x: a value.") == "Args:\n    x: a value."


def test_math_directive_becomes_a_display_block():
    """A ``.. math::`` block, at any indentation, becomes a display block and the text goes on."""
    rst_to_markdown = _griffe_rst().rst_to_markdown
    text = "Intro.\n\n    .. math::\n\n        a = b\n        + c\n\n    After."
    assert rst_to_markdown(text) == "Intro.\n\n    \\[\n    a = b\n    + c\n    \\]\n\n    After."
    assert rst_to_markdown(".. math::\n\n    x^2") == "\\[\nx^2\n\\]\n"
