"""The backend matrix: every test taking ``xp`` runs on numpy, array_api_strict, torch and jax.

JAX runs jitted: the ``apply`` fixture wraps the call in ``jax.jit`` (keyword
options static), so traced code paths are what the JAX tests exercise.
``KLDIV_TEST_BACKENDS=numpy,torch`` restricts the matrix.

Tests marked ``slow`` (the full adversarial sweeps, long multi-process runs) are
skipped unless ``KLDIV_SLOW=1``; CI runs their bounded counterparts.

Hypothesis runs derandomized (the same examples on every run, so CI cannot
flake); ``KLDIV_HYPOTHESIS=explore`` draws fresh examples to hunt for new cases.
"""

from __future__ import annotations

import os

import pytest
from array_api_compat import array_namespace, is_jax_namespace
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("KLDIV_HYPOTHESIS", "ci"))

BACKENDS = ("numpy", "array_api_strict", "torch", "jax.numpy")


def pytest_collection_modifyitems(config, items):
    """Skips the ``slow`` tests unless ``KLDIV_SLOW=1``."""
    if os.environ.get("KLDIV_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with KLDIV_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _selected() -> tuple[str, ...]:
    wanted = os.environ.get("KLDIV_TEST_BACKENDS")
    if not wanted:
        return BACKENDS
    names = {name.strip() for name in wanted.split(",")}
    return tuple(b for b in BACKENDS if b in names or b.split(".")[0] in names)


def _import_backend(name: str):
    module = pytest.importorskip(name)
    if name == "jax.numpy":
        import jax

        jax.config.update("jax_enable_x64", True)
    return module


@pytest.fixture(params=_selected())
def xp(request):
    """The array namespace of one backend (array-api-compat's wrapper for numpy and torch)."""
    marker = request.node.get_closest_marker("skip_backends")
    if marker is not None and request.param in marker.args:
        pytest.skip(marker.kwargs.get("reason", f"not run on {request.param}"))
    module = _import_backend(request.param)
    return array_namespace(module.asarray(0.0))


@pytest.fixture
def apply(xp):
    """Calls ``f(*arrays, **options)``, under ``jax.jit`` on the JAX backend."""
    if is_jax_namespace(xp):
        import jax

        def run_jitted(f, *arrays, **options):
            return jax.jit(lambda *a: f(*a, **options))(*arrays)

        return run_jitted

    def run(f, *arrays, **options):
        return f(*arrays, **options)

    return run
