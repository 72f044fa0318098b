"""When the torch losses may take their eager fast paths, and the helpers those paths share.

:class:`kldiv.torch.GaussianKLLoss` (an ``autograd.Function`` with the analytic
backward) and :class:`kldiv.torch.KLPenalty` (a few fused ATen calls) compute a
loss in fewer ATen calls than the array-API reference. They are written for
plain, concrete tensors in eager mode; everything else (``torch.compile``,
``torch.func`` transforms, tensor subclasses) takes the reference path, plain
autograd through the array-API core. At the sizes of these losses the Python
around each ATen call costs as much as the call, so the checks here are kept
to attribute reads.
"""

from __future__ import annotations

import functools

import torch

__all__ = [
    "FLOATS",
    "broadcasts_into",
    "constant",
    "eager_tensors",
    "summed_to",
]

FLOATS = (torch.float32, torch.float64)
"""The dtypes the fast paths compute in; half precision takes the reference (float32 maths)."""

_PLAIN = (torch.Tensor, torch.nn.Parameter)
_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: False)


def eager_tensors(*tensors: object) -> bool:
    """Whether every argument is None or a plain tensor, in eager mode (a fast path may run).

    False for tensor subclasses (``nn.Parameter`` is plain), under
    ``torch.compile`` (Dynamo traces the reference instead) and inside
    ``torch.func`` transforms (``grad``, ``vmap``, ``jacrev``).

    Examples:
        >>> import torch
        >>> eager_tensors(torch.zeros(2), None), eager_tensors(torch.zeros(2), 1.0)
        (True, False)
    """
    for tensor in tensors:
        if tensor is not None and type(tensor) not in _PLAIN:
            return False
    return not (torch.compiler.is_compiling() or _transforms_active())


@functools.lru_cache(maxsize=256)
def _cached_constant(value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False), torch.no_grad():
        return torch.tensor(value, dtype=dtype, device=device)


def constant(value: float, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a cached 0-d tensor of ``like``'s dtype and device.

    An ATen call with a Python number wraps it in a new tensor each time; a
    cached 0-d tensor costs nothing per call (the kernels' per-module
    constants: the weight over the batch size, 0 for masked entries). Never
    written to.

    Examples:
        >>> import torch
        >>> half = constant(0.5, torch.zeros(3))
        >>> half, half is constant(0.5, torch.ones(2))
        (tensor(0.5000), True)
    """
    return _cached_constant(float(value), like.dtype, like.device)


def broadcasts_into(shape: torch.Size, target: torch.Size) -> bool:
    """Whether ``shape`` broadcasts to ``target`` without enlarging it.

    Examples:
        >>> import torch
        >>> broadcasts_into(torch.Size([1, 3]), torch.Size([2, 3]))
        True
        >>> broadcasts_into(torch.Size([2, 3]), torch.Size([3]))
        False
    """
    if shape == target:
        return True
    return len(shape) <= len(target) and all(
        n in (1, m) for n, m in zip(reversed(shape), reversed(target), strict=False)
    )


def summed_to(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``grad`` summed over the dimensions ``like`` was broadcast along (a kernel's backward).

    Examples:
        >>> import torch
        >>> summed_to(torch.ones(2, 3), torch.zeros(3))
        tensor([2., 2., 2.])
    """
    return grad if grad.shape == like.shape else grad.sum_to_size(like.shape)
