"""Benchmark of ``kldiv.reports.compare_logits`` (``kldiv compare``) on a synthetic logits store.

Run from the repository root, with the project's environment::

    python benchmarks/compare.py                         # 8192 × 32000 float32 (1 GiB a file)
    python benchmarks/compare.py --tokens 16384          # 2 GiB a file
    python benchmarks/compare.py --tokens 200000 --vocab 32000   # the issue's size: 25.6 GB a file
    python benchmarks/compare.py --quick                 # smoke run, 1024 × 32000

Two ``.npy`` files of float32 logits (base, and test = base + noise) and one of
next tokens are written under ``--dir`` (row blocks at a time, never whole in
memory) and deleted afterwards unless ``--keep``. Each configuration then runs
in a fresh child process (``--child NAME``), which reports its time and its
peak resident memory (``VmHWM`` after ``echo 5 > /proc/self/clear_refs``):

- ``numpy``: ``compare_logits`` on both arrays loaded into memory (loading not timed);
- ``memmap``: ``compare_logits`` on ``np.load(..., mmap_mode="r")``, streamed in chunks;
- ``dask``: a ``dask.distributed.LocalCluster`` (2 worker processes × 1 thread,
  127.0.0.1), the arrays read block by block from the same files inside the
  workers; the cluster's start-up is not timed; memory is the client's peak plus
  each worker's;
- ``naive``: the obvious NumPy code, a textbook log-softmax of both whole arrays
  then ``sum(exp(lp) * (lp - lq))``, argmax agreement and Δp (in memory).
  It needs about five full-size temporaries: it is skipped when the machine's
  available memory is below 7× one file.

The table gives seconds (median of ``--repeats``), tokens per second, GB/s of
input read (both files), the speed ratio against ``naive`` (above 1 is faster)
and the peak RSS. The file pages stay in the page cache between runs (warm
cache): with files larger than memory the ``memmap`` and ``dask`` rows become
bound by the disk instead. Only ratios within one run are meaningful on a
shared machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import machine_facts, proc_status_kib, reset_high_water_mark  # benchmarks/ on path

MIB = 1 << 20
SEED = 20261126
CONFIGS = ("numpy", "memmap", "dask", "naive")


def write_store(directory: Path, tokens: int, vocab: int) -> None:
    """base.npy, test.npy (float32 logits) and tokens.npy, written block by block."""
    directory.mkdir(parents=True, exist_ok=True)
    shape = (tokens, vocab)
    base = np.lib.format.open_memmap(directory / "base.npy", "w+", np.float32, shape)
    test = np.lib.format.open_memmap(directory / "test.npy", "w+", np.float32, shape)
    rng = np.random.default_rng(SEED)
    step = max(1, (64 * MIB) // (4 * vocab))
    for start in range(0, tokens, step):
        stop = min(start + step, tokens)
        block = rng.standard_normal((stop - start, vocab), dtype=np.float32)
        block *= np.float32(3.0)
        base[start:stop] = block
        noise = rng.standard_normal(block.shape, dtype=np.float32)
        noise *= np.float32(0.1)
        block += noise
        test[start:stop] = block
    base.flush()
    test.flush()
    del base, test
    np.save(directory / "tokens.npy", rng.integers(0, vocab, tokens))


def naive_log_softmax(x: np.ndarray) -> np.ndarray:
    """The textbook NumPy log-softmax over the last axis, on the whole array."""
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def naive_report(base: np.ndarray, test: np.ndarray, tokens: np.ndarray) -> float:
    """The obvious whole-array NumPy code for the same core statistics."""
    log_p = naive_log_softmax(base)
    log_q = naive_log_softmax(test)
    kl = np.sum(np.exp(log_p) * (log_p - log_q), axis=1)
    same_top = np.mean(base.argmax(axis=1) == test.argmax(axis=1))
    rows = np.arange(len(tokens))
    delta_p = np.exp(log_q[rows, tokens]) - np.exp(log_p[rows, tokens])
    _ = (kl.std(ddof=1), np.percentile(kl, [90, 95, 99, 99.9]), same_top, delta_p.mean())
    return float(kl.mean())


def _load_rows(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def dask_array_of(path: Path, rows_per_block: int):
    """A Dask array whose blocks each worker reads from the .npy file itself (a memory map)."""
    import dask
    import dask.array as da

    shape = np.load(path, mmap_mode="r").shape
    blocks = [
        da.from_delayed(
            dask.delayed(_load_rows, pure=True)(
                str(path), start, min(start + rows_per_block, shape[0])
            ),
            shape=(min(start + rows_per_block, shape[0]) - start, shape[1]),
            dtype=np.float32,
        )
        for start in range(0, shape[0], rows_per_block)
    ]
    return da.concatenate(blocks, axis=0)


def _worker_peak_mib() -> float:
    return proc_status_kib("VmHWM") / 1024


def _worker_reset() -> bool:
    return reset_high_water_mark()


def child(name: str, directory: Path, repeats: int) -> dict:
    """Runs one configuration ``repeats`` times in this process; its times and peak memory."""
    from kldiv.reports import compare_logits

    tokens = np.load(directory / "tokens.npy")
    extra_peaks: list[float] = []
    cluster = client = None
    if name in ("numpy", "naive"):
        base, test = np.load(directory / "base.npy"), np.load(directory / "test.npy")
    elif name == "memmap":
        base = np.load(directory / "base.npy", mmap_mode="r")
        test = np.load(directory / "test.npy", mmap_mode="r")
    else:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=40,
        )
        client = Client(cluster)
        vocab = np.load(directory / "base.npy", mmap_mode="r").shape[1]
        rows = max(1, (64 * MIB) // (4 * vocab))
        base = dask_array_of(directory / "base.npy", rows)
        test = dask_array_of(directory / "test.npy", rows)

    def run_once(b, t, k) -> float:
        if name == "naive":
            return naive_report(b, t, k)
        return compare_logits(b, t, tokens=k).kl_mean

    run_once(base[:64], test[:64], tokens[:64])  # warm-up: imports, thread pools, workers
    times, value = [], float("nan")
    before = proc_status_kib("VmRSS") / 1024
    reset_high_water_mark()
    if client is not None:
        client.run(_worker_reset)
    for _ in range(repeats):
        start = time.perf_counter()
        value = run_once(base, test, tokens)
        times.append(time.perf_counter() - start)
    peak = proc_status_kib("VmHWM") / 1024
    if client is not None:
        extra_peaks = list(client.run(_worker_peak_mib).values())
        client.close()
        cluster.close()
    return {
        "name": name,
        "times": times,
        "kl_mean": value,
        "rss_before_mib": before,
        "peak_mib": peak,
        "worker_peaks_mib": extra_peaks,
    }


def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def run_child(name: str, directory: Path, repeats: int) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            name,
            "--dir",
            str(directory),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"name": name, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict], tokens: int, vocab: int) -> str:
    gigabytes = 2 * tokens * vocab * 4 / 1e9
    naive = next((r for r in results if r["name"] == "naive" and "times" in r), None)
    naive_time = statistics.median(naive["times"]) if naive else None
    lines = [
        "| configuration | median s | tokens/s | GB/s | vs naive | peak RSS MiB | mean KL |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "times" not in r:
            lines.append(
                f"| {r['name']} | skipped: {r.get('error') or r.get('skipped')} | | | | | |"
            )
            continue
        seconds = statistics.median(r["times"])
        ratio = f"{naive_time / seconds:.1f}×" if naive_time else "n/a"
        peak = r["peak_mib"]
        memory = f"{peak:.0f}"
        if r["worker_peaks_mib"]:
            workers = " + ".join(f"{w:.0f}" for w in r["worker_peaks_mib"])
            memory = f"{peak:.0f} client + {workers} workers"
        lines.append(
            f"| {r['name']} | {seconds:.2f} | {tokens / seconds:,.0f} | "
            f"{gigabytes / seconds:.2f} | {ratio} | {memory} | {r['kl_mean']:.6f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/kldiv-compare-bench"))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    parser.add_argument("--quick", action="store_true", help="1024 × 32000, one repeat")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.dir, args.repeats)))
        return
    if args.quick:
        args.tokens, args.repeats = 1024, 1
    thp, cpu, cores = machine_facts()
    file_bytes = args.tokens * args.vocab * 4
    print(
        f"# compare_logits: {args.tokens} tokens × {args.vocab} vocab, float32, "
        f"{file_bytes / 2**30:.2f} GiB a file; {cpu}, {cores} cores, THP {thp}"
    )
    reuse = (args.dir / "base.npy").exists() and np.load(
        args.dir / "base.npy", mmap_mode="r"
    ).shape == (args.tokens, args.vocab)
    if not reuse:
        started = time.perf_counter()
        write_store(args.dir, args.tokens, args.vocab)
        print(f"# wrote the store in {time.perf_counter() - started:.1f} s under {args.dir}")
    results = []
    for name in args.configs.split(","):
        in_memory = name in ("numpy", "naive")
        need = (7 if name == "naive" else 2.5) * file_bytes if in_memory else 0
        if need and available_bytes() < need:
            results.append({"name": name, "skipped": f"needs ~{need / 2**30:.0f} GiB of RAM"})
            continue
        results.append(run_child(name, args.dir, args.repeats))
    print(table(results, args.tokens, args.vocab))
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
