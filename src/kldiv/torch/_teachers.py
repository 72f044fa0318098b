"""How a teacher can be given besides dense logits: top-k log-probs, or its own head."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["TeacherHead", "TopKTeacher", "flatten_teacher", "teacher_rows"]


class TopKTeacher(NamedTuple):
    """A teacher known by its top-k tokens, as inference servers return it.

    Attributes:
        indices: token ids, ``[..., k]`` (integers).
        log_probs: the teacher's log-probabilities of those tokens, ``[..., k]``,
            at the temperature the server used (they are taken at face value).
    """

    indices: torch.Tensor
    log_probs: torch.Tensor


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
        return TopKTeacher(teacher.indices[start:stop], teacher.log_probs[start:stop])
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
        return TopKTeacher(teacher.indices.reshape(-1, k), teacher.log_probs.reshape(-1, k))
    if isinstance(teacher, TeacherHead):
        dtype = torch.promote_types(teacher.hidden.dtype, torch.float32)
        return TeacherHead(
            teacher.hidden.detach().reshape(-1, teacher.hidden.shape[-1]),
            teacher.weight.detach().to(dtype),
            None if teacher.bias is None else teacher.bias.detach().to(dtype),
        )
    return teacher.detach().reshape(-1, teacher.shape[-1])
