"""The RL policy KL penalty as an ``nn.Module``: k1/k2/k3 in the loss or in the reward."""

from __future__ import annotations

import torch

from kldiv._validation import check_nonnegative_number
from kldiv.errors import KLDivError
from kldiv.estimators._policy import check_estimator, policy_kl
from kldiv.torch._reduction import check_reduction, reduce_items

__all__ = ["KLPenalty"]

MODES = ("loss", "reward")

_ARGUMENT_NAMES = (
    ("log_p", "logprobs"),
    ("log_ref", "ref_logprobs"),
    ("log_behavior", "old_logprobs"),
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

    Args:
        estimator: ``"k1"``, ``"k2"`` or ``"k3"``.
        coef: the penalty weight β, finite and >= 0 (an attribute: adaptive KL
            controllers may change ``module.coef`` between steps).
        mode: ``"loss"`` or ``"reward"``.
        reduction: for ``mode="loss"``: ``"mean"`` (over the tokens that count,
            or over ``num_items``), ``"sum"`` or ``"none"``. Unused for rewards.

    Raises:
        KLDivError: an unknown ``estimator``, ``mode`` or ``reduction``, or a
            ``coef`` that is not a finite number >= 0.

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
    ) -> None:
        super().__init__()
        self.estimator = check_estimator(estimator)
        self.coef = check_nonnegative_number(coef, "coef")
        if mode not in MODES:
            raise KLDivError(f"`mode` must be one of {list(MODES)}; got {mode!r}")
        self.mode = mode
        self.reduction = check_reduction(reduction)

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
        tensors = [(logprobs, "logprobs"), (ref_logprobs, "ref_logprobs")]
        if old_logprobs is not None:
            tensors.append((old_logprobs, "old_logprobs"))
        inputs = [_check_tensor(t, name) for t, name in tensors]
        if self.mode == "reward" and num_items is not None:
            raise KLDivError("`num_items` applies to mode='loss' only; got it in mode='reward'")
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
        log_behavior = inputs[2] if len(inputs) == 3 else None
        try:
            return policy_kl(
                inputs[0], inputs[1], estimator=self.estimator, log_behavior=log_behavior
            )
        except KLDivError as err:  # name the arguments as this module's caller wrote them
            message = str(err)
            for core, ours in _ARGUMENT_NAMES:
                message = message.replace(f"`{core}`", f"`{ours}`")
            raise KLDivError(message) from None

    @staticmethod
    def _scaled(values: torch.Tensor, coef: float) -> torch.Tensor:
        """``coef * values``, with ``coef = 0`` an exact 0 (not NaN) where a value is inf."""
        if coef == 0:
            zero = torch.zeros((), dtype=values.dtype, device=values.device)
            return torch.where(torch.isfinite(values), values, zero) * 0.0
        return coef * values
