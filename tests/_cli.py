"""Running the ``kldiv`` command in tests: as a user types it, and in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from kldiv.cli import main


def run_kldiv(
    *args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m kldiv ARGS`` in a subprocess, as a user types it (text output captured)."""
    environment = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kldiv", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=timeout,
        check=False,
    )


def single_error_line(stdout: str, stderr: str) -> str:
    """The one ``kldiv: error: …`` line a failing command prints; nothing on stdout."""
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kldiv: error: ")
    return lines[0]


def error_line(capsys, argv: Sequence[str], code: int) -> str:
    """Runs a failing command in-process; checks its exit code; returns its stderr line."""
    assert main(list(argv)) == code
    captured = capsys.readouterr()
    return single_error_line(captured.out, captured.err)
