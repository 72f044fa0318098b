r"""PyTorch-native kernels of the discrete measures (selected by :mod:`kldiv.discrete._native`).

The array-API implementation is the specification; this is its fast path for
``torch.Tensor`` inputs of one shape and floating dtype, reduced over the last
axis. It differs from the generic path in three ways:

- **Chunked over rows.** Inputs are flattened to ``(rows, V)`` and processed a
  block of about ``CHUNK_ELEMENTS`` at a time, so the forward pass needs
  O(block) extra memory instead of several input-sized temporaries. On the CPU
  the fast formulas write their temporaries into per-thread buffers that are
  reused from call to call (a fresh block-sized tensor per operation would cost
  the allocator a page fault per 4 KiB) and their results straight into the
  outputs (``out=``).
- **Analytic gradients, computed in the same pass.** When an input requires a
  gradient, a :class:`torch.autograd.Function` computes each block's
  gradient from values it already has (one input-sized buffer per input that
  needs it: the gradient itself) and the backward pass only scales it by the
  upstream gradient. With :math:`a = \log p`, :math:`b = \log q`:

  .. math::

      \partial_a D(P\|Q) = p\,(a - b + 1), \quad \partial_b D(P\|Q) = -p, \qquad
      \partial_a JS_\beta = \beta\, p\,(a - \log m), \quad
      \partial_b JS_\beta = (1-\beta)\, q\,(b - \log m),

  and for logits :math:`z` (``a = log_softmax(z / T)``)
  :math:`\partial_z = (g_a - p \sum g_a) / T`. A double backward
  (``create_graph=True``: Hessian-vector products, TRPO) differentiates the
  reference implementation instead, so it is exact too.
- **A fast block and an exact block.** On the CPU a block is first computed
  without the masks of the zero-mass conventions; a block whose values are not
  all finite (a zero probability, a ``-inf`` entry, a support mismatch, or bad
  input) is recomputed with the exact formulas, which mirror
  :mod:`kldiv.discrete._terms` term for term (0·log 0 = 0, +inf where q = 0 < p,
  gradients zero where the value is pinned). On other devices every block takes
  the exact formulas, so nothing waits for the device.
- **Near-equal rows recomputed.** A divergence is a sum of terms that cancel when
  P ≈ Q; on the CPU, rows whose divergence comes out below
  :func:`near_equal_below` (1e-3, or 1e-4 for logits, in float32; 1e-6 in
  float64; negative ones included) are recomputed by the reference
  implementation from the inputs as given, so identical inputs give exactly 0
  and near-equal ones keep their relative accuracy (the same ``aminmax`` read
  that checks finiteness
  decides it).

Validation costs the reductions the checks need, computed from the block while
it is in cache, and **one** host–device synchronisation per call (none with
``validate=False``). When a check fails, :func:`compute` returns None and the
generic path runs: it raises the reference's error, word for word.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from kldiv._array_api import array_namespace
from kldiv._special import log_softmax
from kldiv._validation import (
    check_beta,
    check_temperature,
    log_of_base,
    resolve_validate,
    sum_tolerance,
)
from kldiv.discrete import _terms
from kldiv.discrete._native import MEASURES
from kldiv.errors import KLDivError

Tensor = torch.Tensor

CHUNK_ELEMENTS = 1 << 18
"""Elements per block (1 MiB of float32). With reusable temporaries, larger blocks mean fewer
operations and OpenMP fork-joins per call (measured fastest at 2^17–2^18 on 2 cores)."""

SCRATCH_ELEMENTS = 1 << 18
"""Blocks up to this many elements use reusable temporaries (wider rows allocate their own)."""

AUTOGRAD_ELEMENTS = 1 << 14
"""Up to this many elements per input, gradients come from autograd over the fast formulas."""

_FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)
_INF = math.inf


@dataclass(frozen=True)
class Spec:
    """What to compute: the measure, its input form and the checked options.

    Attributes:
        measure: ``"kl"``, ``"js"``, ``"entropy"``, ``"cross_entropy"`` or ``"generalized_kl"``.
        form: ``"probs"``, ``"log_probs"`` or ``"logits"``.
        scale: ``1 / temperature`` for logits, else 1.
        beta: the Jensen–Shannon mixture weight.
        validate: whether the value checks run.
        tolerance: how far a row sum may be from 1.
        exact_only: take the exact block formulas only (devices other than the CPU).
    """

    measure: str
    form: str
    scale: float
    beta: float
    validate: bool
    tolerance: float
    exact_only: bool


# --- Which inputs this path takes ---------------------------------------------------------------


def _functorch_active() -> bool:
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active()) if active is not None else False


def _accepted_tensors(arrays: Sequence[object], axis: object) -> bool:
    """Plain floating tensors of one shape, dtype and device, reduced over their last axis."""
    first = arrays[0]
    if type(first) not in _PLAIN_TENSORS:
        return False
    dtype, ndim = first.dtype, first.ndim
    if dtype not in _FLOATING or ndim == 0 or first.numel() == 0:
        return False
    if type(axis) is not int or (axis != -1 and axis != ndim - 1):
        return False
    for other in arrays[1:]:
        if (
            type(other) not in _PLAIN_TENSORS
            or other.dtype is not dtype
            or other.shape != first.shape
            or other.device != first.device
        ):
            return False
    return not (torch.compiler.is_compiling() or _functorch_active())


def _spec(
    measure: str,
    form: str,
    arrays: Sequence[Tensor],
    validate: bool | None,
    temperature: object,
    beta: object,
) -> Spec | None:
    """The checked options, or None when one is invalid (the generic path then raises)."""
    first = arrays[0]
    try:
        return _cached_spec(
            measure,
            form,
            temperature if form == "logits" else 1.0,
            beta if measure == "js" else 0.5,
            resolve_validate(validate),
            first.dtype,
            first.device.type,
        )
    except (KLDivError, TypeError):  # TypeError: an unhashable option
        return None


@functools.lru_cache(maxsize=256)
def _cached_spec(
    measure: str,
    form: str,
    temperature: object,
    beta: object,
    validate: bool,
    dtype: torch.dtype,
    device_type: str,
) -> Spec:
    return Spec(
        measure=measure,
        form=form,
        scale=1.0 / check_temperature(temperature),
        beta=check_beta(beta),
        validate=validate,
        tolerance=sum_tolerance(dtype, torch) if validate else 0.0,
        exact_only=device_type != "cpu",
    )


def compute(
    measure: str,
    form: str,
    arrays: Sequence[object],
    *,
    axis: object,
    base: object,
    validate: bool | None,
    temperature: object = 1.0,
    beta: object = 0.5,
) -> Tensor | None:
    """The measure from the native kernels, or None where the generic path must run.

    None is returned for inputs this path does not take (other types, shapes
    that differ, another axis, traced tensors, invalid options) and for inputs
    that fail a value check: the generic path then raises its error.
    """
    if not _accepted_tensors(arrays, axis) or (measure == "generalized_kl" and form != "probs"):
        return None
    log_base = None
    if base is not None:
        try:
            log_base = log_of_base(base)
        except KLDivError:
            return None
    spec = _spec(measure, form, arrays, validate, temperature, beta)
    if spec is None:
        return None
    first = arrays[0]
    needs_grad = torch.is_grad_enabled() and (
        first.requires_grad or (len(arrays) > 1 and arrays[1].requires_grad)
    )
    small = None
    if (
        needs_grad
        and form != "probs"
        and first.numel() <= AUTOGRAD_ELEMENTS
        and not spec.exact_only
    ):
        small = _through_autograd(spec, arrays)
    if small is not None:
        values, invalid = small
    elif needs_grad:
        outcome: list = []
        values = _RowMeasure.apply(spec, outcome, *arrays)
        invalid = outcome[0]
    else:
        values, _, invalid = run(spec, arrays, (False,) * len(arrays))
    if invalid is not None and bool(invalid):
        return None
    if first.ndim != 2:
        values = values.reshape(first.shape[:-1])
    return values if log_base is None else values / log_base


# --- Small inputs: the fast formulas recorded by autograd ----------------------------------------


def _through_autograd(spec: Spec, arrays: Sequence[Tensor]) -> tuple[Tensor, Tensor | None] | None:
    """Small log-space inputs that need a gradient: autograd over the fast formulas, or None.

    :func:`compute` sends here log-probabilities and logits of at most
    ``AUTOGRAD_ELEMENTS`` entries on the CPU, when a gradient is being recorded.

    Below ``AUTOGRAD_ELEMENTS`` a call costs its number of operations, not its
    passes over memory, and autograd's own nodes are cheaper than a Python
    ``autograd.Function``. Where the fast values are all finite there is no
    ``-inf`` to mask, so autograd's gradients of the fast formulas are the exact
    ones; otherwise (None) the exact blocks of :class:`_RowMeasure` run.
    """
    flat = arrays
    if arrays[0].ndim != 2:
        width = arrays[0].shape[-1]
        flat = [t.reshape(-1, width) for t in arrays]
    if flat[0].dtype not in (torch.float32, torch.float64):
        flat = [t.float() for t in flat]
    if spec.form == "logits":
        flat = [_log_softmax(z, spec.scale) for z in flat]
    a, b = flat[0], flat[1] if len(flat) > 1 else None
    if spec.measure == "kl":  # exp(a) (a - b) and a row sum: as few autograd nodes as any way
        values, p, q = torch.kl_div(b, a, 0, log_target=True).sum(-1), None, None
    else:
        extra = (spec.beta,) if spec.measure == "js" else ()
        values, _, p, q = _LOG_KERNELS[spec.measure](a, b, False, False, False, *extra)
    if not _fast_values_stand(spec, values):
        return None
    if spec.form == "logits":  # finite values: the logits were valid
        return values, None
    if not spec.validate:
        return values, None
    with torch.no_grad():
        p = p if p is not None else torch.exp(a)
        off = _row_sum_off(p.sum(-1), spec.tolerance)
        if b is not None:
            q = q if q is not None else torch.exp(b)
            off |= _row_sum_off(q.sum(-1), spec.tolerance)
            if spec.measure == "kl":  # the reference's Σ (p log(p/q) - p + q)
                mass = torch.sub(q, p).sum(-1)
    if spec.measure == "kl":  # a constant to autograd: the reference keeps textbook gradients
        values = values + mass
    return values, off.any()


# --- The autograd node: gradients computed in forward, scaled in backward -----------------------


class _RowMeasure(torch.autograd.Function):
    """Values per row; their gradients are computed with them and scaled in backward.

    Backward scales a copy, not the stored gradients in place: a retained graph
    (``retain_graph=True``, ``gradcheck``'s reentrancy check) must give the same
    gradients on every backward.

    ``outcome`` receives the validation flag (a 0-d tensor, or None when the
    values themselves prove the inputs valid): a side channel, so that the node
    has one differentiable output and nothing else to track.
    """

    @staticmethod
    def forward(ctx, spec: Spec, outcome: list, *tensors: Tensor):
        values, gradients, invalid = run(spec, tensors, ctx.needs_input_grad[2:])
        outcome.append(invalid)
        ctx.spec, ctx.gradients, ctx.inputs = spec, gradients, tensors
        return values

    @staticmethod
    def backward(ctx, grad_values: Tensor):
        gradients = ctx.gradients
        if torch.is_grad_enabled():  # create_graph=True: differentiate the reference instead
            return (None, None, *_reference_gradients(ctx.spec, ctx.inputs, grad_values))
        upstream = grad_values.unsqueeze(-1)
        if ctx.spec.scale != 1.0:  # logits: the chain rule's 1/T, left out of the blocks
            upstream = upstream * ctx.spec.scale
        grads: list[Tensor | None] = [None, None]
        for gradient, tensor in zip(gradients, ctx.inputs, strict=True):
            if gradient is not None:
                gradient = gradient * (
                    upstream if upstream.dtype == gradient.dtype else upstream.to(gradient.dtype)
                )
                gradient = gradient if tensor.ndim == 2 else gradient.reshape(tensor.shape)
            grads.append(gradient)
        return tuple(grads)


def _reference_gradients(
    spec: Spec, tensors: Sequence[Tensor], grad_values: Tensor
) -> list[Tensor | None]:
    """Gradients of the generic implementation, with a graph (for higher derivatives)."""
    with torch.enable_grad():
        values = reference_nats(spec, tensors)
        wanted = [t for t in tensors if t.requires_grad]
        found = iter(
            torch.autograd.grad(
                values, wanted, grad_values.reshape(values.shape), create_graph=True
            )
        )
    return [next(found) if t.requires_grad else None for t in tensors]


def reference_nats(spec: Spec, tensors: Sequence[Tensor]) -> Tensor:
    """The generic implementation's values in nats, ``[...]``, on the tensors as they are."""
    xp = array_namespace(tensors[0])
    arrays = [t if t.dtype in (torch.float32, torch.float64) else t.float() for t in tensors]
    if spec.form == "logits":
        arrays = [
            log_softmax(a if spec.scale == 1.0 else a * spec.scale, -1, xp=xp) for a in arrays
        ]
    terms_fn = _REFERENCE_TERMS[(spec.measure, "probs" if spec.form == "probs" else "log")]
    options = {"beta": spec.beta} if spec.measure == "js" else {}
    return xp.sum(terms_fn(*arrays, xp=xp, **options), axis=-1)


_REFERENCE_TERMS = {
    ("kl", "probs"): _terms.kl_bregman_terms_from_probs,
    ("kl", "log"): _terms.kl_bregman_terms_from_log_probs,
    ("js", "probs"): _terms.js_terms_from_probs,
    ("js", "log"): _terms.js_terms_from_log_probs,
    ("entropy", "probs"): _terms.entropy_terms_from_probs,
    ("entropy", "log"): _terms.entropy_terms_from_log_probs,
    ("cross_entropy", "probs"): _terms.cross_entropy_terms_from_probs,
    ("cross_entropy", "log"): _terms.cross_entropy_terms_from_log_probs,
    ("generalized_kl", "probs"): _terms.generalized_kl_terms,
}


# --- The chunk loop -----------------------------------------------------------------------------


class _BlockOut(NamedTuple):
    """Where a block may write: slices of the call's outputs and reusable temporaries.

    Attributes:
        values: the block's rows of the output values (None: allocate).
        grads: per input, the block's rows of its gradient (None: allocate or not needed).
        scratch: temporaries of the block's shape for the fast formulas; empty when
            the block must allocate its own (other devices, very wide rows).
    """

    values: Tensor | None
    grads: tuple[Tensor | None, ...]
    scratch: tuple[Tensor, ...]

    def buffer(self, index: int) -> Tensor | None:
        """The ``index``-th temporary (an ``out=`` argument), or None to allocate."""
        return self.scratch[index] if index < len(self.scratch) else None


_NO_OUT = _BlockOut(None, (None, None), ())

_SCRATCH_COUNT = 4
"""Temporaries the fast block formulas use (the largest count of any kernel)."""

_scratch_pool = threading.local()


def _scratch(rows: int, width: int, dtype: torch.dtype, device: torch.device) -> tuple:
    """This thread's reusable block temporaries, or ``()`` where the block should allocate.

    A fresh block-sized temporary per operation costs the allocator a page
    fault per 4 KiB on first touch (glibc maps large requests afresh), more than
    the arithmetic at these sizes. The fast formulas write into these buffers
    instead: at most ``_SCRATCH_COUNT × SCRATCH_ELEMENTS`` elements per thread and
    dtype stay allocated between calls (4 MiB of float32 at the defaults).
    """
    if device.type != "cpu" or rows * width > SCRATCH_ELEMENTS:
        return ()
    views = getattr(_scratch_pool, "views", None)
    if views is None:
        views = _scratch_pool.views = {}
        _scratch_pool.buffers = {}
    key = (dtype, rows, width)
    found = views.get(key)
    if found is not None:
        return found
    size, buffers = rows * width, _scratch_pool.buffers
    if dtype not in buffers or buffers[dtype][0].numel() < size:
        buffers[dtype] = [torch.empty(size, dtype=dtype) for _ in range(_SCRATCH_COUNT)]
        views.clear()  # views of the smaller buffers would keep them alive
    if len(views) >= _SCRATCH_SHAPES:
        views.clear()
    found = views[key] = tuple(buffer[:size].view(rows, width) for buffer in buffers[dtype])
    return found


_SCRATCH_SHAPES = 64
"""Block shapes whose views of the scratch buffers are kept (then the cache restarts)."""


def run(
    spec: Spec, tensors: Sequence[Tensor], needs: Sequence[bool]
) -> tuple[Tensor, list[Tensor | None], Tensor]:
    """Values (nats) per row, gradients of their sum, and whether a check failed.

    Args:
        spec: what to compute.
        tensors: the inputs, ``[..., V]``, one shape and dtype.
        needs: which inputs need a gradient.

    Returns:
        ``(values [rows], gradients, invalid)``: the gradients ``[rows, V]`` in
        the inputs' dtype (None where not needed), and a 0-d boolean tensor that
        is True when validation found a problem (None when nothing can have
        failed: unvalidated, or values that prove the inputs valid).
    """
    width = tensors[0].shape[-1]
    flat = tensors if tensors[0].ndim == 2 else [t.reshape(-1, width) for t in tensors]
    rows = flat[0].shape[0]
    dtype, device = flat[0].dtype, flat[0].device
    compute_dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    step = min(rows, max(1, CHUNK_ELEMENTS // width))
    block = _BLOCKS[(spec.measure, spec.form)]
    values = torch.empty(rows, dtype=compute_dtype, device=device)
    gradients = [torch.empty_like(f) if need else None for f, need in zip(flat, needs, strict=True)]
    scratch = () if spec.exact_only else _scratch(step, width, compute_dtype, device)
    direct = compute_dtype == dtype  # outputs of the compute dtype: blocks write into them
    if step == rows:  # one block: the whole tensors, no slicing
        chunk = flat if direct else [f.to(compute_dtype) for f in flat]
        out = _BlockOut(values, (*gradients, None) if direct else (None, None), scratch)
        chunk_values, chunk_grads, off = block(spec, chunk, needs, out)
        _store(values, chunk_values)
        for gradient, chunk_grad in zip(gradients, chunk_grads, strict=True):
            if gradient is not None:
                _store(gradient, chunk_grad)
        return values, gradients, _any_off(spec, off)
    invalid = None
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        chunk = [f[start:stop] if direct else f[start:stop].to(compute_dtype) for f in flat]
        out = _BlockOut(
            values[start:stop],
            (*(g[start:stop] if g is not None and direct else None for g in gradients), None),
            scratch if stop - start == step else tuple(s[: stop - start] for s in scratch),
        )
        chunk_values, chunk_grads, off = block(spec, chunk, needs, out)
        _store(out.values, chunk_values)
        for gradient, chunk_grad in zip(gradients, chunk_grads, strict=True):
            if gradient is not None:
                _store(gradient[start:stop], chunk_grad)
        if spec.validate and off is not None:
            invalid = off.any() if invalid is None else invalid | off.any()
    return values, gradients, invalid


def _store(target: Tensor, result: Tensor) -> None:
    """Copy a block's result into the output, unless the block wrote it there."""
    if result.data_ptr() != target.data_ptr() or result.dtype != target.dtype:
        target.copy_(result)


def _any_off(spec: Spec, off: Tensor | None) -> Tensor | None:
    """A 0-d flag: some row failed a check; None when nothing can have failed."""
    return off.any() if spec.validate and off is not None else None


def _row_sum_off(totals: Tensor, tolerance: float) -> Tensor:
    """Rows whose sum is not within ``tolerance`` of 1 (NaN and inf sums included)."""
    return ~((totals - 1.0).abs_() <= tolerance)


def _fast_values_stand(spec: Spec, values: Tensor) -> bool:
    """Whether the fast formulas' values may stand (CPU only: reading them costs no sync).

    They stand when every value is finite and, for the divergences, at least
    :func:`near_equal_below`: a smaller divergence is the sum of terms that
    nearly cancel (near-equal inputs, or identical ones), so its rows are redone
    by :func:`_refine_near_equal`. One reduction (``aminmax``) decides both.
    """
    if spec.exact_only:
        return False
    low, high = torch.aminmax(values.detach())
    floor = near_equal_below(values.dtype, spec.form) if spec.measure in _DIVERGENCES else -_INF
    return float(low) >= floor and float(high) < _INF  # NaN fails both


_DIVERGENCES = frozenset({"kl", "js", "generalized_kl"})


def near_equal_below(dtype: torch.dtype, form: str) -> float:
    r"""Divergences below this are recomputed by the reference from the inputs (near-equal rows).

    The reference sums :math:`p \log(p/q) - p + q` term by term, each term
    :math:`\ge 0`. The fast formulas round each term (the ratio or the
    exponentials) to an absolute :math:`\sim\epsilon` in all, so their relative
    error is :math:`\sim\epsilon / D`; they stand above this threshold:
    :math:`10^{-6}` in float64 (:math:`2 \cdot 10^{-10}` relative);
    :math:`10^{-3}` in float32 for probabilities and log-probabilities
    (:math:`1.2 \cdot 10^{-4}`) and :math:`10^{-4}` for logits (:math:`1.2 \cdot 10^{-3}`,
    so that the well-fitted tokens of a distillation run are not recomputed).
    Identical rows (0) and negative rounding are always recomputed.
    """
    if dtype == torch.float64:
        return 1e-6
    return 1e-4 if form == "logits" else 1e-3


def _refine_near_equal(spec: Spec, chunk: Sequence[Tensor], values: Tensor) -> Tensor:
    """Rows of a divergence below :func:`near_equal_below`, recomputed by the reference in float64.

    ``chunk`` holds the block's inputs as given (logits, not their float32
    ``log_softmax``, so that nothing rounded enters the recomputation). On the CPU only.
    """
    if spec.measure not in _DIVERGENCES or spec.exact_only:
        return values
    small = values < near_equal_below(values.dtype, spec.form)
    if not bool(small.any()):
        return values
    rows = small.nonzero().squeeze(-1)
    refined = reference_nats(spec, [x.index_select(0, rows).double() for x in chunk])
    return values.index_copy(0, rows, refined.to(values.dtype))


# --- Log space: a = log p, b = log q, as given or from logits ------------------------------------
#
# Each kernel returns (values, [gradient w.r.t. a, gradient w.r.t. b], p, q or None). The fast
# variants assume every entry finite; the exact ones follow kldiv.discrete._terms term by term.


def _kl_log(a: Tensor, b: Tensor, need_a: bool, need_b: bool, exact: bool, out=_NO_OUT):
    if not exact:
        p = torch.exp(a, out=out.buffer(0))
        diff = torch.sub(a, b, out=out.buffer(1))
        values = torch.linalg.vecdot(p, diff, out=out.values)
        g_a = torch.add(diff, 1.0, out=out.grads[0]).mul_(p) if need_a else None
        g_b = torch.neg(p, out=out.grads[1]) if need_b else None
        return values, [g_a, g_b], p, None
    p = torch.exp(a)
    a_none, b_none = a == -_INF, b == -_INF
    pinned = b_none & ~a_none
    diff = torch.where(a_none, 0.0, a) - torch.where(b_none, 0.0, b)
    values = (p * diff).masked_fill_(pinned, _INF).sum(-1)
    g_a = diff.add_(1.0).mul_(p).masked_fill_(pinned, 0.0) if need_a else None
    g_b = p.neg().masked_fill_(b_none, 0.0) if need_b else None
    return values, [g_a, g_b], p, None


def _cross_entropy_log(a: Tensor, b: Tensor, need_a: bool, need_b: bool, exact: bool, out=_NO_OUT):
    p = torch.exp(a)
    if not exact:
        terms = p * b
        g_a = terms.neg() if need_a else None
        return terms.sum(-1).neg_(), [g_a, p.neg() if need_b else None], p, None
    b_none = b == -_INF
    pinned = b_none & (a != -_INF)
    terms = (p * torch.where(b_none, 0.0, b)).neg_()
    g_a = terms.masked_fill(pinned, 0.0) if need_a else None
    g_b = p.neg().masked_fill_(b_none, 0.0) if need_b else None
    return terms.masked_fill_(pinned, _INF).sum(-1), [g_a, g_b], p, None


def _entropy_log(a: Tensor, b: None, need_a: bool, need_b: bool, exact: bool, out=_NO_OUT):
    p = torch.exp(a)
    safe = torch.where(a == -_INF, 0.0, a) if exact else a
    values = torch.linalg.vecdot(p, safe).neg_()
    g_a = (safe + 1.0).mul_(p).neg_() if need_a else None
    return values, [g_a, None], p, None


def _js_log(
    a: Tensor, b: Tensor, need_a: bool, need_b: bool, exact: bool, beta: float, out=_NO_OUT
) -> tuple[Tensor, list, Tensor, Tensor]:
    """JS_β with ``log m = logaddexp(a + log β, b + log(1-β))``; gradients β p (a - log m), …."""
    if beta in (0.0, 1.0):
        values = torch.zeros(a.shape[:-1], dtype=a.dtype, device=a.device)
        grads = [torch.zeros_like(x) if need else None for x, need in ((a, need_a), (b, need_b))]
        return values, grads, torch.exp(a), torch.exp(b)
    if exact:
        neither = (a == -_INF) & (b == -_INF)
        a, b = torch.where(neither, 0.0, a), torch.where(neither, 0.0, b)
    log_m = torch.logaddexp(a + math.log(beta), b + math.log1p(-beta))
    p, q = torch.exp(a), torch.exp(b)
    a_part, b_part = a - log_m, b - log_m
    if exact:
        p.masked_fill_(neither, 0.0)
        q.masked_fill_(neither, 0.0)
        a_part.masked_fill_(p == 0, 0.0)
        b_part.masked_fill_(q == 0, 0.0)
    values = torch.linalg.vecdot(p, a_part).mul_(beta)
    values.add_(torch.linalg.vecdot(q, b_part), alpha=1.0 - beta)
    g_a = a_part.mul_(p).mul_(beta) if need_a else None
    g_b = b_part.mul_(q).mul_(1.0 - beta) if need_b else None
    return values, [g_a, g_b], p, q


_LOG_KERNELS: dict[str, Callable] = {
    "kl": _kl_log,
    "cross_entropy": _cross_entropy_log,
    "entropy": _entropy_log,
    "js": _js_log,
}


def _log_space(
    spec: Spec, a: Tensor, b: Tensor | None, need_a: bool, need_b: bool, out: _BlockOut = _NO_OUT
):
    """The kernel of ``spec.measure``: fast where its values come out finite, else exact.

    ``out`` is offered to the fast formulas only (the exact ones allocate).

    Returns:
        ``(values, [g_a, g_b], p, q or None, exact)``.
    """
    kernel = _LOG_KERNELS[spec.measure]
    extra = (spec.beta,) if spec.measure == "js" else ()
    if not spec.exact_only:
        result = kernel(a, b, need_a, need_b, False, *extra, out=out)
        if _fast_values_stand(spec, result[0]):
            return (*result, False)
    return (*kernel(a, b, need_a, need_b, True, *extra), True)


def _pair(chunk: list[Tensor], needs: Sequence[bool]) -> tuple[Tensor, Tensor | None, bool, bool]:
    two = len(chunk) > 1
    return chunk[0], chunk[1] if two else None, needs[0], two and needs[1]


def _log_probs_block(spec: Spec, chunk: list[Tensor], needs: Sequence[bool], out: _BlockOut):
    a, b, need_a, need_b = _pair(chunk, needs)
    values, grads, p, q, exact = _log_space(spec, a, b, need_a, need_b, out)
    if not spec.validate:
        if exact:
            values = _refine_near_equal(spec, chunk, values)
        return values, grads[: len(chunk)], None
    total_p = p.sum(-1)
    off = _row_sum_off(total_p, spec.tolerance)
    if b is not None:
        if spec.measure == "kl":  # q itself, for the reference's Σ(q - p), term by term
            q = torch.exp(b, out=out.buffer(1))
            values = _with_mass_difference(values, p, q)
        total_q = q.sum(-1) if q is not None else _sum_of_exp(b)
        off |= _row_sum_off(total_q, spec.tolerance)
    if exact:
        values = _refine_near_equal(spec, chunk, values)
        off |= torch.isnan(values)
    return values, grads[: len(chunk)], off


def _with_mass_difference(values: Tensor, p: Tensor, q: Tensor) -> Tensor:
    r"""KL plus :math:`\sum_i (q_i - p_i)`, as the reference sums :math:`p \log(p/q) - p + q`.

    The difference is formed term by term (two separate sums near 1 would add
    their own rounding, ~1e-7 in float32, to a divergence that may be small).
    The same number as the textbook sum for normalised rows, up to rounding;
    added where validation reads the inputs anyway. With ``validate=False`` the
    textbook sum stands: its gradients (``-p/q``, ``log(p/q) + 1``, the
    reference's too) are then those of the value also off the simplex, where
    ``gradcheck`` perturbs, and unnormalised rows differ from the reference by
    :math:`\sum q - \sum p`.
    """
    mass = torch.sub(q, p).sum(-1)
    return values.add_(mass) if values.is_contiguous() else values + mass


def _sum_of_exp(b: Tensor) -> Tensor:
    r"""Row sums :math:`\sum_i e^{b_i}` as :math:`\exp(\max b - \max \operatorname{lsm}(b))`.

    ``log_softmax`` fuses its exponentials into the reduction (about 0.6 ns per
    entry here, against 1.1 for ``exp`` and a sum); at the row maximum it equals
    ``-log Σ e^(b - max b)``. NaN, +inf and rows without mass give NaN.
    """
    return (b.amax(-1) - torch.log_softmax(b, -1).amax(-1)).exp_()


def _softmax_backward(g_a: Tensor, p: Tensor) -> Tensor:
    """``g_a - p Σ g_a``: the gradient w.r.t. ``z·scale`` of ``a = log_softmax(z·scale)``.

    The factor ``scale`` of the chain rule is applied by :meth:`_RowMeasure.backward`
    together with the upstream gradient (one pass fewer over the block).
    """
    return g_a.addcmul_(p, g_a.sum(-1, keepdim=True), value=-1.0)


def _log_softmax(z: Tensor, scale: float) -> Tensor:
    return torch.log_softmax(z if scale == 1.0 else z * scale, dim=-1)


def _kl_logits_fast(spec: Spec, zp: Tensor, zq: Tensor, need_p: bool, need_q: bool, out: _BlockOut):
    r"""Forward KL from logits with ∂/∂z_p ∝ p (a - b - D) and ∂/∂z_q ∝ q - p, or None.

    The logits are shifted, then scaled, :math:`z' = (z - \max z)\,/\,T`, so
    :math:`\max z' = 0` and the largest softmax entry is :math:`1/\sum_i e^{z'_i}`:

    .. math::

        a - b = z'_p - z'_q + \log \frac{\max p}{\max q}.

    The two ``softmax`` passes the gradients need thus give the normalisers too
    (no ``log_softmax`` pass), and :math:`z'` is more exact than the reference's
    ``log_softmax(z / T)``, which rounds ``z / T`` before subtracting the maximum.
    The gradients are w.r.t. ``z / T`` (backward applies ``1/T``); the
    temporaries are ``out``'s scratch buffers and the results land in its outputs.
    """
    # z - max z first (exact near the max), then the scale: ``shift + z·scale`` in one
    # pass would round z·scale first and lose digits to the cancellation.
    zp = torch.sub(zp, zp.amax(-1, keepdim=True), out=out.buffer(0))
    zq = torch.sub(zq, zq.amax(-1, keepdim=True), out=out.buffer(1))
    if spec.scale != 1.0:
        zp, zq = zp.mul_(spec.scale), zq.mul_(spec.scale)
    p = torch.softmax(zp, -1, out=out.buffer(2))
    q = torch.softmax(zq, -1, out=out.grads[1] if need_q else out.buffer(3))
    log_ratio = torch.log(p.amax(-1, keepdim=True).div_(q.amax(-1, keepdim=True)))
    diff = torch.sub(zp, zq, out=out.buffer(3)).add_(log_ratio)
    values = torch.linalg.vecdot(p, diff, out=out.values)
    if not _fast_values_stand(spec, values):
        return None
    g_p = torch.sub(diff, values.unsqueeze(-1), out=out.grads[0]).mul_(p) if need_p else None
    return values, [g_p, q.sub_(p) if need_q else None], None


def _logits_block(spec: Spec, chunk: list[Tensor], needs: Sequence[bool], out: _BlockOut):
    if spec.measure == "kl" and not spec.exact_only:
        result = _kl_logits_fast(spec, chunk[0], chunk[1], *needs, out)
        if result is not None:
            return result
    logs = [_log_softmax(z, spec.scale) for z in chunk]
    a, b, need_a, need_b = _pair(logs, needs)
    values, grads, p, q, exact = _log_space(spec, a, b, need_a, need_b)
    if exact:
        values = _refine_near_equal(spec, chunk, values)
    out: list[Tensor | None] = [None] * len(chunk)
    if need_a:
        out[0] = _softmax_backward(grads[0], p)
    if need_b:
        out[1] = _softmax_backward(grads[1], q if q is not None else torch.exp(b))
    # Bad logits (NaN, +inf, a row without a finite entry) make NaN values, never finite ones.
    return values, out, torch.isnan(values) if exact and spec.validate else None


# --- Probability space ---------------------------------------------------------------------------


def _log_or_zero(x: Tensor) -> tuple[Tensor, Tensor]:
    """``log x`` with 0 where ``x = 0`` (the reference's safe log), and the zero mask."""
    zero = x == 0
    return torch.log(torch.where(zero, 1.0, x)), zero


def _minus_ratio(p: Tensor, q: Tensor, q_zero: Tensor) -> Tensor:
    """``-p / q``, 0 where ``q = 0``: the gradient of ``-p log q`` w.r.t. ``q``."""
    return (p / torch.where(q_zero, 1.0, q)).neg_().masked_fill_(q_zero, 0.0)


def _kl_probs(p: Tensor, q: Tensor, need_p: bool, need_q: bool, exact: bool, out=_NO_OUT):
    if not exact:
        # log(p / q + tiny): p = 0 gives 0 · log(tiny) = 0 without a mask, a negative p or
        # q (beyond -tiny) still gives NaN, and the shift changes p log(p/q) only where
        # p/q < tiny / eps, by less than p · eps. q = 0 < p gives +inf (an exact block).
        ratio = torch.div(p, q, out=out.buffer(0)).add_(_tiny(p.dtype)).log_()
        return torch.linalg.vecdot(p, ratio, out=out.values), [None, None]
    log_p, p_zero = _log_or_zero(p)
    log_q, q_zero = _log_or_zero(q)
    pinned = q_zero & ~p_zero
    log_ratio = log_p - log_q
    values = (p * log_ratio).masked_fill_(pinned, _INF).sum(-1)
    g_p = log_ratio.add_((~p_zero).to(p.dtype)).masked_fill_(pinned, 0.0) if need_p else None
    return values, [g_p, _minus_ratio(p, q, q_zero) if need_q else None]


def _cross_entropy_probs(
    p: Tensor, q: Tensor, need_p: bool, need_q: bool, exact: bool, out=_NO_OUT
):
    if not exact:
        return torch.linalg.vecdot(p, torch.log(q)).neg_(), [None, None]
    log_q, q_zero = _log_or_zero(q)
    pinned = q_zero & (p != 0)
    values = (p * log_q).neg_().masked_fill_(pinned, _INF).sum(-1)
    g_p = log_q.neg_().masked_fill_(pinned, 0.0) if need_p else None
    return values, [g_p, _minus_ratio(p, q, q_zero) if need_q else None]


def _entropy_probs(p: Tensor, q: None, need_p: bool, need_q: bool, exact: bool, out=_NO_OUT):
    if not exact:  # p log(p + tiny): 0 where p = 0 without a mask; NaN where p < 0
        log_p = torch.add(p, _tiny(p.dtype), out=out.buffer(0)).log_()
        return torch.linalg.vecdot(p, log_p, out=out.values).neg_(), [None, None]
    log_p, p_zero = _log_or_zero(p)
    values = torch.linalg.vecdot(p, log_p).neg_()
    g_p = log_p.add_((~p_zero).to(p.dtype)).neg_() if need_p else None
    return values, [g_p, None]


def _generalized_kl_probs(
    p: Tensor, q: Tensor, need_p: bool, need_q: bool, exact: bool, out=_NO_OUT
):
    values, (g_p, g_q) = _kl_probs(p, q, need_p, need_q, exact=True)
    values = values + (q.sum(-1) - p.sum(-1))
    return values, [None if g_p is None else g_p.sub_(1.0), None if g_q is None else g_q.add_(1.0)]


@functools.lru_cache(maxsize=8)
def _tiny(dtype: torch.dtype) -> float:
    """The smallest positive normal number of ``dtype``."""
    return torch.finfo(dtype).tiny


def _log_of_probs(p: Tensor) -> Tensor:
    """``log p`` with ``-inf`` where ``p = 0`` (and a zero gradient there)."""
    log_p, zero = _log_or_zero(p)
    return log_p.masked_fill_(zero, -_INF)


def _js_probs(spec: Spec, p: Tensor, q: Tensor, need_p: bool, need_q: bool):
    """JS from probabilities through log space; ∂/∂p = ∂/∂(log p) / p, 0 where p = 0."""
    values, grads, _, _, exact = _log_space(
        spec, _log_of_probs(p), _log_of_probs(q), need_p, need_q
    )
    out = [
        None if g is None else g.div_(torch.where(x == 0, 1.0, x)).masked_fill_(x == 0, 0.0)
        for g, x in zip(grads, (p, q), strict=True)
    ]
    return values, out, exact


_PROBS_KERNELS: dict[str, Callable] = {
    "kl": _kl_probs,
    "cross_entropy": _cross_entropy_probs,
    "entropy": _entropy_probs,
    "generalized_kl": _generalized_kl_probs,
}


def _probs_values(spec: Spec, chunk: list[Tensor], needs: Sequence[bool], out: _BlockOut):
    p, q, need_p, need_q = _pair(chunk, needs)
    if spec.measure == "js":
        return _js_probs(spec, p, q, need_p, need_q)
    kernel = _PROBS_KERNELS[spec.measure]
    if not (spec.exact_only or need_p or need_q or spec.measure == "generalized_kl"):
        values, grads = kernel(p, q, False, False, False, out=out)
        if _fast_values_stand(spec, values):
            return values, grads, False
    values, grads = kernel(p, q, need_p, need_q, True)
    return values, grads, True


def _probs_block(spec: Spec, chunk: list[Tensor], needs: Sequence[bool], out: _BlockOut):
    values, grads, exact = _probs_values(spec, chunk, needs, out)
    grads = grads[: len(chunk)]
    if not spec.validate:
        if exact:
            values = _refine_near_equal(spec, chunk, values)
        return values, grads, None
    # Entries: finite and >= 0 (a NaN fails >= 0); rows: summing to 1 (measures, finite).
    # A negative q in cross-entropy's fast p log q shows as NaN and needs no minimum; the
    # other fast formulas can hide a negative entry (one in (-tiny, 0) under log(x + tiny),
    # a negative q where p = 0 in KL), so their inputs all get one.
    checked = chunk[:1] if spec.measure == "cross_entropy" and not exact else chunk
    off = torch.stack([x.amin() for x in checked]).amin().ge(0).logical_not_()
    for total in (x.sum(-1) for x in chunk):
        if spec.measure == "generalized_kl":
            off = off | ~torch.isfinite(total)
        else:
            off = off | _row_sum_off(total, spec.tolerance)
    if spec.measure == "kl":
        values = _with_mass_difference(values, chunk[0], chunk[1])
    if exact:
        values = _refine_near_equal(spec, chunk, values)
        off = off | torch.isnan(values)
    return values, grads, off


_BLOCKS: dict[tuple[str, str], Callable] = {
    **{(m, "probs"): _probs_block for m in MEASURES},
    **{(m, "log_probs"): _log_probs_block for m in ("kl", "js", "entropy", "cross_entropy")},
    **{(m, "logits"): _logits_block for m in ("kl", "js", "entropy", "cross_entropy")},
}
