"""The exceptions kldiv raises.

Every error kldiv raises on bad input is a :class:`KLDivError`, itself a
:class:`ValueError`, so ``except ValueError`` keeps working for callers that do
not know kldiv. Messages name the argument, what was expected and what arrived.
"""

from __future__ import annotations

__all__ = ["KLDivError", "NoClosedFormError"]


class KLDivError(ValueError):
    """Bad input to a kldiv function: the message says which argument and why.

    Examples:
        >>> import kldiv
        >>> try:
        ...     kldiv.kl_from_probs([0.5, 0.5], [1.5, -0.5])
        ... except kldiv.KLDivError as err:
        ...     print(err)
        `q` must hold probabilities (finite and >= 0); got -0.5 at index (1,)
    """


class NoClosedFormError(KLDivError, NotImplementedError):
    """No closed form is registered for a pair of distributions.

    Raised by :func:`kldiv.kl_divergence`; the message names the pair and points
    to :func:`kldiv.estimate`, which falls back to quadrature or Monte Carlo
    with an error bar. It is both a :class:`KLDivError` and a
    :class:`NotImplementedError` (what ``torch.distributions`` raises).

    Examples:
        >>> import kldiv
        >>> issubclass(kldiv.NoClosedFormError, NotImplementedError)
        True
    """
