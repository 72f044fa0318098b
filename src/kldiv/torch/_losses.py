"""KL and distillation losses: configuration and reduction over the functional core."""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

import kldiv
from kldiv._validation import check_temperature, log_of_base, resolve_validate
from kldiv.errors import KLDivError
from kldiv.torch._chunked import (
    CHUNKING_MIN_ELEMENTS,
    auto_chunk_rows,
    check_chunk_size,
    chunked_per_token,
    chunked_total,
)
from kldiv.torch._distill_kernels import (
    Divergence,
    check_choice,
    check_inputs,
    check_teacher_shape,
    compute_dtype,
    loss_and_gradient,
    per_token,
)
from kldiv.torch._reduction import (
    check_ignore_index,
    check_num_items,
    check_reduction,
    item_weights,
    mask_from_labels,
    reduce_items,
)
from kldiv.torch._teachers import TopKTeacher

__all__ = ["DistillationLoss", "KLDivLoss", "TopKTeacher"]

_KL_BY_INPUT = {
    "probs": kldiv.kl_from_probs,
    "log_probs": kldiv.kl_from_log_probs,
    "logits": kldiv.kl_from_logits,
}


class KLDivLoss(nn.Module):
    r"""The KL divergence :math:`D_{KL}(P \| Q)` as a loss, in maths order.

    .. math::

        \ell_b = \sum_v p_{b,v} \log \frac{p_{b,v}}{q_{b,v}}, \qquad
        \text{mean} = \frac{\sum_b m_b \ell_b}{\sum_b m_b}

    ``forward(p, q)`` is D(P‖Q): P the target, Q the model. That is the reverse
    of ``torch.nn.KLDivLoss(input=log q, target=p)``. ``"mean"`` averages the
    per-distribution KL over every leading dimension and the mask: torch's
    ``"batchmean"`` done right for ``(B, T, V)`` inputs (torch divides by B only,
    and its ``"mean"`` divides by B·T·V).

    Args:
        input: the form of ``p`` and ``q``: ``"probs"``, ``"log_probs"`` or ``"logits"``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        base: the unit: None for nats, 2 for bits.
        temperature: softmax temperature, for ``input="logits"`` only.
        validate: the core's eager value checks (None: the global default).

    Examples:
        >>> import torch
        >>> from kldiv.torch import KLDivLoss
        >>> loss = KLDivLoss(input="probs")
        >>> loss(torch.tensor([[0.4, 0.6]]), torch.tensor([[0.5, 0.5]]))
        tensor(0.0201)
    """

    def __init__(
        self,
        *,
        input: str = "probs",
        reduction: str = "mean",
        base: float | None = None,
        temperature: float = 1.0,
        validate: bool | None = None,
    ) -> None:
        super().__init__()
        self.input = check_choice("input", input, tuple(_KL_BY_INPUT))
        self.reduction = check_reduction(reduction)
        log_of_base(base)
        self.base = base
        self.temperature = check_temperature(temperature)
        if input != "logits" and self.temperature != 1.0:
            raise KLDivError(
                f"`temperature` applies to input='logits' only; got temperature={temperature} "
                f"with input={input!r}"
            )
        self.validate = resolve_validate(validate) if validate is not None else None

    def forward(
        self,
        p: torch.Tensor,
        q: torch.Tensor,
        mask: torch.Tensor | None = None,
        num_items: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """D(P‖Q) per distribution (last axis), reduced.

        Args:
            p: the target distribution P, ``[..., V]``.
            q: the model's distribution Q, ``[..., V]``.
            mask: booleans ``[...]``, True for the distributions that count.
            num_items: the denominator of ``"mean"`` (see :func:`count_items`).

        Returns:
            The reduced loss (a scalar), or ``[...]`` for ``reduction="none"``.
        """
        options = {"base": self.base, "validate": self.validate}
        if self.input == "logits":
            options["temperature"] = self.temperature
        per_item = _KL_BY_INPUT[self.input](p, q, **options)
        return reduce_items(per_item, reduction=self.reduction, mask=mask, num_items=num_items)

    def extra_repr(self) -> str:
        return f"input={self.input!r}, reduction={self.reduction!r}, base={self.base}"


class DistillationLoss(nn.Module):
    r"""Knowledge-distillation divergence between student and teacher token distributions.

    .. math::

        p = \operatorname{softmax}(z_t / T), \quad q = \operatorname{softmax}(z_s / T), \qquad
        \ell = T^2 \cdot
        \begin{cases}
            D_{KL}(p \| q) & \text{forward} \\
            D_{KL}(q \| p) & \text{reverse} \\
            \beta D_{KL}(p \| m) + (1-\beta) D_{KL}(q \| m),\ m = \beta p + (1-\beta) q
                & \text{jsd}
        \end{cases}

    per token, then the mean over the tokens whose label is not ``ignore_index``
    (or ``num_items``, for gradient accumulation and DDP). The :math:`T^2`
    factor (Hinton et al. 2015) keeps gradient magnitudes comparable across
    temperatures; ``scale_by_temperature_squared=False`` drops it. Half
    precision logits are computed in float32.

    The teacher is given as dense logits or log-probabilities ``[..., V]``
    (equivalent: the softmax ignores the normaliser), or as a
    :class:`TopKTeacher` of top-k token ids and log-probs. For a top-k teacher
    both distributions are coarsened to the k tokens plus a tail bucket with the
    remaining mass, so the loss is a true divergence that never goes negative;
    the temperature then applies to the student only. With k = V it is the
    dense loss. The teacher's tail mass is computed in float64 log-space (see
    :func:`~kldiv.torch._distill_kernels.teacher_tail`), or taken from
    ``TopKTeacher.from_logits``, which keeps it exactly: a confident teacher's
    loss stays finite.

    The teacher's vocabulary (or k) and token axes are checked against the
    student's on every path, plain, chunked and fused, whatever ``validate``.

    Args:
        temperature: the softmax temperature T (> 0).
        direction: ``"forward"`` (teacher‖student), ``"reverse"`` (student‖teacher)
            or ``"jsd"``.
        beta: the teacher's weight in the ``"jsd"`` mixture, in [0, 1].
        ignore_index: the label of tokens that do not count.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        scale_by_temperature_squared: multiply by :math:`T^2`.
        chunk_size: rows (tokens) per chunk of the memory-saving path, which
            computes the loss and the student's gradient chunk by chunk in the
            forward pass and so never holds more than one logits-sized
            gradient; ``"auto"`` (default) uses it for inputs of 2^22 elements
            or more and sizes the chunks from V, None never uses it. It applies
            when the student needs a gradient and the teacher does not. With
            ``"mean"`` or ``"sum"`` its backward pass costs nothing more.
        validate: the core's eager value checks (None: the global default). On
            the chunked path on a CPU they run only if some chunk's loss is not
            finite: a finite loss proves that row's logits finite.

    Examples:
        >>> import torch
        >>> from kldiv.torch import DistillationLoss
        >>> loss = DistillationLoss(temperature=2.0)
        >>> student, teacher = torch.zeros(1, 3, 5), torch.zeros(1, 3, 5)
        >>> labels = torch.tensor([[1, 2, -100]])
        >>> loss(student, teacher, labels)
        tensor(0.)
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
        chunk_size: int | str | None = "auto",
        validate: bool | None = None,
    ) -> None:
        super().__init__()
        self.divergence = Divergence(direction, temperature, beta)
        self.chunk_size = check_chunk_size(chunk_size)
        self.ignore_index = check_ignore_index(ignore_index)
        self.reduction = check_reduction(reduction)
        self.scale = self.divergence.temperature**2 if scale_by_temperature_squared else 1.0
        self.validate = resolve_validate(validate) if validate is not None else None

    @property
    def temperature(self) -> float:
        """The softmax temperature T."""
        return self.divergence.temperature

    @property
    def direction(self) -> str:
        """``"forward"``, ``"reverse"`` or ``"jsd"``."""
        return self.divergence.direction

    @property
    def beta(self) -> float:
        """The teacher's weight in the ``"jsd"`` mixture."""
        return self.divergence.beta

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher: torch.Tensor | TopKTeacher,
        labels: torch.Tensor | None = None,
        num_items: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """The distillation loss of one batch.

        Args:
            student_logits: ``[..., V]`` (e.g. ``(B, T, V)``), any float dtype.
            teacher: dense teacher logits or log-probs ``[..., V]``, or a
                :class:`TopKTeacher`.
            labels: ``[...]`` token labels; ``ignore_index`` marks tokens that do not count.
            num_items: the denominator of ``"mean"`` (see :func:`count_items`).

        Returns:
            The reduced loss, or per-token values ``[...]`` for ``reduction="none"``.
        """
        _check_student(student_logits)
        check_teacher_shape(tuple(student_logits.shape), teacher)
        mask = mask_from_labels(labels, self.ignore_index, student_logits.shape[:-1])
        chunk_rows = self._chunk_rows(student_logits, teacher)
        if chunk_rows is None:
            values = self._plain_per_token(student_logits, teacher)
            return reduce_items(
                values, reduction=self.reduction, mask=mask, num_items=num_items, scale=self.scale
            )
        check_num_items(num_items)
        teacher = _expanded(teacher, student_logits.shape)
        options = {"chunk_rows": chunk_rows, "check": self._check(student_logits, teacher)}
        if self.reduction == "none":
            values = chunked_per_token(self.divergence, student_logits, teacher, **options)
            return reduce_items(values, reduction="none", mask=mask, scale=self.scale)
        weights = item_weights(
            mask,
            math.prod(student_logits.shape[:-1]),
            reduction=self.reduction,
            num_items=num_items,
            scale=self.scale,
            dtype=compute_dtype(student_logits.dtype),
            device=student_logits.device,
        )
        return chunked_total(self.divergence, student_logits, teacher, weights, **options)

    def per_token(
        self,
        student_logits: torch.Tensor,
        teacher: torch.Tensor | TopKTeacher,
        *,
        validate: bool | None = None,
    ) -> torch.Tensor:
        """The divergence of each token, ``[...]``, before masking, reduction and T²."""
        return per_token(student_logits, teacher, self.divergence, validate=validate)

    def per_token_and_gradient(
        self, student_logits: torch.Tensor, teacher: torch.Tensor | TopKTeacher
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Per-token losses and their gradient w.r.t. the student's logits, for ``[n, V]`` rows.

        The reference kernel of the chunked paths (float32 or float64 rows, no
        value checks); see :mod:`kldiv.torch._distill_kernels` for the formulas.
        For a dense teacher the gradient is analytic (no autograd graph: a few
        row-sized temporaries); a top-k teacher goes through autograd. Rows
        whose loss is infinite get the gradient of their finite part.
        """
        return loss_and_gradient(student_logits, teacher, self.divergence)

    def _plain_per_token(
        self, student_logits: torch.Tensor, teacher: torch.Tensor | TopKTeacher
    ) -> torch.Tensor:
        """The plain path's per-token values, checked, with errors naming this module's inputs.

        A dense teacher is checked by the divergence's own kernels (free for
        logits: the values' finiteness decides); only when they refuse does
        :func:`check_inputs` run, to raise the error with the names
        ``student_logits`` and ``teacher``. A top-k teacher is checked up front.
        """
        if not resolve_validate(self.validate):
            return self.per_token(student_logits, teacher, validate=False)
        if isinstance(teacher, TopKTeacher):
            check_inputs(student_logits, teacher, student_logits.shape[-1])
            return self.per_token(student_logits, teacher, validate=False)
        try:
            return self.per_token(student_logits, teacher, validate=True)
        except KLDivError:
            check_inputs(student_logits, teacher, student_logits.shape[-1])
            raise

    def _chunk_rows(
        self, student_logits: torch.Tensor, teacher: torch.Tensor | TopKTeacher
    ) -> int | None:
        """Rows per chunk for the chunked path, or None for the plain one."""
        if self.chunk_size is None or not student_logits.requires_grad:
            return None
        if isinstance(teacher, torch.Tensor) and teacher.requires_grad:
            return None  # the chunked gradient is the student's only
        if self.chunk_size == "auto":
            if student_logits.numel() < CHUNKING_MIN_ELEMENTS:
                return None
            return auto_chunk_rows(student_logits.shape[-1], device=student_logits.device)
        return self.chunk_size

    def _check(self, student_logits: torch.Tensor, teacher: torch.Tensor | TopKTeacher):
        """The plain path's value checks over the whole batch, to run once; None: off."""
        if not resolve_validate(self.validate):
            return None
        return partial(check_inputs, student_logits, teacher, student_logits.shape[-1])

    def extra_repr(self) -> str:
        return (
            f"{self.divergence.describe()}, ignore_index={self.ignore_index}, "
            f"reduction={self.reduction!r}, scale={self.scale:g}"
        )


def _check_student(student_logits: object) -> None:
    """The student's logits: a floating-point tensor with a vocabulary axis."""
    if not isinstance(student_logits, torch.Tensor) or not student_logits.dtype.is_floating_point:
        got = (
            student_logits.dtype
            if isinstance(student_logits, torch.Tensor)
            else type(student_logits).__name__
        )
        raise KLDivError(
            f"`student_logits` must be a floating-point torch.Tensor [..., V]; got {got}"
        )
    if student_logits.ndim == 0:
        raise KLDivError("`student_logits` must have a vocabulary axis [..., V]; got a 0-d tensor")


def _expanded(teacher: torch.Tensor | TopKTeacher, shape: torch.Size) -> torch.Tensor | TopKTeacher:
    """A teacher whose token axes broadcast into the student's, expanded to them (no copy)."""
    batch = tuple(shape[:-1])
    if isinstance(teacher, TopKTeacher):
        if tuple(teacher.indices.shape[:-1]) == batch:
            return teacher
        k = teacher.indices.shape[-1]
        tail = teacher.tail_log_prob
        return TopKTeacher(
            teacher.indices.expand(*batch, k),
            teacher.log_probs.expand(*batch, k),
            None if tail is None else tail.expand(*batch),
        )
    return teacher if tuple(teacher.shape) == tuple(shape) else teacher.expand(shape)
