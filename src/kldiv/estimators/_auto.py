r"""``kldiv.estimate``: the best available value of D(P ‖ Q), with an honest error bar.

The ``"auto"`` chain tries, in order:

1. ``"exact"``: the registered closed form (``kldiv.kl_divergence``); error 0.
2. ``"enumeration"``: discrete univariate P and Q, summed over a window
   around P's bulk (mean ± 10 sd) widened until the tails beyond it are
   bounded; the error is that bound plus rounding, the dropped mass is reported.
3. ``"quadrature"``: continuous univariate P and Q, in logarithmic variables
   towards each end of the support, with the divergence of the integral
   decided from both tails; the error is at least the disagreement of two
   independent rules (QUADPACK and tanh-sinh) plus the tail bounds.
4. ``"monte_carlo"``: draws of P until the standard error meets
   ``max(atol, rtol * |value|)`` or ``max_samples`` is spent; reparameterised
   and therefore differentiable where the family allows; with a control
   variate where it is valid. For Gaussian mixtures the deterministic
   approximations and bounds of Hershey & Olsen (2007) and Durrieu et al.
   (2012) are added to ``details``.

Every method checks itself and sets ``Estimate.converged``; with
``details["reason"]`` when False. Under ``"auto"``, an enumeration or a
quadrature that did not converge (a tail it cannot bound, an error above
``max(atol, rtol·|value|)``) is followed by Monte Carlo, and the result with
the smaller error bar is returned, the other recorded in ``details``.

Enumeration and quadrature are NumPy/SciPy algorithms (not differentiable):
when a parameter needs a gradient (a torch tensor with ``requires_grad``, or
any JAX tracer) the chain goes from the closed form straight to Monte Carlo.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from kldiv._array_api import device, is_torch_namespace, is_traced, to_numpy
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
    return Estimate(value=value, stderr=p.xp.zeros_like(value), method="exact", n=0, converged=True)


def _numerical_estimate(result: Any, method: str, p: Any, details: dict[str, Any]) -> Estimate:
    like = p._like()
    converged = bool(np.all(result.converged))
    details = {**details, "converged": result.converged}
    if not converged:
        details["reason"] = "; ".join(result.reasons)
    return Estimate(
        value=_as_backend(result.value, like, p.xp),
        stderr=_as_backend(result.error, like, p.xp),
        method=method,
        n=result.evaluations,
        details=details,
        converged=converged,
    )


def _enumeration(p: Any, q: Any, rtol: float, atol: float) -> Estimate:
    result = enumeration_kl(p, q, rtol=rtol, atol=atol)
    details = {
        "dropped_mass": result.extra["dropped_mass"],
        "windows": result.extra["windows"],
        "error": "a bound: the geometric tail bound beyond the window plus rounding",
    }
    return _numerical_estimate(result, "enumeration", p, details)


def _quadrature(p: Any, q: Any, rtol: float, atol: float) -> Estimate:
    result = quadrature_kl(p, q, rtol=rtol, atol=atol)
    details = {
        "error": "max(quad's error estimate, |quad - tanh-sinh|) per piece, plus the tail bounds"
    }
    return _numerical_estimate(result, "quadrature", p, details)


def _fallback(first: Estimate, run_monte_carlo: Any) -> Estimate:
    """Monte Carlo after a numerical method that did not converge; the better error bar wins."""
    summary = {
        "method": first.method,
        "value": first.value,
        "stderr": first.stderr,
        "reason": first.details.get("reason", ""),
    }
    try:
        mc = run_monte_carlo()
    except (NotImplementedError, KLDivError):
        return first
    mc_err = np.asarray(to_numpy(mc.stderr), dtype=float)
    first_err = np.asarray(to_numpy(first.stderr), dtype=float)
    if not np.all(np.nan_to_num(mc_err, nan=np.inf) < np.nan_to_num(first_err, nan=np.inf)):
        return Estimate(
            first.value,
            first.stderr,
            first.method,
            first.n,
            details={**first.details, "monte_carlo": {"value": mc.value, "stderr": mc.stderr}},
            converged=first.converged,
        )
    return Estimate(
        mc.value,
        mc.stderr,
        mc.method,
        mc.n,
        details={**mc.details, f"{first.method}_attempt": summary},
        converged=mc.converged,
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
    if result.reason:
        details["reason"] = result.reason
    if result.tail_shape is not None:
        details["log_ratio_tail_shape"] = result.tail_shape
    if not (is_traced(p._like()) or is_traced(q._like())):
        bounds = mixture_bounds(p, q)
        if bounds is not None:
            details.update(bounds)
    return Estimate(
        value=result.value,
        stderr=result.stderr,
        method="monte_carlo",
        n=result.n,
        details=details,
        converged=bool(result.converged),
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
            converged=True,
        )
    discrete = p.is_discrete and q.is_discrete and _univariate(p)
    continuous = not p.is_discrete and not q.is_discrete and _univariate(p)
    gradient = _needs_gradient(p) or _needs_gradient(q)

    def run_monte_carlo() -> Estimate:
        return _monte_carlo(
            p, q, rtol=rtol, atol=atol, max_samples=max_samples, n_samples=n_samples, seed=seed
        )

    if method == "enumeration" or (method == "auto" and discrete and not gradient):
        if not discrete:
            raise KLDivError(
                f"`method='enumeration'` needs discrete univariate P and Q; got {pair}"
            )
        found = _enumeration(p, q, rtol, atol)
    elif method == "quadrature" or (method == "auto" and continuous and not gradient):
        if not continuous:
            raise KLDivError(
                f"`method='quadrature'` needs continuous univariate P and Q; got {pair}"
            )
        found = _quadrature(p, q, rtol, atol)
    else:
        return run_monte_carlo()
    if method == "auto" and not found.converged:
        return _fallback(found, run_monte_carlo)
    return found
