r"""The closed-form registry: ``register_kl`` double dispatch and ``kl_divergence``.

.. math::

    D_{KL}(P \| Q) = \int p(x) \log \frac{p(x)}{q(x)} \, dx

Pairs are registered on types; a lookup picks the most specific registered
pair under subclass order, the same rule as ``torch.distributions``: among the
matches, the lexicographically smallest in (P, Q) order and in (Q, P) order
must agree, else a ``RuntimeWarning`` names the ``register_kl`` call that
settles it. Lookups are memoised (misses too) and the memo is cleared on every
registration. Registering a pair twice raises unless ``override=True``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from kldiv._validation import log_of_base
from kldiv.errors import KLDivError, NoClosedFormError

__all__ = ["closed_form_kl", "kl_divergence", "lookup_kl", "register_kl", "registered_pairs"]

Array = Any
KLFunction = Callable[[Any, Any], Array]

_REGISTRY: dict[tuple[type, type], KLFunction] = {}
_MEMO: dict[tuple[type, type], KLFunction | None] = {}


def _distribution_base() -> type:
    from kldiv.distributions._base import Distribution

    return Distribution


def _check_type(t: object, name: str) -> None:
    base = _distribution_base()
    if not (isinstance(t, type) and issubclass(t, base)):
        raise KLDivError(
            f"`{name}` must be a subclass of kldiv.distributions.Distribution; got {t!r}"
        )


def register_kl(type_p: type, type_q: type, *, override: bool = False) -> Callable:
    """Decorator registering ``fn(p, q)`` as the closed form of D(P ‖ Q) for a pair of types.

    The function receives two distribution instances of (subclasses of) the
    registered types and returns the divergence per batch element, in nats.
    Subclasses inherit the registration: the most specific registered pair
    wins. When two pairs match equally well a ``RuntimeWarning`` names the
    registration that removes the ambiguity, e.g. ``register_kl(DerivedP,
    DerivedQ)(kl_version1)``.

    Args:
        type_p: the class of P, a subclass of ``kldiv.distributions.Distribution``.
        type_q: the class of Q.
        override: replace an existing registration of exactly this pair
            instead of raising.

    Returns:
        A decorator that registers the function and returns it unchanged.

    Raises:
        KLDivError: a type is not a distribution class, or the pair is
            registered already and ``override`` is False.

    Examples:
        >>> import kldiv
        >>> from kldiv import distributions as D
        >>> class Shifted(D.Normal):
        ...     pass
        >>> @kldiv.register_kl(Shifted, Shifted)
        ... def _kl_shifted(p, q):
        ...     return kldiv.kl_divergence(D.Normal(p.loc, p.scale), D.Normal(q.loc, q.scale))
        >>> float(kldiv.kl_divergence(Shifted(0.0, 1.0), Shifted(1.0, 1.0)))
        0.5
    """
    _check_type(type_p, "type_p")
    _check_type(type_q, "type_q")

    def decorator(fn: KLFunction) -> KLFunction:
        key = (type_p, type_q)
        if key in _REGISTRY and not override:
            existing = _REGISTRY[key]
            raise KLDivError(
                f"KL({type_p.__name__} ‖ {type_q.__name__}) is registered already, to "
                f"{existing.__module__}.{existing.__qualname__}; pass override=True to replace it"
            )
        _REGISTRY[key] = fn
        _MEMO.clear()
        return fn

    return decorator


@functools.total_ordering
class _Match:
    """A registered pair ordered by specificity: a subclass precedes its bases."""

    __slots__ = ("types",)

    def __init__(self, *types: type) -> None:
        self.types = types

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Match) and self.types == other.types

    def __hash__(self) -> int:
        return hash(self.types)

    def __le__(self, other: _Match) -> bool:
        for x, y in zip(self.types, other.types, strict=True):
            if not issubclass(x, y):
                return False
            if x is not y:
                break
        return True


def _dispatch(type_p: type, type_q: type) -> KLFunction | None:
    matches = [
        (super_p, super_q)
        for super_p, super_q in _REGISTRY
        if issubclass(type_p, super_p) and issubclass(type_q, super_q)
    ]
    if not matches:
        return None
    left_p, left_q = min(_Match(*m) for m in matches).types
    right_q, right_p = min(_Match(*reversed(m)) for m in matches).types
    left_fun = _REGISTRY[left_p, left_q]
    right_fun = _REGISTRY[right_p, right_q]
    if left_fun is not right_fun:
        warnings.warn(
            f"Ambiguous kl_divergence({type_p.__name__}, {type_q.__name__}): both "
            f"({left_p.__name__}, {left_q.__name__}) and ({right_p.__name__}, "
            f"{right_q.__name__}) match. Settle it with "
            f"kldiv.register_kl({type_p.__name__}, {type_q.__name__})(...)",
            RuntimeWarning,
            stacklevel=3,
        )
    return left_fun


def lookup_kl(type_p: type, type_q: type) -> KLFunction | None:
    """The registered closed form for a pair of types (memoised), or None."""
    key = (type_p, type_q)
    if key not in _MEMO:
        _MEMO[key] = _dispatch(type_p, type_q)
    return _MEMO[key]


def closed_form_kl(p: Any, q: Any) -> Array | None:
    """The registered closed form of D(P ‖ Q) for these parameters, or None.

    None both when no pair is registered and when the registered function
    raises :class:`NoClosedFormError` for these arguments (a Binomial with
    different counts, say): the callers (``kldiv.estimate``, ``kldiv.elbo``)
    then fall back to a numerical estimate.
    """
    fun = lookup_kl(type(p), type(q))
    if fun is None:
        return None
    try:
        return fun(p, q)
    except NoClosedFormError:
        return None


def registered_pairs() -> list[tuple[type, type]]:
    """Every registered ``(TypeP, TypeQ)`` pair, sorted by the classes' names.

    Returns:
        A list of ``(TypeP, TypeQ)`` class pairs, including those registered by
        the user with :func:`register_kl`.

    Examples:
        >>> import kldiv
        >>> from kldiv import distributions as D
        >>> (D.Normal, D.Normal) in kldiv.registered_pairs()
        True
    """
    return sorted(_REGISTRY, key=lambda pair: (pair[0].__name__, pair[1].__name__))


def kl_divergence(p: Any, q: Any, *, base: float | None = None) -> Array:
    r"""The exact KL divergence D(P ‖ Q) between two distributions, per batch element.

    .. math::

        D_{KL}(P \| Q) = \int p(x) \log \frac{p(x)}{q(x)} \, dx
        \quad\text{or}\quad \sum_x P(x) \log \frac{P(x)}{Q(x)}

    ``P`` is the true distribution, ``Q`` the approximation. Both may be kldiv
    distributions, ``torch.distributions`` objects (the result is a torch
    tensor and gradients flow to their parameters) or SciPy frozen
    distributions (``scipy.stats.norm(0, 1)``; NumPy result). Batch shapes
    broadcast. A distribution held in NumPy (e.g. built from Python numbers,
    like the prior ``Normal(0.0, 1.0)``) is moved to the other's library.
    Where Q gives zero density to a set P charges, the result is ``+inf``.

    Args:
        p: the distribution P.
        q: the distribution Q.
        base: the logarithm's base: None for nats, 2 for bits.

    Returns:
        An array of the parameters' backend, of the broadcast batch shape.

    Raises:
        NoClosedFormError: no closed form is registered for the pair (use
            :func:`kldiv.estimate`, which falls back to quadrature or Monte Carlo
            with an error bar).
        KLDivError: the arguments are not distributions, their parameters come
            from different array libraries, their event shapes differ or their
            batch shapes do not broadcast.

    Examples:
        >>> import kldiv
        >>> from kldiv import distributions as D
        >>> float(kldiv.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 2.0)))
        0.4431471805599453
        >>> p, q = D.Categorical(probs=[0.4, 0.6]), D.Categorical(probs=[0.5, 0.5])
        >>> kl = kldiv.kl_divergence(p, q)
        >>> round(float(kl), 10)
        0.0201355136
    """
    from kldiv.distributions._convert import as_distribution, check_pair_shapes, common_namespace

    log_base = log_of_base(base)
    p, q = common_namespace(as_distribution(p, "p"), as_distribution(q, "q"))
    check_pair_shapes(p, q)
    fun = lookup_kl(type(p), type(q))
    if fun is None:
        raise NoClosedFormError(
            f"no closed form is registered for KL({type(p).__name__} ‖ {type(q).__name__}); "
            f"use kldiv.estimate(p, q) for a numerical estimate with an error bar, or register "
            f"one with @kldiv.register_kl({type(p).__name__}, {type(q).__name__})"
        )
    result = fun(p, q)
    return result if log_base is None else result / log_base
