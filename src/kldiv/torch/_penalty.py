"""The RL policy KL penalty as an ``nn.Module``: k1/k2/k3 in the loss or in the reward.

The maths is :func:`kldiv.estimators.policy_kl`. In loss mode, float32 and
float64 inputs are first computed in a few fused ATen calls (the mask and the
mean folded into per-token weights, one multiplication), which is exact whenever
every counted log-probability is finite, and then the result is finite too.
Otherwise (``-inf`` log-probabilities and their conventions, invalid input to
be reported, an importance weight beyond float32) and for half precision,
broadcasting masks and ``torch.compile``, ``policy_kl`` computes it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from kldiv._validation import check_nonnegative_number, resolve_validate
from kldiv.errors import KLDivError
from kldiv.estimators._policy import check_estimator, policy_kl
from kldiv.torch._eager import FLOATS, broadcasts_into, constant, eager_tensors, summed_to
from kldiv.torch._reduction import check_num_items, check_reduction, reduce_items

__all__ = ["KLPenalty"]

MODES = ("loss", "reward")

_ARGUMENT_NAMES = (
    ("log_p", "logprobs"),
    ("log_ref", "ref_logprobs"),
    ("log_behavior", "old_logprobs"),
)


def _wider_than(inputs: list[torch.Tensor]) -> bool:
    """Whether their maths (float32 or narrower) can be widened to float64 on their device."""
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in inputs))
    return (
        dtype.is_floating_point
        and torch.finfo(dtype).bits <= 32
        and inputs[0].device.type in ("cpu", "cuda")
    )


def _check_tensor(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise KLDivError(f"`{name}` must be a torch.Tensor; got {type(value).__name__}")
    return value


def _check_mask(mask: object, shape: torch.Size) -> torch.Tensor:
    mask = _check_tensor(mask, "mask")
    if mask.dtype.is_floating_point or mask.dtype.is_complex:
        raise KLDivError(
            f"`mask` must hold booleans or integers (True / 1 for tokens that count); "
            f"got dtype {mask.dtype}"
        )
    if mask.shape != shape:
        raise KLDivError(
            f"`mask` must have the shape of the per-token log-probabilities {tuple(shape)}; "
            f"got {tuple(mask.shape)}"
        )
    return mask if mask.dtype == torch.bool else mask != 0


def _token_values(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Each token's estimate up to its constant factor, ``f``, and a piece of its derivative.

    With :math:`\ell = \log\pi_{ref} - \log\pi`, as :func:`~kldiv.estimators.policy_kl`:
    k1: :math:`f = -\ell`; k2: :math:`f = \ell^2` (:math:`k_2 = f / 2`); k3:
    :math:`f = \operatorname{expm1}(\ell) - \ell`. The derivative in
    :math:`\log\pi_{ref}` is :math:`f' = -1` (k1, returned as None),
    :math:`2 \ell` (k2, returned as :math:`\ell`) or :math:`\operatorname{expm1}(\ell)` (k3).
    Finite inputs only: the ``-inf`` conventions are the reference path's.

    Examples:
        >>> import torch
        >>> _token_values(torch.tensor([-1.0]), torch.tensor([-2.0]), "k3")
        (tensor([0.3679]), tensor([-0.6321]))
    """
    if estimator == "k1":
        return logprobs - ref_logprobs, None
    log_r = ref_logprobs - logprobs
    if estimator == "k2":
        return log_r * log_r, log_r
    e = torch.expm1(log_r)
    return e - log_r, e


def _weighted_total(values: torch.Tensor, weights: torch.Tensor, rows: bool) -> torch.Tensor:
    r"""The per-token ``values`` times their weights (``rows``), or the weighted sum.

    ``weights`` holds each token's factor (the mask as 0/1 floats times the
    coefficient over the count) or is a 0-d tensor, every token's factor: the
    mask, the coefficient and the mean's division are one multiplication.

    Examples:
        >>> import torch
        >>> _weighted_total(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.0]), False)
        tensor(0.5000)
    """
    if rows:
        return values * weights
    if weights.ndim == 0:
        return values.sum() * weights
    return (values * weights).sum()


_SLOPES = {"k2": 2.0, "k3": 1.0}
"""``f' = slope * d`` for the ``d`` of :func:`_token_values`."""


def _token_grads(
    estimator: str,
    f: torch.Tensor,
    d: torch.Tensor | None,
    w: torch.Tensor | None,
    s: torch.Tensor,
    needs: tuple[bool, ...],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    r"""Gradients of :math:`\sum_t s_t\,w_t f_t` in ``(logprobs, ref_logprobs, old_logprobs)``.

    With :math:`f'` the derivative of ``f`` in ``ref_logprobs`` (:func:`_token_values`)
    and :math:`w = e^{\log\pi - \log\mu}` (1 without ``old_logprobs``):

    .. math::

        \partial_{\log\pi} = s\,w\,(f - f'), \quad
        \partial_{\log\pi_{ref}} = s\,w\,f', \quad
        \partial_{\log\mu} = -s\,w\,f

    (the :math:`f` term only with the weight), one or two ATen calls each.
    ``s`` is the upstream gradient times the token weights, or a scalar.

    Examples:
        >>> import torch
        >>> f, d = _token_values(torch.tensor([-1.0]), torch.tensor([-2.0]), "k3")
        >>> _token_grads("k3", f, d, None, torch.tensor(1.0), (True, True, False))
        (tensor([0.6321]), tensor([-0.6321]), None)
    """
    zero = constant(0.0, f)
    if w is not None:
        s = w * s
    if estimator == "k1":  # f' = -1
        s = s.expand(f.shape)
        policy = s if w is None else torch.addcmul(s, f, s)
        behavior = None if w is None else _product(zero, f, s, -1.0, needs[2])
        return (policy if needs[0] else None), (-s if needs[1] else None), behavior
    slope = _SLOPES[estimator]
    ref = _product(zero, d, s, slope, needs[1])
    if w is None:
        return _product(zero, d, s, -slope, needs[0]), ref, None
    policy = torch.add(f, d, alpha=-slope) * s if needs[0] else None
    return policy, ref, _product(zero, f, s, -1.0, needs[2])


def _product(
    zero: torch.Tensor, a: torch.Tensor, b: torch.Tensor, factor: float, needed: bool
) -> torch.Tensor | None:
    """``factor * a * b`` in one ATen call (``addcmul`` onto a 0-d zero), if ``needed``."""
    return torch.addcmul(zero, a, b, value=factor) if needed else None


class _TokenPenalty(torch.autograd.Function):
    r"""The weighted k1/k2/k3 estimates (importance-weighted or not) with an analytic backward.

    Forward: :math:`\sum_t c_t\,w_t f_t` (``rows``: per token), with ``f`` of
    :func:`_token_values`, :math:`w = \exp(\log\pi - \log\mu)` and ``weights``
    :math:`c` (per token, or one 0-d factor); with ``guard``, plus
    :math:`0 \cdot \sum_t c_t \log w_t`, which is NaN for a ``+inf``
    ``old_logprobs`` that a weight of 0 would hide. For finite inputs only:
    the module checks that the result is finite and otherwise computes the
    call again with :func:`kldiv.estimators.policy_kl`. Backward: two ATen calls
    per input (:func:`_token_grads`) where autograd through ``expm1`` takes six;
    under ``create_graph=True`` the pieces are recomputed from the inputs,
    differentiably, so double backward works.
    """

    @staticmethod
    def forward(
        ctx: Any,
        logprobs: torch.Tensor,
        ref_logprobs: torch.Tensor,
        old_logprobs: torch.Tensor | None,
        weights: torch.Tensor,
        plan: tuple[str, bool, bool],
    ) -> torch.Tensor:
        estimator, rows, guard = plan
        f, d = _token_values(logprobs, ref_logprobs, estimator)
        w = None
        if old_logprobs is not None:
            log_w = logprobs - old_logprobs
            w = torch.exp(log_w)
        total = _weighted_total(f if w is None else w * f, weights, rows)
        if w is not None and guard:
            total = total.add_(_weighted_total(log_w, weights, False).mul_(0.0))
        ctx.save_for_backward(f, d, w, weights, logprobs, ref_logprobs, old_logprobs)
        ctx.estimator = estimator
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        f, d, w, weights, logprobs, ref_logprobs, old_logprobs = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: recompute, differentiably
            f, d = _token_values(logprobs, ref_logprobs, ctx.estimator)
            if old_logprobs is not None:
                w = torch.exp(logprobs - old_logprobs)
        policy, ref, behavior = _token_grads(
            ctx.estimator, f, d, w, grad * weights, ctx.needs_input_grad
        )
        if ref is not None:
            ref = summed_to(ref, ref_logprobs)
        if behavior is not None:
            behavior = summed_to(behavior, old_logprobs)
        return policy, ref, behavior, None, None


def _as_dtype(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor if tensor.dtype is dtype else tensor.to(dtype)


def _as_floats(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask as 0/1 floats, read as bytes: casting ``uint8`` is vectorised, ``bool`` not.

    Examples:
        >>> import torch
        >>> _as_floats(torch.tensor([True, False]), torch.float32)
        tensor([1., 0.])
    """
    return mask.view(torch.uint8).to(dtype)


_MASK_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _fused_applies(
    logprobs: object, ref_logprobs: object, old_logprobs: object, mask: object
) -> bool:
    """Whether :meth:`KLPenalty._fused` takes these inputs (else: ``policy_kl``).

    Plain float32/float64 tensors of one dtype, ``logprobs`` of the broadcast
    shape, a boolean or integer mask of that shape, eager mode. Anything else,
    bad input to be reported included, is the reference path's.
    """
    if not eager_tensors(logprobs, ref_logprobs, old_logprobs, mask):
        return False
    dtype, shape = logprobs.dtype, logprobs.shape
    return (
        dtype in FLOATS
        and ref_logprobs.dtype is dtype
        and broadcasts_into(ref_logprobs.shape, shape)
        and (
            old_logprobs is None
            or (old_logprobs.dtype is dtype and broadcasts_into(old_logprobs.shape, shape))
        )
        and (mask is None or (mask.dtype in _MASK_DTYPES and mask.shape == shape))
    )


class KLPenalty(torch.nn.Module):
    r"""The KL penalty :math:`\beta\, D_{KL}(\pi \| \pi_{ref})` of RLHF, from sampled tokens.

    A thin module over :func:`kldiv.estimators.policy_kl`, which holds the
    maths (the estimators k1, k2, k3, their biases and the conventions at
    ``-inf``). Two ways to use it:

    - ``mode="loss"`` (GRPO): returns
      ``coef * reduce(k)``, differentiable through ``logprobs``, to add to the
      policy loss. Use ``estimator="k2"`` for the unbiased gradient of the
      reverse KL; ``"k3"`` (TRL's GRPO) follows the *forward* KL's gradient
      unless ``old_logprobs`` is given (the importance weight makes its
      gradient that of the reverse KL).
    - ``mode="reward"`` (PPO, RLOO): returns the per-token penalty
      ``-coef * k``, detached and 0 at masked tokens, to add to the rewards.
      Use ``estimator="k1"``: REINFORCE on k1 is the unbiased reverse-KL gradient.

    Masked tokens are never looked at: their log-probabilities may be anything
    (padding values, NaN, +inf) and they contribute an exact 0 to the value and
    the gradient.

    Speed: in loss mode, float32 and float64 tensors are computed in a few
    fused ATen calls (the mask, ``coef`` and the mean as one per-token factor;
    k2 and k3 with an analytic backward), and the result is read once (one
    host synchronisation, which the input checks need anyway): if it is not
    finite (``-inf`` log-probabilities, invalid input, NaN padding) the call is
    computed again by ``policy_kl``, which applies the conventions and raises
    on bad input. Importance weights ``exp(logprobs - old_logprobs)`` beyond
    float32's range are then computed in float64: the penalty is ``+inf``
    where its true value is beyond float32, never NaN.

    Args:
        estimator: ``"k1"``, ``"k2"`` or ``"k3"``.
        coef: the penalty weight β, finite and >= 0 (an attribute: adaptive KL
            controllers may change ``module.coef`` between steps).
        mode: ``"loss"`` or ``"reward"``.
        reduction: for ``mode="loss"``: ``"mean"`` (over the tokens that count,
            or over ``num_items``), ``"sum"`` or ``"none"``. Unused for rewards.
        validate: raise a :class:`~kldiv.KLDivError` naming the argument for NaN
            or ``+inf`` counted log-probabilities, or a token the behaviour
            policy could not have drawn (see :func:`~kldiv.estimators.policy_kl`),
            instead of returning NaN; None uses :func:`kldiv.set_default_validate`'s
            setting. Skipped under ``torch.compile``.

    Raises:
        KLDivError: an unknown ``estimator``, ``mode`` or ``reduction``, a
            ``coef`` that is not a finite number >= 0, or a ``validate`` that is
            not True, False or None.

    Examples:
        >>> import torch
        >>> from kldiv.torch._penalty import KLPenalty
        >>> logprobs = torch.log(torch.tensor([[0.5, 0.25], [0.25, 0.5]])).requires_grad_()
        >>> ref_logprobs = torch.log(torch.tensor([[0.25, 0.25], [0.5, 0.5]]))
        >>> mask = torch.tensor([[True, True], [True, False]])
        >>> penalty = KLPenalty(estimator="k3", coef=0.1)
        >>> loss = penalty(logprobs, ref_logprobs, mask)
        >>> round(loss.item(), 6)  # 0.1 * mean of k3 = [0.1931, 0, 0.3069] over 3 tokens
        0.016667
        >>> loss.backward()
        >>> reward = KLPenalty(estimator="k1", coef=0.1, mode="reward")
        >>> reward(logprobs, ref_logprobs, mask)
        tensor([[-0.0693, -0.0000],
                [ 0.0693,  0.0000]])
    """

    def __init__(
        self,
        *,
        estimator: str = "k3",
        coef: float = 0.1,
        mode: str = "loss",
        reduction: str = "mean",
        validate: bool | None = None,
    ) -> None:
        super().__init__()
        self.estimator = check_estimator(estimator)
        self.coef = check_nonnegative_number(coef, "coef")
        if mode not in MODES:
            raise KLDivError(f"`mode` must be one of {list(MODES)}; got {mode!r}")
        self.mode = mode
        self.reduction = check_reduction(reduction)
        self.validate = resolve_validate(validate) if validate is not None else None

    def extra_repr(self) -> str:
        """The configuration, shown by ``repr``."""
        return (
            f"estimator={self.estimator!r}, coef={self.coef}, mode={self.mode!r}, "
            f"reduction={self.reduction!r}"
        )

    def forward(
        self,
        logprobs: torch.Tensor,
        ref_logprobs: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        old_logprobs: torch.Tensor | None = None,
        num_items: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """The penalty of one batch of sampled tokens.

        Args:
            logprobs: log-probabilities of the sampled tokens under the policy
                being trained, e.g. ``[batch, seq]``.
            ref_logprobs: the same tokens' log-probabilities under the reference
                policy; broadcasts against ``logprobs``.
            mask: booleans (or 0/1 integers) of the broadcast shape, True for the
                tokens that count (completion tokens, not padding).
            old_logprobs: the tokens' log-probabilities under the policy that
                sampled them (vLLM, or the policy before this update): each
                estimate is then weighted by ``exp(logprobs - old_logprobs)``.
            num_items: ``mode="loss"``, ``reduction="mean"`` only: the
                denominator, e.g. the global token count under gradient
                accumulation or DDP (:func:`kldiv.torch.count_items`).

        Returns:
            ``mode="loss"``: a scalar (``"mean"``, ``"sum"``) or the masked
            per-token losses (``"none"``), times ``coef``. ``mode="reward"``:
            ``-coef * k`` per token, detached, 0 where masked.

        Raises:
            KLDivError: inputs that are not tensors, a bad mask, ``num_items`` in
                reward mode, or invalid log-probabilities (see
                :func:`~kldiv.estimators.policy_kl`).
        """
        if self.mode == "loss":
            value = self._fused(logprobs, ref_logprobs, old_logprobs, mask, num_items)
            if value is not None:
                return value
        elif num_items is not None:
            raise KLDivError("`num_items` applies to mode='loss' only; got it in mode='reward'")
        return self._reference(logprobs, ref_logprobs, mask, old_logprobs, num_items)

    def _fused(
        self,
        logprobs: object,
        ref_logprobs: object,
        old_logprobs: object,
        mask: object,
        num_items: object,
    ) -> torch.Tensor | None:
        """The loss in a few fused ATen calls, or None: the reference path is to compute it.

        The mask and the mean enter as per-token weights (:meth:`_weights`)
        applied in one multiplication, with no masked copies of the inputs. The result
        is then exact whenever it is finite, i.e. whenever every counted input
        is finite, and reading it (one host synchronisation, paid anyway when
        validating and free on the CPU) decides: a non-finite result (``-inf``
        log-probabilities and their conventions, invalid input to be reported,
        NaN padding, an importance weight beyond float32) returns None.
        """
        if not _fused_applies(logprobs, ref_logprobs, old_logprobs, mask):
            return None
        if num_items is not None:
            check_num_items(num_items)
        validate = resolve_validate(self.validate)
        if not (validate or logprobs.device.type == "cpu"):
            return None
        weights = self._weights(logprobs, mask, num_items)
        rows = self.reduction == "none"
        if self.estimator == "k1" and old_logprobs is None:  # autograd's backward is as short
            value = _weighted_total(logprobs - ref_logprobs, weights, rows)
        else:
            plan = (self.estimator, rows, validate)
            value = _TokenPenalty.apply(logprobs, ref_logprobs, old_logprobs, weights, plan)
        check = value.detach().sum() if rows else value
        return value if math.isfinite(check.item()) else None

    def _weights(
        self, logprobs: torch.Tensor, mask: torch.Tensor | None, num_items: object
    ) -> torch.Tensor:
        """Each token's factor, ``coef * mask / n`` (``"mean"``), or one 0-d factor without a mask.

        ``n`` is ``num_items`` or the count of the mask (or of the tokens). A
        tensor ``n`` is not clamped to 1: when it is 0 the result is NaN, and
        the reference path, which clamps it, computes the call again.
        """
        coef = self.coef * (0.5 if self.estimator == "k2" else 1.0)
        dtype, mean = logprobs.dtype, self.reduction == "mean"
        if mask is None:
            if mean and isinstance(num_items, torch.Tensor):
                return constant(coef, logprobs) / _as_dtype(num_items, dtype)
            if mean:
                coef /= max(float(logprobs.numel() if num_items is None else num_items), 1.0)
            return constant(coef, logprobs)
        counted = _as_floats(mask if mask.dtype is torch.bool else mask != 0, dtype)
        count = counted.sum() if mean and num_items is None else num_items
        if not mean:
            return counted.mul_(constant(coef, counted))
        if isinstance(count, torch.Tensor):
            return counted.mul_(constant(coef, counted) / _as_dtype(count, dtype))
        return counted.mul_(constant(coef / max(float(count), 1.0), counted))

    def _reference(
        self,
        logprobs: torch.Tensor,
        ref_logprobs: torch.Tensor,
        mask: torch.Tensor | None,
        old_logprobs: torch.Tensor | None,
        num_items: torch.Tensor | float | None,
    ) -> torch.Tensor:
        """The penalty by plain autograd through :func:`kldiv.estimators.policy_kl`."""
        tensors = [(logprobs, "logprobs"), (ref_logprobs, "ref_logprobs")]
        if old_logprobs is not None:
            tensors.append((old_logprobs, "old_logprobs"))
        inputs = [_check_tensor(t, name) for t, name in tensors]
        if mask is not None:
            try:
                shape = torch.broadcast_shapes(*(t.shape for t in inputs))
            except RuntimeError:
                described = ", ".join(f"`{n}` {tuple(t.shape)}" for t, n in tensors)
                raise KLDivError(f"the inputs' shapes do not broadcast: {described}") from None
            mask = _check_mask(mask, shape)
            # Masked tokens become log-probabilities 0 under every policy: estimate 0,
            # gradient 0, and padding values never reach the checks.
            inputs = [torch.where(mask, t, 0.0) for t in inputs]
        if self.mode == "reward":
            with torch.no_grad():
                # + 0.0 turns the -0.0 of a zero estimate into 0.0.
                return -self._scaled(self._estimate(inputs), self.coef) + 0.0
        values = reduce_items(
            self._estimate(inputs), reduction=self.reduction, mask=mask, num_items=num_items
        )
        return self._scaled(values, self.coef)

    def _estimate(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """``policy_kl`` of the inputs; importance-weighted float32 maths is done in float64.

        ``exp(logprobs - old_logprobs)`` overflows float32 beyond a log-ratio of
        88.7 (and then ``inf * 0`` is NaN); in float64 the weight stays finite
        up to 709, and the result, cast back, is ``+inf`` only where its true
        value is beyond float32's range.
        """
        log_behavior = inputs[2] if len(inputs) == 3 else None
        widen = log_behavior is not None and _wider_than(inputs)
        if widen:
            inputs = [t.to(torch.float64) for t in inputs]
            log_behavior = inputs[2]
        try:
            values = policy_kl(
                inputs[0],
                inputs[1],
                estimator=self.estimator,
                log_behavior=log_behavior,
                validate=self.validate,
            )
        except KLDivError as err:  # name the arguments as this module's caller wrote them
            message = str(err)
            for core, ours in _ARGUMENT_NAMES:
                message = message.replace(f"`{core}`", f"`{ours}`")
            raise KLDivError(message) from None
        return values.to(torch.float32) if widen else values

    @staticmethod
    def _scaled(values: torch.Tensor, coef: float) -> torch.Tensor:
        """``coef * values``, with ``coef = 0`` an exact 0 (not NaN) where a value is inf."""
        if coef == 0:
            zero = torch.zeros((), dtype=values.dtype, device=values.device)
            return torch.where(torch.isfinite(values), values, zero) * 0.0
        return coef * values
