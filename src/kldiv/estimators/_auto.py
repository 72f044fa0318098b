r"""``kldiv.estimate``: the best available value of D(P ‖ Q), with an honest error bar.

The ``"auto"`` chain tries, in order:

1. ``"exact"``: the registered closed form (``kldiv.kl_divergence``); error 0.
2. ``"enumeration"``: discrete univariate P and Q, summed over P's support
   (to its end, or until P's remaining mass is below 1e-13; the dropped mass
   is reported).
3. ``"quadrature"``: continuous univariate P and Q, adaptive quadrature;
   the error is quad's estimate.
4. ``"monte_carlo"``: draws of P until the standard error meets
   ``max(atol, rtol * |value|)`` or ``max_samples`` is spent; reparameterised
   and therefore differentiable where the family allows; with a control
   variate where it is valid. For Gaussian mixtures the deterministic
   approximations and bounds of Hershey & Olsen (2007) and Durrieu et al.
   (2012) are added to ``details``.

Enumeration and quadrature are NumPy/SciPy algorithms (not differentiable):
when a parameter needs a gradient (a torch tensor with ``requires_grad``, or
any JAX tracer) the chain goes from the closed form straight to Monte Carlo.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from kldiv._array_api import device, is_torch_namespace, is_traced
from kldiv._validation import log_of_base
from kldiv.distributions._convert import as_distribution, check_pair_shapes, common_namespace
from kldiv.distributions._kl_helpers import infinite_kl
from kldiv.distributions._registry import closed_form_kl
from kldiv.errors import KLDivError, NoClosedFormError
from kldiv.estimators._estimate import Estimate
from kldiv.estimators._mixture import mixture_bounds
from kldiv.estimators._monte_carlo import monte_carlo_kl
from kldiv.estimators._numerical import enumeration_kl, quadrature_kl

__all__ = ["METHODS", "estimate"]

Array = Any

METHODS = ("auto", "exact", "enumeration", "quadrature", "monte_carlo")


def _check_tolerance(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise KLDivError(f"`{name}` must be a number >= 0; got {value!r}")
    return float(value)


def _check_count(value: object, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise KLDivError(f"`{name}` must be an integer >= 2; got {value!r}")
    return int(value)


def _needs_gradient(d: Any) -> bool:
    like = d._like()
    if is_traced(like):
        return True
    if is_torch_namespace(d.xp):
        return any(getattr(v, "requires_grad", False) for v in _nested_arrays(d))
    return False


def _nested_arrays(d: Any) -> list[Any]:
    from kldiv.distributions._base import Distribution

    arrays = []
    for value in vars(d).values():
        if isinstance(value, Distribution):
            arrays.extend(_nested_arrays(value))
        elif hasattr(value, "shape"):
            arrays.append(value)
    return arrays


def _univariate(d: Any) -> bool:
    return d.event_shape == ()


def _as_backend(values: np.ndarray, like: Any, xp: Any) -> Array:
    return xp.asarray(np.asarray(values, dtype=np.float64), dtype=like.dtype, device=device(like))


def _exact(p: Any, q: Any) -> Estimate | None:
    value = closed_form_kl(p, q)
    if value is None:
        return None
    return Estimate(value=value, stderr=p.xp.zeros_like(value), method="exact", n=0)


def _enumeration(p: Any, q: Any) -> Estimate:
    value, tail, count, dropped = enumeration_kl(p, q)
    like = p._like()
    return Estimate(
        value=_as_backend(value, like, p.xp),
        stderr=_as_backend(tail, like, p.xp),
        method="enumeration",
        n=count,
        details={"dropped_mass": dropped},
    )


def _quadrature(p: Any, q: Any, rtol: float, atol: float) -> Estimate:
    value, error, count = quadrature_kl(p, q, rtol=rtol, atol=atol)
    like = p._like()
    return Estimate(
        value=_as_backend(value, like, p.xp),
        stderr=_as_backend(error, like, p.xp),
        method="quadrature",
        n=count,
        details={"error": "scipy.integrate.quad's absolute-error estimate"},
    )


def _monte_carlo(
    p: Any,
    q: Any,
    *,
    rtol: float,
    atol: float,
    max_samples: int,
    n_samples: int | None,
    seed: object,
) -> Estimate:
    result = monte_carlo_kl(
        p, q, rtol=rtol, atol=atol, max_samples=max_samples, n_samples=n_samples, seed=seed
    )
    details: dict[str, Any] = {
        "converged": result.converged,
        "control_variate": result.control_variate,
        "variance_reduction": result.variance_reduction,
    }
    if not (is_traced(p._like()) or is_traced(q._like())):
        bounds = mixture_bounds(p, q)
        if bounds is not None:
            details.update(bounds)
    return Estimate(
        value=result.value, stderr=result.stderr, method="monte_carlo", n=result.n, details=details
    )


def estimate(
    p: Any,
    q: Any,
    *,
    method: str = "auto",
    rtol: float = 1e-3,
    atol: float = 1e-4,
    max_samples: int = 1_000_000,
    n_samples: int | None = None,
    seed: object = None,
    base: float | None = None,
) -> Estimate:
    r"""The best available estimate of D(P ‖ Q), with its error bar and the method used.

    .. math::

        D_{KL}(P \| Q) = \mathbb E_{X \sim P}\big[\log p(X) - \log q(X)\big]

    ``method="auto"`` uses the closed form when one is registered, else exact
    enumeration (discrete univariate), else adaptive quadrature (continuous
    univariate), else Monte Carlo until the standard error is at most
    ``max(atol, rtol * |value|)`` for every batch element or ``max_samples``
    draws are spent. Quadrature and enumeration are skipped when a parameter
    needs a gradient (torch ``requires_grad``, JAX tracing): Monte Carlo draws
    are reparameterised, so the value is differentiable there.

    Args:
        p: the distribution P: a kldiv distribution, a ``torch.distributions``
            object or a SciPy frozen distribution.
        q: the distribution Q.
        method: ``"auto"``, ``"exact"``, ``"enumeration"``, ``"quadrature"`` or
            ``"monte_carlo"``.
        rtol: the relative tolerance of the sequential Monte Carlo rule (and
            the quadrature's target).
        atol: the absolute tolerance, in nats.
        max_samples: the Monte Carlo budget.
        n_samples: a fixed number of Monte Carlo draws instead of the
            sequential rule (always fixed under ``jax.jit``: 10,000 by default).
        seed: an int, or the backend's random state (NumPy Generator, torch
            Generator, JAX key); None draws fresh randomness (JAX needs one).
        base: None for nats, 2 for bits.

    Returns:
        A :class:`kldiv.Estimate` whose ``value`` and ``stderr`` are arrays of
        the parameters' backend and batch shape.

    Raises:
        KLDivError: a bad argument, or a ``method`` that does not apply to the
            pair (e.g. ``"quadrature"`` for a multivariate P).
        NoClosedFormError: ``method="exact"`` and no closed form is registered.

    Examples:
        >>> import kldiv
        >>> from kldiv import distributions as D
        >>> est = kldiv.estimate(D.Normal(0.0, 1.5), D.StudentT(3.0, 0.0, 1.0))
        >>> est.method, round(float(est), 6)
        ('quadrature', 0.058017)
        >>> kldiv.estimate(D.Normal(0.0, 1.0), D.Normal(1.0, 2.0)).method
        'exact'
    """
    if method not in METHODS:
        raise KLDivError(f"`method` must be one of {list(METHODS)}; got {method!r}")
    rtol = _check_tolerance(rtol, "rtol")
    atol = _check_tolerance(atol, "atol")
    if rtol == 0 and atol == 0:
        raise KLDivError(
            "`rtol` and `atol` cannot both be 0: no numerical estimate reaches zero error; "
            "got rtol=0, atol=0"
        )
    max_samples = _check_count(max_samples, "max_samples")
    n_samples = _check_count(n_samples, "n_samples", allow_none=True)
    log_base = log_of_base(base)
    p, q = common_namespace(as_distribution(p, "p"), as_distribution(q, "q"))
    check_pair_shapes(p, q)
    result = _run(p, q, method, rtol, atol, max_samples, n_samples, seed)
    return result if log_base is None else result.to_base(base)


def _run(
    p: Any,
    q: Any,
    method: str,
    rtol: float,
    atol: float,
    max_samples: int,
    n_samples: int | None,
    seed: object,
) -> Estimate:
    pair = f"KL({type(p).__name__} ‖ {type(q).__name__})"
    if method in ("auto", "exact"):
        found = _exact(p, q)
        if found is not None:
            return found
        if method == "exact":
            raise NoClosedFormError(
                f"no closed form is registered for {pair}; use method='auto' for a numerical "
                "estimate with an error bar"
            )
    if p.is_discrete != q.is_discrete and method in ("auto", "monte_carlo"):
        # Atoms against a density (or the reverse): one charges a set the other gives
        # measure zero, and log p(x) - log q(x) would mix a mass with a density.
        value = infinite_kl(p, q)
        return Estimate(
            value=value,
            stderr=p.xp.zeros_like(value),
            method="exact",
            n=0,
            details={"reason": "one of P and Q is discrete, the other continuous"},
        )
    discrete = p.is_discrete and q.is_discrete and _univariate(p)
    continuous = not p.is_discrete and not q.is_discrete and _univariate(p)
    gradient = _needs_gradient(p) or _needs_gradient(q)
    if method == "enumeration" or (method == "auto" and discrete and not gradient):
        if not discrete:
            raise KLDivError(
                f"`method='enumeration'` needs discrete univariate P and Q; got {pair}"
            )
        return _enumeration(p, q)
    if method == "quadrature" or (method == "auto" and continuous and not gradient):
        if not continuous:
            raise KLDivError(
                f"`method='quadrature'` needs continuous univariate P and Q; got {pair}"
            )
        return _quadrature(p, q, rtol, atol)
    return _monte_carlo(
        p, q, rtol=rtol, atol=atol, max_samples=max_samples, n_samples=n_samples, seed=seed
    )
