"""How a teacher can be given besides dense logits: top-k log-probs, or its own head."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["TeacherHead", "TopKTeacher", "teacher_rows"]


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
    teacher: torch.Tensor | TopKTeacher | TeacherHead, start: int, stop: int
) -> torch.Tensor | TopKTeacher:
    """Rows ``start:stop`` of a teacher flattened to ``[N, ...]``: dense logits or top-k.

    A :class:`TeacherHead` becomes the logits of those rows, in float32 or better.
    """
    if isinstance(teacher, TopKTeacher):
        return TopKTeacher(teacher.indices[start:stop], teacher.log_probs[start:stop])
    if isinstance(teacher, TeacherHead):
        dtype = torch.promote_types(teacher.hidden.dtype, torch.float32)
        with torch.no_grad():
            hidden = teacher.hidden[start:stop].to(dtype)
            logits = hidden @ teacher.weight.to(dtype).T
            return logits if teacher.bias is None else logits + teacher.bias.to(dtype)
    return teacher[start:stop]
