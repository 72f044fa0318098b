"""Reductions of per-item losses that stay right under masks, accumulation and DDP.

``"mean"`` is the mean over the *counted* items (every leading dimension, the
mask applied), i.e. torch's ``"batchmean"`` done right. ``num_items`` replaces
the local count by a global one, which is what makes the mean correct when a
batch is split into micro-batches (gradient accumulation) or over ranks (DDP):
see :func:`count_items`. No step forces a host synchronisation.
"""

from __future__ import annotations

import numbers

import torch

from kldiv.errors import KLDivError

__all__ = [
    "REDUCTIONS",
    "check_ignore_index",
    "check_num_items",
    "check_reduction",
    "count_items",
    "item_weights",
    "mask_from_labels",
    "reduce_items",
    "weighted_total",
]

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: object) -> str:
    """A valid ``reduction`` string, else a :class:`~kldiv.KLDivError`."""
    if reduction not in REDUCTIONS:
        raise KLDivError(f"`reduction` must be one of {list(REDUCTIONS)}; got {reduction!r}")
    return reduction  # type: ignore[return-value]


def check_num_items(num_items: object) -> None:
    """None, a non-negative number or a tensor (not inspected: no host sync)."""
    if num_items is None or isinstance(num_items, torch.Tensor):
        return
    if not isinstance(num_items, numbers.Real) or isinstance(num_items, bool) or num_items < 0:
        raise KLDivError(
            f"`num_items` must be None, a non-negative number or a tensor; got {num_items!r}"
        )


def check_ignore_index(ignore_index: object) -> int:
    """A valid ``ignore_index`` (an integer label), else a :class:`~kldiv.KLDivError`."""
    if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
        raise KLDivError(f"`ignore_index` must be an integer; got {ignore_index!r}")
    return ignore_index


def mask_from_labels(
    labels: torch.Tensor | None, ignore_index: int, token_shape: tuple
) -> torch.Tensor | None:
    """``labels != ignore_index``, after checking that there is one label per token."""
    if labels is None:
        return None
    if tuple(labels.shape) != tuple(token_shape):
        raise KLDivError(
            f"`labels` must have one entry per token, shape {tuple(token_shape)}; "
            f"got {tuple(labels.shape)}"
        )
    return labels != ignore_index


def reduce_items(
    values: torch.Tensor,
    *,
    reduction: str,
    mask: torch.Tensor | None = None,
    num_items: torch.Tensor | float | None = None,
    scale: float = 1.0,
) -> torch.Tensor:
    r"""Reduces per-item values over every dimension, counting only ``mask``'s items.

    .. math::

        \text{mean} = \text{scale} \cdot \frac{\sum_i m_i \ell_i}{\max(N, 1)}, \qquad
        N = \texttt{num\_items} \text{ if given, else } \sum_i m_i

    Masked items contribute an exact 0 to the value and to every gradient, even
    where their loss is infinite or NaN (padding). With nothing counted the
    mean is 0 with a zero gradient, not NaN.

    Args:
        values: per-item losses, any shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (masked items set to 0).
        mask: booleans of ``values``' shape, True for items that count.
        num_items: the denominator of ``"mean"``; pass the global count (see
            :func:`count_items`) under gradient accumulation or DDP.
        scale: a constant factor of the result (e.g. a distillation's T²),
            folded into the reduction's last step.

    Returns:
        A scalar for ``"mean"`` and ``"sum"``, ``values``' shape for ``"none"``.

    Raises:
        KLDivError: a bad ``reduction``, ``num_items`` or mask shape.

    Examples:
        >>> import torch
        >>> values = torch.tensor([[1.0, 2.0], [3.0, float("inf")]])
        >>> mask = torch.tensor([[True, True], [True, False]])
        >>> reduce_items(values, reduction="mean", mask=mask)
        tensor(2.)
    """
    check_reduction(reduction)
    check_num_items(num_items)
    if mask is not None:
        if mask.shape != values.shape:
            raise KLDivError(
                f"`mask` must have the shape of the per-item losses {tuple(values.shape)}; "
                f"got {tuple(mask.shape)}"
            )
        values = torch.where(mask, values, 0.0)
    if reduction == "none":
        return values if scale == 1.0 else values * scale
    total = values.sum()
    if reduction == "sum":
        return total if scale == 1.0 else total * scale
    if num_items is None and mask is None:
        num_items = values.numel()
    if num_items is None or isinstance(num_items, torch.Tensor):
        counted = mask.sum() if num_items is None else num_items
        denominator = counted.to(total.dtype).clamp_min(1)  # a new tensor: never the caller's
        return total / (denominator if scale == 1.0 else denominator.div_(scale))
    return total * (scale / max(float(num_items), 1.0))


def item_weights(
    mask: torch.Tensor | None,
    count: int,
    *,
    reduction: str,
    num_items: torch.Tensor | float | None = None,
    scale: float = 1.0,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    r"""Each item's factor :math:`w_i` in a reduced loss :math:`\sum_i w_i \ell_i`, ``[count]``.

    .. math::

        w_i = \frac{m_i \cdot \text{scale}}{\max(N, 1)} \ (\text{"mean"}), \qquad
        w_i = m_i \cdot \text{scale} \ (\text{"sum"}),

    with :math:`N` as in :func:`reduce_items`, so that :func:`weighted_total`
    equals ``scale * reduce_items(values, ...)``. Paths that compute gradients
    in the forward pass (chunked, fused) fold these factors into them.

    Args:
        mask: booleans, True for the items that count (any shape, ``count`` items), or None.
        count: the number of items.
        reduction: ``"mean"`` or ``"sum"``.
        num_items: the denominator of ``"mean"`` (see :func:`count_items`).
        scale: a constant factor (e.g. the distillation's T²).
        dtype: the weights' floating dtype.
        device: the weights' device.

    Examples:
        >>> import torch
        >>> mask = torch.tensor([True, False, True, True])
        >>> item_weights(mask, 4, reduction="mean", dtype=torch.float32, device="cpu")
        tensor([0.3333, 0.0000, 0.3333, 0.3333])
    """
    check_num_items(num_items)
    if mask is None:
        counted = torch.ones(count, dtype=dtype, device=device)
    else:
        counted = mask.reshape(-1).to(dtype=dtype, device=device)
    if check_reduction(reduction) == "sum":
        return counted.mul_(scale)
    if num_items is None:
        denominator = counted.sum() if mask is not None else float(count)
    elif isinstance(num_items, torch.Tensor):
        denominator = num_items.to(dtype)
    else:
        denominator = float(num_items)
    if isinstance(denominator, float):
        return counted.mul_(scale / max(denominator, 1.0))
    return counted.mul_(scale / denominator.clamp_min(1))


def weighted_total(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ_i w_i ℓ_i``, where an item of weight 0 adds an exact 0 even if its loss is inf or NaN.

    Examples:
        >>> import torch
        >>> weighted_total(torch.tensor([1.0, float("inf")]), torch.tensor([0.5, 0.0]))
        tensor(0.5000)
    """
    return torch.where(weights == 0, 0.0, values * weights).sum()


def count_items(
    *masks: torch.Tensor,
    group: object | None = None,
    average_over_ranks: bool = True,
) -> torch.Tensor:
    """The ``num_items`` that makes a mean global over micro-batches and ranks.

    Sums the counted items of every mask given (the micro-batches of one
    optimiser step) and, when ``torch.distributed`` is initialised, over every
    rank of ``group`` with an ``all_reduce`` (no host synchronisation). DDP
    *averages* gradients over ranks, so by default the global count is divided
    by the world size: each rank's ``sum / (N / W)``, averaged by DDP, is
    ``Σ sum / N``, the gradient of the mean over the whole global batch.

    Args:
        *masks: boolean masks of the items that count (e.g. ``labels != -100``).
        group: the process group; None is the default group.
        average_over_ranks: divide by the world size, for DDP's gradient
            averaging. Pass False when gradients are summed instead.

    Returns:
        A float tensor on the masks' device.

    Examples:
        >>> import torch
        >>> micro_batches = [torch.tensor([True, False]), torch.tensor([True, True])]
        >>> count_items(*micro_batches)
        tensor(3.)
    """
    if not masks:
        raise KLDivError("`count_items` needs at least one mask")
    count = torch.stack([m.sum() for m in masks]).sum().to(torch.get_default_dtype())
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        distributed.all_reduce(count, op=distributed.ReduceOp.SUM, group=group)
        if average_over_ranks:
            count = count / distributed.get_world_size(group)
    return count
