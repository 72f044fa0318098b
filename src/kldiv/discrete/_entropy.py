"""Shannon entropy and cross-entropy of discrete distributions, in three input forms."""

from __future__ import annotations

from typing import Any

from kldiv._validation import check_log_probabilities, check_probabilities, check_temperature
from kldiv.discrete import _native
from kldiv.discrete._common import Prepared, prepare, reduce_terms
from kldiv.discrete._kl import (
    check_log_probability_pair,
    check_probability_pair,
    checked_log_softmax,
)
from kldiv.discrete._terms import (
    cross_entropy_terms_from_log_probs,
    cross_entropy_terms_from_probs,
    entropy_terms_from_log_probs,
    entropy_terms_from_probs,
)

__all__ = [
    "cross_entropy",
    "cross_entropy_from_log_probs",
    "cross_entropy_from_logits",
    "entropy",
    "entropy_from_log_probs",
    "entropy_from_logits",
]

Array = Any


def _single(value: object, name: str, axis: object, base: object, validate: object) -> Prepared:
    return prepare((value,), (name,), axis=axis, base=base, validate=validate)


def entropy(
    p: Array, *, axis: int = -1, base: float | None = None, validate: bool | None = None
) -> Array:
    r"""Shannon entropy :math:`H(P)` from probabilities.

    .. math::

        H(P) = -\sum_i p_i \log p_i, \qquad 0 \log 0 = 0

    Unlike ``scipy.stats.entropy``, ``p`` is never silently renormalised: rows
    that do not sum to 1 are an error.

    Args:
        p: probabilities, shape ``[..., n]``.
        axis: the event axis, summed over.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks; None uses the global default.

    Returns:
        The entropy of each distribution: ``p``'s shape without ``axis``.

    Raises:
        KLDivError: a bad ``axis`` or ``base``, or (when validating) entries that
            are negative or not finite, or rows that do not sum to 1.

    Examples:
        >>> import kldiv
        >>> float(kldiv.entropy([0.5, 0.25, 0.25, 0.0], base=2))
        1.5
    """
    native = _native.native_result(
        "entropy", "probs", (p,), axis=axis, base=base, validate=validate
    )
    if native is not None:
        return native
    prepared = _single(p, "p", axis, base, validate)
    (array,) = prepared.arrays
    checked = check_probabilities(
        array,
        "p",
        prepared.axis,
        prepared.tolerance,
        validate=prepared.validate,
        xp=prepared.xp,
        guards=prepared.guards,
    )
    return reduce_terms(entropy_terms_from_probs, prepared, checked)


def entropy_from_log_probs(
    log_p: Array, *, axis: int = -1, base: float | None = None, validate: bool | None = None
) -> Array:
    r"""Shannon entropy :math:`H(P)` from log-probabilities.

    .. math::

        H(P) = -\sum_i e^{\log p_i} \log p_i

    Args:
        log_p: log-probabilities, shape ``[..., n]``; ``-inf`` is zero mass.
        axis: the event axis, summed over.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks; None uses the global default.

    Returns:
        The entropy of each distribution: ``log_p``'s shape without ``axis``.

    Raises:
        KLDivError: as :func:`entropy`, for log-probabilities.

    Examples:
        >>> import numpy as np
        >>> import kldiv
        >>> float(kldiv.entropy_from_log_probs(np.log([0.5, 0.5]), base=2))
        1.0
    """
    native = _native.native_result(
        "entropy", "log_probs", (log_p,), axis=axis, base=base, validate=validate
    )
    if native is not None:
        return native
    prepared = _single(log_p, "log_p", axis, base, validate)
    (array,) = prepared.arrays
    checked = check_log_probabilities(
        array,
        "log_p",
        prepared.axis,
        prepared.tolerance,
        validate=prepared.validate,
        xp=prepared.xp,
        guards=prepared.guards,
    )
    return reduce_terms(entropy_terms_from_log_probs, prepared, checked)


def entropy_from_logits(
    logits: Array,
    *,
    axis: int = -1,
    temperature: float = 1.0,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Shannon entropy :math:`H(P)` of :math:`P = \operatorname{softmax}(z / T)`.

    .. math::

        \log p = \operatorname{log\_softmax}(z / T), \qquad H(P) = -\sum_i p_i \log p_i

    Args:
        logits: logits, shape ``[..., n]``; ``-inf`` is zero mass.
        axis: the event axis, summed over.
        temperature: a positive softmax temperature ``T``.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks; None uses the global default.

    Returns:
        The entropy of each distribution: ``logits``' shape without ``axis``.

    Raises:
        KLDivError: NaN or +inf logits, a row with no finite logit, a bad
            ``axis``, ``base`` or ``temperature``.

    Examples:
        >>> import numpy as np
        >>> import kldiv
        >>> float(kldiv.entropy_from_logits([3.0, 3.0, -np.inf], base=2))
        1.0
    """
    native = _native.native_result(
        "entropy",
        "logits",
        (logits,),
        axis=axis,
        base=base,
        validate=validate,
        temperature=temperature,
    )
    if native is not None:
        return native
    t = check_temperature(temperature)
    prepared = _single(logits, "logits", axis, base, validate)
    (log_p,) = checked_log_softmax(prepared, ("logits",), t)
    return reduce_terms(entropy_terms_from_log_probs, prepared, log_p)


def cross_entropy(
    p: Array,
    q: Array,
    *,
    axis: int = -1,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Cross-entropy :math:`H(P, Q)` from probabilities.

    .. math::

        H(P, Q) = -\sum_i p_i \log q_i = H(P) + D_{KL}(P \| Q)

    with :math:`0 \log q = 0` and :math:`+\infty` where :math:`q_i = 0 < p_i`.

    Args:
        p: probabilities of P, shape ``[..., n]``.
        q: probabilities of Q; broadcasts against ``p`` except along ``axis``.
        axis: the event axis, summed over.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks; None uses the global default.

    Returns:
        The cross-entropy of each pair of distributions, shape of the broadcast batch.

    Raises:
        KLDivError: as :func:`kldiv.kl_from_probs`.

    Examples:
        >>> import kldiv
        >>> float(kldiv.cross_entropy([0.4, 0.6], [0.5, 0.5], base=2))
        1.0
    """
    native = _native.native_result(
        "cross_entropy", "probs", (p, q), axis=axis, base=base, validate=validate
    )
    if native is not None:
        return native
    prepared = prepare((p, q), ("p", "q"), axis=axis, base=base, validate=validate)
    return reduce_terms(cross_entropy_terms_from_probs, prepared, *check_probability_pair(prepared))


def cross_entropy_from_log_probs(
    log_p: Array,
    log_q: Array,
    *,
    axis: int = -1,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Cross-entropy :math:`H(P, Q)` from log-probabilities.

    .. math::

        H(P, Q) = -\sum_i e^{\log p_i} \log q_i

    Args:
        log_p: log-probabilities of P, shape ``[..., n]``; ``-inf`` is zero mass.
        log_q: log-probabilities of Q; broadcasts against ``log_p`` except along ``axis``.
        axis: the event axis, summed over.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks; None uses the global default.

    Returns:
        The cross-entropy of each pair of distributions, shape of the broadcast batch.

    Raises:
        KLDivError: as :func:`kldiv.kl_from_log_probs`.

    Examples:
        >>> import numpy as np
        >>> import kldiv
        >>> float(kldiv.cross_entropy_from_log_probs(np.log([0.4, 0.6]), np.log([0.5, 0.5])))
        0.6931472
    """
    native = _native.native_result(
        "cross_entropy", "log_probs", (log_p, log_q), axis=axis, base=base, validate=validate
    )
    if native is not None:
        return native
    prepared = prepare((log_p, log_q), ("log_p", "log_q"), axis=axis, base=base, validate=validate)
    checked = check_log_probability_pair(prepared, ("log_p", "log_q"))
    return reduce_terms(cross_entropy_terms_from_log_probs, prepared, *checked)


def cross_entropy_from_logits(
    p_logits: Array,
    q_logits: Array,
    *,
    axis: int = -1,
    temperature: float = 1.0,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Cross-entropy :math:`H(P, Q)` of two softmax distributions, from logits.

    .. math::

        H(P, Q) = -\sum_i p_i \log q_i, \quad
        \log p = \operatorname{log\_softmax}(z_p / T), \
        \log q = \operatorname{log\_softmax}(z_q / T)

    Args:
        p_logits: logits of P, shape ``[..., n]``.
        q_logits: logits of Q; broadcasts against ``p_logits`` except along ``axis``.
        axis: the event axis, summed over.
        temperature: a positive softmax temperature ``T`` applied to both.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks; None uses the global default.

    Returns:
        The cross-entropy of each pair of distributions, shape of the broadcast batch.

    Raises:
        KLDivError: as :func:`kldiv.kl_from_logits`.

    Examples:
        >>> import numpy as np
        >>> import kldiv
        >>> float(kldiv.cross_entropy_from_logits(np.log([0.4, 0.6]), [0.0, 0.0]))
        0.6931472
    """
    native = _native.native_result(
        "cross_entropy",
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
    return reduce_terms(cross_entropy_terms_from_log_probs, prepared, log_p, log_q)
