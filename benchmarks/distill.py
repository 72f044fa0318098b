"""Benchmark of large-vocabulary distillation: kldiv's chunked losses vs eager and compiled torch.

Run from the repository root, with the project's environment::

    python benchmarks/distill.py                  # default run, ~9 minutes, ~5 GB RAM peak
    python benchmarks/distill.py --quick          # smoke run on small shapes, ~1 minute
    python benchmarks/distill.py --large          # adds N=4096, V=128256 (naive needs ~10 GB)
    python benchmarks/distill.py --no-compile --no-memory --repeats 5
    python benchmarks/distill.py --only logits --logits-chunks 8,16,64   # chunk-size tuning rows
    python benchmarks/distill.py --only fused --fused-chunks 128,256,512,1024

Everything is float32 on the CPU, temperature T = 2, forward and backward, the
mean over tokens (torch's ``"batchmean"`` for ``(N, V)`` inputs), ``* T**2``.
Two kinds of configuration are measured:

1. **Logits path** (``N x V`` student logits that require grad, teacher logits
   that do not), at N=4096, V=32000 and N=1024, V=128256 (``--large`` adds
   N=4096, V=128256): the naive eager loss
   ``F.kl_div(F.log_softmax(s / T), F.log_softmax(t / T), log_target=True,
   reduction="batchmean") * T**2``, the same function under ``torch.compile``
   (default inductor backend; compile time excluded), kldiv's
   ``DistillationLoss(temperature=2.0)`` (``chunk_size="auto"``: chunked) and,
   for information, the same with ``validate=False`` (the cost of the value
   checks) and ``DistillationLoss(temperature=2.0, chunk_size=None)`` (plain
   autograd).
2. **Fused path** (hidden states ``(N, d)`` and an lm_head weight ``(V, d)``,
   both requiring grad, and teacher logits), at N=4096, d=2048, V=32000: naive
   ``logits = hidden @ weight.T`` followed by the naive loss, its
   ``torch.compile``, kldiv's ``FusedLinearDistillationLoss(temperature=2.0)``,
   and kldiv's ``DistillationLoss`` on the materialised logits.

Times: within one configuration every method is warmed up once (for
``torch.compile``: the compilation, forward and backward), then the methods
are timed in interleaved rounds (``--repeats``, 3 by default), so that drift on
a shared machine hits them alike. Gradients are set to None between calls.

Memory: the extra peak of one forward + backward is measured in a fresh child
process per (configuration, method) (``--child``): the child builds the inputs
(seeded), runs a warm-up (``torch.compile``: one full-size iteration, whose
compilation is thus excluded; the others: a tiny input, for lazy
initialisation only), drops the gradients, returns freed heap to the OS
(``malloc_trim``), resets its high-water mark (``echo 5 >
/proc/self/clear_refs``), reads ``VmRSS`` and runs one iteration; the extra
peak is ``VmHWM`` after it minus that ``VmRSS``. It includes the gradients
themselves (one logits-sized tensor on the logits path; the hidden states' and
the weight's on the fused path). It is given in MiB and as a multiple of one
float32 ``N x V`` logits tensor.

Targets (issue 15, printed as MET / NOT MET): on the logits path, kldiv's
median time at most 1.2 x the ``torch.compile``d naive loss's at an extra peak
of at most 1.1 x one logits tensor, and the value checks costing at most 15%
over ``validate=False``; on the fused path, kldiv's median time at most 1.1 x
the compiled naive loss's at an extra peak of at most 20% of naive eager's.
Each time ratio is also given on the minima. Only ratios within one run are
meaningful, and only on an otherwise idle machine: the chunked paths run many
small parallel operations (thousands of OpenMP regions per call) and slow down
far more than the baselines when another process competes for the cores, so
compare the minima, or rerun, when the medians are far apart from them. The
report names the git commit of the source and warns if it changed during the
run.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

import kldiv
from _common import (  # benchmarks/ is sys.path[0]
    machine_facts,
    proc_status_kib,
    reset_high_water_mark,
)
from kldiv.torch import DistillationLoss, FusedLinearDistillationLoss
from kldiv.torch._chunked import FUSED_CHUNK_BYTES, FUSED_MIN_ROWS, auto_chunk_rows

MIB = 1 << 20
SEED = 20240607
TEMPERATURE = 2.0
LOGITS_PEAK_LIMIT = 1.1
"""Logits path: kldiv's extra peak, in logits tensors (the gradient itself is one)."""
LOGITS_TIME_LIMIT = 1.2
"""Logits path: kldiv's median time as a multiple of the compiled naive loss's."""
VALIDATION_COST_LIMIT = 0.15
"""Logits path: the value checks' cost, as a fraction of kldiv's time with validate=False."""
FUSED_PEAK_FRACTION = 0.20
"""Fused path: kldiv's extra peak as a fraction of naive eager's."""
FUSED_TIME_LIMIT = 1.1
"""Fused path: kldiv's median time as a multiple of the compiled naive loss's."""

LOGITS_METHODS = ("naive", "compile", "kldiv", "kldiv_unchecked", "kldiv_plain")
FUSED_METHODS = ("naive", "compile", "kldiv", "kldiv_logits")
CHUNK_PREFIX = "kldiv_rows"


@dataclass(frozen=True)
class Config:
    """One benchmarked shape.

    Attributes:
        path: ``"logits"`` or ``"fused"``.
        n: tokens.
        v: vocabulary.
        d: hidden size (fused path only).
    """

    path: str
    n: int
    v: int
    d: int = 0

    @property
    def logits_bytes(self) -> int:
        """Bytes of one float32 ``N x V`` logits tensor."""
        return self.n * self.v * 4

    @property
    def title(self) -> str:
        """A human-readable name."""
        if self.path == "logits":
            return f"Logits path, N={self.n}, V={self.v}"
        return f"Fused linear path, N={self.n}, d={self.d}, V={self.v}"

    def auto_rows(self) -> int:
        """The rows per chunk that kldiv's ``chunk_size="auto"`` picks here (now)."""
        if self.path == "logits":
            return auto_chunk_rows(self.v)
        return auto_chunk_rows(self.v, target_bytes=FUSED_CHUNK_BYTES, minimum=FUSED_MIN_ROWS)


@dataclass
class Timing:
    """Times of one method and the loss it returned."""

    times: list[float] = field(default_factory=list)
    value: float = float("nan")
    warmup: float = float("nan")

    @property
    def median(self) -> float:
        """Median time in seconds."""
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        """Minimum time in seconds."""
        return min(self.times)


# --------------------------------------------------------------------------- inputs and methods


def make_inputs(config: Config, seed: int = SEED) -> dict[str, torch.Tensor]:
    """Seeded float32 inputs, generated without full-size temporaries.

    Logits path: ``student`` (requires grad) and ``teacher`` logits ``(N, V)``,
    standard normal times 2. Fused path: ``hidden`` ``(N, d)`` and ``weight``
    ``(V, d)`` (both require grad; the student's logits are then about standard
    normal) and ``teacher`` logits ``(N, V)``.
    """
    generator = torch.Generator().manual_seed(seed)
    teacher = torch.randn(config.n, config.v, generator=generator).mul_(2.0)
    if config.path == "logits":
        student = torch.randn(config.n, config.v, generator=generator).mul_(2.0)
        return {"student": student.requires_grad_(), "teacher": teacher}
    hidden = torch.randn(config.n, config.d, generator=generator)
    weight = torch.randn(config.v, config.d, generator=generator).mul_(config.d**-0.5)
    return {
        "hidden": hidden.requires_grad_(),
        "weight": weight.requires_grad_(),
        "teacher": teacher,
    }


def clear_grads(inputs: dict[str, torch.Tensor]) -> None:
    """Sets every input's gradient to None."""
    for tensor in inputs.values():
        tensor.grad = None


def naive_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """The textbook distillation loss: KL(teacher || student) at T, batch mean, times T²."""
    t = TEMPERATURE
    return (
        F.kl_div(
            F.log_softmax(student / t, dim=-1),
            F.log_softmax(teacher / t, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
        * t**2
    )


def naive_fused_loss(
    hidden: torch.Tensor, weight: torch.Tensor, teacher: torch.Tensor
) -> torch.Tensor:
    """Materialises the student's logits ``hidden @ weight.T``, then :func:`naive_loss`."""
    return naive_loss(hidden @ weight.T, teacher)


def chunk_method(rows: int) -> str:
    """The method key of kldiv with an explicit number of rows per chunk."""
    return f"{CHUNK_PREFIX}{rows}"


def method_label(config: Config, method: str) -> str:
    """The Markdown label of a method."""
    auto = config.auto_rows()
    if config.path == "logits":
        labels = {
            "naive": "naive eager `F.kl_div(F.log_softmax(s/T), F.log_softmax(t/T))`",
            "compile": "`torch.compile`d naive",
            "kldiv": f"kldiv `DistillationLoss` (auto: chunked, {auto} rows)",
            "kldiv_unchecked": "kldiv `DistillationLoss(validate=False)` (auto)",
            "kldiv_plain": "kldiv `DistillationLoss(chunk_size=None)` (plain autograd)",
        }
        name = "`DistillationLoss(chunk_size={})`"
    else:
        labels = {
            "naive": "naive eager `hidden @ weight.T`, then the naive loss",
            "compile": "`torch.compile`d naive",
            "kldiv": f"kldiv `FusedLinearDistillationLoss` (auto: {auto} rows)",
            "kldiv_logits": "kldiv `DistillationLoss` on materialised logits (auto)",
        }
        name = "`FusedLinearDistillationLoss(chunk_size={})`"
    if method.startswith(CHUNK_PREFIX):
        return "kldiv " + name.format(int(method.removeprefix(CHUNK_PREFIX)))
    return labels[method]


def make_step(
    config: Config, method: str, inputs: dict[str, torch.Tensor]
) -> Callable[[], torch.Tensor]:
    """One forward + backward of ``method`` on ``inputs``; returns the detached loss.

    For ``"compile"``, the caller must have reset dynamo (``torch._dynamo.reset()``)
    if another shape was compiled before, so that this shape gets its own static graph.
    """
    explicit = method.startswith(CHUNK_PREFIX)
    rows = int(method.removeprefix(CHUNK_PREFIX)) if explicit else None
    teacher = inputs["teacher"]
    if config.path == "logits":
        student = inputs["student"]
        if method in ("naive", "compile"):
            fn = naive_loss if method == "naive" else torch.compile(naive_loss)
        elif method in ("kldiv", "kldiv_unchecked", "kldiv_plain") or explicit:
            chunk = {"kldiv": "auto", "kldiv_unchecked": "auto", "kldiv_plain": None}
            fn = DistillationLoss(
                temperature=TEMPERATURE,
                chunk_size=chunk.get(method, rows),
                validate=method != "kldiv_unchecked",
            )
        else:
            raise ValueError(f"unknown method {method!r} for the logits path")

        def step() -> torch.Tensor:
            loss = fn(student, teacher)
            loss.backward()
            return loss.detach()

        return step

    hidden, weight = inputs["hidden"], inputs["weight"]
    if method in ("naive", "compile"):
        fused = naive_fused_loss if method == "naive" else torch.compile(naive_fused_loss)
    elif method == "kldiv" or explicit:
        fused = FusedLinearDistillationLoss(temperature=TEMPERATURE, chunk_size=rows or "auto")
    elif method == "kldiv_logits":
        loss_fn = DistillationLoss(temperature=TEMPERATURE)

        def fused(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return loss_fn(h @ w.T, t)

    else:
        raise ValueError(f"unknown method {method!r} for the fused path")

    def fused_step() -> torch.Tensor:
        loss = fused(hidden, weight, teacher)
        loss.backward()
        return loss.detach()

    return fused_step


def tiny_config(config: Config) -> Config:
    """A small shape of the same kind, for warming up lazy initialisation."""
    return Config(config.path, n=8, v=64, d=16 if config.path == "fused" else 0)


# --------------------------------------------------------------------------- timing


def time_config(config: Config, methods: list[str], repeats: int) -> dict[str, Timing]:
    """Warms up each method once, then times them in interleaved rounds.

    Args:
        config: the shape.
        methods: method keys.
        repeats: timed forward + backward calls per method.

    Returns:
        Method key to its timings.
    """
    torch._dynamo.reset()
    inputs = make_inputs(config)
    steps = {method: make_step(config, method, inputs) for method in methods}
    timings = {method: Timing() for method in methods}
    for method, step in steps.items():
        clear_grads(inputs)
        gc.collect()
        start = time.perf_counter()
        timings[method].value = step().item()
        timings[method].warmup = time.perf_counter() - start
        print(f"  warm-up {method}: {timings[method].warmup:.1f} s", file=sys.stderr, flush=True)
    for _ in range(repeats):
        for method, step in steps.items():
            clear_grads(inputs)
            gc.collect()
            start = time.perf_counter()
            step()
            timings[method].times.append(time.perf_counter() - start)
    clear_grads(inputs)
    return timings


# --------------------------------------------------------------------------- memory


def _malloc_trim() -> None:
    """Returns freed heap memory to the OS (glibc), so that VmRSS is the live data."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def child_memory(config: Config, method: str) -> dict[str, float | bool | str]:
    """Extra peak memory of one forward + backward of ``method``, in this fresh process."""
    if method == "compile":
        inputs = make_inputs(config)
        step = make_step(config, method, inputs)
        step()  # compiles forward and backward at the measured shape
    else:
        tiny = make_inputs(tiny_config(config), seed=1)
        make_step(tiny_config(config), method, tiny)()
        del tiny
        inputs = make_inputs(config)
        step = make_step(config, method, inputs)
    clear_grads(inputs)
    gc.collect()
    _malloc_trim()
    reset = reset_high_water_mark()
    rss_before = proc_status_kib("VmRSS")
    step()
    hwm_after = proc_status_kib("VmHWM")
    extra = (hwm_after - rss_before) * 1024
    return {
        "method": method,
        "rss_before_mib": rss_before / 1024,
        "hwm_after_mib": hwm_after / 1024,
        "extra_mib": extra / MIB,
        "extra_logits": extra / config.logits_bytes,
        "hwm_reset": reset,
    }


def measure_memory(config: Config, method: str) -> dict[str, float | bool | str]:
    """Runs :func:`child_memory` in a subprocess and returns its report."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        method,
        "--path",
        config.path,
        "--n",
        str(config.n),
        "--v",
        str(config.v),
        "--d",
        str(config.d),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory child for {config} {method} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def source_revision() -> str:
    """The git commit of the checkout, with ``+dirty`` if ``src/`` has uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def settings(repeats: int) -> list[str]:
    """The settings that matter for the numbers, as Markdown list items."""
    thp, cpu, usable = machine_facts()
    return [
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"kldiv {kldiv.__version__} (source at commit `{source_revision()}`)",
        f"- CPU: {cpu}; os.cpu_count() = {os.cpu_count()}, usable cores = {usable}, "
        f"torch threads = {torch.get_num_threads()}",
        f"- Transparent huge pages: `{thp}`; "
        f"THP_MEM_ALLOC_ENABLE = `{os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}`",
        f"- float32, T = {TEMPERATURE:g}, forward + backward, mean over tokens x T²; "
        f"{repeats} timed repeats per method after one warm-up, interleaved round-robin; "
        "torch.compile: default inductor backend, compilation excluded",
    ]


def _mib(value: float) -> str:
    return f"{value:,.0f}"


def _ratios(timing: Timing, reference: Timing) -> str:
    """``timing / reference`` on medians (and on minima, in parentheses)."""
    return f"{timing.median / reference.median:.2f}x ({timing.best / reference.best:.2f}x)"


def table(
    config: Config,
    timings: dict[str, Timing],
    memory: dict[str, dict] | None,
) -> str:
    """A Markdown table of one configuration's timings (and memory, when measured)."""
    head = ["Method", "median s", "min s", "vs naive eager", "time / compile's"]
    if memory is not None:
        head += ["extra peak MiB", "x logits"]
    head += ["loss"]
    rule = "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"
    lines = ["| " + " | ".join(head) + " |", rule]
    naive, compiled = timings.get("naive"), timings.get("compile")
    for method, timing in timings.items():
        speedup = "—" if naive is None else f"{naive.median / timing.median:.2f}x"
        cells = [
            method_label(config, method),
            f"{timing.median:.3f}",
            f"{timing.best:.3f}",
            speedup,
            "—" if compiled is None else _ratios(timing, compiled),
        ]
        if memory is not None:
            report = memory.get(method)
            cells += (
                [_mib(report["extra_mib"]), f"{report['extra_logits']:.2f}x"]
                if report
                else ["—", "—"]
            )
        cells.append(f"{timing.value:.6g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_targets(
    config: Config, timings: dict[str, Timing], memory: dict[str, dict] | None
) -> list[str]:
    """Whether kldiv's targets are met for one configuration, as Markdown list items."""
    out = []
    kl = timings["kldiv"]
    limit = LOGITS_TIME_LIMIT if config.path == "logits" else FUSED_TIME_LIMIT
    if "compile" in timings:
        compiled = timings["compile"]
        verdict = "MET" if kl.median <= limit * compiled.median else "NOT MET"
        out.append(
            f"- kldiv time <= {limit:g} x torch.compile's: **{verdict}** "
            f"({kl.median:.3f} s vs {compiled.median:.3f} s on medians = "
            f"{kl.median / compiled.median:.2f}x; {kl.best:.3f} s vs {compiled.best:.3f} s "
            f"on minima = {kl.best / compiled.best:.2f}x)"
        )
    if "kldiv_unchecked" in timings:
        unchecked = timings["kldiv_unchecked"]
        cost = kl.median / unchecked.median - 1.0
        verdict = "MET" if cost <= VALIDATION_COST_LIMIT else "NOT MET"
        out.append(
            f"- value checks cost <= {VALIDATION_COST_LIMIT:.0%} over validate=False: "
            f"**{verdict}** ({cost:+.1%} on medians, "
            f"{kl.best / unchecked.best - 1.0:+.1%} on minima)"
        )
    if memory is None or "kldiv" not in memory:
        return out
    extra = memory["kldiv"]
    if config.path == "logits":
        verdict = "MET" if extra["extra_logits"] <= LOGITS_PEAK_LIMIT else "NOT MET"
        out.append(
            f"- kldiv extra peak <= {LOGITS_PEAK_LIMIT:g} x one logits tensor "
            f"({config.logits_bytes / MIB:,.0f} MiB): **{verdict}** "
            f"({extra['extra_mib']:,.0f} MiB = {extra['extra_logits']:.2f}x)"
        )
    elif "naive" in memory:
        fraction = extra["extra_mib"] / memory["naive"]["extra_mib"]
        verdict = "MET" if fraction <= FUSED_PEAK_FRACTION else "NOT MET"
        out.append(
            f"- kldiv extra peak <= {FUSED_PEAK_FRACTION:.0%} of naive eager's: **{verdict}** "
            f"({extra['extra_mib']:,.0f} MiB vs {memory['naive']['extra_mib']:,.0f} MiB "
            f"= {fraction:.1%})"
        )
    return out


def configurations(quick: bool, large: bool, only: str | None) -> list[Config]:
    """The shapes of this run."""
    if quick:
        configs = [Config("logits", 512, 32000), Config("fused", 512, 32000, d=256)]
    else:
        configs = [Config("logits", 4096, 32000), Config("logits", 1024, 128256)]
        if large:
            configs.append(Config("logits", 4096, 128256))
        configs.append(Config("fused", 4096, 32000, d=2048))
    return [config for config in configs if only is None or config.path == only]


def run(args: argparse.Namespace) -> None:
    """Runs every configuration and prints the report."""
    revision = source_revision()
    print("## Settings\n")
    print("\n".join(settings(args.repeats)))
    print(flush=True)
    for config in configurations(args.quick, args.large, args.only):
        base = LOGITS_METHODS if config.path == "logits" else FUSED_METHODS
        methods = [m for m in base if not (args.no_compile and m == "compile")]
        if args.no_plain:
            methods = [m for m in methods if m not in ("kldiv_plain", "kldiv_logits")]
        chunks = args.logits_chunks if config.path == "logits" else args.fused_chunks
        methods += [chunk_method(rows) for rows in chunks]
        print(f"{config.title}: timing {', '.join(methods)}", file=sys.stderr, flush=True)
        timings = time_config(config, methods, args.repeats)
        memory = None
        if not args.no_memory:
            memory = {}
            for method in methods:
                print(f"  memory child {method}", file=sys.stderr, flush=True)
                try:
                    memory[method] = measure_memory(config, method)
                except RuntimeError as error:  # keep the timings; say what failed
                    print(error, file=sys.stderr, flush=True)
                    print(f"(note: the memory child of {method} failed; see stderr)")
                    continue
                if not memory[method]["hwm_reset"]:
                    print(f"(note: VmHWM could not be reset for {method}: an upper bound)")
        print(f"## {config.title}\n")
        print(
            f"One logits tensor: {config.logits_bytes / MIB:,.0f} MiB; kldiv auto chunk: "
            f"{config.auto_rows()} rows.\n"
        )
        print(table(config, timings, memory))
        if "compile" in timings:
            print(
                f"\n(torch.compile warm-up, incl. compilation: {timings['compile'].warmup:.1f} s)"
            )
        print("\n### Targets\n")
        print("\n".join(check_targets(config, timings, memory)))
        print(flush=True)
    print(f"torch threads during the run: {torch.get_num_threads()}")
    if source_revision() != revision:
        print(f"WARNING: the source changed during the run ({revision} -> {source_revision()})")


def _rows_list(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run on small shapes")
    parser.add_argument("--large", action="store_true", help="add N=4096, V=128256 (~10 GB)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory children")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--no-plain", action="store_true", help="skip the informational kldiv rows")
    parser.add_argument("--only", choices=("logits", "fused"), help="one path only")
    parser.add_argument(
        "--logits-chunks",
        type=_rows_list,
        default=[],
        metavar="ROWS,...",
        help="extra kldiv rows with explicit chunk sizes on the logits path, e.g. 8,16,64",
    )
    parser.add_argument(
        "--fused-chunks",
        type=_rows_list,
        default=[],
        metavar="ROWS,...",
        help="extra kldiv rows with explicit chunk sizes on the fused path, e.g. 256,512,1024",
    )
    parser.add_argument("--child", metavar="METHOD", help=argparse.SUPPRESS)
    parser.add_argument("--path", choices=("logits", "fused"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--v", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--d", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        config = Config(args.path, args.n, args.v, args.d)
        print(json.dumps(child_memory(config, args.child)))
        return
    run(args)


if __name__ == "__main__":
    main()
