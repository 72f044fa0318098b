r"""The VAE KL term as PyTorch losses: β-VAE weight, free bits and the capacity objective.

The maths is :func:`kldiv._gaussian.diagonal_gaussian_kl` and
:func:`kldiv._gaussian.full_covariance_gaussian_kl`; these modules hold the
configuration and the batch-level parts that only a training loss has:
masking, the reduction, the free-bits floor and the capacity target.

Both objectives below are *batch statistics* of the counted samples. With
``num_items`` (gradient accumulation, DDP) each micro-batch applies them to its
own samples and is weighted by its share ``n / num_items`` of the global
batch, so that ``mean`` over micro-batches stays the weighted mean of the
per-micro-batch objectives and equals the plain objective when there is one.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from kldiv._gaussian import diagonal_gaussian_kl, full_covariance_gaussian_kl
from kldiv._validation import check_nonnegative_number, resolve_validate
from kldiv.errors import KLDivError
from kldiv.torch._reduction import check_reduction, reduce_items

__all__ = ["FullCovarianceGaussianKLLoss", "GaussianKLLoss"]


def _capacity(value: object) -> float | torch.Tensor | None:
    """None, a finite number >= 0, or a scalar tensor (not inspected: no host sync)."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise KLDivError(
                f"`capacity` must be None, a finite number >= 0 or a one-element tensor; "
                f"got a tensor of shape {tuple(value.shape)}"
            )
        return value.reshape(())
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise KLDivError(f"`capacity` must be None or a finite number >= 0 (nats); got {value!r}")
    return float(value)


def _batch_shape(named: dict[str, torch.Tensor | None], event_dims: dict[str, int]) -> tuple:
    """The broadcast shape of the inputs without their event dims (1 or 2 trailing)."""
    shapes = {}
    for name, tensor in named.items():
        if tensor is None:
            continue
        if tensor.ndim < event_dims[name]:
            raise KLDivError(
                f"`{name}` must have at least {event_dims[name]} dimension(s) (the latent "
                f"axis last); got shape {tuple(tensor.shape)}"
            )
        shapes[name] = tuple(tensor.shape[: tensor.ndim - event_dims[name]])
    try:
        return tuple(torch.broadcast_shapes(*shapes.values()))
    except RuntimeError:
        described = ", ".join(f"`{n}` {s}" for n, s in shapes.items())
        raise KLDivError(
            f"the inputs' batch shapes (all but the latent axes) do not broadcast: {described}"
        ) from None


def _check_mask(mask: torch.Tensor, batch_shape: tuple) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise KLDivError(f"`mask` must be a boolean tensor; got {got}")
    if tuple(mask.shape) != batch_shape:
        raise KLDivError(
            f"`mask` must have the inputs' batch shape {batch_shape} (one entry per sample, "
            f"no latent axis); got {tuple(mask.shape)}"
        )
    return mask


def _where(keep: torch.Tensor, value: torch.Tensor | None, fill: float | torch.Tensor):
    """``value`` where ``keep``, a safe ``fill`` elsewhere (so padding never makes NaN)."""
    if value is None:
        return None
    if not isinstance(fill, torch.Tensor):
        fill = torch.zeros((), dtype=value.dtype, device=value.device) + fill
    return torch.where(keep, value, fill)


def _count(mask: torch.Tensor | None, batch_shape: tuple) -> torch.Tensor | int:
    """The number of counted samples of this batch."""
    return mask.sum() if mask is not None else math.prod(batch_shape)


class _GaussianKLBase(nn.Module):
    """Configuration and the batch-level objective shared by both losses."""

    def __init__(self, *, beta: float, capacity: float | None, reduction: str) -> None:
        super().__init__()
        self.beta = check_nonnegative_number(beta, "beta")
        self.capacity = _capacity(capacity)
        if isinstance(self.capacity, torch.Tensor):
            raise KLDivError(
                "`capacity` given to the constructor must be None or a number; pass tensors "
                "per call"
            )
        self.reduction = check_reduction(reduction)
        if self.capacity is not None and self.reduction == "none":
            raise KLDivError(
                "`capacity` is a target for the batch-mean KL and needs reduction 'mean' or "
                "'sum'; got reduction='none'"
            )

    def _resolve_capacity(self, capacity: object) -> float | torch.Tensor | None:
        if capacity is None:
            return self.capacity
        capacity = _capacity(capacity)
        if self.reduction == "none":
            raise KLDivError(
                "`capacity` is a target for the batch-mean KL and needs reduction 'mean' or "
                "'sum'; this loss has reduction='none'"
            )
        return capacity

    def _objective(
        self,
        total: torch.Tensor,
        count: torch.Tensor | int,
        *,
        capacity: float | torch.Tensor | None,
        num_items: torch.Tensor | float | None,
    ) -> torch.Tensor:
        """``beta * |total - C n| / N`` ("mean") or ``beta * |total - C n|`` ("sum")."""
        if capacity is not None:
            total = (total - capacity * count).abs()
        if self.reduction == "mean":
            denominator = count if num_items is None else num_items
            total = reduce_items(total.reshape(1), reduction="mean", num_items=denominator)
        return self.beta * total


class GaussianKLLoss(_GaussianKLBase):
    r"""The VAE KL term: diagonal-Gaussian posterior against N(0, I) or a diagonal prior.

    For a posterior :math:`q(z \mid x_b) = \mathcal N(\mu_b, \operatorname{diag} e^{v_b})`
    and a prior :math:`\mathcal N(m, \operatorname{diag} e^{w})` (default
    :math:`\mathcal N(0, I)`), each sample's KL is summed over the latent (last) axis,

    .. math::

        \mathrm{KL}_{b,d} = \tfrac12 \big[ e^{v_{bd} - w_d} + (\mu_{bd} - m_d)^2 e^{-w_d}
            - 1 - v_{bd} + w_d \big], \qquad
        \mathrm{KL}_b = \sum_d \mathrm{KL}_{b,d},

    and the loss is :math:`\beta\,\overline{\mathrm{KL}}` with
    :math:`\overline{\mathrm{KL}}` the mean over every leading dimension and the
    mask (``"mean"``, the "batchmean" of a VAE), the sum (``"sum"``) or the
    per-sample values (``"none"``).

    **Free bits** (Kingma et al. 2016): with ``free_bits`` :math:`\lambda > 0`
    each latent dimension's batch-mean KL is floored at :math:`\lambda` nats,

    .. math::

        \overline{\mathrm{KL}} = \sum_d \max\big(\lambda, \tfrac1n \textstyle\sum_b
            \mathrm{KL}_{b,d}\big),

    so a dimension that uses less than :math:`\lambda` nats gets no gradient
    from the KL term (it is free to encode information) instead of being pushed
    to collapse onto the prior. ``"sum"`` multiplies this by the counted batch
    size :math:`n`; ``"none"`` is refused, the floor being a batch statistic.

    **Capacity** (Burgess et al. 2018): with a target :math:`C` nats the loss is
    :math:`\beta\,|\overline{\mathrm{KL}} - C|` (``"sum"``: :math:`n` times it),
    which pulls the KL *towards* :math:`C`; raise :math:`C` during training
    (pass ``capacity=`` per call from a schedule) to let the code grow capacity
    gradually. Like free bits it needs ``"mean"`` or ``"sum"``.

    Half-precision inputs are computed and returned in float32.

    Args:
        beta: the weight :math:`\beta \ge 0` of the KL term (β-VAE; a KL warm-up
            schedule can set ``loss.beta`` every step, or scale the result).
        free_bits: :math:`\lambda \ge 0` nats per latent dimension; 0 is off.
        capacity: :math:`C \ge 0` nats, or None for the plain β-weighted KL. A
            per-call ``capacity`` overrides it.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Raises:
        KLDivError: a negative or non-finite ``beta``, ``free_bits`` or
            ``capacity``, a bad ``reduction``, or free bits or capacity with
            ``reduction="none"``.

    Examples:
        >>> import torch
        >>> mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
        >>> GaussianKLLoss()(mu, logvar)
        tensor(0.5000)
        >>> GaussianKLLoss(free_bits=0.1)(mu, logvar)  # the 2nd dimension is floored
        tensor(0.6000)
        >>> GaussianKLLoss(beta=4.0, capacity=2.0)(mu, logvar)
        tensor(6.)

    References:
        Kingma, D. P. et al. (2016). Improved variational inference with inverse
        autoregressive flow. NeurIPS.

        Burgess, C. P. et al. (2018). Understanding disentangling in β-VAE.
        arXiv:1804.03599.
    """

    def __init__(
        self,
        *,
        beta: float = 1.0,
        free_bits: float = 0.0,
        capacity: float | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(beta=beta, capacity=capacity, reduction=reduction)
        self.free_bits = check_nonnegative_number(free_bits, "free_bits")
        if self.free_bits > 0 and self.reduction == "none":
            raise KLDivError(
                "`free_bits` floors each dimension's batch-mean KL and needs reduction 'mean' "
                "or 'sum'; got reduction='none'"
            )

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, free_bits={self.free_bits}, capacity={self.capacity}, "
            f"reduction={self.reduction!r}"
        )

    def forward(
        self,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        prior_mu: torch.Tensor | None = None,
        prior_logvar: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        num_items: torch.Tensor | float | None = None,
        capacity: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The β-weighted KL term of a batch of diagonal-Gaussian posteriors.

        Args:
            mu: posterior means, ``[..., d]`` (latent axis last).
            logvar: posterior log-variances; broadcasts against ``mu``.
            prior_mu: prior means, broadcasting against ``mu``; None is 0.
            prior_logvar: prior log-variances; None is 0 (unit variance).
            mask: booleans of the batch shape ``[...]``, True for samples that
                count. Masked samples contribute an exact 0 to the value and to
                every gradient, whatever their inputs (NaN padding included).
            num_items: the denominator of ``"mean"`` (see
                :func:`kldiv.torch.count_items`); None counts this batch.
            capacity: overrides the constructor's ``capacity`` for this call.

        Returns:
            A scalar for ``"mean"`` and ``"sum"``, the batch shape for ``"none"``;
            float32 for half-precision inputs.
        """
        capacity = self._resolve_capacity(capacity)
        tensors = {"mu": mu, "logvar": logvar, "prior_mu": prior_mu, "prior_logvar": prior_logvar}
        batch_shape = _batch_shape(tensors, dict.fromkeys(tensors, 1))
        if mask is not None:
            keep = _check_mask(mask, batch_shape).unsqueeze(-1)
            mu, logvar = _where(keep, mu, 0.0), _where(keep, logvar, 0.0)
            prior_mu, prior_logvar = _where(keep, prior_mu, 0.0), _where(keep, prior_logvar, 0.0)
        kl = diagonal_gaussian_kl(mu, logvar, prior_mu, prior_logvar)
        if self.free_bits == 0 and capacity is None:
            return self.beta * reduce_items(
                kl.sum(-1), reduction=self.reduction, mask=mask, num_items=num_items
            )
        count = _count(mask, batch_shape)
        if self.free_bits > 0:
            per_dim = kl.reshape(-1, kl.shape[-1]).sum(0)
            floor = self.free_bits * count
            floor = floor.to(per_dim) if isinstance(floor, torch.Tensor) else floor
            total = torch.clamp(per_dim, min=floor).sum()
        else:
            total = kl.sum()
        return self._objective(total, count, capacity=capacity, num_items=num_items)


class FullCovarianceGaussianKLLoss(_GaussianKLBase):
    r"""The VAE KL term for full-covariance Gaussian posteriors given by Cholesky factors.

    Each sample's :math:`D_{KL}(\mathcal N(\mu_b, L_b L_b^\top) \,\|\, \mathcal N(m, M M^\top))`
    (default prior :math:`\mathcal N(0, I)`), computed with triangular solves
    (see :func:`kldiv._gaussian.full_covariance_gaussian_kl`), reduced and
    weighted like :class:`GaussianKLLoss`: :math:`\beta\,\overline{\mathrm{KL}}`,
    or :math:`\beta\,|\overline{\mathrm{KL}} - C|` with a capacity. There are no
    free bits: the latent dimensions are correlated, so a per-dimension KL is
    not defined.

    Args:
        beta: the weight :math:`\beta \ge 0` of the KL term.
        capacity: :math:`C \ge 0` nats, or None; a per-call ``capacity`` overrides it.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        validate: check eagerly that the factors are lower triangular with a
            positive diagonal (one host synchronisation per call); None uses
            :func:`kldiv.set_default_validate`'s setting. Skipped under
            ``torch.compile``.

    Raises:
        KLDivError: as :class:`GaussianKLLoss`.

    Examples:
        >>> import torch
        >>> mu = torch.tensor([[1.0, 0.0]])
        >>> scale_tril = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
        >>> FullCovarianceGaussianKLLoss()(mu, scale_tril)
        tensor(0.5000)
    """

    def __init__(
        self,
        *,
        beta: float = 1.0,
        capacity: float | None = None,
        reduction: str = "mean",
        validate: bool | None = None,
    ) -> None:
        super().__init__(beta=beta, capacity=capacity, reduction=reduction)
        if validate is not None:
            resolve_validate(validate)
        self.validate = validate

    def extra_repr(self) -> str:
        return f"beta={self.beta}, capacity={self.capacity}, reduction={self.reduction!r}"

    def forward(
        self,
        mu: torch.Tensor,
        scale_tril: torch.Tensor,
        prior_mu: torch.Tensor | None = None,
        prior_scale_tril: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        num_items: torch.Tensor | float | None = None,
        capacity: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The β-weighted KL term of a batch of full-covariance Gaussian posteriors.

        Args:
            mu: posterior means, ``[..., k]``.
            scale_tril: lower Cholesky factors of the posterior covariances,
                ``[..., k, k]``, with a positive diagonal.
            prior_mu: prior means, ``[..., k]``; None is 0.
            prior_scale_tril: the prior's lower Cholesky factor, ``[..., k, k]``;
                None is the identity.
            mask: booleans of the batch shape ``[...]``, True for samples that
                count; masked samples are replaced by the prior before the
                computation (their factors are not validated) and contribute 0.
            num_items: the denominator of ``"mean"``; None counts this batch.
            capacity: overrides the constructor's ``capacity`` for this call.

        Returns:
            A scalar for ``"mean"`` and ``"sum"``, the batch shape for ``"none"``.
        """
        capacity = self._resolve_capacity(capacity)
        tensors = {
            "mu": mu,
            "scale_tril": scale_tril,
            "prior_mu": prior_mu,
            "prior_scale_tril": prior_scale_tril,
        }
        events = {"mu": 1, "scale_tril": 2, "prior_mu": 1, "prior_scale_tril": 2}
        batch_shape = _batch_shape(tensors, events)
        if mask is not None:
            keep = _check_mask(mask, batch_shape)
            vector, matrix = keep.unsqueeze(-1), keep[..., None, None]
            eye = torch.eye(scale_tril.shape[-1], dtype=scale_tril.dtype, device=scale_tril.device)
            mu, prior_mu = _where(vector, mu, 0.0), _where(vector, prior_mu, 0.0)
            scale_tril = _where(matrix, scale_tril, eye)
            if prior_scale_tril is not None:
                prior_scale_tril = _where(matrix, prior_scale_tril, eye.to(prior_scale_tril.dtype))
        kl = full_covariance_gaussian_kl(
            mu, scale_tril, prior_mu, prior_scale_tril, validate=self.validate
        )
        if capacity is None:
            return self.beta * reduce_items(
                kl, reduction=self.reduction, mask=mask, num_items=num_items
            )
        total = reduce_items(kl, reduction="sum", mask=mask)
        count = _count(mask, batch_shape)
        return self._objective(total, count, capacity=capacity, num_items=num_items)
