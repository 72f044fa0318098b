"""The package itself: imports with NumPy alone, exposes exactly its public API."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import kldiv

BLOCKED = ["torch", "jax", "jaxlib", "scipy", "array_api_strict", "dask", "cupy"]


def test_import_with_only_numpy_installed():
    """`import kldiv` and the worked example work when no framework can be imported."""
    script = textwrap.dedent(
        f"""
        import importlib.abc
        import sys

        class Uninstalled(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"No module named {{name!r}}")

        sys.meta_path.insert(0, Uninstalled())
        import kldiv
        print(round(float(kldiv.kl_from_probs([0.4, 0.6], [0.5, 0.5])), 7))
        print(float(kldiv.js_from_logits([0.0, 1.0], [1.0, 0.0])) > 0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0.0201355", "True"]


def test_import_does_not_load_frameworks():
    """Importing kldiv imports no framework the user did not import."""
    script = "import sys, kldiv; print(sorted({'torch', 'jax', 'scipy'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_public_api_is_all_and_documented():
    """Every name in kldiv.__all__ exists and every public function has a doctest."""
    for name in kldiv.__all__:
        obj = getattr(kldiv, name)
        if callable(obj) and not (isinstance(obj, type) and issubclass(obj, Exception)):
            assert obj.__doc__, f"{name} has no docstring"
            assert ">>>" in obj.__doc__, f"{name} lacks a doctest"
            takes_arguments = bool(inspect.signature(obj).parameters)
            section = "Args:" if takes_arguments else "Returns:"
            assert section in obj.__doc__ or name == "set_default_validate", name
    assert kldiv.__version__ == "0.1.0"
