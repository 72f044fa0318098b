r"""Per-token distillation divergences and their gradients w.r.t. the student's logits.

With :math:`q = \operatorname{softmax}(z_s/T)` (student), :math:`p = \operatorname{softmax}(z_t/T)`
(teacher) and :math:`m = \beta p + (1-\beta) q`, per token:

.. math::

    \partial_{z_s} D(p \| q) = (q - p) / T, \qquad
    \partial_{z_s} D(q \| p) = q \odot (\log q - \log p - D(q \| p)) / T,

    \partial_{z_s} JS_\beta = (1 - \beta)\, q \odot (\log q - \log m - D(q \| m)) / T.

The plain, chunked and fused-linear paths (``_losses.py``, ``_chunked.py``) all
call into this module, which imports neither: the dependencies point one way,
``_losses`` → ``_chunked`` → ``_distill_kernels``.

Two kernels compute the same numbers:

* :func:`loss_and_gradient`, the reference: it allocates its temporaries, runs
  on every device and is exact at ``-inf`` logits (a masked vocabulary);
* :func:`rows_into`, the one the chunked paths call: on the CPU, about a dozen ATen
  calls per chunk into the buffers of a :class:`Workspace` that every chunk of
  a call reuses, the gradient written (times per-row weights) straight into
  the caller's tensor. A row whose loss comes out non-finite (some logit is
  ``-inf``, ``+inf`` or NaN) is recomputed by the reference. A finite loss also
  proves every logit of its row finite, which is all the value checks ask, so
  they run (on the whole batch, once) only when a chunk is not finite.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

import kldiv
from kldiv._array_api import array_namespace, as_float_arrays
from kldiv._special import log_softmax, logsumexp_or_minus_inf
from kldiv._validation import (
    check_beta,
    check_logits,
    check_temperature,
    resolve_validate,
    sum_tolerance,
)
from kldiv.discrete._sparse import check_top_k, log1mexp, top_k_buckets
from kldiv.errors import KLDivError
from kldiv.torch._teachers import TopKTeacher

__all__ = [
    "DIRECTIONS",
    "Divergence",
    "Workspace",
    "check_choice",
    "check_inputs",
    "check_teacher_shape",
    "compute_dtype",
    "loss_and_gradient",
    "per_token",
    "rows_into",
    "teacher_tail",
]

DIRECTIONS = ("forward", "reverse", "jsd")

Factor = torch.Tensor | float
"""The gradient's factor: a float, or per-row weights ``[n, 1]``."""


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a :class:`~kldiv.KLDivError` naming ``name``."""
    if value not in choices:
        raise KLDivError(f"`{name}` must be one of {list(choices)}; got {value!r}")
    return value  # type: ignore[return-value]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the maths: float32 for half precision, else the input's."""
    return torch.promote_types(dtype, torch.float32)


@dataclass(frozen=True)
class Divergence:
    """What is computed per token: the direction, the temperature and the JSD weight.

    Attributes:
        direction: ``"forward"`` D(p‖q), ``"reverse"`` D(q‖p) or ``"jsd"``.
        temperature: the softmax temperature T (> 0).
        beta: the teacher's weight in the ``"jsd"`` mixture, in [0, 1].

    Examples:
        >>> Divergence("reverse", temperature=2)
        Divergence(direction='reverse', temperature=2.0, beta=0.5)
    """

    direction: str = "forward"
    temperature: float = 1.0
    beta: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", check_temperature(self.temperature))
        check_choice("direction", self.direction, DIRECTIONS)
        object.__setattr__(self, "beta", check_beta(self.beta))

    def describe(self) -> str:
        """The fields as a module's ``extra_repr`` shows them."""
        return f"temperature={self.temperature}, direction={self.direction!r}, beta={self.beta}"

    @property
    def vanishes(self) -> bool:
        """A JSD with beta 0 or 1: zero for every input."""
        return self.direction == "jsd" and self.beta in (0.0, 1.0)


# --------------------------------------------------------------------------- values only


def per_token(
    student_logits: torch.Tensor,
    teacher: torch.Tensor | TopKTeacher,
    divergence: Divergence,
    *,
    validate: bool | None = None,
) -> torch.Tensor:
    """The divergence of each token, ``[...]``, by kldiv's functional core (autograd)."""
    if isinstance(teacher, TopKTeacher):
        return _top_k_per_token(student_logits, teacher, divergence, validate)
    options = {"temperature": divergence.temperature, "validate": validate}
    if divergence.direction == "forward":
        return kldiv.kl_from_logits(teacher, student_logits, **options)
    if divergence.direction == "reverse":
        return kldiv.kl_from_logits(student_logits, teacher, **options)
    return kldiv.js_from_logits(teacher, student_logits, beta=divergence.beta, **options)


def _top_k_per_token(
    student_logits: torch.Tensor,
    teacher: TopKTeacher,
    divergence: Divergence,
    validate: bool | None,
) -> torch.Tensor:
    """Both distributions coarsened to the teacher's k tokens plus a tail bucket."""
    xp, (logits, top_log_p), dtype, _ = as_float_arrays(
        student_logits, teacher.log_probs, names=("student_logits", "teacher.log_probs")
    )
    validate = resolve_validate(validate)
    check_logits(logits, "student_logits", -1, validate=validate, xp=xp)
    vocabulary = logits.shape[-1]
    if validate:
        check_top_k(teacher.indices, top_log_p, vocabulary, sum_tolerance(dtype, xp), xp=xp)
        _check_tail(teacher, sum_tolerance(dtype, xp))
    t = divergence.temperature
    scaled = logits if t == 1.0 else logits / t
    log_p, log_q = top_k_buckets(log_softmax(scaled, -1, xp=xp), teacher.indices, top_log_p, xp=xp)
    tail = teacher_tail(teacher, vocabulary, reverse=divergence.direction == "reverse")
    log_p = torch.cat([log_p[..., :-1], tail.to(log_p.dtype)[..., None]], -1)
    if divergence.direction == "forward":
        return kldiv.kl_from_log_probs(log_p, log_q, validate=False)
    if divergence.direction == "reverse":
        return kldiv.kl_from_log_probs(log_q, log_p, validate=False)
    return kldiv.js_from_log_probs(log_p, log_q, beta=divergence.beta, validate=False)


def teacher_tail(teacher: TopKTeacher, vocabulary: int, *, reverse: bool = False) -> torch.Tensor:
    r"""The log of a top-k teacher's mass outside its k tokens, ``[...]``.

    ``-inf`` when ``k = V`` (no token is outside: the buckets are then the
    dense distributions); ``teacher.tail_log_prob`` when given; otherwise
    :math:`\log(1 - e^{s})` with :math:`s = \log\sum_j e^{\ell_j}`, both in
    float64 (a float32 log-sum-exp rounds a confident teacher's tail of 2e-8
    to nothing). In the ``reverse`` direction a derived tail below half the
    log-probs' machine epsilon is raised to it: below that the given log-probs
    cannot resolve the tail (a float32 ``log_softmax`` returns a top
    log-prob of exactly 0 for a tail of 2e-8), and of the tails they are
    consistent with this one gives the smallest divergence, where a zero tail
    would give ``+inf`` for any student with mass there.

    Returns:
        The log tail mass, float64 on CPU and CUDA (else the log-probs' dtype).
    """
    log_probs = teacher.log_probs
    shape = log_probs.shape[:-1]
    wide = torch.float64 if log_probs.device.type in ("cpu", "cuda") else log_probs.dtype
    if log_probs.shape[-1] == vocabulary:
        return torch.full(shape, -math.inf, dtype=wide, device=log_probs.device)
    if teacher.tail_log_prob is not None:
        return teacher.tail_log_prob.to(wide)
    xp = array_namespace(log_probs)
    tail = log1mexp(logsumexp_or_minus_inf(log_probs.to(wide), -1, xp=xp), xp=xp)
    if reverse:
        dtype = log_probs.dtype if log_probs.dtype.is_floating_point else torch.float32
        tail = tail.clamp_min(math.log(torch.finfo(dtype).eps / 2))
    return tail


def _check_tail(teacher: TopKTeacher, tolerance: float) -> None:
    """A given ``tail_log_prob``: the batch shape, log-probabilities, total mass <= 1."""
    tail = teacher.tail_log_prob
    if tail is None:
        return
    if not isinstance(tail, torch.Tensor) or not tail.dtype.is_floating_point:
        got = tail.dtype if isinstance(tail, torch.Tensor) else type(tail).__name__
        raise KLDivError(
            f"`tail_log_prob` of the top-k teacher must be a floating-point tensor; got {got}"
        )
    expected = tuple(teacher.indices.shape[:-1])
    if tuple(tail.shape) != expected:
        raise KLDivError(
            f"`tail_log_prob` of the top-k teacher must have the shape {expected} of its "
            f"tokens; got {tuple(tail.shape)}"
        )
    if not tail.numel():
        return
    if not bool((tail <= tolerance).all()):
        worst = tail[~(tail <= tolerance)][0]
        raise KLDivError(
            "`tail_log_prob` of the top-k teacher must hold log-probabilities (<= 0, not NaN); "
            f"got {float(worst)}"
        )
    wide = torch.float64 if tail.device.type in ("cpu", "cuda") else tail.dtype
    total = torch.logaddexp(torch.logsumexp(teacher.log_probs.to(wide), -1), tail.to(wide))
    if float(total.max()) > math.log1p(tolerance):
        raise KLDivError(
            "`log_probs` and `tail_log_prob` of the top-k teacher must hold mass 1 per token; "
            f"a token's mass sums to {math.exp(float(total.max())):.9g}"
        )


def check_teacher_shape(
    student_shape: tuple[int, ...],
    teacher: torch.Tensor | TopKTeacher,
    *,
    student: str = "student_logits",
    described: str | None = None,
) -> None:
    """The teacher's shape against the student's ``[..., V]``, no values read (always run).

    Args:
        student_shape: the student's logits' shape ``[..., V]``.
        teacher: dense logits or log-probs, or a :class:`TopKTeacher`.
        student: the argument that sets the student's vocabulary, named in errors.
        described: how errors show the student's shape (default: ``student`` and its shape).

    Raises:
        KLDivError: a teacher that is not a tensor or a top-k teacher, a dense
            teacher whose vocabulary differs from the student's, a top-k
            teacher with more than V tokens or mismatched parts, or token axes
            that do not broadcast into the student's.
    """
    vocabulary, batch = student_shape[-1], tuple(student_shape[:-1])
    described = described or f"`{student}` {tuple(student_shape)}"
    if isinstance(teacher, TopKTeacher):
        indices, log_probs = teacher.indices, teacher.log_probs
        for name, part in (("indices", indices), ("log_probs", log_probs)):
            if not isinstance(part, torch.Tensor) or part.ndim == 0:
                raise KLDivError(
                    f"`{name}` of the top-k teacher must be a torch.Tensor [..., k]; got "
                    f"{type(part).__name__ if not isinstance(part, torch.Tensor) else '0-d'}"
                )
        if tuple(indices.shape) != tuple(log_probs.shape):
            raise KLDivError(
                f"`indices` {tuple(indices.shape)} and `log_probs` {tuple(log_probs.shape)} of "
                "the top-k teacher must have the same shape"
            )
        if indices.shape[-1] > vocabulary:
            raise KLDivError(
                f"`teacher` (top-k) has k = {indices.shape[-1]} entries, more than the student's "
                f"vocabulary V = {vocabulary} ({described})"
            )
        leading, what = tuple(indices.shape[:-1]), "the top-k teacher's tokens"
    elif isinstance(teacher, torch.Tensor):
        if teacher.ndim == 0 or teacher.shape[-1] != vocabulary:
            got = teacher.shape[-1] if teacher.ndim else "no vocabulary axis (0-d)"
            raise KLDivError(
                f"`teacher` must have the student's vocabulary on its last axis: expected "
                f"V = {vocabulary} ({described}); got {got} (`teacher` {tuple(teacher.shape)})"
            )
        leading, what = tuple(teacher.shape[:-1]), "`teacher`"
    else:
        raise KLDivError(
            "`teacher` must be a torch.Tensor of logits or log-probs, or a TopKTeacher; got "
            f"{type(teacher).__name__}"
        )
    if leading != batch and not _broadcasts_into(leading, batch):
        raise KLDivError(
            f"{what} {leading} must match the student's token axes {batch} ({described}): "
            f"the teacher has {math.prod(leading)} tokens, the student {math.prod(batch)}"
        )


def _broadcasts_into(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return tuple(torch.broadcast_shapes(shape, target)) == target
    except RuntimeError:
        return False


def check_inputs(
    student_logits: torch.Tensor | None,
    teacher: torch.Tensor | TopKTeacher | None,
    vocabulary: int,
) -> None:
    """The plain path's value checks, over a whole batch (None: not checked).

    Raises:
        KLDivError: NaN or ``+inf`` logits, a row without a finite logit, a bad top-k teacher.
    """
    if student_logits is not None:
        xp = array_namespace(student_logits)
        check_logits(student_logits.detach(), "student_logits", -1, validate=True, xp=xp)
    if isinstance(teacher, TopKTeacher):
        xp = array_namespace(teacher.log_probs)
        tolerance = sum_tolerance(teacher.log_probs.dtype, xp)
        check_top_k(teacher.indices, teacher.log_probs, vocabulary, tolerance, xp=xp)
        _check_tail(teacher, tolerance)
    elif teacher is not None:
        xp = array_namespace(teacher)
        check_logits(teacher.detach(), "teacher", -1, validate=True, xp=xp)


# --------------------------------------------------------------------------- reference kernels


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


def _jsd_and_gradient(
    log_p: torch.Tensor, log_q: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """JS_beta per row and its gradient w.r.t. the logits of q (0 < beta < 1)."""
    q = log_q.exp()
    values = kldiv.js_from_log_probs(log_p, log_q, beta=beta, validate=False)
    log_m = torch.logaddexp(log_p + math.log(beta), log_q + math.log1p(-beta))
    outer = (1.0 - beta) * torch.where(q > 0, q * (log_q - log_m), 0.0)
    return values, outer.addcmul_(q, outer.sum(-1, keepdim=True), value=-1.0)


def loss_and_gradient(
    student_logits: torch.Tensor, teacher: torch.Tensor | TopKTeacher, divergence: Divergence
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token losses of ``[n, V]`` rows and their gradient w.r.t. the student's logits.

    The reference kernel, without value checks: analytic for a dense teacher (a
    few row-sized temporaries, no autograd graph), autograd through
    :func:`per_token` for a top-k one. Rows whose loss is infinite get the
    gradient of their finite part, as the plain autograd path.

    Examples:
        >>> import torch
        >>> values, gradient = loss_and_gradient(
        ...     torch.zeros(1, 3), torch.zeros(1, 3), Divergence("forward")
        ... )
        >>> values, gradient
        (tensor([0.]), tensor([[0., 0., 0.]]))
    """
    if isinstance(teacher, TopKTeacher):
        with torch.enable_grad():
            rows = student_logits.detach().requires_grad_()
            values = per_token(rows, teacher, divergence, validate=False)
            (gradient,) = torch.autograd.grad(values.sum(), rows)
        return values.detach(), gradient
    t = divergence.temperature
    log_q = torch.log_softmax(student_logits / t, -1)
    log_p = torch.log_softmax(teacher.to(log_q.dtype) / t, -1)
    if divergence.direction == "forward":
        values, gradient = _forward_kl_and_gradient(log_p, log_q)
    elif divergence.direction == "reverse":
        values, gradient = _reverse_kl_and_gradient(log_p, log_q)
    elif divergence.vanishes:
        return torch.zeros_like(log_q[..., 0]), torch.zeros_like(log_q)
    else:
        values, gradient = _jsd_and_gradient(log_p, log_q, divergence.beta)
    return values, gradient.div_(t) if t != 1.0 else gradient


# --------------------------------------------------------------------------- in-place kernels


class Workspace:
    """Row-sized buffers that every chunk of one call reuses, and that call's check state.

    Fresh memory costs page faults (about 0.3 s per GiB on CPUs), so the
    temporaries of :func:`rows_into` are allocated once per call, at most
    five ``[rows, V]`` tensors, on first use.

    Args:
        rows: the most rows of one chunk.
        vocabulary: V.
        dtype: the compute dtype (float32 or float64).
        device: where the rows live.
        check: the value checks of the whole batch, run at most once: before the
            first rows that the fast kernel does not compute; None: no checks.
    """

    def __init__(
        self,
        rows: int,
        vocabulary: int,
        dtype: torch.dtype,
        device: torch.device,
        check: Callable[[], None] | None = None,
    ) -> None:
        self._shape = (rows, vocabulary)
        self._options = {"dtype": dtype, "device": device}
        self._buffers: list[torch.Tensor] = []
        self._check = check
        self.use_reference = device.type != "cpu"
        """Off the CPU, or once no row of a chunk was finite: the reference computes the rest."""

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype."""
        return self._options["dtype"]

    def buffers(self, count: int, rows: int) -> list[torch.Tensor]:
        """``count`` buffers of ``rows`` rows (views of the per-call ones)."""
        while len(self._buffers) < count:
            self._buffers.append(torch.empty(self._shape, **self._options))
        return [buffer[:rows] for buffer in self._buffers[:count]]

    def check_once(self) -> None:
        """Runs the value checks if they have not run in this call."""
        check, self._check = self._check, None
        if check is not None:
            check()


def rows_into(
    student_rows: torch.Tensor,
    teacher_rows: torch.Tensor | TopKTeacher,
    out: torch.Tensor,
    divergence: Divergence,
    workspace: Workspace,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-token losses of ``[n, V]`` rows; writes ``weights ⊙ ∂loss/∂student`` into ``out``.

    Rows whose fast loss is not finite are recomputed by the reference; when
    every row of a chunk is (a systematic ``-inf`` mask, such as a padded
    vocabulary), the rest of the call goes to the reference at once.

    Args:
        student_rows: ``[n, V]`` logits, any float dtype (the maths is in the
            workspace's dtype).
        teacher_rows: dense ``[n, V]`` logits or a :class:`TopKTeacher` ``[n, k]``.
        out: ``[n, V]``, the student's dtype; it may be ``student_rows`` itself,
            which is read before ``out`` is written.
        divergence: what to compute.
        workspace: the call's buffers and check state.
        weights: per-row factors ``[n, 1]`` (None: 1). A row of weight 0 gets an
            exact zero gradient, even where its loss is not finite.

    Returns:
        The ``[n]`` losses, unweighted, in the compute dtype.
    """
    if divergence.vanishes:
        workspace.check_once()
        out.zero_()
        return out.new_zeros(out.shape[0], dtype=workspace.dtype)
    if not isinstance(teacher_rows, TopKTeacher) and not workspace.use_reference:
        fast = _fast_rows(student_rows, teacher_rows, out, divergence, workspace, weights)
        if fast is not None:
            values, retry = fast
            if retry is not None:
                workspace.check_once()
                _retry_rows(retry, values, out, divergence, workspace.dtype, weights)
            return values
        workspace.use_reference = True
    workspace.check_once()
    return _reference_rows(student_rows, teacher_rows, out, divergence, workspace.dtype, weights)


def _reference_rows(
    student_rows: torch.Tensor,
    teacher_rows: torch.Tensor | TopKTeacher,
    out: torch.Tensor,
    divergence: Divergence,
    dtype: torch.dtype,
    weights: torch.Tensor | None,
) -> torch.Tensor:
    """:func:`rows_into` by the reference kernel (masked rows: an exact zero gradient)."""
    values, gradient = loss_and_gradient(student_rows.to(dtype), teacher_rows, divergence)
    if weights is None:
        out.copy_(gradient)
    else:
        torch.mul(gradient, weights, out=out).masked_fill_(weights == 0, 0.0)
    return values


class _Retry(NamedTuple):
    """Rows of a chunk whose fast loss was not finite, with copies of their inputs."""

    rows: torch.Tensor
    student: torch.Tensor
    teacher: torch.Tensor


def _retry_rows(
    retry: _Retry,
    values: torch.Tensor,
    out: torch.Tensor,
    divergence: Divergence,
    dtype: torch.dtype,
    weights: torch.Tensor | None,
) -> None:
    """Overwrites the retried rows of ``values`` and ``out`` with the reference's results."""
    patch = out.new_empty(retry.student.shape)
    row_weights = None if weights is None else weights.index_select(0, retry.rows)
    retried = _reference_rows(retry.student, retry.teacher, patch, divergence, dtype, row_weights)
    values.index_copy_(0, retry.rows, retried.to(values.dtype))
    out.index_copy_(0, retry.rows, patch)


def _scaled(rows: torch.Tensor, buffer: torch.Tensor, temperature: float) -> torch.Tensor:
    """``rows / T`` in ``buffer``'s dtype, written there (``rows`` itself when nothing changes)."""
    if rows.dtype != buffer.dtype:
        buffer.copy_(rows)
        return buffer if temperature == 1.0 else buffer.div_(temperature)
    return rows if temperature == 1.0 else torch.div(rows, temperature, out=buffer)


def _non_finite_rows(values: torch.Tensor) -> torch.Tensor | None:
    """The indices of the rows whose loss is not finite; None when every one is finite."""
    finite = torch.isfinite(values)
    return None if bool(finite.all()) else torch.nonzero(~finite).reshape(-1)


def _softmax_and_log_normaliser(
    scaled: torch.Tensor, out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(scaled)`` written into ``out``, and ``log Σ exp(scaled)`` per row.

    The normaliser costs two row maxima instead of a pass of ``exp``: at the
    row's largest logit the softmax is exactly ``1 / Σ exp(scaled - max)``.
    """
    probs = torch.softmax(scaled, -1, out=out)
    return probs, scaled.amax(-1).sub_(probs.amax(-1).log_())


def _fast_rows(
    student: torch.Tensor,
    teacher: torch.Tensor,
    out: torch.Tensor,
    divergence: Divergence,
    workspace: Workspace,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, _Retry | None] | None:
    """The losses, with the gradient in ``out``, and the rows to retry (None: all finite).

    None, with ``out`` untouched, when no row's loss is finite. With ``a = z_s / T``,
    ``b = z_t / T`` and their log-normalisers ``A``, ``B`` (``log q = a - A``,
    ``log p = b - B``): D(p‖q) = ⟨p, b - a⟩ - (B - A)·Σp, D(q‖p) = ⟨q, a - b⟩ -
    (A - B)·Σq, and the JSD terms likewise against ``log m``; the sums Σp, Σq
    (1 up to rounding) keep the cancellation exact. Two softmaxes are the only
    transcendental passes, bar the JSD's ``log m``.
    """
    t, beta = divergence.temperature, divergence.beta
    buffers = workspace.buffers(5 if divergence.direction == "jsd" else 4, student.shape[0])
    a = _scaled(student, buffers[0], t)
    b = _scaled(teacher, buffers[1], t)
    q, log_norm_q = _softmax_and_log_normaliser(a, buffers[2])
    p, log_norm_p = _softmax_and_log_normaliser(b, buffers[3])
    factor = 1.0 / t if weights is None else weights / t
    if divergence.direction == "forward":
        difference = torch.sub(b, a, out=buffers[1])
        values = _expectation(p, torch.linalg.vecdot(p, difference), log_norm_p - log_norm_q)
        gradient = (q.sub_(p), factor)  # (q - p) / T
    else:
        if divergence.direction == "reverse":
            centred = torch.sub(a, b, out=buffers[0])
            kl_q = torch.linalg.vecdot(q, centred)
            values = _expectation(q, kl_q, log_norm_q - log_norm_p)
        else:
            tiny = torch.finfo(q.dtype).tiny  # m = 0 only where p = q = 0: 0 · finite = 0
            log_m = torch.mul(p, beta, out=buffers[4]).add_(q, alpha=1.0 - beta)
            log_m = log_m.clamp_min_(tiny).log_()
            against_m = torch.sub(b, log_m, out=buffers[1])
            kl_p = _expectation(p, torch.linalg.vecdot(p, against_m), log_norm_p)
            centred = torch.sub(a, log_m, out=buffers[0])
            kl_q = torch.linalg.vecdot(q, centred)
            values = kl_p.mul_(beta).add_(_expectation(q, kl_q, log_norm_q), alpha=1.0 - beta)
            factor = factor * (1.0 - beta)
        gradient = (q, centred.sub_(kl_q[:, None]).mul_(factor))  # q (log q - log r - KL) / T
    rows = _non_finite_rows(values)
    if rows is not None and rows.numel() == values.numel():
        return None
    retry = None
    if rows is not None:  # copied before ``out``, which may be ``student``, is written
        retry = _Retry(rows, student.index_select(0, rows), teacher.index_select(0, rows))
    torch.mul(*gradient, out=out)
    return values, retry


def _expectation(probs: torch.Tensor, dot: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``Σ_j probs_j (x_j - shift)`` per row from ``dot = ⟨probs, x⟩``: ``dot - shift·Σ probs``."""
    return dot - shift * probs.sum(-1)
