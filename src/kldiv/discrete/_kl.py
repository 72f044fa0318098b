"""Kullback–Leibler divergence between discrete distributions, in three input forms."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from kldiv._special import log_softmax, shifted_by_max
from kldiv._validation import (
    check_log_probabilities,
    check_logits,
    check_probabilities,
    check_temperature,
)
from kldiv.discrete import _native
from kldiv.discrete._common import Prepared, prepare, reduce_terms
from kldiv.discrete._terms import kl_bregman_terms_from_log_probs, kl_bregman_terms_from_probs

__all__ = ["kl_from_log_probs", "kl_from_logits", "kl_from_probs", "tempered"]

Array = Any


def check_probability_pair(prepared: Prepared) -> list[Array]:
    """Value checks of two probability arrays named ``p`` and ``q``.

    Returns:
        The arrays to compute with (on Dask, carrying the deferred checks).
    """
    return [
        check_probabilities(
            array,
            name,
            prepared.axis,
            prepared.tolerance,
            validate=prepared.validate,
            xp=prepared.xp,
            guards=prepared.guards,
        )
        for array, name in zip(prepared.arrays, ("p", "q"), strict=True)
    ]


def check_log_probability_pair(prepared: Prepared, names: tuple[str, str]) -> list[Array]:
    """Value checks of two log-probability arrays.

    Returns:
        The arrays to compute with (on Dask, carrying the deferred checks).
    """
    return [
        check_log_probabilities(
            array,
            name,
            prepared.axis,
            prepared.tolerance,
            validate=prepared.validate,
            xp=prepared.xp,
            guards=prepared.guards,
        )
        for array, name in zip(prepared.arrays, names, strict=True)
    ]


def checked_log_softmax(
    prepared: Prepared, names: tuple[str, ...], temperature: float
) -> list[Array]:
    """Checks logit arrays and turns them into log-probabilities at ``temperature``.

    On Dask with rows split over chunks, the row check (some finite logit)
    gates the logits themselves, not the result: the softmax waits for the row
    maxima anyway, and a row without mass never reaches it.
    """
    xp = prepared.xp
    checked = [
        check_logits(array, name, prepared.axis, validate=prepared.validate, xp=xp)
        for array, name in zip(prepared.arrays, names, strict=True)
    ]
    return [
        log_softmax(tempered(a, prepared.axis, temperature, xp=xp), prepared.axis, xp=xp)
        for a in checked
    ]


def tempered(logits: Array, axis: int, temperature: Any, *, xp: ModuleType) -> Array:
    r"""Logits at ``temperature``, shifted: :math:`(z - \max_j z_j) / T` along ``axis``.

    The softmax of the result is that of :math:`z / T`. Subtracting the row
    maximum first keeps a small temperature from overflowing (``1e30 / 1e-9``
    is finite in float64, ``inf`` in float32) and is exact where ``z / T`` would
    round before the cancellation; ``-inf`` (masked) entries stay ``-inf``.
    ``temperature`` 1 returns ``logits`` unchanged (the log-softmax shifts
    anyway). ``temperature`` may be a traced scalar (the JAX kernels').

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> tempered(np.array([1e30, 0.0, -np.inf]), -1, 1e-9, xp=xp)
        array([ 0.e+00, -1.e+39,    -inf])
    """
    if isinstance(temperature, float | int) and temperature == 1:
        return logits
    with np.errstate(over="ignore"):  # entries more than the float range below: zero mass
        return shifted_by_max(logits, axis, xp=xp) / temperature


def kl_from_probs(
    p: Array,
    q: Array,
    *,
    axis: int = -1,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Kullback–Leibler divergence :math:`D_{KL}(P \| Q)` from probabilities.

    .. math::

        D_{KL}(P \| Q) = \sum_i p_i \log \frac{p_i}{q_i}

    with the conventions :math:`0 \log(0/q) = 0` and :math:`p \log(p/0) = +\infty`
    for :math:`p > 0`, exact in value and in gradient (no NaN, finite gradients
    wherever the value is finite). P is the true distribution, Q the
    approximation: the argument order is the maths order, the reverse of
    ``torch.nn.functional.kl_div``.

    Works on NumPy, PyTorch, JAX, CuPy and Dask arrays (and nested sequences,
    which become NumPy arrays). Large C-contiguous float32/float64 NumPy inputs
    reduced over the last axis take a chunked multi-threaded kernel that reads
    the input once and needs no full-size temporary.

    Args:
        p: probabilities of P, shape ``[..., n]`` (the event axis is ``axis``).
        q: probabilities of Q; broadcasts against ``p`` except along ``axis``.
        axis: the event axis, summed over. Every other axis is a batch axis.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks (entries finite and >= 0, rows
            summing to 1 within ``max(sqrt(eps), 1e-6)`` of the input dtype);
            None uses :func:`kldiv.set_default_validate`'s setting. Skipped for
            traced and lazy arrays.

    Returns:
        The divergence of each distribution: the broadcast batch shape (the
        inputs' shape without ``axis``), in float32 for half-precision inputs
        and in the inputs' floating dtype otherwise.

    Raises:
        KLDivError: mixed array libraries, shapes that do not broadcast, an event
            axis of different lengths, a bad ``axis`` or ``base``, or (when
            validating) entries that are negative, NaN or infinite, or rows that
            do not sum to 1.

    Examples:
        >>> import kldiv
        >>> float(kldiv.kl_from_probs([0.4, 0.6], [0.5, 0.5]))
        0.0201355
        >>> float(kldiv.kl_from_probs([0.4, 0.6], [0.5, 0.5], base=2))
        0.0290494
        >>> kldiv.kl_from_probs([[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]])
        array([0.69314718,        inf])

    References:
        Kullback, S. and Leibler, R. A. (1951). On information and sufficiency.
        Annals of Mathematical Statistics 22(1), 79–86.
    """
    native = _native.native_result("kl", "probs", (p, q), axis=axis, base=base, validate=validate)
    if native is not None:
        return native
    prepared = prepare((p, q), ("p", "q"), axis=axis, base=base, validate=validate)
    return reduce_terms(kl_bregman_terms_from_probs, prepared, *check_probability_pair(prepared))


def kl_from_log_probs(
    log_p: Array,
    log_q: Array,
    *,
    axis: int = -1,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Kullback–Leibler divergence :math:`D_{KL}(P \| Q)` from log-probabilities.

    .. math::

        D_{KL}(P \| Q) = \sum_i e^{\log p_i} (\log p_i - \log q_i)

    ``-inf`` is zero mass: it contributes 0 in ``log_p`` and gives ``+inf``
    where ``log_q`` is ``-inf`` and ``log_p`` is not, with finite gradients
    wherever the value is finite. Working in log space avoids the underflow of
    probabilities: pass log-probabilities whenever you have them.

    Args:
        log_p: log-probabilities of P, shape ``[..., n]``.
        log_q: log-probabilities of Q; broadcasts against ``log_p`` except along ``axis``.
        axis: the event axis, summed over.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks (no NaN or +inf, ``exp`` of each row
            summing to 1); None uses the global default.

    Returns:
        The divergence of each distribution, shape of the broadcast batch.

    Raises:
        KLDivError: as :func:`kl_from_probs`, for log-probabilities.

    Examples:
        >>> import numpy as np
        >>> import kldiv
        >>> float(kldiv.kl_from_log_probs(np.log([0.4, 0.6]), np.log([0.5, 0.5])))
        0.0201355
        >>> float(kldiv.kl_from_log_probs([0.0, -np.inf], [-np.inf, 0.0]))
        inf
    """
    native = _native.native_result(
        "kl", "log_probs", (log_p, log_q), axis=axis, base=base, validate=validate
    )
    if native is not None:
        return native
    prepared = prepare((log_p, log_q), ("log_p", "log_q"), axis=axis, base=base, validate=validate)
    checked = check_log_probability_pair(prepared, ("log_p", "log_q"))
    return reduce_terms(kl_bregman_terms_from_log_probs, prepared, *checked)


def kl_from_logits(
    p_logits: Array,
    q_logits: Array,
    *,
    axis: int = -1,
    temperature: float = 1.0,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Kullback–Leibler divergence :math:`D_{KL}(P \| Q)` from unnormalised logits.

    .. math::

        \log p = \operatorname{log\_softmax}(z_p / T), \quad
        \log q = \operatorname{log\_softmax}(z_q / T), \quad
        D_{KL}(P \| Q) = \sum_i p_i (\log p_i - \log q_i)

    The softmax is computed stably in the backend's fused implementation.
    ``-inf`` logits are masked tokens (zero mass), never NaN. The Hinton
    :math:`T^2` factor of distillation losses is *not* applied here: this is the
    divergence between the two tempered distributions.

    Args:
        p_logits: logits of P, shape ``[..., n]``.
        q_logits: logits of Q; broadcasts against ``p_logits`` except along ``axis``.
        axis: the event axis (the vocabulary), summed over.
        temperature: a positive softmax temperature ``T`` applied to both.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks (no NaN or +inf, at least one
            finite logit per row); None uses the global default.

    Returns:
        The divergence of each distribution, shape of the broadcast batch.

    Raises:
        KLDivError: as :func:`kl_from_probs`, for logits, and a temperature that
            is not a positive finite number.

    Examples:
        >>> import numpy as np
        >>> import kldiv
        >>> float(kldiv.kl_from_logits(np.log([0.4, 0.6]), [0.0, 0.0]))
        0.0201355
        >>> float(kldiv.kl_from_logits([2.0, 0.0, -np.inf], [0.0, 0.0, 0.0], temperature=2.0))
        0.5164092
    """
    native = _native.native_result(
        "kl",
        "logits",
        (p_logits, q_logits),
        axis=axis,
        base=base,
        validate=validate,
        temperature=temperature,
    )
    if native is not None:
        return native
    t = check_temperature(temperature)
    prepared = prepare(
        (p_logits, q_logits), ("p_logits", "q_logits"), axis=axis, base=base, validate=validate
    )
    log_p, log_q = checked_log_softmax(prepared, ("p_logits", "q_logits"), t)
    return reduce_terms(kl_bregman_terms_from_log_probs, prepared, log_p, log_q)
