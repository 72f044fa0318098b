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
from typing import Any, NamedTuple

import torch
from torch import nn

from kldiv._array_api import is_traced
from kldiv._gaussian import diagonal_gaussian_kl, full_covariance_gaussian_kl
from kldiv._validation import check_nonnegative_number, resolve_validate
from kldiv.errors import KLDivError
from kldiv.torch._eager import FLOATS, broadcasts_into, constant, eager_tensors, summed_to
from kldiv.torch._reduction import check_num_items, check_reduction, reduce_items

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


class _Plan(NamedTuple):
    """What :class:`_DiagonalGaussianKL` reduces to, and the factors on ``2 KL``."""

    mode: str
    """``"sum"``, ``"rows"`` (per sample) or ``"floor"`` (free bits)."""
    coef: torch.Tensor
    """The factor on the reduced ``2 KL``: 0-d, or one per sample (the batch shape, not
    with ``"floor"``), which is how a mask is applied without masked copies of the inputs."""
    floor2: float | torch.Tensor | None = None
    """Free bits: twice the floor of each dimension's summed KL, ``2 λ n``."""
    counted: torch.Tensor | None = None
    """Free bits with a mask: the 0/1 mask as floats, weighting each sample's ``2 KL``."""


def _kl_terms(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None,
    prior_logvar: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Twice the diagonal-Gaussian KL per element, and the pieces of its gradient.

    .. math::

        2\,\mathrm{KL} = e - (v - w) + (\mu - m)\,r, \qquad
        e = \operatorname{expm1}(v - w), \quad r = (\mu - m)\,e^{-w}

    (:func:`kldiv._gaussian.diagonal_gaussian_kl` times 2, the same
    expressions), in three ATen calls against :math:`\mathcal N(0, I)`.
    Differentiable: the double-backward path calls it again on the inputs.

    Returns:
        ``(2 KL, e, r, mu - m)``: ``e`` is the derivative of ``2 KL`` in
        :math:`v`, ``2 r`` its derivative in :math:`\mu`.

    Examples:
        >>> import torch
        >>> kl2, e, r, diff = _kl_terms(torch.tensor([1.0]), torch.tensor([0.0]), None, None)
        >>> kl2, e, r
        (tensor([1.]), tensor([0.]), tensor([1.]))
    """
    diff = mu if prior_mu is None else mu - prior_mu
    d = logvar if prior_logvar is None else logvar - prior_logvar
    e = torch.expm1(d)
    r = diff if prior_logvar is None else diff * torch.exp(-prior_logvar)
    return torch.addcmul(e - d, diff, r), e, r, diff


def _masked(keep: torch.Tensor | None, *tensors: torch.Tensor | None) -> tuple:
    """Each tensor with 0 at the masked samples (as the reference path's ``_where``)."""
    if keep is None:
        return tensors
    zero = constant(0.0, tensors[0])
    return tuple(None if t is None else torch.where(keep, t, zero) for t in tensors)


def _kl_grads(
    terms: tuple, s: torch.Tensor, inputs: tuple, needs: tuple[bool, ...]
) -> tuple[torch.Tensor | None, ...]:
    r"""The gradients of :math:`s \cdot 2\,\mathrm{KL}` in :math:`(\mu, v, m, w)`.

    .. math::

        \partial_\mu = 2 s r, \quad \partial_v = s\,e, \quad \partial_m = -2 s r, \quad
        \partial_w = -s\,(e + (\mu - m)\,r)

    with ``terms = (e, r, mu - m)`` of :func:`_kl_terms`. ``s`` broadcasts
    against them (a scalar, a column for per-sample losses, a row for free
    bits); a prior's gradient is summed down to its shape.

    Examples:
        >>> import torch
        >>> _, *terms = _kl_terms(torch.tensor([1.0]), torch.tensor([0.0]), None, None)
        >>> _kl_grads(terms, torch.tensor(0.5), (None,) * 4, (True, True, False, False))
        (tensor([1.]), tensor([0.]), None, None)
    """
    e, r, diff = terms
    mu_grad = r * (s + s) if needs[0] or needs[2] else None
    logvar_grad = e * s if needs[1] else None
    prior_mu_grad = summed_to(-mu_grad, inputs[2]) if needs[2] else None
    prior_logvar_grad = None
    if needs[3]:
        prior_logvar_grad = summed_to(torch.addcmul(e, diff, r) * -s, inputs[3])
    return mu_grad if needs[0] else None, logvar_grad, prior_mu_grad, prior_logvar_grad


class _DiagonalGaussianKL(torch.autograd.Function):
    r"""The reduced diagonal-Gaussian KL with its analytic backward, in few ATen calls.

    Forward: ``plan.coef`` times one of (``plan.mode``)

    - ``"sum"``: :math:`\sum_{b,d} 2\,\mathrm{KL}_{b,d}`,
    - ``"rows"``: :math:`\sum_d 2\,\mathrm{KL}_{b,d}` per sample,
    - ``"floor"``: :math:`\sum_d \max(2 \lambda n, \sum_b 2\,\mathrm{KL}_{b,d})`
      (free bits; a floored dimension gets no gradient, as with ``torch.clamp``).

    A mask is applied in one of two ways. Per-sample factors (``plan.coef``
    or ``plan.counted`` 0 at masked samples) cost a few ATen calls on the
    batch shape; a non-finite masked sample then makes the result NaN (0 times
    inf), and the module computes it again the other way: masked samples
    (``keep`` False, shaped ``[..., 1]``) replaced by zeros first, which makes
    their value and gradient exactly 0 whatever they hold, at the price of a
    ``where`` per input (slow on the CPU, where it does not vectorise).
    Backward: :func:`_kl_grads` from the terms saved by the forward; under
    ``create_graph=True`` the terms are recomputed from the inputs with
    differentiable ops, so double backward works too.
    """

    @staticmethod
    def forward(
        ctx: Any,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        prior_mu: torch.Tensor | None,
        prior_logvar: torch.Tensor | None,
        keep: torch.Tensor | None,
        plan: _Plan,
    ) -> torch.Tensor:
        kl2, e, r, diff = _kl_terms(*_masked(keep, mu, logvar, prior_mu, prior_logvar))
        coef, active = plan.coef, None
        if plan.mode == "floor":
            if plan.counted is None:
                per_dim = kl2.sum(tuple(range(kl2.ndim - 1)))
            else:
                per_dim = torch.tensordot(plan.counted, kl2, dims=plan.counted.ndim)
            active = per_dim >= plan.floor2
            total = torch.clamp(per_dim, min=plan.floor2).sum().mul_(coef)
        elif plan.mode == "rows":
            total = kl2.sum(-1).mul_(coef)
        elif coef.ndim == 1:  # one factor per sample
            total = torch.dot(kl2.sum(-1), coef)
        elif coef.ndim:
            total = kl2.sum(-1).mul_(coef).sum()
        else:
            total = kl2.sum().mul_(coef)
        ctx.save_for_backward(e, r, diff, active, mu, logvar, prior_mu, prior_logvar, keep)
        ctx.plan = plan
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        e, r, diff, active, *inputs, keep = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: recompute, differentiably
            _, e, r, diff = _kl_terms(*_masked(keep, *inputs))
        plan = ctx.plan
        s = grad * plan.coef
        if plan.mode == "floor":
            s = torch.where(active, s, constant(0.0, s))
            if plan.counted is not None:
                s = plan.counted.unsqueeze(-1) * s
        elif s.ndim:
            s = s.unsqueeze(-1)
        grads = _kl_grads((e, r, diff), s, inputs, ctx.needs_input_grad)
        return (*grads, None, None)


def _fits(prior: torch.Tensor, dtype: torch.dtype, shape: torch.Size) -> bool:
    return prior.dtype is dtype and broadcasts_into(prior.shape, shape)


def _kernel_applies(
    mu: object,
    logvar: object,
    prior_mu: object,
    prior_logvar: object,
    mask: object,
) -> bool:
    """Whether :class:`_DiagonalGaussianKL` takes these inputs (else: the reference path).

    It takes plain float32/float64 tensors of one dtype, ``logvar`` of ``mu``'s
    shape, priors that broadcast into it, a boolean mask of the batch shape,
    in eager mode. Everything else (half precision, broadcasting that enlarges
    ``mu``, bad input to be reported) takes the reference path.
    """
    if not eager_tensors(mu, logvar, prior_mu, prior_logvar, mask):
        return False
    dtype, shape = mu.dtype, mu.shape
    return (
        dtype in FLOATS
        and logvar.dtype is dtype
        and logvar.shape == shape
        and len(shape) > 0
        and (prior_mu is None or _fits(prior_mu, dtype, shape))
        and (prior_logvar is None or _fits(prior_logvar, dtype, shape))
        and (mask is None or (mask.dtype is torch.bool and mask.shape == shape[:-1]))
    )


def _is_nan(value: torch.Tensor) -> bool:
    """Whether ``value`` holds a NaN: one reduction at most and one host synchronisation."""
    return math.isnan((value if value.ndim == 0 else value.detach().sum()).item())


def _raise_for_nan_input(named: dict[str, object], keep: torch.Tensor | None) -> None:
    """Raises naming the first NaN, else infinite, counted input entry (masked samples skipped).

    The NaN of a result comes from such an entry (a NaN, a ``+inf`` log-variance,
    infinities that cancel), except for an overflow of finite inputs, which is
    not raised here.
    """
    for test in (torch.isnan, torch.isinf):
        for name, tensor in named.items():
            if not isinstance(tensor, torch.Tensor):
                continue
            bad = test(tensor.detach())
            if keep is not None and bad.ndim == keep.ndim and bad.shape[:-1] == keep.shape[:-1]:
                bad = bad & keep
            if bool(bad.any()):
                index = tuple(int(i) for i in torch.nonzero(bad)[0])
                raise KLDivError(
                    f"`{name}` must be finite where samples count (the KL is NaN otherwise); "
                    f"got {float(tensor.detach()[index])} at index {index}"
                )


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

    Half-precision inputs are computed and returned in float32. Float32 and
    float64 inputs take a fused kernel with an analytic backward (a few ATen
    calls, no autograd graph of the formula; double backward supported);
    ``torch.compile`` and ``torch.func`` trace the plain formula instead.

    Args:
        beta: the weight :math:`\beta \ge 0` of the KL term (β-VAE; a KL warm-up
            schedule can set ``loss.beta`` every step, or scale the result).
        free_bits: :math:`\lambda \ge 0` nats per latent dimension; 0 is off.
        capacity: :math:`C \ge 0` nats, or None for the plain β-weighted KL. A
            per-call ``capacity`` overrides it.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        validate: raise instead of returning NaN: when the result is NaN (one
            host synchronisation per call reads it), the error names the
            counted input entry, NaN or infinite, that made it. None uses
            :func:`kldiv.set_default_validate`'s setting. Skipped under
            ``torch.compile`` and ``torch.func`` transforms.

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
        validate: bool | None = None,
    ) -> None:
        super().__init__(beta=beta, capacity=capacity, reduction=reduction)
        self.free_bits = check_nonnegative_number(free_bits, "free_bits")
        if self.free_bits > 0 and self.reduction == "none":
            raise KLDivError(
                "`free_bits` floors each dimension's batch-mean KL and needs reduction 'mean' "
                "or 'sum'; got reduction='none'"
            )
        if validate is not None:
            resolve_validate(validate)
        self.validate = validate

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, free_bits={self.free_bits}, capacity={self.capacity}, "
            f"reduction={self.reduction!r}, validate={self.validate}"
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
        check_num_items(num_items)
        kernel = _kernel_applies(mu, logvar, prior_mu, prior_logvar, mask)
        validate = self.validate if self.validate is not None else resolve_validate(None)
        nan = None
        if kernel:
            args = (mu, logvar, prior_mu, prior_logvar, mask, num_items, capacity)
            # Per-sample mask factors need the result read (a NaN from 0 * inf padding
            # means: mask by replacing instead), which validation and the CPU pay anyway.
            per_sample = mask is not None and (validate or mu.device.type == "cpu")
            value = self._kernel(*args, per_sample=per_sample)
            if per_sample and (nan := _is_nan(value)):
                value, nan = self._kernel(*args, per_sample=False), None
        else:
            value = self._reference(mu, logvar, prior_mu, prior_logvar, mask, num_items, capacity)
        if validate and (kernel or not is_traced(value)):
            if nan is None:
                nan = _is_nan(value)
            if nan:
                named = {"mu": mu, "logvar": logvar, "prior_mu": prior_mu}
                named |= {"prior_logvar": prior_logvar, "capacity": capacity}
                _raise_for_nan_input(named, None if mask is None else mask.unsqueeze(-1))
        return value

    def _kernel(
        self,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        prior_mu: torch.Tensor | None,
        prior_logvar: torch.Tensor | None,
        mask: torch.Tensor | None,
        num_items: torch.Tensor | float | None,
        capacity: float | torch.Tensor | None,
        *,
        per_sample: bool,
    ) -> torch.Tensor:
        """The loss through :class:`_DiagonalGaussianKL` (inputs vetted by ``_kernel_applies``).

        A mask is applied as per-sample factors (``per_sample``: exact when the
        result is not NaN) or by replacing the masked samples with zeros.
        """
        keep = counted = None
        if mask is not None and per_sample:
            counted = mask.view(torch.uint8).to(mu.dtype)  # uint8 casts vectorise, bool not
        elif mask is not None:
            keep = mask.unsqueeze(-1)
        args = (mu, logvar, prior_mu, prior_logvar, keep)
        half_beta = constant(0.5 * self.beta, mu)
        if self.reduction == "none":
            coef = half_beta if counted is None else counted.mul_(half_beta)
            return _DiagonalGaussianKL.apply(*args, _Plan("rows", coef))
        if mask is None:
            count = math.prod(mu.shape[:-1])
        else:
            count = mask.sum(dtype=mu.dtype) if counted is None else counted.sum()
        floor2 = 2 * self.free_bits * count if self.free_bits > 0 else None
        if capacity is not None:  # the plain (or floored) total; the objective weighs it
            half = constant(0.5, mu)
            if floor2 is not None:
                plan = _Plan("floor", half, floor2, counted)
            else:
                plan = _Plan("sum", half if counted is None else counted.mul_(half))
            total = _DiagonalGaussianKL.apply(*args, plan)
            return self._objective(total, count, capacity=capacity, num_items=num_items)
        coef = half_beta
        if self.reduction == "mean":
            # (a mask's count of 0 is not clamped to 1 with per-sample factors: 0 * inf
            # makes the result NaN, and the masked samples are then replaced instead)
            clamp = num_items is not None or counted is None
            denominator = count if num_items is None else num_items
            coef = _over_count(0.5 * self.beta, denominator, mu, clamp)
        if floor2 is not None:
            return _DiagonalGaussianKL.apply(*args, _Plan("floor", coef, floor2, counted))
        return _DiagonalGaussianKL.apply(
            *args, _Plan("sum", coef if counted is None else counted.mul_(coef))
        )

    def _reference(
        self,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        prior_mu: torch.Tensor | None,
        prior_logvar: torch.Tensor | None,
        mask: torch.Tensor | None,
        num_items: torch.Tensor | float | None,
        capacity: float | torch.Tensor | None,
    ) -> torch.Tensor:
        """The loss by plain autograd through :func:`kldiv._gaussian.diagonal_gaussian_kl`."""
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


def _over_count(
    coef: float, denominator: torch.Tensor | float, like: torch.Tensor, clamp: bool = True
) -> torch.Tensor:
    """``coef / max(denominator, 1)``, 0-d, of ``like``'s dtype (cached when fixed)."""
    if not isinstance(denominator, torch.Tensor):
        return constant(coef / max(float(denominator), 1.0), like)
    if denominator.dtype is not like.dtype:
        denominator = denominator.to(like.dtype)
    return constant(coef, like) / (denominator.clamp_min(1) if clamp else denominator)


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
            positive diagonal, and raise instead of returning NaN, naming the
            counted input entry, NaN or infinite, that made it (as
            :class:`GaussianKLLoss`; one host synchronisation per call); None
            uses :func:`kldiv.set_default_validate`'s setting. Skipped under
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
            value = self.beta * reduce_items(
                kl, reduction=self.reduction, mask=mask, num_items=num_items
            )
        else:
            total = reduce_items(kl, reduction="sum", mask=mask)
            count = _count(mask, batch_shape)
            value = self._objective(total, count, capacity=capacity, num_items=num_items)
        validate = self.validate if self.validate is not None else resolve_validate(None)
        if validate and not is_traced(value) and _is_nan(value):
            # masked samples were replaced by the prior above: only counted entries remain
            tensors = {"mu": mu, "scale_tril": scale_tril, "prior_mu": prior_mu}
            tensors |= {"prior_scale_tril": prior_scale_tril, "capacity": capacity}
            _raise_for_nan_input(tensors, None)
        return value
