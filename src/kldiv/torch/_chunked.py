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

The per-token values come from kldiv's functional core and the gradients from
:meth:`DistillationLoss.per_token_and_gradient` (analytic for a dense teacher,
autograd on the chunk for a top-k one); chunking changes where the maths runs,
never what it computes: tests compare every path with the plain formula.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kldiv.errors import KLDivError
from kldiv.torch._reduction import check_num_items, check_reduction, mask_from_labels
from kldiv.torch._teachers import TeacherHead, TopKTeacher, flatten_teacher, teacher_rows

__all__ = [
    "CHUNKING_MIN_ELEMENTS",
    "FusedLinearDistillationLoss",
    "auto_chunk_rows",
    "check_chunk_size",
    "chunked_per_token",
]

CHUNKING_MIN_ELEMENTS = 1 << 22
"""``chunk_size="auto"`` chunks logits of at least this many elements (16 MiB of float32)."""

LOGITS_CHUNK_BYTES = 4 << 20
"""Float32 bytes of one chunk's logits on the logits path: cache-sized (4-8 MiB ran fastest)."""

FUSED_CHUNK_BYTES = 16 << 20
"""Float32 bytes of one chunk's logits on the fused path (131 rows at V = 32000): big enough
for efficient GEMMs, small enough that freed chunk buffers stay on the heap and are reused."""

LossAndGradient = Callable[..., tuple[torch.Tensor, torch.Tensor]]


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
        32
        >>> auto_chunk_rows(128256, target_bytes=32 << 20, minimum=256)
        256
    """
    row_bytes = 4 * max(1, vocabulary)
    rows = max(minimum, target_bytes // row_bytes)
    available = _available_bytes(device or torch.device("cpu"))
    if available is not None:
        rows = min(rows, max(minimum, available // (10 * 8 * row_bytes)))
    return max(1, rows)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _backward_once(ctx, what: str) -> None:
    """Gradients stored in the forward pass are scaled in place: a second backward would lie."""
    if ctx.used:
        raise RuntimeError(
            f"kldiv's {what} stores its gradients once and scales them in place; "
            "it cannot be backpropagated twice"
        )
    ctx.used = True


class _ChunkedPerToken(torch.autograd.Function):
    """Per-token losses whose gradient is computed in the forward pass, chunk by chunk."""

    @staticmethod
    def forward(
        ctx, student: torch.Tensor, loss_and_gradient: LossAndGradient, teacher, chunk_rows: int
    ):
        rows = student.shape[0]
        losses = torch.empty(rows, dtype=_compute_dtype(student.dtype), device=student.device)
        gradient = torch.empty_like(student)
        for start in range(0, rows, chunk_rows):
            stop = min(start + chunk_rows, rows)
            chunk = student[start:stop].detach().to(losses.dtype)
            values, chunk_gradient = loss_and_gradient(chunk, teacher_rows(teacher, start, stop))
            losses[start:stop] = values
            gradient[start:stop] = chunk_gradient
        ctx.save_for_backward(gradient)
        ctx.used = False
        return losses

    @staticmethod
    def backward(ctx, grad_losses: torch.Tensor):
        _backward_once(ctx, "chunked distillation (use chunk_size=None with retain_graph)")
        (gradient,) = ctx.saved_tensors
        gradient.mul_(grad_losses.to(gradient.dtype)[:, None])
        return gradient, None, None, None


def chunked_per_token(
    loss_and_gradient: LossAndGradient,
    student_logits: torch.Tensor,
    teacher: torch.Tensor | TopKTeacher,
    *,
    chunk_rows: int,
) -> torch.Tensor:
    """Per-token losses whose backward costs the memory of one logits-sized gradient.

    Args:
        loss_and_gradient: ``(student_rows, teacher_rows) -> (losses, gradient)``,
            the gradient of ``losses.sum()`` w.r.t. the student rows.
        student_logits: ``[..., V]``; the gradient flows to it.
        teacher: dense ``[..., V]`` (no gradient) or a :class:`TopKTeacher` ``[..., k]``.
        chunk_rows: rows (tokens) per chunk.

    Returns:
        The per-token losses, ``student_logits.shape[:-1]``.
    """
    batch_shape = student_logits.shape[:-1]
    flat_student = student_logits.reshape(-1, student_logits.shape[-1])
    flat_teacher = flatten_teacher(teacher)
    losses = _ChunkedPerToken.apply(flat_student, loss_and_gradient, flat_teacher, chunk_rows)
    return losses.reshape(batch_shape)


class _FusedLinear(torch.autograd.Function):
    """Σ_i c_i ℓ_i over tokens whose logits are hidden @ Wᵀ + b, formed chunk by chunk."""

    @staticmethod
    def forward(
        ctx,
        hidden,
        weight,
        bias,
        loss_and_gradient: LossAndGradient,
        teacher,
        coefficients,
        chunk_rows: int,
    ):
        dtype = _compute_dtype(hidden.dtype)
        w = weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        needs = ctx.needs_input_grad
        grad_hidden = torch.zeros_like(hidden) if needs[0] else None
        grad_weight = torch.zeros_like(w) if needs[1] else None
        grad_bias = torch.zeros_like(b) if b is not None and needs[2] else None
        total = torch.zeros((), dtype=dtype, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_rows):
            stop = min(start + chunk_rows, hidden.shape[0])
            h = hidden[start:stop].to(dtype)
            logits = h @ w.T if b is None else torch.addmm(b, h, w.T)
            values, grad_logits = loss_and_gradient(logits, teacher_rows(teacher, start, stop))
            del logits
            weights = coefficients[start:stop].to(dtype)
            total += (values * weights).sum()
            grad_logits.mul_(weights[:, None])
            if grad_hidden is not None:
                grad_hidden[start:stop] = grad_logits @ w
            if grad_weight is not None:
                grad_weight.addmm_(grad_logits.T, h)
            if grad_bias is not None:
                grad_bias += grad_logits.sum(0)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        ctx.used = False
        return total

    @staticmethod
    def backward(ctx, grad_total: torch.Tensor):
        _backward_once(ctx, "fused distillation")
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors

        def scaled(gradient, dtype=None):
            if gradient is None:
                return None
            gradient = gradient.mul_(grad_total.to(gradient.dtype))  # in place: no second copy
            return gradient if dtype is None else gradient.to(dtype)

        return (
            scaled(grad_hidden),
            scaled(grad_weight, ctx.dtypes[0]),
            scaled(grad_bias, ctx.dtypes[1]),
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
            at about 16 MiB and at least 128 rows (smaller chunks starve the GEMMs).
        validate: check the teacher once per call (None: the global default).

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
        from kldiv.torch._losses import DistillationLoss

        if check_reduction(reduction) == "none":
            raise KLDivError(
                "`reduction` must be 'mean' or 'sum' for the fused loss (its gradients are "
                "accumulated in the forward pass); got 'none'"
            )
        if check_chunk_size(chunk_size) is None:
            raise KLDivError("`chunk_size` must be 'auto' or a positive number of rows; got None")
        self.token_loss = DistillationLoss(
            temperature=temperature,
            direction=direction,
            beta=beta,
            ignore_index=ignore_index,
            reduction="none",
            scale_by_temperature_squared=scale_by_temperature_squared,
            chunk_size=None,
            validate=validate,
        )
        self.reduction = reduction
        self.chunk_size = chunk_size

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
        config = self.token_loss
        batch_shape = hidden.shape[:-1]
        if weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
            raise KLDivError(
                f"`weight` must be [V, d] with d = {hidden.shape[-1]} (the hidden size); "
                f"got {tuple(weight.shape)}"
            )
        mask = mask_from_labels(labels, config.ignore_index, batch_shape)
        if mask is not None:
            mask = mask.reshape(-1)
        flat_hidden = hidden.reshape(-1, hidden.shape[-1])
        rows = flat_hidden.shape[0]
        flat_teacher = _flatten_teacher(teacher, rows, weight.shape[0])
        coefficients = _coefficients(mask, rows, self.reduction, num_items, config.scale, hidden)
        chunk_rows = self.chunk_size
        if chunk_rows == "auto":
            chunk_rows = auto_chunk_rows(
                weight.shape[0], target_bytes=FUSED_CHUNK_BYTES, minimum=128, device=hidden.device
            )
        return _FusedLinear.apply(
            flat_hidden,
            weight,
            bias,
            config.per_token_and_gradient,
            flat_teacher,
            coefficients,
            chunk_rows,
        )

    def extra_repr(self) -> str:
        return f"{self.token_loss.extra_repr()}, chunk_size={self.chunk_size!r}"


def _flatten_teacher(teacher, rows: int, vocabulary: int):
    """:func:`flatten_teacher`, checked against the student's tokens and vocabulary."""
    flat = flatten_teacher(teacher)
    if isinstance(flat, TeacherHead):
        teacher_vocabulary, leading = flat.weight.shape[0], flat.hidden.shape[0]
        if teacher_vocabulary != vocabulary:
            raise KLDivError(
                f"the teacher's lm_head has {teacher_vocabulary} rows; the student's "
                f"vocabulary has {vocabulary}"
            )
    elif isinstance(flat, TopKTeacher):
        leading = flat.indices.shape[0]
    else:
        leading = flat.shape[0]
        if flat.shape[-1] != vocabulary:
            raise KLDivError(
                f"`teacher` logits must have the student's vocabulary {vocabulary} on the "
                f"last axis; got {tuple(teacher.shape)}"
            )
    return flat if leading == rows else _rows_mismatch(leading, rows)


def _rows_mismatch(teacher_rows_count: int, rows: int):
    raise KLDivError(
        f"the teacher has {teacher_rows_count} tokens; the student's hidden states have {rows}"
    )


def _coefficients(mask, rows, reduction, num_items, scale, like) -> torch.Tensor:
    """Each token's weight in the loss: mask · scale / denominator."""
    dtype = _compute_dtype(like.dtype)
    counted = torch.ones(rows, dtype=dtype, device=like.device) if mask is None else mask.to(dtype)
    if reduction == "sum":
        return counted * scale
    if num_items is None:
        denominator = counted.sum()
    elif isinstance(num_items, torch.Tensor):
        denominator = num_items.to(dtype)
    else:
        check_num_items(num_items)
        denominator = torch.tensor(float(num_items), dtype=dtype, device=like.device)
    return counted * (scale / denominator.clamp_min(1))
