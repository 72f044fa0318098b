"""Peak-memory helpers shared by the benchmark scripts (Linux ``/proc``)."""

from __future__ import annotations

from pathlib import Path


def proc_status_kib(name: str) -> int:
    """A ``kB`` field of ``/proc/self/status``, e.g. ``VmRSS`` or ``VmHWM``."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{name} not in /proc/self/status")


def reset_high_water_mark() -> bool:
    """Resets VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
