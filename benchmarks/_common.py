"""Helpers shared by the benchmark scripts: peak memory and machine facts (Linux ``/proc``)."""

from __future__ import annotations

import os
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


def machine_facts() -> tuple[str, str, int]:
    """``(transparent huge pages setting, CPU model, usable cores)`` of this machine."""
    try:
        thp = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        thp = "unreadable"
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return thp, cpu, usable
