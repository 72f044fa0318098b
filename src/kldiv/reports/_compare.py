"""``compare_logits``: a base model's next-token distributions against a test model's, one pass."""

from __future__ import annotations

import math
import mmap
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import (
    array_namespace,
    is_dask_namespace,
    is_numpy_namespace,
    to_numpy,
)
from kldiv._validation import log_of_base
from kldiv.errors import KLDivError
from kldiv.estimators._estimate import unit_name
from kldiv.reports._kernels import TokenValues, generic_token_values, numpy_token_values
from kldiv.reports._report import ComparisonReport, build_report
from kldiv.reports._stats import Summary, merge_summaries

__all__ = ["DEFAULT_CHUNK_BYTES", "compare_logits"]

Array = Any

DEFAULT_CHUNK_BYTES = 64 << 20
"""The default chunk: as many rows as hold about 64 MiB of one input's logits (in float32)."""

NAMES = ("base_logits", "test_logits")


# --- checks ---------------------------------------------------------------------------------------


def _check_logit_arrays(base: Array, test: Array) -> tuple[tuple[int, ...], int]:
    """Shapes and dtypes of the two logit arrays; returns (leading shape, V)."""
    for array, name in zip((base, test), NAMES, strict=True):
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            raise KLDivError(
                f"`{name}` must be an array of logits (NumPy, memory map, PyTorch, JAX, Dask); "
                f"got {type(array).__name__}"
            )
        if len(array.shape) < 1 or any(d is None or d != d for d in array.shape):
            raise KLDivError(f"`{name}` must have a known shape (..., V); got {array.shape}")
        if not _is_floating(array):
            raise KLDivError(f"`{name}` must hold floating-point logits; got dtype {array.dtype}")
    if tuple(base.shape) != tuple(test.shape):
        raise KLDivError(
            f"`base_logits` and `test_logits` must have one shape (..., V); "
            f"got {tuple(base.shape)} and {tuple(test.shape)}"
            + (
                " (different vocabulary sizes)"
                if tuple(base.shape[:-1]) == tuple(test.shape[:-1])
                else ""
            )
        )
    shape = tuple(int(d) for d in base.shape)
    if shape[-1] < 1:
        raise KLDivError(f"`base_logits` must have a vocabulary axis of length >= 1; got {shape}")
    if math.prod(shape[:-1]) < 1:
        raise KLDivError(f"`base_logits` must hold at least one position; got shape {shape}")
    return shape[:-1], shape[-1]


def _is_floating(array: Array) -> bool:
    """A real floating dtype of any library: float16/32/64, bfloat16 (torch, JAX, ml_dtypes)."""
    dtype = array.dtype
    if hasattr(dtype, "is_floating_point"):  # torch
        return bool(dtype.is_floating_point) and not dtype.is_complex
    try:
        numpy_dtype = np.dtype(dtype)
    except TypeError:  # another array API library's dtype (e.g. array_api_strict)
        try:
            return bool(array_namespace(array).isdtype(dtype, "real floating"))
        except (TypeError, AttributeError):
            return False
    return numpy_dtype.kind == "f" or numpy_dtype.name.startswith(("bfloat16", "float"))


def _as_index_vector(
    values: Any, name: str, leading: tuple[int, ...], dtype_kind: str
) -> np.ndarray | Any:
    """``tokens`` or ``mask`` as a flat NumPy vector (Dask stays lazy), shape-checked."""
    if values is None:
        return None
    if not hasattr(values, "shape"):
        values = _as_numpy(values, name)
    if any(d is None or d != d for d in values.shape):
        raise KLDivError(
            f"`{name}` must have a known shape, the logits' leading shape {leading}; got "
            f"{tuple(values.shape)} (a Dask array with unknown chunk sizes: call its "
            "compute_chunk_sizes() first)"
        )
    if tuple(int(d) for d in values.shape) not in (leading, (math.prod(leading),)):
        raise KLDivError(
            f"`{name}` must have the logits' leading shape {leading} (one entry per position); "
            f"got {tuple(values.shape)}"
        )
    try:
        is_dask = is_dask_namespace(array_namespace(values))
    except TypeError:
        is_dask = False
    kind = np.dtype(str(values.dtype).rsplit(".", 1)[-1]).kind  # "torch.int64" → "int64"
    wanted = {"i": "integers (token ids)", "b": "booleans (True = include)"}[dtype_kind]
    if (dtype_kind == "i" and kind not in "iu") or (dtype_kind == "b" and kind != "b"):
        raise KLDivError(f"`{name}` must hold {wanted}; got dtype {values.dtype}")
    if is_dask:
        return values.reshape(-1)
    return np.asarray(to_numpy(values)).reshape(-1)


def _as_numpy(values: Any, name: str, dtype: Any = None) -> np.ndarray:
    """A list or tuple as a NumPy array; ragged or non-numeric input names the argument."""
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise KLDivError(
            f"`{name}` must be an array or a rectangular list of numbers; got "
            f"{type(values).__name__} that NumPy cannot convert ({err})"
        ) from None


def _check_tokens(tokens: np.ndarray, vocab: int, ignore_index: int, offset: int = 0) -> None:
    bad = ((tokens < 0) | (tokens >= vocab)) & (tokens != ignore_index)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise KLDivError(
            f"`tokens` must hold token ids in [0, {vocab}) or ignore_index={ignore_index}; "
            f"got {int(tokens[position])} at position {offset + position}"
        )


def _rows_per_chunk(chunk_size: int | None, vocab: int) -> int:
    if chunk_size is None:
        return max(1, DEFAULT_CHUNK_BYTES // (4 * vocab))
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise KLDivError(f"`chunk_size` must be a positive integer (rows); got {chunk_size!r}")
    return int(chunk_size)


def _references(
    tokens: np.ndarray | None, mask: np.ndarray | None, ignore_index: int, start: int, stop: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The reference token ids (ignored ones replaced by 0) and the include mask of a chunk."""
    include = None if mask is None else np.asarray(mask[start:stop], dtype=bool)
    if tokens is None:
        return None, include
    chunk = np.asarray(tokens[start:stop], dtype=np.int64)
    ignored = chunk == ignore_index
    if ignored.any():
        include = ~ignored if include is None else include & ~ignored
        chunk = np.where(ignored, 0, chunk)
    return chunk, include


# --- memory maps ---------------------------------------------------------------------------------


class _MappedPages:
    """Hands back the pages of a read-only NumPy memory map once their rows are processed.

    A file-backed mapping's pages count in the process's resident memory until
    the kernel reclaims them; ``MADV_DONTNEED`` after each chunk keeps the
    resident size at about one chunk, whatever the file size (the data stays in
    the page cache). Anything that is not a plain read-only ``np.memmap`` is left alone.
    """

    def __init__(self, array: Array) -> None:
        self.mapping = None
        mapping = getattr(array, "_mmap", None) if isinstance(array, np.memmap) else None
        if mapping is None or not hasattr(mapping, "madvise") or array.flags.writeable:
            return
        if not hasattr(mmap, "MADV_DONTNEED"):  # pragma: no cover - not Linux
            return
        try:
            probe = np.frombuffer(mapping, dtype=np.uint8, count=1)
            self.start = probe.ctypes.data
            del probe
        except (TypeError, ValueError, BufferError):  # pragma: no cover - defensive
            return
        self.mapping = mapping

    def release(self, rows: np.ndarray) -> None:
        """Drops the pages that only ``rows`` (a contiguous slice of the map) covers."""
        if self.mapping is None or not rows.flags.c_contiguous or not rows.size:
            return
        page = mmap.PAGESIZE
        low = rows.ctypes.data - self.start
        high = low + rows.nbytes
        low -= low % page
        high -= high % page
        if high > low:
            try:
                self.mapping.madvise(mmap.MADV_DONTNEED, low, high - low)
            except (OSError, ValueError):  # pragma: no cover - a kernel that refuses
                self.mapping = None


# --- eager arrays (NumPy, memory maps, PyTorch, JAX, ...) ------------------------------------


def _compute_dtype_numpy(dtype: np.dtype) -> np.dtype:
    """float64 stays float64; float32 and half precision compute in float32."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _eager_chunks(
    base: Array,
    test: Array,
    tokens: np.ndarray | None,
    mask: np.ndarray | None,
    *,
    ignore_index: int,
    rows: int,
    per_token: bool,
) -> tuple[list[Summary], list[TokenValues]]:
    vocab = int(base.shape[-1])
    n = math.prod(int(d) for d in base.shape[:-1])
    try:
        xp = array_namespace(base, test)
    except TypeError:
        raise KLDivError(
            f"`base_logits` and `test_logits` must come from one array library; got "
            f"{type(base).__module__}.{type(base).__name__} and "
            f"{type(test).__module__}.{type(test).__name__}"
        ) from None
    flat_base, flat_test = xp.reshape(base, (n, vocab)), xp.reshape(test, (n, vocab))
    if is_numpy_namespace(xp):
        compute = _compute_dtype_numpy(np.result_type(base.dtype, test.dtype))

        def kernel(b: Array, t: Array, ref: Any, inc: Any, offset: int) -> TokenValues:
            return numpy_token_values(
                b, t, ref, inc, row_offset=offset, names=NAMES, compute_dtype=compute
            )

        pages = [_MappedPages(base), _MappedPages(test)]
    else:
        dtype = xp.result_type(base.dtype, test.dtype)
        compute = xp.float32 if xp.finfo(dtype).bits < 32 else dtype

        def kernel(b: Array, t: Array, ref: Any, inc: Any, offset: int) -> TokenValues:
            return generic_token_values(
                b, t, ref, inc, xp=xp, row_offset=offset, names=NAMES, compute_dtype=compute
            )

        pages = []
    summaries, kept = [], []
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        reference, include = _references(tokens, mask, ignore_index, start, stop)
        b, t = flat_base[start:stop, ...], flat_test[start:stop, ...]
        values = kernel(b, t, reference, include, start)
        summaries.append(_summary(values, stop - start))
        if per_token:
            kept.append(values)
        for page, chunk in zip(pages, (b, t), strict=False):  # memory maps only
            page.release(chunk)
    return summaries, kept


def _summary(values: TokenValues, positions: int) -> Summary:
    return Summary.of(
        positions=positions,
        kl=values.kl,
        same_top=values.same_top,
        delta_p=values.delta_p,
        nll_base=values.nll_base,
        nll_test=values.nll_test,
    )


# --- Dask ----------------------------------------------------------------------------------------


def _dask_block(
    base: np.ndarray,
    test: np.ndarray,
    tokens: np.ndarray | None,
    mask: np.ndarray | None,
    ignore_index: int,
    offset: int,
    per_token: bool,
) -> tuple[Summary, TokenValues | None]:
    """One Dask task: the per-token values and statistics of one row block."""
    if tokens is not None:
        _check_tokens(np.asarray(tokens), base.shape[-1], ignore_index, offset)
    reference, include = _references(tokens, mask, ignore_index, 0, base.shape[0])
    if isinstance(base, np.ndarray) and isinstance(test, np.ndarray):
        compute = _compute_dtype_numpy(np.result_type(base.dtype, test.dtype))
        values = numpy_token_values(
            base, test, reference, include, row_offset=offset, names=NAMES, compute_dtype=compute
        )
    else:  # CuPy or another array library inside the Dask array
        xp = array_namespace(base, test)
        dtype = xp.result_type(base.dtype, test.dtype)
        compute = xp.float32 if xp.finfo(dtype).bits < 32 else dtype
        values = generic_token_values(
            base,
            test,
            reference,
            include,
            xp=xp,
            row_offset=offset,
            names=NAMES,
            compute_dtype=compute,
        )
    return _summary(values, base.shape[0]), (values if per_token else None)


def _dask_map_block(
    base: np.ndarray,
    test: np.ndarray,
    *columns: np.ndarray,
    has_tokens: bool,
    ignore_index: int,
    per_token: bool,
    block_info: dict | None = None,
) -> np.ndarray:
    """``map_blocks`` wrapper of :func:`_dask_block`: one object holding its results."""
    offset = int(block_info[0]["array-location"][0][0]) if block_info else 0
    extra = [c.reshape(-1) for c in columns]
    tokens = extra.pop(0) if has_tokens else None
    mask = extra.pop(0) if extra else None
    out = np.empty(1, dtype=object)
    out[0] = _dask_block(base, test, tokens, mask, ignore_index, offset, per_token)
    return out


def _dask_chunks(
    base: Array,
    test: Array,
    tokens: Any,
    mask: Any,
    *,
    ignore_index: int,
    chunk_size: int | None,
    per_token: bool,
) -> tuple[list[Summary], list[TokenValues]]:
    import dask.array as da

    vocab = int(base.shape[-1])
    n = math.prod(int(d) for d in base.shape[:-1])
    base2 = da.asarray(base).reshape(n, vocab)
    test2 = da.asarray(test).reshape(n, vocab)
    for array, name in zip((base2, test2), NAMES, strict=True):
        if not _is_floating(array):
            raise KLDivError(f"`{name}` must hold floating-point logits; got dtype {array.dtype}")
    if chunk_size is not None:
        rows: Any = _rows_per_chunk(chunk_size, vocab)
    elif len(base2.chunks[1]) == 1 and max(base2.chunks[0]) * vocab * 4 <= 2 * DEFAULT_CHUNK_BYTES:
        rows = base2.chunks[0]  # already whole rows of a reasonable size: no rechunk
    else:
        rows = _rows_per_chunk(None, vocab)
    base2 = base2.rechunk((rows, vocab))
    test2 = test2.rechunk(base2.chunks)
    row_chunks = base2.chunks[0]
    columns = [_column(v, row_chunks, da) for v in (tokens, mask) if v is not None]
    # One task per row block: its per-token values and partial statistics, in one object.
    results = da.map_blocks(
        _dask_map_block,
        base2,
        test2,
        *columns,
        has_tokens=tokens is not None,
        ignore_index=ignore_index,
        per_token=per_token,
        drop_axis=1,
        chunks=((1,) * len(row_chunks),),
        dtype=object,
        meta=np.empty((0,), dtype=object),
    ).compute()
    summaries = [summary for summary, _ in results]
    kept = [values for _, values in results if values is not None]
    return summaries, kept


def _column(values: Any, row_chunks: Sequence[int], da: ModuleType) -> Any:
    """``values`` (N,) as an (N, 1) Dask array chunked like the logits' rows."""
    if isinstance(values, np.ndarray):
        return da.from_array(values.reshape(-1, 1), chunks=(tuple(row_chunks), 1))
    return values.reshape(-1, 1).rechunk((tuple(row_chunks), 1))


# --- the public function -------------------------------------------------------------------------


def _dtype_name(array: Array) -> str:
    return str(array.dtype).replace("torch.", "")


def _dtype_label(base_logits: Array, test_logits: Array) -> str:
    """The logits' dtype, or ``"base / test"`` when the two differ."""
    base_name, test_name = _dtype_name(base_logits), _dtype_name(test_logits)
    return base_name if base_name == test_name else f"{base_name} / {test_name}"


def compare_logits(
    base_logits: Array,
    test_logits: Array,
    /,
    *,
    tokens: Array | None = None,
    mask: Array | None = None,
    ignore_index: int = -100,
    chunk_size: int | None = None,
    per_token: bool = True,
    base: float | None = None,
) -> ComparisonReport:
    r"""Compares a test model's next-token distributions with a base model's, position by position.

    The report people use to judge a quantized or distilled model against its
    base (llama.cpp's ``llama-perplexity --kl-divergence``). For each position
    (a row of ``(N, V)`` logits; leading dims of ``(..., V)`` are flattened):

    .. math::

        \log p = \operatorname{log\_softmax}(z_{base}), \quad
        \log q = \operatorname{log\_softmax}(z_{test}), \quad
        \mathrm{KL} = \sum_v p_v (\log p_v - \log q_v), \quad
        \Delta p = q_t - p_t

    where ``t`` is the reference token: the given next token, or without
    ``tokens`` the base model's argmax. ``-inf`` logits are masked tokens
    (zero mass); a token the test model masks but the base model can emit makes
    that position's KL ``+inf``. Rounding-level negative KLs are clamped to 0.
    The report gives the mean KL ± standard error, exact percentiles, top-1
    agreement ("same top p"), Δp statistics and RMS Δp, and with ``tokens`` the
    perplexity of each model, ``log(PPL_test/PPL_base)`` ± its paired standard
    error and the correlation of the per-token NLLs.

    One pass over the data, in chunks of rows: each chunk is reduced to its
    per-token values and mergeable float64 partial statistics (counts, means,
    centred second moments combined with Chan's update), so the result does not
    depend on the chunking beyond rounding. Inputs:

    - NumPy arrays and ``np.load(path, mmap_mode="r")`` memory maps: read one
      chunk at a time; a file larger than memory works, and the pages of a
      read-only map are handed back after each chunk. Extra memory is a few
      cache-sized blocks per thread plus, for half precision, one chunk in float32.
    - PyTorch and JAX arrays (any device): computed in their own library,
      chunk by chunk; only the per-token vectors come back.
    - Dask arrays: one graph with a task per row block (the vocabulary axis is
      rechunked to a single chunk if it is split, which moves data once inside
      the graph), computed once on the current scheduler (a
      ``dask.distributed.Client`` if one is active); partial statistics are
      combined on the client.

    Half precision is computed in float32, float32 in float32, float64 in
    float64; the statistics are accumulated in float64.

    Args:
        base_logits: the base (reference) model's logits, ``(..., V)``.
        test_logits: the test (quantized, distilled, ...) model's logits, same shape.
        tokens: the true next token of each position, integers of the leading
            shape (optional). Positions equal to ``ignore_index`` are left out.
        mask: booleans of the leading shape, False to leave a position out (optional).
        ignore_index: the token id that marks a position to leave out (torch's -100).
        chunk_size: rows per chunk; None sizes chunks to about 64 MiB of float32
            logits per input (for Dask: keeps row chunks of up to 128 MiB as they are).
        per_token: keep the per-token KL and Δp (8 bytes each per position; the
            input is ``V`` times larger) for exact percentiles, medians and the
            HTML histograms. False streams the other statistics only (percentiles None).
        base: the logarithm base of KL and NLL values: None for nats, 2 for bits.

    Returns:
        A :class:`ComparisonReport`.

    Raises:
        KLDivError: shapes that differ (or a different vocabulary size),
            non-floating logits, a NaN or ``+inf`` logit or a position whose
            logits are all ``-inf`` (naming the argument and the position), tokens
            that are not integers or out of ``[0, V)``, a mask that is not boolean,
            a bad ``chunk_size`` or ``base``, or no position left to compare.

    Examples:
        >>> import numpy as np
        >>> from kldiv.reports import compare_logits
        >>> base = np.log([[0.4, 0.6], [0.5, 0.5]])
        >>> test = np.log([[0.5, 0.5], [0.5, 0.5]])
        >>> report = compare_logits(base, test)
        >>> round(report.kl_mean, 7), round(report.kl_max, 7)  # KL of the first row
        (0.0100678, 0.0201355)
        >>> report.same_top, report.reference
        (0.5, 'base argmax')
        >>> report = compare_logits(base, test, tokens=[1, 0], base=2)
        >>> round(report.kl_max, 7), report.unit, round(report.delta_p_mean, 3)
        (0.0290494, 'bits', -0.05)
    """
    log_base = log_of_base(base)
    if not isinstance(per_token, bool):
        raise KLDivError(f"`per_token` must be True or False; got {per_token!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise KLDivError(f"`ignore_index` must be an integer; got {ignore_index!r}")
    if isinstance(base_logits, (list, tuple)):
        base_logits = _as_numpy(base_logits, NAMES[0], dtype=np.float64)
    if isinstance(test_logits, (list, tuple)):
        test_logits = _as_numpy(test_logits, NAMES[1], dtype=np.float64)
    leading, vocab = _check_logit_arrays(base_logits, test_logits)
    rows = _rows_per_chunk(chunk_size, vocab)
    token_vector = _as_index_vector(tokens, "tokens", leading, "i")
    mask_vector = _as_index_vector(mask, "mask", leading, "b")
    lazy = _is_dask(base_logits) or _is_dask(test_logits)
    if not lazy:  # eager logits: lazy tokens or mask are small, bring them here
        token_vector, mask_vector = (
            np.asarray(v.compute()) if _is_dask(v) else v for v in (token_vector, mask_vector)
        )
    if isinstance(token_vector, np.ndarray):
        _check_tokens(token_vector, vocab, int(ignore_index))
    if lazy:
        summaries, kept = _dask_chunks(
            base_logits,
            test_logits,
            token_vector,
            mask_vector,
            ignore_index=int(ignore_index),
            chunk_size=chunk_size,
            per_token=per_token,
        )
    else:
        summaries, kept = _eager_chunks(
            base_logits,
            test_logits,
            token_vector,
            mask_vector,
            ignore_index=int(ignore_index),
            rows=rows,
            per_token=per_token,
        )
    summary = merge_summaries(summaries)
    if summary.kl.count == 0:
        raise KLDivError(
            f"no position left to compare: all {summary.positions} positions are masked "
            f"(`mask` False or `tokens` == ignore_index={ignore_index})"
        )
    token_kl = _concatenate(kept, lambda v: v.kl) if per_token else None
    token_delta_p = _concatenate(kept, lambda v: v.delta_p) if per_token else None
    return build_report(
        summary,
        token_kl,
        token_delta_p,
        vocab_size=vocab,
        dtype=_dtype_label(base_logits, test_logits),
        with_tokens=tokens is not None,
        log_base=log_base,
        unit=unit_name(base),
    )


def _is_dask(value: Any) -> bool:
    if value is None or "dask" not in sys.modules:
        return False
    import dask.array as da

    return isinstance(value, da.Array)


def _concatenate(kept: list[TokenValues], pick: Callable[[TokenValues], np.ndarray]) -> np.ndarray:
    return np.concatenate([pick(v) for v in kept]) if kept else np.empty(0)
