"""Memory-saving distillation: the loss and its gradient computed chunk by chunk.

A plain autograd graph of a distillation loss over ``N`` tokens and a
vocabulary of ``V`` keeps several ``N × V`` intermediates alive until the
backward pass (log-softmaxes, their exponentials, products): about five times
the logits. Here the forward pass walks over chunks of rows; for each chunk it
computes the per-token losses *and* their gradient with respect to that
chunk's logits (float32 math for half inputs), keeps the gradient and drops
everything else. The backward pass only scales the stored gradient. Peak extra
memory: one logits-sized gradient plus one chunk's intermediates.

:class:`FusedLinearDistillationLoss` goes further: it takes hidden states and
the lm_head weight and forms each chunk's logits itself, so no ``N × V``
tensor exists at all; it returns the gradients of the hidden states, the
weight and the bias.

The per-token losses and gradients come from :mod:`kldiv.torch._distill_kernels`
(a few in-place ATen calls per cache-sized chunk on the CPU, the reference
kernel elsewhere and for rows with non-finite logits, autograd on the chunk
for a top-k teacher). With ``"mean"`` or ``"sum"`` each token's weight
(mask, T², denominator) is folded into its gradient in the forward pass, so
the backward pass costs nothing when ``loss.backward()`` passes 1. Chunking
changes where the maths runs, never what it computes: tests compare every
path with the plain formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import partial

import torch
from torch import nn

from kldiv._array_api import is_traced
from kldiv._validation import resolve_validate
from kldiv.errors import KLDivError
from kldiv.torch._distill_kernels import (
    Divergence,
    Workspace,
    check_inputs,
    check_teacher_shape,
    compute_dtype,
    rows_into,
)
from kldiv.torch._reduction import (
    check_ignore_index,
    check_reduction,
    item_weights,
    mask_from_labels,
    weighted_total,
)
from kldiv.torch._teachers import TeacherHead, TopKTeacher, flatten_teacher, teacher_rows

__all__ = [
    "CHUNKING_MIN_ELEMENTS",
    "FusedLinearDistillationLoss",
    "auto_chunk_rows",
    "check_chunk_size",
    "chunked_per_token",
    "chunked_total",
]

CHUNKING_MIN_ELEMENTS = 1 << 22
"""``chunk_size="auto"`` chunks logits of at least this many elements (16 MiB of float32)."""

LOGITS_CHUNK_BYTES = 2 << 20
"""Float32 bytes of one chunk's logits on the logits path: cache-sized (1-2 MiB ran fastest,
with the kernel's four or five row-sized buffers beside it)."""

FUSED_CHUNK_BYTES = 128 << 20
"""Float32 bytes of one chunk's logits on the fused path (1048 rows at V = 32000): the GEMMs
need hundreds of rows, and the weight's gradient is read and written once per chunk. At
N = 4096, d = 2048, 2097-row chunks ran as fast on the minima (a few percent faster on some
medians of a shared machine) but took 20.3% of the plain graph's extra peak instead of ~16%."""

FUSED_KERNEL_BYTES = 8 << 20
"""Float32 bytes of the sub-chunks in which the fused path computes the divergence (64 rows
at V = 32000): larger than the logits path's, because the divergence is a few percent of the
fused path's time and four times fewer OpenMP regions keep a shared CPU from stalling at each."""

FUSED_MIN_ROWS = 256
"""Fewest rows of a fused chunk: below that the GEMMs lose most of their speed."""

Check = Callable[[], None] | None


def check_chunk_size(chunk_size: object) -> int | str | None:
    """``None``, ``"auto"`` or a positive number of rows."""
    if chunk_size is None or chunk_size == "auto":
        return chunk_size  # type: ignore[return-value]
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise KLDivError(
            f"`chunk_size` must be None, 'auto' or a positive number of rows; got {chunk_size!r}"
        )
    return chunk_size


def _available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def auto_chunk_rows(
    vocabulary: int,
    *,
    target_bytes: int = LOGITS_CHUNK_BYTES,
    minimum: int = 1,
    device: torch.device | None = None,
) -> int:
    """Rows per chunk whose float32 logits take about ``target_bytes``.

    Capped so that a chunk's intermediates (about eight logits-sized float32
    tensors) fit in a tenth of the memory available on ``device``.

    Examples:
        >>> auto_chunk_rows(32000)
        16
        >>> auto_chunk_rows(128256, target_bytes=32 << 20, minimum=256)
        256
    """
    row_bytes = 4 * max(1, vocabulary)
    rows = max(minimum, target_bytes // row_bytes)
    available = _available_bytes(device or torch.device("cpu"))
    if available is not None:
        rows = min(rows, max(minimum, available // (10 * 8 * row_bytes)))
    return max(1, rows)


def _spans(rows: int, chunk_rows: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each chunk of ``chunk_rows`` rows (the last may be shorter)."""
    for start in range(0, rows, chunk_rows):
        yield start, min(start + chunk_rows, rows)


def _backward_once(ctx, what: str) -> None:
    """Gradients stored in the forward pass are scaled in place: a second backward would lie."""
    if ctx.used:
        raise RuntimeError(
            f"kldiv's {what} stores its gradients once and scales them in place; "
            "it cannot be backpropagated twice"
        )
    ctx.used = True


def _scale_in_place(gradient: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``gradient *= factor`` (a scalar tensor); a no-op when it is exactly 1 on the CPU.

    ``loss.backward()`` passes 1: skipping saves a pass over the whole gradient.
    Elsewhere the multiplication runs anyway, since reading the factor would
    synchronise with the device.
    """
    if factor.device.type == "cpu" and factor.item() == 1.0:
        return gradient
    return gradient.mul_(factor.to(gradient.dtype))


def _losses_and_gradient(
    student: torch.Tensor,
    teacher: torch.Tensor | TopKTeacher,
    out: torch.Tensor,
    losses: torch.Tensor,
    weights: torch.Tensor | None,
    divergence: Divergence,
    workspace: Workspace,
    chunk_rows: int,
) -> None:
    """Per-token losses into ``losses`` and ``weights ⊙ ∂loss/∂student`` into ``out``, by chunks.

    ``out`` may be ``student`` itself (the fused path turns its logits into their gradient).
    """
    for start, stop in _spans(student.shape[0], chunk_rows):
        values = rows_into(
            student[start:stop],
            teacher_rows(teacher, start, stop),
            out[start:stop],
            divergence,
            workspace,
            None if weights is None else weights[start:stop, None],
        )
        losses[start:stop].copy_(values)


class _ChunkedLogits(torch.autograd.Function):
    """Per-token losses, or their weighted sum, with the gradient computed in the forward pass."""

    @staticmethod
    def forward(
        ctx,
        student: torch.Tensor,
        teacher,
        divergence: Divergence,
        weights: torch.Tensor | None,
        chunk_rows: int,
        check: Check,
    ):
        rows, vocabulary = student.shape
        dtype = compute_dtype(student.dtype)
        losses = torch.empty(rows, dtype=dtype, device=student.device)
        gradient = torch.empty_like(student)
        workspace = Workspace(min(chunk_rows, rows), vocabulary, dtype, student.device, check)
        _losses_and_gradient(
            student, teacher, gradient, losses, weights, divergence, workspace, chunk_rows
        )
        ctx.save_for_backward(gradient)
        ctx.per_token = weights is None
        ctx.used = False
        return losses if weights is None else weighted_total(losses, weights)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        _backward_once(ctx, "chunked distillation (use chunk_size=None with retain_graph)")
        (gradient,) = ctx.saved_tensors
        if ctx.per_token:
            gradient.mul_(grad_output.to(gradient.dtype)[:, None])
        else:
            _scale_in_place(gradient, grad_output)
        return gradient, None, None, None, None, None


def chunked_per_token(
    divergence: Divergence,
    student_logits: torch.Tensor,
    teacher: torch.Tensor | TopKTeacher,
    *,
    chunk_rows: int,
    check: Check = None,
) -> torch.Tensor:
    """Per-token losses whose backward costs the memory of one logits-sized gradient.

    Args:
        divergence: what to compute per token.
        student_logits: ``[..., V]``; the gradient flows to it.
        teacher: dense ``[..., V]`` (no gradient) or a :class:`TopKTeacher` ``[..., k]``.
        chunk_rows: rows (tokens) per chunk.
        check: the value checks of the whole batch (see :class:`Workspace`), or None.

    Returns:
        The per-token losses, ``student_logits.shape[:-1]``.
    """
    batch_shape = student_logits.shape[:-1]
    flat_student = student_logits.reshape(-1, student_logits.shape[-1])
    flat_teacher = flatten_teacher(teacher)
    losses = _ChunkedLogits.apply(flat_student, flat_teacher, divergence, None, chunk_rows, check)
    return losses.reshape(batch_shape)


def chunked_total(
    divergence: Divergence,
    student_logits: torch.Tensor,
    teacher: torch.Tensor | TopKTeacher,
    weights: torch.Tensor,
    *,
    chunk_rows: int,
    check: Check = None,
) -> torch.Tensor:
    """``Σ_i w_i ℓ_i`` over tokens, its gradient (weights folded in) computed chunk by chunk.

    Args:
        divergence: what to compute per token.
        student_logits: ``[..., V]``; the gradient flows to it.
        teacher: dense ``[..., V]`` (no gradient) or a :class:`TopKTeacher` ``[..., k]``.
        weights: each token's factor, flat (see :func:`item_weights`).
        chunk_rows: rows (tokens) per chunk.
        check: the value checks of the whole batch (see :class:`Workspace`), or None.

    Returns:
        The weighted total, a scalar in the compute dtype.
    """
    flat_student = student_logits.reshape(-1, student_logits.shape[-1])
    flat_teacher = flatten_teacher(teacher)
    return _ChunkedLogits.apply(flat_student, flat_teacher, divergence, weights, chunk_rows, check)


def _linear_into(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor
) -> torch.Tensor:
    """``h @ weightᵀ + bias`` written into ``out``."""
    if bias is None:
        return torch.mm(h, weight.T, out=out)
    return torch.addmm(bias, h, weight.T, out=out)


def _matmul_into(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    """``a @ b`` written into ``out``, whose dtype may be narrower."""
    if out.dtype == a.dtype:
        torch.mm(a, b, out=out)
    else:
        out.copy_(a @ b)


class _LinearGradients:
    """The gradients of the hidden states, weight and bias, filled chunk by chunk.

    Each chunk adds ``G`` (the gradient of its logits ``h @ Wᵀ + b``): ``G @ W``
    into its rows of the hidden states' gradient, ``Gᵀ @ h`` into the weight's
    (the first chunk writes it, the others ``addmm_``), ``Σ_rows G`` into the bias's.
    """

    def __init__(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        needs: tuple[bool, ...],
    ) -> None:
        self.hidden = torch.empty_like(hidden) if needs[0] else None
        self.weight = torch.empty_like(weight) if needs[1] else None
        self.bias = torch.zeros_like(bias) if bias is not None and needs[2] else None
        self._weight_written = False

    def add(
        self, grad_logits: torch.Tensor, h: torch.Tensor, weight: torch.Tensor, rows: slice
    ) -> None:
        """Adds one chunk: its logits' gradient, its hidden states, the (compute-dtype) weight."""
        if self.hidden is not None:
            _matmul_into(grad_logits, weight, self.hidden[rows])
        if self.weight is not None:
            if self._weight_written:
                self.weight.addmm_(grad_logits.T, h)
            else:
                torch.mm(grad_logits.T, h, out=self.weight)
                self._weight_written = True
        if self.bias is not None:
            self.bias += grad_logits.sum(0)

    def result(self) -> tuple[torch.Tensor | None, ...]:
        """``(hidden, weight, bias)`` gradients (None where not needed)."""
        if self.weight is not None and not self._weight_written:
            self.weight.zero_()  # no chunk: an empty batch
        return self.hidden, self.weight, self.bias


class _FusedLinear(torch.autograd.Function):
    """Σ_i w_i ℓ_i over tokens whose logits are hidden @ Wᵀ + b, formed chunk by chunk.

    Each chunk's logits are formed in one reused buffer, turned in place into
    their weighted gradient (cache-sized sub-chunks at a time), and multiplied
    into the gradients of the hidden states (their rows) and of the weight
    (accumulated with ``addmm_``): three GEMMs per chunk, as the plain graph.
    """

    @staticmethod
    def forward(
        ctx,
        hidden,
        weight,
        bias,
        teacher,
        divergence: Divergence,
        weights: torch.Tensor,
        chunk_rows: int,
        check: Check,
    ):
        dtype = compute_dtype(hidden.dtype)
        w = weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        rows, vocabulary = hidden.shape[0], w.shape[0]
        gradients = _LinearGradients(hidden, w, b, ctx.needs_input_grad)
        logits = torch.empty(min(chunk_rows, rows), vocabulary, dtype=dtype, device=hidden.device)
        teacher_buffer = torch.empty_like(logits) if isinstance(teacher, TeacherHead) else None
        kernel_rows = auto_chunk_rows(
            vocabulary, target_bytes=FUSED_KERNEL_BYTES, device=hidden.device
        )
        kernel_rows = min(kernel_rows, logits.shape[0])
        workspace = Workspace(kernel_rows, vocabulary, dtype, hidden.device, check)
        losses = torch.empty(rows, dtype=dtype, device=hidden.device)
        for start, stop in _spans(rows, chunk_rows):
            h = hidden[start:stop].to(dtype)
            z = _linear_into(h, w, b, logits[: stop - start])
            _losses_and_gradient(
                z,
                teacher_rows(teacher, start, stop, out=teacher_buffer),
                z,
                losses[start:stop],
                weights[start:stop],
                divergence,
                workspace,
                kernel_rows,
            )
            gradients.add(z, h, w, slice(start, stop))
        ctx.save_for_backward(*gradients.result())
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        ctx.used = False
        return weighted_total(losses, weights)

    @staticmethod
    def backward(ctx, grad_total: torch.Tensor):
        _backward_once(ctx, "fused distillation")
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors

        def scaled(gradient, dtype=None):
            if gradient is None:
                return None
            gradient = _scale_in_place(gradient, grad_total)  # in place: no second copy
            return gradient if dtype is None else gradient.to(dtype)

        return (
            scaled(grad_hidden),
            scaled(grad_weight, ctx.dtypes[0]),
            scaled(grad_bias, ctx.dtypes[1]),
            None,
            None,
            None,
            None,
            None,
        )


class FusedLinearDistillationLoss(nn.Module):
    r"""Distillation from hidden states and the lm_head, without the N × V logits.

    .. math::

        z_s = H W^\top + b, \qquad
        \mathcal{L} = \frac{T^2}{N_\text{counted}} \sum_{i \text{ counted}} D(z_{t,i}, z_{s,i})

    with ``D`` the divergence of :class:`DistillationLoss` (forward, reverse or
    generalized JSD, at temperature T). The student's logits are formed chunk
    by chunk of tokens from ``hidden`` ``(B, T, d)`` or ``(N, d)`` and
    ``weight`` ``(V, d)``; each chunk's loss and its gradients with respect to
    the hidden states, the weight and the bias are computed at once, in
    float32 for half-precision inputs, and the chunk's logits are dropped.
    Gradients are exact (tested against the plain formula in float64).

    The teacher may be dense logits ``(..., V)``, a :class:`TopKTeacher`, or a
    :class:`TeacherHead` (its hidden states and lm_head: its logits are also
    formed chunk by chunk; it gets no gradient).

    Args:
        temperature: the softmax temperature T (> 0).
        direction: ``"forward"``, ``"reverse"`` or ``"jsd"``.
        beta: the teacher's weight in the ``"jsd"`` mixture.
        ignore_index: the label of tokens that do not count.
        reduction: ``"mean"`` (over counted tokens, or ``num_items``) or ``"sum"``.
        scale_by_temperature_squared: multiply by :math:`T^2`.
        chunk_size: tokens per chunk; ``"auto"`` sizes a chunk's float32 logits
            at about 128 MiB and at least 256 rows (smaller chunks starve the GEMMs).
        validate: the value checks, as :class:`DistillationLoss`'s (None: the
            global default): NaN or infinite ``hidden``, ``weight`` or ``bias``
            and a bad teacher raise a :class:`~kldiv.KLDivError` naming the
            argument, once per call; on the CPU they run only if some chunk's
            loss is not finite (finite losses prove finite logits). A NaN loss
            from finite inputs (logits that overflow) is raised too (the loss
            is read: one host synchronisation off the CPU).

    Examples:
        >>> import torch
        >>> from kldiv.torch import FusedLinearDistillationLoss
        >>> loss = FusedLinearDistillationLoss(temperature=2.0)
        >>> hidden = torch.randn(2, 3, 8, requires_grad=True)
        >>> weight = torch.randn(11, 8, requires_grad=True)
        >>> labels = torch.tensor([[1, 2, -100]] * 2)
        >>> value = loss(hidden, weight, torch.randn(2, 3, 11), labels)
        >>> value.backward()
        >>> hidden.grad.shape, weight.grad.shape
        (torch.Size([2, 3, 8]), torch.Size([11, 8]))
    """

    def __init__(
        self,
        *,
        temperature: float = 1.0,
        direction: str = "forward",
        beta: float = 0.5,
        ignore_index: int = -100,
        reduction: str = "mean",
        scale_by_temperature_squared: bool = True,
        chunk_size: int | str = "auto",
        validate: bool | None = None,
    ) -> None:
        super().__init__()
        self.divergence = Divergence(direction, temperature, beta)
        self.ignore_index = check_ignore_index(ignore_index)
        if check_reduction(reduction) == "none":
            raise KLDivError(
                "`reduction` must be 'mean' or 'sum' for the fused loss (its gradients are "
                "accumulated in the forward pass); got 'none'"
            )
        if check_chunk_size(chunk_size) is None:
            raise KLDivError("`chunk_size` must be 'auto' or a positive number of rows; got None")
        self.reduction = reduction
        self.scale = self.divergence.temperature**2 if scale_by_temperature_squared else 1.0
        self.chunk_size = chunk_size
        self.validate = resolve_validate(validate) if validate is not None else None

    def forward(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        teacher: torch.Tensor | TopKTeacher | TeacherHead,
        labels: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        num_items: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """The distillation loss of one batch, from the student's hidden states.

        Args:
            hidden: the student's last hidden states, ``[..., d]`` (e.g. ``(B, T, d)``).
            weight: the student's lm_head weight, ``[V, d]``.
            teacher: dense logits ``[..., V]``, a :class:`TopKTeacher` ``[..., k]``
                or a :class:`TeacherHead`.
            labels: ``[...]`` token labels; ``ignore_index`` marks tokens that do not count.
            bias: the student's lm_head bias ``[V]``, or None.
            num_items: the denominator of ``"mean"`` (see :func:`count_items`).

        Returns:
            The loss, a scalar.
        """
        batch_shape = hidden.shape[:-1]
        if weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
            raise KLDivError(
                f"`weight` must be [V, d] with d = {hidden.shape[-1]} (the hidden size); "
                f"got {tuple(weight.shape)}"
            )
        vocabulary = weight.shape[0]
        mask = mask_from_labels(labels, self.ignore_index, batch_shape)
        flat_hidden = hidden.reshape(-1, hidden.shape[-1])
        rows = flat_hidden.shape[0]
        flat_teacher = _flatten_teacher(teacher, rows, vocabulary, tuple(weight.shape))
        weights = item_weights(
            mask,
            rows,
            reduction=self.reduction,
            num_items=num_items,
            scale=self.scale,
            dtype=compute_dtype(hidden.dtype),
            device=hidden.device,
        )
        chunk_rows = self.chunk_size
        if chunk_rows == "auto":
            chunk_rows = auto_chunk_rows(
                vocabulary,
                target_bytes=FUSED_CHUNK_BYTES,
                minimum=FUSED_MIN_ROWS,
                device=hidden.device,
            )
        check = None
        validate = resolve_validate(self.validate)
        if validate:
            check = partial(_fused_check, flat_hidden, weight, bias, flat_teacher, vocabulary)
        total = _FusedLinear.apply(
            flat_hidden, weight, bias, flat_teacher, self.divergence, weights, chunk_rows, check
        )
        if validate and not is_traced(total) and math.isnan(total.detach().item()):
            raise KLDivError(
                "the fused loss is NaN with finite inputs: the student's logits "
                "`hidden` @ `weight`ᵀ + `bias` overflow their dtype "
                f"({compute_dtype(hidden.dtype)}); scale the inputs down or compute in float64"
            )
        return total

    def extra_repr(self) -> str:
        return (
            f"{self.divergence.describe()}, ignore_index={self.ignore_index}, "
            f"reduction={self.reduction!r}, scale={self.scale:g}, chunk_size={self.chunk_size!r}"
        )


def _flatten_teacher(teacher, rows: int, vocabulary: int, weight_shape: tuple = ()):
    """:func:`flatten_teacher`, checked against the student's tokens and vocabulary."""
    if isinstance(teacher, TeacherHead):
        flat = flatten_teacher(teacher)
        teacher_vocabulary, leading = flat.weight.shape[0], flat.hidden.shape[0]
        if teacher_vocabulary != vocabulary:
            raise KLDivError(
                f"`teacher` (a TeacherHead) must have the student's vocabulary: its lm_head has "
                f"{teacher_vocabulary} rows; the student's `weight` has V = {vocabulary}"
            )
        return flat if leading == rows else _rows_mismatch(leading, rows)
    described = f"`weight` {weight_shape}, {rows} tokens in `hidden`"
    check_teacher_shape((rows, vocabulary), _flat_view(teacher), described=described)
    flat = flatten_teacher(teacher)
    leading = flat.indices.shape[0] if isinstance(flat, TopKTeacher) else flat.shape[0]
    return flat if leading == rows else _rows_mismatch(leading, rows)


def _flat_view(teacher):
    """The teacher's shape check runs on ``[tokens, ...]``: token axes flattened.

    Parts that are not tensors of matching shapes are left as they are, for
    :func:`check_teacher_shape` to name.
    """
    if isinstance(teacher, TopKTeacher):
        indices, log_probs, tail = teacher
        parts = (indices, log_probs)
        if all(isinstance(t, torch.Tensor) and t.ndim for t in parts) and (
            indices.shape == log_probs.shape
        ):
            k = indices.shape[-1]
            tail = tail.reshape(-1) if isinstance(tail, torch.Tensor) else tail
            return TopKTeacher(indices.reshape(-1, k), log_probs.reshape(-1, k), tail)
        return teacher
    if isinstance(teacher, torch.Tensor) and teacher.ndim:
        return teacher.reshape(-1, teacher.shape[-1])
    return teacher


def _check_student_parts(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> None:
    """No NaN or infinity in the student's hidden states, lm_head weight or bias."""
    for name, tensor in (("hidden", hidden), ("weight", weight), ("bias", bias)):
        if tensor is None:
            continue
        bad = ~torch.isfinite(tensor.detach())
        if bool(bad.any()):
            index = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise KLDivError(
                f"`{name}` must be finite (the student's logits are hidden @ weightᵀ + bias); "
                f"got {float(tensor.detach()[index])} at index {index}"
            )


def _fused_check(hidden, weight, bias, teacher, vocabulary: int) -> None:
    """The fused path's value checks: the student's parts, then a dense or top-k teacher."""
    _check_student_parts(hidden, weight, bias)
    if not isinstance(teacher, TeacherHead):
        check_inputs(None, teacher, vocabulary)
    else:
        _check_student_parts(teacher.hidden, teacher.weight, teacher.bias)


def _rows_mismatch(teacher_rows_count: int, rows: int):
    raise KLDivError(
        f"the teacher has {teacher_rows_count} tokens; the student's hidden states have {rows}"
    )
