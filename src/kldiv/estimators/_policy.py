"""Per-token estimates of the RL policy penalty D_KL(π ‖ π_ref): Schulman's k1, k2, k3."""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import as_float_arrays, is_dask_array, is_traced, size, to_numpy
from kldiv._validation import (
    Locate,
    as_given,
    broadcast_shapes,
    check_below_plus_inf,
    defer_check,
    resolve_validate,
)
from kldiv.errors import KLDivError

__all__ = ["ESTIMATORS", "check_estimator", "policy_kl"]

Array = Any

ESTIMATORS = ("k1", "k2", "k3")


def check_estimator(estimator: object) -> str:
    """A valid ``estimator`` name, else a :class:`~kldiv.KLDivError`."""
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise KLDivError(f"`estimator` must be one of {list(ESTIMATORS)}; got {estimator!r}")
    return estimator


def _check_shapes(arrays: Sequence[Array], names: Sequence[str]) -> tuple:
    """The broadcast shape of the inputs (NaN for a Dask length not yet known)."""
    shapes = [tuple(a.shape) for a in arrays]
    try:
        return broadcast_shapes(shapes)
    except ValueError:
        described = ", ".join(f"`{n}` {s}" for n, s in zip(names, shapes, strict=True))
        raise KLDivError(f"the inputs' shapes do not broadcast: {described}") from None


def _check_impossible(
    log_p: Array, log_behavior: Array, *, xp: ModuleType, locate: Locate = as_given
) -> None:
    """The behaviour policy must be able to draw every token π can emit."""
    impossible = (log_behavior == -xp.inf) & (log_p != -xp.inf)
    if size(impossible) and bool(xp.any(impossible)):
        index = tuple(int(i) for i in np.argwhere(to_numpy(impossible))[0])
        raise KLDivError(
            "`log_behavior` must be > -inf wherever `log_p` is finite (the behaviour "
            f"policy drew these tokens, so it gave them positive probability); got -inf "
            f"at index {locate(index)}"
        )


def _checked(
    arrays: Sequence[Array], names: Sequence[str], *, validate: bool, xp: ModuleType
) -> list[Array]:
    """No NaN or +inf anywhere: checked now, or deferred into a Dask graph.

    Returns:
        The arrays to compute with (see :func:`kldiv._validation.check_probabilities`).
    """
    return [
        check_below_plus_inf(array, name, "log-probabilities", xp, validate=validate)
        for array, name in zip(arrays, names, strict=True)
    ]


def _check_drawable_now(
    log_p: Array, log_behavior: Array, *, validate: bool, xp: ModuleType
) -> None:
    """The eager check that the behaviour policy could draw each token (before any maths)."""
    if validate and not any(is_traced(a) for a in (log_p, log_behavior)):
        _check_impossible(log_p, log_behavior, xp=xp)


def _drawable_when_computed(
    weighted: Array, log_p: Array, log_behavior: Array, *, validate: bool
) -> Array:
    """A Dask result whose blocks first check that the behaviour policy could draw each token."""
    if validate and is_dask_array(weighted):
        return defer_check(weighted, _check_impossible, log_p, log_behavior)
    return weighted


def _estimate(log_p: Array, log_ref: Array, estimator: str, *, xp: ModuleType) -> Array:
    """k(log r), log r = log_ref - log_p, with the limits at ``-inf`` and finite gradients.

    ``log r = -inf`` (the reference cannot emit the token) gives +inf for every
    estimator; ``log r = +inf`` (``log_p = -inf``) gives k1 = -inf, k2 = k3 = +inf;
    both ``-inf`` is taken as ``log r = 0`` (estimate 0). The estimator is
    evaluated on a finite, safe ``log r`` and the limits are then selected
    (the double where), so gradients are finite wherever the value is.
    """
    p_none = log_p == -xp.inf
    ref_none = log_ref == -xp.inf
    log_r = xp.where(ref_none, 0.0, log_ref) - xp.where(p_none, 0.0, log_p)
    log_r = xp.where(p_none | ref_none, 0.0, log_r)
    if estimator == "k1":
        value = -log_r
        below = xp.inf  # the limit as log r -> -inf
        above = -xp.inf  # the limit as log r -> +inf
    elif estimator == "k2":
        value = 0.5 * log_r * log_r
        below = above = xp.inf
    else:
        value = xp.expm1(log_r) - log_r
        below = above = xp.inf
    value = xp.where(ref_none & ~p_none, below, value)
    return xp.where(p_none & ~ref_none, above, value)


def _importance_weighted(
    estimate: Array, log_p: Array, log_behavior: Array, *, xp: ModuleType
) -> Array:
    """``exp(log_p - log_behavior) * estimate``, exactly 0 where ``log_p = -inf``.

    A token π cannot emit carries the weight 0 whatever its estimate (also an
    infinite one). An infinite estimate stays infinite (the weight is positive)
    and is kept out of the product, so that its gradient is 0, not NaN.
    ``log_behavior = -inf`` where ``log_p`` is finite is invalid input (the
    behaviour policy could not have drawn the token) and gives NaN when the
    eager checks are off.

    A weight beyond the dtype's range (``log w`` above ``log(max)``: 88.7 in
    float32, 709.8 in float64) is not formed: there the product is
    ``sign(k) · exp(log w + log |k|)``, exactly 0 for a zero estimate and
    finite wherever the true product is, ``±inf`` only where it is beyond the
    range (never ``inf · 0 = NaN``).
    """
    p_none = log_p == -xp.inf
    behavior_none = log_behavior == -xp.inf
    infinite = xp.isinf(estimate)
    log_w = xp.where(p_none, 0.0, log_p) - xp.where(p_none, 0.0, log_behavior)
    safe = xp.where(p_none | infinite, 0.0, estimate)
    big = log_w > math.log(float(xp.finfo(log_w.dtype).max))
    weighted = xp.exp(xp.where(big, 0.0, log_w)) * safe
    nonzero = big & (safe != 0)  # the log-space product, selected where the weight is big
    magnitude = xp.where(nonzero, xp.abs(safe), 1.0)
    exponent = xp.where(nonzero, xp.where(big, log_w, 0.0) + xp.log(magnitude), 0.0)
    with np.errstate(over="ignore"):  # +inf is the answer where the product is beyond range
        weighted = xp.where(big, xp.sign(safe) * xp.exp(exponent), weighted)
    weighted = xp.where(infinite, estimate, weighted)
    weighted = xp.where(behavior_none & ~p_none, xp.nan, weighted)
    return xp.where(p_none, 0.0, weighted)


def policy_kl(
    log_p: Array,
    log_ref: Array,
    *,
    estimator: str = "k3",
    log_behavior: Array | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Per-sample estimates of the RL policy penalty :math:`D_{KL}(\pi \| \pi_{ref})`.

    The reverse KL from the policy π to the reference π_ref (the RLHF penalty),
    estimated from the log-probabilities of tokens :math:`z \sim \pi` under
    both policies (Schulman, 2020). With :math:`\log r = \log \pi_{ref}(z) - \log \pi(z)`:

    .. math::

        k_1 = -\log r, \qquad
        k_2 = \tfrac{1}{2} (\log r)^2, \qquad
        k_3 = (r - 1) - \log r = \operatorname{expm1}(\log r) - \log r

    (``expm1`` keeps k3 accurate near :math:`r = 1`, where it is
    :math:`\approx \tfrac12 (\log r)^2`). Elementwise: no reduction, no event
    axis; a token's estimate depends on its own two log-probabilities only.

    Bias, exactly (the expectations over :math:`z \sim \pi`, with supp π_ref ⊆
    supp π for k3; the gradient is autodiff through ``log_p`` with the samples
    held fixed, i.e. the estimate used *as a loss*):

    ======  ===============================  ==============================================
    k       value :math:`E_\pi[k]`            gradient :math:`E_\pi[\nabla_\theta k]`
    ======  ===============================  ==============================================
    k1      KL(π‖π_ref): unbiased, high      0: no signal in the loss. Put k1 in the
            variance, negative wherever      *reward*: REINFORCE,
            π_ref(z) > π(z)                  :math:`E_\pi[k_1 \nabla \log \pi]`, is
                                             :math:`\nabla` KL(π‖π_ref), unbiased
    k2      biased: :math:`\approx`          :math:`\nabla` KL(π‖π_ref): the unbiased
            KL(π‖π_ref) to second order      gradient of the reverse KL
            in :math:`\log r`; >= 0, low
            variance
    k3      KL(π‖π_ref): unbiased, >= 0,     :math:`\nabla` KL(π_ref‖π): the *forward*
            low variance                     KL's gradient, biased for the reverse KL
                                             (TRL's GRPO loss; huggingface/trl#4967)
    ======  ===============================  ==============================================

    Derivation: :math:`\nabla k_1 = \nabla \log \pi` and :math:`E_\pi[\nabla \log \pi] = 0`;
    :math:`\nabla k_2 = (\log \pi - \log \pi_{ref}) \nabla \log \pi`, whose mean
    :math:`\sum_z \nabla\pi(z)\,(\log\pi(z) - \log\pi_{ref}(z))` is
    :math:`\nabla` KL(π‖π_ref); :math:`\nabla k_3 = (1 - r) \nabla \log \pi`, whose
    mean is :math:`-\sum_z \pi_{ref}(z) \nabla \log \pi(z) = \nabla` KL(π_ref‖π).

    Off-policy: with ``log_behavior`` the tokens were drawn from a behaviour
    policy μ (the rollout engine, or the policy before this update) and each
    estimate is multiplied by the importance weight
    :math:`w = \exp(\log\pi - \log\mu)`, so that :math:`E_\mu[w k] = E_\pi[k]`
    (DeepSeek-V3.2's unbiased KL estimate, TRL's ``use_bias_correction_kl``).
    The weight is differentiated through ``log_p`` too, and then
    :math:`E_\mu[\nabla(w k)] = \nabla E_\pi[k]`: with the weight, k1 and k3 in
    the loss give the unbiased reverse-KL gradient (on-policy too, with
    ``log_behavior = log_p`` detached, where the weight is 1 in value).

    Conventions: ``-inf`` is zero probability. ``log_ref = -inf`` where ``log_p``
    is finite (the reference can never emit the token) gives ``+inf`` for every
    estimator; ``log_p = -inf`` gives k1 = -inf and k2 = k3 = +inf (0 with
    ``log_behavior``: a token π cannot emit has weight 0); both ``-inf`` give 0.
    Never NaN on valid input, and gradients are finite wherever the value is.

    Args:
        log_p: log-probabilities under the policy π of the sampled tokens, any shape.
        log_ref: log-probabilities of the same tokens under the reference π_ref;
            broadcasts against ``log_p``.
        estimator: ``"k1"``, ``"k2"`` or ``"k3"``.
        log_behavior: log-probabilities of the tokens under the behaviour policy
            μ that drew them (e.g. the old log-probs of PPO/GRPO), or None when
            they were drawn from π itself. Broadcasts against the others.
        validate: run the eager value checks (no NaN or +inf log-probabilities,
            ``log_behavior > -inf`` where ``log_p`` is finite); None uses
            :func:`kldiv.set_default_validate`'s setting. Deferred into the
            graph on Dask (raised when the result is computed), skipped for
            traced arrays (``jax.jit``, ``torch.compile``), where invalid input
            gives NaN.

    Returns:
        The per-sample estimates, of the inputs' broadcast shape, in float32 for
        half-precision inputs and in the inputs' floating dtype otherwise.

    Raises:
        KLDivError: an unknown ``estimator``, mixed array libraries, shapes that do
            not broadcast, or (when validating) NaN or +inf log-probabilities, or
            a token that the behaviour policy could not have drawn.

    Examples:
        >>> import numpy as np
        >>> from kldiv.estimators import policy_kl
        >>> log_p = np.log([0.5, 0.25, 0.25])
        >>> log_ref = np.log([0.25, 0.25, 0.5])
        >>> policy_kl(log_p, log_ref, estimator="k1")
        array([ 0.69314718,  0.        , -0.69314718])
        >>> policy_kl(log_p, log_ref, estimator="k3")
        array([0.19314718, 0.        , 0.30685282])
        >>> policy_kl(log_p, log_ref, estimator="k3", log_behavior=np.log([0.5, 0.5, 0.5]))
        array([0.19314718, 0.        , 0.15342641])

    References:
        Schulman, J. (2020). Approximating KL divergence.
        http://joschu.net/blog/kl-approx.html

        DeepSeek-AI (2025). DeepSeek-V3.2 (unbiased KL estimate with the
        importance weight).

        "A Comedy of Estimators" (2025), arXiv:2512.21852, on the gradients of
        k1, k2 and k3 in the loss and in the reward.
    """
    check_estimator(estimator)
    do_validate = resolve_validate(validate)
    names = ("log_p", "log_ref") if log_behavior is None else ("log_p", "log_ref", "log_behavior")
    values = (log_p, log_ref) if log_behavior is None else (log_p, log_ref, log_behavior)
    xp, arrays, _, _ = as_float_arrays(*values, names=names)
    _check_shapes(arrays, names)
    arrays = _checked(arrays, names, validate=do_validate, xp=xp)
    if log_behavior is not None:
        _check_drawable_now(arrays[0], arrays[2], validate=do_validate, xp=xp)
    estimate = _estimate(arrays[0], arrays[1], estimator, xp=xp)
    if log_behavior is None:
        return estimate
    weighted = _importance_weighted(estimate, arrays[0], arrays[2], xp=xp)
    return _drawable_when_computed(weighted, arrays[0], arrays[2], validate=do_validate)
