"""Root pytest configuration: skip the doctests of adapters whose framework is missing."""

from __future__ import annotations

import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob += ["src/kldiv/torch/*", "tests/torch/*"]
