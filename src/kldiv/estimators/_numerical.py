r"""Deterministic numerical estimates: adaptive quadrature (1-D) and enumeration (discrete).

Quadrature integrates :math:`p(x)\,[\log p(x) - \log q(x)]` over P's support
with ``scipy.integrate.quad``, split at P's 0.1%, 50% and 99.9% quantiles (read
off a seeded sample) and at P's and Q's location parameters, so that the bulk
is integrated on finite pieces and the tails by quad's transformation of
infinite ranges; between the median and the extreme quantile next to a finite
end of the support, the variable is the log of the distance to that end. Its
error is quad's own absolute-error estimate, summed over the pieces; an
integral quad finds divergent is +inf.

Enumeration sums :math:`P(k) \log(P(k)/Q(k))` over a discrete univariate P's
support, to its end when finite, else until P's remaining mass is below
``tail_mass``; the dropped mass and an estimate of the dropped terms are
reported.

Both run on NumPy copies (they are not differentiable) and loop over batch
elements.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np

from kldiv._array_api import to_numpy
from kldiv.distributions._convert import as_numpy_distribution

__all__ = ["enumeration_kl", "quadrature_kl"]


def _batch_shape(p: Any, q: Any) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(p.batch_shape, q.batch_shape))


def _at(values: Any, index: tuple[int, ...], shape: tuple[int, ...]) -> float:
    return float(np.broadcast_to(np.asarray(to_numpy(values)), shape)[index])


def _support_outside(p: Any, q: Any, shape: tuple[int, ...]) -> np.ndarray:
    p_lo, p_hi = (np.broadcast_to(to_numpy(b), shape) for b in p.support_bounds())
    q_lo, q_hi = (np.broadcast_to(to_numpy(b), shape) for b in q.support_bounds())
    return (p_lo < q_lo) | (p_hi > q_hi)


def quadrature_kl(
    p: Any, q: Any, *, rtol: float, atol: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """D(P ‖ Q) for 1-D continuous P and Q by adaptive quadrature.

    Returns:
        ``(value, error, evaluations)``: float64 arrays of the broadcast batch
        shape and the number of integrand evaluations. The value is ``+inf``
        where P's support is not inside Q's (error 0) and where quad diagnoses
        a divergent integral (error NaN: a heavy-tailed P against a lighter Q);
        the error is NaN where quad ran out of subdivisions.
    """
    p, q = as_numpy_distribution(p), as_numpy_distribution(q)
    shape = _batch_shape(p, q)
    outside = _support_outside(p, q, shape)
    lower, upper = (np.broadcast_to(to_numpy(b), shape) for b in p.support_bounds())
    draws = np.asarray(p.sample((2001,), rng=np.random.default_rng(seed)), dtype=float)
    extra_axes = (1,) * (len(shape) - len(p.batch_shape))  # P unbatched against a batch of Qs
    draws = np.broadcast_to(draws.reshape(2001, *extra_axes, *p.batch_shape), (2001, *shape))
    value = np.empty(shape)
    error = np.empty(shape)
    evaluations = 0
    for index in np.ndindex(*shape):
        if outside[index]:
            value[index], error[index] = math.inf, 0.0
            continue

        lo, hi = float(lower[index]), float(upper[index])

        def integrand(x: float, index: tuple[int, ...] = index, lo=lo, hi=hi) -> float:
            if not lo < x < hi:  # an end point, reached by rounding: measure zero
                return 0.0
            point = np.full(shape, x)
            lp = _at(p.log_prob(point), index, shape)
            density = math.exp(lp)
            if density == 0.0:  # also where it underflows, and Q's log density may overflow
                return 0.0
            lq = _at(q.log_prob(point), index, shape)
            return density * (lp - lq)

        cuts = np.quantile(draws[(slice(None), *index)], [0.001, 0.5, 0.999])
        # Location parameters are where a density may have a kink (Laplace), which
        # quad can step over with a confident but wrong error estimate.
        kinks = [_at(d.loc, index, shape) for d in (p, q) if _has_scalar_loc(d)]
        inner = {c for c in [*cuts.tolist(), *kinks] if lo < c < hi}
        edges = [lo, *sorted(inner), hi]
        total, err, divergent = 0.0, 0.0, False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for a, b in itertools.pairwise(edges):
                if b <= a:
                    continue
                piece, piece_err, info, piece_divergent = _quad(
                    *_log_scaled(integrand, a, b, lo, hi, cuts[1]), rtol, atol
                )
                total += piece
                err += piece_err
                evaluations += info
                divergent = divergent or piece_divergent
        if divergent and not math.isnan(total):
            # quad's extrapolation returns a finite (even negative) number for a divergent
            # integral. p log(p/q) has a negative part of at most 1 in total, so the
            # divergence is to +inf; the error is unknown, as this is quad's diagnosis.
            value[index], error[index] = math.inf, math.nan
        elif math.isnan(total):  # a log density overflowed: value unknown, not +inf
            value[index], error[index] = math.nan, math.nan
        else:
            value[index] = total
            error[index] = err if math.isfinite(total) else 0.0  # +inf: Q's density is 0
    return value, error, evaluations


_DIVERGENT = "The integral is probably divergent"
_LIMIT = "The maximum number of subdivisions"


def _has_scalar_loc(d: Any) -> bool:
    """Whether ``d`` has a location parameter with one value per batch element."""
    loc = getattr(d, "loc", None)
    return loc is not None and not d.event_shape and tuple(np.shape(loc)) == d.batch_shape


def _log_scaled(
    f: Any, a: float, b: float, lo: float, hi: float, median: float
) -> tuple[Any, float, float]:
    """The piece ``[a, b]`` on the scale of the distance to the nearer finite end of the support.

    Between the extreme quantile next to a finite end ``lo`` and the median, the
    integrand is integrated in ``u = log(x - lo)`` (``log(hi - x)`` next to
    ``hi``): a density that varies over many decades there (a Gamma of shape 0.3
    between its 0.1% quantile, 1e-12, and its median) becomes a smooth function,
    where quad's error estimate holds. The piece that reaches the end itself
    stays in ``x``, where quad handles an algebraic singularity and diagnoses a
    divergent one (E[1/X] = inf for an InverseGamma Q). Returns
    ``(g, u_a, u_b)`` with the same integral as ``f`` on ``[a, b]``.
    """

    def log(d: float) -> float:
        return math.log(d) if d > 0.0 else -math.inf

    if math.isfinite(lo) and a > lo and b <= median:
        return (lambda u: f(lo + math.exp(u)) * math.exp(u)), log(a - lo), log(b - lo)
    if math.isfinite(hi) and b < hi and a >= median:
        return (lambda u: f(hi - math.exp(u)) * math.exp(u)), log(hi - b), log(hi - a)
    return f, a, b


def _quad(f: Any, a: float, b: float, rtol: float, atol: float) -> tuple[float, float, int, bool]:
    """The value, error estimate and evaluation count of quad, and whether it found divergence."""
    from scipy import integrate

    out = integrate.quad(
        f, a, b, epsabs=atol * 1e-2, epsrel=rtol * 1e-3, limit=500, full_output=True
    )
    # With full_output, a 4th item is QUADPACK's message when ier != 0: ier = 5 reads
    # "The integral is probably divergent, or slowly convergent."; after ier = 1
    # (the subdivision limit, as at the edge of a log-divergent tail) the error
    # estimate is not to be trusted.
    message = str(out[3]) if len(out) > 3 else ""
    err = math.nan if message.startswith(_LIMIT) else out[1]
    return out[0], err, int(out[2]["neval"]), message.startswith(_DIVERGENT)


def enumeration_kl(
    p: Any, q: Any, *, tail_mass: float = 1e-13, max_support: int = 10_000_000
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """D(P ‖ Q) for discrete univariate P and Q by summing over P's support.

    Returns:
        ``(value, tail_estimate, evaluations, dropped_mass)``: float64 arrays
        of the broadcast batch shape (``+inf`` where Q misses a point of P's
        support), the number of support points summed, and P's mass left out.
    """
    p, q = as_numpy_distribution(p), as_numpy_distribution(q)
    shape = _batch_shape(p, q)
    lower, upper = (np.broadcast_to(to_numpy(b), shape) for b in p.support_bounds())
    start = int(np.min(np.where(np.isfinite(lower), lower, 0.0)))
    stop_at = float(np.max(upper))
    total = np.zeros(shape)
    mass = np.zeros(shape)
    last_block = np.zeros(shape)
    k0, step = start, 1024
    evaluations = 0
    while k0 < start + max_support:
        hi = min(k0 + step, int(stop_at) + 1) if math.isfinite(stop_at) else k0 + step
        ks = np.arange(k0, hi, dtype=float).reshape((-1,) + (1,) * len(shape))
        values = np.broadcast_to(ks, (ks.shape[0], *shape))
        with np.errstate(all="ignore"):
            lp = np.asarray(p.log_prob(values), dtype=float)
            lq = np.asarray(q.log_prob(values), dtype=float)
            prob = np.exp(lp)
            terms = np.where(prob > 0, prob * (lp - lq), 0.0)
        last_block = terms.sum(axis=0)
        total = total + last_block
        mass = mass + prob.sum(axis=0)
        evaluations += ks.shape[0]
        k0 = hi
        if (math.isfinite(stop_at) and k0 > stop_at) or np.all(1.0 - mass < tail_mass):
            break
        step *= 2
    dropped = np.clip(1.0 - mass, 0.0, None)
    tail = np.where(np.isfinite(total) & (dropped > tail_mass), np.abs(last_block), 0.0)
    return total, tail, evaluations, dropped
