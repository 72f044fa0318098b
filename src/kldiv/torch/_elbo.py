r"""The ELBO for PyTorch: :func:`kldiv.elbo` with a torch random state and torch.distributions.

The maths is :func:`kldiv.estimators._elbo.elbo_from_samples`; this front door
adds what only torch has: ``torch.Generator`` seeds, and
``torch.distributions`` objects that kldiv has no counterpart of (a
``TransformedDistribution`` such as a normalising flow, ``RelaxedBernoulli``,
a user's own class), which are used natively: ``rsample``, ``log_prob``, and
torch's own ``kl_divergence`` registry for the exact term.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from kldiv._array_api import is_torch_namespace
from kldiv.distributions import Distribution, Normal
from kldiv.distributions._convert import as_distribution, common_namespace
from kldiv.errors import KLDivError, NoClosedFormError
from kldiv.estimators._elbo import (
    ELBO,
    check_kl_method,
    check_log_likelihood,
    check_n_samples,
    elbo_from_samples,
    exact_kl,
    prepare,
)

__all__ = ["elbo"]


def _check_rng(rng: object) -> torch.Generator | int | None:
    if rng is None or isinstance(rng, torch.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if not 0 <= int(rng) < 1 << 64:  # torch.Generator.manual_seed's range
            raise KLDivError(f"`rng` as an int seed must be in [0, 2**64); got {int(rng)}")
        return int(rng)
    raise KLDivError(
        f"`rng` must be a torch.Generator, an int seed or None (torch's global generator); "
        f"got {type(rng).__name__}"
    )


def _converted(d: object) -> object | None:
    """``d`` as a kldiv distribution, None for a torch distribution kldiv has no family for.

    Anything that is not a torch distribution is passed through (a kldiv one
    as it is; anything else for :func:`as_distribution` to reject by name).
    """
    if isinstance(d, Distribution) or not isinstance(d, torch.distributions.Distribution):
        return d
    try:
        return as_distribution(d, "q")
    except KLDivError:
        return None


def _native_sample(q: torch.distributions.Distribution, n: int, rng: Any) -> torch.Tensor:
    """``q.rsample((n,))``, drawn from ``rng`` (a Generator or a seed) when one is given."""
    if rng is None:
        return q.rsample((n,))
    if isinstance(rng, int):
        seed = rng
    else:
        seed = int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return q.rsample((n,))


def _on_torch(d: Distribution, like: torch.Tensor, name: str) -> Distribution:
    """A kldiv distribution on torch (a NumPy-held one is moved to ``like``'s dtype/device)."""
    if is_torch_namespace(d.xp):
        return d
    anchor = Normal(torch.zeros((), dtype=like.dtype, device=like.device), 1.0)
    moved, _ = common_namespace(d, anchor)
    if not is_torch_namespace(moved.xp):
        raise KLDivError(
            f"`{name}` must hold torch tensors (or NumPy values) in kldiv.torch.elbo; got "
            f"{d.xp.__name__}"
        )
    return moved


def _native(
    log_likelihood: Callable[[torch.Tensor], torch.Tensor],
    q: Any,
    prior: Any,
    n_samples: int,
    kl: str,
    rng: Any,
) -> ELBO:
    """The ELBO with at least one torch.distributions object kldiv cannot convert."""
    if isinstance(q, torch.distributions.Distribution):
        if not q.has_rsample:
            raise KLDivError(
                f"`q` must have reparameterised samples (has_rsample) for the ELBO's gradient; "
                f"torch.distributions.{type(q).__name__} has none"
            )
        z = _native_sample(q, n_samples, rng)
    else:
        q = as_distribution(q, "q")
        if not q.has_rsample or q.is_discrete:
            raise KLDivError(
                f"`q` must have reparameterised samples (has_rsample) for the ELBO's gradient; "
                f"{type(q).__name__} has none"
            )
        z = q.sample((n_samples,), rng=rng)
    if not isinstance(prior, torch.distributions.Distribution):
        prior = _on_torch(as_distribution(prior, "prior"), z, "prior")
    if not isinstance(q, torch.distributions.Distribution):
        q = _on_torch(q, z, "q")
    q_event, prior_event = tuple(q.event_shape), tuple(prior.event_shape)
    if q_event != prior_event:
        raise KLDivError(
            f"`q` and `prior` must have the same event shape; got {q_event} for "
            f"{type(q).__name__} and {prior_event} for {type(prior).__name__}"
        )
    try:
        batch_shape = tuple(np.broadcast_shapes(tuple(q.batch_shape), tuple(prior.batch_shape)))
    except ValueError:
        raise KLDivError(
            f"the batch shapes of `q` {tuple(q.batch_shape)} and `prior` "
            f"{tuple(prior.batch_shape)} do not broadcast"
        ) from None
    kl_exact = None
    if kl != "monte_carlo":
        both_torch = isinstance(q, torch.distributions.Distribution) and isinstance(
            prior, torch.distributions.Distribution
        )
        try:
            if not both_torch:
                raise NotImplementedError
            kl_exact = torch.distributions.kl_divergence(q, prior)
        except NotImplementedError:
            if kl == "exact":
                raise NoClosedFormError(
                    f"no closed form is known for KL({type(q).__name__} ‖ {type(prior).__name__}) "
                    "(kldiv has no counterpart of one of them and torch.distributions registers "
                    "none); use kl='auto' or kl='monte_carlo'"
                ) from None
    return elbo_from_samples(
        log_likelihood, z, q.log_prob, prior.log_prob, kl_exact, batch_shape=batch_shape
    )


def elbo(
    log_likelihood: Callable[[torch.Tensor], torch.Tensor],
    q: Any,
    prior: Any,
    *,
    n_samples: int = 1,
    kl: str = "auto",
    rng: torch.Generator | int | None = None,
) -> ELBO:
    r"""The evidence lower bound for PyTorch models, exact KL where the pair has one.

    .. math::

        \mathrm{ELBO} = \frac1S \sum_{s=1}^S \log p(x \mid z_s) - D_{KL}(q \| p),
        \qquad z_s = \mathrm{rsample}(q)

    :func:`kldiv.elbo` for torch: the KL is kldiv's closed form (or torch's,
    for ``torch.distributions`` classes kldiv has no counterpart of) and
    otherwise the Monte Carlo estimate from the same draws; ``result.kl_method``
    says which. Gradients flow to q's parameters (through the reparameterised
    draws) and to the model's (through ``log_likelihood``). The loss to
    minimise is ``-result.elbo.sum()`` for one global posterior (whose
    ``log_likelihood`` sums over the data) and ``-result.elbo.mean()`` for an
    amortised one (a batch of q's, one per data point); see :func:`kldiv.elbo`.

    Args:
        log_likelihood: ``z -> log p(x | z)``, z of shape ``(n_samples, *batch,
            *event)``, returning ``(n_samples, *batch)``.
        q: the approximate posterior: a ``torch.distributions`` object with
            ``rsample`` (converted to kldiv's family, keeping its tensors, when
            kldiv has one; else used as it is) or a kldiv distribution holding
            torch tensors.
        prior: the prior, of the same event shape: ``torch.distributions`` or
            kldiv (a kldiv one built from Python numbers is moved to q's dtype
            and device).
        n_samples: the number of draws (>= 1).
        kl: ``"auto"``, ``"exact"`` (raises :class:`~kldiv.NoClosedFormError`
            without a closed form) or ``"monte_carlo"``.
        rng: a ``torch.Generator``, an int seed (a fresh generator) or None
            (torch's global generator).

    Returns:
        A :class:`kldiv.ELBO`: ``elbo``, ``expected_log_likelihood``, ``kl``
        (tensors of the batch shape), ``kl_method``, ``n_samples``,
        ``kl_stderr`` and ``stderr``.

    Raises:
        KLDivError: bad arguments (q without ``rsample``, a NumPy-only q, a
            ``log_likelihood`` of the wrong shape, a bad ``rng``).
        NoClosedFormError: ``kl="exact"`` and the pair has no closed form.

    Examples:
        >>> import torch
        >>> from kldiv.torch import elbo
        >>> x = torch.tensor([0.8, 1.1, 1.9])  # data ~ N(z, 1), one global z
        >>> loc = torch.tensor(0.0, requires_grad=True)
        >>> log_scale = torch.tensor(0.0, requires_grad=True)
        >>> q = torch.distributions.Normal(loc, log_scale.exp())
        >>> prior = torch.distributions.Normal(0.0, 1.0)
        >>> def log_lik(z):  # (S,) -> (S,): summed over the data points
        ...     return torch.distributions.Normal(z[:, None], 1.0).log_prob(x).sum(-1)
        >>> res = elbo(log_lik, q, prior, n_samples=16, rng=0)
        >>> res.kl_method, round(res.kl.item(), 6)  # KL(N(0, 1) ‖ N(0, 1))
        ('exact', 0.0)
        >>> (-res.elbo).backward()
        >>> loc.grad is not None and log_scale.grad is not None
        True
    """
    check_log_likelihood(log_likelihood)
    n_samples = check_n_samples(n_samples)
    kl = check_kl_method(kl)
    rng = _check_rng(rng)
    q_kldiv, prior_kldiv = _converted(q), _converted(prior)
    if q_kldiv is None or prior_kldiv is None:
        return _native(log_likelihood, q, prior, n_samples, kl, rng)
    q, prior, batch_shape = prepare(q_kldiv, prior_kldiv)
    if not is_torch_namespace(q.xp):
        raise KLDivError(
            f"`q` must hold torch tensors in kldiv.torch.elbo (its parameters are the ones to "
            f"train); got {q.xp.__name__} arrays. Use kldiv.elbo for other array libraries"
        )
    kl_exact = exact_kl(q, prior, kl)
    z = q.sample((n_samples,), rng=rng)
    return elbo_from_samples(
        log_likelihood, z, q.log_prob, prior.log_prob, kl_exact, batch_shape=batch_shape
    )
