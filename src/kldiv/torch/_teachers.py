"""How a teacher can be given besides dense logits: top-k log-probs, or its own head."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from kldiv._validation import check_temperature
from kldiv.errors import KLDivError

__all__ = ["TeacherHead", "TopKTeacher", "flatten_teacher", "teacher_rows"]


class TopKTeacher(NamedTuple):
    """A teacher known by its top-k tokens, as inference servers return it.

    The mass outside the k tokens (the tail bucket) is ``tail_log_prob`` when
    given, else ``log(1 - Σ exp(log_probs))`` computed in float64 log-space.
    A confident teacher's tail is tiny (2e-8 for a top logit 28 above 32000
    others) and float32 ``log_softmax`` may already have rounded it away (a
    top log-prob of exactly 0); :meth:`from_logits` keeps it, computing in
    float64 from the full logits.

    Attributes:
        indices: token ids, ``[..., k]`` (integers).
        log_probs: the teacher's log-probabilities of those tokens, ``[..., k]``,
            at the temperature the server used (they are taken at face value).
        tail_log_prob: the log of the teacher's mass outside the k tokens,
            ``[...]``, or None (derived from ``log_probs``).

    Examples:
        >>> import torch
        >>> logits = torch.tensor([[28.0, 0.0, 0.0, 0.0]])
        >>> teacher = TopKTeacher.from_logits(logits, k=2)
        >>> teacher.indices.shape, round(float(teacher.tail_log_prob), 3)
        (torch.Size([1, 2]), -27.307)
    """

    indices: torch.Tensor
    log_probs: torch.Tensor
    tail_log_prob: torch.Tensor | None = None

    @classmethod
    def from_logits(cls, logits: torch.Tensor, k: int, *, temperature: float = 1.0) -> TopKTeacher:
        """The top-k teacher of dense logits, its log-probs and tail computed in float64.

        Args:
            logits: the teacher's logits, ``[..., V]`` (no gradient is kept).
            k: how many tokens to keep, ``1 <= k <= V``.
            temperature: the softmax temperature the log-probs are taken at (> 0).

        Returns:
            The top-k tokens with their log-probs in the logits' dtype (float32
            or better) and the exact log of the tail mass.

        Raises:
            KLDivError: ``logits`` not a floating tensor of at least one axis,
                a bad ``k`` or ``temperature``, or NaN or ``+inf`` logits.
        """
        if not isinstance(logits, torch.Tensor) or not logits.dtype.is_floating_point:
            got = logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise KLDivError(f"`logits` must be a floating-point torch.Tensor; got {got}")
        if logits.ndim == 0:
            raise KLDivError("`logits` must have a vocabulary axis [..., V]; got a 0-d tensor")
        vocabulary = logits.shape[-1]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= vocabulary:
            raise KLDivError(f"`k` must be an integer in [1, {vocabulary}] (V); got {k!r}")
        temperature = check_temperature(temperature)
        with torch.no_grad():
            wide = logits.detach().to(torch.float64)
            bad = torch.isnan(wide) | (wide == math.inf)
            if bool(bad.any()):
                index = tuple(int(i) for i in torch.nonzero(bad)[0])
                raise KLDivError(
                    f"`logits` must hold logits (< +inf, not NaN); got {float(wide[index])} "
                    f"at index {index}"
                )
            log_p = torch.log_softmax(wide / temperature, -1)
            top = log_p.topk(k, -1)
            if k == vocabulary:
                tail = torch.full(top.values.shape[:-1], -math.inf, dtype=torch.float64)
            else:  # the rest's log-sum-exp: no cancellation against the top mass
                rest = log_p.scatter(-1, top.indices, -math.inf)
                tail = torch.logsumexp(rest, -1)
            dtype = torch.promote_types(logits.dtype, torch.float32)
        return cls(top.indices, top.values.to(dtype), tail.to(device=logits.device, dtype=dtype))


class TeacherHead(NamedTuple):
    """A teacher given as hidden states and its lm_head: logits = hidden @ weightᵀ + bias.

    The teacher's logits are formed chunk by chunk and never all at once; the
    teacher gets no gradient.

    Attributes:
        hidden: the teacher's last hidden states, ``[..., d_teacher]``.
        weight: the teacher's lm_head weight, ``[V, d_teacher]``.
        bias: the lm_head bias ``[V]``, or None.
    """

    hidden: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor | None = None


def teacher_rows(
    teacher: torch.Tensor | TopKTeacher | TeacherHead,
    start: int,
    stop: int,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor | TopKTeacher:
    """Rows ``start:stop`` of a teacher flattened to ``[N, ...]``: dense logits or top-k.

    A :class:`TeacherHead` becomes the logits of those rows, in float32 or better,
    written into the first rows of ``out`` when given (a buffer reused across
    chunks: fresh memory costs page faults).
    """
    if isinstance(teacher, TopKTeacher):
        tail = teacher.tail_log_prob
        return TopKTeacher(
            teacher.indices[start:stop],
            teacher.log_probs[start:stop],
            None if tail is None else tail[start:stop],
        )
    if isinstance(teacher, TeacherHead):
        return _head_logits(teacher, start, stop, out)
    return teacher[start:stop]


def _head_logits(
    teacher: TeacherHead, start: int, stop: int, out: torch.Tensor | None
) -> torch.Tensor:
    dtype = torch.promote_types(teacher.hidden.dtype, torch.float32)
    with torch.no_grad():
        hidden = teacher.hidden[start:stop].to(dtype)
        weight = teacher.weight.to(dtype).T
        bias = None if teacher.bias is None else teacher.bias.to(dtype)
        if out is None:
            return hidden @ weight if bias is None else torch.addmm(bias, hidden, weight)
        out = out[: stop - start]
        if bias is None:
            return torch.mm(hidden, weight, out=out)
        return torch.addmm(bias, hidden, weight, out=out)


def flatten_teacher(
    teacher: torch.Tensor | TopKTeacher | TeacherHead,
) -> torch.Tensor | TopKTeacher | TeacherHead:
    """The teacher with its token axes flattened to one, ``[N, ...]``, detached.

    A :class:`TeacherHead`'s weight and bias are cast once to float32 (or better),
    so that :func:`teacher_rows` never copies them per chunk.
    """
    if isinstance(teacher, TopKTeacher):
        k = teacher.indices.shape[-1]
        tail = teacher.tail_log_prob
        return TopKTeacher(
            teacher.indices.reshape(-1, k),
            teacher.log_probs.detach().reshape(-1, k),
            None if tail is None else tail.detach().reshape(-1),
        )
    if isinstance(teacher, TeacherHead):
        dtype = torch.promote_types(teacher.hidden.dtype, torch.float32)
        return TeacherHead(
            teacher.hidden.detach().reshape(-1, teacher.hidden.shape[-1]),
            teacher.weight.detach().to(dtype),
            None if teacher.bias is None else teacher.bias.detach().to(dtype),
        )
    return teacher.detach().reshape(-1, teacher.shape[-1])
