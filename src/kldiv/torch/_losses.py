"""KL and distillation losses: configuration and reduction over the functional core."""

from __future__ import annotations

import math

import torch
from torch import nn

import kldiv
from kldiv._array_api import array_namespace, as_float_arrays
from kldiv._special import log_softmax
from kldiv._validation import (
    check_beta,
    check_logits,
    check_temperature,
    log_of_base,
    resolve_validate,
    sum_tolerance,
)
from kldiv.discrete._sparse import check_top_k, top_k_buckets
from kldiv.errors import KLDivError
from kldiv.torch._chunked import (
    CHUNKING_MIN_ELEMENTS,
    auto_chunk_rows,
    check_chunk_size,
    chunked_per_token,
)
from kldiv.torch._reduction import check_reduction, mask_from_labels, reduce_items
from kldiv.torch._teachers import TopKTeacher

__all__ = ["DistillationLoss", "KLDivLoss", "TopKTeacher"]

_KL_BY_INPUT = {
    "probs": kldiv.kl_from_probs,
    "log_probs": kldiv.kl_from_log_probs,
    "logits": kldiv.kl_from_logits,
}
_DIRECTIONS = ("forward", "reverse", "jsd")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise KLDivError(f"`{name}` must be one of {list(choices)}; got {value!r}")
    return value  # type: ignore[return-value]


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
        self.input = _check_choice("input", input, tuple(_KL_BY_INPUT))
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


def _forward_kl_and_gradient(
    log_p: torch.Tensor, log_q: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """D(p‖q) per row and its gradient w.r.t. the logits of q, reusing the inputs' memory.

    Three row-sized float buffers at most; ``log_p`` and ``log_q`` are consumed.
    Values follow the core's conventions (0 where p = 0, +inf where q = 0 < p,
    NaN stays NaN); G = -p where q > 0, else 0, as the plain path's ``where``.
    """
    terms = log_p - log_q
    p = log_p.exp_()
    values = terms.mul_(p).masked_fill_(p == 0, 0.0).sum(-1)
    del terms
    gradient = p.neg_().masked_fill_(log_q == -math.inf, 0.0)
    q = log_q.exp_()
    return values, gradient.addcmul_(q, gradient.sum(-1, keepdim=True), value=-1.0)


def _reverse_kl_and_gradient(
    log_p: torch.Tensor, log_q: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """D(q‖p) per row and its gradient w.r.t. the logits of q, reusing the inputs' memory.

    G = q (log q - log p + 1) where q > 0 and p > 0, else 0, as the plain path's
    ``where``; the value is 0 where q = 0 and +inf where p = 0 < q.
    """
    ratio = log_q - log_p
    p_none = log_p == -math.inf
    del log_p
    q = log_q.exp_()
    q_none = q == 0
    outer = ratio.mul_(q).masked_fill_(q_none, 0.0)
    values = outer.sum(-1)
    outer.add_(q).masked_fill_(p_none | q_none, 0.0)
    return values, outer.addcmul_(q, outer.sum(-1, keepdim=True), value=-1.0)


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
    the temperature then applies to the student only.

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
            when the student needs a gradient and the teacher does not.
        validate: the core's eager value checks (None: the global default).

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
        self.temperature = check_temperature(temperature)
        self.chunk_size = check_chunk_size(chunk_size)
        self.direction = _check_choice("direction", direction, _DIRECTIONS)
        self.beta = check_beta(beta)
        if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
            raise KLDivError(f"`ignore_index` must be an integer; got {ignore_index!r}")
        self.ignore_index = ignore_index
        self.reduction = check_reduction(reduction)
        self.scale = self.temperature**2 if scale_by_temperature_squared else 1.0
        self.validate = resolve_validate(validate) if validate is not None else None

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
        mask = mask_from_labels(labels, self.ignore_index, student_logits.shape[:-1])
        chunk_rows = self._chunk_rows(student_logits, teacher)
        if chunk_rows is None:
            per_token = self.per_token(student_logits, teacher, validate=self.validate)
        else:
            self._check(student_logits, teacher)
            per_token = chunked_per_token(
                self.per_token_and_gradient, student_logits, teacher, chunk_rows=chunk_rows
            )
        loss = reduce_items(per_token, reduction=self.reduction, mask=mask, num_items=num_items)
        return loss if self.scale == 1.0 else loss * self.scale

    def per_token(
        self,
        student_logits: torch.Tensor,
        teacher: torch.Tensor | TopKTeacher,
        *,
        validate: bool | None = None,
    ) -> torch.Tensor:
        """The divergence of each token, ``[...]``, before masking, reduction and T²."""
        if isinstance(teacher, TopKTeacher):
            return self._top_k(student_logits, teacher, validate)
        options = {"temperature": self.temperature, "validate": validate}
        if self.direction == "forward":
            return kldiv.kl_from_logits(teacher, student_logits, **options)
        if self.direction == "reverse":
            return kldiv.kl_from_logits(student_logits, teacher, **options)
        return kldiv.js_from_logits(teacher, student_logits, beta=self.beta, **options)

    def per_token_and_gradient(
        self, student_logits: torch.Tensor, teacher: torch.Tensor | TopKTeacher
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Per-token losses and their gradient w.r.t. the student's logits, for ``[n, V]`` rows.

        The chunked paths call this on float32 (or float64) rows, without value
        checks. For a dense teacher the gradient is analytic, with
        :math:`q = \operatorname{softmax}(z_s/T)`, :math:`p = \operatorname{softmax}(z_t/T)`:

        .. math::

            \partial_{z_s} D(p \| q) = (q - p) / T, \qquad
            \partial_{z_s} D(q \| p) = q \odot (\log q - \log p - D(q \| p)) / T,

            \partial_{z_s} JS_\beta = (1 - \beta)\, q \odot
            (\log q - \log m - D(q \| m)) / T

        (no autograd graph: a few row-sized temporaries). Rows whose loss is
        infinite get a zero gradient. A top-k teacher goes through autograd.
        """
        if isinstance(teacher, TopKTeacher):
            with torch.enable_grad():
                rows = student_logits.detach().requires_grad_()
                values = self.per_token(rows, teacher, validate=False)
                (gradient,) = torch.autograd.grad(values.sum(), rows)
            return values.detach(), gradient
        t = self.temperature
        log_q = torch.log_softmax(student_logits / t, -1)
        log_p = torch.log_softmax(teacher.to(log_q.dtype) / t, -1)
        if self.direction == "forward":
            values, gradient = _forward_kl_and_gradient(log_p, log_q)
        elif self.direction == "reverse":
            values, gradient = _reverse_kl_and_gradient(log_p, log_q)
        elif self.beta in (0.0, 1.0):
            return torch.zeros_like(log_q[..., 0]), torch.zeros_like(log_q)
        else:
            q = log_q.exp()
            values = kldiv.js_from_log_probs(log_p, log_q, beta=self.beta, validate=False)
            log_m = torch.logaddexp(log_p + math.log(self.beta), log_q + math.log1p(-self.beta))
            outer = (1.0 - self.beta) * torch.where(q > 0, q * (log_q - log_m), 0.0)
            gradient = outer.addcmul_(q, outer.sum(-1, keepdim=True), value=-1.0)
        return values, gradient.div_(t) if t != 1.0 else gradient

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
            return auto_chunk_rows(student_logits.shape[-1])
        return self.chunk_size

    def _check(self, student_logits: torch.Tensor, teacher: torch.Tensor | TopKTeacher) -> None:
        """The value checks of the plain path, run once over the whole batch."""
        validate = resolve_validate(self.validate)
        if not validate:
            return
        xp = array_namespace(student_logits)
        check_logits(student_logits.detach(), "student_logits", -1, validate=True, xp=xp)
        if isinstance(teacher, TopKTeacher):
            tolerance = sum_tolerance(teacher.log_probs.dtype, xp)
            vocabulary = student_logits.shape[-1]
            check_top_k(teacher.indices, teacher.log_probs, vocabulary, tolerance, xp=xp)
        else:
            check_logits(teacher.detach(), "teacher", -1, validate=True, xp=xp)

    def _top_k(
        self, student_logits: torch.Tensor, teacher: TopKTeacher, validate: bool | None
    ) -> torch.Tensor:
        xp, (logits, top_log_p), _, dtype = as_float_arrays(
            student_logits, teacher.log_probs, names=("student_logits", "teacher.log_probs")
        )
        validate = resolve_validate(validate)
        check_logits(logits, "student_logits", -1, validate=validate, xp=xp)
        if validate:
            vocabulary = logits.shape[-1]
            check_top_k(teacher.indices, top_log_p, vocabulary, sum_tolerance(dtype, xp), xp=xp)
        scaled = logits if self.temperature == 1.0 else logits / self.temperature
        log_p, log_q = top_k_buckets(
            log_softmax(scaled, -1, xp=xp), teacher.indices, top_log_p, xp=xp
        )
        options = {"validate": False}
        if self.direction == "forward":
            return kldiv.kl_from_log_probs(log_p, log_q, **options)
        if self.direction == "reverse":
            return kldiv.kl_from_log_probs(log_q, log_p, **options)
        return kldiv.js_from_log_probs(log_p, log_q, beta=self.beta, **options)

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, direction={self.direction!r}, beta={self.beta}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, "
            f"scale={self.scale:g}"
        )
