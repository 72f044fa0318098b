"""The generalized Jensen–Shannon divergence, in three input forms."""

from __future__ import annotations

from typing import Any

from kldiv._validation import check_beta, check_temperature
from kldiv.discrete import _native
from kldiv.discrete._common import prepare, reduce_terms
from kldiv.discrete._kl import (
    check_log_probability_pair,
    check_probability_pair,
    checked_log_softmax,
)
from kldiv.discrete._terms import js_terms_from_log_probs, js_terms_from_probs

__all__ = ["js_from_log_probs", "js_from_logits", "js_from_probs"]

Array = Any


def js_from_probs(
    p: Array,
    q: Array,
    *,
    beta: float = 0.5,
    axis: int = -1,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Generalized Jensen–Shannon divergence :math:`JS_\beta(P \| Q)` from probabilities.

    .. math::

        M = \beta P + (1 - \beta) Q, \qquad
        JS_\beta(P \| Q) = \beta\, D_{KL}(P \| M) + (1 - \beta)\, D_{KL}(Q \| M)

    It is finite, symmetric for :math:`\beta = 1/2` (:math:`JS_\beta(P\|Q) =
    JS_{1-\beta}(Q\|P)` in general), zero iff P = Q, and bounded by the binary
    entropy :math:`h(\beta) \le \log 2` (1 bit). ``beta`` 0 or 1 gives 0.
    SciPy's ``jensenshannon`` returns the square root of the ``beta = 0.5`` value.

    Args:
        p: probabilities of P, shape ``[..., n]``.
        q: probabilities of Q; broadcasts against ``p`` except along ``axis``.
        beta: the weight of P in the mixture, in [0, 1].
        axis: the event axis, summed over.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks; None uses the global default.

    Returns:
        The divergence of each distribution, shape of the broadcast batch.

    Raises:
        KLDivError: as :func:`kldiv.kl_from_probs`, and ``beta`` outside [0, 1].

    Examples:
        >>> import kldiv
        >>> float(kldiv.js_from_probs([1.0, 0.0], [0.0, 1.0], base=2))
        1.0
        >>> float(kldiv.js_from_probs([0.4, 0.6], [0.5, 0.5]))
        0.0050594

    References:
        Lin, J. (1991). Divergence measures based on the Shannon entropy.
        IEEE Transactions on Information Theory 37(1), 145–151.
    """
    native = _native.native_result(
        "js", "probs", (p, q), axis=axis, base=base, validate=validate, beta=beta
    )
    if native is not None:
        return native
    weight = check_beta(beta)
    prepared = prepare((p, q), ("p", "q"), axis=axis, base=base, validate=validate)
    checked = check_probability_pair(prepared)
    return reduce_terms(js_terms_from_probs, prepared, *checked, beta=weight)


def js_from_log_probs(
    log_p: Array,
    log_q: Array,
    *,
    beta: float = 0.5,
    axis: int = -1,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Generalized Jensen–Shannon divergence :math:`JS_\beta(P \| Q)` from log-probabilities.

    .. math::

        \log m = \operatorname{logaddexp}(\log \beta + \log p,\ \log(1-\beta) + \log q),
        \qquad JS_\beta = \beta\, D_{KL}(P \| M) + (1 - \beta)\, D_{KL}(Q \| M)

    The mixture is formed in log space, so nothing underflows; ``-inf`` is zero mass.

    Args:
        log_p: log-probabilities of P, shape ``[..., n]``.
        log_q: log-probabilities of Q; broadcasts against ``log_p`` except along ``axis``.
        beta: the weight of P in the mixture, in [0, 1].
        axis: the event axis, summed over.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks; None uses the global default.

    Returns:
        The divergence of each distribution, shape of the broadcast batch.

    Raises:
        KLDivError: as :func:`kldiv.kl_from_log_probs`, and ``beta`` outside [0, 1].

    Examples:
        >>> import numpy as np
        >>> import kldiv
        >>> float(kldiv.js_from_log_probs(np.log([0.4, 0.6]), np.log([0.5, 0.5])))
        0.0050594
    """
    native = _native.native_result(
        "js", "log_probs", (log_p, log_q), axis=axis, base=base, validate=validate, beta=beta
    )
    if native is not None:
        return native
    weight = check_beta(beta)
    prepared = prepare((log_p, log_q), ("log_p", "log_q"), axis=axis, base=base, validate=validate)
    checked = check_log_probability_pair(prepared, ("log_p", "log_q"))
    return reduce_terms(js_terms_from_log_probs, prepared, *checked, beta=weight)


def js_from_logits(
    p_logits: Array,
    q_logits: Array,
    *,
    beta: float = 0.5,
    axis: int = -1,
    temperature: float = 1.0,
    base: float | None = None,
    validate: bool | None = None,
) -> Array:
    r"""Generalized Jensen–Shannon divergence :math:`JS_\beta(P \| Q)` from logits.

    .. math::

        \log p = \operatorname{log\_softmax}(z_p / T), \quad
        \log q = \operatorname{log\_softmax}(z_q / T), \quad
        JS_\beta = \beta\, D_{KL}(P \| M) + (1 - \beta)\, D_{KL}(Q \| M)

    Args:
        p_logits: logits of P, shape ``[..., n]``.
        q_logits: logits of Q; broadcasts against ``p_logits`` except along ``axis``.
        beta: the weight of P in the mixture, in [0, 1].
        axis: the event axis, summed over.
        temperature: a positive softmax temperature ``T`` applied to both.
        base: the logarithm base of the result's unit: None for nats, 2 for bits.
        validate: run the eager value checks; None uses the global default.

    Returns:
        The divergence of each distribution, shape of the broadcast batch.

    Raises:
        KLDivError: as :func:`kldiv.kl_from_logits`, and ``beta`` outside [0, 1].

    Examples:
        >>> import numpy as np
        >>> import kldiv
        >>> float(kldiv.js_from_logits(np.log([0.4, 0.6]), [0.0, 0.0]))
        0.0050594
    """
    native = _native.native_result(
        "js",
        "logits",
        (p_logits, q_logits),
        axis=axis,
        base=base,
        validate=validate,
        temperature=temperature,
        beta=beta,
    )
    if native is not None:
        return native
    weight = check_beta(beta)
    t = check_temperature(temperature)
    prepared = prepare(
        (p_logits, q_logits), ("p_logits", "q_logits"), axis=axis, base=base, validate=validate
    )
    log_p, log_q = checked_log_softmax(prepared, ("p_logits", "q_logits"), t)
    return reduce_terms(js_terms_from_log_probs, prepared, log_p, log_q, beta=weight)
